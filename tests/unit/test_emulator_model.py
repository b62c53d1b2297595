"""The emulator's sans-I/O core driven synchronously (no sockets, `now` passed in): client frame
parsing, image sizes, the VAD, and the connection model's pacing and deadlines."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pilive.emulator.faults import Close, FaultScript, Phase
from pilive.emulator.frames import (
    ActivityStart,
    Audio,
    ProtocolViolation,
    RealtimeInput,
    Setup,
    ToolResponse,
    Video,
    parse_client_frame,
)
from pilive.emulator.media import image_size
from pilive.emulator.model import ConnectionModel, Send
from pilive.emulator.options import EmulatorOptions, ToolTrigger
from pilive.emulator.recording import ConnectionRecord
from pilive.emulator.sessions import SessionRegistry
from pilive.emulator.vad import EnergyVad
from tests.support.emulator_rig import jpeg, setup_message, silence, tone


def test_setup_fields_are_read_in_either_spelling_at_every_level() -> None:
    """The SDK's mix (snake_case inside camelCase) parses the same as canonical camelCase."""
    sdk_style = {
        "setup": {
            "model": "models/m",
            "generationConfig": {"response_modalities": ["AUDIO"]},
            "realtimeInputConfig": {
                "automatic_activity_detection": {"disabled": True, "silence_duration_ms": "300"},
                "activity_handling": "NO_INTERRUPTION",
            },
            "session_resumption": {"handle": "h-1"},
            "contextWindowCompression": {"trigger_tokens": "25600", "sliding_window": {}},
            "tools": [{"function_declarations": [{"name": "f", "parameters": {}}]}],
        }
    }
    setup = parse_client_frame(json.dumps(sdk_style))
    assert isinstance(setup, Setup)
    assert not setup.automatic_activity_detection
    assert setup.silence_duration_ms == 300
    assert setup.activity_handling == "NO_INTERRUPTION"
    assert setup.resume_handle == "h-1" and setup.context_window_compression
    assert [f.name for f in setup.functions] == ["f"]


@pytest.mark.parametrize(("urlsafe", "pad"), [(False, True), (True, True), (True, False)])
def test_base64_in_both_alphabets_with_or_without_padding(urlsafe: bool, pad: bool) -> None:
    """Bytes that need '-'/'_' in the URL-safe alphabet decode the same either way."""
    raw = bytes([0xFF, 0xFE, 0xFD, 0x00, 0xFB])
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    text = text if pad else text.rstrip("=")
    frame = {"realtime_input": {"media_chunks": [{"mime_type": "audio/pcm", "data": text}]}}
    message = parse_client_frame(json.dumps(frame).encode())
    assert message == RealtimeInput((Audio(raw, 16000),))


def test_several_realtime_fields_in_one_message_act_in_order() -> None:
    """activityStart first, then media: a legal proto message the SDK never sends."""
    frame = {
        "realtimeInput": {"video": {"mimeType": "image/jpeg", "data": ""}, "activityStart": {}}
    }
    message = parse_client_frame(json.dumps(frame))
    assert message == RealtimeInput((ActivityStart(), Video(b"", "image/jpeg")))


@pytest.mark.parametrize(
    ("frame", "detail"),
    [
        ('{"realtimeInput": {"audio": {"mimeType": "audio/pcm", "data": "@@"}}}', "base64"),
        ('{"realtimeInput": {"audio": {"mimeType": "audio/opus", "data": ""}}}', "audio/opus"),
        ('{"realtimeInput": {"bogus": 1}}', '"bogus"'),
        ('{"setup": {"model": "m", "generationConfig": {"responseModalities": ["A"]}}}', "AUDIO"),
        ('{"toolResponse": {"functionResponses": [{"name": "f"}]}}', ".id"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_bad_frames_raise_1007_naming_what_was_wrong(frame: str, detail: str) -> None:
    """Each rejection is a ProtocolViolation with the service's 1007 and a precise detail."""
    with pytest.raises(ProtocolViolation) as info:
        parse_client_frame(frame)
    assert info.value.code == 1007
    assert detail in info.value.detail


_KEYS = [
    "setup", "realtimeInput", "audio", "video", "data", "mimeType", "model", "turns", "parts",
    "toolResponse", "functionResponses", "id", "clientContent", "text", "x", "generationConfig",
    "responseModalities", "tools", "functionDeclarations", "name", "mediaChunks", "activityStart",
    "activityEnd", "realtimeInputConfig", "sessionResumption", "handle", "turnComplete",
    "automaticActivityDetection", "silenceDurationMs", "response", "audioStreamEnd", "inlineData",
]  # fmt: skip
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3)
    ),
    max_leaves=12,
)
FRAMES = st.one_of(st.binary(max_size=200), _JSON.map(json.dumps))


