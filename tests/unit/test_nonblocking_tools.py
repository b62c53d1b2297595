"""Non-blocking tools from the config to the wire: `[[tools.command]] behavior` and `scheduling`
give the setup's FunctionDeclaration.behavior and the toolResponse's scheduling; bad values are
named; the built-ins declare their own; a synchronous-only model gets every tool as blocking,
and `pilive check` says so. Then the conversation (pure) with a non-blocking call running, and
the session's answer watch after a SILENT result.

The results come from real programs (/bin/echo, /bin/false) run by the tool runner.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pilive import config_warnings, wiring
from pilive.config import Config, ConfigError, parse_config
from pilive.conversation import (
    CancelTools,
    Conversation,
    EndOfAnswer,
    FlushPlayback,
    Journal,
    PlayAudio,
    RunTool,
    ShowState,
    State,
)
from pilive.live import wire
from pilive.live.events import (
    AudioChunk,
    FunctionCall,
    Interrupted,
    LinkState,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
)
from pilive.live.models import declared_behavior, takes_non_blocking
from pilive.live.session import LiveSession
from pilive.tools.base import BLOCKING, Behavior, ToolResult, ToolRunner
from pilive.tools.builtin import DeviceStatusTool, NewConversationTool, SetVolumeTool
from tests.unit.test_conversation import TIMING, held_turn
from tests.unit.test_tools import needs_subreaper

LIVE_3_8 = "gemini-3.8-live"  # NON_BLOCKING by default
LIVE_2_5 = "gemini-2.5-flash-native-audio-preview-12-2025"  # BLOCKING by default, takes both
LIVE_3_1 = "gemini-3.1-flash-live-preview"  # synchronous calls only


def command_config(
    behavior: str | None = None,
    scheduling: str | None = None,
    *,
    model: str = LIVE_3_8,
    argv: str = '["/bin/echo", "ok"]',
) -> Config:
    lines = [
        f'[live]\nmodel = "{model}"',
        "[tools]\nbuiltin = []",
        f'[[tools.command]]\nname = "lookup"\ndescription = "Looks up."\nargv = {argv}',
    ]
    if behavior is not None:
        lines.append(f'behavior = "{behavior}"')
    if scheduling is not None:
        lines.append(f'scheduling = "{scheduling}"')
    return parse_config("\n".join(lines) + "\n", environ={})


def runner_for(config: Config, results: list[ToolResult]) -> ToolRunner:
    tools = wiring.tools(
        config,
        get_volume_percent=lambda: 50,
        set_volume_percent=lambda percent: None,
        start_new_conversation=lambda: None,
    )
    return ToolRunner(tools, results.append, non_blocking=wiring.non_blocking_tools(config))


def declarations_on_the_wire(config: Config) -> list[dict[str, Any]]:
    """functionDeclarations of the setup frame the daemon would send for `config`."""
    runner = runner_for(config, [])
    frame = json.loads(wire.build_setup(wiring.setup_options(config, runner.declarations())))
    tools = frame["setup"]["tools"]
    return [d for t in tools for d in t.get("functionDeclarations", [])]


async def one_result(config: Config) -> ToolResult:
    results: list[ToolResult] = []
    runner = runner_for(config, results)
    task = runner.start("fc-1", "lookup", {})
    assert task is not None
    await task
    (result,) = results
    return result


@pytest.mark.parametrize(
    ("model", "behavior", "sent"),
    [
        (LIVE_3_8, None, "BLOCKING"),  # the default is blocking; 3.8 must be told
        (LIVE_3_8, "blocking", "BLOCKING"),
        (LIVE_3_8, "non-blocking", "NON_BLOCKING"),
        (LIVE_2_5, "blocking", None),  # 2.5's own default: left out
        (LIVE_2_5, "non-blocking", "NON_BLOCKING"),
        (LIVE_3_1, "blocking", None),
        (LIVE_3_1, "non-blocking", None),  # synchronous only: falls back, field left out
        ("gemini-9-imaginary", "non-blocking", "NON_BLOCKING"),  # unknown: as asked
    ],
)
def test_behavior_gives_the_declarations_behavior_field(
    model: str, behavior: str | None, sent: str | None
) -> None:
    """`behavior` -> setup.tools[].functionDeclarations[].behavior, as each model needs it."""
    (declaration,) = declarations_on_the_wire(command_config(behavior, model=model))
    assert declaration.get("behavior") == sent


@needs_subreaper
@pytest.mark.parametrize(
    ("behavior", "scheduling", "sent"),
    [
        ("non-blocking", "interrupt", "INTERRUPT"),
        ("non-blocking", "when-idle", "WHEN_IDLE"),
        ("non-blocking", None, "WHEN_IDLE"),  # the API's own default, said explicitly
        ("non-blocking", "silent", "SILENT"),
        ("blocking", None, None),
    ],
)
async def test_scheduling_gives_the_tool_responses_scheduling_field(
    behavior: str, scheduling: str | None, sent: str | None
) -> None:
    """`scheduling` -> toolResponse.functionResponses[].scheduling (next to id, name and
    response, where google-genai's FunctionResponse has it); none for a blocking tool."""
    result = await one_result(command_config(behavior, scheduling))
    frame = json.loads(wire.build_tool_response([result.function_response()]))
    (item,) = frame["toolResponse"]["functionResponses"]
    assert item.pop("scheduling", None) == sent
    assert item == {"id": "fc-1", "name": "lookup", "response": {"result": "ok"}}


@needs_subreaper
async def test_a_silent_tool_that_fails_is_still_spoken() -> None:
    """A failed run of a SILENT tool goes back WHEN_IDLE: the model can say it did not work."""
    config = command_config("non-blocking", "silent", argv='["/bin/false"]')
    result = await one_result(config)
    assert "error" in result.response
    assert result.scheduling == "WHEN_IDLE"


@needs_subreaper
async def test_a_synchronous_only_model_gets_the_tool_blocking_and_check_says_so() -> None:
    """On gemini-3.1 (synchronous calls only) a non-blocking tool is declared and answered as
    blocking (no scheduling), and `pilive check` names the key, the value and the model."""
    config = command_config("non-blocking", "interrupt", model=LIVE_3_1)
    assert not takes_non_blocking(LIVE_3_1)
    result = await one_result(config)
    assert result.scheduling is None
    runner = runner_for(config, [])
    assert runner.non_blocking_names == frozenset()
    (warning,) = [
        w for w in config_warnings.model_warnings(config) if w.startswith("tools.command[")
    ]
    assert warning.startswith('tools.command[0].behavior = "non-blocking"')
    assert LIVE_3_1 in warning and "declared blocking" in warning
    assert config_warnings.tool_warnings(command_config("non-blocking", "interrupt")) == []
    assert config_warnings.tool_warnings(command_config("blocking", model=LIVE_3_1)) == []


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ('behavior = "async"', "tools.command[0].behavior", '"async"'),
        ('scheduling = "later"', "tools.command[0].scheduling", '"later"'),
        ('behavior = "blocking"\nscheduling = "interrupt"', "tools.command[0].scheduling", ""),
        ("behavior = true", "tools.command[0].behavior", "true"),
    ],
)
def test_bad_behavior_or_scheduling_names_the_key_and_value(
    text: str, key: str, value: str
) -> None:
    """A value the schema does not have, or a scheduling on a blocking tool, is refused with the
    key and the value in the message."""
    toml = (
        '[[tools.command]]\nname = "lookup"\ndescription = "Looks up."\n'
        f'argv = ["/bin/echo"]\n{text}\n'
    )
    with pytest.raises(ConfigError) as info:
        parse_config(toml, environ={})
    (problem,) = info.value.problems
    assert problem.key == key
    shown = value or '"interrupt"'
    assert problem.value == shown
    assert shown in str(info.value) and key in str(info.value)


