"""Sans-I/O Live API session: one conversation across many WebSocket connections.

Drive it like a websockets protocol object: `connect(handle)`, `receive_data(frame, now)`,
`connection_lost()` and `send_*()` calls in; `data_to_send()` (frames to write, in order) and
`events_received()` out. It never sleeps, reads a clock or touches a socket: `now` is always an
argument, in seconds on whatever monotonic clock the caller uses.

What it keeps across connections:
- the newest resumable `sessionResumptionUpdate.newHandle` (and when it came);
- input given while no connection is usable (held, sent after the next `setupComplete`);
- push-to-talk replay: every frame of the user's current activity (activityStart, audio, video,
  activityEnd) until the model has *answered* it (turnComplete after activityEnd). If the link
  drops first, the activity is replayed from its start after the resumed setup completes, each
  frame exactly once. Answered, not merely taken in: the service issues no resumable handle while
  it generates or waits for a tool, so a resume after a cut answer or during a tool call restores
  the conversation from before the question, and only a replay gets it answered. The record is
  bounded by the replay window (default 15 s of 16 kHz s16le audio) and by `max_replays`; beyond
  either the turn is given up, and a `TurnLost` event says so;
- tool calls: ids the model is waiting on. A connection loss makes them stale (the resumed
  session predates them, and the service refuses a toolResponse for an id it does not know with
  1007), so their responses are dropped; the replayed question asks for the tool again;
- hands-free replay tail: there is no explicit activity, so the last `hands_free_tail_s` (default
  3 s) of audio sent since the model last answered is replayed after a reconnect. An utterance cut
  by the drop is then heard whole when it is short; a long one loses its beginning. Replaying
  silence is harmless to the server's VAD.

goAway: the next connection opens at a turn boundary within `handover_window_s` of the deadline
(a goAway with minutes of notice is no reason to reconnect now), when the user starts a new turn
after the goAway (a server may go silent after goAway, so the question goes to the next
connection), or `handover_margin_s` before the deadline at the latest.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from pilive.live import wire
from pilive.live.events import (
    AudioChunk,
    ConversationReset,
    GenerationComplete,
    GoAway,
    Interrupted,
    OutputTranscription,
    SessionEvent,
    SessionResumptionUpdate,
    SetupComplete,
    TextPart,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
    TurnLost,
)

__all__ = ["MAX_HANDLE_CHARS", "LiveSession", "LiveSessionError", "SessionState"]

_BYTES_PER_SAMPLE = 2  # s16le mono
MAX_HANDLE_CHARS = 8 * 1024
"""Live API handles are a few hundred characters; a longer one is never kept, stored or sent
in setup (a hostile server could otherwise grow every setup, and the state file, at will)."""


class SessionState(enum.Enum):
    """Where the current connection is: none, waiting for `setupComplete`, usable, or closed."""

    IDLE = "idle"
    AWAITING_SETUP = "awaiting_setup"
    READY = "ready"
    CLOSED = "closed"


class LiveSessionError(RuntimeError):
    """The caller used the session out of order (a bug in the caller, not a network event)."""


class _Kind(enum.Enum):
    SETUP = "setup"
    ACTIVITY = "activity"  # part of the current push-to-talk activity (replayable)
    MEDIA = "media"  # audio/video outside an activity (hands-free)
    OTHER = "other"  # text, clientContent, toolResponse, audioStreamEnd


@dataclass(slots=True)
class _Frame:
    text: str
    kind: _Kind
    audio_bytes: int = 0
    video: bool = False
    activity_id: int = 0


@dataclass(slots=True)
class _Activity:
    """The user's current push-to-talk activity, from activityStart until the server answers."""

    id: int
    frames: list[_Frame] | None  # None: grew past the replay window while it was on the wire
    on_wire: int = 0  # frames[:on_wire] were written to a connection (replay them after a drop)
    open: bool = True  # activityEnd not sent yet
    end_on_wire: bool = False  # activityEnd was written to the current connection
    answer_started: bool = False  # model content for it arrived (it was taken in)
    replays: int = 0  # times it was sent again on a new connection
    audio_bytes: int = 0  # audio bytes given, recorded or not
    video_frames: int = 0


