"""The camera task: frames on schedule, captured and encoded off the event loop.

One worker thread per opened source does every blocking call (open, capture, crop and scale,
JPEG encode, close) and hands each result back with `loop.call_soon_threadsafe`, so the loop only
ever waits on a future. A source that fails or hangs is closed and reopened with backoff; audio
never waits for it. A hung call cannot be interrupted in Python, so its worker is abandoned (a
daemon thread that ends when the call returns) and the next attempt gets a fresh one.

Modes (the Live API takes at most 1 frame/s, and video shortens sessions and costs tokens):
- `on-activity` (default): a fresh frame at the press, then one per interval while held.
- `continuous`: one per interval whenever connected.
- `off`: no frames; the camera is not opened.

Frames sent are JPEG bytes, RGB, size_px square; `on_frame` runs on the loop thread. A frame
whose capture outlived the press (or connection) that asked for it is dropped, not sent late.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pilive.camera.base import FrameSource, SourceFactory
from pilive.camera.imaging import DEFAULT_JPEG_QUALITY, DEFAULT_SIZE_PX, frame_to_jpeg
from pilive.camera.schedule import FrameSchedule, interval_for_fps
from pilive.live import retry

log = logging.getLogger(__name__)

T = TypeVar("T")


class CameraMode(enum.Enum):
    ON_ACTIVITY = "on-activity"
    CONTINUOUS = "continuous"
    OFF = "off"

    @classmethod
    def parse(cls, text: str) -> CameraMode:
        for mode in cls:
            if mode.value == text:
                return mode
        choices = ", ".join(m.value for m in cls)
        raise ValueError(f"camera mode must be one of {choices}; got {text!r}")


class CameraState(enum.Enum):
    OFF = "off"  # mode off, or no camera configured
    STARTING = "starting"  # opening the source for the first time
    READY = "ready"  # open and working, no frames wanted right now
    STREAMING = "streaming"  # frames going out
    FAILED = "failed"  # the last open or capture failed; retrying with backoff


class _Worker:
    """A daemon thread running blocking calls in order; results go back through the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], asyncio.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, call: Callable[[], T]) -> asyncio.Future[T]:
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put((call, future))
        return future

    def stop(self) -> None:
        """Let the thread end after the calls already queued (it may be stuck in one)."""
        self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            call, future = job
            try:
                result = call()
            except Exception as exc:
                self._hand_back(future.set_exception, future, exc)
            else:
                self._hand_back(future.set_result, future, result)

    def _hand_back(
        self, setter: Callable[[Any], None], future: asyncio.Future[Any], value: object
    ) -> None:
        def settle() -> None:
            if not future.done():  # the waiter may have given up (hang) or been cancelled
                setter(value)

        # RuntimeError: the loop closed while this call hung; nobody is waiting for the result.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(settle)


_worker_numbers = itertools.count(1)


class _Hung(Exception):
    """A blocking camera call did not return in time; its thread is abandoned."""


def _close_quietly(source: FrameSource) -> None:
    try:
        source.close()
    except Exception as exc:
        log.debug("camera close failed: %s", exc)


def _start_and_probe(source: FrameSource) -> tuple[int, int]:
    """Open a source and take one frame, so "ready" means frames really come; returns (h, w)."""
    source.start()
    frame = source.capture_array()
    return frame.height_px, frame.width_px


