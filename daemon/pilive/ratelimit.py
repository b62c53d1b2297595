"""`LogLimiter`: at most one log line per interval for a message a peer can repeat at will.

A server that sends the same contradiction in every frame must not fill the journal (on a Pi,
an SD card), yet the first occurrence is worth a line and the count of the rest is worth
keeping. Sans-I/O in the sense that the clock is an argument, so tests need no sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class LogLimiter:
    """`allow()` is True at most once per `interval_s` per key; `suppressed(key)` says how many
    calls were refused since the last allowed one (to add "and N more" to the next line).

    Keys are the caller's message kinds, a small fixed set: the table never grows with the
    peer's input.
    """

    def __init__(
        self, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self.interval_s = interval_s
        self._clock = clock
        self._last_s: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def allow(self, key: str) -> bool:
        now = self._clock()
        last = self._last_s.get(key)
        if last is not None and now - last < self.interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last_s[key] = now
        return True

    def take_suppressed(self, key: str) -> int:
        """How many lines of `key` were held back since the last allowed one; resets it."""
        return self._suppressed.pop(key, 0)

    def suffix(self, key: str) -> str:
        """The text " (and N more like it since the last)" for the line being allowed, or "".

        Resets the count, like `take_suppressed`."""
        count = self.take_suppressed(key)
        return f" (and {count} more like it since the last)" if count else ""
