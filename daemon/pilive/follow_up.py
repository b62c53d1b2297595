"""The follow-up window: after an answer, listen hands-free for a while without a press, so a
question the model asked ("Shall I set a timer?") can be answered naturally. Pure: microphone
audio and the time in, "press" and "release" out (nothing here reads a clock or does I/O).

While the window is open nothing is sent: the microphone is only heard here, by the shared energy
detector (audio/vad.py, tuned by [live.vad]). Speech within `window_s` is a press, dated back to
its first loud frame (the capture's pre-roll holds it); the first silence after it is the
release, and the window closes. No speech before the window ends: it closes, and nothing was
sent at all.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from pilive.live.wire import INPUT_AUDIO_RATE_HZ

if TYPE_CHECKING:
    from pilive.audio.vad import EnergyVad

THRESHOLD_DBFS = -45.0
"""Speech is louder than this (RMS per 20 ms); start_sensitivity moves it by 6 dB either way."""
SENSITIVITY_OFFSET_DB = {"high": -6.0, "low": 6.0}


class Heard(enum.Enum):
    PRESS = "press"  # speech began: a turn starts as if the button went down
    RELEASE = "release"  # the first silence after it: the turn ends, the window closes


class FollowUpWindow:
    """One window at a time; `open` until speech ends or `deadline_s` passes without speech."""

    def __init__(
        self,
        window_s: float,
        *,
        sensitivity: str = "high",
        prefix_padding_ms: int = 100,
        silence_ms: int = 800,
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s!r}")
        self.window_s = window_s
        # The detector needs numpy: loaded here, by a configured window, not by every daemon
        # that imports this module (and not on the event loop when the first window opens).
        from pilive.audio.vad import EnergyVad  # noqa: PLC0415

        self._new_vad: Callable[[], EnergyVad] = functools.partial(
            EnergyVad,
            INPUT_AUDIO_RATE_HZ,
            THRESHOLD_DBFS + SENSITIVITY_OFFSET_DB[sensitivity],
            prefix_padding_ms,
            silence_ms,
        )
        self._vad: EnergyVad | None = None
        self.deadline_s: float | None = None
        self.speaking = False

    @property
    def open(self) -> bool:
        return self._vad is not None

    def start(self, now_s: float) -> None:
        """An answer has played out: listen until `now_s + window_s`."""
        self._vad = self._new_vad()
        self.deadline_s = now_s + self.window_s
        self.speaking = False

    def close(self) -> None:
        self._vad = None
        self.deadline_s = None
        self.speaking = False

    def hear(self, pcm: bytes) -> list[Heard]:
        """A microphone chunk (16 kHz s16le mono) while the window is open."""
        if self._vad is None:
            return []
        heard: list[Heard] = []
        for event in self._vad.process(pcm):
            if event.kind == "start" and not self.speaking:
                self.speaking = True
                heard.append(Heard.PRESS)
            elif event.kind == "end" and self.speaking:
                self.close()
                heard.append(Heard.RELEASE)
                break
        return heard

    def expired(self, now_s: float) -> bool:
        """True (and closed) when the window ran out with nobody speaking."""
        waited_out = self.deadline_s is not None and now_s >= self.deadline_s
        if self.open and not self.speaking and waited_out:
            self.close()
            return True
        return False
