"""The camera streamer on a real event loop with real threads, sources and JPEG encoding.

Timing here is real (1 frame/s), so assertions leave wide margins for a shared, busy machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import simplejpeg

from pilive.camera import (
    CameraMode,
    CameraState,
    CameraStreamer,
    FrameSource,
    make_source_factory,
)
from pilive.live.retry import backoff
from tests.support.camera_rig import ScriptedSource, solid


class Sink:
    """Collects frames with their arrival time and the state changes, as the app would."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, bytes]] = []
        self.states: list[CameraState] = []

    def on_frame(self, jpeg: bytes) -> None:
        self.frames.append((time.monotonic(), jpeg))

    def on_status(self, state: CameraState, text: str) -> None:
        self.states.append(state)


def fast_backoff() -> Iterator[float]:
    return backoff(0.05, 0.2, jitter=0.0)


@contextlib.asynccontextmanager
async def running(streamer: CameraStreamer) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(streamer.run())
    try:
        yield task
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def streamer_for(
    factory: Callable[[], FrameSource] | None, sink: Sink, **kwargs: object
) -> CameraStreamer:
    options: dict[str, object] = {"backoff": fast_backoff, "on_status": sink.on_status}
    options.update(kwargs)
    return CameraStreamer(factory, on_frame=sink.on_frame, **options)  # type: ignore[arg-type]


async def test_on_activity_sends_a_frame_at_the_press_then_one_per_second() -> None:
    """Held for 2.5 s: a frame within 0.5 s of the press, then about one per second (3 in
    all); none after the release. Frames are 768x768 JPEGs of the synthetic pattern."""
    sink = Sink()
    streamer = streamer_for(make_source_factory("synthetic"), sink)
    async with running(streamer):
        await wait_for(lambda: streamer.state is CameraState.READY)
        assert sink.frames == []  # ready but idle: nothing is sent without a press
        pressed = time.monotonic()
        streamer.activity_started()
        await asyncio.sleep(2.5)
        streamer.activity_ended()
        released = time.monotonic()
        await asyncio.sleep(1.5)
    times = [t for t, _ in sink.frames]
    assert len(times) == 3
    assert times[0] - pressed < 0.5
    assert all(t < released + 0.3 for t in times)
    assert all(0.7 < b - a < 1.3 for a, b in itertools.pairwise(times))
    for _, jpeg in sink.frames:
        assert simplejpeg.decode_jpeg_header(jpeg)[:2] == (768, 768)
    assert streamer.frames_sent == 3
    assert streamer.last_frame_ms is not None
    assert sink.states[:3] == [CameraState.READY, CameraState.STREAMING, CameraState.READY]


async def test_continuous_mode_follows_the_connection() -> None:
    """Continuous: frames flow only while connected, whatever the button does."""
    sink = Sink()
    source = ScriptedSource(solid((0, 0, 200), 480, 640))
    streamer = streamer_for(lambda: source, sink, mode=CameraMode.CONTINUOUS, size_px=256)
    async with running(streamer):
        await wait_for(lambda: streamer.state is CameraState.READY)
        streamer.activity_started()
        await asyncio.sleep(0.5)
        assert sink.frames == []  # a press alone does nothing in continuous mode
        streamer.connected_changed(True)
        await asyncio.sleep(2.3)
        streamer.connected_changed(False)
        await asyncio.sleep(1.2)
    assert len(sink.frames) == 3
    decoded = simplejpeg.decode_jpeg(sink.frames[0][1], colorspace="RGB")
    assert decoded.shape == (256, 256, 3)
    assert decoded[..., 2].mean() > 150  # blue stayed blue
    assert decoded[..., 0].mean() < 40


async def test_off_mode_and_no_camera_never_open_anything() -> None:
    """Mode off, or the "none" source, leaves the camera closed and says so in the status."""
    built: list[ScriptedSource] = []

    def factory() -> ScriptedSource:
        built.append(ScriptedSource())
        return built[-1]

    for streamer in (
        streamer_for(factory, Sink(), mode=CameraMode.OFF),
        streamer_for(make_source_factory("none"), Sink()),
    ):
        async with running(streamer):
            streamer.activity_started()
            streamer.connected_changed(True)
            await asyncio.sleep(0.3)
            assert streamer.state is CameraState.OFF
            assert streamer.status.startswith("camera off")
    assert built == []