class CameraStreamer:
    """Sends camera frames as JPEG bytes through `on_frame`, per mode and schedule.

    Call `activity_started`, `activity_ended` and `connected_changed` from the loop thread; run
    `run()` as a task for the daemon's lifetime and cancel it to stop. `clock` is a monotonic
    clock in seconds (injectable for tests); `on_status(state, text)` is told of each state
    change (for the systemd STATUS line), and the log gets one line per failure and recovery.
    """

    def __init__(
        self,
        source_factory: SourceFactory | None,
        *,
        on_frame: Callable[[bytes], None],
        fps: float = 1.0,
        size_px: int = DEFAULT_SIZE_PX,
        jpeg_quality: int = DEFAULT_JPEG_QUALITY,
        mode: CameraMode = CameraMode.ON_ACTIVITY,
        capture_timeout_s: float = 5.0,
        start_timeout_s: float = 15.0,
        backoff: Callable[[], Iterator[float]] = lambda: retry.backoff(1.0, 30.0, jitter=0.0),
        on_status: Callable[[CameraState, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        interval_s = interval_for_fps(fps)
        if not 16 <= size_px <= 4096:
            raise ValueError(f"camera size_px must be 16..4096, got {size_px!r}")
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"camera jpeg_quality must be 1..100, got {jpeg_quality!r}")
        if capture_timeout_s <= 0 or start_timeout_s <= 0:
            raise ValueError("camera capture_timeout_s and start_timeout_s must be positive")
        self._factory = source_factory
        self._on_frame = on_frame
        self._on_status = on_status
        self._clock = clock
        self._backoff = backoff
        self.fps = fps
        self.size_px = size_px
        self.jpeg_quality = jpeg_quality
        self.mode = mode
        self.capture_timeout_s = capture_timeout_s
        self.start_timeout_s = start_timeout_s
        self._schedule = FrameSchedule(interval_s)
        self._wake: asyncio.Event | None = None
        self._activity = False
        self._connected = False
        self._epoch = 0  # bumped by every press / connection change: frames from before drop
        self._suspended = False  # the privacy mute: the camera is closed, nothing is sent
        self._source: FrameSource | None = None
        self._source_name = ""
        self._worker: _Worker | None = None
        self._state = CameraState.OFF if self._disabled else CameraState.STARTING
        self._reason = ""
        self.frames_sent = 0
        self.frames_dropped = 0
        self.failures = 0
        self.last_frame_ms: float | None = None

    # -- inputs from the conversation and connection -------------------------------------------

    def activity_started(self) -> None:
        """The button went down: a fresh frame now, then one per interval (on-activity mode)."""
        self._activity = True
        if self.mode is CameraMode.ON_ACTIVITY:
            self._epoch += 1
            self._schedule.restart(self._clock())
            self._poke()

    def activity_ended(self) -> None:
        self._activity = False
        if self.mode is CameraMode.ON_ACTIVITY:
            self._epoch += 1
            self._schedule.stop()
            self._poke()

    def connected_changed(self, connected: bool) -> None:
        """A Live API session became usable (True) or was lost (False)."""
        if connected == self._connected:
            return
        self._connected = connected
        if self.mode is CameraMode.CONTINUOUS:
            self._epoch += 1
            if connected:
                self._schedule.restart(self._clock())
            else:
                self._schedule.stop()
            self._poke()

    def suspend(self) -> None:
        """The privacy mute: close the camera now and send nothing until `resume`. A frame being
        captured when this is called is dropped."""
        self._suspended = True
        self._epoch += 1
        self._schedule.stop()
        self._poke()

    def resume(self) -> None:
        """Open the camera again after `suspend`; frames follow the mode as before."""
        if not self._suspended:
            return
        self._suspended = False
        self._epoch += 1
        if self._wanted:
            self._schedule.restart(self._clock())
        self._poke()

    # -- status ---------------------------------------------------------------------------------

    @property
    def state(self) -> CameraState:
        return self._state

    @property
    def status(self) -> str:
        """One line for people: what the camera is doing and, after a failure, why."""
        name = self._source_name or "camera"
        if self._state is CameraState.OFF:
            if self._suspended:
                return "camera off (privacy mute)"
            return "camera off" if self._factory is not None else "camera off (no camera)"
        if self._state is CameraState.STARTING:
            return "camera starting"
        if self._state is CameraState.READY:
            return f"camera ready ({name})"
        if self._state is CameraState.STREAMING:
            return f"camera streaming ({name}, {self.fps:g} fps)"
        return f"camera failed: {self._reason}; retrying"

    # -- the task ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Stream until cancelled. Never raises for camera faults; those are retried."""
        self._wake = asyncio.Event()
        if self._disabled:
            self._set_state(CameraState.OFF)
            await asyncio.get_running_loop().create_future()  # park until cancelled
        assert self._factory is not None
        delays: Iterator[float] | None = None
        try:
            while True:
                self._wake.clear()
                if self._suspended:
                    await self._shut_down()  # the camera itself is closed, not just unread
                    self._set_state(CameraState.OFF)
                    await self._wake.wait()
                    continue
                if self._source is None:
                    if await self._open():
                        delays = None
                        continue
                    delays = delays or self._backoff()
                    await asyncio.sleep(next(delays))
                    continue
                delay_s = self._schedule.delay_s(self._clock()) if self._wanted else None
                if delay_s is None:
                    if self._state is CameraState.STREAMING:
                        self._set_state(CameraState.READY)
                    await self._wake.wait()
                    continue
                if delay_s > 0:
                    await self._wait_woken(delay_s)
                    continue
                if not await self._capture_and_send():
                    delays = delays or self._backoff()
                    await asyncio.sleep(next(delays))
        finally:
            await self._shut_down()

    @property
    def _disabled(self) -> bool:
        return self.mode is CameraMode.OFF or self._factory is None

    @property
    def _wanted(self) -> bool:
        if self._suspended:
            return False
        if self.mode is CameraMode.ON_ACTIVITY:
            return self._activity
        return self.mode is CameraMode.CONTINUOUS and self._connected

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _wait_woken(self, timeout_s: float) -> None:
        assert self._wake is not None
        try:
            async with asyncio.timeout(timeout_s):
                await self._wake.wait()
        except TimeoutError:
            pass  # the frame is due

    async def _call(self, call: Callable[[], T], timeout_s: float) -> T:
        """Run `call` on the worker thread; _Hung when it does not return within timeout_s."""
        if self._worker is None:
            name = f"pilive-camera-{next(_worker_numbers)}"
            self._worker = _Worker(asyncio.get_running_loop(), name)
        future = self._worker.submit(call)
        try:
            done, _ = await asyncio.wait({future}, timeout=timeout_s)
        except asyncio.CancelledError:
            future.cancel()
            raise
        if not done:
            future.cancel()
            raise _Hung(f"no answer within {timeout_s:g} s")
        return future.result()

    async def _open(self) -> bool:
        assert self._factory is not None
        factory = self._factory
        source: FrameSource | None = None

        def build() -> tuple[FrameSource, tuple[int, int]]:
            nonlocal source
            source = factory()
            return source, _start_and_probe(source)

        try:
            opened, (height, width) = await self._call(build, self.start_timeout_s)
        except Exception as exc:
            self._failed(f"did not start: {exc}", source, hung=isinstance(exc, _Hung))
            return False
        self._source = opened
        self._source_name = opened.name
        if self._state is CameraState.FAILED:
            log.info("camera recovered: %s gives %dx%d frames", opened.name, width, height)
        else:
            log.info("camera ready: %s gives %dx%d frames", opened.name, width, height)
        self._set_state(CameraState.READY)
        return True

    async def _capture_and_send(self) -> bool:
        source = self._source
        assert source is not None
        epoch = self._epoch
        size_px, quality = self.size_px, self.jpeg_quality
        started_s = self._clock()
        try:
            jpeg = await self._call(
                lambda: frame_to_jpeg(source.capture_array(), size_px, quality),
                self.capture_timeout_s,
            )
        except _Hung as exc:
            self._failed(f"capture hung: {exc}", source, hung=True)
            return False
        except Exception as exc:
            self._failed(f"capture failed: {exc}", source, hung=False)
            return False
        finished_s = self._clock()
        self.last_frame_ms = (finished_s - started_s) * 1000.0
        if epoch != self._epoch or not self._wanted:
            self.frames_dropped += 1
            return True
        self._schedule.frame_sent(finished_s)
        self.frames_sent += 1
        self._set_state(CameraState.STREAMING)
        self._on_frame(jpeg)
        return True

    def _failed(self, reason: str, source: FrameSource | None, *, hung: bool) -> None:
        """Count a failure, say so once per failure streak, and close the source off-loop."""
        self.failures += 1
        self._source = None
        worker = self._worker
        if source is not None and worker is not None:
            # Queued behind the failed call: a hung source is closed only once it lets go.
            worker.submit(lambda: _close_quietly(source))
        if hung and worker is not None:
            worker.stop()  # abandoned: the next attempt gets a fresh thread
            self._worker = None
        if self._state is not CameraState.FAILED:
            log.warning("camera %s; audio goes on, retrying with backoff", reason)
            self._reason = reason
            self._set_state(CameraState.FAILED)
        else:
            log.debug("camera still failing: %s", reason)

    async def _shut_down(self) -> None:
        source, self._source = self._source, None
        worker = self._worker
        if source is not None and worker is not None:
            closing = worker.submit(source.close)
            done, _ = await asyncio.wait({closing}, timeout=self.capture_timeout_s)
            if done and closing.exception() is not None:
                log.warning("camera close failed: %s", closing.exception())
        if worker is not None:
            worker.stop()
        self._worker = None

    def _set_state(self, state: CameraState) -> None:
        if state is self._state:
            return
        self._state = state
        log.debug("camera state: %s", self.status)
        if self._on_status is not None:
            self._on_status(state, self.status)
