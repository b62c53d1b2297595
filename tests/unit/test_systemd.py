"""systemd integration through the real protocol: sd_notify datagrams sent by systemd-python to a
socket the test binds, the heartbeat gate on WATCHDOG=1, and journald's native protocol read from
a socket at the journal's real path inside a private mount namespace."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pilive.systemd import (
    Heartbeats,
    Notifier,
    SystemdUnavailable,
    event_fields,
    log_event,
    run_watchdog,
    setup_logging,
    under_journal,
    watchdog_interval_s,
)

RECEIVE_TIMEOUT_S = 10.0


@pytest.fixture
def notify_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A real AF_UNIX datagram socket (abstract namespace) named by NOTIFY_SOCKET."""
    name = f"pilive-test-{os.getpid()}-{os.urandom(4).hex()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(RECEIVE_TIMEOUT_S)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    """Everything queued on the socket right now, one message per datagram."""
    out = []
    previous_timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        return out
    finally:
        sock.settimeout(previous_timeout)


def test_notify_messages_over_a_real_socket(notify_socket: socket.socket) -> None:
    """READY=1 with a status, STATUS=, WATCHDOG=1 and STOPPING=1 arrive as sd_notify datagrams;
    a multi-line status is folded into one line so it cannot inject assignments."""
    notifier = Notifier()
    assert notifier.enabled
    notifier.ready("listening")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=listening"
    notifier.status("offline, retry in 8 s\nREADY=1")
    assert notify_socket.recv(4096) == b"STATUS=offline, retry in 8 s READY=1"
    notifier.watchdog()
    assert notify_socket.recv(4096) == b"WATCHDOG=1"
    notifier.stopping("stopping")
    assert notify_socket.recv(4096) == b"STOPPING=1\nSTATUS=stopping"


def test_notify_to_a_path_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """A filesystem socket path (how systemd itself names NOTIFY_SOCKET) works the same."""
    directory = tempfile.mkdtemp(prefix="pilive-")  # short: sun_path holds 108 bytes
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(path)
        sock.settimeout(RECEIVE_TIMEOUT_S)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        Notifier().ready()
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()
        shutil.rmtree(directory)


def test_vanished_socket_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """If the notify socket disappears the daemon keeps running and says so in the log."""
    monkeypatch.setenv("NOTIFY_SOCKET", "@pilive-test-nobody-listens-" + os.urandom(4).hex())
    with caplog.at_level(logging.WARNING):
        Notifier().status("idle")
    assert "sd_notify 'STATUS=idle'" in caplog.text


def test_not_under_systemd_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without NOTIFY_SOCKET (a terminal) nothing is sent and nothing fails."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    notifier.ready("x")
    notifier.watchdog()
    notifier.stopping()


def test_missing_systemd_python_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under systemd (NOTIFY_SOCKET set) a missing systemd module is a clear error naming the
    packages to install, because READY=1 could never be sent."""
    monkeypatch.setenv("NOTIFY_SOCKET", "@pilive-test")
    monkeypatch.setitem(sys.modules, "systemd.daemon", None)  # what a missing module looks like
    with pytest.raises(SystemdUnavailable, match=r"python3-systemd.*systemd-python"):
        Notifier()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    """Half of WatchdogSec, and only when the watchdog is meant for this process."""
    assert watchdog_interval_s(env) == expected


def test_watchdog_interval_garbage() -> None:
    """A malformed WATCHDOG_USEC names the variable and value."""
    with pytest.raises(ValueError, match="WATCHDOG_USEC must be microseconds, got '20s'"):
        watchdog_interval_s({"WATCHDOG_USEC": "20s"})
    with pytest.raises(ValueError, match="WATCHDOG_USEC must be > 0"):
        watchdog_interval_s({"WATCHDOG_USEC": "0"})


# --- heartbeats ------------------------------------------------------------------------------


def test_heartbeats_gate() -> None:
    """All fresh -> True; a part that stops beating is named once it is older than its limit;
    beating again makes it fresh."""
    beats = Heartbeats()
    beats.register("capture", max_age_s=2.0, now=100.0)
    beats.register("playback", max_age_s=5.0, now=100.0)
    assert beats.all_fresh(101.9) == (True, ())
    beats.beat("playback", 101.0)
    assert beats.all_fresh(102.5) == (False, ("capture",))
    assert beats.all_fresh(106.5) == (False, ("capture", "playback"))
    beats.beat("capture", 106.6)
    beats.beat("playback", 106.6)
    assert beats.all_fresh(107.0) == (True, ())
    beats.unregister("capture")
    assert beats.all_fresh(110.0) == (True, ())


def test_heartbeat_never_started_goes_stale() -> None:
    """A part registered without a time gets its grace period from the first check, so one that
    never starts beating still withholds the watchdog."""
    beats = Heartbeats()
    beats.register("capture", max_age_s=3.0)
    assert beats.all_fresh(50.0) == (True, ())
    assert beats.all_fresh(53.0) == (True, ())
    assert beats.all_fresh(53.1) == (False, ("capture",))


def test_watched_source_is_read_at_each_check() -> None:
    """A watched part (a device thread stamping its own time) is fresh while its stamp is recent,
    stale once it stops, and None ("not expected to beat now", e.g. the device is being
    reopened) counts as fresh."""
    stamp: list[float | None] = [10.0]
    beats = Heartbeats()
    beats.watch("capture", 3.0, lambda: stamp[0])
    assert beats.all_fresh(12.0) == (True, ())
    assert beats.all_fresh(13.5) == (False, ("capture",))
    stamp[0] = 13.4
    assert beats.all_fresh(14.0) == (True, ())
    stamp[0] = None
    assert beats.all_fresh(100.0) == (True, ())
    beats.unregister("capture")
    assert beats.all_fresh(200.0) == (True, ())


