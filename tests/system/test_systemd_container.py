"""pilive under real systemd 252 (the Raspberry Pi OS Bookworm version), booted in a container.

One boot serves the whole module (about 2-3 minutes; the first run also builds the Debian tree,
about a minute more). The container gets the checkout read-only and a folder of wheels; inside it,
`systemd/install.sh --no-apt --key-stdin` does the real install: a venv with system site packages
(python3-systemd from apt), pip install of the checkout (building the C extension), the unit,
user, directories, key file, daemon-reload, enable, start. The config placed beforehand uses
simulated hardware and points at an emulator on the host's loopback (the container shares the
host's network), which is started only after the service is up: READY must not wait for it.

The tests then run in file order against that one service: READY and STATUS, the credential and
state directory under the hardening, a restart after a crash, a restart after a watchdog timeout
from an injected hang, and a clean stop.
"""

from __future__ import annotations

import json
import secrets
import signal
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.system_rig import (
    CHECKOUT,
    SRC_MOUNT,
    WHEELS_MOUNT,
    Bind,
    Container,
    EmulatorThread,
    RigUnavailable,
    free_port,
    messages,
    missing_requirements,
    rootfs,
    wait_for,
    wheelhouse,
)

pytestmark = pytest.mark.system

UNIT = "pilive.service"
# Restart (5 s) and start-up, or WatchdogSec (20 s) plus those: generous, the machine is shared.
RESTART_TIMEOUT_S = 90.0
# The daemon's promise on SIGTERM (the unit allows 15 s before SIGKILL).
STOP_BUDGET_S = 5.0


def container_config(port: int) -> str:
    """Simulated hardware, the emulator on the host's loopback; the key is NOT in here: it comes
    through the unit's LoadCredential. [state] is unset, so $STATE_DIRECTORY is used."""
    return f"""\
[live]
endpoint = "ws://127.0.0.1:{port}"

[connection]
backoff_initial_s = 0.2
backoff_max_s = 2.0

[audio.input]
backend = "null"

[audio.output]
backend = "null"

[camera]
source = "synthetic"

[gpio]
pin_factory = "mock"

# Push-to-talk turns a while after each start (by then the emulator is up; the second one in
# case a slow machine was not connected yet): transcripts go to the journal as structured fields.
[[timeline]]
at_s = 8.0
action = "press"

[[timeline]]
at_s = 10.0
action = "release"

[[timeline]]
at_s = 25.0
action = "press"

[[timeline]]
at_s = 27.0
action = "release"
"""


@dataclass
class System:
    container: Container
    emulator: EmulatorThread
    key: str
    install_output: str
    before_network: dict[str, str]

    def props(self, *names: str) -> dict[str, str]:
        return self.container.properties(UNIT, *names)

    def recording(self) -> Any:
        return self.emulator.emulator.recording


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    reason = missing_requirements()
    if reason is not None:
        pytest.skip(reason)
    try:
        lower = rootfs()
        wheels = wheelhouse()
    except RigUnavailable as exc:
        pytest.skip(str(exc))
    from pilive.emulator import EmulatorOptions

    workdir = tmp_path_factory.mktemp("container")
    container = Container(
        lower, workdir, binds=[Bind(CHECKOUT, SRC_MOUNT), Bind(wheels, WHEELS_MOUNT)]
    )
    port = free_port()
    key = secrets.token_urlsafe(24)
    emulator = EmulatorThread(EmulatorOptions(port=port, api_key=key))
    try:
        container.prepare()
        config = container.root / "etc" / "pilive" / "pilive.toml"
        config.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        config.write_text(container_config(port))
        config.chmod(0o644)
        container.boot()
        install = container.run(
            f"{SRC_MOUNT}/systemd/install.sh",
            "--no-apt",
            "--key-stdin",
            stdin=key + "\n",
            env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": WHEELS_MOUNT, "TMPDIR": "/var/tmp"},
            timeout_s=600,
            check=True,
        )
        before = container.properties(
            UNIT, "Type", "ActiveState", "SubState", "StatusText", "MainPID"
        )
        emulator.start()
        yield System(container, emulator, key, install.stderr, before)
    finally:
        try:
            if container.leader_pid:
                journal = container.run("journalctl", "-u", UNIT, "--no-pager", "-n", "80")
                print(journal.stdout)
        finally:
            container.close()
            emulator.stop()


