"""Echo cancellers side by side on the simulated room, and hands-free in the room end to end.

Offline, each candidate gets the same 10 ms frames: the microphone hears an answer spoken by
espeak-ng through the room (RT60 300 ms, 40 ms device latency, -6 dB, noise at -70 dBFS), and for
three seconds in the middle the user talks too (another voice, 6 dB under the echo's level at the
microphone). Candidates: pilive's "webrtc" (WebRTC AEC3 through pywebrtc-audio), pilive's "speex"
(speexdsp's MDF and preprocessor through pilive's C extension), WebRTC AEC3 through LiveKit's
binding when it is installed (the other maintained binding of the same canceller), and nothing.
Figures per candidate:
- erle_db: echo return loss enhancement after convergence, microphone power over output power
  while only the speaker talks, from 3 s on (the double talk excluded);
- first_second_peak_dbfs: the loudest 20 ms of residual echo in the first second, before the
  canceller has adapted (the emulator's voice detection starts above -51 dBFS);
- dt_speech_db: the output's power while both talk, against the user's speech alone (0 dB: the
  user is kept at full level); dt_si_sdr_db: the scale-invariant signal-to-distortion ratio of
  the output against the user's speech then (higher: cleaner);
- cpu_us_per_frame: thread CPU time per 10 ms frame (median).

End to end (the whole App, hands-free, [audio.room] against the emulator on loopback):
- answers played while the user is silent, and the turns the daemon's own voice started (echo
  "cancel" beside "off", in the same room);
- talking over the answer: from the user's speech onset (its sample in the WAV, heard at a time
  the room reports) to the speaker flush (the emulator's voice detection hears it, sends
  `interrupted`, the daemon flushes).

Run: python -m tests.bench.bench_aec [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pilive.audio.cancellers import FRAME_SAMPLES, RATE_HZ, open_processor
from pilive.audio.room import RoomOptions, echo_of
from tests.support.emulator_rig import emulator_options, running
from tests.support.room_rig import in_room, room_config, speak, to_int16, write_track

ROOM = RoomOptions(latency_ms=40.0, rt60_ms=300.0, echo_gain_db=-6.0, noise_dbfs=-70.0)
ANSWER = (
    "The weather today is mostly sunny with a light breeze from the west. In the afternoon "
    "clouds will gather and there may be a shower before evening. Tomorrow looks brighter, with "
    "temperatures a little above the average for the season."
)
USER = "Stop, I have another question about the garden."
QUESTION = "What is the weather like in Paris today?"
DOUBLE_TALK_AT_S = 6.0
CONVERGED_FROM_S = 3.0
EMULATOR_VAD_START_DBFS = -51.0  # its threshold (-45 dBFS) with start sensitivity HIGH (-6 dB)

Frame = np.ndarray


def db(ratio: float) -> float:
    return float(10 * np.log10(ratio)) if ratio > 0 else float("inf")


# --- the candidates ----------------------------------------------------------------------------


def pilive_candidate(name: str) -> Callable[[Frame, Frame], Frame]:
    return open_processor(name).process  # type: ignore[arg-type]


def livekit_candidate() -> Callable[[Frame, Frame], Frame] | None:
    """WebRTC AEC3 through LiveKit's binding (its FFI library), when installed."""
    try:
        from livekit import rtc
    except ImportError:
        return None
    apm = rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)

    def process(near: Frame, far: Frame) -> Frame:
        reverse = rtc.AudioFrame(bytearray(far.tobytes()), RATE_HZ, 1, FRAME_SAMPLES)
        apm.process_reverse_stream(reverse)
        frame = rtc.AudioFrame(bytearray(near.tobytes()), RATE_HZ, 1, FRAME_SAMPLES)
        apm.process_stream(frame)
        return np.frombuffer(frame.data, dtype=np.int16).copy()

    return process


MAX_LAG = 480  # 30 ms


