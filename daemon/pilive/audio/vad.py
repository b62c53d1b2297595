"""A small energy voice-activity detector: the emulator's stand-in for the server's detection in
hands-free sessions, and the daemon's own ear in the follow-up window after an answer.

Decisions are made on audio time (sample counts), never on a clock, so a test that sends 1 s of
tone and 1 s of silence gets the same turn however fast it sends them. Speech starts after
`prefix_padding_ms` of consecutive loud frames (the start is dated back to the first of them) and
ends after `silence_ms` of quiet frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FRAME_MS = 20


@dataclass(frozen=True)
class VadEvent:
    """`kind` is "start" or "end"; `offset_bytes` is the absolute position in the audio stream."""

    kind: str
    offset_bytes: int


class EnergyVad:
    """RMS in dBFS per 20 ms frame against a threshold; s16le mono input."""

    def __init__(
        self, rate_hz: int, threshold_dbfs: float, prefix_padding_ms: int, silence_ms: int
    ) -> None:
        self.rate_hz = rate_hz
        self.threshold_dbfs = threshold_dbfs
        self._frame_bytes = rate_hz * FRAME_MS // 1000 * 2
        self._start_frames = max(1, math.ceil(prefix_padding_ms / FRAME_MS))
        self._end_frames = max(1, math.ceil(silence_ms / FRAME_MS))
        self._pending = bytearray()
        self._position_bytes = 0  # absolute offset of the start of _pending
        self._run = 0  # consecutive frames of the opposite state
        self._run_start = 0
        self.in_speech = False

    def process(self, pcm: bytes) -> list[VadEvent]:
        """Feed audio; returns the start/end decisions it completed."""
        events: list[VadEvent] = []
        self._pending += pcm
        size = self._frame_bytes
        while len(self._pending) >= size:
            frame = np.frombuffer(bytes(self._pending[:size]), dtype="<i2").astype(np.float64)
            del self._pending[:size]
            frame_start = self._position_bytes
            self._position_bytes += size
            rms = math.sqrt(float(np.mean(frame * frame))) / 32768.0
            loud = rms > 0 and 20 * math.log10(rms) > self.threshold_dbfs
            if loud != self.in_speech:
                if self._run == 0:
                    self._run_start = frame_start
                self._run += 1
                needed = self._start_frames if loud else self._end_frames
                if self._run >= needed:
                    self.in_speech = loud
                    self._run = 0
                    if loud:
                        events.append(VadEvent("start", self._run_start))
                    else:
                        events.append(VadEvent("end", self._position_bytes))
            else:
                self._run = 0
        return events

    def reset(self) -> None:
        """Forget the stream state (audioStreamEnd: the mic was closed)."""
        self._position_bytes += len(self._pending)
        self._pending.clear()
        self._run = 0
        self.in_speech = False

    @property
    def position_bytes(self) -> int:
        """Bytes fed so far (including a partial frame)."""
        return self._position_bytes + len(self._pending)
