"""Client frames -> typed messages, parsed independently of the daemon's own wire module.

The real server parses proto3 JSON: it accepts lowerCamel and snake_case names at every level and
both base64 alphabets with or without padding, and rejects what it cannot parse with close code
1007. Field names are never rewritten globally (function arguments and schemas hold user keys);
each field is looked up under both spellings where it is read.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from pilive.live.setup_fields import (
    GENERATION_FIELDS,
    GENERATION_NOT_IN_LIVE,
    SETUP_FIELDS,
    THINKING_FIELDS,
    TRANSCRIPTION_FIELDS,
    camel,
    snake,
)

INVALID_ARGUMENT = "Request contains an invalid argument."
DEFAULT_INPUT_RATE_HZ = 16000


class ProtocolViolation(Exception):
    """The client broke the protocol; the connection closes with `code` and `reason`."""

    def __init__(self, code: int, reason: str, detail: str = "") -> None:
        super().__init__(f"{code} {reason}" + (f" ({detail})" if detail else ""))
        self.code = code
        self.reason = reason
        self.detail = detail


def invalid(detail: str) -> ProtocolViolation:
    """A 1007 like the service's, with a detail for the emulator's log."""
    return ProtocolViolation(1007, INVALID_ARGUMENT, detail)


def get(obj: dict[str, Any], snake_name: str, default: Any = None) -> Any:
    """A field under either spelling (proto3 JSON accepts both)."""
    if snake_name in obj:
        return obj[snake_name]
    return obj.get(camel(snake_name), default)


def _obj(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"{where} must be an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(f"{where} must be a list, got {type(value).__name__}")
    return value


def _check_fields(obj: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in obj:
        if snake(key) not in allowed:
            raise invalid(f'unknown name "{key}" at {where}')


def decode_bytes(value: Any, where: str) -> bytes:
    """Base64 in either alphabet, padded or not (the SDK sends URL-safe)."""
    if not isinstance(value, str):
        raise invalid(f"{where} must be a base64 string")
    text = value.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid(f"{where} is not valid base64: {exc}") from None


def audio_rate_hz(mime_type: str) -> int:
    """The sample rate from `audio/pcm;rate=16000` (16 kHz when absent)."""
    main, _, params = mime_type.partition(";")
    if main.strip().lower() != "audio/pcm":
        raise invalid(f"unsupported audio mime type {mime_type!r}")
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "rate":
            try:
                rate = int(value.strip())
            except ValueError:
                raise invalid(f"bad rate in audio mime type {mime_type!r}") from None
            if not 8000 <= rate <= 48000:
                raise invalid(f"audio rate {rate} Hz is out of range")
            return rate
    return DEFAULT_INPUT_RATE_HZ


# --- typed client messages ------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionDeclaration:
    """`behavior`: BLOCKING, NON_BLOCKING or None (left out: the model's default applies)."""

    name: str
    parameters: dict[str, Any]
    behavior: str | None = None


@dataclass(frozen=True)
class Setup:
    """The parts of BidiGenerateContentSetup the emulator acts on."""

    model: str
    response_modalities: tuple[str, ...] = ("AUDIO",)
    automatic_activity_detection: bool = True
    start_sensitivity: str = "START_SENSITIVITY_UNSPECIFIED"
    end_sensitivity: str = "END_SENSITIVITY_UNSPECIFIED"
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    activity_handling: str = "START_OF_ACTIVITY_INTERRUPTS"
    turn_coverage: str | None = None  # None: left out, the model's default applies
    session_resumption: bool = False
    resume_handle: str | None = None
    context_window_compression: bool = False
    input_transcription: bool = False
    output_transcription: bool = False
    functions: tuple[FunctionDeclaration, ...] = ()
    # generationConfig.thinkingConfig: whether it was sent at all, and its two knobs.
    thinking_config: bool = False
    thinking_budget: int | None = None
    thinking_level: str | None = None  # upper case as sent ("LOW")
    # generationConfig.enableAffectiveDialog and proactivity.proactiveAudio (None: left out).
    affective_dialog: bool | None = None
    proactive_audio: bool | None = None
    # thinkingConfig.includeThoughts: thought summaries (parts marked `thought`) before answers.
    include_thoughts: bool = False
    # generationConfig sampling (None: left out, the model's default).
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_output_tokens: int | None = None
    seed: int | None = None
    # inputAudioTranscription.languageCodes: BCP-47 hints of the user's languages.
    input_language_codes: tuple[str, ...] = ()
    # What each turn is billed for besides its own input (emulator/usage.py): the media
    # resolution (upper case as sent), the text of systemInstruction, and contextWindowCompression
    # as (triggerTokens, slidingWindow.targetTokens), None when it is off.
    media_resolution: str | None = None
    system_instruction: str = ""
    compression_tokens: tuple[int | None, int | None] | None = None

    @property
    def text_replies(self) -> bool:
        return self.response_modalities == ("TEXT",)


@dataclass(frozen=True)
class Audio:
    data: bytes
    rate_hz: int


@dataclass(frozen=True)
class Video:
    data: bytes
    mime_type: str


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class ActivityStart:
    pass


@dataclass(frozen=True)
class ActivityEnd:
    pass


@dataclass(frozen=True)
class AudioStreamEnd:
    pass


RealtimeEvent = Audio | Video | Text | ActivityStart | ActivityEnd | AudioStreamEnd


@dataclass(frozen=True)
class RealtimeInput:
    events: tuple[RealtimeEvent, ...]


@dataclass(frozen=True)
class ClientContent:
    texts: tuple[str, ...]
    audio: tuple[Audio, ...]
    videos: tuple[Video, ...]
    turn_complete: bool


SCHEDULINGS = frozenset({"SCHEDULING_UNSPECIFIED", "SILENT", "WHEN_IDLE", "INTERRUPT"})


@dataclass(frozen=True)
class FunctionResponse:
    """`scheduling` and `will_continue` only mean something for NON_BLOCKING functions."""

    id: str
    name: str
    response: dict[str, Any] = field(default_factory=dict)
    scheduling: str | None = None
    will_continue: bool = False


@dataclass(frozen=True)
class ToolResponse:
    responses: tuple[FunctionResponse, ...]


ClientMessage = Setup | RealtimeInput | ClientContent | ToolResponse

_TOP = frozenset({"setup", "client_content", "realtime_input", "tool_response"})
# A BCP-47 tag, case-insensitive as the standard has it: a 2-3 letter language, then subtags.
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_INT32 = (-(2**31), 2**31 - 1)

_REALTIME_FIELDS = frozenset(
    {"media_chunks", "audio", "video", "text", "activity_start", "activity_end", "audio_stream_end"}
)


def parse_client_frame(data: str | bytes) -> ClientMessage:
    """One WebSocket message (text or binary) -> a typed client message, or ProtocolViolation."""
    try:
        message = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"malformed JSON: {exc}") from None
    if not isinstance(message, dict):
        raise invalid("a client message must be a JSON object")
    keys = [snake(k) for k in message]
    unknown = [k for k in message if snake(k) not in _TOP]
    if unknown:
        raise invalid(f'unknown name "{unknown[0]}": cannot find field')
    if len(keys) != 1:
        raise invalid(f"exactly one message type must be set, got {sorted(message)}")
    body = _obj(next(iter(message.values())), keys[0])
    kind = keys[0]
    if kind == "setup":
        return _parse_setup(body)
    if kind == "realtime_input":
        return _parse_realtime(body)
    if kind == "client_content":
        return _parse_client_content(body)
    return _parse_tool_response(body)


