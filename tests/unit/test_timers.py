"""Timers and alarms on a simulated clock: the pure book, and the tools the model calls."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pilive.timer_keeper import TimerKeeper
from pilive.timers import (
    DAY_NAMES,
    MAX_TIMERS,
    Missed,
    Rang,
    Timer,
    TimerBook,
    TimerError,
    Unanswered,
    local_time_words,
    next_local_time,
)
from pilive.tools.base import ToolRunner
from pilive.tools.timer_tools import timer_tools

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 6, 10, 12, 0, 0, tzinfo=UTC).timestamp()  # 14:00 in Berlin (CEST)


def test_a_timer_rings_when_due_and_stops_unanswered_after_the_limit() -> None:
    """Nothing before it is due; at the due second it rings; the next deadline is then the
    limit; at the limit it stops by itself and is gone."""
    book = TimerBook(ring_limit_s=60)
    tea = book.set_timer(180, "tea", T0)
    assert book.next_deadline() == T0 + 180
    assert book.tick(T0 + 179.9, BERLIN) == []
    assert book.tick(T0 + 180, BERLIN) == [Rang(tea)]
    assert book.ringing == (tea,)
    assert book.tick(T0 + 200, BERLIN) == []
    assert book.next_deadline() == T0 + 240
    assert book.tick(T0 + 240, BERLIN) == [Unanswered(tea)]
    assert book.ringing == () and book.listing(T0 + 240, BERLIN) == []
    assert book.next_deadline() is None


def test_a_press_stops_every_ringing_timer_and_leaves_the_others() -> None:
    book = TimerBook(ring_limit_s=60)
    eggs = book.set_timer(10, "eggs", T0)
    rice = book.set_timer(12, "rice", T0)
    later = book.set_timer(600, "bread", T0)
    book.tick(T0 + 12, BERLIN)
    assert book.stop_ringing(T0 + 12, BERLIN) == [eggs, rice]
    assert [t["id"] for t in book.listing(T0 + 12, BERLIN)] == [later.id]
    assert book.stop_ringing(T0 + 12, BERLIN) == []


def test_cancel_by_id_label_or_all_and_a_ringing_one_stops() -> None:
    book = TimerBook(ring_limit_s=60)
    tea = book.set_timer(5, "Tea", T0)
    pasta = book.set_timer(600, "pasta", T0)
    book.set_alarm("07:00", "wake up", T0, BERLIN)
    book.tick(T0 + 5, BERLIN)
    assert book.cancel(label="tea") == [tea]  # case-insensitive; it was ringing
    assert book.ringing == ()
    assert book.cancel(ident=pasta.id) == [pasta]
    assert book.cancel(ident="nothing") == []
    assert len(book.cancel(everything=True)) == 1


def test_limits_are_refused_in_words_the_model_can_say() -> None:
    book = TimerBook(ring_limit_s=60)
    with pytest.raises(TimerError, match="from 1 second to 24 hours"):
        book.set_timer(0, "", T0)
    with pytest.raises(TimerError, match="HH:MM on a 24-hour clock"):
        book.set_alarm("7pm", "", T0, BERLIN)
    for _ in range(MAX_TIMERS):
        book.set_timer(60, "", T0)
    with pytest.raises(TimerError, match="cancel one first"):
        book.set_timer(60, "", T0)


def test_an_alarm_is_the_next_time_the_local_clock_shows_it() -> None:
    """At 14:00 Berlin time, "15:30" is today and "07:00" tomorrow; across the spring change
    of clocks, 07:00 is still 07:00 on the wall (one hour less of UTC time)."""
    today = next_local_time(15, 30, T0, BERLIN)
    assert datetime.fromtimestamp(today, BERLIN).strftime("%d %H:%M") == "10 15:30"
    tomorrow = next_local_time(7, 0, T0, BERLIN)
    assert datetime.fromtimestamp(tomorrow, BERLIN).strftime("%d %H:%M") == "11 07:00"
    before_change = datetime(2026, 3, 28, 20, 0, tzinfo=BERLIN).timestamp()
    wake = next_local_time(7, 0, before_change, BERLIN)
    assert datetime.fromtimestamp(wake, BERLIN).strftime("%d %H:%M %Z") == "29 07:00 CEST"
    assert wake - before_change == 10 * 3600  # eleven wall-clock hours, one of them skipped
    assert local_time_words(today, T0, BERLIN) == "15:30:00"
    assert local_time_words(tomorrow, T0, BERLIN) == "Thu 07:00"


def test_kept_timers_ring_after_a_restart_within_the_limit_or_are_missed() -> None:
    """What was kept comes back; a timer due during the downtime rings at start if the limit
    has not passed, and is reported missed if it has; damaged entries are skipped with why."""
    book = TimerBook(ring_limit_s=60)
    soon = book.set_timer(30, "soon", T0)
    long_gone = book.set_timer(10, "gone", T0)
    kept = json.loads(json.dumps(book.to_json()))
    kept["timers"].append({"id": "x", "kind": "timer", "label": "bad", "due_unix_s": "soon"})
    again = TimerBook(ring_limit_s=60)
    assert len(again.restore(kept)) == 1
    assert again.tick(T0 + 80, BERLIN) == [Missed(long_gone), Rang(soon)]
    fresh = again.set_timer(10, "", T0 + 80)
    assert fresh.id not in (soon.id, long_gone.id)  # ids are never reused


@pytest.mark.parametrize("next_number", [None, 1, "three"])
def test_a_new_timer_never_replaces_a_kept_one_whatever_the_kept_counter(
    next_number: object,
) -> None:
    """A timers file whose counter is missing, behind its timers or damaged (edited by hand,
    half restored) still gives a new timer an id of its own: the kept timers all stay set."""
    book = TimerBook(ring_limit_s=60)
    first = book.set_timer(300, "tea", T0)
    second = book.set_timer(600, "eggs", T0)
    kept = json.loads(json.dumps(book.to_json()))
    kept["next_number"] = next_number
    again = TimerBook(ring_limit_s=60)
    assert again.restore(kept) == []
    fresh = again.set_timer(60, "pasta", T0)
    assert fresh.id not in (first.id, second.id)
    labels = [t["label"] for t in again.listing(T0, BERLIN)]
    assert labels == ["pasta", "tea", "eggs"]


async def test_the_tools_set_list_and_cancel_on_the_speakers_clock(tmp_path: Path) -> None:
    """Through the tool runner as the model would call them: results carry the local time, an
    invalid call is an error result, and the timers are saved in the state directory."""
    keeper = TimerKeeper(
        60, tmp_path, play_earcon=lambda name: None, on_ringing_changed=lambda: None, tz=BERLIN
    )
    keeper.clock = lambda: T0
    runner = ToolRunner(list(timer_tools(keeper).values()), lambda result: None)
    result = await runner.call("set_timer", {"duration_s": 600, "label": "pasta"})
    assert result["result"]["rings_at"] == "14:10:00"
    assert result["result"]["now"] == "Wednesday 14:00:00"
    alarm = await runner.call("set_alarm", {"time": "6:45", "label": "wake"})
    assert alarm["result"]["rings_at"] == "Thu 06:45"
    listed = (await runner.call("list_timers", {}))["result"]["timers"]
    assert [(t["label"], t["remaining_s"]) for t in listed] == [("pasta", 600), ("wake", 60300)]
    assert "error" in await runner.call("set_alarm", {"time": "25:00"})
    assert "error" in await runner.call("cancel_timer", {})
    assert (await runner.call("cancel_timer", {"label": "pasta"}))["result"] == {
        "cancelled": ["pasta"]
    }
    await asyncio.sleep(0)
    await keeper.store.flush()
    kept = json.loads((tmp_path / "timers.json").read_text())
    assert [t["label"] for t in kept["timers"]] == ["wake"]


def _wall(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, BERLIN).strftime("%a %d %H:%M %Z")


def test_a_weekday_alarm_rings_each_weekday_and_skips_the_weekend() -> None:
    """Set on Wednesday 10 June at 14:00 for 06:45 on weekdays: Thursday, Friday, then Monday.
    Stopped by a press, left ringing to the limit, or missed while the daemon was off, it is
    set again for its next day each time, with the same id, until it is cancelled."""
    book = TimerBook(ring_limit_s=60)
    alarm = book.set_alarm("6:45", "work", T0, BERLIN, ["mon", "tue", "wed", "thu", "fri"])
    assert alarm.at == "06:45" and alarm.days == (0, 1, 2, 3, 4) and alarm.repeats
    assert _wall(alarm.due_unix_s) == "Thu 11 06:45 CEST"
    thursday = alarm.due_unix_s
    assert book.tick(thursday, BERLIN) == [Rang(alarm)]
    assert book.stop_ringing(thursday + 5, BERLIN) == [alarm]  # a press
    friday = book.get(alarm.id)
    assert friday is not None and _wall(friday.due_unix_s) == "Fri 12 06:45 CEST"
    assert book.tick(friday.due_unix_s, BERLIN) == [Rang(friday)]
    assert book.tick(friday.due_unix_s + 60, BERLIN) == [Unanswered(friday)]  # nobody pressed
    monday = book.get(alarm.id)
    assert monday is not None and _wall(monday.due_unix_s) == "Mon 15 06:45 CEST"
    listed = book.listing(friday.due_unix_s + 60, BERLIN)
    assert listed[0]["repeats"] == ["mon", "tue", "wed", "thu", "fri"]
    assert listed[0]["rings_at"] == "Mon 06:45"
    # Off from Sunday to Tuesday noon: Monday's was missed; the next is Wednesday's.
    assert book.tick(monday.due_unix_s + 29 * 3600, BERLIN) == [Missed(monday)]
    wednesday = book.get(alarm.id)
    assert wednesday is not None and _wall(wednesday.due_unix_s) == "Wed 17 06:45 CEST"
    assert book.cancel(ident=alarm.id) == [wednesday]
    assert book.next_deadline() is None


def test_a_repeating_alarm_keeps_its_wall_clock_time_across_the_change_of_clocks() -> None:
    """Every day at 07:00 from Saturday 28 March: Sunday's is 07:00 summer time (23 hours of
    UTC later), and is kept so across a restart."""
    saturday_night = datetime(2026, 3, 28, 20, 0, tzinfo=BERLIN).timestamp()
    book = TimerBook(ring_limit_s=60)
    days = ["Mon", "tue", "WED", "thu", "fri", "sat", "sunday"]
    daily = book.set_alarm("07:00", "", saturday_night, BERLIN, days)
    assert _wall(daily.due_unix_s) == "Sun 29 07:00 CEST"
    book.tick(daily.due_unix_s, BERLIN)
    book.stop_ringing(daily.due_unix_s + 1, BERLIN)
    monday = book.get(daily.id)
    assert monday is not None and _wall(monday.due_unix_s) == "Mon 30 07:00 CEST"
    kept = json.loads(json.dumps(book.to_json()))
    assert kept["timers"][0]["at"] == "07:00" and len(kept["timers"][0]["days"]) == 7
    again = TimerBook(ring_limit_s=60)
    assert again.restore(kept) == []
    assert again.get(daily.id) == monday


def test_bad_days_are_refused_and_damaged_kept_repeats_skipped() -> None:
    book = TimerBook(ring_limit_s=60)
    with pytest.raises(TimerError, match="days are named mon, tue"):
        book.set_alarm("07:00", "", T0, BERLIN, ["mon", "someday"])
    good = {"id": "alarm-1", "kind": "alarm", "label": "", "due_unix_s": T0}
    damaged = [
        {**good, "days": ["mon"]},  # days without a time of day
        {**good, "at": "7 o'clock", "days": ["mon"]},
        {**good, "at": "07:00", "days": ["moonday"]},
        {**good, "at": "07:00", "days": "mon"},
        {**good, "kind": "timer", "at": "07:00"},
    ]
    for entry in damaged:
        assert len(TimerBook(ring_limit_s=60).restore({"timers": [entry]})) == 1, entry
    kept_before_repeats = TimerBook(ring_limit_s=60)  # a file from before repeating alarms
    assert kept_before_repeats.restore({"timers": [good]}) == []
    assert kept_before_repeats.get("alarm-1") == Timer("alarm-1", "alarm", "", T0)


async def test_the_model_sets_a_repeating_alarm(tmp_path: Path) -> None:
    """set_alarm with days: the result says when it rings first and on which days it repeats;
    list_timers shows it; a day name outside the schema is an error result."""
    keeper = TimerKeeper(
        60, tmp_path, play_earcon=lambda name: None, on_ringing_changed=lambda: None, tz=BERLIN
    )
    keeper.clock = lambda: T0
    runner = ToolRunner(list(timer_tools(keeper).values()), lambda result: None)
    result = await runner.call("set_alarm", {"time": "07:30", "days": "sat,sun", "label": "run"})
    assert result["result"]["rings_at"] == "Sat 07:30"
    assert result["result"]["repeats"] == ["sat", "sun"]
    listed = (await runner.call("list_timers", {}))["result"]["timers"]
    assert listed[0]["repeats"] == ["sat", "sun"]
    assert "error" in await runner.call("set_alarm", {"time": "07:30", "days": "weekends"})


async def test_no_alarm_tomorrow_skips_one_ring_of_a_repeating_alarm(tmp_path: Path) -> None:
    """cancel_timer with next_only: a weekday alarm skips Thursday and rings Friday; a one-time
    alarm and a timer asked the same are simply cancelled; without next_only the repeating
    alarm is gone for every day."""
    keeper = TimerKeeper(
        60, tmp_path, play_earcon=lambda name: None, on_ringing_changed=lambda: None, tz=BERLIN
    )
    keeper.clock = lambda: T0  # Wednesday 14:00
    runner = ToolRunner(list(timer_tools(keeper).values()), lambda result: None)
    weekdays = "mon,tue,wed,thu,fri"
    await runner.call("set_alarm", {"time": "06:45", "days": weekdays, "label": "work"})
    await runner.call("set_alarm", {"time": "09:00", "label": "dentist"})
    await runner.call("set_timer", {"duration_s": 600, "label": "pasta"})
    skipped = await runner.call("cancel_timer", {"label": "work", "next_only": True})
    assert skipped["result"] == {"skipped_once": [{"name": "work", "rings_next": "Fri 06:45"}]}
    for label in ("dentist", "pasta"):
        once = await runner.call("cancel_timer", {"label": label, "next_only": True})
        assert once["result"] == {"cancelled": [label]}
    gone = await runner.call("cancel_timer", {"label": "work"})
    assert gone["result"] == {"cancelled": ["work"]}
    assert keeper.book.listing(T0, BERLIN) == []


def test_skipping_a_ringing_repeating_alarm_stops_it_until_its_next_day() -> None:
    book = TimerBook(ring_limit_s=60)
    daily = book.set_alarm("07:00", "", T0, BERLIN, list(DAY_NAMES))
    book.tick(daily.due_unix_s, BERLIN)
    assert book.ringing == (daily,)
    assert book.skip_next(ident=daily.id, now_unix_s=daily.due_unix_s + 2, tz=BERLIN) == [daily]
    again = book.get(daily.id)
    assert book.ringing == () and again is not None
    assert _wall(again.due_unix_s) == "Fri 12 07:00 CEST"


async def test_no_alarms_tomorrow_for_all_leaves_a_timer_running(tmp_path: Path) -> None:
    """cancel_timer with all and next_only ("no alarms tomorrow"): the repeating alarm skips
    one ring and the one-time alarm is cancelled, but the pasta timer counting down is no
    alarm and keeps running (all without next_only still cancels it)."""
    keeper = TimerKeeper(
        60, tmp_path, play_earcon=lambda name: None, on_ringing_changed=lambda: None, tz=BERLIN
    )
    keeper.clock = lambda: T0  # Wednesday 14:00
    runner = ToolRunner(list(timer_tools(keeper).values()), lambda result: None)
    await runner.call("set_alarm", {"time": "06:45", "days": "mon,tue,wed,thu,fri"})
    await runner.call("set_alarm", {"time": "09:00", "label": "dentist"})
    await runner.call("set_timer", {"duration_s": 600, "label": "pasta"})
    skipped = (await runner.call("cancel_timer", {"all": True, "next_only": True}))["result"]
    assert skipped["cancelled"] == ["dentist"]
    assert [s["rings_next"] for s in skipped["skipped_once"]] == ["Fri 06:45"]
    left = [t["label"] for t in keeper.book.listing(T0, BERLIN)]
    assert "pasta" in left and "dentist" not in left
    assert (await runner.call("cancel_timer", {"all": True}))["result"]["cancelled"]
    assert keeper.book.listing(T0, BERLIN) == []
