"""Buttons, LEDs and keyboard push-to-talk: the appliance's physical edges.

`events` and `patterns` are pure data (safe for the conversation state machine to import);
`gpio` wraps gpiozero, imported only when a pin factory is made; `keyboard` reads stdin.
"""

from pilive.controls.events import (
    ApplianceState,
    ButtonPressed,
    ButtonReleased,
    ControlEvent,
    ControlEventCallback,
    NewConversationPressed,
)
from pilive.controls.gpio import (
    PIN_FACTORIES,
    Controls,
    ControlsConfig,
    GpioButtons,
    StatusLed,
    make_pin_factory,
)
from pilive.controls.keyboard import KeyboardPushToTalk
from pilive.controls.patterns import (
    DEFAULT_PATTERNS,
    LedConfig,
    LedPattern,
    patterns_from_mapping,
)

__all__ = [
    "DEFAULT_PATTERNS",
    "PIN_FACTORIES",
    "ApplianceState",
    "ButtonPressed",
    "ButtonReleased",
    "ControlEvent",
    "ControlEventCallback",
    "Controls",
    "ControlsConfig",
    "GpioButtons",
    "KeyboardPushToTalk",
    "LedConfig",
    "LedPattern",
    "NewConversationPressed",
    "StatusLed",
    "make_pin_factory",
    "patterns_from_mapping",
]
