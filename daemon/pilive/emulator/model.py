"""The conversation model of one connection, sans-I/O: client frames and `now` in, outputs out.

`receive_data(data, now)` and `tick(now)` advance it; `data_to_send()` hands back, in order, the
server messages to send and the phase marks where the fault script may act; `close_to_send` says
when and how the connection must close; `next_deadline()` says when `tick` is next due. The
asyncio shell in server.py does nothing else, so every behaviour here is testable synchronously.

The setup is checked against the model's row in `pilive.live.models`, the way the service is
reported to treat each model (live-api-protocol.md section 8). Where the reports say "refused"
without the close frame, the emulator answers 1007 "Request contains an invalid argument.", the
service's usual text for a field it does not accept: an inference, marked so where it is made.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

from pilive.emulator import replies, usage
from pilive.emulator.authtokens import AuthTokens
from pilive.emulator.faults import Phase
from pilive.emulator.frames import (
    DEFAULT_INPUT_RATE_HZ,
    INVALID_ARGUMENT,
    ActivityEnd,
    ActivityStart,
    Audio,
    AudioStreamEnd,
    ClientContent,
    ProtocolViolation,
    RealtimeInput,
    Setup,
    Text,
    ToolResponse,
    Video,
    invalid,
    parse_client_frame,
)
from pilive.emulator.media import image_size, tone_pcm
from pilive.emulator.options import EmulatorOptions
from pilive.emulator.recording import ConnectionRecord, ReceivedFrame
from pilive.emulator.sessions import (
    MODEL_CHANGED,
    SESSION_BUSY,
    HandleRejected,
    SessionRegistry,
    SessionState,
    TurnRecord,
)
from pilive.emulator.vad import SENSITIVITY_OFFSET_DB, EnergyVad
from pilive.live.models import DYNAMIC_THINKING_BUDGET, LiveModel, find_model

DEADLINE_EXPIRED = "Deadline expired before operation could complete."
REASON_LIMIT_BYTES = 123  # WebSocket close reasons are cut to 123 bytes
_IDLE_STREAM_KEEP_BYTES = (
    DEFAULT_INPUT_RATE_HZ * 2 * 2
)  # hands-free: keep 2 s of audio before speech starts


def cut_reason(reason: str) -> str:
    return reason.encode("utf-8")[:REASON_LIMIT_BYTES].decode("utf-8", errors="ignore")


# A name the emulator is told to serve but the model table does not know gets this row's rules.
_FALLBACK_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
ONLY_ACTIVITY = "TURN_INCLUDES_ONLY_ACTIVITY"
ALL_INPUT = "TURN_INCLUDES_ALL_INPUT"


def _check_sampling(setup: Setup) -> None:
    """generationConfig sampling out of its documented range: 1007 (the code is inferred, as for
    any field the service cannot take)."""
    for where, value, high in (
        ("temperature", setup.temperature, 2.0),
        ("topP", setup.top_p, 1.0),
    ):
        if value is not None and not 0.0 <= value <= high:
            raise invalid(f"generationConfig.{where} {value:g} is not between 0 and {high:g}")
    for where, count in (("topK", setup.top_k), ("maxOutputTokens", setup.max_output_tokens)):
        if count is not None and count < 1:
            raise invalid(f"generationConfig.{where} {count} must be at least 1")


def model_not_found(model: str, api_version: str) -> ProtocolViolation:
    reason = (
        f"models/{model} is not found for API version {api_version}, or is not supported for "
        "bidiGenerateContent. Call ListModels to see the list of available models and their "
        "supported methods."
    )
    return ProtocolViolation(1008, cut_reason(reason), "unknown model")


@dataclass(frozen=True)
class Send:
    """A server message to send as one binary frame."""

    message: dict[str, Any]


@dataclass(frozen=True)
class Mark:
    """A point where the fault script may act (`turn` and `chunk` as in faults.FaultRule)."""

    phase: Phase
    turn: int
    chunk: int = 0


Output = Send | Mark


@dataclass(frozen=True)
class _Finish:
    """End of a reply: the turn is complete, a fresh handle is issued."""


@dataclass(frozen=True)
class _Complete:
    """The reply's turnComplete, with the usage of what was sent (counted as it went out)."""


@dataclass(frozen=True)
class _Silence:
    """From here on nothing is sent (GoAway(then_silent=True))."""


_Step = tuple[float, Send | Mark | _Finish | _Complete]


