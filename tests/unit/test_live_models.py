"""The Live model table: lookups, and the table's own consistency (every retired or deprecated
model points somewhere still served, every value is one the emulator and `pilive check` know)."""

from __future__ import annotations

import re

import pytest

from pilive.live.models import (
    DEFAULT_MODEL,
    FEATURE_SUPPORT,
    KNOWN_MODELS,
    STATUSES,
    THINKING_KINDS,
    TOOL_BEHAVIORS,
    find_model,
)

TURN_COVERAGES = {
    "TURN_INCLUDES_ONLY_ACTIVITY",
    "TURN_INCLUDES_ALL_INPUT",
    "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO",
}


@pytest.mark.parametrize("prefix", ["", "models/"])
def test_find_model_with_or_without_the_models_prefix(prefix: str) -> None:
    model = find_model(prefix + "gemini-3.1-flash-live-preview")
    assert model is not None and model.name == "gemini-3.1-flash-live-preview"
    assert find_model(prefix + "gemini-no-such-model") is None


def test_names_are_unique_and_bare() -> None:
    names = [m.name for m in KNOWN_MODELS]
    assert len(names) == len(set(names))
    assert not any(n.startswith("models/") for n in names)


def test_the_default_model_is_stable_and_served() -> None:
    model = find_model(DEFAULT_MODEL)
    assert model is not None
    assert model.status == "stable" and model.shutdown is None


def test_every_replacement_is_a_known_model_that_is_still_served() -> None:
    """A retired model's replacement may itself be retired only if the notes say what to use
    today; everything else points at a served model."""
    for model in KNOWN_MODELS:
        if model.replacement is None:
            assert model.status in {"stable", "preview"}, model.name
            continue
        replacement = find_model(model.replacement)
        assert replacement is not None, model.name
        if replacement.retired:
            assert DEFAULT_MODEL in model.notes, model.name


def test_retired_and_deprecated_models_say_what_replaces_them() -> None:
    for model in KNOWN_MODELS:
        if model.status in {"retired", "deprecated"}:
            assert model.replacement, model.name
        if model.shutdown is not None:
            assert model.retired and re.fullmatch(r"\d{4}-\d{2}-\d{2}", model.shutdown)


def test_every_value_is_one_of_the_documented_choices() -> None:
    for m in KNOWN_MODELS:
        assert m.status in STATUSES, m.name
        assert m.thinking in THINKING_KINDS, m.name
        assert bool(m.thinking_levels) == (m.thinking == "level"), m.name
        assert all(level == level.lower() for level in m.thinking_levels), m.name
        assert m.tool_behaviors and set(m.tool_behaviors) <= set(TOOL_BEHAVIORS), m.name
        assert m.default_tool_behavior in m.tool_behaviors, m.name
        assert m.affective_dialog in FEATURE_SUPPORT and m.affective_dialog != "always-on"
        assert m.proactive_audio in FEATURE_SUPPORT and m.proactive_audio != "removed"
        assert m.default_turn_coverage in TURN_COVERAGES, m.name
        assert "AUDIO" in m.response_modalities, m.name
        assert m.notes and "\n" not in m.notes, m.name


def test_the_3x_differences_the_emulator_reproduces() -> None:
    """The rows the emulator's 3.x behaviour hangs on."""
    live_3_8 = find_model("gemini-3.8-live")
    live_3_1 = find_model("gemini-3.1-flash-live-preview")
    assert live_3_8 is not None and live_3_1 is not None
    assert (live_3_8.thinking, live_3_8.default_tool_behavior) == ("none", "NON_BLOCKING")
    assert (live_3_8.affective_dialog, live_3_8.proactive_audio) == ("removed", "always-on")
    assert live_3_1.tool_behaviors == ("BLOCKING",)
    assert not live_3_1.client_content_after_first_turn
    assert live_3_1.thinking == "level" and "minimal" in live_3_1.thinking_levels
