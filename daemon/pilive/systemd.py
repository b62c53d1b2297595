"""systemd integration: sd_notify (READY, STATUS, WATCHDOG, STOPPING), a heartbeat-gated watchdog,
and logging to the journal with structured fields.

Not under systemd (no NOTIFY_SOCKET) the notifier does nothing, so the same daemon runs from a
terminal. Under systemd with Type=notify, a missing systemd-python is a hard error: without it
READY=1 never arrives and systemd would kill the service after TimeoutStartSec with no clue why.
systemd-python is imported by name at run time (importlib): the repository's top-level systemd/
directory of unit files would otherwise shadow it for type checkers.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO

log = logging.getLogger(__name__)

SYSLOG_IDENTIFIER = "pilive"


class SystemdUnavailable(RuntimeError):
    """NOTIFY_SOCKET is set but the systemd Python module is not installed."""


class Notifier:
    """Sends sd_notify messages through systemd-python when NOTIFY_SOCKET is set.

    A failed send is logged, not raised: the daemon keeps serving, and systemd's own timeouts
    (TimeoutStartSec, WatchdogSec) are what act on a missing message.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._send: Callable[[str], bool] | None = None
        if env.get("NOTIFY_SOCKET"):
            try:
                daemon = importlib.import_module("systemd.daemon")
            except ImportError as exc:
                raise SystemdUnavailable(
                    "NOTIFY_SOCKET is set (running as a systemd Type=notify service) but the "
                    "'systemd' Python module is missing: install python3-systemd (apt) or "
                    "systemd-python (pip) into the daemon's environment"
                ) from exc
            self._send = daemon.notify

    @property
    def enabled(self) -> bool:
        """Whether messages go anywhere (we run under systemd with a notify socket)."""
        return self._send is not None

    def notify(self, *assignments: str) -> None:
        """Send one message of VAR=value lines (see sd_notify(3))."""
        if self._send is None:
            return
        message = "\n".join(assignments)
        try:
            sent = self._send(message)
        except OSError as exc:
            log.warning("sd_notify %r failed: %s", message, exc)
            return
        if not sent:
            log.warning("sd_notify %r was not sent: NOTIFY_SOCKET vanished", message)

    def ready(self, status: str | None = None) -> None:
        """READY=1: local hardware is up (not waiting for the network)."""
        self.notify("READY=1", *([_status(status)] if status is not None else []))

    def status(self, text: str) -> None:
        """STATUS=...: one line saying what the daemon does, shown by `systemctl status`."""
        self.notify(_status(text))

    def watchdog(self) -> None:
        """WATCHDOG=1: we are alive; send at watchdog_interval_s()."""
        self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> None:
        """STOPPING=1: a clean shutdown has begun."""
        self.notify("STOPPING=1", *([_status(status)] if status is not None else []))


def _status(text: str) -> str:
    """STATUS is one line: newlines would start new assignments."""
    return "STATUS=" + " ".join(text.split())


def watchdog_interval_s(environ: Mapping[str, str] | None = None) -> float | None:
    """How often to send WATCHDOG=1: half of WatchdogSec, or None when no watchdog is ours.

    systemd sets WATCHDOG_USEC (and WATCHDOG_PID, the process it expects the pings from).
    """
    env = os.environ if environ is None else environ
    raw_usec = env.get("WATCHDOG_USEC")
    if not raw_usec:
        return None
    raw_pid = env.get("WATCHDOG_PID")
    if raw_pid:
        try:
            if int(raw_pid) != os.getpid():
                return None
        except ValueError:
            raise ValueError(f"WATCHDOG_PID must be a process id, got {raw_pid!r}") from None
    try:
        usec = int(raw_usec)
    except ValueError:
        raise ValueError(f"WATCHDOG_USEC must be microseconds, got {raw_usec!r}") from None
    if usec <= 0:
        raise ValueError(f"WATCHDOG_USEC must be > 0, got {raw_usec!r}")
    return usec / 1_000_000 / 2


