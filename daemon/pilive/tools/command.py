"""Command tools declared in config: the model fills in arguments, we run a fixed program.

Safety comes from the shape, not from escaping: the program (argv[0]) is fixed by the config, each
argument is validated against the tool's schema and substituted into its own argv element (never
re-split, never seen by a shell), stdin is closed, the environment is minimal (the API key and
everything else of the daemon's stays out), output is capped, and a timeout or a cancellation
ends it. The call ends when the program exits; anything it left running is killed then.
Whatever happens, the model gets a response, the daemon no error.

Confinement, and its limits:
- Each program runs under `_supervisor.py`, a subreaper that kills every descendant when the call
  ends, including those that left the process group with `setsid()` or double-forked.
- At most MAX_RUNNING_PROGRAMS run at once; a call beyond that is answered with an error at once.
- The environment is ENVIRONMENT only; no file descriptor but stdin/stdout/stderr is inherited;
  PR_SET_NO_NEW_PRIVS is set, so a setuid program gains nothing.
- Before the first program starts, the values of secret-looking variables (GEMINI_API_KEY and
  any name with KEY, TOKEN, SECRET or PASSWORD in it) are overwritten in the daemon's own
  environment block, which /proc/<pid>/environ shows to any process of the same user.
- A program still runs as the daemon's user and can read what that user can read (under systemd,
  the key's credential file too): configure only programs you trust with that.

Template syntax: "{name}" is replaced by argument `name`, inside an element or as all of it
("--city={city}" stays one element even if the city has spaces); "{{" and "}}" are literal braces.
An element that mentions an optional argument the model left out is dropped. Values that start
with "-" reach the program as they are: put "--" in the template, or a schema `pattern`, where a
program could mistake a value for an option.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import math
import os
import re
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pilive.tools._supervisor import START_FAILED
from pilive.tools.base import BLOCKING, Behavior, ToolResponse, check_tool_name
from pilive.tools.schema import ArgumentError, check_schema

log = logging.getLogger(__name__)

ENVIRONMENT: Mapping[str, str] = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/",
}
MAX_RUNNING_PROGRAMS = 4  # across all command tools: each is a process tree on a small Pi
SUPERVISOR = Path(__file__).with_name("_supervisor.py")
STOP_GRACE_S = 2.0  # for the supervisor to kill the tree and exit before we SIGKILL its group
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024
STDERR_EXCERPT_BYTES = 1024
_READ_CHUNK_BYTES = 64 * 1024
_DRAIN_MAX_CHUNKS = 16

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")

# A template element: literal text and argument names, in order.
Part = str | tuple[str]


def parse_template(element: str, where: str) -> list[Part]:
    """Split one argv element into literal text and ("name",) placeholders."""
    parts: list[Part] = []
    literal = ""
    pos = 0
    for match in _TOKEN.finditer(element):
        literal += element[pos : match.start()]
        pos = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal += token[0]
        elif match.group(1) is not None:
            if literal:
                parts.append(literal)
                literal = ""
            parts.append((match.group(1),))
        else:
            raise ValueError(
                f"{where}: stray {token!r} in {element!r}; placeholders are {{name}}, "
                "literal braces are {{{{ and }}}}"
            )
    literal += element[pos:]
    if literal or not parts:
        parts.append(literal)
    return parts


def format_value(value: object) -> str:
    """An argument as argv text: JSON spelling for booleans, shortest repr for numbers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    text = str(value)
    if "\x00" in text:
        raise ArgumentError("a NUL character cannot be passed to a program")
    return text


