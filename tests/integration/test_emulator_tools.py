"""Scripted tool calls on the emulator: the trigger, the round trip, cancellation and bad ids."""

from __future__ import annotations

from typing import Any

from pilive.emulator import ToolTrigger
from tests.support.emulator_rig import (
    ACTIVITY_START,
    RawClient,
    content,
    emulator_options,
    handles,
    output_text,
    running,
    tone,
)

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}, "days": {"type": "INTEGER"}},
    },
}
TIME = {"name": "get_time", "description": "The time", "parameters": {"type": "OBJECT"}}


def _tool_call(messages: list[dict[str, Any]]) -> dict[str, Any]:
    calls = [m["toolCall"] for m in messages if "toolCall" in m]
    assert len(calls) == 1, messages
    call: dict[str, Any] = calls[0]["functionCalls"][0]
    return call


async def test_every_second_turn_calls_the_declared_function_and_speaks_the_result() -> None:
    """Turn 1 is answered directly; turn 2 gets a toolCall with a fresh id and args made from the
    declared schema; the toolResponse (snake_case) comes back in the spoken transcription."""
    options = emulator_options(tool_trigger=ToolTrigger(every_n_turns=2))
    async with running(options) as emu, RawClient.connect(emu) as client:
        await client.setup(functions=[WEATHER])
        await client.recv()
        await client.push_to_talk(tone(0.2))
        first = await client.turn()
        await client.push_to_talk(tone(0.2))
        before = await client.until(lambda m: "toolCall" in m)
        call = _tool_call(before)
        assert handles(before)[-1]["resumable"] is False
        await client.send(
            {
                "tool_response": {
                    "function_responses": [
                        {"id": call["id"], "name": call["name"], "response": {"result": "sunny"}}
                    ]
                }
            }
        )
        after = await client.turn()
    assert not any("toolCall" in m for m in first)
    assert call["name"] == "get_weather"
    assert call["args"] == {"city": "turn 2", "days": 2}
    assert call["id"]
    said = output_text(after)
    assert said == 'turn 2: heard 0.2 s of audio; the tool said: {"result": "sunny"}'
    turn = emu.recording.turn(None, 2)
    assert turn.tool_responses == [{"id": call["id"], "response": {"result": "sunny"}}]


async def test_trigger_picks_the_named_function_with_scripted_args() -> None:
    """ToolTrigger(turns={1}, function=..., args=...) is exact: the named function, those args."""
    trigger = ToolTrigger(turns=frozenset({1}), function="get_time", args={"zone": "UTC"})
    async with (
        running(emulator_options(tool_trigger=trigger)) as emu,
        RawClient.connect(emu) as client,
    ):
        await client.setup(functions=[WEATHER, TIME], resumption=False)
        await client.send({"realtimeInput": {"text": "what time is it"}})
        call = _tool_call(await client.until(lambda m: "toolCall" in m))
    assert (call["name"], call["args"]) == ("get_time", {"zone": "UTC"})


async def test_no_declared_functions_means_no_tool_call() -> None:
    """The trigger only fires when the client declared a function."""
    options = emulator_options(tool_trigger=ToolTrigger(every_n_turns=1))
    async with running(options) as emu, RawClient.connect(emu) as client:
        await client.setup(resumption=False)
        await client.send({"realtimeInput": {"text": "hi"}})
        messages = await client.turn()
    assert not any("toolCall" in m for m in messages)


async def test_barge_in_during_the_wait_cancels_the_call_and_late_responses_are_ignored() -> None:
    """activityStart while the model waits for a toolResponse -> toolCallCancellation with the
    id, then interrupted and turnComplete; a late response for that id does not break anything."""
    options = emulator_options(tool_trigger=ToolTrigger(every_n_turns=1))
    async with running(options) as emu, RawClient.connect(emu) as client:
        await client.setup(functions=[WEATHER], resumption=False)
        await client.push_to_talk(tone(0.2))
        call = _tool_call(await client.until(lambda m: "toolCall" in m))
        await client.send(ACTIVITY_START)
        rest = await client.turn()
        late = {"id": call["id"], "name": call["name"], "response": {"r": 1}}
        await client.send({"toolResponse": {"functionResponses": [late]}})
        await client.send({"realtimeInput": {"activityEnd": {}}})
        nxt = await client.until(lambda m: "toolCall" in m)
    assert rest[0] == {"toolCallCancellation": {"ids": [call["id"]]}}
    assert {"serverContent": {"interrupted": True}} in rest
    assert not content(rest, "generationComplete")
    assert _tool_call(nxt)["id"] != call["id"]


async def test_tool_response_with_an_unknown_id_closes_1007() -> None:
    """An id the model never issued is an invalid argument."""
    options = emulator_options(tool_trigger=ToolTrigger(every_n_turns=1))
    async with running(options) as emu, RawClient.connect(emu) as client:
        await client.setup(functions=[WEATHER], resumption=False)
        await client.push_to_talk(tone(0.2))
        await client.until(lambda m: "toolCall" in m)
        bogus = {"id": "fc-nope", "name": "get_weather", "response": {}}
        await client.send({"toolResponse": {"functionResponses": [bogus]}})
        assert (await client.closed())[0] == 1007


async def test_non_blocking_call_on_3_8_answers_first_and_speaks_the_result_later() -> None:
    """gemini-3.8-live calls functions NON_BLOCKING by default: the answer comes without a
    toolResponse (handles stay unresumable while the call runs); a WHEN_IDLE result then gets a
    model turn of its own, after which the session is resumable again."""
    options = emulator_options(tool_trigger=ToolTrigger(every_n_turns=1))
    async with running(options) as emu, RawClient.connect(emu) as client:
        await client.setup(model="gemini-3.8-live", functions=[WEATHER])
        await client.recv()
        await client.push_to_talk(tone(0.2))
        answer = await client.turn()
        call = _tool_call(answer)
        update = await client.recv()
        response = {"id": call["id"], "response": {"result": "sunny"}, "scheduling": "WHEN_IDLE"}
        await client.send({"toolResponse": {"functionResponses": [response]}})
        result = await client.turn()
        after = await client.recv()
    assert output_text(answer) == "turn 1: heard 0.2 s of audio"
    assert handles([update]) == [{"newHandle": "", "resumable": False}]
    assert output_text(result) == 'turn 1: the tool said: {"result": "sunny"}'
    assert handles([after])[0]["resumable"] is True
    assert emu.recording.turn(None, 1).tool_responses == [
        {"id": call["id"], "response": {"result": "sunny"}, "scheduling": "WHEN_IDLE"}
    ]
