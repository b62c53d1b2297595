"""The whole daemon as a subprocess, for the daemon benchmark and the soak.

- `daemon_toml`: a config for `pilive run` against a loopback emulator, file/null audio, the
  synthetic camera, gpiozero mock pins and an optional timeline of presses.
- `NotifySocket`: the datagram socket systemd would listen on (`NOTIFY_SOCKET`); it timestamps
  `READY=1`, `STATUS=...` and `WATCHDOG=1` as they arrive.
- `DaemonProcess`: starts `python -m pilive run --config F` and stops it with SIGTERM.
- `sample_process`: CPU time, RSS, threads and open file descriptors from /proc.
- `imported_modules`: what a daemon started with `python_args=IMPORT_TRACE` imported, from its log.
- `noise_wav`: a microphone signal in which every 20 ms chunk is unique, so any chunk the server
  took in can be traced back to the moment the daemon captured it, and a lost one is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def isolated_environ() -> dict[str, str]:
    """The environment a test's in-process config is parsed with: nothing of the machine's but
    the test's own RUNTIME_DIRECTORY (tests/conftest.py), so its control socket is its own and
    never the machine's /run/pilive."""
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    return {"RUNTIME_DIRECTORY": runtime} if runtime else {}


def noise_wav(path: Path, seconds: float, *, seed: int = 1, rate_hz: int = 16000) -> Path:
    """Seeded white noise at about -30 dBFS: 640 random bytes per chunk never repeat by chance."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0, 1000, round(seconds * rate_hz)).clip(-32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate_hz)
        wav.writeframes(samples.tobytes())
    return path


@dataclass(frozen=True)
class Press:
    """The button held from `at_s` for `hold_s` seconds after the daemon starts."""

    at_s: float
    hold_s: float


def presses_every(period_s: float, hold_s: float, total_s: float, first_s: float) -> list[Press]:
    count = max(0, int((total_s - first_s - hold_s) // period_s) + 1)
    return [Press(first_s + i * period_s, hold_s) for i in range(count)]


def daemon_toml(
    *,
    endpoint: str,
    api_key: str,
    mic_wav: Path,
    state_dir: Path,
    output: str = "null",
    output_path: Path | None = None,
    camera_mode: str = "continuous",
    presses: Sequence[Press] = (),
    stop_at_s: float | None = None,
    log_level: str = "info",
    health_interval_s: float = 600.0,
    extra: str = "",
) -> str:
    """A `pilive run` config for loopback: inline key (allowed only to loopback), short retries."""
    lines = [
        "[live]",
        f'endpoint = "{endpoint}"',
        f'api_key = "{api_key}"',
        "[connection]",
        "backoff_initial_s = 0.2",
        "backoff_max_s = 2.0",
        "config_fault_retry_s = 5.0",
        "[audio.input]",
        'backend = "file"',
        f'file_path = "{mic_wav}"',
        "pace_realtime = true",
        "[audio.output]",
        f'backend = "{output}"',
        *([f'file_path = "{output_path}"'] if output_path is not None else []),
        "[camera]",
        f'source = "{"none" if camera_mode == "off" else "synthetic"}"',
        f'mode = "{camera_mode}"',
        "[gpio]",
        'pin_factory = "mock"',
        "button_pin = 17",
        'led = "rgb"',
        "led_pins = [5, 6, 13]",
        "[state]",
        f'directory = "{state_dir}"',
        "[log]",
        f'level = "{log_level}"',
        f"health_interval_s = {health_interval_s}",
    ]
    steps = [(p.at_s, "press") for p in presses] + [(p.at_s + p.hold_s, "release") for p in presses]
    if stop_at_s is not None:
        steps.append((stop_at_s, "stop"))
    for at_s, action in sorted(steps):
        lines += ["[[timeline]]", f"at_s = {at_s:.3f}", f'action = "{action}"']
    return "\n".join(lines) + "\n" + extra


class NotifySocket:
    """A bound AF_UNIX datagram socket; messages are kept as (time.monotonic(), text)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[tuple[float, str]] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.setblocking(False)
        self._changed = asyncio.Event()
        asyncio.get_running_loop().add_reader(self._sock.fileno(), self._read)

    def _read(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                data = self._sock.recv(4096)
                self.messages.append((time.monotonic(), data.decode("utf-8", "replace")))
                self._changed.set()

    def first(self, assignment: str) -> float | None:
        """When the first message carrying `assignment` (e.g. "READY=1") arrived."""
        for at_s, text in self.messages:
            if assignment in text.split("\n"):
                return at_s
        return None

    def statuses(self) -> list[str]:
        return [
            line.removeprefix("STATUS=")
            for _, text in self.messages
            for line in text.split("\n")
            if line.startswith("STATUS=")
        ]

    async def wait_for(self, assignment: str, timeout_s: float) -> float:
        async with asyncio.timeout(timeout_s):
            while (at_s := self.first(assignment)) is None:
                self._changed.clear()
                await self._changed.wait()
        return at_s

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class DaemonProcess:
    """`python -m pilive run --config F`, output to a log file, stopped with SIGTERM."""

    def __init__(
        self,
        config_path: Path,
        log_path: Path,
        notify: NotifySocket,
        *,
        prefix: Sequence[str] = (),
        python_args: Sequence[str] = (),
    ) -> None:
        self.prefix = list(prefix)
        """A command that execs the daemon (same pid), e.g. into a private mount namespace."""
        self.python_args = list(python_args)
        """Interpreter options before `-m pilive`, e.g. IMPORT_TRACE."""
        self.config_path = config_path
        self.log_path = log_path
        self.notify = notify
        self.process: asyncio.subprocess.Process | None = None
        self.started_s = 0.0

    async def start(self) -> None:
        env = dict(os.environ, NOTIFY_SOCKET=str(self.notify.path), PYTHONUNBUFFERED="1")
        env.pop("GEMINI_API_KEY", None)  # the config's loopback key is the one to use
        with self.log_path.open("ab") as log:
            self.started_s = time.monotonic()
            self.process = await asyncio.create_subprocess_exec(
                *self.prefix,
                sys.executable,
                *self.python_args,
                "-m",
                "pilive",
                "run",
                "--config",
                str(self.config_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM, then wait; SIGKILL only if it does not stop in time (reported as -9)."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(timeout_s):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        assert self.process.returncode is not None
        return self.process.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


IMPORT_TRACE = ("-X", "importtime")
"""Python options that make the daemon log every module it imports, when it imports it."""
_IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \| *(\S+)$", re.MULTILINE)


def imported_modules(log_text: str) -> list[str]:
    """The modules a daemon started with IMPORT_TRACE imported, in order (start-up and lazy)."""
    return _IMPORT_LINE.findall(log_text)


@dataclass(frozen=True)
class ProcSample:
    at_s: float
    cpu_s: float
    rss_kb: int
    threads: int
    fds: int


def sample_process(pid: int) -> ProcSample:
    """utime+stime from /proc/PID/stat, VmRSS and Threads from status, entries in fd/."""
    now_s = time.monotonic()
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S  # fields 14, 15 of stat
    rss_kb = threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return ProcSample(now_s, cpu_s, rss_kb, threads, fds)


def cpu_share(samples: Sequence[ProcSample]) -> float:
    """CPU seconds per wall second between the first and last sample (1.0 = one whole core)."""
    if len(samples) < 2:
        return float("nan")
    first, last = samples[0], samples[-1]
    return (last.cpu_s - first.cpu_s) / (last.at_s - first.at_s)
