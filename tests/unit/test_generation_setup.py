"""The `[live]` keys for thinking, native-audio features, sampling and transcription languages:
each becomes exactly its field of the `setup` frame (and nothing when unset), a bad value is
refused naming the key and the value, and `pilive check` says when a key does not fit the model
or the API version."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest

from pilive import config_warnings, wiring
from pilive.config import Config, ConfigError, parse_config
from pilive.config.model import ThinkingLevel
from pilive.live import wire
from pilive.live.models import KNOWN_MODELS, GenerationRequest, find_model, setup_warnings

NATIVE_2_5 = "gemini-2.5-flash-native-audio-preview-12-2025"
LEVELS_3_8 = "gemini-3.8-live-extended-thinking"
LEVELS_3_1 = "gemini-3.1-flash-live-preview"
NO_THINKING_3_8 = "gemini-3.8-live"


def config(live: str = "", model: str = NATIVE_2_5, api_version: str = "v1alpha") -> Config:
    return parse_config(
        f'[live]\nmodel = "{model}"\napi_version = "{api_version}"\n{live}', environ={}
    )


def setup_of(cfg: Config) -> dict[str, Any]:
    frame = json.loads(wire.build_setup(wiring.setup_options(cfg)))
    assert list(frame) == ["setup"]
    setup: dict[str, Any] = frame["setup"]
    return setup


def problems_of(live: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config(live)
    return [str(p) for p in caught.value.problems]


# --- the frame each key produces -------------------------------------------------------------


def test_unset_keys_add_nothing_to_the_frame() -> None:
    """The defaults send none of the new fields: the model's own defaults apply."""
    setup = setup_of(config())
    generation = setup["generationConfig"]
    for field in (
        "thinkingConfig",
        "enableAffectiveDialog",
        "temperature",
        "topP",
        "topK",
        "maxOutputTokens",
        "seed",
    ):
        assert field not in generation, field
    assert "proactivity" not in setup
    assert setup["inputAudioTranscription"] == {}


@pytest.mark.parametrize("budget", [-1, 0, 1024])
def test_thinking_budget(budget: int) -> None:
    """thinking_budget -> generationConfig.thinkingConfig.thinkingBudget (-1 and 0 included)."""
    setup = setup_of(config(f"thinking_budget = {budget}\n"))
    assert setup["generationConfig"]["thinkingConfig"] == {"thinkingBudget": budget}


@pytest.mark.parametrize("level", ["minimal", "low", "medium", "high"])
def test_thinking_level(level: str) -> None:
    """thinking_level -> thinkingConfig.thinkingLevel as the API's enum name."""
    setup = setup_of(config(f'thinking_level = "{level}"\n', model=LEVELS_3_1))
    assert setup["generationConfig"]["thinkingConfig"] == {"thinkingLevel": level.upper()}


