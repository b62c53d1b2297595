"""Client frames after setup: realtimeInput (the audio hot path), clientContent, toolResponse."""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pilive.live.wire_rules import (
    INPUT_AUDIO_RATE_HZ,
    SCHEDULINGS,
    _check_choice,
    _dumps,
    _plain_json,
)

_B2A = binascii.b2a_base64
_AUDIO_SUFFIX = '"}}}'
_AUDIO_PREFIXES: dict[int, str] = {}


def _audio_prefix(rate_hz: int) -> str:
    prefix = _AUDIO_PREFIXES.get(rate_hz)
    if prefix is None:
        if isinstance(rate_hz, bool) or not isinstance(rate_hz, int) or not 1 <= rate_hz <= 192000:
            raise ValueError(f"build_audio: rate_hz {rate_hz!r} is not a sample rate (1..192000)")
        prefix = (
            '{"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=' + str(rate_hz) + '","data":"'
        )
        _AUDIO_PREFIXES[rate_hz] = prefix
    return prefix


_AUDIO_PREFIX_16K = _audio_prefix(INPUT_AUDIO_RATE_HZ)


def build_audio(pcm: bytes | bytearray | memoryview, rate_hz: int = INPUT_AUDIO_RATE_HZ) -> str:
    """`realtimeInput.audio`: 16-bit little-endian mono PCM; base64 needs no JSON escaping."""
    size_bytes = len(pcm) if not isinstance(pcm, memoryview) else pcm.nbytes
    if size_bytes == 0 or size_bytes & 1:
        raise ValueError(
            f"build_audio: {size_bytes} bytes is not a non-empty whole number of 16-bit samples"
        )
    prefix = _AUDIO_PREFIX_16K if rate_hz == INPUT_AUDIO_RATE_HZ else _audio_prefix(rate_hz)
    return prefix + _B2A(pcm, newline=False).decode("ascii") + _AUDIO_SUFFIX


_MIME_TYPE = re.compile(r"[a-z]+/[a-z0-9.+\-]+(;[a-z0-9_\-]+=[A-Za-z0-9_.\-]+)*")


def build_video(jpeg: bytes | bytearray | memoryview, mime_type: str = "image/jpeg") -> str:
    """`realtimeInput.video`: one encoded still frame (the API samples video at 1 frame/s)."""
    if not isinstance(mime_type, str) or not _MIME_TYPE.fullmatch(mime_type):
        raise ValueError(f"build_video: {mime_type!r} is not a mime type")
    if len(jpeg) == 0:
        raise ValueError("build_video: empty image")
    return (
        '{"realtimeInput":{"video":{"mimeType":"'
        + mime_type
        + '","data":"'
        + _B2A(jpeg, newline=False).decode("ascii")
        + '"}}}'
    )


def build_text(text: str) -> str:
    """`realtimeInput.text`: typed text streamed like speech (no turn boundary of its own)."""
    if not isinstance(text, str):
        raise ValueError(f"build_text: {type(text).__name__} is not text")
    return _dumps({"realtimeInput": {"text": text}})


_ACTIVITY_START = '{"realtimeInput":{"activityStart":{}}}'
_ACTIVITY_END = '{"realtimeInput":{"activityEnd":{}}}'
_AUDIO_STREAM_END = '{"realtimeInput":{"audioStreamEnd":true}}'


def build_activity_start() -> str:
    """`realtimeInput.activityStart`: the button went down (push-to-talk only)."""
    return _ACTIVITY_START


def build_activity_end() -> str:
    """`realtimeInput.activityEnd`: the button came up; the model may answer."""
    return _ACTIVITY_END


def build_audio_stream_end() -> str:
    """`realtimeInput.audioStreamEnd`: the mic was turned off (hands-free mode only)."""
    return _AUDIO_STREAM_END


@dataclass(frozen=True, slots=True)
class ContentTurn:
    """One `clientContent.turns[]` entry with a single text part."""

    role: str
    text: str

    def __post_init__(self) -> None:
        if self.role not in ("user", "model"):
            raise ValueError(f"ContentTurn.role: {self.role!r} is not 'user' or 'model'")
        if not isinstance(self.text, str):
            raise ValueError(f"ContentTurn.text: {type(self.text).__name__} is not text")


def build_client_content(turns: Sequence[ContentTurn], *, turn_complete: bool = True) -> str:
    """`clientContent`: append turns to the history; interrupts any generation in progress."""
    body: dict[str, object] = {
        "turns": [{"role": t.role, "parts": [{"text": t.text}]} for t in turns],
        "turnComplete": bool(turn_complete),
    }
    return _dumps({"clientContent": body})


@dataclass(frozen=True, slots=True)
class FunctionResponse:
    """One `toolResponse.functionResponses[]` entry answering the call with the same `id`.

    `response` is the function's JSON result (by convention `{"result": ...}` or
    `{"error": ...}`); `scheduling` and `will_continue` apply to NON_BLOCKING functions.
    """

    id: str
    name: str
    response: Mapping[str, object]
    scheduling: str | None = None
    will_continue: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"FunctionResponse.id: {self.id!r} must be the call's non-empty id")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"FunctionResponse.name: {self.name!r} must be the function's name")
        _check_choice("FunctionResponse", "scheduling", self.scheduling, SCHEDULINGS)


def build_tool_response(responses: Sequence[FunctionResponse]) -> str:
    """`toolResponse`: results of the functions the model called (a `toolCall`)."""
    if not responses:
        raise ValueError("build_tool_response: no function responses")
    items: list[object] = []
    for r in responses:
        item: dict[str, object] = {
            "id": r.id,
            "name": r.name,
            "response": _plain_json(r.response, f"FunctionResponse({r.name}).response"),
        }
        if r.scheduling is not None:
            item["scheduling"] = r.scheduling
        if r.will_continue is not None:
            item["willContinue"] = bool(r.will_continue)
        items.append(item)
    return _dumps({"toolResponse": {"functionResponses": items}})
