"""The emulator holds each generation and transcription field of a setup to what the model takes
(as the service is reported to, 1007 for a field it cannot take), and a thinking model asked
for its thoughts sends them as `thought` text parts before the answer."""

from __future__ import annotations

from typing import Any

import pytest

from pilive.emulator.frames import ProtocolViolation, Setup, parse_client_frame
from pilive.emulator.model import ConnectionModel
from tests.support.emulator_rig import tone
from tests.unit.test_emulator_model import (
    LIVE_3_1,
    LIVE_3_8,
    NATIVE_12,
    _advance,
    _connect,
    _press,
    _sent,
    _setup,
)

REFUSED = (1007, "Request contains an invalid argument.")
EXTENDED = "gemini-3.8-live-extended-thinking"


def _parsed(**changes: Any) -> Setup:
    setup = parse_client_frame(_setup(NATIVE_12, **changes))
    assert isinstance(setup, Setup)
    return setup


def test_every_field_is_read_in_either_spelling() -> None:
    """camelCase as pilive sends it and snake_case as the SDK may: the same Setup."""
    camel = _parsed(
        generationConfig={
            "temperature": 0.7,
            "topP": 0.9,
            "topK": 40,
            "maxOutputTokens": 1024,
            "seed": -7,
            "thinkingConfig": {"thinkingBudget": 512, "includeThoughts": True},
        },
        inputAudioTranscription={"languageCodes": ["de-DE", "en-US"]},
    )
    snake = _parsed(
        generationConfig={
            "temperature": "0.7",
            "top_p": 0.9,
            "top_k": "40",
            "max_output_tokens": 1024.0,
            "seed": "-7",
            "thinking_config": {"thinking_budget": "512", "include_thoughts": True},
        },
        inputAudioTranscription={"language_codes": ["de-DE", "en-US"]},
    )
    assert camel == snake
    assert (camel.temperature, camel.top_p, camel.top_k) == (0.7, 0.9, 40)
    assert (camel.max_output_tokens, camel.seed, camel.thinking_budget) == (1024, -7, 512)
    assert camel.include_thoughts and camel.input_language_codes == ("de-DE", "en-US")


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"generationConfig": {"topK": 40.5}}, "topK must be a 32-bit integer"),
        ({"generationConfig": {"seed": 2**31}}, "seed must be a 32-bit integer"),
        ({"generationConfig": {"temperature": "warm"}}, "temperature must be a number"),
        ({"generationConfig": {"temperature": True}}, "temperature must be a number"),
        ({"generationConfig": {"stopSequences": ["x"]}}, "not supported in the Live API"),
        ({"generationConfig": {"responseMimeType": "text/plain"}}, "not supported in the Live"),
        ({"generationConfig": {"warmth": 1}}, 'unknown name "warmth"'),
        ({"generationConfig": {"thinkingConfig": {"depth": 1}}}, 'unknown name "depth"'),
        (
            {"generationConfig": {"thinkingConfig": {"includeThoughts": "yes"}}},
            "includeThoughts must be true or false",
        ),
        ({"inputAudioTranscription": {"languageCodes": "en-US"}}, "must be a list"),
        ({"inputAudioTranscription": {"languageCodes": ["en_US"]}}, "'en_US' is not a BCP-47"),
        ({"inputAudioTranscription": {"languageCodes": [7]}}, "7 is not a BCP-47"),
        ({"inputAudioTranscription": {"accent": "posh"}}, 'unknown name "accent"'),
    ],
)
def test_fields_that_do_not_parse_are_refused_with_1007(
    changes: dict[str, Any], detail: str
) -> None:
    with pytest.raises(ProtocolViolation) as caught:
        parse_client_frame(_setup(NATIVE_12, **changes))
    assert (caught.value.code, caught.value.reason) == REFUSED
    assert detail in caught.value.detail


