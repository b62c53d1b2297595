"""Unit tests for pilive.live.wire: every builder and every parser branch."""

from __future__ import annotations

import base64
import dataclasses
import json
from types import MappingProxyType

import pytest

from pilive.live import wire
from pilive.live.events import (
    AudioChunk,
    FunctionCall,
    GenerationComplete,
    GoAway,
    Grounding,
    InputTranscription,
    InteractionStatus,
    Interrupted,
    OutputTranscription,
    SessionResumptionUpdate,
    SetupComplete,
    TextPart,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
    UnknownMessage,
    UsageMetadata,
    VoiceActivity,
    WaitingForInput,
)
from pilive.live.wire import LiveProtocolError, parse_server_message

PCM = bytes(range(256)) * 4  # 1024 bytes, contains bytes that base64 to '+' and '/'


def setup_of(frame: str) -> dict[str, object]:
    message = json.loads(frame)
    assert list(message) == ["setup"]
    setup = message["setup"]
    assert isinstance(setup, dict)
    return setup


# --- builders ---------------------------------------------------------------------------------


def test_setup_minimal_is_push_to_talk_with_resumption_and_compression() -> None:
    """Defaults: models/ prefix, audio out, VAD disabled, resumption and sliding window on."""
    setup = setup_of(wire.build_setup(wire.SetupOptions(model="gemini-live-x")))
    assert setup == {
        "model": "models/gemini-live-x",
        "generationConfig": {"responseModalities": ["AUDIO"]},
        "realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}},
        "sessionResumption": {},
        "contextWindowCompression": {"slidingWindow": {}},
    }


def test_setup_keeps_resource_paths() -> None:
    """A model already given as models/… or a Vertex resource path is not prefixed again."""
    assert setup_of(wire.build_setup(wire.SetupOptions(model="models/m")))["model"] == "models/m"
    vertex = "projects/p/locations/l/publishers/google/models/m"
    assert setup_of(wire.build_setup(wire.SetupOptions(model=vertex)))["model"] == vertex


def test_setup_every_option() -> None:
    """Each SetupOptions field lands under its canonical camelCase Live API name."""
    options = wire.SetupOptions(
        model="m",
        response_modalities=("TEXT",),
        voice_name="Kore",
        language_code="en-US",
        media_resolution="MEDIA_RESOLUTION_LOW",
        system_instruction="Be brief.",
        function_declarations=(
            wire.FunctionDeclaration(
                "get_weather",
                "weather now",
                MappingProxyType({"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}),
                "NON_BLOCKING",
            ),
            wire.FunctionDeclaration("ping", "no args"),
        ),
        google_search=True,
        vad=wire.VadOptions(
            disabled=False,
            start_of_speech_sensitivity="START_SENSITIVITY_LOW",
            end_of_speech_sensitivity="END_SENSITIVITY_HIGH",
            prefix_padding_ms=20,
            silence_duration_ms=500,
        ),
        activity_handling="NO_INTERRUPTION",
        turn_coverage="TURN_INCLUDES_ALL_INPUT",
        compression_trigger_tokens=25600,
        compression_target_tokens=12800,
        input_audio_transcription=True,
        output_audio_transcription=True,
    )
    setup = setup_of(wire.build_setup(options, handle="h-1"))
    assert setup == {
        "model": "models/m",
        "generationConfig": {
            "responseModalities": ["TEXT"],
            "speechConfig": {
                "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}},
                "languageCode": "en-US",
            },
            "mediaResolution": "MEDIA_RESOLUTION_LOW",
        },
        "systemInstruction": {"role": "user", "parts": [{"text": "Be brief."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "weather now",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {"city": {"type": "STRING"}},
                        },
                        "behavior": "NON_BLOCKING",
                    },
                    {"name": "ping", "description": "no args"},
                ]
            },
            {"googleSearch": {}},
        ],
        "realtimeInputConfig": {
            "automaticActivityDetection": {
                "disabled": False,
                "startOfSpeechSensitivity": "START_SENSITIVITY_LOW",
                "endOfSpeechSensitivity": "END_SENSITIVITY_HIGH",
                "prefixPaddingMs": 20,
                "silenceDurationMs": 500,
            },
            "activityHandling": "NO_INTERRUPTION",
            "turnCoverage": "TURN_INCLUDES_ALL_INPUT",
        },
        "sessionResumption": {"handle": "h-1"},
        "contextWindowCompression": {
            "slidingWindow": {"targetTokens": 12800},
            "triggerTokens": 25600,
        },
        "inputAudioTranscription": {},
        "outputAudioTranscription": {},
    }


