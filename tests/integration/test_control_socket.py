"""The control socket end to end: the whole daemon (mock pins, file audio, synthetic camera)
against the emulator, driven through its Unix socket and through `pilive ctl` as a process."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from pilive.controls.events import ApplianceState
from pilive.emulator import Emulator
from pilive.live.events import LinkState
from tests.integration.test_app import app_config, mic_wav, start
from tests.integration.test_follow_up import bursts_wav
from tests.support.emulator_rig import emulator_options, running
from tests.support.fault_proxy import FaultProxy

CONTROL = '[control]\nsocket = "ctl.sock"\n'


async def ask(path: Path, request: dict[str, Any]) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readline(), 10))
        return reply
    finally:
        writer.close()
        await writer.wait_closed()


async def ctl(tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "pilive", "ctl", "--socket", str(tmp_path / "ctl.sock"), *argv),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def texts_heard(emu: Emulator) -> list[str]:
    return [text for s in emu.recording.sessions.values() for t in s.turns for text in t.texts]


async def test_status_is_json_and_the_socket_is_private_to_the_service(tmp_path: Path) -> None:
    """`pilive ctl status` prints the state, link, volume and last turn as JSON; the socket is a
    Unix socket of the daemon's own user and group with mode 0660 (nothing on the network), and
    it is gone once the daemon stops."""
    mic_wav(tmp_path / "mic.wav")
    path = tmp_path / "ctl.sock"
    async with running(emulator_options()) as emu:
        async with start(app_config(tmp_path, emu, CONTROL), emu.api_key) as r:
            await r.settled()
            st = os.stat(path)
            assert stat.S_ISSOCK(st.st_mode)
            assert stat.S_IMODE(st.st_mode) == 0o660
            assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
            code, out, err = await ctl(tmp_path, "status")
            assert code == 0, err
            status = json.loads(out)
            assert status["state"] == "idle"
            assert status["link"]["state"] == "connected"
            assert status["volume"] == 80
            assert status["last_turn"] is None
        assert not path.exists()


async def test_say_is_a_typed_turn_the_model_answers(tmp_path: Path) -> None:
    """`say` goes to the model as realtimeInput.text between activityStart and activityEnd,
    with no microphone audio; the answer plays, and status shows the turn's words."""
    mic_wav(tmp_path / "mic.wav")
    async with (
        running(emulator_options()) as emu,
        start(app_config(tmp_path, emu, CONTROL), emu.api_key) as r,
    ):
        await r.settled()
        code, _, err = await ctl(tmp_path, "say", "the", "washing", "is", "done")
        assert code == 0, err
        await r.until(lambda: texts_heard(emu) == ["the washing is done"])
        turn = emu.recording.turn(None, 1)
        assert turn.source == "activity" and not turn.audio
        sent = [
            next(iter(f.message["realtimeInput"]))
            for c in emu.recording.connections
            for f in c.received
            if f.message
            and "realtimeInput" in f.message
            and "audio" not in f.message["realtimeInput"]
            and "video" not in f.message["realtimeInput"]
        ]
        assert sent == ["activityStart", "text", "activityEnd"]
        await r.until(lambda: "answer played out" in r.timeline, timeout_s=15)
        await r.until(lambda: r.state is ApplianceState.IDLE)
        status = (await ask(tmp_path / "ctl.sock", {"command": "status"}))["status"]
        assert "the washing is done" in status["last_turn"]["heard"]
        assert "turn 1" in status["last_turn"]["said"]


async def test_say_while_offline_waits_for_the_link(tmp_path: Path) -> None:
    """An announcement while the service cannot be reached is queued, not refused: the reply
    and status say it waits, nothing is sent while offline, and once the link is back it is
    said (a typed turn with no microphone audio) and its answer plays. A second one, sent while
    the first still waits, follows it in order."""
    mic_wav(tmp_path / "mic.wav")
    path = tmp_path / "ctl.sock"
    async with running(emulator_options()) as emu, FaultProxy(emu.port) as proxy:
        config = app_config(tmp_path, emu, CONTROL)
        config = dataclasses.replace(
            config, live=dataclasses.replace(config.live, endpoint=proxy.url)
        )
        async with start(config, emu.api_key) as r:
            await r.settled()
            proxy.refuse(True)
            proxy.cut()
            await r.until(lambda: r.app.link.status.state is not LinkState.CONNECTED)
            first = await ask(path, {"command": "say", "text": "the post has come"})
            assert first["ok"] and first["queued"] == 1
            assert first["waiting_for"].startswith("not connected")
            code, out, err = await ctl(tmp_path, "say", "and", "the", "bread", "is", "ready")
            assert code == 0, err
            assert out.startswith("queued (2 waiting: announcements before it are still waiting)")
            assert out.rstrip().endswith("it is said once the speaker is free")
            status = (await ask(path, {"command": "status"}))["status"]
            assert status["announcements_waiting"] == 2
            await asyncio.sleep(0.5)
            assert texts_heard(emu) == []
            proxy.refuse(False)
            await r.until(lambda: texts_heard(emu) == ["the post has come"], timeout_s=15)
            await r.until(
                lambda: texts_heard(emu) == ["the post has come", "and the bread is ready"],
                timeout_s=20,
            )
            # One at a time: the second was said only after the first one's answer played out.
            said = [i for i, t in enumerate(r.timeline) if t.startswith("announcement said")]
            assert len(said) == 2
            assert "answer played out" in r.timeline[said[0] : said[1]]
            await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)
            status = (await ask(path, {"command": "status"}))["status"]
            assert status["announcements_waiting"] == 0
            assert not any(t.audio for s in emu.recording.sessions.values() for t in s.turns)


