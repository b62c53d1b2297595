"""The shell around `usage.DailyBudget`: reads the clock, keeps the day's count in the state
directory, wakes at local midnight, and writes the usage lines of the journal.

A speaker left on in a kitchen must not run up a bill unseen: every turn's usage is journaled, the
health line carries the running totals, and with `[limits] daily_tokens` set the app is told
(`on_spent_changed`) when the day's tokens reach the limit and when midnight renews it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import tzinfo
from typing import Any

from pilive.live.events import UsageMetadata
from pilive.ratelimit import LogLimiter
from pilive.state import LoadOutcome, StoredUsage, UsageStore
from pilive.systemd import event_fields
from pilive.usage import DailyBudget, UsageTotals, billed_tokens, describe, journal_fields

log = logging.getLogger("pilive")

MAX_SLEEP_S = 60.0
"""The midnight wake-up re-reads the wall clock at least this often: on a Pi without a real-time
clock, NTP may move it by hours after boot, and a timer armed before that would fire late."""


class UsageKeeper:
    """Counts each turn's usage; with a limit, says when it is spent and when it is renewed."""

    def __init__(
        self,
        limit_tokens: int | None,
        store: UsageStore,
        *,
        on_spent_changed: Callable[[bool], None],
        clock: Callable[[], float] = time.time,
        tz: tzinfo | None = None,
    ) -> None:
        self.store = store
        self.totals = UsageTotals()
        self._clock = clock
        self.budget = DailyBudget(limit_tokens, clock(), tz=tz)
        self._on_spent_changed = on_spent_changed
        self._limiter = LogLimiter()
        self._saves: set[asyncio.Task[bool]] = set()

    @property
    def spent(self) -> bool:
        return self.budget.spent

    async def start(self) -> None:
        """Take up the day's count kept across the restart (file I/O on a worker thread)."""
        result = await asyncio.to_thread(self.store.load)
        stored = result.stored
        if result.outcome is LoadOutcome.LOADED and stored is not None:
            if self.budget.restore(stored.day, stored.spent_tokens, self._clock()):
                log.info(
                    "%d tokens billed today so far (kept across the restart)", stored.spent_tokens
                )
            else:
                log.info("the kept token count is of %s; today starts from 0", stored.day)
        elif result.outcome is LoadOutcome.CORRUPT:
            log.warning("the kept token count is not used (%s); today counts from 0", result.detail)
        if self.budget.spent:
            log.warning("%s", self.budget.describe_spent())
            self._on_spent_changed(True)

    async def run(self) -> None:
        """Renew the day's count at local midnight, for as long as the daemon runs."""
        while True:
            wait_s = self.budget.resets_at_unix_s - self._clock()
            await asyncio.sleep(min(max(wait_s, 0.0), MAX_SLEEP_S))
            self.refresh()

    def refresh(self) -> None:
        """Start the new day's count if midnight has passed (and say so if that lifts the limit)."""
        was_spent = self.budget.spent
        if not self.budget.roll(self._clock()):
            return
        self._save_soon()
        if was_spent:
            log.info("a new day: the daily token limit is renewed; new turns may start")
            self._on_spent_changed(False)

    def count(self, usage: UsageMetadata) -> None:
        """One turn's usageMetadata: journal it, add it up, keep the count, check the limit."""
        if usage.problems and self._limiter.allow("usage"):
            log.warning(
                "malformed usageMetadata fields counted as absent: %s%s",
                "; ".join(usage.problems),
                self._limiter.suffix("usage"),
            )
        was_spent = self.budget.spent
        rolled = self.budget.roll(self._clock())
        if rolled and was_spent:
            self._on_spent_changed(False)
        tokens = billed_tokens(usage)
        self.totals.add(usage)
        crossed = self.budget.add(tokens, self._clock())
        limit = self.budget.limit_tokens
        today = f"{self.budget.spent_tokens} tokens today" + (
            f" of {limit}" if limit is not None else ""
        )
        text = f"{describe(usage)}; {today}"
        fields: dict[str, Any] = {
            **journal_fields(usage),
            "tokens_today": self.budget.spent_tokens,
        }
        if limit is not None:
            fields["daily_limit_tokens"] = limit
        log.info("usage: %s", text, extra=event_fields("usage", text=text, **fields))
        if tokens or rolled:
            self._save_soon()
        if crossed:
            log.warning("%s", self.budget.describe_spent())
            self._on_spent_changed(True)

    def status(self) -> str | None:
        """What STATUS should add: the spent limit and when it resets, or a count that will not
        survive a restart (only matters with a limit); None when all is well."""
        if self.budget.spent:
            return self.budget.describe_spent()
        if self.budget.limit_tokens is not None and self.store.problem:
            return f"the day's token count is not kept across restarts: {self.store.problem}"
        return None

    def health_figures(self) -> dict[str, int]:
        """Running totals since start, and today's count, for the health line."""
        t = self.totals
        return {
            "usage_turns": t.turns,
            "prompt_tokens": t.prompt_tokens,
            "response_tokens": t.response_tokens,
            "total_tokens": t.total_tokens,
            "tokens_today": self.budget.spent_tokens,
        }

    async def aclose(self) -> None:
        """Let the saves already asked for reach the disk."""
        if self._saves:
            await asyncio.gather(*self._saves, return_exceptions=True)

    def _save_soon(self) -> None:
        # The generation is taken here, in the order the counts arose: saves run on worker
        # threads, and the store skips one that reaches the disk after a newer one.
        stored = StoredUsage(self.budget.day, self.budget.spent_tokens)
        generation = self.store.next_generation()
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self.store.save, stored, generation),
            name="saving the day's token count",
        )
        self._saves.add(task)
        task.add_done_callback(self._save_done)

    def _save_done(self, task: asyncio.Task[bool]) -> None:
        self._saves.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("saving the day's token count failed: %s", exc)
