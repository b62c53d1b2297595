"""The wake word's pure rules on synthetic audio and decisions (wake_word.WakeTurns), the trim of
a turn's pre-roll, and the hands-free conversation the word opens (Conversation.wake_gated).

The audio is tones and silence at exact levels, the model's decisions are given per 10 ms frame:
what is tested is the logic between the model and the press, not the model.
"""

from __future__ import annotations

import numpy as np
import pytest

from pilive.conversation import (
    Conversation,
    Earcon,
    FlushPlayback,
    Journal,
    PlayAudio,
    PlayEarcon,
    ShowState,
    State,
    Timing,
)
from pilive.live.events import (
    AudioChunk,
    FunctionCall,
    LinkState,
    TextPart,
    ToolCall,
    TurnComplete,
)
from pilive.wake_word import (
    BYTES_PER_S,
    FRAME_BYTES,
    LOOKBACK_MS,
    QUESTION_WAIT_S,
    WakeEvent,
    WakeTurns,
    describe,
    missing_package,
    trim_preroll,
)

RATE_HZ = 16000
LOUD_DBFS = -20.0
SILENCE_MS = 500


def tone(seconds: float, dbfs: float = LOUD_DBFS) -> bytes:
    n = round(seconds * RATE_HZ)
    amplitude = 10 ** (dbfs / 20) * np.sqrt(2) * 32768
    samples = amplitude * np.sin(2 * np.pi * 440 * np.arange(n) / RATE_HZ)
    return np.round(samples).astype("<i2").tobytes()


def quiet(seconds: float) -> bytes:
    return bytes(round(seconds * RATE_HZ) * 2)


class Feed:
    """Drives WakeTurns frame by frame; `decide(frame_index)` is the model's say for a frame
    (None between decisions, as the model decides every third frame)."""

    def __init__(self, turns: WakeTurns) -> None:
        self.turns = turns
        self.events: list[WakeEvent] = []
        self.detecting = False

    def audio(self, pcm: bytes, *, detecting: bool | None = None) -> list[WakeEvent]:
        if detecting is not None:
            self.detecting = detecting
        got: list[WakeEvent] = []
        for i in range(0, len(pcm), FRAME_BYTES):
            frame_index = self.turns.position_bytes // FRAME_BYTES
            decision = self.detecting if frame_index % 3 == 2 else None
            got += self.turns.frame(pcm[i : i + FRAME_BYTES], decision)
        self.events += got
        return got


def push_to_talk() -> Feed:
    return Feed(WakeTurns(local_end=True, silence_ms=SILENCE_MS))


def test_a_detection_storm_is_one_word_and_nothing_more_until_re_armed() -> None:
    """The model says yes for 400 ms in a row: one word. Further yes-runs while the turn runs are
    not words (one turn at a time); after `rearm` a word needs a new rising edge, so re-arming
    in the middle of a yes-run starts nothing either."""
    feed = push_to_talk()
    feed.audio(quiet(0.5))
    words = feed.audio(tone(0.4), detecting=True)
    assert [e.kind for e in words] == ["word"]
    feed.audio(quiet(0.2), detecting=False)
    assert feed.audio(tone(0.3), detecting=True) == []  # not re-armed: a turn is under way
    feed.turns.rearm()
    assert feed.audio(tone(0.3)) == []  # still the same yes-run
    assert [e.kind for e in feed.audio(tone(0.1), detecting=False)] == []
    assert [e.kind for e in feed.audio(tone(0.1), detecting=True)] == ["word"]
    assert feed.turns.words == 2


def test_the_turn_begins_at_the_words_first_loud_frame() -> None:
    """1 s of silence, a 0.8 s "word", the detection 0.2 s after it: the word event dates the
    turn back to the word's first loud frame (1 s in), to within one 20 ms frame."""
    feed = push_to_talk()
    feed.audio(quiet(1.0) + tone(0.8))
    (word,) = feed.audio(quiet(0.2), detecting=True)
    assert word.kind == "word"
    assert abs(word.offset_bytes - 1.0 * BYTES_PER_S) <= 0.02 * BYTES_PER_S


def test_short_gaps_inside_the_word_do_not_move_its_start() -> None:
    """ "O-kay, Na-bu": an 80 ms burst, a 40 ms gap, the rest of the word, a 140 ms comma pause
    and the second word: the turn begins at the first burst, not after a gap."""
    feed = push_to_talk()
    feed.audio(quiet(1.0) + tone(0.08) + quiet(0.04) + tone(0.3) + quiet(0.14) + tone(0.5))
    (word,) = feed.audio(quiet(0.2), detecting=True)
    assert abs(word.offset_bytes - 1.0 * BYTES_PER_S) <= 0.02 * BYTES_PER_S


def test_speech_before_the_word_is_not_part_of_its_turn() -> None:
    """Speech, a pause longer than the silence that ends speech, then the word: the turn begins
    at the word, not at the earlier speech."""
    feed = push_to_talk()
    feed.audio(quiet(0.3) + tone(0.5) + quiet(0.7) + tone(0.7))
    (word,) = feed.audio(quiet(0.2), detecting=True)
    assert abs(word.offset_bytes - 1.5 * BYTES_PER_S) <= 0.02 * BYTES_PER_S


