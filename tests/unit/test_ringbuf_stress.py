"""Two real threads hammer the C ring buffer: no loss, reordering or tearing, clear() included.

Samples carry sequence numbers: sample q of the produced stream is 16384 + q % 16381, so every
value is large and positive, a torn sample shows up as a wrong value and a fade sample (scaled
down) can be told from stream data. Large chunks (>= GIL_RELEASE_MIN_BYTES) copy without the GIL,
so those writes and reads really overlap; the switch interval is shortened so small ones interleave
finely too.
"""

from __future__ import annotations

import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import numpy as np
import numpy.typing as npt
import pytest

from pilive.audio._ringbuf import GIL_RELEASE_MIN_BYTES, RingBuffer

# Prime, so stale data one lap behind (capacity is a power of two) never looks like fresh data.
PERIOD = 16381
# Twice the period plus the largest chunk, so any chunk is one slice starting anywhere in a period.
MAX_CHUNK_SAMPLES = 128 * 1024
PATTERN = (16384 + np.arange(2 * PERIOD + MAX_CHUNK_SAMPLES) % PERIOD).astype(np.int16)
JOIN_TIMEOUT_S = 60.0
WAIT_TIMEOUT_S = 10.0

Int16Array = npt.NDArray[np.int16]


def seq(q: int, n: int) -> Int16Array:
    """The n samples of the produced stream starting at sample q."""
    start = q % PERIOD
    return PATTERN[start : start + n]


