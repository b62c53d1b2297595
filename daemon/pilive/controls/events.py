"""What the controls tell the rest of the daemon, and what the daemon shows back on the LEDs.

Pure data, no hardware: the conversation state machine imports these without pulling in gpiozero.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ButtonPressed:
    """The talk button went down (or Enter started a turn).

    `at` is `time.monotonic()` seconds when the edge was seen, the same clock as `loop.time()`,
    so the conversation can measure hold time without reading a clock itself.
    """

    at: float


@dataclass(frozen=True, slots=True)
class ButtonReleased:
    """The talk button came up (or Enter ended the turn); `at` as for ButtonPressed."""

    at: float


@dataclass(frozen=True, slots=True)
class NewConversationPressed:
    """The new-conversation button was pressed: drop the resumption handle, start fresh."""

    at: float


ControlEvent = ButtonPressed | ButtonReleased | NewConversationPressed
# Called on the event loop's thread, never on a GPIO thread.
ControlEventCallback = Callable[[ControlEvent], None]


class ApplianceState(enum.StrEnum):
    """What the appliance is doing, as the user sees it; each has its own LED pattern."""

    STARTING = "starting"
    CONNECTING = "connecting"
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    OFFLINE = "offline"
    CONFIG_FAULT = "config_fault"
    ERROR = "error"
    LIMIT_SPENT = "limit_spent"
    """Idle, but the daily token limit is spent: no new turn starts until local midnight."""