@pytest.mark.parametrize(
    ("name", "generation", "accepted"),
    [
        (NATIVE_12, {"temperature": 0}, True),
        (NATIVE_12, {"temperature": 2}, True),
        (NATIVE_12, {"temperature": 2.01}, False),
        (NATIVE_12, {"temperature": -0.5}, False),
        (NATIVE_12, {"topP": 1}, True),
        (NATIVE_12, {"topP": 1.5}, False),
        (NATIVE_12, {"topK": 1}, True),
        (NATIVE_12, {"topK": 0}, False),
        (NATIVE_12, {"maxOutputTokens": 0}, False),
        (NATIVE_12, {"maxOutputTokens": 1, "seed": -(2**31)}, True),
        (NATIVE_12, {"thinkingConfig": {"thinkingBudget": -1}}, True),
        (NATIVE_12, {"thinkingConfig": {"thinkingBudget": 24576}}, True),
        (NATIVE_12, {"thinkingConfig": {"thinkingBudget": 24577}}, False),
        (NATIVE_12, {"thinkingConfig": {"thinkingBudget": -2}}, False),
        (NATIVE_12, {"thinkingConfig": {"includeThoughts": True}}, True),
        (LIVE_3_1, {"thinkingConfig": {"thinkingLevel": "MINIMAL", "includeThoughts": True}}, True),
        (EXTENDED, {"thinkingConfig": {"thinkingLevel": "HIGH", "includeThoughts": True}}, True),
        (LIVE_3_8, {"thinkingConfig": {"includeThoughts": True}}, False),
        (LIVE_3_8, {"temperature": 1.0, "topP": 0.95, "topK": 64, "seed": 3}, True),
    ],
)
def test_generation_fields_per_model(name: str, generation: dict[str, Any], accepted: bool) -> None:
    """Sampling in its documented range, the thinking budget within the model's, thoughts only
    where the model takes a thinkingConfig: accepted; anything else closes 1007."""
    model = _connect(_setup(name, generationConfig=generation))
    if accepted:
        assert _sent(model)[0] == {"setupComplete": {}}
    else:
        assert model.close_to_send == REFUSED
        assert model.violation is not None and model.violation.detail


@pytest.mark.parametrize("name", [NATIVE_12, LIVE_3_1, LIVE_3_8])
def test_language_hints_are_accepted_on_every_model(name: str) -> None:
    model = _connect(_setup(name, inputAudioTranscription={"languageCodes": ["en-GB", "fr"]}))
    assert _sent(model)[0] == {"setupComplete": {}}
    assert model.setup is not None and model.setup.input_language_codes == ("en-GB", "fr")


# --- thoughts --------------------------------------------------------------------------------


def _turn(model: ConnectionModel) -> list[dict[str, Any]]:
    _press(model, 101.0, tone(0.3))
    return _advance(model, 130.0)


def _parts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        part
        for m in messages
        for part in m.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
    ]


@pytest.mark.parametrize(
    ("name", "thinking"),
    [
        (NATIVE_12, {"includeThoughts": True}),
        (NATIVE_12, {"includeThoughts": True, "thinkingBudget": 2048}),
        (EXTENDED, {"includeThoughts": True, "thinkingLevel": "LOW"}),
    ],
)
def test_thoughts_come_as_thought_parts_before_the_answer(
    name: str, thinking: dict[str, Any]
) -> None:
    """Each thought is a text part with `thought: true`, in its own modelTurn, all of them before
    the first answer part; they say what was heard, and the answer is unchanged."""
    model = _connect(_setup(name, generationConfig={"thinkingConfig": thinking}))
    parts = _parts(_turn(model))
    thoughts = [i for i, p in enumerate(parts) if p.get("thought")]
    answer = [i for i, p in enumerate(parts) if not p.get("thought")]
    assert thoughts and answer and max(thoughts) < min(answer)
    assert all(set(parts[i]) == {"text", "thought"} for i in thoughts)
    assert "turn 1: heard 0.3 s of audio" in parts[thoughts[0]]["text"]
    assert all("inlineData" in parts[i] for i in answer)


@pytest.mark.parametrize(
    ("name", "generation"),
    [
        (NATIVE_12, {}),
        (NATIVE_12, {"thinkingConfig": {"thinkingBudget": -1}}),
        (NATIVE_12, {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 0}}),
        (NATIVE_12, {"thinkingConfig": {"includeThoughts": False}}),
    ],
)
def test_no_thoughts_unless_asked_for_and_thinking(name: str, generation: dict[str, Any]) -> None:
    """Thinking off (budget 0) or thoughts not asked for: the reply is the answer alone."""
    model = _connect(_setup(name, generationConfig=generation))
    parts = _parts(_turn(model))
    assert parts and not any("thought" in p for p in parts)


def test_a_text_answer_has_its_thoughts_first_too() -> None:
    thinking = {"thinkingConfig": {"includeThoughts": True}}
    model = _connect(_setup(NATIVE_12, rig={"modalities": ("TEXT",)}, generationConfig=thinking))
    parts = _parts(_turn(model))
    assert [bool(p.get("thought")) for p in parts] == [True, True, False]
    assert parts[-1]["text"].startswith("turn 1: heard")
