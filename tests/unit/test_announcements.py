"""The queue of announcements waiting for the speaker: order, the bound, and the age limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pilive.announcements import KEEP_S, MAX_WAITING, Announcements


def test_oldest_first_and_each_said_once() -> None:
    queue = Announcements()
    assert queue.add("one", 0.0) and queue.add("two", 1.0)
    first = queue.next()
    assert first is not None and first.text == "one"
    assert queue.next() == first  # not taken until said: a refused one stays first
    queue.taken()
    second = queue.next()
    assert second is not None and second.text == "two"
    queue.taken()
    assert queue.next() is None and len(queue) == 0


def test_a_full_queue_refuses_and_keeps_what_waits() -> None:
    """A flood (a looping automation) cannot grow memory: the ninth is refused, the eight stay."""
    queue = Announcements()
    for i in range(MAX_WAITING):
        assert queue.add(f"text {i}", float(i))
    assert not queue.add("one too many", 10.0)
    assert len(queue) == MAX_WAITING
    head = queue.next()
    assert head is not None and head.text == "text 0"


def test_stale_ones_are_dropped_and_make_room() -> None:
    """Older than KEEP_S: dropped (and returned, for the log), never said late; the room they
    leave takes a new one."""
    queue = Announcements()
    for i in range(MAX_WAITING):
        queue.add(f"text {i}", float(i))
    assert queue.expire(KEEP_S) == []  # exactly KEEP_S old is still fresh
    dropped = queue.expire(KEEP_S + 1.5)
    assert [w.text for w in dropped] == ["text 0", "text 1"]
    assert queue.add("new", KEEP_S + 1.5)
    assert [w.text for w in queue.clear()] == [f"text {i}" for i in range(2, MAX_WAITING)] + ["new"]
    assert len(queue) == 0


@given(st.lists(st.tuples(st.sampled_from(["add", "take", "expire"]), st.floats(0, 50))))
def test_bounded_and_fresh_whatever_comes(steps: list[tuple[str, float]]) -> None:
    """Any mix of adds, takes and expiries on a moving clock: never more than the bound, and
    after an expiry nothing older than keep_s is left."""
    queue = Announcements(max_waiting=3, keep_s=20.0)
    now = 0.0
    for action, step_s in steps:
        now += step_s
        if action == "add":
            queue.add("x", now)
        elif action == "take" and queue.next() is not None:
            queue.taken()
        else:
            queue.expire(now)
            head = queue.next()
            assert head is None or now - head.queued_at_s <= 20.0
        assert len(queue) <= 3
