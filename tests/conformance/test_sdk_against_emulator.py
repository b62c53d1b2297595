"""The official google-genai SDK's own client, pointed at the emulator over TLS (trustme
certificate; the SDK always uses wss), completes whole sessions: if the emulator drifted from the
real protocol, the SDK would fail to connect, to parse, or to see what it expects."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from pilive.emulator import Close, Emulator, EmulatorOptions, Phase, ToolTrigger
from pilive.emulator.media import parrot_pcm, tone_pcm
from tests.support.emulator_rig import MODEL, TlsMaterial, emulator_options, make_tls, running, tone

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}
    ),
)


@pytest.fixture
def tls(tmp_path: Path) -> TlsMaterial:
    return make_tls(tmp_path)


def _client(emu: Emulator, tls: TlsMaterial, api_key: str | None = None) -> genai.Client:
    return genai.Client(
        api_key=api_key or emu.api_key,
        http_options={
            "base_url": f"https://127.0.0.1:{emu.port}",
            "api_version": "v1beta",
            "async_client_args": {"ssl": tls.client_context},
        },
    )


def _config(handle: str | None = None, tools: bool = False) -> types.LiveConnectConfig:
    return types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
        ),
        session_resumption=types.SessionResumptionConfig(handle=handle),
        context_window_compression=types.ContextWindowCompressionConfig(
            sliding_window=types.SlidingWindow()
        ),
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        tools=[types.Tool(function_declarations=[WEATHER])] if tools else None,
    )


@contextlib.asynccontextmanager
async def _tls_emulator(tls: TlsMaterial, **overrides: Any) -> AsyncIterator[Emulator]:
    options = emulator_options(tls_cert=str(tls.cert_path), tls_key=str(tls.key_path), **overrides)
    async with running(options) as emu:
        yield emu


async def _talk(session: Any, pcm: bytes, chunk_bytes: int = 3200) -> None:
    await session.send_realtime_input(activity_start=types.ActivityStart())
    for i in range(0, len(pcm), chunk_bytes):
        blob = types.Blob(data=pcm[i : i + chunk_bytes], mime_type="audio/pcm;rate=16000")
        await session.send_realtime_input(audio=blob)
    await session.send_realtime_input(activity_end=types.ActivityEnd())


async def _turn(session: Any) -> list[types.LiveServerMessage]:
    """session.receive() yields one model turn (it stops at turnComplete)."""
    return [message async for message in session.receive()]


def _audio(messages: list[types.LiveServerMessage]) -> bytes:
    return b"".join(m.data for m in messages if m.data is not None)


def _said(messages: list[types.LiveServerMessage]) -> str:
    return "".join(
        m.server_content.output_transcription.text or ""
        for m in messages
        if m.server_content and m.server_content.output_transcription
    )


async def _handle_after_turn(session: Any) -> str:
    async for message in session.receive():
        update = message.session_resumption_update
        if update and update.resumable:
            assert update.new_handle
            return str(update.new_handle)
    raise AssertionError("no resumable handle arrived")


async def test_sdk_push_to_talk_turn_then_resume_on_a_second_connection(tls: TlsMaterial) -> None:
    """Setup over wss, activityStart/audio/activityEnd, the parrot's audio decoded by the SDK
    equals tone + resampled input, a resumable handle arrives, and a second connection resuming
    with SessionResumptionConfig(handle=...) continues at turn 2."""
    spoken = tone(0.8)
    async with _tls_emulator(tls) as emu:
        client = _client(emu, tls)
        async with client.aio.live.connect(model=MODEL, config=_config()) as session:
            assert session.setup_complete is not None
            assert await _handle_after_turn(session)  # one is issued right after setup
            await _talk(session, spoken)
            first = await _turn(session)
            handle = await _handle_after_turn(session)
        assert _audio(first) == tone_pcm(150, 880.0) + parrot_pcm(spoken, 16000)
        assert _said(first) == "turn 1: heard 0.8 s of audio"
        assert any(m.usage_metadata and m.usage_metadata.total_token_count for m in first)
        assert emu.recording.audio_bytes() == spoken
        async with client.aio.live.connect(model=MODEL, config=_config(handle)) as session:
            await _talk(session, tone(0.4))
            second = await _turn(session)
        assert _said(second) == "turn 2: heard 0.4 s of audio"
        assert emu.recording.counters["resumes"] == 1
        first_conn = emu.recording.connections[0]
        assert first_conn.path.endswith("v1beta.GenerativeService.BidiGenerateContent")
        assert first_conn.headers["x-goog-api-key"] == "<redacted>"


async def test_sdk_sees_an_interruption(tls: TlsMaterial) -> None:
    """Barge-in: activityStart during the reply makes the SDK report interrupted and the turn end
    without generationComplete."""
    async with _tls_emulator(tls, time_scale=1.0, reply_speedup=1.0) as emu:
        async with _client(emu, tls).aio.live.connect(model=MODEL, config=_config()) as session:
            await _talk(session, tone(2.0))
            seen: list[types.LiveServerMessage] = []
            async for message in session.receive():
                seen.append(message)
                if message.data and len(seen) > 3:
                    await session.send_realtime_input(activity_start=types.ActivityStart())
        contents = [m.server_content for m in seen if m.server_content]
        assert any(c.interrupted for c in contents)
        assert not any(c.generation_complete for c in contents)
        assert contents[-1].turn_complete


async def test_sdk_tool_call_round_trip(tls: TlsMaterial) -> None:
    """The model calls the declared function; session.send_tool_response answers with the id;
    the model then speaks what the tool said."""
    trigger = ToolTrigger(turns=frozenset({1}))
    async with _tls_emulator(tls, tool_trigger=trigger) as emu:
        config = _config(tools=True)
        async with _client(emu, tls).aio.live.connect(model=MODEL, config=config) as session:
            await _talk(session, tone(0.3))
            call: types.FunctionCall | None = None
            async for message in session.receive():
                if message.tool_call and message.tool_call.function_calls:
                    call = message.tool_call.function_calls[0]
                    break
            assert call is not None and call.id and call.name == "get_weather"
            assert call.args == {"city": "turn 1"}
            await session.send_tool_response(
                function_responses=[
                    types.FunctionResponse(id=call.id, name=call.name, response={"sky": "clear"})
                ]
            )
            after = await _turn(session)
        assert _said(after) == 'turn 1: heard 0.3 s of audio; the tool said: {"sky": "clear"}'


async def test_sdk_receives_go_away_as_a_message(tls: TlsMaterial) -> None:
    """A goAway reaches session.receive() as LiveServerMessage.go_away with its timeLeft."""
    async with (
        _tls_emulator(tls) as emu,
        _client(emu, tls).aio.live.connect(model=MODEL, config=_config()) as session,
    ):
        await _handle_after_turn(session)
        emu.faults.go_away(2.0)
        async for message in session.receive():
            if message.go_away:
                assert message.go_away.time_left == "2s"
                break


async def test_sdk_wrong_key_surfaces_as_api_error_1007(tls: TlsMaterial) -> None:
    """A wrong key is what the SDK reports as APIError code 1007 with the service's message."""
    async with _tls_emulator(tls) as emu:
        client = _client(emu, tls, api_key="not-the-key")
        with pytest.raises(errors.APIError) as info:
            async with client.aio.live.connect(model=MODEL, config=_config()) as session:
                await _turn(session)
        assert info.value.code == 1007
        assert "API key not valid" in str(info.value)


