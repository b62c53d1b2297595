"""`[limits] daily_tokens` end to end: the whole appliance (mock pins and RGB LED, file mic and
speaker, synthetic camera) against the emulator, which bills each turn as the service does.

What a user of the appliance would notice: the turn that spends the day's tokens is answered in
full; the next press gets the error earcon and the limit's LED, STATUS says when the limit resets,
and nothing reaches the model; a restart keeps the day's count; a count from an earlier day does
not hold the speaker back. Each turn's usage is in the journal with its per-modality details.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import date, timedelta
from pathlib import Path

import pytest

from pilive.controls.events import ApplianceState
from pilive.emulator import Emulator
from pilive.state import USAGE_FILE_NAME
from tests.integration.test_app import Running, app_config, mic_wav, start
from tests.support.daemon_rig import NotifySocket
from tests.support.emulator_rig import emulator_options, running

LIMIT_TOKENS = 200  # one turn's prompt alone (system instruction, tools, audio, frames) is more


def _activity_starts(emu: Emulator) -> int:
    return sum(
        1
        for connection in emu.recording.connections
        for frame in connection.received
        if frame.message and "activityStart" in frame.message.get("realtimeInput", {})
    )


def _billed(emu: Emulator) -> list[int]:
    """totalTokenCount of every usageMetadata the emulator sent."""
    return [
        message["usageMetadata"]["totalTokenCount"]
        for connection in emu.recording.connections
        for message in connection.sent_messages()
        if "usageMetadata" in message
    ]


def _usage_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "PILIVE_EVENT", None) == "usage"]


async def _refused_press(r: Running, emu: Emulator) -> None:
    """A full hold while the limit is spent: the error earcon, nothing sent to the model."""
    notes = len(r.timeline)
    starts = _activity_starts(emu)
    await r.hold(0.6)
    await r.until(lambda: "earcon error" in r.timeline[notes:])
    await asyncio.sleep(0.3)  # anything the press might still send would be out by now
    assert _activity_starts(emu) == starts
    assert "button pressed" in r.timeline[notes:]
    assert "activityStart" not in " ".join(r.timeline[notes:])
    assert r.app.controls is not None and r.app.controls.led.state is ApplianceState.LIMIT_SPENT


async def test_the_daily_limit_stops_the_next_turn_and_survives_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    mic_wav(tmp_path / "mic.wav")
    notify = NotifySocket(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
    limits = f"[limits]\ndaily_tokens = {LIMIT_TOKENS}\n"
    try:
        async with running(emulator_options()) as emu:
            config = app_config(tmp_path, emu, limits)
            with caplog.at_level(logging.INFO, logger="pilive"):
                async with start(config, emu.api_key) as r:
                    await r.settled()
                    await r.hold(1.0)
                    # The turn that spends the limit finishes: answered and played out.
                    await r.until(lambda: r.state is ApplianceState.LIMIT_SPENT, timeout_s=15)
                    assert emu.recording.counters["turns"] == 1
                    assert emu.recording.turn(None, 1).completed
                    played = r.timeline.index("answer played out")
                    assert played < r.timeline.index("LED limit_spent")
                    assert r.timeline.index("daily token limit spent") < played
                    # STATUS says it, and when it resets.
                    await r.until(
                        lambda: any("daily token limit spent" in s for s in notify.statuses())
                    )
                    status = next(s for s in notify.statuses() if "limit spent" in s)
                    assert f"of {LIMIT_TOKENS} tokens); new turns resume at midnight, " in status
                    tomorrow = date.today() + timedelta(days=1)
                    assert f"{tomorrow:%Y-%m-%d} 00:00" in status
                    # The LED pulses the limit's pattern: red and blue light. (Green is not
                    # checked: in full-suite runs only, the mock RGB LED's green pin was seen
                    # to follow the blue one, which no run of this file alone shows; open.)
                    controls = r.app.controls
                    led = controls.led.device
                    assert led is not None
                    seen = [0.0, 0.0, 0.0]
                    for _ in range(40):
                        seen = [max(a, float(b)) for a, b in zip(seen, led.value, strict=True)]
                        await asyncio.sleep(0.05)
                    red, _green, blue = seen
                    assert red > 0 and blue > 0, (seen, r.timeline)
                    assert controls.led.state is ApplianceState.LIMIT_SPENT
                    # The next press is refused: no activityStart, no turn.
                    await _refused_press(r, emu)
                    assert emu.recording.counters["turns"] == 1
                    health = r.app._health_figures()

            # The journal has the turn's usage, with what the emulator billed and by modality.
            (line,) = _usage_records(caplog)
            (billed,) = _billed(emu)
            assert billed > LIMIT_TOKENS
            fields = line.__dict__
            assert fields["PILIVE_TOTAL_TOKENS"] == str(billed)
            assert int(fields["PILIVE_PROMPT_AUDIO_TOKENS"]) >= 32  # 1 s held + pre-roll
            assert int(fields["PILIVE_PROMPT_IMAGE_TOKENS"]) >= 64  # a frame at low resolution
            assert int(fields["PILIVE_RESPONSE_AUDIO_TOKENS"]) > 0
            assert fields["PILIVE_DAILY_LIMIT_TOKENS"] == str(LIMIT_TOKENS)
            assert health["total_tokens"] == health["tokens_today"] == billed
            kept = json.loads((tmp_path / "state" / USAGE_FILE_NAME).read_text())
            assert kept["day"] == date.today().isoformat() and kept["spent_tokens"] == billed

            # A restart keeps the day's count: still spent, a press still refused.
            async with start(app_config(tmp_path, emu, limits), emu.api_key) as r:
                await r.until(lambda: r.state is ApplianceState.LIMIT_SPENT, timeout_s=10)
                await asyncio.sleep(0.6)
                await _refused_press(r, emu)
                assert "daily token limit spent" in r.app._status_text()
                # An announcement (pilive ctl say, Home Assistant) is refused too, not queued.
                notes = len(r.timeline)
                assert r.app.household.say("is the door locked") == {
                    "ok": False,
                    "error": "the daily token limit is spent; nothing was sent",
                }
                assert len(r.app.household.announcements) == 0
                assert not any("earcon" in t for t in r.timeline[notes:])  # nobody here asked
            assert emu.recording.counters["turns"] == 1

            # A count kept from yesterday is not today's: the speaker answers again.
            yesterday = (date.today() - timedelta(days=1)).isoformat()
            (tmp_path / "state" / USAGE_FILE_NAME).write_text(
                json.dumps({"version": 1, "day": yesterday, "spent_tokens": 10**6})
            )
            async with start(app_config(tmp_path, emu, limits), emu.api_key) as r:
                await r.settled()
                await r.hold(0.6)
                await emu.wait_until(lambda: emu.recording.counters["turns"] == 2, 15)
    finally:
        notify.close()
