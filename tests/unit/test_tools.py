"""Tools the model may call: the schema subset, command tools run as real subprocesses, built-ins
reading real files (in temporary roots), and the runner that turns every outcome into a response.

Misbehaving programs are simulated with `sh -c` scripts written in these tests only; the tools
themselves never use a shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pilive.tools import command
from pilive.tools.base import BLOCKING, ToolResult, ToolRunner
from pilive.tools.builtin import (
    DeviceStatusTool,
    NewConversationTool,
    SetVolumeTool,
    read_cpu_temperature_c,
    read_wifi,
)
from pilive.tools.command import CommandTool, parse_template
from pilive.tools.schema import ArgumentError, SchemaError, check_schema, validate

LONG_TIMEOUT_S = 60.0  # generous: only a broken kill path would ever come near it


def subreaper_refused() -> bool:
    """True where prctl(PR_SET_CHILD_SUBREAPER) is refused, which no Linux since 3.4 does but
    qemu-user 7.2 (Debian 12's, running the arm64 suite) does, with EINVAL: an emulation
    artefact. The tool supervisor needs it, so tests that run a program skip there."""
    probe = "import ctypes, sys; sys.exit(ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) != 0)"
    return subprocess.run([sys.executable, "-c", probe], check=False, timeout=60).returncode != 0


needs_subreaper = pytest.mark.skipif(
    subreaper_refused(), reason="PR_SET_CHILD_SUBREAPER is refused here (qemu-user)"
)
ONE_STRING = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


async def readable(fd: int) -> None:
    """Wait (without polling) until the loop sees `fd` readable."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, lambda: None if ready.done() else ready.set_result(None))
    try:
        await asyncio.wait_for(ready, LONG_TIMEOUT_S)
    finally:
        loop.remove_reader(fd)


async def process_ended(pid: int) -> None:
    """Wait for a process that is not our child to end: its pidfd turns readable on exit."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        await readable(pidfd)
    finally:
        os.close(pidfd)


class Fifo:
    """A named pipe a test script writes its pids into, read through the event loop."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)

    async def read_pids(self) -> list[int]:
        await readable(self.fd)
        return [int(p) for p in os.read(self.fd, 4096).split()]

    def close(self) -> None:
        os.close(self.fd)


# --- schema ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "array", "items": {}}, r"type: must be one of .*'array'"),
        (
            {"type": "object", "properties": {"a": {"type": "string", "format": "email"}}},
            r"parameters\.properties\.a: unsupported keyword\(s\) \['format'\]",
        ),
        ({"type": "object", "oneOf": []}, r"unsupported keyword\(s\) \['oneOf'\]"),
        ({"type": "string"}, "top level must have type 'object'"),
        ({"type": "object", "required": ["x"]}, r"required: \['x'\] not in properties"),
        (
            {"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}},
            "pattern: '\\(' is not a valid regex",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "integer", "enum": [1, "two"]}}},
            r"enum.*expected an integer, got 'two'",
        ),
        ({"type": "object", "additionalProperties": {"type": "string"}}, "only true or false"),
        (
            {"type": "object", "properties": {"a": {"type": "string", "maxLength": -1}}},
            r"maxLength: must be an integer >= 0, got -1",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "integer", "minimum": "0"}}},
            "minimum: must be a number, got '0'",
        ),
        ({"type": "object", "properties": {"a": {}}}, r"properties\.a\.type: must be one of"),
    ],
)
def test_unsupported_or_broken_schema_is_refused_at_definition(
    schema: dict[str, Any], message: str
) -> None:
    """Each schema outside the documented subset is refused with its path and the reason."""
    with pytest.raises(SchemaError, match=message):
        check_schema(schema)


def test_schema_type_names_are_normalised() -> None:
    """Gemini-style upper-case type names are accepted and stored in lower case."""
    got = check_schema({"type": "OBJECT", "properties": {"a": {"type": "Integer"}}})
    assert got == {"type": "object", "properties": {"a": {"type": "integer"}}}


