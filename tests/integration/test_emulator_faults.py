"""Service limits and scripted faults on the emulator, seen by a plain websockets client."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from pilive.emulator import (
    Abort,
    Close,
    DelaySetupComplete,
    GoAway,
    Phase,
    SendMalformed,
    Stall,
    ToolTrigger,
    WithholdSetupComplete,
)
from tests.emulator_rig import (
    RawClient,
    emulator_options,
    jpeg,
    running,
    setup_message,
    tone,
    video_input,
)

DEADLINE = "Deadline expired before operation could complete."


async def test_connection_lifetime_sends_go_away_then_closes_1011_deadline() -> None:
    """~10 min connections: goAway with the (scaled) time left, then 1011 'Deadline expired'."""
    options = emulator_options(time_scale=0.002)  # 600 s -> 1.2 s, goAway 50 s -> 0.1 s before
    async with running(options) as emu, RawClient.connect(emu) as client:
        await client.setup(resumption=False)
        go_away = await client.until(lambda m: "goAway" in m, timeout_s=5)
        assert go_away[-1] == {"goAway": {"timeLeft": "0.1s"}}
        assert await client.closed() == (1011, DEADLINE)


async def test_audio_video_session_without_compression_ends_after_its_limit() -> None:
    """Without contextWindowCompression an audio+video session ends at 2 min (scaled) with 1011
    and its handles die with it; the same setup with compression keeps going."""
    options = emulator_options(time_scale=0.005)  # 120 s -> 0.6 s; connection 3 s
    async with running(options) as emu:
        async with RawClient.connect(emu) as client:
            await client.setup(compression=False)
            handle = (await client.recv())["sessionResumptionUpdate"]["newHandle"]
            await client.send(video_input(jpeg(64, 64)))
            assert await client.closed() == (1011, DEADLINE)
            assert emu.recording.session().ended  # the session limit, not the connection's
        async with RawClient.connect(emu) as client:
            await client.send(setup_message(handle=handle, compression=False))
            assert (await client.closed())[0] == 1008
        async with RawClient.connect(emu) as client:
            await client.setup(compression=True)
            await client.send(video_input(jpeg(64, 64)))
            await asyncio.sleep(1.0)
            await client.send({"realtimeInput": {"text": "still here"}})
            await client.turn()


async def test_go_away_fault_now_then_deadline_close() -> None:
    """faults.go_away(t): goAway arrives at once with timeLeft t; the close follows after t."""
    async with running() as emu, RawClient.connect(emu) as client:
        await client.setup(resumption=False)
        emu.faults.go_away(0.3)
        assert await client.recv() == {"goAway": {"timeLeft": "0.3s"}}
        assert await client.closed() == (1011, DEADLINE)
    assert emu.faults.fired[0].rule.phase == Phase.NOW


@pytest.mark.parametrize(
    ("phase", "code"),
    [(Phase.SETUP, 1011), (Phase.USER_TURN, 1000), (Phase.MODEL_AUDIO, 1011), (Phase.IDLE, 1008)],
)
async def test_close_at_a_chosen_phase(phase: Phase, code: int) -> None:
    """A Close rule fires once at its phase, with its code and reason, and is recorded."""
    async with running() as emu:
        emu.faults.on(phase, Close(code, "scripted"), turn=1 if phase == Phase.IDLE else None)
        async with RawClient.connect(emu) as client:
            await client.send(setup_message())
            if phase != Phase.SETUP:
                assert await client.recv() == {"setupComplete": {}}
                await client.push_to_talk(tone(0.5))
            assert await client.closed() == (code, "scripted")
        assert len(emu.faults.fired) == 1 and not emu.faults.pending
        fired = emu.faults.fired[0]
        assert (fired.rule.phase, fired.connection_id) == (phase, "c1")


async def test_close_while_waiting_for_a_tool_response() -> None:
    """TOOL_WAIT fires right after the toolCall went out."""
    options = emulator_options(tool_trigger=ToolTrigger(every_n_turns=1))
    async with running(options) as emu:
        emu.faults.on(Phase.TOOL_WAIT, Close(1011, "The service is currently unavailable."))
        async with RawClient.connect(emu) as client:
            await client.setup(functions=[{"name": "f"}], resumption=False)
            await client.send({"realtimeInput": {"text": "call it"}})
            await client.until(lambda m: "toolCall" in m)
            assert (await client.closed())[0] == 1011


async def test_model_audio_fault_fires_after_the_chosen_chunk() -> None:
    """at_chunk=3: exactly three reply chunks arrive before the close."""
    async with running() as emu:
        emu.faults.on(Phase.MODEL_AUDIO, Close(1011, "mid-reply"), at_chunk=3)
        async with RawClient.connect(emu) as client:
            await client.setup(resumption=False, transcription=False)
            await client.push_to_talk(tone(1.0))
            got: list[dict[str, object]] = []
            try:
                while True:
                    got.append(await client.recv())
            except ConnectionClosedError:
                pass
    assert sum("modelTurn" in str(m) for m in got) == 3


async def test_setup_complete_late_and_never() -> None:
    """DelaySetupComplete holds the reply back; WithholdSetupComplete never sends it."""
    async with running() as emu:
        emu.faults.on(Phase.SETUP, DelaySetupComplete(0.4), connection=1)
        emu.faults.on(Phase.SETUP, WithholdSetupComplete(), connection=2)
        async with RawClient.connect(emu) as client:
            started = time.monotonic()
            await client.setup()
            assert time.monotonic() - started >= 0.4
        async with RawClient.connect(emu) as client:
            await client.send(setup_message())
            with pytest.raises(TimeoutError):
                await client.recv(timeout_s=0.5)


@pytest.mark.parametrize("kind", ["json", "truncated_json", "unknown_message"])
async def test_malformed_frames_arrive_as_sent(kind: str) -> None:
    """Bad JSON, a cut message and an unknown message type are sent as binary frames."""
    async with running() as emu, RawClient.connect(emu) as client:
        await client.setup(resumption=False)
        emu.faults.send_malformed(kind)
        data = await client.ws.recv(decode=False)
    assert isinstance(data, bytes)
    if kind == "unknown_message":
        assert data == b'{"noSuchMessage": {}}'
    else:
        with pytest.raises(ValueError):
            json.loads(data)


async def test_wire_truncated_frame_and_abort_drop_the_connection_without_a_close_frame() -> None:
    """A frame cut on the wire, or an abort, leaves the client with 1006 (no close frame)."""
    async with running() as emu:
        for action in (SendMalformed("wire_truncated"), Abort()):
            async with RawClient.connect(emu) as client:
                await client.setup(resumption=False)
                emu.faults.now(action)
                with pytest.raises(ConnectionClosedError):
                    await client.recv()
                assert client.ws.protocol.close_rcvd is None


async def test_stall_leaves_pings_unanswered_until_it_ends() -> None:
    """A stall stops reading and writing: the client's ping gets no pong for the stall's length,
    then the connection works again (a slow pong); a forever stall lets keepalive fail."""
    async with running() as emu:
        async with RawClient.connect(emu) as client:
            await client.setup(resumption=False)
            started = time.monotonic()  # the stall cannot begin before this
            emu.faults.on(Phase.NOW, Stall(0.5))
            await emu.wait_until(lambda: bool(emu.faults.fired))
            pong = await client.ws.ping()
            await asyncio.wait_for(pong, 5)
            assert time.monotonic() - started >= 0.5
            await client.send({"realtimeInput": {"text": "back"}})
            await client.turn()
        emu.faults.on(Phase.IDLE, Stall(None), connection=2)
        async with connect(
            emu.endpoint(),
            additional_headers={"x-goog-api-key": emu.api_key},
            ping_interval=0.2,
            ping_timeout=0.3,
            close_timeout=0.5,
        ) as ws:
            await ws.send(json.dumps(setup_message(resumption=False)))
            await ws.recv()
            with pytest.raises(ConnectionClosedError) as info:
                await asyncio.wait_for(ws.recv(), 5)
        assert info.value.sent is not None and info.value.sent.code == 1011


async def test_go_away_rule_at_idle_after_a_given_turn() -> None:
    """Rules filter by turn: goAway fires at the boundary after turn 2, not after turn 1."""
    async with running() as emu:
        emu.faults.on(Phase.IDLE, GoAway(5.0), turn=2)
        async with RawClient.connect(emu) as client:
            await client.setup(resumption=False)
            for _ in range(2):
                await client.push_to_talk(tone(0.2))
                await client.turn()
            go_away = await client.recv()
        assert go_away == {"goAway": {"timeLeft": "5s"}}
        assert emu.faults.fired[0].turn == 2
