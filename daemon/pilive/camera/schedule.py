"""When to take the next camera frame: a pure, drift-free schedule.

No clock is read here; every call takes `now` in seconds from any monotonic clock. The Live API
asks for at most 1 frame per second, so frames sit on a fixed grid `anchor + k * interval_s`:
late frames do not push later ones back (no drift over minutes), and a stall skips the slots it
missed instead of sending them in a burst (a frame never follows the previous one by less than
`min_gap_s`, half an interval by default).
"""

from __future__ import annotations

import math

MAX_FPS = 1.0


def interval_for_fps(fps: float) -> float:
    """Seconds between frames for `fps`, which must be in (0, 1] (the Live API's limit)."""
    if not (isinstance(fps, (int, float)) and math.isfinite(fps)) or not 0 < fps <= MAX_FPS:
        raise ValueError(f"camera fps must be > 0 and <= {MAX_FPS}, got {fps!r}")
    return 1.0 / fps


class FrameSchedule:
    """Grid of frame slots started by `restart(now)`; `frame_sent(now)` moves to the next slot."""

    def __init__(self, interval_s: float, *, min_gap_s: float | None = None) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self.interval_s = interval_s
        self.min_gap_s = interval_s / 2 if min_gap_s is None else min_gap_s
        if not 0 <= self.min_gap_s <= interval_s:
            raise ValueError(f"min_gap_s must be in [0, interval_s], got {self.min_gap_s!r}")
        self._anchor_s = 0.0
        self._next_slot = 0
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    @property
    def next_due_s(self) -> float | None:
        """When the next frame should be taken, or None while stopped."""
        if not self._running:
            return None
        return self._anchor_s + self._next_slot * self.interval_s

    def restart(self, now: float) -> None:
        """Start a fresh grid: a frame is due at once (the press), then every interval_s."""
        self._anchor_s = now
        self._next_slot = 0
        self._running = True

    def stop(self) -> None:
        self._running = False

    def is_due(self, now: float) -> bool:
        due = self.next_due_s
        return due is not None and now >= due

    def delay_s(self, now: float) -> float | None:
        """Seconds until the next frame is due (0 when overdue), or None while stopped."""
        due = self.next_due_s
        return None if due is None else max(0.0, due - now)

    def frame_sent(self, now: float) -> None:
        """A frame went out at `now`: the next is the first grid slot at least min_gap_s later."""
        if not self._running:
            return
        earliest = now + self.min_gap_s - self._anchor_s
        # A small epsilon keeps a slot that is exactly min_gap_s away despite float rounding.
        slot = math.ceil(earliest / self.interval_s - 1e-9)
        self._next_slot = max(self._next_slot + 1, slot)
