"""Audio latency and robustness on the PulseAudio rig (real PortAudio -> ALSA -> pulse null sinks).

    .venv/bin/python -m tests.bench.bench_audio [--duration-s 60]

Each figure is printed next to an alternative measured in the same run:
- mic sample -> chunk on the loop: device at 16 kHz (as is) vs forced to 48 kHz stereo (resampled);
  measured as PortAudio's (callback time - ADC time) of the block + the hand-off from the callback
  thread to `on_chunk` on the loop (monotonic clock). ALSA's pulse plugin reports almost no capture
  delay, so this is the age of the block's newest sample; its oldest is one chunk (20 ms) older;
- first answer byte -> handed to the device: prebuffer 60 ms (default) vs 0 ms, for answers
  arriving as 40 ms network messages at 1.5x real time;
- barge-in stale audio (from the recording, after the position the device had reached at flush()):
  24 kHz device vs 48 kHz device (resampled);
- underruns over `duration_s` of answers with the other core busy vs a shorter idle run: the
  ring's underruns (our audio ran dry: goal 0), PortAudio's output underflows and the longest gap
  between device callbacks (a starved PulseAudio server pauses the stream; not ours to fix).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soxr

from pilive.audio.backends.portaudio import PyAudioBackend
from pilive.audio.capture import Capture
from pilive.audio.playback import Playback
from tests.support.pulse_rig import PulseRig, align, chirp, stop_recording


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def mic_latency_ms(
    backend: PyAudioBackend, rate_hz: int | None, channels: int | None, seconds: float
) -> list[float]:
    ages: list[float] = []
    capture: Capture
    measure_from_s = time.monotonic() + 3.0  # past PulseAudio's stream start-up burst

    def on_chunk(chunk: bytes) -> None:
        now_s = time.monotonic()
        if now_s < measure_from_s:
            return
        device_s = capture.last_callback_s - capture.last_callback_adc_s
        ages.append((device_s + now_s - capture.heartbeat_s) * 1000)

    capture = Capture(backend, on_chunk, device="pilive_mic", rate_hz=rate_hz, channels=channels)
    await capture.start()
    await asyncio.sleep(3.0 + seconds)
    await capture.aclose()
    return ages


async def first_audio_ms(backend: PyAudioBackend, prebuffer_ms: int, answers: int) -> list[float]:
    playback = Playback(backend, device="pilive_spk", prebuffer_ms=prebuffer_ms)
    await playback.start()
    await playback.wait_open()
    await asyncio.sleep(2.5)  # past PulseAudio's stream start-up
    delays = []
    message = chirp(0.04, 24000).tobytes()
    for _ in range(answers):
        for _ in range(6):
            playback.write(message)
            await asyncio.sleep(0.04 / 1.5)
        playback.end_of_answer()
        await asyncio.sleep(0.4)
        delays.append((playback.audio_started_s - playback.answer_started_s) * 1000)
    await playback.aclose()
    return delays


async def barge_in_stale_ms(
    rig: PulseRig, backend: PyAudioBackend, device: str, *, rate_hz: int, trials: int, tmp: Path
) -> list[float]:
    playback = Playback(backend, device=device, rate_hz=None if rate_hz == 24000 else rate_hz)
    await playback.start()
    await playback.wait_open()
    await asyncio.sleep(2.5)
    results = []
    for trial in range(trials):
        raw = tmp / f"barge-{device}-{trial}.raw"
        recorder = rig.record(f"{device.removeprefix('pilive_')}.monitor", rate_hz, raw)
        await asyncio.sleep(0.3)
        source = chirp(2.0, 24000)
        ring = playback.ring
        assert ring is not None
        start = ring.bytes_read
        playback.write(source.tobytes())
        flush_at = start + rate_hz * 2 * (5 + trial) // 10  # 0.5 s, 0.6 s, ... into the answer
        while ring.bytes_read < flush_at:
            await asyncio.sleep(0.002)
        reached = (ring.bytes_read - start) // 2
        playback.flush()
        await asyncio.sleep(0.5)
        recording = stop_recording(recorder, raw)
        reference = source if rate_hz == 24000 else soxr.resample(source, 24000, rate_hz)
        offset, _ = align(recording, reference[: rate_hz // 4])
        loud = np.flatnonzero(np.abs(recording.astype(np.int32)) > 300)
        results.append((int(loud[-1]) - offset - reached) * 1000 / rate_hz)
        await asyncio.sleep(0.2)
    await playback.aclose()
    return results


async def underruns(backend: PyAudioBackend, seconds: float, busy: bool) -> dict[str, float]:
    hog = None
    if busy:  # the other core, spinning
        hog = await asyncio.create_subprocess_exec(sys.executable, "-c", "while True: pass")
    playback = Playback(backend, device="pilive_spk")
    try:
        await playback.start()
        await playback.wait_open()
        await asyncio.sleep(2.5)
        ring = playback.ring
        assert ring is not None
        before = ring.underruns
        max_gap_s = 0.0

        async def watch_callbacks() -> None:
            nonlocal max_gap_s
            while True:
                await asyncio.sleep(0.01)
                max_gap_s = max(max_gap_s, time.monotonic() - playback.heartbeat_s)

        watcher = asyncio.create_task(watch_callbacks())
        message = chirp(0.04, 24000).tobytes()
        rng = np.random.default_rng(1)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for _ in range(
                125
            ):  # a 5 s answer in 40 ms messages, bursty, 1.5x real time on average
                playback.write(message)
                await asyncio.sleep(float(rng.uniform(0, 2 * 0.04 / 1.5)))
            playback.end_of_answer()
            await asyncio.sleep(0.5)
        while playback.is_playing:
            await asyncio.sleep(0.05)
        watcher.cancel()
        return {
            "max_callback_gap_ms": round(max_gap_s * 1000),
            "underruns": ring.underruns - before,
            "device_underflows": playback.device_underflows,
            "reopens": playback.reopens,
        }
    finally:
        await playback.aclose()
        if hog is not None:
            hog.kill()
            await hog.wait()


async def run(duration_s: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-audio-") as tmp_name:
        tmp = Path(tmp_name)
        rig = PulseRig(tmp)
        rig.start()
        os.environ.update(HOME=str(rig.home), XDG_RUNTIME_DIR=str(rig.runtime_dir))
        backend = PyAudioBackend()
        try:
            mic16 = await mic_latency_ms(backend, None, None, 5)
            mic48 = await mic_latency_ms(backend, 48000, 2, 5)
            first60 = await first_audio_ms(backend, 60, 15)
            first0 = await first_audio_ms(backend, 0, 15)
            stale24 = await barge_in_stale_ms(
                rig, backend, "pilive_spk", rate_hz=24000, trials=5, tmp=tmp
            )
            stale48 = await barge_in_stale_ms(
                rig, backend, "pilive_spk48", rate_hz=48000, trials=5, tmp=tmp
            )
            loaded = await underruns(backend, duration_s, busy=True)
            idle = await underruns(backend, min(duration_s, 10.0), busy=False)
        finally:
            backend.close()
            rig.kill()
    figures: dict[str, object] = {
        "mic_to_loop_ms_16k": {"p50": pct(mic16, 50), "p99": pct(mic16, 99)},
        "mic_to_loop_ms_48k_resampled": {"p50": pct(mic48, 50), "p99": pct(mic48, 99)},
        "first_audio_ms_prebuffer_60": {"p50": pct(first60, 50), "p99": pct(first60, 99)},
        "first_audio_ms_prebuffer_0": {"p50": pct(first0, 50), "p99": pct(first0, 99)},
        "barge_in_stale_ms_24k": {"median": statistics.median(stale24), "max": max(stale24)},
        "barge_in_stale_ms_48k": {"median": statistics.median(stale48), "max": max(stale48)},
        "underruns_busy": {"seconds": duration_s, **loaded},
        "underruns_idle": {"seconds": min(duration_s, 10.0), **idle},
    }
    return figures


def main(duration_s: float = 60.0) -> dict[str, object]:
    figures = asyncio.run(run(duration_s))
    print(f"{'measure':34} {'figures'}")
    for name, values in figures.items():
        assert isinstance(values, dict)
        text = "  ".join(
            f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
        )
        print(f"{name:34} {text}")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Audio latency and robustness on the pulse rig.")
    parser.add_argument("--duration-s", type=float, default=60.0, help="busy-core playback run")
    main(parser.parse_args().duration_s)
