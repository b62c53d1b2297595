"""`pilive token-service` against the emulator's auth_tokens API: devices authenticate with
their own credential (stored hashed, revocable), each token is minted with uses = 1, a short
expiry and new-session window and the owner's locks, requests are rate-limited per device,
every token leaves an audit line without the token, and the configuration names bad keys."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pilive.config import ConfigError
from pilive.tokenservice.config import parse_service_config
from pilive.tokenservice.minting import create_request, field_mask, locked_setup
from tests.support.emulator_rig import MODEL, emulator_options, make_tls, running
from tests.support.fleet_rig import service_toml, token_service

SYSTEM = "You are the kitchen speaker."


async def _ask(url: str, credential: str | None, **kwargs: Any) -> tuple[int, dict[str, Any], Any]:
    headers = {} if credential is None else {"Authorization": f"Bearer {credential}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, headers=headers, data=b"{}", **kwargs) as reply,
    ):
        return reply.status, json.loads(await reply.read()), reply.headers


async def test_a_device_gets_a_single_use_token_locked_to_the_owners_setup(tmp_path: Path) -> None:
    """The token comes from auth_tokens.create with uses = 1, the configured expiry and
    new-session window, the model and system instruction locked (fieldMask by the SDK's rule)
    and the extra locked field; the answer carries relative times; the audit line names the
    device and the expiry but holds neither the token nor the credential."""
    extra = f'system_instruction = "{SYSTEM}"\nlock_additional_fields = ["tools"]'
    async with (
        running(emulator_options(auth_tokens_api=True)) as emu,
        token_service(emu, tmp_path, expire_after_s=300, token_extra=extra) as fleet,
    ):
        credential = fleet.add_device("kitchen")
        await asyncio.sleep(0)
        fleet.service.registry.reload_if_changed()
        status, body, headers = await _ask(fleet.url, credential.reveal())
        assert status == 200, body
        assert headers["Cache-Control"] == "no-store"
        token = emu.auth_tokens.tokens[body["token"]]
        assert token.uses_left == 1
        assert 299 <= body["expiresInS"] <= 300 and body["newSessionExpiresInS"] == 60
        assert body["expireTime"].endswith("Z") and body["uses"] == 1
        assert token.setup == {
            "model": f"models/{MODEL}",
            "systemInstruction": {"role": "user", "parts": [{"text": SYSTEM}]},
        }
        assert token.locked == ("model", "systemInstruction.role", "systemInstruction.parts",
                                "tools")  # fmt: skip
        (line,) = fleet.audit()
        assert line["device"] == "kitchen" and line["outcome"] == "issued"
        assert line["expires"] == body["expireTime"]
        audit_text = fleet.service.audit_path.read_text()
        assert body["token"] not in audit_text
        assert credential.reveal().split(".")[1] not in audit_text


async def test_credentials_are_checked_stored_hashed_and_revocable(tmp_path: Path) -> None:
    """No credential, a wrong secret or an unknown name get 401; the registry file holds a
    hash, not the secret; a revoked device gets 403 within seconds of `revoke-device`."""
    async with (
        running(emulator_options(auth_tokens_api=True)) as emu,
        token_service(emu, tmp_path) as fleet,
    ):
        credential = fleet.add_device("hall").reveal()
        await _until(lambda: "hall" in fleet.service.registry.devices)
        name, secret = credential.split(".")
        assert (await _ask(fleet.url, None))[0] == 401
        assert (await _ask(fleet.url, f"{name}.{secret[:-2]}xx"))[0] == 401
        assert (await _ask(fleet.url, f"porch.{secret}"))[0] == 401
        assert (await _ask(fleet.url, credential))[0] == 200
        registry_text = (fleet.config.service.state_directory / "devices.json").read_text()
        assert secret not in registry_text and "hall" in registry_text
        fleet.revoke("hall")
        await _until(lambda: fleet.service.registry.devices["hall"].revoked is not None)
        status, body, _ = await _ask(fleet.url, credential)
        assert (status, body) == (403, {"error": "device revoked"})
        assert [line["outcome"] for line in fleet.audit()] == ["issued", "refused: device revoked"]


async def test_each_device_is_rate_limited_with_retry_after(tmp_path: Path) -> None:
    """A burst of 2, then 429 with Retry-After; another device has its own allowance."""
    async with (
        running(emulator_options(auth_tokens_api=True)) as emu,
        token_service(emu, tmp_path, burst=2, tokens_per_minute=1.0) as fleet,
    ):
        first = fleet.add_device("one").reveal()
        second = fleet.add_device("two").reveal()
        await _until(lambda: len(fleet.service.registry.devices) == 2)
        assert [(await _ask(fleet.url, first))[0] for _ in range(2)] == [200, 200]
        status, body, headers = await _ask(fleet.url, first)
        assert (status, body["error"]) == (429, "rate limited")
        assert 30 <= int(headers["Retry-After"]) <= 61
        assert (await _ask(fleet.url, second))[0] == 200
        assert emu.auth_token_requests == 3


async def test_the_api_failing_is_a_502_and_the_service_carries_on(tmp_path: Path) -> None:
    """auth_tokens answering 503 (an outage) gives the device a 502 and an audit line; once the
    API answers again, so does the service."""
    async with (
        running(emulator_options(auth_tokens_api=True)) as emu,
        token_service(emu, tmp_path) as fleet,
    ):
        credential = fleet.add_device("den").reveal()
        await _until(lambda: "den" in fleet.service.registry.devices)
        emu.refuse_auth_tokens(503)
        status, body, _ = await _ask(fleet.url, credential)
        assert (status, body["error"]) == (502, "API gave no token")
        emu.refuse_auth_tokens(None)
        assert (await _ask(fleet.url, credential))[0] == 200
        outcomes = [line["outcome"] for line in fleet.audit()]
        assert outcomes[0].startswith("refused: API gave no token (the API answered HTTP 503")
        assert outcomes[1] == "issued"


async def test_served_over_tls_with_the_api_checked_against_its_own_ca(tmp_path: Path) -> None:
    """HTTPS on both sides: devices verify the service's certificate; the service verifies the
    API's (api.ca_file), and a device without the CA is refused by TLS, not served."""
    tls = make_tls(tmp_path)
    options = emulator_options(
        auth_tokens_api=True, tls_cert=str(tls.cert_path), tls_key=str(tls.key_path)
    )
    async with (
        running(options) as emu,
        token_service(emu, tmp_path, tls=tls, api_ca_file=tls.ca_path) as fleet,
    ):
        assert fleet.url.startswith("https://")
        credential = fleet.add_device("attic").reveal()
        await _until(lambda: "attic" in fleet.service.registry.devices)
        assert (await _ask(fleet.url, credential, ssl=tls.client_context))[0] == 200
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await _ask(fleet.url, credential)


def test_request_body_follows_the_sdk() -> None:
    """The create request: uses 1, RFC 3339 times, the locked setup spelled as the device's own
    setup message, the SDK's field mask (one level into objects) plus additional paths."""
    config = parse_service_config(
        '[token]\nmodel = "m1"\nvoice = "Kore"\nlanguage_code = "de-DE"\n'
        'response_modality = "audio"\nlock_additional_fields = ["generationConfig.temperature"]\n',
        environ={},
    )
    from datetime import UTC, datetime

    body = create_request(config.token, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert body["uses"] == 1
    assert body["expireTime"] == "2026-01-02T03:19:05.000Z"
    assert body["newSessionExpireTime"] == "2026-01-02T03:05:05.000Z"
    assert body["bidiGenerateContentSetup"] == {
        "model": "models/m1",
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": {
                "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}},
                "languageCode": "de-DE",
            },
        },
    }
    assert body["fieldMask"] == (
        "model,generationConfig.responseModalities,generationConfig.speechConfig,"
        "generationConfig.temperature"
    )
    assert field_mask(locked_setup(config.token), ()) == (
        "model,generationConfig.responseModalities,generationConfig.speechConfig"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[service]\nlisten = "0.0.0.0:8443"\n', 'service.listen = "0.0.0.0:8443": a non-loopback'),
        ('[service]\nlisten = "8443"\n', 'service.listen = "8443": must be host:port'),
        ('[token]\nexpire_after_s = 72000\n', "token.expire_after_s = 72000: must be between"),
        ("[token]\nexpire_after_s = 30\nnew_session_window_s = 60\n",
         "token.new_session_window_s = 60.0: must not exceed token.expire_after_s (30)"),
        ('[token]\nlock_additional_fields = ["sessionResumption"]\n',
         'token.lock_additional_fields[0] = "sessionResumption": locking sessionResumption'),
        ('[token]\nlock_additional_fields = ["temperature"]\n',
         'token.lock_additional_fields[0] = "temperature": is a generationConfig field: '
         'write "generationConfig.temperature"'),
        ('[token]\nlock_additional_fields = ["tols"]\n',
         'token.lock_additional_fields[0] = "tols": is not a field of the Live API setup'),
        ('[token]\nlock_additional_fields = ["generationConfig.temprature"]\n',
         '"generationConfig.temprature": is not a field of the Live API setup'),
        ('[token]\nlock_additional_fields = ["realtimeInputConfig.automaticActivityDetecton"]\n',
         '"realtimeInputConfig.automaticActivityDetecton": is not a field of the Live API setup '
         '(realtimeInputConfig has activityHandling, automaticActivityDetection, turnCoverage)'),
        ('[token]\nlock_additional_fields = ["proactivity.proactiveAudo"]\n',
         '"proactivity.proactiveAudo": is not a field of the Live API setup'),
        ('[api]\nendpoint = "http://example.com"\n',
         'api.endpoint = "http://example.com": plain http:// is allowed only to a loopback'),
        ('[api]\nendpoint = "https://example.com/v1alpha"\n', "must be a base URL without a path"),
        ("[limits]\nbrust = 1\n", "limits.brust = 1: unknown key; did you mean limits.burst?"),
    ],
)  # fmt: skip
def test_bad_settings_are_named_with_their_value(text: str, expected: str) -> None:
    """Each rule of the token service's file names the key and the value it refuses."""
    with pytest.raises(ConfigError) as refused:
        parse_service_config(text, source="ts.toml", environ={})
    assert expected in str(refused.value)