def test_heartbeat_errors() -> None:
    """Beating an unregistered name or a non-positive limit is a programming error, named."""
    beats = Heartbeats()
    with pytest.raises(KeyError, match="unknown heartbeat 'camera'"):
        beats.beat("camera", 1.0)
    with pytest.raises(ValueError, match="max_age_s must be > 0"):
        beats.register("camera", 0)


async def test_watchdog_pings_only_while_heartbeats_are_fresh(
    notify_socket: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    """The watchdog task sends WATCHDOG=1 through the real socket while the capture heartbeat is
    fresh, stops (and logs which part is stale) when it goes stale, and resumes after a beat."""
    now = [0.0]
    beats = Heartbeats()
    beats.register("capture", max_age_s=5.0, now=0.0)
    loop = asyncio.get_running_loop()
    notify_socket.setblocking(False)

    async def next_message() -> bytes:
        return await asyncio.wait_for(loop.sock_recv(notify_socket, 4096), RECEIVE_TIMEOUT_S)

    task = asyncio.create_task(run_watchdog(Notifier(), beats, 0.02, clock=lambda: now[0]))
    try:
        assert await next_message() == b"WATCHDOG=1"
        assert await next_message() == b"WATCHDOG=1"
        with caplog.at_level(logging.ERROR):
            now[0] = 10.0  # capture has not beaten for 10 s
            await asyncio.sleep(0.05)  # let a tick see it, then drop what was sent before
            received(notify_socket)
            await asyncio.sleep(0.2)  # ~10 ticks
            assert received(notify_socket) == []
        assert "capture stopped beating" in caplog.text
        beats.beat("capture", 10.0)
        assert await next_message() == b"WATCHDOG=1"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# --- logging ---------------------------------------------------------------------------------


def test_under_journal_detection() -> None:
    """JOURNAL_STREAM or INVOCATION_ID mean a systemd service; neither means a terminal."""
    assert under_journal({"INVOCATION_ID": "0123"})
    assert under_journal({"JOURNAL_STREAM": "8:12345"})
    assert not under_journal({})


def test_stderr_logging_shows_fields() -> None:
    """Outside systemd logs go to the given stream, with structured fields readable inline."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    try:
        setup_logging("debug", environ={}, stream=stream)
        log_event(logging.getLogger("pilive.test"), "transcript", "hello", text="hi %s", turn=3)
    finally:
        root.removeHandler(setup_logging(level, environ={}, stream=io.StringIO()))
        root.setLevel(level)
    line = stream.getvalue()
    assert "INFO pilive.test: hello [transcript text='hi %s' turn='3']" in line


def test_event_field_names_checked() -> None:
    """Field names must make valid journal fields; a bad one is refused with its name."""
    assert event_fields("usage", total_tokens=12) == {
        "PILIVE_EVENT": "usage",
        "PILIVE_TOTAL_TOKENS": "12",
    }
    with pytest.raises(ValueError, match="'Total-Tokens'"):
        event_fields("usage", **{"Total-Tokens": 1})


def test_unknown_level_named() -> None:
    """A misspelt log level is named in the error."""
    with pytest.raises(ValueError, match="'verbose'"):
        setup_logging("verbose", environ={}, stream=io.StringIO())


JOURNAL_CHILD = r"""
import base64, logging, os, socket
os.makedirs("/run/systemd/journal")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind("/run/systemd/journal/socket")
sock.settimeout(10)
from pilive.systemd import log_event, setup_logging
setup_logging("INFO", environ={"INVOCATION_ID": "0f"})
log_event(logging.getLogger("pilive.conversation"), "transcript", "what do you see?",
          text="what do you see?\nline two", direction="input")
print(base64.b64encode(sock.recv(65536)).decode())
"""


def parse_native(datagram: bytes) -> dict[str, str]:
    """journald's native protocol: KEY=value lines, or KEY, a 64-bit LE length, and raw data."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(datagram):
        end = datagram.index(b"\n", pos)
        line = datagram[pos:end]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            pos = end + 1
        else:
            key = line
            (size,) = struct.unpack_from("<Q", datagram, end + 1)
            value = datagram[end + 9 : end + 9 + size]
            pos = end + 9 + size + 1
        fields[key.decode()] = value.decode()
    return fields


def test_journal_receives_structured_fields(tmp_path: Path) -> None:
    """Under systemd the log record reaches journald's socket (/run/systemd/journal/socket, bound
    here by the test in a private mount namespace, so the host is untouched) with MESSAGE,
    PRIORITY, SYSLOG_IDENTIFIER and the PILIVE_* fields, multi-line values intact."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to give the journal socket its real path privately")
    script = tmp_path / "child.py"
    script.write_text(JOURNAL_CHILD)
    command = f"mount -t tmpfs tmpfs /run && exec {sys.executable} {script}"
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0 and "ermission" in proc.stderr + proc.stdout:
        pytest.skip(f"cannot make a private mount namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    fields = parse_native(base64.b64decode(proc.stdout.strip()))
    assert fields["MESSAGE"] == "what do you see?"
    assert fields["PRIORITY"] == "6"
    assert fields["SYSLOG_IDENTIFIER"] == "pilive"
    assert fields["LOGGER"] == "pilive.conversation"
    assert fields["PILIVE_EVENT"] == "transcript"
    assert fields["PILIVE_TEXT"] == "what do you see?\nline two"
    assert fields["PILIVE_DIRECTION"] == "input"
