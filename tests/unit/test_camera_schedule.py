"""The pure frame schedule: drift-free over minutes, no bursts after stalls; and the backoff."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pilive.camera.schedule import FrameSchedule, interval_for_fps


def simulate(
    schedule: FrameSchedule,
    duration_s: float,
    latency_s: list[float],
    *,
    stalls: dict[int, float] | None = None,
    wake_late_s: float = 0.0,
    start_s: float = 100.0,
) -> list[float]:
    """Drive the schedule like the streamer does, on a simulated clock; returns send times.

    The loop wakes `wake_late_s` after each due time (a busy loop), a capture takes the next
    latency, and frame number k in `stalls` takes that many extra seconds (a stalled camera).
    """
    stalls = stalls or {}
    now = start_s
    schedule.restart(now)
    sent: list[float] = []
    while True:
        due = schedule.next_due_s
        assert due is not None
        now = max(now, due + wake_late_s)
        now += latency_s[len(sent) % len(latency_s)] + stalls.get(len(sent), 0.0)
        if now >= start_s + duration_s:
            return sent
        sent.append(now)
        schedule.frame_sent(now)


def test_a_minute_at_1_fps_is_60_frames_without_drift() -> None:
    """60 frames in a simulated minute with jittery latency and a late loop; the last frame is
    still within one latency of 59 s after the first slot (late frames do not push the grid)."""
    rng = random.Random(7)
    latency = [rng.uniform(0.005, 0.25) for _ in range(97)]
    sent = simulate(FrameSchedule(1.0), 60.0, latency, wake_late_s=0.02)
    assert 59 <= len(sent) <= 61
    assert sent[-1] - 100.0 == pytest.approx(59.0, abs=0.3)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert sum(gaps) / len(gaps) == pytest.approx(1.0, abs=0.01)


def test_a_ten_minute_run_has_no_drift() -> None:
    """Over ten simulated minutes the count is exactly one per second: error does not add up."""
    sent = simulate(FrameSchedule(1.0), 600.0, [0.04, 0.07, 0.11], wake_late_s=0.003)
    assert len(sent) == 600


def test_after_a_stall_frames_are_skipped_not_bunched() -> None:
    """A 3.7 s stall costs the slots it covered; the next frames keep >= 0.5 s apart and return
    to the original grid instead of catching up with a burst."""
    sent = simulate(FrameSchedule(1.0), 60.0, [0.05], stalls={10: 3.7, 30: 0.95, 31: 0.6})
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= 0.5
    assert 52 <= len(sent) <= 57
    after = [t for t in sent if t > 145.0]  # after the last stall
    assert all(abs((t - 100.0) % 1.0 - 0.05) < 1e-6 for t in after)  # back on the grid


@given(
    latencies=st.lists(st.floats(0.0, 2.5), min_size=1, max_size=40),
    fps=st.sampled_from([1.0, 0.5, 0.25, 0.8]),
    wake_late_s=st.floats(0.0, 0.3),
)
def test_frames_never_closer_than_half_an_interval(
    latencies: list[float], fps: float, wake_late_s: float
) -> None:
    """Whatever the capture times, sends are >= interval/2 apart, and never more frames than
    the duration allows."""
    interval_s = interval_for_fps(fps)
    sent = simulate(FrameSchedule(interval_s), 40.0, latencies, wake_late_s=wake_late_s)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert all(gap >= interval_s / 2 - 1e-9 for gap in gaps)
    assert len(sent) <= 40.0 / interval_s + 1


def test_restart_makes_a_frame_due_at_once_and_stop_clears_it() -> None:
    """A press (restart) wants a frame now; a release (stop) wants none."""
    schedule = FrameSchedule(1.0)
    assert schedule.next_due_s is None
    assert not schedule.is_due(5.0)
    schedule.restart(5.0)
    assert schedule.is_due(5.0)
    assert schedule.delay_s(4.5) == pytest.approx(0.5)
    schedule.frame_sent(5.02)
    assert schedule.next_due_s == pytest.approx(6.0)
    assert schedule.delay_s(5.5) == pytest.approx(0.5)
    schedule.stop()
    assert schedule.delay_s(7.0) is None
    schedule.frame_sent(7.0)  # ignored while stopped
    assert schedule.next_due_s is None


@pytest.mark.parametrize("fps", [0, -1, 1.5, 30, float("nan"), float("inf")])
def test_fps_above_the_live_api_limit_is_refused(fps: float) -> None:
    """fps must be in (0, 1]: the Live API takes at most one frame per second."""
    with pytest.raises(ValueError, match="fps"):
        interval_for_fps(fps)


def test_bad_schedule_arguments_are_named() -> None:
    """A non-positive interval or a gap larger than it is refused by name."""
    with pytest.raises(ValueError, match="interval_s"):
        FrameSchedule(0)
    with pytest.raises(ValueError, match="min_gap_s"):
        FrameSchedule(1.0, min_gap_s=2.0)
