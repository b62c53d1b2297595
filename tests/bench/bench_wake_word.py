"""The wake word's models side by side on the simulated room: misses and false triggers.

Every model hears what the daemon's listener hears: the room's microphone (RT60 300 ms, 40 ms
device latency, -6 dB, noise at -70 dBFS) through the echo path's WebRTC canceller (AEC3, the
daemon's "webrtc"), in 10 ms frames, with the same decisions (`audio.wake.WakeModel`) and the same
rules (`wake_word.WakeTurns`: a word is a rising edge while armed; after a word it re-arms once
the question's turn would be over, here 3 s later).

- misses: espeak-ng says the model's word N times (voices, speeds and pitches vary), each with a
  second of silence on both sides, "quiet" (nothing plays) and "over an answer" (the speaker
  plays an answer at -20 dBFS and the word is said 4 s into it); a word is caught when the
  rules give a word between its onset and 1.5 s after its end;
- false triggers per hour: an hour (--quick: 5 minutes) of the room playing answers (espeak-ng
  sentences in several voices, with pauses), with no word said: every word the rules give is a
  false trigger. Shown with the echo cancelled (as the daemon runs) beside the raw microphone;
- cpu_us_per_frame: the model's thread CPU per 10 ms frame (features + TensorFlow Lite), median
  over 1 s blocks;
- rss_added_mb: what the package, one model and 3 s of frames add to a fresh interpreter that
  has numpy loaded already (as a daemon with the echo path, which a wake word turns on, has).

Run: python -m tests.bench.bench_wake_word [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from pilive.audio.cancellers import FRAME_SAMPLES, RATE_HZ, open_processor
from pilive.audio.room import RoomOptions, echo_of
from pilive.wake_word import FRAME_BYTES, WakeTurns
from tests.support.room_rig import speak, to_int16

ROOM = RoomOptions(latency_ms=40.0, rt60_ms=300.0, echo_gain_db=-6.0, noise_dbfs=-70.0)
MODELS = {"okay_nabu": "Okay, Nabu.", "alexa": "Alexa."}
VOICES = ("en-us", "en-us+f3", "en", "en-us+m3", "en-gb+f2", "en-us+f4", "en+m7")
SPEEDS_WPM = (175, 140, 200, 160)
PITCHES = (50, 35, 65, 45, 55)
ANSWERS = (
    "The weather today is mostly sunny with a light breeze from the west.",
    "In the afternoon clouds will gather and there may be a shower before evening.",
    "Tomorrow looks brighter, with temperatures a little above the average for the season.",
    "Your timer for the pasta has eight minutes left.",
    "I have set an alarm for seven thirty tomorrow morning.",
    "The capital of Australia is Canberra, not Sydney as many people think.",
    "A tablespoon holds about fifteen millilitres, three teaspoons.",
    "Sure. Here is a recipe for a simple tomato soup with basil and a little cream.",
    "The next train to the city leaves at ten past four from platform two.",
    "Mount Everest is about eight thousand eight hundred and forty nine metres high.",
    "Okay, I will remind you about the dentist on Thursday at nine.",
    "The nearest pharmacy is open until eight o'clock this evening.",
    "Light travels about three hundred thousand kilometres every second.",
    "Your shopping list has milk, bread, eggs, apples and coffee on it.",
    "Next week's forecast shows rain on Monday and sunshine from Wednesday on.",
    "Alexander the Great was taught by Aristotle as a young man.",
    "Nobody knows exactly how many languages there are, but it is more than seven thousand.",
    "Okay, now playing the news from the radio.",
)
REARM_S = 3.0  # after a word, the question's turn: the rules re-arm once it is over
CAUGHT_AFTER_S = 1.5


def speaker_variant(i: int) -> dict[str, Any]:
    """The i-th way of saying the word: voice, speed (words per minute) and pitch vary."""
    return {
        "voice": VOICES[i % len(VOICES)],
        "words_per_minute": SPEEDS_WPM[i % len(SPEEDS_WPM)],
        "pitch": PITCHES[i % len(PITCHES)],
    }


class Ear:
    """One model with the daemon's rules, fed 10 ms int16 frames."""

    def __init__(self, name: str) -> None:
        from pilive.audio.wake import WakeModel

        self.model = WakeModel(name)
        self.turns = WakeTurns(local_end=False)
        self.words_at_s: list[float] = []
        self._rearm_at = 0
        self.cpu_s: list[float] = []

    def hear(self, pcm: np.ndarray) -> None:
        data = pcm.astype("<i2").tobytes()
        started = time.thread_time()
        for i in range(0, len(data) - FRAME_BYTES + 1, FRAME_BYTES):
            frame = data[i : i + FRAME_BYTES]
            position = self.turns.position_bytes
            if not self.turns.armed and position >= self._rearm_at:
                self.turns.rearm()
            for event in self.turns.frame(frame, self.model.decide(frame)):
                if event.kind == "word":
                    self.words_at_s.append(position / 2 / RATE_HZ)
                    self._rearm_at = position + int(REARM_S * RATE_HZ) * 2
        self.cpu_s.append((time.thread_time() - started) / max(1, len(data) // FRAME_BYTES))


class Canceller:
    """WebRTC AEC3 as the daemon's echo path runs it, over a continuous stream."""

    def __init__(self) -> None:
        self.processor = open_processor("webrtc")

    def process(self, mic: np.ndarray, far: np.ndarray) -> np.ndarray:
        near16, far16 = to_int16(mic), to_int16(far)
        out = np.zeros_like(near16)
        for i in range(0, len(near16) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            out[i : i + FRAME_SAMPLES] = self.processor.process(
                near16[i : i + FRAME_SAMPLES].copy(), far16[i : i + FRAME_SAMPLES].copy()
            )
        return out


def room_noise(samples: int, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(rng.standard_normal(samples) * 10 ** (ROOM.noise_dbfs / 20))


def misses(name: str, phrase: str, count: int, answer: np.ndarray) -> dict[str, Any]:
    """The word said `count` times, quiet and over an answer; each run a fresh ear."""
    rng = np.random.default_rng(7)
    missed = {"quiet": 0, "over_answer": 0}
    which: dict[str, list[str]] = {"quiet": [], "over_answer": []}
    for i in range(count):
        word = speak(phrase, dbfs=-20.0, **speaker_variant(i))
        for condition in missed:
            # Over an answer the word comes 4 s in: the canceller has adapted to the room, as it
            # has in a daemon that played answers before.
            lead = int((4.0 if condition == "over_answer" else 1.5) * RATE_HZ)
            total = lead + len(word) + int(2.5 * RATE_HZ)
            near = np.zeros(total)
            near[lead : lead + len(word)] = word
            far = np.zeros(total)
            if condition == "over_answer":
                played = answer[:total]
                far[: len(played)] = played
            mic = near + echo_of(far, RATE_HZ, ROOM) + room_noise(total, rng)
            heard = Canceller().process(mic, far)
            ear = Ear(name)
            ear.hear(heard)
            onset_s = lead / RATE_HZ
            end_s = (lead + len(word)) / RATE_HZ + CAUGHT_AFTER_S
            if not any(onset_s <= at <= end_s for at in ear.words_at_s):
                missed[condition] += 1
                variant = speaker_variant(i)
                which[condition].append(
                    f"{variant['voice']} {variant['words_per_minute']} wpm p{variant['pitch']}"
                )
    return {"said": count, **missed, "missed_voices": which}


def answers_for(seconds: float, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Minute-long blocks of answers, in several voices, with 0.5-3 s pauses between them."""
    voiced = [
        speak(text, VOICES[(i + shift) % len(VOICES)], dbfs=-20.0)
        for shift in (0, 3)  # each text in two voices
        for i, text in enumerate(ANSWERS)
    ]
    block = 60 * RATE_HZ
    left = int(seconds * RATE_HZ)
    while left > 0:
        out = np.zeros(min(block, left))
        at = 0
        while at < len(out):
            speech = voiced[int(rng.integers(len(voiced)))]
            take = speech[: len(out) - at]
            out[at : at + len(take)] = take
            at += len(take) + int(rng.uniform(0.5, 3.0) * RATE_HZ)
        yield out
        left -= len(out)


def false_triggers(seconds: float) -> dict[str, Any]:
    """The room plays answers for `seconds`; each model, with and without the canceller."""
    rng = np.random.default_rng(11)
    canceller = Canceller()
    ears = {(name, cancelled): Ear(name) for name in MODELS for cancelled in (True, False)}
    for far in answers_for(seconds, rng):
        mic = echo_of(far, RATE_HZ, ROOM) + room_noise(len(far), rng)
        cancelled = canceller.process(mic, far)
        raw = to_int16(mic)
        for (_, is_cancelled), ear in ears.items():
            ear.hear(cancelled if is_cancelled else raw)
    hours = seconds / 3600
    result: dict[str, Any] = {"hours": hours}
    for (name, is_cancelled), ear in ears.items():
        key = "cancelled" if is_cancelled else "raw"
        result.setdefault(name, {})[key] = {
            "triggers": len(ear.words_at_s),
            "per_hour": round(len(ear.words_at_s) / hours, 2),
        }
        if is_cancelled:
            result[name]["cpu_us_per_frame"] = round(statistics.median(ear.cpu_s) * 1e6, 1)
    return result


RSS_PROBE = """
import sys
from pilive.audio.wake import WakeModel
from pilive.wake_word import FRAME_BYTES

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

import numpy, pilive.audio.vad  # what a daemon with the echo path has loaded anyway
before = rss_kb()
model = WakeModel(sys.argv[1])
for _ in range(300):
    model.decide(bytes(FRAME_BYTES))
print(rss_kb() - before)
"""


def added_rss_mb(name: str) -> float:
    """What loading the package and one model, and 3 s of frames, add to a fresh interpreter's
    RSS that has numpy loaded already (as a daemon with the echo path has)."""
    result = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, name], capture_output=True, text=True, check=True
    )
    return round(int(result.stdout.strip()) / 1024, 1)


def main(quick: bool = False) -> dict[str, Any]:
    count = 5 if quick else 15
    seconds = 300.0 if quick else 3600.0
    answer = np.concatenate([speak(" ".join(ANSWERS[:3]), "en-us+f3", dbfs=-20.0)] * 2)
    figures: dict[str, Any] = {"phrases": count, "room": {"rt60_ms": ROOM.rt60_ms}}
    for name, phrase in MODELS.items():
        figures[name] = {"misses": misses(name, phrase, count, answer)}
        print(f"{name:10s} misses {figures[name]['misses']}")
    started = time.monotonic()
    found = false_triggers(seconds)
    for name in MODELS:
        figures[name]["false_triggers"] = {k: found[name][k] for k in ("cancelled", "raw")}
        figures[name]["cpu_us_per_frame"] = found[name]["cpu_us_per_frame"]
        print(f"{name:10s} false triggers over {found['hours']:.2f} h: {found[name]}")
    for name in MODELS:
        figures[name]["rss_added_mb"] = added_rss_mb(name)
        print(f"{name:10s} adds {figures[name]['rss_added_mb']} MB RSS")
    figures["hours"] = found["hours"]
    figures["seconds_for_the_hour"] = round(time.monotonic() - started, 1)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    sys.exit(print(main(parser.parse_args().quick)))
