"""The session resumption handle, persisted so a restart keeps the conversation.

The Live API lets a client resume a session with the newest `sessionResumptionUpdate.newHandle`.
Keeping it on disk means a daemon restart (crash, watchdog, upgrade, power cut) continues the same
conversation. The file is replaced atomically (write to a temporary file in the same directory,
fsync, rename, fsync the directory), so a power cut leaves either the old handle or the new one,
never a torn file. Readers treat any damage as "no handle" and say why.

These are small blocking file operations (fsync on an SD card can take tens of ms): callers on the
event loop run them with `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

HANDLE_FILE_NAME = "resumption.json"
_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class StoredHandle:
    """A handle read back from disk, with its age so the caller can judge it."""

    handle: str
    saved_at_unix_s: float

    def age_s(self, now_unix_s: float) -> float:
        return max(0.0, now_unix_s - self.saved_at_unix_s)

    def __repr__(self) -> str:
        # A handle lets anyone with the key resume the conversation: keep it out of logs.
        return f"StoredHandle(<{len(self.handle)} chars>, saved_at_unix_s={self.saved_at_unix_s})"


class LoadOutcome(Enum):
    """Why `load` returned what it did; the daemon logs it once at start."""

    LOADED = "loaded"
    MISSING = "missing"
    EXPIRED = "expired"
    CORRUPT = "corrupt"


@dataclass(frozen=True, slots=True)
class LoadResult:
    outcome: LoadOutcome
    stored: StoredHandle | None = None
    detail: str = ""


class HandleStore:
    """Reads and atomically replaces the handle file in the daemon's state directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / HANDLE_FILE_NAME

    def save(self, handle: str, now_unix_s: float) -> None:
        """Replace the stored handle; after return it survives a power cut."""
        if not handle:
            raise ValueError("refusing to store an empty resumption handle")
        self.directory.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(
            {"version": _FORMAT_VERSION, "handle": handle, "saved_at_unix_s": now_unix_s}
        ).encode()
        fd, tmp_name = tempfile.mkstemp(prefix=".resumption-", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as tmp:
                os.fchmod(tmp.fileno(), 0o600)
                tmp.write(payload)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        self._fsync_directory()

    def load(self, now_unix_s: float, max_age_s: float) -> LoadResult:
        """The stored handle if present, readable and younger than `max_age_s`."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return LoadResult(LoadOutcome.MISSING)
        except OSError as exc:
            return LoadResult(LoadOutcome.CORRUPT, detail=f"{self.path}: {exc.strerror}")
        stored = _decode(raw)
        if stored is None:
            return LoadResult(LoadOutcome.CORRUPT, detail=f"{self.path}: not a handle file")
        age_s = stored.age_s(now_unix_s)
        if age_s > max_age_s:
            return LoadResult(
                LoadOutcome.EXPIRED,
                stored,
                detail=f"handle is {age_s:.0f} s old, limit {max_age_s:.0f} s",
            )
        return LoadResult(LoadOutcome.LOADED, stored, detail=f"handle is {age_s:.0f} s old")

    def clear(self) -> None:
        """Forget the conversation (the user asked for a new one, or the server rejected it)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
            self._fsync_directory()

    def _fsync_directory(self) -> None:
        # The rename is durable only once the directory entry itself is on disk.
        dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _decode(raw: bytes) -> StoredHandle | None:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("version") != _FORMAT_VERSION:
        return None
    handle = data.get("handle")
    saved_at = data.get("saved_at_unix_s")
    if not isinstance(handle, str) or not handle:
        return None
    if isinstance(saved_at, bool) or not isinstance(saved_at, int | float):
        return None
    return StoredHandle(handle, float(saved_at))
