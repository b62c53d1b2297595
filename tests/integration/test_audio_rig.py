"""Capture and playback on real audio devices: PortAudio -> ALSA -> PulseAudio null sinks, paced by
the sink clock (see tests/support/pulse_rig.py). Marked `rig`; skipped only when PulseAudio is
absent."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soxr

from pilive.audio.backends.portaudio import PyAudioBackend
from pilive.audio.capture import Capture
from pilive.audio.devices import report
from pilive.audio.playback import Playback
from tests.support.pulse_rig import (
    PulseRig,
    align,
    chirp,
    glitches,
    pulse_rig,
    pyaudio_backend,
    read_wav,
    stop_recording,
    without_silent_gaps,
)

pytestmark = pytest.mark.rig
__all__ = ["pulse_rig", "pyaudio_backend"]  # fixtures used by name below


async def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is needed for the speech signal (apt install espeak-ng)")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(path), "What do you see on my desk?"], check=True, timeout=30
    )
    return path


def test_devices_lists_the_rig_and_marks_the_choice(pyaudio_backend: PyAudioBackend) -> None:
    """`pilive devices` lists the rig's devices with their rates and marks the ones the given names
    pick, with the format they would open at; a name that matches nothing is reported, status 1."""
    from io import StringIO

    out = StringIO()
    assert report(pyaudio_backend, "MIC", "spk48", out) == 0
    lines = out.getvalue().splitlines()
    assert any(line.startswith("  * pilive_mic") and "16000" in line for line in lines)
    assert any(line.startswith("  * pilive_spk48") for line in lines)
    assert "      opens at 24000 Hz, 1 ch (as is)" in lines
    out = StringIO()
    assert report(pyaudio_backend, "usb-headset", "default", out) == 1
    assert "no input device matches 'usb-headset'" in out.getvalue()


def test_devices_command_run(
    pyaudio_backend: PyAudioBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pilive devices --input mic --output nothing-like-this` through its own parser and run():
    prints the table with the mic marked and exits 1 naming the output name that matched nothing."""
    import argparse

    from pilive.audio import devices

    parser = argparse.ArgumentParser()
    devices.configure_parser(parser)
    status = devices.run(parser.parse_args(["--input", "mic", "--output", "nothing-like-this"]))
    out = capsys.readouterr().out
    assert status == 1
    assert "  * pilive_mic" in out
    assert "no output device matches 'nothing-like-this'" in out


def test_portaudio_probe_noise_is_silenced(pulse_rig: PulseRig) -> None:
    """Starting PortAudio in a fresh process (as `pilive devices` does) prints no ALSA or JACK
    probe noise on stderr: the ALSA error handler and the fd 2 redirect keep it away."""
    code = "from pilive.audio.backends.portaudio import PyAudioBackend as B; B().close()"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""


@pytest.mark.parametrize(("rate_hz", "channels"), [(None, None), (48000, 2)])
async def test_speech_into_the_mic_arrives_as_16k_chunks(
    pulse_rig: PulseRig,
    pyaudio_backend: PyAudioBackend,
    speech: Path,
    rate_hz: int | None,
    channels: int | None,
) -> None:
    """espeak-ng speech played into the mic sink arrives as 640-byte 16 kHz chunks whose content
    matches the source (normalised correlation > 0.9), with the device at 16 kHz mono and with it
    forced to 48 kHz stereo (the down-mix and resampling path)."""
    chunks: list[bytes] = []
    capture = Capture(
        pyaudio_backend, chunks.append, device="pilive_mic", rate_hz=rate_hz, channels=channels
    )
    await capture.start()
    try:
        await wait_for(lambda: len(chunks) > 5, 10, "the first chunks")
        player = pulse_rig.play(speech)
        await asyncio.to_thread(player.wait, 30)
        await asyncio.sleep(0.4)
    finally:
        await capture.aclose()
    assert (capture.device_rate_hz, capture.device_channels) == (rate_hz or 16000, channels or 1)
    assert {len(c) for c in chunks} == {640}
    source, source_hz = read_wav(speech)
    reference = soxr.resample(source.astype(np.float32), source_hz, 16000)
    got = np.frombuffer(b"".join(chunks), dtype="<i2")
    _, ncc = align(got, reference)
    assert ncc > 0.9