def test_install_starts_a_notify_service_that_is_ready_without_the_network(system: System) -> None:
    """install.sh left the unit active/running as Type=notify (so READY=1 arrived: `systemctl
    restart` only returns then), before any emulator was listening: READY comes from local
    hardware, not the network, and STATUS says in words that it has no connection yet."""
    assert "kept /etc/pilive/pilive.toml" in system.install_output
    assert system.key not in system.install_output
    before = system.before_network
    assert (before["Type"], before["ActiveState"], before["SubState"]) == (
        "notify",
        "active",
        "running",
    )
    assert int(before["MainPID"]) > 0
    status = before["StatusText"]
    assert status, "no STATUS= text was sent"
    assert any(word in status for word in ("offline", "connecting")), status
    # The venv sees the apt bindings (system site packages) and holds a built, non-editable copy.
    probe = system.container.run(
        "/opt/pilive/venv/bin/python",
        "-c",
        "import systemd.daemon, pilive, pilive.audio._ringbuf as r; "
        "print(systemd.daemon.__file__); print(pilive.__file__); print(r.__file__)",
        check=True,
    )
    bindings, package, extension = probe.stdout.split()
    assert bindings.startswith("/usr/lib/python3/dist-packages/"), bindings
    assert package.startswith("/opt/pilive/venv/lib/python3.11/site-packages/pilive/"), package
    assert extension.endswith(".so") and extension.startswith("/opt/pilive/venv/"), extension


def test_status_turns_idle_once_the_session_is_set_up_with_the_credential(system: System) -> None:
    """With the emulator up, the service connects and STATUS reads "idle". The emulator accepts
    only its own random key, which reached the daemon solely through LoadCredential from the
    root-only /etc/pilive/gemini-api-key (not the config, not the environment); the service user
    itself cannot read that file."""
    wait_for(
        lambda: "idle" in system.props("StatusText")["StatusText"],
        timeout_s=60,
        what="STATUS idle",
    )
    sessions = system.emulator.call(lambda emu: list(emu.recording.sessions))
    assert sessions, "no session was set up"
    setups = system.emulator.call(
        lambda emu: [c.setup for c in emu.recording.connections if c.setup is not None]
    )
    assert setups and "gemini" in json.dumps(setups[-1])
    key_file = system.container.root / "etc/pilive/gemini-api-key"
    st = key_file.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 0, 0)
    assert key_file.read_text() == system.key + "\n"
    as_service_user = system.container.run(
        "setpriv",
        "--reuid=pilive",
        "--regid=pilive",
        "--init-groups",
        "cat",
        "/etc/pilive/gemini-api-key",
    )
    assert as_service_user.returncode != 0
    assert "Permission denied" in as_service_user.stderr


