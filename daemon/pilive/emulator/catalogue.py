"""What the real Live API service is known to do, beyond its reference, and how pilive ends each.

Every row is a behaviour that has been reported or documented for the real service, with its
public source, the emulator fault or option that produces it on demand, and the outcome pilive
must reach. `tests/integration/test_real_service.py` has one daemon test per row (a meta test
checks that none is missing), and the soak draws its random faults from the same rows.

Sources are GitHub threads as "owner/repo#N" (issues or pull requests) and Google's pages by name;
live-api-protocol.md (section 8) quotes them. "Inferred" marks where the real code or text is
unknown and the emulator picks one.

The rows are `ROWS` below (id, what the service does, source, how the emulator produces it, how
pilive ends it); `describe()` renders them as a table.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ROWS", "Row", "describe", "row_ids"]


@dataclass(frozen=True, slots=True)
class Row:
    """One known behaviour of the real service."""

    id: str
    behaviour: str
    source: str
    emulator: str
    outcome: str


ROWS: tuple[Row, ...] = (
    Row(
        id="setup_bad_key",
        behaviour='refuses the setup: 1007 "API key not valid. Please pass a valid API key."',
        source="google-gemini/cookbook#781, livekit/agents#4159",
        emulator="a wrong key",
        outcome=(
            "retries once, then a configuration fault (error earcon, fault LED, STATUS names the "
            "key, slow retry)"
        ),
    ),
    Row(
        id="setup_expired_key",
        behaviour='refuses the setup: 1007 "API key expired. Please renew the API key."',
        source="yagudaev/voiceclaw#155",
        emulator="`Close` at SETUP",
        outcome="as setup_bad_key",
    ),
    Row(
        id="setup_location",
        behaviour='refuses the setup: 1007 "User location is not supported for the API use."',
        source="livekit/agents#7349",
        emulator="`Close` at SETUP",
        outcome="as setup_bad_key",
    ),
    Row(
        id="setup_not_implemented",
        behaviour=(
            'refuses the setup: 1008 "Operation is not implemented, or supported, or enabled."'
        ),
        source="google/adk-python#3964",
        emulator="`Close` at SETUP",
        outcome="as setup_bad_key",
    ),
    Row(
        id="retired_model",
        behaviour=(
            'refuses a shut-down model: 1008 "models/X is not found for API version v1beta, or is '
            'not supported for bidiGenerateContent. Call ListMo" (cut at 123 bytes)'
        ),
        source="deprecations page; googleapis/python-genai#362, #2117",
        emulator="a retired model name",
        outcome="a configuration fault naming the model; `pilive check` names the replacement",
    ),
    Row(
        id="setup_transient",
        behaviour='closes a setup with 1011 "The service is currently unavailable."',
        source="googleapis/python-genai#760",
        emulator="`Close` at SETUP",
        outcome="backs off (jittered, from 1 s) and connects",
    ),
    Row(
        id="mid_session_aborted",
        behaviour='ends a running session with 1008 "The operation was aborted."',
        source="autonomous-os#231, #238",
        emulator="`Close` now",
        outcome="resumes the conversation within ~1 s; not a fault",
    ),
    Row(
        id="mid_session_entity",
        behaviour='ends a running session with 1007 "Requested entity was not found."',
        source="google-gemini/generative-ai-js#487, googleapis/js-genai#1236",
        emulator="`Close` now",
        outcome="as mid_session_aborted",
    ),
    Row(
        id="deadline",
        behaviour=(
            'ends a connection after its lifetime: 1011 "Deadline expired before operation could '
            'complete."'
        ),
        source="kizuna-ai-lab/sokuji#179",
        emulator="`connection_lifetime_s`, `Close`",
        outcome="resumes at once",
    ),
    Row(
        id="handle_expired",
        behaviour='refuses a stale handle: 1008 "Session expired ..." (text inferred)',
        source="client code in issue threads; live-api-protocol.md §8",
        emulator="`handle_rejection`",
        outcome="starts a fresh conversation at once and says the context was lost",
    ),
    Row(
        id="handle_refused_1011",
        behaviour="refuses a stale handle with 1011",
        source="as handle_expired",
        emulator="`handle_rejection` = 1011",
        outcome="retries the handle twice with backoff, then a fresh conversation, said",
    ),
    Row(
        id="resume_while_open",
        behaviour="refuses a resume while the old socket is open: 1011",
        source="aicc2025/sip-to-ai#14",
        emulator="`resume_takeover=False` and a stalled old socket",
        outcome=(
            "closes the old socket first; a refusal is retried, bounded; the conversation carries "
            "on or restarts, said"
        ),
    ),
    Row(
        id="go_away_long_notice",
        behaviour='sends goAway with timeLeft "300s" about 1 s after setup',
        source="livekit/agents-js#2507",
        emulator="`GoAway(300)`",
        outcome=(
            "no reconnect now; hands over at a turn boundary within 60 s of the deadline: one "
            "extra connection, not hundreds"
        ),
    ),
    Row(
        id="go_away_then_silent",
        behaviour="goes silent after goAway until the deadline",
        source="tau2-bench#461",
        emulator="`GoAway(then_silent=True)`",
        outcome=(
            "a press after the goAway hands over at once; an answer owed on the silent socket is "
            "given up after `answer_timeout_s` and the turn asked again"
        ),
    ),
    Row(
        id="tool_response_unknown_id",
        behaviour="refuses a toolResponse for an id the session does not know: 1007",
        source="SDK types.py (handles not resumable during a function call); inferred",
        emulator="built in",
        outcome="never sends one: results for calls from a lost connection are dropped",
    ),
    Row(
        id="tool_call_cut",
        behaviour="restores a session from before a tool call after a drop during it",
        source="SDK types.py (SessionResumptionUpdate)",
        emulator="`Abort` at TOOL_WAIT",
        outcome=(
            "cancels the tool, replays the question; the model calls the tool again and answers"
        ),
    ),
    Row(
        id="answer_cut",
        behaviour="restores a session from before the question after a drop mid-answer",
        source="SDK types.py (SessionResumptionUpdate)",
        emulator="`Abort` at MODEL_AUDIO",
        outcome="replays the question; the model answers it",
    ),
    Row(
        id="interrupted_without_vad",
        behaviour="sends `interrupted` with automatic activity detection disabled",
        source="pipecat-ai/pipecat#4131",
        emulator="`SendInterrupted`",
        outcome="push-to-talk keeps playing the answer (only the button barges in)",
    ),
    Row(
        id="empty_turn",
        behaviour=(
            "ends a turn with `turnComplete` only, with `turnCompleteReason` and `waitingForInput`"
        ),
        source="SDK types.py (TurnCompleteReason)",
        emulator="`EmptyReply`",
        outcome='the error earcon and a "no answer" journal line with the reason',
    ),
    Row(
        id="interaction_status",
        behaviour="adds `interactionStatus` IN_PROGRESS / IDLE to server content",
        source="SDK live.py `_is_interaction_complete`",
        emulator="`interaction_status=True`",
        outcome="parsed and ignored; turns end at turnComplete",
    ),
    Row(
        id="slow_audio",
        behaviour="sends answer audio slower than real time",
        source="livekit/agents#3604",
        emulator="`reply_speedup` < 1",
        outcome="plays the whole answer; underruns only, nothing dropped, no early end",
    ),
    Row(
        id="burst_audio",
        behaviour="sends answer audio in bursts",
        source="livekit/agents#3604",
        emulator="`reply_burst_chunks`",
        outcome="plays the whole answer in order",
    ),
    Row(
        id="thinking_level",
        behaviour="3.x models take `thinkingLevel`, not `thinkingBudget` (3.8 Live takes none)",
        source="gemini-3.1-flash-live-preview and gemini-3.8-live model pages",
        emulator="refuses the wrong one with 1007 (inferred code)",
        outcome="sends no thinking config; `pilive check` knows each model's kind",
    ),
    Row(
        id="sync_tools_only",
        behaviour=(
            "3.1 Flash Live runs function calls synchronously only; 3.8 Live defaults to "
            "NON_BLOCKING"
        ),
        source="the same model pages",
        emulator="refuses a behavior the model lacks with 1007 (inferred)",
        outcome="declares its (blocking) tools BLOCKING where the default is not",
    ),
    Row(
        id="client_content_refused",
        behaviour="3.1 Flash Live refuses clientContent after the first model turn with 1007",
        source="google-gemini/cookbook#1197, #1263",
        emulator="built in",
        outcome="never sends clientContent (input is realtimeInput)",
    ),
    Row(
        id="no_setup_complete",
        behaviour=(
            "3.1 Flash Live never completes a setup asking for affective dialog or proactive audio"
        ),
        source="Patter#210; livekit/agents#5985",
        emulator="built in; `WithholdSetupComplete`",
        outcome="sends neither; a setup that never completes times out, backs off, STATUS says so",
    ),
    Row(
        id="native_audio_v1alpha",
        behaviour=(
            "takes affective dialog and proactive audio on v1alpha only (2.5 native-audio "
            "models); asked on another API version, the setup is refused"
        ),
        source="Live API capabilities guide (native audio); live-api-protocol.md §3.1",
        emulator="refuses them with 1007 (inferred code)",
        outcome=(
            '`pilive check` says they need api_version = "v1alpha"; the daemon shows the '
            "configuration fault"
        ),
    ),
    Row(
        id="thought_parts",
        behaviour=(
            "a thinking model asked for includeThoughts sends thought summaries as text parts "
            "marked `thought`, before the answer"
        ),
        source="Live API capabilities guide (thinking); SDK types.py (Part.thought)",
        emulator="built in (thinkingConfig.includeThoughts on a thinking model)",
        outcome="logged (one line every few seconds at info), never played; the answer plays",
    ),
    Row(
        id="malformed_frame",
        behaviour="(any hostile or broken peer) sends a frame that is not valid JSON",
        source="robustness, no report",
        emulator="`SendMalformed`",
        outcome="logs it (at most a line a minute) and carries on",
    ),
)


def row_ids() -> frozenset[str]:
    return frozenset(r.id for r in ROWS)


def describe() -> str:
    """The catalogue as a Markdown table (for a closing note, or `python -m`)."""
    lines = ["| id | the service ... | source | emulator | pilive |", "|---|---|---|---|---|"]
    lines += [f"| {r.id} | {r.behaviour} | {r.source} | {r.emulator} | {r.outcome} |" for r in ROWS]
    return "\n".join(lines)


if __name__ == "__main__":
    print(describe())