SCHEMA = check_schema(
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 1, "maxLength": 20, "pattern": "^[A-Za-z ]+$"},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "scale": {"type": "number", "minimum": 0.5},
            "units": {"type": "string", "enum": ["metric", "imperial"]},
            "loud": {"type": "boolean"},
        },
        "required": ["city"],
        "additionalProperties": False,
    }
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, r"missing required argument\(s\) \['city'\]"),
        ({"city": "Oslo", "mood": "x"}, r"unexpected argument\(s\) \['mood'\]"),
        ({"city": 5}, r"args\.city: expected a string, got 5"),
        ({"city": ""}, "shorter than minLength 1"),
        ({"city": "x" * 21}, "longer than maxLength 20"),
        ({"city": "Oslo; rm -rf /"}, "does not match pattern"),
        ({"city": "Oslo", "days": 8}, "8 is greater than the maximum 7"),
        ({"city": "Oslo", "days": 0}, "0 is less than the minimum 1"),
        ({"city": "Oslo", "days": 2.5}, "expected an integer, got 2.5"),
        ({"city": "Oslo", "days": True}, "expected an integer, got True"),
        ({"city": "Oslo", "scale": math.nan}, "expected a finite number"),
        ({"city": "Oslo", "scale": "1"}, "expected a finite number, got '1'"),
        ({"city": "Oslo", "units": "kelvin"}, r"'kelvin' is not one of \['metric', 'imperial'\]"),
        ({"city": "Oslo", "loud": 1}, "expected true or false, got 1"),
        ([], "expected an object"),
    ],
)
def test_bad_arguments_are_named(args: Any, message: str) -> None:
    """Each kind of bad argument is rejected with the argument's name and what was wrong."""
    with pytest.raises(ArgumentError, match=message):
        validate(SCHEMA, args)


def test_good_arguments_are_normalised() -> None:
    """Whole floats become ints for integer parameters (Struct numbers are doubles)."""
    args = {"city": "New York", "days": 3.0, "scale": 1, "units": "metric", "loud": False}
    got = validate(SCHEMA, args)
    assert got == args
    assert type(got["days"]) is int


@given(st.integers(-1000, 1000), st.integers(-1000, 1000), st.integers(-2000, 2000))
def test_integer_range_property(lo: int, hi: int, value: int) -> None:
    """For any bounds, an integer is accepted exactly when it lies within them."""
    schema = check_schema(
        {"type": "object", "properties": {"n": {"type": "integer", "minimum": lo, "maximum": hi}}}
    )
    inside = lo <= value <= hi
    try:
        validate(schema, {"n": value})
    except ArgumentError:
        assert not inside
    else:
        assert inside


# --- command tools: definition ---------------------------------------------------------------


def test_template_parsing() -> None:
    """Placeholders split an element into literal text and names; doubled braces are literal."""
    assert parse_template("--city={city}", "t") == ["--city=", ("city",)]
    assert parse_template("{{x}}-{a}{b}", "t") == ["{x}-", ("a",), ("b",)]
    assert parse_template("", "t") == [""]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"argv": ["{text}", "x"]}, r"argv\[0\] is the program"),
        ({"argv": ["/bin/echo", "{city}"]}, r"argv\[1\]: \{city\} is not a parameter"),
        ({"argv": ["/bin/echo", "{text"]}, r"stray '\{'"),
        ({"argv": []}, "non-empty list of strings"),
        ({"argv": "/bin/echo {text}"}, "non-empty list of strings"),
        ({"timeout_s": 0}, "timeout_s must be a number > 0, got 0"),
        ({"max_output_bytes": 0}, "max_output_bytes must be an integer > 0"),
        ({"name": "say it"}, "tool name 'say it' is not valid"),
        ({"description": " "}, "description must be a non-empty string"),
        (
            {"parameters": {"type": "object", "properties": {"t": {"type": "string", "x": 1}}}},
            r"unsupported keyword\(s\) \['x'\]",
        ),
    ],
)
def test_bad_command_definition_named(kwargs: dict[str, Any], message: str) -> None:
    """A broken command tool is refused when defined, naming the field and the problem."""
    spec: dict[str, Any] = {
        "name": "say",
        "description": "Say something.",
        "argv": ["/bin/echo", "{text}"],
        "parameters": ONE_STRING,
    }
    spec.update(kwargs)
    with pytest.raises(ValueError, match=message):
        CommandTool(**spec)


