"""The push-to-talk conversation as a pure state machine: inputs in, actions out.

Inputs are the button, the link's state, the session's events, playback draining and the passage
of time (`now` is always an argument; nothing here reads a clock or does I/O). Outputs are
`Action` values that the composition root carries out in order: send activityStart, flush the
speaker, play an earcon, show a state on the LEDs, run a tool.

Timing rules a user notices:
- A press flushes the speaker at once (barge-in: the answer stops within one audio callback).
- The turn itself starts once the press has lasted `min_press_s`: a brief bump of the button
  (or a tap to silence the answer) sends nothing, so the model never gets an empty turn. Nothing
  said is lost by the wait: the pre-roll sent right after activityStart reaches back
  `preroll` before the press, which covers the wait.
- Release sends the last mic chunk, then activityEnd. A hold longer than `max_press_s` ends the
  turn by itself; the later release is then ignored.
- A press while offline (or with a configuration fault) gets the matching earcon and LED at once.
- Audio of an answer the user interrupted is dropped until the server ends that turn.
- No press ends in silence: a turn the server ends without any answer (turnComplete alone, with
  or without `turnCompleteReason` / `waitingForInput`), a turn given up, and a conversation the
  server would not resume each get the error earcon and a journal line saying why.
- In push-to-talk the only barge-in is the button: an `interrupted` the server sends on its own
  (it does, with automatic activity detection off) does not cut the answer being played.
- Tool calls do not survive a lost connection (the resumed session predates them): they are
  cancelled, and the replayed question asks for them again.
- Once the daily token limit is spent (`limit_changed`), a press gets the error earcon and the
  limit's LED instead of a turn: no activityStart is sent (hands-free: the mic is closed, and
  without a wake word the error earcon says so once). The turn in progress when the limit is
  crossed finishes and its answer plays out.
- The privacy mute (`mute_changed`) overrides every input: a press gets the muted earcon and LED
  and no turn; a turn held when the mute comes on ends there (what was said so far is answered);
  hands-free stops listening. Answers still play: the mute is the microphone's and the camera's.
- A wake word (`wake_gated`, hands-free): the microphone stays closed until the word is heard
  (`wake_word_heard`), and closes again once the server answers (its voice detection ended the
  turn), or after `max_press_s` of no answer. The word during an answer stops it, as a press
  does, and a press wakes the microphone as the word does (the only way in when the word cannot
  be heard on this machine: the microphone never streams the room unasked). In push-to-talk the
  word is a press and the end of the question its release.
- A non-blocking function (`background_tools`) is nothing to wait for: the model talks on while
  it runs. When its result goes back scheduled INTERRUPT, the `interrupted` that follows is the
  result's own: the rest of the old answer is flushed, and the model speaks about the result.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pilive.controls.events import ApplianceState as State
from pilive.live.events import (
    AudioChunk,
    ConversationReset,
    InputTranscription,
    Interrupted,
    LinkState,
    OutputTranscription,
    SessionEvent,
    TextPart,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
    TurnLost,
)


class Earcon(enum.Enum):
    PRESS = "press"
    RELEASE = "release"
    ERROR = "error"
    OFFLINE = "offline"
    CONNECTED = "connected"
    MUTED = "muted"
    UNMUTED = "unmuted"


# -- actions -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShowState:
    state: State


@dataclass(frozen=True, slots=True)
class PlayEarcon:
    earcon: Earcon


@dataclass(frozen=True, slots=True)
class FlushPlayback:
    """Barge-in: drop what is queued for the speaker, with a short fade. `barge_in` is False
    when a tool's result cut the answer (scheduled INTERRUPT), not the user."""

    barge_in: bool = True


@dataclass(frozen=True, slots=True)
class PlayAudio:
    """Answer audio (24 kHz s16le mono) for the speaker."""

    pcm: bytes

    def __repr__(self) -> str:
        return f"PlayAudio(<{len(self.pcm)} bytes>)"


@dataclass(frozen=True, slots=True)
class EndOfAnswer:
    """The server finished the turn: play out what is buffered, then report it drained."""


@dataclass(frozen=True, slots=True)
class StartActivity:
    """Send activityStart, then the pre-roll the capture kept from before the press."""


@dataclass(frozen=True, slots=True)
class EndActivity:
    """Send the last (partial) mic chunk, then activityEnd."""


@dataclass(frozen=True, slots=True)
class CameraActivity:
    """The camera sends frames while an activity is open (mode on-activity)."""

    active: bool