def test_include_thoughts_alone_and_with_a_budget() -> None:
    """include_thoughts -> thinkingConfig.includeThoughts, beside a budget or on its own."""
    alone = setup_of(config("include_thoughts = true\n"))
    assert alone["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}
    both = setup_of(config("include_thoughts = true\nthinking_budget = 512\n"))
    assert both["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 512,
        "includeThoughts": True,
    }


@pytest.mark.parametrize("value", [True, False])
def test_affective_dialog(value: bool) -> None:
    """affective_dialog -> generationConfig.enableAffectiveDialog, true or false as set."""
    setup = setup_of(config(f"affective_dialog = {str(value).lower()}\n"))
    assert setup["generationConfig"]["enableAffectiveDialog"] is value


@pytest.mark.parametrize("value", [True, False])
def test_proactive_audio(value: bool) -> None:
    """proactive_audio -> setup.proactivity.proactiveAudio, true or false as set."""
    assert setup_of(config(f"proactive_audio = {str(value).lower()}\n"))["proactivity"] == {
        "proactiveAudio": value
    }


@pytest.mark.parametrize(
    ("key", "toml", "field", "sent"),
    [
        ("temperature", "0.7", "temperature", 0.7),
        ("temperature", "0", "temperature", 0.0),
        ("top_p", "0.9", "topP", 0.9),
        ("top_k", "40", "topK", 40),
        ("max_output_tokens", "1024", "maxOutputTokens", 1024),
        ("seed", "-7", "seed", -7),
    ],
)
def test_sampling_keys(key: str, toml: str, field: str, sent: object) -> None:
    """Each sampling key -> its generationConfig field, with the value as given."""
    generation = setup_of(config(f"{key} = {toml}\n"))["generationConfig"]
    assert generation[field] == sent
    assert type(generation[field]) is type(sent)


def test_input_transcription_languages() -> None:
    """input_transcription_languages -> inputAudioTranscription.languageCodes, in order."""
    setup = setup_of(config('input_transcription_languages = ["de-DE", "en-US", "fr"]\n'))
    assert setup["inputAudioTranscription"] == {"languageCodes": ["de-DE", "en-US", "fr"]}


# --- bad values name the key and the value ---------------------------------------------------


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        ("thinking_budget = -2", "live.thinking_budget = -2: must be between -1 and"),
        ("thinking_budget = 1.5", "live.thinking_budget = 1.5: must be a whole number"),
        ('thinking_level = "xhigh"', 'live.thinking_level = "xhigh": must be one of'),
        ('thinking_level = "hihg"', 'did you mean "high"?'),
        ("include_thoughts = 1", "live.include_thoughts = 1: must be true or false"),
        ('affective_dialog = "yes"', 'live.affective_dialog = "yes": must be true or false'),
        ("proactive_audio = 0", "live.proactive_audio = 0: must be true or false"),
        ("temperature = 2.5", "live.temperature = 2.5: must be between 0 and 2"),
        ("temperature = -0.1", "live.temperature = -0.1: must be between 0 and 2"),
        ("temperature = nan", "live.temperature = nan: must be a finite number"),
        ("top_p = 1.01", "live.top_p = 1.01: must be between 0 and 1"),
        ("top_k = 0", "live.top_k = 0: must be between 1 and"),
        ("max_output_tokens = 0", "live.max_output_tokens = 0: must be between 1 and"),
        ("seed = 4294967296", "live.seed = 4294967296: must be between -2147483648 and"),
        (
            'input_transcription_languages = ["en_US"]',
            'live.input_transcription_languages[0] = "en_US": must be a BCP-47 language code',
        ),
        (
            'input_transcription_languages = "en-US"',
            'live.input_transcription_languages = "en-US": must be an array',
        ),
        (
            'input_transcription_languages = ["en-US", "en-US"]',
            'live.input_transcription_languages[1] = "en-US": is listed twice',
        ),
        (
            'input_transcription = false\ninput_transcription_languages = ["en-US"]',
            'live.input_transcription_languages = ["en-US"]: needs live.input_transcription',
        ),
        (
            'thinking_budget = 0\nthinking_level = "low"',
            'live.thinking_level = "low": give live.thinking_budget (0) or live.thinking_level',
        ),
    ],
)
def test_bad_values_name_the_key_and_the_value(live: str, expected: str) -> None:
    problems = problems_of(live + "\n")
    assert any(expected in p for p in problems), problems