def test_setup_without_resumption_or_compression() -> None:
    """Turning resumption/compression off omits the fields; a handle then is refused."""
    options = wire.SetupOptions(
        model="m", session_resumption=False, context_window_compression=False
    )
    setup = setup_of(wire.build_setup(options))
    assert "sessionResumption" not in setup
    assert "contextWindowCompression" not in setup
    with pytest.raises(ValueError, match="session_resumption"):
        wire.build_setup(options, handle="h")
    with pytest.raises(ValueError, match="non-empty"):
        wire.build_setup(wire.SetupOptions(model="m"), handle="")


def test_push_to_talk_vad_omits_tuning() -> None:
    """With VAD disabled, tuning fields are not sent (they would mean nothing to the server)."""
    vad = wire.VadOptions(disabled=True, silence_duration_ms=300)
    assert vad.to_json() == {"disabled": True}


def test_setup_non_ascii_is_escaped() -> None:
    """System instructions in any language survive as pure-ASCII JSON."""
    frame = wire.build_setup(wire.SetupOptions(model="m", system_instruction="Sprich kurz: äöü 🎙"))
    assert frame.isascii()
    assert setup_of(frame)["systemInstruction"] == {
        "role": "user",
        "parts": [{"text": "Sprich kurz: äöü 🎙"}],
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": ""}, "SetupOptions.model"),
        ({"model": "has space"}, "SetupOptions.model"),
        ({"model": "m", "response_modalities": ()}, "at least one"),
        ({"model": "m", "response_modalities": ("VIDEO",)}, "response_modalities: 'VIDEO'"),
        ({"model": "m", "media_resolution": "LOW"}, "media_resolution: 'LOW' is not one of"),
        ({"model": "m", "activity_handling": "x"}, "activity_handling"),
        ({"model": "m", "turn_coverage": "x"}, "turn_coverage"),
        ({"model": "m", "compression_trigger_tokens": 0}, "compression_trigger_tokens: 0"),
        ({"model": "m", "compression_target_tokens": True}, "not an integer"),
        (
            {"model": "m", "compression_trigger_tokens": 100, "compression_target_tokens": 100},
            "must be below",
        ),
        (
            {
                "model": "m",
                "function_declarations": (
                    wire.FunctionDeclaration("f", "a"),
                    wire.FunctionDeclaration("f", "b"),
                ),
            },
            "duplicate",
        ),
    ],
)
def test_setup_options_errors_name_the_field(kwargs: dict[str, object], message: str) -> None:
    """Bad options fail at construction with the field name and the bad value."""
    with pytest.raises(ValueError, match=message):
        wire.SetupOptions(**kwargs)  # type: ignore[arg-type]


def test_nested_option_errors() -> None:
    """VadOptions, FunctionDeclaration and FunctionResponse validate their own fields."""
    with pytest.raises(ValueError, match="start_of_speech_sensitivity"):
        wire.VadOptions(disabled=False, start_of_speech_sensitivity="LOW")
    with pytest.raises(ValueError, match="end_of_speech_sensitivity"):
        wire.VadOptions(disabled=False, end_of_speech_sensitivity="HIGH")
    with pytest.raises(ValueError, match="prefix_padding_ms"):
        wire.VadOptions(prefix_padding_ms=-1)
    with pytest.raises(ValueError, match="silence_duration_ms"):
        wire.VadOptions(silence_duration_ms=0)
    with pytest.raises(ValueError, match=r"FunctionDeclaration\.name: '1abc'"):
        wire.FunctionDeclaration("1abc", "d")
    with pytest.raises(ValueError, match="behavior"):
        wire.FunctionDeclaration("f", "d", behavior="ASYNC")
    with pytest.raises(ValueError, match=r"parameters\.properties: bytes value is not JSON"):
        wire.FunctionDeclaration("f", "d", {"properties": b"x"})
    with pytest.raises(ValueError, match="not representable"):
        wire.FunctionDeclaration("f", "d", {"default": float("nan")})
    with pytest.raises(ValueError, match=r"FunctionResponse\.id"):
        wire.FunctionResponse("", "f", {})
    with pytest.raises(ValueError, match=r"FunctionResponse\.name"):
        wire.FunctionResponse("1", "", {})
    with pytest.raises(ValueError, match="scheduling"):
        wire.FunctionResponse("1", "f", {}, scheduling="LATER")
    with pytest.raises(ValueError, match=r"ContentTurn\.role"):
        wire.ContentTurn("system", "x")


