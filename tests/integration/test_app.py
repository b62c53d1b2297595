"""The whole appliance end to end: real gpiozero mock pins, the emulator on loopback, the file
speaker and mic (paced in real time), the synthetic camera; one turn on real PulseAudio devices.

What each test proves is what a user of the appliance would notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import sys
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np

from pilive.app import App
from pilive.config import Config, Secret, parse_config
from pilive.controls.events import ApplianceState
from pilive.emulator import Emulator
from pilive.emulator.options import ToolTrigger
from tests.support.daemon_rig import isolated_environ
from tests.support.emulator_rig import emulator_options, running
from tests.support.pulse_rig import PulseRig, pulse_rig  # noqa: F401 - a fixture used below

MIC_RATE_HZ = 16000
BUTTON = 17
BLUE = 13  # the RGB LED's blue pin in the test config


def mic_wav(path: Path, seconds: float = 30.0) -> bytes:
    """A mic track whose every 20 ms chunk is distinct (a slow frequency sweep), so any slice of
    it can be found again in what the model received."""
    t = np.arange(int(seconds * MIC_RATE_HZ)) / MIC_RATE_HZ
    freq = 200 + 30 * t
    samples = (np.sin(2 * math.pi * np.cumsum(freq) / MIC_RATE_HZ) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(MIC_RATE_HZ)
        wav.writeframes(samples.tobytes())
    return samples.tobytes()


FILE_AUDIO = """
[audio.input]
backend = "file"
file_path = "mic.wav"
[audio.output]
backend = "file"
file_path = "speaker.wav"
"""


def app_config(
    tmp_path: Path,
    emu: Emulator,
    extra: str = "",
    *,
    key: str | None = None,
    audio: str = FILE_AUDIO,
    conversation: str = "min_press_ms = 100",
) -> Config:
    text = f"""
[live]
endpoint = "{emu.url}"
api_key = "{key or emu.api_key}"
[connection]
backoff_initial_s = 0.05
backoff_max_s = 0.5
config_fault_retry_s = 30.0
{audio}
[camera]
source = "synthetic"
[gpio]
pin_factory = "mock"
button_pin = {BUTTON}
led = "rgb"
led_pins = [5, 6, {BLUE}]
[conversation]
{conversation}
[state]
directory = "state"
{extra}
"""
    return parse_config(text, source="test.toml", base_dir=tmp_path, environ=isolated_environ())


class Running:
    """An App on the test's loop, with helpers to press its mock button and wait for things."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.timeline: list[str] = []
        self.task: asyncio.Task[None] | None = None

    def press(self) -> None:
        self.app.controls.pin_factory.pin(BUTTON).drive_low()

    def release(self) -> None:
        self.app.controls.pin_factory.pin(BUTTON).drive_high()

    async def until(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await asyncio.sleep(0.01)

    async def settled(self) -> None:
        """Connected and idle, with a full pre-roll buffer behind the microphone."""
        await self.until(lambda: self.state is ApplianceState.IDLE)
        await asyncio.sleep(0.6)

    @property
    def state(self) -> ApplianceState:
        return self.app.conversation.state

    async def hold(self, seconds: float) -> None:
        self.press()
        await asyncio.sleep(seconds)
        self.release()


@contextlib.asynccontextmanager
async def start(config: Config, key: str) -> AsyncIterator[Running]:
    running_app = Running(App(config, Secret(key, "test")))
    running_app.app.on_timeline = lambda at, text: running_app.timeline.append(text)
    running_app.task = asyncio.create_task(running_app.app.run())
    try:
        await running_app.until(lambda: hasattr(running_app.app, "link"))
        yield running_app
    finally:
        running_app.app.request_stop()
        await asyncio.wait_for(running_app.task, 6)


def is_slice_of(received: bytes, source: bytes) -> bool:
    return len(received) > 0 and received in source + source


async def test_full_turn_through_the_button(tmp_path: Path) -> None:
    """Hold the mock button, release: the model receives the mic audio from the pre-roll to the
    release as one contiguous slice, plus camera frames; the LED is blue while held; the answer
    plays out of the speaker and the appliance returns to idle."""
    source = mic_wav(tmp_path / "mic.wav")
    async with (
        running(emulator_options()) as emu,
        start(app_config(tmp_path, emu), emu.api_key) as r,
    ):
        await r.settled()
        r.press()
        await r.until(lambda: r.state is ApplianceState.LISTENING)
        assert r.app.controls.pin_factory.pin(BLUE).state > 0.9
        await asyncio.sleep(1.2)
        r.release()
        await r.until(lambda: emu.recording.counters["turns"] == 1)
        await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)
        turn = emu.recording.turn(None, 1)
        assert is_slice_of(bytes(turn.audio), source)
        held_s = len(turn.audio) / 2 / MIC_RATE_HZ
        assert 1.2 + 0.3 - 0.1 <= held_s <= 1.2 + 0.3 + 0.2  # hold + pre-roll (+ one chunk)
        assert turn.video_sizes and turn.video_sizes[0] == (768, 768)
        assert r.app.stats.answer_latencies_s
        assert "answer played out" in r.timeline


