"""Non-blocking command tools through whole turns: the daemon on simulated hardware (mock
button, file mic and speaker) against the emulator, which speaks on while a NON_BLOCKING
function runs and uses its result as the response's `scheduling` says.

The tool is a real program run by the daemon: a shell script that waits for a gate file the test
creates once it has seen the model talking (so no test depends on how fast anything runs), then
prints its result.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from pilive.controls.events import ApplianceState
from pilive.emulator import Emulator
from pilive.emulator.options import ToolTrigger
from pilive.emulator.recording import ConnectionRecord
from tests.integration.test_app import Running, app_config, mic_wav, start
from tests.support.emulator_rig import emulator_options, running
from tests.unit.test_tools import needs_subreaper, process_ended

TOOL = "count_apples"
RESULT = "42 apples"
TALKED_CHUNKS = 3  # answer chunks the model sends while the tool runs, before the gate opens
# Waits for the gate file ($1), writing its pid first; then prints the result.
SCRIPT = 'echo $$ > "$1.pid"; while [ ! -e "$1" ]; do sleep 0.02; done; echo "' + RESULT + '"'


def tool_toml(gate: Path, behavior: str, scheduling: str) -> str:
    return f"""
[tools]
builtin = []
[[tools.command]]
name = "{TOOL}"
description = "Counts the apples in the shed (slow)."
argv = ["/bin/sh", "-c", {json.dumps(SCRIPT)}, "sh", "{gate}"]
timeout_s = 60.0
behavior = "{behavior}"
scheduling = "{scheduling}"
"""


def slow_talker(**overrides: Any) -> Any:
    """The emulator in real time, its answers slower than real time (as the service's can be):
    a 1 s question gets about 3 s of answer, long enough to act while the model talks."""
    values: dict[str, Any] = {
        "time_scale": 1.0,
        "reply_speedup": 0.5,
        "tool_trigger": ToolTrigger(turns=frozenset({1}), function=TOOL),
    }
    values.update(overrides)
    return emulator_options(**values)


def server_content(record: ConnectionRecord, field: str) -> list[tuple[float, Any]]:
    """(when sent, value) of every serverContent `field` the emulator sent on a connection."""
    return [
        (frame.at_s, frame.message["serverContent"][field])
        for frame in record.sent
        if frame.message is not None and field in frame.message.get("serverContent", {})
    ]


def first_sent(record: ConnectionRecord, key: str) -> float:
    return next(f.at_s for f in record.sent if f.message is not None and key in f.message)


def first_received(record: ConnectionRecord, key: str) -> float:
    return next(f.at_s for f in record.received if f.message is not None and key in f.message)


async def ask_and_wait_while_it_talks(r: Running, emu: Emulator, gate: Path) -> ConnectionRecord:
    """One question; returns once the model is heard talking while the tool still runs."""
    await r.settled()
    await r.hold(1.0)
    await r.until(lambda: bool(r.app.tools.running), timeout_s=15)
    record = emu.recording.connections[-1]

    def talking() -> bool:
        called_s = first_sent(record, "toolCall")
        audio = [at for at, _ in server_content(record, "modelTurn") if at > called_s]
        return len(audio) >= TALKED_CHUNKS and r.state is ApplianceState.SPEAKING

    await r.until(talking, timeout_s=15)
    assert r.app.tools.running, "the tool ended before the model spoke"
    return record


@needs_subreaper
@pytest.mark.parametrize("scheduling", ["interrupt", "when-idle", "silent"])
async def test_the_model_talks_while_the_program_runs_and_uses_the_result_as_scheduled(
    tmp_path: Path, scheduling: str
) -> None:
    """A `behavior = "non-blocking"` command: the model's answer plays while the program is still
    running (the daemon is speaking, the emulator sent answer audio between its toolCall and the
    toolResponse); the result goes back with the chosen scheduling, and the model then acts on
    it: INTERRUPT cuts the answer (the speaker is flushed) and speaks about the result at once,
    WHEN_IDLE speaks about it after the answer's turnComplete, SILENT takes it in without a word.
    The appliance ends idle each time."""
    mic_wav(tmp_path / "mic.wav")
    gate = tmp_path / "gate"
    async with running(slow_talker()) as emu:
        config = app_config(tmp_path, emu, tool_toml(gate, "non-blocking", scheduling))
        async with start(config, emu.api_key) as r:
            record = await ask_and_wait_while_it_talks(r, emu, gate)
            gate.touch()
            await r.until(lambda: bool(emu.recording.turn(None, 1).tool_responses), timeout_s=15)
            if scheduling != "silent":
                await r.until(
                    lambda: any("the tool said" in t["text"] for _, t in transcripts(record)),
                    timeout_s=15,
                )
            await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)
            flushed_for_result = "speaker flushed: a tool's result interrupts the answer"
            heard_flush = flushed_for_result in r.timeline

    turn = emu.recording.turn(None, 1)
    (call,) = turn.tool_calls
    (response,) = turn.tool_responses
    assert call["name"] == TOOL and response["id"] == call["id"]
    assert response["response"] == {"result": RESULT}
    assert response["scheduling"] == scheduling.upper().replace("-", "_")
    assert record.setup is not None
    (declaration,) = record.setup["tools"][0]["functionDeclarations"]
    assert declaration["behavior"] == "NON_BLOCKING"

    called_s = first_sent(record, "toolCall")
    answered_s = first_received(record, "toolResponse")
    talked = [at for at, _ in server_content(record, "modelTurn") if called_s < at < answered_s]
    assert len(talked) >= TALKED_CHUNKS, "the model did not keep talking while the program ran"

    interrupted = [at for at, _ in server_content(record, "interrupted")]
    completes = [at for at, _ in server_content(record, "turnComplete")]
    said = [at for at, t in transcripts(record) if "the tool said" in t["text"]]
    if scheduling == "interrupt":
        # Cut mid-answer: interrupted came after the result and before that answer ended.
        assert len(interrupted) == 1 and interrupted[0] > answered_s
        assert completes[0] > answered_s
        assert said and said[0] > interrupted[0]
        assert json.dumps({"result": RESULT}, sort_keys=True) in transcripts(record)[-1][1]["text"]
        assert heard_flush and r.app.stats.barge_ins == 0
    elif scheduling == "when-idle":
        assert interrupted == [] and not heard_flush
        assert completes[0] > answered_s, "the answer had ended before the result came"
        assert said and said[0] > completes[0]
    else:
        assert interrupted == [] and said == [] and not heard_flush
        assert len(completes) == 1


def transcripts(record: ConnectionRecord) -> list[tuple[float, Any]]:
    return server_content(record, "outputTranscription")


@needs_subreaper
@pytest.mark.parametrize("how", ["barge-in", "link loss"])
async def test_cancelling_a_non_blocking_call_kills_its_program(tmp_path: Path, how: str) -> None:
    """The model talks while the program runs; then a press (barge-in: the server cancels the
    interrupted turn's calls with toolCallCancellation) or a dropped connection (the resumed
    session predates the call) cancels the call: the program is killed, no toolResponse is sent
    for it, and the appliance carries on (the next question is answered)."""
    mic_wav(tmp_path / "mic.wav")
    gate = tmp_path / "gate"
    async with running(slow_talker()) as emu:
        config = app_config(tmp_path, emu, tool_toml(gate, "non-blocking", "when-idle"))
        async with start(config, emu.api_key) as r:
            record = await ask_and_wait_while_it_talks(r, emu, gate)
            pid = int((tmp_path / "gate.pid").read_text())
            first_call = emu.recording.turn(None, 1).tool_calls[0]["id"]
            if how == "barge-in":
                await r.hold(0.6)
            else:
                emu.faults.abort()
            async with asyncio.timeout(15):
                await process_ended(pid)
            gate.touch()  # a call the replayed question makes again may finish now
            await r.until(lambda: r.app.link.connected and not r.app.tools.running, timeout_s=15)
            await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)
    answered = [
        item["id"]
        for c in emu.recording.connections
        for f in c.received
        if "toolResponse" in (f.message or {})
        for item in f.message["toolResponse"]["functionResponses"]
    ]
    assert first_call not in answered
    if how == "barge-in":
        cancels = [f.message for f in record.sent if "toolCallCancellation" in (f.message or {})]
        assert cancels == [{"toolCallCancellation": {"ids": [first_call]}}]
        assert answered == []
    else:
        assert emu.recording.counters["connections"] >= 2