def test_the_control_socket_belongs_to_the_service_and_pilive_ctl_reaches_it(
    system: System,
) -> None:
    """Under the unit's own user and RuntimeDirectory, /run/pilive/control.sock is pilive:pilive
    0660 in a 0750 directory; the installed `pilive ctl status` answers as root and as the
    service's user (the link connected), and another local user is refused by the file system
    with a sentence that says how to get in."""
    wait_for(
        lambda: "idle" in system.props("StatusText")["StatusText"],
        timeout_s=60,
        what="STATUS idle",
    )
    owner = system.container.run(
        "stat", "-c", "%U:%G %a", "/run/pilive", "/run/pilive/control.sock", check=True
    )
    assert owner.stdout.split("\n")[:2] == ["pilive:pilive 750", "pilive:pilive 660"], owner.stdout
    ctl = ("/opt/pilive/venv/bin/pilive", "ctl", "status")
    as_root = system.container.run(*ctl, check=True)
    assert json.loads(as_root.stdout)["link"]["state"] == "connected", as_root.stdout
    as_pilive = system.container.run(
        "setpriv", "--reuid=pilive", "--regid=pilive", "--init-groups", *ctl
    )
    assert as_pilive.returncode == 0, as_pilive.stderr
    assert json.loads(as_pilive.stdout)["link"]["state"] == "connected"
    as_nobody = system.container.run(
        "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *ctl
    )
    assert as_nobody.returncode == 2, (as_nobody.stdout, as_nobody.stderr)
    assert "permission denied" in as_nobody.stderr, as_nobody.stderr


def test_state_directory_holds_the_newest_resumption_handle(system: System) -> None:
    """Under ProtectSystem=strict, the daemon writes resumption.json into its StateDirectory
    (/var/lib/pilive, 0700, owned by pilive, file private by UMask=0077), holding the newest
    handle the emulator issued."""
    state = system.container.root / "var/lib/pilive"
    handle_file = state / "resumption.json"
    wait_for(handle_file.exists, timeout_s=30, what="resumption.json")

    def newest_handle(emu: Any) -> str | None:
        handles = [
            m["sessionResumptionUpdate"]["newHandle"]
            for c in emu.recording.connections
            for m in c.sent_messages()
            if m.get("sessionResumptionUpdate", {}).get("resumable")
        ]
        return handles[-1] if handles else None

    def stored_is_newest() -> bool:
        stored = json.loads(handle_file.read_text())
        return bool(stored.get("handle") == system.emulator.call(newest_handle))

    wait_for(stored_is_newest, timeout_s=30, what="the newest handle on disk")
    uid = next(
        int(line.split(":")[2])
        for line in (system.container.root / "etc/passwd").read_text().splitlines()
        if line.startswith("pilive:")
    )
    assert (stat.S_IMODE(state.stat().st_mode), state.stat().st_uid) == (0o700, uid)
    file_stat = handle_file.stat()
    assert (stat.S_IMODE(file_stat.st_mode), file_stat.st_uid) == (0o600, uid)


def test_logs_reach_the_journal_with_structured_fields(system: System) -> None:
    """The daemon's own log lines are in the journal under the unit; after the scripted turn
    (which the emulator records) some carry PILIVE_* fields; none contains the key."""

    def structured() -> list[dict[str, Any]]:
        return [
            e
            for e in system.container.journal(UNIT)
            if e.get("_SYSTEMD_UNIT") == UNIT and "PILIVE_EVENT" in e
        ]

    def transcripts() -> list[dict[str, Any]] | None:
        found = [e for e in structured() if e["PILIVE_EVENT"].endswith("_transcript")]
        return found or None

    try:
        entries = wait_for(transcripts, timeout_s=60, what="transcripts in the journal")
    except AssertionError:
        events = [(e["PILIVE_EVENT"], e.get("MESSAGE")) for e in structured()]
        raise AssertionError(f"no transcripts; structured entries: {events}") from None
    assert all(e.get("PILIVE_TEXT") for e in entries), entries
    assert system.emulator.call(lambda emu: emu.recording.counters["turns"]) >= 1
    everything = system.container.journal(UNIT)
    assert any(e.get("_COMM") != "systemd" for e in everything)
    assert not any(system.key in json.dumps(e) for e in everything)


def _restarted(system: System, old_pid: int, old_restarts: int) -> dict[str, str] | None:
    props = system.props("MainPID", "ActiveState", "SubState", "NRestarts")
    moved_on = int(props["MainPID"]) not in (0, old_pid)
    running = (props["ActiveState"], props["SubState"]) == ("active", "running")
    return props if moved_on and running and int(props["NRestarts"]) > old_restarts else None