@pytest.mark.parametrize(("device", "rate_hz"), [("pilive_spk", None), ("pilive_spk48", 48000)])
async def test_answer_comes_out_of_the_speaker_complete_and_in_order(
    pulse_rig: PulseRig,
    pyaudio_backend: PyAudioBackend,
    tmp_path: Path,
    device: str,
    rate_hz: int | None,
) -> None:
    """A chirp written in network-sized bursts comes out of the speaker sink whole: after alignment
    no 5 ms window differs from the source by more than -20 dB (no gap, repeat or drop), at 24 kHz
    and resampled to 48 kHz; the ring counts no underrun. Silence the device inserted where it
    reported starving is not the daemon's (underruns under load are the benchmark's business)."""
    out_hz = rate_hz or 24000
    playback = Playback(pyaudio_backend, device=device, rate_hz=rate_hz)
    await playback.start()
    await playback.wait_open()
    raw = tmp_path / "out.raw"
    recorder = pulse_rig.record(f"{device.removeprefix('pilive_')}.monitor", out_hz, raw)
    try:
        # parec records before the answer starts: on a loaded machine it started later than a
        # fixed 0.3 s, and the chirp's first 0.4 s went unrecorded (every early window "bad").
        await wait_for(lambda: raw.stat().st_size >= out_hz // 5 * 2, 15, "parec to record")
        source = chirp(1.5, 24000)
        data = source.tobytes()
        for i in range(0, len(data), 1920):  # 40 ms of audio every 10 ms: a bursty network
            playback.write(data[i : i + 1920])
            await asyncio.sleep(0.01)
        playback.end_of_answer()
        await wait_for(lambda: not playback.is_playing, 10, "the answer to play out")
        await asyncio.sleep(0.3)
    finally:
        recording = stop_recording(recorder, raw)
        await playback.aclose()
    reference = source if out_hz == 24000 else soxr.resample(source, 24000, out_hz)
    assert playback.ring is not None and playback.ring.underruns == 0
    # Where the device itself reported starving (PortAudio's output underflow: on a loaded
    # machine its callback ran late), it played silence there; that is taken out, and what the
    # ring handed over must still be whole and in order.
    starved = playback.device_underflows
    gaps = 0
    if starved:
        recording, gaps = without_silent_gaps(recording, out_hz // 500)  # 2 ms of exact zeros
    offset, bad = glitches(recording, reference, out_hz * 5 // 1000)
    assert bad == [], (
        f"glitches at samples {bad[:10]} (offset {offset}; "
        f"{starved} device underflows, {gaps} silent gaps taken out)"
    )


RAMP_BASE = 16384  # answer sample n of the barge-in test is RAMP_BASE + n // RAMP_STEP
RAMP_STEP = 4


def position_ramp(samples: int) -> np.ndarray:
    """Answer audio that says where it is: sample n is RAMP_BASE + n // RAMP_STEP, so a sample
    that comes out unscaled gives its position in the answer to within RAMP_STEP samples, however
    the output stalled or gapped around it. Silence is 0 and the fade only scales samples down,
    so neither can pass for audio from a later position."""
    assert samples // RAMP_STEP < 32768 - RAMP_BASE
    return (RAMP_BASE + np.arange(samples) // RAMP_STEP).astype(np.int16)


async def test_barge_in_leaves_at_most_30_ms_of_stale_audio(
    pulse_rig: PulseRig, pyaudio_backend: PyAudioBackend, tmp_path: Path
) -> None:
    """flush() mid-answer: from the position the ring had handed the device at the call, at most
    30 ms of the answer (fade included) ever comes out of the speaker, and the ring's counters
    agree. Each sample's value gives its position, so underruns and gaps in the output on a busy
    machine change nothing."""
    playback = Playback(pyaudio_backend, device="pilive_spk")
    await playback.start()
    await playback.wait_open()
    raw = tmp_path / "out.raw"
    recorder = pulse_rig.record("spk.monitor", 24000, raw)
    source = position_ramp(65532)  # 2.7 s
    try:
        await asyncio.sleep(0.3)
        playback.write(source.tobytes())
        ring = playback.ring
        assert ring is not None
        await wait_for(lambda: ring.bytes_read >= 24000 * 2, 10, "1 s of playback")
        pressed_at = ring.bytes_read // 2  # answer samples handed to the device at the press
        playback.flush()
        await asyncio.sleep(0.6)
        ring_stale = ring.bytes_read // 2 - pressed_at
    finally:
        recording = stop_recording(recorder, raw)
        await playback.aclose()
    assert pressed_at < len(source) - 24000 // 2, "the press came too late to measure anything"
    # The first sample from the press position on (its 4-sample step, to be safe) ...
    later = np.flatnonzero(recording >= RAMP_BASE + pressed_at // RAMP_STEP)
    cut = int(later[0]) if len(later) else len(recording)
    before = recording[:cut][recording[:cut] != 0]
    # ... is preceded by answer audio only, unscaled, and enough of it to show the rig played.
    assert len(before) >= 24000 // 2, f"only {len(before)} answer samples before the press"
    assert before.min() >= RAMP_BASE, "the answer came out altered: positions are unreadable"
    # Everything that is not silence from there on is answer audio played after the press.
    stale_ms = np.count_nonzero(recording[cut:]) / 24
    assert stale_ms <= 30, f"{stale_ms:.1f} ms of the answer played after flush()"
    assert ring_stale <= 24 * 30, f"the ring handed out {ring_stale / 24:.1f} ms after flush()"


async def test_pulse_restart_mid_stream_recovers_by_itself(
    pulse_rig: PulseRig, pyaudio_backend: PyAudioBackend
) -> None:
    """Kill the PulseAudio server (SIGKILL) under running capture and playback and start it again:
    both notice (error state), reopen by themselves, chunks flow again and the speaker consumes
    audio again within seconds; the reopens are counted."""
    chunks: list[bytes] = []
    capture = Capture(pyaudio_backend, chunks.append, device="pilive_mic")
    playback = Playback(pyaudio_backend, device="pilive_spk")
    await capture.start()
    await playback.start()
    try:
        await wait_for(lambda: len(chunks) > 5 and playback.ok, 10, "audio to flow")
        await asyncio.to_thread(pulse_rig.kill)
        await wait_for(lambda: not capture.ok and not playback.ok, 10, "the failure to show")
        assert capture.error_message and playback.error_message
        await asyncio.to_thread(pulse_rig.restart)
        await wait_for(lambda: capture.reopens >= 1 and playback.reopens >= 1, 20, "reopens")
        before = len(chunks)
        await wait_for(lambda: len(chunks) > before + 10, 10, "chunks after the restart")
        ring = playback.ring
        assert ring is not None
        read_before = ring.bytes_read
        playback.write(chirp(0.3, 24000).tobytes())
        playback.end_of_answer()
        await wait_for(lambda: ring.bytes_read >= read_before + 24000 * 2 * 3 // 10, 10, "play")
        assert capture.ok and playback.ok
        assert time.monotonic() - capture.heartbeat_s < 1.0
        assert time.monotonic() - playback.heartbeat_s < 1.0
    finally:
        await capture.aclose()
        await playback.aclose()