def output_delay(output: np.ndarray, target: np.ndarray) -> int:
    """The delay (samples, 0..MAX_LAG) at which `output` best matches `target`."""
    scores = [abs(float(np.dot(output[lag : lag + len(target)], target))) for lag in range(MAX_LAG)]
    return int(np.argmax(scores))


def measure_candidate(
    process: Callable[[Frame, Frame], Frame],
    *,
    mic: np.ndarray,
    far: np.ndarray,
    echo: np.ndarray,
    user: np.ndarray,
    dt: slice,
) -> dict[str, float]:
    near16, far16 = to_int16(mic), to_int16(far)
    out = np.zeros_like(near16)
    cpu_s: list[float] = []
    for i in range(0, len(near16) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        started = time.thread_time()
        out[i : i + FRAME_SAMPLES] = process(
            near16[i : i + FRAME_SAMPLES].copy(), far16[i : i + FRAME_SAMPLES].copy()
        )
        cpu_s.append(time.thread_time() - started)
    o = out.astype(np.float64) / 32768
    only_far = np.zeros(len(mic), dtype=bool)
    only_far[int(CONVERGED_FROM_S * RATE_HZ) :] = True
    only_far[dt.start : dt.stop + int(0.5 * RATE_HZ)] = False  # the double talk and its tail
    only_far &= np.abs(far) > 0  # while the answer plays
    first = o[:RATE_HZ].reshape(-1, 320)
    peak = float(np.sqrt(np.mean(first**2, axis=1)).max())
    target = user[dt]
    # Both libraries hand the frame back a little late (8-10 ms): compare at that delay.
    lag = output_delay(o[dt.start : dt.stop + MAX_LAG], target)
    heard = o[dt.start + lag : dt.stop + lag]
    scale = float(np.dot(heard, target) / np.dot(target, target))
    projection = scale * target
    return {
        "erle_db": round(db(np.mean(mic[only_far] ** 2) / np.mean(o[only_far] ** 2)), 1),
        "first_second_peak_dbfs": round(float(20 * np.log10(max(peak, 1e-9))), 1),
        "dt_speech_db": round(db(np.mean(heard**2) / np.mean(target**2)), 1),
        "dt_si_sdr_db": round(db(np.sum(projection**2) / np.sum((heard - projection) ** 2)), 1),
        "output_delay_ms": round(lag / RATE_HZ * 1000, 1),
        "cpu_us_per_frame": round(statistics.median(cpu_s) * 1e6, 1),
        "echo_dbfs": round(db(np.mean(echo[only_far] ** 2)), 1),
    }


def offline() -> dict[str, Any]:
    far = speak(ANSWER, dbfs=-20.0)
    far = np.concatenate([far, np.zeros(RATE_HZ)])
    echo = echo_of(far, RATE_HZ, ROOM)
    echo_level_dbfs = db(np.mean(echo[: int(DOUBLE_TALK_AT_S * RATE_HZ)] ** 2))
    user_voice = speak(USER, "en-us+f3", dbfs=echo_level_dbfs - 6.0)
    user = np.zeros(len(far))
    start = int(DOUBLE_TALK_AT_S * RATE_HZ)
    user[start : start + len(user_voice)] = user_voice
    dt = slice(start, start + len(user_voice))
    mic = echo + user
    candidates: dict[str, Callable[[Frame, Frame], Frame] | None] = {
        "webrtc": pilive_candidate("webrtc"),
        "speex": pilive_candidate("speex"),
        "livekit": livekit_candidate(),
        "none": lambda near, far: near,
    }
    results: dict[str, Any] = {}
    for name, process in candidates.items():
        if process is None:
            results[name] = None
            print(f"{name:8s} not installed")
            continue
        figures = measure_candidate(process, mic=mic, far=far, echo=echo, user=user, dt=dt)
        results[name] = figures
        print(f"{name:8s} {figures}")
    return results


# --- hands-free in the room, end to end ----------------------------------------------------------


async def run_room(
    work: Path, echo_mode: str, track: list[tuple[float, np.ndarray]], seconds: float, speed: float
) -> dict[str, Any]:
    """One daemon in the room for `seconds`; what the emulator and the daemon saw."""
    await asyncio.to_thread(write_track, work / "mic.wav", seconds + 2.0, track)
    options = emulator_options(time_scale=1.0, reply_speedup=speed, reply_delay_s=0.3)
    async with running(options) as emu:
        config = room_config(work, emu, echo=f'mode = "{echo_mode}"')
        async with in_room(config, emu) as room:
            await asyncio.sleep(seconds)
            echo = room.app.echo
            return {
                "turns": emu.recording.counters["turns"],
                "flushes": room.noted("barge-in: speaker flushed"),
                "mic_started_s": room.mic_started_s,
                "echo_cpu_us": echo.cpu_us_per_frame if echo else 0.0,
            }


async def self_interruptions(work: Path, answers: int) -> dict[str, Any]:
    """One question, then silence: the turns after the first are the daemon's own voice."""
    track = [(1.0, speak(QUESTION))]
    found: dict[str, Any] = {}
    for mode in ("cancel", "off", "half-duplex"):
        extra = []
        for run in range(answers if mode == "cancel" else 1):
            result = await run_room(work / f"{mode}{run}", mode, track, 10.0, 4.0)
            extra.append(result["turns"] - 1)
            if mode == "cancel":
                found["echo_cpu_us_per_frame"] = round(result["echo_cpu_us"], 1)
        found[mode] = {"answers": len(extra), "turns_by_own_voice": sum(extra)}
        print(f"self-interruptions, echo {mode}: {found[mode]}")
    return found


async def barge_ins(work: Path, runs: int) -> dict[str, Any]:
    """The user talks over an answer that streams in real time: onset -> speaker flush."""
    question, stop = speak(QUESTION), speak(USER, "en-us+f3")
    # The answer (the question played back) starts about 0.9 s after the question ends and lasts
    # as long as it; the user starts talking 1.2 s into it.
    onset_s = 1.0 + len(question) / RATE_HZ + 0.9 + 1.2
    track = [(1.0, question), (onset_s, stop)]
    delays_ms: list[float] = []
    missed = 0
    for run in range(runs):
        result = await run_room(work / f"barge{run}", "cancel", track, onset_s + 3.0, 1.0)
        heard_s = result["mic_started_s"]
        later = [t for t in result["flushes"] if t > heard_s + onset_s]
        if not later:
            missed += 1
            continue
        delays_ms.append((later[0] - (heard_s + onset_s)) * 1000)
    print(f"barge-in by voice: onset -> flush {delays_ms} ms, missed {missed}")
    return {
        "onset_to_flush_ms": {
            "median": statistics.median(delays_ms) if delays_ms else float("nan"),
            "max": max(delays_ms) if delays_ms else float("nan"),
            "n": len(delays_ms),
        },
        "missed": missed,
    }


async def end_to_end(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        found = await self_interruptions(work, 1 if quick else 3)
        found["barge_in"] = await barge_ins(work, 1 if quick else 3)
    return found


def main(quick: bool = False) -> dict[str, Any]:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is needed for the speech (Debian package espeak-ng)")
    candidates = offline()
    chosen = candidates["webrtc"]
    hands_free = asyncio.run(end_to_end(quick))
    return {
        "room": {
            "rt60_ms": ROOM.rt60_ms,
            "latency_ms": ROOM.latency_ms,
            "echo_gain_db": ROOM.echo_gain_db,
        },
        "chosen": "webrtc",
        "erle_db": chosen["erle_db"],
        "dt_speech_db": chosen["dt_speech_db"],
        "dt_si_sdr_db": chosen["dt_si_sdr_db"],
        "cpu_us_per_frame": chosen["cpu_us_per_frame"],
        "candidates": candidates,
        "hands_free": hands_free,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    with contextlib.suppress(KeyboardInterrupt):
        print(main(parser.parse_args().quick))
    sys.exit(0)