def test_the_builtins_declare_their_behaviour() -> None:
    """device_status and new_conversation are blocking; set_volume is non-blocking and SILENT."""
    assert DeviceStatusTool().behavior == BLOCKING
    assert NewConversationTool(lambda: None).behavior == BLOCKING
    assert SetVolumeTool(print).behavior == Behavior(blocking=False, scheduling="SILENT")
    config = parse_config(f'[live]\nmodel = "{LIVE_3_8}"\n', environ={})
    sent = {d["name"]: d["behavior"] for d in declarations_on_the_wire(config)}
    assert sent == {
        "device_status": "BLOCKING",
        "set_volume": "NON_BLOCKING",
        "new_conversation": "BLOCKING",
    }


async def test_set_volume_answers_silently_and_its_failure_when_idle() -> None:
    """set_volume's result goes back SILENT; an out-of-range call's error goes back WHEN_IDLE."""
    results: list[ToolResult] = []
    runner = ToolRunner([SetVolumeTool(lambda percent: None)], results.append)
    for call_id, percent in (("fc-1", 30), ("fc-2", 300)):
        task = runner.start(call_id, "set_volume", {"percent": percent})
        assert task is not None
        await asyncio.wait_for(task, 10)
    assert [(r.call_id, r.scheduling) for r in results] == [
        ("fc-1", "SILENT"),
        ("fc-2", "WHEN_IDLE"),
    ]


def test_behavior_rules_and_the_model_table() -> None:
    """A Behavior cannot be blocking with a scheduling, nor non-blocking with an unknown one;
    declared_behavior leaves BLOCKING out only where it is the model's default."""
    with pytest.raises(ValueError, match="a blocking tool has no scheduling"):
        Behavior(blocking=True, scheduling="SILENT")
    with pytest.raises(ValueError, match="'LATER' is not one of SILENT, WHEN_IDLE, INTERRUPT"):
        Behavior(blocking=False, scheduling="LATER")
    assert declared_behavior(f"models/{LIVE_3_8}", "BLOCKING") == "BLOCKING"
    assert declared_behavior(LIVE_2_5, "BLOCKING") is None
    assert declared_behavior(LIVE_3_1, "NON_BLOCKING") == "NON_BLOCKING"
    assert takes_non_blocking(LIVE_2_5) and takes_non_blocking(LIVE_3_8)


