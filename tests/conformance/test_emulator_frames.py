"""Every frame the emulator sends, across scenarios that make it send every message type it can,
validates strictly as google.genai.types.LiveServerMessage (unknown fields are rejected, unknown
enum values fail): the SDK, an outside party, says the emulator speaks the service's language."""

from __future__ import annotations

import json
import warnings
from typing import Any

from google.genai import types

from pilive.emulator import EmptyReply, Emulator, Phase, SendInterrupted, ToolTrigger
from tests.support.emulator_rig import (
    ACTIVITY_START,
    RawClient,
    audio_input,
    emulator_options,
    jpeg,
    running,
    setup_message,
    tone,
    video_input,
)

TOOL = {"name": "lookup", "parameters": {"type": "OBJECT", "properties": {"q": {"type": "STRING"}}}}


def _validate(message: dict[str, Any]) -> types.LiveServerMessage:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return types.LiveServerMessage.model_validate(message)


def _kinds(message: dict[str, Any]) -> set[str]:
    kinds = {k for k in message if k != "usageMetadata"}
    if "serverContent" in message:
        kinds |= {f"serverContent.{k}" for k in message["serverContent"]}
    if "usageMetadata" in message:
        kinds.add("usageMetadata")
    return kinds


async def _scenarios(emu: Emulator) -> None:
    # Audio reply with transcriptions, resumption updates, video, barge-in, tool call + cancel.
    async with RawClient.connect(emu) as client:
        await client.setup(functions=[TOOL])
        await client.recv()
        await client.send(ACTIVITY_START)
        await client.send(video_input(jpeg(96, 64)))
        await client.push_to_talk(tone(0.4))
        await client.turn()
        await client.push_to_talk(tone(1.5), chunk_bytes=3200)  # turn 2: a tool call
        call = (await client.until(lambda m: "toolCall" in m))[-1]["toolCall"]
        response = {"id": call["functionCalls"][0]["id"], "response": {"answer": 42}}
        await client.send({"toolResponse": {"functionResponses": [response]}})
        await client.until(lambda m: "modelTurn" in m.get("serverContent", {}))
        await client.send(ACTIVITY_START)  # barge in on the tool's answer
        await client.turn()
        await client.send({"realtimeInput": {"activityEnd": {}}})
        await client.until(lambda m: "toolCall" in m)  # turn 3 calls the tool too
        await client.send(ACTIVITY_START)  # interrupt the wait: toolCallCancellation
        await client.turn()
        emu.faults.go_away(0.2)
        await client.until(lambda m: "goAway" in m)
        await client.closed()
    # Text replies.
    async with RawClient.connect(emu) as client:
        await client.setup(modalities=("TEXT",), resumption=False, transcription=False)
        await client.send({"realtimeInput": {"text": "hello"}})
        await client.turn()
    # Hands-free.
    async with RawClient.connect(emu) as client:
        await client.send(setup_message(push_to_talk=False))
        await client.recv()
        await client.send(audio_input(tone(0.3)))
        await client.send({"realtimeInput": {"audioStreamEnd": True}})
        await client.turn()


async def test_every_sent_frame_is_a_valid_live_server_message() -> None:
    """All frames are binary UTF-8 JSON with one message type (usageMetadata may ride along),
    each validates with the SDK's strict model, and together they cover every type sent."""
    # Real-time pacing so the barge-ins land mid-reply however loaded the machine is.
    options = emulator_options(
        time_scale=1.0, reply_speedup=1.0, tool_trigger=ToolTrigger(turns=frozenset({2, 3}))
    )
    async with running(options) as emu:
        await _scenarios(emu)
        frames = [f for c in emu.recording.connections for f in c.sent]
    seen: set[str] = set()
    for frame in frames:
        message = json.loads(frame.data)
        assert message == frame.message
        assert len(set(message) - {"usageMetadata"}) == 1, message
        parsed = _validate(message)
        assert parsed.model_dump(exclude_none=True), message
        seen |= _kinds(message)
    assert seen >= {
        "setupComplete",
        "serverContent",
        "serverContent.modelTurn",
        "serverContent.inputTranscription",
        "serverContent.outputTranscription",
        "serverContent.interrupted",
        "serverContent.generationComplete",
        "serverContent.turnComplete",
        "usageMetadata",
        "toolCall",
        "toolCallCancellation",
        "goAway",
        "sessionResumptionUpdate",
    }, seen


async def test_reported_fields_validate_too() -> None:
    """The fields behind the faults of the real service's reports (interactionStatus,
    turnCompleteReason, waitingForInput, a scripted interrupted, a NON_BLOCKING result's own
    turn) are ones the SDK knows, in the places it expects them."""
    options = emulator_options(
        interaction_status=True, tool_trigger=ToolTrigger(turns=frozenset({1}))
    )
    async with running(options) as emu:
        emu.faults.on(Phase.USER_TURN, EmptyReply(waiting_for_input=True), turn=2)
        emu.faults.on(Phase.MODEL_AUDIO, SendInterrupted(), turn=3)
        async with RawClient.connect(emu) as client:
            await client.setup(model="gemini-3.8-live", functions=[TOOL])
            await client.push_to_talk(tone(0.2))
            call = (await client.until(lambda m: "toolCall" in m))[-1]["toolCall"]
            await client.turn()
            result = {"id": call["functionCalls"][0]["id"], "response": {"answer": 42}}
            result["scheduling"] = "INTERRUPT"
            await client.send({"toolResponse": {"functionResponses": [result]}})
            await client.turn()
            for _ in range(2):
                await client.push_to_talk(tone(0.2))
                await client.turn()
        frames = [f for c in emu.recording.connections for f in c.sent]
    seen: set[str] = set()
    for frame in frames:
        message = json.loads(frame.data)
        parsed = _validate(message)
        if parsed.server_content and parsed.server_content.turn_complete:
            assert parsed.server_content.interaction_status == types.InteractionStatus.IDLE
        seen |= _kinds(message)
    assert seen >= {
        "serverContent.interactionStatus",
        "serverContent.turnCompleteReason",
        "serverContent.waitingForInput",
        "serverContent.interrupted",
        "toolCall",
    }, seen


async def test_audio_parts_decode_to_24khz_pcm_through_the_sdk_model() -> None:
    """The SDK's model decodes the emulator's base64 into the exact PCM bytes it recorded."""
    async with running() as emu, RawClient.connect(emu) as client:
        await client.setup(resumption=False, transcription=False)
        await client.push_to_talk(tone(0.2))
        messages = await client.turn()
    audio = b""
    for message in messages:
        parsed = _validate(message)
        content = parsed.server_content
        if content and content.model_turn and content.model_turn.parts:
            blob = content.model_turn.parts[0].inline_data
            assert blob is not None and blob.mime_type == "audio/pcm;rate=24000"
            assert blob.data is not None
            audio += blob.data
    assert len(audio) == (150 + 200) * 24 * 2
