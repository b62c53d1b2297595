"""Usage and the daily token limit: the pure budget (midnight, daylight saving, a clock set back),
the journal fields, the count kept in the state directory, and the keeper that ties them up."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pilive.live.events import UsageMetadata
from pilive.state import USAGE_FILE_NAME, LoadOutcome, StoredUsage, UsageStore
from pilive.usage import (
    DailyBudget,
    UsageTotals,
    billed_tokens,
    day_end_unix_s,
    describe,
    journal_fields,
    local_day,
)
from pilive.usage_keeper import UsageKeeper

BERLIN = ZoneInfo("Europe/Berlin")
SANTIAGO = ZoneInfo("America/Santiago")

TURN = UsageMetadata(
    prompt_tokens=345,
    response_tokens=48,
    thoughts_tokens=12,
    total_tokens=405,
    prompt_tokens_by_modality=(("TEXT", 200), ("AUDIO", 81), ("IMAGE", 64)),
    response_tokens_by_modality=(("AUDIO", 48),),
)


def at(text: str, tz: ZoneInfo = BERLIN) -> float:
    """Unix seconds of a local wall-clock time, '2025-03-30 10:00'."""
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


# --- one turn's usage ---------------------------------------------------------------------------


def test_billed_tokens_is_the_total_or_the_sum_of_its_parts() -> None:
    """totalTokenCount when the server sends it; prompt + response + tool use + thoughts when not
    (the API defines the total as that sum)."""
    assert billed_tokens(TURN) == 405
    parts = UsageMetadata(prompt_tokens=10, response_tokens=5, tool_use_prompt_tokens=2,
                          thoughts_tokens=3)  # fmt: skip
    assert billed_tokens(parts) == 20


def test_journal_fields_carry_every_count_and_each_modality() -> None:
    """The journal line's fields: the three counts always, the others when present, and one field
    per modality, named so journalctl can select them."""
    assert journal_fields(TURN) == {
        "prompt_tokens": 345,
        "response_tokens": 48,
        "total_tokens": 405,
        "thoughts_tokens": 12,
        "prompt_text_tokens": 200,
        "prompt_audio_tokens": 81,
        "prompt_image_tokens": 64,
        "response_audio_tokens": 48,
    }
    assert describe(TURN) == (
        "405 tokens: prompt 345 (AUDIO 81, IMAGE 64, TEXT 200), response 48 (AUDIO 48), thoughts 12"
    )


def test_a_modality_name_from_the_network_becomes_a_safe_field_word() -> None:
    """Whatever a server calls a modality, the field name stays [a-z0-9_] (the journal's rule)."""
    odd = UsageMetadata(prompt_tokens_by_modality=(("Sp@ce Ship!", 3), ("", 1), ("--", 2)))
    fields = journal_fields(odd)
    assert fields["prompt_sp_ce_ship_tokens"] == 3
    assert fields["prompt_unspecified_tokens"] == 3  # "" and "--" both have no word in them


def test_running_totals_add_up() -> None:
    totals = UsageTotals()
    totals.add(TURN)
    totals.add(UsageMetadata(prompt_tokens=5, response_tokens=1))
    assert (totals.turns, totals.prompt_tokens, totals.total_tokens) == (2, 350, 411)


# --- the local day -------------------------------------------------------------------------------


def test_the_limit_is_spent_by_the_turn_that_reaches_it() -> None:
    """add() says True once, for the turn that reaches the limit; later turns add up silently."""
    budget = DailyBudget(1000, at("2025-06-01 09:00"), tz=BERLIN)
    assert not budget.add(600, at("2025-06-01 09:01"))
    assert budget.add(400, at("2025-06-01 09:02"))
    assert budget.spent and budget.spent_tokens == 1000
    assert not budget.add(50, at("2025-06-01 09:03"))


def test_no_limit_is_never_spent() -> None:
    budget = DailyBudget(None, at("2025-06-01 09:00"), tz=BERLIN)
    assert not budget.add(10**9, at("2025-06-01 09:01")) and not budget.spent


def test_midnight_starts_the_count_afresh() -> None:
    """One second before local midnight the day's count stands; at midnight it is 0 again."""
    budget = DailyBudget(100, at("2025-06-01 23:00"), tz=BERLIN)
    budget.add(150, at("2025-06-01 23:00"))
    assert budget.resets_at_unix_s == at("2025-06-02 00:00")
    assert not budget.roll(at("2025-06-01 23:59:59")) and budget.spent
    assert budget.roll(at("2025-06-02 00:00")) and not budget.spent
    assert budget.spent_tokens == 0 and budget.day == date(2025, 6, 2)


def test_tokens_arriving_after_midnight_count_to_the_new_day() -> None:
    budget = DailyBudget(100, at("2025-06-01 23:59"), tz=BERLIN)
    budget.add(90, at("2025-06-01 23:59"))
    assert not budget.add(30, at("2025-06-02 00:00:01"))
    assert budget.spent_tokens == 30


@pytest.mark.parametrize(
    ("day", "hours"),
    [(date(2025, 3, 30), 23), (date(2025, 10, 26), 25), (date(2025, 6, 1), 24)],
)
def test_daylight_saving_days_end_at_local_midnight(day: date, hours: int) -> None:
    """The day the clocks go forward lasts 23 hours and the day they go back 25: the reset is at
    the next local midnight either way, not 24 hours after the last one."""
    start = day_end_unix_s(date.fromordinal(day.toordinal() - 1), BERLIN)
    end = day_end_unix_s(day, BERLIN)
    assert end - start == hours * 3600
    assert datetime.fromtimestamp(end, BERLIN).strftime("%H:%M") == "00:00"
    budget = DailyBudget(10, start + 3600, tz=BERLIN)
    budget.add(10, start + 3600)
    assert not budget.roll(end - 1) and budget.roll(end)


def test_where_the_clocks_jump_at_midnight_the_day_starts_at_the_jump() -> None:
    """Chile moved its clocks from 00:00 to 01:00 on 2024-09-08: that day has no midnight, so the
    old day ends at the jump (01:00 on the new clock) and the budget renews there."""
    end = day_end_unix_s(date(2024, 9, 7), SANTIAGO)
    assert datetime.fromtimestamp(end, SANTIAGO).isoformat() == "2024-09-08T01:00:00-03:00"
    assert local_day(end - 1, SANTIAGO) == date(2024, 9, 7)
    assert local_day(end, SANTIAGO) == date(2024, 9, 8)


def test_a_clock_set_back_grants_no_fresh_budget() -> None:
    """A Pi without a real-time clock may boot a day behind until NTP answers: a kept count of a
    later day stays, and the day it belongs to is not renewed early."""
    budget = DailyBudget(100, at("2025-06-01 12:00"), tz=BERLIN)
    assert budget.restore(date(2025, 6, 2), 120, at("2025-06-01 12:00"))
    assert budget.spent and not budget.roll(at("2025-06-02 12:00"))
    assert budget.roll(at("2025-06-03 00:00"))


def test_a_kept_count_of_an_earlier_day_is_dropped() -> None:
    budget = DailyBudget(100, at("2025-06-02 08:00"), tz=BERLIN)
    assert not budget.restore(date(2025, 6, 1), 500, at("2025-06-02 08:00"))
    assert budget.spent_tokens == 0 and budget.day == date(2025, 6, 2)


def test_status_words_say_when_the_limit_resets() -> None:
    budget = DailyBudget(100, at("2025-03-29 20:00"), tz=BERLIN)
    budget.add(130, at("2025-03-29 20:00"))
    assert budget.describe_spent() == (
        "daily token limit spent (130 of 100 tokens); new turns resume at midnight, "
        "2025-03-30 00:00 CET"
    )


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="limit_tokens"):
        DailyBudget(0, 0.0)
    budget = DailyBudget(5, 0.0)
    with pytest.raises(ValueError, match="tokens"):
        budget.add(-1, 0.0)