class Heartbeats:
    """Liveness of the parts that can hang on their own (capture thread, playback side, ...).

    Pure bookkeeping: every method takes `now` (time.monotonic() seconds) from the caller.
    beat() is safe from any thread. A part registered without `now` counts as fresh until
    max_age_s after the first all_fresh() check, so a part that never starts still goes stale.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._max_age_s: dict[str, float] = {}
        self._last: dict[str, float | None] = {}
        self._sources: dict[str, Callable[[], float | None]] = {}

    def watch(self, name: str, max_age_s: float, last_beat_s: Callable[[], float | None]) -> None:
        """Watch a part that keeps its own heartbeat time (a device thread stamps it): read at
        each check; None from the getter means "not expected to beat now" (counts as fresh)."""
        self.register(name, max_age_s)
        with self._lock:
            self._sources[name] = last_beat_s

    def register(self, name: str, max_age_s: float, now: float | None = None) -> None:
        """Watch `name`: it must beat at least every max_age_s seconds."""
        if not max_age_s > 0:
            raise ValueError(f"heartbeat {name!r}: max_age_s must be > 0, got {max_age_s!r}")
        with self._lock:
            self._max_age_s[name] = max_age_s
            self._last[name] = now

    def unregister(self, name: str) -> None:
        """Stop watching `name` (it was stopped on purpose)."""
        with self._lock:
            self._max_age_s.pop(name, None)
            self._last.pop(name, None)
            self._sources.pop(name, None)

    def beat(self, name: str, now: float) -> None:
        """`name` is alive at `now`."""
        with self._lock:
            if name not in self._max_age_s:
                raise KeyError(f"unknown heartbeat {name!r}; registered: {sorted(self._max_age_s)}")
            self._last[name] = now

    def all_fresh(self, now: float) -> tuple[bool, tuple[str, ...]]:
        """(True, ()) when every part beat recently enough, else (False, stale names, sorted)."""
        stale = []
        with self._lock:
            for name, max_age_s in self._max_age_s.items():
                source = self._sources.get(name)
                if source is not None:
                    beat = source()
                    self._last[name] = now if beat is None else max(beat, self._last[name] or 0)
                last = self._last[name]
                if last is None:
                    self._last[name] = now  # first check: the grace period starts here
                elif now - last > max_age_s:
                    stale.append(name)
        return (not stale, tuple(sorted(stale)))


async def run_watchdog(
    notifier: Notifier,
    heartbeats: Heartbeats,
    interval_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    on_tick: Callable[[], None] | None = None,
) -> None:
    """Send WATCHDOG=1 every interval_s while all heartbeats are fresh; runs until cancelled.

    The event loop itself needs no heartbeat: this runs on it, so a blocked loop sends nothing
    and systemd restarts us after WatchdogSec. A stale part withholds the ping the same way.
    `on_tick` runs every interval (the app refreshes its STATUS line there).
    """
    stale_before: tuple[str, ...] = ()
    while True:
        fresh, stale = heartbeats.all_fresh(clock())
        if fresh:
            notifier.watchdog()
        if stale != stale_before:
            if stale:
                log.error("withholding the watchdog ping: %s stopped beating", ", ".join(stale))
            else:
                log.warning("all heartbeats fresh again; watchdog pings resumed")
            stale_before = stale
        if on_tick is not None:
            on_tick()
        await asyncio.sleep(interval_s)


# --- logging ---------------------------------------------------------------------------------

_FIELD = re.compile(r"[a-z0-9_]{1,56}")  # + "PILIVE_" stays within journald's 64 characters


def under_journal(environ: Mapping[str, str] | None = None) -> bool:
    """Whether we run as a systemd service whose output goes to the journal."""
    env = os.environ if environ is None else environ
    return bool(env.get("JOURNAL_STREAM") or env.get("INVOCATION_ID"))


def event_fields(event: str, **fields: object) -> dict[str, str]:
    """Journal fields for a structured event: PILIVE_EVENT=event, PILIVE_<KEY>=value."""
    out = {"PILIVE_EVENT": event}
    for key, value in fields.items():
        if _FIELD.fullmatch(key) is None:
            raise ValueError(f"journal field {key!r}: use lower-case letters, digits and '_'")
        out[f"PILIVE_{key.upper()}"] = str(value)
    return out


def log_event(
    logger: logging.Logger, event: str, message: str, level: int = logging.INFO, **fields: object
) -> None:
    """Log `message` with structured fields, e.g. log_event(log, "transcript", text, text=text,
    direction="input") -> PILIVE_EVENT=transcript PILIVE_TEXT=... in the journal."""
    logger.log(level, "%s", message, extra=event_fields(event, **fields))


class StderrFormatter(logging.Formatter):
    """Plain lines for a terminal, with any PILIVE_* fields appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {
            k[len("PILIVE_") :].lower(): v
            for k, v in vars(record).items()
            if k.startswith("PILIVE_") and k != "PILIVE_EVENT"
        }
        event = getattr(record, "PILIVE_EVENT", None)
        if event is not None:
            line += f" [{event}" + "".join(f" {k}={v!r}" for k, v in fields.items()) + "]"
        return line


_installed: list[logging.Handler] = []


def setup_logging(
    level: int | str = logging.INFO,
    *,
    environ: Mapping[str, str] | None = None,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Route the root logger to the journal (under systemd) or stderr; safe to call again.

    Under systemd without systemd-python, stderr is used (systemd puts it in the journal too,
    just without the structured fields) and a warning says so.
    """
    handler: logging.Handler | None = None
    missing_journal = False
    if under_journal(environ):
        try:
            journal = importlib.import_module("systemd.journal")
        except ImportError:
            missing_journal = True
        else:
            handler = journal.JournalHandler(SYSLOG_IDENTIFIER=SYSLOG_IDENTIFIER)
            handler.setFormatter(logging.Formatter("%(message)s"))
    if handler is None:
        handler = logging.StreamHandler(sys.stderr if stream is None else stream)
        handler.setFormatter(StderrFormatter())
    root = logging.getLogger()
    for old in _installed:
        root.removeHandler(old)
        old.close()
    _installed[:] = [handler]
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else _level(level))
    if missing_journal:
        log.warning("systemd.journal is not installed: logging to stderr without fields")
    return handler


def _level(name: str) -> int:
    value = logging.getLevelNamesMapping().get(name.upper())
    if value is None:
        raise ValueError(f"unknown log level {name!r}; use DEBUG, INFO, WARNING or ERROR")
    return value
