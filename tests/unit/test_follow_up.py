"""The follow-up window on synthetic audio: speech is a press, the first silence the release,
and a window nobody speaks into closes by itself; nothing here reads a clock."""

from __future__ import annotations

import math

import numpy as np

from pilive.follow_up import FollowUpWindow, Heard

RATE_HZ = 16000
CHUNK = 320  # 20 ms


def chunks(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + CHUNK * 2] for i in range(0, len(pcm), CHUNK * 2)]


def tone(seconds: float, level: float = 0.2) -> bytes:
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    return (np.sin(2 * math.pi * 300 * t) * level * 32767).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return bytes(int(seconds * RATE_HZ) * 2)


def heard_at(window: FollowUpWindow, pcm: bytes) -> list[tuple[float, Heard]]:
    """(seconds into `pcm`, what was heard), chunk by chunk as the microphone delivers it."""
    out = []
    for index, chunk in enumerate(chunks(pcm)):
        out += [((index + 1) * 0.02, h) for h in window.hear(chunk)]
    return out


def test_speech_is_a_press_and_the_first_silence_the_release() -> None:
    """Quiet, then 0.6 s of speech, then silence: a press ~0.1 s into the speech (the prefix
    padding), a release once 0.4 s of silence followed, and the window is closed after it."""
    window = FollowUpWindow(5.0, prefix_padding_ms=100, silence_ms=400)
    window.start(100.0)
    assert window.open and window.deadline_s == 105.0
    got = heard_at(window, silence(0.5) + tone(0.6) + silence(1.0) + tone(0.5))
    assert [h for _, h in got] == [Heard.PRESS, Heard.RELEASE]
    (press_s, _), (release_s, _) = got
    assert 0.5 < press_s <= 0.5 + 0.14
    assert 1.1 + 0.38 <= release_s <= 1.1 + 0.44
    assert not window.open


def test_a_window_nobody_speaks_into_closes_at_its_deadline() -> None:
    window = FollowUpWindow(3.0)
    window.start(10.0)
    assert heard_at(window, silence(2.0)) == []
    assert not window.expired(12.9)
    assert window.expired(13.0) and not window.open
    assert window.hear(tone(1.0)) == []  # closed: nothing is heard any more


def test_speech_under_way_outlives_the_deadline() -> None:
    """Once the reply has begun the deadline no longer applies: it ends at its silence."""
    window = FollowUpWindow(1.0, silence_ms=300)
    window.start(0.0)
    assert [h for _, h in heard_at(window, tone(0.5))] == [Heard.PRESS]
    assert not window.expired(5.0)
    assert [h for _, h in heard_at(window, tone(1.0) + silence(0.5))] == [Heard.RELEASE]


def test_low_sensitivity_needs_louder_speech() -> None:
    """start_sensitivity "low" raises the threshold 12 dB above "high": quiet speech (about
    -45 dBFS RMS) opens a turn at high sensitivity only."""
    quiet = tone(0.6, level=0.008)
    for sensitivity, expected in (("high", [Heard.PRESS]), ("low", [])):
        window = FollowUpWindow(5.0, sensitivity=sensitivity)
        window.start(0.0)
        assert [h for _, h in heard_at(window, quiet)] == expected


def noise(seconds: float, dbfs: float, seed: int = 1) -> bytes:
    """White noise at `dbfs` RMS: a fan, a cooker hood."""
    rms = 32768 * 10 ** (dbfs / 20)
    samples = np.random.default_rng(seed).normal(0, rms, int(seconds * RATE_HZ))
    return samples.clip(-32768, 32767).astype("<i2").tobytes()


def mixed(*parts: bytes) -> bytes:
    """The sum of equally long signals (speech over the room's noise)."""
    arrays = [np.frombuffer(p, "<i2").astype(np.int32) for p in parts]
    return np.clip(sum(arrays), -32768, 32767).astype("<i2").tobytes()


def heard_before(window: FollowUpWindow, pcm: bytes) -> None:
    for chunk in chunks(pcm):
        assert window.hear(chunk) == []  # no window open: only the floor hears it


def test_the_noise_floor_is_the_steady_noise_under_speech() -> None:
    """Steady noise at -40 dBFS reads as about -40; speech (a tone at -17 dBFS with pauses
    between its words) over noise at -55 leaves the floor at the noise, not the speech; digital
    silence is a floor too, far below any threshold; nothing is said before a whole second."""
    window = FollowUpWindow(5.0)
    heard_before(window, noise(0.9, -40.0))
    assert window.floor.level_dbfs is None
    heard_before(window, noise(1.2, -40.0, seed=2))
    level = window.floor.level_dbfs
    assert level is not None and -42.0 <= level <= -39.0
    talk = b"".join(tone(0.3) + silence(0.1) for _ in range(15))  # 6 s of words and pauses
    quiet_room = FollowUpWindow(5.0)
    heard_before(quiet_room, mixed(talk, noise(6.0, -55.0)))
    level = quiet_room.floor.level_dbfs
    assert level is not None and -57.0 <= level <= -53.0
    silent_room = FollowUpWindow(5.0)
    heard_before(silent_room, silence(2.0))
    assert silent_room.floor.level_dbfs is not None and silent_room.floor.level_dbfs < -150
    assert silent_room.threshold_now() == -51.0  # the fixed -45, moved by "high"


def test_a_noisy_room_opens_no_turn_but_a_voice_over_it_does() -> None:
    """A cooker hood at -38 dBFS, louder than the fixed threshold: without the floor the window
    would press at once and the turn would never fall silent. With it, the window hears the
    hood through to its deadline and closes; a voice 20 dB over the hood presses, and the
    return to the hood alone is its release."""
    hood = FollowUpWindow(4.0, prefix_padding_ms=100, silence_ms=400)
    heard_before(hood, noise(5.0, -38.0))
    # The quietest frame of a steady noise sits about a dB under its mean level.
    assert -38.0 + 10.0 - 2.0 <= hood.threshold_now() <= -38.0 + 10.0
    hood.start(0.0)
    assert heard_at(hood, noise(4.0, -38.0, seed=3)) == []
    assert hood.expired(4.0)

    hood.start(10.0)
    reply = mixed(tone(0.8, level=0.2), noise(0.8, -38.0, seed=4))
    got = heard_at(hood, noise(0.5, -38.0, seed=5) + reply + noise(1.0, -38.0, seed=6))
    assert [h for _, h in got] == [Heard.PRESS, Heard.RELEASE]

    fixed = FollowUpWindow(4.0, prefix_padding_ms=100, silence_ms=400)
    fixed.start(0.0)  # no floor heard yet: the fixed threshold, which the hood is above
    assert [h for _, h in heard_at(fixed, noise(2.0, -38.0, seed=3))] == [Heard.PRESS]
