"""The local wake word's rules, pure: when a detection starts a turn, where its audio begins,
and (push-to-talk) where it ends. Microphone frames and the model's decisions in, events out;
nothing here reads a clock, loads the model or does I/O (audio/wake.py runs it on its thread).

- A word is a rising edge of the model's decision while armed: a detection storm (the model says
  yes for every frame of a few hundred ms) is one word, and after a word nothing more is heard
  until the daemon re-arms it, once the turn it started is over: one turn at a time.
- The turn's audio begins at the word's first loud frame (the shared energy detector,
  audio/vad.py, dates speech back to it; PHRASE_GAP_MS), never more than LOOKBACK_MS before
  the detection: what was said before the word is not sent.
- Push-to-talk: the question after the word ends at the first silence ([live.vad]
  silence_duration_ms), or after QUESTION_WAIT_S of no question at all. Speech counts as the
  question once it lasted QUESTION_START_MS, so the tail of the word itself (the model decides
  100-300 ms after the word's end) does not end the turn before the question. Hands-free: the
  server's voice detection ends the turn; no end is decided here.

Positions are byte offsets in the stream of 16 kHz s16le audio the listener was fed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from pilive.config.model import WakeWord
from pilive.follow_up import SENSITIVITY_OFFSET_DB, THRESHOLD_DBFS
from pilive.live.wire import INPUT_AUDIO_RATE_HZ

if TYPE_CHECKING:
    from pilive.audio.vad import EnergyVad

MODELS: tuple[str, ...] = tuple(name for name in get_args(WakeWord) if name != "off")
"""The models inside pymicro-wakeword's wheel, as `conversation.wake_word` names them."""
PACKAGE = "pymicro_wakeword"
WHY_MISSING = (
    "pymicro-wakeword is not installed (its wheels exist for x86-64 and aarch64 only; "
    "pip install pymicro-wakeword on those)"
)

BYTES_PER_S = INPUT_AUDIO_RATE_HZ * 2
FRAME_BYTES = INPUT_AUDIO_RATE_HZ // 100 * 2
"""The model takes 10 ms frames (160 samples) of 16 kHz s16le audio."""
LOOKBACK_MS = 1500
"""The longest a wake word lasts before its detection (okay_nabu: about 1.15 s from its first
loud frame in espeak-ng's voice; alexa: 0.75 s)."""
ONSET_FRAMES_MS = 20
PHRASE_GAP_MS = 300
"""A phrase's first loud frame dates the word: one loud 20 ms frame after at least this much
quiet. A word has quieter gaps inside it ("O-kay": 40 ms; the comma in "Okay, Nabu": 140 ms in
espeak-ng's voice) that [live.vad]'s 100 ms of speech would take for the start."""
QUESTION_START_MS = 300
QUESTION_WAIT_S = 5.0
PREROLL_MS = LOOKBACK_MS + 500
"""What the microphone keeps for a wake word's turn: the word, and the hops between the capture,
the listener's thread and the loop."""


def missing_package() -> str | None:
    """Why the wake word cannot run here (None: the package is installed), without importing it."""
    try:
        found = importlib.util.find_spec(PACKAGE) is not None
    except (ImportError, ValueError):
        found = False
    return None if found else WHY_MISSING


def describe(wake_word: str) -> str:
    """For `pilive check` and the log: is the wake word active, and if not, why."""
    if wake_word == "off":
        return "wake word off (conversation.wake_word)"
    missing = missing_package()
    if missing is not None:
        return f"wake word {wake_word!r} off: {missing}; a press still starts a turn"
    return f"wake word {wake_word!r} active (heard on the device; nothing is sent before it)"


@dataclass(frozen=True, slots=True)
class WakeEvent:
    """`word`: the word was heard, the turn's audio starts at `offset_bytes`; `end`: the question
    ended at `offset_bytes` (push-to-talk)."""

    kind: Literal["word", "end"]
    offset_bytes: int


