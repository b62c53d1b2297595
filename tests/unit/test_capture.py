"""Capture with the file and null backends: chunking, pre-roll, resampling, overflows, reopening.

These run the same Capture code as the real device; only the device edge (a thread that calls the
PortAudio-style callback) differs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soxr

from pilive.audio.backends import (
    INPUT_OVERFLOW,
    PA_ABORT,
    AudioStream,
    DeviceInfo,
    Direction,
    StreamCallback,
    TimeInfo,
)
from pilive.audio.backends.simulated import FileBackend, NullBackend
from pilive.audio.capture import Capture
from pilive.audio.resample import STEADY_DELAY_SAMPLES
from tests.support.pulse_rig import write_wav

RNG = np.random.default_rng(5)


class Collector:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.threads: set[int] = set()

    def __call__(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.threads.add(threading.get_ident())

    def samples(self) -> np.ndarray:
        return np.frombuffer(b"".join(self.chunks), dtype="<i2")


async def run_until(capture: Capture, predicate: object, timeout_s: float = 10.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_chunks_are_exact_and_complete_at_16k(tmp_path: Path) -> None:
    """A 16 kHz mono file comes out as 640-byte (20 ms) chunks, on the loop thread, bit-exact and
    in order, the last block zero-padded; the input then reports `ended`, not an error."""
    source = RNG.integers(-20000, 20000, 16000 + 123).astype(np.int16)
    wav = write_wav(tmp_path / "in.wav", source, 16000)
    got = Collector()
    capture = Capture(FileBackend(wav, realtime=False), got)
    await capture.start()
    await run_until(capture, lambda: capture.ended)
    await capture.aclose()
    assert {len(c) for c in got.chunks} == {640}
    assert got.threads == {threading.get_ident()}
    x = got.samples()
    assert np.array_equal(x[: len(source)], source)
    assert not x[len(source) :].any()
    assert capture.ok and capture.error_message is None and capture.overflows == 0
    assert (capture.device_rate_hz, capture.device_channels) == (16000, 1)


@pytest.mark.parametrize(("rate_hz", "channels"), [(44100, 2), (48000, 1), (22050, 2)])
async def test_other_device_formats_are_downmixed_and_resampled(
    tmp_path: Path, rate_hz: int, channels: int
) -> None:
    """A device that only does 44.1/48/22.05 kHz, mono or stereo, still yields 16 kHz mono chunks
    that match an offline soxr conversion of the same signal (correlation > 0.999), with the
    expected length; the stream resampler leaves no seams at block boundaries. From 48 kHz the
    steady filter delays the stream by STEADY_DELAY_SAMPLES, which the comparison allows for."""
    duration_s = 1.0
    t = np.arange(int(rate_hz * duration_s)) / rate_hz
    mono = (8000 * np.sin(2 * np.pi * 440 * t) + 3000 * np.sin(2 * np.pi * 2500 * t)).astype(
        np.int16
    )
    frames = np.repeat(mono, channels)
    wav = write_wav(tmp_path / "in.wav", frames, rate_hz, channels)
    got = Collector()
    capture = Capture(FileBackend(wav, realtime=False), got)
    await capture.start()
    await run_until(capture, lambda: capture.ended)
    await capture.aclose()
    assert (capture.device_rate_hz, capture.device_channels) == (rate_hz, channels)
    x = got.samples().astype(np.float64)
    expected = soxr.resample(mono.astype(np.float32), rate_hz, 16000).astype(np.float64)
    if rate_hz % 16000 == 0:
        x = x[STEADY_DELAY_SAMPLES:]
    assert abs(len(x) - len(expected)) < 16000 * 0.05  # resampler delay + last-chunk padding
    n = min(len(x), len(expected)) - 2000
    a, b = x[1000:n], expected[1000:n]
    corr = float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))
    assert corr > 0.999


async def test_preroll_keeps_the_last_300_ms_and_is_taken_once(tmp_path: Path) -> None:
    """take_preroll() returns the last ceil(preroll_ms / chunk_ms) chunks delivered, oldest first,
    and empties the pre-roll so the same audio is never sent twice."""
    source = RNG.integers(-20000, 20000, 16000).astype(np.int16)
    wav = write_wav(tmp_path / "in.wav", source, 16000)
    got = Collector()
    capture = Capture(FileBackend(wav, realtime=False), got, chunk_ms=30, preroll_ms=100)
    await capture.start()
    await run_until(capture, lambda: capture.ended)
    await capture.aclose()
    assert capture.chunk_bytes == 960
    assert capture.take_preroll() == got.chunks[-4:]
    assert capture.take_preroll() == []


async def test_null_input_is_silence_paced_in_real_time() -> None:
    """The null microphone delivers silent chunks no faster than real time, and the heartbeat
    (for the watchdog) follows the callbacks."""
    got = Collector()
    capture = Capture(NullBackend(), got)
    started_s = time.monotonic()
    await capture.start()
    await run_until(capture, lambda: len(got.chunks) >= 10)
    elapsed_s = time.monotonic() - started_s
    await capture.aclose()
    assert not any(any(c) for c in got.chunks)
    assert len(got.chunks) * 0.020 <= elapsed_s + 0.1
    assert 0 < time.monotonic() - capture.heartbeat_s < 5


class FlakyBackend(FileBackend):
    """A file microphone whose device edge misbehaves like hardware: it flags input overflows on
    some blocks, and its first stream dies (paAbort, as PortAudio does on a device error)."""

    def __init__(self, path: Path, *, overflow_every: int = 0, die_after: int = 0) -> None:
        super().__init__(path, realtime=True, loop=True)
        self.overflow_every = overflow_every
        self.die_after = die_after
        self.opened = 0

    def open(
        self,
        device: DeviceInfo,
        direction: Direction,
        *,
        rate_hz: int,
        channels: int,
        frames_per_buffer: int,
        callback: StreamCallback,
    ) -> AudioStream:
        self.opened += 1
        first = self.opened == 1
        blocks = 0

        def flaky(
            data: bytes | None, frames: int, info: TimeInfo, status: int
        ) -> tuple[bytes | None, int]:
            nonlocal blocks
            blocks += 1
            if first and self.die_after and blocks > self.die_after:
                return None, PA_ABORT
            if self.overflow_every and blocks % self.overflow_every == 0:
                status |= INPUT_OVERFLOW
            return callback(data, frames, info, status)

        return super().open(
            device,
            direction,
            rate_hz=rate_hz,
            channels=channels,
            frames_per_buffer=frames_per_buffer,
            callback=flaky,
        )


async def test_overflows_are_counted_and_logged_sparingly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Input overflows (paInputOverflow) are counted, do not stop the audio, and produce one
    warning per interval rather than one per block."""
    wav = write_wav(tmp_path / "in.wav", np.zeros(1600, np.int16), 16000)
    got = Collector()
    capture = Capture(FlakyBackend(wav, overflow_every=2), got, overflow_log_interval_s=60)
    with caplog.at_level(logging.WARNING, logger="pilive.audio.capture"):
        await capture.start()
        await run_until(capture, lambda: capture.overflows >= 5)
        await capture.aclose()
    assert len(got.chunks) >= 9
    assert len([r for r in caplog.records if "overflowed" in r.message]) == 1


