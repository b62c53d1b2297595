"""The seams between `App` and its parts, as Protocols that mypy checks.

A part the composition root holds through one of these cannot miss a method without mypy saying
so: the keyboard backend once lacked `show` and crashed at start.
"""

from __future__ import annotations

from typing import Protocol

from pilive.controls.events import ApplianceState


class Controls(Protocol):
    """A button backend (GPIO or keyboard): shows the appliance's state and lets go of its edges."""

    def show(self, state: ApplianceState) -> None:
        """Show `state` (LED pattern, or a log line where there is no LED); cheap, non-blocking."""

    def show_muted(self, muted: bool) -> None:
        """The privacy mute came on or went off (a privacy LED, where one is fitted)."""

    def close(self) -> None:
        """Release pins or stop reading; a turn still held is ended so the microphone closes."""