@dataclass(frozen=True)
class CommandTool:
    """A program the model may run with validated arguments. Checked completely when defined."""

    name: str
    description: str
    argv: tuple[str, ...]
    parameters: Mapping[str, Any]
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    behavior: Behavior = BLOCKING
    _templates: list[list[Part]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"tool {self.name!r}"
        check_tool_name(self.name)
        if not isinstance(self.description, str) or not self.description.strip():
            raise ValueError(f"{where}: description must be a non-empty string")
        object.__setattr__(self, "parameters", check_schema(self.parameters, f"{where} parameters"))
        if (
            not isinstance(self.argv, Sequence)
            or isinstance(self.argv, str)
            or not self.argv
            or not all(isinstance(a, str) for a in self.argv)
        ):
            raise ValueError(
                f"{where}: argv must be a non-empty list of strings, got {self.argv!r}"
            )
        object.__setattr__(self, "argv", tuple(self.argv))
        templates = [parse_template(a, f"{where} argv[{i}]") for i, a in enumerate(self.argv)]
        if any(isinstance(p, tuple) for p in templates[0]):
            raise ValueError(f"{where}: argv[0] is the program and cannot contain a placeholder")
        props: Mapping[str, Any] = self.parameters.get("properties", {})
        for i, parts in enumerate(templates):
            for part in parts:
                if not isinstance(part, tuple):
                    continue
                schema = props.get(part[0])
                if schema is None:
                    raise ValueError(
                        f"{where} argv[{i}]: {{{part[0]}}} is not a parameter; "
                        f"parameters: {sorted(props)}"
                    )
                if schema["type"] == "object":
                    raise ValueError(f"{where} argv[{i}]: {{{part[0]}}} is an object")
        object.__setattr__(self, "_templates", templates)
        if (
            not isinstance(self.timeout_s, int | float)
            or isinstance(self.timeout_s, bool)
            or not math.isfinite(self.timeout_s)
            or self.timeout_s <= 0
        ):
            raise ValueError(f"{where}: timeout_s must be a number > 0, got {self.timeout_s!r}")
        if (
            not isinstance(self.max_output_bytes, int)
            or isinstance(self.max_output_bytes, bool)
            or self.max_output_bytes <= 0
        ):
            raise ValueError(
                f"{where}: max_output_bytes must be an integer > 0, got {self.max_output_bytes!r}"
            )
        if not isinstance(self.behavior, Behavior):
            raise ValueError(f"{where}: behavior must be a Behavior, got {self.behavior!r}")

    def render(self, args: Mapping[str, Any]) -> list[str]:
        """The argv for validated `args`: one element per template element, never re-split."""
        argv: list[str] = []
        for parts in self._templates:
            if any(isinstance(p, tuple) and p[0] not in args for p in parts):
                continue  # an optional argument the model left out
            argv.append(
                "".join(format_value(args[p[0]]) if isinstance(p, tuple) else p for p in parts)
            )
        return argv

    async def call(self, args: Mapping[str, Any]) -> ToolResponse:
        """Run the program; every outcome but cancellation is a response for the model."""
        try:
            argv = self.render(args)
        except ArgumentError as exc:
            return {"error": f"invalid arguments for {self.name}: {exc}"}
        if _processes.running >= MAX_RUNNING_PROGRAMS:
            log.warning("tool %s refused: %d programs are running", self.name, _processes.running)
            return {
                "error": f"{self.name} was not run: {_processes.running} tool programs are "
                "already running; try again when one has finished"
            }
        _processes.running += 1
        try:
            return await self._run(argv)
        finally:
            _processes.running -= 1

    async def _run(self, argv: list[str]) -> ToolResponse:
        forget_environment_secrets()
        # Our own pipes, not asyncio's: asyncio's Process.wait() waits for its pipes to close,
        # which a background child of the program can hold open for ever.
        loop = asyncio.get_running_loop()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdout = _PipeReader(loop, out_r, self.max_output_bytes, keep="head")
        stderr = _PipeReader(loop, err_r, STDERR_EXCERPT_BYTES, keep="tail")
        try:
            try:
                process = await self._spawn(argv, out_w, err_w)
            except OSError as exc:
                return {"error": f"{self.name}: could not start {argv[0]!r}: {exc.strerror or exc}"}
            finally:
                os.close(out_w)
                os.close(err_w)
            log.info("tool %s started (supervisor pid %d)", self.name, process.pid)
            return await self._supervise(process, argv, stdout, stderr)
        finally:
            stdout.close()
            stderr.close()

    async def _spawn(self, argv: list[str], out_w: int, err_w: int) -> asyncio.subprocess.Process:
        spawn = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                sys.executable,
                "-I",  # isolated: nothing from the environment or the daemon's sys.path
                "-S",  # no site: the standard library only, and a faster start
                str(SUPERVISOR),
                str(os.getpid()),
                "--",
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                env=dict(ENVIRONMENT),
                cwd="/",
                start_new_session=True,  # its own process group: a last-resort kill reaches it
            )
        )
        try:
            return await asyncio.shield(spawn)
        except asyncio.CancelledError:
            # Cancelled while starting: the program may already run; finish starting, end it all.
            with contextlib.suppress(OSError):
                process = await spawn
                await _stop_tree(process, asyncio.ensure_future(process.wait()))
            raise

    async def _supervise(
        self,
        process: asyncio.subprocess.Process,
        argv: list[str],
        stdout: _PipeReader,
        stderr: _PipeReader,
    ) -> ToolResponse:
        exited = asyncio.ensure_future(process.wait())
        try:
            async with asyncio.timeout(self.timeout_s):
                ends: list[asyncio.Future[Any]] = [exited, stdout.full]
                await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            log.warning("tool %s timed out after %g s; killed", self.name, self.timeout_s)
            return {"error": f"{self.name} took longer than {self.timeout_s:g} s and was stopped"}
        finally:
            # On output cap, timeout or cancellation; after a normal exit the supervisor has
            # already killed what the program left behind and this only waits for it.
            await _stop_tree(process, exited)
        stdout.drain()
        stderr.drain()
        returncode = exited.result()
        text = stdout.data.decode("utf-8", "replace").rstrip()
        if stdout.truncated:
            log.info("tool %s output cut at %d bytes", self.name, self.max_output_bytes)
            return {"result": text, "truncated": True}
        if returncode == 0:
            return {"result": text}
        detail = (stderr.data or stdout.data).decode("utf-8", "replace").strip()
        if returncode == 127 and detail.startswith(START_FAILED):
            reason = detail.removeprefix(START_FAILED).strip()
            return {"error": f"{self.name}: could not start {reason}"}
        if returncode < 0:
            how = f"was killed by {signal.Signals(-returncode).name}"
        else:
            how = f"exited with status {returncode}"
        return {"error": f"{self.name} {how}" + (f": {detail}" if detail else "")}


