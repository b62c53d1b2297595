"""Playback with the file backend (a WAV-writing speaker paced in real time): completeness,
resampling, volume, barge-in, earcons, the backlog that keeps long answers whole and its bound,
and answers at other rates."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path

import numpy as np
import pytest
import soxr

from pilive.audio import tones
from pilive.audio.backends.simulated import FileBackend
from pilive.audio.playback import Playback, volume_to_gain
from tests.support.pulse_rig import read_wav

RNG = np.random.default_rng(7)


def noise(seconds: float, rate_hz: int = 24000, level: int = 12000) -> np.ndarray:
    return RNG.integers(-level, level, int(rate_hz * seconds)).astype(np.int16)


async def play(
    tmp_path: Path, pieces: list[np.ndarray], *, wait_s: float = 0.3, **options: object
) -> tuple[np.ndarray, Playback]:
    """Writes the pieces as one answer (in 40 ms network-sized slices), waits for it to play out,
    and returns what the speaker received."""
    out = tmp_path / "out.wav"
    rate = options.pop("output_rate_hz", None)
    playback = Playback(FileBackend(output_path=out, output_rate_hz=rate), **options)  # type: ignore[arg-type]
    await playback.start()
    await playback.wait_open()
    for piece in pieces:
        data = piece.tobytes()
        for i in range(0, len(data), 1920):
            playback.write(data[i : i + 1920])
    playback.end_of_answer()
    deadline = time.monotonic() + 20
    while playback.is_playing and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(wait_s)
    await playback.aclose()
    samples, _ = read_wav(out)
    return samples, playback


def normalised_dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


def trimmed(x: np.ndarray) -> np.ndarray:
    nz = np.flatnonzero(x)
    return x[nz[0] : nz[-1] + 1] if len(nz) else x[:0]


async def test_answer_plays_bit_exact_complete_and_in_order(tmp_path: Path) -> None:
    """At 24 kHz mono the speaker receives exactly the bytes written, once, in order, with silence
    only before and after; no underrun is counted for the end-of-answer drain."""
    source = noise(0.6)
    out, playback = await play(tmp_path, [source])
    assert np.array_equal(trimmed(out), trimmed(source))
    assert playback.ring is not None and playback.ring.underruns == 0
    assert playback.audio_started_s >= playback.answer_started_s > 0


async def test_a_long_burst_waits_in_the_backlog_and_loses_nothing(tmp_path: Path) -> None:
    """An answer far bigger than the ring (1.2 s into a 200 ms ring), written at once as the
    network delivers faster than real time, still plays complete and in order, with no overrun."""
    source = noise(1.2)
    out, playback = await play(tmp_path, [source], ring_ms=200)
    assert np.array_equal(trimmed(out), trimmed(source))
    assert playback.ring is not None
    assert playback.ring.overruns == 0 and playback.ring.capacity < len(source.tobytes())


async def test_resampled_to_a_48k_only_device(tmp_path: Path) -> None:
    """A device that only plays 48 kHz gets the answer resampled on the write side: the output
    matches an offline soxr conversion sample for sample (correlation > 0.999) and has the full
    length, so the streaming resampler neither drops nor repeats a block."""
    t = np.arange(24000 * 0.6) / 24000
    source = (9000 * np.sin(2 * np.pi * (300 + 1500 * t) * t)).astype(np.int16)
    out, playback = await play(tmp_path, [source], output_rate_hz=48000)
    assert playback.device_format == (48000, 1)
    x = trimmed(out).astype(np.float64)
    expected = soxr.resample(source.astype(np.float32), 24000, 48000).astype(np.float64)
    assert abs(len(x) - len(expected)) < 48000 * 0.01
    n = min(len(x), len(expected)) - 10
    corr = max(normalised_dot(x[lag : lag + n], expected[:n]) for lag in range(10))
    assert corr > 0.999


def test_volume_curve_is_cubic_and_validated() -> None:
    """The perceptual curve: 100 % is unity, 50 % is -18 dB, 0 % is silence; outside 0..100 is
    refused with the value named."""
    assert volume_to_gain(100) == 1.0
    assert volume_to_gain(0) == 0.0
    assert 20 * np.log10(volume_to_gain(50)) == pytest.approx(-18.06, abs=0.01)
    with pytest.raises(ValueError, match="101"):
        volume_to_gain(101)


async def test_volume_applies_to_the_audio(tmp_path: Path) -> None:
    """At 50 % the speaker gets the answer scaled by the curve's gain (0.125), within one LSB."""
    source = noise(0.3)
    out, playback = await play(tmp_path, [source], volume_percent=50)
    assert playback.volume_percent == 50
    x = trimmed(out).astype(np.int32)
    expected = source.astype(np.float64) * 0.125
    start = int(np.argmax(np.abs(expected) >= 1))
    assert np.abs(x - np.round(expected[start : start + len(x)])).max() <= 1


