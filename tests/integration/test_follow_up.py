"""The follow-up window end to end: after an answer the daemon listens without a press, its
speech becomes a turn the emulator answers, and a silent window sends nothing."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from pilive.controls.events import ApplianceState
from pilive.emulator import Emulator
from tests.integration.test_app import Running, app_config, start
from tests.support.emulator_rig import emulator_options, running
from tests.support.pulse_rig import write_wav

RATE_HZ = 16000
FOLLOW_UP = "follow_up_s = 4.0\nmin_press_ms = 100"
VAD = "[live.vad]\nprefix_padding_ms = 60\nsilence_duration_ms = 400\n"


@contextlib.asynccontextmanager
async def window_after_an_answer(tmp_path: Path) -> AsyncIterator[tuple[Emulator, Running]]:
    """A daemon with the follow-up window (4 s) and the microphone in tmp_path/mic.wav, after
    one pressed turn whose answer has played: its window has just opened."""
    async with running(emulator_options()) as emu:
        config = app_config(tmp_path, emu, VAD, conversation=FOLLOW_UP)
        async with start(config, emu.api_key) as r:
            await r.settled()
            await r.hold(1.0)
            await r.until(lambda: "LED follow_up" in r.timeline, timeout_s=15)
            yield emu, r


def bursts_wav(path: Path, *, every_s: float, burst_s: float, seconds: float = 60.0) -> None:
    """A microphone that hears `burst_s` of speech every `every_s`, silence in between (every_s
    0: silence throughout)."""
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    speech = np.sin(2 * math.pi * 300 * t) * 8000
    if every_s:
        speech *= (t % every_s) < burst_s
    else:
        speech *= 0
    write_wav(path, speech.astype("<i2"), RATE_HZ)


async def test_a_reply_after_the_answer_needs_no_press(tmp_path: Path) -> None:
    """One pressed turn; after its answer the window opens (the follow_up LED state), the next
    burst of speech starts a turn by itself and its first silence ends it: the emulator gets a
    second turn holding that speech and not much more, and answers it."""
    bursts_wav(tmp_path / "mic.wav", every_s=2.5, burst_s=0.6)
    async with window_after_an_answer(tmp_path) as (emu, r):
        await r.until(lambda: emu.recording.counters["turns"] >= 2, timeout_s=15)
        assert r.app.stats.presses == 2  # one pressed by the test, one by the window
        assert "follow-up: speech heard, the turn starts" in r.timeline
        await r.until(lambda: "follow-up: silence, the turn ends" in r.timeline)
        second = emu.recording.turn(None, 2)
        await r.until(lambda: second.completed, timeout_s=15)
        held_s = len(second.audio) / 2 / RATE_HZ
        # The burst (0.6 s), the pre-roll before it and the silence that ended it.
        assert 0.6 <= held_s <= 0.6 + 0.4 + 0.4 + 0.3
        samples = np.frombuffer(bytes(second.audio), "<i2")
        assert np.abs(samples).max() > 4000  # the speech is in it


async def test_a_silent_window_closes_and_sends_nothing(tmp_path: Path) -> None:
    """Nobody speaks after the answer: the window closes after follow_up_s, the LED is idle
    again, no second turn and no audio beyond the first turn reached the emulator."""
    bursts_wav(tmp_path / "mic.wav", every_s=0, burst_s=0)
    async with window_after_an_answer(tmp_path) as (emu, r):
        audio_after_turn = sum(len(c) for c in emu.recording.connections[-1].audio_chunks)
        await r.until(
            lambda: "follow-up window closed: nothing was said" in r.timeline, timeout_s=10
        )
        closed = r.timeline.index("follow-up window closed: nothing was said")
        await r.until(lambda: "LED idle" in r.timeline[closed:])
        assert r.state is ApplianceState.IDLE
        assert emu.recording.counters["turns"] == 1
        assert sum(len(c) for c in emu.recording.connections[-1].audio_chunks) == (audio_after_turn)


async def test_a_noisy_room_does_not_talk_to_the_model_by_itself(tmp_path: Path) -> None:
    """A room with a cooker hood running (steady noise at -36 dBFS, louder than the fixed
    speech threshold): after the pressed turn's answer the window opens with its threshold
    above the hood, hears nothing but the hood, and closes. No second turn: with the fixed
    threshold alone the hood would open one at once, and one after each answer for as long as
    it runs."""
    rng = np.random.default_rng(7)
    hood = rng.normal(0, 32768 * 10 ** (-36 / 20), 60 * RATE_HZ).clip(-32768, 32767)
    write_wav(tmp_path / "mic.wav", hood.astype("<i2"), RATE_HZ)
    async with window_after_an_answer(tmp_path) as (emu, r):
        opened = "follow-up: speech heard, the turn starts"
        closed = "follow-up window closed: nothing was said"
        await r.until(lambda: opened in r.timeline or closed in r.timeline, timeout_s=10)
        assert opened not in r.timeline, "the hood opened a turn"
        assert emu.recording.counters["turns"] == 1
        assert r.app.stats.presses == 1
        (listening,) = [t for t in r.timeline if t.startswith("listening 4 s")]
        threshold_dbfs = int(listening.split("above ")[1].split(" dBFS")[0])
        assert -30 <= threshold_dbfs <= -25  # about 10 dB over the hood, not -51


async def test_the_answer_heard_does_not_lift_the_noise_floor(tmp_path: Path) -> None:
    """Only what the microphone hears while no answer plays sets the follow-up window's noise
    floor: noise heard while idle does (-40 dBFS reads as about -40), but 6 s of loud sound
    with no quiet 20 ms in it, heard while the answer plays (the speaker's own voice in a
    reverberant room, echo cancelling off), does not. Heard, it would lift the threshold of
    the window opening right after the answer to about -20 dBFS, over a normal reply."""
    bursts_wav(tmp_path / "mic.wav", every_s=0, burst_s=0)
    rng = np.random.default_rng(3)

    def noise(dbfs: float) -> list[bytes]:
        samples = rng.normal(0, 32768 * 10 ** (dbfs / 20), 6 * RATE_HZ).clip(-32768, 32767)
        pcm = samples.astype("<i2").tobytes()
        return [pcm[i : i + 640] for i in range(0, len(pcm), 640)]

    async with running(emulator_options()) as emu:
        config = app_config(tmp_path, emu, VAD, conversation=FOLLOW_UP)
        async with start(config, emu.api_key) as r:
            await r.settled()
            household, window = r.app.household, r.app.household.follow_up
            assert window is not None
            for chunk in noise(-40.0):  # as the microphone delivers it, with no await between
                household.hear(chunk)
            idle_floor_dbfs = window.floor.level_dbfs
            assert idle_floor_dbfs is not None and -43 <= idle_floor_dbfs <= -39
            await r.hold(2.0)  # the answer echoes it: 2 s of playing
            await r.until(lambda: r.state is ApplianceState.SPEAKING, timeout_s=15)
            before_dbfs = window.floor.level_dbfs  # the silent room's, heard during the turn
            for chunk in noise(-30.0):
                household.hear(chunk)
            assert window.floor.level_dbfs == before_dbfs
            await r.until(lambda: "LED follow_up" in r.timeline, timeout_s=15)
