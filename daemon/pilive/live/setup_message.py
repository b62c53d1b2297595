"""The `setup` message: plain frozen options a config layer fills in, and the frame built from
them (BidiGenerateContentSetup)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pilive.live.wire_rules import (
    _FUNCTION_NAME,
    _MODEL_NAME,
    ACTIVITY_HANDLINGS,
    BEHAVIORS,
    END_SENSITIVITIES,
    INT32_MAX,
    INT32_MIN,
    LANGUAGE_TAG_PATTERN,
    MEDIA_RESOLUTIONS,
    RESPONSE_MODALITIES,
    START_SENSITIVITIES,
    THINKING_LEVELS,
    TURN_COVERAGES,
    _check_choice,
    _dumps,
    _plain_json,
)

_LANGUAGE_TAG = re.compile(LANGUAGE_TAG_PATTERN)


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


def _check_int(owner: str, name: str, value: int | None, low: int, high: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{owner}.{name}: {value!r} is not an integer")
    if not low <= value <= high:
        raise ValueError(f"{owner}.{name}: {value!r} is not between {low} and {high}")


def _check_unit(owner: str, name: str, value: float | None, high: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{owner}.{name}: {value!r} is not a finite number")
    if not 0.0 <= value <= high:
        raise ValueError(f"{owner}.{name}: {value!r} is not between 0 and {high:g}")


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    """The `generationConfig` knobs beyond modality and voice; None leaves the model's default.

    Sampling: `temperature` (0-2), `top_p` (0-1), `top_k`, `max_output_tokens`, `seed`. Thinking
    (`thinkingConfig`): `thinking_budget` in tokens on 2.5 models (-1 dynamic, 0 off) or
    `thinking_level` on 3.x models, never both; `include_thoughts` asks for thought summaries
    (parts marked `thought`, which the daemon logs and never plays). `affective_dialog` is
    `enableAffectiveDialog` (v1alpha). Which model takes which is `live.models`' business.
    """

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_output_tokens: int | None = None
    seed: int | None = None
    thinking_budget: int | None = None
    thinking_level: str | None = None
    include_thoughts: bool = False
    affective_dialog: bool | None = None

    def __post_init__(self) -> None:
        owner = "GenerationOptions"
        _check_unit(owner, "temperature", self.temperature, 2.0)
        _check_unit(owner, "top_p", self.top_p, 1.0)
        _check_int(owner, "top_k", self.top_k, 1, INT32_MAX)
        _check_int(owner, "max_output_tokens", self.max_output_tokens, 1, INT32_MAX)
        _check_int(owner, "seed", self.seed, INT32_MIN, INT32_MAX)
        _check_int(owner, "thinking_budget", self.thinking_budget, -1, INT32_MAX)
        _check_choice(owner, "thinking_level", self.thinking_level, THINKING_LEVELS)
        if self.thinking_budget is not None and self.thinking_level is not None:
            raise ValueError(f"{owner}: give thinking_budget or thinking_level, not both")

    def fill_generation_config(self, generation: dict[str, object]) -> None:
        """Add the knobs that are set to a `generationConfig` object."""
        for key, value in (
            ("temperature", self.temperature),
            ("topP", self.top_p),
            ("topK", self.top_k),
            ("maxOutputTokens", self.max_output_tokens),
            ("seed", self.seed),
        ):
            if value is not None:
                generation[key] = value
        thinking: dict[str, object] = {}
        if self.thinking_budget is not None:
            thinking["thinkingBudget"] = self.thinking_budget
        if self.thinking_level is not None:
            thinking["thinkingLevel"] = self.thinking_level
        if self.include_thoughts:
            thinking["includeThoughts"] = True
        if thinking:
            generation["thinkingConfig"] = thinking
        if self.affective_dialog is not None:
            generation["enableAffectiveDialog"] = self.affective_dialog


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
    generation: GenerationOptions = field(default_factory=GenerationOptions)
    # `proactivity.proactiveAudio` (v1alpha): the model may stay silent when not addressed.
    proactive_audio: bool | None = None
    # `inputAudioTranscription.languageCodes`: BCP-47 hints of the languages the user speaks
    # (empty: detected); needs input_audio_transcription.
    input_transcription_language_codes: tuple[str, ...] = ()

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
        languages = self.input_transcription_language_codes
        for code in languages:
            if not isinstance(code, str) or not _LANGUAGE_TAG.fullmatch(code):
                raise ValueError(
                    f"SetupOptions.input_transcription_language_codes: {code!r} is not a "
                    "BCP-47 language tag"
                )
        if languages and not self.input_audio_transcription:
            raise ValueError(
                "SetupOptions.input_transcription_language_codes: language hints need "
                "input_audio_transcription"
            )


def _model_path(model: str) -> str:
    """`models/{name}` unless the name is already a resource path (models/…, projects/…)."""
    if "/" in model:
        return model
    return f"models/{model}"


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
    options.generation.fill_generation_config(generation)
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
        transcription: dict[str, object] = {}
        if options.input_transcription_language_codes:
            transcription["languageCodes"] = list(options.input_transcription_language_codes)
        setup["inputAudioTranscription"] = transcription
    if options.output_audio_transcription:
        setup["outputAudioTranscription"] = {}
    if options.proactive_audio is not None:
        setup["proactivity"] = {"proactiveAudio": options.proactive_audio}
    return _dumps({"setup": setup})