# --- the conversation with a non-blocking call running ----------------------------------------

PCM = b"\x01\x00" * 480
LOOKUP = ToolCall((FunctionCall("c1", "lookup", {}),))


def asked(background: frozenset[str] = frozenset({"lookup"})) -> Conversation:
    """Connected, one question asked (released), the tool `lookup` non-blocking."""
    conv = Conversation(TIMING)
    conv.background_tools = background
    conv.start()
    conv.link_changed(LinkState.CONNECTED)
    held_turn(conv)
    conv.button_released(1.0)
    return conv


def talking_while_it_runs() -> Conversation:
    conv = asked()
    assert conv.session_event(LOOKUP) == [RunTool("c1", "lookup", {})]
    assert conv.session_event(AudioChunk(PCM, 24000)) == [PlayAudio(PCM), ShowState(State.SPEAKING)]
    return conv


def test_a_non_blocking_call_is_nothing_to_wait_for() -> None:
    """While `lookup` runs the answer plays and ends as usual (turnComplete, drained, idle); a
    call the model makes while idle does not light THINKING; a turn without a word while it
    runs is no error (the words may come with the result)."""
    conv = talking_while_it_runs()
    assert conv.session_event(TurnComplete()) == [EndOfAnswer()]
    assert conv.playback_drained() == [ShowState(State.IDLE)]
    assert conv.session_event(ToolCall((FunctionCall("c2", "lookup", {}),))) == [
        RunTool("c2", "lookup", {})
    ]
    assert conv.state is State.IDLE
    quiet = asked()
    quiet.session_event(LOOKUP)
    assert quiet.session_event(TurnComplete()) == [ShowState(State.IDLE)]
    conv.background_tools = frozenset()  # the same call, blocking: now there is a wait
    assert conv.session_event(ToolCall((FunctionCall("c3", "lookup", {}),)))[-1] == ShowState(
        State.THINKING
    )


def test_an_interrupt_result_cuts_the_answer_it_arrives_in() -> None:
    """Push-to-talk ignores an `interrupted` it did not cause, but one that follows a result
    scheduled INTERRUPT is the result's: the speaker is flushed (not counted as a barge-in) and
    the answer about the result plays."""
    conv = talking_while_it_runs()
    assert conv.tool_finished("c1", interrupts=True) == []
    assert conv.session_event(Interrupted()) == [
        FlushPlayback(barge_in=False),
        ShowState(State.IDLE),
    ]
    assert conv.session_event(TurnComplete()) == []
    assert conv.session_event(AudioChunk(PCM, 24000)) == [PlayAudio(PCM), ShowState(State.SPEAKING)]
    # The next stray `interrupted` is the server's own again: the answer plays on.
    (ignored,) = conv.session_event(Interrupted())
    assert isinstance(ignored, Journal) and ignored.kind == "interrupted_ignored"


@pytest.mark.parametrize("interrupts", [False, True])
def test_a_result_after_the_answer_ended_cuts_nothing(interrupts: bool) -> None:
    """WHEN_IDLE (or an INTERRUPT result that comes once the answer's turnComplete is in): a
    stray `interrupted` does not cut what is still playing."""
    conv = talking_while_it_runs()
    if interrupts:
        conv.session_event(TurnComplete())
    conv.tool_finished("c1", interrupts=interrupts)
    (ignored,) = conv.session_event(Interrupted())
    assert isinstance(ignored, Journal) and ignored.kind == "interrupted_ignored"


def test_non_blocking_calls_are_cancelled_like_any_other() -> None:
    """toolCallCancellation and a lost connection cancel a running non-blocking call."""
    conv = talking_while_it_runs()
    assert conv.session_event(ToolCallCancellation(("c1",))) == [CancelTools(("c1",))]
    conv = talking_while_it_runs()
    assert CancelTools(("c1",)) in conv.link_changed(LinkState.RECONNECTING)
    assert conv.tool_finished("c1", interrupts=True) == []


def test_a_silent_result_owes_no_answer() -> None:
    """After a SILENT toolResponse the server owes nothing (its answer watch stays off); after
    one that asks to be spoken it owes an answer."""
    for scheduling, owed in (("SILENT", False), ("WHEN_IDLE", True), (None, True)):
        session = LiveSession(wire.SetupOptions(model=LIVE_3_8))
        session.connect()
        session.data_to_send()
        session.receive_data('{"setupComplete": {}}', now=0.0)
        session.receive_data(
            '{"toolCall": {"functionCalls": [{"id": "c1", "name": "lookup"}]}}', now=0.1
        )
        session.receive_data('{"serverContent": {"turnComplete": true}}', now=0.2)
        session.send_tool_response([wire.FunctionResponse("c1", "lookup", {}, scheduling)])
        assert session.owes_answer is owed, scheduling