def test_the_turn_never_reaches_further_back_than_the_lookback() -> None:
    """Talking without a pause for 4 s and then the word: the turn begins LOOKBACK_MS before the
    detection, not where the talking began."""
    feed = push_to_talk()
    feed.audio(quiet(0.5) + tone(4.0))
    (word,) = feed.audio(tone(0.03), detecting=True)
    at = feed.turns.position_bytes
    assert word.offset_bytes == at - LOOKBACK_MS * BYTES_PER_S // 1000


def test_the_question_ends_at_its_first_silence_not_at_the_words_tail() -> None:
    """After the word: its 150 ms tail, a 0.8 s pause (longer than the silence that ends a turn,
    say while the earcon plays), the 1 s question, then quiet. The end comes once the question
    has been quiet for silence_ms, not after the tail."""
    feed = push_to_talk()
    feed.audio(quiet(0.5) + tone(0.8))
    assert [e.kind for e in feed.audio(tone(0.03), detecting=True)] == ["word"]
    assert feed.audio(tone(0.15) + quiet(0.8), detecting=False) == []
    question_end = feed.turns.position_bytes + round(1.0 * RATE_HZ) * 2
    (end,) = feed.audio(tone(1.0) + quiet(1.0))
    assert end.kind == "end"
    silence = SILENCE_MS * BYTES_PER_S // 1000
    assert question_end + silence <= end.offset_bytes <= question_end + silence + 2 * 640


def test_no_question_after_the_word_ends_the_turn_after_the_wait() -> None:
    """The word and then silence: the turn ends QUESTION_WAIT_S after the word."""
    feed = push_to_talk()
    feed.audio(quiet(0.5) + tone(0.8))
    feed.audio(tone(0.03), detecting=True)
    word_at = feed.turns.position_bytes
    events = feed.audio(quiet(QUESTION_WAIT_S + 0.5), detecting=False)
    assert [e.kind for e in events] == ["end"]
    assert abs(events[0].offset_bytes - word_at - QUESTION_WAIT_S * BYTES_PER_S) <= FRAME_BYTES


def test_hands_free_decides_no_end_the_servers_voice_detection_does() -> None:
    """Hands-free (local_end False): the word, a question and silence give the word only."""
    feed = Feed(WakeTurns(local_end=False, silence_ms=SILENCE_MS))
    feed.audio(quiet(0.5) + tone(0.8))
    feed.audio(tone(0.03), detecting=True)
    feed.audio(quiet(0.5) + tone(1.0) + quiet(QUESTION_WAIT_S + 1), detecting=False)
    assert [e.kind for e in feed.events] == ["word"]


def test_after_a_mute_nothing_heard_before_it_dates_a_word() -> None:
    """`forget` (the privacy mute): speech heard before it cannot be where a later word's turn
    begins; the word's turn begins at most at the mute (here: LOOKBACK before the detection,
    since the speech on both sides of it is one run to the energy detector)."""
    feed = push_to_talk()
    feed.audio(quiet(0.5) + tone(0.5))
    muted_at = feed.turns.position_bytes
    feed.turns.forget()
    feed.audio(tone(1.6))
    (word,) = feed.audio(tone(0.03), detecting=True)
    assert word.offset_bytes >= muted_at


def test_trim_preroll_keeps_the_newest_bytes_at_a_sample_boundary() -> None:
    """The pre-roll is cut from the front: whole chunks, then the newest part of one."""
    chunks = [bytes([i]) * 640 for i in range(5)]
    assert trim_preroll(chunks, 3 * 640) == chunks[2:]
    assert trim_preroll(chunks, 641) == [chunks[4]]  # an odd count: whole samples only
    assert sum(map(len, trim_preroll(chunks, 1001))) == 1000
    assert trim_preroll(chunks, 1001)[0] == bytes([3]) * 360
    assert trim_preroll(chunks, 0) == []
    assert trim_preroll(chunks, 10**6) == chunks


def test_check_says_whether_the_wake_word_can_run() -> None:
    """`pilive check`'s line: off when configured off; active when the package is here."""
    assert describe("off") == "wake word off (conversation.wake_word)"
    if missing_package() is None:
        assert describe("alexa").startswith("wake word 'alexa' active")


