"""The shell around `timers.TimerBook`: reads the clock, keeps the timers in the state directory,
wakes when one is due, and rings: the alarm earcon every `RING_PERIOD_S`, and (through
`on_ringing_changed`) the ringing LED, until a press or the limit stops it. Nothing here needs
the network: a timer rings offline as well.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path

from pilive.kept import KeptJson
from pilive.state import LoadOutcome
from pilive.systemd import event_fields
from pilive.timers import Missed, Rang, Timer, TimerBook, Unanswered, local_time_words

log = logging.getLogger("pilive")

TIMERS_FILE_NAME = "timers.json"
RING_PERIOD_S = 1.5
"""The alarm earcon repeats this often while a timer rings."""
MAX_SLEEP_S = 30.0
"""Wake at least this often to read the wall clock again: on a Pi without a real-time clock NTP
may move it by hours after boot, and a sleep armed before that would ring late."""


class TimerKeeper:
    """Timers for the tools and the household; `run()` is its task for the daemon's lifetime."""

    def __init__(
        self,
        ring_limit_s: float,
        state_directory: Path,
        *,
        play_earcon: Callable[[str], None],
        on_ringing_changed: Callable[[], None],
        clock: Callable[[], float] = time.time,
        tz: tzinfo | None = None,
    ) -> None:
        self.book = TimerBook(ring_limit_s)
        self.store = KeptJson(
            state_directory,
            TIMERS_FILE_NAME,
            kind="timers file",
            loss="timers will not be kept across restarts",
            kept="timers are kept",
        )
        self._play_earcon = play_earcon
        self._on_ringing_changed = on_ringing_changed
        self.clock = clock
        self.tz = tz
        self._changed = asyncio.Event()

    @property
    def ringing(self) -> tuple[Timer, ...]:
        return self.book.ringing

    async def start(self) -> None:
        """Take up the kept timers (file I/O on a worker thread)."""
        kept = await asyncio.to_thread(self.store.load)
        if kept.outcome is LoadOutcome.CORRUPT:
            log.warning("kept timers are lost: %s", kept.detail)
        elif kept.outcome is LoadOutcome.LOADED:
            for why in self.book.restore(kept.data):
                log.warning("%s", why)
            count = len(self.book.listing(self.clock(), self.tz))
            if count:
                log.info("%d timer(s) kept across the restart", count)

    async def run(self) -> None:
        """Ring what is due and stop what rang too long, for as long as the daemon runs."""
        while True:
            self._update()
            ringing = bool(self.book.ringing)
            deadline = self.book.next_deadline()
            wait_s = MAX_SLEEP_S if deadline is None else deadline - self.clock()
            if ringing:
                self._play_earcon("alarm")
                wait_s = min(wait_s, RING_PERIOD_S)
            self._changed.clear()
            try:
                async with asyncio.timeout(min(max(wait_s, 0.0), MAX_SLEEP_S)):
                    await self._changed.wait()
            except TimeoutError:
                pass

    def changed(self) -> None:
        """Timers were set, cancelled or stopped: save them and re-plan the next wake-up."""
        self.store.save_soon(self.book.to_json())
        self._changed.set()

    def ringing_may_have_changed(self) -> None:
        """A cancelled timer may have been ringing: the LED follows."""
        self._on_ringing_changed()

    def stop_ringing(self) -> list[Timer]:
        """A press: every ringing timer stops."""
        stopped = self.book.stop_ringing(self.clock(), self.tz)
        if stopped:
            names = ", ".join(_name(t) + self._again(t) for t in stopped)
            log.info("%s stopped by a press", names, extra=event_fields("timer_stopped"))
            self.changed()
            self._on_ringing_changed()
        return stopped

    def _update(self) -> None:
        events = self.book.tick(self.clock(), self.tz)
        for event in events:
            name = _name(event.timer)
            if isinstance(event, Rang):
                log.info(
                    "%s rings", name, extra=event_fields("timer_rang", label=event.timer.label)
                )
            elif isinstance(event, Unanswered):
                log.warning(
                    "%s rang for %.0f s unanswered and stopped%s",
                    name,
                    self.book.ring_limit_s,
                    self._again(event.timer),
                    extra=event_fields("timer_unanswered", label=event.timer.label),
                )
            elif isinstance(event, Missed):
                log.warning(
                    "%s was due while pilive was not running, and was missed%s",
                    name,
                    self._again(event.timer),
                    extra=event_fields("timer_missed", label=event.timer.label),
                )
        if events:
            self.store.save_soon(self.book.to_json())
            self._on_ringing_changed()

    def _again(self, timer: Timer) -> str:
        """For a repeating alarm that rang: when it rings next, for the log line."""
        again = self.book.get(timer.id)
        if again is None or not again.repeats:
            return ""
        return f" (it repeats: next {local_time_words(again.due_unix_s, self.clock(), self.tz)})"

    async def aclose(self) -> None:
        await self.store.flush()


def _name(timer: Timer) -> str:
    return f"the {timer.label} {timer.kind}" if timer.label else f"{timer.kind} {timer.id}"