# --- command tools: running ------------------------------------------------------------------


def printf_tool(**kwargs: Any) -> CommandTool:
    """Prints each argv element after the format in brackets, showing element boundaries."""
    spec: dict[str, Any] = {
        "name": "show",
        "description": "Show arguments.",
        "argv": ["/usr/bin/printf", "[%s]", "{text}", "--n={n}"],
        "parameters": {
            "type": "object",
            "properties": {"text": {"type": "string"}, "n": {"type": "integer"}},
            "required": ["text"],
        },
        "timeout_s": LONG_TIMEOUT_S,
    }
    spec.update(kwargs)
    return CommandTool(**spec)


@needs_subreaper
async def test_command_success_one_element_per_value() -> None:
    """A value with spaces stays one argv element; an omitted optional argument drops its
    element; the output comes back as the result."""
    tool = printf_tool()
    assert await tool.call({"text": "two words", "n": 3}) == {"result": "[two words][--n=3]"}
    assert await tool.call({"text": "alone"}) == {"result": "[alone]"}


@needs_subreaper
@pytest.mark.parametrize(
    "attack", ["; rm -rf /", "$(id)", "`id`", "a\nb", "'\"; echo pwned", "--help", "* ?"]
)
async def test_injection_attempts_are_literal_arguments(attack: str) -> None:
    """Shell syntax, newlines and globs reach the program as one literal argument, unexpanded."""
    result = await printf_tool().call({"text": attack})
    assert result == {"result": f"[{attack}]"}


async def test_nul_in_a_value_is_an_error_result() -> None:
    """A NUL cannot be in an argv element: the model gets an error, nothing runs."""
    result = await printf_tool().call({"text": "a\x00b"})
    assert "NUL" in result["error"]


@needs_subreaper
async def test_environment_is_minimal_and_stdin_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The program sees only PATH, LANG and HOME (no API key), and stdin at EOF (cat returns)."""
    monkeypatch.setenv("GEMINI_API_KEY", "secret-test-key")
    env_tool = CommandTool("env", "Environment.", ("/usr/bin/env",), {"type": "object"})
    result = await env_tool.call({})
    assert sorted(result["result"].splitlines()) == [
        "HOME=/",
        "LANG=C.UTF-8",
        "PATH=/usr/local/bin:/usr/bin:/bin",
    ]
    cat_tool = CommandTool("cat", "Echo stdin.", ("/bin/cat",), {"type": "object"}, timeout_s=30)
    assert await cat_tool.call({}) == {"result": ""}


@needs_subreaper
async def test_nonzero_exit_reports_status_and_stderr() -> None:
    """A failing program gives an error with its exit status and the end of its stderr."""
    tool = CommandTool(
        "fail",
        "Fails.",
        ("/bin/sh", "-c", 'echo "disk not found: $1" >&2; exit 3', "sh", "{text}"),
        ONE_STRING,
    )
    result = await tool.call({"text": "sdb"})
    assert result == {"error": "fail exited with status 3: disk not found: sdb"}


@needs_subreaper
async def test_killed_by_signal_is_named() -> None:
    """A program that dies of a signal is reported with the signal's name."""
    tool = CommandTool("crash", "Crashes.", ("/bin/sh", "-c", "kill -SEGV $$"), {"type": "object"})
    assert await tool.call({}) == {"error": "crash was killed by SIGSEGV"}


@needs_subreaper
async def test_killed_by_sigkill_is_named_too() -> None:
    """SIGKILL (the OOM killer, `kill -9`) cannot be re-raised like other signals: the
    supervisor still ends the same way, and the model is told which signal, not a traceback."""
    tool = CommandTool("oom", "Dies.", ("/bin/sh", "-c", "kill -KILL $$"), {"type": "object"})
    assert await tool.call({}) == {"error": "oom was killed by SIGKILL"}


