"""Run the tests and `pilive demo` in a Debian bookworm arm64 root under qemu-user.

    python -m tests.arm64 [--subset full|ci] [--no-demo] [--tests PATH...] [-- PYTEST ARGS...]

Every figure and test from an x86-64 build machine says little about a Pi: the code runs there on
another CPU, at a fraction of the speed, with the C ring buffer built by another compiler. This
puts the nearest thing to a Pi on the build machine:

- the root: `debootstrap --foreign --arch=arm64` of bookworm (Raspberry Pi OS Bookworm is Debian
  12), its second stage run through qemu-aarch64 (binfmt_misc with the F flag, so the emulator
  needs no copy inside the root). It holds the Debian packages `systemd/install.sh` installs on a
  Pi, and a venv made as install.sh makes it (`--system-site-packages`, so it sees the apt
  bindings) with the Python dependencies and the test tools. Built once under a lock and cached
  under $PILIVE_ARM64_CACHE (default /var/cache/pilive-arm64), keyed by a hash of what goes in;
  a changed package list or dependency builds a new one.
- each run: an overlay on the cached root (which is never written), the checkout bind-mounted
  read-only, pilive pip-installed from a copy of it (not editable, as install.sh does: the C ring
  buffer is compiled by the root's own aarch64 gcc), then pytest and `pilive demo`, all inside
  `systemd-nspawn` without boot (its own /proc, /dev, a tmpfs /tmp; the host's network, for the
  emulator on 127.0.0.1).

What does not run under qemu (and why) is said beside IGNORED_MODULES. Exit status: pytest's, or
the demo's when the tests passed; 2 when the rig itself cannot run here.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.support.system_rig import install_script_packages, locked

CHECKOUT = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
ARCH = "arm64"
MIRROR = "http://deb.debian.org/debian"
# Bumped when the way the root is built changes, so old caches are not reused.
ROOT_RECIPE = "1"
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BINFMT_ENTRY = BINFMT_DIR / "qemu-aarch64"
# Beside the install script's packages (numpy and Pillow among them, from apt as on Raspberry Pi
# OS: no source build under emulation): espeak-ng for the demo's spoken microphone, and procps
# (ps/pkill) which some tests use to look at processes.
EXTRA_PACKAGES = ("espeak-ng", "procps")
VENV = "/opt/pilive/venv"
SRC_MOUNT = "/srv/pilive"
WHEELS_MOUNT = "/srv/pilive-wheels"
ROOT_PYTHON = "3.11"
# manylinux tags bookworm's glibc 2.36 accepts, as wheels are published today.
WHEEL_PLATFORMS = (
    "manylinux2014",
    *(f"manylinux_2_{minor}" for minor in (17, 24, 26, 27, 28, 31, 34, 35, 36)),
)
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Tests that cannot mean anything under qemu-user; everything else must pass there.
# - the PulseAudio rig (marker "rig") is not installed in the root: its latency and pacing checks
#   measure real-time behaviour that an emulated CPU cannot meet; they skip with that reason.
# - the sanitizer tests (valgrind, gcc's ASan/UBSan/TSan) instrument the C ring buffer for the
#   machine it runs on; under qemu-user ASan's shadow memory and TSan's runtime crawl (minutes per
#   case) or hang. They say nothing about arm64 that the x86-64 run does not: left out.
IGNORED_MODULES = ("tests/integration/test_ringbuf_sanitizers.py",)
# The CI subset: the unit and conformance tests (about 8 minutes under emulation on a 2-core
# machine) and the demo. The integration modules, whole daemons against the emulator many times
# over, add about 10 more; they run without --subset.
CI_TEST_PATHS = ("tests/unit", "tests/conformance")


TEST_PATHS = ("tests/unit", "tests/conformance", "tests/integration")


class RigUnavailable(Exception):
    """The arm64 root cannot be built or run on this machine; the message says why."""


def say(message: str) -> None:
    print(f"test-arm64: {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("PILIVE_ARM64_CACHE", "/var/cache/pilive-arm64"))


def run(argv: Sequence[str], *, timeout_s: float, what: str, quiet: bool = False) -> None:
    """Run a host command; a failure is a RigUnavailable naming `what` with the output's tail."""
    result = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=quiet,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if result.returncode != 0:
        tail = f"\n{result.stdout[-2000:]}{result.stderr[-2000:]}" if quiet else ""
        raise RigUnavailable(f"{what} failed (exit {result.returncode}){tail}")


