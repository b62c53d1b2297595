"""Live API (BidiGenerateContent) wire format: client frame builders and the server frame parser.

This is the only daemon module that knows Live API JSON field names. Builders emit canonical
lowerCamel JSON text frames with exactly one top-level key; the parser accepts text or binary
frames, lowerCamel or snake_case names at every level, unknown fields, int64 values as strings and
both base64 alphabets, and turns anything malformed into one error type, `LiveProtocolError`.

Audio is the hot path both ways: a 20 ms mic chunk becomes one base64 call plus a concatenation
with precomputed JSON around it; a received audio part is decoded straight from its base64 text.

The module is a facade over four parts split along the protocol's seams: `wire_rules` (names
and rules both directions share), `setup_message` (the setup frame), `client_frames` (what is sent
after it) and `server_frames` (the parser). Callers import from here.
"""

from __future__ import annotations

from pilive.live.client_frames import (
    ContentTurn,
    FunctionResponse,
    build_activity_end,
    build_activity_start,
    build_audio,
    build_audio_stream_end,
    build_client_content,
    build_text,
    build_tool_response,
    build_video,
)
from pilive.live.server_frames import (
    parse_server_message,
)
from pilive.live.setup_message import (
    FunctionDeclaration,
    GenerationOptions,
    SetupOptions,
    VadOptions,
    build_setup,
)
from pilive.live.wire_rules import (
    ACTIVITY_HANDLINGS,
    BEHAVIORS,
    END_SENSITIVITIES,
    FUNCTION_NAME_PATTERN,
    INPUT_AUDIO_RATE_HZ,
    INT32_MAX,
    INT32_MIN,
    LANGUAGE_TAG_PATTERN,
    MEDIA_RESOLUTIONS,
    OUTPUT_AUDIO_RATE_HZ,
    RESPONSE_MODALITIES,
    SCHEDULINGS,
    START_SENSITIVITIES,
    THINKING_LEVELS,
    TURN_COVERAGES,
    LiveProtocolError,
)

__all__ = [
    "ACTIVITY_HANDLINGS",
    "BEHAVIORS",
    "END_SENSITIVITIES",
    "FUNCTION_NAME_PATTERN",
    "INPUT_AUDIO_RATE_HZ",
    "INT32_MAX",
    "INT32_MIN",
    "LANGUAGE_TAG_PATTERN",
    "MEDIA_RESOLUTIONS",
    "OUTPUT_AUDIO_RATE_HZ",
    "RESPONSE_MODALITIES",
    "SCHEDULINGS",
    "START_SENSITIVITIES",
    "THINKING_LEVELS",
    "TURN_COVERAGES",
    "ContentTurn",
    "FunctionDeclaration",
    "FunctionResponse",
    "GenerationOptions",
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