async def test_the_command_adds_lists_revokes_and_serves(tmp_path: Path) -> None:
    """`pilive token-service add-device` prints the credential (only it) on stdout, once, and
    `--replace` a new one; list-devices shows the device; `serve` with the key and the TLS key
    as systemd credentials (never arguments) listens, says where, serves the device, and never
    prints the key."""
    tls = make_tls(tmp_path)
    async with running(emulator_options(auth_tokens_api=True)) as emu:
        config_path = tmp_path / "token-service.toml"
        config_path.write_text(
            service_toml(state_dir=tmp_path / "state", api_endpoint=emu.rest_url, tls=tls).replace(
                f'tls_key_file = "{tls.key_path}"\n', ""
            )
        )
        credentials = tmp_path / "credentials"
        credentials.mkdir()
        (credentials / "gemini-api-key").write_text(emu.api_key + "\n")
        (credentials / "pilive-token-service-tls-key").write_bytes(tls.key_path.read_bytes())
        env = dict(os.environ, CREDENTIALS_DIRECTORY=str(credentials))
        env.pop("GEMINI_API_KEY", None)
        base = [sys.executable, "-m", "pilive", "token-service", "--config", str(config_path)]

        async def command(*argv: str) -> tuple[int, str, str]:
            process = await asyncio.create_subprocess_exec(
                *base, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=env,
            )  # fmt: skip
            out, err = await process.communicate()
            assert process.returncode is not None
            return process.returncode, out.decode(), err.decode()

        code, out, err = await command("add-device", "porch")
        assert code == 0 and out.count("\n") == 1 and out.startswith("porch.")
        credential = out.strip()
        assert "shown this once" in err and credential not in err
        code, out, _ = await command("add-device", "porch")
        assert code == 2
        code, out, _ = await command("add-device", "porch", "--replace")
        assert code == 0 and out.startswith("porch.") and out.strip() != credential
        credential = out.strip()  # the first one is void now
        code, out, _ = await command("list-devices")
        assert out.startswith("porch\tadded ") and out.rstrip().endswith("active")

        server = await asyncio.create_subprocess_exec(
            *base, "serve", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env=env,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            async with asyncio.timeout(30):
                while not (line := (await server.stdout.readline()).decode()).startswith(
                    "token service listening on "
                ):
                    assert line, "the token service exited before listening"
            url = line.split(" on ", 1)[1].strip() + "/v1/token"
            assert url.startswith("https://127.0.0.1:")
            status, body, _ = await _ask(url, credential, ssl=tls.client_context)
            assert status == 200 and body["token"].startswith("auth_tokens/")
        finally:
            server.terminate()
            output, _ = await server.communicate()
        assert server.returncode == 0
        assert emu.api_key not in output.decode() and body["token"] not in output.decode()
        code, _, _ = await command("revoke-device", "porch")
        code, out, _ = await command("list-devices")
        assert code == 0 and "revoked 20" in out


async def _until(predicate: Any, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.05)
