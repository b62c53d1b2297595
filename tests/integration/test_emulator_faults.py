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
    EmptyReply,
    GoAway,
    Phase,
    SendInterrupted,
    SendMalformed,
    Stall,
    ToolTrigger,
    WithholdSetupComplete,
)
from tests.support.emulator_rig import (
    RawClient,
    content,
    emulator_options,
    handles,
    jpeg,
    output_text,
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


async def test_go_away_then_silence_until_the_deadline_close() -> None:
    """GoAway(then_silent=True): after the goAway a whole push-to-talk turn gets no answer, no
    turnComplete and no handle; the next thing is the 1011 deadline close (tau2-bench#461)."""
    async with running() as emu, RawClient.connect(emu) as client:
        await client.setup()
        await client.recv()
        emu.faults.go_away(1.0, then_silent=True)
        assert await client.recv() == {"goAway": {"timeLeft": "1s"}}
        await client.push_to_talk(tone(0.2))
        assert await client.closed() == (1011, DEADLINE)
        assert client.received[-1] == {"goAway": {"timeLeft": "1s"}}
    assert emu.recording.session().turn_count == 1  # heard, never answered


async def test_a_rule_for_resuming_setups_refuses_the_resume_and_leaves_fresh_ones_alone() -> None:
    """resuming=True: the fresh setup passes, the resume is refused with 1011, no resume is
    counted, and the same handle works once the rule is spent."""
    internal = "Internal error encountered."
    async with running() as emu:
        emu.faults.on(Phase.SETUP, Close(1011, internal), resuming=True)
        async with RawClient.connect(emu) as client:
            await client.setup()
            handle = (await client.recv())["sessionResumptionUpdate"]["newHandle"]
        async with RawClient.connect(emu) as client:
            await client.send(setup_message(handle=handle))
            assert await client.closed() == (1011, internal)
        assert emu.recording.counters["resumes"] == 0
        async with RawClient.connect(emu) as client:
            await client.setup(handle=handle)
        assert emu.recording.counters["resumes"] == 1
        assert [f.connection_id for f in emu.faults.fired] == ["c2"]


@pytest.mark.parametrize(
    "rejection",
    [(1008, "Session expired. Please start a new session."), (1011, "Internal error encountered.")],
)
async def test_stale_handles_are_refused_as_the_options_say(rejection: tuple[int, str]) -> None:
    async with running(emulator_options(handle_rejection=rejection)) as emu:
        async with RawClient.connect(emu) as client:
            await client.setup()
            handle = (await client.recv())["sessionResumptionUpdate"]["newHandle"]
        emu.expire_handles()
        async with RawClient.connect(emu) as client:
            await client.send(setup_message(handle=handle))
            assert await client.closed() == rejection


async def test_without_takeover_a_stalled_socket_blocks_its_session_for_good() -> None:
    """resume_takeover=False: the old socket stalled (never closes), so every resume is refused
    with 1011 after the grace period (sip-to-ai#14); a fresh session still works."""
    options = emulator_options(resume_takeover=False, resume_grace_s=0.2)
    async with running(options) as emu, RawClient.connect(emu) as old:
        await old.setup()
        handle = (await old.recv())["sessionResumptionUpdate"]["newHandle"]
        emu.faults.stall(None, connection=1)
        await emu.wait_until(lambda: bool(emu.faults.fired))
        for _ in range(2):
            async with RawClient.connect(emu) as new:
                await new.send(setup_message(handle=handle))
                assert await new.closed() == (1011, "The service is currently unavailable.")
        async with RawClient.connect(emu) as new:
            await new.setup()
        assert emu.recording.counters["resumes"] == 0
        old.ws.transport.abort()  # no closing handshake with a stalled server


@pytest.mark.parametrize("end_reply", [False, True])
async def test_interrupted_while_activity_detection_is_off(end_reply: bool) -> None:
    """SendInterrupted at the second reply chunk: the reply carries on to generationComplete,
    or (end_reply) ends there with turnComplete; either way the session goes on."""
    async with running() as emu:
        emu.faults.on(Phase.MODEL_AUDIO, SendInterrupted(end_reply), at_chunk=2)
        async with RawClient.connect(emu) as client:
            await client.setup(resumption=False)
            await client.push_to_talk(tone(0.5))
            first = await client.turn()
            await client.push_to_talk(tone(0.2))
            second = await client.turn()
    assert content(first, "interrupted") == [True]
    assert bool(content(first, "generationComplete")) is not end_reply
    assert output_text(second) == "turn 2: heard 0.2 s of audio"


async def test_empty_reply_to_a_user_turn() -> None:
    """EmptyReply at USER_TURN: that turn's answer is a bare turnComplete with its reason and
    waitingForInput, then a fresh handle; the next turn is answered as usual."""
    async with running() as emu:
        emu.faults.on(Phase.USER_TURN, EmptyReply(waiting_for_input=True), turn=1)
        async with RawClient.connect(emu) as client:
            await client.setup()
            await client.recv()
            await client.push_to_talk(tone(0.2))
            first = await client.turn()
            update = await client.recv()
            await client.push_to_talk(tone(0.2))
            second = await client.turn()
    answer = [m for m in first if "inputTranscription" not in m.get("serverContent", {})]
    assert answer == [
        {
            "serverContent": {
                "turnComplete": True,
                "turnCompleteReason": "RESPONSE_REJECTED",
                "waitingForInput": True,
            }
        }
    ]
    assert handles([update])[0]["resumable"] is True
    assert output_text(second) == "turn 2: heard 0.2 s of audio"


@pytest.mark.parametrize(
    ("model", "setup_fields"),
    [
        ("gemini-3.1-flash-live-preview", {"proactivity": {"proactiveAudio": True}}),
        (
            "gemini-3.1-flash-live-preview",
            {"generationConfig": {"responseModalities": ["AUDIO"], "enableAffectiveDialog": True}},
        ),
    ],
)
async def test_a_3_1_setup_asking_for_what_it_lacks_never_completes(
    model: str, setup_fields: dict[str, object]
) -> None:
    """Affective dialog or proactivity on 3.1: no setupComplete, no answer to anything, until
    the setup timeout closes the connection (Patter#210, livekit/agents#5985)."""
    async with running(emulator_options(setup_timeout_s=5.0)) as emu:  # 1 s at the test scale
        async with RawClient.connect(emu, path=emu.path("v1alpha")) as client:
            message = setup_message(model=model)
            message["setup"].update(setup_fields)
            await client.send(message)
            await client.send({"realtimeInput": {"text": "hello?"}})
            assert await client.closed() == (1011, DEADLINE)
            assert client.received == []
        assert emu.recording.counters["sessions"] == 0
        assert emu.recording.connections[0].setup_withheld == f"{model} does not support " + (
            "proactive audio" if "proactivity" in setup_fields else "affective dialog"
        )


async def test_retired_model_is_not_found() -> None:
    async with running() as emu, RawClient.connect(emu) as client:
        await client.send(setup_message(model="gemini-2.0-flash-live-001"))
        code, reason = await client.closed()
    assert code == 1008
    assert reason.startswith("models/gemini-2.0-flash-live-001 is not found for API version")