async def test_failures_are_retried_and_logged_once_with_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Six failures in a row (captures and reopen probes) give one warning, one recovery line,
    one FAILED state change and a status naming the fault; frames resume afterwards."""
    sink = Sink()
    source = ScriptedSource()
    streamer = streamer_for(lambda: source, sink, mode=CameraMode.CONTINUOUS, size_px=128)
    caplog.set_level(logging.INFO, logger="pilive.camera")
    async with running(streamer):
        await wait_for(lambda: streamer.state is CameraState.READY)
        streamer.connected_changed(True)
        await wait_for(lambda: len(sink.frames) == 1)
        source.fail_captures = 6
        await wait_for(lambda: streamer.state is CameraState.FAILED)
        assert "scripted capture failure" in streamer.status
        await wait_for(lambda: len(sink.frames) >= 3)
    assert streamer.failures == 6
    assert source.starts == 7  # first open and six reopens
    assert source.closes >= 7  # every failure closed the source; so did the shutdown
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    warnings = [m for level, m in messages if level == logging.WARNING]
    assert len(warnings) == 1
    assert "audio goes on" in warnings[0]
    assert sum("recovered" in m for _, m in messages) == 1
    assert sink.states.count(CameraState.FAILED) == 1


async def test_a_hung_camera_is_abandoned_and_a_fresh_one_used() -> None:
    """A capture that never returns becomes a failure after capture_timeout_s; a new source
    on a new thread takes over; the hung source is closed only once it lets go."""
    sink = Sink()
    sources: list[ScriptedSource] = []

    def factory() -> ScriptedSource:
        sources.append(ScriptedSource())
        return sources[-1]

    streamer = streamer_for(factory, sink, capture_timeout_s=0.3, size_px=64)
    async with running(streamer):
        await wait_for(lambda: streamer.state is CameraState.READY)
        sources[0].hang.set()
        streamer.activity_started()
        await wait_for(lambda: streamer.state is CameraState.FAILED)
        await wait_for(lambda: len(sink.frames) >= 1)
        streamer.activity_ended()
        assert sources[0].closes == 0  # still stuck in capture: nobody closed under its feet
        sources[0].release.set()
        await wait_for(lambda: sources[0].closes == 1)
    assert len(sources) == 2
    assert sources[0].capture_threads.isdisjoint(sources[1].capture_threads)
    assert streamer.failures == 1


async def test_a_frame_that_outlives_its_press_is_dropped() -> None:
    """Released while the capture is still running: the late frame is dropped, not sent."""
    sink = Sink()
    source = ScriptedSource()
    streamer = streamer_for(lambda: source, sink, size_px=64)
    async with running(streamer):
        await wait_for(lambda: streamer.state is CameraState.READY)
        source.delay_s = 0.6
        streamer.activity_started()
        await asyncio.sleep(0.2)
        streamer.activity_ended()
        await wait_for(lambda: streamer.frames_dropped == 1)
    assert sink.frames == []


async def test_cancel_closes_the_camera() -> None:
    """Cancelling run() closes the source on its thread and lets CancelledError through."""
    source = ScriptedSource()
    streamer = streamer_for(lambda: source, Sink())
    async with running(streamer):
        await wait_for(lambda: streamer.state is CameraState.READY)
    assert source.closes == 1


async def tick(times: list[float], period_s: float = 0.020) -> None:
    """A 20 ms periodic task like the mic sender: the loop time of each wake-up, until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        times.append(loop.time())
        await asyncio.sleep(period_s)


def longest_gap_s(times: list[float], start_s: float, end_s: float) -> float:
    """The longest the periodic task went without waking, over [start_s, end_s]: from the last
    wake-up before `start_s` to the first after `end_s`."""
    before = [t for t in times if t <= start_s][-1:]
    after = [t for t in times if t >= end_s][:1]
    inside = before + [t for t in times if start_s < t < end_s] + after
    assert before and after, "the task must run on both sides of the camera's call"
    return max(b - a for a, b in itertools.pairwise(inside))


@pytest.mark.parametrize("fault", ["slow", "hung"])
async def test_a_slow_or_hung_camera_does_not_delay_audio_chunks(fault: str) -> None:
    """While a capture takes 3 s (or hangs until released after 3 s), a 20 ms audio-like task on
    the loop keeps waking: its longest gap over that call stays under 1 s however busy the
    machine (a camera call on the loop would stop it for the whole 3 s, or for ever), and every
    capture ran on a camera worker thread, never on the loop's. The streamer, which gives up a
    capture after 1.5 s, reopens the camera meanwhile."""
    sink = Sink()
    source = ScriptedSource(solid((90, 90, 90), 480, 640))
    streamer = streamer_for(lambda: source, sink, mode=CameraMode.CONTINUOUS, capture_timeout_s=1.5)
    times: list[float] = []
    ticker = asyncio.create_task(tick(times))
    try:
        async with running(streamer):
            await wait_for(lambda: streamer.state is CameraState.READY)
            probes = len(source.capture_starts)
            if fault == "slow":
                source.delay_s = 3.0
            else:
                source.hang.set()
            streamer.connected_changed(True)
            await wait_for(lambda: len(source.capture_starts) > probes)
            first_start_s = source.capture_starts[probes]  # the first slow or hung call
            if fault == "hung":
                await asyncio.sleep(3.0)
                source.release.set()

            def first_faulty() -> tuple[float, float] | None:
                """That call's span once it has ended (the streamer's retries, on other worker
                threads, may end before or after it)."""
                return next((s for s in source.capture_spans if s[0] == first_start_s), None)

            await wait_for(lambda: first_faulty() is not None, timeout_s=30)
            await asyncio.sleep(0.1)  # a wake-up after the call's end
            call = first_faulty()
            assert call is not None
            call_start_s, call_end_s = call
            assert streamer.failures >= 1  # the streamer noticed (capture timed out)
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
    assert call_end_s - call_start_s >= 2.9  # the camera really was in trouble that long
    assert longest_gap_s(times, call_start_s, call_end_s) < 1.0
    assert threading.get_ident() not in source.capture_threads
