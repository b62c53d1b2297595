"""The Live API setup's field names, in snake_case as the protocol and the SDK's types have them.

One list for whoever must know them: the emulator refuses a setup with a field outside them (the
1007 the service sends), and the token service refuses a lock (`fieldMask` path) that names none
of them, since the API takes a mask as written and a path it does not know locks nothing.
"""

from __future__ import annotations

import re

SETUP_FIELDS = frozenset(
    {
        "model",
        "generation_config",
        "system_instruction",
        "tools",
        "realtime_input_config",
        "session_resumption",
        "context_window_compression",
        "input_audio_transcription",
        "output_audio_transcription",
        "proactivity",
        "explicit_vad_signal",
        "history_config",
        "avatar_config",
        "safety_settings",
    }
)
# generationConfig as the proto has it; the Live setup refuses the ones in
# GENERATION_NOT_IN_LIVE (BidiGenerateContentSetup.generation_config's documentation).
GENERATION_FIELDS = frozenset(
    {
        "candidate_count",
        "max_output_tokens",
        "temperature",
        "top_p",
        "top_k",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "response_modalities",
        "speech_config",
        "media_resolution",
        "thinking_config",
        "enable_affective_dialog",
        "enable_enhanced_civic_answers",
        "image_config",
        "translation_config",
    }
)
GENERATION_NOT_IN_LIVE = frozenset(
    {
        "response_logprobs",
        "response_mime_type",
        "logprobs",
        "response_schema",
        "response_json_schema",
        "stop_sequences",
        "routing_config",
        "audio_timestamp",
    }
)
THINKING_FIELDS = frozenset({"include_thoughts", "thinking_budget", "thinking_level"})
# AudioTranscriptionConfig in google-genai 3.6.1 (most are newer than the Live reference).
TRANSCRIPTION_FIELDS = frozenset(
    {
        "language_codes",
        "language_auto",
        "language_hints",
        "custom_vocabulary",
        "adaptation_phrases",
        "word_timestamp",
        "diarization",
        "mode",
        "source_text",
    }
)

REALTIME_INPUT_CONFIG_FIELDS = frozenset(
    {"automatic_activity_detection", "activity_handling", "turn_coverage"}
)
PROACTIVITY_FIELDS = frozenset({"proactive_audio", "proactive_video"})
CONTEXT_WINDOW_COMPRESSION_FIELDS = frozenset({"trigger_tokens", "sliding_window"})
SESSION_RESUMPTION_FIELDS = frozenset({"handle", "transparent"})

SETUP_SUBFIELDS: dict[str, frozenset[str]] = {
    "generation_config": GENERATION_FIELDS,
    "realtime_input_config": REALTIME_INPUT_CONFIG_FIELDS,
    "proactivity": PROACTIVITY_FIELDS,
    "context_window_compression": CONTEXT_WINDOW_COMPRESSION_FIELDS,
    "session_resumption": SESSION_RESUMPTION_FIELDS,
    "input_audio_transcription": TRANSCRIPTION_FIELDS,
    "output_audio_transcription": TRANSCRIPTION_FIELDS,
}
"""The fields one level down of each setup field whose object the API defines (google-genai
3.6.1's types); the others (tools, safety settings, ...) are not listed here."""


def snake(name: str) -> str:
    """camelCase -> snake_case (proto3 JSON takes both spellings)."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def camel(name: str) -> str:
    """snake_case -> camelCase, as the wire and the fieldMask spell fields."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
