"""Timers and alarms as pure data: set, list, cancel, ring, stop; the clock is always an argument.

Gemini has no clock of its own, so the model sets these through tools (tools/timer_tools.py) and
the speaker keeps them: they ring locally, offline too, and survive restarts (timer_keeper.py
keeps them in the state directory). A timer runs for a duration; an alarm rings at the next
local "HH:MM" (the system's time zone, daylight saving included). Times are Unix seconds.

An alarm may repeat on chosen days of the week ("every weekday at 6:45"): once it has rung
(stopped, unanswered or missed) it is set again for the next of those days, at the same local
time, until it is cancelled.

Ringing starts at the due time and ends when a press stops it or, unanswered, `ring_limit_s`
after it was due. A timer whose time passed while the daemon was not running rings at start if
that is still within the limit, and is reported missed otherwise.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal

Kind = Literal["timer", "alarm"]

MAX_TIMERS = 20
MAX_DURATION_S = 24 * 3600
MAX_LABEL_CHARS = 60
ALARM_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
"""An alarm's time of day: 24-hour "HH:MM" (or "H:MM")."""
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""The days a repeating alarm names, in the order of `date.weekday()`."""


class TimerError(ValueError):
    """A request the book refuses; the message is for the model (and the user) to hear."""


@dataclass(frozen=True, slots=True)
class Timer:
    id: str
    kind: Kind
    label: str
    due_unix_s: float
    at: str = ""
    """An alarm's local time of day, "HH:MM"; "" for a timer."""
    days: tuple[int, ...] = ()
    """The weekdays (Monday 0) a repeating alarm rings on, sorted; () rings once."""

    @property
    def repeats(self) -> bool:
        return bool(self.days)

    def to_json(self) -> dict[str, object]:
        kept: dict[str, object] = {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "due_unix_s": self.due_unix_s,
        }
        if self.at:
            kept["at"] = self.at
        if self.days:
            kept["days"] = day_names(self.days)
        return kept


@dataclass(frozen=True, slots=True)
class Rang:
    """`timer` started ringing."""

    timer: Timer


@dataclass(frozen=True, slots=True)
class Unanswered:
    """`timer` rang for the whole limit and stopped by itself."""

    timer: Timer


@dataclass(frozen=True, slots=True)
class Missed:
    """`timer` was due while the daemon was not running, longer ago than the ring limit."""

    timer: Timer


Event = Rang | Unanswered | Missed