def test_audio_frame_is_exact_and_decodes() -> None:
    """An audio frame is the precomputed JSON around standard base64 of the PCM."""
    frame = wire.build_audio(PCM)
    b64 = base64.b64encode(PCM).decode()
    assert frame == (
        '{"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=16000","data":"' + b64 + '"}}}'
    )
    assert base64.b64decode(json.loads(frame)["realtimeInput"]["audio"]["data"]) == PCM
    assert wire.build_audio(bytearray(PCM)) == frame
    assert wire.build_audio(memoryview(PCM)) == frame


def test_audio_frame_other_rate_and_errors() -> None:
    """Other rates get their own mime type; odd, empty or rate-less input is refused."""
    frame = json.loads(wire.build_audio(b"\x00\x00", rate_hz=24000))
    assert frame["realtimeInput"]["audio"]["mimeType"] == "audio/pcm;rate=24000"
    with pytest.raises(ValueError, match="3 bytes"):
        wire.build_audio(b"abc")
    with pytest.raises(ValueError, match="0 bytes"):
        wire.build_audio(b"")
    with pytest.raises(ValueError, match="rate_hz 0"):
        wire.build_audio(b"\x00\x00", rate_hz=0)


def test_video_text_and_control_frames() -> None:
    """video, text, activityStart/End and audioStreamEnd frames carry one realtimeInput field."""
    video = json.loads(wire.build_video(b"\xff\xd8jpeg\xff\xd9"))
    assert video == {
        "realtimeInput": {
            "video": {
                "mimeType": "image/jpeg",
                "data": base64.b64encode(b"\xff\xd8jpeg\xff\xd9").decode(),
            }
        }
    }
    assert json.loads(wire.build_video(b"x", "image/png"))["realtimeInput"]["video"][
        "mimeType"
    ] == ("image/png")
    with pytest.raises(ValueError, match="mime type"):
        wire.build_video(b"x", 'image/jpeg","x":"')
    with pytest.raises(ValueError, match="empty image"):
        wire.build_video(b"")
    assert json.loads(wire.build_text('say "hi"\n')) == {"realtimeInput": {"text": 'say "hi"\n'}}
    with pytest.raises(ValueError, match="not text"):
        wire.build_text(b"x")  # type: ignore[arg-type]
    assert json.loads(wire.build_activity_start()) == {"realtimeInput": {"activityStart": {}}}
    assert json.loads(wire.build_activity_end()) == {"realtimeInput": {"activityEnd": {}}}
    assert json.loads(wire.build_audio_stream_end()) == {"realtimeInput": {"audioStreamEnd": True}}


def test_client_content() -> None:
    """clientContent carries role/text turns and the turnComplete flag."""
    frame = wire.build_client_content(
        [wire.ContentTurn("user", "Hi"), wire.ContentTurn("model", "Hello")], turn_complete=False
    )
    assert json.loads(frame) == {
        "clientContent": {
            "turns": [
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Hello"}]},
            ],
            "turnComplete": False,
        }
    }


