"""The emulator bills like the service: tokens in proportion to the audio and frames it takes in
and the audio and text it sends, the whole context read again each turn, one usageMetadata per
model turn on its turnComplete message. Driven synchronously, `now` passed in."""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

from google.genai import types

from pilive.emulator.model import ConnectionModel, Send
from pilive.emulator.options import EmulatorOptions, ToolTrigger
from pilive.emulator.recording import ConnectionRecord
from pilive.emulator.sessions import SessionRegistry
from pilive.emulator.usage import (
    ReplyMeter,
    SetupCosts,
    audio_tokens,
    context,
    image_tokens,
    text_tokens,
)
from tests.support.emulator_rig import jpeg, setup_message, tone

INSTRUCTION = "x" * 40  # 10 tokens at 4 characters a token
START = json.dumps({"realtimeInput": {"activityStart": {}}})
END = json.dumps({"realtimeInput": {"activityEnd": {}}})


# --- the rates ------------------------------------------------------------------------------


def test_audio_is_32_tokens_a_second_whatever_its_rate() -> None:
    assert audio_tokens(2 * 16000, 16000) == 32
    assert audio_tokens(2 * 24000 * 3, 24000) == 96
    assert audio_tokens(2 * 8000 // 2, 8000) == 16


def test_images_cost_by_resolution_or_by_their_768_px_tiles() -> None:
    """mediaResolution sets a flat count; without it a small image is 258 tokens and a larger
    one 258 per 768x768 tile it is cut into."""
    assert image_tokens((64, 48), "MEDIA_RESOLUTION_LOW") == 64
    assert image_tokens((3000, 3000), "MEDIA_RESOLUTION_MEDIUM") == 256
    assert image_tokens((768, 768), "MEDIA_RESOLUTION_HIGH") == 256
    assert image_tokens((384, 384), None) == 258
    assert image_tokens((768, 768), None) == 258
    assert image_tokens((1024, 768), None) == 2 * 258
    assert image_tokens((1600, 1600), None) == 9 * 258
    assert image_tokens(None, None) == 258


def test_text_is_about_four_characters_a_token() -> None:
    assert (text_tokens(""), text_tokens("abcd"), text_tokens("abcde")) == (0, 1, 2)


def test_the_sliding_window_drops_the_oldest_turns_and_they_stay_dropped() -> None:
    """Past the trigger the oldest turns go until the rest fits the target; next time the
    context grows again from there (it is not trimmed anew from the whole history)."""
    costs = SetupCosts(base=10, trigger_tokens=350, target_tokens=200)
    turns = [Counter({"AUDIO": 100}) for _ in range(4)]
    read, start = context(costs, turns)
    assert (read, start) == (Counter({"TEXT": 10, "AUDIO": 100}), 3)
    read, start = context(costs, [*turns, Counter({"AUDIO": 100})], start)
    assert (read["AUDIO"], start) == (200, 3)


def test_the_window_keeps_the_newest_turn_and_halves_by_default() -> None:
    costs = SetupCosts(base=0, trigger_tokens=100)
    assert context(costs, [Counter({"AUDIO": 1000})]) == (Counter({"AUDIO": 1000}), 0)
    turns = [Counter({"AUDIO": 40}) for _ in range(4)]  # 160 > 100: keep at most 50
    assert context(costs, turns) == (Counter({"AUDIO": 40}), 3)


def test_thoughts_are_billed_apart_from_the_answer() -> None:
    meter = ReplyMeter(Counter({"TEXT": 5}))
    parts = [{"text": "abcdefgh", "thought": True}, {"text": "abcd"}]
    meter.sent({"serverContent": {"modelTurn": {"parts": parts}}})
    usage = meter.usage_metadata()
    assert usage["thoughtsTokenCount"] == 2 and usage["responseTokenCount"] == 1
    assert usage["totalTokenCount"] == 5 + 1 + 2
    types.UsageMetadata.model_validate(usage)  # the SDK's strict model takes it


# --- the connection model -----------------------------------------------------------------------


def _model(setup: dict[str, Any], **overrides: Any) -> ConnectionModel:
    options = EmulatorOptions(**overrides)
    record = ConnectionRecord("c1", "/ws", "v1beta", False, {})
    registry = SessionRegistry(options.scaled(options.handle_lifetime_s))
    model = ConnectionModel(options, registry, record, now=100.0)
    model.receive_data(json.dumps(setup), 100.0)
    model.data_to_send()
    return model


def _setup(**rig: Any) -> dict[str, Any]:
    message = setup_message(transcription=False, **rig)
    message["setup"]["generationConfig"]["mediaResolution"] = "MEDIA_RESOLUTION_LOW"
    message["setup"]["systemInstruction"] = {"parts": [{"text": INSTRUCTION}]}
    return message


def _b64_frame(kind: str, mime: str, data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    return json.dumps({"realtimeInput": {kind: {"mimeType": mime, "data": encoded}}})


def _turn(model: ConnectionModel, now: float, seconds: float, frames: int = 0) -> None:
    model.receive_data(START, now)
    for _ in range(frames):
        model.receive_data(_b64_frame("video", "image/jpeg", jpeg(64, 48)), now)
    model.receive_data(_b64_frame("audio", "audio/pcm;rate=16000", tone(seconds)), now)
    model.receive_data(END, now)


def _advance(model: ConnectionModel, until: float) -> list[dict[str, Any]]:
    sent = [o.message for o in model.data_to_send() if isinstance(o, Send)]
    while (due := model.next_deadline()) is not None and due <= until:
        model.tick(due)
        sent += [o.message for o in model.data_to_send() if isinstance(o, Send)]
    return sent


def _audio_sent(messages: list[dict[str, Any]]) -> int:
    return sum(
        len(base64.b64decode(part["inlineData"]["data"]))
        for m in messages
        for part in m.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
        if "inlineData" in part
    )


def _usages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["usageMetadata"] for m in messages if "usageMetadata" in m]


def test_a_turn_is_billed_for_its_audio_frames_and_answer_on_its_turn_complete() -> None:
    """1 s of speech (32) and two frames at LOW resolution (2 x 64), read with the system
    instruction (10); the answer is billed by the audio actually sent, at 32 tokens a second.
    The usage rides on the turnComplete message and on no other."""
    model = _model(_setup())
    _turn(model, 100.0, 1.0, frames=2)
    sent = _advance(model, 110.0)
    (usage,) = _usages(sent)
    assert "turnComplete" in next(m for m in sent if "usageMetadata" in m)["serverContent"]
    response = audio_tokens(_audio_sent(sent), 24000)
    assert response > 32  # a tone, then the user's 1 s back
    assert usage == {
        "promptTokenCount": 10 + 32 + 128,
        "responseTokenCount": response,
        "totalTokenCount": 10 + 32 + 128 + response,
        "promptTokensDetails": [
            {"modality": "AUDIO", "tokenCount": 32},
            {"modality": "IMAGE", "tokenCount": 128},
            {"modality": "TEXT", "tokenCount": 10},
        ],
        "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": response}],
    }
    types.UsageMetadata.model_validate(usage)