async def test_say_queued_behind_a_tap_is_said_once_the_tap_is_over(tmp_path: Path) -> None:
    """An announcement queued while the button is down but not yet a turn (shorter than
    min_press_ms) is said once that press ends as a tap: the tap changes no state, so nothing
    else would have looked at the waiting text again."""
    mic_wav(tmp_path / "mic.wav")
    path = tmp_path / "ctl.sock"
    async with running(emulator_options()) as emu:
        config = app_config(tmp_path, emu, CONTROL, conversation="min_press_ms = 5000")
        async with start(config, emu.api_key) as r:
            await r.settled()
            assert (await ask(path, {"command": "press"}))["ok"]
            queued = await ask(path, {"command": "say", "text": "the post has come"})
            assert queued == {
                "ok": True,
                "queued": 1,
                "waiting_for": "the button is held for a turn",
            }
            assert (await ask(path, {"command": "release"}))["ok"]
            await r.until(lambda: texts_heard(emu) == ["the post has come"], timeout_s=15)
            await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)
            assert emu.recording.counters["turns"] == 1  # the tap itself was no turn


async def test_a_waiting_announcement_is_dropped_when_its_time_is_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An announcement that waits longer than it may is dropped and logged when its time is up,
    even while nothing else changes (here a turn held all along): status stops counting it,
    and it is never said after the turn. With log.transcripts off the log line has no words."""
    mic_wav(tmp_path / "mic.wav")
    path = tmp_path / "ctl.sock"
    async with running(emulator_options()) as emu:
        config = app_config(tmp_path, emu, CONTROL + "[log]\ntranscripts = false\n")
        async with start(config, emu.api_key) as r:
            await r.settled()
            r.app.household.announcements.keep_s = 0.5
            assert (await ask(path, {"command": "press"}))["ok"]
            await r.until(lambda: r.state is ApplianceState.LISTENING)
            queued = await ask(path, {"command": "say", "text": "the post has come"})
            assert queued["ok"] and queued["queued"] == 1
            await r.until(
                lambda: any("announcement dropped" in m for m in caplog.messages), timeout_s=10
            )
            assert r.state is ApplianceState.LISTENING  # still held: the time alone dropped it
            status = (await ask(path, {"command": "status"}))["status"]
            assert status["announcements_waiting"] == 0
            assert not any("post" in m for m in caplog.messages)
            assert (await ask(path, {"command": "release"}))["ok"]
            await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)
            await asyncio.sleep(0.5)
            assert texts_heard(emu) == []


async def test_say_waits_for_the_answer_and_the_follow_up_window(tmp_path: Path) -> None:
    """An announcement while an answer plays does not cut it, and one while the follow-up
    window waits for the user's reply does not take the window away: each waits, and is said
    once the speaker is idle again (the window closed by itself, nobody having spoken)."""
    bursts_wav(tmp_path / "mic.wav", every_s=0, burst_s=0)  # a silent room
    path = tmp_path / "ctl.sock"
    async with running(emulator_options()) as emu:
        config = app_config(tmp_path, emu, CONTROL, conversation="follow_up_s = 2.0")
        async with start(config, emu.api_key) as r:
            await r.settled()
            assert await ask(path, {"command": "say", "text": "hello"}) == {"ok": True}
            await r.until(lambda: r.state is ApplianceState.SPEAKING, timeout_s=15)
            during = await ask(path, {"command": "say", "text": "the post has come"})
            assert during["ok"] and during["queued"] == 1
            assert during["waiting_for"] in (
                "the speaker is busy: speaking",
                "the speaker is busy: follow_up",  # the answer was short and is over
            )
            await r.until(lambda: "LED follow_up" in r.timeline, timeout_s=15)
            assert "barge-in: speaker flushed" not in r.timeline  # the answer played out
            assert texts_heard(emu) == ["hello"]
            window = r.app.household.follow_up
            assert window is not None
            await r.until(lambda: texts_heard(emu) == ["hello", "the post has come"])
            closed = r.timeline.index("follow-up window closed: nothing was said")
            said = next(i for i, t in enumerate(r.timeline) if t.startswith("announcement said"))
            assert closed < said  # the window had its full two seconds
            assert emu.recording.counters["turns"] == 2


async def test_press_release_volume_and_new_conversation_through_the_socket(
    tmp_path: Path,
) -> None:
    """press and release make a spoken turn as the button does; volume sets the speaker's gain
    in the ring buffer; new-conversation starts a fresh session."""
    mic_wav(tmp_path / "mic.wav")
    path = tmp_path / "ctl.sock"
    async with (
        running(emulator_options()) as emu,
        start(app_config(tmp_path, emu, CONTROL), emu.api_key) as r,
    ):
        await r.settled()
        assert (await ask(path, {"command": "press"}))["ok"]
        await r.until(lambda: r.state is ApplianceState.LISTENING)
        busy = await ask(path, {"command": "say", "text": "hello"})
        assert busy == {"ok": True, "queued": 1, "waiting_for": "the button is held for a turn"}
        await asyncio.sleep(0.8)
        assert (await ask(path, {"command": "release"}))["ok"]
        await r.until(lambda: emu.recording.counters["turns"] >= 1)
        assert len(emu.recording.turn(None, 1).audio) > 16000  # > 0.5 s of speech
        # The waiting announcement goes once the answer to the held turn has played, not before.
        await r.until(lambda: texts_heard(emu) == ["hello"], timeout_s=15)
        assert "answer played out" in r.timeline
        assert not emu.recording.turn(None, 2).audio
        await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)

        assert await ask(path, {"command": "volume", "percent": 50}) == {
            "ok": True,
            "volume": 50,
        }
        ring = r.app.playback.ring
        assert ring is not None and abs(ring.gain - 0.125) < 1e-6  # (50 / 100) ** 3

        sessions = emu.recording.counters["sessions"]
        assert (await ask(path, {"command": "new-conversation"}))["ok"]
        await r.until(lambda: emu.recording.counters["sessions"] == sessions + 1)


async def test_whatever_a_client_sends_the_daemon_stays_up(tmp_path: Path) -> None:
    """Garbage, an over-long line and more clients than allowed each get a refusal naming why;
    the daemon goes on answering."""
    mic_wav(tmp_path / "mic.wav")
    path = tmp_path / "ctl.sock"
    async with (
        running(emulator_options()) as emu,
        start(app_config(tmp_path, emu, CONTROL), emu.api_key) as r,
    ):
        await r.settled()
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(b"hello\n")
        assert b"not a JSON object" in await reader.readline()
        writer.write(b"x" * 20000 + b"\n")
        assert b"longer than 8192 bytes" in await reader.readline()
        assert await reader.read() == b""  # and the connection is closed
        writer.close()
        idle = [await asyncio.open_unix_connection(str(path)) for _ in range(8)]
        await asyncio.sleep(0.2)
        one_more_reader, one_more = await asyncio.open_unix_connection(str(path))
        assert b"busy: 8 clients" in await one_more_reader.readline()
        one_more.close()
        for _, w in idle:
            w.close()
        await asyncio.sleep(0.2)
        assert (await ask(path, {"command": "status"}))["ok"]
        assert r.app.failure is None


async def test_a_stale_socket_is_replaced_and_a_live_one_left_alone(tmp_path: Path) -> None:
    """A socket file left by a daemon that died is replaced; one another process still listens
    on is not taken over (the daemon runs on without a control socket and says so)."""
    mic_wav(tmp_path / "mic.wav")
    path = tmp_path / "ctl.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    async with (
        running(emulator_options()) as emu,
        start(app_config(tmp_path, emu, CONTROL), emu.api_key) as r,
    ):
        await r.settled()
        assert (await ask(path, {"command": "status"}))["ok"]
        other = tmp_path / "other"
        other.mkdir()
        mic_wav(other / "mic.wav")
        text = CONTROL.replace("ctl.sock", str(path))
        async with start(app_config(other, emu, text), emu.api_key) as second:
            await second.settled()
            assert second.app.household.control is None
        assert (await ask(path, {"command": "status"}))["ok"]


async def test_a_disabled_control_socket_is_never_bound(tmp_path: Path) -> None:
    """control.enabled = false: the daemon runs and answers a turn with no socket at
    control.socket, and `pilive ctl` says that nothing listens there."""
    mic_wav(tmp_path / "mic.wav")
    text = '[control]\nenabled = false\nsocket = "ctl.sock"\n'
    async with (
        running(emulator_options()) as emu,
        start(app_config(tmp_path, emu, text), emu.api_key) as r,
    ):
        await r.settled()
        await r.hold(0.8)
        await r.until(lambda: emu.recording.counters["turns"] == 1)
        assert r.app.household.control is None
        assert not (tmp_path / "ctl.sock").exists()
        code, _, err = await ctl(tmp_path, "status")
        assert code == 2
        assert "no such socket" in err


async def test_ctl_says_when_no_daemon_listens(tmp_path: Path) -> None:
    """Without a daemon `pilive ctl` exits 2 with a sentence, not a traceback."""
    code, _, err = await ctl(tmp_path, "status")
    assert code == 2
    assert "no such socket" in err
