"""Typed turns (`pilive ctl say`, an announcement) in the pure conversation state machine."""

from __future__ import annotations

from pilive.conversation import (
    Conversation,
    EndOfAnswer,
    FlushPlayback,
    Journal,
    PlayAudio,
    SendText,
    ShowState,
    State,
    Timing,
)
from pilive.live.events import AudioChunk, Interrupted, LinkState, TurnComplete

PCM = b"\x01\x00" * 480
TIMING = Timing(min_press_s=0.1, max_press_s=5.0)


def connected() -> Conversation:
    conv = Conversation(TIMING)
    conv.start()
    conv.link_changed(LinkState.CONNECTED)
    return conv


def test_a_typed_turn_when_idle_waits_for_its_answer() -> None:
    """Idle: the text goes out and the appliance thinks; its answer plays and ends in idle."""
    conv = connected()
    assert conv.text_turn("the tea is ready") == [
        SendText("the tea is ready"),
        ShowState(State.THINKING),
    ]
    assert conv.session_event(AudioChunk(PCM, 24000)) == [PlayAudio(PCM), ShowState(State.SPEAKING)]
    assert conv.session_event(TurnComplete()) == [EndOfAnswer()]
    assert conv.playback_drained() == [ShowState(State.IDLE)]


def test_a_typed_turn_cuts_the_answer_playing_and_its_interrupted_is_ours() -> None:
    """While an answer plays the text cuts it like a press: the speaker is flushed, the rest of
    the old answer and the server's `interrupted` for it are dropped, the new answer plays."""
    conv = connected()
    conv.text_turn("first")
    conv.session_event(AudioChunk(PCM, 24000))
    actions = conv.text_turn("second")
    assert actions == [FlushPlayback(), SendText("second"), ShowState(State.THINKING)]
    assert conv.session_event(AudioChunk(PCM, 24000)) == []  # the old answer's tail
    assert conv.session_event(Interrupted()) == []
    assert conv.session_event(TurnComplete()) == []  # the old turn's end
    assert conv.session_event(AudioChunk(PCM, 24000)) == [PlayAudio(PCM), ShowState(State.SPEAKING)]


def test_a_typed_turn_waits_while_the_user_holds_the_button() -> None:
    """The user's own turn is never mixed with typed text: None means "busy", nothing is done,
    and an answer with no words is still reported after the release."""
    conv = connected()
    conv.button_pressed(0.0)
    assert conv.text_turn("hello") is None
    conv.tick(0.2)
    assert conv.text_turn("hello") is None
    conv.button_released(1.0)
    actions = conv.session_event(TurnComplete())
    assert any(isinstance(a, Journal) and a.kind == "no_answer" for a in actions)
