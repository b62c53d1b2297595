"""The whole daemon (`pilive run` as a subprocess, or the App in process) against a server that
misbehaves on purpose: answer audio far faster than real time, contradictory tool calls, audio
at another sample rate, a handshake that echoes the API key back.

Each test proves the daemon survives with its behaviour bounded and says what happened.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from pilive.controls.events import ApplianceState
from pilive.emulator import Emulator
from pilive.emulator import faults as fx
from pilive.emulator.options import ToolTrigger
from pilive.emulator.replies import audio_message
from tests.integration.test_app import app_config, mic_wav, start
from tests.support.daemon_rig import (
    DaemonProcess,
    NotifySocket,
    Press,
    daemon_toml,
    noise_wav,
    sample_process,
)
from tests.support.emulator_rig import emulator_options, running, tone
from tests.support.pulse_rig import read_wav

FLOOD_SPEEDUP = 100.0
FLOOD_CHUNK_S = 0.2
FLOOD_AUDIO_S = 300.0  # 14.4 MB of 24 kHz PCM, sent in 3 s
RSS_LIMIT_KB = 6 * 1024  # well under the flood's size: unbounded, it grows 14+ MB


@contextlib.asynccontextmanager
async def daemon(
    tmp_path: Path, emu: Emulator, presses: list[Press], output: str = "", extra: str = ""
) -> AsyncIterator[DaemonProcess]:
    """`pilive run` on a file speaker against `emu`, stopped with SIGTERM when the test is done;
    `output` goes into its [audio.output] table, `extra` at the end."""
    config = tmp_path / "pilive.toml"
    text = daemon_toml(
        endpoint=emu.url,
        api_key=emu.api_key,
        mic_wav=noise_wav(tmp_path / "mic.wav", 30.0),
        state_dir=tmp_path / "state",
        output="file",
        output_path=tmp_path / "speaker.wav",
        camera_mode="off",
        presses=presses,
        stop_at_s=120.0,
        log_level="debug",
        health_interval_s=1.0,
        extra=extra,
    )
    config.write_text(text.replace("[audio.output]\n", f"[audio.output]\n{output}\n", 1))
    notify = NotifySocket(tmp_path / "notify.sock")
    proc = DaemonProcess(config, tmp_path / "daemon.log", notify)
    await proc.start()
    try:
        yield proc
    finally:
        code = await proc.stop()
        notify.close()
        assert code == 0, proc.log_text()[-3000:]


def answered_after(statuses: list[str], listening_count: int) -> bool:
    """STATUS went listening (the `listening_count`-th time), then speaking, then idle."""
    seen = 0
    phase = ""
    for status in statuses:
        if status.startswith("listening"):
            seen += 1
            phase = "listening" if seen == listening_count else ""
        elif status.startswith("speaking") and phase == "listening":
            phase = "speaking"
        elif status.startswith("idle") and phase == "speaking":
            return True
    return False


async def test_flood_of_answer_audio_is_bounded_and_the_next_turn_plays(tmp_path: Path) -> None:
    """The server sends 300 s of answer audio at 100x real time inside one answer. With
    `max_backlog_s = 2` the daemon's RSS stays within a few MB of what it was (unbounded, it
    grows by the flood's 14 MB), the cut is logged once when it happens and once with the seconds
    dropped, the health line counts them, and the next press is answered and played out."""
    chunk = tone(FLOOD_CHUNK_S, 300.0, rate_hz=24000)
    flood = fx.SendMessages(
        audio_message(chunk),
        count=round(FLOOD_AUDIO_S / FLOOD_CHUNK_S),
        interval_s=FLOOD_CHUNK_S / FLOOD_SPEEDUP,
    )
    output = "max_backlog_s = 2.0\nbuffer_s = 1.0"
    async with running(emulator_options(time_scale=1.0, reply_delay_s=0.1)) as emu:
        emu.faults.on(fx.Phase.MODEL_AUDIO, flood, turn=1)
        presses = [Press(3.0, 0.4), Press(8.0, 0.4)]
        async with daemon(tmp_path, emu, presses, output) as proc:
            await proc.notify.wait_for("READY=1", 30)
            samples: list[tuple[bool, int]] = []
            async with asyncio.timeout(60):
                while not answered_after(proc.notify.statuses(), 2):
                    samples.append((bool(emu.faults.fired), sample_process(proc.pid).rss_kb))
                    await asyncio.sleep(0.1)
                while dropped_in_health(proc.log_text()) == 0:
                    await asyncio.sleep(0.1)
        log = proc.log_text()
    assert emu.faults.fired and emu.faults.fired[0].turn == 1
    before = [rss for fired, rss in samples if not fired]
    after = [rss for fired, rss in samples if fired]
    assert before and after
    growth_kb = max(after) - before[-1]
    assert growth_kb < RSS_LIMIT_KB, f"RSS grew {growth_kb} kB during the flood"
    assert len(re.findall(r"dropping the rest of this answer", log)) == 1
    (cut,) = re.findall(r"answer cut: ([0-9.]+) s of answer audio", log)
    assert FLOOD_AUDIO_S - 10 < float(cut) < FLOOD_AUDIO_S
    assert dropped_in_health(log) == float(cut)
    assert emu.recording.counters["turns"] == 2


def dropped_in_health(log: str) -> float:
    """answer_dropped_s of the newest health line (0 before the first)."""
    for line in reversed(log.splitlines()):
        found = re.search(r" health .*answer_dropped_s=([0-9.]+)", line)
        if found:
            return float(found.group(1))
    return 0.0


async def test_contradictory_tool_calls_are_survived(tmp_path: Path) -> None:
    """While the model waits for a tool's response, the server repeats the call's id twice in
    one more toolCall and adds a call without an id; during the answer it sends a call whose args
    are not an object and cancels an id that never ran. The daemon stays up on one connection,
    ignores what it cannot answer, and both this turn and the next are answered and played."""
    mic_wav(tmp_path / "mic.wav")
    options = emulator_options(
        tool_trigger=ToolTrigger(turns=frozenset({1}), function="device_status")
    )
    call = {"id": "fc-s1-1", "name": "device_status", "args": {}}  # the emulator's first call
    nameless = {"id": "", "name": "device_status", "args": {}}
    bad_args = {**call, "args": "not an object"}
    async with running(options) as emu:
        emu.faults.on(
            fx.Phase.TOOL_WAIT,
            fx.SendMessages({"toolCall": {"functionCalls": [call, call, nameless]}}),
            turn=1,
        )
        emu.faults.on(
            fx.Phase.MODEL_AUDIO,
            fx.SendMessages({"toolCall": {"functionCalls": [bad_args]}}),
            turn=1,
            at_chunk=1,
        )
        emu.faults.on(
            fx.Phase.MODEL_AUDIO,
            fx.SendMessages({"toolCallCancellation": {"ids": ["fc-never-ran"]}}),
            turn=1,
            at_chunk=2,
        )
        config = app_config(tmp_path, emu, '[tools]\nbuiltin = ["device_status"]\n')
        async with start(config, emu.api_key) as r:
            await r.settled()
            await r.hold(0.5)
            await r.until(lambda: r.timeline.count("answer played out") == 1, 15)
            assert len(emu.faults.fired) == 3
            assert emu.recording.turn(None, 1).tool_calls == [call]
            assert 2 <= r.app.tools.ignored_calls <= 3  # 3 if the first call was still running
            assert r.app.link.counters.protocol_errors == 1
            await r.until(lambda: r.state is ApplianceState.IDLE)
            await r.hold(0.5)
            await r.until(lambda: r.timeline.count("answer played out") == 2, 15)
            assert emu.recording.counters["turns"] == 2
            assert r.task is not None and not r.task.done()
            assert len(emu.recording.connections) == 1


def pcm_message(pcm: bytes, rate_hz: int) -> dict[str, object]:
    data = base64.b64encode(pcm).decode("ascii")
    part = {"inlineData": {"mimeType": f"audio/pcm;rate={rate_hz}", "data": data}}
    return {"serverContent": {"modelTurn": {"parts": [part]}}}


def seconds_at(samples: np.ndarray, rate_hz: int, freq_hz: float) -> float:
    """How long (in 20 ms frames) the loudest frequency of the signal is `freq_hz`."""
    frame = rate_hz // 50
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame).astype(np.float64)
    spectra = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1))
    peaks_hz = np.argmax(spectra, axis=1) * rate_hz / frame
    loud = np.abs(frames).max(axis=1) > 1000
    return float(np.count_nonzero(loud & (np.abs(peaks_hz - freq_hz) <= 50))) / 50


async def test_answer_audio_at_16_and_48_khz_plays_at_the_right_speed(tmp_path: Path) -> None:
    """In an answer, the server sends 1 s of a 3 kHz tone at 16 kHz and 0.5 s of a 2 kHz tone
    at 48 kHz (inlineData.mimeType "audio/pcm;rate=N"). The 24 kHz speaker plays 1 s of 3 kHz
    and 0.5 s of 2 kHz: resampled, not played at 24 kHz (which would be 0.67 s of 4.5 kHz and
    1 s of 1 kHz)."""
    mic_wav(tmp_path / "mic.wav")
    async with running(emulator_options()) as emu:
        for chunk, rate_hz, freq_hz, seconds in ((1, 16000, 3000.0, 1.0), (2, 48000, 2000.0, 0.5)):
            message = pcm_message(tone(seconds, freq_hz, rate_hz=rate_hz), rate_hz)
            emu.faults.on(fx.Phase.MODEL_AUDIO, fx.SendMessages(message), turn=1, at_chunk=chunk)
        async with start(app_config(tmp_path, emu), emu.api_key) as r:
            await r.settled()
            await r.hold(0.5)
            await r.until(lambda: r.timeline.count("answer played out") == 1, 15)
    heard, rate_hz = read_wav(tmp_path / "speaker.wav")
    assert rate_hz == 24000
    assert seconds_at(heard, rate_hz, 3000.0) == pytest.approx(1.0, abs=0.06)
    assert seconds_at(heard, rate_hz, 2000.0) == pytest.approx(0.5, abs=0.06)