@needs_subreaper
async def test_missing_program_is_an_error_result() -> None:
    """A program that cannot start is an error result, not an exception."""
    tool = CommandTool("ghost", "Nothing.", ("/nonexistent/program",), {"type": "object"})
    result = await tool.call({})
    assert result["error"].startswith("ghost: could not start '/nonexistent/program'")


@needs_subreaper
async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """A slow program and the child it started are both killed at the timeout, and the model
    gets an error naming the limit."""
    fifo = Fifo(tmp_path / "pids")
    tool = CommandTool(
        "slow",
        "Hangs.",
        ("/bin/sh", "-c", 'sleep 300 & echo $! > "$1"; wait', "sh", "{text}"),
        ONE_STRING,
        timeout_s=0.5,
    )
    try:
        call = asyncio.create_task(tool.call({"text": str(fifo.path)}))
        (child,) = await fifo.read_pids()
        result = await call
        assert result == {"error": "slow took longer than 0.5 s and was stopped"}
        await process_ended(child)
    finally:
        fifo.close()


@needs_subreaper
async def test_background_child_holding_stdout_does_not_hold_the_call(tmp_path: Path) -> None:
    """The call ends when the program exits even if a child it left behind keeps stdout open;
    the output so far is returned and the child is killed."""
    fifo = Fifo(tmp_path / "pids")
    tool = CommandTool(
        "forks",
        "Leaves a child.",
        ("/bin/sh", "-c", 'sleep 300 & echo $! > "$1"; echo done', "sh", "{text}"),
        ONE_STRING,
        timeout_s=LONG_TIMEOUT_S,
    )
    try:
        call = asyncio.create_task(tool.call({"text": str(fifo.path)}))
        (child,) = await fifo.read_pids()
        assert await call == {"result": "done"}
        await process_ended(child)
    finally:
        fifo.close()


@needs_subreaper
async def test_output_is_capped_and_the_program_killed() -> None:
    """`yes` never stops writing: we keep max_output_bytes, kill it, and return what we have,
    marked truncated (well before the generous timeout)."""
    tool = CommandTool(
        "flood", "Floods.", ("/usr/bin/yes",), {"type": "object"},
        timeout_s=LONG_TIMEOUT_S, max_output_bytes=1000,
    )  # fmt: skip
    result = await tool.call({})
    assert result["truncated"] is True
    assert result["result"] == ("y\n" * 500).rstrip()


@needs_subreaper
async def test_large_stderr_does_not_block_the_program() -> None:
    """stderr is drained while stdout is read, so a chatty program cannot deadlock on a full
    pipe; only the tail is kept for the error message."""
    script = "i=0; while [ $i -lt 20000 ]; do echo noise-$i >&2; i=$((i+1)); done; exit 1"
    tool = CommandTool(
        "chatty", "Chatty.", ("/bin/sh", "-c", script), {"type": "object"}, timeout_s=LONG_TIMEOUT_S
    )
    result = await tool.call({})
    assert result["error"].startswith("chatty exited with status 1: ")
    assert result["error"].endswith("noise-19999")
    assert len(result["error"]) < 1200


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


ESCAPE = (
    "/bin/sh",
    "-c",
    # A child that leaves the process group (setsid), and a double-forked daemon.
    'setsid sh -c \'echo $$ > "$1"; exec sleep 300\' sh "$1" &'
    ' (setsid sh -c \'echo $$ > "$1"; exec sleep 300\' sh "$1" &) ;'
    " sleep 0.2; echo started; exec sleep {hold_s}",
    "sh",
    "{text}",
)


def escaping_tool(hold_s: float, timeout_s: float = LONG_TIMEOUT_S) -> CommandTool:
    argv = tuple(a.replace("{hold_s}", str(hold_s)) for a in ESCAPE)
    return CommandTool("escape", "Escapes.", argv, ONE_STRING, timeout_s=timeout_s)


async def read_two_pids(fifo: Fifo) -> list[int]:
    """Two pids, however the writers' lines come in (together, apart, or after a hang-up)."""
    text = b""
    while len(text.split()) < 2:
        await readable(fifo.fd)
        with contextlib.suppress(BlockingIOError):
            chunk = os.read(fifo.fd, 4096)
            if not chunk:
                await asyncio.sleep(0.01)  # no writer yet after a hang-up: poll says readable
            text += chunk
    return [int(p) for p in text.split()]


