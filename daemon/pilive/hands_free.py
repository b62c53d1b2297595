"""The hands-free microphone -> link path: every chunk goes out, and a stop says so.

The decision is the pure `live.audio_stream.AudioStreamWatch`; this is its clock. One timer at a
time, re-armed only when it fires (at most once per `gap_s`), so the 50 chunks a second cost one
`loop.time()` each and no timer churn.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from pilive.live.audio_stream import STREAM_GAP_S, AudioStreamWatch
from pilive.live.events import LinkState
from pilive.ratelimit import LogLimiter

log = logging.getLogger(__name__)


class AudioLink(Protocol):
    """What the path needs of `net.connection.LiveLink`."""

    @property
    def connected(self) -> bool: ...

    def send_audio(self, pcm: bytes | bytearray | memoryview) -> None: ...

    def send_audio_stream_end(self) -> None: ...


class HandsFreeAudio:
    """Sends mic chunks to the link and `audioStreamEnd` when they stop for `gap_s` or longer
    (the microphone muted, lost or stalled), and again on a new connection while they stay
    stopped. Audio that comes again simply reopens the stream."""

    def __init__(
        self, link: AudioLink, loop: asyncio.AbstractEventLoop, gap_s: float = STREAM_GAP_S
    ) -> None:
        self._link = link
        self._loop = loop
        self.watch = AudioStreamWatch(gap_s)
        self._timer: asyncio.TimerHandle | None = None
        self._log_limiter = LogLimiter()  # a flapping microphone stops every other second

    def send(self, pcm: bytes) -> None:
        """One mic chunk (on the loop, from the capture's callback)."""
        self._link.send_audio(pcm)
        self.watch.audio_sent(self._loop.time())
        if self._timer is None:
            self._arm()

    def link_changed(self, state: LinkState) -> None:
        if state is LinkState.CONNECTED and self.watch.connection_ready():
            self._end_stream("the microphone is still stopped on the new connection")

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        deadline = self.watch.next_deadline
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._due)

    def _due(self) -> None:
        self._timer = None
        if self.watch.tick(self._loop.time(), connected=self._link.connected):
            self._end_stream(f"no microphone audio for {self.watch.gap_s:g} s")
        self._arm()

    def _end_stream(self, why: str) -> None:
        if self._log_limiter.allow("end"):
            log.info("audioStreamEnd sent: %s%s", why, self._log_limiter.suffix("end"))
        self._link.send_audio_stream_end()
