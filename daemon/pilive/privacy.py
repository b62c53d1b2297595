"""Who muted the microphone, and who may turn it back on: the privacy mute's rules, pure data.

Three sources can mute: the mute switch (muted while it is closed), the mute button (each press
toggles) and a remote request (the control socket, Home Assistant). What is done at the device
wins: a remote request never lifts a mute set by the switch or the button, while a press of the
button lifts any mute but the switch's, whose position is the truth. The button's and the remote
mute are kept across restarts (`to_json`); the switch is read from its pin at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

MuteSource = Literal["switch", "button", "remote"]
HOLDER_WORDS: dict[MuteSource, str] = {
    "switch": "the mute switch",
    "button": "the mute button",
    "remote": "a remote request",
}
"""Who holds the mute, as a refusal says it ("muted by the mute button")."""


class PrivacyMute:
    """The mute's state; each input returns whether the effective mute changed."""

    def __init__(self) -> None:
        self.switch_engaged = False
        self.button_muted = False
        self.remote_muted = False

    @property
    def muted(self) -> bool:
        return self.switch_engaged or self.button_muted or self.remote_muted

    @property
    def source(self) -> MuteSource | None:
        """What holds the mute, the device first (what must be undone to unmute)."""
        if self.switch_engaged:
            return "switch"
        if self.button_muted:
            return "button"
        return "remote" if self.remote_muted else None

    @property
    def holder(self) -> str | None:
        """`source` in words, for a refusal."""
        return None if self.source is None else HOLDER_WORDS[self.source]

    def switch_changed(self, engaged: bool) -> bool:
        was = self.muted
        self.switch_engaged = engaged
        return self.muted != was

    def button_pressed(self) -> bool:
        """Toggle: unmute what the button may lift (its own and a remote mute), else mute."""
        was = self.muted
        if self.button_muted or self.remote_muted:
            self.button_muted = self.remote_muted = False
        elif not self.switch_engaged:
            self.button_muted = True
        return self.muted != was

    def remote(self, on: bool) -> tuple[bool, str | None]:
        """A remote request: (changed, why it was refused or None)."""
        was = self.muted
        if on:
            self.remote_muted = True
        elif self.switch_engaged or self.button_muted:
            return False, f"muted by {self.holder} at the device; only it can unmute"
        else:
            self.remote_muted = False
        return self.muted != was, None

    def to_json(self) -> dict[str, bool]:
        return {"button": self.button_muted, "remote": self.remote_muted}

    def restore(self, data: Mapping[str, Any]) -> None:
        """Take up what was kept; anything but true is false (a damaged file does not mute)."""
        self.button_muted = data.get("button") is True
        self.remote_muted = data.get("remote") is True

    def describe(self) -> dict[str, object]:
        """For `pilive ctl status` and Home Assistant."""
        return {"muted": self.muted, "by": self.source}
