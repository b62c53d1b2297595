"""Hands-free on a speaker the microphone hears: the whole App in the simulated room against the
emulator, whose voice detection is the server's (energy, dated back to the first loud frame).

The emulator answers with the user's own question played back (speech from espeak-ng), so what
the room carries back to the microphone is a voice, as on a real speaker.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from pilive.controls.events import ApplianceState
from pilive.emulator.options import EmulatorOptions
from pilive.emulator.vad import SENSITIVITY_OFFSET_DB, EnergyVad
from tests.support.emulator_rig import emulator_options, running
from tests.support.room_rig import RATE_HZ, in_room, room_config, speak, to_int16, write_track

QUESTION = "What is the weather like in Paris today?"
STOP = "Stop, I have another question about the garden."
FOLLOW_UP = "And what about tomorrow morning?"
SILENCE_MS = 500  # room_config's [live.vad]: the silence that ends a turn
PREFIX_PADDING_MS = 100  # ... and the speech that starts one


async def test_an_answer_played_while_the_user_is_silent_never_starts_a_turn(
    tmp_path: Path,
) -> None:
    """One question, then silence. With the echo cancelled (auto, in hands-free) or the
    microphone muted while the speaker plays (half-duplex, which STATUS states), the answer
    plays out and nothing else reaches the server's voice detection; the same room without
    either (echo "off") hears the daemon's own voice as the user, so the test's room does carry
    the echo back."""
    question = speak(QUESTION)
    runs = {}

    async def one(mode: str) -> None:
        work = tmp_path / mode
        write_track(work / "mic.wav", 12.0, [(0.5, question)])
        async with running(emulator_options()) as emu:
            config = room_config(work, emu, echo=f'mode = "{mode}"')
            async with in_room(config, emu) as room:
                await room.until(lambda: bool(room.noted("answer played out")), 20)
                if mode == "off":
                    await room.until(lambda: emu.recording.counters["turns"] >= 2, 10)
                else:
                    # The echo tail dies away and the server would have heard it by now.
                    await asyncio.sleep(1.5)
                status = room.app._status_text()
                runs[mode] = (emu.recording.counters["turns"], room.app.echo_plan.mode, status)

    await asyncio.gather(one("auto"), one("half-duplex"), one("off"))
    assert runs["auto"][:2] == (1, "cancel")
    assert runs["half-duplex"][:2] == (1, "half-duplex")
    # Half-duplex is said where the user looks: no talking over the answer.
    assert "echo half-duplex (configured): the microphone is muted" in runs["half-duplex"][2]
    assert "echo" not in runs["auto"][2]
    assert runs["off"][0] >= 2  # its own answer came back as a second "question"


async def test_talking_over_the_answer_interrupts_it_or_waits_as_activity_handling_says(
    tmp_path: Path,
) -> None:
    """The answer streams in real time; the user starts talking during it. With the default
    start-of-activity-interrupts the server's voice detection hears the user through the
    cancelled echo, sends `interrupted`, and the daemon flushes the speaker (a barge-in by
    voice, as by the button). With no-interruption the answer plays on and the user's turn is
    answered after it."""
    question, stop = speak(QUESTION), speak(STOP, "en-us+f3")
    # The answer (the question played back) starts about 0.9 s after the question ends and
    # lasts as long as it: the user cuts in 1.2 s into it and talks past its end.
    cut_in_s = 0.5 + len(question) / RATE_HZ + 0.9 + 1.2
    outcome = {}

    async def one(handling: str) -> None:
        work = tmp_path / handling
        write_track(work / "mic.wav", cut_in_s + 8.0, [(0.5, question), (cut_in_s, stop)])
        options = emulator_options(time_scale=1.0, reply_speedup=1.0, reply_delay_s=0.3)
        async with running(options) as emu:
            live = f'activity_handling = "{handling}"'
            async with in_room(room_config(work, emu, live=live), emu) as room:
                await room.until(lambda: emu.recording.counters["turns"] >= 2, 20)
                await room.until(lambda: room.app.conversation.state is ApplianceState.IDLE, 20)
                first = emu.recording.turn(None, 1)
                second = emu.recording.turn(None, 2)
                flushes = room.noted("barge-in: speaker flushed")
                outcome[handling] = (first.interrupted, second.source, len(flushes))
                if flushes:  # the flush came after the user started talking, not before
                    assert flushes[0] > room.mic_started_s + cut_in_s

    await asyncio.gather(one("start-of-activity-interrupts"), one("no-interruption"))
    assert outcome["start-of-activity-interrupts"] == (True, "vad", 1)
    assert outcome["no-interruption"] == (False, "vad", 0)


async def test_a_follow_up_right_after_the_answer_is_heard_whole(tmp_path: Path) -> None:
    """The user asks again as soon as the answer's last word has played: the server's turn holds
    the whole follow-up from its first syllable, as the same voice detection cuts it from the
    follow-up heard alone; nothing of the echo tail is taken for it and nothing of it is cut
    (half-duplex would mute its start for tail_ms)."""
    question, follow_up = speak(QUESTION), speak(FOLLOW_UP)
    options = emulator_options(time_scale=1.0, reply_speedup=4.0, reply_delay_s=0.3)
    _, spoken_s = voiced(question, options)
    # The answer (a 150 ms tone, then the question played back) starts after the closing silence,
    # the reply delay and about 0.1 s of buffering; the follow-up comes 50 ms after its last word.
    answer_starts_s = 0.5 + spoken_s + SILENCE_MS / 1000 + 0.3 + 0.1
    ask_s = answer_starts_s + 0.15 + spoken_s + 0.05
    write_track(tmp_path / "mic.wav", ask_s + 6.0, [(0.5, question), (ask_s, follow_up)])
    async with running(options) as emu, in_room(room_config(tmp_path, emu), emu) as room:
        await room.until(lambda: emu.recording.counters["turns"] >= 2, 25)
        await asyncio.sleep(1.0)
        assert emu.recording.counters["turns"] == 2
        heard = emu.recording.turn(None, 2)
        alone_start_s, alone_end_s = voiced(follow_up, options)
        alone_bytes = round((alone_end_s - alone_start_s + SILENCE_MS / 1000) * RATE_HZ) * 2
        # A clipped first syllable makes the heard turn shorter, echo taken for speech longer.
        assert abs(len(heard.audio) - alone_bytes) <= 2 * 640  # two 20 ms frames of slack


def voiced(speech: np.ndarray, options: EmulatorOptions) -> tuple[float, float]:
    """(first, last) second of `speech` the emulator's voice detection takes as speech."""
    vad = EnergyVad(
        RATE_HZ,
        options.vad_threshold_dbfs + SENSITIVITY_OFFSET_DB["START_SENSITIVITY_HIGH"],
        PREFIX_PADDING_MS,
        SILENCE_MS,
    )
    lead = RATE_HZ  # a second of silence before it
    padded = np.concatenate([np.zeros(lead), speech, np.zeros(2 * RATE_HZ)])
    events = vad.process(to_int16(padded).tobytes())
    start = next(e.offset_bytes for e in events if e.kind == "start") // 2 - lead
    end = next(e.offset_bytes for e in events if e.kind == "end") // 2 - lead
    return start / RATE_HZ, end / RATE_HZ - SILENCE_MS / 1000