# --- the count kept in the state directory ------------------------------------------------------


def test_the_count_round_trips_and_the_file_is_private(tmp_path: Path) -> None:
    store = UsageStore(tmp_path)
    assert store.load().outcome is LoadOutcome.MISSING
    assert store.save(StoredUsage(date(2025, 6, 1), 1234))
    result = store.load()
    assert result.outcome is LoadOutcome.LOADED
    assert result.stored == StoredUsage(date(2025, 6, 1), 1234)
    assert (tmp_path / USAGE_FILE_NAME).stat().st_mode & 0o077 == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [USAGE_FILE_NAME]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\x00garbage", "not JSON"),
        (b"[1]", "no version 1 object"),
        (json.dumps({"version": 1, "spent_tokens": 3}).encode(), "no day"),
        (json.dumps({"version": 1, "day": "June", "spent_tokens": 3}).encode(), "not a date"),
        (json.dumps({"version": 1, "day": "2025-06-01", "spent_tokens": "3"}).encode(), "integer"),
        (json.dumps({"version": 1, "day": "2025-06-01", "spent_tokens": -3}).encode(), "-3"),
        (json.dumps({"version": 1, "day": "2025-06-01", "spent_tokens": True}).encode(), "integer"),
        (b'{"version": 1, "day": "2025-06-01", "spent_tokens": NaN}', "not JSON"),
        (b"[" * 60_000, "nested too deeply"),
    ],
)
def test_a_damaged_count_file_is_said_not_raised(tmp_path: Path, content: bytes, why: str) -> None:
    """Whatever is in the file, load() says CORRUPT and why (the day then counts from 0)."""
    (tmp_path / USAGE_FILE_NAME).write_bytes(content)
    result = UsageStore(tmp_path).load()
    assert result.outcome is LoadOutcome.CORRUPT and why in result.detail
    assert str(tmp_path / USAGE_FILE_NAME) in result.detail


def test_a_directory_in_place_of_the_count_file(tmp_path: Path) -> None:
    (tmp_path / USAGE_FILE_NAME).mkdir()
    store = UsageStore(tmp_path)
    assert "is a directory, not a token count file" in store.load().detail
    assert not store.save(StoredUsage(date(2025, 6, 1), 1))
    assert store.problem is not None and USAGE_FILE_NAME in store.problem


