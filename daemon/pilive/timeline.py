"""The scripted timeline (`[[timeline]]` in the config): presses at set times, for the demo, the
benchmarks and headless tests.

On gpiozero's mock pins a step drives the pin itself, so the press goes through the same
gpiozero edge and debounce code as a real button; on any other backend (the keyboard, real pins)
the step hands the app the ControlEvent the button would have produced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pilive.config import Config
from pilive.controls.events import (
    ButtonPressed,
    ButtonReleased,
    ControlEventCallback,
    MutePressed,
    NewConversationPressed,
    VolumeStepped,
)
from pilive.parts import Controls


async def run_timeline(
    config: Config,
    controls: Controls | None,
    *,
    on_event: ControlEventCallback,
    request_stop: Callable[[], None],
    note: Callable[[str], None],
) -> None:
    """Carry out `config.timeline`, each step `at_s` seconds after the call."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    gpio = config.gpio
    for step in config.timeline:
        await asyncio.sleep(max(0.0, start + step.at_s - loop.time()))
        note(f"timeline: {step.action}" + (f" ({step.note})" if step.note else ""))
        if step.action == "stop":
            request_stop()
            return
        if step.action == "new-conversation":
            for pressed in (True, False):
                _drive(config, controls, on_event, gpio.new_conversation_pin, pressed)
        elif step.action == "mute":
            _toggle_mute(config, controls, on_event)
        elif step.action in ("volume-up", "volume-down"):
            up = step.action == "volume-up"
            pin = gpio.volume_up_pin if up else gpio.volume_down_pin
            if pin is not None and gpio.pin_factory == "mock" and controls is not None:
                for pressed in (True, False):
                    _drive(config, controls, on_event, pin, pressed)
            else:
                on_event(VolumeStepped(loop.time(), 1 if up else -1))
        else:
            _drive(config, controls, on_event, gpio.button_pin, step.action == "press")


def _toggle_mute(config: Config, controls: Controls | None, on_event: ControlEventCallback) -> None:
    """Press the mute button, or flip the mute switch; on mock pins through the pin itself."""
    gpio = config.gpio
    factory = getattr(controls, "pin_factory", None)
    if gpio.mute_pin is None or factory is None or gpio.pin_factory != "mock":
        on_event(MutePressed(asyncio.get_running_loop().time()))
        return
    if gpio.mute_kind == "button":
        for pressed in (True, False):
            _drive(config, controls, on_event, gpio.mute_pin, pressed)
        return
    pin = factory.pin(gpio.mute_pin)
    closed = pin.state == (0 if gpio.pull_up else 1)
    _drive(config, controls, on_event, gpio.mute_pin, not closed)


def _drive(
    config: Config,
    controls: Controls | None,
    on_event: ControlEventCallback,
    pin: int | None,
    pressed: bool,
) -> None:
    """Press through real gpiozero mock pins when the pin factory is "mock" (the demo)."""
    factory = getattr(controls, "pin_factory", None)
    if pin is not None and factory is not None and config.gpio.pin_factory == "mock":
        level_low = pressed if config.gpio.pull_up else not pressed
        mock_pin = factory.pin(pin)
        if level_low:
            mock_pin.drive_low()
        else:
            mock_pin.drive_high()
        return
    at = asyncio.get_running_loop().time()
    if pin == config.gpio.new_conversation_pin and pin is not None:
        if pressed:
            on_event(NewConversationPressed(at))
    else:
        on_event(ButtonPressed(at) if pressed else ButtonReleased(at))