class LiveSession:
    """The state of one Live API conversation; see the module docstring for the rules."""

    def __init__(
        self,
        options: wire.SetupOptions,
        *,
        replay_window_s: float = 15.0,
        replay_max_video_frames: int = 30,
        hands_free_tail_s: float = 3.0,
        handover_margin_s: float = 2.0,
        handover_window_s: float = 60.0,
        max_replays: int = 3,
        audio_rate_hz: int = wire.INPUT_AUDIO_RATE_HZ,
    ) -> None:
        if not replay_window_s > 0:
            raise ValueError(f"replay_window_s: {replay_window_s!r} must be > 0")
        if replay_max_video_frames < 0:
            raise ValueError(f"replay_max_video_frames: {replay_max_video_frames!r} must be >= 0")
        if not hands_free_tail_s >= 0:
            raise ValueError(f"hands_free_tail_s: {hands_free_tail_s!r} must be >= 0")
        if not handover_margin_s >= 0:
            raise ValueError(f"handover_margin_s: {handover_margin_s!r} must be >= 0")
        if not handover_window_s >= handover_margin_s:
            raise ValueError(f"handover_window_s: {handover_window_s!r} must be >= the margin")
        if max_replays < 1:
            raise ValueError(f"max_replays: {max_replays!r} must be >= 1")
        self._options = options
        bytes_per_s = audio_rate_hz * _BYTES_PER_SAMPLE
        self.replay_window_bytes = int(replay_window_s * bytes_per_s)
        self.replay_max_video_frames = replay_max_video_frames
        self.hands_free_tail_bytes = int(hands_free_tail_s * bytes_per_s)
        self.handover_margin_s = handover_margin_s
        self.handover_window_s = handover_window_s
        self.max_replays = max_replays
        self.audio_rate_hz = audio_rate_hz

        self._state = SessionState.IDLE
        self._out: list[_Frame] = []
        self._events: list[SessionEvent] = []
        self._held: list[_Frame] = []
        self._held_media_lost = False  # TurnLost already said for this outage
        self._tail: deque[_Frame] = deque()
        self._tail_bytes = 0
        self._activity: _Activity | None = None
        self._activity_count = 0
        self._discarding = False  # the open activity was lost; drop its input until activityEnd
        self._stale_turn = False  # a model turn from before activityStart has yet to end
        self._stale_interrupted = False  # that turn's `interrupted` came: its end is near
        self._model_turn = False
        self._tool_call_ids: set[str] = set()
        self._tool_answer_owed = False  # a toolResponse went out; the model has yet to go on
        self._activity_after_go_away = False  # the user started a turn after goAway
        self._handle: str | None = None
        self._handle_received_s: float | None = None
        self._go_away_deadline_s: float | None = None

        self.connections = 0
        """How many times `connect()` was called."""
        self.replayed_frames = 0
        """Frames sent again on a new connection (activity replay and hands-free tail)."""
        self.replayed_audio_bytes = 0
        """Audio bytes among `replayed_frames`."""
        self.dropped_audio_bytes = 0
        """Audio bytes given up (each time with a `TurnLost` event)."""
        self.turns_lost = 0
        """`TurnLost` events emitted."""
        self.turns_answered = 0
        """User turns (push-to-talk activities, or hands-free speech) whose answer completed. A
        bare turnComplete from the server answers nothing and does not count."""
        self._answering_media = False  # model content followed hands-free audio
        self.turns_replayed = 0
        """Activities sent again on a new connection because they had not been answered."""
        self.handles_refused = 0
        """`newHandle`s longer than MAX_HANDLE_CHARS, ignored (the previous handle stays)."""
        self.stale_tool_responses = 0
        """Function responses dropped because their call predates the resumed session."""

    # -- what the caller reads ------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """The current connection's state."""
        return self._state

    @property
    def resumption_handle(self) -> str | None:
        """The newest handle from a `sessionResumptionUpdate` with `resumable: true`."""
        return self._handle

    @property
    def resumption_handle_received_s(self) -> float | None:
        """The `now` at which `resumption_handle` arrived."""
        return self._handle_received_s

    @property
    def go_away_deadline_s(self) -> float | None:
        """When the server will end this connection (`goAway` now + `timeLeft`), if it said so."""
        return self._go_away_deadline_s

    @property
    def model_turn_in_progress(self) -> bool:
        """The model has started answering and not yet finished (turnComplete / interrupted)."""
        return self._model_turn

    @property
    def user_activity_open(self) -> bool:
        """activityStart was sent and activityEnd not yet (the button is held)."""
        return (self._activity is not None and self._activity.open) or self._discarding

    @property
    def replay_pending(self) -> bool:
        """The current activity is not yet known to be taken in by the server."""
        return self._activity is not None

    @property
    def outstanding_tool_calls(self) -> frozenset[str]:
        """Ids of `toolCall` function calls neither answered nor cancelled."""
        return frozenset(self._tool_call_ids)

    @property
    def owes_answer(self) -> bool:
        """The server owes this connection something: an answer to the user's finished turn or to
        a tool result, or the rest of an answer it started. False while a tool runs here."""
        if self._state is not SessionState.READY or self._tool_call_ids:
            return False
        act = self._activity
        return (
            self._model_turn
            or self._tool_answer_owed
            or (act is not None and act.end_on_wire and not act.open)
        )

    @property
    def at_turn_boundary(self) -> bool:
        """No user activity awaiting an answer, no model turn, no tool call outstanding."""
        return (
            self._activity is None
            and not self._discarding
            and not self._model_turn
            and not self._tool_call_ids
        )

    def handover_at_s(self) -> float | None:
        """The latest moment to start the next connection after `goAway` (deadline - margin)."""
        if self._go_away_deadline_s is None:
            return None
        return self._go_away_deadline_s - self.handover_margin_s

    def handover_window_at_s(self) -> float | None:
        """From when a turn boundary after `goAway` is a good moment to hand over."""
        if self._go_away_deadline_s is None:
            return None
        return self._go_away_deadline_s - self.handover_window_s

    def handover_due(self, now: float) -> bool:
        """After `goAway`: hand over now? See the module docstring for the rule.

        Call it after each batch of events, after the user starts a turn, and from timers set for
        `handover_window_at_s()` and `handover_at_s()`.
        """
        latest = self.handover_at_s()
        window = self.handover_window_at_s()
        if latest is None or window is None:
            return False
        if self._state not in (SessionState.AWAITING_SETUP, SessionState.READY):
            return False
        if now >= latest or self._activity_after_go_away:
            return True
        return self.at_turn_boundary and now >= window

    def expect_end(self, deadline_s: float) -> None:
        """The connection ends at `deadline_s` though no goAway said so (the ephemeral token it
        was opened with expires then): hand over before it by the goAway rule. Call it no
        earlier than `handover_window_s` before the deadline, as a goAway would come."""
        if self._state is not SessionState.READY:
            return
        if self._go_away_deadline_s is None or deadline_s < self._go_away_deadline_s:
            self._go_away_deadline_s = deadline_s

    def data_to_send(self) -> list[str]:
        """Frames to write to the current connection, in order; the list is handed over."""
        out, self._out = self._out, []
        return [f.text for f in out]

    def events_received(self) -> list[SessionEvent]:
        """Events since the last call, in order; the list is handed over."""
        events, self._events = self._events, []
        return events

    def forget_resumption_handle(self, reason: str | None = None) -> None:
        """Drop the handle; the next `connect` starts a fresh session.

        With a `reason` (the server refused to resume), a `ConversationReset` event tells the
        appliance that the model has forgotten the conversation. A user's own "new conversation"
        gives none: the user asked for it.
        """
        self._handle = None
        self._handle_received_s = None
        if reason is not None:
            self._events.append(ConversationReset(reason))

    def start_over(self) -> None:
        """The user asked for a new conversation: forget the handle and everything that would be
        replayed into the next one (the last question, the hands-free tail). An activity still
        open drops the rest of its input until its activityEnd, which then sends nothing."""
        self.forget_resumption_handle()
        act = self._activity
        if act is not None:
            self._held = [f for f in self._held if f.activity_id != act.id]
            self._activity = None
            self._discarding = act.open
        self._tail.clear()
        self._tail_bytes = 0

    # -- connection lifecycle -----------------------------------------------------------------

    def connect(self, handle: str | None = None) -> None:
        """A new connection is open: queue `setup` (resuming `handle` if given)."""
        if self._state is SessionState.CLOSED:
            raise LiveSessionError("connect() after close()")
        if self._state is not SessionState.IDLE:
            raise LiveSessionError(
                f"connect() while {self._state.value}: call connection_lost() first"
            )
        frame = wire.build_setup(self._options, handle)
        self._state = SessionState.AWAITING_SETUP
        self._go_away_deadline_s = None
        self._activity_after_go_away = False
        self.connections += 1
        self._out.append(_Frame(frame, _Kind.SETUP))

    def connection_lost(self) -> None:
        """The connection is gone: hold input from now on; prepare the replay for the next one."""
        if self._state in (SessionState.IDLE, SessionState.CLOSED):
            return
        self._state = SessionState.IDLE
        self._go_away_deadline_s = None
        self._activity_after_go_away = False
        self._model_turn = False
        self._stale_turn = self._stale_interrupted = False
        self._answering_media = False
        if self._tool_call_ids:
            # No handle is resumable during a tool call: the next session predates these calls.
            self._tool_call_ids.clear()
        self._tool_answer_owed = False
        # Frames never handed to the I/O layer: activity frames are covered by the replay, the
        # rest go out on the next connection; the setup frame belongs to the dead connection.
        unsent = [f for f in self._out if f.kind in (_Kind.MEDIA, _Kind.OTHER)]
        if unsent and self._tail:  # never written, so not part of the tail to replay
            unsent_ids = {id(f) for f in unsent}
            self._tail = deque(f for f in self._tail if id(f) not in unsent_ids)
            self._tail_bytes = sum(f.audio_bytes for f in self._tail)
        self._held[:0] = unsent
        self._out = []
        self._held_media_lost = False
        act = self._activity
        if act is not None:
            act.end_on_wire = False
            if act.frames is None:
                self._lose_activity(
                    "the connection dropped during a turn longer than the replay window"
                )
        self._trim_held_media()

    def close(self) -> None:
        """The conversation is over; nothing more is sent."""
        self._state = SessionState.CLOSED
        self._out = []
        self._held = []

    # -- receiving ----------------------------------------------------------------------------

    def receive_data(self, frame: str | bytes | bytearray, now: float) -> None:
        """Feed one server frame; raises `wire.LiveProtocolError` (state unchanged) if malformed."""
        if self._state not in (SessionState.AWAITING_SETUP, SessionState.READY):
            raise LiveSessionError(f"receive_data() while {self._state.value}")
        for event in wire.parse_server_message(frame):
            self._events.append(event)
            self._handle_event(event, now)

    def _handle_event(self, event: SessionEvent, now: float) -> None:
        if isinstance(event, AudioChunk | TextPart | OutputTranscription | GenerationComplete):
            self._model_content()
        elif isinstance(event, TurnComplete):
            if self._stale_turn:
                self._stale_turn = self._stale_interrupted = False
                self._model_turn = False
            else:
                self._model_content()
                self._model_turn = False
                act = self._activity
                if act is not None and act.answer_started:
                    self._activity = None  # answered: nothing left to replay
                    self.turns_answered += 1
                elif self._answering_media:
                    self.turns_answered += 1
                self._answering_media = False
        elif isinstance(event, Interrupted):
            self._model_turn = False
            if self._stale_turn:
                # [proto]: interrupted, then turnComplete. A server that leaves the turnComplete
                # out must not make the new answer's content (and its turnComplete) look stale.
                self._stale_interrupted = True
        elif isinstance(event, ToolCall):
            self._tool_call_ids.update(c.id for c in event.calls if c.id)
            self._model_content()
        elif isinstance(event, ToolCallCancellation):
            self._tool_call_ids.difference_update(event.ids)
        elif isinstance(event, SetupComplete) and self._state is SessionState.AWAITING_SETUP:
            self._setup_complete()
        elif isinstance(event, GoAway):
            self._go_away_deadline_s = now + event.time_left_s
        elif isinstance(event, SessionResumptionUpdate) and event.resumable and event.new_handle:
            if len(event.new_handle) > MAX_HANDLE_CHARS:
                self.handles_refused += 1
                return
            self._handle = event.new_handle
            self._handle_received_s = now
            # A handle does not take the activity in: it may have been issued before the server
            # read activityEnd (it arrives after it here, but crossed it on the wire).

    def _model_content(self) -> None:
        """Model output arrived: the user's finished activity (or hands-free tail) is taken in; the
        activity is kept for replay until its answer completes."""
        if self._stale_turn and self._stale_interrupted:
            # No content follows `interrupted` in its own turn: the stale turn is over.
            self._stale_turn = self._stale_interrupted = False
        if self._stale_turn:
            return  # the tail of the turn the user's activityStart interrupted
        self._model_turn = True
        self._tool_answer_owed = False
        act = self._activity
        if act is not None and act.end_on_wire:
            act.answer_started = True
        if self._tail:
            self._answering_media = True  # hands-free: an answer to audio sent since the last one
        self._tail.clear()
        self._tail_bytes = 0

    def _setup_complete(self) -> None:
        """Flush in order: hands-free tail, the activity's earlier frames, then held input."""
        self._state = SessionState.READY
        replay: list[_Frame] = list(self._tail)
        act = self._activity
        frames = None if act is None else act.frames
        if act is not None and frames is not None and act.on_wire:
            if act.replays >= self.max_replays:
                self._lose_activity(
                    f"the server did not answer this turn in {act.replays + 1} tries"
                )
                act = None
            else:
                act.replays += 1
                act.answer_started = False
                self.turns_replayed += 1
                replay.extend(frames[: act.on_wire])
        for f in replay:
            self.replayed_frames += 1
            self.replayed_audio_bytes += f.audio_bytes
        self._out.extend(replay)
        held, self._held = self._held, []
        for f in held:
            self._out.append(f)
            if f.kind is _Kind.MEDIA:
                self._add_to_tail(f)
        if act is not None and act.frames is not None:
            act.on_wire = len(act.frames)
            act.end_on_wire = not act.open

    # -- sending ------------------------------------------------------------------------------

    def _check_open(self, what: str) -> None:
        if self._state is SessionState.CLOSED:
            raise LiveSessionError(f"{what} after close()")

    def send_activity_start(self) -> None:
        """`activityStart`: the user started speaking (button down); a new replay record begins."""
        self._check_open("send_activity_start()")
        if self.user_activity_open:
            raise LiveSessionError("send_activity_start() while an activity is open")
        if self._go_away_deadline_s is not None:
            self._activity_after_go_away = True
        # A previous activity still awaiting its answer is superseded: frames of it not yet
        # written stay queued and go out once; it is no longer replayed.
        self._activity_count += 1
        self._activity = _Activity(self._activity_count, [])
        self._stale_turn = self._model_turn
        self._stale_interrupted = False
        self._emit_activity(_Frame(wire.build_activity_start(), _Kind.ACTIVITY))

    def send_activity_end(self) -> None:
        """`activityEnd`: the user stopped speaking (button up); the model may answer."""
        self._check_open("send_activity_end()")
        if self._discarding:
            self._discarding = False  # the activity was lost and reported; nothing to end
            return
        act = self._activity
        if act is None or not act.open:
            raise LiveSessionError("send_activity_end() without send_activity_start()")
        act.open = False
        written = self._emit_activity(_Frame(wire.build_activity_end(), _Kind.ACTIVITY))
        act.end_on_wire = written

    def send_audio(self, pcm: bytes | bytearray | memoryview) -> None:
        """One mic chunk (16-bit mono PCM at `audio_rate_hz`), inside or outside an activity."""
        self._check_open("send_audio()")
        text = wire.build_audio(pcm, self.audio_rate_hz)
        size_bytes = pcm.nbytes if isinstance(pcm, memoryview) else len(pcm)
        if self._discarding:
            self.dropped_audio_bytes += size_bytes
            return
        if self._activity is not None and self._activity.open:
            frame = _Frame(text, _Kind.ACTIVITY, audio_bytes=size_bytes)
            self._emit_activity(frame)
        else:
            self._emit_media(_Frame(text, _Kind.MEDIA, audio_bytes=size_bytes))

    def send_video(self, jpeg: bytes, mime_type: str = "image/jpeg") -> None:
        """One camera frame; part of the activity while one is open."""
        self._check_open("send_video()")
        text = wire.build_video(jpeg, mime_type)
        if self._discarding:
            return
        if self._activity is not None and self._activity.open:
            self._emit_activity(_Frame(text, _Kind.ACTIVITY, video=True))
        else:
            self._emit_media(_Frame(text, _Kind.MEDIA, video=True))

    def send_text(self, text: str) -> None:
        """`realtimeInput.text`."""
        self._check_open("send_text()")
        self._emit(_Frame(wire.build_text(text), _Kind.OTHER))

    def send_audio_stream_end(self) -> None:
        """`audioStreamEnd` (hands-free: the mic was switched off)."""
        self._check_open("send_audio_stream_end()")
        self._emit(_Frame(wire.build_audio_stream_end(), _Kind.OTHER))

    def send_client_content(
        self, turns: Sequence[wire.ContentTurn], *, turn_complete: bool = True
    ) -> None:
        """`clientContent` turns (typed text, history)."""
        self._check_open("send_client_content()")
        self._emit(
            _Frame(wire.build_client_content(turns, turn_complete=turn_complete), _Kind.OTHER)
        )

    def send_tool_response(self, responses: Sequence[wire.FunctionResponse]) -> None:
        """`toolResponse`; the answered ids stop being outstanding."""
        self._check_open("send_tool_response()")
        current = [r for r in responses if r.id in self._tool_call_ids]
        self.stale_tool_responses += len(responses) - len(current)
        if not current:
            return
        frame = wire.build_tool_response(current)
        self._tool_call_ids.difference_update(r.id for r in current)
        # A SILENT result (a non-blocking function's) asks for no words: nothing is owed for it.
        spoken = any(r.scheduling != "SILENT" for r in current)
        self._tool_answer_owed = not self._tool_call_ids and (spoken or self._tool_answer_owed)
        self._emit(_Frame(frame, _Kind.OTHER))

    # -- internals ----------------------------------------------------------------------------

    def _emit(self, frame: _Frame) -> bool:
        """Write now if the connection is usable, else hold; True if written."""
        if self._state is SessionState.READY:
            self._out.append(frame)
            return True
        self._held.append(frame)
        return False

    def _emit_media(self, frame: _Frame) -> None:
        if self._emit(frame):
            self._add_to_tail(frame)
        else:
            self._trim_held_media()

    def _add_to_tail(self, frame: _Frame) -> None:
        if frame.audio_bytes == 0 or self.hands_free_tail_bytes == 0:
            return
        self._tail.append(frame)
        self._tail_bytes += frame.audio_bytes
        while self._tail_bytes > self.hands_free_tail_bytes:
            self._tail_bytes -= self._tail.popleft().audio_bytes

    def _trim_held_media(self) -> None:
        """Keep held hands-free media within the replay window; say so once if any is dropped."""
        audio_bytes = 0
        video_frames = 0
        keep: list[_Frame] = []
        dropped_bytes = 0
        for f in reversed(self._held):
            if f.kind is _Kind.MEDIA:
                audio_bytes += f.audio_bytes
                video_frames += f.video
                if (
                    audio_bytes > self.replay_window_bytes
                    or video_frames > self.replay_max_video_frames
                ):
                    dropped_bytes += f.audio_bytes
                    continue
            keep.append(f)
        if len(keep) == len(self._held):
            return
        keep.reverse()
        self._held = keep
        self.dropped_audio_bytes += dropped_bytes
        if not self._held_media_lost:
            self._held_media_lost = True
            self._turn_lost("the link was down longer than the replay window", dropped_bytes)

    def _emit_activity(self, frame: _Frame) -> bool:
        act = self._activity
        assert act is not None
        frame.activity_id = act.id
        act.audio_bytes += frame.audio_bytes
        act.video_frames += frame.video
        written = self._emit(frame)
        if act.frames is not None:
            act.frames.append(frame)
            if written:
                act.on_wire += 1
        over = (
            act.audio_bytes > self.replay_window_bytes
            or act.video_frames > self.replay_max_video_frames
        )
        if over and act.frames is not None:
            if written and act.on_wire == len(act.frames):
                act.frames = None  # all on the wire: fine unless the link drops before an answer
            else:
                self._lose_activity("the link was down longer than the replay window")
        return written

    def _lose_activity(self, reason: str) -> None:
        """Give up the current activity: unqueue its held frames and tell the caller."""
        act = self._activity
        assert act is not None
        self._held = [f for f in self._held if f.activity_id != act.id]
        self._activity = None
        self._discarding = act.open
        self.dropped_audio_bytes += act.audio_bytes
        self._turn_lost(reason, act.audio_bytes)

    def _turn_lost(self, reason: str, dropped_audio_bytes: int) -> None:
        self.turns_lost += 1
        self._events.append(TurnLost(reason, dropped_audio_bytes))
