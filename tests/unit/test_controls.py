"""Buttons, LEDs and keyboard push-to-talk, driven through real gpiozero mock pins and real pipes.

Mock pins are gpiozero's own (MockFactory with MockPWMPin): the same Button/LED/PWMLED/RGBLED code
runs as on a Pi, only the pin edge is simulated. LED timing is checked with gpiozero's own
`assert_states_and_times` (tolerance 50 ms), so patterns use periods of 0.1 s and more.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Button, Device
from gpiozero.exc import GPIOPinInUse
from gpiozero.pins.mock import MockFactory, MockPWMPin

from pilive import wiring
from pilive.config import Config
from pilive.controls.events import (
    ApplianceState,
    ButtonPressed,
    ButtonReleased,
    ControlEvent,
    NewConversationPressed,
)
from pilive.controls.gpio import Controls, ControlsConfig, GpioButtons, StatusLed, make_pin_factory
from pilive.controls.keyboard import KeyboardPushToTalk
from pilive.controls.patterns import LedConfig, LedPattern

# The configuration's LED patterns, the one home of the defaults.
DEFAULTS = wiring.controls_config(Config()).led.patterns

EVENT_TIMEOUT_S = 5.0


@pytest.fixture(autouse=True)
def _global_pin_factory_reset() -> Iterator[None]:
    """Nothing here may leak into gpiozero's global factory; reset it either way."""
    yield
    if Device.pin_factory is not None:
        Device.pin_factory.reset()


@pytest.fixture
def factory() -> Iterator[Any]:
    f = make_pin_factory("mock")
    yield f
    f.reset()
    f.close()


def states(pin: Any) -> list[Any]:
    return [s.state for s in pin.states]


