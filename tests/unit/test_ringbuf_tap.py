"""The ring buffer's reference tap: exactly what the device was handed, and when."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pilive.audio._ringbuf import RingBuffer


def _pcm(values: np.ndarray) -> bytes:
    return values.astype("<i2").tobytes()


def test_the_tap_holds_every_byte_handed_to_the_device_gain_fade_and_silence_included() -> None:
    """What read_into() filled (after gain, the barge-in fade and the zero fill) is what the tap
    returns, byte for byte, at the positions the blocks were handed over."""
    rb = RingBuffer(8192, fade_samples=8, tap_bytes=4096)
    rb.gain = 0.5
    rb.write(_pcm(np.arange(1, 401) * 10))
    handed = bytearray()
    out = bytearray(160)
    for block in range(6):
        if block == 2:
            rb.clear()  # barge-in: the next block starts with a fade
        rb.read_into(out)
        handed += out
    assert rb.tap_position == len(handed) == 960
    got = bytearray(len(handed))
    assert rb.tap_read(got, 0) == len(handed)
    assert got == handed
    assert handed[-160:] == bytes(160)  # silence after the fade is in the tap too


def test_stamps_pair_a_tap_position_with_the_dac_time_given() -> None:
    rb = RingBuffer(4096, tap_bytes=1024)
    assert rb.tap_stamp() is None
    out = bytearray(64)
    rb.read_into(out, 100.25)
    rb.read_into(out)  # no time given: counted, not stamped
    assert rb.tap_stamp() == (0, 100.25)
    rb.read_into(out, 100.5)
    assert rb.tap_stamp() == (128, 100.5)
    assert rb.tap_position == 192
    with pytest.raises(ValueError, match="finite"):
        rb.read_into(out, float("nan"))


def test_reads_past_the_device_are_short_and_overwritten_positions_are_refused() -> None:
    rb = RingBuffer(4096, tap_bytes=256)
    out = bytearray(100)
    rb.read_into(out)
    buf = bytearray(300)
    assert rb.tap_read(buf, 40) == 60  # only what the device got so far
    assert rb.tap_read(buf, 100) == 0
    for _ in range(5):
        rb.read_into(out)
    with pytest.raises(LookupError, match="no longer held"):
        rb.tap_read(buf, 0)
    assert rb.tap_read(buf, rb.tap_position - 256) == 256


def test_a_ring_without_a_tap_counts_but_keeps_nothing() -> None:
    rb = RingBuffer(4096)
    rb.read_into(bytearray(32), 1.0)
    assert (rb.tap_capacity, rb.tap_position, rb.tap_stamp()) == (0, 32, (0, 1.0))
    with pytest.raises(ValueError, match="no tap"):
        rb.tap_read(bytearray(2), 0)


def test_a_reader_thread_gets_exact_bytes_or_a_lookup_error_never_torn_data() -> None:
    """The device thread overwrites the tap while another thread reads it: every successful read
    returns the bytes handed over at those positions (a counter pattern shows any mix-up)."""
    rb = RingBuffer(1 << 16, tap_bytes=2048)
    block = 256
    stop = threading.Event()
    first_read = threading.Event()
    problems: list[str] = []

    def device() -> None:
        counter = 0
        out = np.zeros(block // 2, dtype="<i2")
        # As many blocks as before, and on until the reader has read once, however slowly a
        # loaded machine schedules it.
        while not stop.is_set() and (counter < 200_000 or not first_read.is_set()):
            rb.write(_pcm((np.arange(block // 2) + counter) % 30000))
            rb.read_into(out)
            counter += block // 2

    writer = threading.Thread(target=device)
    writer.start()
    reads = 0
    buf = bytearray(512)
    deadline_s = time.monotonic() + 30.0  # a bound on a loaded machine, not a figure
    try:
        while writer.is_alive() and reads < 20_000 and time.monotonic() < deadline_s:
            pos = max(0, rb.tap_position - 1024)
            pos -= pos % 2
            try:
                got = rb.tap_read(buf, pos)
            except LookupError:
                continue
            samples = np.frombuffer(buf[:got], dtype="<i2")
            expected = (np.arange(len(samples)) + pos // 2) % 30000
            if not np.array_equal(samples, expected):
                problems.append(f"torn read at {pos}")
            reads += 1
            first_read.set()
    finally:
        stop.set()
        writer.join()
    assert reads > 0
    assert not problems, problems[:3]
