"""The C playback ring buffer against its pure-Python model, and its argument checking."""

from __future__ import annotations

import array
import math
import random
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from pilive.audio._ringbuf import GIL_RELEASE_MIN_BYTES, MAX_CAPACITY_BYTES, RingBuffer
from tests.support.ringbuf_model import ModelRingBuffer

INT16 = st.integers(min_value=-32768, max_value=32767)
# True about one time in six: hypothesis favours boundary values, so not integers() == 0.
TURN = st.integers(min_value=0, max_value=5).map(lambda n: n == 3)
GAINS = st.sampled_from([0.0, 0.25, 0.5, 0.999, 1.0, 1.37, 2.0, 3.3, 4.0])


def pcm(samples: list[int]) -> bytes:
    """Little-endian s16 bytes of samples."""
    a = array.array("h", samples)
    if sys.byteorder == "big":
        a.byteswap()
    return a.tobytes()


def ints(data: bytes | bytearray) -> list[int]:
    return [int(v) for v in np.frombuffer(bytes(data), dtype="<i2")]


class RingBufferMachine(RuleBasedStateMachine):
    """Random producer/consumer call sequences: C buffer and model agree on every output byte."""

    def __init__(self) -> None:
        super().__init__()
        self.rb: RingBuffer
        self.model: ModelRingBuffer

    @initialize(
        capacity=st.one_of(st.integers(1, 16), st.integers(200, 600)),
        fade=st.integers(min_value=0, max_value=24),
        prebuffer_fraction=st.sampled_from([0.0, 0.0, 0.1, 0.25, 1.0]),
    )
    def build(self, capacity: int, fade: int, prebuffer_fraction: float) -> None:
        model = ModelRingBuffer(capacity, fade_samples=fade)
        prebuffer = int(model.capacity * prebuffer_fraction)
        self.model = ModelRingBuffer(capacity, fade_samples=fade, prebuffer_bytes=prebuffer)
        self.rb = RingBuffer(capacity, fade_samples=fade, prebuffer_bytes=prebuffer)

    @rule(
        nsamples=st.integers(min_value=1, max_value=120),
        seed=st.integers(min_value=0, max_value=2**32 - 1),
        kind=st.sampled_from(["bytes", "bytearray", "memoryview", "numpy"]),
    )
    def write(self, nsamples: int, seed: int, kind: str) -> None:
        # Seeded samples rather than hypothesis lists: those are mostly tiny, and audio must
        # pile up for reads to flow and clears to fade.
        rng = random.Random(seed)
        samples = [rng.randint(-32768, 32767) for _ in range(nsamples)]
        raw = pcm(samples)
        data: bytes | bytearray | memoryview | np.ndarray[tuple[int], np.dtype[np.int16]]
        if kind == "bytearray":
            data = bytearray(raw)
        elif kind == "memoryview":
            data = memoryview(raw)
        elif kind == "numpy":
            data = np.array(samples, dtype=np.int16)
        else:
            data = raw
        assert self.rb.write(data) == self.model.write(raw)

    @rule(nsamples=st.integers(min_value=0, max_value=40), numpy_out=st.booleans())
    def read_into(self, nsamples: int, numpy_out: bool) -> None:
        expected, expected_audio = self.model.read(2 * nsamples)
        if numpy_out:
            arr = np.full(nsamples, 12345, dtype=np.int16)
            got_audio = self.rb.read_into(arr)
            got = arr.tobytes()
        else:
            buf = bytearray(b"\x55" * (2 * nsamples))
            got_audio = self.rb.read_into(buf)
            got = bytes(buf)
        assert got_audio == expected_audio
        assert ints(got) == ints(expected)

    # Clears, ends and setting changes are drawn rarely (about 1 in 6 of their turns) so that audio
    # gets to flow between them: a clear while flowing is what exercises the fade.
    @rule(turn=TURN)
    def clear(self, turn: bool) -> None:
        if not turn:
            return
        self.rb.clear()
        self.model.clear()

    @rule(turn=TURN)
    def end_stream(self, turn: bool) -> None:
        if not turn:
            return
        self.rb.end_stream()
        self.model.end_stream()

    @rule(gain=GAINS)
    def set_gain(self, gain: float) -> None:
        self.rb.gain = gain
        self.model.gain = gain
        assert self.rb.gain == gain

    @rule(fraction=st.floats(min_value=0.0, max_value=1.0), turn=TURN)
    def set_prebuffer(self, fraction: float, turn: bool) -> None:
        if not turn:
            return
        prebuffer = int(self.model.capacity * fraction)
        self.rb.prebuffer_bytes = prebuffer
        self.model.prebuffer_bytes = prebuffer

    @invariant()
    def counters_agree(self) -> None:
        rb, model = self.rb, self.model
        assert rb.capacity == model.capacity
        assert rb.available == model.available
        assert rb.free == model.free
        assert rb.bytes_written == model.bytes_written
        assert rb.bytes_read == model.bytes_read
        assert rb.underruns == model.underruns
        assert rb.overruns == model.overruns
        assert rb.clears == model.clears
        assert rb.flowing == model.flowing
        assert rb.prebuffer_bytes == model.prebuffer_bytes
        for nbytes in {0, 2, min(64, rb.capacity), rb.capacity}:
            assert rb.wait_readable(nbytes, 0.0) == model.wait_readable(nbytes, 0.0)
            assert rb.wait_writable(nbytes, 0.0) == model.wait_writable(nbytes, 0.0)


