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


@dataclass(frozen=True, slots=True)
class MutePressed:
    """The mute button was pressed (`gpio.mute_kind = "button"`): the privacy mute toggles."""

    at: float


@dataclass(frozen=True, slots=True)
class MuteSwitched:
    """The mute switch moved (`gpio.mute_kind = "switch"`): muted while `engaged`."""

    at: float
    engaged: bool


@dataclass(frozen=True, slots=True)
class VolumeStepped:
    """A volume button was pressed: `step` is +1 (up) or -1 (down)."""

    at: float
    step: int


ControlEvent = (
    ButtonPressed
    | ButtonReleased
    | NewConversationPressed
    | MutePressed
    | MuteSwitched
    | VolumeStepped
)
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
    MUTED = "muted"
    """Idle with the privacy mute on: microphone and camera closed, no turn starts."""
    RINGING = "ringing"
    """A timer or alarm rings (shown over any other state); a press stops it."""
    FOLLOW_UP = "follow_up"
    """Idle after an answer, listening for a reply without a press (conversation.follow_up_s)."""