class _PipeReader:
    """Collects a pipe through loop.add_reader: the first or last `limit_bytes` of it.

    keep="head" stops at the limit and resolves `full` (the caller then kills the writer);
    keep="tail" drains everything so the writer never blocks on a full pipe.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, limit_bytes: int, keep: str
    ) -> None:
        self._loop = loop
        self._fd: int | None = fd
        self._limit_bytes = limit_bytes
        self._keep_head = keep == "head"
        self.data = bytearray()
        self.truncated = False
        self.full: asyncio.Future[None] = loop.create_future()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        self._read_once()

    def _read_once(self) -> bool:
        """Read what is there; False when nothing more will come now (EOF, empty, or full)."""
        if self._fd is None:
            return False
        try:
            chunk = os.read(self._fd, _READ_CHUNK_BYTES)
        except BlockingIOError:
            return False
        if not chunk:
            self._stop()
            return False
        if self._keep_head:
            room = self._limit_bytes - len(self.data)
            self.data += chunk[:room]
            if len(chunk) > room:
                self.truncated = True
                self._stop()
                if not self.full.done():
                    self.full.set_result(None)
                return False
        else:
            self.data = (self.data + chunk)[-self._limit_bytes :]
        return True

    def drain(self) -> None:
        """Take what is already in the pipe, without waiting for writers that are still alive
        (bounded: a pipe holds at most 1 MiB, and an escaped writer must not keep us here)."""
        for _ in range(_DRAIN_MAX_CHUNKS):
            if not self._read_once():
                break

    def _stop(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None
        if not self.full.done():
            self.full.cancel()


class _Processes:
    """Process-wide state of command tools (one event loop: plain attributes are enough)."""

    running = 0  # tool programs running now
    environment_checked = False  # forget_environment_secrets() has run


_processes = _Processes()


async def _stop_tree(process: asyncio.subprocess.Process, exited: asyncio.Future[int]) -> None:
    """Ask the supervisor to kill the program and all its descendants (SIGTERM), and wait for
    it; if it does not end within STOP_GRACE_S, SIGKILL its process group. Returns once the
    supervisor has exited, cancellation or not: no call leaves a process behind."""
    if not exited.done():
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        done, _ = await asyncio.wait([exited], timeout=STOP_GRACE_S)
        if not done:
            log.error("tool supervisor pid %d did not stop; killing its group", process.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    await asyncio.wait([exited])


def forget_environment_secrets() -> None:
    """Overwrite the values of secret-looking variables in this process's initial environment
    block, once: /proc/<pid>/environ shows that block (not os.environ) to every process of the
    same user, a tool's program included. Python's os.environ keeps its copy for the daemon.

    The block's address comes from /proc/self/stat (env_start, env_end: fields 50 and 51); it is
    this process's own writable stack memory. Anything unexpected leaves it alone.
    """
    if _processes.environment_checked:
        return
    _processes.environment_checked = True
    try:
        with open("/proc/self/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        env_start, env_end = int(fields[47]), int(fields[48])
        with open("/proc/self/environ", "rb") as environ:
            block = environ.read()
    except (OSError, ValueError, IndexError) as exc:
        log.warning("could not check the environment for secrets: %s", exc)
        return
    if len(block) != env_end - env_start:
        return
    offset = 0
    for entry in block.split(b"\0"):
        name, sep, value = entry.partition(b"=")
        if sep and value and _SECRET_NAME.search(name.decode("ascii", "replace")):
            ctypes.memset(env_start + offset + len(name) + 1, ord("x"), len(value))
            log.info("hid %s from /proc/%d/environ", name.decode("ascii", "replace"), os.getpid())
        offset += len(entry) + 1