async def test_barge_in_flushes_the_answer_and_starts_listening(tmp_path: Path) -> None:
    """A press while the answer plays silences it at once and the next turn is heard whole."""
    source = mic_wav(tmp_path / "mic.wav")
    async with (
        running(emulator_options()) as emu,
        start(app_config(tmp_path, emu), emu.api_key) as r,
    ):
        await r.settled()
        await r.hold(2.0)
        await r.until(lambda: r.state is ApplianceState.SPEAKING)
        ring = r.app.playback.ring
        assert ring is not None
        clears = ring.clears
        r.press()
        await r.until(lambda: ring.clears > clears, timeout_s=1)
        assert r.app.stats.barge_ins == 1
        await r.until(lambda: r.state is ApplianceState.LISTENING)
        await asyncio.sleep(0.5)
        r.release()
        await r.until(lambda: emu.recording.counters["turns"] == 2)
        assert is_slice_of(bytes(emu.recording.turn(None, 2).audio), source)


async def test_go_away_while_held_keeps_the_whole_utterance(tmp_path: Path) -> None:
    """goAway arrives while the user holds the button: the daemon hands over mid-turn and the
    model still takes in every byte from the pre-roll to the release, once, in one session."""
    source = mic_wav(tmp_path / "mic.wav")
    async with (
        running(emulator_options()) as emu,
        start(app_config(tmp_path, emu), emu.api_key) as r,
    ):
        await r.settled()
        r.press()
        await asyncio.sleep(0.5)
        emu.faults.go_away(2.5)  # handover due 0.5 s later (2 s margin), still held
        await asyncio.sleep(1.5)
        r.release()
        await r.until(lambda: emu.recording.counters["turns"] == 1, timeout_s=15)
        assert r.app.link.counters.handovers == 1
        assert emu.recording.counters["sessions"] == 1
        turn_audio = bytes(emu.recording.turn(None, 1).audio)
        assert is_slice_of(turn_audio, source)
        assert len(turn_audio) / 2 / MIC_RATE_HZ >= 2.0 + 0.3 - 0.1


async def test_tool_call_round_trip(tmp_path: Path) -> None:
    """The model calls the built-in device_status tool: the daemon runs it, answers with the
    volume it reports, and the model's spoken answer follows."""
    mic_wav(tmp_path / "mic.wav")
    options = emulator_options(
        tool_trigger=ToolTrigger(turns=frozenset({1}), function="device_status")
    )
    async with running(options) as emu:
        config = app_config(tmp_path, emu, '[tools]\nbuiltin = ["device_status"]\n')
        async with start(config, emu.api_key) as r:
            await r.settled()
            await r.hold(0.5)
            await r.until(
                lambda: (
                    emu.recording.counters["turns"] == 1
                    and bool(emu.recording.turn(None, 1).tool_responses)
                ),
                timeout_s=15,
            )
            call = emu.recording.turn(None, 1).tool_calls[0]
            response = emu.recording.turn(None, 1).tool_responses[0]
            assert call["name"] == "device_status" and response["id"] == call["id"]
            assert "volume_percent" in str(response["response"])
            await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)
            assert r.app.stats.tool_calls == 1


async def test_configuration_fault_is_shown_and_a_press_says_so(tmp_path: Path) -> None:
    """A wrong key: the appliance shows the configuration fault (LED, STATUS text naming the
    cause) and a press gives immediate feedback instead of starting a turn."""
    mic_wav(tmp_path / "mic.wav")
    async with running(emulator_options()) as emu:
        config = app_config(tmp_path, emu, key="not-the-key")
        async with start(config, "not-the-key") as r:
            await r.until(lambda: r.state is ApplianceState.CONFIG_FAULT)
            assert "API key invalid (1007)" in r.app._status_text()
            r.press()
            await asyncio.sleep(0.3)
            r.release()
            assert r.app.stats.turns == 0
            assert emu.recording.counters["turns"] == 0


async def test_one_turn_on_real_audio_devices(
    tmp_path: Path,
    pulse_rig: PulseRig,  # noqa: F811 - the fixture imported above
) -> None:
    """The same turn on real PortAudio -> ALSA -> PulseAudio devices: what is played into the
    mic sink reaches the model, and the answer comes out of the speaker sink."""
    source = mic_wav(tmp_path / "mic.wav", seconds=8.0)
    audio = (
        '[audio.input]\nbackend = "pyaudio"\ndevice = "pilive_mic"\n'
        '[audio.output]\nbackend = "pyaudio"\ndevice = "pilive_spk"\n'
    )
    recorder = pulse_rig.record("spk.monitor", 24000, tmp_path / "speaker.raw")
    try:
        async with running(emulator_options()) as emu:
            config = app_config(tmp_path, emu, audio=audio)
            async with start(config, emu.api_key) as r:
                await r.settled()
                player = pulse_rig.play(tmp_path / "mic.wav", sink="mic")
                await asyncio.sleep(1.0)
                await r.hold(1.5)
                await r.until(lambda: emu.recording.counters["turns"] == 1)
                await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)
                player.kill()
                heard = np.frombuffer(bytes(emu.recording.turn(None, 1).audio), "<i2")
                reference = np.frombuffer(source, "<i2")
                assert _best_correlation(heard[4000:12000], reference) > 0.8
    finally:
        recorder.terminate()
        recorder.wait()
    played = np.fromfile(tmp_path / "speaker.raw", dtype="<i2")
    assert np.abs(played).max() > 1000  # the answer (tone + parrot) reached the speaker