# --- the host: emulator registration ------------------------------------------------------------


def ensure_binfmt() -> None:
    """binfmt_misc mounted and qemu-aarch64 registered with the F flag (interpreter opened at
    registration, so it works inside any root)."""
    if os.geteuid() != 0:
        raise RigUnavailable("needs root (debootstrap, overlay mounts and systemd-nspawn)")
    for program, package in (
        ("debootstrap", "debootstrap"),
        ("systemd-nspawn", "systemd-container"),
        ("update-binfmts", "binfmt-support"),
    ):
        if shutil.which(program) is None:
            raise RigUnavailable(f"{program} is not installed (Debian package: {package})")
    if not (BINFMT_DIR / "status").exists():
        run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)],
            timeout_s=30,
            what="mounting binfmt_misc",
            quiet=True,
        )
    if not BINFMT_ENTRY.exists() or "enabled" not in BINFMT_ENTRY.read_text():
        run(
            ["update-binfmts", "--enable", "qemu-aarch64"],
            timeout_s=60,
            what="registering qemu-aarch64 (Debian package qemu-user-static)",
            quiet=True,
        )
    entry = BINFMT_ENTRY.read_text() if BINFMT_ENTRY.exists() else ""
    if "enabled" not in entry.split():
        raise RigUnavailable("qemu-aarch64 is not enabled in binfmt_misc")
    flags = next((ln.split(":", 1)[1] for ln in entry.splitlines() if ln.startswith("flags:")), "")
    if "F" not in flags:
        raise RigUnavailable(f"qemu-aarch64 is registered without the F flag (flags:{flags})")


# --- the cached root -----------------------------------------------------------------------------


def apt_packages() -> list[str]:
    """What install.sh installs on a Pi (outside Raspberry Pi OS's own archive) plus EXTRA."""
    return install_script_packages(*EXTRA_PACKAGES)


def pip_requirements() -> list[str]:
    """Build requirements, runtime dependencies and the test tools (not the "pi" extra: those
    bindings come from apt, as install.sh does)."""
    project = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
    return [
        *project["build-system"]["requires"],
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["test"],
    ]


def root_key() -> str:
    parts = [ROOT_RECIPE, SUITE, ARCH, MIRROR, *apt_packages(), "--", *pip_requirements()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def nspawn(root: Path, script: str, *, binds: Sequence[str] = (), timeout_s: float) -> int:
    """Run a shell script inside `root` (no boot), output straight to ours; its exit status."""
    argv = [
        "systemd-nspawn",
        "--quiet",
        f"--directory={root}",
        "--register=no",
        "--keep-unit",
        "--console=pipe",
        "--tmpfs=/tmp",
        "--setenv=LANG=C.UTF-8",
        f"--setenv=PATH={PATH}",
        "--setenv=PYTHONDONTWRITEBYTECODE=1",
        "--setenv=PIP_DISABLE_PIP_VERSION_CHECK=1",
        *binds,
        "/bin/sh",
        "-euc",
        script,
    ]
    try:
        return subprocess.run(
            argv, stdin=subprocess.DEVNULL, timeout=timeout_s, check=False
        ).returncode
    except subprocess.TimeoutExpired:
        say(f"timed out after {timeout_s:.0f} s")
        return 124


def wheelhouse() -> Path:
    """aarch64 wheels of the Python requirements, downloaded by the host's pip (which has the
    machine's network settings and certificates; the root has neither), so pip inside installs
    offline. A requirement already met by an apt package is simply not taken from here."""
    requirements = pip_requirements()
    key = hashlib.sha256("\n".join([ARCH, *requirements]).encode()).hexdigest()[:16]
    target = cache_dir() / f"wheels-{ARCH}-{key}"
    with locked(cache_dir() / f"wheels-{ARCH}-{key}.lock"):
        if (target / ".complete").exists():
            return target
        shutil.rmtree(target, ignore_errors=True)
        platforms = [f"--platform={tag}_aarch64" for tag in WHEEL_PLATFORMS]
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--only-binary=:all:",
                *platforms,
                f"--python-version={ROOT_PYTHON}",
                "--implementation=cp",
                f"--abi=cp{ROOT_PYTHON.replace('.', '')}",
                f"--dest={target}",
                *requirements,
            ],
            timeout_s=900,
            what="pip download of the aarch64 wheels",
            quiet=True,
        )
        (target / ".complete").write_text("\n".join(requirements) + "\n")
    return target


