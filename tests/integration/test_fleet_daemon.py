"""The whole chain, end to end and offline: `pilive run` on a fleet device (no API key, a device
credential) -> `pilive token-service` (in process, HTTPS with a private CA that the device is
given in token_ca_file) -> the emulator's
auth_tokens API and Constrained method. A turn, a goAway handover and a restart, all on tokens;
the master key reaches neither the device's process, its logs, its STATUS nor its state
directory; with the token service down, STATUS names it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pilive.emulator import Emulator
from pilive.live.models import DEFAULT_MODEL
from pilive.state import HandleStore
from tests.support.daemon_rig import DaemonProcess, NotifySocket, Press, daemon_toml, noise_wav
from tests.support.emulator_rig import emulator_options, make_tls, running
from tests.support.fleet_rig import token_service

TIMEOUT_S = 40.0  # a daemon start, a few turns and a handover on a loaded machine


def fleet_toml(
    tmp_path: Path,
    *,
    endpoint: str,
    token_url: str,
    ca_file: Path,
    presses: list[Press],
    credential_file: Path | None,
    extra: str = "",
) -> Path:
    """A daemon config for loopback with token_url in place of the key (and no key at all)."""
    mic = tmp_path / "mic.wav"
    if not mic.exists():
        noise_wav(mic, 20.0)
    text = daemon_toml(
        endpoint=endpoint,
        api_key="REPLACED",
        mic_wav=mic,
        state_dir=tmp_path / "state",
        camera_mode="off",
        presses=presses,
        extra=extra,
    )
    token_lines = [
        'api_version = "v1alpha"',
        f'token_url = "{token_url}"',
        f'token_ca_file = "{ca_file}"',
    ]
    if credential_file is not None:
        token_lines.append(f'device_token_file = "{credential_file}"')
    text = text.replace('api_key = "REPLACED"', "\n".join(token_lines))
    path = tmp_path / f"pilive-{len(list(tmp_path.glob('pilive-*.toml')))}.toml"
    path.write_text(text)
    return path


def completed_turns(emu: Emulator, connections: set[str] | None = None) -> int:
    """Turns the model answered (on the given connections), over the one conversation."""
    return sum(
        turn.completed and (connections is None or turn.connection_id in connections)
        for session in emu.recording.sessions.values()
        for turn in session.turns
    )


def newest_handle(emu: Emulator) -> str | None:
    for record in reversed(emu.recording.connections):
        for message in reversed(record.sent_messages()):
            update = message.get("sessionResumptionUpdate", {})
            if update.get("resumable") and update.get("newHandle"):
                return str(update["newHandle"])
    return None


def stored_handle(state: Path) -> str | None:
    stored = HandleStore(state).load(1e12, 1e12).stored
    return None if stored is None else stored.handle


def everything_under(directory: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("latin-1") for p in sorted(directory.rglob("*")) if p.is_file()
    )


async def test_turn_handover_and_restart_on_tokens_without_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 (credential in a 0600 file): a turn, then a goAway handover resumed with the token
    it has, then a second turn. Run 2 (credential as the systemd credential
    pilive-device-token): the restarted daemon resumes the same conversation with a fresh token
    and takes a third turn. All connections are Constrained v1alpha with no x-goog-api-key; the
    master key is nowhere in the device's environment, arguments, log, STATUS or state."""
    tls = make_tls(tmp_path)  # the token service's certificate, checked by the device
    async with (
        running(emulator_options(auth_tokens_api=True)) as emu,
        token_service(emu, tmp_path, tls=tls, model=DEFAULT_MODEL) as fleet,
    ):
        master_key = emu.api_key
        credential = fleet.add_device("kitchen")
        credential_file = tmp_path / "device-token"
        credential_file.write_text(credential.reveal() + "\n")
        credential_file.chmod(0o600)

        prom = tmp_path / "pilive.prom"

        def config(presses: list[Press], *, with_file: bool) -> Path:
            return fleet_toml(
                tmp_path,
                endpoint=emu.url,
                token_url=fleet.url,
                ca_file=tls.ca_path,
                presses=presses,
                credential_file=credential_file if with_file else None,
                extra=f'[metrics]\ntextfile = "{prom}"\ntextfile_interval_s = 1.0\n',
            )

        notify = NotifySocket(tmp_path / "notify.sock")
        first = DaemonProcess(
            config([Press(1.0, 0.8), Press(6.0, 0.8)], with_file=True),
            tmp_path / "run1.log",
            notify,
        )
        proc_texts: list[str] = []
        try:
            await first.start()
            await emu.wait_until(lambda: completed_turns(emu) == 1, TIMEOUT_S)
            proc = Path(f"/proc/{first.pid}")
            proc_texts += [(proc / "environ").read_bytes().decode("latin-1"),
                           (proc / "cmdline").read_bytes().decode("latin-1")]  # fmt: skip
            emu.faults.go_away(2.0)
            await emu.wait_until(lambda: emu.recording.counters["resumes"] >= 1, TIMEOUT_S)
            await emu.wait_until(lambda: completed_turns(emu) == 2, TIMEOUT_S)
            # The handle issued after the second answer is on disk before the stop (one from
            # before it would roll that turn back on the restart).
            async with asyncio.timeout(TIMEOUT_S):
                while stored_handle(tmp_path / "state") != newest_handle(emu):
                    await asyncio.sleep(0.05)
            async with asyncio.timeout(TIMEOUT_S):  # the fleet metric, as node-exporter reads it
                while "pilive_ephemeral_tokens_fetched_total 1.0" not in (
                    prom.read_text() if prom.exists() else ""
                ):
                    await asyncio.sleep(0.2)
            assert await first.stop() == 0
        finally:
            await first.stop()
        issued_in_first_run = len(fleet.audit())

        credentials = tmp_path / "credentials"
        credentials.mkdir()
        (credentials / "pilive-device-token").write_text(credential.reveal() + "\n")
        (credentials / "gemini-api-key").write_text("")  # what the unit hands a fleet device
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
        second = DaemonProcess(
            config([Press(1.0, 0.8)], with_file=False), tmp_path / "run2.log", notify
        )
        run1 = {c.connection_id for c in emu.recording.connections}
        try:
            await second.start()

            def run2_answered() -> bool:
                run2 = {c.connection_id for c in emu.recording.connections} - run1
                return completed_turns(emu, run2) == 1

            await emu.wait_until(run2_answered, TIMEOUT_S)
            assert await second.stop() == 0
        finally:
            await second.stop()
            notify.close()

        assert emu.recording.counters["sessions"] == 1, "the restart resumed the conversation"
        assert completed_turns(emu) == 3
        assert all(c.constrained and c.api_version == "v1alpha" for c in emu.recording.connections)
        assert all("x-goog-api-key" not in c.headers for c in emu.recording.connections)
        resumed_by_run2 = [c for c in emu.recording.connections[-1:] if c.resumed]
        assert resumed_by_run2, "run 2 opened with a resume"
        assert len(fleet.audit()) > issued_in_first_run, "run 2 fetched its own token"
        first_token = next(iter(emu.auth_tokens.tokens.values()))
        assert first_token.sessions == 1 and len(first_token.connections) >= 2, (
            "the goAway handover resumed with the first token"
        )

        tokens = list(emu.auth_tokens.tokens)
        secret = credential.reveal().split(".", 1)[1]
        logs = first.log_text() + second.log_text()
        statuses = "\n".join(notify.statuses())
        device_side = "\n".join([logs, statuses, everything_under(tmp_path / "state"), *proc_texts])
        assert master_key not in device_side
        assert secret not in device_side
        assert not any(token in device_side for token in tokens)
        assert "connected" in logs


async def test_status_names_the_token_service_when_it_is_down(tmp_path: Path) -> None:
    """Nothing listens at token_url: the daemon still starts (READY=1), retries with backoff and
    its STATUS says that the token service refused the connection."""
    tls = make_tls(tmp_path)
    credential_file = tmp_path / "device-token"
    credential_file.write_text("kitchen.0123456789abcdefghijklmnopqrstuvwxyz\n")
    credential_file.chmod(0o600)
    async with running(emulator_options(auth_tokens_api=True)) as emu:
        path = fleet_toml(
            tmp_path,
            endpoint=emu.url,
            token_url="http://127.0.0.1:9/v1/token",
            ca_file=tls.ca_path,
            presses=[],
            credential_file=credential_file,
        )
        notify = NotifySocket(tmp_path / "notify.sock")
        daemon = DaemonProcess(path, tmp_path / "down.log", notify)
        try:
            await daemon.start()
            await notify.wait_for("READY=1", TIMEOUT_S)
            async with asyncio.timeout(TIMEOUT_S):
                while not any("token service: connection refused" in s for s in notify.statuses()):
                    await asyncio.sleep(0.1)
        finally:
            assert await daemon.stop() == 0
            notify.close()
        assert emu.recording.connections == []