def test_tool_response() -> None:
    """toolResponse lists functionResponses with id, name, response and optional scheduling."""
    frame = wire.build_tool_response(
        [
            wire.FunctionResponse("fc-1", "get_weather", {"result": "sunny"}),
            wire.FunctionResponse(
                "fc-2", "slow", MappingProxyType({"result": [1, 2.5]}), "WHEN_IDLE", True
            ),
        ]
    )
    assert json.loads(frame) == {
        "toolResponse": {
            "functionResponses": [
                {"id": "fc-1", "name": "get_weather", "response": {"result": "sunny"}},
                {
                    "id": "fc-2",
                    "name": "slow",
                    "response": {"result": [1, 2.5]},
                    "scheduling": "WHEN_IDLE",
                    "willContinue": True,
                },
            ]
        }
    }
    with pytest.raises(ValueError, match="no function responses"):
        wire.build_tool_response([])
    with pytest.raises(ValueError, match=r"FunctionResponse\(f\)\.response\.result: set"):
        wire.build_tool_response([wire.FunctionResponse("1", "f", {"result": {1}})])


# --- parser -----------------------------------------------------------------------------------


def test_setup_complete_text_and_binary() -> None:
    """setupComplete parses from text and binary frames, with and without sessionId."""
    assert parse_server_message('{"setupComplete": {}}') == [SetupComplete()]
    assert parse_server_message(b'{"setupComplete":{"sessionId":"s-1"}}') == [SetupComplete("s-1")]
    assert parse_server_message(bytearray(b'{"setup_complete":{"session_id":"s"}}')) == [
        SetupComplete("s")
    ]


@pytest.mark.parametrize(
    "encode",
    [
        base64.b64encode,
        base64.urlsafe_b64encode,
        lambda b: base64.b64encode(b).rstrip(b"="),
        lambda b: base64.urlsafe_b64encode(b).rstrip(b"="),
    ],
    ids=["standard", "urlsafe", "standard-unpadded", "urlsafe-unpadded"],
)
def test_audio_part_both_alphabets(encode: object) -> None:
    """Audio decodes from standard or URL-safe base64, padded or not, to the exact PCM."""
    pcm = PCM[:1022]  # length not a multiple of 3, so padding matters
    data = encode(pcm).decode()  # type: ignore[operator]
    frame = json.dumps(
        {
            "serverContent": {
                "modelTurn": {
                    "parts": [{"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": data}}]
                }
            }
        }
    )
    assert parse_server_message(frame) == [AudioChunk(pcm, 24000)]


def test_model_turn_with_several_parts_snake_case() -> None:
    """snake_case at every level; several parts keep their order; rate defaults to 24 kHz."""
    frame = {
        "server_content": {
            "model_turn": {
                "parts": [
                    {"inline_data": {"mime_type": "audio/pcm", "data": "AAA="}},
                    {"text": "thinking", "thought": True, "thought_signature": "x"},
                    {"text": "Hello"},
                    {"inline_data": {"mime_type": "AUDIO/PCM; rate=16000", "data": "AQI="}},
                ]
            },
            "turn_complete": True,
            "turn_complete_reason": "NEED_MORE_INPUT",
        }
    }
    assert parse_server_message(json.dumps(frame)) == [
        AudioChunk(b"\x00\x00", 24000),
        TextPart("thinking", thought=True),
        TextPart("Hello"),
        AudioChunk(b"\x01\x02", 16000),
        TurnComplete("NEED_MORE_INPUT"),
    ]


def test_server_content_flags_and_transcriptions_in_order() -> None:
    """Input transcription, content, output transcription, grounding, then end-of-turn flags,
    then `interactionStatus` (newer servers; informational)."""
    frame = {
        "serverContent": {
            "waitingForInput": True,
            "turnComplete": True,
            "generationComplete": True,
            "interrupted": True,
            "groundingMetadata": {"webSearchQueries": ["q"]},
            "outputTranscription": {"text": "It is sunny", "finished": True},
            "inputTranscription": {"text": "weather?"},
            "interactionStatus": "IDLE",
        }
    }
    assert parse_server_message(json.dumps(frame)) == [
        InputTranscription("weather?", False),
        OutputTranscription("It is sunny", True),
        Grounding({"webSearchQueries": ["q"]}),
        Interrupted(),
        GenerationComplete(),
        TurnComplete(None),
        WaitingForInput(),
        InteractionStatus("IDLE"),
    ]


