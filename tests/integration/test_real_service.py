"""The real service's known behaviour, one daemon test per catalogue row.

Each row of `pilive.emulator.catalogue` (a behaviour reported or documented for the real Live
API, with its source) is produced by the emulator on demand and met here by the real link and
session (`tests.support.link_rig.Harness`) or by the whole appliance in-process
(`pilive.app.App` with gpiozero mock pins, file audio and the synthetic camera). A test names
its row with `@row(...)`; the last test fails if a row has no test.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import wave
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pilive import config_warnings, wiring
from pilive.config import parse_config
from pilive.controls.events import ApplianceState
from pilive.emulator import catalogue
from pilive.emulator.faults import (
    Abort,
    Close,
    EmptyReply,
    GoAway,
    Phase,
    SendInterrupted,
    SendMalformed,
    SendMessages,
    Stall,
    WithholdSetupComplete,
)
from pilive.emulator.options import ToolTrigger
from pilive.live import wire
from pilive.live.events import (
    ConversationReset,
    InteractionStatus,
    LinkState,
    ToolCall,
)
from pilive.live.models import KNOWN_MODELS, find_model
from tests.integration.test_app import app_config, mic_wav, start
from tests.support.emulator_rig import emulator_options, running
from tests.support.link_rig import Harness, speech

F = TypeVar("F", bound=Callable[..., Any])
COVERED: set[str] = set()

ABORTED = "The operation was aborted."
ENTITY = "Requested entity was not found."
DEADLINE = "Deadline expired before operation could complete."
UNAVAILABLE = "The service is currently unavailable."
WEATHER = wire.FunctionDeclaration(
    "get_weather",
    "The weather in a city.",
    {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
)


def row(*ids: str) -> Callable[[F], F]:
    """Mark a test as the daemon test of these catalogue rows."""
    unknown = set(ids) - catalogue.row_ids()
    assert not unknown, f"not catalogue rows: {unknown}"
    COVERED.update(ids)

    def mark(test: F) -> F:
        return test

    return mark


async def answered_turn(h: Harness, seed: int, count: int) -> None:
    """One push-to-talk turn, and wait until the model has answered `count` turns in all."""
    await h.say(speech(0.2, seed))
    await h.until(lambda: h.turn_completes() >= count)


def statuses(h: Harness) -> set[LinkState]:
    return {s.state for s in h.statuses}


# -- setup refused ------------------------------------------------------------------------------


@row("setup_bad_key")
async def test_bad_key_is_a_configuration_fault_after_one_retry() -> None:
    """A wrong key: refused twice in a row, then the configuration fault, slow retry, cause."""
    async with running(emulator_options()) as emu, Harness(emu.url, "not-the-key-01234") as h:
        await h.until(lambda: h.link.status.state is LinkState.CONFIG_FAULT)
        assert h.link.counters.attempts == 2
        assert "API key invalid (1007)" in h.link.status.detail
        assert h.link.status.next_attempt_in_s == 30.0


@row("setup_expired_key", "setup_location", "setup_not_implemented")
@pytest.mark.parametrize(
    ("code", "reason", "cause"),
    [
        (1007, "API key expired. Please renew the API key.", "API key expired (1007)"),
        (1007, "User location is not supported for the API use.", "location not supported"),
        (1008, "Operation is not implemented, or supported, or enabled.", "feature not support"),
    ],
)
async def test_setup_refusals_are_faults_only_when_repeated(
    code: int, reason: str, cause: str
) -> None:
    """Refused once: retried within the backoff and connected, no fault shown. Refused twice in
    a row: the configuration fault naming the cause."""
    async with running(emulator_options()) as emu:
        emu.faults.on(Phase.SETUP, Close(code, reason))
        async with Harness(emu.url, emu.api_key) as h:
            await h.connected()
            assert LinkState.CONFIG_FAULT not in statuses(h)
        emu.faults.on(Phase.SETUP, Close(code, reason))
        emu.faults.on(Phase.SETUP, Close(code, reason))
        async with Harness(emu.url, emu.api_key) as h:
            await h.until(lambda: h.link.status.state is LinkState.CONFIG_FAULT)
            assert cause in h.link.status.detail


@row("retired_model")
async def test_a_retired_model_is_a_configuration_fault_naming_the_model() -> None:
    """A model Google shut down is refused with the real 1008 text: a configuration fault that
    says "model not found"; the model table knows its replacement (what `pilive check` says)."""
    retired = next(m for m in KNOWN_MODELS if m.retired and m.replacement)
    async with (
        running(emulator_options()) as emu,
        Harness(emu.url, emu.api_key, model=retired.name) as h,
    ):
        await h.until(lambda: h.link.status.state is LinkState.CONFIG_FAULT)
        assert "model not found" in h.link.status.detail
        assert emu.recording.connections[0].close_code == 1008
    replacement = find_model(retired.replacement or "")
    assert replacement is not None and not replacement.retired


@row("setup_transient")
async def test_a_setup_closed_as_unavailable_backs_off_and_connects() -> None:
    """1011 "unavailable" before setupComplete: a short backoff, then connected; no fault."""
    async with running(emulator_options()) as emu:
        emu.faults.on(Phase.SETUP, Close(1011, UNAVAILABLE))
        async with Harness(emu.url, emu.api_key) as h:
            await h.connected()
            assert h.link.counters.attempts == 2
            assert LinkState.RECONNECTING in statuses(h)
            assert LinkState.CONFIG_FAULT not in statuses(h)


# -- a running session ends -------------------------------------------------------------------


@row("mid_session_aborted", "mid_session_entity")
@pytest.mark.parametrize(("code", "reason"), [(1008, ABORTED), (1007, ENTITY), (1008, ENTITY)])
async def test_mid_session_refusals_resume_the_conversation_at_once(code: int, reason: str) -> None:
    """A transient 1007/1008 after setupComplete: no fault, the same conversation resumes
    promptly (after a productive connection the backoff starts from its first step, 0.05 s
    here; the unit test holds the exact delay) and the next turn is answered."""
    async with running(emulator_options()) as emu, Harness(emu.url, emu.api_key) as h:
        await h.connected()
        await answered_turn(h, 1, 1)
        await h.until(lambda: h.session.resumption_handle is not None)
        loop = asyncio.get_running_loop()
        emu.faults.close(code, reason)
        closed_at = loop.time()
        await h.until(lambda: h.link.counters.resumes == 1)
        assert loop.time() - closed_at < 5.0  # the policy's delay is unit-tested; this is slack
        assert LinkState.CONFIG_FAULT not in statuses(h)
        await answered_turn(h, 2, 2)
        assert emu.recording.counters["sessions"] == 1


@row("deadline")
async def test_the_connection_lifetime_ends_in_an_immediate_resume() -> None:
    """1011 "Deadline expired" ends a productive connection: resumed at once, same session."""
    async with running(emulator_options()) as emu, Harness(emu.url, emu.api_key) as h:
        await h.connected()
        await answered_turn(h, 1, 1)
        await h.until(lambda: h.session.resumption_handle is not None)
        emu.faults.close(1011, DEADLINE)
        await h.until(lambda: h.link.counters.resumes == 1)
        assert LinkState.RECONNECTING not in statuses(h)  # no backoff wait
        assert emu.recording.counters["sessions"] == 1


# -- stale handles -----------------------------------------------------------------------------


@row("handle_expired")
async def test_an_expired_handle_starts_a_fresh_conversation_and_says_so() -> None:
    """The service refuses the handle as "session expired": one try, then a fresh conversation;
    ConversationReset tells the appliance (the error earcon); the next turn is answered."""
    options = emulator_options(handle_rejection=(1008, "Session expired. Please start again."))
    async with running(options) as emu, Harness(emu.url, emu.api_key) as h:
        await h.connected()
        await answered_turn(h, 1, 1)
        await h.until(lambda: h.session.resumption_handle is not None)
        emu.expire_handles()
        emu.faults.close(1000)
        await h.until(lambda: h.link.counters.fresh_sessions == 2)
        assert h.link.counters.attempts == 3
        assert [e for e in h.events if isinstance(e, ConversationReset)]
        await answered_turn(h, 2, 2)


@row("handle_refused_1011")
async def test_a_handle_refused_with_1011_is_dropped_after_three_tries() -> None:
    """Refused with a bare 1011 (no word about the session): retried twice with backoff, then
    dropped for a fresh conversation. Bounded: never retried forever."""
    options = emulator_options(handle_rejection=(1011, "Internal error encountered."))
    async with running(options) as emu, Harness(emu.url, emu.api_key) as h:
        await h.connected()
        await answered_turn(h, 1, 1)
        await h.until(lambda: h.session.resumption_handle is not None)
        emu.expire_handles()
        emu.faults.close(1000)
        await h.until(lambda: h.link.counters.fresh_sessions == 2)
        assert h.link.counters.attempts == 1 + 3 + 1  # first, three refused resumes, fresh
        assert h.link.counters.handles_rejected == 1
        assert [e for e in h.events if isinstance(e, ConversationReset)]
        await answered_turn(h, 2, 2)
        await asyncio.sleep(0.5)
        assert h.link.counters.attempts == 5


@row("resume_while_open")
async def test_a_resume_refused_while_the_old_socket_lingers_is_bounded() -> None:
    """The old connection stalls (it stays open on the server), the link gives it up after its
    keepalive and resumes; the service refuses a resume while the old socket is attached. The
    link retries a bounded number of times, then starts a fresh conversation, said; it never
    storms, and the speaker answers again."""
    options = emulator_options(resume_takeover=False)
    async with (
        running(options) as emu,
        Harness(emu.url, emu.api_key, ping_interval_s=0.3, ping_timeout_s=0.3) as h,
    ):
        await h.connected()
        await answered_turn(h, 1, 1)
        await h.until(lambda: h.session.resumption_handle is not None)
        emu.faults.now(Stall(None))
        await h.until(lambda: h.link.counters.fresh_sessions == 2 or h.link.counters.resumes > 0)
        assert h.link.counters.attempts <= 5
        if h.link.counters.fresh_sessions == 2:
            assert [e for e in h.events if isinstance(e, ConversationReset)]
        await answered_turn(h, 2, 2)


# -- goAway ------------------------------------------------------------------------------------


@row("go_away_long_notice")
async def test_go_away_with_minutes_of_notice_does_not_reconnect_now() -> None:
    """goAway with a long notice right after every setup: no handover while the deadline is far
    (the storm was 516 connections in 14 s); then one handover at a boundary near the deadline.
    Scaled: 6 s of notice, a 3 s window, a 1 s margin."""
    async with running(emulator_options()) as emu:
        for n in range(1, 6):
            emu.faults.on(Phase.IDLE, GoAway(6.0), connection=n)
        async with Harness(
            emu.url,
            emu.api_key,
            session_options={"handover_margin_s": 1.0, "handover_window_s": 3.0},
        ) as h:
            await h.connected()
            await asyncio.sleep(2.0)
            assert h.link.counters.attempts == 1
            await answered_turn(h, 1, 1)  # the old connection still answers
            await h.until(lambda: h.link.counters.handovers == 1, timeout_s=6)
            await asyncio.sleep(1.0)
            assert h.link.counters.attempts == 2


async def test_go_away_at_once_after_every_setup_cannot_storm() -> None:
    """goAway with a second's notice right after every setup: three immediate handovers, then
    the backoff spaces them (the policy's unit test holds the bound over ten minutes)."""
    async with running(emulator_options()) as emu:
        for n in range(1, 40):
            emu.faults.on(Phase.IDLE, GoAway(1.0), connection=n)
        async with Harness(emu.url, emu.api_key, backoff_initial_s=1.0, backoff_max_s=30.0) as h:
            await asyncio.sleep(4.0)
            assert h.link.counters.attempts <= 9


async def test_bare_turn_completes_do_not_make_connections_look_useful() -> None:
    """A server that answers every setup with a turnComplete nobody asked for, then closes 1000:
    the turnComplete answers no user turn, so the connections are not productive and the
    backoff spaces them (this once made 2456 connections in 5 s)."""
    async with running(emulator_options()) as emu:
        for n in range(1, 60):
            emu.faults.on(
                Phase.IDLE, SendMessages({"serverContent": {"turnComplete": True}}), connection=n
            )
            emu.faults.on(Phase.IDLE, Close(1000), connection=n)
        async with Harness(emu.url, emu.api_key, backoff_initial_s=1.0, backoff_max_s=30.0) as h:
            await asyncio.sleep(4.0)
            assert h.link.counters.attempts <= 9


@row("go_away_then_silent")
async def test_a_press_after_a_silent_go_away_goes_to_the_next_connection() -> None:
    """After goAway the server goes silent: a turn started after it hands over at once and is
    answered on the new connection, not 5 minutes later."""
    async with running(emulator_options()) as emu, Harness(emu.url, emu.api_key) as h:
        await h.connected()
        await answered_turn(h, 1, 1)
        emu.faults.go_away(300.0, then_silent=True)
        await h.until(lambda: h.session.go_away_deadline_s is not None)
        await answered_turn(h, 2, 2)
        assert h.link.counters.handovers == 1


async def test_an_answer_owed_on_a_silent_connection_is_asked_again() -> None:
    """The server goes silent after goAway while the user's turn is in flight: the link gives
    the connection up after answer_timeout_s and the turn is replayed and answered."""
    async with running(emulator_options()) as emu:
        emu.faults.on(Phase.USER_TURN, GoAway(300.0, then_silent=True), turn=2)
        async with Harness(emu.url, emu.api_key, answer_timeout_s=1.0) as h:
            await h.connected()
            await answered_turn(h, 1, 1)
            sent = speech(0.3, 2)
            await h.say(sent)
            await h.until(lambda: h.turn_completes() >= 2, timeout_s=8)
            assert h.link.counters.silent_servers == 1
            assert bytes(emu.recording.session().turns[-1].audio) == sent


# -- tools and cut answers ---------------------------------------------------------------------


@row("tool_call_cut", "tool_response_unknown_id")
async def test_a_drop_during_a_tool_call_asks_the_question_again() -> None:
    """The link drops while a tool runs; the resumed session predates the call. The late result
    is dropped (the service would refuse its unknown id with 1007), the question is replayed, the
    model calls the tool again, and that result gets the answer."""
    options = emulator_options(tool_trigger=ToolTrigger(turns=frozenset({2})))
    async with running(options) as emu:
        emu.faults.on(Phase.TOOL_WAIT, Abort(), turn=2)
        async with Harness(emu.url, emu.api_key, functions=(WEATHER,)) as h:
            await h.connected()
            await answered_turn(h, 1, 1)
            await h.until(lambda: h.session.resumption_handle is not None)
            sent = speech(0.3, 2)
            await h.say(sent)
            await h.until(lambda: h.link.counters.resumes == 1)
            first_call = next(e for e in h.events if isinstance(e, ToolCall)).calls[0]
            h.link.send_tool_response(
                [wire.FunctionResponse(first_call.id, first_call.name, {"result": "late"})]
            )
            await h.until(lambda: sum(isinstance(e, ToolCall) for e in h.events) == 2)
            second = [e for e in h.events if isinstance(e, ToolCall)][1].calls[0]
            h.link.send_tool_response(
                [wire.FunctionResponse(second.id, second.name, {"result": "sunny"})]
            )
            await h.until(lambda: h.turn_completes() >= 2)
            assert h.session.stale_tool_responses == 1
            assert all(c.close_code not in (1007, 1008) for c in emu.recording.connections)
            turn = emu.recording.session().turns[-1]
            assert turn.completed and bytes(turn.audio) == sent
            assert turn.tool_responses == [{"id": second.id, "response": {"result": "sunny"}}]


@row("answer_cut")
async def test_a_drop_mid_answer_gets_the_question_answered() -> None:
    """The connection drops while the model speaks; the resume restores the session from
    before the question; the replayed question is answered (the turn is not lost)."""
    async with running(emulator_options()) as emu:
        emu.faults.on(Phase.MODEL_AUDIO, Abort(), turn=2, at_chunk=2)
        async with Harness(emu.url, emu.api_key) as h:
            await h.connected()
            await answered_turn(h, 1, 1)
            await h.until(lambda: h.session.resumption_handle is not None)
            sent = speech(0.3, 2)
            await h.say(sent)
            await h.until(lambda: h.turn_completes() >= 2)
            session = emu.recording.session()
            assert session.turns[-1].completed and bytes(session.turns[-1].audio) == sent
            assert h.session.turns_replayed == 1


# -- the answer itself -------------------------------------------------------------------------


class Earcons:
    """Which earcons the playback was asked for (the real playback still plays them)."""

    def __init__(self, playback: Any) -> None:
        self.names: list[str] = []
        original = playback.play_earcon

        def play(name: str) -> None:
            self.names.append(name)
            original(name)

        playback.play_earcon = play


def speaker_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


@row("interrupted_without_vad")
async def test_an_interrupted_the_button_did_not_cause_keeps_the_answer(tmp_path: Path) -> None:
    """The server sends `interrupted` mid-answer with its voice detection off: push-to-talk does
    not flush the speaker, the answer plays on to its end."""
    mic_wav(tmp_path / "mic.wav")
    async with running(emulator_options()) as emu:
        emu.faults.on(Phase.MODEL_AUDIO, SendInterrupted(), turn=1, at_chunk=2)
        async with start(app_config(tmp_path, emu), emu.api_key) as r:
            await r.settled()
            await r.hold(1.0)
            await r.until(lambda: "answer played out" in r.timeline, timeout_s=15)
            assert r.app.stats.barge_ins == 0
            assert "barge-in: speaker flushed" not in r.timeline
            assert emu.faults.fired


@row("empty_turn")
@pytest.mark.parametrize("waiting", [False, True])
async def test_a_turn_without_an_answer_is_an_audible_error(tmp_path: Path, waiting: bool) -> None:
    """turnComplete with no content (turnCompleteReason, waitingForInput): the error earcon
    plays and the journal says why; the next turn works."""
    mic_wav(tmp_path / "mic.wav")
    async with running(emulator_options()) as emu:
        emu.faults.on(
            Phase.USER_TURN, EmptyReply("RESPONSE_REJECTED", waiting_for_input=waiting), turn=1
        )
        async with start(app_config(tmp_path, emu), emu.api_key) as r:
            await r.settled()
            earcons = Earcons(r.app.playback)
            await r.hold(0.6)
            await r.until(lambda: "error" in earcons.names, timeout_s=10)
            assert any("no answer" in t and "RESPONSE_REJECTED" in t for t in r.timeline)
            await r.until(lambda: r.state is ApplianceState.IDLE)
            await r.hold(0.6)
            await r.until(lambda: "answer played out" in r.timeline, timeout_s=15)


@row("interaction_status")
async def test_interaction_status_is_read_and_turns_end_at_turn_complete() -> None:
    """Newer servers add interactionStatus: parsed, no protocol error, turns still end."""
    async with (
        running(emulator_options(interaction_status=True)) as emu,
        Harness(emu.url, emu.api_key) as h,
    ):
        await h.connected()
        await answered_turn(h, 1, 1)
        await answered_turn(h, 2, 2)
        assert [e for e in h.events if isinstance(e, InteractionStatus)]
        assert h.link.counters.protocol_errors == 0


@row("slow_audio", "burst_audio")
@pytest.mark.parametrize(
    ("speedup", "burst"), [(0.8, 1), (4.0, 12)], ids=["slower-than-real-time", "bursts"]
)
async def test_slow_or_bursty_answer_audio_plays_whole(
    tmp_path: Path, speedup: float, burst: int
) -> None:
    """Answer audio slower than real time, or in bursts: the whole answer reaches the speaker
    (nothing dropped, no early end of the answer) and the appliance goes back to idle."""
    mic_wav(tmp_path / "mic.wav")
    options = emulator_options(reply_speedup=speedup, reply_burst_chunks=burst, time_scale=1.0)
    async with running(options) as emu, start(app_config(tmp_path, emu), emu.api_key) as r:
        await r.settled()
        await r.hold(0.8)
        await r.until(lambda: "answer played out" in r.timeline, timeout_s=20)
        await r.until(lambda: r.state is ApplianceState.IDLE)
        sent_s = sum(
            len(f.message["serverContent"]["modelTurn"]["parts"][0]["inlineData"]["data"])
            * 3
            / 4
            / 2
            / 24000
            for c in emu.recording.connections
            for f in c.sent
            if f.message and "modelTurn" in f.message.get("serverContent", {})
        )
    assert sent_s > 0.8
    assert speaker_seconds(tmp_path / "speaker.wav") >= sent_s - 0.05


# -- the models as they are --------------------------------------------------------------------


def _live_models() -> list[str]:
    return [m.name for m in KNOWN_MODELS if not m.retired]


@row("thinking_level", "sync_tools_only", "client_content_refused")
@pytest.mark.parametrize("model", _live_models())
async def test_the_daemons_setup_is_accepted_by_every_current_model(
    tmp_path: Path, model: str
) -> None:
    """The setup the daemon builds from its configuration (with a tool) is accepted by each
    current model's rules in the emulator (no thinking config a model refuses, tool behaviour
    declared where its default is not blocking, no clientContent ever), and two turns with a
    tool call are answered."""
    options = emulator_options(tool_trigger=ToolTrigger(turns=frozenset({2})))
    async with running(options) as emu:
        config = parse_config(
            f'[live]\nendpoint = "{emu.url}"\napi_key = "{emu.api_key}"\nmodel = "{model}"\n'
            '[tools]\nbuiltin = ["device_status"]\n',
            source="t.toml",
            base_dir=tmp_path,
            environ={},
        )
        setup = wiring.setup_options(config, [_device_status_declaration()])
        async with Harness(
            emu.url, emu.api_key, model=model, functions=setup.function_declarations
        ) as h:
            await h.connected()
            await answered_turn(h, 1, 1)
            await h.say(speech(0.2, 2))
            await h.until(lambda: any(isinstance(e, ToolCall) for e in h.events))
            call = next(e for e in h.events if isinstance(e, ToolCall)).calls[0]
            h.link.send_tool_response([wire.FunctionResponse(call.id, call.name, {"ok": 1})])
            await h.until(lambda: h.turn_completes() >= 2)
            assert all(c.close_code is None for c in emu.recording.connections[:-1] or [])
            assert h.link.counters.attempts == 1
    found = find_model(model)
    assert found is not None
    declared = setup.function_declarations[0].behavior
    assert declared == ("BLOCKING" if found.default_tool_behavior != "BLOCKING" else None)


def _device_status_declaration() -> Any:
    from pilive.tools.base import declaration_of
    from pilive.tools.builtin import DeviceStatusTool

    return declaration_of(DeviceStatusTool(lambda: {"volume_percent": 50}))


@row("no_setup_complete")
async def test_a_setup_that_never_completes_backs_off_and_says_so() -> None:
    """A setup the server never answers (3.1 with affective dialog or proactivity): the link
    gives it up after connect_timeout_s, STATUS names it, and the next try connects."""
    async with running(emulator_options()) as emu:
        emu.faults.on(Phase.SETUP, WithholdSetupComplete())
        async with Harness(emu.url, emu.api_key, connect_timeout_s=0.5) as h:
            await h.connected()
            assert any("no setupComplete within" in s.detail for s in h.statuses)
            assert h.link.counters.attempts == 2


@row("malformed_frame")
async def test_a_flood_of_malformed_frames_is_survived_with_few_log_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fifty malformed frames: each counted, the journal gets one line (rate-limited), the
    conversation goes on."""
    caplog.set_level(logging.WARNING, logger="pilive.net")
    async with running(emulator_options()) as emu, Harness(emu.url, emu.api_key) as h:
        await h.connected()
        for _ in range(50):
            emu.faults.now(SendMalformed("json"))
        await h.until(lambda: h.link.counters.protocol_errors == 50)
        await answered_turn(h, 1, 1)
    lines = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 1


# -- what the setup asks of the model ----------------------------------------------------------

NATIVE_AUDIO = "gemini-2.5-flash-native-audio-preview-12-2025"


@row("native_audio_v1alpha")
async def test_affective_dialog_off_v1alpha_is_said_and_a_configuration_fault(
    tmp_path: Path,
) -> None:
    """affective_dialog on v1beta: `pilive check` says it needs v1alpha; the daemon's setup is
    refused (1007) and, refused again, shown as the configuration fault. On v1alpha the same
    setup is taken and a turn answered."""
    mic_wav(tmp_path / "mic.wav")
    async with running(emulator_options()) as emu:
        base = app_config(tmp_path, emu)
        live = replace(base.live, model=NATIVE_AUDIO, affective_dialog=True, proactive_audio=True)
        config = replace(base, live=live)
        assert any(
            'needs api_version = "v1alpha"' in w for w in config_warnings.model_warnings(config)
        )
        async with start(config, emu.api_key) as r:
            await r.until(lambda: r.state is ApplianceState.CONFIG_FAULT)
            assert "(1007)" in r.app._status_text()
        refused = emu.recording.connections[-1]
        assert refused.setup is not None
        assert refused.setup["generationConfig"]["enableAffectiveDialog"] is True
        alpha = replace(config, live=replace(live, api_version="v1alpha"))
        assert config_warnings.model_warnings(alpha) == []
        async with start(alpha, emu.api_key) as r:
            await r.settled()
            await r.hold(0.6)
            await r.until(lambda: emu.recording.counters["turns"] == 1, timeout_s=15)
            await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)


def _model_parts(emu: Any) -> list[dict[str, Any]]:
    """Every modelTurn part the emulator sent, in order."""
    parts: list[dict[str, Any]] = []
    for connection in emu.recording.connections:
        for frame in connection.sent:
            content = (frame.message or {}).get("serverContent", {})
            parts += content.get("modelTurn", {}).get("parts", [])
    return parts


@row("thought_parts")
async def test_thoughts_are_logged_never_played_and_the_answer_plays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """include_thoughts on a thinking model: the emulator sends thought parts before each
    answer. What reaches the speaker (every playback write) is exactly the answer audio the
    server sent, byte for byte, and nothing else; the thoughts are in the log (one at info,
    the rest at debug within the interval) and the answer plays out."""
    caplog.set_level(logging.DEBUG, logger="pilive")
    mic_wav(tmp_path / "mic.wav")
    async with running(emulator_options()) as emu:
        base = app_config(tmp_path, emu)
        live = replace(base.live, model=NATIVE_AUDIO, thinking_budget=-1, include_thoughts=True)
        async with start(replace(base, live=live), emu.api_key) as r:
            await r.settled()
            written: list[bytes] = []
            write = r.app.playback.write

            def spy(pcm: bytes, rate_hz: int = wire.OUTPUT_AUDIO_RATE_HZ) -> None:
                written.append(bytes(pcm))
                write(pcm, rate_hz)

            r.app.playback.write = spy  # type: ignore[method-assign]
            await r.hold(0.8)
            await r.until(lambda: "answer played out" in r.timeline, timeout_s=15)
            await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)
        sent = _model_parts(emu)
    thoughts = [p["text"] for p in sent if p.get("thought")]
    assert len(thoughts) == 2 and [bool(p.get("thought")) for p in sent[:3]] == [True, True, False]
    answer = b"".join(base64.b64decode(p["inlineData"]["data"]) for p in sent if "inlineData" in p)
    assert written and b"".join(written) == answer
    lines = [rec for rec in caplog.records if rec.getMessage().startswith("thought: ")]
    assert [rec.getMessage() for rec in lines] == [f"thought: {t}" for t in thoughts]
    assert [rec.levelno for rec in lines] == [logging.INFO, logging.DEBUG]
    spoken = [rec.getMessage() for rec in caplog.records if "transcript:" in rec.getMessage()]
    assert not any("Planning the answer" in line for line in spoken)


def test_every_catalogue_row_has_a_daemon_test() -> None:
    """The catalogue and this module stay in step: no behaviour without its test."""
    assert catalogue.row_ids() - COVERED == set()
