"""The wake word in the simulated room: espeak-ng says "Okay Nabu" and a question into the room's
microphone, the whole App hears it with pymicro-wakeword against the emulator.

What reached the emulator is found in the microphone's WAV by cross-correlation, so "nothing
before the word" and "the question whole" are checked on the audio itself, not on log lines.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from pilive.controls.events import ApplianceState, ButtonPressed, ButtonReleased
from pilive.follow_up import SENSITIVITY_OFFSET_DB, THRESHOLD_DBFS
from pilive.live.events import LinkState
from tests.support.emulator_rig import emulator_options, running
from tests.support.room_rig import RATE_HZ, in_room, room_config, speak, to_int16, write_track

pytest.importorskip("pymicro_wakeword", reason="pymicro-wakeword has wheels for x86-64/aarch64")

BEFORE = "Remember to buy milk and bread."
WORD = "Okay, Nabu."
QUESTION = "What is the weather like in Paris today?"
SILENCE_MS = 500  # room_config's [live.vad] silence_duration_ms: the first silence ends the turn
# Where the daemon's energy detector takes speech to start (start_sensitivity "high").
THRESHOLD = 10 ** ((THRESHOLD_DBFS + SENSITIVITY_OFFSET_DB["high"]) / 20)


def onset_s(speech: np.ndarray, at_s: float) -> float:
    """Where `speech` placed at `at_s` first gets loud (RMS per 20 ms over the threshold)."""
    frames = speech[: len(speech) // 320 * 320].reshape(-1, 320)
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > THRESHOLD)
    return at_s + loud[0] * 320 / RATE_HZ


def end_s(speech: np.ndarray, at_s: float) -> float:
    frames = speech[: len(speech) // 320 * 320].reshape(-1, 320)
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > THRESHOLD)
    return at_s + (loud[-1] + 1) * 320 / RATE_HZ


def found_at_s(received: bytes, track: np.ndarray) -> float:
    """Where the first second of `received` sits in `track` (seconds), by cross-correlation."""
    head = np.frombuffer(received[: 2 * RATE_HZ], dtype="<i2").astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(track) + len(head))))
    spectrum = np.fft.rfft(track, size) * np.conj(np.fft.rfft(head, size))
    correlation = np.fft.irfft(spectrum, size)[: len(track) - len(head)]
    return float(np.argmax(correlation)) / RATE_HZ


def make_track(path_dir: Path, *, word_at_s: float) -> tuple[np.ndarray, dict[str, float]]:
    """Speech before the word (never to be sent), the word, then the question after a pause
    long enough for the press earcon to play in it."""
    before, word, question = speak(BEFORE, "en-us+f3"), speak(WORD), speak(QUESTION)
    question_at_s = end_s(word, word_at_s) + 1.0
    utterances = [(0.5, before), (word_at_s, word), (question_at_s, question)]
    marks = {
        "before_end": end_s(before, 0.5),
        "word": onset_s(word, word_at_s),
        "question_end": end_s(question, question_at_s),
    }
    track = np.zeros(int((question_at_s + 12) * RATE_HZ))
    for at_s, speech in utterances:
        start = int(at_s * RATE_HZ)
        track[start : start + len(speech)] += speech
    write_track(path_dir / "mic.wav", len(track) / RATE_HZ, utterances)
    return to_int16(track).astype(np.float64), marks


async def test_the_word_starts_a_push_to_talk_turn_that_holds_it_and_the_question_only(
    tmp_path: Path,
) -> None:
    """Push-to-talk with wake_word = "okay_nabu" in the room, no button touched: the word starts
    exactly one turn (activityStart, the press earcon); what the emulator received, all of it,
    begins at the word's first loud frame (the speech two seconds before it was never sent) and
    runs past the question's last word; the first silence after it ended the turn (activityEnd,
    answered), well before max_press_s."""
    track, marks = make_track(tmp_path, word_at_s=3.5)
    async with running(emulator_options()) as emu:
        config = room_config(
            tmp_path,
            emu,
            conversation='mode = "push-to-talk"\nwake_word = "okay_nabu"',
        )
        async with in_room(config, emu) as room:
            await room.until(lambda: bool(room.noted("answer played out")), 30)
            await room.until(lambda: room.app.conversation.state is ApplianceState.IDLE, 10)
            # The model says yes for a few hundred ms: one word, one turn.
            assert len(room.noted("wake word heard")) == 1
            assert len(room.noted("wake word: silence, the turn ends")) == 1
            assert room.app.echo_plan.mode == "cancel"  # auto: heard over the answer
            received = emu.recording.audio_bytes()
            assert emu.recording.counters["turns"] == 1
            turn = emu.recording.turn(None, 1)
            assert bytes(turn.audio) == received  # nothing was sent outside the word's turn
            heard_s = len(received) / 2 / RATE_HZ
            at_s = found_at_s(received, track)
            assert marks["word"] - 0.03 <= at_s <= marks["word"] + 0.03, (at_s, marks)
            assert at_s > marks["before_end"] + 1.0  # the speech before it: not sent
            ends_s = at_s + heard_s
            assert ends_s >= marks["question_end"], (ends_s, marks)
            assert ends_s <= marks["question_end"] + SILENCE_MS / 1000 + 1.0, (ends_s, marks)
            assert len(room.noted("activityStart sent")) == 1
            assert len(room.noted("earcon press")) == 1


async def test_hands_free_keeps_the_microphone_on_the_device_until_the_word(
    tmp_path: Path,
) -> None:
    """Hands-free with a wake word: nothing is streamed before the word (the speech before it
    never reaches the server); at the word the microphone opens with the word's pre-roll, the
    server's voice detection cuts the turn (source "vad") and answers, and the microphone
    closes again (the stream ends: audioStreamEnd)."""
    track, marks = make_track(tmp_path, word_at_s=3.5)
    async with running(emulator_options()) as emu:
        config = room_config(
            tmp_path,
            emu,
            conversation='mode = "hands-free"\nwake_word = "okay_nabu"',
        )
        async with in_room(config, emu) as room:
            await room.until(lambda: bool(room.noted("wake word heard")), 20)
            await room.until(lambda: bool(room.noted("answer played out")), 30)
            await room.until(
                lambda: any(c.audio_stream_ends for c in emu.recording.connections), 10
            )
            assert emu.recording.counters["turns"] == 1
            assert emu.recording.turn(None, 1).source == "vad"
            received = emu.recording.audio_bytes()
            at_s = found_at_s(received, track)
            assert marks["word"] - 0.03 <= at_s <= marks["word"] + 0.03, (at_s, marks)
            assert not room.app.conversation.mic_open


async def test_no_word_is_heard_while_the_privacy_mute_is_on(tmp_path: Path) -> None:
    """Muted (a remote mute kept across the restart): the word and the question are said in the
    room, but the microphone is closed at its source, so the listener is fed nothing, no word
    is heard, no turn starts and nothing reaches the emulator."""
    make_track(tmp_path, word_at_s=1.0)
    state = tmp_path / "state"
    state.mkdir()
    kept = {"version": 1, "mute": {"button": False, "remote": True}, "volume_percent": 80}
    (state / "settings.json").write_text(json.dumps(kept))
    async with running(emulator_options()) as emu:
        config = room_config(
            tmp_path, emu, conversation='mode = "push-to-talk"\nwake_word = "okay_nabu"'
        )
        async with in_room(config, emu) as room:
            await room.until(lambda: bool(room.noted("ready")), 10)
            assert room.app.household.muted
            await asyncio.sleep(5.0)  # as long as the word and the question take
            assert room.app.wake is not None and room.app.wake.fed_bytes == 0
            assert not room.noted("wake word heard")
            assert emu.recording.counters["turns"] == 0


async def test_the_word_said_during_the_answer_stops_it_as_a_press_does(tmp_path: Path) -> None:
    """Push-to-talk: the word, a question, and while the answer (the question played back, in
    real time) plays, the word again in another voice: the speaker is flushed (a barge-in, as by
    the button) after the second word began, and the second word starts the second turn."""
    word, question = speak(WORD), speak(QUESTION)
    again = speak(WORD, "en-us+f3", dbfs=-14.0)
    question_at_s = end_s(word, 3.5) + 1.0
    # The answer starts about a second after the question (the silence that ends the turn, the
    # reply's delay) and lasts as long as the turn: the word comes again 2 s into it.
    again_at_s = end_s(question, question_at_s) + 3.0
    write_track(
        tmp_path / "mic.wav",
        again_at_s + 12.0,
        [(3.5, word), (question_at_s, question), (again_at_s, again)],
    )
    options = emulator_options(time_scale=1.0, reply_speedup=1.0, reply_delay_s=0.3)
    async with running(options) as emu:
        config = room_config(
            tmp_path, emu, conversation='mode = "push-to-talk"\nwake_word = "okay_nabu"'
        )
        async with in_room(config, emu) as room:
            await room.until(lambda: len(room.noted("wake word heard")) >= 2, 30)
            await room.until(lambda: emu.recording.counters["turns"] >= 2, 20)
            flushes = room.noted("barge-in: speaker flushed")
            assert len(flushes) == 1
            assert flushes[0] > room.mic_started_s + again_at_s
            assert room.noted("wake word heard")[1] > room.mic_started_s + again_at_s


async def test_a_press_still_sends_only_its_own_pre_roll(tmp_path: Path) -> None:
    """With a wake word the microphone keeps about 2 s for the word's turn; a button press
    still sends only its own pre-roll (preroll_ms + min_press_ms, 450 ms): what the emulator
    received begins about 0.3 s before the press, not 2 s before it."""
    before, question = speak(BEFORE, "en-us+f3"), speak(QUESTION)
    write_track(tmp_path / "mic.wav", 14.0, [(0.5, before), (2.6, question)])
    track = np.zeros(14 * RATE_HZ)
    for at_s, speech in ((0.5, before), (2.6, question)):
        track[int(at_s * RATE_HZ) : int(at_s * RATE_HZ) + len(speech)] += speech
    track = to_int16(track).astype(np.float64)
    async with running(emulator_options()) as emu:
        config = room_config(
            tmp_path, emu, conversation='mode = "push-to-talk"\nwake_word = "okay_nabu"'
        )
        async with in_room(config, emu) as room:
            await room.until(lambda: room.app.link.status.state is LinkState.CONNECTED, 10)
            await room.until(lambda: room.app.capture.chunks > 0, 10)
            loop = asyncio.get_running_loop()
            press_at = room.mic_started_s + 3.0
            await asyncio.sleep(max(0.0, press_at - loop.time()))
            pressed_track_s = loop.time() - room.mic_started_s
            room.app._on_control_event(ButtonPressed(loop.time()))
            await asyncio.sleep(1.5)
            room.app._on_control_event(ButtonReleased(loop.time()))
            await room.until(lambda: emu.recording.counters["turns"] == 1, 10)
            received = emu.recording.audio_bytes()
            at_s = found_at_s(received, track)
            assert pressed_track_s - 0.8 <= at_s <= pressed_track_s, (at_s, pressed_track_s)
            assert not room.noted("wake word heard")


async def test_a_question_that_ends_before_the_minimum_press_still_ends_the_turn(
    tmp_path: Path,
) -> None:
    """Push-to-talk with min_press_ms = 5000 (its documented maximum): the word's press becomes a
    turn only 5 s after the word, after the question's silence was heard. That end is kept until
    the turn starts, then ends it: one turn, holding the word and the whole question, answered,
    and not held open until max_press_s (60 s) with the room streaming."""
    track, marks = make_track(tmp_path, word_at_s=3.5)
    async with running(emulator_options()) as emu:
        config = room_config(
            tmp_path,
            emu,
            conversation='mode = "push-to-talk"\nwake_word = "okay_nabu"\nmin_press_ms = 5000',
        )
        async with in_room(config, emu) as room:
            await room.until(lambda: bool(room.noted("wake word heard")), 20)
            await room.until(lambda: bool(room.noted("answer played out")), 30)
            assert emu.recording.counters["turns"] == 1
            assert len(room.noted("wake word: silence, the turn ends")) == 1
            received = emu.recording.audio_bytes()
            at_s = found_at_s(received, track)
            assert marks["word"] - 0.03 <= at_s <= marks["word"] + 0.03, (at_s, marks)
            assert at_s + len(received) / 2 / RATE_HZ >= marks["question_end"]
