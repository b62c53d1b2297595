"""Streaming s16le format conversion: channel down/up-mix plus soxr resampling.

Used on the event-loop side of capture (device rate -> 16 kHz mono) and on the write side of
playback (24 kHz mono -> device rate), never inside a PortAudio callback. soxr's ResampleStream
keeps filter state between calls, so chunk boundaries leave no seams.
"""

from __future__ import annotations

import numpy as np
import soxr

from pilive.audio.backends import SAMPLE_BYTES


class PcmConverter:
    """Converts interleaved s16le `in_channels` at `in_rate_hz` to `out_channels` at `out_rate_hz`.

    Channels are averaged to mono first (a stereo mic's two capsules hear the same voice), then
    resampled, then duplicated if the device wants more than one channel.
    """

    def __init__(
        self,
        in_rate_hz: int,
        in_channels: int,
        out_rate_hz: int,
        out_channels: int = 1,
        *,
        quality: str = "HQ",
    ) -> None:
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"channel counts must be >= 1, got {in_channels} -> {out_channels}")
        self.in_rate_hz = in_rate_hz
        self.in_channels = in_channels
        self.out_rate_hz = out_rate_hz
        self.out_channels = out_channels
        self._in_frame_bytes = in_channels * SAMPLE_BYTES
        self._partial = b""
        self._stream: soxr.ResampleStream | None = None
        if in_rate_hz != out_rate_hz:
            self._stream = soxr.ResampleStream(
                in_rate_hz, out_rate_hz, 1, dtype="int16", quality=quality
            )

    @property
    def is_identity(self) -> bool:
        return self._stream is None and self.in_channels == 1 and self.out_channels == 1

    def convert(self, data: bytes | bytearray | memoryview) -> bytes:
        """Converts what it can now; a trailing partial frame waits for the next call."""
        if self._partial:
            data = self._partial + bytes(data)
            self._partial = b""
        usable = len(data) - len(data) % self._in_frame_bytes
        if usable != len(data):
            self._partial = bytes(data[usable:])
        samples = np.frombuffer(data, dtype="<i2", count=usable // SAMPLE_BYTES)
        return self._finish(self._mono(samples), last=False)

    def flush(self) -> bytes:
        """The resampler's delayed tail, at the end of a stream; then ready for a new stream."""
        self._partial = b""
        if self._stream is None:
            return b""
        tail = self._finish(np.zeros(0, dtype=np.int16), last=True)
        self._stream.clear()
        return tail

    def reset(self) -> None:
        """Drops buffered input and filter state (barge-in: the old audio must not leak out)."""
        self._partial = b""
        if self._stream is not None:
            self._stream.clear()

    def _mono(self, samples: np.ndarray) -> np.ndarray:
        if self.in_channels == 1:
            return samples
        frames = samples.reshape(-1, self.in_channels).astype(np.int32)
        mixed: np.ndarray = (frames.sum(axis=1) // self.in_channels).astype(np.int16)
        return mixed

    def _finish(self, mono: np.ndarray, *, last: bool) -> bytes:
        if self._stream is not None:
            mono = self._stream.resample_chunk(mono, last=last)
        if self.out_channels > 1:
            mono = np.repeat(mono, self.out_channels)
        return mono.astype("<i2", copy=False).tobytes()
