"""Rate limits, sans-I/O in the sense that the clock is an argument, so tests need no sleeping.

- `LogLimiter`: at most one log line per interval for a message a peer can repeat at will. A
  server that sends the same contradiction in every frame must not fill the journal (on a Pi,
  an SD card), yet the first occurrence is worth a line and the count of the rest is worth
  keeping.
- `TokenBucket`: the token service's limit per device (a burst, then a steady rate).
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


class TokenBucket:
    """A burst of `capacity` requests, refilled at `rate_per_s`; `take(now)` spends one.

    `now` is any monotonic clock in seconds (the caller's). A bucket starts full.
    """

    def __init__(self, capacity: int, rate_per_s: float, now: float) -> None:
        if capacity < 1 or not rate_per_s > 0:
            raise ValueError(f"TokenBucket: need capacity >= 1 and rate > 0, got {capacity!r}, "
                             f"{rate_per_s!r}")  # fmt: skip
        self.capacity = capacity
        self.rate_per_s = rate_per_s
        self._level = float(capacity)
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._level = min(self.capacity, self._level + (now - self._at) * self.rate_per_s)
            self._at = now

    def take(self, now: float) -> bool:
        """Spend one request if the bucket allows it now."""
        self._refill(now)
        if self._level >= 1.0:
            self._level -= 1.0
            return True
        return False

    def wait_s(self, now: float) -> float:
        """Seconds until `take` would succeed (0 when it would now)."""
        self._refill(now)
        return max(0.0, (1.0 - self._level) / self.rate_per_s)

    def full_at(self, now: float) -> float:
        """When the bucket is full again (a bucket that is full can be forgotten)."""
        self._refill(now)
        return now + (self.capacity - self._level) / self.rate_per_s
