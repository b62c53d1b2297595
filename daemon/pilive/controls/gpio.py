"""gpiozero button(s) and status LED.

gpiozero calls back on its own thread with real pins (lgpio) and on the caller's thread with
mock pins; either way an edge becomes a small event handed to the loop with call_soon_threadsafe,
so the rest of the daemon only ever sees it on the loop thread. gpiozero is imported where it is
used (hence the PLC0415 waivers), never at module import.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pilive.controls.events import (
    ApplianceState,
    ButtonPressed,
    ButtonReleased,
    ControlEvent,
    ControlEventCallback,
    NewConversationPressed,
)
from pilive.controls.household_pins import HouseholdPins
from pilive.controls.patterns import LedConfig, LedPattern

if TYPE_CHECKING:
    from gpiozero import Button
    from gpiozero.pins import Factory

log = logging.getLogger(__name__)

PIN_FACTORIES: tuple[str, ...] = ("lgpio", "rpigpio", "pigpio", "native", "mock")
MOCK_PIN_HISTORY = 64
"""State changes a mock pin keeps in `states` (at most twice this many; the newest are kept).

gpiozero's MockPin records every change for ever: a pulsing RGB LED writes 25 levels a second to
each channel, so a daemon on mock pins would grow by about 10 MB an hour while it answers.
"""


def make_pin_factory(name: str) -> Factory:
    """Create the gpiozero pin factory called `name`.

    "mock" is MockFactory with PWM-capable pins so PWMLED and RGBLED work in the demo and tests;
    each pin remembers only its last `MOCK_PIN_HISTORY` or so state changes.
    """
    if name == "mock":
        from gpiozero.pins.mock import MockFactory  # noqa: PLC0415

        return MockFactory(pin_class=_bounded_mock_pwm_pin())
    if name == "lgpio":
        from gpiozero.pins.lgpio import LGPIOFactory  # noqa: PLC0415

        return LGPIOFactory()
    if name == "rpigpio":
        from gpiozero.pins.rpigpio import RPiGPIOFactory  # noqa: PLC0415

        return RPiGPIOFactory()
    if name == "pigpio":
        from gpiozero.pins.pigpio import PiGPIOFactory  # noqa: PLC0415

        return PiGPIOFactory()
    if name == "native":
        from gpiozero.pins.native import NativeFactory  # noqa: PLC0415

        return NativeFactory()
    raise ValueError(f"unknown GPIO pin factory {name!r}; choose one of {PIN_FACTORIES}")


@functools.cache
def _bounded_mock_pwm_pin() -> type[Any]:
    """MockPWMPin whose `states` history is trimmed to the newest `MOCK_PIN_HISTORY` entries."""
    from gpiozero.pins.mock import MockPWMPin  # noqa: PLC0415

    class BoundedMockPWMPin(MockPWMPin):  # type: ignore[misc]  # gpiozero is untyped
        def _change_state(self, value: float) -> bool:
            changed: bool = super()._change_state(value)
            # Trimmed in batches: amortised O(1), and len(states) still moves on every change.
            if len(self.states) > 2 * MOCK_PIN_HISTORY:
                del self.states[:-MOCK_PIN_HISTORY]
            return changed

    return BoundedMockPWMPin


class GpioButtons:
    """The talk button and an optional new-conversation button, as ControlEvents on the loop.

    pull_up True: the button connects the pin to ground (the usual wiring, internal pull-up);
    False: it connects to 3V3 with an internal pull-down. bounce_ms is gpiozero's bounce_time.
    """

    def __init__(
        self,
        factory: Factory,
        pin: int | str,
        *,
        loop: asyncio.AbstractEventLoop,
        on_event: ControlEventCallback,
        pull_up: bool = True,
        bounce_ms: float | None = 20.0,
        new_conversation_pin: int | str | None = None,
    ) -> None:
        from gpiozero import Button  # noqa: PLC0415

        if bounce_ms is not None and bounce_ms < 0:
            raise ValueError(f"button bounce_ms must be >= 0, got {bounce_ms!r}")
        self._loop = loop
        self._on_event = on_event
        self._closed = False
        bounce_time_s = bounce_ms / 1000 if bounce_ms else None
        self.button: Button = Button(
            pin, pull_up=pull_up, bounce_time=bounce_time_s, pin_factory=factory
        )
        self.new_conversation_button: Button | None = None
        try:
            self.button.when_pressed = self._pressed
            self.button.when_released = self._released
            if new_conversation_pin is not None:
                self.new_conversation_button = Button(
                    new_conversation_pin,
                    pull_up=pull_up,
                    bounce_time=bounce_time_s,
                    pin_factory=factory,
                )
                self.new_conversation_button.when_pressed = self._new_conversation
        except BaseException:
            self.close()
            raise

    @property
    def is_pressed(self) -> bool:
        """Whether the talk button is held right now (gpiozero's view of the pin)."""
        return bool(self.button.is_pressed)

    def _pressed(self) -> None:
        self._hand_over(ButtonPressed(time.monotonic()))

    def _released(self) -> None:
        self._hand_over(ButtonReleased(time.monotonic()))

    def _new_conversation(self) -> None:
        self._hand_over(NewConversationPressed(time.monotonic()))

    def _hand_over(self, event: ControlEvent) -> None:
        """Runs on gpiozero's thread: only schedule, never touch loop state here."""
        if self._closed:
            return
        try:
            self._loop.call_soon_threadsafe(self._on_event, event)
        except RuntimeError:
            # The loop closed under a late edge during shutdown; nobody is left to tell.
            if not self._loop.is_closed():
                raise
            log.debug("dropped %r: event loop closed", event)

    def close(self) -> None:
        """Release the pins; edges after this are ignored."""
        self._closed = True
        for button in (self.button, self.new_conversation_button):
            if button is not None:
                button.close()  # also detaches our callbacks


@dataclass
class StatusLed:
    """The status LED: shows one pattern per ApplianceState with gpiozero's own blink/pulse threads.

    show() is cheap and idempotent: the same state, or a state with an equal pattern, leaves a
    running blink alone. Changing pattern stops the old gpiozero thread at once (it waits on an
    Event), so a state change is visible immediately.
    """

    factory: Factory
    config: LedConfig
    state: ApplianceState | None = field(default=None, init=False)
    device: Any = field(default=None, init=False)
    _pattern: LedPattern | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        kind = self.config.kind
        pins = self.config.pins
        active_high = self.config.active_high
        if kind == "led":
            from gpiozero import LED  # noqa: PLC0415

            self.device = LED(pins[0], active_high=active_high, pin_factory=self.factory)
        elif kind == "pwmled":
            from gpiozero import PWMLED  # noqa: PLC0415

            self.device = PWMLED(pins[0], active_high=active_high, pin_factory=self.factory)
        elif kind == "rgbled":
            from gpiozero import RGBLED  # noqa: PLC0415

            self.device = RGBLED(*pins, active_high=active_high, pwm=True, pin_factory=self.factory)

    def show(self, state: ApplianceState) -> None:
        """Show `state`'s pattern (no-op when already showing it)."""
        if state == self.state:
            return
        self.state = state
        pattern = self.config.pattern_for(state)
        if pattern == self._pattern:
            return
        self._pattern = pattern
        if self.device is not None:
            self._apply(pattern)

    def _apply(self, p: LedPattern) -> None:
        kind = self.config.kind
        device = self.device
        if p.kind == "off" or (p.kind == "solid" and p.brightness == 0):
            device.off()
        elif kind == "led":
            if p.kind == "solid":
                device.on()
            elif p.kind == "blink":
                device.blink(on_time=p.on_time_s, off_time=p.off_time_s)
            else:  # a plain LED cannot fade: keep the pulse's rhythm as a blink
                device.blink(on_time=p.fade_in_time_s, off_time=p.fade_out_time_s)
        elif kind == "pwmled":
            if p.kind == "solid":
                device.value = p.brightness
            elif p.kind == "blink":
                device.blink(
                    on_time=p.on_time_s,
                    off_time=p.off_time_s,
                    fade_in_time=p.fade_in_time_s,
                    fade_out_time=p.fade_out_time_s,
                )
            else:
                device.pulse(fade_in_time=p.fade_in_time_s, fade_out_time=p.fade_out_time_s)
        elif p.kind == "solid":
            device.color = p.scaled_colour
        elif p.kind == "blink":
            device.blink(
                on_time=p.on_time_s,
                off_time=p.off_time_s,
                fade_in_time=p.fade_in_time_s,
                fade_out_time=p.fade_out_time_s,
                on_color=p.scaled_colour,
            )
        else:
            device.pulse(
                fade_in_time=p.fade_in_time_s,
                fade_out_time=p.fade_out_time_s,
                on_color=p.scaled_colour,
            )

    def close(self) -> None:
        """Stop any pattern, turn the LED off and release its pins."""
        if self.device is not None:
            self.device.off()
            self.device.close()
            self.device = None
        self.state = None
        self._pattern = None


@dataclass(frozen=True, slots=True)
class ControlsConfig:
    """The appliance's buttons and LED. pin_factory is a name from PIN_FACTORIES."""

    pin_factory: str = "lgpio"
    button_pin: int | str = 17
    pull_up: bool = True
    bounce_ms: float | None = 20.0
    new_conversation_pin: int | str | None = None
    led: LedConfig = field(default_factory=LedConfig)
    mute_pin: int | str | None = None
    mute_kind: Literal["button", "switch"] = "button"
    privacy_led_pin: int | str | None = None
    volume_up_pin: int | str | None = None
    volume_down_pin: int | str | None = None

    def __post_init__(self) -> None:
        if self.pin_factory not in PIN_FACTORIES:
            raise ValueError(
                f"unknown GPIO pin factory {self.pin_factory!r}; choose one of {PIN_FACTORIES}"
            )
        if self.bounce_ms is not None and self.bounce_ms < 0:
            raise ValueError(f"button bounce_ms must be >= 0, got {self.bounce_ms!r}")


class Controls:
    """Buttons and LED on one pin factory: what the composition root builds from config.

    `pin_factory` is exposed so a scripted timeline (the demo) can press mock pins:
    `controls.pin_factory.pin(17).drive_low()`.
    """

    def __init__(
        self,
        config: ControlsConfig,
        *,
        loop: asyncio.AbstractEventLoop,
        on_event: ControlEventCallback,
        pin_factory: Factory | None = None,
    ) -> None:
        self._owns_factory = pin_factory is None
        self.pin_factory = pin_factory or make_pin_factory(config.pin_factory)
        self.led = StatusLed(self.pin_factory, config.led)
        try:
            self.buttons = GpioButtons(
                self.pin_factory,
                config.button_pin,
                loop=loop,
                on_event=on_event,
                pull_up=config.pull_up,
                bounce_ms=config.bounce_ms,
                new_conversation_pin=config.new_conversation_pin,
            )
        except BaseException:
            self.led.close()
            raise
        try:
            self.household = HouseholdPins(
                self.pin_factory,
                hand_over=self.buttons._hand_over,  # edges reach the loop as the button's do
                pull_up=config.pull_up,
                bounce_time_s=config.bounce_ms / 1000 if config.bounce_ms else None,
                mute_pin=config.mute_pin,
                mute_kind=config.mute_kind,
                privacy_led_pin=config.privacy_led_pin,
                active_high=config.led.active_high,
                volume_up_pin=config.volume_up_pin,
                volume_down_pin=config.volume_down_pin,
            )
        except BaseException:
            self.buttons.close()
            self.led.close()
            raise

    def show(self, state: ApplianceState) -> None:
        """Show `state` on the LED (cheap; call it on every state change)."""
        self.led.show(state)

    def show_muted(self, muted: bool) -> None:
        """The privacy LED, if one is fitted: lit exactly while the microphone is muted."""
        self.household.show_muted(muted)

    def close(self) -> None:
        """LED off, pins released; the pin factory is closed too when we created it."""
        self.buttons.close()
        self.household.close()
        self.led.close()
        if self._owns_factory:
            self.pin_factory.close()
