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
    NewConversationPressed,
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
        else:
            _drive(config, controls, on_event, gpio.button_pin, step.action == "press")


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
