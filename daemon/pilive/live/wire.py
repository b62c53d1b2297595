"""Live API (BidiGenerateContent) wire format: client frame builders and the server frame parser.

This is the only daemon module that knows Live API JSON field names. Builders emit canonical
lowerCamel JSON text frames with exactly one top-level key; the parser accepts text or binary
frames, lowerCamel or snake_case names at every level, unknown fields, int64 values as strings and
both base64 alphabets, and turns anything malformed into one error type, `LiveProtocolError`.

Audio is the hot path both ways: a 20 ms mic chunk becomes one base64 call plus a concatenation
with precomputed JSON around it; a received audio part is decoded straight from its base64 text.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

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

__all__ = [
    "ACTIVITY_HANDLINGS",
    "BEHAVIORS",
    "END_SENSITIVITIES",
    "INPUT_AUDIO_RATE_HZ",
    "MEDIA_RESOLUTIONS",
    "OUTPUT_AUDIO_RATE_HZ",
    "RESPONSE_MODALITIES",
    "SCHEDULINGS",
    "START_SENSITIVITIES",
    "TURN_COVERAGES",
    "ContentTurn",
    "FunctionDeclaration",
    "FunctionResponse",
    "LiveProtocolError",
    "SetupOptions",
    "VadOptions",
    "build_activity_end",
    "build_activity_start",
    "build_audio",
    "build_audio_stream_end",
    "build_client_content",
    "build_setup",
    "build_text",
    "build_tool_response",
    "build_video",
    "parse_server_message",
]

INPUT_AUDIO_RATE_HZ = 16000
"""Live API input audio: 16-bit little-endian mono PCM at 16 kHz."""
OUTPUT_AUDIO_RATE_HZ = 24000
"""Live API output audio rate when the mime type names none."""

# Enum names as the API spells them (proto enum names; the server rejects others).
RESPONSE_MODALITIES = ("AUDIO", "TEXT")
MEDIA_RESOLUTIONS = ("MEDIA_RESOLUTION_LOW", "MEDIA_RESOLUTION_MEDIUM", "MEDIA_RESOLUTION_HIGH")
START_SENSITIVITIES = ("START_SENSITIVITY_HIGH", "START_SENSITIVITY_LOW")
END_SENSITIVITIES = ("END_SENSITIVITY_HIGH", "END_SENSITIVITY_LOW")
ACTIVITY_HANDLINGS = ("START_OF_ACTIVITY_INTERRUPTS", "NO_INTERRUPTION")
TURN_COVERAGES = (
    "TURN_INCLUDES_ONLY_ACTIVITY",
    "TURN_INCLUDES_ALL_INPUT",
    "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO",
)
BEHAVIORS = ("BLOCKING", "NON_BLOCKING")
SCHEDULINGS = ("SILENT", "WHEN_IDLE", "INTERRUPT")

# FunctionDeclaration.name as Gemini documents it: a letter or underscore first, then letters,
# digits, underscores, dots, colons and dashes; at most 64 characters. The one rule for a tool's
# name: the config and the tool runner use it too.
FUNCTION_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}"
_FUNCTION_NAME = re.compile(FUNCTION_NAME_PATTERN)
_MODEL_NAME = re.compile(r"[A-Za-z0-9_.\-/@]+")


class LiveProtocolError(ValueError):
    """A server frame that is not a valid Live API message; the message says what and where."""


# ---------------------------------------------------------------------------------------------
# Setup options: plain frozen values a config layer fills in.


def _check_choice(owner: str, name: str, value: str | None, allowed: Sequence[str]) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"{owner}.{name}: {value!r} is not one of {', '.join(allowed)}")


def _check_positive(owner: str, name: str, value: int | None, *, zero_ok: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{owner}.{name}: {value!r} is not an integer")
    if value < 0 or (value == 0 and not zero_ok):
        raise ValueError(f"{owner}.{name}: {value!r} must be {'>= 0' if zero_ok else '> 0'}")


@dataclass(frozen=True, slots=True)
class VadOptions:
    """`realtimeInputConfig.automaticActivityDetection`.

    `disabled=True` is push-to-talk: the client marks speech with activityStart/activityEnd and
    the tuning fields are not sent. With `disabled=False` (hands-free) the server's VAD decides;
    None leaves a field at the server default.
    """

    disabled: bool = True
    start_of_speech_sensitivity: str | None = None
    end_of_speech_sensitivity: str | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None

    def __post_init__(self) -> None:
        _check_choice(
            "VadOptions",
            "start_of_speech_sensitivity",
            self.start_of_speech_sensitivity,
            START_SENSITIVITIES,
        )
        _check_choice(
            "VadOptions",
            "end_of_speech_sensitivity",
            self.end_of_speech_sensitivity,
            END_SENSITIVITIES,
        )
        _check_positive("VadOptions", "prefix_padding_ms", self.prefix_padding_ms, zero_ok=True)
        _check_positive("VadOptions", "silence_duration_ms", self.silence_duration_ms)

    def to_json(self) -> dict[str, object]:
        """The `automaticActivityDetection` object."""
        if self.disabled:
            return {"disabled": True}
        out: dict[str, object] = {"disabled": False}
        if self.start_of_speech_sensitivity is not None:
            out["startOfSpeechSensitivity"] = self.start_of_speech_sensitivity
        if self.end_of_speech_sensitivity is not None:
            out["endOfSpeechSensitivity"] = self.end_of_speech_sensitivity
        if self.prefix_padding_ms is not None:
            out["prefixPaddingMs"] = self.prefix_padding_ms
        if self.silence_duration_ms is not None:
            out["silenceDurationMs"] = self.silence_duration_ms
        return out


def _plain_json(value: object, where: str, depth: int = 0) -> object:
    """Copy Mappings/Sequences into dicts/lists json can encode; reject anything else by name."""
    if depth > 64:
        raise ValueError(f"{where}: nested more than 64 levels")
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} is not representable in JSON")
        return value
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: key {k!r} is not a string")
            out[k] = _plain_json(v, f"{where}.{k}", depth + 1)
        return out
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [_plain_json(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    raise ValueError(f"{where}: {type(value).__name__} value is not JSON")


@dataclass(frozen=True, slots=True)
class FunctionDeclaration:
    """One `tools[].functionDeclarations[]` entry.

    `parameters` is an OpenAPI-style schema object (`{"type": "OBJECT", "properties": ...}`;
    lower-case JSON-schema type names are accepted by the API too). `behavior` is BLOCKING or
    NON_BLOCKING (the model keeps talking while the function runs).
    """

    name: str
    description: str
    parameters: Mapping[str, object] | None = None
    behavior: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _FUNCTION_NAME.fullmatch(self.name):
            raise ValueError(
                f"FunctionDeclaration.name: {self.name!r} must be 1-64 of A-Z a-z 0-9 _ . -"
                " and start with a letter or underscore"
            )
        _check_choice("FunctionDeclaration", "behavior", self.behavior, BEHAVIORS)
        if self.parameters is not None:
            _plain_json(self.parameters, f"FunctionDeclaration({self.name}).parameters")

    def to_json(self) -> dict[str, object]:
        """The declaration object, with `parameters` copied to plain JSON types."""
        out: dict[str, object] = {"name": self.name, "description": self.description}
        if self.parameters is not None:
            out["parameters"] = _plain_json(self.parameters, f"{self.name}.parameters")
        if self.behavior is not None:
            out["behavior"] = self.behavior
        return out


@dataclass(frozen=True, slots=True)
class SetupOptions:
    """Everything `setup` carries, in pilive's words; `build_setup` maps it to the wire.

    Defaults fit the appliance: audio answers, push-to-talk, resumption and a sliding context
    window on from the first connection (without compression an audio+video session ends after
    2 minutes). Token counts of None leave the server defaults (trigger at 80% of the window,
    target at half the trigger).
    """

    model: str
    response_modalities: tuple[str, ...] = ("AUDIO",)
    voice_name: str | None = None
    language_code: str | None = None
    media_resolution: str | None = None
    system_instruction: str | None = None
    function_declarations: tuple[FunctionDeclaration, ...] = ()
    google_search: bool = False
    vad: VadOptions = field(default_factory=VadOptions)
    activity_handling: str | None = None
    turn_coverage: str | None = None
    session_resumption: bool = True
    context_window_compression: bool = True
    compression_trigger_tokens: int | None = None
    compression_target_tokens: int | None = None
    input_audio_transcription: bool = False
    output_audio_transcription: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not _MODEL_NAME.fullmatch(self.model):
            raise ValueError(f"SetupOptions.model: {self.model!r} is not a model name")
        if not self.response_modalities:
            raise ValueError("SetupOptions.response_modalities: must name at least one modality")
        for modality in self.response_modalities:
            _check_choice("SetupOptions", "response_modalities", modality, RESPONSE_MODALITIES)
        _check_choice("SetupOptions", "media_resolution", self.media_resolution, MEDIA_RESOLUTIONS)
        _check_choice(
            "SetupOptions", "activity_handling", self.activity_handling, ACTIVITY_HANDLINGS
        )
        _check_choice("SetupOptions", "turn_coverage", self.turn_coverage, TURN_COVERAGES)
        _check_positive(
            "SetupOptions", "compression_trigger_tokens", self.compression_trigger_tokens
        )
        _check_positive("SetupOptions", "compression_target_tokens", self.compression_target_tokens)
        trigger, target = self.compression_trigger_tokens, self.compression_target_tokens
        if trigger is not None and target is not None and target >= trigger:
            raise ValueError(
                f"SetupOptions.compression_target_tokens: {target} must be below"
                f" compression_trigger_tokens ({trigger})"
            )
        names = [f.name for f in self.function_declarations]
        if len(set(names)) != len(names):
            raise ValueError(f"SetupOptions.function_declarations: duplicate names in {names}")


def _model_path(model: str) -> str:
    """`models/{name}` unless the name is already a resource path (models/…, projects/…)."""
    if "/" in model:
        return model
    return f"models/{model}"


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def build_setup(options: SetupOptions, handle: str | None = None) -> str:
    """The `setup` frame; `handle` resumes a session (`sessionResumption.handle`)."""
    if handle is not None and not options.session_resumption:
        raise ValueError("build_setup: a resumption handle needs SetupOptions.session_resumption")
    if handle is not None and (not isinstance(handle, str) or not handle):
        raise ValueError(f"build_setup: resumption handle {handle!r} must be a non-empty string")
    generation: dict[str, object] = {"responseModalities": list(options.response_modalities)}
    speech: dict[str, object] = {}
    if options.voice_name is not None:
        speech["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": options.voice_name}}
    if options.language_code is not None:
        speech["languageCode"] = options.language_code
    if speech:
        generation["speechConfig"] = speech
    if options.media_resolution is not None:
        generation["mediaResolution"] = options.media_resolution
    setup: dict[str, object] = {"model": _model_path(options.model), "generationConfig": generation}
    if options.system_instruction is not None:
        setup["systemInstruction"] = {
            "role": "user",
            "parts": [{"text": options.system_instruction}],
        }
    tools: list[object] = []
    if options.function_declarations:
        tools.append({"functionDeclarations": [f.to_json() for f in options.function_declarations]})
    if options.google_search:
        tools.append({"googleSearch": {}})
    if tools:
        setup["tools"] = tools
    realtime: dict[str, object] = {"automaticActivityDetection": options.vad.to_json()}
    if options.activity_handling is not None:
        realtime["activityHandling"] = options.activity_handling
    if options.turn_coverage is not None:
        realtime["turnCoverage"] = options.turn_coverage
    setup["realtimeInputConfig"] = realtime
    if options.session_resumption:
        setup["sessionResumption"] = {} if handle is None else {"handle": handle}
    if options.context_window_compression:
        window: dict[str, object] = {}
        if options.compression_target_tokens is not None:
            window["targetTokens"] = options.compression_target_tokens
        compression: dict[str, object] = {"slidingWindow": window}
        if options.compression_trigger_tokens is not None:
            compression["triggerTokens"] = options.compression_trigger_tokens
        setup["contextWindowCompression"] = compression
    if options.input_audio_transcription:
        setup["inputAudioTranscription"] = {}
    if options.output_audio_transcription:
        setup["outputAudioTranscription"] = {}
    return _dumps({"setup": setup})


# ---------------------------------------------------------------------------------------------
# realtimeInput, clientContent, toolResponse.

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


# ---------------------------------------------------------------------------------------------
# Parser.


class _Bad(Exception):
    """Internal: what is wrong and where; turned into LiveProtocolError with a frame excerpt."""


_SNAKE: dict[str, str] = {}


def _snake(camel: str) -> str:
    snake = _SNAKE.get(camel)
    if snake is None:
        snake = re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()
        _SNAKE[camel] = snake
    return snake


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


def _modality_counts(value: object, path: str) -> tuple[tuple[str, int], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Bad(f"{path} is {_kind(value)}, expected an array")
    out: list[tuple[str, int]] = []
    for i, item in enumerate(value):
        entry = _obj(item, f"{path}[{i}]")
        out.append(
            (
                _str(entry.get("modality"), f"{path}[{i}].modality", "MODALITY_UNSPECIFIED"),
                _int64(_get(entry, "tokenCount"), f"{path}[{i}].tokenCount"),
            )
        )
    return tuple(out)


def _parse_usage(value: object, events: list[ServerEvent]) -> None:
    u = _obj(value, "usageMetadata")

    def count(name: str) -> int:
        return _int64(_get(u, name), "usageMetadata." + name)

    response = count("responseTokenCount") or count("candidatesTokenCount")  # Vertex spelling
    response_details = _get(u, "responseTokensDetails")
    if response_details is None:
        response_details = _get(u, "candidatesTokensDetails")
    events.append(
        UsageMetadata(
            prompt_tokens=count("promptTokenCount"),
            cached_content_tokens=count("cachedContentTokenCount"),
            response_tokens=response,
            tool_use_prompt_tokens=count("toolUsePromptTokenCount"),
            thoughts_tokens=count("thoughtsTokenCount"),
            total_tokens=count("totalTokenCount"),
            prompt_tokens_by_modality=_modality_counts(
                _get(u, "promptTokensDetails"), "usageMetadata.promptTokensDetails"
            ),
            response_tokens_by_modality=_modality_counts(
                response_details, "usageMetadata.responseTokensDetails"
            ),
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