class EventSink:
    """Collects control events and remembers which thread delivered each."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[ControlEvent] = asyncio.Queue()
        self.threads: list[int] = []

    def __call__(self, event: ControlEvent) -> None:
        self.threads.append(threading.get_ident())
        self.queue.put_nowait(event)

    async def next(self) -> ControlEvent:
        return await asyncio.wait_for(self.queue.get(), EVENT_TIMEOUT_S)


# --- pin factories ---------------------------------------------------------------------------


def test_mock_factory_has_pwm_pins() -> None:
    """'mock' gives a MockFactory whose pins do PWM, so PWMLED and RGBLED can run on it."""
    f = make_pin_factory("mock")
    try:
        assert isinstance(f, MockFactory)
        assert isinstance(f.pin(4), MockPWMPin)
    finally:
        f.close()


def test_unknown_factory_named_in_error() -> None:
    """A typo in the factory name is reported with the bad name and the valid choices."""
    with pytest.raises(ValueError, match=r"'lgpoi'.*'lgpio'.*'mock'"):
        make_pin_factory("lgpoi")
    with pytest.raises(ValueError, match="'bogus'"):
        ControlsConfig(pin_factory="bogus")


# --- buttons ---------------------------------------------------------------------------------


async def test_press_and_release_reach_the_loop_via_call_soon(factory: Any) -> None:
    """drive_low/drive_high on a pulled-up button pin become ButtonPressed/ButtonReleased,
    delivered by the loop (not synchronously inside gpiozero's callback), with monotonic times."""
    sink = EventSink()
    loop = asyncio.get_running_loop()
    buttons = GpioButtons(factory, 17, loop=loop, on_event=sink)
    pin = factory.pin(17)
    try:
        before = time.monotonic()
        pin.drive_low()
        assert sink.queue.empty()  # handed over, not called inside gpiozero
        pressed = await sink.next()
        assert isinstance(pressed, ButtonPressed)
        assert buttons.is_pressed
        pin.drive_high()
        released = await sink.next()
        assert isinstance(released, ButtonReleased)
        assert before <= pressed.at <= released.at <= time.monotonic()
        assert not buttons.is_pressed
    finally:
        buttons.close()


async def test_edges_from_another_thread_arrive_on_the_loop_thread(factory: Any) -> None:
    """With real lgpio the callback runs on gpiozero's thread; events must still be delivered on
    the loop's thread. A thread driving the mock pin reproduces that."""
    sink = EventSink()
    loop = asyncio.get_running_loop()
    buttons = GpioButtons(factory, "GPIO27", loop=loop, on_event=sink)
    pin = factory.pin(27)
    try:
        edges = threading.Thread(target=lambda: (pin.drive_low(), pin.drive_high()))
        edges.start()
        edges.join()
        assert isinstance(await sink.next(), ButtonPressed)
        assert isinstance(await sink.next(), ButtonReleased)
        assert sink.threads == [threading.get_ident()] * 2
    finally:
        buttons.close()


async def test_pull_down_button_and_bounce_time(factory: Any) -> None:
    """pull_up=False: the button connects to 3V3, so a HIGH pin is a press; bounce_ms reaches
    gpiozero as bounce_time in seconds."""
    sink = EventSink()
    buttons = GpioButtons(
        factory, 22, loop=asyncio.get_running_loop(), on_event=sink, pull_up=False, bounce_ms=35
    )
    pin = factory.pin(22)
    try:
        assert pin.pull == "down"
        assert pin.bounce == pytest.approx(0.035)
        pin.drive_high()
        assert isinstance(await sink.next(), ButtonPressed)
        pin.drive_low()
        assert isinstance(await sink.next(), ButtonReleased)
    finally:
        buttons.close()


async def test_new_conversation_button(factory: Any) -> None:
    """The optional second button produces NewConversationPressed, independent of the talk one."""
    sink = EventSink()
    buttons = GpioButtons(
        factory, 17, loop=asyncio.get_running_loop(), on_event=sink, new_conversation_pin=23
    )
    try:
        factory.pin(23).drive_low()
        assert isinstance(await sink.next(), NewConversationPressed)
        factory.pin(23).drive_high()
        factory.pin(17).drive_low()
        assert isinstance(await sink.next(), ButtonPressed)
    finally:
        buttons.close()


async def test_close_releases_pins_and_ignores_later_edges(factory: Any) -> None:
    """After close no event is delivered and the pins are free for another device."""
    sink = EventSink()
    buttons = GpioButtons(
        factory, 17, loop=asyncio.get_running_loop(), on_event=sink, new_conversation_pin=23
    )
    buttons.close()
    other = Button(17, pin_factory=factory)  # would raise GPIOPinInUse if still reserved
    other.close()
    await asyncio.sleep(0.05)
    assert sink.queue.empty()


def test_negative_bounce_rejected(factory: Any) -> None:
    """A negative debounce is a configuration error named as such, before any pin is claimed."""
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError, match=r"bounce_ms.*-1"):
            GpioButtons(factory, 17, loop=loop, on_event=lambda e: None, bounce_ms=-1)
    finally:
        loop.close()


def test_late_edge_after_loop_closed_is_dropped(factory: Any) -> None:
    """An edge racing the loop's shutdown must not raise into gpiozero's thread."""
    loop = asyncio.new_event_loop()
    got: list[ControlEvent] = []
    buttons = GpioButtons(factory, 17, loop=loop, on_event=got.append)
    loop.close()
    factory.pin(17).drive_low()
    assert got == []
    buttons.close()


# --- LEDs ------------------------------------------------------------------------------------