def test_the_wire_options_refuse_what_the_config_refuses() -> None:
    """GenerationOptions itself holds the rules, for callers that bypass the config."""
    bad: list[dict[str, object]] = [
        {"temperature": 2.1},
        {"temperature": float("inf")},
        {"top_p": -0.5},
        {"top_k": 0},
        {"max_output_tokens": True},
        {"seed": 2**31},
        {"thinking_budget": -2},
        {"thinking_level": "low"},
        {"thinking_budget": 0, "thinking_level": "LOW"},
    ]
    for kwargs in bad:
        with pytest.raises(ValueError, match="GenerationOptions"):
            wire.GenerationOptions(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a BCP-47"):
        wire.SetupOptions(
            model="m", input_audio_transcription=True, input_transcription_language_codes=("x",)
        )
    with pytest.raises(ValueError, match="need input_audio_transcription"):
        wire.SetupOptions(model="m", input_transcription_language_codes=("en-US",))


# --- what `pilive check` says ----------------------------------------------------------------


def warnings_of(live: str, model: str, api_version: str = "v1beta") -> list[str]:
    return config_warnings.model_warnings(config(live, model=model, api_version=api_version))


def test_every_key_valid_on_a_2_5_model_on_v1alpha_draws_no_warning() -> None:
    """The full set on the 2.5 native-audio model with v1alpha is what that model takes."""
    live = (
        "thinking_budget = -1\ninclude_thoughts = true\naffective_dialog = true\n"
        "proactive_audio = true\ntemperature = 0.7\ntop_p = 0.9\ntop_k = 40\n"
        'max_output_tokens = 1024\nseed = 7\ninput_transcription_languages = ["en-US"]\n'
    )
    assert warnings_of(live, NATIVE_2_5, "v1alpha") == []


@pytest.mark.parametrize(
    ("live", "model", "api_version", "expected"),
    [
        ("affective_dialog = true", NATIVE_2_5, "v1beta", 'needs api_version = "v1alpha"'),
        ("proactive_audio = true", NATIVE_2_5, "v1", 'needs api_version = "v1alpha"'),
        ("affective_dialog = true", "gemini-9-unknown", "v1beta", 'needs api_version = "v1alpha"'),
        ("affective_dialog = false", NATIVE_2_5, "v1beta", "exists on v1alpha only"),
        ("proactive_audio = false", NATIVE_2_5, "v1", "exists on v1alpha only"),
        ("affective_dialog = true", NO_THINKING_3_8, "v1alpha", "no longer has it"),
        ("proactive_audio = false", NO_THINKING_3_8, "v1beta", "cannot be turned off"),
        ("proactive_audio = true", LEVELS_3_1, "v1alpha", "never completes such a setup"),
        ("thinking_budget = 100", NO_THINKING_3_8, "v1beta", "takes no thinking configuration"),
        ("include_thoughts = true", NO_THINKING_3_8, "v1beta", "takes no thinking configuration"),
        ('thinking_level = "low"', NATIVE_2_5, "v1beta", "takes thinking_budget"),
        ("thinking_budget = 100", LEVELS_3_8, "v1beta", "takes thinking_level (low/medium/high)"),
        ('thinking_level = "minimal"', LEVELS_3_8, "v1beta", "takes only low/medium/high"),
        ("thinking_budget = 30000", NATIVE_2_5, "v1beta", "takes -1 (dynamic) or 0 to 24576"),
        ("include_thoughts = true\nthinking_budget = 0", NATIVE_2_5, "v1beta", "no thoughts"),
        ("temperature = 0.2", NO_THINKING_3_8, "v1beta", "advises leaving"),
        ("max_output_tokens = 9000", NATIVE_2_5, "v1beta", "stops at 8192 tokens"),
    ],
)
def test_pilive_check_says_what_the_model_or_version_will_not_take(
    live: str, model: str, api_version: str, expected: str
) -> None:
    """Each warning names the key (and its value) and what the server will do with it."""
    found = warnings_of(live + "\n", model, api_version)
    matching = [w for w in found if expected in w]
    assert matching, found
    keys = {line.split(" =")[0] for line in live.split("\n")}
    assert all(any(w.startswith(f"live.{k}") for k in keys) for w in matching), matching


def test_keys_that_fit_draw_no_warning() -> None:
    """A level the model has, proactive audio on an always-on model, temperature 1.0 on 3.x."""
    assert warnings_of('thinking_level = "high"\ninclude_thoughts = true\n', LEVELS_3_8) == []
    legacy = warnings_of('thinking_level = "minimal"\n', LEVELS_3_1)
    assert not any("thinking" in w for w in legacy), legacy  # only the model's own warnings
    assert warnings_of("proactive_audio = true\ntemperature = 1.0\n", NO_THINKING_3_8) == []
    assert warnings_of("max_output_tokens = 8192\n", NATIVE_2_5) == []
    off = "affective_dialog = false\nproactive_audio = false\n"
    assert warnings_of(off, NATIVE_2_5, "v1alpha") == []


def test_the_config_offers_exactly_the_levels_some_model_takes() -> None:
    """config's ThinkingLevel = the union of the model table's levels, each a wire enum name."""
    offered = set(typing.get_args(ThinkingLevel))
    taken = {level for m in KNOWN_MODELS for level in m.thinking_levels}
    assert offered == taken
    assert {level.upper() for level in offered} <= set(wire.THINKING_LEVELS)


def test_warnings_come_from_one_place() -> None:
    """config_warnings.model_warnings is setup_warnings with the config's keys (no second copy)."""
    cfg = config("thinking_budget = 0\ninclude_thoughts = true\n", api_version="v1beta")
    direct = setup_warnings(
        NATIVE_2_5,
        api_version="v1beta",
        response_modality="audio",
        has_functions=True,
        generation=GenerationRequest(thinking_budget=0, include_thoughts=True),
    )
    assert config_warnings.model_warnings(cfg) == direct != []
    model = find_model(NATIVE_2_5)
    assert model is not None and model.thinks() and not model.thinks(0)


EVERY_KEY = (
    "thinking_budget = 2048\ninclude_thoughts = true\naffective_dialog = true\n"
    "proactive_audio = true\ntemperature = 0.7\ntop_p = 0.9\ntop_k = 40\n"
    'max_output_tokens = 1024\nseed = 7\ninput_transcription_languages = ["en-US", "de-DE"]\n'
)


def test_the_frame_with_every_key_set() -> None:
    """Every key at once, on the model that takes them all (2.5 native audio, v1alpha): each
    lands in its one place, beside the fields that were there before."""
    setup = setup_of(config(EVERY_KEY))
    assert setup["model"] == f"models/{NATIVE_2_5}"
    assert setup["generationConfig"] == {
        "responseModalities": ["AUDIO"],
        "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}}},
        "mediaResolution": "MEDIA_RESOLUTION_LOW",
        "temperature": 0.7,
        "topP": 0.9,
        "topK": 40,
        "maxOutputTokens": 1024,
        "seed": 7,
        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
        "enableAffectiveDialog": True,
    }
    assert setup["proactivity"] == {"proactiveAudio": True}
    assert setup["inputAudioTranscription"] == {"languageCodes": ["en-US", "de-DE"]}
    assert setup["outputAudioTranscription"] == {}
    assert warnings_of(EVERY_KEY, NATIVE_2_5, "v1alpha") == []
