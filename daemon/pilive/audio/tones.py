"""Earcons: short tones that say what the speaker is doing, synthesised with numpy.

No sound files to ship or lose. Each earcon is one to three soft sine notes (with a quiet octave
partial for warmth) on raised-cosine attack and release ramps, so it starts and ends at zero and
never clicks. Intervals are consonant: rising means "listening"/"up", falling means "done"/"down".
Peaks stay near -10 dBFS so an earcon is never louder than speech at the same volume.
Output: 24 kHz mono s16le bytes (the playback format), built once and cached.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from pilive.live.wire import OUTPUT_AUDIO_RATE_HZ

RATE_HZ = OUTPUT_AUDIO_RATE_HZ  # earcons play beside answers, at their rate
PEAK = 0.32  # of full scale, before the envelope

# name -> notes of (frequency_hz, start_ms, duration_ms, level 0..1)
_NOTES: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    # press: a quick rising fifth, A5 -> E6: "I'm listening".
    "press": ((880.00, 0, 70, 0.9), (1318.51, 55, 95, 1.0)),
    # release: the same fifth falling, E6 -> A5: "got it".
    "release": ((1318.51, 0, 70, 0.9), (880.00, 55, 95, 1.0)),
    # connected: a rising major triad C5 E5 G5: "ready".
    "connected": ((523.25, 0, 90, 0.8), (659.25, 70, 90, 0.85), (783.99, 140, 110, 1.0)),
    # offline: a falling fourth G5 -> D5, slower and lower: "lost the line".
    "offline": ((783.99, 0, 110, 0.9), (587.33, 100, 150, 1.0)),
    # error: a low falling minor third, repeated: distinct from every other earcon.
    "error": ((392.00, 0, 80, 1.0), (329.63, 90, 80, 1.0), (329.63, 170, 80, 0.8)),
    # muted: a low falling octave, C5 -> C4: "the microphone is off".
    "muted": ((523.25, 0, 80, 0.9), (261.63, 70, 170, 1.0)),
    # unmuted: the same octave rising, C4 -> C5: "listening is possible again".
    "unmuted": ((261.63, 0, 80, 0.9), (523.25, 70, 170, 1.0)),
    # alarm: three quick high notes, a rising major third twice: a timer rings (repeated).
    "alarm": ((1318.51, 0, 60, 0.9), (1661.22, 70, 60, 1.0), (1318.51, 140, 60, 0.9)),
    # tick: one short, dry high note, after a volume step: "this loud".
    "tick": ((1567.98, 0, 45, 0.8),),
    # thinking: one soft high blip.
    "thinking": ((1046.50, 0, 90, 0.6),),
}

EARCONS: tuple[str, ...] = tuple(_NOTES)
ATTACK_MS = 8.0
RELEASE_MS = 30.0


def _note(freq_hz: float, duration_ms: float, level: float) -> np.ndarray:
    n = round(RATE_HZ * duration_ms / 1000)
    t = np.arange(n) / RATE_HZ
    wave = np.sin(2 * math.pi * freq_hz * t) + 0.18 * np.sin(4 * math.pi * freq_hz * t)
    envelope = np.ones(n)
    attack = round(RATE_HZ * ATTACK_MS / 1000)
    release = min(round(RATE_HZ * RELEASE_MS / 1000), n - attack)
    envelope[:attack] = 0.5 - 0.5 * np.cos(np.linspace(0, math.pi, attack))
    envelope[n - release :] = 0.5 + 0.5 * np.cos(np.linspace(0, math.pi, release))
    # a gentle exponential decay between the ramps, like a struck bell rather than an organ
    envelope *= np.exp(-t / (duration_ms / 1000 * 1.5))
    result: np.ndarray = wave * envelope * level / 1.18
    return result


@functools.cache
def earcon(name: str) -> bytes:
    """The named earcon as 24 kHz mono s16le bytes (built on first use, then cached)."""
    try:
        notes = _NOTES[name]
    except KeyError:
        raise ValueError(f"unknown earcon {name!r}; known: {', '.join(EARCONS)}") from None
    end_ms = max(start + duration for _, start, duration, _ in notes)
    mix = np.zeros(round(RATE_HZ * end_ms / 1000))
    for freq_hz, start_ms, duration_ms, level in notes:
        note = _note(freq_hz, duration_ms, level)
        first = round(RATE_HZ * start_ms / 1000)
        mix[first : first + len(note)] += note
    pcm = np.clip(np.round(mix * PEAK * 32767), -32768, 32767).astype("<i2")
    return pcm.tobytes()


def duration_ms(name: str) -> float:
    return len(earcon(name)) / 2 / RATE_HZ * 1000