class WakeTurns:
    """Feed every 10 ms frame with the model's decision for it (None: no new decision in this
    frame; the model decides every few frames). See the module docstring."""

    def __init__(
        self,
        *,
        local_end: bool,
        sensitivity: str = "high",
        silence_ms: int = 800,
    ) -> None:
        from pilive.audio.vad import EnergyVad  # noqa: PLC0415 - numpy, for a configured word

        self.local_end = local_end
        # Speech as the follow-up window hears it (start_sensitivity moves it by 6 dB).
        self._threshold_dbfs = THRESHOLD_DBFS + SENSITIVITY_OFFSET_DB[sensitivity]
        self._silence_ms = silence_ms
        # Where the word began: its first loud frame, across the short gaps inside a phrase.
        self._speech = EnergyVad(
            INPUT_AUDIO_RATE_HZ, self._threshold_dbfs, ONSET_FRAMES_MS, PHRASE_GAP_MS
        )
        self._speech_start: int | None = None  # the newest speech's first loud frame
        self._question: EnergyVad | None = None  # after a word (push-to-talk): its end
        self._question_heard = False
        self._word_at = 0
        self._position = 0
        self._deciding = False  # the model's newest decision
        self.armed = True
        self.words = 0

    @property
    def position_bytes(self) -> int:
        return self._position

    def rearm(self) -> None:
        """The turn the last word started is over (or none could start): listen again."""
        self.armed = True
        self._question = None

    def forget(self) -> None:
        """The privacy mute: nothing heard before it may date a word or end a turn after it."""
        self._speech.reset()
        self._speech_start = None
        self._deciding = False
        self.rearm()

    def frame(self, pcm: bytes, detected: bool | None) -> list[WakeEvent]:
        events: list[WakeEvent] = []
        for vad_event in self._speech.process(pcm):
            if vad_event.kind == "start":
                self._speech_start = vad_event.offset_bytes
        self._position += len(pcm)
        question = self._question
        if question is not None:
            for vad_event in question.process(pcm):
                if vad_event.kind == "start":
                    self._question_heard = True
                elif self._question_heard:
                    events.append(self._end(self._word_at + vad_event.offset_bytes))
                    break
            waited = self._position - self._word_at >= QUESTION_WAIT_S * BYTES_PER_S
            if self._question is not None and not self._question_heard and waited:
                events.append(self._end(self._position))
        if detected is None:
            return events
        rising = detected and not self._deciding
        self._deciding = detected
        if rising and self.armed:
            events.append(self._word())
        return events

    def _word(self) -> WakeEvent:
        self.armed = False
        self.words += 1
        self._word_at = self._position
        earliest = max(0, self._position - LOOKBACK_MS * BYTES_PER_S // 1000)
        start = self._speech_start
        begins = start if start is not None and start >= earliest else earliest
        if self.local_end:
            self._question = self._new_question_vad()
            self._question_heard = False
        return WakeEvent("word", begins - begins % 2)

    def _new_question_vad(self) -> EnergyVad:
        from pilive.audio.vad import EnergyVad  # noqa: PLC0415 - loaded in __init__ already

        return EnergyVad(
            INPUT_AUDIO_RATE_HZ, self._threshold_dbfs, QUESTION_START_MS, self._silence_ms
        )

    def _end(self, at_bytes: int) -> WakeEvent:
        self._question = None
        return WakeEvent("end", at_bytes)


def trim_preroll(chunks: Sequence[bytes], keep_bytes: int) -> list[bytes]:
    """The newest `keep_bytes` of `chunks` (oldest first), cut at a sample boundary."""
    kept: list[bytes] = []
    left = max(0, keep_bytes - keep_bytes % 2)
    for chunk in reversed(chunks):
        if left <= 0:
            break
        if len(chunk) <= left:
            kept.append(chunk)
            left -= len(chunk)
        else:
            kept.append(chunk[len(chunk) - left :])
            left = 0
    kept.reverse()
    return kept
