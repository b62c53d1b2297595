"""The Live models and how they differ: one table, used by the emulator and by `pilive check`.

Pure data (stdlib only). Facts are from the public model pages and the deprecations page as of
December 2026, and from user reports where a page says nothing; each row's `notes` names its
source. Models come and go: when Google retires one, its row moves to "retired" with the
shutdown date and the replacement the deprecations page names.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

STATUSES = ("stable", "preview", "legacy", "deprecated", "retired")
THINKING_KINDS = ("budget", "level", "none")
TOOL_BEHAVIORS = ("BLOCKING", "NON_BLOCKING")
FEATURE_SUPPORT = ("v1alpha", "unsupported", "removed", "always-on")
# `thinkingConfig.thinkingBudget`: -1 asks for dynamic thinking, 0 turns it off.
DYNAMIC_THINKING_BUDGET = -1

AUDIO_ONLY = ("AUDIO",)
AUDIO_AND_TEXT = ("AUDIO", "TEXT")
ONLY_ACTIVITY = "TURN_INCLUDES_ONLY_ACTIVITY"
AUDIO_ACTIVITY_AND_ALL_VIDEO = "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO"


@dataclass(frozen=True, slots=True)
class LiveModel:
    """What one Live model accepts in `setup` and how it behaves by default.

    `thinking`: "budget" takes `thinkingConfig.thinkingBudget`, "level" takes
    `thinkingConfig.thinkingLevel` (one of `thinking_levels`, lower case), "none" takes no
    `thinkingConfig` at all. `tool_behaviors`: the `FunctionDeclaration.behavior` values accepted;
    `default_tool_behavior` is what a declaration without one gets. `affective_dialog`
    (`generationConfig.enableAffectiveDialog`) and `proactive_audio` (`proactivity.proactiveAudio`):
    "v1alpha" (only on that API version), "unsupported", "removed" (setting it is an error) or
    "always-on" (turning it off is an error). `thinking_budget_max`: the largest
    `thinkingBudget` a "budget" model takes (besides -1, dynamic). `output_token_limit`: where the
    model stops whatever `maxOutputTokens` asks (None: not published). `keep_default_temperature`:
    Google's guide for the model family says to leave `temperature` at 1.0 (lower may loop).
    """

    name: str
    status: str
    shutdown: str | None
    replacement: str | None
    thinking: str
    thinking_levels: tuple[str, ...]
    tool_behaviors: tuple[str, ...]
    default_tool_behavior: str
    affective_dialog: str
    proactive_audio: str
    client_content_after_first_turn: bool
    default_turn_coverage: str
    response_modalities: tuple[str, ...]
    notes: str
    thinking_budget_max: int | None = None
    output_token_limit: int | None = None
    keep_default_temperature: bool = False

    @property
    def retired(self) -> bool:
        return self.status == "retired"

    def thinks(self, thinking_budget: int | None = None) -> bool:
        """Whether the model thinks before it answers with this budget (None: the model's
        default, dynamic on 2.5 models): only such a turn has thoughts to include."""
        return self.thinking != "none" and thinking_budget != 0


_NATIVE_AUDIO_2_5 = LiveModel(
    name="gemini-2.5-flash-native-audio-preview-12-2025",
    status="preview",
    shutdown=None,
    replacement=None,
    thinking="budget",
    thinking_levels=(),
    tool_behaviors=TOOL_BEHAVIORS,
    default_tool_behavior="BLOCKING",
    affective_dialog="v1alpha",
    proactive_audio="v1alpha",
    client_content_after_first_turn=True,
    default_turn_coverage=ONLY_ACTIVITY,
    response_modalities=AUDIO_AND_TEXT,
    notes=(
        "thinkingBudget (dynamic by default, 0 to 24576 like 2.5 Flash), thought summaries with "
        "includeThoughts; 8192 output tokens; BLOCKING by default, NON_BLOCKING accepted; "
        "affective dialog and proactive audio on v1alpha (2.5 Flash native audio model page, "
        "Live API capabilities guide)"
    ),
    thinking_budget_max=24_576,
    output_token_limit=8_192,
)


def _retired(name: str, shutdown: str | None, replacement: str | None, notes: str) -> LiveModel:
    """A shut-down model: the service answers its setup with 1008 "models/X is not found"."""
    return replace(
        _NATIVE_AUDIO_2_5,
        name=name,
        status="retired",
        shutdown=shutdown,
        replacement=replacement,
        notes=notes,
    )


_GEMINI_3_8 = LiveModel(
    name="gemini-3.8-live",
    status="stable",
    shutdown=None,
    replacement=None,
    thinking="none",
    thinking_levels=(),
    tool_behaviors=TOOL_BEHAVIORS,
    default_tool_behavior="NON_BLOCKING",
    affective_dialog="removed",
    proactive_audio="always-on",
    client_content_after_first_turn=True,
    default_turn_coverage=AUDIO_ACTIVITY_AND_ALL_VIDEO,
    response_modalities=AUDIO_ONLY,
    notes=(
        "GA Sept 2026, the default for low-latency voice agents; no thinkingConfig; async "
        "function calls (NON_BLOCKING by default, scheduling SILENT/WHEN_IDLE/INTERRUPT); "
        "proactive audio always on; affective dialog removed (model page "
        "ai.google.dev/gemini-api/docs/models/gemini-3.8-live); temperature best left at 1.0 "
        "(Gemini 3 prompting guide)"
    ),
    keep_default_temperature=True,
)

KNOWN_MODELS: tuple[LiveModel, ...] = (
    _GEMINI_3_8,
    LiveModel(
        name="gemini-3.8-live-extended-thinking",
        status="stable",
        shutdown=None,
        replacement=None,
        thinking="level",
        thinking_levels=("low", "medium", "high"),
        tool_behaviors=_GEMINI_3_8.tool_behaviors,
        default_tool_behavior=_GEMINI_3_8.default_tool_behavior,
        affective_dialog=_GEMINI_3_8.affective_dialog,
        proactive_audio=_GEMINI_3_8.proactive_audio,
        client_content_after_first_turn=True,
        default_turn_coverage=_GEMINI_3_8.default_turn_coverage,
        response_modalities=AUDIO_ONLY,
        notes=(
            "gemini-3.8-live with thinkingLevel low/medium/high (model page "
            "ai.google.dev/gemini-api/docs/models/gemini-3.8-live)"
        ),
        keep_default_temperature=True,
    ),
    LiveModel(
        name="gemini-3.1-flash-live-preview",
        status="legacy",
        shutdown=None,
        replacement="gemini-3.8-live",
        thinking="level",
        thinking_levels=("minimal", "low", "medium", "high"),
        tool_behaviors=("BLOCKING",),
        default_tool_behavior="BLOCKING",
        affective_dialog="unsupported",
        proactive_audio="unsupported",
        client_content_after_first_turn=False,
        default_turn_coverage=AUDIO_ACTIVITY_AND_ALL_VIDEO,
        response_modalities=AUDIO_AND_TEXT,
        notes=(
            "preview of March 2026: thinkingLevel, not thinkingBudget; synchronous function calls "
            "only (3.1 model page); affective dialog or proactivity get no setupComplete "
            "(Patter#210, livekit/agents#5985); clientContent after the first model turn refused "
            "with 1007 (cookbook#1197, #1263); 65536 output tokens (reported by model "
            "listings, not the model page); temperature best left at 1.0 (Gemini 3 prompting "
            "guide)"
        ),
        output_token_limit=65_536,
        keep_default_temperature=True,
    ),
    _NATIVE_AUDIO_2_5,
    replace(
        _NATIVE_AUDIO_2_5,
        name="gemini-2.5-flash-native-audio-preview-09-2025",
        status="deprecated",
        replacement="gemini-3.8-live",
        notes=(
            "like the 12-2025 preview; reported deprecated in March 2026 (python-genai#2117, "
            "unconfirmed) and still served"
        ),
    ),
    replace(
        _NATIVE_AUDIO_2_5,
        name="gemini-2.5-flash-native-audio-latest",
        notes="alias of the newest 2.5 native-audio preview (2.5 Flash native audio model page)",
    ),
    _retired(
        "gemini-live-2.5-flash-preview",
        "2025-12-09",
        "gemini-2.5-flash-native-audio-preview-12-2025",
        "shut down 2025-12-09 (deprecations page, which names the 12-2025 preview as its "
        "replacement; today's recommendation is gemini-3.8-live)",
    ),
    _retired(
        "gemini-2.0-flash-live-001",
        "2025-12-09",
        "gemini-2.5-flash-native-audio-preview-12-2025",
        "shut down 2025-12-09 (deprecations page, which names the 12-2025 preview as its "
        "replacement; today's recommendation is gemini-3.8-live)",
    ),
    _retired(
        "gemini-2.0-flash-live-preview-04-09",
        None,
        "gemini-3.8-live",
        "experimental 2.0 Live preview, no longer served (deprecations page gives no date)",
    ),
    _retired(
        "gemini-2.0-flash-exp",
        None,
        "gemini-3.8-live",
        "experimental 2.0 model, no longer served for Live (deprecations page gives no date)",
    ),
)

DEFAULT_MODEL: str = "gemini-3.8-live"

_BY_NAME = {model.name: model for model in KNOWN_MODELS}


def find_model(name: str) -> LiveModel | None:
    """The row for `name` (with or without the "models/" prefix), or None if unknown."""
    return _BY_NAME.get(name.removeprefix("models/"))


def takes_non_blocking(name: str) -> bool:
    """Whether the model runs NON_BLOCKING functions (it talks on while they run). An unknown
    name gets the benefit of the doubt: the user asked for it, and `pilive check` warns."""
    model = find_model(name)
    return model is None or "NON_BLOCKING" in model.tool_behaviors


def declared_behavior(name: str, behavior: str) -> str | None:
    """`FunctionDeclaration.behavior` to send for a function that is to run as `behavior`
    (BLOCKING or NON_BLOCKING), or None to leave the field out. NON_BLOCKING is always said; so
    is BLOCKING where an undeclared function is NON_BLOCKING (3.8 Live). Elsewhere BLOCKING is the
    default and is left out, since synchronous-only models are not known to accept the field."""
    if behavior == "NON_BLOCKING":
        return behavior
    model = find_model(name)
    return behavior if model is not None and model.default_tool_behavior != behavior else None


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """The model-dependent `[live]` keys a config sets (None: unset), in the config's words
    (`thinking_level` lower case), for `setup_warnings` to hold against a model's row."""

    thinking_budget: int | None = None
    thinking_level: str | None = None
    include_thoughts: bool = False
    affective_dialog: bool | None = None
    proactive_audio: bool | None = None
    temperature: float | None = None
    max_output_tokens: int | None = None