@given(FRAMES)
def test_arbitrary_input_only_ever_raises_protocol_violation(data: bytes | str) -> None:
    """Whatever arrives, the parser returns a message or raises its one documented error."""
    try:
        parse_client_frame(data)
    except ProtocolViolation as exc:
        assert exc.code == 1007


@given(st.lists(FRAMES, min_size=1, max_size=4), st.booleans())
def test_the_model_survives_arbitrary_frames_after_setup(
    frames: list[str | bytes], ptt: bool
) -> None:
    """After a valid setup, any sequence of frames leaves the model either working or closing
    with 1007/1008; nothing else escapes."""
    model, _ = _model()
    model.receive_data(json.dumps(setup_message(push_to_talk=ptt)), 100.0)
    for i, frame in enumerate(frames):
        model.receive_data(frame, 100.0 + i)
        model.tick(100.5 + i)
    if model.close_to_send is not None:
        assert model.close_to_send[0] in {1007, 1008}


def _png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = (
        struct.pack(">I", len(ihdr))
        + b"IHDR"
        + ihdr
        + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    )
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_image_sizes_come_from_headers_without_decoding() -> None:
    """JPEG SOF and PNG IHDR give the size; anything else is None, never an exception."""
    assert image_size(jpeg(768, 432)) == (768, 432)
    assert image_size(_png(640, 480)) == (640, 480)
    assert image_size(b"\xff\xd8\xff") is None
    assert image_size(b"not an image") is None


def test_vad_dates_speech_back_and_ends_after_the_silence() -> None:
    """Speech is found where it starts, and ends silence_ms after it stops, on audio time."""
    vad = EnergyVad(16000, -45.0, prefix_padding_ms=60, silence_ms=200)
    events = vad.process(silence(0.5) + tone(0.4) + silence(0.3))
    assert [(e.kind, e.offset_bytes) for e in events] == [
        ("start", len(silence(0.5))),
        ("end", len(silence(0.5) + tone(0.4) + silence(0.2))),
    ]


def _model(**overrides: Any) -> tuple[ConnectionModel, ConnectionRecord]:
    options = EmulatorOptions(**overrides)
    record = ConnectionRecord("c1", "/ws", "v1beta", False, {})
    registry = SessionRegistry(options.scaled(options.handle_lifetime_s))
    return ConnectionModel(options, registry, record, now=100.0), record


def _sent(model: ConnectionModel) -> list[dict[str, Any]]:
    return [o.message for o in model.data_to_send() if isinstance(o, Send)]


def test_reply_is_paced_faster_than_real_time_by_the_clock_it_is_given() -> None:
    """No audio before reply_delay; then 40 ms chunks every 10 ms at 4x speed-up."""
    model, _ = _model(reply_delay_s=0.3)
    model.receive_data(json.dumps(setup_message(transcription=False, resumption=False)), 100.0)
    assert _sent(model) == [{"setupComplete": {}}]
    for frame in ({"realtimeInput": {"activityStart": {}}}, {"realtimeInput": {"activityEnd": {}}}):
        model.receive_data(json.dumps(frame), 100.0)
    assert _sent(model) == []
    assert model.next_deadline() == pytest.approx(100.3)
    model.tick(100.3)
    assert len(_sent(model)) == 1
    model.tick(100.3 + 0.0101)
    assert len(_sent(model)) == 1
    model.tick(100.3 + 0.0301)  # 150 ms of tone is four chunks: the last two now
    assert [next(iter(m["serverContent"])) for m in _sent(model)] == [
        "modelTurn",
        "modelTurn",
        "generationComplete",
        "turnComplete",
    ]


