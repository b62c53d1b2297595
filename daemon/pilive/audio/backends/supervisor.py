"""Keeps one audio stream open for the life of the daemon, whatever the device does.

A stream fails in two ways: PortAudio stops it (the ALSA read or write failed: USB unplugged,
PulseAudio restarted) or its callback simply stops coming. Neither is reported to us as an event
(PyAudio exposes no "stream finished" callback), so the supervisor checks the stream's activity and
the callback's heartbeat a few times a second: this is supervision, not data transfer, which always
goes from the callback to the loop by `call_soon_threadsafe`. A failed stream is closed and reopened
with jittered exponential backoff; the state (`ok`, `error_message`, counters, `heartbeat_s`) is
what the LEDs, systemd STATUS and the watchdog read.

Opening and closing run in a worker thread: Pa_OpenStream probes ALSA and can take tens of
milliseconds, which must not stall the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator

from pilive.audio.backends import AudioStream
from pilive.live import retry

log = logging.getLogger(__name__)


class StreamSupervisor:
    """Opens a stream with `open_stream()` (blocking; run in a thread) and keeps it open.

    The stream's callback calls `beat()` (or sets `heartbeat_s`) on every block.
    """

    def __init__(
        self,
        label: str,
        open_stream: Callable[[], AudioStream],
        *,
        stall_timeout_s: float = 3.0,
        start_grace_s: float = 4.0,
        check_interval_s: float = 0.1,
        backoff_min_s: float = 0.2,
        backoff_max_s: float = 5.0,
        close_timeout_s: float = 2.0,
    ) -> None:
        self.label = label
        self._open_stream = open_stream
        self._stall_timeout_s = stall_timeout_s
        self._start_grace_s = start_grace_s
        self._check_interval_s = check_interval_s
        self._backoff_min_s = backoff_min_s
        self._backoff_max_s = backoff_max_s
        self._close_timeout_s = close_timeout_s
        self.ok = False
        self.ended = False
        self.error_message: str | None = None
        self.opens = 0
        self.reopens = 0
        self.failures = 0
        self.heartbeat_s = 0.0
        self.opened_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def beat(self) -> None:
        """Called from the audio thread on every callback: the watchdog's proof of life."""
        self.heartbeat_s = time.monotonic()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"audio-{self.label}"
            )

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled ourselves, not just the task we stopped

    async def _run(self) -> None:
        delays = self._backoff()
        while True:
            try:
                stream = await asyncio.to_thread(self._open_stream)
            except OSError as exc:
                self._fail(str(exc))
                await asyncio.sleep(next(delays))
                continue
            delays = self._backoff()
            if self.opens:
                self.reopens += 1
                log.info("%s: device reopened (reopen #%d)", self.label, self.reopens)
            self.opens += 1
            self.ok = True
            self.error_message = None
            self.opened_event.set()
            try:
                reason = await self._watch(stream)
            finally:
                await self._close(stream)
            if reason is None:
                self.ended = True
                log.info("%s: stream ended", self.label)
                return
            self._fail(reason)
            await asyncio.sleep(next(delays))

    async def _watch(self, stream: AudioStream) -> str | None:
        """Returns why the stream failed, or None when it ended normally."""
        opened_s = time.monotonic()
        while True:
            await asyncio.sleep(self._check_interval_s)
            if stream.ended:
                return None
            if not stream.is_active():
                return f"{self.label} stream stopped by the device"
            # A new stream may pause after its first callbacks while the sound server starts it,
            # and PulseAudio restarts a stream it let run dry the same way (about 2 s, measured on
            # the rig): such pauses are not failures, so the stall limit sits above them.
            last_s = max(self.heartbeat_s, opened_s)
            starting = last_s - opened_s < self._start_grace_s
            allowed_s = self._start_grace_s if starting else self._stall_timeout_s
            if time.monotonic() - last_s > allowed_s:
                return f"{self.label} stream stalled (no audio for {allowed_s:g} s)"

    async def _close(self, stream: AudioStream) -> None:
        # shielded: a cancelled daemon still closes its device; a hung close is abandoned.
        closing = asyncio.ensure_future(asyncio.to_thread(stream.close))
        try:
            await asyncio.wait_for(asyncio.shield(closing), self._close_timeout_s)
        except TimeoutError:
            log.warning("%s: closing the stream hung; abandoned it", self.label)

    def _backoff(self) -> Iterator[float]:
        """Doubling delays with a little jitter, so two devices' retries do not fall together."""
        return retry.backoff(self._backoff_min_s, self._backoff_max_s, 2.0, jitter=0.2)

    def _fail(self, reason: str) -> None:
        self.failures += 1
        if self.ok or self.error_message != reason:
            log.warning("%s: %s; reopening", self.label, reason)
        self.ok = False
        self.error_message = reason


class SupervisedDevice:
    """What capture and playback show of their supervised stream: for LEDs, STATUS and the
    watchdog. Subclasses set `_supervisor` in their constructor."""

    _supervisor: StreamSupervisor

    @property
    def ok(self) -> bool:
        return self._supervisor.ok

    @property
    def error_message(self) -> str | None:
        return self._supervisor.error_message

    @property
    def heartbeat_s(self) -> float:
        """time.monotonic() of the latest device callback."""
        return self._supervisor.heartbeat_s

    @property
    def reopens(self) -> int:
        return self._supervisor.reopens

    async def wait_open(self) -> None:
        await self._supervisor.opened_event.wait()