def test_a_count_saved_after_a_newer_one_does_not_win(tmp_path: Path) -> None:
    store = UsageStore(tmp_path)
    older, newer = store.next_generation(), store.next_generation()
    assert store.save(StoredUsage(date(2025, 6, 1), 20), newer)
    assert not store.save(StoredUsage(date(2025, 6, 1), 10), older)
    assert store.load().stored == StoredUsage(date(2025, 6, 1), 20)


# --- the keeper --------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def keeper(tmp_path: Path, clock: Clock, limit: int | None, changes: list[bool]) -> UsageKeeper:
    return UsageKeeper(
        limit, UsageStore(tmp_path), on_spent_changed=changes.append, clock=clock, tz=BERLIN
    )


async def test_the_limit_is_spent_kept_across_a_restart_and_renewed_at_midnight(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two turns spend a 500-token limit: the app is told once; every turn is journaled with its
    fields; a new keeper on the same directory (a restart) starts spent; midnight renews it."""
    clock = Clock(at("2025-06-01 20:00"))
    changes: list[bool] = []
    first = keeper(tmp_path, clock, 500, changes)
    await first.start()
    with caplog.at_level(logging.INFO, logger="pilive"):
        first.count(TURN)
        first.count(TURN)
    await first.aclose()
    assert changes == [True] and first.spent
    lines = [r for r in caplog.records if getattr(r, "PILIVE_EVENT", None) == "usage"]
    assert len(lines) == 2
    assert lines[1].getMessage() == f"usage: {describe(TURN)}; 810 tokens today of 500"
    assert lines[1].PILIVE_PROMPT_AUDIO_TOKENS == "81"  # type: ignore[attr-defined]
    assert lines[1].PILIVE_TOKENS_TODAY == "810"  # type: ignore[attr-defined]
    assert first.status() == (
        "daily token limit spent (810 of 500 tokens); new turns resume at midnight, "
        "2025-06-02 00:00 CEST"
    )
    assert first.health_figures() == {
        "usage_turns": 2,
        "prompt_tokens": 690,
        "response_tokens": 96,
        "total_tokens": 810,
        "tokens_today": 810,
    }

    clock.now = at("2025-06-01 23:00")
    again: list[bool] = []
    restarted = keeper(tmp_path, clock, 500, again)
    await restarted.start()
    assert again == [True] and restarted.budget.spent_tokens == 810
    clock.now = at("2025-06-02 00:00")
    restarted.refresh()
    await restarted.aclose()
    assert again == [True, False] and restarted.status() is None
    assert UsageStore(tmp_path).load().stored == StoredUsage(date(2025, 6, 2), 0)


async def test_the_keeper_wakes_at_midnight_by_itself(tmp_path: Path) -> None:
    """run() sleeps until local midnight (here 0.2 s away) and renews the spent limit."""
    loop = asyncio.get_running_loop()
    midnight = at("2025-06-02 00:00")
    started = loop.time()
    changes: list[bool] = []
    k = UsageKeeper(
        100,
        UsageStore(tmp_path),
        on_spent_changed=changes.append,
        clock=lambda: midnight - 0.2 + (loop.time() - started),
        tz=BERLIN,
    )
    k.count(UsageMetadata(total_tokens=150))
    assert changes == [True]
    task = asyncio.create_task(k.run())
    try:
        async with asyncio.timeout(10):
            while changes != [True, False]:
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
    await k.aclose()


async def test_a_damaged_count_file_starts_the_day_from_zero_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / USAGE_FILE_NAME).write_bytes(b"not json")
    changes: list[bool] = []
    k = keeper(tmp_path, Clock(at("2025-06-01 12:00")), 100, changes)
    with caplog.at_level(logging.WARNING, logger="pilive"):
        await k.start()
    assert not k.spent and changes == []
    assert any("token count is not used" in r.getMessage() for r in caplog.records)


async def test_malformed_usage_is_warned_about_once_a_minute(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that sends bad counts in every turn gets one warning line, not one per turn."""
    k = keeper(tmp_path, Clock(at("2025-06-01 12:00")), None, [])
    bad = UsageMetadata(prompt_tokens=3, problems=("usageMetadata.totalTokenCount is 'x'",))
    with caplog.at_level(logging.WARNING, logger="pilive"):
        for _ in range(5):
            k.count(bad)
    await k.aclose()
    warnings = [r for r in caplog.records if "malformed usageMetadata" in r.getMessage()]
    assert len(warnings) == 1 and "totalTokenCount is 'x'" in warnings[0].getMessage()
    assert k.totals.total_tokens == 15


async def test_without_a_limit_nothing_is_ever_refused(tmp_path: Path) -> None:
    changes: list[bool] = []
    k = keeper(tmp_path, Clock(at("2025-06-01 12:00")), None, changes)
    await k.start()
    k.count(UsageMetadata(total_tokens=10**9))
    await k.aclose()
    assert changes == [] and k.status() is None
    assert UsageStore(tmp_path).load().stored == StoredUsage(date(2025, 6, 1), 10**9)