def setup_warnings(
    name: str,
    *,
    api_version: str,
    response_modality: str,
    has_functions: bool,
    generation: GenerationRequest = GenerationRequest(),
) -> list[str]:
    """What `pilive check` (and the daemon at start) should say about running this model with
    these options: a retired or unknown model, one on its way out, an option it refuses."""
    model = find_model(name)
    shown = name.removeprefix("models/")
    if model is None:
        return [
            f"live.model {shown!r} is not a Live model pilive knows; the server may refuse it "
            f"(known: {', '.join(m.name for m in KNOWN_MODELS if not m.retired)})",
            *_v1alpha_warnings(
                [k for k in ("affective_dialog", "proactive_audio") if getattr(generation, k)],
                api_version,
                refused=False,
            ),
        ]
    warnings: list[str] = []
    if model.retired:
        when = f" on {model.shutdown}" if model.shutdown else ""
        warnings.append(
            f"live.model {shown!r} was shut down{when}: the server refuses it (1008 "
            f"'not found'); use {model.replacement or DEFAULT_MODEL!r}"
        )
        return warnings
    if model.status in ("deprecated", "legacy"):
        warnings.append(
            f"live.model {shown!r} is {model.status}; {model.replacement or DEFAULT_MODEL!r} "
            "is its successor"
        )
    if response_modality.upper() not in model.response_modalities:
        warnings.append(
            f"live.response_modality {response_modality!r}: {shown!r} answers only in "
            f"{'/'.join(m.lower() for m in model.response_modalities)}; the setup will be refused"
        )
    if has_functions and model.tool_behaviors == ("BLOCKING",):
        warnings.append(
            f"{shown!r} runs function calls synchronously only: the model says nothing until a "
            "tool's result is back (keep [[tools.command]] timeout_s short)"
        )
    warnings += _thinking_warnings(model, generation)
    warnings += _native_audio_warnings(model, generation, api_version)
    warnings += _sampling_warnings(model, generation)
    return warnings


