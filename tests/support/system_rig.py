"""Real systemd in a container: a Debian root built once, booted per run on a throwaway overlay.

- `rootfs()` builds a Debian Bookworm tree with debootstrap (systemd 252 and Python 3.11, as on
  Raspberry Pi OS Bookworm) holding the Debian packages `systemd/install.sh --print-packages`
  names, so the install script's own package list is what the container has. It is cached under
  $PILIVE_ROOTFS_CACHE (default /var/tmp/pilive-rootfs) keyed by a hash of suite and packages,
  built once (about a minute) under a lock and renamed into place whole.
- `wheelhouse()` downloads the wheels pip needs to install the checkout (its dependencies and
  build requirements) with the host's pip, so the install inside the container runs offline.
- `Container` boots that tree with `systemd-nspawn --boot` on an overlay (the cache is never
  written to), sharing the host's network so the daemon reaches an emulator on 127.0.0.1, and
  runs commands inside through `nsenter` into the container's namespaces (no machined needed).
- `EmulatorThread` runs the project's Live API emulator in-process on its own event loop thread,
  so a test can read its recording.

systemd never runs as PID 1 of the host: it boots only inside its own root (its boot-time
tmpfiles clean-up would empty the host's /tmp).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

CHECKOUT = Path(__file__).resolve().parents[2]  # tests/support/ -> the checkout
INSTALL_SCRIPT = CHECKOUT / "systemd" / "install.sh"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What the container needs beyond the install script's packages: an init, the bus systemctl talks
# to, and python3 for small probes run inside.
BASE_PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3")
CONTAINER_PYTHON = "python3.11"
SRC_MOUNT = "/srv/pilive-src"
WHEELS_MOUNT = "/srv/pilive-wheels"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

T = TypeVar("T")


class RigUnavailable(Exception):
    """The container cannot be run on this machine; the message says why (a skip reason)."""


def missing_requirements() -> str | None:
    """Why the system test cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root (debootstrap, systemd-nspawn and overlay mounts)"
    for program, package in (
        ("debootstrap", "debootstrap"),
        ("systemd-nspawn", "systemd-container"),
        ("nsenter", "util-linux"),
    ):
        if shutil.which(program) is None:
            return f"{program} is not installed (Debian package: {package})"
    return None


