"""The fleet's side of systemd/: the token service's hardened unit, user and directories checked
by systemd's own tools, and `install.sh --token-service` and `--device-credential-stdin` run for
real against a temporary root (as test_install_script.py does for the device)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from pilive.config import load_config
from pilive.tokenservice.config import parse_service_config
from pilive.tokenservice.devices import DeviceRegistry
from tests.integration.test_install_script import install, mode_owner, snapshot, user_id
from tests.integration.test_unit_file import directives, need, run
from tests.support.emulator_rig import make_tls

CHECKOUT = Path(__file__).resolve().parents[2]
UNIT = CHECKOUT / "systemd" / "pilive-token-service.service"
SYSUSERS = CHECKOUT / "systemd" / "pilive-token-service.sysusers"
TMPFILES = CHECKOUT / "systemd" / "pilive-token-service.tmpfiles"
SHIPPED_CONFIG = CHECKOUT / "config" / "token-service.toml"
PROGRAM = "/opt/pilive/venv/bin/pilive"
KEY = "AIzaSyTest-key_0123456789abcdefghijklmnop"
CREDENTIAL = "kitchen.Zq3-_secret-part-0123456789abcdefghijklmno"
TOKEN_URL = "https://tokens.example.net:8443/v1/token"

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="install.sh runs as root")


# --- the unit ---------------------------------------------------------------------------------


def test_token_service_unit_verifies_clean(tmp_path: Path) -> None:
    """`systemd-analyze verify` (systemd 252 here) prints nothing for the unit, with ExecStart's
    program present at the installed layout under a temporary directory; nothing else changed."""
    analyze = need("systemd-analyze")
    stub = tmp_path / PROGRAM.lstrip("/")
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace(f"ExecStart={PROGRAM} ", f"ExecStart={stub} "))
    result = run(analyze, "verify", str(copy))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_token_service_unit_exposure_is_lower_than_the_devices() -> None:
    """`systemd-analyze security --offline=true` rates it at most 1.2 (it keeps only the
    network), below the device unit's allowance of 1.5, and its own --threshold gate passes."""
    analyze = need("systemd-analyze")
    result = run(analyze, "security", "--offline=true", str(UNIT))
    match = re.search(r"Overall exposure level for .*: (\d+\.\d)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert float(match.group(1)) <= 1.2, result.stdout
    assert run(analyze, "security", "--offline=true", "--threshold=12", str(UNIT)).returncode == 0


def test_token_service_unit_has_the_promised_shape() -> None:
    """notify, restart, its own user, state directory, the key and the TLS key as credentials,
    no devices, no capabilities, and the config named in ExecStart."""
    d = directives(UNIT.read_text())
    assert d["Type"] == ["notify"] and d["Restart"] == ["always"]
    assert d["ExecStart"] == [
        f"{PROGRAM} token-service --config /etc/pilive/token-service.toml serve"
    ]
    assert d["User"] == ["pilive-tokens"] and d["StateDirectory"] == ["pilive-token-service"]
    assert d["LoadCredential"] == [
        "gemini-api-key:/etc/pilive/token-service-api-key",
        "pilive-token-service-tls-key:/etc/pilive/token-service-key.pem",
    ]
    assert d["PrivateDevices"] == ["yes"] and d["CapabilityBoundingSet"] == [""]
    assert d["ProtectSystem"] == ["strict"] and d["PrivateUsers"] == ["yes"]
    assert d["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]


def test_token_service_user_and_directories(tmp_path: Path) -> None:
    """sysusers makes pilive-tokens (no groups, no login); tmpfiles makes its state directory
    0700 owned by it and keeps the key files root-only."""
    sysusers = need("systemd-sysusers")
    tmpfiles = need("systemd-tmpfiles")
    (tmp_path / "etc").mkdir()
    assert run(sysusers, f"--root={tmp_path}", str(SYSUSERS)).returncode == 0
    passwd = (tmp_path / "etc/passwd").read_text()
    assert re.search(
        r"^pilive-tokens:x:\d+:\d+:[^:]*:/var/lib/pilive-token-service:/usr/sbin/nologin$",
        passwd,
        re.M,
    )
    (tmp_path / "etc/pilive").mkdir()
    key = tmp_path / "etc/pilive/token-service-api-key"
    key.write_text("k\n")
    key.chmod(0o644)
    assert run(tmpfiles, "--create", f"--root={tmp_path}", str(TMPFILES)).returncode == 0
    uid = user_id(tmp_path, "pilive-tokens")
    state = tmp_path / "var/lib/pilive-token-service"
    assert mode_owner(state)[:2] == (0o700, uid)
    assert mode_owner(key) == (0o600, 0, 0)


def test_shipped_token_service_config_is_exactly_the_defaults_and_documents_every_key() -> None:
    """config/token-service.toml loads to the built-in defaults, and every key of the schema is
    in it, set or as a commented example."""
    from pilive.config._reader import all_keys
    from pilive.tokenservice.config import TokenServiceConfig

    text = SHIPPED_CONFIG.read_text()
    assert parse_service_config(text, environ={}) == TokenServiceConfig()
    for dotted in all_keys(TokenServiceConfig):
        leaf = dotted.rsplit(".", 1)[-1]
        shown = (f"\n{leaf} = ", f"\n# {leaf} = ", f"[{dotted}]")
        assert any(s in text for s in shown), dotted


# --- install.sh --token-service -----------------------------------------------------------------


@root_only
def test_install_token_service_lays_out_its_files(tmp_path: Path) -> None:
    """--token-service: its unit (as shipped), user, directories, the config as shipped, the key
    root-only from stdin and an empty TLS key file (so LoadCredential= cannot fail), the unit
    enabled; the key in no output; a second run changes nothing."""
    result = install(tmp_path, "--token-service", "--key-stdin", stdin=KEY + "\n")
    assert KEY not in result.stdout + result.stderr
    etc = tmp_path / "etc/pilive"
    unit = tmp_path / "etc/systemd/system/pilive-token-service.service"
    assert unit.read_text() == UNIT.read_text() and mode_owner(unit) == (0o644, 0, 0)
    assert (etc / "token-service.toml").read_text() == SHIPPED_CONFIG.read_text()
    assert (etc / "token-service-api-key").read_text() == KEY + "\n"
    assert mode_owner(etc / "token-service-api-key") == (0o600, 0, 0)
    assert (etc / "token-service-key.pem").read_text() == ""
    assert mode_owner(etc / "token-service-key.pem") == (0o600, 0, 0)
    uid = user_id(tmp_path, "pilive-tokens")
    assert uid is not None and user_id(tmp_path, "pilive") is None
    assert mode_owner(tmp_path / "var/lib/pilive-token-service")[:2] == (0o700, uid)
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants/pilive-token-service.service"
    assert wants.is_symlink()
    assert not (tmp_path / "etc/systemd/system/pilive.service").exists()
    before = snapshot(tmp_path)
    install(tmp_path, "--token-service")
    assert snapshot(tmp_path) == before


@root_only
def test_install_token_service_with_tls_listens_on_all_addresses(tmp_path: Path) -> None:
    """--tls-cert/--tls-key: the certificate 0644, its key root-only, and a new config that
    listens on all addresses with the certificate, which the service's own reader accepts (the
    key comes as a systemd credential)."""
    tls = make_tls(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    install(root, "--token-service", "--tls-cert", str(tls.cert_path), "--tls-key",
            str(tls.key_path))  # fmt: skip
    etc = root / "etc/pilive"
    assert (etc / "token-service-cert.pem").read_bytes() == tls.cert_path.read_bytes()
    assert mode_owner(etc / "token-service-cert.pem") == (0o644, 0, 0)
    assert (etc / "token-service-key.pem").read_bytes() == tls.key_path.read_bytes()
    assert mode_owner(etc / "token-service-key.pem") == (0o600, 0, 0)
    config = parse_service_config((etc / "token-service.toml").read_text(), environ={})
    assert config.service.listen == "0.0.0.0:8443"
    assert config.service.tls_cert_file == Path("/etc/pilive/token-service-cert.pem")


@root_only
def test_uninstall_token_service_leaves_the_device_alone(tmp_path: Path) -> None:
    """On a machine with both: uninstalling the token service removes its unit, user and
    sysusers/tmpfiles files, keeps the device's, and --purge removes only its own files."""
    install(tmp_path, "--key-stdin", stdin=KEY)
    install(tmp_path, "--token-service")
    install(tmp_path, "--token-service", "--uninstall", "--purge")
    assert not (tmp_path / "etc/systemd/system/pilive-token-service.service").exists()
    assert user_id(tmp_path, "pilive-tokens") is None and user_id(tmp_path, "pilive") is not None
    assert not (tmp_path / "var/lib/pilive-token-service").exists()
    assert sorted(p.name for p in (tmp_path / "etc/pilive").iterdir()) == [
        "gemini-api-key",
        "pilive-device-token",
        "pilive.toml",
    ]
    assert (tmp_path / "etc/systemd/system/pilive.service").exists()


@root_only
def test_registry_written_by_root_belongs_to_the_service(tmp_path: Path) -> None:
    """`add-device` runs as root: the registry it writes is owned by the state directory's
    owner (the service user) and private to it, so the service can read it and no one else."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 4321, 4321)
    DeviceRegistry(state).add("kitchen")
    assert mode_owner(state / "devices.json") == (0o600, 4321, 4321)


# --- install.sh on a fleet device -----------------------------------------------------------


@root_only
def test_device_install_with_a_credential_holds_no_key(tmp_path: Path) -> None:
    """A device that had a key becomes a fleet device: the credential from stdin goes to
    /etc/pilive/pilive-device-token (root-only), the key file is emptied, and the new config
    names the token service on v1alpha with its CA, and loads without a problem."""
    tls = make_tls(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    install(root, "--key-stdin", stdin=KEY)
    (root / "etc/pilive/pilive.toml").unlink()
    result = install(
        root,
        "--token-url",
        TOKEN_URL,
        "--token-ca-file",
        str(tls.ca_path),
        "--device-credential-stdin",
        stdin=CREDENTIAL + "\n",
    )
    assert CREDENTIAL not in result.stdout + result.stderr
    assert "emptied /etc/pilive/gemini-api-key" in result.stderr
    etc = root / "etc/pilive"
    assert (etc / "pilive-device-token").read_text() == CREDENTIAL + "\n"
    assert mode_owner(etc / "pilive-device-token") == (0o600, 0, 0)
    assert (etc / "gemini-api-key").read_text() == ""
    assert (etc / "token-service-ca.pem").read_bytes() == tls.ca_path.read_bytes()
    config = load_config(etc / "pilive.toml", {})
    assert config.live.token_url == TOKEN_URL and config.live.api_version == "v1alpha"
    assert config.live.token_ca_file == Path("/etc/pilive/token-service-ca.pem")


@root_only
def test_an_existing_config_is_kept_and_the_token_url_named(tmp_path: Path) -> None:
    """The device's config is never overwritten: with --token-url and a config already there, the
    script says which two lines to set instead."""
    install(tmp_path)
    result = install(tmp_path, "--token-url", TOKEN_URL, "--device-credential-stdin",
                     stdin=CREDENTIAL)  # fmt: skip
    assert f'set token_url = "{TOKEN_URL}" and api_version = "v1alpha"' in result.stderr
    assert "token_url = " not in (tmp_path / "etc/pilive/pilive.toml").read_text().replace(
        "# token_url = ", ""
    )


@root_only
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--token-service", "--device-credential-stdin"], "--token-service takes no device"),
        (["--tls-cert", "/etc/hostname", "--tls-key", "/etc/hostname"], "only go with"),
        (["--token-service", "--tls-cert", "/etc/hostname"], "go together"),
        (["--device-credential-stdin", "--key-stdin"], "holds no API key"),
        (["--token-url", "http://tokens.example.net/v1/token"], "must start with https://"),
        (["--token-url", 'https://x/"; rm -rf /'], "may only use URL characters"),
        (["--token-service", "--token-url", TOKEN_URL], "--token-service takes no device"),
        (["--uninstall", "--device-credential-stdin"], "only goes with an install"),
    ],
)
def test_bad_fleet_options_are_refused_by_name(
    tmp_path: Path, args: list[str], message: str
) -> None:
    """Wrong fleet options exit 2 naming the problem and touch nothing."""
    result = install(tmp_path, *args, check=False)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_print_packages_for_the_token_service() -> None:
    """--print-packages --token-service lists what the server needs: aiohttp and systemd's
    bindings from Debian, no audio or camera packages."""
    script = CHECKOUT / "systemd" / "install.sh"
    result = subprocess.run(
        [str(script), "--token-service", "--print-packages"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    packages = result.stdout.split()
    assert {"python3-aiohttp", "python3-systemd", "python3-venv"} <= set(packages)
    assert "python3-pyaudio" not in packages and "python3-picamera2" not in packages
