"""`pilive run` as a process: what its exit status, its one-line errors and its signals tell the
user or systemd, and that nothing in the state directory or on stdin stops the speaker.

Each test starts the real command (`python -m pilive run`) with a config on loopback; the ones
that need a server use the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from pilive.state import HANDLE_FILE_NAME
from tests.support.daemon_rig import NotifySocket, daemon_toml, noise_wav
from tests.support.emulator_rig import emulator_options, running

# Nothing listens here: a daemon pointed at it just keeps retrying, which is all some tests need.
UNREACHABLE = "ws://127.0.0.1:9"


def write_config(tmp_path: Path, endpoint: str = UNREACHABLE, key: str = "k", **kw: object) -> Path:
    mic = tmp_path / "mic.wav"
    if not mic.exists():
        noise_wav(mic, 2.0)
    text = daemon_toml(
        endpoint=endpoint,
        api_key=key,
        mic_wav=mic,
        state_dir=tmp_path / "state",
        camera_mode="off",
        **kw,  # type: ignore[arg-type]
    )
    path = tmp_path / "pilive.toml"
    path.write_text(text)
    return path


def run_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "NOTIFY_SOCKET")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


class Daemon:
    """One `pilive run` child: output to a log file, stopped with SIGTERM."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def stop(self, timeout_s: float = 10.0) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(timeout_s):
                await self.process.wait()
        assert self.process.returncode is not None
        return self.process.returncode


@contextlib.asynccontextmanager
async def daemon(
    config: Path,
    *,
    notify: NotifySocket | None = None,
    stdin: int = subprocess.DEVNULL,
    wrapper: Sequence[str] = (),
) -> AsyncIterator[Daemon]:
    extra = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"} if notify else {}
    log_path = config.with_suffix(f".{time.monotonic_ns()}.log")
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *wrapper,
            sys.executable,
            "-m",
            "pilive",
            "run",
            "--config",
            str(config),
            stdin=stdin,
            stdout=log,
            stderr=log,
            env=run_env(**extra),
        )
    running_daemon = Daemon(process, log_path)
    try:
        yield running_daemon
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def run_once(
    config: Path, *, stdin: int = subprocess.DEVNULL, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pilive", "run", "--config", str(config)],
        stdin=stdin,
        capture_output=True,
        text=True,
        env=run_env(**env),
        timeout=60,
        check=False,
    )


# --- start-up failures: one line, exit 2 -------------------------------------------------------


def _deep_schema(levels: int) -> str:
    schema = '{ type = "string" }'
    for _ in range(levels):
        schema = f'{{ type = "object", properties = {{ a = {schema} }} }}'
    return schema


