"""The daemon's mock pins ("mock" pin factory) keep a bounded history of state changes.

gpiozero's MockPin appends every change to `pin.states` for ever; the daemon's pulsing RGB LED
changes each channel 25 times a second, so a daemon on mock pins (the demo, the soak) grew
without bound while it answered. These drive a real gpiozero PWMLED on the factory the daemon
uses and check that memory stays flat while the newest history is still there to assert on.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero import PWMLED

from pilive.controls.gpio import MOCK_PIN_HISTORY, make_pin_factory

CHANGES = 10_000  # about seven minutes of one pulsing LED channel at gpiozero's 25 fps
GROWTH_LIMIT_BYTES = 64 * 1024  # unbounded history holds about 900 kB after CHANGES


@pytest.fixture
def led() -> Iterator[Any]:
    factory = make_pin_factory("mock")
    device = PWMLED(5, pin_factory=factory)
    yield device
    device.close()
    factory.reset()
    factory.close()


def _levels(n: int) -> Iterator[float]:
    """Distinct consecutive levels (a repeated level is not a change), like a fade."""
    for i in range(n):
        yield (i % 100 + 1) / 101


def test_history_length_is_bounded(led: Any) -> None:
    """Ten thousand level changes leave at most 2 * MOCK_PIN_HISTORY + 1 entries, and the newest
    MOCK_PIN_HISTORY of them are the last levels written, in order."""
    pin = led.pin
    written = list(_levels(CHANGES))
    for level in written:
        led.value = level
    assert MOCK_PIN_HISTORY <= len(pin.states) <= 2 * MOCK_PIN_HISTORY + 1
    newest = [s.state for s in pin.states][-MOCK_PIN_HISTORY:]
    assert newest == pytest.approx(written[-MOCK_PIN_HISTORY:])


def test_memory_stays_flat_while_the_led_changes(led: Any) -> None:
    """Traced memory after ten thousand level changes is within GROWTH_LIMIT_BYTES of where it
    was after the first thousand (the warm-up): the history no longer keeps every change."""
    levels = _levels(CHANGES + 1000)
    for _, level in zip(range(1000), levels, strict=False):
        led.value = level
    gc.collect()
    tracemalloc.start()
    try:
        before_bytes, _ = tracemalloc.get_traced_memory()
        for level in levels:
            led.value = level
        gc.collect()
        after_bytes, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after_bytes - before_bytes < GROWTH_LIMIT_BYTES, (
        f"mock pin state history grew by {after_bytes - before_bytes} bytes over {CHANGES} changes"
    )


def test_recent_history_still_asserts(led: Any) -> None:
    """`clear_states` then a few changes reads exactly as with gpiozero's own MockPin, so tests
    that assert on pin history keep working."""
    pin = led.pin
    pin.clear_states()
    for level in (0.25, 0.5, 1.0, 0.0):
        led.value = level
    pin.assert_states([0.0, 0.25, 0.5, 1.0, 0.0])
    assert len(pin.states) == 5
