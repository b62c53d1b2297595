"""A pure-Python reference model of `pilive.audio._ringbuf.RingBuffer` (single-threaded).

It states the semantics in the plainest form we could write, so the C buffer can be checked
against it by a hypothesis state machine; the benchmark also uses it as the pure-Python ring.
Indices are monotonically increasing byte counts, as in the C code.
"""

from __future__ import annotations

import array
import math
import sys

MAX_CAPACITY_BYTES = 1 << 30
MAX_FADE_SAMPLES = 1_000_000
MAX_GAIN = 4.0


def _saturate(value: float) -> int:
    """Round half to even (C's lrint) and clip to int16, as the C buffer does."""
    if value >= 32767.0:
        return 32767
    if value <= -32768.0:
        return -32768
    return round(value)


def _samples(data: bytes | bytearray) -> array.array[int]:
    samples = array.array("h")
    samples.frombytes(data)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def _pcm(samples: array.array[int]) -> bytes:
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


class ModelRingBuffer:
    """Same API and counters as the C RingBuffer for bytes-like input, one thread only."""

    def __init__(
        self, capacity_bytes: int, *, fade_samples: int = 96, prebuffer_bytes: int = 0
    ) -> None:
        if capacity_bytes <= 0 or capacity_bytes > MAX_CAPACITY_BYTES:
            raise ValueError(f"capacity_bytes out of range: {capacity_bytes}")
        if not 0 <= fade_samples <= MAX_FADE_SAMPLES:
            raise ValueError(f"fade_samples out of range: {fade_samples}")
        capacity = 2
        while capacity < capacity_bytes:
            capacity <<= 1
        if not 0 <= prebuffer_bytes <= capacity:
            raise ValueError(f"prebuffer_bytes out of range: {prebuffer_bytes}")
        self.capacity = capacity
        self.fade_samples = fade_samples
        self.prebuffer_bytes = prebuffer_bytes
        self._gain = 1.0
        self._data = bytearray(capacity)
        self._mask = capacity - 1
        # Producer side.
        self._w = 0
        self._end = 0
        self._clear_seq = 0
        self._clear_at = 0
        self.overruns = 0
        self.clears = 0
        # Consumer side.
        self._r = 0
        self.bytes_read = 0
        self.underruns = 0
        self.flowing = False
        self._seen_clear_seq = 0
        self._end_done = 0
        self._clear_target = 0
        self._fade_n = 0
        self._fade_i = 0

    # ------------------------------------------------------------------ settings and counters

    @property
    def gain(self) -> float:
        return self._gain

    @gain.setter
    def gain(self, value: float) -> None:
        if not 0.0 <= value <= MAX_GAIN:
            raise ValueError(f"gain must be between 0.0 and 4.0, got {value!r}")
        self._gain = float(value) + 0.0

    @property
    def bytes_written(self) -> int:
        return self._w

    @property
    def available(self) -> int:
        return self._w - max(self._r, self._clear_at)

    @property
    def free(self) -> int:
        return self.capacity - (self._w - self._r)

    # ------------------------------------------------------------------------------- producer

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Copy as much as fits; a short write counts an overrun."""
        raw = bytes(data)
        if len(raw) % 2:
            raise ValueError(f"odd byte count {len(raw)}")
        n = min(len(raw), self.free)
        off = self._w & self._mask
        first = min(n, self.capacity - off)
        self._data[off : off + first] = raw[:first]
        self._data[: n - first] = raw[first:n]
        self._w += n
        if n < len(raw):
            self.overruns += 1
        return n

    def clear(self) -> None:
        """Publish a clear at the current write index; the consumer acts on it later."""
        self._clear_seq += 2
        self._clear_at = self._w
        self.clears += 1

    def end_stream(self) -> None:
        self._end = self._w

    # ------------------------------------------------------------------------------- consumer

    def _ring(self, idx: int, nbytes: int) -> bytes:
        off = idx & self._mask
        first = min(nbytes, self.capacity - off)
        return bytes(self._data[off : off + first] + self._data[: nbytes - first])

    def _with_gain(self, raw: bytes, gain: float) -> bytes:
        if gain == 1.0:
            return raw
        return _pcm(array.array("h", (_saturate(s * gain) for s in _samples(raw))))

    def read(self, nbytes: int) -> tuple[bytes, int]:
        """Return (nbytes of output, real audio bytes in it)."""
        if nbytes % 2:
            raise ValueError(f"odd byte count {nbytes}")
        out = bytearray()
        audio = 0
        gain = self._gain
        r = self._r
        flowing = self.flowing
        e, w = self._end, self._w

        if self._clear_seq != self._seen_clear_seq:
            self._seen_clear_seq = self._clear_seq
            clear_at = self._clear_at
            if clear_at > r:
                self._clear_target = clear_at
                if self._fade_n == 0:
                    fade = min((clear_at - r) // 2, self.fade_samples)
                    if flowing and fade > 0:
                        self._fade_n, self._fade_i = fade, 0
                    else:
                        r = clear_at
            flowing = False

        if self._fade_n:
            k = min(self._fade_n - self._fade_i, (nbytes - len(out)) // 2)
            faded = array.array("h")
            for s in _samples(self._ring(r, 2 * k)):
                f = (self._fade_n - self._fade_i) / self._fade_n
                faded.append(_saturate(s * gain * f))
                self._fade_i += 1
            out += _pcm(faded)
            r += 2 * k
            audio += 2 * k
            if self._fade_i == self._fade_n:
                self._fade_n = self._fade_i = 0
                r = self._clear_target

        if not self._fade_n:
            while True:
                ending = e > self._end_done
                if ending and e <= r:
                    self._end_done = e
                    flowing = False
                    continue
                if len(out) == nbytes:
                    break
                avail = w - r
                if not flowing:
                    if avail == 0 or (not ending and avail < self.prebuffer_bytes):
                        break
                    flowing = True
                k = min(e - r if ending else avail, nbytes - len(out))
                out += self._with_gain(self._ring(r, k), gain)
                r += k
                audio += k
                if ending and r == e:
                    continue
                if len(out) < nbytes:
                    self.underruns += 1
                    flowing = False
                break

        out += bytes(nbytes - len(out))
        self.flowing = flowing
        self.bytes_read += audio
        self._r = r
        return bytes(out), audio

    def read_into(self, out: bytearray | memoryview) -> int:
        view = memoryview(out).cast("B")
        data, audio = self.read(len(view))
        view[:] = data
        return audio

    # ---------------------------------------------------------------------------------- waits

    def _end_pending(self) -> bool:
        return self._end > max(self._r, self._clear_at)

    def wait_readable(self, nbytes: int, timeout_s: float) -> bool:
        """Single-threaded: nobody can change the answer while we wait, so do not wait."""
        if timeout_s < 0 or math.isnan(timeout_s):
            raise ValueError(f"timeout_s must be >= 0 seconds, got {timeout_s!r}")
        return self.available >= nbytes or self._end_pending()

    def wait_writable(self, nbytes: int, timeout_s: float) -> bool:
        if timeout_s < 0 or math.isnan(timeout_s):
            raise ValueError(f"timeout_s must be >= 0 seconds, got {timeout_s!r}")
        return self.free >= nbytes
