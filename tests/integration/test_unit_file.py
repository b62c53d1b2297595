"""The systemd unit, sysusers.d and tmpfiles.d files, checked by systemd's own tools.

`systemd-analyze verify` insists that ExecStart's program exists, and the installed layout
(/opt/pilive/venv/bin/pilive) does not on a build machine. So verification runs on a copy whose
ExecStart points at a stub at the same layout under a temporary directory; every other line is
unchanged (the test checks that too). With systemd 252 (Debian 12, Raspberry Pi OS Bookworm)
verify also rejects any directive newer than 252, which keeps the unit portable to the Pi.
sysusers and tmpfiles are applied for real to a temporary root (--root).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT_DIR = Path(__file__).resolve().parents[2] / "systemd"
SERVICE = UNIT_DIR / "pilive.service"
SYSUSERS = UNIT_DIR / "pilive.sysusers"
TMPFILES = UNIT_DIR / "pilive.tmpfiles"
INSTALLED_PROGRAM = "/opt/pilive/venv/bin/pilive"
MAX_EXPOSURE = 1.5


def need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed (Debian package: systemd)")
    return path


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def directives(text: str) -> dict[str, list[str]]:
    """Key -> values, in order, ignoring comments and sections (keys here are unique enough)."""
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def test_unit_verifies_clean(tmp_path: Path) -> None:
    """`systemd-analyze verify` prints nothing for the unit (with ExecStart's program present)."""
    analyze = need("systemd-analyze")
    stub = tmp_path / INSTALLED_PROGRAM.lstrip("/")
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    original = SERVICE.read_text()
    copy_text = original.replace(f"ExecStart={INSTALLED_PROGRAM} ", f"ExecStart={stub} ")
    changed = [
        (a, b) for a, b in zip(original.splitlines(), copy_text.splitlines(), strict=True) if a != b
    ]
    assert len(changed) == 1
    assert changed[0][0].startswith("ExecStart=")
    copy = tmp_path / "pilive.service"
    copy.write_text(copy_text)
    result = run(analyze, "verify", str(copy))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_unit_without_the_program_only_misses_the_program() -> None:
    """On the original file, the one complaint is the not-yet-installed program."""
    analyze = need("systemd-analyze")
    result = run(analyze, "verify", str(SERVICE))
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    if Path(INSTALLED_PROGRAM).exists():
        assert lines == []
    else:
        assert lines == [f"pilive.service: Command {INSTALLED_PROGRAM} is not executable: "
                         "No such file or directory"]  # fmt: skip


def test_security_exposure_at_most_1_5() -> None:
    """`systemd-analyze security --offline=true` rates the unit at most 1.5, both as printed and
    through its own --threshold check."""
    analyze = need("systemd-analyze")
    result = run(analyze, "security", "--offline=true", str(SERVICE))
    match = re.search(r"Overall exposure level for pilive\.service: (\d+\.\d)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout
    gate = run(analyze, "security", "--offline=true", "--threshold=15", str(SERVICE))
    assert gate.returncode == 0, gate.stdout[-2000:]


def test_unit_has_the_promised_shape() -> None:
    """The contract the daemon relies on: notify + watchdog, restart, its own user and groups,
    state and config directories, the key as a credential, and an explicit device list in place
    of PrivateDevices (which would hide the sound card, GPIO and camera)."""
    d = directives(SERVICE.read_text())
    assert d["Type"] == ["notify"]
    assert d["NotifyAccess"] == ["main"]
    assert d["WatchdogSec"] and d["Restart"] == ["always"]
    assert d["ExecStart"] == [f"{INSTALLED_PROGRAM} run --config /etc/pilive/pilive.toml"]
    assert d["User"] == ["pilive"]
    assert set(d["SupplementaryGroups"][0].split()) == {"audio", "video", "gpio"}
    assert d["StateDirectory"] == ["pilive"]
    # The control socket lives here: group-reachable, nothing on the network.
    assert (d["RuntimeDirectory"], d["RuntimeDirectoryMode"]) == (["pilive"], ["0750"])
    assert d["ConfigurationDirectory"] == ["pilive"]
    assert d["LoadCredential"] == [
        "gemini-api-key:/etc/pilive/gemini-api-key",
        "pilive-device-token:/etc/pilive/pilive-device-token",
    ]
    assert d["DevicePolicy"] == ["closed"]
    assert "PrivateDevices" not in d
    allowed = {v.split()[0] for v in d["DeviceAllow"]}
    assert {"char-alsa", "char-gpiochip", "char-video4linux", "char-media"} <= allowed
    assert d["CapabilityBoundingSet"] == [""]
    assert d["ProtectSystem"] == ["strict"]


def test_sysusers_creates_user_and_groups(tmp_path: Path) -> None:
    """systemd-sysusers, applied to an empty root, creates the pilive user and the audio, video
    and gpio groups with pilive as a member."""
    sysusers = need("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    result = run(sysusers, f"--root={tmp_path}", str(SYSUSERS))
    assert result.returncode == 0, result.stderr
    passwd = (tmp_path / "etc" / "passwd").read_text()
    assert re.search(r"^pilive:x:\d+:\d+:[^:]*:/var/lib/pilive:/usr/sbin/nologin$", passwd, re.M)
    groups = {
        line.split(":")[0]: line.split(":")[3].split(",")
        for line in (tmp_path / "etc" / "group").read_text().splitlines()
    }
    for group in ("audio", "video", "gpio"):
        assert "pilive" in groups[group], groups


def test_sysusers_keeps_existing_groups(tmp_path: Path) -> None:
    """On Raspberry Pi OS the groups exist already: their ids are kept, pilive joins them."""
    sysusers = need("systemd-sysusers")
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "group").write_text("audio:x:29:pi\nvideo:x:44:pi\ngpio:x:993:pi\n")
    (etc / "passwd").write_text("")
    result = run(sysusers, f"--root={tmp_path}", str(SYSUSERS))
    assert result.returncode == 0, result.stderr
    group = (etc / "group").read_text()
    for line in ("audio:x:29:pi,pilive", "video:x:44:pi,pilive", "gpio:x:993:pi,pilive"):
        assert line in group.splitlines(), group


def test_tmpfiles_create_directories_with_safe_modes(tmp_path: Path) -> None:
    """systemd-tmpfiles creates /etc/pilive (0755, root) and /var/lib/pilive (0700, pilive) and
    tightens an existing key file to 0600 root."""
    sysusers = need("systemd-sysusers")
    tmpfiles = need("systemd-tmpfiles")
    (tmp_path / "etc").mkdir()
    assert run(sysusers, f"--root={tmp_path}", str(SYSUSERS)).returncode == 0
    result = run(tmpfiles, "--create", f"--root={tmp_path}", str(TMPFILES))
    assert result.returncode == 0, result.stderr
    uid = next(
        int(line.split(":")[2])
        for line in (tmp_path / "etc" / "passwd").read_text().splitlines()
        if line.startswith("pilive:")
    )
    state = (tmp_path / "var" / "lib" / "pilive").stat()
    assert (state.st_mode & 0o7777, state.st_uid) == (0o700, uid)
    config = (tmp_path / "etc" / "pilive").stat()
    assert (config.st_mode & 0o7777, config.st_uid) == (0o755, 0)
    key = tmp_path / "etc" / "pilive" / "gemini-api-key"
    key.write_text("not-a-real-key\n")
    key.chmod(0o644)
    assert run(tmpfiles, "--create", f"--root={tmp_path}", str(TMPFILES)).returncode == 0
    assert key.stat().st_mode & 0o7777 == 0o600


MDWE_CHILD = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:          # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit(77)
import mmap
try:                                          # the switch is really on: W+X memory is refused
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    sys.exit(3)
except OSError:
    pass
import numpy, pyaudio, simplejpeg, soxr, ssl, websockets
import pilive.audio._ringbuf
callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x + 1)
assert callback(41) == 42
assert numpy.frombuffer(simplejpeg.encode_jpeg(numpy.zeros((16, 16, 3), numpy.uint8)),
                        numpy.uint8).size > 0
print("ok")
"""


def test_python_side_runs_under_memory_deny_write_execute() -> None:
    """MemoryDenyWriteExecute=yes is safe for the Python side: under the kernel's own W^X switch
    (PR_SET_MDWE, Linux 6.3+; shown to refuse a W+X mapping) numpy, PyAudio, simplejpeg, soxr, ssl,
    the ring buffer and a ctypes callback (libffi trampolines, as an ALSA error handler) work."""
    result = run(sys.executable, "-c", MDWE_CHILD)
    if result.returncode == 77:
        pytest.skip("kernel has no PR_SET_MDWE (needs Linux 6.3+)")
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr
