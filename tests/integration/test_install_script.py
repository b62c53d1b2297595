"""systemd/install.sh run for real against a temporary root (--root, --no-apt).

Under --root the script does everything but build the venv and start the service: it installs
the unit, sysusers.d and tmpfiles.d files, applies them with systemd's own tools to the tree,
copies the config, writes the key file and enables the unit with `systemctl --root`. These tests
check the result on disk (modes, owners, contents), that a second run changes nothing it should
keep, and that uninstall removes exactly what it promises. The venv and the running service are
proved by the system test, which runs the same script inside a booted container.
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import shutil
import stat
import subprocess
import termios
import time
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
SCRIPT = CHECKOUT / "systemd" / "install.sh"
UNIT_TEXT = (CHECKOUT / "systemd" / "pilive.service").read_text()
CONFIG_TEXT = (CHECKOUT / "config" / "pilive.toml").read_text()
KEY = "AIzaSyTest-key_0123456789abcdefghijklmnop"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="install.sh runs as root")


@pytest.fixture(autouse=True)
def _tools() -> None:
    for program in ("systemd-sysusers", "systemd-tmpfiles", "systemctl", "userdel"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed (Debian packages: systemd, passwd)")


def install(
    root: Path, *args: str, stdin: str = "", check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(SCRIPT), "--root", str(root), "--no-apt", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def mode_owner(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def user_id(root: Path, name: str) -> int | None:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2])
    return None


def names_in(path: Path) -> list[str]:
    return [line.split(":")[0] for line in path.read_text().splitlines() if line]


def snapshot(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every path under root -> (mode, uid, gid, content or link target); backups left out."""
    out: dict[str, tuple[int, int, int, str]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if rel.endswith("-") or rel == "etc/.pwd.lock":  # shadow-utils' backups and lock
            continue
        if path.is_symlink():
            content = "-> " + os.readlink(path)
        elif path.is_file():
            content = path.read_text()
        else:
            content = "<dir>"
        out[rel] = (*mode_owner(path), content)
    return out


def test_install_lays_out_files_with_safe_modes(tmp_path: Path) -> None:
    """A fresh install: unit, sysusers and tmpfiles files as shipped (root, 0644); the user in its
    groups; /etc/pilive 0755 with the config 0644 and the key root:root 0600 holding exactly the
    key from stdin; /var/lib/pilive 0700 owned by pilive; the unit enabled; no venv under --root;
    and the key appears nowhere in what the script prints."""
    result = install(tmp_path, "--key-stdin", stdin=KEY + "\n")
    assert KEY not in result.stdout + result.stderr

    unit = tmp_path / "etc/systemd/system/pilive.service"
    assert unit.read_text() == UNIT_TEXT
    assert mode_owner(unit) == (0o644, 0, 0)
    sysusers = tmp_path / "usr/lib/sysusers.d/pilive.conf"
    tmpfiles = tmp_path / "usr/lib/tmpfiles.d/pilive.conf"
    assert sysusers.read_text() == (CHECKOUT / "systemd/pilive.sysusers").read_text()
    assert tmpfiles.read_text() == (CHECKOUT / "systemd/pilive.tmpfiles").read_text()
    assert mode_owner(sysusers) == mode_owner(tmpfiles) == (0o644, 0, 0)

    uid = user_id(tmp_path, "pilive")
    assert uid is not None
    groups = {
        line.split(":")[0]: line.split(":")[3].split(",")
        for line in (tmp_path / "etc/group").read_text().splitlines()
    }
    assert all("pilive" in groups[g] for g in ("audio", "video", "gpio")), groups

    assert mode_owner(tmp_path / "etc/pilive") == (0o755, 0, 0)
    config = tmp_path / "etc/pilive/pilive.toml"
    assert config.read_text() == CONFIG_TEXT
    assert mode_owner(config) == (0o644, 0, 0)
    key = tmp_path / "etc/pilive/gemini-api-key"
    assert key.read_text() == KEY + "\n"
    assert mode_owner(key) == (0o600, 0, 0)
    state = tmp_path / "var/lib/pilive"
    assert mode_owner(state)[:2] == (0o700, uid)

    wants = tmp_path / "etc/systemd/system/multi-user.target.wants/pilive.service"
    assert os.readlink(wants) == "/etc/systemd/system/pilive.service"
    assert not (tmp_path / "opt").exists()
    assert not list(tmp_path.rglob("*.pilive-new"))


def test_install_without_key_creates_an_empty_root_only_key_file(tmp_path: Path) -> None:
    """With no key given, the key file exists, empty, root:root 0600, ready to be filled in."""
    result = install(tmp_path)
    key = tmp_path / "etc/pilive/gemini-api-key"
    assert key.read_bytes() == b""
    assert mode_owner(key) == (0o600, 0, 0)
    assert "gemini-api-key" in result.stderr


def test_second_install_changes_nothing_and_keeps_config_and_key(tmp_path: Path) -> None:
    """Run twice (the second time without a key): an edited config, the key and every other file,
    mode and owner are exactly as before; the user exists once. A key file loosened by hand is
    tightened back to 0600."""
    install(tmp_path, "--key-stdin", stdin=KEY)
    config = tmp_path / "etc/pilive/pilive.toml"
    config.write_text(CONFIG_TEXT + '\n[log]\nlevel = "debug"\n')
    before = snapshot(tmp_path)
    result = install(tmp_path)
    assert snapshot(tmp_path) == before
    assert "kept /etc/pilive/pilive.toml" in result.stderr
    assert names_in(tmp_path / "etc/passwd").count("pilive") == 1
    assert names_in(tmp_path / "etc/group").count("pilive") == 1

    key = tmp_path / "etc/pilive/gemini-api-key"
    key.chmod(0o644)
    install(tmp_path)
    assert mode_owner(key) == (0o600, 0, 0)
    assert key.read_text() == KEY + "\n"


def test_key_from_a_file_replaces_the_key(tmp_path: Path) -> None:
    """--key-file puts that file's key (trimmed) in place of the old one, still root-only."""
    install(tmp_path, "--key-stdin", stdin="old-key")
    source = tmp_path / "new-key.txt"
    source.write_text("  new-key-0123\r\n")
    install(tmp_path, "--key-file", str(source))
    key = tmp_path / "etc/pilive/gemini-api-key"
    assert key.read_text() == "new-key-0123\n"
    assert mode_owner(key) == (0o600, 0, 0)


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("", "no API key on standard input"),
        ("   \n", "the API key given is empty"),
        ("two words\n", "contains spaces, control or non-ASCII characters"),
        ("caf\u00e9-key\n", "contains spaces, control or non-ASCII characters"),
    ],
)
def test_bad_key_is_refused_and_changes_nothing(tmp_path: Path, stdin: str, message: str) -> None:
    """A missing, blank or malformed key stops the script before it touches anything: the tree
    is exactly as it was, and the message says what is wrong without repeating the key."""
    install(tmp_path, "--key-stdin", stdin=KEY)
    before = snapshot(tmp_path)
    result = install(tmp_path, "--key-stdin", stdin=stdin, check=False)
    assert result.returncode == 1
    assert message in result.stderr
    assert "nothing was changed" in result.stderr
    if stdin.strip():
        assert stdin.strip() not in result.stderr
    assert snapshot(tmp_path) == before


def test_prefix_moves_the_venv_in_execstart_only(tmp_path: Path) -> None:
    """--prefix changes ExecStart to PREFIX/venv/bin/pilive and no other line of the unit."""
    install(tmp_path, "--prefix", "/srv/voice/")
    installed = (tmp_path / "etc/systemd/system/pilive.service").read_text().splitlines()
    changed = [(a, b) for a, b in zip(UNIT_TEXT.splitlines(), installed, strict=True) if a != b]
    assert changed == [
        (
            "ExecStart=/opt/pilive/venv/bin/pilive run --config /etc/pilive/pilive.toml",
            "ExecStart=/srv/voice/venv/bin/pilive run --config /etc/pilive/pilive.toml",
        )
    ]


def test_uninstall_keeps_config_and_state_and_purge_removes_them(tmp_path: Path) -> None:
    """--uninstall removes the unit, its enablement, the sysusers/tmpfiles files, the venv and
    the user and its group (the shared audio/video/gpio groups stay), and keeps /etc/pilive and
    /var/lib/pilive with their contents. Running it again is harmless. --purge then removes
    /etc/pilive and /var/lib/pilive."""
    install(tmp_path, "--key-stdin", stdin=KEY)
    handle = tmp_path / "var/lib/pilive/resumption.json"
    handle.write_text('{"version": 1}')
    venv = tmp_path / "opt/pilive/venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("include-system-site-packages = true\n")

    install(tmp_path, "--uninstall")
    for gone in (
        "etc/systemd/system/pilive.service",
        "etc/systemd/system/multi-user.target.wants/pilive.service",
        "usr/lib/sysusers.d/pilive.conf",
        "usr/lib/tmpfiles.d/pilive.conf",
        "opt/pilive",
    ):
        assert not (tmp_path / gone).exists(), gone
    for table in ("passwd", "shadow", "group", "gshadow"):
        assert "pilive" not in names_in(tmp_path / "etc" / table), table
    assert {"audio", "video", "gpio"} <= set(names_in(tmp_path / "etc/group"))
    assert (tmp_path / "etc/pilive/gemini-api-key").read_text() == KEY + "\n"
    assert (tmp_path / "etc/pilive/pilive.toml").read_text() == CONFIG_TEXT
    assert handle.read_text() == '{"version": 1}'

    again = install(tmp_path, "--uninstall")
    assert "kept /etc/pilive" in again.stderr

    install(tmp_path, "--uninstall", "--purge")
    assert not (tmp_path / "etc/pilive").exists()
    assert not (tmp_path / "var/lib/pilive").exists()


