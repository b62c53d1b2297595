"""The fault script: what goes wrong, when, so reconnect logic can be tested deterministically.

Rules are set up front (`on(phase, action)`) or now (`now(action)`, or the shortcuts). Each rule
fires once at the first matching point of a connection and is recorded in `fired`. Phases:

- SETUP: the setup arrived, before `setupComplete` is sent (close, delay, withhold, stall...)
- IDLE: right after `setupComplete`, and after every completed model turn (a turn boundary)
- USER_TURN: the first audio of a user activity arrived (the button is held)
- MODEL_AUDIO: the reply's `at_chunk`-th audio chunk was sent (the model is speaking)
- TOOL_WAIT: a `toolCall` was sent and the model waits for the `toolResponse`
- NOW: as soon as a live connection sees it (within milliseconds)

Durations in actions are real seconds (not scaled): the test says what it wants to happen.
A rule may also name the connection (Nth), the turn, the reply chunk, and whether the connection's
setup resumed a session (`resuming`), so "refuse every resume with 1011" is one rule per try.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    SETUP = "setup"
    IDLE = "idle"
    USER_TURN = "user_turn"
    MODEL_AUDIO = "model_audio"
    TOOL_WAIT = "tool_wait"
    NOW = "now"


@dataclass(frozen=True)
class GoAway:
    """Send goAway with `timeLeft`, then close 1011 "deadline" when it runs out.

    `then_silent`: after the goAway the connection sends nothing at all until that close: no
    reply audio, no turnComplete, no handle updates; input is taken in and its replies swallowed
    (reported after a goAway, tau2-bench#461).
    """

    time_left_s: float
    then_silent: bool = False


@dataclass(frozen=True)
class Close:
    """Close the WebSocket with this code and reason."""

    code: int
    reason: str = ""


@dataclass(frozen=True)
class Abort:
    """Drop the TCP connection without a closing handshake (the client sees 1006)."""


@dataclass(frozen=True)
class Stall:
    """Stop reading and writing, keep TCP open: pings go unanswered. None: until shutdown."""

    duration_s: float | None = None


@dataclass(frozen=True)
class DelaySetupComplete:
    delay_s: float


@dataclass(frozen=True)
class WithholdSetupComplete:
    """Never answer the setup (the connection stays open and silent)."""


MALFORMED_KINDS = ("json", "truncated_json", "unknown_message", "wire_truncated")


@dataclass(frozen=True)
class SendMalformed:
    """A bad frame: invalid JSON, a valid message cut short, a message of no known type, or a
    WebSocket frame cut short on the wire (followed by a TCP drop)."""

    kind: str = "json"

    def __post_init__(self) -> None:
        if self.kind not in MALFORMED_KINDS:
            raise ValueError(f"kind must be one of {MALFORMED_KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class SendMessages:
    """Send `message` (a server message as a dict, sent as is) `count` times, `interval_s` apart
    by the clock (late on a loaded machine, never faster): a flood of answer audio, a toolCall
    that contradicts itself, anything a hostile server could say."""

    message: Mapping[str, Any]
    count: int = 1
    interval_s: float = 0.0

    def __post_init__(self) -> None:
        if self.count < 1 or self.interval_s < 0:
            raise ValueError(f"count must be >= 1 and interval_s >= 0, got {self!r}")


@dataclass(frozen=True)
class SendInterrupted:
    """Send `serverContent.interrupted` now, whatever the activity detection setting and though
    nothing interrupted the model (seen 10+ times per user turn with detection disabled,
    pipecat PR #4131). `end_reply` False: the current reply, if any, carries on; True: it stops
    and its turn ends with turnComplete (no generationComplete), like a barge-in."""

    end_reply: bool = False


_REASON_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


@dataclass(frozen=True)
class EmptyReply:
    """The next model reply has no content at all: only `turnComplete`, with `turnCompleteReason`
    (unless None) and `waitingForInput: true` if asked, then a fresh handle as usual. Use it at
    Phase.USER_TURN to empty the reply to that turn; elsewhere it empties the next reply."""

    reason: str | None = "RESPONSE_REJECTED"
    waiting_for_input: bool = False

    def __post_init__(self) -> None:
        if self.reason is not None and not _REASON_NAME.fullmatch(self.reason):
            raise ValueError(f"reason must be a TurnCompleteReason name, got {self.reason!r}")


FaultAction = (
    GoAway
    | Close
    | Abort
    | Stall
    | DelaySetupComplete
    | WithholdSetupComplete
    | SendMalformed
    | SendMessages
    | SendInterrupted
    | EmptyReply
)


@dataclass(frozen=True)
class FaultRule:
    """`connection`: only the Nth connection (1-based). `turn`: at USER_TURN, MODEL_AUDIO and
    TOOL_WAIT the number of the user turn in question; at SETUP, IDLE and NOW the number of user
    turns the session has taken so far. `at_chunk`: for MODEL_AUDIO, the reply chunk (1-based).
    `resuming`: only connections whose setup carried a resumption handle (True) or did not
    (False); None: either (a connection before its setup matches only None)."""

    phase: Phase
    action: FaultAction
    connection: int | None = None
    turn: int | None = None
    at_chunk: int = 1
    resuming: bool | None = None


@dataclass(frozen=True)
class FiredFault:
    rule: FaultRule
    connection_id: str
    session_id: str | None
    turn: int


class FaultScript:
    """Pending rules and the record of those that fired."""

    def __init__(self) -> None:
        self.pending: list[FaultRule] = []
        self.fired: list[FiredFault] = []
        self._listeners: list[Callable[[], None]] = []

    def on(
        self,
        phase: Phase,
        action: FaultAction,
        *,
        connection: int | None = None,
        turn: int | None = None,
        at_chunk: int = 1,
        resuming: bool | None = None,
    ) -> FaultRule:
        if at_chunk < 1:
            raise ValueError(f"at_chunk is 1-based, got {at_chunk}")
        if isinstance(action, DelaySetupComplete | WithholdSetupComplete) and phase != Phase.SETUP:
            raise ValueError(f"{type(action).__name__} only makes sense at Phase.SETUP")
        rule = FaultRule(Phase(phase), action, connection, turn, at_chunk, resuming)
        self.pending.append(rule)
        if rule.phase == Phase.NOW:
            for wake in list(self._listeners):
                wake()
        return rule

    def now(self, action: FaultAction, *, connection: int | None = None) -> FaultRule:
        return self.on(Phase.NOW, action, connection=connection)

    # Shortcuts a test reads well with.
    def go_away(
        self, time_left_s: float, *, then_silent: bool = False, connection: int | None = None
    ) -> FaultRule:
        return self.now(GoAway(time_left_s, then_silent), connection=connection)

    def close(self, code: int, reason: str = "", *, connection: int | None = None) -> FaultRule:
        return self.now(Close(code, reason), connection=connection)

    def abort(self, *, connection: int | None = None) -> FaultRule:
        return self.now(Abort(), connection=connection)

    def stall(self, duration_s: float | None = None, *, connection: int | None = None) -> FaultRule:
        return self.now(Stall(duration_s), connection=connection)

    def send_malformed(self, kind: str = "json", *, connection: int | None = None) -> FaultRule:
        return self.now(SendMalformed(kind), connection=connection)

    def clear(self) -> None:
        self.pending.clear()

    def add_listener(self, wake: Callable[[], None]) -> None:
        """Called (on the caller's thread) whenever a NOW rule is added."""
        self._listeners.append(wake)

    def remove_listener(self, wake: Callable[[], None]) -> None:
        if wake in self._listeners:
            self._listeners.remove(wake)

    def take(
        self,
        phase: Phase,
        *,
        connection_number: int,
        connection_id: str,
        session_id: str | None,
        turn: int,
        chunk: int = 0,
        resuming: bool | None = None,
    ) -> FaultAction | None:
        """The action of the first rule matching this point, which is then spent and recorded.
        `resuming`: whether this connection's setup carried a handle (None: no setup yet)."""
        for rule in self.pending:
            if rule.phase != phase:
                continue
            if rule.connection is not None and rule.connection != connection_number:
                continue
            if rule.turn is not None and rule.turn != turn:
                continue
            if phase == Phase.MODEL_AUDIO and chunk < rule.at_chunk:
                continue
            if rule.resuming is not None and rule.resuming != resuming:
                continue
            self.pending.remove(rule)
            self.fired.append(FiredFault(rule, connection_id, session_id, turn))
            return rule.action
        return None
