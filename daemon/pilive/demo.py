"""`pilive demo`: the whole daemon on simulated hardware against the local emulator.

It needs no Pi, no key and no network: gpiozero mock pins pressed by the config's timeline, a
spoken WAV as the microphone (espeak-ng, placed so each press catches a sentence), the synthetic
camera, the answer written to a WAV, and the emulator (started as its own process on loopback,
with a compressed clock so its ~10 minute connection lifetime ends in a goAway during the run).
What happens is printed as a readable timeline.

Then the same daemon runs hands-free in a simulated room ([audio.room]): no button, the
server's voice detection finds each question, and the microphone hears the speaker through the
room, so without the echo canceller the daemon would answer its own voice. The summary says how
many turns the server heard against the questions asked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
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
    "Can you hear me?",  # said while muted: never captured
    "Set a timer for five seconds for my tea.",
    "Stop, I have another question.",
    "Thank you.",
)
# The emulator's model calls set_timer on the second user turn it hears (the tea timer).
DEMO_TIMER_TURN = 2
DEMO_TIMER_ARGS = {"duration_s": 5, "label": "tea"}
# Hands-free in the room: (seconds after start, question); the answer to the first has played
# out well before the second, and the run stops HANDS_FREE_STOP_S after start.
HANDS_FREE_QUESTIONS = ((1.0, "What will the weather be like today?"), (9.0, "And tomorrow?"))
HANDS_FREE_STOP_S = 15.0
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
    # Each demo starts its own emulator, which cannot know an older run's conversation; and
    # starts at its configured volume, unmuted, without an older run's timers.
    for kept in ("resumption.json", "settings.json", "timers.json"):
        (config.state.directory / kept).unlink(missing_ok=True)
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
        room_config = _hands_free_config(config)
        room_mic = room_config.audio.input.file_path
        assert room_mic is not None
        _write_track(room_mic, HANDS_FREE_STOP_S + 2.0, HANDS_FREE_QUESTIONS)
        print()
        print("pilive demo: hands-free in a simulated room: no presses, and the microphone hears")
        print(
            f"the speaker (RT60 {room_config.audio.room.rt60_ms:.0f} ms, device latency "
            f"{room_config.audio.room.latency_ms:.0f} ms); microphone plays {room_mic}"
        )
        print()
        room_stats = asyncio.run(_run_app(room_config, api_key))
    _print_hands_free_summary(room_stats)
    return 0


async def _run_app(config: Config, api_key: Secret) -> dict[str, object]:
    from pilive.app import App, install_signal_handlers  # noqa: PLC0415 - heavy imports
    from pilive.systemd import setup_logging  # noqa: PLC0415

    setup_logging("WARNING")  # the timeline below is the demo's output

    def line(at_s: float, text: str) -> None:
        print(f"  {at_s:6.2f} s  {text}", flush=True)

    heard: list[str] = []

    def line_and_count(at_s: float, text: str) -> None:
        if text.startswith("input transcript"):
            heard.append(text)
        line(at_s, text)

    app = App(config, api_key, on_timeline=line_and_count)
    install_signal_handlers(app)
    await app.run()
    counters = app.link.counters
    echo = app.echo
    return {
        "echo": app.echo_plan.describe(),
        "echo_cpu_us": echo.cpu_us_per_frame if echo is not None else 0.0,
        "heard_turns": len(heard),
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


def _hands_free_config(config: Config) -> Config:
    """The demo's daemon hands-free in the simulated room, with the echo mode left to "auto"
    (cancel, falling back to half-duplex where no canceller runs), stopped by the timeline."""
    from pilive.config.model import TimelineStep  # noqa: PLC0415 - only the demo needs it
    from pilive.tools.timer_tools import TIMER_TOOL_NAMES  # noqa: PLC0415

    audio = config.audio
    mic_path = audio.input.file_path
    assert mic_path is not None
    return dataclasses.replace(
        config,
        audio=dataclasses.replace(
            audio,
            input=dataclasses.replace(audio.input, file_path=mic_path.with_name("hands-free.wav")),
            echo=dataclasses.replace(audio.echo, mode="auto"),
            room=dataclasses.replace(audio.room, enabled=True),
        ),
        conversation=dataclasses.replace(config.conversation, mode="hands-free"),
        # The push-to-talk run's timer request is not this run's subject: no timer tools here.
        tools=dataclasses.replace(
            config.tools,
            builtin=tuple(n for n in config.tools.builtin if n not in TIMER_TOOL_NAMES),
        ),
        timeline=(TimelineStep(at_s=HANDS_FREE_STOP_S, action="stop"),),
    )


def _print_hands_free_summary(stats: dict[str, object]) -> None:
    asked, heard = len(HANDS_FREE_QUESTIONS), stats["heard_turns"]
    assert isinstance(heard, int)
    own = (
        "the answers, heard through the room, started none"
        if heard <= asked
        else f"the daemon's own voice started {heard - asked}"
    )
    print()
    print("pilive demo: hands-free summary")
    print(f"  microphone            {stats['echo']}")
    print(f"  questions asked       {asked}")
    print(f"  turns heard           {heard} ({own})")
    cpu_us = stats["echo_cpu_us"]
    if isinstance(cpu_us, float) and cpu_us:
        print(f"  echo path CPU         {cpu_us:.0f} µs per 10 ms frame")


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
                "--tool-turns",
                str(DEMO_TIMER_TURN),
                "--tool-function",
                "set_timer",
                "--tool-args",
                json.dumps(DEMO_TIMER_ARGS),
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
    presses = [s.at_s for s in config.timeline if s.action == "press"] or [1.0]
    end_s = max([s.at_s for s in config.timeline] + [presses[-1] + 5.0]) + 2.0
    utterances = tuple(
        (press_s + 0.1, SENTENCES[i % len(SENTENCES)]) for i, press_s in enumerate(presses)
    )
    _write_track(path, end_s, utterances)


def _write_track(path: Path, seconds: float, utterances: tuple[tuple[float, str], ...]) -> None:
    """A 16 kHz mono WAV of `seconds` with each (start_s, sentence) spoken in place."""
    import numpy as np  # noqa: PLC0415 - only the demo needs it

    track = np.zeros(int(seconds * MIC_RATE_HZ), dtype=np.int16)
    for start_s, text in utterances:
        voice = _speak(text)
        start = int(start_s * MIC_RATE_HZ)
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
