"""`pilive run` imports what its configuration uses and nothing else.

numpy (with soxr and simplejpeg) is about 15 MB of a daemon's memory: it must load only for a
device format that needs resampling, echo cancelling or the room's speech detector, never for
the camera, which crops, scales and encodes with Pillow (about 2 MB). Each test
starts the real command under `python -X importtime`, lets it take a turn against the emulator
(press, mic audio, earcons, the answer played) and stop itself, then reads from its log every
module it imported, at start-up or later.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.daemon_rig import (
    IMPORT_TRACE,
    DaemonProcess,
    NotifySocket,
    Press,
    daemon_toml,
    imported_modules,
    noise_wav,
)
from tests.support.emulator_rig import emulator_options, running

# Loaded by a configuration that needs them, and by nothing else.
NUMPY_SIDE = (
    "numpy",
    "soxr",
    "simplejpeg",
    "pilive.audio.resample",
    "pilive.audio.echo",
    "pilive.audio.cancellers",
    "pilive.audio.room",
)
CAMERA_SIDE = ("PIL", "pilive.camera")
# Never needed by `pilive run`: other subcommands' modules and backends not configured.
OTHER_COMMANDS = ("pilive.emulator", "pilive.demo", "pilive.tokenservice", "pilive.camera.cli")
NOT_CONFIGURED = ("pyaudio", "pilive.controls.keyboard", "gpiozero.pins.lgpio", "aiohttp")
# The wake word's listener and its TensorFlow Lite library: only for conversation.wake_word.
WAKE_SIDE = ("pymicro_wakeword", "pymicro_features", "pilive.audio.wake")


async def run_one_turn(
    tmp_path: Path, *, camera_mode: str, mic_rate_hz: int, stop_at_s: float = 4.0
) -> tuple[list[str], int]:
    """A daemon with a file microphone at `mic_rate_hz`, a file speaker, mock pins and the
    synthetic camera in `camera_mode`: one press of 0.8 s, then it stops itself at `stop_at_s`.
    Its imports, and how many camera frames the emulator received."""
    async with running(emulator_options(time_scale=0.2, reply_delay_s=0.05)) as emu:
        config = tmp_path / "pilive.toml"
        answer = tmp_path / "answer.wav"
        config.write_text(
            daemon_toml(
                endpoint=emu.url,
                api_key=emu.api_key,
                mic_wav=noise_wav(tmp_path / "mic.wav", 5.0, rate_hz=mic_rate_hz),
                state_dir=tmp_path / "state",
                output="file",
                output_path=answer,
                camera_mode=camera_mode,
                presses=[Press(1.0, 0.8)],
                stop_at_s=stop_at_s,
            )
        )
        notify = NotifySocket(tmp_path / "notify.sock")
        daemon = DaemonProcess(config, tmp_path / "daemon.log", notify, python_args=IMPORT_TRACE)
        try:
            await daemon.start()
            assert daemon.process is not None
            async with asyncio.timeout(60):
                exit_code = await daemon.process.wait()
        finally:
            if daemon.running:
                await daemon.stop()
            notify.close()
        log = daemon.log_text()
        assert exit_code == 0, log[-3000:]
        assert emu.recording.counters["turns"] >= 1, log[-3000:]  # the turn did happen
        frames = sum(
            1
            for connection in emu.recording.connections
            for f in connection.received
            if f.message is not None and "video" in f.message.get("realtimeInput", {})
        )
    assert answer.stat().st_size > 44  # and its answer reached the speaker (beyond the header)
    return imported_modules(log), frames


def loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    """Which of `names` (or their submodules) are among `modules`."""
    return sorted(
        {name for name in names for m in modules if m == name or m.startswith(name + ".")}
    )


async def test_a_daemon_without_camera_or_resampling_never_imports_numpy(tmp_path: Path) -> None:
    """Camera off, a 16 kHz mono microphone and a 24 kHz speaker: a whole turn (earcons, mic
    chunks, the answer) runs without numpy, soxr, the JPEG encoder, the camera, the echo path,
    the emulator or any other subcommand's module, and without backends not configured."""
    modules, _ = await run_one_turn(tmp_path, camera_mode="off", mic_rate_hz=16000)
    assert "pilive.app" in modules and "websockets" in modules  # the trace itself works
    assert loaded(modules, NUMPY_SIDE) == []
    assert loaded(modules, CAMERA_SIDE) == []
    assert loaded(modules, OTHER_COMMANDS) == []
    assert loaded(modules, NOT_CONFIGURED) == []
    assert loaded(modules, WAKE_SIDE) == []


async def test_a_streaming_camera_does_not_import_numpy(tmp_path: Path) -> None:
    """The synthetic camera streaming beside a 16 kHz microphone (no resampling, echo path or
    room): frames reach the server, made, cropped, scaled and encoded with Pillow alone; numpy,
    soxr and simplejpeg never load."""
    modules, frames = await run_one_turn(tmp_path, camera_mode="continuous", mic_rate_hz=16000)
    assert frames >= 1
    assert loaded(modules, CAMERA_SIDE) == ["PIL", "pilive.camera"]
    assert loaded(modules, NUMPY_SIDE) == []
    assert loaded(modules, OTHER_COMMANDS) == []


async def test_a_camera_and_a_48k_microphone_load_what_they_need(tmp_path: Path) -> None:
    """The other side of the same check: the synthetic camera streaming and a 48 kHz microphone
    (resampled to 16 kHz) do load numpy, soxr, the resampler and the camera; with numpy loaded
    anyway, the synthetic frames (already 768x768) are encoded by simplejpeg. The frames made
    while the microphone's thread is still importing numpy go to Pillow, so the daemon runs 6 s
    (about six frames): the later ones find numpy loaded even on a busy machine."""
    modules, frames = await run_one_turn(
        tmp_path, camera_mode="continuous", mic_rate_hz=48000, stop_at_s=6.0
    )
    assert frames >= 3
    assert loaded(modules, ("numpy", "soxr", "pilive.audio.resample", "pilive.camera")) == [
        "numpy",
        "pilive.audio.resample",
        "pilive.camera",
        "soxr",
    ]
    assert loaded(modules, ("simplejpeg",)) == ["simplejpeg"]
    assert loaded(modules, OTHER_COMMANDS) == []