def test_false_and_null_flags_are_absent() -> None:
    """false / null fields produce no events (proto3 default values)."""
    frame = '{"serverContent":{"interrupted":false,"turnComplete":null,"modelTurn":{}}}'
    assert parse_server_message(frame) == []
    assert parse_server_message('{"serverContent":null}') == []
    assert parse_server_message("{}") == []


def test_non_audio_and_unknown_parts_become_unknown_messages() -> None:
    """An image part or a functionCall part is reported, not dropped and not an error."""
    frame = {
        "serverContent": {
            "modelTurn": {
                "parts": [
                    {"inlineData": {"mimeType": "image/png", "data": "AAA="}},
                    {"executableCode": {"code": "1"}, "thoughtSignature": "s"},
                    {"thought": True},
                ]
            }
        }
    }
    assert parse_server_message(json.dumps(frame)) == [
        UnknownMessage(("serverContent.modelTurn.parts[0].inlineData(image/png)",)),
        UnknownMessage(("serverContent.modelTurn.parts[1].executableCode",)),
    ]


def test_tool_call_and_cancellation() -> None:
    """toolCall gives typed FunctionCalls (args default {}); cancellation gives the ids."""
    frame = {
        "toolCall": {
            "functionCalls": [
                {"id": "fc-1", "name": "get_weather", "args": {"city": "Paris"}},
                {"name": "ping"},
            ]
        }
    }
    assert parse_server_message(json.dumps(frame)) == [
        ToolCall(
            (FunctionCall("fc-1", "get_weather", {"city": "Paris"}), FunctionCall("", "ping", {}))
        )
    ]
    assert parse_server_message('{"tool_call_cancellation":{"ids":["a","b"]}}') == [
        ToolCallCancellation(("a", "b"))
    ]
    assert parse_server_message('{"toolCall":{}}') == [ToolCall(())]


@pytest.mark.parametrize(
    ("time_left", "seconds"),
    [('"10s"', 10.0), ('"1.5s"', 1.5), ('"0.000000001s"', 1e-9), ("3", 3.0), ('"-2s"', 0.0)],
)
def test_go_away_durations(time_left: str, seconds: float) -> None:
    """goAway.timeLeft durations (and bare numbers) become seconds; negatives clamp to 0."""
    assert parse_server_message('{"goAway":{"timeLeft":' + time_left + "}}") == [GoAway(seconds)]


def test_go_away_without_time_left_means_now() -> None:
    """A goAway with no timeLeft asks for a handover at once."""
    assert parse_server_message('{"go_away":{}}') == [GoAway(0.0)]


def test_session_resumption_update() -> None:
    """Handles, resumable flags and the int64 index as a string or a number."""
    assert parse_server_message(
        '{"sessionResumptionUpdate":{"newHandle":"h-1","resumable":true}}'
    ) == [SessionResumptionUpdate("h-1", True)]
    assert parse_server_message(
        '{"session_resumption_update":{"resumable":false,"last_consumed_client_message_index":"42"}}'
    ) == [SessionResumptionUpdate("", False, 42)]
    assert parse_server_message(
        '{"sessionResumptionUpdate":{"lastConsumedClientMessageIndex":7}}'
    ) == [SessionResumptionUpdate("", False, 7)]


def test_usage_metadata_rides_along() -> None:
    """usageMetadata next to serverContent comes after the content's events, int64 strings ok."""
    frame = {
        "serverContent": {"turnComplete": True},
        "usageMetadata": {
            "promptTokenCount": "5",
            "responseTokenCount": 7,
            "totalTokenCount": 12,
            "cachedContentTokenCount": 1,
            "toolUsePromptTokenCount": 2,
            "thoughtsTokenCount": 3,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}],
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": "7"}],
        },
    }
    assert parse_server_message(json.dumps(frame)) == [
        TurnComplete(None),
        UsageMetadata(5, 1, 7, 2, 3, 12, (("TEXT", 5),), (("AUDIO", 7),)),
    ]
    vertex = (
        '{"usageMetadata":{"candidatesTokenCount":4,"candidatesTokensDetails":[{"tokenCount":4}]}}'
    )
    assert parse_server_message(vertex) == [
        UsageMetadata(response_tokens=4, response_tokens_by_modality=(("MODALITY_UNSPECIFIED", 4),))
    ]