def build_root(target: Path) -> None:
    """debootstrap (two stages), then the venv with the Python dependencies; renamed into place
    only when whole. A finished debootstrap is kept across a failed venv step."""
    building = target.with_name(target.name + ".building")
    bootstrapped = building / ".pilive-debootstrap-done"
    if building.exists() and not bootstrapped.exists():
        shutil.rmtree(building)
    started = time.monotonic()
    wheels = wheelhouse()
    if not bootstrapped.exists():
        debootstrap(building)
        bootstrapped.touch()
    say(f"debootstrap done after {time.monotonic() - started:.0f} s; making the venv")
    requirements = " ".join(shlex.quote(r) for r in pip_requirements())
    status = nspawn(
        building,
        f"python3 -m venv --system-site-packages {VENV}\n"
        f"{VENV}/bin/python -m pip install --quiet --no-warn-script-location --no-index"
        f" --find-links={WHEELS_MOUNT} {requirements}\n",
        binds=[f"--bind-ro={wheels}:{WHEELS_MOUNT}"],
        timeout_s=2400,
    )
    if status != 0:
        raise RigUnavailable(f"installing the Python dependencies in the root failed ({status})")
    bootstrapped.unlink()
    building.rename(target)
    say(f"root ready in {time.monotonic() - started:.0f} s: {target}")


def debootstrap(building: Path) -> None:
    say(f"building the {SUITE} {ARCH} root (debootstrap; several minutes under emulation)")
    run(
        [
            "debootstrap",
            "--foreign",
            f"--arch={ARCH}",
            "--variant=minbase",
            f"--include={','.join(apt_packages())}",
            SUITE,
            str(building),
            MIRROR,
        ],
        timeout_s=1200,
        what="debootstrap (first stage)",
        quiet=True,
    )
    run(
        ["chroot", str(building), "/debootstrap/debootstrap", "--second-stage"],
        timeout_s=2400,
        what="debootstrap --second-stage under qemu-aarch64",
        quiet=True,
    )


def built_root() -> Path | None:
    """The root for what goes in now, if it has been built; never builds one (the benchmark
    uses the root `make test-arm64` keeps, and says so when there is none)."""
    target = cache_dir() / f"{SUITE}-{ARCH}-{root_key()}"
    return target if (target / VENV.lstrip("/") / "bin" / "python").exists() else None


def cached_root() -> Path:
    key = root_key()
    target = cache_dir() / f"{SUITE}-{ARCH}-{key}"
    with locked(cache_dir() / f"{SUITE}-{ARCH}-{key}.lock"):
        if not (target / VENV.lstrip("/") / "bin" / "python").exists():
            build_root(target)
    prune(keep=target)
    return target


def prune(keep: Path) -> None:
    """Drop roots of older recipes (about 1 GB each) that no run is using."""
    for other in cache_dir().glob(f"{SUITE}-{ARCH}-*"):
        if other == keep or other.suffix == ".lock" or not other.is_dir():
            continue
        lock = other.with_name(other.name.removesuffix(".building") + ".lock")
        with lock.open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            shutil.rmtree(other, ignore_errors=True)
        lock.unlink(missing_ok=True)


# --- one run -------------------------------------------------------------------------------------


