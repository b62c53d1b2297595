"""Built-in tools for timers and alarms: set_timer, set_alarm, list_timers, cancel_timer.

The model has no clock of its own, so every result says the local time now and when each timer
rings, in words it can speak. The timers themselves live in the daemon (timer_keeper.py): they
ring on the speaker, offline too, and survive restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from pilive.timer_keeper import TimerKeeper
from pilive.timers import (
    DAY_NAMES,
    MAX_DURATION_S,
    MAX_LABEL_CHARS,
    TimerError,
    day_names,
    local_time_words,
)
from pilive.tools.base import BLOCKING, Behavior, Tool, ToolResponse
from pilive.tools.schema import check_schema

TIMER_TOOL_NAMES: tuple[str, ...] = ("set_timer", "set_alarm", "list_timers", "cancel_timer")

_LABEL = {
    "type": "string",
    "maxLength": MAX_LABEL_CHARS,
    "description": "A short name said back to the user, e.g. 'tea' or 'pasta'.",
}


def _now_words(keeper: TimerKeeper) -> str:
    return datetime.fromtimestamp(keeper.clock(), keeper.tz).strftime("%A %H:%M:%S")


@dataclass
class _TimerTool:
    """What the four share: the keeper, and an answer at once (the model may as well wait).
    Each names itself and checks its schema once, at import."""

    keeper: TimerKeeper
    behavior: Behavior = BLOCKING
    name: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[Mapping[str, Any]]


class SetTimerTool(_TimerTool):
    name = "set_timer"
    description = (
        "Start a countdown timer on the speaker: it rings when the time is up, even without a "
        "network. Use it when asked for a timer ('ten minutes for the pasta')."
    )
    parameters = check_schema(
        {
            "type": "object",
            "properties": {
                "duration_s": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_DURATION_S,
                    "description": "How long until it rings, in seconds.",
                },
                "label": _LABEL,
            },
            "required": ["duration_s"],
            "additionalProperties": False,
        }
    )

    async def call(self, args: Mapping[str, Any]) -> ToolResponse:
        now = self.keeper.clock()
        try:
            timer = self.keeper.book.set_timer(args["duration_s"], args.get("label", ""), now)
        except TimerError as exc:
            return {"error": str(exc)}
        self.keeper.changed()
        return {
            "result": {
                "id": timer.id,
                "label": timer.label,
                "rings_at": local_time_words(timer.due_unix_s, now, self.keeper.tz),
                "now": _now_words(self.keeper),
            }
        }


_DAY = "(" + "|".join(DAY_NAMES) + ")"


class SetAlarmTool(_TimerTool):
    name = "set_alarm"
    description = (
        "Set an alarm on the speaker for the next time the local clock shows HH:MM (24-hour), "
        "once, or every week on the days given. It rings even without a network. The result "
        "says the local time now."
    )
    parameters = check_schema(
        {
            "type": "object",
            "properties": {
                "time": {
                    "type": "string",
                    "pattern": r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$",
                    "description": "Local time of day, 24-hour HH:MM, e.g. '06:45'.",
                },
                "days": {
                    "type": "string",
                    "pattern": f"^{_DAY}(,{_DAY})*$",
                    "description": (
                        "For an alarm that repeats: the days it rings on, comma-separated, "
                        "e.g. 'mon,tue,wed,thu,fri' for weekdays, all seven for every day. "
                        "Leave it out for an alarm that rings once."
                    ),
                },
                "label": _LABEL,
            },
            "required": ["time"],
            "additionalProperties": False,
        }
    )

    async def call(self, args: Mapping[str, Any]) -> ToolResponse:
        now = self.keeper.clock()
        days = args.get("days", "")
        try:
            alarm = self.keeper.book.set_alarm(
                args["time"],
                args.get("label", ""),
                now,
                self.keeper.tz,
                days.split(",") if days else (),
            )
        except TimerError as exc:
            return {"error": str(exc)}
        self.keeper.changed()
        return {
            "result": {
                "id": alarm.id,
                "label": alarm.label,
                "rings_at": local_time_words(alarm.due_unix_s, now, self.keeper.tz),
                "in_s": round(alarm.due_unix_s - now),
                **({"repeats": day_names(alarm.days)} if alarm.days else {}),
                "now": _now_words(self.keeper),
            }
        }


class ListTimersTool(_TimerTool):
    name = "list_timers"
    description = (
        "List the timers and alarms set on the speaker, with the time left, and the local time "
        "now. Use it for 'how long is left' or 'what time is it'."
    )
    parameters = check_schema({"type": "object", "properties": {}})

    async def call(self, args: Mapping[str, Any]) -> ToolResponse:
        timers = self.keeper.book.listing(self.keeper.clock(), self.keeper.tz)
        return {"result": {"now": _now_words(self.keeper), "timers": timers}}


class CancelTimerTool(_TimerTool):
    name = "cancel_timer"
    description = (
        "Cancel timers or alarms: one by its id or label, or all of them. A ringing one stops; "
        "a repeating alarm is cancelled for every day, unless next_only is set."
    )
    parameters = check_schema(
        {
            "type": "object",
            "properties": {
                "id": {"type": "string", "description": "The id list_timers gave."},
                "label": _LABEL,
                "all": {"type": "boolean", "description": "Cancel every timer and alarm."},
                "next_only": {
                    "type": "boolean",
                    "description": (
                        "Only the next ring of a repeating alarm ('no alarm tomorrow'): it "
                        "rings again on its following day. With all: every alarm, timers "
                        "keep running."
                    ),
                },
            },
            "additionalProperties": False,
        }
    )

    async def call(self, args: Mapping[str, Any]) -> ToolResponse:
        if not (args.get("id") or args.get("label") or args.get("all")):
            return {"error": "say which: an id, a label, or all"}
        which = {"ident": args.get("id"), "label": args.get("label")}
        everything = bool(args.get("all"))
        now = self.keeper.clock()
        book = self.keeper.book
        if args.get("next_only"):
            chosen = book.skip_next(
                **which, everything=everything, now_unix_s=now, tz=self.keeper.tz
            )
        else:
            chosen = book.cancel(**which, everything=everything)
        if not chosen:
            return {"error": "no timer or alarm matches; list_timers shows what is set"}
        self.keeper.changed()
        self.keeper.ringing_may_have_changed()
        result: dict[str, object] = {}
        cancelled = [t.label or t.id for t in chosen if book.get(t.id) is None]
        if cancelled:
            result["cancelled"] = cancelled
        kept = [again for t in chosen if (again := book.get(t.id)) is not None]
        if kept:
            result["skipped_once"] = [
                {
                    "name": t.label or t.id,
                    "rings_next": local_time_words(t.due_unix_s, now, self.keeper.tz),
                }
                for t in kept
            ]
        return {"result": result}


def timer_tools(keeper: TimerKeeper) -> dict[str, Tool]:
    """The four tools, by name, all on one keeper."""
    return {
        "set_timer": SetTimerTool(keeper),
        "set_alarm": SetAlarmTool(keeper),
        "list_timers": ListTimersTool(keeper),
        "cancel_timer": CancelTimerTool(keeper),
    }
