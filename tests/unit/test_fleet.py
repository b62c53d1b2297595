"""The pure parts of the fleet: which token a connection may take (a resume or a new session),
when the link plans its handover before a token expires, the per-device rate limit, the device
registry's hashed credentials, finding a device's credential, and the config rules for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilive.config import ConfigError, Secret, load_credentials, parse_config
from pilive.net.endpoint import https_url_problems, token_url_problems
from pilive.net.tokens import EphemeralToken
from pilive.ratelimit import TokenBucket
from pilive.tokenservice.devices import DeviceRegistry, RegistryError

CREDENTIAL = "kitchen.0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
FLEET = '[live]\napi_version = "v1alpha"\ntoken_url = "https://tokens.example.net/v1/token"\n'


def token(lifetime_s: float, window_s: float = 60.0, uses: int = 1) -> EphemeralToken:
    return EphemeralToken(Secret("auth_tokens/x" * 4), 100.0, 100.0 + lifetime_s,
                          100.0 + window_s, uses)  # fmt: skip


def test_a_resume_takes_the_token_until_its_reserve_a_new_session_only_within_the_window() -> None:
    """A 15-minute token opens resumes until 62 s are left (a minute's notice plus 2 s), new
    sessions only in its first minute and only while a use is left; unlimited uses (0) never
    run out."""
    t = token(900.0)
    assert t.reserve_s == 62.0
    assert t.opens_resume(100.0 + 900 - 63) and not t.opens_resume(100.0 + 900 - 62.005)
    assert t.opens_new_session(159.0) and not t.opens_new_session(160.0)
    t.sessions_started = 1
    assert not t.opens_new_session(110.0) and t.opens_resume(110.0)
    unlimited = token(900.0, uses=0)
    unlimited.sessions_started = 5
    assert unlimited.opens_new_session(110.0)


def test_the_handover_is_announced_when_the_token_stops_opening_connections() -> None:
    """The link tells the session of the end `reserve_s` before the expiry, so the connection
    that takes over never presents the same token; a short token scales its notice and margin
    down (a 4 s token: 1 s notice, 0.4 s margin)."""
    t = token(900.0)
    announce_at, deadline = t.handover_plan()
    assert (announce_at, deadline) == (100.0 + 900 - 62, 100.0 + 900 - 2)
    assert not t.opens_resume(announce_at)
    short = token(4.0, window_s=2.0)
    assert short.handover_plan() == pytest.approx((100.0 + 4 - 1.4, 100.0 + 4 - 0.4))
    announce_at, _ = short.handover_plan()
    assert short.opens_resume(announce_at - 0.1) and not short.opens_resume(announce_at)


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    """Capacity 2 at one per 10 s: two at once, then one every 10 s; wait_s says when."""
    bucket = TokenBucket(2, 0.1, now=0.0)
    assert bucket.take(0.0) and bucket.take(0.0) and not bucket.take(0.0)
    assert bucket.wait_s(0.0) == pytest.approx(10.0)
    assert not bucket.take(9.9) and bucket.take(10.0)
    assert bucket.full_at(10.0) == pytest.approx(30.0)
    with pytest.raises(ValueError):
        TokenBucket(0, 1.0, now=0.0)


def test_registry_stores_a_hash_verifies_and_revokes(tmp_path: Path) -> None:
    """The credential verifies (the file holds only its SHA-256), a wrong secret or name does
    not, "revoked" is said only to the right secret, names are checked, a damaged file is a
    RegistryError naming it."""
    registry = DeviceRegistry(tmp_path)
    credential = registry.add("porch").reveal()
    name, secret = credential.split(".")
    assert secret not in (tmp_path / "devices.json").read_text()
    other = DeviceRegistry(tmp_path)
    assert other.reload_if_changed() and not other.reload_if_changed()
    assert other.verify(credential)[0] is not None
    assert other.verify(f"{name}.{secret[::-1]}") == (None, "unknown")
    assert other.verify(f"attic.{secret}") == (None, "unknown")
    assert other.verify("no-dot-at-all") == (None, "unknown")
    registry.revoke("porch")
    assert other.reload_if_changed()
    assert other.verify(credential) == (None, "revoked")
    assert other.verify(f"{name}.wrong") == (None, "unknown")
    with pytest.raises(RegistryError, match="exists"):
        registry.add("porch")
    with pytest.raises(RegistryError, match="lower-case"):
        registry.add("Porch Door")
    (tmp_path / "devices.json").write_text("{not json")
    with pytest.raises(RegistryError, match="damaged"):
        DeviceRegistry(tmp_path).reload_if_changed()


def test_credential_from_systemd_then_the_file(tmp_path: Path) -> None:
    """With token_url: $CREDENTIALS_DIRECTORY/pilive-device-token wins; an empty one (what the
    installer leaves) counts as absent and device_token_file is used; that file must be 0600."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "pilive-device-token").write_text(CREDENTIAL + "\n")
    token_file = tmp_path / "device-token"
    token_file.write_text("porch.abcdefghijklmnopqrstuvwxyz0123456789\n")
    token_file.chmod(0o600)
    config = parse_config(FLEET + f'device_token_file = "{token_file}"\n', environ={})
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}
    found = load_credentials(config, env)
    assert found.reveal() == CREDENTIAL and found.origin.endswith("pilive-device-token")
    (credentials / "pilive-device-token").write_text("")
    assert load_credentials(config, env).reveal().startswith("porch.")
    token_file.chmod(0o644)
    with pytest.raises(ConfigError, match="refusing the device credential file"):
        load_credentials(config, env)