def test_crash_is_restarted_and_the_conversation_resumes(system: System) -> None:
    """SIGSEGV to the main process: systemd records the crash and Restart=always brings the
    service back (NRestarts + 1, a new main PID, READY again). The new process resumes the
    session with the handle from the state directory."""
    restarts = int(system.props("NRestarts")["NRestarts"])
    pid = system.container.signal_main(UNIT, signal.SIGSEGV)
    props = wait_for(
        lambda: _restarted(system, pid, restarts),
        timeout_s=RESTART_TIMEOUT_S,
        what="a restart after SIGSEGV",
    )
    assert int(props["NRestarts"]) == restarts + 1
    assert any("status=11/SEGV" in m for m in messages(system.container.journal(UNIT)))
    wait_for(
        lambda: system.emulator.call(lambda emu: any(c.resumed for c in emu.recording.connections)),
        timeout_s=60,
        what="a resumed connection",
    )


def test_hang_is_caught_by_the_watchdog_and_restarted(system: System) -> None:
    """SIGSTOP freezes the main process: WATCHDOG=1 stops, systemd declares a watchdog timeout
    after WatchdogSec, kills it with SIGABRT and restarts it."""
    wait_for(
        lambda: "idle" in system.props("StatusText")["StatusText"],
        timeout_s=60,
        what="STATUS idle before the hang",
    )
    restarts = int(system.props("NRestarts")["NRestarts"])
    pid = system.container.signal_main(UNIT, signal.SIGSTOP)
    props = wait_for(
        lambda: _restarted(system, pid, restarts),
        timeout_s=RESTART_TIMEOUT_S,
        what="a watchdog restart after SIGSTOP",
    )
    assert int(props["NRestarts"]) == restarts + 1
    said = messages(system.container.journal(UNIT))
    assert any("Watchdog timeout" in m for m in said), said[-20:]
    assert any(f"Killing process {pid} " in m and "SIGABRT" in m for m in said), said[-20:]


def test_install_again_keeps_key_config_and_conversation(system: System) -> None:
    """Running install.sh a second time (an upgrade, no key given) keeps the key and the config,
    restarts the service on the reinstalled package, and the conversation resumes."""
    pid = int(system.props("MainPID")["MainPID"])
    config = (system.container.root / "etc/pilive/pilive.toml").read_text()
    resumed_before = system.emulator.call(
        lambda emu: sum(1 for c in emu.recording.connections if c.resumed)
    )
    again = system.container.run(
        f"{SRC_MOUNT}/systemd/install.sh",
        "--no-apt",
        env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": WHEELS_MOUNT, "TMPDIR": "/var/tmp"},
        timeout_s=600,
        check=True,
    )
    assert "reusing the venv" in again.stderr
    assert (system.container.root / "etc/pilive/gemini-api-key").read_text() == system.key + "\n"
    assert (system.container.root / "etc/pilive/pilive.toml").read_text() == config
    props = system.props("MainPID", "ActiveState", "SubState")
    assert (props["ActiveState"], props["SubState"]) == ("active", "running")
    assert int(props["MainPID"]) != pid
    wait_for(
        lambda: system.emulator.call(
            lambda emu: sum(1 for c in emu.recording.connections if c.resumed) > resumed_before
        ),
        timeout_s=60,
        what="the reinstalled service resuming the conversation",
    )


