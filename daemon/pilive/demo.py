"""`pilive demo`: the whole daemon on simulated hardware against the local emulator.

It needs no Pi, no key and no network: gpiozero mock pins pressed by the config's timeline, a
spoken WAV as the microphone (espeak-ng, placed so each press catches a sentence), the synthetic
camera, the answer written to a WAV, and the emulator (started as its own process on loopback,
with a compressed clock so its ~10 minute connection lifetime ends in a goAway during the run).
What happens is printed as a readable timeline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pilive.config import Config, ConfigError, Secret, load_api_key, load_config
from pilive.live.wire import INPUT_AUDIO_RATE_HZ

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# The emulator's service clock runs this much faster, so its 600 s connection lifetime ends
# (with a goAway first) about 17 s into the run, between the demo's turns.
EMULATOR_TIME_SCALE = 0.028
SENTENCES = (
    "What do you see on my desk?",
    "Tell me a very short story about it.",
    "Stop, I have another question.",
    "Thank you.",
)
MIC_RATE_HZ = INPUT_AUDIO_RATE_HZ


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="the demo configuration (default: config/demo.toml of this checkout)",
    )


def run(args: argparse.Namespace) -> int:
    path = args.config or _find_demo_config()
    try:
        config = load_config(path, os.environ)
        api_key = load_api_key(config, os.environ)
    except ConfigError as exc:
        print(f"pilive demo: {exc}", file=sys.stderr)
        return 2
    mic_path = config.audio.input.file_path
    if config.audio.input.backend != "file" or mic_path is None:
        print("pilive demo: the demo config needs [audio.input] backend = file", file=sys.stderr)
        return 2
    mic_path.parent.mkdir(parents=True, exist_ok=True)
    # Each demo starts its own emulator, which cannot know an older run's conversation.
    (config.state.directory / "resumption.json").unlink(missing_ok=True)
    _write_speech(mic_path, config)
    port = _free_port()
    log_path = mic_path.parent / "emulator.log"
    with _emulator(port, api_key.reveal(), log_path):
        config = dataclasses.replace(
            config, live=dataclasses.replace(config.live, endpoint=f"ws://127.0.0.1:{port}")
        )
        print(f"pilive demo: emulator on 127.0.0.1:{port} (log: {log_path})")
        print(f"pilive demo: microphone plays {mic_path}")
        print()
        stats = asyncio.run(_run_app(config, api_key))
    _print_summary(stats, config)
    return 0


async def _run_app(config: Config, api_key: Secret) -> dict[str, object]:
    from pilive.app import App, install_signal_handlers  # noqa: PLC0415 - heavy imports
    from pilive.systemd import setup_logging  # noqa: PLC0415

    setup_logging("WARNING")  # the timeline below is the demo's output

    def line(at_s: float, text: str) -> None:
        print(f"  {at_s:6.2f} s  {text}", flush=True)

    app = App(config, api_key, on_timeline=line)
    install_signal_handlers(app)
    await app.run()
    counters = app.link.counters
    return {
        "ready_ms": (app.stats.ready_s - app.stats.started_s) * 1000,
        "turns": app.stats.turns,
        "latencies_ms": [s * 1000 for s in app.stats.answer_latencies_s],
        "frames": app.stats.frames_sent,
        "frame_kb": app.stats.frame_bytes_sent / 1024,
        "barge_ins": app.stats.barge_ins,
        "handovers": counters.handovers,
        "handover_ms": [g * 1000 for g in counters.handover_gaps_s],
        "resumes": counters.resumes,
        "fresh_sessions": counters.fresh_sessions,
        "underruns": app.playback.ring.underruns if app.playback.ring else 0,
    }


def _print_summary(stats: dict[str, object], config: Config) -> None:
    latencies = stats["latencies_ms"]
    handover_ms = stats["handover_ms"]
    assert isinstance(latencies, list) and isinstance(handover_ms, list)
    print()
    print("pilive demo: summary")
    print(f"  ready after           {stats['ready_ms']:.0f} ms")
    print(f"  turns                 {stats['turns']}")
    if latencies:
        print(
            f"  answer latency        median {statistics.median(latencies):.0f} ms "
            f"(activityEnd -> first answer audio, {len(latencies)} answers)"
        )
    print(f"  camera frames sent    {stats['frames']} ({stats['frame_kb']:.0f} kB)")
    print(f"  barge-ins             {stats['barge_ins']}")
    gaps = ", ".join(f"{g:.0f} ms" for g in handover_ms) or "none"
    print(f"  goAway handovers      {stats['handovers']} (gap: {gaps})")
    print(f"  sessions              {stats['fresh_sessions']} new, {stats['resumes']} resumed")
    print(f"  speaker underruns     {stats['underruns']}")
    out = config.audio.output.file_path
    if out is not None and out.exists():
        with wave.open(str(out), "rb") as wav:
            seconds = wav.getnframes() / wav.getframerate()
        print(f"  the answers           {out} ({seconds:.1f} s; play it with any audio player)")


# -- the emulator, as its own process -------------------------------------------------------------


@contextlib.contextmanager
def _emulator(port: int, api_key: str, log_path: Path) -> Iterator[None]:
    env = dict(os.environ, PILIVE_EMULATOR_API_KEY=api_key)  # never on the command line
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pilive",
                "emulator",
                "--port",
                str(port),
                "--time-scale",
                str(EMULATOR_TIME_SCALE),
            ],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_listening(port, proc)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the emulator exited with status {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the emulator did not listen on port {port} within {timeout_s:.0f} s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the microphone's speech ---------------------------------------------------------------------


def _write_speech(path: Path, config: Config) -> None:
    """A mic track with a sentence starting shortly after each timeline press, silence between."""
    import numpy as np  # noqa: PLC0415 - only the demo needs it

    presses = [s.at_s for s in config.timeline if s.action == "press"] or [1.0]
    end_s = max([s.at_s for s in config.timeline] + [presses[-1] + 5.0]) + 2.0
    track = np.zeros(int(end_s * MIC_RATE_HZ), dtype=np.int16)
    for i, press_s in enumerate(presses):
        voice = _speak(SENTENCES[i % len(SENTENCES)])
        start = int((press_s + 0.1) * MIC_RATE_HZ)
        voice = voice[: max(0, len(track) - start)]
        track[start : start + len(voice)] = voice
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(MIC_RATE_HZ)
        wav.writeframes(track.tobytes())


def _speak(text: str) -> npt.NDArray[np.int16]:
    """16 kHz int16 speech from espeak-ng, or a voice-like tone sequence where it is missing."""
    import numpy as np  # noqa: PLC0415 - only the demo needs it
    import soxr  # noqa: PLC0415

    espeak = shutil.which("espeak-ng")
    if espeak is not None:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "s.wav"
            subprocess.run([espeak, "-w", str(out), text], check=True, capture_output=True)
            with wave.open(str(out), "rb") as wav:
                rate = wav.getframerate()
                samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        resampled = np.asarray(
            soxr.resample(samples.astype(np.float32) / 32768, rate, MIC_RATE_HZ), np.float32
        )
        return (np.clip(resampled, -1, 1) * 32767).astype(np.int16)
    t = np.arange(int(0.25 * MIC_RATE_HZ)) / MIC_RATE_HZ
    syllables = [np.sin(2 * np.pi * f * t) * np.hanning(len(t)) for f in (220, 260, 200, 240)]
    return (np.concatenate(syllables * 2) * 12000).astype(np.int16)


def _find_demo_config() -> Path:
    here = Path(__file__).resolve().parents[2] / "config" / "demo.toml"
    for candidate in (Path.cwd() / "config" / "demo.toml", here):
        if candidate.exists():
            return candidate
    return Path("config/demo.toml")
