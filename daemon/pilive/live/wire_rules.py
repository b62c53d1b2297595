"""The Live API's names and rules that both directions of the wire share: audio rates, enum
names, the function-name rule, the one error the parser raises, and compact JSON."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence

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
# ThinkingConfig.thinkingLevel (google-genai's ThinkingLevel enum, UNSPECIFIED aside).
THINKING_LEVELS = ("MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH")
SCHEDULINGS = ("SILENT", "WHEN_IDLE", "INTERRUPT")

# FunctionDeclaration.name as Gemini documents it: a letter or underscore first, then letters,
# digits, underscores, dots, colons and dashes; at most 64 characters. The one rule for a tool's
# name: the config and the tool runner use it too.
FUNCTION_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}"
_FUNCTION_NAME = re.compile(FUNCTION_NAME_PATTERN)
_MODEL_NAME = re.compile(r"[A-Za-z0-9_.\-/@]+")

# A BCP-47 language tag as pilive takes one (speechConfig.languageCode, and the language hints
# of inputAudioTranscription.languageCodes): a 2-3 letter language, then subtags.
LANGUAGE_TAG_PATTERN = r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*"
# proto3 int32 (topK, maxOutputTokens, seed, thinkingBudget).
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


class LiveProtocolError(ValueError):
    """A server frame that is not a valid Live API message; the message says what and where."""


def _check_choice(owner: str, name: str, value: str | None, allowed: Sequence[str]) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"{owner}.{name}: {value!r} is not one of {', '.join(allowed)}")


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


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)