_REFUSED = "the setup will be refused"


def _thinking_warnings(model: LiveModel, request: GenerationRequest) -> list[str]:
    """`thinkingConfig` against the model's kind: each knob it lacks is refused (1007)."""
    budget, level = request.thinking_budget, request.thinking_level
    name = model.name
    if model.thinking == "none":
        asked = [
            key
            for key, value in (
                ("thinking_budget", budget),
                ("thinking_level", level),
                ("include_thoughts", request.include_thoughts or None),
            )
            if value is not None
        ]
        if asked:
            return [f"live.{asked[0]}: {name!r} takes no thinking configuration at all; {_REFUSED}"]
        return []
    out: list[str] = []
    levels = "/".join(model.thinking_levels)
    if model.thinking == "budget" and level is not None:
        out.append(
            f"live.thinking_level {level!r}: {name!r} takes thinking_budget (-1 dynamic, 0 off), "
            f"not a level; {_REFUSED}"
        )
    if model.thinking == "level" and budget is not None:
        out.append(
            f"live.thinking_budget {budget}: {name!r} takes thinking_level ({levels}), not a "
            f"budget; {_REFUSED}"
        )
    if model.thinking == "level" and level is not None and level not in model.thinking_levels:
        out.append(f"live.thinking_level {level!r}: {name!r} takes only {levels}; {_REFUSED}")
    top = model.thinking_budget_max
    if (
        model.thinking == "budget"
        and budget is not None
        and budget != DYNAMIC_THINKING_BUDGET
        and top is not None
        and not 0 <= budget <= top
    ):
        out.append(
            f"live.thinking_budget {budget}: {name!r} takes -1 (dynamic) or 0 to {top}; {_REFUSED}"
        )
    if request.include_thoughts and not model.thinks(budget):
        out.append(
            "live.include_thoughts: thinking is off (thinking_budget = 0), so there are no "
            "thoughts to include"
        )
    return out


