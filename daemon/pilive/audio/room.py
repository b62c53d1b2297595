"""A simulated room: what a microphone near a loudspeaker hears of it.

A smart speaker's microphone hears its own speaker, late (the device buffers plus the air), smeared
by the room's reverberation, at some level, under some noise. Without that path the tests and the
demo could never hear the daemon's own voice, and echo handling could not be tested at all. The
echo here is linear (a convolution with a synthetic room impulse response), which is what an
echo canceller models; a real speaker adds distortion that only a residual echo suppressor takes.

The impulse response is synthetic and seeded: a direct path, a few early reflections, then a
tail of Gaussian noise decaying by 60 dB over `rt60_ms` (the room's reverberation time). The
whole response is scaled to `echo_gain_db` by energy, so that figure is the echo's level relative
to what the speaker played.

`EchoPath` is the streaming form (speaker samples in, the microphone's echo plus noise out, by
absolute sample index); `echo_of` is the offline form of the same path, for benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_DECAY_60_DB = np.log(1000.0)  # an amplitude that falls by 60 dB is multiplied by 1/1000
_EARLY_REFLECTIONS = 6
_EARLY_WINDOW_MS = (2.0, 25.0)
_TAIL_START_MS = 4.0
# Reverberant energy against the direct path's (a direct-to-reverberant ratio of +3 dB: the
# speaker and the microphone share one small box, the direct path dominates).
_TAIL_TO_DIRECT_ENERGY = 0.5


@dataclass(frozen=True, slots=True)
class RoomOptions:
    """The echo path. `latency_ms` is the device latency (buffers and converters) before the air;
    `noise_dbfs` is the RMS level of the room's white noise (None: a silent room)."""

    latency_ms: float = 40.0
    rt60_ms: float = 300.0
    echo_gain_db: float = -6.0
    noise_dbfs: float | None = -70.0
    seed: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.latency_ms <= 2000:
            raise ValueError(f"latency_ms must be in 0..2000, got {self.latency_ms}")
        if not 0 <= self.rt60_ms <= 5000:
            raise ValueError(f"rt60_ms must be in 0..5000, got {self.rt60_ms}")


def impulse_response(rate_hz: int, rt60_ms: float, seed: int = 1) -> FloatArray:
    """A synthetic room impulse response with unit energy (see the module docstring)."""
    rng = np.random.default_rng(seed)
    length = max(1, round(rate_hz * rt60_ms / 1000))
    response = np.zeros(length)
    response[0] = 1.0
    if length > 1:
        first, last = (min(length - 1, round(rate_hz * ms / 1000)) for ms in _EARLY_WINDOW_MS)
        if last > first:
            where = rng.integers(first, last, _EARLY_REFLECTIONS)
            response[where] += rng.uniform(0.15, 0.5, _EARLY_REFLECTIONS) * rng.choice(
                (-1.0, 1.0), _EARLY_REFLECTIONS
            )
        start = min(length - 1, round(rate_hz * _TAIL_START_MS / 1000))
        t_s = np.arange(length - start) / rate_hz
        tail = rng.standard_normal(length - start) * np.exp(-_DECAY_60_DB * t_s / (rt60_ms / 1000))
        direct_energy = float(np.sum(response**2))
        tail *= np.sqrt(_TAIL_TO_DIRECT_ENERGY * direct_energy / float(np.sum(tail**2)))
        response[start:] += tail
    response /= np.sqrt(float(np.sum(response**2)))
    return response


def _fft_convolve(signal: FloatArray, response: FloatArray) -> FloatArray:
    """The full linear convolution, by FFT (a 300 ms response is thousands of taps)."""
    n = len(signal) + len(response) - 1
    if n <= 0:
        return np.zeros(0)
    size = 1 << max(0, (n - 1).bit_length())
    out = np.fft.irfft(np.fft.rfft(signal, size) * np.fft.rfft(response, size), size)[:n]
    return np.asarray(out, dtype=np.float64)


class EchoPath:
    """The speaker-to-microphone path at one sample rate, as a stream indexed by sample.

    `play(samples)` appends what the speaker played (floats, full scale 1.0) at the next speaker
    index; `hear(start, count)` returns the echo plus noise that reaches the microphone at
    indices start..start+count. Speaker audio that was never played counts as silence. Only the
    history the response can still reach is kept, so memory stays bounded however long it runs.
    """

    def __init__(self, rate_hz: int, options: RoomOptions) -> None:
        self.rate_hz = rate_hz
        self.options = options
        gain = 10 ** (options.echo_gain_db / 20)
        self.response = impulse_response(rate_hz, options.rt60_ms, options.seed) * gain
        self.delay_samples = round(rate_hz * options.latency_ms / 1000)
        self._noise_rms = 0.0 if options.noise_dbfs is None else 10 ** (options.noise_dbfs / 20)
        self._rng = np.random.default_rng(options.seed + 1)
        self._history = np.zeros(0)  # speaker samples from index _history_start on
        self._history_start = 0

    @property
    def speaker_end(self) -> int:
        """The index the next played sample gets."""
        return self._history_start + len(self._history)

    def play(self, samples: FloatArray, at: int | None = None) -> None:
        """Speaker samples from index `at` (default: right after the last ones); a gap is
        silence, an overlap replaces what was there."""
        start = self.speaker_end if at is None else at
        if start > self.speaker_end:
            self._history = np.concatenate([self._history, np.zeros(start - self.speaker_end)])
        keep = max(0, start - self._history_start)
        self._history = np.concatenate([self._history[:keep], np.asarray(samples, np.float64)])
        self._history_start = min(self._history_start, start)

    def hear(self, start: int, count: int) -> FloatArray:
        """The echo plus noise at microphone indices start..start+count."""
        taps = len(self.response)
        first = start - self.delay_samples - (taps - 1)  # the oldest speaker sample reached
        needed = count + taps - 1
        segment = np.zeros(needed)
        lo = max(first, self._history_start)
        hi = min(first + needed, self.speaker_end)
        if hi > lo:
            segment[lo - first : hi - first] = self._history[
                lo - self._history_start : hi - self._history_start
            ]
        echo = _fft_convolve(segment, self.response)[taps - 1 : taps - 1 + count]
        # What no later call can reach any more is dropped.
        drop = first - self._history_start
        if drop > 0:
            self._history = self._history[drop:]
            self._history_start += drop
        if self._noise_rms:
            echo += self._rng.standard_normal(count) * self._noise_rms
        return echo


def echo_of(speaker: FloatArray, rate_hz: int, options: RoomOptions) -> FloatArray:
    """What the microphone hears of `speaker` (same length, same rate): the offline EchoPath."""
    path = EchoPath(rate_hz, options)
    path.play(speaker)
    return path.hear(0, len(speaker))