async def test_volume_changes_at_run_time(tmp_path: Path) -> None:
    """Changing volume_percent while audio plays takes effect on the audio that follows."""
    out_path = tmp_path / "out.wav"
    playback = Playback(FileBackend(output_path=out_path))
    await playback.start()
    await playback.wait_open()
    tone = np.full(24000, 8000, np.int16)  # 1 s of DC: its level is the gain
    playback.write(tone.tobytes())
    await asyncio.sleep(0.4)
    playback.volume_percent = 20
    await asyncio.sleep(0.9)
    await playback.aclose()
    levels = set(np.unique(read_wav(out_path)[0]).tolist())
    assert {8000, 64} <= levels  # 8000 * 0.2**3 = 64


async def test_flush_drops_the_rest_and_the_next_earcon_plays(tmp_path: Path) -> None:
    """Barge-in: after flush() the rest of the answer (and its backlog) never plays, the fade leaves
    no click, and an earcon requested right after plays in full."""
    out_path = tmp_path / "out.wav"
    playback = Playback(FileBackend(output_path=out_path), ring_ms=300)
    await playback.start()
    await playback.wait_open()
    tone = np.full(24000 * 2, 8000, np.int16)
    playback.write(tone.tobytes())
    await asyncio.sleep(0.4)
    playback.flush()
    playback.play_earcon("press")
    await asyncio.sleep(0.6)
    await playback.aclose()
    out = read_wav(out_path)[0]
    played = np.count_nonzero(out == 8000)
    assert 24000 * 0.2 < played < 24000 * 0.6
    tail = out[np.flatnonzero(out == 8000)[-1] : np.flatnonzero(out == 8000)[-1] + 200]
    assert not tail[-1] and np.abs(np.diff(tail.astype(np.int32))).max() < 8000 / 10  # a ramp
    press = np.frombuffer(tones.earcon("press"), dtype="<i2")
    assert np.array_equal(trimmed(out[np.flatnonzero(out == 8000)[-1] + 200 :]), trimmed(press))


