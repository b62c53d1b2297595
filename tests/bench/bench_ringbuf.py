"""Cost of moving one 40 ms chunk of 24 kHz s16le audio (1,920 bytes) through the playback buffer.

One write plus one read_into per sample, timed together, for the C ring buffer (at unity gain and
at 0.8, which takes the per-sample path), the pure-Python model ring and a queue.Queue of bytes
(what a plain-Python playback path would use). Run: python -m tests.bench.bench_ringbuf
"""

from __future__ import annotations

import gc
import queue
import statistics
import time
from collections.abc import Callable

from pilive.audio._ringbuf import RingBuffer
from tests.support.ringbuf_model import ModelRingBuffer

CHUNK_BYTES = 1920  # 40 ms at 24 kHz, mono, 16-bit
SAMPLES = 20_000
WARMUP = 1_000


def _c_ring(gain: float) -> Callable[[bytes, bytearray], None]:
    rb = RingBuffer(64 * 1024)
    rb.gain = gain

    def step(chunk: bytes, out: bytearray) -> None:
        rb.write(chunk)
        rb.read_into(out)

    return step


def _model_ring() -> Callable[[bytes, bytearray], None]:
    rb = ModelRingBuffer(64 * 1024)

    def step(chunk: bytes, out: bytearray) -> None:
        rb.write(chunk)
        rb.read_into(out)

    return step


def _queue() -> Callable[[bytes, bytearray], None]:
    q: queue.Queue[bytes] = queue.Queue()

    def step(chunk: bytes, out: bytearray) -> None:
        q.put_nowait(chunk)
        out[:] = q.get_nowait()

    return step


def _measure(step: Callable[[bytes, bytearray], None]) -> tuple[float, float]:
    """Median and p99 in µs of one write + read, GC paused so it does not land in one sample."""
    chunk = bytes(range(256)) * (CHUNK_BYTES // 256) + bytes(CHUNK_BYTES % 256)
    out = bytearray(CHUNK_BYTES)
    for _ in range(WARMUP):
        step(chunk, out)
    timings_ns: list[int] = []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for _ in range(SAMPLES):
            t0 = clock()
            step(chunk, out)
            timings_ns.append(clock() - t0)
    finally:
        gc.enable()
    timings_ns.sort()
    median_us = statistics.median(timings_ns) / 1000
    p99_us = timings_ns[int(len(timings_ns) * 0.99)] / 1000
    return median_us, p99_us


def main() -> dict[str, dict[str, float]]:
    """Print the table and return {implementation: {"median_us": .., "p99_us": ..}}."""
    candidates: dict[str, Callable[[bytes, bytearray], None]] = {
        "C RingBuffer, gain 1.0": _c_ring(1.0),
        "C RingBuffer, gain 0.8": _c_ring(0.8),
        "Python bytearray ring (model)": _model_ring(),
        "queue.Queue of bytes": _queue(),
    }
    results: dict[str, dict[str, float]] = {}
    print(f"write + read_into of {CHUNK_BYTES} bytes (40 ms), {SAMPLES} samples each")
    print(f"{'implementation':32} {'median µs':>10} {'p99 µs':>10}")
    for name, step in candidates.items():
        median_us, p99_us = _measure(step)
        results[name] = {"median_us": median_us, "p99_us": p99_us}
        print(f"{name:32} {median_us:10.2f} {p99_us:10.2f}")
    return results


if __name__ == "__main__":
    main()
