"""pilive's wire format held to the google-genai SDK's own pydantic models (the oracle).

Client side: every frame pilive.live.wire builds validates as `types.LiveClientMessage` (warnings
as errors, so unknown enum values fail; `realtimeInputConfig` checked with
`types.RealtimeInputConfig`; exactly one top-level key) and carries the values it was given.
Server side: messages built with the SDK's types and serialised by alias parse into the events
they describe.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest

types = pytest.importorskip("google.genai.types")

from pilive.live import wire  # noqa: E402
from pilive.live.events import (  # noqa: E402
    AudioChunk,
    FunctionCall,
    GenerationComplete,
    GoAway,
    Grounding,
    InputTranscription,
    Interrupted,
    OutputTranscription,
    SessionResumptionUpdate,
    SetupComplete,
    TextPart,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
    UsageMetadata,
    VoiceActivity,
    WaitingForInput,
)

ONE_OF = {
    "setup",
    "clientContent",
    "client_content",
    "realtimeInput",
    "realtime_input",
    "toolResponse",
    "tool_response",
}


def validate_client_frame(frame: str) -> Any:
    """The recipe of the protocol notes, section 6: returns the validated LiveClientMessage."""
    message = json.loads(frame)
    if len(message) != 1 or next(iter(message)) not in ONE_OF:
        raise AssertionError(f"need exactly one of {sorted(ONE_OF)}, got {list(message)}")
    setup = message.get("setup")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # unknown enum values only warn otherwise
        if setup is not None:
            for key in ("realtimeInputConfig", "realtime_input_config"):
                if key in setup:
                    types.RealtimeInputConfig.model_validate(setup.pop(key))
        return types.LiveClientMessage.model_validate(message)


def realtime_input_config(frame: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return types.RealtimeInputConfig.model_validate(
            json.loads(frame)["setup"]["realtimeInputConfig"]
        )


FULL = wire.SetupOptions(
    model="gemini-2.5-flash-native-audio-preview-09-2025",
    voice_name="Kore",
    language_code="en-US",
    media_resolution="MEDIA_RESOLUTION_LOW",
    system_instruction="Be brief. Ünïcödé too.",
    function_declarations=(
        wire.FunctionDeclaration(
            "get_weather",
            "Weather for a city",
            {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
            "NON_BLOCKING",
        ),
        wire.FunctionDeclaration("device_status", "Status", None, "BLOCKING"),
        wire.FunctionDeclaration(
            "set_volume",
            "Volume",
            {"type": "object", "properties": {"percent": {"type": "integer", "minimum": 0}}},
        ),
    ),
    google_search=True,
    vad=wire.VadOptions(
        disabled=False,
        start_of_speech_sensitivity="START_SENSITIVITY_LOW",
        end_of_speech_sensitivity="END_SENSITIVITY_HIGH",
        prefix_padding_ms=20,
        silence_duration_ms=100,
    ),
    activity_handling="NO_INTERRUPTION",
    turn_coverage="TURN_INCLUDES_ALL_INPUT",
    compression_trigger_tokens=25600,
    compression_target_tokens=12800,
    input_audio_transcription=True,
    output_audio_transcription=True,
)

SETUPS: dict[str, tuple[wire.SetupOptions, str | None]] = {
    "minimal": (wire.SetupOptions(model="gemini-live-2.5-flash-preview"), None),
    "full": (FULL, None),
    "full-resume": (FULL, "CiQ0ZjI4-handle_with/odd+chars=="),
    "text-no-resumption-no-compression": (
        wire.SetupOptions(
            model="models/gemini-live-2.5-flash-preview",
            response_modalities=("TEXT",),
            session_resumption=False,
            context_window_compression=False,
        ),
        None,
    ),
    "push-to-talk-interrupts": (
        wire.SetupOptions(
            model="m",
            activity_handling="START_OF_ACTIVITY_INTERRUPTS",
            turn_coverage="TURN_INCLUDES_ONLY_ACTIVITY",
            compression_trigger_tokens=1000,
        ),
        "h",
    ),
}
for _res in wire.MEDIA_RESOLUTIONS:
    SETUPS[_res] = (wire.SetupOptions(model="m", media_resolution=_res), None)
for _cov in wire.TURN_COVERAGES:
    SETUPS[_cov] = (wire.SetupOptions(model="m", turn_coverage=_cov), None)
for _start in wire.START_SENSITIVITIES:
    for _end in wire.END_SENSITIVITIES:
        SETUPS[f"{_start}+{_end}"] = (
            wire.SetupOptions(
                model="m",
                vad=wire.VadOptions(
                    disabled=False,
                    start_of_speech_sensitivity=_start,
                    end_of_speech_sensitivity=_end,
                ),
            ),
            None,
        )


@pytest.mark.parametrize("name", list(SETUPS))
def test_setup_frames_validate(name: str) -> None:
    """Every setup variant validates, and the SDK reads back the values pilive put in."""
    options, handle = SETUPS[name]
    frame = wire.build_setup(options, handle)
    setup = validate_client_frame(frame).setup
    assert setup.model.endswith(options.model.removeprefix("models/"))
    assert setup.model.startswith("models/")
    gen = setup.generation_config
    assert [m.value for m in gen.response_modalities] == list(options.response_modalities)
    if options.voice_name:
        assert gen.speech_config.voice_config.prebuilt_voice_config.voice_name == options.voice_name
        assert gen.speech_config.language_code == options.language_code
    if options.media_resolution:
        assert gen.media_resolution.value == options.media_resolution
    if options.system_instruction:
        assert setup.system_instruction.parts[0].text == options.system_instruction
    if options.session_resumption:
        assert setup.session_resumption.handle == handle
    else:
        assert setup.session_resumption is None
    if options.context_window_compression:
        compression = setup.context_window_compression
        assert compression.sliding_window is not None
        assert compression.trigger_tokens == options.compression_trigger_tokens
        assert compression.sliding_window.target_tokens == options.compression_target_tokens
    declared = [d.name for t in setup.tools or [] for d in (t.function_declarations or [])]
    assert declared == [f.name for f in options.function_declarations]
    assert any(t.google_search is not None for t in setup.tools or []) == options.google_search
    assert (setup.input_audio_transcription is not None) == options.input_audio_transcription
    assert (setup.output_audio_transcription is not None) == options.output_audio_transcription

    config = realtime_input_config(frame)
    vad = config.automatic_activity_detection
    assert vad.disabled == options.vad.disabled
    if not options.vad.disabled:
        start = vad.start_of_speech_sensitivity
        assert (start.value if start else None) == options.vad.start_of_speech_sensitivity
        end = vad.end_of_speech_sensitivity
        assert (end.value if end else None) == options.vad.end_of_speech_sensitivity
        assert vad.prefix_padding_ms == options.vad.prefix_padding_ms
        assert vad.silence_duration_ms == options.vad.silence_duration_ms
    handling = config.activity_handling
    assert (handling.value if handling else None) == options.activity_handling
    coverage = config.turn_coverage
    assert (coverage.value if coverage else None) == options.turn_coverage


def test_function_declarations_validate_in_detail() -> None:
    """Declarations keep behavior and the parameter schema the SDK understands."""
    setup = validate_client_frame(wire.build_setup(FULL)).setup
    (decls,) = [t.function_declarations for t in setup.tools if t.function_declarations]
    assert decls[0].behavior.value == "NON_BLOCKING"
    assert decls[0].parameters.properties["city"].type.value == "STRING"
    assert decls[0].parameters.required == ["city"]
    assert decls[1].behavior.value == "BLOCKING"
    assert decls[2].parameters.properties["percent"].minimum == 0


def test_a_bad_enum_would_be_caught() -> None:
    """The oracle is strict enough: an unknown enum value in a frame fails validation."""
    frame = wire.build_setup(wire.SetupOptions(model="m", media_resolution="MEDIA_RESOLUTION_LOW"))
    broken = frame.replace("MEDIA_RESOLUTION_LOW", "MEDIA_RESOLUTION_TINY")
    with pytest.raises(Exception, match="MEDIA_RESOLUTION_TINY"):
        validate_client_frame(broken)


@pytest.mark.parametrize("size_bytes", [2, 640, 1282, 3200])
def test_audio_frames_validate_and_carry_the_pcm(size_bytes: int) -> None:
    """realtimeInput.audio validates and the SDK decodes exactly the PCM pilive encoded."""
    pcm = bytes((i * 7 + 3) % 256 for i in range(size_bytes))
    blob = validate_client_frame(wire.build_audio(pcm)).realtime_input.audio
    assert blob.mime_type == "audio/pcm;rate=16000"
    assert blob.data == pcm
    blob = validate_client_frame(wire.build_audio(pcm, 24000)).realtime_input.audio
    assert blob.mime_type == "audio/pcm;rate=24000"


def test_realtime_input_frames_validate() -> None:
    """video, text, activityStart/End and audioStreamEnd each validate as their SDK field."""
    jpeg = b"\xff\xd8\xff\xe0fakejpeg\xff\xd9"
    video = validate_client_frame(wire.build_video(jpeg)).realtime_input.video
    assert (video.mime_type, video.data) == ("image/jpeg", jpeg)
    text = validate_client_frame(wire.build_text("hello \u00e9")).realtime_input
    assert text.text == "hello \u00e9"
    assert validate_client_frame(wire.build_activity_start()).realtime_input.activity_start
    assert validate_client_frame(wire.build_activity_end()).realtime_input.activity_end
    end = validate_client_frame(wire.build_audio_stream_end()).realtime_input
    assert end.audio_stream_end is True


def test_client_content_validates() -> None:
    """clientContent turns and turnComplete validate and read back."""
    frame = wire.build_client_content(
        [wire.ContentTurn("user", "Hi"), wire.ContentTurn("model", "Hello")], turn_complete=False
    )
    content = validate_client_frame(frame).client_content
    assert [(t.role, t.parts[0].text) for t in content.turns] == [
        ("user", "Hi"),
        ("model", "Hello"),
    ]
    assert content.turn_complete is False


def test_tool_response_validates() -> None:
    """toolResponse with ids, results, scheduling and willContinue validates and reads back."""
    frame = wire.build_tool_response(
        [
            wire.FunctionResponse("fc-1", "get_weather", {"result": {"temp_c": 21.5}}),
            wire.FunctionResponse("fc-2", "slow", {"error": "timeout"}, "INTERRUPT", False),
        ]
    )
    responses = validate_client_frame(frame).tool_response.function_responses
    assert [(r.id, r.name, r.response) for r in responses] == [
        ("fc-1", "get_weather", {"result": {"temp_c": 21.5}}),
        ("fc-2", "slow", {"error": "timeout"}),
    ]
    assert responses[1].scheduling.value == "INTERRUPT"
    assert responses[1].will_continue is False


# --- server messages serialised by the SDK --------------------------------------------------


def sdk_frame(message: Any) -> str:
    """How the SDK's own types serialise a server message (canonical aliases, URL-safe bytes)."""
    return str(message.model_dump_json(by_alias=True, exclude_none=True))


