"""Session resumption and ephemeral tokens on the emulator: handles continue the conversation,
bad ones are refused the documented way, and a session has one live socket at a time."""

from __future__ import annotations

import asyncio

from tests.support.emulator_rig import (
    MODEL,
    RawClient,
    emulator_options,
    handles,
    output_text,
    running,
    setup_message,
    tone,
)


async def _one_turn(client: RawClient, seconds: float = 0.3) -> list[dict[str, object]]:
    await client.push_to_talk(tone(seconds))
    messages = await client.turn()
    messages.append(await client.recv())  # the fresh handle after turnComplete
    return messages


async def test_resume_with_an_issued_handle_continues_the_turn_count() -> None:
    """A second connection resuming with the newest handle is the same session: turn 2 says
    'turn 2', the recording shows one session, two connections and one resume."""
    async with running() as emu:
        async with RawClient.connect(emu) as client:
            await client.setup()
            await client.recv()
            first = await _one_turn(client)
        handle = handles(first)[-1]["newHandle"]
        async with RawClient.connect(emu) as client:
            await client.setup(handle=handle)
            await client.recv()
            second = await _one_turn(client, 0.5)
        assert output_text(second) == "turn 2: heard 0.5 s of audio"
        assert emu.recording.counters == {
            "connections": 2,
            "sessions": 1,
            "turns": 2,
            "resumes": 1,
        }
        c1, c2 = emu.recording.connections
        assert (c1.resumed, c2.resumed) == (False, True)
        assert c1.session_id == c2.session_id
        assert emu.recording.audio_bytes() == tone(0.3) + tone(0.5)


async def test_resume_with_an_older_handle_rolls_back_later_turns() -> None:
    """A handle restores the conversation as it was when issued: a turn taken in after it (whose
    connection dropped before a newer handle came) is rolled back, so a client replaying that
    turn is heard once, and the next turn number continues from the checkpoint."""
    async with running() as emu:
        async with RawClient.connect(emu) as client:
            await client.setup()
            await client.recv()
            first = await _one_turn(client)
            await _one_turn(client, 0.4)
        older = handles(first)[-1]["newHandle"]
        async with RawClient.connect(emu) as client:
            await client.setup(handle=older)
            await client.recv()
            replayed = await _one_turn(client, 0.4)
        assert output_text(replayed) == "turn 2: heard 0.4 s of audio"
        session = emu.recording.session()
        assert session.turn_count == 2
        assert [t.number for t in session.rolled_back] == [2]
        assert bytes(session.turns[1].audio) == tone(0.4)


async def test_unknown_handle_is_refused_with_1008() -> None:
    """A handle the emulator never issued is rejected (1008, documented in sessions.py)."""
    async with running() as emu, RawClient.connect(emu) as client:
        await client.send(setup_message(handle="h-never-issued"))
        code, reason = await client.closed()
    assert code == 1008
    assert "handle" in reason
    assert emu.recording.counters["sessions"] == 0


async def test_expired_handles_are_refused() -> None:
    """Handles live handle_lifetime_s (scaled); after that, resuming fails with 1008."""
    async with running(emulator_options(handle_lifetime_s=1.0)) as emu:
        async with RawClient.connect(emu) as client:
            await client.setup()
            handle = (await client.recv())["sessionResumptionUpdate"]["newHandle"]
        await asyncio.sleep(emu.options.scaled(1.0) + 0.1)
        async with RawClient.connect(emu) as client:
            await client.send(setup_message(handle=handle))
            assert (await client.closed())[0] == 1008


async def test_the_model_cannot_change_on_resume() -> None:
    """Resuming into another model is an invalid argument (1007)."""
    async with running() as emu:
        async with RawClient.connect(emu) as client:
            await client.setup()
            handle = (await client.recv())["sessionResumptionUpdate"]["newHandle"]
        async with RawClient.connect(emu) as client:
            other = "gemini-2.5-flash-native-audio-preview-12-2025"
            await client.send(setup_message(handle=handle, model=other))
            assert (await client.closed())[0] == 1007


async def test_resume_while_the_old_socket_is_open_fails_1011_then_works_after_close() -> None:
    """Like the service, a session has one live socket: resuming beside an open one gets 1011
    after the grace period; once the old one is closed the same handle works."""
    async with running(emulator_options(resume_grace_s=0.2)) as emu:
        async with RawClient.connect(emu) as old:
            await old.setup()
            handle = (await old.recv())["sessionResumptionUpdate"]["newHandle"]
            async with RawClient.connect(emu) as new:
                await new.send(setup_message(handle=handle))
                assert await new.closed() == (1011, "The service is currently unavailable.")
        async with RawClient.connect(emu) as new:
            await new.setup(handle=handle)
        assert emu.recording.counters["resumes"] == 1


async def test_resume_takes_over_a_stalled_socket() -> None:
    """A socket that stopped answering (stalled) does not block the resume: it is dropped."""
    async with running(emulator_options(resume_grace_s=5.0)) as emu, RawClient.connect(emu) as old:
        await old.setup()
        handle = (await old.recv())["sessionResumptionUpdate"]["newHandle"]
        emu.faults.stall(None, connection=1)
        await emu.wait_until(lambda: bool(emu.faults.fired))
        async with RawClient.connect(emu) as new:
            await new.setup(handle=handle)
        assert emu.recording.connections[0].close_reason == "taken over by a resume"


async def test_ephemeral_token_via_query_or_header_on_the_constrained_method() -> None:
    """auth_tokens/... work on BidiGenerateContentConstrained, by ?access_token= or the
    'Authorization: Token' header; a used-up token is refused with 1007."""
    async with running() as emu:
        path = emu.path("v1alpha", constrained=True)
        token = emu.issue_ephemeral_token(uses=1)
        async with RawClient.connect(emu, key=None, path=path, query=f"?access_token={token}") as c:
            await c.setup()
        async with RawClient.connect(emu, key=None, path=path, query=f"?access_token={token}") as c:
            await c.send(setup_message())
            assert (await c.closed())[0] == 1007
        header_token = emu.issue_ephemeral_token()
        auth = {"Authorization": f"Token {header_token}"}
        async with RawClient.connect(emu, key=header_token, path=path, headers=auth) as c:
            await c.setup()
        assert emu.recording.connections[2].headers["authorization"] == "<redacted>"


async def test_plain_api_key_is_refused_on_the_constrained_method() -> None:
    """The constrained method takes only ephemeral tokens."""
    async with running() as emu:
        path = emu.path("v1alpha", constrained=True)
        async with RawClient.connect(emu, path=path) as client:
            await client.send(setup_message(model=MODEL))
            assert (await client.closed())[0] == 1007
