"""The follow-up window: after an answer, listen hands-free for a while without a press, so a
question the model asked ("Shall I set a timer?") can be answered naturally. Pure: microphone
audio and the time in, "press" and "release" out (nothing here reads a clock or does I/O).

While the window is open nothing is sent: the microphone is only heard here, by the shared energy
detector (audio/vad.py, tuned by [live.vad]). Speech within `window_s` is a press, dated back to
its first loud frame (the capture's pre-roll holds it); the first silence after it is the
release, and the window closes. No speech before the window ends: it closes, and nothing was
sent at all.

Speech is what stands out of the room's own noise. A cooker hood or a dishwasher louder than
the fixed threshold would otherwise be "speech" the moment a window opens, a turn of noise that
never falls silent until `max_press_s`, an answer to it, the next window, and so on for as long
as the noise lasts, each turn billed. So the window hears the microphone all the time and keeps
the room's noise floor (`NoiseFloor`), and a window opens with its threshold at least
FLOOR_MARGIN_DB above that floor.
"""

from __future__ import annotations

import collections
import enum
import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from pilive.live.wire import INPUT_AUDIO_RATE_HZ

if TYPE_CHECKING:
    from pilive.audio.vad import EnergyVad

THRESHOLD_DBFS = -45.0
"""Speech is louder than this (RMS per 20 ms); start_sensitivity moves it by 6 dB either way."""
SENSITIVITY_OFFSET_DB = {"high": -6.0, "low": 6.0}
FLOOR_MARGIN_DB = 10.0
"""Speech stands at least this far above the room's noise floor, whatever the sensitivity: a
steady noise's 20 ms frames stay within a few dB of its quietest."""
FLOOR_FRAME_MS = 20
FLOOR_BLOCK_S = 1.0
FLOOR_BLOCKS = 4
"""The floor is the quietest 20 ms frame of the last four whole seconds (see NoiseFloor)."""
SILENT_DBFS = -200.0
"""The level given to digital silence (its logarithm would be minus infinity)."""


class NoiseFloor:
    """The room's noise floor by minimum statistics: the level of the quietest 20 ms frame in
    each second, the floor the lowest of the last FLOOR_BLOCKS seconds. A voice pauses between
    words, so the minimum finds the steady noise under it (a fan, a hood, a dishwasher); the
    speaker's own answer is kept out of it all the same (FollowUpWindow.hear: loud and
    reverberant, its pauses do not fall quiet). A noise that began less than
    FLOOR_BLOCKS seconds ago is not in it yet."""

    def __init__(self, rate_hz: int = INPUT_AUDIO_RATE_HZ) -> None:
        import numpy  # noqa: PLC0415 - loaded with the window's detector, which needs it too

        self._np = numpy
        self._frame_bytes = rate_hz * FLOOR_FRAME_MS // 1000 * 2
        self._frames_per_block = round(FLOOR_BLOCK_S * 1000 / FLOOR_FRAME_MS)
        self._pending = bytearray()
        self._block_min_power = math.inf
        self._block_frames = 0
        self._blocks: collections.deque[float] = collections.deque(maxlen=FLOOR_BLOCKS)

    def hear(self, pcm: bytes) -> None:
        """Microphone audio, 16 kHz s16le mono, in chunks of any size."""
        self._pending += pcm
        count = len(self._pending) // self._frame_bytes
        if count == 0:
            return
        np = self._np
        whole = count * self._frame_bytes
        samples = np.frombuffer(bytes(self._pending[:whole]), dtype="<i2").astype(np.float64)
        del self._pending[:whole]
        powers = np.mean(samples.reshape(count, -1) ** 2, axis=1)
        for power in powers.tolist():
            self._block_min_power = min(self._block_min_power, power)
            self._block_frames += 1
            if self._block_frames == self._frames_per_block:
                self._blocks.append(self._block_min_power)
                self._block_min_power = math.inf
                self._block_frames = 0

    @property
    def level_dbfs(self) -> float | None:
        """The floor (RMS dBFS), or None before a first whole second was heard."""
        if not self._blocks:
            return None
        power = min(self._blocks)
        if power <= 0:
            return SILENT_DBFS
        return 10 * math.log10(power) - 20 * math.log10(32768.0)


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

        self._new_vad: Callable[[float], EnergyVad] = functools.partial(
            EnergyVad,
            INPUT_AUDIO_RATE_HZ,
            prefix_padding_ms=prefix_padding_ms,
            silence_ms=silence_ms,
        )
        self._offset_db = SENSITIVITY_OFFSET_DB[sensitivity]
        self.floor = NoiseFloor()
        self._vad: EnergyVad | None = None
        self.deadline_s: float | None = None
        self.speaking = False
        self.threshold_dbfs = self.threshold_now()
        """The threshold of the window open now (or of the last one)."""

    @property
    def open(self) -> bool:
        return self._vad is not None

    def threshold_now(self) -> float:
        """Speech level for a window opened now: the fixed threshold (moved by the
        sensitivity), or FLOOR_MARGIN_DB over the room's noise where that is higher."""
        fixed = THRESHOLD_DBFS + self._offset_db
        floor = self.floor.level_dbfs
        return fixed if floor is None else max(fixed, floor + FLOOR_MARGIN_DB)

    def start(self, now_s: float) -> None:
        """An answer has played out: listen until `now_s + window_s`."""
        self.threshold_dbfs = self.threshold_now()
        self._vad = self._new_vad(self.threshold_dbfs)
        self.deadline_s = now_s + self.window_s
        self.speaking = False

    def close(self) -> None:
        self._vad = None
        self.deadline_s = None
        self.speaking = False

    def hear(self, pcm: bytes, *, room_only: bool = True) -> list[Heard]:
        """Every microphone chunk (16 kHz s16le mono) not muted: the detector hears those of an
        open window, the noise floor those that are `room_only` (no answer or ring playing).
        The speaker's answer, heard loud from its own box in a reverberant room, has no quiet
        20 ms in a second; heard, it would lift the floor, and the threshold of the window
        opening right after it, over a normal reply. A question held long still counts: a
        noise taken for speech (the hood starting mid-answer) is learnt during its turn."""
        if room_only:
            self.floor.hear(pcm)
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