def test_sdk_audio_turn_parses() -> None:
    """An SDK-serialised audio turn (URL-safe base64) + usage decodes to the same PCM."""
    pcm = bytes(range(256)) * 15  # includes bytes whose base64 uses '-' and '_'
    message = types.LiveServerMessage(
        server_content=types.LiveServerContent(
            model_turn=types.Content(
                role="model",
                parts=[
                    types.Part(inline_data=types.Blob(data=pcm, mime_type="audio/pcm;rate=24000")),
                    types.Part(text="hi"),
                    types.Part(text="hmm", thought=True),
                ],
            ),
            generation_complete=True,
            turn_complete=True,
            turn_complete_reason=types.TurnCompleteReason.NEED_MORE_INPUT,
        ),
        usage_metadata=types.UsageMetadata(
            prompt_token_count=5,
            response_token_count=7,
            total_token_count=12,
            response_tokens_details=[types.ModalityTokenCount(modality="AUDIO", token_count=7)],
        ),
    )
    frame = sdk_frame(message)
    assert "-" in frame or "_" in frame  # the URL-safe alphabet really is exercised
    assert wire.parse_server_message(frame.encode()) == [
        AudioChunk(pcm, 24000),
        TextPart("hi"),
        TextPart("hmm", thought=True),
        GenerationComplete(),
        TurnComplete("NEED_MORE_INPUT"),
        UsageMetadata(prompt_tokens=5, response_tokens=7, total_tokens=12,
                      response_tokens_by_modality=(("AUDIO", 7),)),
    ]  # fmt: skip