async def test_earcon_during_an_answer_waits_for_its_end(tmp_path: Path) -> None:
    """An earcon asked for mid-answer is not spliced into the speech: it plays, whole, after the
    answer's last sample; one asked for while idle plays at once."""
    out_path = tmp_path / "out.wav"
    playback = Playback(FileBackend(output_path=out_path))
    await playback.start()
    await playback.wait_open()
    playback.play_earcon("connected")
    await asyncio.sleep(0.4)
    answer = np.full(24000 // 2, 20000, np.int16)
    playback.write(answer[: len(answer) // 2].tobytes())
    playback.play_earcon("error")
    playback.write(answer[len(answer) // 2 :].tobytes())
    playback.end_of_answer()
    await asyncio.sleep(1.2)
    await playback.aclose()
    out = read_wav(out_path)[0]
    connected = np.frombuffer(tones.earcon("connected"), dtype="<i2")
    error = np.frombuffer(tones.earcon("error"), dtype="<i2")
    speech = np.flatnonzero(out == 20000)
    assert np.array_equal(trimmed(out[: speech[0]]), trimmed(connected))
    assert len(speech) == len(answer) and speech[-1] - speech[0] == len(answer) - 1
    assert np.array_equal(trimmed(out[speech[-1] + 1 :]), trimmed(error))


def test_unknown_earcon_fails_at_the_call() -> None:
    """play_earcon() with a bad name raises at once, naming it, instead of failing later."""
    playback = Playback(FileBackend(output_path=Path("unused.wav")))
    with pytest.raises(ValueError, match="'beep'"):
        playback.play_earcon("beep")


async def test_drained_is_reported_once_after_the_answer_played_out(tmp_path: Path) -> None:
    """on_drained fires on the loop exactly once per ended answer, only after the speaker has
    taken every sample (so the "speaking" LED lasts as long as the voice), never after a flush."""
    out = tmp_path / "out.wav"
    drained_at: list[float] = []
    playback = Playback(
        FileBackend(output_path=out),
        on_drained=lambda: drained_at.append(time.monotonic()),
    )
    await playback.start()
    await playback.wait_open()
    source = noise(0.5).tobytes()
    started = time.monotonic()
    for i in range(0, len(source), 1920):
        playback.write(source[i : i + 1920])
    playback.end_of_answer()
    async with asyncio.timeout(5):
        while not drained_at:
            await asyncio.sleep(0.01)
    assert drained_at[0] - started >= 0.5 - 0.05  # real-time paced: not before the audio played
    playback.write(noise(0.5).tobytes())
    playback.flush()
    await asyncio.sleep(0.3)
    await playback.aclose()
    assert len(drained_at) == 1
    samples, _ = read_wav(out)
    assert len(trimmed(samples)) >= len(source) // 2 - 2


async def test_earcon_volume_scales_earcons_only(tmp_path: Path) -> None:
    """earcon_volume_percent = 50 plays earcons at the cubic-curve gain (0.125) while answer audio
    stays at full level."""
    out_path = tmp_path / "out.wav"
    playback = Playback(FileBackend(output_path=out_path), earcon_volume_percent=50)
    await playback.start()
    await playback.wait_open()
    playback.play_earcon("press")
    await asyncio.sleep(0.5)
    playback.write(np.full(2400, 20000, np.int16).tobytes())
    playback.end_of_answer()
    await asyncio.sleep(0.5)
    await playback.aclose()
    out = read_wav(out_path)[0]
    press = np.frombuffer(tones.earcon("press"), dtype="<i2")
    heard = trimmed(out[: np.flatnonzero(out == 20000)[0]])
    expected = trimmed((press * volume_to_gain(50)).astype("<i2"))
    assert np.array_equal(heard, expected)
    assert np.count_nonzero(out == 20000) == 2400


async def test_backlog_is_bounded_and_an_answer_is_cut_at_its_end(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An answer of 4 s then 1 s more, written at once into a small ring with max_backlog_s =
    0.3, keeps only the ring plus 0.3 s waiting: the speaker plays the answer's start, bit exact
    and without a hole, the rest (the later chunk too) is dropped and said once with the seconds,
    counted in answer_dropped_s; the next answer plays whole (the cut ends with its answer)."""
    out_path = tmp_path / "out.wav"
    playback = Playback(FileBackend(output_path=out_path), ring_ms=200, max_backlog_s=0.3)
    await playback.start()
    await playback.wait_open()
    first, second = noise(5.0), noise(0.3)
    with caplog.at_level(logging.WARNING, logger="pilive.audio.playback"):
        playback.write(first[: 4 * 24000].tobytes())
        playback.write(first[4 * 24000 :].tobytes())
        assert playback._backlog_bytes <= 0.3 * 24000 * 2
        playback.end_of_answer()
        async with asyncio.timeout(10):
            while playback.is_playing:
                await asyncio.sleep(0.02)
        playback.write(second.tobytes())
        playback.end_of_answer()
        async with asyncio.timeout(10):
            while playback.is_playing:
                await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    await playback.aclose()
    out = read_wav(out_path)[0]
    assert playback.ring is not None
    kept = playback.ring.capacity // 2 + int(0.3 * 24000)
    heard = trimmed(out)
    assert np.array_equal(heard[-len(second) :], second)  # the next answer, whole
    played = len(trimmed(heard[: -len(second)]))
    assert np.array_equal(heard[:played], first[:played])  # the start, without a hole
    assert kept <= played < kept + 0.1 * 24000
    dropped_s = 5.0 - played / 24000
    assert playback.answer_dropped_s == pytest.approx(dropped_s, abs=0.01)
    assert len(re.findall(r"dropping the rest of this answer", caplog.text)) == 1
    (said,) = re.findall(r"answer cut: ([0-9.]+) s", caplog.text)
    assert float(said) == pytest.approx(dropped_s, abs=0.05)


def peak_hz(samples: np.ndarray, rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate_hz / len(samples))


def sine(seconds: float, rate_hz: int, freq_hz: float = 440.0) -> bytes:
    t = np.arange(round(seconds * rate_hz)) / rate_hz
    return (np.sin(2 * np.pi * freq_hz * t) * 9000).astype("<i2").tobytes()


async def test_answer_audio_at_other_rates_plays_at_the_right_speed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One answer of 0.4 s at 24 kHz, 0.4 s at 16 kHz and 0.4 s at 48 kHz (AudioChunk.rate_hz)
    to a 24 kHz speaker lasts 1.2 s and every part is still a 440 Hz tone (unresampled, the
    16 kHz part would play at 660 Hz and for 0.27 s); audio at a rate no speaker plays is
    dropped with one warning."""
    out_path = tmp_path / "out.wav"
    playback = Playback(FileBackend(output_path=out_path))
    await playback.start()
    await playback.wait_open()
    with caplog.at_level(logging.WARNING, logger="pilive.audio.playback"):
        for rate_hz in (24000, 16000, 1_000_000, 48000, 4000):
            data = sine(0.4, rate_hz)
            step = rate_hz * 2 // 50  # 20 ms chunks
            for i in range(0, len(data), step):
                playback.write(data[i : i + step], rate_hz)
        playback.end_of_answer()
        async with asyncio.timeout(10):
            while playback.is_playing:
                await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    await playback.aclose()
    heard = trimmed(read_wav(out_path)[0]).astype(np.float64)
    assert abs(len(heard) - 1.2 * 24000) < 0.01 * 24000
    for part in range(3):
        piece = heard[part * 9600 + 1200 : (part + 1) * 9600 - 1200]
        assert peak_hz(piece, 24000) == pytest.approx(440, abs=10)
    assert caplog.text.count("not a rate a speaker plays") == 1