def test_uninstall_removes_only_a_venv(tmp_path: Path) -> None:
    """A directory at the venv's place that is not a venv (no pyvenv.cfg) is left alone, and the
    script says so and fails rather than deleting someone else's files."""
    install(tmp_path)
    stranger = tmp_path / "opt/pilive/venv/notes.txt"
    stranger.parent.mkdir(parents=True)
    stranger.write_text("mine")
    result = install(tmp_path, "--uninstall", check=False)
    assert result.returncode == 1
    assert "is not a venv: not removing it" in result.stderr
    assert stranger.read_text() == "mine"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--api-key", "AIzaSecret"], "unknown option '--api-key'"),
        (["--api-key=AIzaSecret"], "unknown option '--api-key'"),
        (["--purge"], "--purge only goes with --uninstall"),
        (["--prefix", "opt/pilive"], "--prefix must be an absolute path"),
        (["--prefix", "/opt/pi live"], "--prefix may only use"),
        (["--key-file"], "--key-file needs a file name"),
        (["--uninstall", "--key-stdin"], "--uninstall takes no key"),
    ],
)
def test_bad_options_are_refused_by_name(tmp_path: Path, args: list[str], message: str) -> None:
    """Wrong options exit 2 naming the problem, touch nothing, and never echo a value that could
    be a key given on the command line by mistake."""
    result = install(tmp_path, *args, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert "AIzaSecret" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_relative_root_is_refused(tmp_path: Path) -> None:
    """--root must be absolute: a relative one would land files relative to the caller's cwd."""
    result = subprocess.run(
        [str(SCRIPT), "--root", "some/dir", "--no-apt"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--root must be an absolute path" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_print_packages_lists_what_the_install_needs() -> None:
    """--print-packages names the venv, compiler and hardware-binding packages (the system test
    builds its container from this list); the Raspberry Pi-only ones appear only where the
    archive has them."""
    result = subprocess.run(
        [str(SCRIPT), "--print-packages"], capture_output=True, text=True, timeout=60, check=True
    )
    packages = result.stdout.split()
    for needed in ("python3-venv", "python3-dev", "gcc", "python3-pyaudio", "python3-systemd"):
        assert needed in packages
    policy = subprocess.run(
        ["apt-cache", "policy", "python3-picamera2"], capture_output=True, text=True, check=False
    )
    has_picamera2 = "Candidate:" in policy.stdout and "(none)" not in policy.stdout
    assert ("python3-picamera2" in packages) == has_picamera2


@pytest.mark.parametrize("arch", ["armhf", "armel", "arm64"])
def test_print_packages_takes_numpy_and_pillow_from_apt(tmp_path: Path, arch: str) -> None:
    """numpy and Pillow (the camera's crop, scale and JPEG encoder) come from apt on every
    architecture: on 32-bit ARM PyPI has no wheel of either."""
    fake = tmp_path / "bin"
    fake.mkdir()
    dpkg = fake / "dpkg"
    dpkg.write_text(f"#!/bin/sh\necho {arch}\n")
    dpkg.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    result = subprocess.run(
        [str(SCRIPT), "--print-packages"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    packages = result.stdout.split()
    assert "python3-numpy" in packages
    assert "python3-pil" in packages


def key_holders(root: Path, key: str) -> dict[str, int]:
    """Every regular file under root holding `key` -> its permission bits."""
    return {
        str(path.relative_to(root)): stat.S_IMODE(path.lstat().st_mode)
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and key in path.read_text(errors="replace")
    }


def watching_chmod(tmp_path: Path, key: str) -> tuple[dict[str, str], Path]:
    """An environment whose `chmod` first notes the mode of any file holding `key` (the mode
    it had while the key was written into it), then runs the real chmod."""
    bin_dir = tmp_path / "watch-bin"
    bin_dir.mkdir()
    log = tmp_path / "modes.log"
    wrapper = bin_dir / "chmod"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for last in "$@"; do :; done\n'
        'if [ -f "$last" ] && grep -qF -- "$WATCH_KEY" "$last"; then\n'
        f'    stat -c %a "$last" >>{log}\n'
        "fi\n"
        f'exec {shutil.which("chmod")} "$@"\n'
    )
    wrapper.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", WATCH_KEY=key)
    return env, log


def test_a_planted_temporary_file_is_not_written_through(tmp_path: Path) -> None:
    """Someone prepared the key's old temporary name, gemini-api-key.pilive-new: first as a
    symlink to a file of their choosing, then as a world-readable file. The install writes
    through neither (the link's target never appears, the planted file keeps its content and is
    not what becomes the key file), the key file is written into a file that was root-only from
    its creation (its mode before the script's chmod is 600), and afterwards the key is in the
    key file alone, 0600, with no temporary file left."""
    root = tmp_path / "root"
    root.mkdir()
    install(root)
    pilive_dir = root / "etc/pilive"
    planted = pilive_dir / "gemini-api-key.pilive-new"
    target = tmp_path / "stolen-key"
    planted.symlink_to(target)
    env, modes = watching_chmod(tmp_path, KEY)
    script = [str(SCRIPT), "--root", str(root), "--no-apt", "--key-stdin"]
    result = subprocess.run(
        script, input=KEY, capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert not target.exists() and planted.is_symlink()
    assert key_holders(root, KEY) == {"etc/pilive/gemini-api-key": 0o600}
    assert set(modes.read_text().split()) == {"600"}

    planted.unlink()
    planted.write_text("prepared\n")
    planted.chmod(0o644)
    new_key = KEY[::-1]
    env["WATCH_KEY"] = new_key
    modes.unlink()
    result = subprocess.run(
        script, input=new_key, capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert planted.read_text() == "prepared\n"
    assert planted.stat().st_ino != (pilive_dir / "gemini-api-key").stat().st_ino
    assert key_holders(root, new_key) == {"etc/pilive/gemini-api-key": 0o600}
    assert set(modes.read_text().split()) == {"600"}
    assert sorted(p.name for p in pilive_dir.iterdir()) == [
        "gemini-api-key",
        "gemini-api-key.pilive-new",
        "pilive-device-token",  # empty: the credential of a fleet device, when it is one
        "pilive.toml",
    ]


def read_until(fd: int, marker: bytes, timeout_s: float = 60.0) -> bytes:
    """What `fd` gives until `marker` shows up; fails (never hangs) if it does not in time."""
    deadline = time.monotonic() + timeout_s
    data = b""
    while marker not in data:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no {marker!r} within {timeout_s:g} s; got {data!r}"
        chunk = os.read(fd, 4096)
        assert chunk, f"the stream ended without {marker!r}; got {data!r}"
        data += chunk
    return data


def test_a_key_pasted_into_a_terminal_is_not_echoed(tmp_path: Path) -> None:
    """--key-stdin on a terminal: the script turns echo off before it asks, so the pasted key
    never shows on the terminal, and turns it back on when it has read the key."""
    main, terminal = pty.openpty()
    process = subprocess.Popen(
        [str(SCRIPT), "--root", str(tmp_path), "--no-apt", "--key-stdin"],
        stdin=terminal,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        read_until(process.stderr.fileno(), b"not shown")
        assert not termios.tcgetattr(terminal)[3] & termios.ECHO
        os.write(main, KEY.encode() + b"\n")
        assert process.wait(timeout=120) == 0, process.stderr.read()
        assert termios.tcgetattr(terminal)[3] & termios.ECHO
        os.set_blocking(main, False)
        shown = b""
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(main, 4096):
                shown += chunk
        assert KEY.encode() not in shown
        assert (tmp_path / "etc/pilive/gemini-api-key").read_text() == KEY + "\n"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(main)
        os.close(terminal)