def test_sdk_server_messages_parse() -> None:
    """Each other SDK server message type parses into the matching pilive event."""
    cases: list[tuple[Any, list[object]]] = [
        (
            types.LiveServerMessage(setup_complete=types.LiveServerSetupComplete()),
            [SetupComplete()],
        ),
        (
            types.LiveServerMessage(
                setup_complete=types.LiveServerSetupComplete(session_id="sess-1")
            ),
            [SetupComplete("sess-1")],
        ),
        (
            types.LiveServerMessage(
                server_content=types.LiveServerContent(
                    input_transcription=types.Transcription(text="what's up", finished=True),
                    output_transcription=types.Transcription(text="not much"),
                    interrupted=True,
                    waiting_for_input=True,
                )
            ),
            [
                InputTranscription("what's up", True),
                OutputTranscription("not much", False),
                Interrupted(),
                WaitingForInput(),
            ],
        ),
        (
            types.LiveServerMessage(
                server_content=types.LiveServerContent(
                    grounding_metadata=types.GroundingMetadata(web_search_queries=["q"])
                )
            ),
            [Grounding({"webSearchQueries": ["q"]})],
        ),
        (
            types.LiveServerMessage(
                tool_call=types.LiveServerToolCall(
                    function_calls=[
                        types.FunctionCall(id="fc-1", name="get_weather", args={"city": "Paris"})
                    ]
                )
            ),
            [ToolCall((FunctionCall("fc-1", "get_weather", {"city": "Paris"}),))],
        ),
        (
            types.LiveServerMessage(
                tool_call_cancellation=types.LiveServerToolCallCancellation(ids=["fc-1", "fc-2"])
            ),
            [ToolCallCancellation(("fc-1", "fc-2"))],
        ),
        (types.LiveServerMessage(go_away=types.LiveServerGoAway(time_left="1.5s")), [GoAway(1.5)]),
        (
            types.LiveServerMessage(
                session_resumption_update=types.LiveServerSessionResumptionUpdate(
                    new_handle="h-1", resumable=True, last_consumed_client_message_index=42
                )
            ),
            [SessionResumptionUpdate("h-1", True, 42)],
        ),
        (
            types.LiveServerMessage(
                voice_activity=types.VoiceActivity(voice_activity_type="ACTIVITY_START")
            ),
            [VoiceActivity("ACTIVITY_START")],
        ),
    ]
    for message, events in cases:
        assert wire.parse_server_message(sdk_frame(message)) == events, sdk_frame(message)
