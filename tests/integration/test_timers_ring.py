"""Timers end to end: the model sets one through the tool (the emulator calls set_timer), the
daemon rings it on its own, with the alarm earcon and the ringing LED, online or not; a press
stops it, an unanswered one stops after the limit, and kept ones survive a restart."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from pilive.controls.events import ApplianceState
from pilive.emulator import Emulator
from pilive.emulator.options import ToolTrigger
from tests.integration.test_app import Running, app_config, mic_wav, start
from tests.integration.test_control_socket import ask
from tests.support.emulator_rig import emulator_options, running

RED, GREEN, BLUE = 5, 6, 13
EXTRA = '[control]\nsocket = "ctl.sock"\n[timers]\nring_limit_s = 5.0\n'


def tea_in(seconds: int) -> ToolTrigger:
    args = {"duration_s": seconds, "label": "tea"}
    return ToolTrigger(turns=frozenset({1}), function="set_timer", args=args)


async def status(tmp_path: Path) -> dict[str, object]:
    reply = await ask(tmp_path / "ctl.sock", {"command": "status"})
    result: dict[str, object] = reply["status"]
    return result


def ringing(r: Running) -> bool:
    return bool(r.app.timers.ringing)


def rgb(r: Running) -> tuple[float, float, float]:
    factory = r.app.controls.pin_factory
    return (factory.pin(RED).state, factory.pin(GREEN).state, factory.pin(BLUE).state)


async def ask_for_tea(r: Running, emu: Emulator) -> None:
    await r.settled()
    await r.hold(0.5)
    await r.until(lambda: bool(r.app.timers.book.listing(time.time(), None)), timeout_s=15)
    await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)
    assert emu.recording.turn(None, 1).tool_calls[0]["name"] == "set_timer"


async def test_a_timer_the_model_set_rings_and_a_press_stops_it(tmp_path: Path) -> None:
    """The tool's answer goes back to the model; 3 s later the speaker rings: alarm earcons, the
    orange blinking LED, STATUS; a press stops it and starts no turn, and its release is not a
    turn's end either."""
    mic_wav(tmp_path / "mic.wav")
    async with (
        running(emulator_options(tool_trigger=tea_in(3))) as emu,
        start(app_config(tmp_path, emu, EXTRA), emu.api_key) as r,
    ):
        await ask_for_tea(r, emu)
        response = emu.recording.turn(None, 1).tool_responses[0]["response"]
        assert response["result"]["label"] == "tea"
        listed = (await status(tmp_path))["timers"]
        assert [t["label"] for t in listed] == ["tea"]  # type: ignore[index]
        ring = r.app.playback.ring
        assert ring is not None
        await r.until(lambda: ringing(r), timeout_s=10)
        written = ring.bytes_written
        await r.until(lambda: ring.bytes_written > written + 10000, timeout_s=5)  # earcons
        await r.until(lambda: rgb(r)[0] > 0.9 and rgb(r)[2] < 0.1, timeout_s=5)
        assert "ringing: tea (press to stop)" in r.app._status_text()
        r.press()
        await r.until(lambda: not ringing(r))
        await asyncio.sleep(0.5)
        r.release()
        await asyncio.sleep(0.5)
        assert emu.recording.counters["turns"] == 1
        assert r.state is ApplianceState.IDLE
        assert (await status(tmp_path))["timers"] == []


async def test_offline_it_still_rings_and_unanswered_it_stops_by_itself(tmp_path: Path) -> None:
    """The server goes away after the timer is set: it rings on time all the same, and with
    nobody pressing it stops after timers.ring_limit_s (5 s here)."""
    mic_wav(tmp_path / "mic.wav")
    emu_cm = running(emulator_options(tool_trigger=tea_in(4)))
    emu = await emu_cm.__aenter__()
    async with start(app_config(tmp_path, emu, EXTRA), emu.api_key) as r:
        try:
            await ask_for_tea(r, emu)
        finally:
            await emu_cm.__aexit__(None, None, None)
        await r.until(lambda: r.app.link.status.state.value != "connected", timeout_s=10)
        await r.until(lambda: ringing(r), timeout_s=10)
        started = time.monotonic()
        await r.until(lambda: not ringing(r), timeout_s=15)
        assert time.monotonic() - started >= 4.0
        assert r.app.timers.book.listing(time.time(), None) == []