def _parse_setup(body: dict[str, Any]) -> Setup:
    _check_fields(body, SETUP_FIELDS, "setup")
    model = get(body, "model")
    if not isinstance(model, str) or not model:
        raise invalid("setup.model is required")
    gen = _obj(get(body, "generation_config"), "setup.generationConfig")
    modalities = tuple(
        str(m).upper()
        for m in (_list(get(gen, "response_modalities"), "responseModalities") or ["AUDIO"])
    )
    if len(modalities) != 1 or modalities[0] not in {"AUDIO", "TEXT"}:
        raise invalid(f"responseModalities must be one of AUDIO or TEXT, got {list(modalities)}")
    ric = _obj(get(body, "realtime_input_config"), "setup.realtimeInputConfig")
    aad = _obj(get(ric, "automatic_activity_detection"), "automaticActivityDetection")
    resumption = get(body, "session_resumption")
    handle = None
    if resumption is not None:
        handle = get(_obj(resumption, "setup.sessionResumption"), "handle")
        if handle is not None and not isinstance(handle, str):
            raise invalid("sessionResumption.handle must be a string")
    functions: list[FunctionDeclaration] = []
    for tool in _list(get(body, "tools"), "setup.tools"):
        decls = get(_obj(tool, "setup.tools[]"), "function_declarations")
        for decl in _list(decls, "functionDeclarations"):
            decl_obj = _obj(decl, "functionDeclarations[]")
            name = get(decl_obj, "name")
            if not isinstance(name, str) or not name:
                raise invalid("a function declaration needs a name")
            params = get(decl_obj, "parameters") or get(decl_obj, "parameters_json_schema") or {}
            behavior = get(decl_obj, "behavior")
            if behavior is not None and not isinstance(behavior, str):
                raise invalid(f"{name}.behavior must be an enum name")
            behavior = (behavior or "").upper()
            functions.append(
                FunctionDeclaration(
                    name,
                    _obj(params, f"{name}.parameters"),
                    None if behavior in {"", "UNSPECIFIED"} else behavior,
                )
            )
    for key in gen:
        if snake(key) in GENERATION_NOT_IN_LIVE:
            raise invalid(f"generationConfig.{key} is not supported in the Live API")
    _check_fields(gen, GENERATION_FIELDS, "setup.generationConfig")
    thinking = get(gen, "thinking_config")
    thinking_obj = _obj(thinking, "generationConfig.thinkingConfig")
    _check_fields(thinking_obj, THINKING_FIELDS, "generationConfig.thinkingConfig")
    transcription = _obj(get(body, "input_audio_transcription"), "setup.inputAudioTranscription")
    _check_fields(transcription, TRANSCRIPTION_FIELDS, "setup.inputAudioTranscription")
    level = get(thinking_obj, "thinking_level")
    if level is not None and not isinstance(level, str):
        raise invalid("thinkingConfig.thinkingLevel must be an enum name")
    level = (level or "").upper()
    coverage = str(get(ric, "turn_coverage", "") or "").upper()
    media_resolution = str(get(gen, "media_resolution", "") or "").upper()
    instruction = _obj(get(body, "system_instruction"), "setup.systemInstruction")
    instruction_texts = [
        str(get(_obj(part, "systemInstruction.parts[]"), "text", "") or "")
        for part in _list(get(instruction, "parts"), "systemInstruction.parts")
    ]
    compression = get(body, "context_window_compression")
    compression_obj = _obj(compression, "setup.contextWindowCompression")
    window = _obj(get(compression_obj, "sliding_window"), "contextWindowCompression.slidingWindow")
    return Setup(
        model=model,
        response_modalities=modalities,
        automatic_activity_detection=not bool(get(aad, "disabled", False)),
        start_sensitivity=str(get(aad, "start_of_speech_sensitivity", "") or "").upper()
        or "START_SENSITIVITY_UNSPECIFIED",
        end_sensitivity=str(get(aad, "end_of_speech_sensitivity", "") or "").upper()
        or "END_SENSITIVITY_UNSPECIFIED",
        prefix_padding_ms=_opt_int(get(aad, "prefix_padding_ms"), "prefixPaddingMs"),
        silence_duration_ms=_opt_int(get(aad, "silence_duration_ms"), "silenceDurationMs"),
        activity_handling=str(get(ric, "activity_handling", "") or "").upper()
        or "START_OF_ACTIVITY_INTERRUPTS",
        turn_coverage=None if coverage in {"", "TURN_COVERAGE_UNSPECIFIED"} else coverage,
        session_resumption=resumption is not None,
        resume_handle=handle or None,
        context_window_compression=get(body, "context_window_compression") is not None,
        input_transcription=get(body, "input_audio_transcription") is not None,
        output_transcription=get(body, "output_audio_transcription") is not None,
        functions=tuple(functions),
        thinking_config=thinking is not None,
        thinking_budget=_opt_int(get(thinking_obj, "thinking_budget"), "thinkingBudget"),
        thinking_level=None if level in {"", "THINKING_LEVEL_UNSPECIFIED"} else level,
        affective_dialog=_opt_bool(get(gen, "enable_affective_dialog"), "enableAffectiveDialog"),
        proactive_audio=_opt_bool(
            get(_obj(get(body, "proactivity"), "setup.proactivity"), "proactive_audio"),
            "proactivity.proactiveAudio",
        ),
        include_thoughts=bool(
            _opt_bool(get(thinking_obj, "include_thoughts"), "thinkingConfig.includeThoughts")
        ),
        temperature=_opt_number(get(gen, "temperature"), "generationConfig.temperature"),
        top_p=_opt_number(get(gen, "top_p"), "generationConfig.topP"),
        top_k=_opt_int32(get(gen, "top_k"), "generationConfig.topK"),
        max_output_tokens=_opt_int32(
            get(gen, "max_output_tokens"), "generationConfig.maxOutputTokens"
        ),
        seed=_opt_int32(get(gen, "seed"), "generationConfig.seed"),
        input_language_codes=_language_codes(get(transcription, "language_codes")),
        media_resolution=None
        if media_resolution in {"", "MEDIA_RESOLUTION_UNSPECIFIED"}
        else media_resolution,
        system_instruction="\n".join(instruction_texts),
        compression_tokens=None
        if compression is None
        else (
            _opt_int(get(compression_obj, "trigger_tokens"), "triggerTokens"),
            _opt_int(get(window, "target_tokens"), "targetTokens"),
        ),
    )