def cache_dir() -> Path:
    return Path(os.environ.get("PILIVE_ROOTFS_CACHE", "/var/tmp/pilive-rootfs"))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock so concurrent runs build each cache entry once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def install_script_packages(*extra: str) -> list[str]:
    """The Debian packages install.sh installs on a Pi, plus `extra`, sorted and unique."""
    listed = subprocess.run(
        [str(INSTALL_SCRIPT), "--print-packages"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    return sorted({*extra, *listed})


def container_packages() -> list[str]:
    """The install script's Debian packages plus the container's base."""
    return install_script_packages(*BASE_PACKAGES)


def rootfs() -> Path:
    """The cached Debian tree (built on first use). Never written to by a container run."""
    packages = container_packages()
    key = _digest(SUITE, MIRROR, *packages)
    target = cache_dir() / f"{SUITE}-{key}"
    with locked(cache_dir() / f"{SUITE}-{key}.lock"):
        if (target / "etc" / "os-release").exists():
            return target
        building = cache_dir() / f"{SUITE}-{key}.building"
        shutil.rmtree(building, ignore_errors=True)
        result = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(packages)}",
                SUITE,
                str(building),
                MIRROR,
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            raise RigUnavailable(
                f"debootstrap {SUITE} failed (exit {result.returncode}): {result.stdout[-1500:]}"
                f"{result.stderr[-1500:]}"
            )
        # A persistent journal, so a run's log can be read after the container is gone.
        (building / "var" / "log" / "journal").mkdir(parents=True, exist_ok=True)
        building.rename(target)
    if not (target / "usr" / "bin" / CONTAINER_PYTHON).exists():
        raise RigUnavailable(f"the {SUITE} tree has no {CONTAINER_PYTHON}")
    return target


def _wheel_requirements() -> list[str]:
    project = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
    return [*project["build-system"]["requires"], *project["project"]["dependencies"]]


def wheelhouse() -> Path:
    """Wheels for pip inside the container: build requirements and runtime dependencies.

    Downloaded with this interpreter's pip for this interpreter's platform, which matches the
    container (Python 3.11 on the same architecture; `rootfs()` checks the version)."""
    if sys.version_info[:2] != (3, 11):
        raise RigUnavailable(f"wheels must match the container's {CONTAINER_PYTHON}")
    requirements = _wheel_requirements()
    key = _digest(sys.platform, os.uname().machine, *requirements)
    target = cache_dir() / f"wheels-{key}"
    with locked(cache_dir() / f"wheels-{key}.lock"):
        if (target / ".complete").exists():
            return target
        shutil.rmtree(target, ignore_errors=True)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--only-binary=:all:",
                "--dest",
                str(target),
                *requirements,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise RigUnavailable(f"pip download failed: {result.stderr[-2000:]}")
        (target / ".complete").write_text("\n".join(requirements) + "\n")
    return target


# --- the container -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bind:
    host: Path
    inside: str
    read_only: bool = True


class Container:
    """One boot of the cached tree on an overlay under `workdir`; `close()` powers it off."""

    def __init__(self, lower: Path, workdir: Path, binds: Sequence[Bind] = ()) -> None:
        self.lower = lower
        self.workdir = workdir
        self.binds = tuple(binds)
        self.root = workdir / "root"
        self.machine = f"pilive-test-{secrets.token_hex(4)}"
        self.console_log = workdir / "console.log"
        self._nspawn: subprocess.Popen[bytes] | None = None
        self._mounted = False
        self.leader_pid = 0

    # lifecycle

    def prepare(self) -> None:
        """Mount the overlay; files can be placed under `root` before `boot()`."""
        upper, work = self.workdir / "upper", self.workdir / "work"
        for path in (upper, work, self.root):
            path.mkdir(parents=True, exist_ok=True)
        options = f"lowerdir={self.lower},upperdir={upper},workdir={work}"
        result = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(self.root)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RigUnavailable(f"cannot mount an overlay: {result.stderr.strip()}")
        self._mounted = True
        for bind in self.binds:
            (self.root / bind.inside.lstrip("/")).mkdir(parents=True, exist_ok=True)

    def boot(self, timeout_s: float = 120.0) -> None:
        """Start systemd in the container and wait until it finished booting."""
        argv = [
            "systemd-nspawn",
            "--quiet",
            f"--directory={self.root}",
            f"--machine={self.machine}",
            "--boot",
            "--register=no",
            "--keep-unit",
            "--console=pipe",
        ]
        for bind in self.binds:
            flag = "--bind-ro" if bind.read_only else "--bind"
            argv.append(f"{flag}={bind.host}:{bind.inside}")
        with self.console_log.open("wb") as log:
            self._nspawn = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        # nspawn's own setup child is PID 1 in the new namespaces before it execs systemd; entered
        # then, nsenter --root lands in the host's root and systemctl there answers "offline". So
        # wait for systemd's private socket inside the container's root before asking it anything.
        self.leader_pid = wait_for(
            self._find_leader, timeout_s=30, what="the container's init to start"
        )
        wait_for(
            self._manager_listening, timeout_s=timeout_s, what="systemd's socket in the container"
        )
        state = self.run("systemctl", "is-system-running", "--wait", timeout_s=timeout_s)
        if state.stdout.strip() not in ("running", "degraded"):
            raise AssertionError(f"container boot ended {state.stdout.strip()!r}: {self.tail()}")

    def _manager_listening(self) -> bool:
        """Whether PID 1 has become systemd (no longer nspawn's setup child) and its private
        socket is up in the container's root."""
        assert self._nspawn is not None
        if self._nspawn.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited {self._nspawn.returncode}: {self.tail()}")
        leader = Path("/proc") / str(self.leader_pid)
        try:
            if (leader / "comm").read_text().strip() == "systemd-nspawn":
                return False
            return (leader / "root" / "run" / "systemd" / "private").is_socket()
        except OSError:
            return False

    def _find_leader(self) -> int | None:
        """The container's PID 1 as the host sees it: nspawn's child whose own PID there is 1."""
        assert self._nspawn is not None
        if self._nspawn.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited {self._nspawn.returncode}: {self.tail()}")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            nspid = fields.get("NSpid", "").split()
            if fields.get("PPid", "").strip() == str(self._nspawn.pid) and nspid[-1:] == ["1"]:
                return int(entry.name)
        return None

    def close(self) -> None:
        """Power off (falling back to killing nspawn), then drop the overlay."""
        try:
            if self._nspawn is not None and self._nspawn.poll() is None:
                if self.leader_pid:
                    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                        self.run("systemctl", "poweroff", "--no-block", timeout_s=30)
                else:  # never finished starting: nspawn turns SIGTERM into a poweroff
                    self._nspawn.terminate()
                try:
                    self._nspawn.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self._nspawn.kill()
                    self._nspawn.wait(timeout=30)
        finally:
            if self._mounted:
                subprocess.run(["umount", str(self.root)], check=False, timeout=60)
                self._mounted = False

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.console_log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # running things inside

    def run(
        self,
        *argv: str,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float = 60.0,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv inside the container (its mount, PID, IPC, UTS and cgroup namespaces; the
        network is shared with the host anyway) as root with a clean environment."""
        assert self.leader_pid, "boot() first"
        environment = {"PATH": PATH, "LANG": "C.UTF-8", "SYSTEMD_PAGER": "", **(env or {})}
        command = [
            "nsenter",
            f"--target={self.leader_pid}",
            "--mount",
            "--pid",
            "--ipc",
            "--uts",
            "--cgroup",
            "--root",
            "--wd",
            "--",
            "/usr/bin/env",
            "-i",
            *(f"{k}={v}" for k, v in environment.items()),
            *argv,
        ]
        result = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout[-3000:]}"
                f"\n{result.stderr[-3000:]}"
            )
        return result

    def properties(self, unit: str, *names: str) -> dict[str, str]:
        """`systemctl show` properties of a unit."""
        result = self.run("systemctl", "show", unit, f"--property={','.join(names)}", check=True)
        return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)

    def journal(self, unit: str) -> list[dict[str, Any]]:
        """The journal entries of a unit (its own and systemd's about it), oldest first."""
        result = self.run(
            "journalctl", "--unit", unit, "--output=json", "--no-pager", "--all", check=True
        )
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    def signal_main(self, unit: str, signum: signal.Signals) -> int:
        """Send a signal to the unit's main process (its PID inside the container)."""
        pid = int(self.properties(unit, "MainPID")["MainPID"])
        assert pid > 0, f"{unit} has no main process"
        probe = f"import os; os.kill({pid}, {int(signum)})"
        self.run("python3", "-c", probe, check=True)
        return pid


def messages(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(e.get("MESSAGE", "")) for e in entries]


def wait_for(
    probe: Callable[[], T | None], *, timeout_s: float, what: str, interval_s: float = 0.25
) -> T:
    """Poll until probe() returns something other than None/False; fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last is not None and last is not False:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})")


# --- the emulator on the host's loopback ----------------------------------------------------------


class EmulatorThread:
    """The project's emulator on its own event loop thread; `call` runs a function on that loop
    (for reading the recording without racing the server)."""

    def __init__(self, options: Any) -> None:
        self.options = options
        self.emulator: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="emulator", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception as exc:  # reported to the test thread by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        from pilive.emulator import Emulator

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with Emulator(self.options) as emulator:
            self.emulator = emulator
            self._ready.set()
            await self._stop.wait()

    def start(self) -> EmulatorThread:
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise self._error
        if self.emulator is None:
            raise AssertionError("the emulator did not start within 30 s")
        return self

    def call(self, fn: Callable[[Any], T]) -> T:
        assert self._loop is not None
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(self.emulator))
            except Exception as exc:  # handed to the caller's thread
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():  # never started when the rig failed before it was needed
            self._thread.join(timeout=30)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (the emulator takes it later)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
