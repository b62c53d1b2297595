"""The privacy mute end to end: the whole daemon on gpiozero mock pins against the emulator.

What the emulator received is the proof: while muted, not one more microphone byte or camera
frame reaches it, and the devices themselves are closed (not merely unread)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pilive.audio import tones
from pilive.camera import CameraState
from pilive.config import Config
from pilive.controls.events import ApplianceState, MutePressed
from pilive.emulator import Emulator
from tests.integration.test_app import BUTTON, app_config, mic_wav, start
from tests.integration.test_control_socket import ask
from tests.support.daemon_rig import NotifySocket
from tests.support.emulator_rig import emulator_options, running

MUTE_PIN = 22
PRIVACY_LED = 12
RED = 5  # the RGB status LED's red pin in the test config
HOUSEHOLD = """
[control]
socket = "ctl.sock"
"""


def config(
    tmp_path: Path,
    emu: Emulator,
    *,
    kind: str = "button",
    camera_mode: str = "on-activity",
    **kw: Any,
) -> Config:
    """The test app's config with the mute pin, its kind and the privacy LED on the mock pins."""
    base = app_config(tmp_path, emu, HOUSEHOLD, **kw)
    gpio = dataclasses.replace(
        base.gpio, mute_pin=MUTE_PIN, mute_kind=kind, privacy_led_pin=PRIVACY_LED
    )
    camera = dataclasses.replace(base.camera, mode=camera_mode)
    return dataclasses.replace(base, gpio=gpio, camera=camera)


def media_received(emu: Emulator) -> tuple[int, int]:
    """(microphone bytes, camera frames) the emulator took in, over every connection."""
    audio = sum(len(chunk) for c in emu.recording.connections for chunk in c.audio_chunks)
    video = sum(
        1
        for c in emu.recording.connections
        for f in c.received
        if f.message and "video" in f.message.get("realtimeInput", {})
    )
    return audio, video


def speech_and_silence_wav(path: Path, seconds: float = 60.0) -> None:
    """Hands-free microphone: half a second of tone every 3 s (the rest silence)."""
    rate = 16000
    t = np.arange(int(seconds * rate)) / rate
    tone = (np.sin(2 * math.pi * 300 * t) * 8000) * ((t % 3.0) < 0.5)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(tone.astype("<i2").tobytes())


def press_mute(r: Any) -> None:
    pin = r.app.controls.pin_factory.pin(MUTE_PIN)
    pin.drive_low()
    pin.drive_high()


async def test_no_microphone_byte_or_camera_frame_reaches_the_model_while_muted(
    tmp_path: Path,
) -> None:
    """Hands-free with the camera streaming: the mute button closes the microphone's device and
    the camera; the emulator then receives nothing for seconds but the audioStreamEnd of the
    stream the mute stopped; the status LED shows the muted pattern and the privacy LED is lit;
    unmuted, audio and frames flow again."""
    speech_and_silence_wav(tmp_path / "mic.wav")
    async with running(emulator_options()) as emu:
        cfg = config(
            tmp_path,
            emu,
            camera_mode="continuous",
            conversation='mode = "hands-free"',
        )
        async with start(cfg, emu.api_key) as r:
            await r.until(lambda: all(media_received(emu)), timeout_s=15)
            press_mute(r)
            await r.until(lambda: not r.app.capture.ok and r.app.camera.state is CameraState.OFF)
            assert r.app.household.muted
            factory = r.app.controls.pin_factory
            assert factory.pin(PRIVACY_LED).state == 1
            await asyncio.sleep(0.5)  # what was already on its way when the devices closed
            before = media_received(emu)
            await asyncio.sleep(3.0)  # three camera intervals, 150 microphone chunks
            assert media_received(emu) == before
            # Hands-free, the stream the mute stopped is ended, so the server flushes its audio
            # (the Live API guide's audioStreamEnd when the microphone stops for over a second).
            assert emu.recording.connections[-1].audio_stream_ends >= 1
            assert r.state is ApplianceState.MUTED or r.state is ApplianceState.SPEAKING
            await r.until(lambda: r.state is ApplianceState.MUTED, timeout_s=15)
            assert abs(factory.pin(RED).state - 0.3) < 0.01  # the muted pattern: dim red
            press_mute(r)
            await r.until(lambda: r.app.capture.ok)
            assert factory.pin(PRIVACY_LED).state == 0
            await r.until(
                lambda: all(
                    now > then for now, then in zip(media_received(emu), before, strict=True)
                ),
                timeout_s=15,
            )


