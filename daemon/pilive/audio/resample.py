"""Streaming s16le format conversion: channel down/up-mix plus soxr resampling.

Used on the event-loop side of capture (device rate -> 16 kHz mono) and on the write side of
playback (24 kHz mono -> device rate), never inside a PortAudio callback. soxr's ResampleStream
keeps filter state between calls, so chunk boundaries leave no seams.

soxr filters in blocks of its own: from a 48 kHz microphone it gives nothing for one 20 ms
block, then 30 ms at once, and holds back 6 to 37 ms of what the device delivered (measured).
For a microphone the capture asks for `steady` conversion instead where the device rate is a
whole multiple of 16 kHz (48, 32, 96 kHz): a linear-phase FIR low-pass evaluated only at the kept
samples, which gives exactly rate/factor samples for every block, 1.3 ms of filter delay at 48
kHz, at least 80 dB below the pass band where it would alias.
"""

from __future__ import annotations

import numpy as np
import soxr

from pilive.audio.backends import SAMPLE_BYTES

STEADY_DELAY_SAMPLES = 21
"""The steady filter's delay, in output samples (a whole number: 1.3 ms at 16 kHz)."""


class _Decimator:
    """Keeps one sample in `factor` after a windowed-sinc low-pass (Kaiser, beta 8: about 80 dB
    of stopband), streaming: the last taps-1 inputs carry over and the kept positions continue
    across calls, so the output does not depend on how the input was cut into blocks."""

    def __init__(self, factor: int) -> None:
        self.factor = factor
        # 127 taps at 48 -> 16 kHz: flat to 6 kHz, -80 dB from 8.2 kHz where it would alias.
        taps = 2 * STEADY_DELAY_SAMPLES * factor + 1
        cutoff = 0.875 / factor  # of the input's Nyquist: 7 kHz for 16 kHz out
        n = np.arange(taps) - (taps - 1) / 2
        self._h = (cutoff * np.sinc(cutoff * n) * np.kaiser(taps, 8.0)).astype(np.float32)
        self._h /= self._h.sum()  # unity gain at DC
        self.reset()

    def reset(self) -> None:
        self._history = np.zeros(len(self._h) - 1, dtype=np.float32)
        self._next = len(self._h) - 1  # where the next kept sample's window ends, in `buffer`

    @property
    def delay_samples(self) -> float:
        """The filter's group delay, in input samples (symmetric taps: half the length)."""
        return (len(self._h) - 1) / 2

    def process(self, mono: np.ndarray) -> np.ndarray:
        buffer = np.concatenate([self._history, mono.astype(np.float32)])
        taps = len(self._h)
        first = self._next - (taps - 1)
        # The taps are symmetric, so convolution is the filter; numpy's is the fastest here
        # (15 us a 20 ms block on x86) even though it also computes the samples dropped.
        out = np.convolve(buffer, self._h, mode="valid")[first :: self.factor]
        self._history = buffer[len(buffer) - (taps - 1) :]
        self._next += len(out) * self.factor - (len(buffer) - (taps - 1))
        result: np.ndarray = np.clip(np.rint(out), -32768, 32767).astype(np.int16)
        return result


class PcmConverter:
    """Converts interleaved s16le `in_channels` at `in_rate_hz` to `out_channels` at `out_rate_hz`.

    Channels are averaged to mono first (a stereo mic's two capsules hear the same voice), then
    resampled, then duplicated if the device wants more than one channel. `steady`: decimate by a
    whole factor with the FIR above instead of soxr (see the module docstring).
    """

    def __init__(
        self,
        in_rate_hz: int,
        in_channels: int,
        out_rate_hz: int,
        out_channels: int = 1,
        *,
        quality: str = "HQ",
        steady: bool = False,
    ) -> None:
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"channel counts must be >= 1, got {in_channels} -> {out_channels}")
        self.in_rate_hz = in_rate_hz
        self.in_channels = in_channels
        self.out_rate_hz = out_rate_hz
        self.out_channels = out_channels
        self._in_frame_bytes = in_channels * SAMPLE_BYTES
        self._partial = b""
        self._frames_in = 0  # since the last flush or reset, for `latency_s`
        self._samples_out = 0
        self._stream: soxr.ResampleStream | None = None
        self._decimator: _Decimator | None = None
        if steady and in_rate_hz > out_rate_hz and in_rate_hz % out_rate_hz == 0:
            self._decimator = _Decimator(in_rate_hz // out_rate_hz)
        elif in_rate_hz != out_rate_hz:
            self._stream = soxr.ResampleStream(
                in_rate_hz, out_rate_hz, 1, dtype="int16", quality=quality
            )

    @property
    def is_identity(self) -> bool:
        return (
            self._stream is None
            and self._decimator is None
            and self.in_channels == 1
            and self.out_channels == 1
        )

    @property
    def latency_s(self) -> float:
        """How far the newest sample given out lags the newest one taken in: what the resampler
        holds back, plus the steady filter's delay (soxr's output is delay-compensated)."""
        held_s = self._frames_in / self.in_rate_hz - self._samples_out / self.out_rate_hz
        if self._decimator is not None:
            held_s += self._decimator.delay_samples / self.in_rate_hz
        return held_s

    def convert(self, data: bytes | bytearray | memoryview) -> bytes:
        """Converts what it can now; a trailing partial frame waits for the next call."""
        if self._partial:
            data = self._partial + bytes(data)
            self._partial = b""
        usable = len(data) - len(data) % self._in_frame_bytes
        if usable != len(data):
            self._partial = bytes(data[usable:])
        samples = np.frombuffer(data, dtype="<i2", count=usable // SAMPLE_BYTES)
        self._frames_in += usable // self._in_frame_bytes
        return self._finish(self._mono(samples), last=False)

    def flush(self) -> bytes:
        """The resampler's delayed tail, at the end of a stream; then ready for a new stream."""
        self._partial = b""
        tail = b""
        if self._decimator is not None:
            silence = np.zeros(round(self._decimator.delay_samples) + 1, dtype=np.int16)
            tail = self._finish(silence, last=True)
            self._decimator.reset()
        elif self._stream is not None:
            tail = self._finish(np.zeros(0, dtype=np.int16), last=True)
            self._stream.clear()
        self._frames_in = self._samples_out = 0
        return tail

    def reset(self) -> None:
        """Drops buffered input and filter state (barge-in: the old audio must not leak out)."""
        self._partial = b""
        self._frames_in = self._samples_out = 0
        if self._stream is not None:
            self._stream.clear()
        if self._decimator is not None:
            self._decimator.reset()

    def _mono(self, samples: np.ndarray) -> np.ndarray:
        if self.in_channels == 1:
            return samples
        frames = samples.reshape(-1, self.in_channels).astype(np.int32)
        mixed: np.ndarray = (frames.sum(axis=1) // self.in_channels).astype(np.int16)
        return mixed

    def _finish(self, mono: np.ndarray, *, last: bool) -> bytes:
        if self._decimator is not None:
            mono = self._decimator.process(mono)
        elif self._stream is not None:
            mono = self._stream.resample_chunk(mono, last=last)
        self._samples_out += len(mono)
        if self.out_channels > 1:
            mono = np.repeat(mono, self.out_channels)
        return mono.astype("<i2", copy=False).tobytes()
