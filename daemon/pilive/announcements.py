"""Announcements (`pilive ctl say`, Home Assistant's "Announce") that wait for the speaker.

An automation that says "the washing machine is done" while the link is reconnecting, or while
someone holds the button, would otherwise be refused, and the refusal reaches a script's log, not
the room. So such a text waits here and is said once the link is up and the speaker is idle,
oldest first. Waiting is bounded both ways: at most MAX_WAITING texts (a further one is refused,
so a flood from a confused automation cannot grow memory), and each for at most KEEP_S, after
which it is dropped and logged: news that is five minutes late is no longer news. Sans-I/O: the
caller passes its clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

MAX_WAITING = 8
KEEP_S = 300.0


@dataclass(frozen=True, slots=True)
class Waiting:
    text: str
    queued_at_s: float


class Announcements:
    """Texts that could not be said when they came, oldest first."""

    def __init__(self, *, max_waiting: int = MAX_WAITING, keep_s: float = KEEP_S) -> None:
        self.max_waiting = max_waiting
        self.keep_s = keep_s
        self._waiting: deque[Waiting] = deque()

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, text: str, now_s: float) -> bool:
        """Queue `text`; False (nothing queued) when MAX_WAITING already wait, after the stale
        ones are gone."""
        self.expire(now_s)
        if len(self._waiting) >= self.max_waiting:
            return False
        self._waiting.append(Waiting(text, now_s))
        return True

    def expire(self, now_s: float) -> list[Waiting]:
        """Drop and return those that waited longer than `keep_s`."""
        dropped: list[Waiting] = []
        while self._waiting and now_s - self._waiting[0].queued_at_s > self.keep_s:
            dropped.append(self._waiting.popleft())
        return dropped

    def next(self) -> Waiting | None:
        """The oldest waiting text, left in place until `taken` (the speaker may refuse it)."""
        return self._waiting[0] if self._waiting else None

    def taken(self) -> None:
        """The oldest was said."""
        self._waiting.popleft()

    def clear(self) -> list[Waiting]:
        dropped = list(self._waiting)
        self._waiting.clear()
        return dropped
