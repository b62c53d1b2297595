"""The emulator's auth_tokens API and the rules a token puts on BidiGenerateContentConstrained:
minted with the key over HTTP, `uses`, `expireTime`, the new-session window, locked setup fields
(refused or overridden), resumes that spend no use, and a connection closed at expiry."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from pilive.emulator import Emulator
from pilive.emulator.authtokens import BAD_KEY, TOKEN_EXPIRED
from tests.support.emulator_rig import (
    MODEL,
    RawClient,
    emulator_options,
    running,
    setup_message,
    tone,
)


def _rfc3339(seconds_ahead: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds_ahead)
    return moment.isoformat().replace("+00:00", "Z")


async def _create(
    emu: Emulator, body: dict[str, Any], *, key: str | None = None, version: str = "v1alpha"
) -> tuple[int, dict[str, Any]]:
    headers = {"x-goog-api-key": emu.api_key if key is None else key}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{emu.rest_url}/{version}/auth_tokens", json=body, headers=headers) as reply,
    ):
        return reply.status, json.loads(await reply.read())


def _constrained(emu: Emulator, token: str) -> Any:
    return RawClient.connect(
        emu,
        key=None,
        path=emu.path("v1alpha", constrained=True),
        headers={"Authorization": f"Token {token}"},
    )


async def test_create_answers_a_token_name_and_refuses_like_the_service() -> None:
    """POST /v1alpha/auth_tokens with the key answers {"name": "auth_tokens/..."}; a wrong key is
    400 INVALID_ARGUMENT "API key not valid", another API version 404, an expireTime 20 hours or
    more ahead 400, and a negative `uses` 400."""
    async with running(emulator_options(auth_tokens_api=True)) as emu:
        status, body = await _create(emu, {"uses": 1, "expireTime": _rfc3339(600)})
        assert status == 200 and body["name"].startswith("auth_tokens/")
        token = emu.auth_tokens.tokens[body["name"]]
        assert token.uses_left == 1 and token.setup is None
        status, body = await _create(emu, {}, key="wrong-key-0123456789")
        assert (status, body["error"]["status"], body["error"]["message"]) == (
            400,
            "INVALID_ARGUMENT",
            BAD_KEY,
        )
        assert (await _create(emu, {}, version="v1beta"))[0] == 404
        assert (await _create(emu, {"expireTime": _rfc3339(20 * 3600 + 60)}))[0] == 400
        assert (await _create(emu, {"uses": -1}))[0] == 400
        assert (await _create(emu, {"noSuchField": 1}))[0] == 400
        assert emu.auth_token_requests == 6


async def test_one_use_starts_one_session_and_resumes_spend_none() -> None:
    """uses=1: the first new session spends the use, a second new session is refused 1007 like a
    bad key, and a resume of the first session with the same token is accepted ("resuming a Live
    API session does not count as a use")."""
    async with running(emulator_options(auth_tokens_api=True)) as emu:
        _, body = await _create(emu, {"uses": 1})
        name = body["name"]
        async with _constrained(emu, name) as first:
            await first.setup()
            handle = (await first.recv())["sessionResumptionUpdate"]["newHandle"]
        async with _constrained(emu, name) as second:
            await second.send(setup_message())
            assert await second.closed() == (1007, BAD_KEY)
        async with _constrained(emu, name) as resumed:
            await resumed.setup(handle=handle)
        token = emu.auth_tokens.tokens[name]
        assert token.sessions == 1 and token.uses_left == 0
        assert token.refusals == ["used up"]
        assert emu.recording.connections[2].resumed


async def test_new_session_window_and_expiry() -> None:
    """After newSessionExpireTime a token starts no new session but still resumes; after
    expireTime it is refused at once, and an open connection is closed when it passes."""
    async with running(emulator_options(auth_tokens_api=True)) as emu:
        long_lived = emu.issue_ephemeral_token(uses=0, lifetime_s=60.0, new_session_s=60.0)
        async with _constrained(emu, long_lived) as client:
            await client.setup()
            handle = (await client.recv())["sessionResumptionUpdate"]["newHandle"]
        windowed = emu.issue_ephemeral_token(uses=5, lifetime_s=60.0, new_session_s=0.0)
        async with _constrained(emu, windowed) as client:
            await client.send(setup_message())
            assert (await client.closed())[0] == 1007
        async with _constrained(emu, windowed) as client:
            await client.setup(handle=handle)
        short = emu.issue_ephemeral_token(uses=1, lifetime_s=0.5)
        async with _constrained(emu, short) as client:
            await client.setup(handle=handle)
            assert await client.closed(timeout_s=10) == (1008, TOKEN_EXPIRED)
        async with _constrained(emu, short) as client:
            await client.send(setup_message())
            assert await client.closed() == (1007, BAD_KEY)
        assert emu.auth_tokens.tokens[short].refusals == ["expired"]


async def test_locked_fields_refuse_a_contradicting_setup_and_fill_in_what_is_left_out() -> None:
    """fieldMask names the locked fields: a setup with a different model or system instruction
    is refused 1007 INVALID_ARGUMENT; one that leaves a locked field out gets the token's value
    (the session then runs with it); an unlocked field the token sets may be overridden."""
    locked_setup = {
        "model": MODEL,
        "systemInstruction": {"parts": [{"text": "Be brief."}], "role": "user"},
        "generationConfig": {"responseModalities": ["AUDIO"], "temperature": 0.5},
    }
    body = {
        "uses": 0,
        "bidiGenerateContentSetup": locked_setup,
        "fieldMask": "model,systemInstruction,generationConfig.responseModalities",
    }
    async with running(emulator_options(auth_tokens_api=True)) as emu:
        _, minted = await _create(emu, body)
        name = minted["name"]
        token = emu.auth_tokens.tokens[name]
        assert token.setup is not None and token.setup["model"] == f"models/{MODEL}"
        assert token.locked == ("model", "systemInstruction", "generationConfig.responseModalities")

        other = dict(setup_message(model="gemini-2.5-flash-native-audio-preview-12-2025"))
        async with _constrained(emu, name) as client:
            await client.send(other)
            assert await client.closed() == (1007, "Request contains an invalid argument.")

        contradicting = setup_message()
        contradicting["setup"]["system_instruction"] = {"parts": [{"text": "Talk a lot."}]}
        async with _constrained(emu, name) as client:
            await client.send(contradicting)
            assert (await client.closed())[0] == 1007
        assert token.refusals == [
            "model contradicts the token's locked value",
            "systemInstruction contradicts the token's locked value",
        ]

        agreeing = setup_message()
        agreeing["setup"]["generationConfig"]["temperature"] = 0.9  # unlocked: the client's
        async with _constrained(emu, name) as client:
            await client.setup()
        async with _constrained(emu, name) as client:
            await client.send(agreeing)
            assert await client.recv() == {"setupComplete": {}}
            await client.push_to_talk(tone(0.3))
            await client.turn()
        assert token.sessions == 2


async def test_conflicts_are_overridden_when_the_emulator_is_told_so() -> None:
    """locked_field_conflict="ignore": the token's value silently wins (what the SDK's docstring
    says of a token locked as a whole), and the session runs with the token's model."""
    options = emulator_options(auth_tokens_api=True, locked_field_conflict="ignore")
    async with running(options) as emu:
        name = emu.issue_ephemeral_token(uses=1, setup={"model": MODEL}, locked=("model",))
        async with _constrained(emu, name) as client:
            await client.setup(model="gemini-2.5-flash-native-audio-preview-12-2025")
        session = emu.recording.session(emu.recording.connections[0].session_id)
        assert session.model == MODEL


async def test_a_token_locked_as_a_whole_keeps_the_clients_handle() -> None:
    """Without a fieldMask the whole setup is the token's: what the client adds is dropped
    (here its transcription), but its resumption handle still resumes."""
    whole = {"model": MODEL, "generationConfig": {"responseModalities": ["AUDIO"]},
             "sessionResumption": {}, "realtimeInputConfig": {
                 "automaticActivityDetection": {"disabled": True}}}  # fmt: skip
    async with running(emulator_options(auth_tokens_api=True)) as emu:
        _, minted = await _create(emu, {"uses": 0, "bidiGenerateContentSetup": whole})
        name = minted["name"]
        assert emu.auth_tokens.tokens[name].locked is None
        async with _constrained(emu, name) as client:
            await client.setup(transcription=True)
            handle = (await client.recv())["sessionResumptionUpdate"]["newHandle"]
            await client.push_to_talk(tone(0.3))
            turn = await client.turn()
        assert not any("outputTranscription" in m.get("serverContent", {}) for m in turn)
        async with _constrained(emu, name) as client:
            await client.setup(handle=handle)
        assert emu.recording.connections[1].resumed


async def test_the_constrained_method_refuses_a_missing_token_and_the_api_refuses_outages() -> None:
    """No token at all is refused like a bad key; `refuse_auth_tokens(503)` makes every create
    request fail with that status until it is lifted (a service outage for the token service)."""
    async with running(emulator_options(auth_tokens_api=True)) as emu:
        async with RawClient.connect(
            emu, key=None, path=emu.path("v1alpha", constrained=True)
        ) as client:
            await client.send(setup_message())
            assert await client.closed() == (1007, BAD_KEY)
        emu.refuse_auth_tokens(503)
        assert (await _create(emu, {}))[0] == 503
        emu.refuse_auth_tokens(None)
        assert (await _create(emu, {}))[0] == 200


async def test_rest_url_needs_the_api_switched_on() -> None:
    """The auth_tokens listener exists only when asked for: nothing else listens."""
    async with running() as emu:
        with pytest.raises(RuntimeError, match="auth_tokens_api=True"):
            _ = emu.rest_url


async def test_the_emulator_command_serves_auth_tokens_when_asked() -> None:
    """`pilive emulator --auth-tokens` prints the auth_tokens URL and mints a token there."""
    env = dict(os.environ, PILIVE_EMULATOR_API_KEY="cli-auth-tokens-key")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilive", "emulator", "--port", "0", "--auth-tokens",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            while not (line := (await process.stdout.readline()).decode()).startswith(
                "auth_tokens API on "
            ):
                assert line, "the emulator exited before serving auth_tokens"
        url = line.removeprefix("auth_tokens API on ").strip()
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{url}/v1alpha/auth_tokens",
                json={"uses": 1},
                headers={"x-goog-api-key": "cli-auth-tokens-key"},
            ) as reply,
        ):
            assert reply.status == 200
            assert (await reply.json())["name"].startswith("auth_tokens/")
    finally:
        process.terminate()
        await process.wait()