def test_usage_metadata_with_every_detail_list() -> None:
    """The cache and tool-use details parse too, and a modality named twice is added up."""
    frame = {
        "usageMetadata": {
            "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 9}],
            "toolUsePromptTokensDetails": [{"modality": "TEXT", "tokenCount": 2}],
            "promptTokensDetails": [
                {"modality": "AUDIO", "tokenCount": 3},
                {"modality": "AUDIO", "tokenCount": 4},
            ],
        }
    }
    (usage,) = parse_server_message(json.dumps(frame))
    assert isinstance(usage, UsageMetadata)
    assert usage.cache_tokens_by_modality == (("TEXT", 9),)
    assert usage.tool_use_prompt_tokens_by_modality == (("TEXT", 2),)
    assert usage.prompt_tokens_by_modality == (("AUDIO", 7),)
    assert usage.problems == ()


@pytest.mark.parametrize(
    ("usage", "kept", "problem"),
    [
        ({"totalTokenCount": "12x", "promptTokenCount": 5}, {"prompt_tokens": 5}, "'12x'"),
        ({"totalTokenCount": 1.5, "responseTokenCount": 2}, {"response_tokens": 2}, "1.5"),
        ({"totalTokenCount": -3}, {}, "-3, outside 0..2147483647"),
        ({"totalTokenCount": 2**31}, {}, "2147483648, outside"),
        ({"promptTokensDetails": {}, "totalTokenCount": 4}, {"total_tokens": 4}, "an object"),
        (
            {"promptTokensDetails": [7, {"modality": "TEXT", "tokenCount": 2}]},
            {"prompt_tokens_by_modality": (("TEXT", 2),)},
            r"promptTokensDetails[0] is a number",
        ),
        (
            {"responseTokensDetails": [{"modality": 5, "tokenCount": 1}]},
            {},
            "modality is 5, expected a name",
        ),
        (
            {"promptTokensDetails": [{"modality": f"M{i}", "tokenCount": 1} for i in range(20)]},
            {"prompt_tokens_by_modality": tuple((f"M{i}", 1) for i in range(8))},
            "more than 8 modalities",
        ),
    ],
)
def test_a_malformed_usage_field_is_named_and_costs_nothing_else(
    usage: dict[str, object], kept: dict[str, object], problem: str
) -> None:
    """A bad count in usageMetadata is named in `problems` and counted as absent; the fields that
    are fine are kept, and the turnComplete in the same frame still arrives."""
    frame = {"serverContent": {"turnComplete": True}, "usageMetadata": usage}
    complete, parsed = parse_server_message(json.dumps(frame))
    assert complete == TurnComplete(None)
    assert isinstance(parsed, UsageMetadata)
    assert len(parsed.problems) == 1 and problem in parsed.problems[0]
    assert dataclasses.replace(parsed, problems=()) == UsageMetadata(**kept)  # type: ignore[arg-type]


def test_usage_problems_are_bounded() -> None:
    """Thousands of bad entries name only the first few problems."""
    frame = {"usageMetadata": {"promptTokensDetails": ["x"] * 5000, "totalTokenCount": "?"}}
    (parsed,) = parse_server_message(json.dumps(frame))
    assert isinstance(parsed, UsageMetadata)
    assert len(parsed.problems) == 4
    (not_an_object,) = parse_server_message('{"usageMetadata": [1]}')
    assert not_an_object == UsageMetadata(
        problems=("usageMetadata is an array, expected an object",)
    )


def test_voice_activity() -> None:
    """voiceActivity (newer servers) parses kind and offset in seconds."""
    assert parse_server_message(
        '{"voiceActivity":{"type":"ACTIVITY_START","audioOffset":"1.5s"}}'
    ) == [VoiceActivity("ACTIVITY_START", 1.5)]
    assert parse_server_message('{"voice_activity":{}}') == [VoiceActivity("TYPE_UNSPECIFIED")]


