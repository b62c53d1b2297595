"""The controls a household uses around the conversation, and the control socket that reaches them.

`App` keeps the conversation and its parts; this module keeps what sits beside them: the answers
to the control socket (`pilive ctl`), and the record of the last turn that `status` shows. Every
request is answered on the event loop at once; what it changes goes through the same paths as the
button (a socket `press` is a `ButtonPressed`), so a script cannot do what a person could not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from pilive.config import Config
from pilive.control.protocol import Request, ok, refused
from pilive.control.server import ControlServer, ControlSocketError
from pilive.controls.events import (
    ButtonPressed,
    ButtonReleased,
    ControlEvent,
    NewConversationPressed,
)
from pilive.conversation import Action, Conversation, Journal
from pilive.live.events import LinkState
from pilive.net.connection import LiveLink

log = logging.getLogger("pilive")

MAX_TRANSCRIPT_CHARS = 2000
"""Of each side of the last turn that `status` shows: the newest words are kept."""


@dataclass(slots=True)
class LastTurn:
    """What was heard and said in the newest turn (transcripts, as far as they came)."""

    heard: str = ""
    said: str = ""
    at_unix_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {"heard": self.heard, "said": self.said, "at_unix_s": round(self.at_unix_s, 3)}


class Household:
    """Answers control requests and keeps the last turn; built by `App` once its parts exist.

    `carry_out` runs conversation actions as the app does; `control_event` takes an event as if
    it came from the buttons; `get_volume_percent` and `set_volume_percent` are the speaker's.
    """

    def __init__(
        self,
        config: Config,
        *,
        conversation: Conversation,
        link: LiveLink,
        carry_out: Callable[[list[Action]], None],
        control_event: Callable[[ControlEvent], None],
        get_volume_percent: Callable[[], float],
        set_volume_percent: Callable[[int], None],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.conversation = conversation
        self.link = link
        self._carry_out = carry_out
        self._control_event = control_event
        self._get_volume_percent = get_volume_percent
        self._set_volume_percent = set_volume_percent
        self._wall_clock = wall_clock
        self.last_turn: LastTurn | None = None
        self._heard_last = False  # the newest transcript was the user's (a new turn follows it)
        self.control: ControlServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the control socket; one that cannot be opened is logged, and talking goes on."""
        control = self.config.control
        if not control.enabled:
            return
        server = ControlServer(control.socket, self.handle)
        try:
            await server.start()
        except ControlSocketError as exc:
            log.warning("no control socket: %s; pilive ctl will not reach this daemon", exc)
            return
        self.control = server

    async def aclose(self) -> None:
        control, self.control = self.control, None
        if control is not None:
            await control.aclose()

    # -- the control socket --------------------------------------------------------------------

    def handle(self, request: Request) -> dict[str, object]:
        """One request from the control socket, answered at once."""
        now = asyncio.get_running_loop().time()
        match request.command:
            case "status":
                return ok(status=self.status())
            case "press":
                self._control_event(ButtonPressed(now))
                return ok()
            case "release":
                self._control_event(ButtonReleased(now))
                return ok()
            case "new-conversation":
                self._control_event(NewConversationPressed(now))
                return ok()
            case "say":
                assert request.text is not None
                return self.say(request.text)
            case "volume":
                assert request.percent is not None
                self._set_volume_percent(request.percent)
                return ok(volume=request.percent)
            case "mute":
                return refused("this daemon has no privacy mute")
        return refused(f"unknown command {request.command!r}")

    def say(self, text: str) -> dict[str, object]:
        """Send `text` as a turn of its own (`realtimeInput.text`): the model speaks about it."""
        link = self.link.status
        if link.state is not LinkState.CONNECTED:
            return refused(f"not connected ({link.describe()}); nothing was sent")
        actions = self.conversation.text_turn(text)
        if actions is None:
            return refused("busy: the button is held for a turn")
        self._carry_out(actions)
        return ok()

    def status(self) -> dict[str, object]:
        """What `pilive ctl status` prints: state, link, volume and the last turn."""
        link = self.link.status
        return {
            "state": self.conversation.state.value,
            "link": {"state": link.state.value, "detail": link.describe()},
            "volume": round(self._get_volume_percent()),
            "last_turn": None if self.last_turn is None else self.last_turn.to_json(),
        }

    # -- what the app tells us -----------------------------------------------------------------

    def turn_started(self) -> None:
        """A user turn began (activityStart or a typed turn): the last turn starts afresh."""
        self.last_turn = LastTurn(at_unix_s=self._wall_clock())
        self._heard_last = True

    def journal(self, entry: Journal) -> None:
        """A journal line the app wrote: transcripts make up the last turn. Hands-free turns
        have no start of their own: words heard after an answer begin the next one."""
        if entry.kind == "input_transcript":
            if self.last_turn is None or (self.conversation.hands_free and not self._heard_last):
                self.last_turn = LastTurn()
            self._heard_last = True
            turn = self.last_turn
            turn.heard = _tail(turn.heard + entry.text)
        elif entry.kind in ("output_transcript", "model_text"):
            if self.last_turn is None:
                self.last_turn = LastTurn()
            self._heard_last = False
            turn = self.last_turn
            turn.said = _tail(turn.said + entry.text)
        else:
            return
        turn.at_unix_s = self._wall_clock()


def _tail(text: str) -> str:
    return text[-MAX_TRANSCRIPT_CHARS:]