def _native_audio_warnings(
    model: LiveModel, request: GenerationRequest, api_version: str
) -> list[str]:
    """Affective dialog and proactive audio: per model, and only on v1alpha where the model has
    them there."""
    name = model.name
    out: list[str] = []
    for key, support, value in (
        ("affective_dialog", model.affective_dialog, request.affective_dialog),
        ("proactive_audio", model.proactive_audio, request.proactive_audio),
    ):
        if value is None:
            continue
        shown = f"live.{key} = {'true' if value else 'false'}"
        if support == "removed":
            out.append(f"{shown}: {name!r} no longer has it; {_REFUSED}")
        elif support == "always-on" and not value:
            out.append(f"{shown}: it cannot be turned off on {name!r}; {_REFUSED}")
        elif support == "unsupported" and value:
            out.append(
                f"{shown}: {name!r} does not support it; the server never completes such a "
                "setup (the daemon times out and retries)"
            )
        elif support == "v1alpha" and value:
            out += _v1alpha_warnings([key], api_version, refused=True)
        elif support == "v1alpha" and api_version != "v1alpha":
            out.append(
                f"{shown}: the field exists on v1alpha only (api_version is {api_version!r}), "
                "so the server may refuse the setup; it is off unless turned on: leave the "
                "key out"
            )
    return out


def _v1alpha_warnings(keys: list[str], api_version: str, *, refused: bool) -> list[str]:
    """Affective dialog and proactive audio (turned on by `keys`) are v1alpha features."""
    if api_version == "v1alpha":
        return []
    outcome = _REFUSED if refused else "the server may refuse it"
    return [
        f'live.{key} = true needs api_version = "v1alpha" (it is {api_version!r}); {outcome}'
        for key in keys
    ]


def _sampling_warnings(model: LiveModel, request: GenerationRequest) -> list[str]:
    out: list[str] = []
    temperature = request.temperature
    if model.keep_default_temperature and temperature is not None and temperature < 1.0:
        out.append(
            f"live.temperature {temperature:g}: Google advises leaving {model.name!r} at 1.0; "
            "lower values may make it loop or answer worse"
        )
    limit, asked = model.output_token_limit, request.max_output_tokens
    if limit is not None and asked is not None and asked > limit:
        out.append(
            f"live.max_output_tokens {asked}: {model.name!r} stops at {limit} tokens whatever "
            "is asked"
        )
    return out
