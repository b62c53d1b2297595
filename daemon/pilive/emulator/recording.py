"""What the emulator received and sent, per connection, for tests to check byte for byte."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pilive.emulator.sessions import SessionRegistry, SessionState, TurnRecord


@dataclass(frozen=True)
class ReceivedFrame:
    index: int
    at_s: float  # seconds since the connection opened
    binary: bool
    size_bytes: int
    message: dict[str, Any] | None  # the decoded JSON (None when it did not parse)


@dataclass(frozen=True)
class SentFrame:
    at_s: float
    data: bytes  # exactly what went on the wire (a binary frame)
    message: dict[str, Any] | None  # None for deliberately malformed frames


@dataclass
class ConnectionRecord:
    """One WebSocket connection, from handshake to close."""

    connection_id: str
    path: str
    api_version: str
    constrained: bool
    headers: dict[str, str]  # with credentials redacted
    opened_at_s: float = (
        0.0  # the server loop's time.monotonic() at accept; frames' at_s count from it
    )
    received: list[ReceivedFrame] = field(default_factory=list)
    sent: list[SentFrame] = field(default_factory=list)
    audio_chunks: list[bytes] = field(default_factory=list)  # decoded, in arrival order
    audio_stream_ends: int = 0  # realtimeInput.audioStreamEnd received (the client's mic stopped)
    session_id: str | None = None
    resumed: bool = False
    setup: dict[str, Any] | None = None
    setup_withheld: str | None = None  # why the setup is never answered (the model lacks a feature)
    close_code: int | None = None
    close_reason: str = ""
    closed_by: str = ""  # "server", "client" or "" while open

    def sent_messages(self) -> list[dict[str, Any]]:
        return [f.message for f in self.sent if f.message is not None]


class Recording:
    """Everything, in order, plus the counters a test asserts on."""

    def __init__(self, registry: SessionRegistry) -> None:
        self._registry = registry
        self.connections: list[ConnectionRecord] = []

    @property
    def sessions(self) -> dict[str, SessionState]:
        return self._registry.sessions

    def session(self, session_id: str | None = None) -> SessionState:
        """A session by id, or the only/newest one when None."""
        if session_id is None:
            if not self.sessions:
                raise LookupError("no session has been set up yet")
            return list(self.sessions.values())[-1]
        try:
            return self.sessions[session_id]
        except KeyError:
            raise LookupError(f"no session {session_id!r}; have {sorted(self.sessions)}") from None

    def connection(self, connection_id: str) -> ConnectionRecord:
        for record in self.connections:
            if record.connection_id == connection_id:
                return record
        raise LookupError(f"no connection {connection_id!r}")

    def connections_of(self, session_id: str) -> list[ConnectionRecord]:
        return [c for c in self.connections if c.session_id == session_id]

    def audio_bytes(self, session: str | None = None, turn: int | None = None) -> bytes:
        """Audio received in a session (all connections, in order), or in one turn of it."""
        state = self.session(session)
        if turn is not None:
            return bytes(self.turn(state.session_id, turn).audio)
        return b"".join(
            chunk for c in self.connections_of(state.session_id) for chunk in c.audio_chunks
        )

    def turn(self, session: str | None, number: int) -> TurnRecord:
        state = self.session(session)
        if not 1 <= number <= len(state.turns):
            raise LookupError(
                f"session {state.session_id} has {len(state.turns)} turns, not {number}"
            )
        return state.turns[number - 1]

    @property
    def counters(self) -> dict[str, int]:
        return {
            "connections": len(self.connections),
            "sessions": len(self.sessions),
            "turns": sum(s.turn_count for s in self.sessions.values()),
            "resumes": sum(s.resumes for s in self.sessions.values()),
        }