async def test_the_mute_is_heard_seen_and_said_in_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mute button plays the muted earcon on the speaker, the status LED shows the muted
    pattern and STATUS (sd_notify, on a real notify socket) says the microphone and camera are
    off; unmuting plays its own earcon and STATUS no longer says muted."""
    mic_wav(tmp_path / "mic.wav")
    notify = NotifySocket(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
    said_muted = "muted (microphone and camera off)"
    try:
        async with (
            running(emulator_options()) as emu,
            start(config(tmp_path, emu), emu.api_key) as r,
        ):
            await r.settled()
            ring = r.app.playback.ring
            assert ring is not None
            written = ring.bytes_written
            press_mute(r)
            await r.until(lambda: r.state is ApplianceState.MUTED)
            await r.until(lambda: any(said_muted in s for s in notify.statuses()))
            assert "earcon muted" in r.timeline
            await r.until(lambda: ring.bytes_written >= written + len(tones.earcon("muted")) // 2)
            assert abs(r.app.controls.pin_factory.pin(RED).state - 0.3) < 0.01
            written = ring.bytes_written
            press_mute(r)
            await r.until(lambda: r.state is ApplianceState.IDLE)
            await r.until(lambda: said_muted not in notify.statuses()[-1])
            assert "earcon unmuted" in r.timeline
            await r.until(lambda: ring.bytes_written >= written + len(tones.earcon("unmuted")) // 2)
    finally:
        notify.close()


async def test_the_mute_overrides_the_button_and_the_socket(tmp_path: Path) -> None:
    """Push-to-talk, muted by the button: a held press sends no activityStart (no turn reaches
    the model), the socket's press and `mute off` are refused with the reason; a held turn is
    ended by the mute; a remote mute is lifted by the mute button."""
    mic_wav(tmp_path / "mic.wav")
    path = tmp_path / "ctl.sock"
    async with running(emulator_options()) as emu, start(config(tmp_path, emu), emu.api_key) as r:
        await r.settled()
        press_mute(r)
        await r.until(lambda: r.state is ApplianceState.MUTED)
        r.press()
        await asyncio.sleep(1.0)
        r.release()
        assert (await ask(path, {"command": "press"})) == {
            "ok": False,
            "error": "muted by the mute button; no turn starts",
        }
        refused = await ask(path, {"command": "mute", "on": False})
        assert refused["error"] == "muted by the mute button at the device; only it can unmute"
        status = (await ask(path, {"command": "status"}))["status"]
        assert status["mute"] == {"muted": True, "by": "button"}
        assert emu.recording.counters["turns"] == 0

        press_mute(r)  # unmute, then talk, and mute while the button is held
        await r.until(lambda: r.state is ApplianceState.IDLE and r.app.capture.ok)
        await asyncio.sleep(0.6)
        r.press()
        await r.until(lambda: r.state is ApplianceState.LISTENING)
        await asyncio.sleep(0.6)
        press_mute(r)
        await r.until(lambda: emu.recording.counters["turns"] == 1)
        r.release()
        await r.until(lambda: r.state is ApplianceState.MUTED, timeout_s=15)
        heard_s = len(emu.recording.turn(None, 1).audio) / 32000
        assert 0.6 <= heard_s <= 0.6 + 0.3 + 0.5  # up to the mute (pre-roll + hold), no more

        assert (await ask(path, {"command": "mute", "on": True}))["ok"]
        press_mute(r)  # lifts the button's and the remote mute alike
        await r.until(lambda: r.state is ApplianceState.IDLE)
        assert r.app.controls.pin_factory.pin(BUTTON).state == 1


async def test_the_mute_survives_a_restart_and_the_microphone_never_opens(
    tmp_path: Path,
) -> None:
    """Muted over the socket, the daemon stops; the next start is muted before any device
    opens: the microphone never captures a chunk and nothing reaches the model; a damaged
    settings file also starts muted (it may have held a mute)."""
    mic_wav(tmp_path / "mic.wav")
    path = tmp_path / "ctl.sock"
    async with running(emulator_options()) as emu:
        async with start(config(tmp_path, emu), emu.api_key) as r:
            await r.settled()
            assert (await ask(path, {"command": "mute", "on": True}))["ok"]
            await r.until(lambda: not r.app.capture.ok)
        kept = json.loads((tmp_path / "state" / "settings.json").read_text())
        assert kept["mute"] == {"button": False, "remote": True}
        async with start(config(tmp_path, emu), emu.api_key) as r:
            await r.until(lambda: r.state is ApplianceState.MUTED)
            await asyncio.sleep(1.0)
            assert r.app.capture.chunks == 0
            assert r.app.controls.pin_factory.pin(PRIVACY_LED).state == 1
            assert (await ask(path, {"command": "mute", "on": False}))["ok"]
            await r.until(lambda: r.app.capture.chunks > 0)
        (tmp_path / "state" / "settings.json").write_text("{not json")
        async with start(config(tmp_path, emu), emu.api_key) as r:
            await r.until(lambda: r.state is ApplianceState.MUTED)
            status = (await ask(path, {"command": "status"}))["status"]
            assert status["mute"] == {"muted": True, "by": "remote"}
            refused = await ask(path, {"command": "press"})
            assert refused["error"] == "muted by a remote request; no turn starts"


async def test_a_mute_switch_mutes_while_closed(tmp_path: Path) -> None:
    """mute_kind = "switch": closing it mutes, opening it unmutes; the button does nothing then."""
    mic_wav(tmp_path / "mic.wav")
    async with (
        running(emulator_options()) as emu,
        start(config(tmp_path, emu, kind="switch"), emu.api_key) as r,
    ):
        await r.settled()
        pin = r.app.controls.pin_factory.pin(MUTE_PIN)
        pin.drive_low()
        await r.until(lambda: r.state is ApplianceState.MUTED and not r.app.capture.ok)
        pin.drive_high()
        await r.until(lambda: r.state is ApplianceState.IDLE and r.app.capture.ok)


async def test_nothing_heard_before_a_mute_waits_in_the_echo_paths_preroll(tmp_path: Path) -> None:
    """With the echo path running (it keeps its own pre-roll of processed audio for the next
    turn), muting empties that pre-roll and it stays empty while muted, chunks still in the echo
    thread included; so a press right after an unmute can only send what was heard since."""
    speech_and_silence_wav(tmp_path / "mic.wav")
    async with running(emulator_options()) as emu:
        base = config(tmp_path, emu)
        cfg = dataclasses.replace(
            base,
            audio=dataclasses.replace(
                base.audio, echo=dataclasses.replace(base.audio.echo, mode="cancel")
            ),
        )
        async with start(cfg, emu.api_key) as r:
            echo = r.app.echo
            assert echo is not None
            # The echo path's pre-roll store, read directly: its length does not depend on
            # how fast this machine is (take_preroll also filters by age).
            await r.until(lambda: len(echo._preroll) >= 3, timeout_s=15)
            # The button's event, handled here without yielding to the loop: the pre-roll is
            # empty at the mute itself, before the device has closed.
            r.app._on_control_event(MutePressed(asyncio.get_running_loop().time()))
            assert r.app.household.muted and r.app.capture.ok
            assert len(echo._preroll) == 0
            await r.until(lambda: not r.app.capture.ok)
            assert len(echo._preroll) == 0
            await asyncio.sleep(0.5)  # whatever the echo thread still held has been delivered
            assert len(echo._preroll) == 0
            assert echo.take_preroll() == []
            press_mute(r)
            await r.until(lambda: r.app.capture.ok and len(echo._preroll) >= 1, timeout_s=15)