class TimerBook:
    """The timers set, the ones ringing, and what happens next."""

    def __init__(self, ring_limit_s: float) -> None:
        if ring_limit_s <= 0:
            raise ValueError(f"ring_limit_s must be > 0, got {ring_limit_s!r}")
        self.ring_limit_s = ring_limit_s
        self._timers: dict[str, Timer] = {}  # set and not yet stopped, ringing ones included
        self._ringing: set[str] = set()
        self._next_number = 1

    # -- what the tools ask ----------------------------------------------------------------------

    def set_timer(self, duration_s: float, label: str, now_unix_s: float) -> Timer:
        if not 1 <= duration_s <= MAX_DURATION_S:
            raise TimerError(f"a timer runs from 1 second to {MAX_DURATION_S // 3600} hours")
        return self._add("timer", label, now_unix_s + duration_s)

    def set_alarm(
        self,
        at: str,
        label: str,
        now_unix_s: float,
        tz: tzinfo | None,
        days: Sequence[str] = (),
    ) -> Timer:
        """An alarm at the next `at` ("HH:MM", 24-hour) local time after now; with `days`
        (names from DAY_NAMES) at the next such time on one of those days, and every week."""
        match = ALARM_TIME.fullmatch(at.strip())
        if match is None:
            raise TimerError(f"an alarm time is HH:MM on a 24-hour clock, not {at!r}")
        weekdays = _weekdays(days)
        hour, minute = int(match[1]), int(match[2])
        due = next_local_time(hour, minute, now_unix_s, tz, weekdays)
        return self._add("alarm", label, due, at=f"{hour:02d}:{minute:02d}", days=weekdays)

    def cancel(
        self, *, ident: str | None = None, label: str | None = None, everything: bool = False
    ) -> list[Timer]:
        """Cancel by id, by label (case-insensitive), or all; ringing ones stop too."""
        chosen = self._matching(ident, label, everything)
        for timer in chosen:
            del self._timers[timer.id]
            self._ringing.discard(timer.id)
        return chosen

    def skip_next(
        self,
        *,
        ident: str | None = None,
        label: str | None = None,
        everything: bool = False,
        now_unix_s: float,
        tz: tzinfo | None,
    ) -> list[Timer]:
        """Only the next ring ("no alarm tomorrow"): a repeating alarm is set for its day after
        that (a ringing one stops), a timer or a one-time alarm is cancelled. `everything` means
        every alarm: a timer counting down (the pasta) is no alarm to skip and keeps running."""
        chosen = [
            t
            for t in self._matching(ident, label, everything)
            if not everything or t.kind == "alarm"
        ]
        for timer in chosen:
            self._ringing.discard(timer.id)
            self._done(timer, now_unix_s, tz)
        return chosen

    def _matching(self, ident: str | None, label: str | None, everything: bool) -> list[Timer]:
        wanted = (label or "").strip().casefold()
        return [
            t
            for t in self._timers.values()
            if everything or t.id == ident or (wanted and t.label.casefold() == wanted)
        ]

    def listing(self, now_unix_s: float, tz: tzinfo | None) -> list[dict[str, object]]:
        """Every timer, soonest first, in words the model can speak."""
        return [
            {
                "id": t.id,
                "kind": t.kind,
                "label": t.label,
                "rings_at": local_time_words(t.due_unix_s, now_unix_s, tz),
                "remaining_s": max(0, round(t.due_unix_s - now_unix_s)),
                "ringing": t.id in self._ringing,
                **({"repeats": day_names(t.days)} if t.days else {}),
            }
            for t in sorted(self._timers.values(), key=lambda t: t.due_unix_s)
        ]

    # -- ringing ----------------------------------------------------------------------------------

    @property
    def ringing(self) -> tuple[Timer, ...]:
        return tuple(self._timers[i] for i in sorted(self._ringing))

    def get(self, ident: str) -> Timer | None:
        return self._timers.get(ident)

    def stop_ringing(self, now_unix_s: float, tz: tzinfo | None) -> list[Timer]:
        """A press: every timer ringing stops (and is done, or set again if it repeats)."""
        stopped = list(self.ringing)
        for timer in stopped:
            self._done(timer, now_unix_s, tz)
        self._ringing.clear()
        return stopped

    def next_deadline(self) -> float | None:
        """When `tick` next has something to do: a timer due, or a ringing one's limit."""
        times = [
            t.due_unix_s + self.ring_limit_s if t.id in self._ringing else t.due_unix_s
            for t in self._timers.values()
        ]
        return min(times, default=None)

    def tick(self, now_unix_s: float, tz: tzinfo | None) -> list[Event]:
        """What happened by `now`: timers that start ringing, and ones that stop unanswered
        (or, due longer ago than the limit, were missed without ever ringing). A repeating
        alarm that stops or is missed is set again for its next day."""
        events: list[Event] = []
        for timer in sorted(self._timers.values(), key=lambda t: t.due_unix_s):
            if timer.due_unix_s > now_unix_s:
                continue
            over = now_unix_s >= timer.due_unix_s + self.ring_limit_s
            if timer.id in self._ringing:
                if over:
                    self._ringing.discard(timer.id)
                    self._done(timer, now_unix_s, tz)
                    events.append(Unanswered(timer))
            elif over:
                self._done(timer, now_unix_s, tz)
                events.append(Missed(timer))
            else:
                self._ringing.add(timer.id)
                events.append(Rang(timer))
        return events

    # -- kept across restarts -----------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        return {
            "next_number": self._next_number,
            "timers": [t.to_json() for t in self._timers.values()],
        }

    def restore(self, data: Mapping[str, Any]) -> list[str]:
        """Take up kept timers; returns why an entry was skipped (a damaged one is not kept)."""
        skipped: list[str] = []
        number = data.get("next_number")
        if isinstance(number, int) and not isinstance(number, bool) and number > 0:
            self._next_number = number
        entries = data.get("timers")
        for entry in entries if isinstance(entries, Sequence) else []:
            timer = _timer_from_json(entry)
            if timer is None or len(self._timers) >= MAX_TIMERS:
                skipped.append(f"a kept timer could not be read: {str(entry)[:80]}")
                continue
            self._timers[timer.id] = timer
        return skipped

    def _done(self, timer: Timer, now_unix_s: float, tz: tzinfo | None) -> None:
        """`timer` rang (or was missed): gone, or a repeating alarm set for its next day."""
        if not timer.repeats:
            del self._timers[timer.id]
            return
        hour, minute = (int(part) for part in timer.at.split(":"))
        after_s = max(now_unix_s, timer.due_unix_s)
        due = next_local_time(hour, minute, after_s, tz, timer.days)
        self._timers[timer.id] = dataclasses.replace(timer, due_unix_s=due)

    def _add(
        self,
        kind: Kind,
        label: str,
        due_unix_s: float,
        *,
        at: str = "",
        days: tuple[int, ...] = (),
    ) -> Timer:
        if len(self._timers) >= MAX_TIMERS:
            raise TimerError(f"{MAX_TIMERS} timers are already set; cancel one first")
        label = " ".join(label.split())[:MAX_LABEL_CHARS]
        # A kept counter may be missing or behind the kept timers (a damaged or edited file):
        # an id in use is skipped, never reused, or the new timer would replace the kept one.
        while (ident := f"{kind}-{self._next_number}") in self._timers:
            self._next_number += 1
        timer = Timer(ident, kind, label, due_unix_s, at, days)
        self._next_number += 1
        self._timers[timer.id] = timer
        return timer


