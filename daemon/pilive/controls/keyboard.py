"""Push-to-talk from a keyboard, for trying pilive on a laptop: Enter starts a turn, Enter ends it.

stdin is watched with loop.add_reader, so nothing blocks the loop and no thread is needed. A line
that is just "n" asks for a new conversation. End of input while talking ends the turn, so a closed
pipe never leaves the microphone open.
"""

from __future__ import annotations

import asyncio
import logging
import os

from pilive.controls.events import (
    ApplianceState,
    ButtonPressed,
    ButtonReleased,
    ControlEvent,
    ControlEventCallback,
    NewConversationPressed,
)

log = logging.getLogger(__name__)

_READ_BYTES = 4096
_MAX_LINE_BYTES = 4096  # a runaway paste without newlines must not grow without bound


class KeyboardPushToTalk:
    """Turns lines on a TTY or pipe into the same ControlEvents the GPIO button produces.

    Works on a terminal in its normal (line-buffered) mode: the terminal delivers a line when Enter
    is pressed, so the key's press time is when the line arrives. `fd` is not closed by us.
    """

    def __init__(
        self,
        fd: int,
        *,
        loop: asyncio.AbstractEventLoop,
        on_event: ControlEventCallback,
    ) -> None:
        self._fd = fd
        self._loop = loop
        self._on_event = on_event
        self._pending = b""
        self.is_pressed = False
        self.at_eof = False
        self._reading = False

    def start(self) -> None:
        """Begin watching the descriptor; a regular file cannot be watched and says so."""
        try:
            self._loop.add_reader(self._fd, self._readable)
        except PermissionError:
            raise ValueError(
                f"keyboard push-to-talk needs a terminal or a pipe on fd {self._fd}, "
                "not a regular file"
            ) from None
        self._reading = True

    def show(self, state: ApplianceState) -> None:
        """A keyboard has no LED; the state is only logged (the app calls this for every part)."""
        log.debug("state: %s", state.value)

    def show_muted(self, muted: bool) -> None:
        """No privacy LED on a keyboard; the journal says it (the app logs the mute)."""

    def close(self) -> None:
        """Stop watching; a turn still open is ended so the microphone closes."""
        self._stop_reading()
        if self.is_pressed:
            self._emit(ButtonReleased(self._loop.time()))

    def _stop_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, _READ_BYTES)
        except BlockingIOError:
            return  # another reader of the same descriptor took the bytes
        if not data:
            self.at_eof = True
            self.close()
            return
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        if len(self._pending) > _MAX_LINE_BYTES:
            self._pending = b""
        now = self._loop.time()
        for line in lines:
            if line.strip().lower() == b"n":
                self._emit(NewConversationPressed(now))
            elif self.is_pressed:
                self._emit(ButtonReleased(now))
            else:
                self._emit(ButtonPressed(now))

    def _emit(self, event: ControlEvent) -> None:
        self.is_pressed = isinstance(event, ButtonPressed) or (
            self.is_pressed and isinstance(event, NewConversationPressed)
        )
        self._on_event(event)
