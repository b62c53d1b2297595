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