def test_connection_lifetime_and_go_away_follow_the_given_clock() -> None:
    """goAway 50 s before the 600 s lifetime, with timeLeft '50s'; then 1011 deadline."""
    model, record = _model()
    model.receive_data(json.dumps(setup_message(resumption=False)), 100.0)
    model.data_to_send()
    assert model.next_deadline() == pytest.approx(650.0)
    model.tick(650.0)
    assert _sent(model) == [{"goAway": {"timeLeft": "50s"}}]
    model.tick(699.9)
    assert model.close_to_send is None
    model.tick(700.0)
    assert model.close_to_send == (1011, "Deadline expired before operation could complete.")
    model.connection_closed(1011, "x", "server")
    assert record.close_code == 1011


# --- models as they are: what each accepts in setup ------------------------------------------

MODEL_09 = "gemini-2.5-flash-native-audio-preview-09-2025"
LIVE_3_8 = "gemini-3.8-live"
LIVE_3_1 = "gemini-3.1-flash-live-preview"
NATIVE_12 = "gemini-2.5-flash-native-audio-preview-12-2025"
START = json.dumps({"realtimeInput": {"activityStart": {}}})
END = json.dumps({"realtimeInput": {"activityEnd": {}}})


def _audio(pcm: bytes) -> str:
    data = base64.b64encode(pcm).decode()
    return json.dumps(
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": data}}}
    )


def _video(width: int = 64, height: int = 48) -> str:
    data = base64.b64encode(jpeg(width, height)).decode()
    return json.dumps({"realtimeInput": {"video": {"mimeType": "image/jpeg", "data": data}}})


def _setup(model: str = MODEL_09, **changes: Any) -> str:
    """A push-to-talk setup for `model`; `changes` are merged into the setup (a None drops it)."""
    message = setup_message(model=model, **changes.pop("rig", {}))
    setup = message["setup"]
    for key, value in changes.items():
        if key == "generationConfig":
            setup[key].update(value)
        elif value is None:
            setup.pop(key, None)
        else:
            setup[key] = value
    return json.dumps(message)


def _connect(setup: str, api_version: str = "v1beta", **overrides: Any) -> ConnectionModel:
    model, record = _model(**overrides)
    record.api_version = api_version
    model.receive_data(setup, 100.0)
    return model


def _advance(model: ConnectionModel, until: float) -> list[dict[str, Any]]:
    """Tick through every deadline up to `until`; the messages sent meanwhile."""
    sent = _sent(model)
    while (due := model.next_deadline()) is not None and due <= until:
        model.tick(due)
        sent += _sent(model)
    model.tick(until)
    return sent + _sent(model)


def _press(model: ConnectionModel, now: float, pcm: bytes, *before: str) -> None:
    """One push-to-talk turn; `before` frames go just before activityStart."""
    for frame in (*before, START, _audio(pcm), END):
        model.receive_data(frame, now)


def _said(messages: list[dict[str, Any]]) -> list[str]:
    out = [
        m["serverContent"]["outputTranscription"]["text"]
        for m in messages
        if "outputTranscription" in m.get("serverContent", {})
    ]
    return out


def _content_keys(messages: list[dict[str, Any]]) -> list[str]:
    return [k for m in messages for k in m.get("serverContent", {})]


@pytest.mark.parametrize(
    "name", ["gemini-2.0-flash-live-001", "gemini-live-2.5-flash-preview", "gemini-nope"]
)
def test_retired_and_unknown_models_get_the_services_1008_cut_to_123_bytes(name: str) -> None:
    """Retired models are in the default list only so that they are refused like the service."""
    model = _connect(_setup(name))
    assert model.close_to_send is not None
    code, reason = model.close_to_send
    assert code == 1008 and len(reason.encode()) == 123
    assert reason.startswith(f"models/{name} is not found for API version v1beta, or is not")


def test_a_served_name_outside_the_table_follows_the_2_5_rules() -> None:
    model = _connect(_setup("gemini-live-test"), models=("gemini-live-test",))
    assert _sent(model)[0] == {"setupComplete": {}}
    assert model.profile is not None and model.profile.thinking == "budget"