@dataclass(frozen=True, slots=True)
class RunTool:
    call_id: str
    name: str
    args: dict[str, object]


@dataclass(frozen=True, slots=True)
class CancelTools:
    call_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NewConversation:
    """Forget the conversation (drop the resumption handle) and start afresh."""


@dataclass(frozen=True, slots=True)
class SendText:
    """A typed turn (`pilive ctl say`, an announcement): `realtimeInput.text`, marked as a turn
    of its own (activityStart/activityEnd around it) in push-to-talk."""

    text: str


THOUGHT_LINE_CHARS = 500  # a thought summary in the journal is cut to this


@dataclass(frozen=True, slots=True)
class Journal:
    """A structured line for the journal: transcripts, usage, lost turns."""

    kind: str
    text: str
    fields: tuple[tuple[str, str], ...] = ()


Action = (
    ShowState
    | PlayEarcon
    | FlushPlayback
    | PlayAudio
    | EndOfAnswer
    | StartActivity
    | EndActivity
    | CameraActivity
    | RunTool
    | CancelTools
    | NewConversation
    | Journal
    | SendText
)


@dataclass(frozen=True, slots=True)
class Timing:
    """Press timing in seconds; see the module docstring. No defaults: the configuration's
    `[conversation] min_press_ms` / `max_press_s` are the one source (wiring.timing)."""

    min_press_s: float
    max_press_s: float

    def __post_init__(self) -> None:
        if not 0 <= self.min_press_s < self.max_press_s:
            raise ValueError(
                f"need 0 <= min_press_s < max_press_s, got {self.min_press_s}, {self.max_press_s}"
            )


