"""When hands-free audio says audioStreamEnd (live.audio_stream): decided on an injected clock,
so every case is exact and instant."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pilive.live.audio_stream import STREAM_GAP_S, AudioStreamWatch

CHUNK_S = 0.02


def flowing(watch: AudioStreamWatch, start_s: float, seconds: float) -> float:
    """Chunks every 20 ms for `seconds` (with a tick at each, as a busy loop would); returns the
    time of the last chunk."""
    now = start_s
    while now < start_s + seconds:
        watch.audio_sent(now)
        assert not watch.tick(now, connected=True)
        now += CHUNK_S
    return now - CHUNK_S


def test_a_flowing_microphone_never_ends_the_stream() -> None:
    """Chunks every 20 ms: nothing to send, and the deadline is always a second after the last."""
    watch = AudioStreamWatch()
    last = flowing(watch, 0.0, 5.0)
    assert watch.open and watch.next_deadline == pytest.approx(last + STREAM_GAP_S)
    assert watch.stream_ends == 0


def test_a_stop_of_a_second_ends_the_stream_once_and_audio_reopens_it() -> None:
    """No audio for a second: one audioStreamEnd at the deadline (not before), then nothing
    until audio comes again; a second stop ends the reopened stream again."""
    watch = AudioStreamWatch()
    last = flowing(watch, 0.0, 2.0)
    assert not watch.tick(last + 0.999, connected=True)
    assert watch.tick(last + 1.0, connected=True)
    assert not watch.open and watch.next_deadline is None
    assert not watch.tick(last + 5.0, connected=True)
    last = flowing(watch, 10.0, 0.5)
    assert watch.open
    assert watch.tick(last + 1.5, connected=True)
    assert watch.stream_ends == 2


def test_pauses_shorter_than_the_gap_are_not_a_stop() -> None:
    """A 0.9 s hole in the chunks (a scheduling hiccup) sends nothing."""
    watch = AudioStreamWatch()
    last = flowing(watch, 0.0, 1.0)
    assert not watch.tick(last + 0.9, connected=True)
    flowing(watch, last + 0.9, 1.0)
    assert watch.stream_ends == 0


def test_a_stop_while_offline_is_ended_on_the_next_connection() -> None:
    """The gap passes while no connection is up: nothing is sent then (it would only be held),
    and the stream is ended as soon as a connection is ready, once per connection while the
    microphone stays stopped; never while audio flows, never before any audio at all."""
    watch = AudioStreamWatch()
    assert not watch.connection_ready()  # no audio yet: nothing to end
    last = flowing(watch, 0.0, 1.0)
    assert not watch.connection_ready()  # flowing: the next stop ends it
    assert not watch.tick(last + 1.2, connected=False)
    assert not watch.open
    assert watch.connection_ready()
    assert watch.connection_ready()  # a later reconnect replays audio again: end that too
    flowing(watch, 20.0, 0.2)
    assert not watch.connection_ready()
    assert watch.stream_ends == 2


def test_the_gap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="gap_s must be > 0"):
        AudioStreamWatch(0.0)


@given(
    st.lists(
        st.tuples(st.sampled_from(["audio", "tick", "offline-tick", "ready"]), st.floats(0, 3)),
        max_size=60,
    )
)
def test_every_end_follows_a_stop_of_at_least_the_gap(steps: list[tuple[str, float]]) -> None:
    """Whatever the order of chunks, ticks and reconnects: a tick ends the stream only when the
    last audio is at least `gap_s` old, at most once per stop, and a reconnect only while the
    microphone is stopped after some audio."""
    watch = AudioStreamWatch()
    now = 0.0
    last_audio: float | None = None
    ended_since_audio = False
    for kind, step_s in steps:
        now += step_s
        if kind == "audio":
            watch.audio_sent(now)
            last_audio, ended_since_audio = now, False
        elif kind in ("tick", "offline-tick"):
            open_before = watch.open
            sent = watch.tick(now, connected=kind == "tick")
            if sent:
                assert last_audio is not None and now - last_audio >= watch.gap_s
                assert not ended_since_audio
                ended_since_audio = True
            if open_before and not watch.open:
                ended_since_audio = True
        else:
            sent = watch.connection_ready()
            assert sent == (last_audio is not None and not watch.open)