@pytest.mark.parametrize(
    ("name", "thinking", "accepted"),
    [
        (MODEL_09, {"thinkingBudget": 0}, True),
        (MODEL_09, {"thinkingLevel": "LOW"}, False),
        (LIVE_3_1, {"thinkingLevel": "minimal"}, True),
        (LIVE_3_1, {"thinkingBudget": 1024}, False),
        (LIVE_3_1, {"thinkingLevel": "XHIGH"}, False),
        ("gemini-3.8-live-extended-thinking", {"thinkingLevel": "HIGH"}, True),
        ("gemini-3.8-live-extended-thinking", {"thinkingLevel": "MINIMAL"}, False),
        (LIVE_3_8, {"thinkingLevel": "LOW"}, False),
        (LIVE_3_8, {}, False),
    ],
)
def test_thinking_config_fits_the_model_or_is_an_invalid_argument(
    name: str, thinking: dict[str, Any], accepted: bool
) -> None:
    """thinkingBudget on budget models, thinkingLevel (of the model's levels) on level models,
    no thinkingConfig at all on gemini-3.8-live; anything else closes 1007."""
    model = _connect(_setup(name, generationConfig={"thinkingConfig": thinking}))
    if accepted:
        assert model.close_to_send is None and model.setup is not None
    else:
        assert model.close_to_send == (1007, "Request contains an invalid argument.")
        assert model.violation is not None and name in model.violation.detail


@pytest.mark.parametrize(
    ("name", "behavior", "accepted"),
    [
        (LIVE_3_1, "BLOCKING", True),
        (LIVE_3_1, "NON_BLOCKING", False),
        (LIVE_3_8, "NON_BLOCKING", True),
        (MODEL_09, "NON_BLOCKING", True),
        (MODEL_09, "SOMETIMES", False),
    ],
)
def test_function_behavior_must_be_one_the_model_takes(
    name: str, behavior: str, accepted: bool
) -> None:
    """3.1 calls functions synchronously only: a NON_BLOCKING declaration is refused at setup."""
    functions = [{"name": "f", "behavior": behavior}]
    model = _connect(_setup(name, rig={"functions": functions}))
    assert (model.close_to_send is None) == accepted
    if not accepted:
        assert model.close_to_send == (1007, "Request contains an invalid argument.")


@pytest.mark.parametrize(
    ("name", "api_version", "field", "outcome"),
    [
        (LIVE_3_1, "v1alpha", {"generationConfig": {"enableAffectiveDialog": True}}, "withheld"),
        (LIVE_3_1, "v1alpha", {"proactivity": {"proactiveAudio": True}}, "withheld"),
        (LIVE_3_1, "v1beta", {"proactivity": {"proactiveAudio": False}}, "accepted"),
        (LIVE_3_8, "v1beta", {"generationConfig": {"enableAffectiveDialog": False}}, "1007"),
        (LIVE_3_8, "v1beta", {"proactivity": {"proactive_audio": False}}, "1007"),
        (LIVE_3_8, "v1beta", {"proactivity": {"proactiveAudio": True}}, "accepted"),
        (NATIVE_12, "v1beta", {"generationConfig": {"enableAffectiveDialog": True}}, "1007"),
        (NATIVE_12, "v1beta", {"proactivity": {"proactiveAudio": True}}, "1007"),
        (NATIVE_12, "v1alpha", {"generationConfig": {"enableAffectiveDialog": True}}, "accepted"),
        (NATIVE_12, "v1alpha", {"proactivity": {"proactiveAudio": True}}, "accepted"),
    ],
)
def test_affective_dialog_and_proactivity_per_model_and_api_version(
    name: str, api_version: str, field: dict[str, Any], outcome: str
) -> None:
    """Unsupported (3.1): no setupComplete, ever, and nothing after it is answered; removed or
    always-on (3.8) and v1alpha-only features elsewhere: 1007."""
    model = _connect(_setup(name, **field), api_version)
    if outcome == "withheld":
        assert model.withheld is not None and model.close_to_send is None
        _press(model, 101.0, tone(0.2))
        model.receive_data("not even JSON", 101.0)
        assert _advance(model, 200.0) == [] and model.close_to_send is None
        assert model.session is None
    elif outcome == "1007":
        assert model.close_to_send == (1007, "Request contains an invalid argument.")
    else:
        assert _sent(model)[0] == {"setupComplete": {}}


def test_response_modality_the_model_lacks_is_an_invalid_argument() -> None:
    """gemini-3.8-live answers in audio only."""
    model = _connect(_setup(LIVE_3_8, rig={"modalities": ("TEXT",)}))
    assert model.close_to_send == (1007, "Request contains an invalid argument.")
    assert _sent(_connect(_setup(MODEL_09, rig={"modalities": ("TEXT",)})))[0] == {
        "setupComplete": {}
    }


def _client_text(text: str) -> str:
    turn = {"role": "user", "parts": [{"text": text}]}
    return json.dumps({"clientContent": {"turns": [turn], "turnComplete": True}})


