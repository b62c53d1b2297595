"""Sessions outlive connections: the registry of conversations and resumption handles.

Pure state with `now` passed in. A session is created by a fresh setup and continued by a setup
carrying a handle the emulator issued; its turn counter and history survive the reconnect, which
is how a test proves a resume really continued the conversation.

Decisions where the real service is undocumented (see live-api-protocol.md, "Uncertain"):
- An unknown, never-issued or expired handle is refused with `EmulatorOptions.handle_rejection`,
  by default 1008 and the emulator's own reason `HANDLE_REJECTED`. What the service sends is
  unconfirmed: client code in public trackers handles a stale handle refused with 1008 and a
  "session expired" reason, or with 1011 (live-api-protocol.md section 8); neither the code nor
  the text has been seen in a captured close frame, so both are inferred. Tests pick either.
- A handle stays valid for `handle_lifetime_s` after it was issued; a session that ended at its
  duration limit invalidates all its handles.
- A resume while another socket of the same session is open closes with 1011 (reported,
  sip-to-ai#14), after a short grace period for the old socket's closing handshake. Whether the
  service takes over a socket that stopped answering is unknown: `resume_takeover` picks.
- A handle restores the conversation as it was when the handle was issued: turns taken in after
  that (on a connection that then dropped before a newer handle came) are rolled back, so a
  client that replays them is heard once, as on a service that resumes from its checkpoint.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pilive.emulator.frames import DEFAULT_INPUT_RATE_HZ, ProtocolViolation

HANDLE_REJECTED = "Session resumption handle is invalid or has expired."
SESSION_BUSY = "The service is currently unavailable."
MODEL_CHANGED = "Request contains an invalid argument."


@dataclass
class TurnRecord:
    """One user turn as the model took it in (what the parrot replies to)."""

    number: int
    connection_id: str
    source: str  # "activity" (push-to-talk), "vad", "text", "client_content"
    audio: bytearray = field(default_factory=bytearray)
    audio_rate_hz: int = DEFAULT_INPUT_RATE_HZ
    video_sizes: list[tuple[int, int] | None] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_responses: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    completed: bool = False
    empty_reply: bool = False  # answered with a bare turnComplete (faults.EmptyReply)
    # What this turn put into the session's context, by modality (emulator/usage.py): its input,
    # then the answers and function results read, as each model turn about it is complete.
    tokens: Counter[str] = field(default_factory=Counter)


@dataclass
class SessionState:
    session_id: str
    model: str
    created_at_s: float
    turns: list[TurnRecord] = field(default_factory=list)
    has_video: bool = False
    connection_ids: list[str] = field(default_factory=list)
    rolled_back: list[TurnRecord] = field(default_factory=list)  # undone by an older handle
    call_ids: set[str] = field(default_factory=set)  # every function call id issued, ever
    attached_connection: str | None = None
    resumes: int = 0
    ended: bool = False
    context_from: int = 0  # turns before this one were dropped by the sliding window

    @property
    def turn_count(self) -> int:
        return len(self.turns)


@dataclass
class _Handle:
    session_id: str
    issued_at_s: float
    turns: int  # the session's turn count when the handle was issued: its checkpoint


class HandleRejected(ProtocolViolation):
    """The handle is unknown, expired or of an ended session; the caller picks the close."""

    def __init__(self, detail: str) -> None:
        super().__init__(1008, HANDLE_REJECTED, detail)


class SessionRegistry:
    """All sessions of one emulator and the handles issued for them (tokens: `authtokens`)."""

    def __init__(self, handle_lifetime_s: float) -> None:
        self.handle_lifetime_s = handle_lifetime_s
        self.sessions: dict[str, SessionState] = {}
        self._handles: dict[str, _Handle] = {}

    def new_session(self, model: str, now: float) -> SessionState:
        session_id = f"s{len(self.sessions) + 1}"
        session = SessionState(session_id, model, now)
        self.sessions[session_id] = session
        return session

    @staticmethod
    def new_call_id(session: SessionState, turn_number: int) -> str:
        """`fc-s1-2` for turn 2's call; a turn replayed after a rollback gets a fresh id
        (`fc-s1-2-2`), so a late response to the lost call never answers the new one."""
        call_id = base = f"fc-{session.session_id}-{turn_number}"
        repeat = 1
        while call_id in session.call_ids:
            repeat += 1
            call_id = f"{base}-{repeat}"
        session.call_ids.add(call_id)
        return call_id

    def issue_handle(self, session: SessionState, now: float) -> str:
        handle = "h-" + secrets.token_urlsafe(18)
        self._handles[handle] = _Handle(session.session_id, now, session.turn_count)
        return handle

    def resolve(self, handle: str, now: float) -> SessionState:
        """The session a handle resumes, or the ProtocolViolation the service answers with."""
        entry = self._handles.get(handle)
        if entry is None or now - entry.issued_at_s > self.handle_lifetime_s:
            raise HandleRejected("unknown or expired handle")
        session = self.sessions[entry.session_id]
        if session.ended:
            raise HandleRejected("the session has ended")
        return session

    def restore(self, handle: str, session: SessionState) -> list[TurnRecord]:
        """Roll `session` back to `handle`'s checkpoint (call once the resume is accepted); the
        turns undone, so that a resume refused after all can put them back (`unrestore`)."""
        checkpoint = self._handles[handle].turns
        undone = session.turns[checkpoint:]
        if undone:
            session.rolled_back.extend(undone)
            del session.turns[checkpoint:]
        return undone

    @staticmethod
    def unrestore(session: SessionState, undone: list[TurnRecord]) -> None:
        """Undo `restore`: the resume was refused before `setupComplete` went out."""
        if undone:
            del session.rolled_back[len(session.rolled_back) - len(undone) :]
            session.turns.extend(undone)

    def expire_handles(self, session_id: str | None = None) -> int:
        """Forget handles (of one session, or all): a test's way to age them out at once."""
        doomed = [h for h, e in self._handles.items() if session_id in (None, e.session_id)]
        for handle in doomed:
            del self._handles[handle]
        return len(doomed)