class Conversation:
    """Push-to-talk (or hands-free) conversation state; see the module docstring.

    Every input method returns the actions to carry out, in order.
    """

    def __init__(
        self, timing: Timing, *, hands_free: bool = False, wake_gated: bool = False
    ) -> None:
        self.timing = timing
        self.hands_free = hands_free
        self.wake_gated = wake_gated and hands_free
        self._woken_at: float | None = None  # hands-free: the wake word opened the microphone
        self._state = State.STARTING
        self._link = LinkState.CONNECTING
        self._pressed_at: float | None = None  # button down, turn not yet started
        self._activity_since: float | None = None  # activityStart sent, not yet ended
        self._ignore_release = False  # the turn ended by itself (max hold)
        self._discarding = False  # drop audio of an answer the user interrupted
        self._interrupted_seen = False  # its `interrupted` came: only its turnComplete is left
        self._turn_since_barge_in = False  # an activity started while discarding
        self._server_turn_open = False  # model content arrived, its turnComplete not yet
        self._playing = False  # answer audio handed to the speaker, not yet drained
        self._answer_done = False  # turnComplete seen for the audio being played
        self._awaiting_answer = False  # the user's turn ended; no answer of any kind yet
        self._tools: set[str] = set()
        self._limit_spent = False  # the daily token limit is spent: no new turn may start
        self._limit_said = False  # hands-free: the earcon said the limit closed the microphone
        self._muted = False  # the privacy mute: microphone and camera closed, no turn starts
        # Non-blocking functions: the names (set by the app once the tools are built), the ids
        # running, and whether the next `interrupted` is a result's scheduled INTERRUPT.
        self.background_tools: frozenset[str] = frozenset()
        self._background: set[str] = set()
        self._result_interrupts = False
        self.turns_started = 0
        self.taps_ignored = 0

    # -- what the composition root reads ---------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def limit_spent(self) -> bool:
        """The daily token limit is spent: no turn may start until it is renewed."""
        return self._limit_spent

    @property
    def mic_open(self) -> bool:
        """Mic chunks go to the server now (inside an activity, or always when hands-free)."""
        if self.hands_free:
            return (
                self._link is not LinkState.CONFIG_FAULT
                and not self._limit_spent
                and not self._muted
                and (not self.wake_gated or self._woken_at is not None)
            )
        return self._activity_since is not None

    @property
    def turn_pending(self) -> bool:
        """A press is down or a turn is open (push-to-talk), or the microphone is woken."""
        return (
            self._pressed_at is not None
            or self._activity_since is not None
            or self._woken_at is not None
        )

    @property
    def next_deadline(self) -> float | None:
        """When `tick` next has something to do (start a held turn, end an over-long one)."""
        if self._pressed_at is not None:
            return self._pressed_at + self.timing.min_press_s
        if self._activity_since is not None:
            return self._activity_since + self.timing.max_press_s
        if self._woken_at is not None:
            return self._woken_at + self.timing.max_press_s
        return None

    # -- inputs --------------------------------------------------------------------------------

    def start(self) -> list[Action]:
        """Local hardware is up; the link is being opened."""
        return self._enter(
            State.CONNECTING if self._link is not LinkState.CONNECTED else State.IDLE
        )

    def link_changed(self, link: LinkState) -> list[Action]:
        if link is LinkState.STOPPED:
            return []  # the daemon is stopping: nothing more to show or cancel
        previous, self._link = self._link, link
        actions: list[Action] = []
        if link is not LinkState.CONNECTED:
            # A server turn cannot continue on another connection: no turnComplete will come
            # for it, so nothing may wait for one (or the next answer would be dropped).
            self._server_turn_open = False
            self._discarding = self._interrupted_seen = self._turn_since_barge_in = False
            self._result_interrupts = False
            if self._tools or self._background:
                actions.append(CancelTools(tuple(sorted(self._tools | self._background))))
                self._tools.clear()
                self._background.clear()
        if link is LinkState.CONNECTED:
            if previous in (LinkState.OFFLINE, LinkState.CONFIG_FAULT):
                actions.append(PlayEarcon(Earcon.CONNECTED))
            if self._state in (State.STARTING, State.CONNECTING, State.OFFLINE, State.CONFIG_FAULT):
                actions += self._enter(State.IDLE)
            return actions
        if link is LinkState.OFFLINE and previous is not LinkState.OFFLINE:
            actions.append(PlayEarcon(Earcon.OFFLINE))
        elif link is LinkState.CONFIG_FAULT and previous is not LinkState.CONFIG_FAULT:
            actions.append(PlayEarcon(Earcon.ERROR))
        if self._state in (State.LISTENING, State.SPEAKING) and link is not LinkState.CONFIG_FAULT:
            # The user keeps talking (input is held and replayed) or the buffered answer plays out.
            return actions
        actions += self._enter(_LINK_STATE[link])
        return actions

    def button_pressed(self, now: float) -> list[Action]:
        if self.wake_gated:  # hands-free behind a wake word: the button wakes it, as the word
            return self.wake_word_heard(now)
        if self.hands_free:
            return self._barge_in() if self._state is State.SPEAKING else []
        if self._pressed_at is not None or self._activity_since is not None:
            return []  # already down (a repeated edge)
        refused = self._refusal()
        if refused is not None:
            return refused
        actions = self._cut_answer()
        self._pressed_at = now
        self._ignore_release = False
        if self.timing.min_press_s == 0:
            actions += self._start_turn(now)
        return actions

    def button_released(self, now: float) -> list[Action]:
        if self.hands_free:
            return []
        if self._pressed_at is not None:
            self._pressed_at = None
            self.taps_ignored += 1
            return self._enter(State.IDLE) if self._state is not State.IDLE else []
        if self._activity_since is None or self._ignore_release:
            self._ignore_release = False
            return []
        return self._end_turn()

    def tick(self, now: float) -> list[Action]:
        """Time passed; call at `next_deadline` (and harmlessly at any other time)."""
        if self._pressed_at is not None and now >= self._pressed_at + self.timing.min_press_s:
            if self._limit_spent:  # pressed just before the limit was spent: still a new turn
                self._pressed_at = None
                return self._refuse_turn()
            return self._start_turn(self._pressed_at)
        if (
            self._activity_since is not None
            and now >= self._activity_since + self.timing.max_press_s
        ):
            self._ignore_release = True
            return [*self._end_turn(), Journal("turn", "held too long; turn ended")]
        if self._woken_at is not None and now >= self._woken_at + self.timing.max_press_s:
            return [*self._fall_asleep(), Journal("turn", "no answer after the wake word")]
        return []

    def wake_word_heard(self, now: float) -> list[Action]:
        """Hands-free with a wake word: open the microphone (the server's voice detection takes
        the turn from here); an answer playing stops, as at a press. Push-to-talk turns the
        word into a press instead (the household does)."""
        if not self.wake_gated or self._woken_at is not None:
            return []
        refused = self._refusal()
        if refused is not None:
            return refused
        actions = self._cut_answer()
        self._woken_at = now
        self.turns_started += 1
        return [*actions, PlayEarcon(Earcon.PRESS), *self._enter(State.LISTENING)]

    def _refusal(self) -> list[Action] | None:
        """Why no turn may start now (a press or the wake word), as what the user is shown and
        hears; None when one may. The order is the one the user can act on first."""
        if self._muted:
            return self._refuse_muted()
        if self._link is LinkState.OFFLINE:
            return [PlayEarcon(Earcon.OFFLINE), ShowState(State.OFFLINE)]
        if self._link is LinkState.CONFIG_FAULT:
            return [PlayEarcon(Earcon.ERROR), ShowState(State.CONFIG_FAULT)]
        if self._limit_spent:
            return self._refuse_turn()
        return None

    def _cut_answer(self) -> list[Action]:
        """A new turn stops the answer still coming or playing (barge-in)."""
        if self._playing or self._state in (State.SPEAKING, State.THINKING):
            return self._barge_in()
        return []

    def _fall_asleep(self) -> list[Action]:
        """The woken microphone closes (the answer began, or none came)."""
        self._woken_at = None
        return self._enter(State.IDLE) if self._state is State.LISTENING else []

    def new_conversation_pressed(self) -> list[Action]:
        actions: list[Action] = []
        if self._activity_since is not None:
            actions += [EndActivity(), CameraActivity(False)]
            self._activity_since = None
        self._pressed_at = None
        actions += self._barge_in()
        actions += [NewConversation(), PlayEarcon(Earcon.CONNECTED)]
        actions += self._enter(
            State.CONNECTING if self._link is not LinkState.CONNECTED else State.IDLE
        )
        return actions

    def text_turn(self, text: str) -> list[Action] | None:
        """A turn of typed text; None (nothing done) while the user's own turn is held. An
        answer still playing is cut, as a press would cut it."""
        if self._pressed_at is not None or self._activity_since is not None:
            return None
        if self._limit_spent:
            return self._refuse_turn()
        actions = self._cut_answer()
        # Like activityStart, the text ends the server's turn: its `interrupted` is ours.
        self._turn_since_barge_in = self._discarding
        self._awaiting_answer = True
        return [*actions, SendText(text), *self._enter(State.THINKING)]

    def limit_changed(self, spent: bool) -> list[Action]:
        """The daily token limit was spent (True), or a new day renewed it (False)."""
        if spent is self._limit_spent:
            return []
        self._limit_spent = spent
        self._limit_said = False
        if spent:
            return self._enter(State.IDLE) if self._state is State.IDLE else []
        return self._enter(State.IDLE) if self._state is State.LIMIT_SPENT else []

    def mute_changed(self, muted: bool) -> list[Action]:
        """The privacy mute came on (True) or went off; see the module docstring."""
        if muted is self._muted:
            return []
        self._muted = muted
        if not muted:
            actions: list[Action] = [PlayEarcon(Earcon.UNMUTED)]
            return actions + (self._enter(State.IDLE) if self._state is State.MUTED else [])
        self._pressed_at = None  # a press not yet a turn is forgotten
        actions = []
        if self._woken_at is not None:
            actions += self._fall_asleep()
        if self._activity_since is not None:
            self._activity_since = None
            self._ignore_release = True
            self._awaiting_answer = True
            actions += [EndActivity(), CameraActivity(False), *self._enter(State.THINKING)]
        actions.append(PlayEarcon(Earcon.MUTED))
        return actions + (self._enter(State.IDLE) if self._state is State.IDLE else [])

    def playback_drained(self) -> list[Action]:
        """The speaker played out everything of the finished answer."""
        self._playing = False
        if self._answer_done and self._state is State.SPEAKING:
            self._answer_done = False
            return self._enter(State.IDLE)
        return []

    def tool_finished(self, call_id: str, *, interrupts: bool = False) -> list[Action]:
        """A call's result went back; `interrupts`: scheduled INTERRUPT, which cuts the answer
        the server is still sending (not one it has finished: that plays out)."""
        self._tools.discard(call_id)
        if call_id in self._background:
            self._background.discard(call_id)
            if interrupts and self._server_turn_open and not self._discarding:
                self._result_interrupts = True
        return []

    def session_event(self, event: SessionEvent) -> list[Action]:
        if isinstance(event, AudioChunk):
            return self._answer_audio(event.pcm)
        if isinstance(event, TurnComplete):
            return self._turn_complete(event.reason)
        if isinstance(event, Interrupted) and not self.hands_free and not self._result_interrupts:
            if self._discarding and self._turn_since_barge_in:
                # Our barge-in, already flushed. Its turnComplete comes next ([proto]: interrupted,
                # then turnComplete) and is the old turn's, however late it arrives.
                self._interrupted_seen = True
                return []
            # Not our barge-in: the server's own voice detection, which it reports even when it
            # is off (pipecat PR #4131). The answer plays on.
            return [Journal("interrupted_ignored", "server sent interrupted; answer kept")]
        if isinstance(event, Interrupted):
            by_user, self._result_interrupts = not self._result_interrupts, False
            self._discarding = False
            self._server_turn_open = False
            actions: list[Action] = [FlushPlayback(by_user)] if self._playing else []
            self._playing = False
            self._answer_done = False
            if self._state in (State.SPEAKING, State.THINKING):
                actions += self._enter(State.IDLE)
            return actions
        if isinstance(event, ToolCall):
            # Not an answer the user hears: an empty answer after the tools is still an error.
            self._server_turn_open = True
            runs: list[Action] = []
            for call in event.calls:
                (self._background if call.name in self.background_tools else self._tools).add(
                    call.id
                )
                runs.append(RunTool(call.id, call.name, dict(call.args)))
            if self._woken_at is not None:
                runs += self._fall_asleep()  # the server ended the user's turn: it answers
            if self._state is State.IDLE and any(
                c.name not in self.background_tools for c in event.calls
            ):
                runs += self._enter(State.THINKING)
            return runs
        if isinstance(event, ToolCallCancellation):
            cancelled = tuple(i for i in event.ids if i in self._tools or i in self._background)
            self._tools.difference_update(cancelled)
            self._background.difference_update(cancelled)
            return [CancelTools(cancelled)] if cancelled else []
        if isinstance(event, ConversationReset):
            return [
                PlayEarcon(Earcon.ERROR),
                Journal("context_lost", f"the model forgot the conversation: {event.reason}"),
            ]
        if isinstance(event, TurnLost):
            self._awaiting_answer = False
            ended: list[Action] = []
            if self._activity_since is not None:
                # Lost while still held: end it now (the session sends nothing more of it) and
                # ignore the release, or the release would wait for an answer that never comes.
                self._activity_since = None
                self._ignore_release = True
                ended = [EndActivity(), CameraActivity(False)]
            return [
                *ended,
                PlayEarcon(Earcon.ERROR),
                Journal(
                    "turn_lost",
                    event.reason,
                    (("dropped_audio_bytes", str(event.dropped_audio_bytes)),),
                ),
                *self._enter(
                    State.IDLE if self._link is LinkState.CONNECTED else _LINK_STATE[self._link]
                ),
            ]
        if isinstance(event, InputTranscription) and event.text:
            return [Journal("input_transcript", event.text)]
        if isinstance(event, OutputTranscription) and event.text:
            self._awaiting_answer = False
            return [Journal("output_transcript", event.text)]
        if isinstance(event, TextPart) and event.thought:
            # A thought summary (include_thoughts): for the journal only, never played and not
            # the answer. The peer decides its length, so the line is cut.
            text = event.text
            if len(text) > THOUGHT_LINE_CHARS:
                text = text[: THOUGHT_LINE_CHARS - 1] + "…"
            return [Journal("thought", text)] if text else []
        if isinstance(event, TextPart) and event.text and not event.thought:
            self._awaiting_answer = False
            said: list[Action] = [Journal("model_text", event.text)]
            if self._woken_at is not None and not self._discarding:
                said += self._fall_asleep()  # a text answer (response_modality "text")
            return said
        return []

    # -- internals -----------------------------------------------------------------------------

    def _start_turn(self, pressed_at: float) -> list[Action]:
        self._pressed_at = None
        self._activity_since = pressed_at
        self.turns_started += 1
        # Only an activityStart interrupts the server's turn; a tap that starts none does not,
        # so a stray `interrupted` after a tap is not the end of the silenced answer.
        self._turn_since_barge_in = self._discarding
        return [
            StartActivity(),
            CameraActivity(True),
            PlayEarcon(Earcon.PRESS),
            *self._enter(State.LISTENING),
        ]

    def _end_turn(self) -> list[Action]:
        self._activity_since = None
        self._awaiting_answer = True
        return [
            EndActivity(),
            CameraActivity(False),
            PlayEarcon(Earcon.RELEASE),
            *self._enter(State.THINKING),
        ]

    def _refuse_turn(self) -> list[Action]:
        """A press while the daily limit is spent: silence the answer (the press asks for that),
        say no, and show why; nothing goes to the server."""
        return [
            *self._cut_answer(),
            PlayEarcon(Earcon.ERROR),
            Journal("turn_refused", "the daily token limit is spent; no turn started"),
            *self._enter(State.IDLE),
        ]

    def _refuse_muted(self) -> list[Action]:
        """A press while muted: silence the answer (the press asks for that) and say why no
        turn starts; nothing goes to the server."""
        actions = self._cut_answer()
        if self._state in (State.SPEAKING, State.THINKING, State.LIMIT_SPENT):
            actions += self._enter(State.IDLE)  # shows MUTED (offline and faults show as such)
        return [*actions, PlayEarcon(Earcon.MUTED)]

    def _barge_in(self) -> list[Action]:
        """Silence the answer now; if the server is still sending it, drop the rest of it until
        that turn ends (it may already be complete: the server sends faster than real time)."""
        actions: list[Action] = []
        if self._server_turn_open:
            self._discarding = True
        if self._playing:
            actions.append(FlushPlayback())
        self._playing = False
        self._answer_done = False
        return actions

    def _answer_audio(self, pcm: bytes) -> list[Action]:
        self._server_turn_open = True
        if self._state is not State.LISTENING:
            self._awaiting_answer = False
            if self._interrupted_seen:
                # No audio follows `interrupted` in the same turn: this is the new answer, and the
                # server left out the old turn's turnComplete.
                self._discarding = self._interrupted_seen = self._turn_since_barge_in = False
        if self._state is State.LISTENING and not self.hands_free:
            # The model cannot answer an activity that is still open: this is an older answer.
            self._discarding = True
        if self._discarding:
            return []
        woken = self._woken_at is not None
        if woken:
            self._woken_at = None  # the server's voice detection ended the turn: answered
        self._playing = True
        actions: list[Action] = [PlayAudio(pcm)]
        if woken and self._state is State.LISTENING:
            actions += self._enter(State.SPEAKING)
        if self._state in (State.THINKING, State.IDLE, State.LIMIT_SPENT, State.MUTED):
            actions += self._enter(State.SPEAKING)
        return actions

    def _turn_complete(self, reason: str | None) -> list[Action]:
        self._server_turn_open = False
        self._result_interrupts = False  # the answer ended before the result could cut it
        if self._discarding:
            self._discarding = self._interrupted_seen = self._turn_since_barge_in = False
            return []
        if self._state is State.LISTENING:
            return []  # the end of an older answer while the user already talks again
        if self._awaiting_answer and not self._tools and not self._background:
            # The server ended the user's turn without a word (a refused or empty answer); with
            # a non-blocking call still running, the words may come with its result.
            self._awaiting_answer = False
            said = f" ({reason})" if reason else ""
            return [
                PlayEarcon(Earcon.ERROR),
                Journal("no_answer", f"the model ended the turn without an answer{said}"),
                *self._enter(State.IDLE),
            ]
        if self._playing:
            self._answer_done = True
            return [EndOfAnswer()]
        if self._tools:
            return []
        if self._state in (State.THINKING, State.SPEAKING):
            return self._enter(State.IDLE)
        return []

    def _hands_free_unheard(self) -> bool:
        """Hands-free without a wake word, no press to refuse: the spent limit that closed the
        microphone is not yet said by the error earcon."""
        return self.hands_free and not self.wake_gated and not self._limit_said

    def _enter(self, state: State) -> list[Action]:
        if state is State.IDLE and self._muted:
            state = State.MUTED  # idle with the microphone off: the LED says so first
        elif state is State.IDLE and self._limit_spent:
            state = State.LIMIT_SPENT  # idle, but no new turn may start: the LED says why
        if state is self._state:
            return []
        self._state = state
        if state is State.LIMIT_SPENT and self._hands_free_unheard():
            self._limit_said = True
            return [ShowState(state), PlayEarcon(Earcon.ERROR)]
        return [ShowState(state)]


_LINK_STATE = {
    LinkState.CONNECTING: State.CONNECTING,
    LinkState.CONNECTED: State.IDLE,
    LinkState.RECONNECTING: State.CONNECTING,
    LinkState.OFFLINE: State.OFFLINE,
    LinkState.CONFIG_FAULT: State.CONFIG_FAULT,
}