@needs_subreaper
@pytest.mark.parametrize("how", ["exit", "timeout", "cancel"])
async def test_children_that_left_the_process_group_die_with_the_call(
    tmp_path: Path, how: str
) -> None:
    """A program whose children call setsid (one in the background, one double-forked): when
    the call ends, by the program's exit, its timeout or a cancellation, those children are dead
    too, already when the call returns."""
    fifo = Fifo(tmp_path / "pids")
    tool = escaping_tool(0 if how == "exit" else 300, 1.0 if how == "timeout" else LONG_TIMEOUT_S)
    try:
        call = asyncio.create_task(tool.call({"text": str(fifo.path)}))
        pids = await read_two_pids(fifo)
        assert all(alive(pid) for pid in pids)
        if how == "cancel":
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
        else:
            result = await call
            assert result == ({"result": "started"} if how == "exit" else result)
            assert how == "exit" or "took longer than 1 s" in result["error"]
        assert not any(alive(pid) for pid in pids)
    finally:
        fifo.close()


@needs_subreaper
async def test_concurrent_programs_are_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With MAX_RUNNING_PROGRAMS running, one more call is answered at once with an error and
    starts nothing; once one has finished, calls run again."""
    monkeypatch.setattr(command, "MAX_RUNNING_PROGRAMS", 2)
    fifo = Fifo(tmp_path / "pids")
    tool = CommandTool(
        "hold",
        "Holds.",
        ("/bin/sh", "-c", 'echo $$ > "$1"; exec sleep 300', "sh", "{text}"),
        ONE_STRING,
        timeout_s=LONG_TIMEOUT_S,
    )
    try:
        calls = [asyncio.create_task(tool.call({"text": str(fifo.path)})) for _ in range(2)]
        await read_two_pids(fifo)
        refused = await tool.call({"text": str(fifo.path)})
        assert refused == {
            "error": "hold was not run: 2 tool programs are already running; try again when one "
            "has finished"
        }
        calls[0].cancel()
        await asyncio.gather(*calls[:1], return_exceptions=True)
        assert await printf_tool().call({"text": "again"}) == {"result": "[again]"}
        calls[1].cancel()
        await asyncio.gather(*calls, return_exceptions=True)
    finally:
        fifo.close()


@needs_subreaper
async def test_program_gets_no_new_privileges_and_no_inherited_descriptors() -> None:
    """The program runs with NoNewPrivs set (a setuid binary cannot raise its privileges) and
    with stdin, stdout and stderr only, though the daemon holds an inheritable descriptor."""
    spare = os.open("/dev/null", os.O_RDONLY)
    os.set_inheritable(spare, True)
    try:
        status = CommandTool("nnp", "Status.", ("/bin/grep", "NoNewPrivs", "/proc/self/status"),
                             {"type": "object"})  # fmt: skip
        assert (await status.call({}))["result"].split() == ["NoNewPrivs:", "1"]
        fds = CommandTool("fds", "Fds.", ("/bin/sh", "-c", "ls /proc/$$/fd"), {"type": "object"})
        assert (await fds.call({}))["result"].split() == ["0", "1", "2"]
    finally:
        os.close(spare)


DAEMON_LIKE = """
import asyncio, os, sys
from pilive.tools.command import CommandTool
tool = CommandTool("peek", "Reads the daemon's environment.",
                   ("/bin/cat", "/proc/" + str(os.getpid()) + "/environ"), {"type": "object"})