@pytest.mark.parametrize(("name", "refused"), [(LIVE_3_1, True), (LIVE_3_8, False)])
def test_client_content_after_the_first_model_turn(name: str, refused: bool) -> None:
    """3.1 takes clientContent as opening history only; once the model has answered, 1007."""
    model = _connect(_setup(name))
    model.receive_data(_client_text("You are in the kitchen."), 100.0)
    _advance(model, 110.0)
    assert model.close_to_send is None and model.completed_turns == 1
    model.receive_data(_client_text("And now?"), 110.0)
    if refused:
        assert model.close_to_send == (1007, "Request contains an invalid argument.")
    else:
        assert model.close_to_send is None


@pytest.mark.parametrize(
    ("name", "coverage", "frames", "seconds"),
    [
        (MODEL_09, None, "", 0.2),  # default TURN_INCLUDES_ONLY_ACTIVITY
        (LIVE_3_8, None, ", 1 frame 64x48", 0.2),  # default ..._AUDIO_ACTIVITY_AND_ALL_VIDEO
        (MODEL_09, "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO", ", 1 frame 64x48", 0.2),
        (LIVE_3_8, "TURN_INCLUDES_ONLY_ACTIVITY", "", 0.2),
        (MODEL_09, "TURN_INCLUDES_ALL_INPUT", ", 1 frame 64x48", 0.5),
    ],
)
def test_turn_coverage_decides_what_input_between_activities_joins_the_next_turn(
    name: str, coverage: str | None, frames: str, seconds: float
) -> None:
    """A frame and 0.3 s of audio sent before activityStart: only-activity drops both, all-video
    keeps the frame, all-input keeps both; unset means the model's default."""
    ric: dict[str, Any] = {"automaticActivityDetection": {"disabled": True}}
    if coverage is not None:
        ric["turnCoverage"] = coverage
    model = _connect(_setup(name, realtimeInputConfig=ric))
    _press(model, 100.0, tone(0.2), _video(), _audio(tone(0.3)))
    said = _said(_advance(model, 110.0))
    assert said == [f"turn 1: heard {seconds:.1f} s of audio{frames}"]


# --- function calls that do not block ---------------------------------------------------------


def _tool_model(name: str = LIVE_3_8, **overrides: Any) -> ConnectionModel:
    overrides.setdefault("tool_trigger", ToolTrigger(every_n_turns=1))
    return _connect(_setup(name, rig={"functions": [{"name": "lookup"}]}), **overrides)


def _respond(model: ConnectionModel, now: float, call_id: str, **extra: Any) -> None:
    item = {"id": call_id, "name": "lookup", "response": {"answer": 42}, **extra}
    model.receive_data(json.dumps({"toolResponse": {"functionResponses": [item]}}), now)


def test_non_blocking_call_the_model_answers_while_the_function_runs() -> None:
    """On 3.8 an undeclared behavior is NON_BLOCKING: the toolCall goes out and the answer
    follows without waiting; handles stay unresumable while the call runs."""
    model = _tool_model()
    _sent(model)
    _press(model, 100.0, tone(0.2))
    sent = _advance(model, 105.0)
    assert any("toolCall" in m for m in sent)
    assert _said(sent) == ["turn 1: heard 0.2 s of audio"]
    assert "turnComplete" in _content_keys(sent)
    updates = [m["sessionResumptionUpdate"] for m in sent if "sessionResumptionUpdate" in m]
    assert updates and all(u == {"newHandle": "", "resumable": False} for u in updates)


@pytest.mark.parametrize("scheduling", ["WHEN_IDLE", None])
def test_when_idle_result_is_spoken_after_the_current_reply(scheduling: str | None) -> None:
    """A result arriving mid-reply waits for its end, then has a model turn of its own; the
    handle after it is resumable again. Unset scheduling behaves as WHEN_IDLE (inferred)."""
    model = _tool_model()
    _sent(model)
    _press(model, 100.0, tone(0.2))
    first = _advance(model, 100.32)  # the answer has begun
    call_id = next(m for m in first if "toolCall" in m)["toolCall"]["functionCalls"][0]["id"]
    assert "modelTurn" in _content_keys(first) and "turnComplete" not in _content_keys(first)
    extra = {} if scheduling is None else {"scheduling": scheduling}
    _respond(model, 100.32, call_id, **extra)
    rest = _advance(model, 105.0)
    assert _said(rest) == ['turn 1: the tool said: {"answer": 42}']
    keys = _content_keys(rest)
    assert keys.count("turnComplete") == 2 and "interrupted" not in keys
    assert rest[-1]["sessionResumptionUpdate"]["resumable"] is True


