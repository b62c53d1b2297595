"""What survives a restart, in the state directory: the session resumption handle, so a restart
keeps the conversation, and the day's token count (`usage.json`), so a restart does not reset the
daily limit. Both are small files written the same way (`StateFile`).

The Live API lets a client resume a session with the newest `sessionResumptionUpdate.newHandle`.
Keeping it on disk means a daemon restart (crash, watchdog, upgrade, power cut) continues the same
conversation. The file is replaced atomically (write a temporary file in the same directory, then
rename it over the old one), so a reader sees either the old handle or the new one, never a mix.

Durability is rate-limited: a handle arrives with every turn, and an fsync per handle wears an SD
card. A save fsyncs the file and the directory only when the last fsync is `fsync_interval_s` old
(60 s by default); in between, the kernel writes the renamed file back by itself (ext4 commits
every 5 s, dirty pages are written within 30 s). A power cut in that window costs at most the
newest handle: the file then holds an older handle or fails to parse, and either way the daemon
starts cleanly.

Nothing here may stop the speaker. A state directory that cannot be written (a read-only SD card,
wrong ownership, a file where the directory should be) costs only the memory of the conversation
across restarts: `save` and `clear` never raise for I/O, and `problem` says what is wrong so STATUS
can show it. A damaged file (not JSON, nested too deeply, a FIFO or a directory in its place, far
too large, a timestamp that is not a sane time) means "start a fresh conversation", with the
reason in `LoadResult.detail`.

Saves may run on several worker threads at once; each carries a generation taken on the event
loop (`next_generation`), and one older than what is already on disk is skipped, so the newest
handle always wins.

These are small blocking file operations: callers on the event loop run them with
`asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any

from pilive.live.session import MAX_HANDLE_CHARS

log = logging.getLogger("pilive.state")

HANDLE_FILE_NAME = "resumption.json"
USAGE_FILE_NAME = "usage.json"
MAX_FILE_BYTES = 64 * 1024
"""A state file larger than this is damage: it is not even read whole."""
FUTURE_TOLERANCE_S = 60.0
"""A handle saved further than this in the future has an unknown age and is not used."""
DEFAULT_FSYNC_INTERVAL_S = 60.0
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


class Unusable(Exception):
    """A state file exists but is not something to read (why is the message)."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """What `StateFile.load_object` found: `data` is the object when LOADED, else empty."""

    outcome: LoadOutcome  # LOADED, MISSING or CORRUPT
    data: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


class StateFile:
    """One small file in the state directory: replaced atomically, read defensively, its write
    problems kept in `problem` (logged once) instead of raised.

    `kind` names the file in messages ("is a directory, not a handle file"); `loss` says what a
    write problem costs ("the conversation will not be kept across restarts"); `kept` what comes
    back when writing works again. Writes carry a generation (`next_generation`, taken on the
    event loop); one older than what is on disk is skipped. fsync at most every
    `fsync_interval_s` (see the module docstring).
    """

    def __init__(
        self,
        directory: Path,
        name: str,
        *,
        kind: str,
        loss: str,
        kept: str,
        fsync_interval_s: float = DEFAULT_FSYNC_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.path = directory / name
        self.kind = kind
        self.loss = loss
        self.kept = kept
        self.fsync_interval_s = fsync_interval_s
        self._monotonic = monotonic
        self._io_lock = threading.Lock()  # held across file I/O, never on the event loop
        self._counter_lock = threading.Lock()  # held only to count: the loop may take it
        self._generation = 0
        self._written_generation = 0
        self._last_fsync_s: float | None = None
        self._problem: str | None = None

    @property
    def problem(self) -> str | None:
        return self._problem

    def next_generation(self) -> int:
        """Order a write or removal: take this on the event loop, in the order requests arise."""
        with self._counter_lock:
            self._generation += 1
            return self._generation

    def write(self, payload: bytes, generation: int) -> bool:
        """Replace the file; False when skipped (a newer request won) or not possible."""
        with self._io_lock:
            if generation < self._written_generation:
                return False
            now_s = self._monotonic()
            durable = (
                self._last_fsync_s is None or now_s - self._last_fsync_s >= self.fsync_interval_s
            )
            try:
                self._replace(payload, durable=durable)
            except OSError as exc:
                self._set_problem(f"cannot write {self.path}: {_reason(exc)}")
                return False
            if durable:
                self._last_fsync_s = now_s
            self._written_generation = generation
            self._set_problem(None)
            return True

    def remove(self, generation: int) -> None:
        """Delete the file; never raises for I/O (a failure is noted in `problem`)."""
        with self._io_lock:
            if generation < self._written_generation:
                return
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                self._set_problem(f"cannot remove {self.path}: {_reason(exc)}")
                return
            else:
                try:
                    self._fsync_directory()
                except OSError as exc:
                    self._set_problem(f"cannot write {self.directory}: {_reason(exc)}")
                    return
            self._written_generation = generation

    def read(self) -> bytes:
        """The file's bytes, refusing anything but a small regular file without blocking.

        Raises FileNotFoundError, `Unusable` (with why) or OSError. lstat first, so a device node
        is never opened; then O_NOFOLLOW | O_NONBLOCK and fstat, so a symlink or FIFO swapped in
        between is refused too and a FIFO never blocks.
        """
        _require_small_regular_file(os.lstat(self.path), self.kind)
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _require_small_regular_file(os.fstat(fd), self.kind)
            chunks: list[bytes] = []
            total = 0
            while total <= MAX_FILE_BYTES:
                chunk = os.read(fd, MAX_FILE_BYTES + 1 - total)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        finally:
            os.close(fd)
        if total > MAX_FILE_BYTES:
            raise Unusable(f"grew past {MAX_FILE_BYTES} bytes while being read")
        return b"".join(chunks)

    def load_object(self) -> Loaded:
        """The file's version-1 JSON object, or why there is none: the reading ladder every state
        file shares (callers check the fields). Blocking; also runs `check_writable`."""
        self.check_writable()
        try:
            raw = self.read()
        except FileNotFoundError:
            return Loaded(LoadOutcome.MISSING)
        except Unusable as exc:
            return Loaded(LoadOutcome.CORRUPT, detail=f"{self.path}: {exc}")
        except OSError as exc:
            return Loaded(LoadOutcome.CORRUPT, detail=f"{self.path}: {_reason(exc)}")
        try:
            data = json.loads(raw, parse_constant=_reject_constant)
        except RecursionError:
            why = f"nested too deeply to be a {self.kind}"
        except ValueError:  # UnicodeDecodeError included
            why = f"not a {self.kind} (not JSON)"
        else:
            if isinstance(data, dict) and data.get("version") == _FORMAT_VERSION:
                return Loaded(LoadOutcome.LOADED, data)
            why = f"not a {self.kind} (no version 1 object)"
        return Loaded(LoadOutcome.CORRUPT, detail=f"{self.path}: {why}")

    def check_writable(self) -> None:
        """Note in `problem` a state directory that exists but cannot be written, so the daemon
        can say so before the first write fails."""
        try:
            is_dir = stat.S_ISDIR(os.stat(self.directory).st_mode)
        except OSError:
            return  # missing (made at the first save) or unreachable (the save will say)
        if is_dir and not os.access(self.directory, os.W_OK | os.X_OK):
            reason = "read-only" if _read_only_filesystem(self.directory) else "permission denied"
            self._set_problem(f"cannot write {self.directory}: {reason}")

    def _replace(self, payload: bytes, *, durable: bool) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.stem}-", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as tmp:
                os.fchmod(tmp.fileno(), 0o600)
                tmp.write(payload)
                tmp.flush()
                if durable:
                    os.fsync(tmp.fileno())
            os.replace(tmp_name, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        if durable:
            self._fsync_directory()

    def _set_problem(self, problem: str | None) -> None:
        if problem is not None and self._problem is None:
            log.warning("%s: %s; talking goes on", self.loss, problem)
        elif problem is None and self._problem is not None:
            log.info("the state directory is writable again; %s", self.kept)
        self._problem = problem

    def _fsync_directory(self) -> None:
        # The rename is durable only once the directory entry itself is on disk.
        dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class HandleStore:
    """Reads and atomically replaces the handle file in the daemon's state directory."""

    def __init__(
        self,
        directory: Path,
        *,
        fsync_interval_s: float = DEFAULT_FSYNC_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._file = StateFile(
            directory,
            HANDLE_FILE_NAME,
            kind="handle file",
            loss="the conversation will not be kept across restarts",
            kept="the conversation is kept",
            fsync_interval_s=fsync_interval_s,
            monotonic=monotonic,
        )
        self.directory = directory
        self.path = self._file.path

    @property
    def problem(self) -> str | None:
        """Why the conversation will not be kept across restarts, or None while it will be."""
        return self._file.problem

    def next_generation(self) -> int:
        """Order a save or clear: take this on the event loop, in the order the requests arise."""
        return self._file.next_generation()

    def save(self, handle: str, now_unix_s: float, generation: int | None = None) -> bool:
        """Replace the stored handle; False when skipped (a newer request won) or not possible."""
        if not handle:
            raise ValueError("refusing to store an empty resumption handle")
        if generation is None:
            generation = self.next_generation()
        if len(handle) > MAX_HANDLE_CHARS:
            # Storing it would only make the next start refuse it; an older handle on disk would
            # roll the conversation back. Forget the conversation on disk instead.
            log.warning(
                "resumption handle of %d chars not stored (limit %d)", len(handle), MAX_HANDLE_CHARS
            )
            self.clear(generation)
            return False
        payload = json.dumps(
            {"version": _FORMAT_VERSION, "handle": handle, "saved_at_unix_s": now_unix_s}
        ).encode()
        return self._file.write(payload, generation)

    def load(self, now_unix_s: float, max_age_s: float) -> LoadResult:
        """The stored handle if present, readable, sane and younger than `max_age_s`.

        Also notes in `problem` a state directory that exists but cannot be written, so the
        daemon can say so before the first save fails.
        """
        loaded = self._file.load_object()
        if loaded.outcome is not LoadOutcome.LOADED:
            return LoadResult(loaded.outcome, detail=loaded.detail)
        stored, why = _decode(loaded.data)
        if stored is None:
            return LoadResult(LoadOutcome.CORRUPT, detail=f"{self.path}: {why}")
        ahead_s = stored.saved_at_unix_s - now_unix_s
        if ahead_s > FUTURE_TOLERANCE_S:
            return LoadResult(
                LoadOutcome.EXPIRED,
                stored,
                detail=f"handle was saved {ahead_s:.0f} s in the future (the clock was changed?)",
            )
        age_s = stored.age_s(now_unix_s)
        if age_s > max_age_s:
            return LoadResult(
                LoadOutcome.EXPIRED,
                stored,
                detail=f"handle is {age_s:.0f} s old, limit {max_age_s:.0f} s",
            )
        return LoadResult(LoadOutcome.LOADED, stored, detail=f"handle is {age_s:.0f} s old")

    def clear(self, generation: int | None = None) -> None:
        """Forget the conversation (the user asked for a new one, or the server rejected it).

        Never raises for I/O: a file that cannot be removed is noted in `problem`.
        """
        if generation is None:
            generation = self.next_generation()
        self._file.remove(generation)


def _require_small_regular_file(st: os.stat_result, kind: str) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise Unusable(f"is a directory, not a {kind}")
    if not stat.S_ISREG(st.st_mode):
        raise Unusable("is not a regular file (a FIFO, device, socket or symbolic link)")
    if st.st_size > MAX_FILE_BYTES:
        raise Unusable(f"is {st.st_size} bytes, more than a {kind}'s {MAX_FILE_BYTES}")


def _read_only_filesystem(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number JSON allows")


def _decode(data: dict[str, Any]) -> tuple[StoredHandle | None, str]:
    """The handle in a handle file's object, or None and why not."""
    handle = data.get("handle")
    saved_at = data.get("saved_at_unix_s")
    if not isinstance(handle, str) or not handle:
        return None, "not a handle file (no handle)"
    if len(handle) > MAX_HANDLE_CHARS:
        return None, f"the handle is {len(handle)} chars, more than {MAX_HANDLE_CHARS}"
    if isinstance(saved_at, bool) or not isinstance(saved_at, int | float):
        return None, "not a handle file (no saved_at_unix_s number)"
    try:
        saved_at_s = float(saved_at)
    except OverflowError:
        saved_at_s = math.inf
    if not math.isfinite(saved_at_s) or saved_at_s < 0:
        return None, f"saved_at_unix_s = {saved_at!r} is not a time"
    return StoredHandle(handle, saved_at_s), ""


# -- the day's token count ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredUsage:
    """The tokens billed on one local day, as kept across a restart."""

    day: date
    spent_tokens: int


@dataclass(frozen=True, slots=True)
class UsageLoadResult:
    outcome: LoadOutcome  # LOADED, MISSING or CORRUPT
    stored: StoredUsage | None = None
    detail: str = ""


_MAX_SPENT_TOKENS = 2**63 - 1


class UsageStore:
    """The day's token count in the state directory, so a restart does not reset the daily limit.

    Saved after every turn that billed tokens, like the handle (same file discipline). A damaged
    file counts the day from 0, said in the load's detail: the limit then holds from the next
    turn on, which is all a lost file allows.
    """

    def __init__(
        self,
        directory: Path,
        *,
        fsync_interval_s: float = DEFAULT_FSYNC_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._file = StateFile(
            directory,
            USAGE_FILE_NAME,
            kind="token count file",
            loss="the day's token count will not be kept across restarts",
            kept="the day's token count is kept",
            fsync_interval_s=fsync_interval_s,
            monotonic=monotonic,
        )
        self.path = self._file.path

    @property
    def problem(self) -> str | None:
        """Why the day's count will not survive a restart, or None while it will."""
        return self._file.problem

    def next_generation(self) -> int:
        """Order a save: take this on the event loop, in the order the counts arise."""
        return self._file.next_generation()

    def save(self, stored: StoredUsage, generation: int | None = None) -> bool:
        """Replace the kept count; False when skipped (a newer count won) or not possible."""
        payload = json.dumps(
            {
                "version": _FORMAT_VERSION,
                "day": stored.day.isoformat(),
                "spent_tokens": stored.spent_tokens,
            }
        ).encode()
        if generation is None:
            generation = self.next_generation()
        return self._file.write(payload, generation)

    def load(self) -> UsageLoadResult:
        """The kept count if present and sane; notes an unwritable directory in `problem`."""
        loaded = self._file.load_object()
        if loaded.outcome is not LoadOutcome.LOADED:
            return UsageLoadResult(loaded.outcome, detail=loaded.detail)
        stored, why = _decode_usage(loaded.data)
        if stored is None:
            return UsageLoadResult(LoadOutcome.CORRUPT, detail=f"{self.path}: {why}")
        return UsageLoadResult(LoadOutcome.LOADED, stored)


def _decode_usage(data: dict[str, Any]) -> tuple[StoredUsage | None, str]:
    """The count in a token count file's object, or None and why not."""
    day_text = data.get("day")
    spent = data.get("spent_tokens")
    if not isinstance(day_text, str):
        return None, "not a token count file (no day)"
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        return None, f"day = {day_text[:40]!r} is not a date"
    if isinstance(spent, bool) or not isinstance(spent, int):
        return None, "not a token count file (no spent_tokens integer)"
    if not 0 <= spent <= _MAX_SPENT_TOKENS:
        return None, f"spent_tokens = {spent} is not a token count"
    return StoredUsage(day, spent), ""


# -- one daemon per state directory ------------------------------------------------------------


class AlreadyRunning(Exception):
    """Another daemon holds the state directory's lock."""


class StateLock:
    """An exclusive `flock` on the state directory itself, held until `release` or exit.

    The directory is locked rather than a lock file inside it so the guard holds even when the
    directory is read-only (a lock needs only an open descriptor). When the directory cannot be
    opened at all there is nothing shared to fight over; `held` is then False and `problem` says
    why. The descriptor is close-on-exec: a tool's child process never inherits the lock.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.problem: str | None = None
        self._fd: int | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            self.problem = f"cannot open the state directory {directory}: {_reason(exc)}"
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(
                f"another pilive is already running with the state directory {directory} "
                "(state.directory); stop it first"
            ) from None
        except OSError as exc:
            os.close(fd)
            self.problem = f"cannot lock the state directory {directory}: {_reason(exc)}"
            return
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
