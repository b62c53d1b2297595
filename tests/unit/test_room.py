"""The simulated room's echo path: the delay, level and decay it promises, streamed or offline."""

from __future__ import annotations

import numpy as np
import pytest

from pilive.audio.room import EchoPath, RoomOptions, echo_of, impulse_response

RATE_HZ = 16000


def test_impulse_response_has_unit_energy_and_decays_by_60_db_over_rt60() -> None:
    """The response is normalised (so echo_gain_db is the echo's level) and its tail falls as a
    room of that RT60 does: the last tenth holds far less energy than the first."""
    response = impulse_response(RATE_HZ, 300.0, seed=3)
    assert len(response) == RATE_HZ * 300 // 1000
    assert np.sum(response**2) == pytest.approx(1.0)
    tenth = len(response) // 10
    early = np.sum(response[tenth : 2 * tenth] ** 2)
    late = np.sum(response[-tenth:] ** 2)
    # -60 dB over the whole length: the last tenth sits about 48 dB under the second tenth.
    assert 10 * np.log10(early / late) > 35


def test_echo_arrives_after_the_device_latency_at_the_configured_level() -> None:
    """An impulse played at 0 reaches the microphone latency_ms later (the direct path), and white
    noise comes back echo_gain_db below what was played."""
    options = RoomOptions(latency_ms=40.0, rt60_ms=200.0, echo_gain_db=-12.0, noise_dbfs=None)
    click = np.zeros(RATE_HZ)
    click[0] = 1.0
    echo = echo_of(click, RATE_HZ, options)
    assert np.all(echo[: 640 - 1] == pytest.approx(0.0, abs=1e-9))
    assert int(np.argmax(np.abs(echo))) == 640  # 40 ms at 16 kHz
    noise = np.random.default_rng(5).standard_normal(4 * RATE_HZ) * 0.1
    heard = echo_of(noise, RATE_HZ, options)
    level_db = 10 * np.log10(np.mean(heard[RATE_HZ:] ** 2) / np.mean(noise**2))
    assert level_db == pytest.approx(-12.0, abs=1.0)


def test_streaming_in_blocks_hears_what_the_offline_path_hears() -> None:
    """Speaker blocks of 10 ms and microphone blocks of 20 ms (as the devices deliver them) give
    the same signal as one offline convolution, and the history kept stays bounded."""
    options = RoomOptions(latency_ms=25.0, rt60_ms=150.0, noise_dbfs=None)
    speaker = np.random.default_rng(7).standard_normal(3 * RATE_HZ) * 0.2
    offline = echo_of(speaker, RATE_HZ, options)
    path = EchoPath(RATE_HZ, options)
    heard = []
    played = 0
    for start in range(0, len(speaker), 320):
        while played < start + 320:
            path.play(speaker[played : played + 160])
            played += 160
        heard.append(path.hear(start, 320))
        assert len(path._history) <= path.delay_samples + len(path.response) + 2 * 320
    assert np.allclose(np.concatenate(heard), offline, atol=1e-9)


def test_unplayed_speaker_audio_is_silence_and_noise_has_its_level() -> None:
    """A microphone that runs before the speaker ever played hears only the room's noise."""
    path = EchoPath(RATE_HZ, RoomOptions(noise_dbfs=-40.0))
    heard = path.hear(0, RATE_HZ)
    assert 20 * np.log10(np.sqrt(np.mean(heard**2))) == pytest.approx(-40.0, abs=0.5)


def test_options_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="rt60_ms"):
        RoomOptions(rt60_ms=-1.0)
