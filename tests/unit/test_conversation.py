"""The push-to-talk state machine: every input in every state gives the actions a user expects."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pilive.conversation import (
    Action,
    CameraActivity,
    CancelTools,
    Conversation,
    Earcon,
    EndActivity,
    EndOfAnswer,
    FlushPlayback,
    Journal,
    NewConversation,
    PlayAudio,
    PlayEarcon,
    RunTool,
    ShowState,
    StartActivity,
    State,
    Timing,
)
from pilive.live.events import (
    AudioChunk,
    ConversationReset,
    FunctionCall,
    InputTranscription,
    Interrupted,
    LinkState,
    OutputTranscription,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
    TurnLost,
    UsageMetadata,
)

PCM = b"\x01\x00" * 480


TIMING = Timing(min_press_s=0.1, max_press_s=5.0)


def connected(timing: Timing = TIMING) -> Conversation:
    conv = Conversation(timing)
    conv.start()
    conv.link_changed(LinkState.CONNECTED)
    assert conv.state is State.IDLE
    return conv


def kinds(actions: list[Action]) -> list[type]:
    return [type(a) for a in actions]


def held_turn(conv: Conversation, at: float = 0.0) -> list[Action]:
    """Press, hold past the minimum; returns the actions of the accepted press."""
    assert conv.button_pressed(at) == []
    return conv.tick(at + conv.timing.min_press_s)


def test_start_shows_connecting_then_idle() -> None:
    """Boot: connecting until the link is up, then idle; no earcon for the first connect."""
    conv = Conversation(TIMING)
    assert conv.start() == [ShowState(State.CONNECTING)]
    assert conv.link_changed(LinkState.CONNECTED) == [ShowState(State.IDLE)]


def test_held_press_starts_the_turn_with_preroll_camera_and_earcon() -> None:
    """After the minimum hold: activityStart + pre-roll, camera on, press earcon, listening."""
    conv = connected()
    actions = held_turn(conv)
    assert actions == [
        StartActivity(),
        CameraActivity(True),
        PlayEarcon(Earcon.PRESS),
        ShowState(State.LISTENING),
    ]
    assert conv.mic_open


def test_release_ends_the_turn_with_last_chunk_then_activity_end() -> None:
    """Release: the last chunk then activityEnd (EndActivity), camera off, thinking."""
    conv = connected()
    held_turn(conv)
    assert conv.button_released(1.0) == [
        EndActivity(),
        CameraActivity(False),
        PlayEarcon(Earcon.RELEASE),
        ShowState(State.THINKING),
    ]
    assert not conv.mic_open


def test_short_tap_sends_nothing() -> None:
    """A tap shorter than the minimum is no turn: nothing goes to the server."""
    conv = connected()
    assert conv.button_pressed(0.0) == []
    assert conv.button_released(0.05) == []
    assert conv.tick(1.0) == []
    assert conv.turns_started == 0 and conv.taps_ignored == 1
    assert conv.state is State.IDLE


def test_zero_minimum_starts_at_the_press() -> None:
    """With min_press_s = 0 the turn starts in the press handler itself."""
    conv = connected(Timing(min_press_s=0.0, max_press_s=5.0))
    assert StartActivity() in conv.button_pressed(0.0)


def test_over_long_hold_ends_itself_and_ignores_the_release() -> None:
    """A hold past max_press_s ends the turn by itself; the later release does nothing."""
    conv = connected()
    held_turn(conv)
    assert conv.next_deadline == 5.0
    assert conv.tick(4.9) == []
    actions = conv.tick(5.0)
    assert EndActivity() in actions and ShowState(State.THINKING) in actions
    assert conv.button_released(9.0) == []


def test_answer_plays_then_idle_after_playback_drains() -> None:
    """Audio -> speaking; turnComplete asks the speaker to play out; idle only once drained."""
    conv = connected()
    held_turn(conv)
    conv.button_released(1.0)
    assert conv.session_event(AudioChunk(PCM, 24000)) == [
        PlayAudio(PCM),
        ShowState(State.SPEAKING),
    ]
    assert conv.session_event(AudioChunk(PCM, 24000)) == [PlayAudio(PCM)]
    assert conv.session_event(TurnComplete()) == [EndOfAnswer()]
    assert conv.state is State.SPEAKING
    assert conv.playback_drained() == [ShowState(State.IDLE)]


def test_press_while_speaking_flushes_at_once_and_drops_the_rest_of_that_answer() -> None:
    """Barge-in: the speaker is flushed in the press handler, before the turn is accepted;
    late audio of the interrupted answer is dropped until its turn ends."""
    conv = connected()
    held_turn(conv)
    conv.button_released(1.0)
    conv.session_event(AudioChunk(PCM, 24000))
    assert conv.button_pressed(2.0) == [FlushPlayback()]
    assert conv.session_event(AudioChunk(PCM, 24000)) == []
    conv.tick(2.1)
    assert conv.state is State.LISTENING
    assert conv.session_event(Interrupted()) == []
    assert conv.session_event(TurnComplete()) == []
    conv.button_released(3.0)
    assert conv.session_event(AudioChunk(PCM, 24000))[0] == PlayAudio(PCM)


def test_tap_while_speaking_is_a_stop_gesture() -> None:
    """A short tap during the answer silences it without starting a turn."""
    conv = connected()
    held_turn(conv)
    conv.button_released(1.0)
    conv.session_event(AudioChunk(PCM, 24000))
    assert conv.button_pressed(2.0) == [FlushPlayback()]
    assert conv.button_released(2.05) == [ShowState(State.IDLE)]
    assert conv.session_event(AudioChunk(PCM, 24000)) == []
    assert conv.session_event(TurnComplete()) == []
    assert conv.turns_started == 1


def test_server_interruption_flushes_playback_in_hands_free() -> None:
    """Hands-free: `interrupted` is the server's voice detection hearing the user, and does what
    a press does to the speaker."""
    conv = Conversation(TIMING, hands_free=True)
    conv.start()
    conv.link_changed(LinkState.CONNECTED)
    conv.session_event(AudioChunk(PCM, 24000))
    assert conv.session_event(Interrupted()) == [FlushPlayback(), ShowState(State.IDLE)]


def test_push_to_talk_ignores_an_interrupted_it_did_not_cause() -> None:
    """Push-to-talk: the server sends `interrupted` even with its voice detection off (pipecat
    PR #4131); only the button barges in, so the answer keeps playing and ends normally."""
    conv = connected()
    held_turn(conv)
    conv.button_released(1.0)
    conv.session_event(AudioChunk(PCM, 24000))
    actions = conv.session_event(Interrupted())
    assert [a for a in actions if not isinstance(a, Journal)] == []
    assert conv.state is State.SPEAKING
    assert conv.session_event(AudioChunk(PCM, 24000)) == [PlayAudio(PCM)]
    assert conv.session_event(TurnComplete()) == [EndOfAnswer()]


def test_a_late_end_of_the_interrupted_answer_is_no_empty_answer() -> None:
    """Barge-in, quick release, then the old turn's interrupted + turnComplete arrive: that is
    not the new turn's (empty) answer; the new answer then plays."""
    conv = connected()
    held_turn(conv)
    conv.button_released(1.0)
    conv.session_event(AudioChunk(PCM, 24000))
    conv.button_pressed(2.0)
    conv.tick(3.0)
    conv.button_released(3.1)
    assert conv.session_event(Interrupted()) == []
    assert conv.session_event(TurnComplete()) == []
    assert conv.state is State.THINKING
    assert conv.session_event(AudioChunk(PCM, 24000)) == [PlayAudio(PCM), ShowState(State.SPEAKING)]


@pytest.mark.parametrize("reason", [None, "RESPONSE_REJECTED", "NEED_MORE_INPUT"])
def test_a_turn_ended_without_an_answer_is_an_audible_error(reason: str | None) -> None:
    """turnComplete with no content for the user's turn: error earcon, a journal line with the
    reason, back to idle; the press never ends in silence."""
    conv = connected()
    held_turn(conv)
    conv.button_released(1.0)
    actions = conv.session_event(TurnComplete(reason))
    assert actions[0] == PlayEarcon(Earcon.ERROR)
    assert isinstance(actions[1], Journal) and actions[1].kind == "no_answer"
    assert (reason or "without an answer") in actions[1].text
    assert conv.state is State.IDLE


def test_conversation_reset_is_said() -> None:
    """The server would not resume: the user hears the error earcon and the journal says the
    model forgot the conversation."""
    conv = connected()
    actions = conv.session_event(ConversationReset("server refused to resume (1011)"))
    assert actions[0] == PlayEarcon(Earcon.ERROR)
    assert isinstance(actions[1], Journal) and actions[1].kind == "context_lost"


def test_running_tools_are_cancelled_when_the_link_drops() -> None:
    """A tool call does not survive its connection (the resumed session predates it)."""
    conv = connected()
    held_turn(conv)
    conv.button_released(1.0)
    conv.session_event(ToolCall((FunctionCall("a", "f", {}),)))
    assert CancelTools(("a",)) in conv.link_changed(LinkState.RECONNECTING)


def test_press_while_offline_gives_offline_feedback_at_once() -> None:
    """Offline: the press gets the offline earcon and LED immediately and starts nothing."""
    conv = connected()
    assert conv.link_changed(LinkState.OFFLINE) == [
        PlayEarcon(Earcon.OFFLINE),
        ShowState(State.OFFLINE),
    ]
    assert conv.button_pressed(0.0) == [PlayEarcon(Earcon.OFFLINE), ShowState(State.OFFLINE)]
    assert conv.tick(1.0) == [] and conv.turns_started == 0


def test_config_fault_press_and_recovery() -> None:
    """A configuration fault has its own earcon and LED; recovery plays the connected earcon."""
    conv = connected()
    assert conv.link_changed(LinkState.CONFIG_FAULT) == [
        PlayEarcon(Earcon.ERROR),
        ShowState(State.CONFIG_FAULT),
    ]
    assert conv.button_pressed(0.0)[0] == PlayEarcon(Earcon.ERROR)
    assert conv.link_changed(LinkState.CONNECTED) == [
        PlayEarcon(Earcon.CONNECTED),
        ShowState(State.IDLE),
    ]


def test_reconnecting_while_listening_keeps_listening() -> None:
    """A drop while the button is held does not interrupt the user: input is held and
    replayed, the LED stays on listening."""
    conv = connected()
    held_turn(conv)
    assert conv.link_changed(LinkState.RECONNECTING) == []
    assert conv.state is State.LISTENING and conv.mic_open
    assert conv.link_changed(LinkState.CONNECTED) == []


def test_press_while_reconnecting_is_accepted() -> None:
    """Reconnecting (not yet offline): a press still starts a turn; the session holds it."""
    conv = connected()
    conv.link_changed(LinkState.RECONNECTING)
    actions = held_turn(conv)
    assert StartActivity() in actions


def test_tool_calls_run_and_cancel() -> None:
    """toolCall -> RunTool per call; a cancellation cancels only running calls."""
    conv = connected()
    held_turn(conv)
    conv.button_released(1.0)
    call = ToolCall((FunctionCall("c1", "f", {"x": 1}), FunctionCall("c2", "g", {})))
    assert conv.session_event(call) == [RunTool("c1", "f", {"x": 1}), RunTool("c2", "g", {})]
    conv.tool_finished("c1")
    assert conv.session_event(ToolCallCancellation(("c1", "c2", "zz"))) == [CancelTools(("c2",))]


def test_lost_turn_is_heard_and_journalled() -> None:
    """A turn the replay window could not keep, lost while the button is still held: the
    activity ends at once, error earcon, a journal line, back to idle; the later release is
    ignored (it must not wait, THINKING, for an answer that never comes)."""
    conv = connected()
    held_turn(conv)
    actions = conv.session_event(TurnLost("link down too long", 480000))
    assert actions[:3] == [EndActivity(), CameraActivity(False), PlayEarcon(Earcon.ERROR)]
    assert isinstance(actions[3], Journal) and actions[3].kind == "turn_lost"
    assert conv.state is State.IDLE
    assert not conv.mic_open
    assert conv.button_released(5.0) == []
    assert conv.state is State.IDLE


def test_an_empty_answer_after_a_tool_call_is_an_audible_error() -> None:
    """The model calls a tool, gets its result, then ends the turn without a word: still the
    error earcon (a tool call is nothing the user hears)."""
    conv = connected()
    held_turn(conv)
    conv.button_released(1.0)
    conv.session_event(ToolCall((FunctionCall("a", "f", {}),)))
    conv.tool_finished("a")
    actions = conv.session_event(TurnComplete("RESPONSE_REJECTED"))
    assert actions[0] == PlayEarcon(Earcon.ERROR)


def test_a_stray_interrupted_after_a_tap_does_not_revive_the_silenced_answer() -> None:
    """A tap silences the answer without starting a turn (the server's turn goes on); a stray
    `interrupted` then is not the end of that turn, so its remaining audio stays silent."""
    conv = connected()
    held_turn(conv)
    conv.button_released(1.0)
    conv.session_event(AudioChunk(PCM, 24000))
    conv.button_pressed(2.0)
    conv.button_released(2.05)  # shorter than min_press_s: a tap
    conv.session_event(Interrupted())
    assert conv.session_event(AudioChunk(PCM, 24000)) == []


def test_transcripts_go_to_the_journal_and_usage_is_left_to_the_usage_keeper() -> None:
    """Transcripts become structured journal actions; usage changes nothing in the conversation
    (usage_keeper journals and counts it)."""
    conv = connected()
    assert conv.session_event(InputTranscription("hi")) == [Journal("input_transcript", "hi")]
    assert conv.session_event(OutputTranscription("yo")) == [Journal("output_transcript", "yo")]
    assert conv.session_event(UsageMetadata(prompt_tokens=3, response_tokens=4)) == []


def test_new_conversation_ends_any_turn_and_flushes() -> None:
    """The second button: end an open activity, silence the answer, forget the handle."""
    conv = connected()
    held_turn(conv)
    actions = conv.new_conversation_pressed()
    assert actions == [
        EndActivity(),
        CameraActivity(False),
        NewConversation(),
        PlayEarcon(Earcon.CONNECTED),
        ShowState(State.IDLE),
    ]
    assert not conv.mic_open


def test_hands_free_mic_is_open_and_press_only_barges_in() -> None:
    """Hands-free: the mic streams whenever connected; a press only stops a talking answer."""
    conv = Conversation(TIMING, hands_free=True)
    conv.start()
    conv.link_changed(LinkState.CONNECTED)
    assert conv.mic_open
    assert conv.button_pressed(0.0) == []
    conv.session_event(AudioChunk(PCM, 24000))
    assert conv.button_pressed(1.0) == [FlushPlayback()]


def test_timing_is_validated() -> None:
    """Impossible press timings are refused with the values named."""
    with pytest.raises(ValueError, match="min_press_s"):
        Timing(min_press_s=2.0, max_press_s=1.0)


_INPUTS = st.one_of(
    st.tuples(st.just("press"), st.floats(0, 0.5)),
    st.tuples(st.just("release"), st.floats(0, 0.5)),
    st.tuples(st.just("tick"), st.floats(0, 6)),
    st.tuples(st.just("link"), st.sampled_from(list(LinkState))),
    st.tuples(st.just("audio"), st.none()),
    st.tuples(st.just("complete"), st.none()),
    st.tuples(st.just("interrupted"), st.none()),
    st.tuples(st.just("drained"), st.none()),
    st.tuples(st.just("new"), st.none()),
)


@given(st.lists(_INPUTS, max_size=60))
def test_activities_always_pair_up(inputs: list[tuple[str, object]]) -> None:
    """Whatever happens, StartActivity and EndActivity alternate (never two starts in a row, no
    end without a start), the camera follows the activity, and mic_open matches it."""
    conv = connected()
    now = 0.0
    open_activity = False
    for kind, value in inputs:
        if kind in ("press", "release", "tick"):
            assert isinstance(value, float)
            now += value
        actions: list[Action]
        if kind == "press":
            actions = conv.button_pressed(now)
        elif kind == "release":
            actions = conv.button_released(now)
        elif kind == "tick":
            actions = conv.tick(now)
        elif kind == "link":
            assert isinstance(value, LinkState)
            actions = conv.link_changed(value)
        elif kind == "audio":
            actions = conv.session_event(AudioChunk(PCM, 24000))
        elif kind == "complete":
            actions = conv.session_event(TurnComplete())
        elif kind == "interrupted":
            actions = conv.session_event(Interrupted())
        elif kind == "drained":
            actions = conv.playback_drained()
        else:
            actions = conv.new_conversation_pressed()
        for action in actions:
            if isinstance(action, StartActivity):
                assert not open_activity
                open_activity = True
            elif isinstance(action, EndActivity):
                assert open_activity
                open_activity = False
            elif isinstance(action, CameraActivity):
                assert action.active == open_activity
        assert conv.mic_open == open_activity
        assert kinds(actions).count(ShowState) <= 1


def test_barge_in_after_the_server_finished_sending_keeps_the_next_answer() -> None:
    """The server sends faster than real time: its turn can be complete while the answer still
    plays. A press then flushes the speaker, and the next answer must play, not be dropped as
    the tail of the interrupted one."""
    conv = connected()
    held_turn(conv)
    conv.button_released(1.0)
    conv.session_event(AudioChunk(PCM, 24000))
    assert conv.session_event(TurnComplete()) == [EndOfAnswer()]
    assert conv.button_pressed(2.0) == [FlushPlayback()]
    conv.tick(2.2)
    conv.button_released(3.0)
    assert conv.session_event(AudioChunk(PCM, 24000)) == [
        PlayAudio(PCM),
        ShowState(State.SPEAKING),
    ]


def test_old_answer_arriving_while_the_user_talks_is_not_played() -> None:
    """Pressed while thinking, before any answer audio: audio arriving while the button is held
    belongs to the old answer (the model cannot answer an activity still open) and is dropped
    until that turn ends; the next answer plays."""
    conv = connected()
    held_turn(conv)
    conv.button_released(1.0)
    assert conv.button_pressed(1.5) == []
    conv.tick(1.7)
    assert conv.state is State.LISTENING
    assert conv.session_event(AudioChunk(PCM, 24000)) == []
    assert conv.session_event(TurnComplete()) == []
    conv.button_released(3.0)
    assert conv.session_event(AudioChunk(PCM, 24000))[0] == PlayAudio(PCM)


@pytest.mark.parametrize("barge_in_first", [False, True])
def test_an_answer_cut_by_a_dropped_link_does_not_swallow_the_next_one(
    barge_in_first: bool,
) -> None:
    """The link drops mid-answer (no turnComplete will ever come for it): after the reconnect
    the next turn's answer plays, whether or not the user had already interrupted the old one."""
    conv = connected()
    held_turn(conv)
    conv.button_released(1.0)
    conv.session_event(AudioChunk(PCM, 24000))
    if barge_in_first:
        conv.button_pressed(1.5)
        conv.button_released(1.55)
    conv.link_changed(LinkState.RECONNECTING)
    conv.link_changed(LinkState.CONNECTED)
    conv.button_pressed(2.0)  # flushes whatever of the cut answer still plays
    assert StartActivity() in conv.tick(2.2)
    conv.button_released(3.0)
    assert conv.session_event(AudioChunk(PCM, 24000))[0] == PlayAudio(PCM)


# --- the daily token limit ----------------------------------------------------------------------


REFUSED = [
    PlayEarcon(Earcon.ERROR),
    Journal("turn_refused", "the daily token limit is spent; no turn started"),
]


def test_a_spent_limit_shows_on_the_led_and_a_press_is_refused() -> None:
    """Idle when the limit is spent: the LED shows it at once; a held press gets the error earcon
    and sends nothing (no activityStart), however long it is held."""
    conv = connected()
    assert conv.limit_changed(True) == [ShowState(State.LIMIT_SPENT)]
    assert conv.button_pressed(0.0) == REFUSED
    assert conv.tick(10.0) == []
    assert conv.button_released(10.0) == []
    assert conv.turns_started == 0 and not conv.mic_open
    assert conv.state is State.LIMIT_SPENT


def test_the_turn_that_spends_the_limit_finishes_and_its_answer_plays_out() -> None:
    """The usage of the answer being played spends the limit: the answer plays on to its end,
    and only then does the LED show the limit."""
    conv = connected()
    held_turn(conv)
    conv.button_released(1.0)
    conv.session_event(AudioChunk(PCM, 24000))
    conv.session_event(TurnComplete())
    assert conv.limit_changed(True) == []
    assert conv.state is State.SPEAKING
    assert conv.playback_drained() == [ShowState(State.LIMIT_SPENT)]


def test_a_turn_held_open_when_the_limit_is_spent_goes_on() -> None:
    """An activity already started is a turn in progress: it ends with its release as usual."""
    conv = connected()
    held_turn(conv)
    assert conv.limit_changed(True) == []
    assert kinds(conv.button_released(1.0))[0] is EndActivity
    assert conv.state is State.THINKING


def test_a_press_not_yet_a_turn_when_the_limit_is_spent_is_refused() -> None:
    """Pressed just before the limit was spent, still short of the minimum hold: no turn."""
    conv = connected()
    assert conv.button_pressed(0.0) == []
    assert conv.limit_changed(True) == [ShowState(State.LIMIT_SPENT)]
    assert conv.tick(conv.timing.min_press_s) == REFUSED
    assert conv.turns_started == 0


def test_a_press_while_spent_silences_the_answer_still_playing() -> None:
    """The press still stops the answer (that is what a press asks for), then says no."""
    conv = connected()
    held_turn(conv)
    conv.button_released(1.0)
    conv.session_event(AudioChunk(PCM, 24000))
    conv.limit_changed(True)
    assert conv.button_pressed(2.0) == [FlushPlayback(), *REFUSED, ShowState(State.LIMIT_SPENT)]


def test_midnight_renews_the_limit_and_the_next_press_is_a_turn() -> None:
    """A new day: idle again, and a press starts a turn."""
    conv = connected()
    conv.limit_changed(True)
    assert conv.limit_changed(False) == [ShowState(State.IDLE)]
    assert kinds(held_turn(conv))[0] is StartActivity


def test_a_spent_limit_waits_behind_a_lost_link_and_shows_once_connected() -> None:
    """Offline wins while the link is down; connected again, the LED shows the spent limit."""
    conv = connected()
    conv.limit_changed(True)
    conv.link_changed(LinkState.OFFLINE)
    assert conv.state is State.OFFLINE
    assert ShowState(State.LIMIT_SPENT) in conv.link_changed(LinkState.CONNECTED)


def test_hands_free_closes_the_mic_while_the_limit_is_spent() -> None:
    """Hands-free sends the mic all the time: a spent limit closes it until midnight."""
    conv = Conversation(TIMING, hands_free=True)
    conv.start()
    conv.link_changed(LinkState.CONNECTED)
    assert conv.mic_open
    conv.limit_changed(True)
    assert not conv.mic_open
    conv.limit_changed(False)
    assert conv.mic_open


def test_hands_free_says_once_that_the_limit_closed_the_microphone() -> None:
    """Hands-free without a wake word has no press to refuse, so the error earcon says the
    microphone closed: after the answer that spent the limit has played out, once per spent
    limit (not again when a lost link comes back), and again only after midnight renewed it."""
    conv = Conversation(TIMING, hands_free=True)
    conv.start()
    conv.link_changed(LinkState.CONNECTED)
    conv.session_event(AudioChunk(PCM, 24000))
    conv.session_event(TurnComplete())
    assert conv.limit_changed(True) == []  # the answer plays on
    assert conv.playback_drained() == [ShowState(State.LIMIT_SPENT), PlayEarcon(Earcon.ERROR)]
    conv.link_changed(LinkState.OFFLINE)
    assert PlayEarcon(Earcon.ERROR) not in conv.link_changed(LinkState.CONNECTED)
    assert conv.state is State.LIMIT_SPENT
    conv.limit_changed(False)
    assert conv.limit_changed(True) == [ShowState(State.LIMIT_SPENT), PlayEarcon(Earcon.ERROR)]


def test_behind_a_wake_word_the_limit_is_said_at_the_word_as_at_a_press() -> None:
    """With a wake word the microphone is closed anyway: the LED shows the limit, and the word
    (or a press) gets the error earcon when it comes."""
    conv = Conversation(TIMING, hands_free=True, wake_gated=True)
    conv.start()
    conv.link_changed(LinkState.CONNECTED)
    assert conv.limit_changed(True) == [ShowState(State.LIMIT_SPENT)]
    assert PlayEarcon(Earcon.ERROR) in conv.wake_word_heard(1.0)


def test_a_typed_turn_is_refused_too_while_the_limit_is_spent() -> None:
    """`pilive ctl say` costs tokens like a spoken turn: refused the same way, nothing sent."""
    conv = connected()
    conv.limit_changed(True)
    assert conv.text_turn("what time is it") == REFUSED
    conv.limit_changed(False)
    actions = conv.text_turn("what time is it")
    assert actions is not None and any(type(a).__name__ == "SendText" for a in actions)