def small_chunk(rng: random.Random) -> int:
    """Mostly audio-callback sizes (GIL held), sometimes a bulk copy without the GIL."""
    if rng.random() < 0.02:
        return rng.randint(GIL_RELEASE_MIN_BYTES // 2, 3 * GIL_RELEASE_MIN_BYTES)
    return rng.randint(1, 512)


def bulk_chunk(rng: random.Random) -> int:
    """Copies large enough that both threads spend most of their time copying without the GIL,
    in parallel on two cores: the case where publishing order really matters."""
    return rng.randint(GIL_RELEASE_MIN_BYTES // 2, MAX_CHUNK_SAMPLES)


@contextmanager
def fine_switching() -> Iterator[None]:
    """Switch threads every 10 µs instead of 5 ms so GIL-holding calls interleave closely."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_pair(producer: Callable[[], None], consumer: Callable[[], None]) -> None:
    """Run both in threads; re-raise the first failure; fail if either hangs."""
    errors: list[BaseException] = []

    def guard(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)
                raise

        return run

    threads = [threading.Thread(target=guard(fn), daemon=True) for fn in (producer, consumer)]
    with fine_switching():
        for t in threads:
            t.start()
        for t in threads:
            t.join(JOIN_TIMEOUT_S)
    if errors:
        raise errors[0]
    assert not any(t.is_alive() for t in threads), "a thread hung"


def stream_through(
    rb: RingBuffer,
    write_sizes: list[int],
    read_size: Callable[[random.Random], int],
    *,
    spin: bool = False,
) -> dict[str, int]:
    """Producer writes the sized chunks of the sequence stream; the consumer checks every read:
    exactly the next samples, in order, then silence. A spinning consumer never sleeps when the
    buffer is empty, so it is running, reading the write index, while the producer copies.
    Returns the call counts."""
    total = sum(write_sizes)
    ops = {"write": 0, "read": 0}

    def producer() -> None:
        p = 0
        for n in write_sizes:
            left = n
            while left:
                accepted = rb.write(seq(p, left)) // 2
                ops["write"] += 1
                p += accepted
                left -= accepted
                if left:
                    assert rb.wait_writable(min(2 * left, rb.capacity), WAIT_TIMEOUT_S)
        rb.end_stream()

    def consumer() -> None:
        rng = random.Random(8)
        q = 0
        out = np.empty(MAX_CHUNK_SAMPLES, dtype=np.int16)
        while q < total:
            view = out[: read_size(rng)]
            got = rb.read_into(view) // 2
            ops["read"] += 1
            assert np.array_equal(view[:got], seq(q, got)), f"wrong audio at sample {q}"
            assert not view[got:].any(), f"non-silence after the audio at sample {q + got}"
            q += got
            if got == 0 and not spin:
                assert rb.wait_readable(2, WAIT_TIMEOUT_S)

    run_pair(producer, consumer)
    assert rb.bytes_written == rb.bytes_read == 2 * total
    assert rb.available == 0
    return ops


def test_two_threads_lose_reorder_and_tear_nothing() -> None:
    """About 800,000 audio-sized writes and reads from two threads: the consumer gets every
    sample exactly once, in order, silence only after a read's audio; short writes keep the rest."""
    rng = random.Random(7)
    ops = stream_through(
        RingBuffer(64 * 1024), [small_chunk(rng) for _ in range(400_000)], small_chunk
    )
    assert ops["write"] + ops["read"] >= 800_000


def test_gil_free_bulk_copies_overlap_without_tearing() -> None:
    """Bulk writes copy without the GIL while the consumer keeps reading (bulk and small
    reads): data is published only after it is copied and space only after it is read, so
    every sample still arrives once, in order, never stale data from the previous lap."""
    rng = random.Random(9)
    sizes = [bulk_chunk(rng) for _ in range(1000)]
    ops = stream_through(RingBuffer(1 << 18), sizes, small_chunk, spin=True)
    assert ops["write"] >= 1000
    ops = stream_through(RingBuffer(1 << 20), sizes, bulk_chunk)
    assert ops["write"] >= 1000


def expected_fade(q: int, n: int) -> Int16Array:
    """The n-sample linear fade the consumer plays from stream sample q (gain 1.0)."""
    values = seq(q, n).astype(np.float64)
    factors = (n - np.arange(n)) / n
    return np.clip(np.rint(values * factors), -32768, 32767).astype(np.int16)


def validate_with_clears(
    audio: Int16Array, clear_positions: list[int], fade_samples: int
) -> dict[str, int]:
    """Check the consumer's audio is stream data, where each discontinuity is an optional fade
    from the read position followed by a jump forward to a position where clear() was called.

    Returns how many jumps and fades were seen. A torn or reordered sample matches no candidate.
    """
    clears = np.array(sorted(set(clear_positions)), dtype=np.int64)
    i = q = 0
    run_start = 0  # index where the current contiguous run began
    stats = {"jumps": 0, "fades": 0}

    def run_length(at: int, pos: int) -> int:
        m = min(len(audio) - at, 64)
        eq = audio[at : at + m] == seq(pos, m)
        return m if eq.all() else int(np.argmin(eq))

    while i < len(audio):
        m = min(len(audio) - i, PERIOD)
        eq = audio[i : i + m] == seq(q, m)
        if eq.all():
            i, q = i + m, q + m
            continue
        k = int(np.argmin(eq))
        i, q = i + k, q + k
        # Candidates: (index after the fade, stream position after the fade, fade length).
        candidates = [(i, q, 0)]
        if i > run_start:  # audio[i-1] matched, so it may have been the fade's first sample
            for n in range(2, fade_samples + 1):
                if i - 1 + n <= len(audio) and np.array_equal(
                    audio[i - 1 : i - 1 + n], expected_fade(q - 1, n)
                ):
                    candidates.append((i - 1 + n, q - 1 + n, n))
        best: tuple[int, int, int, int] | None = None  # (lookahead, index, position, fade)
        for at, pos, n in candidates:
            if at == len(audio):
                best = best or (0, at, pos, n)
                continue
            for target in clears[np.searchsorted(clears, pos) :]:
                if audio[at] != seq(int(target), 1)[0]:
                    continue
                ahead = run_length(at, int(target))
                if best is None or ahead > best[0]:
                    best = (ahead, at, int(target), n)
                break
        assert best is not None, (
            f"audio[{i}]={audio[i]} at stream position {q} is neither a fade nor a jump to a "
            f"clear position (torn, lost or reordered data); context {audio[max(0, i - 4) : i + 4]}"
        )
        _, i, q, n = best
        stats["jumps"] += 1
        stats["fades"] += n > 0
        run_start = i
    return stats


def test_concurrent_clear_never_shows_torn_or_mixed_audio() -> None:
    """clear() from the producer while the consumer reads: the consumer's audio is contiguous
    stream data, broken only by a linear fade from the read position and a jump forward to a
    clear position; fades and jumps both occur."""
    fade_samples = 32
    rb = RingBuffer(32 * 1024, fade_samples=fade_samples)
    n_writes = 200_000
    clear_positions: list[int] = []
    done = threading.Event()
    pieces: list[Int16Array] = []
    ops = {"read": 0}

    def producer() -> None:
        rng = random.Random(11)
        p = 0
        for _ in range(n_writes):
            n = rng.randint(1, 96) if rng.random() > 0.01 else GIL_RELEASE_MIN_BYTES
            accepted = rb.write(seq(p, n)) // 2
            p += accepted
            if accepted < n:
                assert rb.wait_writable(2, WAIT_TIMEOUT_S)
            if rng.random() < 0.004:
                clear_positions.append(rb.bytes_written // 2)
                rb.clear()
        rb.end_stream()
        done.set()

    def consumer() -> None:
        rng = random.Random(12)
        out = np.empty(GIL_RELEASE_MIN_BYTES, dtype=np.int16)
        while True:
            n = rng.randint(1, 128) if rng.random() > 0.01 else GIL_RELEASE_MIN_BYTES
            view = out[:n]
            got = rb.read_into(view) // 2
            ops["read"] += 1
            assert not view[got:].any()
            if got:
                pieces.append(view[:got].copy())
            elif done.is_set() and rb.available == 0:
                break
            else:
                rb.wait_readable(2, 0.01)

    run_pair(producer, consumer)
    audio = np.concatenate(pieces)
    stats = validate_with_clears(audio, clear_positions, fade_samples)
    assert n_writes + ops["read"] >= 250_000
    assert rb.clears == len(clear_positions) > 100
    assert stats["jumps"] > 10, stats
    assert stats["fades"] > 10, stats


def test_validator_rejects_torn_and_reordered_audio() -> None:
    """The clear validator is not vacuous: a swapped pair, a torn sample or a backward jump fail."""
    clean = np.concatenate([seq(0, 100), expected_fade(100, 8), seq(500, 50)])
    assert validate_with_clears(clean, [500], 8) == {"jumps": 1, "fades": 1}
    swapped = clean.copy()
    swapped[[10, 11]] = swapped[[11, 10]]
    torn = clean.copy()
    torn[120] = np.int16(int(torn[120]) ^ 0x0100)
    backward = np.concatenate([seq(0, 100), seq(50, 20)])
    for bad in (swapped, torn, backward):
        with pytest.raises(AssertionError, match="neither a fade nor a jump"):
            validate_with_clears(bad, [50, 500], 8)


def test_waits_drive_a_consumer_thread_without_lost_wakeups() -> None:
    """A consumer that only reads after wait_readable() and a producer that waits with
    wait_writable() move 2,000 bursts; a lost wake-up would surface as a 10 s timeout (False)."""
    chunk = 960  # 20 ms at 24 kHz
    rb = RingBuffer(4 * chunk)
    rng = random.Random(3)
    bursts = [rng.randint(1, 3 * chunk // 2) for _ in range(2000)]
    total = sum(bursts)
    received: list[Int16Array] = []
    timeouts = {"read": 0, "write": 0}

    def producer() -> None:
        p = 0
        for n in bursts:
            left = n
            while left:
                if not rb.wait_writable(2, WAIT_TIMEOUT_S):
                    timeouts["write"] += 1
                    return
                accepted = rb.write(seq(p, left)) // 2
                p += accepted
                left -= accepted
            if rng.random() < 0.05:
                time.sleep(0.001)
        rb.end_stream()

    def consumer() -> None:
        got_total = 0
        out = np.empty(chunk, dtype=np.int16)
        while got_total < total:
            if not rb.wait_readable(2 * chunk, WAIT_TIMEOUT_S):
                timeouts["read"] += 1
                return
            got = rb.read_into(out) // 2
            received.append(out[:got].copy())
            got_total += got

    run_pair(producer, consumer)
    assert timeouts == {"read": 0, "write": 0}
    assert np.array_equal(np.concatenate(received), np.resize(seq(0, PERIOD), total))


def test_wait_readable_wakes_for_an_ended_short_tail() -> None:
    """end_stream() wakes a reader waiting for more than the tail holds: the tail must play."""
    rb = RingBuffer(1024)
    rb.write(seq(0, 10))
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(rb.wait_readable(512, 30.0)))
    waiter.start()
    time.sleep(0.05)
    rb.end_stream()
    waiter.join(JOIN_TIMEOUT_S)
    assert results == [True]
    out = np.empty(256, dtype=np.int16)
    assert rb.read_into(out) == 20


class Interrupted(Exception):
    """Raised by the test's signal handler."""


def test_main_thread_wait_is_interruptible_by_signals() -> None:
    """An endless wait in the main thread still runs signal handlers (Ctrl-C works)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            RingBuffer(64).wait_readable(2, float("inf"))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_gain_changes_from_a_third_thread_apply_whole_reads() -> None:
    """Gain set from another thread while reading: each read uses one gain, never a torn mix."""
    rb = RingBuffer(4096)
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            rb.gain = 2.0
            rb.gain = 0.5

    flipper = threading.Thread(target=flip)
    # One of the two gains is in force before the first read, however late the flipper starts
    # (on a slow CPU it may not have run at all yet).
    rb.gain = 2.0
    with fine_switching():
        flipper.start()
        try:
            out = np.empty(64, dtype=np.int16)
            for _ in range(5000):
                rb.write(np.full(64, 1000, dtype=np.int16))
                assert rb.read_into(out) == 128
                assert out[0] in (2000, 500)
                assert (out == out[0]).all()
        finally:
            stop.set()
            flipper.join(JOIN_TIMEOUT_S)