def _timer_from_json(entry: object) -> Timer | None:
    if not isinstance(entry, Mapping):
        return None
    ident, kind, label, due = (entry.get(k) for k in ("id", "kind", "label", "due_unix_s"))
    if not (isinstance(ident, str) and ident and len(ident) <= 40):
        return None
    if kind not in ("timer", "alarm") or not isinstance(label, str):
        return None
    if isinstance(due, bool) or not isinstance(due, int | float) or not 0 <= due < 2**40:
        return None
    at, days = entry.get("at", ""), entry.get("days", [])
    if kind == "timer" and (at or days):
        return None
    if at and (not isinstance(at, str) or ALARM_TIME.fullmatch(at) is None):
        return None
    if not isinstance(days, list) or (days and not at):
        return None
    try:
        weekdays = _weekdays(days)
    except TimerError:
        return None
    return Timer(ident, kind, label[:MAX_LABEL_CHARS], float(due), at, weekdays)


def _weekdays(names: Sequence[object]) -> tuple[int, ...]:
    """Day names ("mon" ... "sun", any case) to sorted weekday numbers, each once."""
    days: set[int] = set()
    for name in names:
        key = name.strip().casefold()[:3] if isinstance(name, str) else ""
        if key not in DAY_NAMES:
            raise TimerError(f"days are named {', '.join(DAY_NAMES)}, not {name!r}")
        days.add(DAY_NAMES.index(key))
    return tuple(sorted(days))


def day_names(days: Sequence[int]) -> list[str]:
    return [DAY_NAMES[d] for d in days]


def next_local_time(
    hour: int,
    minute: int,
    now_unix_s: float,
    tz: tzinfo | None,
    days: Sequence[int] = (),
) -> float:
    """The next moment after `now` when the local clock (tz; None: the system's) shows
    hour:minute, on one of `days` (weekdays, Monday 0; () any day). On a day the clock skips
    that time (daylight saving starts), the moment the wall clock would have shown it; where it
    shows it twice, the first."""
    day = datetime.fromtimestamp(now_unix_s, tz).date()
    for _ in range(9):
        if not days or day.weekday() in days:
            naive = datetime(day.year, day.month, day.day, hour, minute)
            candidate = naive.replace(tzinfo=tz) if tz is not None else naive.astimezone()
            due = candidate.timestamp()
            if due > now_unix_s:
                return due
        day += timedelta(days=1)
    raise AssertionError("unreachable: a weekday recurs within eight days")


def local_time_words(unix_s: float, now_unix_s: float, tz: tzinfo | None) -> str:
    """'14:05:30' today, 'Tue 07:30' on another day (the local clock, tz None: the system's)."""
    when = datetime.fromtimestamp(unix_s, tz)
    now = datetime.fromtimestamp(now_unix_s, tz)
    if when.date() == now.date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%a %H:%M")