async def test_timers_survive_a_restart_and_one_due_meanwhile_rings_at_start(
    tmp_path: Path,
) -> None:
    """A pending timer is there after a restart; one that fell due while the daemon was down
    rings at start (within the limit); one long past is dropped as missed."""
    mic_wav(tmp_path / "mic.wav")
    async with running(emulator_options(tool_trigger=tea_in(600))) as emu:
        async with start(app_config(tmp_path, emu, EXTRA), emu.api_key) as r:
            await ask_for_tea(r, emu)
        kept = json.loads((tmp_path / "state" / "timers.json").read_text())
        assert [t["label"] for t in kept["timers"]] == ["tea"]
        async with start(app_config(tmp_path, emu, EXTRA), emu.api_key) as r:
            await r.until(lambda: r.state is ApplianceState.IDLE)
            assert [t["label"] for t in (await status(tmp_path))["timers"]] == ["tea"]  # type: ignore[attr-defined]
        now = time.time()
        kept["timers"] = [
            {"id": "timer-8", "kind": "timer", "label": "eggs", "due_unix_s": now - 2},
            {"id": "timer-9", "kind": "alarm", "label": "old", "due_unix_s": now - 3600},
        ]
        (tmp_path / "state" / "timers.json").write_text(json.dumps(kept))
        async with start(app_config(tmp_path, emu, EXTRA), emu.api_key) as r:
            await r.until(lambda: ringing(r), timeout_s=10)
            assert [t.label for t in r.app.timers.ringing] == ["eggs"]
            assert [t["label"] for t in r.app.timers.book.listing(now, None)] == ["eggs"]


async def test_a_daily_alarm_the_model_set_rings_and_is_set_again_for_tomorrow(
    tmp_path: Path,
) -> None:
    """The model sets an alarm for 07:00 every day; the speaker's clock (simulated here: the
    keeper's clock is moved, the daemon is otherwise real) reaches it: it rings, a press stops
    it, and it stays set, for 07:00 the next day, in status and in the state directory."""
    mic_wav(tmp_path / "mic.wav")
    every_day = "mon,tue,wed,thu,fri,sat,sun"
    trigger = ToolTrigger(
        turns=frozenset({1}),
        function="set_alarm",
        args={"time": "07:00", "days": every_day, "label": "wake"},
    )
    async with (
        running(emulator_options(tool_trigger=trigger)) as emu,
        start(app_config(tmp_path, emu, EXTRA), emu.api_key) as r,
    ):
        keeper = r.app.timers
        await r.settled()
        await r.hold(0.5)
        await r.until(lambda: bool(keeper.book.listing(keeper.clock(), keeper.tz)), timeout_s=15)
        await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)
        response = emu.recording.turn(None, 1).tool_responses[0]["response"]
        assert response["result"]["repeats"] == every_day.split(",")
        alarm = keeper.book.get("alarm-1")
        assert alarm is not None
        first_due_s = alarm.due_unix_s
        keeper.clock = lambda: first_due_s + 1  # the morning comes
        keeper.changed()
        await r.until(lambda: ringing(r), timeout_s=10)
        await r.until(lambda: rgb(r)[0] > 0.9 and rgb(r)[2] < 0.1, timeout_s=5)
        r.press()
        await r.until(lambda: not ringing(r))
        r.release()
        (listed,) = (await status(tmp_path))["timers"]  # type: ignore[misc]
        assert listed["repeats"] == every_day.split(",")
        again = keeper.book.get("alarm-1")
        assert again is not None
        # The next morning at 07:00 on the wall: 23 to 25 hours on (a change of clocks between).
        assert 23 * 3600 <= again.due_unix_s - first_due_s <= 25 * 3600
        await keeper.store.flush()
        kept = json.loads((tmp_path / "state" / "timers.json").read_text())
        assert kept["timers"][0]["due_unix_s"] == again.due_unix_s
        assert kept["timers"][0]["at"] == "07:00"
        assert emu.recording.counters["turns"] == 1  # the stopping press was not a turn
