"""Earcons: short, click-free, pitched where they claim to be, cached, and named clearly."""

from __future__ import annotations

import numpy as np
import pytest

from pilive.audio import tones


def samples(name: str) -> np.ndarray:
    return np.frombuffer(tones.earcon(name), dtype="<i2").astype(np.float64)


@pytest.mark.parametrize("name", tones.EARCONS)
def test_earcon_is_short_quiet_and_click_free(name: str) -> None:
    """Each earcon is <= 250 ms of 24 kHz s16le, peaks below -6 dBFS, starts and ends at silence
    through a ramp, and never jumps between samples faster than its highest partial allows."""
    x = samples(name)
    assert 0 < len(x) <= tones.RATE_HZ * 250 // 1000
    assert np.abs(x).max() < 32767 / 2
    ramp = tones.RATE_HZ // 1000  # the first and last millisecond are nearly silent
    assert np.abs(x[:ramp]).max() < 0.1 * np.abs(x).max()
    assert np.abs(x[-ramp:]).max() < 0.05 * np.abs(x).max()
    # A sine of amplitude A at f moves at most 2*pi*f*A/rate per sample; a click moves far more.
    top_hz = 2 * max(f for f, *_ in tones._NOTES[name])
    bound = 2 * np.pi * top_hz * np.abs(x).max() / tones.RATE_HZ
    assert np.abs(np.diff(x)).max() <= 1.2 * bound


@pytest.mark.parametrize(
    ("name", "first_hz", "last_hz"),
    [("press", 880.0, 1318.51), ("release", 1318.51, 880.0), ("offline", 783.99, 587.33)],
)
def test_earcon_pitch_moves_the_way_it_means(name: str, first_hz: float, last_hz: float) -> None:
    """Press rises, release and offline fall: the dominant frequency of the first and last 40 ms
    is the note the design says (within one FFT bin)."""
    x = samples(name)
    n = tones.RATE_HZ * 40 // 1000
    for segment, expected_hz in ((x[:n], first_hz), (x[-n - n // 2 : -n // 2], last_hz)):
        spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), 8 * len(segment)))
        peak_hz = np.argmax(spectrum) * tones.RATE_HZ / (8 * len(segment))
        assert abs(peak_hz - expected_hz) < tones.RATE_HZ / len(segment)


def test_earcons_are_distinct_and_cached() -> None:
    """Every earcon differs from every other; asking twice returns the very same bytes object."""
    all_pcm = {name: tones.earcon(name) for name in tones.EARCONS}
    assert len(set(all_pcm.values())) == len(tones.EARCONS)
    assert all(tones.earcon(name) is pcm for name, pcm in all_pcm.items())
    assert {"press", "release", "error", "offline", "connected"} <= set(tones.EARCONS)


def test_unknown_earcon_names_itself_and_the_choices() -> None:
    """A typo in a config or caller gets an error naming the bad name and the valid ones."""
    with pytest.raises(ValueError, match=r"'pres'.*press"):
        tones.earcon("pres")
