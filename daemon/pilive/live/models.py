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
    "always-on" (turning it off is an error).
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

    @property
    def retired(self) -> bool:
        return self.status == "retired"


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
        "thinkingBudget; BLOCKING by default, NON_BLOCKING accepted; affective dialog and "
        "proactive audio on v1alpha (2.5 Flash native audio model page)"
    ),
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
        "ai.google.dev/gemini-api/docs/models/gemini-3.8-live)"
    ),
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
            "with 1007 (cookbook#1197, #1263)"
        ),
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


def setup_warnings(
    name: str, *, api_version: str, response_modality: str, has_functions: bool
) -> list[str]:
    """What `pilive check` (and the daemon at start) should say about running this model with
    these options: a retired or unknown model, one on its way out, an option it refuses."""
    model = find_model(name)
    shown = name.removeprefix("models/")
    if model is None:
        return [
            f"live.model {shown!r} is not a Live model pilive knows; the server may refuse it "
            f"(known: {', '.join(m.name for m in KNOWN_MODELS if not m.retired)})"
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
    del api_version  # the v1alpha-only features have no configuration keys yet
    return warnings