def _opt_number(value: Any, where: str) -> float | None:
    """A proto3 JSON float: a number (or its text)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise invalid(f"{where} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise invalid(f"{where} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise invalid(f"{where} must be a finite number")
    return number


def _opt_int32(value: Any, where: str) -> int | None:
    """A proto3 JSON int32: a whole number (or its text) in range; 40.5 is not one."""
    number = _opt_number(value, where)
    if number is None:
        return None
    if not number.is_integer() or not _INT32[0] <= number <= _INT32[1]:
        raise invalid(f"{where} must be a 32-bit integer, got {value!r}")
    return int(number)


def _language_codes(value: Any) -> tuple[str, ...]:
    codes = _list(value, "inputAudioTranscription.languageCodes")
    for code in codes:
        if not isinstance(code, str) or not _LANGUAGE_TAG.fullmatch(code):
            raise invalid(f"inputAudioTranscription.languageCodes: {code!r} is not a BCP-47 tag")
    return tuple(codes)


def _opt_int(value: Any, where: str) -> int | None:
    """int32/int64 fields may arrive as numbers or strings."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise invalid(f"{where} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise invalid(f"{where} must be an integer, got {value!r}") from None


def _opt_bool(value: Any, where: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise invalid(f"{where} must be true or false, got {value!r}")
    return value


def _blob(value: Any, where: str) -> Audio | Video:
    blob = _obj(value, where)
    mime = get(blob, "mime_type")
    if not isinstance(mime, str):
        raise invalid(f"{where}.mimeType is required")
    data = decode_bytes(get(blob, "data", ""), f"{where}.data")
    if mime.lower().startswith("audio/"):
        return Audio(data, audio_rate_hz(mime))
    if mime.lower().startswith("image/"):
        return Video(data, mime)
    raise invalid(f"unsupported mime type {mime!r} at {where}")


def _parse_realtime(body: dict[str, Any]) -> RealtimeInput:
    _check_fields(body, _REALTIME_FIELDS, "realtimeInput")
    # Several fields in one message are legal in the proto; act on them in a sensible order.
    events: list[RealtimeEvent] = []
    if get(body, "activity_start") is not None:
        events.append(ActivityStart())
    chunks = get(body, "media_chunks")
    if chunks:
        if not isinstance(chunks, list):
            raise invalid("realtimeInput.mediaChunks must be a list")
        events.append(_blob(chunks[0], "realtimeInput.mediaChunks[0]"))  # only the first is used
    audio = get(body, "audio")
    if audio is not None:
        blob = _blob(audio, "realtimeInput.audio")
        if not isinstance(blob, Audio):
            raise invalid("realtimeInput.audio must carry audio/pcm")
        events.append(blob)
    video = get(body, "video")
    if video is not None:
        vblob = _blob(video, "realtimeInput.video")
        if not isinstance(vblob, Video):
            raise invalid("realtimeInput.video must carry an image")
        events.append(vblob)
    text = get(body, "text")
    if text is not None:
        if not isinstance(text, str):
            raise invalid("realtimeInput.text must be a string")
        events.append(Text(text))
    if get(body, "activity_end") is not None:
        events.append(ActivityEnd())
    if get(body, "audio_stream_end"):
        events.append(AudioStreamEnd())
    if not events:
        raise invalid("realtimeInput has no field set")
    return RealtimeInput(tuple(events))


def _parse_client_content(body: dict[str, Any]) -> ClientContent:
    texts: list[str] = []
    audio: list[Audio] = []
    videos: list[Video] = []
    for turn in _list(get(body, "turns"), "clientContent.turns"):
        for part in _list(get(_obj(turn, "clientContent.turns[]"), "parts"), "parts"):
            part_obj = _obj(part, "parts[]")
            if isinstance(get(part_obj, "text"), str):
                texts.append(get(part_obj, "text"))
            inline = get(part_obj, "inline_data")
            if inline is not None:
                blob = _blob(inline, "parts[].inlineData")
                (audio if isinstance(blob, Audio) else videos).append(blob)  # type: ignore[arg-type]
    return ClientContent(
        tuple(texts), tuple(audio), tuple(videos), bool(get(body, "turn_complete", False))
    )


def _parse_tool_response(body: dict[str, Any]) -> ToolResponse:
    responses: list[FunctionResponse] = []
    items = _list(get(body, "function_responses"), "toolResponse.functionResponses")
    if not items:
        raise invalid("toolResponse.functionResponses must not be empty")
    for item in items:
        obj = _obj(item, "functionResponses[]")
        call_id = get(obj, "id")
        if not isinstance(call_id, str) or not call_id:
            raise invalid("functionResponses[].id is required")
        response = _obj(get(obj, "response"), "functionResponses[].response")
        scheduling = get(obj, "scheduling")
        if scheduling is not None and str(scheduling).upper() not in SCHEDULINGS:
            raise invalid(f"functionResponses[].scheduling: unknown value {scheduling!r}")
        responses.append(
            FunctionResponse(
                call_id,
                str(get(obj, "name", "") or ""),
                response,
                None if scheduling is None else str(scheduling).upper(),
                bool(get(obj, "will_continue", False)),
            )
        )
    return ToolResponse(tuple(responses))