def test_a_fleet_device_refuses_to_hold_the_key(tmp_path: Path) -> None:
    """With token_url, a key in $GEMINI_API_KEY or a non-empty gemini-api-key credential stops
    the start naming where it is and never what it is; with no credential at all, the message
    names both places to put one."""
    config = parse_config(FLEET, environ={})
    key = "AIzaSyTest-key_0123456789abcdefghijklmnop"
    with pytest.raises(ConfigError) as refused:
        load_credentials(config, {"GEMINI_API_KEY": key})
    assert "$GEMINI_API_KEY" in str(refused.value) and key not in str(refused.value)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "gemini-api-key").write_text(key)
    with pytest.raises(ConfigError, match=r"gemini-api-key: live\.token_url is set"):
        load_credentials(config, {"CREDENTIALS_DIRECTORY": str(credentials)})
    (credentials / "gemini-api-key").write_text("")
    with pytest.raises(ConfigError, match=r"pilive-device-token .* live\.device_token_file"):
        load_credentials(config, {"CREDENTIALS_DIRECTORY": str(credentials)})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (FLEET + 'api_key = "k0123456789"\nendpoint = "ws://127.0.0.1:1"\n',
         "live.api_key = <secret>: a device with live.token_url holds no API key"),
        (FLEET.replace('"v1alpha"', '"v1beta"'), 'live.api_version = "v1beta": ephemeral tokens'),
        (FLEET.replace("https://", "http://"), "plain http:// is allowed only to a loopback"),
        (FLEET.replace("/v1/token", "/v1/token?key=x"), "must not have a query or fragment"),
        ('[live]\ndevice_token_file = "/etc/x"\n', "live.device_token_file = \"/etc/x\": needs"),
    ],
)  # fmt: skip
def test_fleet_settings_are_checked_by_key(text: str, expected: str) -> None:
    """Each rule of a fleet device's [live] keys names the key and the refused value."""
    with pytest.raises(ConfigError) as refused:
        parse_config(text, environ={})
    assert expected in str(refused.value)


def test_url_rules() -> None:
    """https:// anywhere, http:// only to loopback, never credentials in the URL, and a path
    only where one is wanted."""
    assert token_url_problems("https://tokens.example.net:8443/v1/token") == []
    assert token_url_problems("http://127.0.0.1:8443/v1/token") == []
    assert token_url_problems("https://user:pw@tokens.example.net/") == [
        "must not contain user information"
    ]
    assert https_url_problems("https://api.example.net/v1", path=False, credential="the key") == [
        "must be a base URL without a path"
    ]
    assert token_url_problems("ftp://x") == ["must start with https:// (or http:// for loopback)"]
