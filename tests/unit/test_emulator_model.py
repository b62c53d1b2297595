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

from pilive.emulator.frames import (
    ActivityStart,
    Audio,
    ProtocolViolation,
    RealtimeInput,
    Setup,
    Video,
    parse_client_frame,
)
from pilive.emulator.media import image_size
from pilive.emulator.model import ConnectionModel, Send
from pilive.emulator.options import EmulatorOptions
from pilive.emulator.recording import ConnectionRecord
from pilive.emulator.sessions import SessionRegistry
from pilive.emulator.vad import EnergyVad
from tests.emulator_rig import jpeg, setup_message, silence, tone


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