async def test_sdk_unknown_model_surfaces_as_api_error_1008(tls: TlsMaterial) -> None:
    """An unknown model is APIError 1008 naming the model and the API version."""
    async with _tls_emulator(tls) as emu:
        with pytest.raises(errors.APIError) as info:
            async with _client(emu, tls).aio.live.connect(
                model="gemini-nope", config=_config()
            ) as session:
                await _turn(session)
        assert info.value.code == 1008
        assert "models/gemini-nope is not found for API version v1beta" in str(info.value)


async def test_sdk_server_close_mid_reply_surfaces_as_api_error(tls: TlsMaterial) -> None:
    """A 1011 mid-reply (a fault) reaches the SDK as APIError 1011, not a hang."""
    async with _tls_emulator(tls) as emu:
        emu.faults.on(Phase.MODEL_AUDIO, Close(1011, "The service is currently unavailable."))
        with pytest.raises(errors.APIError) as info:
            async with _client(emu, tls).aio.live.connect(model=MODEL, config=_config()) as s:
                await _talk(s, tone(0.5))
                while True:
                    await asyncio.wait_for(_turn(s), 10)
        assert info.value.code == 1011


def test_options_repr_hides_the_key() -> None:
    """The emulator's options never print the key they guard."""
    assert "secret-k" not in repr(EmulatorOptions(api_key="secret-k"))
