"""A thread of its own behind a bounded queue: how the microphone's DSP stays off the event loop.

The echo path and the wake word listener both take every microphone chunk on the loop, work on it
for longer than a loop callback may take, and hand results back. The loop only queues; a full
queue drops the chunk and counts it (a loop that waited for a busy thread would stall the link,
the button and the LED with it). Results go back with `call_soon_threadsafe`, never by waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")

_STOP_POLL_S = 0.1
"""How often a stop re-offers the sentinel to a full queue while the thread drains it."""
STOP_WAIT_S = 3.0
"""How long a stop waits for the thread; a library call hung longer than that is left behind
(the thread is a daemon thread), so that it cannot hold up the daemon's stop past systemd's."""


class ChunkWorker(Generic[Item]):
    """Runs `handle(item)` on thread `name` for each item `submit`ted on the loop, in order.

    `handle` returns False to end the thread (its library failed, or the loop is gone).
    `behind` is the warning logged at the first dropped item and every 500th, with `%d` for the
    count.
    """

    def __init__(
        self, name: str, handle: Callable[[Item], bool], *, max_items: int, behind: str
    ) -> None:
        self.name = name
        self._handle = handle
        self._behind = behind
        self._queue: queue.Queue[Item | None] = queue.Queue(max_items)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dropped = 0

    def start(self) -> None:
        """Start the thread (on the loop its results go to)."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def submit(self, item: Item) -> None:
        """Queue `item` (on the loop); never waits."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 500 == 0:
                log.warning(self._behind, self.dropped)

    def to_loop(self, callback: Callable[..., Any], *args: Any) -> bool:
        """Run `callback(*args)` on the loop soon (from the thread). False once the loop is gone:
        the daemon is stopping, and the thread should end."""
        loop = self._loop
        if loop is None:
            return False
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop closed
            return False
        return True

    async def aclose(self, wait_s: float = STOP_WAIT_S) -> bool:
        """End the thread after what is queued (it may be busy: waited for off the loop, at most
        `wait_s`). False when it is still running then: whatever it is in must not be freed."""
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        if thread.is_alive():
            await asyncio.to_thread(self._join, thread, time.monotonic() + wait_s)
        if thread.is_alive():
            log.warning("%s: its thread did not stop within %.1f s; left behind", self.name, wait_s)
            return False
        return True

    def _join(self, thread: threading.Thread, deadline_s: float) -> None:
        while thread.is_alive() and time.monotonic() < deadline_s:
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=_STOP_POLL_S)
            thread.join(_STOP_POLL_S)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or not self._handle(item):
                return