async def test_a_dying_device_is_reopened_and_chunks_flow_again(tmp_path: Path) -> None:
    """When the stream stops (device error), Capture reports it (ok False, error_message), reopens
    it with backoff by itself, and chunks flow again; the reopen is counted."""
    wav = write_wav(tmp_path / "in.wav", np.zeros(1600, np.int16), 16000)
    got = Collector()
    backend = FlakyBackend(wav, die_after=5)
    capture = Capture(backend, got)
    await capture.start()
    await run_until(capture, lambda: capture.error_message is not None)
    assert not capture.ok and "stopped" in (capture.error_message or "")
    before = len(got.chunks)
    await run_until(capture, lambda: capture.reopens == 1 and len(got.chunks) > before + 10)
    assert capture.ok and capture.error_message is None and backend.opened == 2
    await capture.aclose()


async def test_unknown_device_is_an_error_state_naming_the_choices(tmp_path: Path) -> None:
    """A device name that matches nothing leaves the daemon up with an error that names the wanted
    device and the available ones, and it keeps retrying (the USB mic may be plugged in later)."""
    wav = write_wav(tmp_path / "in.wav", np.zeros(160, np.int16), 16000)
    capture = Capture(FileBackend(wav), Collector(), device="seeed2mic")
    await capture.start()
    await run_until(capture, lambda: capture.error_message is not None)
    await asyncio.sleep(0.5)
    await capture.aclose()
    assert not capture.ok
    assert "'seeed2mic'" in (capture.error_message or "")
    assert "'file:in.wav'" in (capture.error_message or "")
    assert capture._supervisor.failures >= 2


def test_a_wav_that_is_not_16_bit_is_refused_by_name(tmp_path: Path) -> None:
    """An 8-bit WAV (or a file that is not a WAV) as the file microphone fails at once with an
    error naming the file and what is wrong with it."""
    import wave

    from pilive.audio.backends import AudioDeviceError

    path = tmp_path / "eight.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(bytes(800))
    with pytest.raises(AudioDeviceError, match=r"eight\.wav: 8-bit samples"):
        FileBackend(path)
    (tmp_path / "text.wav").write_text("hello")
    with pytest.raises(AudioDeviceError, match=r"text\.wav: not a PCM WAV"):
        FileBackend(tmp_path / "text.wav")


def test_bad_settings_are_rejected_with_the_value() -> None:
    """Nonsense chunk and pre-roll lengths fail at construction, naming the setting and value."""
    with pytest.raises(ValueError, match=r"chunk_ms.* 0"):
        Capture(NullBackend(), Collector(), chunk_ms=0)
    with pytest.raises(ValueError, match=r"preroll_ms.*-1"):
        Capture(NullBackend(), Collector(), preroll_ms=-1)
