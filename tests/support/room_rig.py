"""Hands-free in the simulated room: speech to put in the microphone's WAV, and an App around it.

- `speak(text, voice)`: 16 kHz speech from espeak-ng (a Debian package `make deps` installs), at
  a level in dBFS; the answers the emulator plays back are this speech again, so the daemon's
  own voice in the room is speech too.
- `track(...)`: a microphone WAV with utterances placed at given seconds.
- `room_config(...)`: hands-free on the room's microphone and speaker against an emulator.
- `in_room(...)`: an App running on the test's loop, and what it noted (timeline) with times.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import tempfile
import time
import wave
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr

from pilive.app import App
from pilive.config import Config, Secret, parse_config
from pilive.emulator import Emulator
from tests.support.daemon_rig import isolated_environ

RATE_HZ = 16000


def speak(
    text: str,
    voice: str = "en-us",
    dbfs: float = -20.0,
    *,
    words_per_minute: int | None = None,
    pitch: int | None = None,
) -> np.ndarray:
    """espeak-ng's speech at 16 kHz, floats at `dbfs` RMS (its own speed and pitch unless
    given: -s, -p)."""
    extra = [] if words_per_minute is None else ["-s", str(words_per_minute)]
    extra += [] if pitch is None else ["-p", str(pitch)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, *extra, "-w", str(out), text], check=True)
        with wave.open(str(out), "rb") as wav:
            rate = wav.getframerate()
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    voice_pcm = np.asarray(soxr.resample(pcm.astype(np.float64) / 32768, rate, RATE_HZ))
    return np.asarray(voice_pcm / np.sqrt(np.mean(voice_pcm**2)) * 10 ** (dbfs / 20))


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.clip(np.round(x * 32768), -32768, 32767), dtype=np.int16)


def write_track(path: Path, seconds: float, utterances: Sequence[tuple[float, np.ndarray]]) -> None:
    """A microphone WAV of `seconds` with each (start_s, speech) in place, silence elsewhere."""
    samples = np.zeros(int(seconds * RATE_HZ))
    for start_s, speech in utterances:
        start = int(start_s * RATE_HZ)
        samples[start : start + len(speech)] += speech[: len(samples) - start]
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE_HZ)
        wav.writeframes(to_int16(samples).tobytes())


def room_config(
    work: Path,
    emu: Emulator,
    *,
    echo: str = 'mode = "auto"',
    live: str = "",
    room: str = "",
    conversation: str = 'mode = "hands-free"',
) -> Config:
    """Hands-free in the room (RT60 300 ms, 40 ms latency, -6 dB): the microphone is work/mic.wav
    plus the speaker; the answers also go to work/speaker.wav."""
    text = f"""
[live]
endpoint = "{emu.url}"
api_key = "{emu.api_key}"
{live}
[live.vad]
prefix_padding_ms = 100
silence_duration_ms = 500
[connection]
backoff_initial_s = 0.05
backoff_max_s = 0.5
[audio.input]
backend = "file"
file_path = "mic.wav"
[audio.output]
backend = "file"
file_path = "speaker.wav"
[audio.echo]
{echo}
[audio.room]
enabled = true
{room}
[camera]
source = "none"
[gpio]
pin_factory = "mock"
[conversation]
{conversation}
[state]
directory = "state"
"""
    return parse_config(text, source="room.toml", base_dir=work, environ=isolated_environ())


@dataclass
class InRoom:
    """A running App and the notes it made, each with its time.monotonic()."""

    app: App
    notes: list[tuple[float, str]] = field(default_factory=list)

    def noted(self, prefix: str) -> list[float]:
        return [at for at, text in self.notes if text.startswith(prefix)]

    async def until(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await asyncio.sleep(0.02)

    @property
    def mic_started_s(self) -> float:
        """When the microphone's WAV sample 0 was heard (the room's clock, time.monotonic())."""
        started = getattr(self.app.capture._backend, "mic_started_s", None)
        assert started is not None, "the microphone is not the simulated room's"
        return float(started)


@contextlib.asynccontextmanager
async def in_room(config: Config, emu: Emulator) -> AsyncIterator[InRoom]:
    room = InRoom(App(config, Secret(emu.api_key, "test")))
    room.app.on_timeline = lambda at, text: room.notes.append((time.monotonic(), text))
    task = asyncio.create_task(room.app.run())
    try:
        await room.until(lambda: hasattr(room.app, "link"), 10)
        yield room
    finally:
        room.app.request_stop()
        await asyncio.wait_for(task, 10)
