"""The google-genai SDK's own ephemeral-token flow against the emulator (TLS, trustme): the SDK
mints a token with `auth_tokens.create` and then talks on BidiGenerateContentConstrained with
it. If the emulator's auth_tokens API or the Constrained method drifted from what the SDK sends
(body fields, fieldMask, the `Authorization: Token` header), this would fail."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google import genai
from google.genai import errors, types

from pilive.config import Secret
from pilive.emulator import Emulator
from pilive.live.setup_fields import camel
from pilive.tokenservice.config import TokenSection
from pilive.tokenservice.minting import Minter
from tests.support.emulator_rig import MODEL, TlsMaterial, emulator_options, make_tls, running, tone


@pytest.fixture
def tls(tmp_path: Path) -> TlsMaterial:
    return make_tls(tmp_path)


def _client(api_key: str, base_url: str, tls: TlsMaterial) -> genai.Client:
    return genai.Client(
        api_key=api_key,
        http_options={
            "base_url": base_url,
            "api_version": "v1alpha",
            "async_client_args": {"ssl": tls.client_context},
        },
    )


def _live_config(handle: str | None = None) -> types.LiveConnectConfig:
    return types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        system_instruction="Be brief.",
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
        ),
        session_resumption=types.SessionResumptionConfig(handle=handle),
    )


async def _mint(emu: Emulator, tls: TlsMaterial, **config: object) -> str:
    server = _client(emu.api_key, emu.rest_url, tls)
    now = datetime.now(UTC)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "experimental" warnings of the SDK
        token = await server.aio.auth_tokens.create(
            config=types.CreateAuthTokenConfig(
                uses=1,
                expire_time=now + timedelta(minutes=10),
                new_session_expire_time=now + timedelta(minutes=1),
                **config,  # type: ignore[arg-type]
            )
        )
    assert token.name is not None and token.name.startswith("auth_tokens/")
    return token.name


async def test_sdk_token_runs_a_turn_and_resumes(tls: TlsMaterial) -> None:
    """A token minted by the SDK (locked to the model and the system instruction, the SDK's
    fieldMask from `lock_additional_fields=[]`) carries one turn; a second new session with it
    is refused; a resume with it is not (a resume spends no use)."""
    options = emulator_options(
        auth_tokens_api=True, tls_cert=str(tls.cert_path), tls_key=str(tls.key_path)
    )
    async with running(options) as emu:
        name = await _mint(
            emu,
            tls,
            live_connect_constraints=types.LiveConnectConstraints(
                model=MODEL, config=types.LiveConnectConfig(system_instruction="Be brief.")
            ),
            lock_additional_fields=[],
        )
        token = emu.auth_tokens.tokens[name]
        assert token.locked == ("model", "systemInstruction.parts", "systemInstruction.role")
        device = _client(name, emu.url, tls)
        handle = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            async with device.aio.live.connect(model=MODEL, config=_live_config()) as session:
                await session.send_realtime_input(activity_start=types.ActivityStart())
                blob = types.Blob(data=tone(0.3), mime_type="audio/pcm;rate=16000")
                await session.send_realtime_input(audio=blob)
                await session.send_realtime_input(activity_end=types.ActivityEnd())
                async for message in session.receive():
                    update = message.session_resumption_update
                    if update is not None and update.resumable and update.new_handle:
                        handle = update.new_handle
            assert handle is not None
            with pytest.raises(errors.APIError) as refused:
                async with device.aio.live.connect(model=MODEL, config=_live_config()) as session:
                    async for _ in session.receive():
                        pass
            assert refused.value.code == 1007
            async with device.aio.live.connect(model=MODEL, config=_live_config(handle)) as session:
                assert session is not None
        record = emu.recording.connections[0]
        assert record.constrained and record.api_version == "v1alpha"
        assert record.headers["authorization"] == "<redacted>"
        assert token.sessions == 1 and emu.recording.connections[2].resumed


def _spelled_alike(value: object) -> object:
    """Field names in camelCase at every level, as the API reads either spelling."""
    if isinstance(value, dict):
        return {camel(k): _spelled_alike(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_spelled_alike(v) for v in value]
    return value


async def test_the_token_service_asks_for_what_the_sdk_asks_for(tls: TlsMaterial) -> None:
    """For the same owner's settings (model, voice, language, modality, system instruction, and
    temperature locked as well), pilive's token service (its Minter) and the SDK's
    `auth_tokens.create` get tokens with the same uses, the same locked setup and the same
    fieldMask from the emulator's auth_tokens API."""
    options = emulator_options(
        auth_tokens_api=True, tls_cert=str(tls.cert_path), tls_key=str(tls.key_path)
    )
    async with running(options) as emu:
        sdk_name = await _mint(
            emu,
            tls,
            live_connect_constraints=types.LiveConnectConstraints(
                model=MODEL,
                config=types.LiveConnectConfig(
                    response_modalities=[types.Modality.AUDIO],
                    speech_config=types.SpeechConfig(
                        voice_config=types.VoiceConfig(
                            prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Kore")
                        ),
                        language_code="de-DE",
                    ),
                    system_instruction="Be brief.",
                ),
            ),
            lock_additional_fields=["temperature"],
        )
        settings = TokenSection(
            model=MODEL,
            expire_after_s=600.0,
            new_session_window_s=60.0,
            system_instruction="Be brief.",
            voice="Kore",
            language_code="de-DE",
            response_modality="audio",
            lock_additional_fields=("generationConfig.temperature",),
        )
        minter = Minter(
            emu.rest_url,
            Secret(emu.api_key, origin="test"),
            settings,
            timeout_s=10.0,
            ssl_context=tls.client_context,
        )
        try:
            minted = await minter.mint(datetime.now(UTC))
        finally:
            await minter.close()
        ours = emu.auth_tokens.tokens[minted.name.reveal()]
        theirs = emu.auth_tokens.tokens[sdk_name]
        assert ours.uses_left == theirs.uses_left == 1
        assert _spelled_alike(ours.setup) == _spelled_alike(theirs.setup)
        assert ours.locked is not None and theirs.locked is not None
        assert sorted(ours.locked) == sorted(theirs.locked)
        assert "generationConfig.temperature" in ours.locked
