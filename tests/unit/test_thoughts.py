"""Thought summaries (include_thoughts) are for the journal only: the parser never makes one a
playable chunk, the conversation turns each into a bounded journal line and nothing else (no
audio, no state change, not taken as the answer), and the answer after them plays as before."""

from __future__ import annotations

import base64
import json

from pilive.conversation import (
    THOUGHT_LINE_CHARS,
    Conversation,
    Earcon,
    Journal,
    PlayAudio,
    PlayEarcon,
    State,
    Timing,
)
from pilive.live.events import AudioChunk, LinkState, TextPart, TurnComplete, UnknownMessage
from pilive.live.wire import parse_server_message

PCM = b"\x01\x00" * 480


def _model_turn(*parts: dict[str, object]) -> str:
    return json.dumps({"serverContent": {"modelTurn": {"parts": list(parts)}}})


def _asked() -> Conversation:
    """Connected, one push-to-talk turn taken and released: the answer is awaited."""
    conv = Conversation(Timing(min_press_s=0.1, max_press_s=5.0))
    conv.start()
    conv.link_changed(LinkState.CONNECTED)
    conv.button_pressed(0.0)
    conv.tick(0.1)
    conv.button_released(1.0)
    assert conv.state is State.THINKING
    return conv


def test_a_thought_text_part_parses_as_a_thought() -> None:
    """`thought: true` on a text part (either spelling of the frame) is kept on the event."""
    frame = _model_turn({"text": "**Planning**\nsay hi", "thought": True}, {"text": "Hi"})
    assert parse_server_message(frame) == [
        TextPart("**Planning**\nsay hi", thought=True),
        TextPart("Hi", thought=False),
    ]


def test_audio_marked_as_a_thought_is_never_a_playable_chunk() -> None:
    """Only text thoughts are documented; inline data marked `thought` becomes an unknown part
    (logged), not an AudioChunk, while the same audio unmarked still is one."""
    data = base64.b64encode(PCM).decode()
    inline = {"mimeType": "audio/pcm;rate=24000", "data": data}
    marked = parse_server_message(_model_turn({"inlineData": inline, "thought": True}))
    assert not any(isinstance(e, AudioChunk) for e in marked)
    assert marked == [UnknownMessage(("serverContent.modelTurn.parts[0].inlineData(thought)",))]
    plain = parse_server_message(_model_turn({"inline_data": inline, "thought": False}))
    assert plain == [AudioChunk(PCM, 24000)]


def test_a_thought_is_a_journal_line_and_nothing_else() -> None:
    """No PlayAudio, no state change, no earcon: the conversation still awaits the answer, and
    the audio answer that follows plays and ends the wait."""
    conv = _asked()
    assert conv.session_event(TextPart("**Planning**\nsay hi", thought=True)) == [
        Journal("thought", "**Planning**\nsay hi")
    ]
    assert conv.state is State.THINKING
    actions = conv.session_event(AudioChunk(PCM, 24000))
    assert actions[0] == PlayAudio(PCM)
    assert conv.state is State.SPEAKING


def test_thoughts_alone_are_no_answer() -> None:
    """A turn with thoughts and no answer ends with the error earcon, as an empty turn does."""
    conv = _asked()
    conv.session_event(TextPart("thinking about it", thought=True))
    actions = conv.session_event(TurnComplete())
    assert PlayEarcon(Earcon.ERROR) in actions
    assert any(isinstance(a, Journal) and a.kind == "no_answer" for a in actions)


def test_a_long_thought_is_cut_and_an_empty_one_dropped() -> None:
    """The server decides a thought's length; the journal line does not grow with it."""
    conv = _asked()
    (line,) = conv.session_event(TextPart("x" * 100_000, thought=True))
    assert isinstance(line, Journal) and len(line.text) == THOUGHT_LINE_CHARS
    assert line.text.endswith("…")
    assert conv.session_event(TextPart("", thought=True)) == []
