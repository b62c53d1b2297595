"""The thinking, native-audio, sampling and transcription-language keys held to the google-genai
SDK: each setup frame pilive builds from them validates with the SDK's strict pydantic models
(unknown fields rejected, unknown enum values fail) and the SDK reads back the values set; the
SDK's own client, asking for the same things, sends the same fields, the emulator takes them,
and the thoughts it sends back are `Part.thought` parts the SDK sees before the answer."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import types

from pilive import wiring
from pilive.config import Config, parse_config
from pilive.live import wire
from tests.conformance.test_client_frames import validate_client_frame
from tests.support.emulator_rig import TlsMaterial, emulator_options, make_tls, running, tone

NATIVE_2_5 = "gemini-2.5-flash-native-audio-preview-12-2025"
LEVELS_3_1 = "gemini-3.1-flash-live-preview"

EVERY_KEY = (
    "thinking_budget = 2048\ninclude_thoughts = true\naffective_dialog = true\n"
    "proactive_audio = true\ntemperature = 0.7\ntop_p = 0.9\ntop_k = 40\n"
    'max_output_tokens = 1024\nseed = 7\ninput_transcription_languages = ["en-US", "de-DE"]\n'
)


def config(live: str, model: str = NATIVE_2_5) -> Config:
    return parse_config(f'[live]\nmodel = "{model}"\napi_version = "v1alpha"\n{live}', environ={})


def sdk_setup(cfg: Config) -> Any:
    """pilive's setup frame for `cfg`, as the SDK's LiveClientSetup (strictly validated)."""
    return validate_client_frame(wire.build_setup(wiring.setup_options(cfg))).setup


GEN = "generation_config"
THINKING = "generation_config.thinking_config"


@pytest.mark.parametrize(
    ("live", "model", "path", "expected"),
    [
        ("thinking_budget = -1", NATIVE_2_5, f"{THINKING}.thinking_budget", -1),
        ("thinking_budget = 0", NATIVE_2_5, f"{THINKING}.thinking_budget", 0),
        ('thinking_level = "minimal"', LEVELS_3_1, f"{THINKING}.thinking_level", "MINIMAL"),
        ('thinking_level = "low"', LEVELS_3_1, f"{THINKING}.thinking_level", "LOW"),
        ('thinking_level = "medium"', LEVELS_3_1, f"{THINKING}.thinking_level", "MEDIUM"),
        ('thinking_level = "high"', LEVELS_3_1, f"{THINKING}.thinking_level", "HIGH"),
        ("include_thoughts = true", NATIVE_2_5, f"{THINKING}.include_thoughts", True),
        ("affective_dialog = true", NATIVE_2_5, f"{GEN}.enable_affective_dialog", True),
        ("affective_dialog = false", NATIVE_2_5, f"{GEN}.enable_affective_dialog", False),
        ("proactive_audio = true", NATIVE_2_5, "proactivity.proactive_audio", True),
        ("proactive_audio = false", NATIVE_2_5, "proactivity.proactive_audio", False),
        ("temperature = 0.7", NATIVE_2_5, f"{GEN}.temperature", 0.7),
        ("top_p = 0.9", NATIVE_2_5, f"{GEN}.top_p", 0.9),
        ("top_k = 40", NATIVE_2_5, f"{GEN}.top_k", 40),
        ("max_output_tokens = 1024", NATIVE_2_5, f"{GEN}.max_output_tokens", 1024),
        ("seed = -7", NATIVE_2_5, f"{GEN}.seed", -7),
        (
            'input_transcription_languages = ["en-US", "de-DE"]',
            NATIVE_2_5,
            "input_audio_transcription.language_codes",
            ["en-US", "de-DE"],
        ),
    ],
)
def test_each_key_validates_and_reads_back(
    live: str, model: str, path: str, expected: object
) -> None:
    """One key at a time: the frame is a valid LiveClientMessage holding that value."""
    value: Any = sdk_setup(config(live + "\n", model))
    for name in path.split("."):
        value = getattr(value, name)
    if isinstance(value, types.ThinkingLevel):
        value = value.value
    assert value == expected  # (the SDK holds topK as a float)


def test_every_key_at_once_validates() -> None:
    """The frame with every key set (the 2.5 native-audio model on v1alpha) is valid."""
    setup = sdk_setup(config(EVERY_KEY))
    gen = setup.generation_config
    assert gen.thinking_config == types.ThinkingConfig(thinking_budget=2048, include_thoughts=True)
    assert (gen.temperature, gen.top_p, gen.top_k, gen.max_output_tokens, gen.seed) == (
        0.7,
        0.9,
        40,
        1024,
        7,
    )
    assert gen.enable_affective_dialog and setup.proactivity.proactive_audio


def test_an_unknown_thinking_level_would_be_caught() -> None:
    """The oracle is strict enough for the new enum: a level the SDK lacks fails validation."""
    frame = wire.build_setup(wiring.setup_options(config('thinking_level = "low"\n', LEVELS_3_1)))
    with pytest.raises(Exception, match="SIDEWAYS"):
        validate_client_frame(frame.replace('"LOW"', '"SIDEWAYS"'))


# --- the SDK's own client against the emulator ------------------------------------------------


@pytest.fixture
def tls(tmp_path: Path) -> TlsMaterial:
    return make_tls(tmp_path)


def _camel(value: Any) -> Any:
    """Keys in lowerCamel at every level (proto3 JSON takes both; the SDK sends a mix)."""
    if isinstance(value, dict):
        return {
            re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): _camel(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


GENERATION_FIELDS = (
    "thinkingConfig",
    "enableAffectiveDialog",
    "temperature",
    "topP",
    "topK",
    "maxOutputTokens",
    "seed",
)


async def test_the_sdk_sends_what_pilive_sends_and_sees_thoughts_before_the_answer(
    tls: TlsMaterial,
) -> None:
    """LiveConnectConfig with the same settings: the emulator takes the SDK's setup on v1alpha,
    its fields equal pilive's frame's, and the reply's thought parts (part.thought, text) come
    before the audio, which the SDK decodes; every server frame validates strictly."""
    options = emulator_options(tls_cert=str(tls.cert_path), tls_key=str(tls.key_path))
    sdk_config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
        ),
        thinking_config=types.ThinkingConfig(thinking_budget=2048, include_thoughts=True),
        enable_affective_dialog=True,
        proactivity=types.ProactivityConfig(proactive_audio=True),
        temperature=0.7,
        top_p=0.9,
        top_k=40,
        max_output_tokens=1024,
        seed=7,
        input_audio_transcription=types.AudioTranscriptionConfig(language_codes=["en-US", "de-DE"]),
    )
    async with running(options) as emu:
        client = genai.Client(
            api_key=emu.api_key,
            http_options={
                "base_url": f"https://127.0.0.1:{emu.port}",
                "api_version": "v1alpha",
                "async_client_args": {"ssl": tls.client_context},
            },
        )
        async with client.aio.live.connect(model=NATIVE_2_5, config=sdk_config) as session:
            assert session.setup_complete is not None
            await session.send_realtime_input(activity_start=types.ActivityStart())
            await session.send_realtime_input(
                audio=types.Blob(data=tone(0.4), mime_type="audio/pcm;rate=16000")
            )
            await session.send_realtime_input(activity_end=types.ActivityEnd())
            messages = [m async for m in session.receive()]
        sent_by_sdk = _camel(emu.recording.connections[0].setup)
        frames = [f.message for f in emu.recording.connections[0].sent]
    ours = json.loads(wire.build_setup(wiring.setup_options(config(EVERY_KEY))))["setup"]
    for field in GENERATION_FIELDS:
        assert sent_by_sdk["generationConfig"][field] == ours["generationConfig"][field], field
    assert sent_by_sdk["proactivity"] == ours["proactivity"]
    assert sent_by_sdk["inputAudioTranscription"] == ours["inputAudioTranscription"]

    parts = [
        part
        for m in messages
        if m.server_content and m.server_content.model_turn
        for part in m.server_content.model_turn.parts or []
    ]
    kinds = ["thought" if p.thought else "audio" if p.inline_data else "other" for p in parts]
    assert kinds[:2] == ["thought", "thought"] and set(kinds[2:]) == {"audio"}
    assert all(p.text for p in parts[:2])
    assert b"".join(m.data for m in messages if m.data is not None)  # the answer, decoded
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for frame in frames:
            types.LiveServerMessage.model_validate(frame)
