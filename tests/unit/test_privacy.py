"""The privacy mute's rules (who may unmute what) and its place in the conversation."""

from __future__ import annotations

from pilive.conversation import (
    CameraActivity,
    Conversation,
    Earcon,
    EndActivity,
    FlushPlayback,
    PlayAudio,
    PlayEarcon,
    SendText,
    ShowState,
    State,
    Timing,
)
from pilive.live.events import AudioChunk, LinkState, TurnComplete
from pilive.privacy import PrivacyMute

PCM = b"\x01\x00" * 480


def test_the_button_toggles_and_lifts_a_remote_mute() -> None:
    """A press mutes; the next unmutes; a press also lifts a mute set remotely, since a person at
    the device outranks an automation."""
    mute = PrivacyMute()
    assert mute.button_pressed() and mute.muted and mute.source == "button"
    assert mute.button_pressed() and not mute.muted
    assert mute.remote(True) == (True, None)
    assert mute.button_pressed() and not mute.muted


def test_a_remote_request_never_lifts_the_devices_mute() -> None:
    """`mute off` over the socket is refused while the button or the switch holds the mute,
    saying which; `mute on` adds to it, and lifting the device's mute then still leaves it on."""
    mute = PrivacyMute()
    mute.button_pressed()
    assert mute.remote(False) == (
        False,
        "muted by the mute button at the device; only it can unmute",
    )
    mute.switch_changed(True)
    assert mute.remote(False)[1] == "muted by the mute switch at the device; only it can unmute"
    assert mute.remote(True) == (False, None)
    mute.switch_changed(False)
    mute.button_pressed()  # lifts the button's and the remote mute
    assert not mute.muted


def test_the_switch_position_is_the_truth() -> None:
    """While the switch is closed nothing unmutes: not the button, not a remote request."""
    mute = PrivacyMute()
    assert mute.switch_changed(True)
    assert not mute.button_pressed() and mute.muted
    assert mute.remote(False)[1] is not None and mute.muted
    assert mute.switch_changed(False) and not mute.muted


def test_what_is_kept_is_restored_and_garbage_does_not_mute() -> None:
    """The button's and the remote mute are kept (the switch is read from its pin); anything
    but true in the file is false."""
    mute = PrivacyMute()
    mute.remote(True)
    again = PrivacyMute()
    again.restore(mute.to_json())
    assert again.muted and again.source == "remote"
    odd = PrivacyMute()
    odd.restore({"button": "yes", "remote": 1})
    assert not odd.muted


TIMING = Timing(min_press_s=0.1, max_press_s=5.0)


def connected() -> Conversation:
    conv = Conversation(TIMING)
    conv.start()
    conv.link_changed(LinkState.CONNECTED)
    return conv


def test_muting_when_idle_shows_muted_and_a_press_starts_no_turn() -> None:
    """Muted: earcon and LED; a press (held as long as you like) starts nothing and says why;
    unmuted, the next press is a turn again."""
    conv = connected()
    assert conv.mute_changed(True) == [PlayEarcon(Earcon.MUTED), ShowState(State.MUTED)]
    assert conv.button_pressed(0.0) == [PlayEarcon(Earcon.MUTED)]
    assert conv.next_deadline is None
    assert conv.tick(10.0) == []
    assert conv.button_released(10.0) == []
    assert conv.mute_changed(False) == [PlayEarcon(Earcon.UNMUTED), ShowState(State.IDLE)]
    conv.button_pressed(20.0)
    assert conv.tick(20.2)[0].__class__.__name__ == "StartActivity"


def test_muting_during_a_held_turn_ends_it_and_ignores_the_release() -> None:
    """The mute ends the turn there (activityEnd goes out, the camera stops); the answer to what
    was said comes and plays; the release that follows does nothing."""
    conv = connected()
    conv.button_pressed(0.0)
    conv.tick(0.2)
    assert conv.mute_changed(True) == [
        EndActivity(),
        CameraActivity(False),
        ShowState(State.THINKING),
        PlayEarcon(Earcon.MUTED),
    ]
    assert conv.button_released(1.0) == []
    assert conv.session_event(AudioChunk(PCM, 24000)) == [
        PlayAudio(PCM),
        ShowState(State.SPEAKING),
    ]
    conv.session_event(TurnComplete())
    assert conv.playback_drained() == [ShowState(State.MUTED)]


def test_a_press_while_muted_still_silences_the_answer() -> None:
    """The mute is the microphone's: answers play; a press cuts one as always, and no turn."""
    conv = connected()
    conv.mute_changed(True)
    assert conv.text_turn("announce this") == [SendText("announce this"), ShowState(State.THINKING)]
    conv.session_event(AudioChunk(PCM, 24000))
    assert conv.button_pressed(1.0) == [
        FlushPlayback(),
        ShowState(State.MUTED),
        PlayEarcon(Earcon.MUTED),
    ]


def test_hands_free_stops_listening_while_muted() -> None:
    """Hands-free: the microphone streams whenever connected, except while muted."""
    conv = Conversation(TIMING, hands_free=True)
    conv.start()
    conv.link_changed(LinkState.CONNECTED)
    assert conv.mic_open
    conv.mute_changed(True)
    assert not conv.mic_open
    conv.mute_changed(False)
    assert conv.mic_open