_DEEP_TOOL = (
    '[[tools.command]]\nname = "deep"\ndescription = "d"\nargv = ["/bin/true"]\n'
    f"parameters = {_deep_schema(35)}\n"
)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("", "[tools]\nnested = " + "[" * 3000 + "]" * 3000 + "\n"), "nested too deeply"),
        (("", _DEEP_TOOL), "tools.command[0].parameters"),
        (('pin_factory = "mock"', 'pin_factory = "lgpio"'), 'gpio.pin_factory = "lgpio"'),
        (('pin_factory = "mock"', 'pin_factory = "pigpio"'), 'gpio.pin_factory = "pigpio"'),
        (("mic.wav", "absent.wav"), "audio.input.file_path"),
        (("mic.wav", "pilive.toml"), "audio.input.file_path"),
        (("mic.wav", "state"), "audio.input.file_path"),
        (("", '[conversation]\nbutton_backend = "keyboard"\n'), "conversation.button_backend"),
    ],
    ids=[
        "toml-nested-3000",
        "schema-nested-past-64",
        "lgpio-missing",
        "pigpio-missing",
        "wav-missing",
        "wav-not-a-wav",
        "wav-a-directory",
        "keyboard-without-terminal",
    ],
)
def test_start_up_fault_is_one_line_naming_the_key_and_exit_2(
    tmp_path: Path, change: tuple[str, str], named: str
) -> None:
    """Faults only the start meets (deep TOML, a tool schema the setup refuses, a GPIO library
    not installed, a microphone WAV missing, not a WAV or a directory, the keyboard backend with
    stdin on /dev/null as under systemd) end with exit 2 and one line naming the key, not a
    traceback. On today's main each was a traceback with exit 1."""
    config = write_config(tmp_path)
    (tmp_path / "state").mkdir()
    old, new = change
    text = config.read_text()
    config.write_text(text.replace(old, new, 1) if old else text + new)
    # Stand-ins that fail to import, as when python3-lgpio / python3-pigpio are not installed.
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for module in ("lgpio", "pigpio"):
        (stubs / f"{module}.py").write_text(f'raise ImportError("No module named {module!r}")\n')
    path = os.pathsep.join(filter(None, [str(stubs), os.environ.get("PYTHONPATH")]))
    result = run_once(config, PYTHONPATH=path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pilive: "), result.stderr
    assert named in lines[0]


# --- the keyboard backend on a terminal ---------------------------------------------------------

KEYBOARD = '[conversation]\nbutton_backend = "keyboard"\nmin_press_ms = 100\n'


async def press_enter_twice(controller: int, hold_s: float = 1.0) -> None:
    """A turn through the keyboard backend: Enter starts it, Enter ends it."""
    os.write(controller, b"\n")
    await asyncio.sleep(hold_s)
    os.write(controller, b"\n")


async def wait_for_status(notify: NotifySocket, *parts: str, timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not any(all(p in status for p in parts) for status in notify.statuses()):
            await asyncio.sleep(0.05)


async def test_keyboard_push_to_talk_on_a_terminal_takes_a_turn(tmp_path: Path) -> None:
    """`button_backend = "keyboard"` with stdin on a pseudo-terminal: Enter starts a turn, Enter
    ends it, the emulator takes the turn in, and SIGTERM stops with exit 0. On today's main it
    stopped at start ("'KeyboardPushToTalk' object has no attribute 'show'")."""
    async with running(emulator_options()) as emu:
        config = write_config(tmp_path, emu.url, emu.api_key, extra=KEYBOARD)
        controller, terminal = pty.openpty()
        try:
            async with daemon(config, stdin=terminal) as run:
                await emu.wait_until(lambda: emu.recording.counters["sessions"] == 1, 15)
                await press_enter_twice(controller)
                await emu.wait_until(lambda: emu.recording.counters["turns"] == 1, 15)
                assert await run.stop() == 0, run.log_text()
        finally:
            os.close(controller)
            os.close(terminal)


# --- one daemon per state directory; SIGHUP ----------------------------------------------------


async def test_second_daemon_on_the_same_state_directory_exits_2(tmp_path: Path) -> None:
    """While one daemon runs, a second on the same state directory refuses at once with one
    line naming the directory and exit 2, and the first carries on. On today's main both ran
    and fought over the conversation."""
    config = write_config(tmp_path)
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        async with daemon(config, notify=notify) as first:
            await notify.wait_for("READY=1", 15)
            second = await asyncio.to_thread(run_once, config)
            assert second.returncode == 2, second.stderr
            assert "another pilive is already running" in second.stderr
            assert str(tmp_path / "state") in second.stderr
            assert first.process.returncode is None
            assert await first.stop() == 0
    finally:
        notify.close()


async def test_sighup_is_logged_and_ignored(tmp_path: Path) -> None:
    """SIGHUP (a closed terminal, or a `kill -HUP` expecting a reload) neither kills the daemon
    nor reloads it: one log line, and a later SIGTERM still stops it cleanly (STOPPING=1, exit
    0). On today's main SIGHUP killed it without clean-up."""
    config = write_config(tmp_path)
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        async with daemon(config, notify=notify) as run:
            await notify.wait_for("READY=1", 15)
            run.process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "SIGHUP ignored" not in run.log_text() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert "SIGHUP ignored" in run.log_text()
            assert run.process.returncode is None
            assert await run.stop() == 0
            await notify.wait_for("STOPPING=1", 5)
    finally:
        notify.close()


# --- a part that fails: exit 1 ----------------------------------------------------------------


def test_a_part_that_fails_makes_the_exit_status_1(tmp_path: Path) -> None:
    """A part that dies ("link failed: ...; stopping") ends the process with exit 1, so systemd
    and scripts see a failure (the unit restarts it either way: Restart=always). On today's
    main the status was 0, a clean stop."""
    config = write_config(tmp_path)
    code = (
        "import sys\n"
        "from pilive import cli\n"
        "from pilive.net.connection import LiveLink\n"
        "async def broken(self):\n"
        "    raise RuntimeError('injected link failure')\n"
        "LiveLink.run = broken\n"
        "sys.exit(cli.main(['run', '--config', sys.argv[1]]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(config)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=run_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "link failed: RuntimeError('injected link failure')" in result.stderr  # the log
    assert result.stderr.strip().endswith("pilive: link failed (RuntimeError); exit status 1")


# --- a read-only state directory ----------------------------------------------------------------


def _read_only_bind_mount() -> list[str] | None:
    """A command prefix that runs a program with its first argument's directory mounted
    read-only in a private mount namespace (as a read-only SD card looks), or None where this
    machine does not allow it (no root, no user namespaces)."""
    prefix = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount --bind -o ro "$0" "$0" && exec "$@"',
    ]
    try:
        probe = subprocess.run([*prefix, "/", "true"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return prefix if probe.returncode == 0 else None


async def test_read_only_state_directory_with_a_stale_handle_keeps_talking(
    tmp_path: Path,
) -> None:
    """The state directory is a read-only mount holding a handle the server no longer knows:
    the daemon resumes, is refused, cannot forget the handle on disk, and still starts a fresh
    conversation, with STATUS saying the conversation is not kept across restarts; a turn then
    goes through and SIGTERM stops it with exit 0. On today's main forgetting the handle raised
    "Read-only file system" and the daemon stopped at every start."""
    prefix = _read_only_bind_mount()
    if prefix is None:
        pytest.skip("needs a private mount namespace (unshare --mount) for a read-only mount")
    state = tmp_path / "state"
    state.mkdir()
    stale = {"version": 1, "handle": "h-stale-from-before", "saved_at_unix_s": time.time()}
    (state / HANDLE_FILE_NAME).write_text(json.dumps(stale))
    async with running(emulator_options()) as emu:
        config = write_config(tmp_path, emu.url, emu.api_key, extra=KEYBOARD)
        notify = NotifySocket(tmp_path / "notify.sock")
        controller, terminal = pty.openpty()
        try:
            wrapper = [*prefix, str(state)]
            async with daemon(config, notify=notify, stdin=terminal, wrapper=wrapper) as run:
                # Idle means connected and ready: the refused resume is behind it.
                await wait_for_status(notify, "idle", "not kept across restarts", timeout_s=20)
                await press_enter_twice(controller)
                await emu.wait_until(lambda: emu.recording.counters["turns"] == 1, 15)
                assert await run.stop() == 0, run.log_text()
        finally:
            os.close(controller)
            os.close(terminal)
            notify.close()
    assert json.loads((state / HANDLE_FILE_NAME).read_text()) == stale
    log_text = run.log_text()
    assert "refused to resume" in log_text
    assert "will not be kept across restarts" in log_text