def test_interrupt_result_cuts_the_reply_short_and_is_spoken_at_once() -> None:
    model = _tool_model()
    _sent(model)
    _press(model, 100.0, tone(0.5))
    first = _advance(model, 100.32)
    call_id = next(m for m in first if "toolCall" in m)["toolCall"]["functionCalls"][0]["id"]
    model.receive_data(
        json.dumps(
            {
                "toolResponse": {
                    "functionResponses": [
                        {
                            "id": call_id,
                            "name": "lookup",
                            "response": {"answer": 42},
                            "scheduling": "INTERRUPT",
                        }
                    ]
                }
            }
        ),
        100.32,
    )
    rest = _advance(model, 105.0)
    keys = _content_keys(rest)
    assert keys[:2] == ["interrupted", "turnComplete"]
    assert "toolCallCancellation" not in str(rest)
    assert _said(rest) == ['turn 1: the tool said: {"answer": 42}']
    assert model.session is not None and model.session.turns[0].interrupted


def test_silent_result_is_taken_in_without_a_word() -> None:
    """SILENT after the answer: nothing spoken, a resumable handle now that nothing runs;
    willContinue keeps the call open for more results."""
    model = _tool_model()
    _sent(model)
    _press(model, 100.0, tone(0.2))
    first = _advance(model, 105.0)
    call_id = next(m for m in first if "toolCall" in m)["toolCall"]["functionCalls"][0]["id"]
    _respond(model, 105.0, call_id, scheduling="SILENT", willContinue=True)
    assert _advance(model, 106.0) == []
    _respond(model, 106.0, call_id, scheduling="SILENT")
    after = _advance(model, 110.0)
    assert [list(m) for m in after] == [["sessionResumptionUpdate"]]
    assert after[0]["sessionResumptionUpdate"]["resumable"] is True
    assert model.session is not None
    assert [r.get("willContinue", False) for r in model.session.turns[0].tool_responses] == [
        True,
        False,
    ]


def test_blocking_calls_still_wait_for_the_response() -> None:
    """On 3.1 (synchronous tools) nothing is said until the toolResponse arrives."""
    model = _tool_model(LIVE_3_1)
    _sent(model)
    _press(model, 100.0, tone(0.2))
    waiting = _advance(model, 105.0)
    assert "modelTurn" not in _content_keys(waiting)
    call_id = next(m for m in waiting if "toolCall" in m)["toolCall"]["functionCalls"][0]["id"]
    _respond(model, 105.0, call_id)
    assert _said(_advance(model, 110.0)) == [
        'turn 1: heard 0.2 s of audio; the tool said: {"answer": 42}'
    ]


def test_tool_response_scheduling_and_will_continue_are_parsed() -> None:
    item = {
        "id": "a",
        "name": "f",
        "response": {},
        "scheduling": "when_idle",
        "will_continue": True,
    }
    message = parse_client_frame(json.dumps({"tool_response": {"function_responses": [item]}}))
    assert isinstance(message, ToolResponse)
    assert (message.responses[0].scheduling, message.responses[0].will_continue) == (
        "WHEN_IDLE",
        True,
    )
    item["scheduling"] = "LATER"
    with pytest.raises(ProtocolViolation):
        parse_client_frame(json.dumps({"toolResponse": {"functionResponses": [item]}}))


# --- scripted faults the model carries out ---------------------------------------------------


def _answered(name: str = MODEL_09, **overrides: Any) -> ConnectionModel:
    model = _connect(_setup(name), **overrides)
    _sent(model)
    return model


def test_go_away_then_silence_until_the_deadline() -> None:
    """After the goAway nothing is sent: a user turn's reply, its turnComplete and the handle
    are swallowed; the deadline close still comes."""
    model = _answered()
    model.send_go_away(5.0, 100.0, then_silent=True)
    model.tick(100.0)
    assert _sent(model) == [{"goAway": {"timeLeft": "5s"}}]
    _press(model, 101.0, tone(0.2))
    assert _advance(model, 104.9) == []
    assert model.completed_turns == 1  # taken in, not answered
    _advance(model, 105.0)
    assert model.close_to_send == (1011, "Deadline expired before operation could complete.")