def test_each_turn_reads_the_whole_conversation_again() -> None:
    """The second turn's prompt is the first turn's input and answer plus its own input: a long
    conversation costs more per turn, as it does on the service."""
    model = _model(_setup())
    _turn(model, 100.0, 1.0)
    first = _advance(model, 110.0)
    _turn(model, 110.0, 0.5)
    second = _advance(model, 120.0)
    (one,) = _usages(first)
    (two,) = _usages(second)
    assert two["promptTokenCount"] == one["promptTokenCount"] + one["responseTokenCount"] + 16
    assert two["promptTokensDetails"] == [
        {"modality": "AUDIO", "tokenCount": 32 + one["responseTokenCount"] + 16},
        {"modality": "TEXT", "tokenCount": 10},
    ]


def test_an_interrupted_answer_is_billed_for_what_went_out_before_the_barge_in() -> None:
    model = _model(_setup(), reply_delay_s=0.3)
    _turn(model, 100.0, 2.0)
    begun = _advance(model, 100.32)
    assert _audio_sent(begun) > 0 and not _usages(begun)
    model.receive_data(START, 100.32)  # barge-in
    cut = [o.message for o in model.data_to_send() if isinstance(o, Send)]
    (usage,) = _usages(cut)
    assert usage["responseTokenCount"] == audio_tokens(_audio_sent(begun), 24000)
    assert usage["responseTokenCount"] < 32 * 2


def test_a_function_result_is_billed_as_tool_use_and_joins_the_context() -> None:
    """The toolCall is part of the answer (text), the result the model reads is
    toolUsePromptTokenCount, and the total adds both, as the API defines it."""
    functions = [{"name": "lookup", "parameters": {"type": "OBJECT"}}]
    model = _model(
        _setup(functions=functions),
        tool_trigger=ToolTrigger(every_n_turns=1),
    )
    _turn(model, 100.0, 0.5)
    waiting = _advance(model, 105.0)
    call = next(m for m in waiting if "toolCall" in m)["toolCall"]["functionCalls"][0]
    response = {"answer": "forty-two, as always"}
    item = {"id": call["id"], "name": "lookup", "response": response}
    model.receive_data(json.dumps({"toolResponse": {"functionResponses": [item]}}), 105.0)
    (usage,) = _usages(_advance(model, 110.0))
    tool_use = text_tokens(json.dumps(response, sort_keys=True))
    assert usage["toolUsePromptTokenCount"] == tool_use
    assert usage["totalTokenCount"] == (
        usage["promptTokenCount"] + usage["responseTokenCount"] + tool_use
    )
    declared = text_tokens(json.dumps([{"name": "lookup", "parameters": {"type": "OBJECT"}}]))
    assert usage["promptTokensDetails"] == [
        {"modality": "AUDIO", "tokenCount": 16},
        {"modality": "TEXT", "tokenCount": 10 + declared},
    ]
    text_out = [d for d in usage["responseTokensDetails"] if d["modality"] == "TEXT"]
    assert text_out == [{"modality": "TEXT", "tokenCount": text_tokens(json.dumps(call))}]
    types.UsageMetadata.model_validate(usage)