def test_check_says_why_when_the_package_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pymicro-wakeword (32-bit ARM has no wheel) the line says so, naming the fix."""
    import sys

    monkeypatch.setitem(sys.modules, "pymicro_wakeword", None)
    assert missing_package() is not None
    assert describe("okay_nabu") == (
        "wake word 'okay_nabu' off: pymicro-wakeword is not installed (its wheels exist for "
        "x86-64 and aarch64 only; pip install pymicro-wakeword on those); "
        "a press still starts a turn"
    )


# -- the hands-free conversation the word opens ----------------------------------------------------

TIMING = Timing(min_press_s=0.1, max_press_s=5.0)
PCM = b"\x01\x00" * 480


def woken_conversation() -> Conversation:
    conv = Conversation(TIMING, hands_free=True, wake_gated=True)
    conv.start()
    conv.link_changed(LinkState.CONNECTED)
    return conv


def test_hands_free_with_a_wake_word_keeps_the_microphone_closed_until_the_word() -> None:
    """The microphone is closed while idle; the word opens it, plays the press earcon and shows
    listening; a second word while open changes nothing."""
    conv = woken_conversation()
    assert not conv.mic_open
    assert conv.wake_word_heard(1.0) == [PlayEarcon(Earcon.PRESS), ShowState(State.LISTENING)]
    assert conv.mic_open
    assert conv.wake_word_heard(1.5) == []


def test_the_answer_closes_the_woken_microphone() -> None:
    """The server's voice detection ended the turn and it answers: the microphone closes, the
    answer plays, and the next turn needs the word again."""
    conv = woken_conversation()
    conv.wake_word_heard(1.0)
    assert conv.session_event(AudioChunk(PCM, 24000)) == [
        PlayAudio(PCM),
        ShowState(State.SPEAKING),
    ]
    assert not conv.mic_open


def test_a_tool_call_also_closes_the_woken_microphone() -> None:
    """A function call is the server's answer too: the user's turn is over."""
    conv = woken_conversation()
    conv.wake_word_heard(1.0)
    conv.session_event(ToolCall((FunctionCall("c1", "device_status", {}),)))
    assert not conv.mic_open


def test_a_text_answer_closes_the_woken_microphone() -> None:
    """With response_modality = "text" the answer is text, no audio: its first part closes the
    microphone as audio would (a thought does not), instead of the room streaming on until
    max_press_s."""
    conv = woken_conversation()
    conv.wake_word_heard(1.0)
    conv.session_event(TextPart("Let me think.", thought=True))
    assert conv.mic_open
    actions = conv.session_event(TextPart("It is sunny in Paris."))
    assert ShowState(State.IDLE) in actions
    assert not conv.mic_open


def test_the_word_during_an_answer_stops_it_as_a_press_does() -> None:
    """Barge-in by the word: the answer is flushed and the microphone opens."""
    conv = woken_conversation()
    conv.wake_word_heard(1.0)
    conv.session_event(AudioChunk(PCM, 24000))
    actions = conv.wake_word_heard(2.0)
    assert actions[0] == FlushPlayback()
    assert conv.mic_open and conv.state is State.LISTENING


def test_a_press_wakes_the_microphone_as_the_word_does() -> None:
    """Behind a wake word the button is the other way in (the only one where the word cannot be
    heard): a press opens the microphone like the word, a release changes nothing, and a press
    during the answer flushes it and opens the microphone again."""
    conv = woken_conversation()
    assert conv.button_pressed(1.0) == [PlayEarcon(Earcon.PRESS), ShowState(State.LISTENING)]
    assert conv.mic_open
    assert conv.button_released(1.2) == []
    assert conv.mic_open
    conv.session_event(AudioChunk(PCM, 24000))
    assert not conv.mic_open
    actions = conv.button_pressed(2.0)
    assert actions[0] == FlushPlayback()
    assert conv.mic_open and conv.state is State.LISTENING


def test_no_answer_closes_the_woken_microphone_after_max_press_s() -> None:
    """Bounded: a word with no answer (nobody spoke, the server heard nothing) closes the
    microphone after max_press_s, as a held button would end."""
    conv = woken_conversation()
    conv.wake_word_heard(1.0)
    assert conv.next_deadline == 1.0 + TIMING.max_press_s
    actions = conv.tick(1.0 + TIMING.max_press_s)
    assert ShowState(State.IDLE) in actions
    assert any(isinstance(a, Journal) for a in actions)
    assert not conv.mic_open


def test_an_old_answers_turn_complete_does_not_close_the_woken_microphone() -> None:
    """The word cut an answer; that answer's turnComplete arrives while the user talks: the
    microphone stays open for the question."""
    conv = woken_conversation()
    conv.wake_word_heard(1.0)
    conv.session_event(AudioChunk(PCM, 24000))
    conv.wake_word_heard(2.0)
    conv.session_event(TurnComplete())
    assert conv.mic_open


def test_the_mute_closes_the_woken_microphone_and_refuses_the_word() -> None:
    """Muted: the woken microphone closes, and a word (if one were heard) starts nothing."""
    conv = woken_conversation()
    conv.wake_word_heard(1.0)
    conv.mute_changed(True)
    assert not conv.mic_open and conv.state is State.MUTED
    assert conv.wake_word_heard(2.0) == [PlayEarcon(Earcon.MUTED)]
    assert not conv.mic_open


def test_push_to_talk_ignores_wake_gating() -> None:
    """In push-to-talk the word is a press (the household sends it): the conversation's own
    wake_word_heard does nothing there."""
    conv = Conversation(TIMING, wake_gated=True)
    conv.start()
    conv.link_changed(LinkState.CONNECTED)
    assert not conv.wake_gated
    assert conv.wake_word_heard(1.0) == []
