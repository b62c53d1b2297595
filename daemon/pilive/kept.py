"""A small JSON object kept in the state directory: the household's settings and timers.

Built on `state.StateFile` (atomic replace, defensive read, write problems logged once and never
raised). These files change by hand, seldom (a mute, a volume step, a timer), and what they hold
matters after a power cut, so every write is made durable (fsync each time). Writes run on a
worker thread, in the order they were asked for on the event loop; loading happens once at start,
also off the loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pilive.state import Loaded, StateFile

log = logging.getLogger("pilive")

_FORMAT_VERSION = 1


class KeptJson:
    """One JSON object in `directory/name`; `kind`, `loss` and `kept` word the messages."""

    def __init__(self, directory: Path, name: str, *, kind: str, loss: str, kept: str) -> None:
        self._file = StateFile(directory, name, kind=kind, loss=loss, kept=kept, fsync_interval_s=0)
        self.path = self._file.path
        self._latest: bytes | None = None  # asked for and not yet being written
        self._on_done: list[Callable[[], None]] = []
        self._writer: asyncio.Task[None] | None = None

    @property
    def problem(self) -> str | None:
        """Why changes will not survive a restart, or None while they will."""
        return self._file.problem

    def load(self) -> Loaded:
        """Blocking: the kept object, or why there is none (run it with asyncio.to_thread)."""
        return self._file.load_object()

    def save_soon(self, data: dict[str, Any], on_done: Callable[[], None] | None = None) -> None:
        """Write `data` on a worker thread; a later call's data always wins on disk. Calls that
        come faster than the disk takes them (a script setting the volume in a loop) are folded
        into the newest: one write at a time and one waiting, whatever the rate."""
        self._latest = json.dumps({"version": _FORMAT_VERSION, **data}).encode()
        if on_done is not None:
            self._on_done.append(on_done)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(
                self._write_latest(), name=f"save {self.path.name}"
            )

    async def _write_latest(self) -> None:
        while self._latest is not None:
            payload, self._latest = self._latest, None
            callbacks, self._on_done = self._on_done, []
            try:
                await asyncio.to_thread(self._file.write, payload, self._file.next_generation())
            finally:
                for callback in callbacks:
                    callback()

    async def flush(self) -> None:
        """Wait for the writes under way (at shutdown)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