def test_plain_led_blink_timing(factory: Any) -> None:
    """A plain LED shows 'offline' (blink 0.2 s on / 0.3 s off here) through gpiozero's blink
    thread; a change to 'listening' (solid) takes effect at once and stops the blinking."""
    cfg = LedConfig(
        "led",
        (5,),
        patterns={
            ApplianceState.OFFLINE: LedPattern("blink", on_time_s=0.2, off_time_s=0.3),
            ApplianceState.LISTENING: LedPattern("solid"),
        },
    )
    led = StatusLed(factory, cfg)
    pin = factory.pin(5)
    try:
        pin.clear_states()
        led.show(ApplianceState.OFFLINE)
        time.sleep(1.1)
        led.show(ApplianceState.LISTENING)
        pin.assert_states_and_times(
            [(0.0, False), (0.0, True), (0.2, False), (0.3, True), (0.2, False), (0.3, True)]
        )
        assert pin.state == 1  # solid on now
        settled = len(pin.states)
        time.sleep(0.4)
        assert len(pin.states) == settled  # the blink thread really stopped
    finally:
        led.close()
    assert pin.state == 0


def test_plain_led_shows_pulse_as_blink_and_idle_off(factory: Any) -> None:
    """A plain LED cannot fade: 'thinking' (pulse 0.3/0.3 by default) blinks with that rhythm, and
    'idle' (off by default) turns it off."""
    led = StatusLed(factory, LedConfig("led", (6,), patterns=DEFAULTS))
    pin = factory.pin(6)
    try:
        pin.clear_states()
        led.show(ApplianceState.THINKING)
        time.sleep(0.75)
        led.show(ApplianceState.IDLE)
        pin.assert_states_and_times(
            [(0.0, False), (0.0, True), (0.3, False), (0.3, True), (0.15, False)]
        )
        assert pin.state == 0
    finally:
        led.close()


def test_active_low_led(factory: Any) -> None:
    """active_high=False (LED wired to 3V3) drives the pin low to light it."""
    led = StatusLed(factory, LedConfig("led", (13,), active_high=False, patterns=DEFAULTS))
    pin = factory.pin(13)
    try:
        led.show(ApplianceState.LISTENING)
        assert pin.state == 0
        led.show(ApplianceState.IDLE)
        assert pin.state == 1
    finally:
        led.close()


def test_pwmled_pulse_and_solid_brightness(factory: Any) -> None:
    """A PWMLED pulses through gpiozero's 25 fps fade (steps of 0.04 s) and a solid pattern uses
    its brightness as the duty cycle."""
    cfg = LedConfig(
        "pwmled",
        (12,),
        patterns={
            ApplianceState.THINKING: LedPattern("pulse", fade_in_time_s=0.2, fade_out_time_s=0.2),
            ApplianceState.LISTENING: LedPattern("solid", brightness=0.25),
        },
    )
    led = StatusLed(factory, cfg)
    pin = factory.pin(12)
    try:
        pin.clear_states()
        led.show(ApplianceState.THINKING)
        time.sleep(0.5)
        led.show(ApplianceState.LISTENING)
        up = [(0.04, 0.2), (0.04, 0.4), (0.04, 0.6), (0.04, 0.8), (0.04, 1.0)]
        down = [(0.04, 0.8), (0.04, 0.6), (0.04, 0.4), (0.04, 0.2), (0.04, 0.0)]
        pin.assert_states_and_times([(0.0, 0.0), *up, *down])
        assert pin.state == pytest.approx(0.25)
        assert pin.frequency == 100  # really PWM, not on/off
    finally:
        led.close()
    assert pin.state == 0


def test_rgbled_colours_per_state(factory: Any) -> None:
    """An RGB LED shows each state's colour (scaled by brightness) on its three pins, blinks in
    colour, and close() turns all three off."""
    cfg = LedConfig(
        "rgbled",
        (9, 10, 11),
        patterns={
            ApplianceState.LISTENING: LedPattern("solid", colour=(0.0, 1.0, 0.5), brightness=0.5),
            ApplianceState.CONFIG_FAULT: LedPattern(
                "blink", on_time_s=0.1, off_time_s=0.2, colour=(1.0, 0.0, 0.0)
            ),
            ApplianceState.ERROR: LedPattern("solid", colour=(1.0, 0.0, 0.0)),
        },
    )
    led = StatusLed(factory, cfg)
    red, green, blue = (factory.pin(n) for n in (9, 10, 11))
    try:
        led.show(ApplianceState.LISTENING)
        assert (red.state, green.state, blue.state) == pytest.approx((0.0, 0.5, 0.25))
        for p in (red, green, blue):
            p.clear_states()
        led.show(ApplianceState.CONFIG_FAULT)
        time.sleep(0.65)
        led.show(ApplianceState.ERROR)
        red.assert_states_and_times(
            [(0.0, 0.0), (0.0, 1.0), (0.1, 0.0), (0.2, 1.0), (0.1, 0.0), (0.2, 1.0)]
        )
        assert green.states[1].state == 0.0  # went dark when the blink began
        assert (red.state, green.state, blue.state) == (1.0, 0.0, 0.0)
    finally:
        led.close()
    assert (red.state, green.state, blue.state) == (0, 0, 0)