@pytest.mark.parametrize("end_reply", [False, True])
def test_scripted_interrupted_mid_reply(end_reply: bool) -> None:
    """`interrupted` with nothing interrupting: the reply carries on to generationComplete, or
    (end_reply) stops and its turn ends with turnComplete only."""
    model = _answered()
    _press(model, 100.0, tone(0.5))
    _advance(model, 100.32)
    model.send_interrupted(100.32, end_reply)
    keys = _content_keys(_advance(model, 105.0))
    assert keys[0] == "interrupted"
    assert ("generationComplete" in keys) is not end_reply
    assert keys.count("turnComplete") == 1
    assert model.session is not None and model.session.turns[0].interrupted is end_reply


def test_scripted_interrupted_while_idle_is_just_the_message() -> None:
    model = _answered()
    model.send_interrupted(100.0, end_reply=True)
    assert _sent(model) == [{"serverContent": {"interrupted": True}}]


@pytest.mark.parametrize(
    ("reason", "waiting", "content"),
    [
        ("RESPONSE_REJECTED", False, {"turnCompleteReason": "RESPONSE_REJECTED"}),
        (None, True, {"waitingForInput": True}),
    ],
)
def test_empty_reply_is_a_bare_turn_complete_then_a_handle(
    reason: str | None, waiting: bool, content: dict[str, Any]
) -> None:
    model = _answered()
    model.empty_next_reply(reason, waiting)
    _press(model, 100.0, tone(0.2))
    sent = [
        m for m in _advance(model, 105.0) if "inputTranscription" not in m.get("serverContent", {})
    ]
    assert sent[0] == {"serverContent": {"turnComplete": True, **content}}
    assert sent[1]["sessionResumptionUpdate"]["resumable"] is True
    assert len(sent) == 2
    assert model.session is not None and model.session.turns[0].empty_reply
    _press(model, 105.0, tone(0.2))
    assert _said(_advance(model, 110.0)) == ["turn 2: heard 0.2 s of audio"]  # only once


def test_interaction_status_on_model_content_and_turn_complete() -> None:
    model = _answered(interaction_status=True)
    _press(model, 100.0, tone(0.2))
    sent = _advance(model, 105.0)
    statuses = {
        next(k for k in m["serverContent"] if k != "interactionStatus"): m["serverContent"].get(
            "interactionStatus"
        )
        for m in sent
        if "serverContent" in m
    }
    assert statuses["modelTurn"] == "IN_PROGRESS"
    assert statuses["turnComplete"] == "IDLE"
    assert statuses["generationComplete"] is None


def test_reply_audio_in_bursts() -> None:
    """reply_burst_chunks=3: three chunks at once, then a pause as long as they play."""
    model = _answered(reply_burst_chunks=3, reply_delay_s=0.3)
    _press(model, 100.0, tone(0.2))  # 350 ms of reply: 9 chunks of 40 ms, 10 ms apart at 4x
    times: list[float] = []
    while (due := model.next_deadline()) is not None and due < 101.0:
        model.tick(due)
        times += [due] * sum("modelTurn" in m.get("serverContent", {}) for m in _sent(model))
    assert times == pytest.approx([100.3] * 3 + [100.33] * 3 + [100.36] * 3)


def test_reply_slower_than_real_time() -> None:
    """reply_speedup=0.5: 350 ms of answer audio takes 700 ms to arrive."""
    model = _answered(reply_speedup=0.5, reply_delay_s=0.0)
    _press(model, 100.0, tone(0.2))
    assert "turnComplete" not in _content_keys(_advance(model, 100.55))
    assert "turnComplete" in _content_keys(_advance(model, 100.7))