print(asyncio.run(tool.call({}))["result"])
print("still", os.environ["GEMINI_API_KEY"])
"""


@needs_subreaper
def test_a_program_cannot_read_the_key_from_the_daemons_environment() -> None:
    """A daemon started with GEMINI_API_KEY in its environment runs a tool that reads
    /proc/<daemon pid>/environ: the key's value is not there (the variable's name is, its
    value overwritten), while the daemon itself still has the key in os.environ."""
    key = "AIzaSy-environ-test-0123456789abcdef"
    result = subprocess.run(
        [sys.executable, "-c", DAEMON_LIKE],
        env=dict(os.environ, GEMINI_API_KEY=key, OTHER_TOKEN="tok-123456", PLAIN="kept"),
        capture_output=True,
        timeout=60,
        check=True,
    )
    environ, _, still = result.stdout.rpartition(b"\nstill ")
    assert key.encode() not in environ and b"tok-123456" not in environ
    assert b"GEMINI_API_KEY=" in environ and b"PLAIN=kept" in environ
    assert still.strip() == key.encode()


# --- built-ins -------------------------------------------------------------------------------

WIRELESS = """\
Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE
 face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22
 wlan0: 0000   58.  -52.  -256        0      0      0      3     17        0
"""


def make_roots(tmp_path: Path) -> tuple[Path, Path]:
    proc = tmp_path / "proc"
    sys = tmp_path / "sys"
    (proc / "net").mkdir(parents=True)
    (proc / "uptime").write_text("86461.52 170000.01\n")
    (proc / "net" / "wireless").write_text(WIRELESS)
    for zone, kind, milli_c in (
        ("thermal_zone0", "acpitz", "40000"),
        ("thermal_zone1", "cpu-thermal", "51234"),
    ):
        d = sys / "class" / "thermal" / zone
        d.mkdir(parents=True)
        (d / "type").write_text(kind + "\n")
        (d / "temp").write_text(milli_c + "\n")
    return proc, sys


async def test_device_status_reads_real_file_formats(tmp_path: Path) -> None:
    """Uptime, the CPU zone's temperature (not the first zone's) and the Wi-Fi link are parsed
    from files in the kernel's formats; volume comes from the injected getter."""
    proc, sys = make_roots(tmp_path)
    tool = DeviceStatusTool(get_volume_percent=lambda: 65, proc_root=proc, sys_root=sys)
    assert await tool.call({}) == {
        "result": {
            "uptime_s": 86462,
            "cpu_temperature_c": 51.2,
            "wifi": {"interface": "wlan0", "link_quality": 58, "signal_dbm": -52},
            "volume_percent": 65,
        }
    }


async def test_device_status_omits_what_is_unreadable(tmp_path: Path) -> None:
    """With no files (a container, a laptop) the unreadable parts are simply left out."""
    tool = DeviceStatusTool(proc_root=tmp_path / "none", sys_root=tmp_path / "none")
    assert await tool.call({}) == {"result": {}}


def test_wifi_parser_edge_cases(tmp_path: Path) -> None:
    """A header-only file (Wi-Fi down) gives None; a reported noise level is kept; a zone whose
    temp is unreadable falls through to the next."""
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "wireless").write_text("".join(WIRELESS.splitlines(True)[:2]))
    assert read_wifi(tmp_path) is None
    (tmp_path / "net" / "wireless").write_text(
        WIRELESS.replace("-256", "-95.").replace("wlan0", "wlp2s0")
    )
    assert read_wifi(tmp_path) == {
        "interface": "wlp2s0", "link_quality": 58, "signal_dbm": -52, "noise_dbm": -95,
    }  # fmt: skip
    zone = tmp_path / "class" / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text("garbage\n")
    assert read_cpu_temperature_c(tmp_path) is None


async def test_device_status_on_this_machine() -> None:
    """Against the real /proc and /sys the tool returns a result (at least the uptime)."""
    result = await DeviceStatusTool().call({})
    assert result["result"]["uptime_s"] >= 0


# --- the runner ------------------------------------------------------------------------------


class Collector:
    def __init__(self) -> None:
        self.results: asyncio.Queue[ToolResult] = asyncio.Queue()

    def __call__(self, result: ToolResult) -> None:
        self.results.put_nowait(result)

    async def next(self) -> ToolResult:
        return await asyncio.wait_for(self.results.get(), LONG_TIMEOUT_S)