def test_stop_is_clean_and_prompt(system: System) -> None:
    """`systemctl stop`: the daemon sends STOPPING=1 (seen in systemd's own debug log), then
    exits 0 by itself (not killed by a signal, no SIGKILL, no stop timeout) within 5 s of
    SIGTERM."""
    wait_for(
        lambda: system.props("SubState")["SubState"] == "running",
        timeout_s=60,
        what="the service running before the stop",
    )
    pid = int(system.props("MainPID")["MainPID"])
    cursor = (
        system.container.run("journalctl", "-u", UNIT, "-n", "0", "--show-cursor", "--no-pager")
        .stdout.split("-- cursor: ")[-1]
        .strip()
    )
    # At debug level systemd logs each notification it receives: STOPPING=1 becomes visible.
    system.container.run("systemctl", "log-level", "debug", check=True)
    try:
        system.container.run("systemctl", "stop", UNIT, check=True, timeout_s=60)
    finally:
        system.container.run("systemctl", "log-level", "info", check=True)
    props = system.props(
        "ActiveState", "Result", "ExecMainCode", "ExecMainStatus", "ExecMainPID", "StatusText"
    )
    assert props["ActiveState"] == "inactive"
    assert props["Result"] == "success"
    assert int(props["ExecMainPID"]) == pid
    assert (props["ExecMainCode"], props["ExecMainStatus"]) == ("1", "0")  # CLD_EXITED, 0
    after = system.container.run(
        "journalctl", "-u", UNIT, f"--after-cursor={cursor}", "--output=json", "--no-pager"
    )
    entries = [json.loads(line) for line in after.stdout.splitlines() if line.startswith("{")]
    said = messages(entries)
    assert not any("SIGKILL" in m or "timed out" in m for m in said), said
    notifications = [m for m in said if "Got notification message" in m]
    assert any("STOPPING=1" in m for m in notifications), notifications

    def stamp(text: str) -> float:
        entry = next(e for e in entries if text in str(e.get("MESSAGE", "")))
        return int(entry["__REALTIME_TIMESTAMP"]) / 1e6

    took_s = stamp("Deactivated successfully") - stamp("Stopping pilive")
    assert took_s < STOP_BUDGET_S, f"stop took {took_s:.1f} s"


def test_uninstall_removes_service_venv_and_user_and_keeps_config_and_state(
    system: System,
) -> None:
    """install.sh --uninstall with systemd running: the unit is gone from systemd, the venv and
    the user are removed; /etc/pilive (config, key) and /var/lib/pilive (the handle) stay."""
    root = system.container.root
    system.container.run(f"{SRC_MOUNT}/systemd/install.sh", "--uninstall", check=True)
    load = system.props("LoadState")["LoadState"]
    assert load == "not-found"
    assert not (root / "opt/pilive").exists()
    assert not (root / "etc/systemd/system/pilive.service").exists()
    assert "pilive" not in [
        line.split(":")[0] for line in (root / "etc/passwd").read_text().splitlines()
    ]
    assert (root / "etc/pilive/gemini-api-key").read_text() == system.key + "\n"
    assert (root / "etc/pilive/pilive.toml").exists()
    assert (root / "var/lib/pilive/resumption.json").exists()


def test_install_with_a_broken_config_fails_and_names_the_problem(system: System) -> None:
    """Reinstalling after the uninstall, with a config value the daemon rejects: the service
    cannot start, install.sh exits 1 pointing at the journal and `pilive check`, and the journal
    has the daemon's message naming the key and the bad value (exit status 2)."""
    config = system.container.root / "etc/pilive/pilive.toml"
    config.write_text(config.read_text().replace('backend = "null"', 'backend = "bogus"', 1))
    result = system.container.run(
        f"{SRC_MOUNT}/systemd/install.sh",
        "--no-apt",
        env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": WHEELS_MOUNT, "TMPDIR": "/var/tmp"},
        timeout_s=600,
    )
    assert result.returncode == 1, result.stderr
    assert "pilive.service did not start" in result.stderr
    assert "pilive check --config /etc/pilive/pilive.toml" in result.stderr
    said = messages(system.container.journal(UNIT))
    assert any("audio.input.backend" in m and "bogus" in m for m in said), said[-10:]
    assert any("status=2/INVALIDARGUMENT" in m for m in said), said[-10:]
    system.container.run("systemctl", "stop", UNIT)