def test_unknown_top_level_keys_are_events() -> None:
    """Unknown message types are reported after the known ones (forward compatibility)."""
    assert parse_server_message('{"futureThing":{"x":1},"goAway":{"timeLeft":"1s"}}') == [
        GoAway(1.0),
        UnknownMessage(("futureThing",)),
    ]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\xff\xfe{", "not JSON"),
        ("{", "not JSON"),
        ("", "not JSON"),
        ("[1]", "an array, expected a JSON object"),
        ('"x"', "a string, expected a JSON object"),
        ("[" * 50_000 + "]" * 50_000, "nested too deeply|not JSON"),
        ("{" + '"a":' * 50_000 + "1" + "}" * 50_000, "nested too deeply|not JSON"),
        ('{"serverContent":[]}', "serverContent is an array, expected an object"),
        ('{"serverContent":{"interrupted":"yes"}}', "serverContent.interrupted is a string"),
        ('{"serverContent":{"modelTurn":{"parts":{}}}}', "parts is an object, expected an array"),
        ('{"serverContent":{"modelTurn":{"parts":[1]}}}', r"parts\[0\] is a number"),
        (
            '{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm","data":"A"}}]}}}',
            "not valid base64",
        ),
        (
            '{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm","data":"A*=="}}]}}}',
            "not valid base64",
        ),
        (
            '{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm","data":"é"}}]}}}',
            "not valid base64",
        ),
        (
            '{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm","data":5}}]}}}',
            "data is a number, expected base64",
        ),
        (
            '{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm","data":"AAAA"}}]}}}',
            "3 bytes, not whole 16-bit samples",
        ),
        ('{"serverContent":{"inputTranscription":{"text":1}}}', "inputTranscription.text"),
        (
            '{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm","data":"AA=A"}}]}}}',
            "not valid base64",
        ),
        (
            '{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm","data":"AA==AAAA"}}]}}}',
            "not valid base64",
        ),
        (
            '{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm","data":"AAAA\\nAAAA"}}]}}}',
            "not valid base64",
        ),
        ('{"goAway":{"timeLeft":"soon"}}', "goAway.timeLeft is 'soon'"),
        ('{"goAway":{"timeLeft":true}}', "goAway.timeLeft is True"),
        ('{"toolCall":{"functionCalls":[{"id":"1"}]}}', r"functionCalls\[0\]\.name is missing"),
        ('{"toolCall":{"functionCalls":[{"name":"f","args":[]}]}}', "args is an array"),
        ('{"toolCall":{"functionCalls":{}}}', "functionCalls is an object"),
        ('{"toolCallCancellation":{"ids":[1]}}', r"ids\[0\] is a number"),
        ('{"toolCallCancellation":{"ids":"a"}}', "ids is a string"),
        ('{"sessionResumptionUpdate":{"resumable":"true"}}', "resumable is a string"),
        ('{"setupComplete":[]}', "setupComplete is an array"),
        ('{"voiceActivity":{"audioOffset":"x"}}', "audioOffset"),
        ('{"usageMetadata":{"totalTokenCount":' + "9" * 5000 + "}}", "not JSON"),
    ],
)
def test_malformed_frames_raise_one_clear_error(frame: str | bytes, message: str) -> None:
    """Each kind of malformed frame raises LiveProtocolError naming the problem and the place."""
    with pytest.raises(LiveProtocolError, match=message) as info:
        parse_server_message(frame)
    assert isinstance(info.value, ValueError)
    assert info.value.__cause__ is None


def test_error_excerpt_is_short() -> None:
    """The error quotes a short excerpt of the frame, never the whole (possibly huge) frame."""
    frame = '{"serverContent":{"interrupted":1},"pad":"' + "x" * 10_000 + '"}'
    with pytest.raises(LiveProtocolError) as info:
        parse_server_message(frame)
    assert len(str(info.value)) < 300
    assert '{"serverContent"' in str(info.value)


def test_wrong_input_type() -> None:
    """A non-frame argument is reported as a protocol error too (the one documented type)."""
    with pytest.raises(LiveProtocolError, match="int, expected str or bytes"):
        parse_server_message(5)  # type: ignore[arg-type]


def test_audio_chunk_repr_is_short() -> None:
    """Logging an AudioChunk does not dump its samples."""
    assert repr(AudioChunk(b"\x00" * 4800, 24000)) == "AudioChunk(pcm=<4800 bytes>, rate_hz=24000)"