def test_show_is_idempotent(factory: Any) -> None:
    """Showing the same state again, or a state with an equal pattern, does not restart the blink
    (which would show as a glitch in the rhythm)."""
    same = LedPattern("blink", on_time_s=0.2, off_time_s=0.2)
    cfg = LedConfig(
        "led",
        (5,),
        patterns={ApplianceState.STARTING: same, ApplianceState.CONNECTING: same},
    )
    led = StatusLed(factory, cfg)
    pin = factory.pin(5)
    try:
        pin.clear_states()
        led.show(ApplianceState.STARTING)
        time.sleep(0.1)
        led.show(ApplianceState.STARTING)
        led.show(ApplianceState.CONNECTING)
        assert led.state is ApplianceState.CONNECTING
        time.sleep(0.2)
        led.show(ApplianceState.CONNECTING)
        time.sleep(0.15)
        led.show(ApplianceState.IDLE)
        pin.assert_states_and_times([(0.0, False), (0.0, True), (0.2, False), (0.2, True)])
        assert len(pin.states) == 5  # ... and the final off
    finally:
        led.close()


def test_no_led_is_fine(factory: Any) -> None:
    """kind 'none' claims no pin and show() still tracks the state."""
    led = StatusLed(factory, LedConfig())
    led.show(ApplianceState.SPEAKING)
    assert led.state is ApplianceState.SPEAKING
    led.close()
    assert factory.pins == {}


def test_every_state_has_a_default_pattern() -> None:
    """The configuration's defaults (their one home) give every ApplianceState a pattern, in the
    rhythm the README describes."""
    defaults = wiring.controls_config(Config()).led.patterns
    assert set(defaults) == set(ApplianceState)
    assert defaults[ApplianceState.LISTENING].kind == "solid"
    assert defaults[ApplianceState.THINKING].kind == "pulse"
    assert defaults[ApplianceState.SPEAKING].kind == "pulse"
    offline = defaults[ApplianceState.OFFLINE]
    fault = defaults[ApplianceState.CONFIG_FAULT]
    assert offline.kind == fault.kind == "blink"
    assert offline.on_time_s + offline.off_time_s > 4 * (fault.on_time_s + fault.off_time_s)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "strobe"}, "kind.*'strobe'"),
        ({"kind": "blink", "on_time_s": 0}, "on_time_s > 0"),
        ({"kind": "pulse"}, "fade_in_time_s > 0"),
        ({"off_time_s": -1}, "off_time_s.*-1"),
        ({"on_time_s": "fast"}, "on_time_s.*'fast'"),
        ({"colour": (1, 2, 0)}, r"colour.*\(1, 2, 0\)"),
        ({"colour": (1, 0)}, "three numbers"),
        ({"brightness": 1.5}, "brightness.*1.5"),
    ],
)
def test_bad_pattern_named(kwargs: dict[str, Any], message: str) -> None:
    """Each bad pattern field is rejected with the field's name and the bad value."""
    with pytest.raises(ValueError, match=message):
        LedPattern(**kwargs)