class ConnectionModel:
    def __init__(
        self,
        options: EmulatorOptions,
        registry: SessionRegistry,
        record: ConnectionRecord,
        now: float,
        *,
        auth_error: ProtocolViolation | None = None,
        ephemeral_token: str | None = None,
        auth_tokens: AuthTokens | None = None,
    ) -> None:
        self.options = options
        self.registry = registry
        self.record = record
        self.opened_at_s = now
        self._auth_error = auth_error
        self._token = ephemeral_token
        self._auth_tokens = auth_tokens  # the registry that minted the token
        self.setup: Setup | None = None
        self.profile: LiveModel | None = None  # the model's row, once the setup names one
        self.session: SessionState | None = None
        self.close_to_send: tuple[int, str] | None = None
        self.violation: ProtocolViolation | None = None  # why the model closed, with a detail
        self.withheld: str | None = None  # why the setup is never answered
        self.busy_session: str | None = None  # a resume found the session attached elsewhere
        self._outputs: deque[Output | _Silence] = deque()
        self._silent = False
        self._silent_after_go_away = False
        self._activity: TurnRecord | None = None
        self._marked: TurnRecord | None = None  # the turn whose USER_TURN mark went out
        self._content: TurnRecord | None = None
        self._coverage = ONLY_ACTIVITY
        self._pending_video: list[tuple[int, int] | None] = []
        self._pending_audio = bytearray()
        self._pending_audio_rate_hz = DEFAULT_INPUT_RATE_HZ
        self._undone: list[TurnRecord] = []  # turns a resume rolled back
        self._steps: deque[_Step] = deque()
        self._reply_turn: TurnRecord | None = None
        self._costs = usage.SetupCosts()  # what the setup adds to every turn's bill
        self._meter: tuple[TurnRecord, usage.ReplyMeter] | None = None  # the model turn billed
        self._tool_wait: dict[str, str] = {}  # BLOCKING call id -> function name
        self._async_calls: dict[str, TurnRecord] = {}  # NON_BLOCKING call id -> its turn
        self._results: deque[tuple[TurnRecord, str]] = deque()  # tool results still to speak
        self._empty_reply: tuple[str | None, bool] | None = None
        self._queued: deque[TurnRecord] = deque()
        self._vad: EnergyVad | None = None
        self._stream = bytearray()
        self._stream_base = 0
        self._vad_start: int | None = None
        self._go_away_at: float | None = None
        self._go_away_left_s = 0.0
        self._close_at = now + options.scaled(options.connection_lifetime_s)
        self._close_reason = DEADLINE_EXPIRED

    # --- the sans-I/O surface ------------------------------------------------------------------

    def data_to_send(self) -> list[Output]:
        out: list[Output] = []
        for item in self._outputs:
            if isinstance(item, _Silence):
                self._silent = True
            elif isinstance(item, Mark):
                out.append(item)
            elif not self._silent:
                out.append(self._with_interaction_status(item))
        self._outputs.clear()
        return out

    def next_deadline(self) -> float | None:
        if self.close_to_send is not None:
            return None
        times = [self._close_at]
        if self._go_away_at is not None:
            times.append(self._go_away_at)
        if self._steps:
            times.append(self._steps[0][0])
        limit = self._session_limit_at()
        if limit is not None:
            times.append(limit)
        return min(times)

    def receive_data(self, data: str | bytes, now: float) -> None:
        self._record_frame(data, now)
        if self.close_to_send is None:
            self._process(data, now)

    def retry_busy_setup(self, data: str | bytes, now: float) -> None:
        """The session a resume found busy is free now: take the same setup again."""
        if self.busy_session is None:
            raise RuntimeError("retry_busy_setup without a busy resume")
        self.busy_session = None
        self.close_to_send = None
        self.violation = None
        self._outputs.clear()
        self._process(data, now)

    def _process(self, data: str | bytes, now: float) -> None:
        if self.withheld is not None:
            return  # a withheld setup: the service never answers, whatever follows
        try:
            if self._auth_error is not None:
                raise self._auth_error
            if self.setup is None and self._token is not None and self._auth_tokens is not None:
                data = self._auth_tokens.constrain(self._token, data, now)
            message = parse_client_frame(data)
            if self.setup is None:
                if not isinstance(message, Setup):
                    raise invalid("the first message must be setup")
                self._receive_setup(message, now)
            elif isinstance(message, Setup):
                raise invalid("setup may only be sent once")
            elif isinstance(message, RealtimeInput):
                for event in message.events:
                    self._receive_realtime(event, now)
            elif isinstance(message, ClientContent):
                self._receive_client_content(message, now)
            else:
                self._receive_tool_response(message, now)
        except ProtocolViolation as exc:
            if self.violation is None:
                self.violation = exc
            self._close(exc.code, exc.reason)
        self.tick(now)

    def tick(self, now: float) -> None:
        """Send what is due: reply steps, goAway, and the connection and session deadlines."""
        if self.close_to_send is not None:
            return
        while self._steps and self._steps[0][0] <= now:
            _, step = self._steps.popleft()
            if isinstance(step, _Finish):
                self._finish_reply(now)
            elif isinstance(step, _Complete):
                self._outputs.append(Send(replies.turn_complete_message(self._close_meter())))
            else:
                if self._meter is not None and isinstance(step, Send):
                    self._meter[1].sent(step.message)
                self._outputs.append(step)
        if self._go_away_at is not None and now >= self._go_away_at:
            # The nominal time left (a late wake-up must not turn "50s" into "49.997s").
            self._go_away_at = None
            self._outputs.append(Send(replies.go_away_message(self._go_away_left_s)))
            if self._silent_after_go_away:
                self._outputs.append(_Silence())
        limit = self._session_limit_at()
        if limit is not None and now >= limit and self.session is not None:
            self.session.ended = True  # its handles die with it
            self._close(1011, DEADLINE_EXPIRED)
        elif now >= self._close_at:
            self._close(1011, self._close_reason)

    def send_go_away(self, time_left_s: float, now: float, then_silent: bool = False) -> None:
        """goAway now; the connection ends `time_left_s` (real seconds) later. `then_silent`:
        nothing more is sent after the goAway until that close (tau2-bench#461)."""
        self._close_at = min(self._close_at, now + time_left_s)
        self._go_away_at = now
        self._go_away_left_s = time_left_s
        self._silent_after_go_away = then_silent

    def send_interrupted(self, now: float, end_reply: bool = False) -> None:
        """`interrupted` though nothing interrupted (pipecat PR #4131). `end_reply`: the current
        reply stops and its turn ends as on a barge-in; otherwise it carries on."""
        if end_reply and self._reply_turn is not None:
            self._interrupt(now, forced=True)
        else:
            self._outputs.append(Send({"serverContent": {"interrupted": True}}))

    def empty_next_reply(self, reason: str | None, waiting_for_input: bool) -> None:
        """The next reply is only a turnComplete (with `turnCompleteReason` unless None)."""
        self._empty_reply = (reason, waiting_for_input)

    def setup_refused(self) -> None:
        """The fault script refused this setup after the model had accepted it (the close went
        out instead of setupComplete): a resume that never happened is undone."""
        if self.session is not None and self.record.resumed:
            self.record.resumed = False
            self.session.resumes -= 1
            self.registry.unrestore(self.session, self._undone)
            self._undone = []

    def connection_closed(self, code: int | None, reason: str, closed_by: str) -> None:
        """The socket is gone: detach the session so a resume may take it over."""
        if self.record.close_code is None:
            self.record.close_code = code
            self.record.close_reason = reason
            self.record.closed_by = closed_by
        if (
            self.session is not None
            and self.session.attached_connection == self.record.connection_id
        ):
            self.session.attached_connection = None

    @property
    def completed_turns(self) -> int:
        return self.session.turn_count if self.session is not None else 0

    # --- setup ---------------------------------------------------------------------------------

    def _receive_setup(self, setup: Setup, now: float) -> None:
        name = setup.model.removeprefix("models/")
        profile = self._profile(name)
        if profile is None:
            raise model_not_found(name, self.record.api_version)
        withheld = self._check_features(setup, profile)
        if withheld is not None:
            self.withheld = self.record.setup_withheld = withheld
            return
        record = self.record
        if setup.resume_handle is not None:
            try:
                session = self.registry.resolve(setup.resume_handle, now)
            except HandleRejected as exc:
                code, reason = self.options.handle_rejection
                raise ProtocolViolation(code, reason, exc.detail) from None
            if session.model != name:
                raise ProtocolViolation(1007, MODEL_CHANGED, "the model cannot change on resume")
            if session.attached_connection is not None:
                self.busy_session = session.session_id
                raise ProtocolViolation(1011, SESSION_BUSY, "session attached to another socket")
            self._undone = self.registry.restore(setup.resume_handle, session)
            session.resumes += 1
            record.resumed = True
        else:
            if self._token is not None and self._auth_tokens is not None:
                self._auth_tokens.spend(self._token, record.connection_id)
            session = self.registry.new_session(name, now)
        self.setup = setup
        self.profile = profile
        self._costs = usage.SetupCosts.of(
            setup.system_instruction,
            [{"name": f.name, "parameters": f.parameters} for f in setup.functions],
            setup.media_resolution,
            setup.compression_tokens,
        )
        self._coverage = setup.turn_coverage or profile.default_turn_coverage
        self.session = session
        session.attached_connection = record.connection_id
        session.connection_ids.append(record.connection_id)
        record.session_id = session.session_id
        if setup.automatic_activity_detection:
            threshold = self.options.vad_threshold_dbfs + SENSITIVITY_OFFSET_DB.get(
                setup.start_sensitivity, 0.0
            )
            prefix_ms = setup.prefix_padding_ms
            silence_ms = setup.silence_duration_ms
            self._vad = EnergyVad(
                DEFAULT_INPUT_RATE_HZ,
                threshold,
                self.options.vad_prefix_padding_ms if prefix_ms is None else prefix_ms,
                self.options.vad_silence_ms if silence_ms is None else silence_ms,
            )
        lead = self.options.scaled(self.options.go_away_lead_s)
        self._go_away_at = max(now, self._close_at - lead)
        self._go_away_left_s = self._close_at - self._go_away_at
        self._outputs.append(Mark(Phase.SETUP, session.turn_count))
        self._outputs.append(Send({"setupComplete": {}}))
        self._send_handle_update(now)
        self._outputs.append(Mark(Phase.IDLE, session.turn_count))

    def _profile(self, name: str) -> LiveModel | None:
        """The row a served model follows; None for a name not served or a retired model."""
        if name not in self.options.models:
            return None
        known = find_model(name)
        if known is None:
            fallback = find_model(_FALLBACK_MODEL)
            assert fallback is not None
            return replace(fallback, name=name, notes=f"served with the rules of {_FALLBACK_MODEL}")
        return None if known.retired else known

    def _check_features(self, setup: Setup, model: LiveModel) -> str | None:
        """Raise the 1007 the service answers a field the model does not take with; return why
        the setup is withheld (no setupComplete ever), or None when it is accepted."""
        name = model.name
        if setup.response_modalities[0] not in model.response_modalities:
            raise invalid(f"{name} answers only in {'/'.join(model.response_modalities)}")
        # Thinking: 1007 for the knob a model does not have (the exact text is inferred).
        if model.thinking == "none" and setup.thinking_config:
            raise invalid(f"{name} takes no thinkingConfig")
        if model.thinking == "budget" and setup.thinking_level is not None:
            raise invalid(f"{name} takes thinkingBudget, not thinkingLevel")
        budget, top = setup.thinking_budget, model.thinking_budget_max
        if (
            model.thinking == "budget"
            and budget is not None
            and budget != DYNAMIC_THINKING_BUDGET
            and (budget < 0 or (top is not None and budget > top))
        ):
            raise invalid(f"{name} takes thinkingBudget -1 or 0 to {top}, not {budget}")
        if model.thinking == "level":
            if setup.thinking_budget is not None:
                raise invalid(f"{name} takes thinkingLevel, not thinkingBudget")
            level = setup.thinking_level
            if level is not None and level.lower() not in model.thinking_levels:
                raise invalid(f"{name} has no thinkingLevel {level}")
        for function in setup.functions:
            if function.behavior is not None and function.behavior not in model.tool_behaviors:
                raise invalid(
                    f"{name} does not take behavior {function.behavior} ({function.name})"
                )
        _check_sampling(setup)
        v1alpha = self.record.api_version == "v1alpha"
        withheld: str | None = None
        affective = setup.affective_dialog
        if model.affective_dialog == "removed" and affective is not None:
            raise invalid(f"enableAffectiveDialog was removed from {name}")
        if model.affective_dialog == "v1alpha" and affective and not v1alpha:
            raise invalid("enableAffectiveDialog needs v1alpha")  # inferred code and text
        if model.affective_dialog == "unsupported" and affective:
            withheld = f"{name} does not support affective dialog"
        proactive = setup.proactive_audio
        if model.proactive_audio == "always-on" and proactive is False:
            raise invalid(f"proactive audio cannot be turned off on {name}")
        if model.proactive_audio == "v1alpha" and proactive and not v1alpha:
            raise invalid("proactivity needs v1alpha")  # inferred code and text
        if model.proactive_audio == "unsupported" and proactive:
            withheld = withheld or f"{name} does not support proactive audio"
        return withheld

    @property
    def _thoughts(self) -> bool:
        """Thought summaries go before each answer: asked for, and the model thinks."""
        setup, profile = self.setup, self.profile
        return (
            setup is not None
            and profile is not None
            and setup.include_thoughts
            and profile.thinks(setup.thinking_budget)
        )

    def _session_limit_at(self) -> float | None:
        if self.setup is None or self.session is None or self.setup.context_window_compression:
            return None
        opts = self.options
        limit = opts.video_session_limit_s if self.session.has_video else opts.audio_session_limit_s
        return self.session.created_at_s + opts.scaled(limit)

    # --- user input ----------------------------------------------------------------------------

    def _receive_realtime(self, event: object, now: float) -> None:
        assert self.setup is not None
        auto = self.setup.automatic_activity_detection
        if isinstance(event, ActivityStart | ActivityEnd):
            if auto:
                raise ProtocolViolation(
                    1007,
                    INVALID_ARGUMENT,
                    "activityStart/activityEnd need automaticActivityDetection.disabled",
                )
            if isinstance(event, ActivityStart):
                if self._activity is None:
                    self._begin_activity("activity", now)
            elif self._activity is not None:
                turn, self._activity = self._activity, None
                self._end_user_turn(turn, now)
        elif isinstance(event, Audio):
            self.record.audio_chunks.append(event.data)
            if auto:
                self._receive_hands_free_audio(event, now)
            elif self._activity is not None:
                self._add_activity_audio(self._activity, event.data, event.rate_hz)
            elif self._coverage == ALL_INPUT:
                # Audio between activities belongs to the next turn (TURN_INCLUDES_ALL_INPUT).
                if self._pending_audio_rate_hz != event.rate_hz:
                    self._pending_audio.clear()
                self._pending_audio_rate_hz = event.rate_hz
                self._pending_audio += event.data
        elif isinstance(event, Video):
            self._receive_video(event)
        elif isinstance(event, Text):
            if self._activity is not None:
                self._activity.texts.append(event.text)
            else:
                turn = self._new_turn("text")
                turn.texts.append(event.text)
                self._interrupt(now)
                self._end_user_turn(turn, now)
        elif isinstance(event, AudioStreamEnd):
            self._receive_audio_stream_end(now)

    def _receive_audio_stream_end(self, now: float) -> None:
        """The mic was switched off: the server flushes the audio it holds. A turn still in
        speech ends there, and the voice detector starts afresh with the next audio (which
        reopens the stream). Without automatic activity detection it means nothing."""
        assert self.setup is not None
        self.record.audio_stream_ends += 1
        if self.setup.automatic_activity_detection and self._vad is not None:
            if self._activity is not None and self._vad_start is not None:
                self._end_vad_turn(self._vad.position_bytes, now)
            self._vad.reset()
            self._stream.clear()
            self._stream_base = self._vad.position_bytes
            self._vad_start = None

    def _new_turn(self, source: str) -> TurnRecord:
        assert self.session is not None
        turn = TurnRecord(self.session.turn_count + 1, self.record.connection_id, source)
        turn.video_sizes.extend(self._pending_video)
        self._pending_video.clear()
        if self._pending_audio:
            turn.audio += self._pending_audio
            turn.audio_rate_hz = self._pending_audio_rate_hz
            self._pending_audio.clear()
        return turn

    def _begin_activity(self, source: str, now: float) -> TurnRecord:
        self._activity = self._new_turn(source)
        self._interrupt(now)
        return self._activity

    def _add_activity_audio(self, turn: TurnRecord, pcm: bytes, rate_hz: int) -> None:
        if self._marked is not turn:
            self._marked = turn
            if not turn.audio:
                turn.audio_rate_hz = rate_hz
            self._outputs.append(Mark(Phase.USER_TURN, turn.number))
        turn.audio += pcm

    def _receive_hands_free_audio(self, audio: Audio, now: float) -> None:
        assert self._vad is not None
        if audio.rate_hz != self._vad.rate_hz:
            raise invalid("hands-free audio must be 16 kHz")
        self._stream += audio.data
        for event in self._vad.process(audio.data):
            if event.kind == "start":
                self._vad_start = event.offset_bytes
                turn = self._begin_activity("vad", now)
                start = max(0, event.offset_bytes - self._stream_base)
                self._add_activity_audio(turn, bytes(self._stream[start:]), audio.rate_hz)
            elif self._activity is not None:
                self._end_vad_turn(event.offset_bytes, now)
        if self._activity is not None and self._vad_start is not None:
            # Keep the turn's audio equal to the stream since speech started.
            self._activity.audio = bytearray(self._stream[self._vad_start - self._stream_base :])
        elif len(self._stream) > _IDLE_STREAM_KEEP_BYTES:
            drop = len(self._stream) - _IDLE_STREAM_KEEP_BYTES
            del self._stream[:drop]
            self._stream_base += drop

    def _end_vad_turn(self, end_offset: int, now: float) -> None:
        assert self._activity is not None and self._vad_start is not None
        turn, self._activity = self._activity, None
        begin = self._vad_start - self._stream_base
        turn.audio = bytearray(self._stream[begin : end_offset - self._stream_base])
        del self._stream[: end_offset - self._stream_base]
        self._stream_base = end_offset
        self._vad_start = None
        self._end_user_turn(turn, now)

    def _receive_video(self, video: Video) -> None:
        assert self.session is not None
        self.session.has_video = True
        size = image_size(video.data)
        if self._activity is not None:
            self._activity.video_sizes.append(size)
        elif self._coverage != ONLY_ACTIVITY:
            # TURN_INCLUDES_ALL_INPUT and ..._AUDIO_ACTIVITY_AND_ALL_VIDEO: the next turn has it.
            self._pending_video.append(size)

    def _receive_client_content(self, content: ClientContent, now: float) -> None:
        assert self.profile is not None and self.session is not None
        if not self.profile.client_content_after_first_turn and any(
            t.completed or t.interrupted for t in self.session.turns
        ):
            # Reported as 1007 (cookbook#1197, #1263); the reason text is inferred.
            raise invalid(f"{self.profile.name} takes clientContent only before its first turn")
        # clientContent is appended to the history and interrupts any generation [proto].
        self._interrupt(now)
        if self._content is None:
            self._content = self._new_turn("client_content")
        turn = self._content
        turn.texts.extend(content.texts)
        for audio in content.audio:
            self._add_activity_audio(turn, audio.data, audio.rate_hz)
        for video in content.videos:
            turn.video_sizes.append(image_size(video.data))
        if content.turn_complete:
            self._content = None
            self._end_user_turn(turn, now)

    def _end_user_turn(self, turn: TurnRecord, now: float) -> None:
        assert self.session is not None and self.setup is not None
        turn.number = self.session.turn_count + 1
        turn.tokens.update(
            usage.input_tokens(
                len(turn.audio),
                turn.audio_rate_hz,
                turn.video_sizes,
                turn.texts,
                self._costs.media_resolution,
            )
        )
        self.session.turns.append(turn)
        if self.setup.input_transcription:
            text = replies.input_transcript(turn)
            self._outputs.append(Send(replies.transcription_message("inputTranscription", text)))
        if self._reply_turn is not None or self._tool_wait:
            self._queued.append(turn)  # NO_INTERRUPTION: answered after the current reply
        else:
            self._start_model_turn(turn, now)

    # --- the model's turn ----------------------------------------------------------------------

    def _start_model_turn(self, turn: TurnRecord, now: float) -> None:
        assert self.setup is not None and self.session is not None
        self._reply_turn = turn
        if self._empty_reply is not None:
            reason, waiting = self._empty_reply
            self._empty_reply = None
            self._plan_empty_reply(turn, now, reason, waiting)
            return
        self._open_meter(turn)
        self._send_not_resumable()
        trigger = self.options.tool_trigger
        if self.setup.functions and trigger.fires_on(turn.number) and not turn.tool_calls:
            decl = self.setup.functions[0]
            if trigger.function is not None:
                named = [f for f in self.setup.functions if f.name == trigger.function]
                if not named:
                    self._plan_parrot_reply(turn, now, None)
                    return
                decl = named[0]
            args = (
                dict(trigger.args)
                if trigger.args is not None
                else replies.made_up_args(decl, turn.number)
            )
            call_id = self.registry.new_call_id(self.session, turn.number)
            call = {"id": call_id, "name": decl.name, "args": args}
            turn.tool_calls.append(call)
            message = {"toolCall": {"functionCalls": [call]}}
            if self._meter is not None:
                self._meter[1].sent(message)
            self._outputs.append(Send(message))
            self._outputs.append(Mark(Phase.TOOL_WAIT, turn.number))
            assert self.profile is not None
            if (decl.behavior or self.profile.default_tool_behavior) == "NON_BLOCKING":
                # The model talks on while the function runs; its result comes when it comes.
                self._async_calls[call_id] = turn
                self._plan_parrot_reply(turn, now, None)
            else:
                self._tool_wait[call_id] = decl.name
            return
        self._plan_parrot_reply(turn, now, None)

    def _plan_parrot_reply(self, turn: TurnRecord, now: float, tool_said: str | None) -> None:
        """The answer to a user turn: a tone, then the user's own audio."""
        opts = self.options
        pcm = replies.reply_audio(turn, opts.tone_ms, opts.tone_hz)
        self._plan_reply(turn, now, replies.describe_turn(turn, tool_said), pcm)

    def _start_result_reply(self, turn: TurnRecord, said: str, now: float) -> None:
        """A NON_BLOCKING function's result spoken in a model turn of its own: a tone."""
        self._reply_turn = turn
        self._open_meter(turn, usage.text_tokens(said))
        self._send_not_resumable()
        pcm = tone_pcm(self.options.tone_ms, self.options.tone_hz)
        self._plan_reply(turn, now, replies.tool_result_text(turn, said), pcm)

    def _plan_reply(self, turn: TurnRecord, now: float, text: str, pcm: bytes) -> None:
        assert self.setup is not None
        opts = self.options
        start = now + opts.scaled(opts.reply_delay_s)
        steps: list[_Step] = []
        if self._thoughts:
            steps += [(start, Send(replies.thought_message(t))) for t in replies.thoughts(text)]
        if self.setup.text_replies:
            steps.append((start, Send(replies.text_message(text))))
            steps.append((start, Mark(Phase.MODEL_AUDIO, turn.number, 1)))
            end = start
        else:
            chunks = replies.chunk_pcm(pcm, opts.reply_chunk_ms)
            interval = opts.scaled(opts.reply_chunk_ms / 1000 / opts.reply_speedup)
            burst = opts.reply_burst_chunks
            due = start
            for i, chunk in enumerate(chunks):
                # `burst` chunks back to back, then a pause as long as they play (at the speed-up).
                due = start + (i // burst) * burst * interval
                steps.append((due, Send(replies.audio_message(chunk))))
                if i == 0 and self.setup.output_transcription:
                    message = replies.transcription_message("outputTranscription", text)
                    steps.append((due, Send(message)))
                steps.append((due, Mark(Phase.MODEL_AUDIO, turn.number, i + 1)))
            end = due
        steps.append((end, Send({"serverContent": {"generationComplete": True}})))
        steps.append((end, _Complete()))
        steps.append((end, _Finish()))
        self._steps.extend(steps)

    def _plan_empty_reply(
        self, turn: TurnRecord, now: float, reason: str | None, waiting: bool
    ) -> None:
        """A reply with no content: only turnComplete (EmptyReply)."""
        turn.empty_reply = True
        content: dict[str, Any] = {"turnComplete": True}
        if reason is not None:
            content["turnCompleteReason"] = reason
        if waiting:
            content["waitingForInput"] = True
        at = now + self.options.scaled(self.options.reply_delay_s)
        self._steps.extend([(at, Send({"serverContent": content})), (at, _Finish())])

    def _finish_reply(self, now: float) -> None:
        turn = self._reply_turn
        self._reply_turn = None
        if turn is not None:
            turn.completed = True
        self._after_model_turn(now)

    def _after_model_turn(self, now: float) -> None:
        self._send_handle_update(now)
        self._outputs.append(Mark(Phase.IDLE, self.completed_turns))
        if self._results:
            turn, said = self._results.popleft()
            self._start_result_reply(turn, said, now)
        elif self._queued:
            self._start_model_turn(self._queued.popleft(), now)

    def _interrupt(self, now: float, *, forced: bool = False, cancel_calls: bool = True) -> None:
        """Barge-in: stop the reply (and cancel the turn's tool calls) unless NO_INTERRUPTION.
        `forced`: a scripted `interrupted` or a function result scheduled INTERRUPT."""
        assert self.setup is not None
        if self._reply_turn is None:
            return
        if self.setup.activity_handling == "NO_INTERRUPTION" and not forced:
            return
        turn, self._reply_turn = self._reply_turn, None
        turn.interrupted = True
        self._steps.clear()
        if cancel_calls:
            ids = list(self._tool_wait)
            ids += [i for i, call_turn in self._async_calls.items() if call_turn is turn]
            self._tool_wait.clear()
            for call_id in ids:
                self._async_calls.pop(call_id, None)
            if ids:
                self._outputs.append(Send({"toolCallCancellation": {"ids": ids}}))
        self._outputs.append(Send({"serverContent": {"interrupted": True}}))
        # Billed for what it read and what went out before the barge-in, no more.
        self._outputs.append(Send(replies.turn_complete_message(self._close_meter())))
        self._after_model_turn(now)

    def _receive_tool_response(self, response: ToolResponse, now: float) -> None:
        assert self.session is not None
        known = {c["id"] for t in self.session.turns for c in t.tool_calls}
        said: list[Any] = []
        for item in response.responses:
            if item.id in self._tool_wait:
                del self._tool_wait[item.id]
                said.append(item.response)
                if self._meter is not None:  # the model reads it in the same turn
                    self._meter[1].tool_use += usage.tool_use_tokens([{"response": item.response}])
            elif item.id in self._async_calls:
                turn = self._async_calls[item.id]
                if not item.will_continue:
                    del self._async_calls[item.id]
                self._schedule_result(turn, item.scheduling, item.response, now)
            elif item.id not in known:
                raise invalid(f"toolResponse for unknown function call id {item.id!r}")
            # A response to a call that was cancelled or lost with a connection is ignored.
            entry: dict[str, Any] = {"id": item.id, "response": item.response}
            if item.scheduling is not None:
                entry["scheduling"] = item.scheduling
            if item.will_continue:
                entry["willContinue"] = True
            for turn in self.session.turns:
                if any(c["id"] == item.id for c in turn.tool_calls):
                    turn.tool_responses.append(entry)
        if said and not self._tool_wait and self._reply_turn is not None:
            text = json.dumps(said[0] if len(said) == 1 else said, sort_keys=True)
            self._plan_parrot_reply(self._reply_turn, now, text)

    def _schedule_result(
        self, turn: TurnRecord, scheduling: str | None, result: dict[str, Any], now: float
    ) -> None:
        """A NON_BLOCKING function's result, by `FunctionResponse.scheduling`: INTERRUPT stops
        the current reply and speaks it; WHEN_IDLE (also when unset, an inference) speaks it
        after the current reply; SILENT takes it in without a word."""
        busy = self._reply_turn is not None or bool(self._tool_wait)
        if scheduling == "SILENT":
            turn.tokens["TEXT"] += usage.tool_use_tokens([{"response": result}])  # read, unsaid
            if not busy and not self._async_calls:
                self._send_handle_update(now)  # nothing runs any more: resumable again
            return
        said = json.dumps(result, sort_keys=True)
        if scheduling == "INTERRUPT" and self._reply_turn is not None and not self._tool_wait:
            self._results.appendleft((turn, said))
            self._interrupt(now, forced=True, cancel_calls=False)
        elif busy:
            self._results.append((turn, said))
        else:
            self._start_result_reply(turn, said, now)

    # --- usage ---------------------------------------------------------------------------------

    def _open_meter(self, turn: TurnRecord, tool_use: int = 0) -> None:
        """A model turn begins: it reads the session's context (every turn so far, this one's
        input included, trimmed by the compression window) and `tool_use` tokens of results."""
        assert self.session is not None
        session = self.session
        prompt, session.context_from = usage.context(
            self._costs, [t.tokens for t in session.turns], session.context_from
        )
        self._meter = (turn, usage.ReplyMeter(prompt, tool_use))

    def _close_meter(self) -> dict[str, Any]:
        """The model turn is complete: its usageMetadata; what it said and the results it read
        join the context (thoughts do not)."""
        if self._meter is None:
            return usage.ReplyMeter(usage.Tokens()).usage_metadata()
        turn, meter = self._meter
        self._meter = None
        turn.tokens.update(meter.response)
        turn.tokens["TEXT"] += meter.tool_use
        return meter.usage_metadata()

    # --- helpers -------------------------------------------------------------------------------

    def _send_handle_update(self, now: float) -> None:
        if self.setup is None or self.session is None or not self.setup.session_resumption:
            return
        if self._async_calls:
            self._send_not_resumable()  # not resumable while a function call runs [sdk]
            return
        handle = self.registry.issue_handle(self.session, now)
        update = {"newHandle": handle, "resumable": True}
        self._outputs.append(Send({"sessionResumptionUpdate": update}))

    def _with_interaction_status(self, send: Send) -> Send:
        """`interactionStatus` on serverContent when the options ask for it: IDLE with
        turnComplete, IN_PROGRESS with model content (LiveServerContent in google-genai)."""
        content = send.message.get("serverContent")
        if not self.options.interaction_status or not isinstance(content, dict):
            return send
        if content.get("turnComplete"):
            status = "IDLE"
        elif "modelTurn" in content:
            status = "IN_PROGRESS"
        else:
            return send
        return Send({**send.message, "serverContent": {**content, "interactionStatus": status}})

    def _send_not_resumable(self) -> None:
        if self.setup is not None and self.setup.session_resumption:
            update = {"newHandle": "", "resumable": False}
            self._outputs.append(Send({"sessionResumptionUpdate": update}))

    def _close(self, code: int, reason: str) -> None:
        if self.close_to_send is None:
            self.close_to_send = (code, cut_reason(reason))
            self._steps.clear()

    def _record_frame(self, data: str | bytes, now: float) -> None:
        try:
            decoded = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            decoded = None
        size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8"))
        self.record.received.append(
            ReceivedFrame(
                index=len(self.record.received),
                at_s=now - self.opened_at_s,
                binary=isinstance(data, bytes),
                size_bytes=size,
                message=decoded if isinstance(decoded, dict) else None,
            )
        )
        if self.setup is None and isinstance(decoded, dict) and len(decoded) == 1:
            body = next(iter(decoded.values()))
            if next(iter(decoded)) == "setup" and isinstance(body, dict):
                self.record.setup = body
