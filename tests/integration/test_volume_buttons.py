"""The volume buttons end to end: gpiozero mock pins, the whole daemon, the ring buffer's gain."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pilive.audio import tones
from pilive.audio.playback import volume_to_gain
from pilive.config import Config
from pilive.controls.events import ApplianceState
from pilive.emulator import Emulator
from pilive.emulator.options import ToolTrigger
from tests.integration.test_app import Running, app_config, mic_wav, start
from tests.integration.test_control_socket import ask
from tests.support.emulator_rig import emulator_options, running

UP, DOWN = 23, 24


def config(tmp_path: Path, emu: Emulator, extra: str = "") -> Config:
    base = app_config(tmp_path, emu, '[control]\nsocket = "ctl.sock"\n' + extra)
    gpio = dataclasses.replace(base.gpio, volume_up_pin=UP, volume_down_pin=DOWN)
    return dataclasses.replace(base, gpio=gpio)


def click(r: Running, pin: int) -> None:
    mock = r.app.controls.pin_factory.pin(pin)
    mock.drive_low()
    mock.drive_high()


def gain(r: Running) -> float:
    ring = r.app.playback.ring
    assert ring is not None
    return ring.gain


async def test_each_press_steps_the_gain_and_ticks_at_the_new_level(tmp_path: Path) -> None:
    """From 80 %: up gives 90 %, two downs 70 %, in the ring buffer's gain (the cubic curve);
    each press queues the tick earcon; the level stops at 100 %; status shows it."""
    mic_wav(tmp_path / "mic.wav")
    async with running(emulator_options()) as emu, start(config(tmp_path, emu), emu.api_key) as r:
        await r.settled()
        ring = r.app.playback.ring
        assert ring is not None
        tick_bytes = len(tones.earcon("tick"))
        written = ring.bytes_written
        click(r, UP)
        await r.until(lambda: abs(gain(r) - volume_to_gain(90)) < 1e-6)
        await r.until(lambda: ring.bytes_written >= written + tick_bytes // 2)
        click(r, DOWN)
        click(r, DOWN)
        await r.until(lambda: abs(gain(r) - volume_to_gain(70)) < 1e-6)
        for _ in range(5):
            click(r, UP)
        await r.until(lambda: round(r.app.playback.volume_percent) == 100)
        status = (await ask(tmp_path / "ctl.sock", {"command": "status"}))["status"]
        assert status["volume"] == 100
        assert r.state is ApplianceState.IDLE


async def test_the_level_survives_a_restart_whoever_set_it(tmp_path: Path) -> None:
    """A button press and then the model's set_volume tool change the volume; both are kept,
    and the next start plays at the last level set."""
    mic_wav(tmp_path / "mic.wav")
    trigger = ToolTrigger(turns=frozenset({1}), function="set_volume", args={"percent": 35})
    async with running(emulator_options(tool_trigger=trigger)) as emu:
        async with start(config(tmp_path, emu), emu.api_key) as r:
            await r.settled()
            click(r, DOWN)
            await r.until(lambda: round(r.app.playback.volume_percent) == 70)
            await r.until((tmp_path / "state" / "settings.json").exists)
            await r.hold(0.5)
            await r.until(lambda: round(r.app.playback.volume_percent) == 35, timeout_s=15)
            await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)
        kept = json.loads((tmp_path / "state" / "settings.json").read_text())
        assert kept["volume_percent"] == 35
        async with start(config(tmp_path, emu), emu.api_key) as r:
            await r.until(lambda: r.app.playback.ring is not None)
            assert round(r.app.playback.volume_percent) == 35
            assert abs(gain(r) - volume_to_gain(35)) < 1e-6