@pytest.mark.parametrize(
    "bad",
    [
        {"reply_speedup": 0.0},
        {"reply_speedup": float("nan")},
        {"reply_burst_chunks": 0},
        {"handle_rejection": (1006, "no")},
        {"handle_rejection": (1008, "x" * 124)},
    ],
)
def test_pacing_and_rejection_options_are_validated(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EmulatorOptions(**bad)


def _resumable(registry: SessionRegistry, options: EmulatorOptions) -> str:
    model = ConnectionModel(
        options, registry, ConnectionRecord("c1", "/ws", "v1beta", False, {}), 100.0
    )
    model.receive_data(_setup(), 100.0)
    handle: str = _sent(model)[1]["sessionResumptionUpdate"]["newHandle"]
    model.connection_closed(1000, "", "client")
    return handle


@pytest.mark.parametrize(
    "rejection",
    [(1008, "Session expired. Please start a new session."), (1011, "Internal error encountered.")],
)
def test_a_stale_handle_is_refused_the_way_the_options_say(rejection: tuple[int, str]) -> None:
    options = EmulatorOptions(handle_rejection=rejection)
    registry = SessionRegistry(options.scaled(options.handle_lifetime_s))
    _resumable(registry, options)
    registry.expire_handles()
    model = ConnectionModel(
        options, registry, ConnectionRecord("c2", "/ws", "v1beta", False, {}), 101.0
    )
    model.receive_data(_setup(rig={"handle": "h-anything"}), 101.0)
    assert model.close_to_send == rejection


def test_a_resume_refused_by_the_fault_script_is_undone() -> None:
    """A SETUP-phase close after the model accepted a resume: no resume is counted and the turns
    the handle rolled back are put back."""
    options = EmulatorOptions()
    registry = SessionRegistry(options.scaled(options.handle_lifetime_s))
    first = ConnectionModel(
        options, registry, ConnectionRecord("c1", "/ws", "v1beta", False, {}), 100.0
    )
    first.receive_data(_setup(), 100.0)
    handle = _sent(first)[1]["sessionResumptionUpdate"]["newHandle"]
    _press(first, 100.0, tone(0.2))
    _advance(first, 105.0)
    first.connection_closed(1006, "", "client")
    second = ConnectionModel(
        options, registry, ConnectionRecord("c2", "/ws", "v1beta", False, {}), 106.0
    )
    second.receive_data(_setup(rig={"handle": handle}), 106.0)
    session = second.session
    assert session is not None and session.turn_count == 0 and session.resumes == 1
    second.connection_closed(1011, "Internal error encountered.", "server")
    second.setup_refused()
    assert (session.turn_count, session.resumes, session.rolled_back) == (1, 0, [])
    assert not second.record.resumed


def test_fault_rules_can_match_resuming_setups_only() -> None:
    script = FaultScript()
    script.on(Phase.SETUP, Close(1011, "Internal error encountered."), resuming=True)
    where: dict[str, Any] = {"connection_number": 1, "connection_id": "c1", "session_id": None}
    where["turn"] = 0
    assert script.take(Phase.SETUP, **where, resuming=False) is None
    assert script.take(Phase.SETUP, **where, resuming=None) is None
    assert script.take(Phase.SETUP, **where, resuming=True) == Close(
        1011, "Internal error encountered."
    )


def test_a_replayed_turn_gets_a_fresh_call_id_and_the_lost_calls_response_is_refused() -> None:
    """A resume rolls back a turn whose call was lost with its connection; the replayed turn's
    call has a new id, and a late response to the old id is one the session does not know."""
    options = EmulatorOptions(tool_trigger=ToolTrigger(every_n_turns=1))
    registry = SessionRegistry(options.scaled(options.handle_lifetime_s))
    setup = _setup(rig={"functions": [{"name": "lookup"}]})
    first = ConnectionModel(
        options, registry, ConnectionRecord("c1", "/ws", "v1beta", False, {}), 100.0
    )
    first.receive_data(setup, 100.0)
    handle = _sent(first)[1]["sessionResumptionUpdate"]["newHandle"]
    _press(first, 100.0, tone(0.2))
    lost = next(m for m in _sent(first) if "toolCall" in m)["toolCall"]["functionCalls"][0]["id"]
    first.connection_closed(1006, "", "client")
    resume = _setup(rig={"functions": [{"name": "lookup"}], "handle": handle})
    second = ConnectionModel(
        options, registry, ConnectionRecord("c2", "/ws", "v1beta", False, {}), 101.0
    )
    second.receive_data(resume, 101.0)
    _press(second, 101.0, tone(0.2))
    calls = [m["toolCall"]["functionCalls"][0]["id"] for m in _sent(second) if "toolCall" in m]
    assert (lost, calls) == ("fc-s1-1", ["fc-s1-1-2"])
    _respond(second, 101.5, lost)
    assert second.close_to_send == (1007, "Request contains an invalid argument.")