@contextlib.contextmanager
def overlay(lower: Path) -> Iterator[Path]:
    """A writable view of `lower` for one run, thrown away afterwards."""
    work = Path(tempfile.mkdtemp(prefix="run-", dir=cache_dir()))
    merged = work / "root"
    for path in (work / "upper", work / "work", merged):
        path.mkdir()
    options = f"lowerdir={lower},upperdir={work / 'upper'},workdir={work / 'work'}"
    try:
        run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(merged)],
            timeout_s=60,
            what="mounting an overlay",
            quiet=True,
        )
        try:
            (merged / SRC_MOUNT.lstrip("/")).mkdir(parents=True, exist_ok=True)
            yield merged
        finally:
            subprocess.run(["umount", str(merged)], check=False, timeout=60)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def pytest_command(subset: str, extra: Sequence[str], paths: Sequence[str] = TEST_PATHS) -> str:
    argv = [
        f"{VENV}/bin/python",
        "-m",
        "pytest",
        "-c",
        f"{SRC_MOUNT}/pyproject.toml",
        f"--rootdir={SRC_MOUNT}",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow and not system",
    ]
    for module in IGNORED_MODULES:
        argv += ["--ignore", f"{SRC_MOUNT}/{module}"]
    if subset == "ci" and tuple(paths) == TEST_PATHS:
        paths = CI_TEST_PATHS
    argv += [f"{SRC_MOUNT}/{p}" for p in paths]
    argv += extra
    return " ".join(shlex.quote(a) for a in argv)


def install_lines() -> list[str]:
    """Shell lines that install pilive in the root as install.sh does: from a copy, not
    editable, the C ring buffer compiled by the root's aarch64 gcc."""
    return [
        "mkdir -p /tmp/src /tmp/run",
        f"cd {SRC_MOUNT}",
        "tar -cf - --exclude=__pycache__ --exclude='*.so' --exclude='*.egg-info' "
        "pyproject.toml README.md daemon | (cd /tmp/src && tar -xf -)",
        'echo "test-arm64: building pilive with $(gcc -dumpmachine)-gcc" >&2',
        f"{VENV}/bin/python -m pip install --quiet --no-deps --no-build-isolation /tmp/src",
        f"{VENV}/bin/python -c 'import platform, pilive.audio._ringbuf as r; "
        'print("test-arm64:", platform.machine(), r.__file__)\' >&2',
    ]


def inside_script(
    subset: str, pytest_extra: Sequence[str], demo: bool, paths: Sequence[str] = TEST_PATHS
) -> str:
    """Install as install.sh does (from a copy; not editable), then test, then the demo."""
    lines = [
        *install_lines(),
        "cd /tmp/run",
        "status=0",
        f"{pytest_command(subset, pytest_extra, paths)} || status=$?",
    ]
    if demo:
        lines += [
            'if [ "$status" = 0 ]; then',
            '  echo "test-arm64: pilive demo" >&2',
            # From a writable copy of config/: the demo writes its run beside it.
            f"  mkdir -p /tmp/demo && cp -r {SRC_MOUNT}/config /tmp/demo/ && cd /tmp/demo",
            f"  {VENV}/bin/pilive demo || status=$?",
            "fi",
        ]
    lines.append('exit "$status"')
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.arm64", description=__doc__)
    parser.add_argument(
        "--subset",
        choices=("full", "ci"),
        default="full",
        help="ci: only the unit and conformance tests (the time budget of .ci/run)",
    )
    parser.add_argument("--no-demo", action="store_true", help="skip `pilive demo`")
    parser.add_argument(
        "--tests",
        nargs="+",
        default=TEST_PATHS,
        metavar="PATH",
        help=f"test files or folders, relative to the checkout (default: {' '.join(TEST_PATHS)})",
    )
    parser.add_argument("--build-only", action="store_true", help="build the root, run nothing")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed on to pytest")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        ensure_binfmt()
        root = cached_root()
        say(f"root ready after {time.monotonic() - started:.0f} s")
        if args.build_only:
            return 0
        with overlay(root) as merged:
            status = nspawn(
                merged,
                inside_script(args.subset, args.pytest_args, not args.no_demo, args.tests),
                binds=[f"--bind-ro={CHECKOUT}:{SRC_MOUNT}"],
                timeout_s=3600,
            )
    except RigUnavailable as error:
        say(f"cannot run: {error}")
        return 2
    say(
        f"{'passed' if status == 0 else f'FAILED ({status})'} in {time.monotonic() - started:.0f} s"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
