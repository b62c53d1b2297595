"""What the Live API bills, as the daemon counts it: per turn, since start, and per local day
against the optional `[limits] daily_tokens`.

Pure: no clock and no files. Every method that depends on the time takes `now_unix_s` (wall-clock
seconds), and the time zone is given (None: the system's, as `time.localtime` sees it), so the
midnight rollover and daylight-saving days are tested with fixed instants. `usage_keeper` is the
shell that reads the clock, persists the day's count and wakes at midnight.

The service sends one `usageMetadata` per model turn, on the message with its `turnComplete`, and
`promptTokenCount` there is the whole context the model read for that turn (it grows with the
conversation, until context-window compression trims it). So each usageMetadata is one turn's
bill, and the day's count is their sum: `totalTokenCount`, or the sum of its parts when a server
leaves it out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from pilive.live.events import UsageMetadata


def billed_tokens(usage: UsageMetadata) -> int:
    """The tokens one usageMetadata bills: `totalTokenCount`, which the API defines as prompt +
    response + tool-use prompt + thoughts; that sum when the total is missing."""
    if usage.total_tokens:
        return usage.total_tokens
    return (
        usage.prompt_tokens
        + usage.response_tokens
        + usage.tool_use_prompt_tokens
        + usage.thoughts_tokens
    )


# -- the journal line ----------------------------------------------------------------------------

# (journal word, count field, its per-modality field) in the order a reader wants them.
_COUNTS: tuple[tuple[str, str, str | None], ...] = (
    ("prompt", "prompt_tokens", "prompt_tokens_by_modality"),
    ("response", "response_tokens", "response_tokens_by_modality"),
    ("thoughts", "thoughts_tokens", None),
    ("tool_use", "tool_use_prompt_tokens", "tool_use_prompt_tokens_by_modality"),
    ("cached", "cached_content_tokens", "cache_tokens_by_modality"),
)
_NOT_A_FIELD_CHAR = re.compile(r"[^a-z0-9]+")


def _field_word(modality: str) -> str:
    """A modality as a journal field word: "AUDIO" -> "audio"; the name comes from the network,
    so anything but letters and digits goes, and it is kept short."""
    return _NOT_A_FIELD_CHAR.sub("_", modality.lower()).strip("_")[:24] or "unspecified"


def journal_fields(usage: UsageMetadata) -> dict[str, int]:
    """Journal fields for one turn's usage: `prompt_tokens`, `response_tokens`, `total_tokens`,
    the other counts when present, and one field per modality (`prompt_audio_tokens`)."""
    fields = {
        "prompt_tokens": usage.prompt_tokens,
        "response_tokens": usage.response_tokens,
        "total_tokens": billed_tokens(usage),
    }
    for word, count_name, details_name in _COUNTS:
        if getattr(usage, count_name) and f"{word}_tokens" not in fields:
            fields[f"{word}_tokens"] = getattr(usage, count_name)
        for modality, tokens in getattr(usage, details_name) if details_name else ():
            key = f"{word}_{_field_word(modality)}_tokens"
            fields[key] = fields.get(key, 0) + tokens
    return fields


def describe(usage: UsageMetadata) -> str:
    """'393 tokens: prompt 345 (AUDIO 81, IMAGE 64, TEXT 200), response 48 (AUDIO 48)'."""
    parts: list[str] = []
    for word, count_name, details_name in _COUNTS:
        count = getattr(usage, count_name)
        details = getattr(usage, details_name) if details_name else ()
        if not count and not details:
            continue
        text = f"{word.replace('_', '-')} {count}"
        if details:
            text += " (" + ", ".join(f"{m} {t}" for m, t in sorted(details)) + ")"
        parts.append(text)
    return f"{billed_tokens(usage)} tokens" + (": " + ", ".join(parts) if parts else "")


# -- running totals --------------------------------------------------------------------------------


@dataclass(slots=True)
class UsageTotals:
    """Sums since the daemon started, for the health line."""

    turns: int = 0
    prompt_tokens: int = 0
    response_tokens: int = 0
    thoughts_tokens: int = 0
    tool_use_prompt_tokens: int = 0
    total_tokens: int = 0

    def add(self, usage: UsageMetadata) -> None:
        self.turns += 1
        self.prompt_tokens += usage.prompt_tokens
        self.response_tokens += usage.response_tokens
        self.thoughts_tokens += usage.thoughts_tokens
        self.tool_use_prompt_tokens += usage.tool_use_prompt_tokens
        self.total_tokens += billed_tokens(usage)


# -- the local day ---------------------------------------------------------------------------------


def local_day(now_unix_s: float, tz: tzinfo | None = None) -> date:
    """The calendar day at `now_unix_s` in `tz` (None: the system's local time)."""
    return datetime.fromtimestamp(now_unix_s, tz).date()


def day_end_unix_s(day: date, tz: tzinfo | None = None) -> float:
    """The first instant of the day after `day`: local midnight, 23 or 25 hours after the last on
    a daylight-saving day. Where the clocks jump at midnight itself, it is the first instant that
    exists on the new day (00:00 read with the old offset is the moment of the jump)."""
    midnight = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return midnight.timestamp()  # naive (tz None): the C library's local rules, DST included


class DailyBudget:
    """Tokens billed on the current local day, against an optional limit.

    The day's count starts at 0 at local midnight. A clock set back (a Pi without a real-time
    clock boots with an old time until NTP answers) does not start a new day: the count stays
    with the newest day it was kept for, so a reboot never grants a fresh budget.
    """

    def __init__(
        self, limit_tokens: int | None, now_unix_s: float, *, tz: tzinfo | None = None
    ) -> None:
        if limit_tokens is not None and limit_tokens < 1:
            raise ValueError(f"limit_tokens must be >= 1 or None, got {limit_tokens!r}")
        self.limit_tokens = limit_tokens
        self.tz = tz
        self.day = local_day(now_unix_s, tz)
        self.spent_tokens = 0

    def restore(self, day: date, spent_tokens: int, now_unix_s: float) -> bool:
        """Take up a count kept across a restart; False when it is of an earlier day (dropped)."""
        if spent_tokens < 0:
            raise ValueError(f"spent_tokens must be >= 0, got {spent_tokens!r}")
        today = local_day(now_unix_s, self.tz)
        if day < today:
            self.day, self.spent_tokens = today, 0
            return False
        self.day, self.spent_tokens = day, spent_tokens
        return True

    def roll(self, now_unix_s: float) -> bool:
        """Start a new day's count if midnight has passed; True when it did."""
        today = local_day(now_unix_s, self.tz)
        if today <= self.day:
            return False
        self.day, self.spent_tokens = today, 0
        return True

    def add(self, tokens: int, now_unix_s: float) -> bool:
        """Count one turn's tokens on the day they arrive; True when this turn spent the limit."""
        if tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens!r}")
        self.roll(now_unix_s)
        was_spent = self.spent
        self.spent_tokens += tokens
        return self.spent and not was_spent

    @property
    def spent(self) -> bool:
        """The limit is reached: no new turn may start until the day ends."""
        return self.limit_tokens is not None and self.spent_tokens >= self.limit_tokens

    @property
    def resets_at_unix_s(self) -> float:
        """When the day's count starts afresh (local midnight after `day`)."""
        return day_end_unix_s(self.day, self.tz)

    def describe_spent(self) -> str:
        """The STATUS words while the limit is spent, saying when it resets."""
        resets = datetime.fromtimestamp(self.resets_at_unix_s, self.tz)
        if self.tz is None:
            resets = resets.astimezone()  # names the local zone (CET, CEST, ...)
        return (
            f"daily token limit spent ({self.spent_tokens} of {self.limit_tokens} tokens); "
            f"new turns resume at midnight, {resets:%Y-%m-%d %H:%M %Z}".rstrip()
        )