def _best_correlation(heard: np.ndarray, reference: np.ndarray) -> float:
    heard = heard.astype(np.float64)
    ref = reference.astype(np.float64)
    corr = np.correlate(ref, heard, mode="valid")
    norms = np.sqrt(
        np.convolve(ref * ref, np.ones(len(heard)), mode="valid") * np.dot(heard, heard)
    )
    return float(np.max(corr / np.maximum(norms, 1e-9)))


def _notify_socket(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    return sock, path


async def test_sigterm_under_systemd_notify(tmp_path: Path) -> None:
    """`pilive run` as systemd starts it: READY=1 with a STATUS, then on SIGTERM STOPPING=1 and a
    clean exit (status 0) within 5 s, with the conversation's handle saved for the restart."""
    mic_wav(tmp_path / "mic.wav")
    async with running(emulator_options()) as emu:
        config_path = tmp_path / "pilive.toml"
        text = (
            f'[live]\nendpoint = "{emu.url}"\napi_key = "{emu.api_key}"\n'
            '[audio.input]\nbackend = "file"\nfile_path = "mic.wav"\n'
            '[audio.output]\nbackend = "null"\n[camera]\nsource = "none"\n'
            '[gpio]\npin_factory = "mock"\n[state]\ndirectory = "state"\n'
            '[[timeline]]\nat_s = 0.3\naction = "press"\n'
            '[[timeline]]\nat_s = 1.0\naction = "release"\n'
        )
        config_path.write_text(text)
        sock, path = _notify_socket(tmp_path)
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pilive", "run", "--config", str(config_path), env=env
        )
        try:
            messages: list[str] = []
            loop = asyncio.get_running_loop()

            async def read_until(prefix: str) -> None:
                while not any(m.startswith(prefix) for m in messages):
                    data = await loop.run_in_executor(None, sock.recv, 4096)
                    messages.extend(data.decode().split("\n"))

            await read_until("READY=1")
            await read_until("WATCHDOG=1")
            await emu.wait_until(lambda: emu.recording.counters["turns"] == 1, 15)
            await asyncio.sleep(0.3)  # the handle update after the turn
            proc.send_signal(signal.SIGTERM)
            await read_until("STOPPING=1")
            status = await asyncio.wait_for(proc.wait(), 5)
            assert status == 0
            assert any(m.startswith("STATUS=") for m in messages)
            assert (tmp_path / "state" / "resumption.json").exists()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            sock.close()


async def test_hands_free_turn_needs_no_button(tmp_path: Path) -> None:
    """Hands-free mode: the mic streams whenever connected, the server's VAD finds the utterance
    (speech, then silence longer than silence_duration_ms) and the answer plays; no press."""
    t = np.arange(int(1.2 * MIC_RATE_HZ)) / MIC_RATE_HZ
    speech = (np.sin(2 * math.pi * 300 * t) * 8000).astype("<i2")
    track = np.concatenate([np.zeros(MIC_RATE_HZ, "<i2"), speech, np.zeros(4 * MIC_RATE_HZ, "<i2")])
    with wave.open(str(tmp_path / "mic.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(MIC_RATE_HZ)
        wav.writeframes(track.tobytes())
    async with running(emulator_options()) as emu:
        config = app_config(
            tmp_path,
            emu,
            "[live.vad]\nsilence_duration_ms = 500\n",
            conversation='mode = "hands-free"',
        )
        async with start(config, emu.api_key) as r:
            await r.until(lambda: emu.recording.counters["turns"] >= 1, timeout_s=15)
            turn = emu.recording.turn(None, 1)
            assert turn.source == "vad"
            await r.until(lambda: r.state is ApplianceState.SPEAKING, timeout_s=10)
            await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)
            assert r.app.stats.presses == 0


async def test_a_re_press_within_one_mic_chunk_of_the_release_starts_a_new_turn(
    tmp_path: Path,
) -> None:
    """With min_press_ms = 0 a release and a new press can fall within one 20 ms mic chunk
    (or a contact bounce): the deferred activityEnd goes out first, then the new activityStart;
    nothing raises and both turns reach the model."""
    mic_wav(tmp_path / "mic.wav")
    async with running(emulator_options()) as emu:
        config = app_config(tmp_path, emu, conversation="min_press_ms = 0")
        async with start(config, emu.api_key) as r:
            await r.settled()
            r.press()
            await asyncio.sleep(0.6)
            r.release()
            r.press()  # at once: the release's last chunk has not come yet
            await asyncio.sleep(0.6)
            r.release()
            await r.until(lambda: emu.recording.counters["turns"] == 2, timeout_s=15)
            assert r.app.failure is None