async def test_set_volume_validated_before_the_setter() -> None:
    """set_volume(150) is refused with the limit named and never reaches the setter;
    set_volume(40.0) sets 40."""
    volumes: list[int] = []
    runner = ToolRunner([SetVolumeTool(volumes.append)], on_result=lambda r: None)
    bad = await runner.call("set_volume", {"percent": 150})
    assert bad == {
        "error": "invalid arguments for set_volume: "
        "args.percent: 150 is greater than the maximum 100"
    }
    assert volumes == []
    assert await runner.call("set_volume", {"percent": 40.0}) == {"result": {"volume_percent": 40}}
    assert volumes == [40]


async def test_runner_reports_results_by_call_id() -> None:
    """Each started call is reported once with its id and name, through on_result."""
    asked: list[bool] = []
    sink = Collector()
    runner = ToolRunner([NewConversationTool(lambda: asked.append(True))], on_result=sink)
    runner.start("fc-1", "new_conversation", None)
    result = await sink.next()
    assert (result.call_id, result.name) == ("fc-1", "new_conversation")
    assert "result" in result.response
    assert asked == [True]
    assert runner.running == frozenset()


async def test_runner_turns_every_failure_into_an_error_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unknown functions and tools that raise give error results (logged), never exceptions."""

    def broken() -> int:
        raise OSError("mixer vanished")

    runner = ToolRunner([DeviceStatusTool(get_volume_percent=broken)], on_result=lambda r: None)
    assert (await runner.call("weather", {}))["error"].startswith("unknown function 'weather'")
    with caplog.at_level(logging.ERROR):
        result = await runner.call("device_status", {})
    assert result == {"error": "device_status failed: OSError: mixer vanished"}
    assert "tool device_status failed" in caplog.text


@needs_subreaper
async def test_rejected_arguments_never_start_the_program(tmp_path: Path) -> None:
    """Arguments failing the schema are refused before anything runs."""
    marker = tmp_path / "ran"
    tool = CommandTool(
        "touch",
        "Touch.",
        ("/bin/sh", "-c", 'touch "$1"', "sh", "{text}"),
        {"type": "object", "properties": {"text": {"type": "string", "maxLength": 200}}},
    )
    runner = ToolRunner([tool], on_result=lambda r: None)
    result = await runner.call("touch", {"text": 5})
    assert "expected a string" in result["error"]
    assert not marker.exists()
    assert await runner.call("touch", {"text": str(marker)}) == {"result": ""}
    assert marker.exists()


@needs_subreaper
async def test_cancellation_kills_the_process_and_reports_nothing(tmp_path: Path) -> None:
    """toolCallCancellation: the running program (and its child) die, the task ends cancelled,
    and no response is reported for that id."""
    fifo = Fifo(tmp_path / "pids")
    tool = CommandTool(
        "wait",
        "Waits.",
        ("/bin/sh", "-c", 'sleep 300 & echo "$$ $!" > "$1"; wait', "sh", "{text}"),
        ONE_STRING,
        timeout_s=LONG_TIMEOUT_S,
    )
    sink = Collector()
    runner = ToolRunner([tool], on_result=sink)
    task = runner.start("fc-7", "wait", {"text": str(fifo.path)})
    assert task is not None
    try:
        pids = await fifo.read_pids()
    finally:
        fifo.close()
    assert len(pids) == 2
    assert runner.running == {"fc-7"}
    assert runner.cancel(["fc-7", "fc-unknown"]) == ["fc-7"]
    with pytest.raises(asyncio.CancelledError):
        await task
    for pid in pids:
        await process_ended(pid)
    assert sink.results.empty()
    assert runner.running == frozenset()


@needs_subreaper
async def test_aclose_cancels_everything(tmp_path: Path) -> None:
    """Shutdown cancels every running call and waits for their processes."""
    tool = CommandTool("nap", "Naps.", ("/bin/sleep", "300"), {"type": "object"}, timeout_s=600)
    runner = ToolRunner([tool], on_result=lambda r: None)
    tasks = [runner.start(f"fc-{i}", "nap", {}) for i in range(3)]
    await asyncio.sleep(0.1)
    await runner.aclose()
    assert all(t.cancelled() for t in tasks)


class GateTool:
    """A tool that runs until the test opens its gate."""

    name = "gate"
    description = "Waits."
    behavior = BLOCKING

    def __init__(self) -> None:
        self.parameters: dict[str, Any] = {"type": "object"}
        self.opened = asyncio.Event()
        self.calls = 0

    async def call(self, args: Any) -> dict[str, Any]:
        self.calls += 1
        await self.opened.wait()
        return {"result": "open"}


async def test_repeated_or_missing_call_ids_are_ignored_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A toolCall repeating an id (in one message or while the call runs) and a call without an
    id are ignored: start() returns None and never raises, the running call answers once, and the
    warnings are rate-limited (one line per kind, however often the server repeats itself)."""
    gate = GateTool()
    sink = Collector()
    runner = ToolRunner([gate], on_result=sink)
    with caplog.at_level(logging.WARNING, logger="pilive.tools.base"):
        assert runner.start("fc-1", "gate", {}) is not None
        for _ in range(50):
            assert runner.start("fc-1", "gate", {}) is None
            assert runner.start("", "gate", {}) is None
        await asyncio.sleep(0)
        gate.opened.set()
        result = await sink.next()
    assert (result.call_id, result.response) == ("fc-1", {"result": "open"})
    assert gate.calls == 1 and runner.ignored_calls == 100
    assert sink.results.empty() and runner.running == frozenset()
    assert caplog.text.count("ignored a repeated function call id 'fc-1'") == 1
    assert caplog.text.count("without an id") == 1
    assert runner.start("fc-1", "gate", {}) is not None  # finished: the id may come again
    await sink.next()