TestRingBufferMachine = RingBufferMachine.TestCase
TestRingBufferMachine.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)


@pytest.mark.parametrize(
    ("capacity", "fade", "prebuffer"),
    [(2, 0, 0), (16, 3, 4), (64, 8, 0), (64, 8, 32), (256, 24, 100), (1000, 96, 480)],
)
def test_weighted_random_walk_against_model(capacity: int, fade: int, prebuffer: int) -> None:
    """Thousands of weighted random calls (mostly writes and reads, some clears, ends and
    setting changes) give the same bytes and counters from C and model; complements the
    hypothesis machine, whose rule choice rarely builds long flowing runs."""
    rng = random.Random(capacity * 1000 + fade * 10 + prebuffer)
    rb = RingBuffer(capacity, fade_samples=fade, prebuffer_bytes=prebuffer)
    model = ModelRingBuffer(capacity, fade_samples=fade, prebuffer_bytes=prebuffer)
    ops = ["write", "read", "clear", "end", "gain", "prebuffer"]
    for step in range(4000):
        op = rng.choices(ops, weights=[40, 40, 5, 5, 3, 3])[0]
        if op == "write":
            n = rng.randint(1, max(1, capacity // 3))
            data = pcm([rng.randint(-32768, 32767) for _ in range(n)])
            assert rb.write(data) == model.write(data), step
        elif op == "read":
            n = rng.randint(0, max(1, capacity // 4))
            out = bytearray(2 * n)
            expected, audio = model.read(2 * n)
            assert rb.read_into(out) == audio, step
            assert bytes(out) == expected, step
        elif op == "clear":
            rb.clear()
            model.clear()
        elif op == "end":
            rb.end_stream()
            model.end_stream()
        elif op == "gain":
            rb.gain = model.gain = rng.choice([0.0, 0.5, 1.0, 1.0, 2.5])
        else:
            rb.prebuffer_bytes = model.prebuffer_bytes = rng.randint(0, model.capacity)
        state = (rb.available, rb.free, rb.flowing, rb.underruns, rb.overruns, rb.bytes_read)
        expected_state = (
            model.available,
            model.free,
            model.flowing,
            model.underruns,
            model.overruns,
            model.bytes_read,
        )
        assert state == expected_state, step
    assert rb.clears == model.clears
    assert rb.underruns > 0 or capacity == 2


# ------------------------------------------------------------------------ specific behaviours


def test_capacity_rounds_up_to_power_of_two() -> None:
    """Capacity is the next power of two (at least 2), so index masking is exact."""
    assert RingBuffer(1).capacity == 2
    assert RingBuffer(2).capacity == 2
    assert RingBuffer(3).capacity == 4
    assert RingBuffer(48_000).capacity == 65_536
    assert RingBuffer(65_536).capacity == 65_536
    assert RingBuffer(MAX_CAPACITY_BYTES).capacity == MAX_CAPACITY_BYTES


def test_short_write_keeps_the_rest_for_the_caller() -> None:
    """A write that does not fit accepts only whole samples, counts one overrun, loses nothing."""
    rb = RingBuffer(8)
    data = pcm([1, 2, 3, 4, 5, 6])
    assert rb.write(data) == 8
    assert rb.overruns == 1
    out = bytearray(8)
    assert rb.read_into(out) == 8
    assert ints(out) == [1, 2, 3, 4]
    assert rb.write(data[8:]) == 4
    assert rb.overruns == 1
    assert rb.write(b"") == 0
    assert rb.overruns == 1


def test_no_underrun_before_first_audio_or_after_end_stream() -> None:
    """Silence before the first audio and after a drained end_stream() is not an underrun."""
    rb = RingBuffer(64)
    out = bytearray(8)
    assert rb.read_into(out) == 0
    assert rb.underruns == 0
    rb.write(pcm([7, 7]))
    rb.end_stream()
    assert rb.read_into(out) == 4
    assert ints(out) == [7, 7, 0, 0]
    assert rb.read_into(out) == 0
    assert rb.underruns == 0
    assert not rb.flowing


def test_underrun_counted_when_flowing_audio_runs_dry() -> None:
    """A short read while audio was flowing is one underrun; playback then waits to refill."""
    rb = RingBuffer(64, prebuffer_bytes=8)
    rb.write(pcm([1, 2, 3, 4]))
    out = bytearray(12)
    assert rb.read_into(out) == 8
    assert rb.underruns == 1
    assert not rb.flowing
    rb.write(pcm([5]))
    assert rb.read_into(out) == 0, "below the prebuffer again after an underrun"
    assert rb.underruns == 1


def test_prebuffer_holds_playback_until_reached_or_ended() -> None:
    """Playback starts only at prebuffer_bytes, or at once when end_stream() says no more."""
    rb = RingBuffer(64, prebuffer_bytes=8)
    out = bytearray(4)
    rb.write(pcm([1, 2, 3]))
    assert rb.read_into(out) == 0
    assert not rb.flowing
    rb.write(pcm([4]))
    assert rb.read_into(out) == 4
    assert rb.flowing
    rb2 = RingBuffer(64, prebuffer_bytes=8)
    rb2.write(pcm([9]))
    rb2.end_stream()
    assert rb2.read_into(out) == 2
    assert ints(out) == [9, 0]


def test_end_stream_then_next_stream_needs_prebuffer_again() -> None:
    """The end mark is a position: audio written after it is a new stream that prebuffers."""
    rb = RingBuffer(64, prebuffer_bytes=8)
    rb.write(pcm([1, 2, 3, 4]))
    rb.end_stream()
    rb.write(pcm([5, 6]))
    out = bytearray(16)
    assert rb.read_into(out) == 8
    assert ints(out) == [1, 2, 3, 4, 0, 0, 0, 0]
    assert rb.underruns == 0
    rb.write(pcm([7, 8]))
    assert rb.read_into(out) == 8
    assert ints(out)[:4] == [5, 6, 7, 8]


def test_clear_fades_out_then_plays_new_audio() -> None:
    """clear() while flowing: a linear fade from the read position, then only new audio."""
    rb = RingBuffer(256, fade_samples=4)
    rb.write(pcm([1000] * 20))
    out = bytearray(4)
    rb.read_into(out)
    rb.clear()
    assert rb.available == 0
    assert rb.clears == 1
    rb.write(pcm([5, 6]))
    assert rb.available == 4
    out = bytearray(16)
    assert rb.read_into(out) == 12
    assert ints(out) == [1000, 750, 500, 250, 5, 6, 0, 0]
    assert rb.underruns == 1, "the new stream ran dry while flowing"


def test_clear_before_playback_drops_without_fade() -> None:
    """Audio that never started playing is dropped silently: nothing was heard to fade."""
    rb = RingBuffer(64, prebuffer_bytes=32)
    rb.write(pcm([500] * 4))
    rb.read_into(bytearray(4))
    rb.clear()
    out = bytearray(8)
    assert rb.read_into(out) == 0
    assert ints(out) == [0, 0, 0, 0]
    assert rb.free == rb.capacity


def test_free_space_returns_after_consumer_handles_clear() -> None:
    """Between clear() and the next read the dropped audio still occupies space (it is faded)."""
    rb = RingBuffer(16, fade_samples=2)
    rb.write(pcm([9] * 8))
    rb.read_into(bytearray(2))
    rb.clear()
    assert rb.free == 2
    assert rb.available == 0
    assert rb.write(pcm([1, 2, 3])) == 2
    rb.read_into(bytearray(2))
    assert rb.free == 2, "half-way through the fade"
    rb.read_into(bytearray(2))
    assert rb.free == 16 - 2
    assert rb.available == 2


def test_gain_saturates_and_rounds_half_to_even() -> None:
    """Gain is applied on read, saturating at int16 limits; 0.0 gives silence but counts audio."""
    rb = RingBuffer(64)
    rb.gain = 2.0
    rb.write(pcm([20000, -20000, 3, -3]))
    out = bytearray(8)
    assert rb.read_into(out) == 8
    assert ints(out) == [32767, -32768, 6, -6]
    rb.gain = 0.5
    rb.write(pcm([3, 5, -3, 1]))
    rb.read_into(out)
    assert ints(out) == [2, 2, -2, 0]
    rb.gain = 0.0
    rb.write(pcm([123, 456]))
    assert rb.read_into(bytearray(4)) == 4


def test_numpy_int16_in_and_out_without_conversion() -> None:
    """numpy int16 arrays go in and come out as the same samples (buffer protocol, no copy)."""
    rb = RingBuffer(64)
    rb.write(np.array([-1, 2, -3], dtype=np.int16))
    out = np.zeros(3, dtype=np.int16)
    assert rb.read_into(out) == 6
    assert out.tolist() == [-1, 2, -3]


def test_large_copies_release_the_gil_and_stay_correct() -> None:
    """Copies above GIL_RELEASE_MIN_BYTES take the GIL-free path and wrap around correctly."""
    n = GIL_RELEASE_MIN_BYTES
    rb = RingBuffer(2 * n)
    first = np.arange(n // 2, dtype=np.int16)
    second = np.arange(n // 2, n, dtype=np.int16)
    out = np.zeros(n // 2, dtype=np.int16)
    rb.write(first)
    rb.read_into(out)
    for _ in range(3):
        assert rb.write(second) == n
        assert rb.write(first) == n
        assert rb.read_into(out) == n
        assert out.tolist() == second.tolist()
        assert rb.read_into(out) == n
        assert out.tolist() == first.tolist()


def test_repr_names_the_state() -> None:
    """repr shows capacity, available and flowing for logs."""
    assert repr(RingBuffer(16)) == "<RingBuffer capacity=16 available=0 flowing=False>"


# -------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "exc", "words"),
    [
        ({"capacity_bytes": 0}, ValueError, "capacity_bytes must be > 0"),
        ({"capacity_bytes": -5}, ValueError, "capacity_bytes must be >= 0"),
        ({"capacity_bytes": MAX_CAPACITY_BYTES + 1}, ValueError, "capacity_bytes must be <="),
        ({"capacity_bytes": 1 << 80}, ValueError, "capacity_bytes must be <="),
        ({"capacity_bytes": 64.0}, TypeError, "capacity_bytes must be an int"),
        ({"capacity_bytes": True}, TypeError, "capacity_bytes must be an int"),
        ({"capacity_bytes": 64, "fade_samples": -1}, ValueError, "fade_samples must be >= 0"),
        ({"capacity_bytes": 64, "fade_samples": 10**7}, ValueError, "fade_samples must be <="),
        ({"capacity_bytes": 64, "prebuffer_bytes": 65}, ValueError, "prebuffer_bytes must be <="),
        ({"capacity_bytes": 64, "prebuffer_bytes": -2}, ValueError, "prebuffer_bytes must be >="),
    ],
)
def test_constructor_rejects_bad_arguments(
    kwargs: dict[str, object], exc: type[Exception], words: str
) -> None:
    """Each bad constructor argument raises the documented exception naming the argument."""
    with pytest.raises(exc, match=words):
        RingBuffer(**kwargs)  # type: ignore[arg-type]


def test_constructor_options_are_keyword_only() -> None:
    """fade_samples and prebuffer_bytes cannot be passed positionally by mistake."""
    with pytest.raises(TypeError):
        RingBuffer(64, 96)  # type: ignore[call-arg]


def test_write_rejects_bad_buffers_and_keeps_state() -> None:
    """Odd, non-contiguous, float, non-buffer data: clear errors, nothing written."""
    rb = RingBuffer(64)
    with pytest.raises(ValueError, match="even number of bytes"):
        rb.write(b"abc")
    with pytest.raises(BufferError, match="C-contiguous"):
        rb.write(np.zeros((4, 4), dtype=np.int16)[:, 0])
    with pytest.raises(TypeError, match="item format 'f'"):
        rb.write(np.zeros(4, dtype=np.float32))
    with pytest.raises(TypeError, match="bytes-like"):
        rb.write("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes-like"):
        rb.write(42)  # type: ignore[arg-type]
    assert rb.bytes_written == 0
    assert rb.overruns == 0


def test_read_into_rejects_bad_buffers_and_reads_nothing() -> None:
    """Read-only, odd, non-contiguous or non-PCM outputs: clear errors, the audio stays put."""
    rb = RingBuffer(64)
    rb.write(pcm([1, 2, 3]))
    with pytest.raises(BufferError, match="writable"):
        rb.read_into(b"\x00\x00")
    with pytest.raises(ValueError, match="even number of bytes"):
        rb.read_into(bytearray(3))
    with pytest.raises(BufferError, match="C-contiguous"):
        rb.read_into(np.zeros((4, 4), dtype=np.int16)[:, 1])
    with pytest.raises(TypeError, match="item format 'd'"):
        rb.read_into(np.zeros(4))
    with pytest.raises(TypeError, match="bytes-like"):
        rb.read_into(None)  # type: ignore[arg-type]
    assert rb.available == 6
    assert rb.bytes_read == 0


@pytest.mark.parametrize("bad", [-0.1, 4.01, math.nan, math.inf, -math.inf])
def test_gain_out_of_range_is_rejected(bad: float) -> None:
    """Gain outside 0.0..4.0 (and NaN) raises ValueError and leaves the gain unchanged."""
    rb = RingBuffer(64)
    rb.gain = 1.5
    with pytest.raises(ValueError, match="gain must be between"):
        rb.gain = bad
    assert rb.gain == 1.5


def test_gain_and_prebuffer_type_errors() -> None:
    """Non-numbers for gain and non-ints for prebuffer_bytes raise TypeError; no deleting."""
    rb = RingBuffer(64)
    with pytest.raises(TypeError, match="gain must be a float"):
        rb.gain = "loud"  # type: ignore[assignment]
    with pytest.raises(TypeError, match="prebuffer_bytes must be an int"):
        rb.prebuffer_bytes = 1.5  # type: ignore[assignment]
    with pytest.raises(ValueError, match="prebuffer_bytes must be <= 64"):
        rb.prebuffer_bytes = 66
    with pytest.raises(AttributeError):
        del rb.gain
    with pytest.raises(AttributeError):
        rb.capacity = 3  # type: ignore[misc]


@pytest.mark.parametrize("method", ["wait_readable", "wait_writable"])
def test_wait_rejects_bad_arguments(method: str) -> None:
    """Negative or NaN timeouts, odd, negative or impossible byte counts raise ValueError."""
    rb = RingBuffer(64)
    wait = getattr(rb, method)
    with pytest.raises(ValueError, match="timeout_s must be >= 0"):
        wait(2, -1.0)
    with pytest.raises(ValueError, match="timeout_s must be >= 0"):
        wait(2, math.nan)
    with pytest.raises(ValueError, match="nbytes must be even"):
        wait(3, 0.0)
    with pytest.raises(ValueError, match="nbytes must be >= 0"):
        wait(-2, 0.0)
    with pytest.raises(ValueError, match="nbytes must be <= 64"):
        wait(66, 0.0)
    with pytest.raises(TypeError):
        wait(2)
    with pytest.raises(TypeError):
        wait(2, "soon")


def test_wait_times_out_and_returns_false() -> None:
    """A condition that cannot become true returns False once the timeout passes."""
    rb = RingBuffer(64)
    assert rb.wait_readable(2, 0.05) is False
    rb.write(bytes(64))
    assert rb.wait_writable(2, 0.05) is False
    assert rb.wait_readable(64, 0.0) is True


@given(st.lists(INT16, max_size=64), GAINS)
@settings(max_examples=100)
def test_model_and_buffer_agree_on_gain_arithmetic(samples: list[int], gain: float) -> None:
    """For any samples and gain the C rounding and saturation equal the model's."""
    rb = RingBuffer(256)
    model = ModelRingBuffer(256)
    rb.gain = model.gain = gain
    rb.write(pcm(samples))
    model.write(pcm(samples))
    out = bytearray(2 * len(samples))
    rb.read_into(out)
    assert bytes(out) == model.read(len(out))[0]
