"""The server frame parser: text or binary frames in, typed events out; anything malformed
becomes `LiveProtocolError` with what and where."""

from __future__ import annotations

import binascii
import json
import math
import re
from collections.abc import Callable

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
    ServerEvent,
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
from pilive.live.setup_fields import snake
from pilive.live.wire_rules import OUTPUT_AUDIO_RATE_HZ, LiveProtocolError


class _Bad(Exception):
    """Internal: what is wrong and where; turned into LiveProtocolError with a frame excerpt."""


_SNAKE: dict[str, str] = {}


def _snake(camel: str) -> str:
    """setup_fields.snake, remembered: the same few field names come in every frame."""
    name = _SNAKE.get(camel)
    if name is None:
        name = _SNAKE[camel] = snake(camel)
    return name


def _get(obj: dict[str, object], camel: str) -> object:
    """A field by its lowerCamel name or its snake_case name (proto3 JSON accepts both)."""
    value = obj.get(camel)
    if value is None:
        value = obj.get(_snake(camel))
    return value


def _obj(value: object, path: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _Bad(f"{path} is {_kind(value)}, expected an object")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _str(value: object, path: str, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise _Bad(f"{path} is {_kind(value)}, expected a string")
    return value


def _bool(value: object, path: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _Bad(f"{path} is {_kind(value)}, expected true or false")
    return value


def _int64(value: object, path: str) -> int:
    """proto3 JSON int64: a number or a decimal string."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise _Bad(f"{path} is a boolean, expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and 0 < len(value) <= 20:
        digits = value[1:] if value[0] == "-" else value
        if digits.isascii() and digits.isdigit():
            return int(value)
    raise _Bad(f"{path} is {_excerpt_value(value)}, expected an integer")


_DURATION = re.compile(r"(-?)(\d{1,12})(?:\.(\d{1,9}))?s")


def _duration_s(value: object, path: str) -> float:
    """proto3 JSON Duration ("10s", "1.5s"); a bare number is taken as seconds."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**12:
        return float(value)  # bounded first: float() of a 400-digit int raises OverflowError
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str):
        m = _DURATION.fullmatch(value)
        if m:
            seconds = float(m.group(2) + "." + (m.group(3) or "0"))
            return -seconds if m.group(1) else seconds
    raise _Bad(f"{path} is {_excerpt_value(value)}, expected a duration like '1.5s'")


def _excerpt_value(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")
_A2B = binascii.a2b_base64


def _b64decode(value: object, index: int) -> bytes:
    """Standard or URL-safe base64, padded or not (proto3 JSON bytes); strict otherwise.

    Fast path: the server's padded standard alphabet, decoded leniently and accepted only if no
    character was skipped (the output length proves it); anything else takes the strict path.
    """
    if type(value) is not str:
        path = _part_path(index) + ".inlineData.data"
        raise _Bad(f"{path} is {_kind(value)}, expected base64 text")
    size = len(value)
    if size and not size & 3:
        padding = (value[-1] == "=") + (value[-1] == "=" and value[-2] == "=")
        try:
            decoded = _A2B(value)
        except ValueError:
            pass
        else:
            if len(decoded) == (size >> 2) * 3 - padding:
                return decoded
    if "-" in value or "_" in value:
        value = value.translate(_URLSAFE_TO_STANDARD)
    remainder = size & 3
    if remainder:
        value += "=" * (4 - remainder)
    try:
        return _A2B(value, strict_mode=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        path = _part_path(index) + ".inlineData.data"
        raise _Bad(f"{path} is not valid base64 ({exc})") from None


_RATE = re.compile(r";\s*rate=(\d{1,6})")
_AUDIO_RATES: dict[str, int | None] = {}


def _audio_rate_hz(mime_type: str) -> int | None:
    """The rate of an `audio/pcm;rate=N` mime type; None when it is not PCM audio."""
    rate = _AUDIO_RATES.get(mime_type, -1)
    if rate != -1:
        return rate
    lowered = mime_type.lower()
    if lowered.startswith(("audio/pcm", "audio/l16")):
        m = _RATE.search(lowered)
        rate = int(m.group(1)) if m else OUTPUT_AUDIO_RATE_HZ
        if rate == 0:
            rate = None
    else:
        rate = None
    if len(_AUDIO_RATES) < 64:  # bounded: mime types come from the network
        _AUDIO_RATES[mime_type] = rate
    return rate


def _parse_audio(inline: object, index: int, events: list[ServerEvent]) -> None:
    """`inlineData` of a part: audio straight from base64; other media reported as unknown."""
    if type(inline) is not dict:
        raise _Bad(f"{_part_path(index)}.inlineData is {_kind(inline)}, expected an object")
    mime_type = inline.get("mimeType")
    if mime_type is None:
        mime_type = inline.get("mime_type")
    if type(mime_type) is not str:
        mime_type = _str(mime_type, _part_path(index) + ".inlineData.mimeType")
    rate_hz = _audio_rate_hz(mime_type)
    if rate_hz is None:
        events.append(
            UnknownMessage((f"{_part_path(index)}.inlineData({mime_type or 'no mimeType'})",))
        )
        return
    pcm = _b64decode(inline.get("data"), index)
    if len(pcm) & 1:
        path = _part_path(index) + ".inlineData.data"
        raise _Bad(f"{path} has {len(pcm)} bytes, not whole 16-bit samples")
    events.append(AudioChunk(pcm, rate_hz))


def _part_path(index: int) -> str:
    return f"serverContent.modelTurn.parts[{index}]"


def _parse_part(part: object, index: int, events: list[ServerEvent]) -> None:
    if type(part) is not dict:
        raise _Bad(f"{_part_path(index)} is {_kind(part)}, expected an object")
    inline = part.get("inlineData")
    if inline is None:
        inline = part.get("inline_data")
    if inline is not None and _bool(part.get("thought"), _part_path(index) + ".thought"):
        # Thoughts are never played, whatever they carry: only text thoughts are documented.
        events.append(UnknownMessage((f"{_part_path(index)}.inlineData(thought)",)))
        return
    if inline is not None:
        _parse_audio(inline, index, events)
        return
    text = part.get("text")
    if text is not None:
        path = _part_path(index)
        events.append(TextPart(_str(text, path + ".text"), _bool(part.get("thought"), path)))
        return
    content_keys = [k for k in part if k not in _PART_META_KEYS and part[k] is not None]
    if content_keys:
        events.append(UnknownMessage(tuple(f"{_part_path(index)}.{k}" for k in content_keys)))


_PART_META_KEYS = frozenset(
    {"thought", "thoughtSignature", "thought_signature", "videoMetadata", "video_metadata"}
)


def _parse_transcription(value: object, path: str) -> tuple[str, bool]:
    obj = _obj(value, path)
    return _str(obj.get("text"), path + ".text"), _bool(obj.get("finished"), path + ".finished")


# serverContent fields in the order their events are emitted; both spellings map to one rank.
_SERVER_CONTENT_ORDER = (
    "inputTranscription",
    "modelTurn",
    "outputTranscription",
    "groundingMetadata",
    "interrupted",
    "generationComplete",
    "turnComplete",
    "waitingForInput",
    "interactionStatus",
)
_SERVER_CONTENT_RANK = {
    name: rank
    for rank, camel in enumerate(_SERVER_CONTENT_ORDER)
    for name in (camel, _snake(camel))
}


def _parse_server_content(value: object, events: list[ServerEvent]) -> None:
    if type(value) is not dict:
        raise _Bad(f"serverContent is {_kind(value)}, expected an object")
    present: list[tuple[int, object]] = []
    rank_of = _SERVER_CONTENT_RANK.get
    for key, field_value in value.items():
        rank = rank_of(key)
        if rank is not None and field_value is not None:
            present.append((rank, field_value))
    if len(present) > 1:
        present.sort(key=lambda item: item[0])
    for rank, field_value in present:
        if rank == 1:  # modelTurn: the audio hot path
            if type(field_value) is not dict:
                raise _Bad(f"serverContent.modelTurn is {_kind(field_value)}, expected an object")
            parts = field_value.get("parts")
            if parts is None:
                continue
            if type(parts) is not list:
                raise _Bad(f"serverContent.modelTurn.parts is {_kind(parts)}, expected an array")
            for index, part in enumerate(parts):
                _parse_part(part, index, events)
            continue
        name = _SERVER_CONTENT_ORDER[rank]
        path = "serverContent." + name
        if rank == 0:
            events.append(InputTranscription(*_parse_transcription(field_value, path)))
        elif rank == 2:
            events.append(OutputTranscription(*_parse_transcription(field_value, path)))
        elif rank == 3:
            events.append(Grounding(_obj(field_value, path)))
        elif rank == 8:
            status = _str(field_value, path)
            if status:
                events.append(InteractionStatus(status))
        elif not _bool(field_value, path):
            continue
        elif rank == 4:
            events.append(Interrupted())
        elif rank == 5:
            events.append(GenerationComplete())
        elif rank == 6:
            reason = _get(value, "turnCompleteReason")
            events.append(TurnComplete(_str(reason, "serverContent.turnCompleteReason") or None))
        else:
            events.append(WaitingForInput())


def _parse_setup_complete(value: object, events: list[ServerEvent]) -> None:
    obj = _obj(value, "setupComplete")
    session_id = _str(_get(obj, "sessionId"), "setupComplete.sessionId")
    events.append(SetupComplete(session_id or None))


def _parse_tool_call(value: object, events: list[ServerEvent]) -> None:
    calls_value = _get(_obj(value, "toolCall"), "functionCalls")
    if calls_value is None:
        calls_value = []
    if not isinstance(calls_value, list):
        raise _Bad(f"toolCall.functionCalls is {_kind(calls_value)}, expected an array")
    calls: list[FunctionCall] = []
    for i, item in enumerate(calls_value):
        path = f"toolCall.functionCalls[{i}]"
        call = _obj(item, path)
        name = _str(call.get("name"), path + ".name")
        if not name:
            raise _Bad(f"{path}.name is missing")
        args = call.get("args")
        calls.append(
            FunctionCall(
                _str(call.get("id"), path + ".id"),
                name,
                {} if args is None else _obj(args, path + ".args"),
            )
        )
    events.append(ToolCall(tuple(calls)))


def _parse_tool_call_cancellation(value: object, events: list[ServerEvent]) -> None:
    ids = _obj(value, "toolCallCancellation").get("ids")
    if ids is None:
        ids = []
    if not isinstance(ids, list):
        raise _Bad(f"toolCallCancellation.ids is {_kind(ids)}, expected an array")
    events.append(
        ToolCallCancellation(
            tuple(_str(v, f"toolCallCancellation.ids[{i}]") for i, v in enumerate(ids))
        )
    )


def _parse_go_away(value: object, events: list[ServerEvent]) -> None:
    time_left = _get(_obj(value, "goAway"), "timeLeft")
    seconds = 0.0 if time_left is None else _duration_s(time_left, "goAway.timeLeft")
    events.append(GoAway(max(0.0, seconds)))


def _parse_resumption_update(value: object, events: list[ServerEvent]) -> None:
    obj = _obj(value, "sessionResumptionUpdate")
    index = _get(obj, "lastConsumedClientMessageIndex")
    events.append(
        SessionResumptionUpdate(
            _str(_get(obj, "newHandle"), "sessionResumptionUpdate.newHandle"),
            _bool(obj.get("resumable"), "sessionResumptionUpdate.resumable"),
            None
            if index is None
            else _int64(index, "sessionResumptionUpdate.lastConsumedClientMessageIndex"),
        )
    )


MAX_TOKEN_COUNT = 2**31 - 1
"""The usage counts are int32 in the proto: a count outside 0..this is malformed."""
_MAX_MODALITIES = 8  # distinct modalities kept per details list (the SDK knows 6)
_MAX_USAGE_PROBLEMS = 4  # problems named per usageMetadata; a server can send thousands


class _UsageReader:
    """Reads `usageMetadata` field by field: a malformed field is noted and counted as absent,
    so the content of the same frame (its turnComplete) is never lost over bookkeeping."""

    def __init__(self, usage: dict[str, object]) -> None:
        self.usage = usage
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        if len(self.problems) < _MAX_USAGE_PROBLEMS:
            self.problems.append(text)

    def count(self, name: str, value: object = None, path: str = "") -> int:
        path = path or "usageMetadata." + name
        if value is None:
            value = _get(self.usage, name)
        try:
            tokens = _int64(value, path)
        except _Bad as exc:
            self.problem(str(exc))
            return 0
        if not 0 <= tokens <= MAX_TOKEN_COUNT:
            self.problem(f"{path} is {tokens}, outside 0..{MAX_TOKEN_COUNT}")
            return 0
        return tokens

    def details(self, name: str, alias: str | None = None) -> tuple[tuple[str, int], ...]:
        """(modality, tokenCount) pairs, one per modality (repeats are added up)."""
        value = _get(self.usage, name)
        if value is None and alias is not None:
            value = _get(self.usage, alias)
        if value is None:
            return ()
        path = "usageMetadata." + name
        if not isinstance(value, list):
            self.problem(f"{path} is {_kind(value)}, expected an array")
            return ()
        totals: dict[str, int] = {}
        for i, item in enumerate(value):
            where = f"{path}[{i}]"
            if not isinstance(item, dict):
                self.problem(f"{where} is {_kind(item)}, expected an object")
                continue
            modality = item.get("modality")
            if modality is None:
                modality = "MODALITY_UNSPECIFIED"
            if not isinstance(modality, str) or not modality:
                self.problem(f"{where}.modality is {_excerpt_value(modality)}, expected a name")
                continue
            tokens = self.count("", _get(item, "tokenCount"), where + ".tokenCount")
            if modality not in totals and len(totals) == _MAX_MODALITIES:
                self.problem(f"{path} has more than {_MAX_MODALITIES} modalities")
                break
            totals[modality] = min(MAX_TOKEN_COUNT, totals.get(modality, 0) + tokens)
        return tuple(totals.items())


def _parse_usage(value: object, events: list[ServerEvent]) -> None:
    if not isinstance(value, dict):
        events.append(
            UsageMetadata(problems=(f"usageMetadata is {_kind(value)}, expected an object",))
        )
        return
    u = _UsageReader(value)
    response = u.count("responseTokenCount")
    if not response and _get(value, "responseTokenCount") is None:
        response = u.count("candidatesTokenCount")  # Vertex's spelling
    events.append(
        UsageMetadata(
            prompt_tokens=u.count("promptTokenCount"),
            cached_content_tokens=u.count("cachedContentTokenCount"),
            response_tokens=response,
            tool_use_prompt_tokens=u.count("toolUsePromptTokenCount"),
            thoughts_tokens=u.count("thoughtsTokenCount"),
            total_tokens=u.count("totalTokenCount"),
            prompt_tokens_by_modality=u.details("promptTokensDetails"),
            response_tokens_by_modality=u.details(
                "responseTokensDetails", "candidatesTokensDetails"
            ),
            cache_tokens_by_modality=u.details("cacheTokensDetails"),
            tool_use_prompt_tokens_by_modality=u.details("toolUsePromptTokensDetails"),
            problems=tuple(u.problems),
        )
    )


def _parse_voice_activity(value: object, events: list[ServerEvent]) -> None:
    obj = _obj(value, "voiceActivity")
    kind = _str(obj.get("type"), "voiceActivity.type") or _str(
        _get(obj, "voiceActivityType"), "voiceActivity.voiceActivityType"
    )
    offset = _get(obj, "audioOffset")
    events.append(
        VoiceActivity(
            kind or "TYPE_UNSPECIFIED",
            None if offset is None else _duration_s(offset, "voiceActivity.audioOffset"),
        )
    )


_Handler = Callable[[object, list[ServerEvent]], None]

# Fixed order: setup and content first, bookkeeping (resumption, usage) after.
_TOP_LEVEL: tuple[tuple[str, str, _Handler], ...] = tuple(
    (camel, _snake(camel), handler)
    for camel, handler in (
        ("setupComplete", _parse_setup_complete),
        ("serverContent", _parse_server_content),
        ("toolCall", _parse_tool_call),
        ("toolCallCancellation", _parse_tool_call_cancellation),
        ("voiceActivity", _parse_voice_activity),
        ("goAway", _parse_go_away),
        ("sessionResumptionUpdate", _parse_resumption_update),
        ("usageMetadata", _parse_usage),
    )
)
_TOP_LEVEL_HANDLERS: dict[str, tuple[int, _Handler]] = {
    name: (rank, handler)
    for rank, (camel, snake, handler) in enumerate(_TOP_LEVEL)
    for name in (camel, snake)
}


def _excerpt(data: str | bytes | bytearray) -> str:
    head = data[:80]
    if not isinstance(head, str):
        head = head.decode("utf-8", "replace")
    return repr(head) + ("..." if len(data) > 80 else "")


def parse_server_message(data: str | bytes | bytearray) -> list[ServerEvent]:
    """The events in one server frame (text or binary JSON), in a fixed order.

    One frame may carry several events (audio parts, a turnComplete and its usageMetadata).
    Top-level keys this client does not know become one `UnknownMessage`; unknown nested fields
    are ignored as proto3 JSON prescribes. Raises `LiveProtocolError` and nothing else.
    """
    if not isinstance(data, str | bytes | bytearray):
        raise LiveProtocolError(f"server frame is {type(data).__name__}, expected str or bytes")
    try:
        message = json.loads(data)
    except RecursionError:
        raise LiveProtocolError(f"server frame is nested too deeply: {_excerpt(data)}") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int too long
        raise LiveProtocolError(f"server frame is not JSON ({exc}): {_excerpt(data)}") from None
    if not isinstance(message, dict):
        raise LiveProtocolError(
            f"server frame is {_kind(message)}, expected a JSON object: {_excerpt(data)}"
        )
    events: list[ServerEvent] = []
    if len(message) == 1:  # the usual case: one message type per frame
        ((key, value),) = message.items()
        known = _TOP_LEVEL_HANDLERS.get(key)
        if known is None:
            return [UnknownMessage((key,))]
        if value is not None:
            try:
                known[1](value, events)
            except _Bad as exc:
                raise LiveProtocolError(f"{exc}: {_excerpt(data)}") from None
        return events
    handlers: list[tuple[int, _Handler, object]] = []
    unknown: list[str] = []
    for key, value in message.items():
        known = _TOP_LEVEL_HANDLERS.get(key)
        if known is None:
            unknown.append(key)
        elif value is not None:
            handlers.append((known[0], known[1], value))
    if len(handlers) > 1:
        handlers.sort(key=lambda item: item[0])
    try:
        for _, handler, value in handlers:
            handler(value, events)
    except _Bad as exc:
        raise LiveProtocolError(f"{exc}: {_excerpt(data)}") from None
    if unknown:
        events.append(UnknownMessage(tuple(unknown)))
    return events
