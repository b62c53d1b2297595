"""Earcons: short tones that say what the speaker is doing, synthesised in plain Python.

No sound files to ship or lose. Each earcon is one to three soft sine notes (with a quiet octave
partial for warmth) on raised-cosine attack and release ramps, so it starts and ends at zero and
never clicks. Intervals are consonant: rising means "listening"/"up", falling means "done"/"down".
Peaks stay near -10 dBFS so an earcon is never louder than speech at the same volume.
Output: 24 kHz mono s16le bytes (the playback format), built once and cached.

No numpy here: a daemon whose speaker takes 24 kHz and whose camera is off never loads it (about
13 MB). The samples are the ones numpy computed before, bit for bit; an earcon takes a few
milliseconds to build, which `Playback` does on its device thread, never on the event loop.
"""

from __future__ import annotations

import array
import functools
import math
import sys

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


def _note(freq_hz: float, duration_ms: float, level: float) -> list[float]:
    n = round(RATE_HZ * duration_ms / 1000)
    attack = round(RATE_HZ * ATTACK_MS / 1000)
    release = min(round(RATE_HZ * RELEASE_MS / 1000), n - attack)
    omega = 2 * math.pi * freq_hz
    # a gentle exponential decay between the ramps, like a struck bell rather than an organ
    decay_s = duration_ms / 1000 * 1.5
    scale = level / 1.18
    sin, cos, exp, pi = math.sin, math.cos, math.exp, math.pi
    out = [0.0] * n
    for i in range(n):
        t = i / RATE_HZ
        if i < attack:  # raised-cosine ramps: the note starts and ends at zero
            ramp = 0.5 - 0.5 * cos(pi * i / (attack - 1))
        elif i >= n - release:
            ramp = 0.5 + 0.5 * cos(pi * (i - n + release) / (release - 1))
        else:
            ramp = 1.0
        wave = sin(omega * t) + 0.18 * sin(2 * omega * t)
        out[i] = wave * (ramp * exp(-t / decay_s)) * scale
    return out


def check_name(name: str) -> None:
    """ValueError, naming the known earcons, unless `name` is one (without building it)."""
    if name not in _NOTES:
        raise ValueError(f"unknown earcon {name!r}; known: {', '.join(EARCONS)}")


@functools.cache
def earcon(name: str, gain: float = 1.0) -> bytes:
    """The named earcon as 24 kHz mono s16le bytes (built on first use, then cached); `gain`
    (0..1) scales the finished samples, rounding toward zero."""
    check_name(name)
    notes = _NOTES[name]
    end_ms = max(start + duration for _, start, duration, _ in notes)
    mix = [0.0] * round(RATE_HZ * end_ms / 1000)
    for freq_hz, start_ms, duration_ms, level in notes:
        first = round(RATE_HZ * start_ms / 1000)
        for i, value in enumerate(_note(freq_hz, duration_ms, level), first):
            mix[i] += value
    full_scale = PEAK * 32767
    pcm = array.array("h", [max(-32768, min(32767, round(v * full_scale))) for v in mix])
    if gain != 1.0:
        pcm = array.array("h", [int(sample * gain) for sample in pcm])
    if sys.byteorder == "big":
        pcm.byteswap()  # s16le on the wire and on the device
    return pcm.tobytes()


def duration_ms(name: str) -> float:
    return len(earcon(name)) / 2 / RATE_HZ * 1000
