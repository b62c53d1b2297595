"""The steady decimator the capture uses from 48 (32, 96) kHz: every block gives its samples at
once, with a fixed 1.3 ms delay, a flat speech band and no audible aliasing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pilive.audio.resample import STEADY_DELAY_SAMPLES, PcmConverter

BLOCK_S = 0.020


def tone(freq_hz: float, rate_hz: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return (10000 * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def level_db(converter: PcmConverter, samples: np.ndarray, rate_hz: int) -> float:
    """Output level of a 10000-peak tone fed in 20 ms blocks, relative to its input level."""
    block = int(rate_hz * BLOCK_S)
    out = b"".join(converter.convert(b.tobytes()) for b in samples.reshape(-1, block))
    y = np.frombuffer(out, dtype="<i2")[1000:].astype(np.float64)
    rms = np.sqrt(np.mean(y**2))
    return float(20 * np.log10(max(rms, 1e-9) / (10000 / np.sqrt(2))))


@pytest.mark.parametrize("rate_hz", [32000, 48000, 96000])
def test_every_block_gives_its_samples_at_once(rate_hz: int) -> None:
    """Each 20 ms block of the device, mono or stereo, gives exactly 320 samples at 16 kHz, and
    the newest one lags the input by the filter's 21 samples (1.3 ms), never more."""
    for channels in (1, 2):
        converter = PcmConverter(rate_hz, channels, 16000, 1, steady=True)
        noise = np.random.default_rng(1).integers(-9000, 9000, int(rate_hz * BLOCK_S) * channels)
        for _ in range(10):
            assert len(converter.convert(noise.astype(np.int16).tobytes())) == 320 * 2
            assert converter.latency_s == pytest.approx(STEADY_DELAY_SAMPLES / 16000)


def test_output_does_not_depend_on_how_the_input_is_cut() -> None:
    """Blocks of 20 ms and arbitrary cuts (odd byte counts included) give the same stream."""
    source = np.random.default_rng(2).normal(0, 3000, 48000).astype(np.int16).tobytes()
    whole = PcmConverter(48000, 1, 16000, 1, steady=True).convert(source)
    cut = PcmConverter(48000, 1, 16000, 1, steady=True)
    edges = [0, 1, 7, 1001, 1961, 50_001, len(source)]
    pieces = b"".join(cut.convert(source[a:b]) for a, b in itertools.pairwise(edges))
    assert pieces == whole and len(whole) == len(source) // 3


def test_an_impulse_comes_out_21_samples_later() -> None:
    """The filter is linear phase: an impulse at input sample 900 peaks at output 300 + 21."""
    impulse = np.zeros(9600, dtype=np.int16)
    impulse[900] = 30000
    out = np.frombuffer(
        PcmConverter(48000, 1, 16000, 1, steady=True).convert(impulse.tobytes()), dtype="<i2"
    )
    assert int(np.argmax(out)) == 300 + STEADY_DELAY_SAMPLES


def test_speech_band_is_flat_and_what_would_alias_is_gone() -> None:
    """Tones from 100 Hz to 6 kHz pass within 0.1 dB; from 8.2 kHz up (which 16 kHz would fold
    back into the band) they are at least 75 dB down."""
    for freq_hz in (100, 1000, 3000, 6000):
        converter = PcmConverter(48000, 1, 16000, 1, steady=True)
        assert abs(level_db(converter, tone(freq_hz, 48000), 48000)) < 0.1
    for freq_hz in (8200, 9000, 12000, 17000, 23000):
        converter = PcmConverter(48000, 1, 16000, 1, steady=True)
        assert level_db(converter, tone(freq_hz, 48000), 48000) < -75


def test_rates_that_are_not_a_whole_multiple_keep_soxr() -> None:
    """44.1 kHz cannot be decimated by a whole factor: soxr converts it (no fixed lag there)."""
    converter = PcmConverter(44100, 1, 16000, 1, steady=True)
    given = sum(len(converter.convert(np.zeros(882, np.int16).tobytes())) for _ in range(50))
    assert abs(given // 2 - 16000) < 1000
    assert converter.latency_s != pytest.approx(STEADY_DELAY_SAMPLES / 16000)