async def test_unknown_function_and_unknown_cancellation_are_answered_or_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A call of an undeclared function gets an error response naming it (the model waits for
    one) and a warning; a cancellation of an id that never ran cancels nothing and raises
    nothing."""
    sink = Collector()
    runner = ToolRunner([GateTool()], on_result=sink)
    with caplog.at_level(logging.WARNING, logger="pilive.tools.base"):
        runner.start("fc-2", "weather", {"city": "Oslo"})
        result = await sink.next()
    assert result.call_id == "fc-2"
    assert result.response["error"].startswith("unknown function 'weather'")
    assert "'weather', which is not declared" in caplog.text
    assert runner.cancel(["fc-never-ran", ""]) == []


def test_duplicate_and_invalid_names_refused() -> None:
    """Two tools with one name, or a name the API would reject, fail at start-up."""
    with pytest.raises(ValueError, match="two tools are named 'set_volume'"):
        ToolRunner([SetVolumeTool(print), SetVolumeTool(print)], on_result=lambda r: None)


def test_declarations() -> None:
    """Declarations list every tool; a tool without arguments has no parameters (the API
    rejects an OBJECT with no properties); the OpenAPI form uses upper-case types."""
    runner = ToolRunner(
        [DeviceStatusTool(), SetVolumeTool(print), NewConversationTool(lambda: None)],
        on_result=lambda r: None,
    )
    decls = {d.name: d for d in runner.declarations()}
    assert list(decls) == ["device_status", "set_volume", "new_conversation"]
    assert decls["device_status"].parameters is None
    assert decls["new_conversation"].parameters_openapi() is None
    volume = decls["set_volume"].parameters_openapi()
    assert volume is not None
    assert volume["type"] == "OBJECT"
    assert volume["properties"]["percent"]["type"] == "INTEGER"


def test_declarations_validate_with_the_sdk() -> None:
    """The google-genai SDK (an outside oracle) accepts our declarations both as OpenAPI
    `parameters` and as `parametersJsonSchema`."""
    types = pytest.importorskip("google.genai.types")
    command = printf_tool()
    runner = ToolRunner(
        [SetVolumeTool(print), NewConversationTool(lambda: None), command], on_result=lambda r: None
    )
    for decl in runner.declarations():
        wire: dict[str, Any] = {"name": decl.name, "description": decl.description}
        if decl.parameters is not None:
            wire["parameters"] = decl.parameters_openapi()
        types.FunctionDeclaration.model_validate(wire)
        if decl.parameters is not None:
            types.FunctionDeclaration.model_validate(
                {"name": decl.name, "parametersJsonSchema": dict(decl.parameters)}
            )