def test_led_config_errors() -> None:
    """Wrong pin counts and unknown LED kinds name what was expected."""
    with pytest.raises(ValueError, match="'rgbled' needs 3 pin"):
        LedConfig("rgbled", (1, 2))
    with pytest.raises(ValueError, match="'neon'"):
        LedConfig("neon", ())  # type: ignore[arg-type]


# --- the whole adapter -----------------------------------------------------------------------


async def test_controls_from_config() -> None:
    """Controls builds its own mock factory from config; button events flow, the LED follows
    show(), and close() turns the LED off."""
    sink = EventSink()
    cfg = ControlsConfig(
        pin_factory="mock",
        button_pin=17,
        new_conversation_pin=27,
        led=LedConfig("rgbled", (9, 10, 11), patterns=DEFAULTS),
    )
    controls = Controls(cfg, loop=asyncio.get_running_loop(), on_event=sink)
    pins = [controls.pin_factory.pin(n) for n in (9, 10, 11)]
    try:
        controls.pin_factory.pin(17).drive_low()
        assert isinstance(await sink.next(), ButtonPressed)
        controls.show(ApplianceState.LISTENING)
        listening = DEFAULTS[ApplianceState.LISTENING].scaled_colour
        assert [p.state for p in pins] == pytest.approx(list(listening))
    finally:
        controls.close()
    assert [p.state for p in pins] == [0, 0, 0]


def test_controls_release_led_pins_when_button_fails(factory: Any) -> None:
    """If the button cannot be set up (its pin is taken by the LED), nothing stays claimed."""
    cfg = ControlsConfig(pin_factory="mock", button_pin=5, led=LedConfig("led", (5,)))
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(GPIOPinInUse):
            Controls(cfg, loop=loop, on_event=lambda e: None, pin_factory=factory)
    finally:
        loop.close()
    Button(5, pin_factory=factory).close()  # free again


# --- keyboard --------------------------------------------------------------------------------


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):
            os.close(fd)


async def test_keyboard_enter_toggles_a_turn(pipe: tuple[int, int]) -> None:
    """Enter presses, the next Enter releases; "n" asks for a new conversation; a line arriving in
    pieces counts once; events come through the same callback type as the GPIO button's."""
    r, w = pipe
    sink = EventSink()
    kb = KeyboardPushToTalk(r, loop=asyncio.get_running_loop(), on_event=sink)
    kb.start()
    try:
        os.write(w, b"\n")
        assert isinstance(await sink.next(), ButtonPressed)
        assert kb.is_pressed
        os.write(w, b"stop")
        await asyncio.sleep(0.05)
        assert sink.queue.empty()  # no newline yet
        os.write(w, b" talking\n")
        assert isinstance(await sink.next(), ButtonReleased)
        os.write(w, b"n\n\n\n")
        assert isinstance(await sink.next(), NewConversationPressed)
        assert isinstance(await sink.next(), ButtonPressed)
        assert isinstance(await sink.next(), ButtonReleased)
    finally:
        kb.close()


async def test_keyboard_eof_ends_an_open_turn(pipe: tuple[int, int]) -> None:
    """Closing the input while a turn is open releases it, so the microphone never stays open."""
    r, w = pipe
    sink = EventSink()
    kb = KeyboardPushToTalk(r, loop=asyncio.get_running_loop(), on_event=sink)
    kb.start()
    os.write(w, b"\n")
    assert isinstance(await sink.next(), ButtonPressed)
    os.close(w)
    assert isinstance(await sink.next(), ButtonReleased)
    assert kb.at_eof
    kb.close()  # harmless twice
    assert sink.queue.empty()


async def test_keyboard_refuses_a_regular_file(tmp_path: Path) -> None:
    """A regular file cannot be watched by the loop; the error says what is needed."""
    path = tmp_path / "keys"
    path.write_bytes(b"\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        kb = KeyboardPushToTalk(fd, loop=asyncio.get_running_loop(), on_event=lambda e: None)
        with pytest.raises(ValueError, match="terminal or a pipe"):
            kb.start()
    finally:
        os.close(fd)
