"""The echo canceller on real devices: PortAudio -> ALSA -> PulseAudio, where a loopback carries the
speaker's monitor into the microphone (the PulseAudio rig's version of the simulated room), so the
reference is aligned by PortAudio's own DAC and ADC times. Marked `rig`; skipped only when
PulseAudio is absent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
import pytest
import soxr

from pilive.audio.backends.portaudio import PyAudioBackend
from pilive.audio.capture import Capture
from pilive.audio.echo import EchoProcessor, PlaybackReference
from pilive.audio.echo_mode import EchoSettings, plan_echo
from pilive.audio.playback import Playback
from tests.support.pulse_rig import PulseRig, pulse_rig, pyaudio_backend
from tests.support.room_rig import speak, to_int16

pytestmark = pytest.mark.rig
__all__ = ["pulse_rig", "pyaudio_backend"]  # fixtures used by name below

ANSWER = (
    "The weather today is mostly sunny with a light breeze from the west. In the afternoon "
    "clouds will gather, and there may be a shower before the evening."
)


async def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def power(chunks: list[bytes]) -> float:
    samples = np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.float64)
    return float(np.mean(samples**2))


async def test_the_canceller_removes_the_speaker_heard_through_a_pulseaudio_loopback(
    pulse_rig: PulseRig, pyaudio_backend: PyAudioBackend
) -> None:
    """An answer played on the speaker reaches the microphone through module-loopback (40 ms and
    PulseAudio's own buffering): over the second half of the answer what the echo path passes on
    is at least 15 dB below what the microphone heard."""
    pulse_rig.pactl(
        "load-module", "module-loopback", "source=spk.monitor", "sink=mic", "latency_msec=40"
    )
    raw: list[bytes] = []
    clean: list[bytes] = []
    playback = Playback(pyaudio_backend, device="pilive_spk", reference_ms=2000)
    capture: Capture | None = None
    plan = plan_echo(EchoSettings(mode="cancel"), hands_free=True)
    echo = EchoProcessor(
        plan,
        PlaybackReference(playback),
        clean.append,
        chunk_bytes=640,
        preroll_chunks=1,
        mic_time=lambda: capture.last_callback_adc_s if capture else 0.0,
    )

    def heard(chunk: bytes) -> None:
        raw.append(chunk)
        echo.submit(chunk)

    capture = Capture(pyaudio_backend, heard, device="pilive_mic")
    await echo.start()
    await capture.start()
    await playback.start()
    try:
        await wait_for(lambda: len(clean) > 25 and playback.ok, 10, "audio to flow")
        voice = speak(ANSWER, dbfs=-16.0)
        answer = to_int16(np.asarray(soxr.resample(voice, 16000, 24000)))
        raw.clear()
        clean.clear()
        playback.write(answer.tobytes())
        playback.end_of_answer()
        seconds = len(answer) / 24000
        await wait_for(lambda: len(raw) * 0.02 >= seconds + 0.5, seconds + 10, "the answer")
        await wait_for(lambda: len(clean) >= len(raw) - 2, 5, "the echo thread")
        half = slice(len(raw) // 2, int(seconds / 0.02))
        assert power(raw[half]) > 0, "the loopback carried nothing to the microphone"
        erle_db = 10 * np.log10(power(raw[half]) / max(power(clean[half]), 1e-9))
        assert erle_db >= 15.0, f"only {erle_db:.1f} dB of echo removed"
        assert echo.dropped_chunks == 0
    finally:
        await capture.aclose()
        await playback.aclose()
        await echo.aclose()
