"""The connection supervisor against the emulator: the conversation survives goAway, network loss,
close codes and restarts, and the user's audio reaches the model exactly once, in order."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pilive.emulator.faults import Phase, Stall
from pilive.emulator.options import ToolTrigger
from pilive.live import retry, wire
from pilive.live.events import (
    AudioChunk,
    LinkState,
    ToolCall,
)
from pilive.net.connection import (
    InsecureEndpointError,
    LinkOptions,
    check_endpoint,
)
from pilive.state import HandleStore
from tests.support.emulator_rig import emulator_options, running
from tests.support.fault_proxy import FaultProxy
from tests.support.link_rig import Harness, speech


async def test_push_to_talk_turn_round_trip() -> None:
    """A held-button turn reaches the model byte for byte and its spoken answer comes back."""
    async with running(emulator_options()) as emu, Harness(emu.url, emu.api_key) as h:
        await h.connected()
        sent = speech(0.6, 1)
        await h.say(sent)
        await h.until(lambda: h.turn_completes() == 1)
        assert emu.recording.turn(None, 1).audio == sent
        assert sum(len(e.pcm) for e in h.events if isinstance(e, AudioChunk)) > 0
        assert h.link.counters.fresh_sessions == 1


async def test_go_away_while_button_held_keeps_every_byte() -> None:
    """goAway mid-hold: the handover happens during the turn and the model still takes in the
    whole utterance exactly once, in order, in the same conversation."""
    async with running(emulator_options()) as emu, Harness(emu.url, emu.api_key) as h:
        await h.connected()
        sent = speech(2.0, 2)
        h.link.send_activity_start()
        await h.speak(sent[: len(sent) // 4])
        emu.faults.go_away(1.5)  # handover is due 1.0 s before the end: while still held
        await h.speak(sent[len(sent) // 4 :], pace_s=0.01)
        h.link.send_activity_end()
        await h.until(lambda: h.turn_completes() == 1)
        assert h.link.counters.handovers == 1
        assert h.link.counters.resumes == 1
        assert emu.recording.counters["sessions"] == 1
        assert emu.recording.turn(None, 1).audio == sent


async def test_go_away_while_model_speaks_waits_for_the_turn_boundary() -> None:
    """goAway during the answer: the answer plays to its end, then the link hands over, and the
    next turn continues the same conversation (turn 2 of one session)."""
    async with running(emulator_options()) as emu, Harness(emu.url, emu.api_key) as h:
        await h.connected()
        await h.say(speech(1.0, 3))
        await h.until(lambda: any(isinstance(e, AudioChunk) for e in h.events))
        emu.faults.go_away(20.0)
        await h.until(lambda: h.turn_completes() == 1)
        await h.until(lambda: h.link.counters.resumes == 1)
        assert h.link.counters.handovers == 1
        second = speech(0.4, 4)
        await h.say(second)
        await h.until(lambda: h.turn_completes() == 2)
        assert emu.recording.counters["sessions"] == 1
        assert emu.recording.turn(None, 2).audio == second


async def test_go_away_at_idle_hands_over_at_once() -> None:
    """At idle the handover starts immediately; the gap with no usable session is recorded."""
    async with running(emulator_options()) as emu, Harness(emu.url, emu.api_key) as h:
        await h.connected()
        await h.say(speech(0.2, 5))
        await h.until(lambda: h.turn_completes() == 1)
        await h.until(lambda: h.session.resumption_handle is not None)
        emu.faults.go_away(30.0)
        await h.until(lambda: h.link.counters.resumes == 1, timeout_s=5)
        assert len(h.link.counters.handover_gaps_s) == 1
        assert emu.recording.counters == {
            "connections": 2,
            "sessions": 1,
            "turns": 1,
            "resumes": 1,
        }


async def test_go_away_during_tool_call_answers_then_hands_over() -> None:
    """goAway while the model waits for a tool result: the response still goes out, the spoken
    result arrives, and the handover waits until then."""
    weather = wire.FunctionDeclaration(
        "get_weather",
        "Weather for a city",
        {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
    )
    options = emulator_options(tool_trigger=ToolTrigger(turns=frozenset({1})))
    async with running(options) as emu, Harness(emu.url, emu.api_key, functions=(weather,)) as h:
        await h.connected()
        await h.say(speech(0.3, 6))
        await h.until(lambda: any(isinstance(e, ToolCall) for e in h.events))
        emu.faults.go_away(20.0)
        await asyncio.sleep(0.1)
        assert h.link.counters.handovers == 0  # a tool call is outstanding: not a boundary
        call = next(e for e in h.events if isinstance(e, ToolCall)).calls[0]
        h.link.send_tool_response([wire.FunctionResponse(call.id, call.name, {"result": "sun"})])
        await h.until(lambda: h.turn_completes() == 1)
        await h.until(lambda: h.link.counters.resumes == 1)
        assert emu.recording.turn(None, 1).tool_responses
        assert emu.recording.counters["sessions"] == 1


async def test_network_cut_mid_hold_replays_the_activity_once() -> None:
    """The TCP link is reset while the button is held: after the resume the activity is replayed
    from its start, so the model takes in the whole utterance exactly once."""
    async with (
        running(emulator_options()) as emu,
        FaultProxy(emu.port) as proxy,
        Harness(proxy.url, emu.api_key) as h,
    ):
        await h.connected()
        sent = speech(1.0, 7)
        h.link.send_activity_start()
        await h.speak(sent[: len(sent) // 2])
        proxy.cut()
        await h.speak(sent[len(sent) // 2 :])
        h.link.send_activity_end()
        await h.until(lambda: h.turn_completes() == 1)
        turn = emu.recording.session().turns[-1]
        assert turn.audio == sent
        assert h.session.replayed_audio_bytes > 0


@pytest.mark.parametrize(
    ("code", "reason", "phase"),
    [
        (1011, "The service is currently unavailable.", Phase.IDLE),
        (1011, "The service is currently unavailable.", Phase.USER_TURN),
        (1011, "Deadline expired before operation could complete.", Phase.IDLE),
        (1011, "Internal error occurred.", Phase.MODEL_AUDIO),
        (1000, "", Phase.MODEL_AUDIO),
        (1001, "", Phase.IDLE),
    ],
)
async def test_transient_close_codes_resume_the_conversation(
    code: int, reason: str, phase: Phase
) -> None:
    """Each transient close at each phase ends in a resumed session, and a later turn lands in
    the same conversation (the emulator's session count stays 1)."""
    async with running(emulator_options()) as emu, Harness(emu.url, emu.api_key) as h:
        await h.connected()
        await h.say(speech(0.3, 8))
        await h.until(lambda: h.turn_completes() == 1)
        await h.until(lambda: h.session.resumption_handle is not None)
        emu.faults.on(phase, _close(code, reason))
        if phase is Phase.IDLE:
            emu.faults.close(code, reason)
        else:
            await h.say(speech(0.3, 9))
        await h.until(lambda: h.link.counters.resumes >= 1)
        await h.say(speech(0.2, 10))
        await h.until(lambda: emu.recording.session().turns[-1].audio == speech(0.2, 10))
        assert emu.recording.counters["sessions"] == 1


def _close(code: int, reason: str) -> Any:
    from pilive.emulator.faults import Close

    return Close(code, reason)


async def test_close_before_setup_complete_backs_off_then_recovers() -> None:
    """A server that accepts and then closes before setupComplete causes backoff, not a hot
    loop; the next attempt succeeds."""
    async with running(emulator_options()) as emu:
        emu.faults.on(Phase.SETUP, _close(1011, "The service is currently unavailable."))
        async with Harness(emu.url, emu.api_key) as h:
            await h.connected()
            assert h.link.counters.attempts == 2
            assert any(s.state is LinkState.RECONNECTING for s in h.statuses)


@pytest.mark.parametrize(
    ("code", "reason", "cause"),
    [
        (1007, "API key not valid. Please pass a valid API key.", "API key invalid (1007)"),
        (1008, "models/x is not found for API version v1beta", "model not found"),
    ],
)
async def test_configuration_faults_retry_slowly_with_a_clear_status(
    code: int, reason: str, cause: str
) -> None:
    """A setup refused with 1007 / 1008 twice in a row shows a configuration fault naming the
    cause and retries only after the slow interval: no hot loop. Once is not a fault (the next
    test)."""
    async with running(emulator_options()) as emu:
        emu.faults.on(Phase.SETUP, _close(code, reason))
        emu.faults.on(Phase.SETUP, _close(code, reason))
        async with Harness(emu.url, emu.api_key) as h:
            await h.until(lambda: h.link.status.state is LinkState.CONFIG_FAULT)
            await asyncio.sleep(0.5)
            assert h.link.counters.attempts == 2
            assert cause in h.link.status.detail
            assert h.link.status.next_attempt_in_s == 30.0
            assert "configuration fault" in h.link.status.describe()


async def test_a_single_refused_setup_is_retried_not_a_fault() -> None:
    """One 1007 on a setup (the real service also refuses for passing reasons) costs a short
    backoff, never the slow configuration-fault retry."""
    async with running(emulator_options()) as emu:
        emu.faults.on(Phase.SETUP, _close(1007, "Request contains an invalid argument."))
        async with Harness(emu.url, emu.api_key) as h:
            await h.connected()
            assert h.link.counters.attempts == 2
            assert not any(s.state is LinkState.CONFIG_FAULT for s in h.statuses)


async def test_wrong_key_is_a_configuration_fault_and_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A wrong key gives the 1007 fault; neither key appears in any log record, even at DEBUG."""
    caplog.set_level(logging.DEBUG)
    async with running(emulator_options()) as emu:
        async with Harness(emu.url, "wrong-key-0123456789") as h:
            await h.until(lambda: h.link.status.state is LinkState.CONFIG_FAULT)
            assert "API key invalid" in h.link.status.detail
        async with Harness(emu.url, emu.api_key) as h:
            await h.connected()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "wrong-key-0123456789" not in text
    assert emu.api_key not in text


async def test_dead_peer_is_detected_within_the_keepalive_bound() -> None:
    """A server that silently stops answering (no pongs, no data) is detected within
    ping_interval + ping_timeout + close_timeout and the conversation resumes."""
    async with (
        running(emulator_options()) as emu,
        Harness(
            emu.url, emu.api_key, ping_interval_s=0.3, ping_timeout_s=1.0, close_timeout_s=0.2
        ) as h,
    ):
        await h.connected()
        loop = asyncio.get_running_loop()
        seen = len(h.statuses)
        emu.faults.now(Stall(None))
        stalled_at = loop.time()
        # The history, not the current state: the reconnect can be over between two polls.
        await h.until(lambda: len(h.statuses) > seen, timeout_s=10)
        detected_s = loop.time() - stalled_at
        assert "keepalive ping timed out (1011)" in h.link.counters.reconnects_by_cause
        # The bound (1.5 s) plus slack for a loaded machine: the figure itself is a benchmark's.
        assert detected_s <= 0.3 + 1.0 + 0.2 + 3.0
        await h.until(lambda: h.link.status.state is LinkState.CONNECTED, timeout_s=20)


async def test_refused_connections_back_off_capped_and_reset_after_success() -> None:
    """While the port refuses, delays grow by the factor up to the cap; after a productive
    connection (here: one that completed a turn) the next outage starts again from the initial
    delay. A setupComplete alone does not reset it (a server that accepts and drops at once)."""
    drawn: list[float] = []
    generators = 0

    def max_jitter_backoff() -> Iterator[float]:
        nonlocal generators
        generators += 1
        rng = random.Random()
        rng.uniform = lambda a, b: b  # type: ignore[method-assign]
        for delay in retry.backoff(0.02, 0.16, 2.0, rng=rng):
            drawn.append(delay)
            yield delay

    async with running(emulator_options()) as emu, FaultProxy(emu.port) as proxy:
        proxy.refuse(True)
        async with Harness(proxy.url, emu.api_key, backoff=max_jitter_backoff) as h:
            await h.until(lambda: len(drawn) >= 6)
            assert drawn[:6] == [0.02, 0.04, 0.08, 0.16, 0.16, 0.16]
            proxy.refuse(False)
            await h.connected()
            drawn.clear()
            proxy.cut()  # accepted, then dropped before any turn: still backing off
            await h.until(lambda: len(drawn) >= 1)
            assert drawn[0] == 0.16
            await h.connected()
            await h.say(speech(0.2, 9))
            await h.until(lambda: h.turn_completes() == 1)
            drawn.clear()
            proxy.refuse(True)
            proxy.cut()
            await h.until(lambda: len(drawn) >= 2)
            assert drawn[:2] == [0.02, 0.04]
            assert generators >= 2
            proxy.refuse(False)
            await h.connected()


async def test_offline_state_after_the_outage_lasts() -> None:
    """A short outage shows reconnecting; once it lasts past offline_after_s it shows offline
    with the next attempt time, which is what the appliance's press-while-offline needs."""
    async with (
        running(emulator_options()) as emu,
        FaultProxy(emu.port) as proxy,
        Harness(proxy.url, emu.api_key) as h,
    ):
        await h.connected()
        proxy.refuse(True)
        proxy.cut()
        await h.until(lambda: h.link.status.state is LinkState.RECONNECTING)
        await h.until(lambda: h.link.status.state is LinkState.OFFLINE, timeout_s=5)
        assert h.link.status.next_attempt_in_s is not None
        assert "retry in" in h.link.status.describe()
        proxy.refuse(False)
        await h.connected()


async def test_malformed_server_frame_is_logged_and_survived() -> None:
    """Bad JSON or an unknown message from the server does not end the link."""
    async with running(emulator_options()) as emu, Harness(emu.url, emu.api_key) as h:
        await h.connected()
        emu.faults.send_malformed("json")
        emu.faults.send_malformed("unknown_message")
        await h.until(lambda: h.link.counters.protocol_errors >= 1)
        await h.say(speech(0.2, 11))
        await h.until(lambda: h.turn_completes() == 1)
        assert h.link.counters.attempts == 1


def _stored(store: HandleStore) -> str | None:
    stored = store.load(1e12, 1e12).stored
    return None if stored is None else stored.handle


async def test_restart_resumes_the_conversation_from_the_stored_handle(tmp_path: Path) -> None:
    """The daemon stopped and started between turns continues the same conversation: the
    emulator sees one session whose turn counter goes on."""
    store = HandleStore(tmp_path)
    async with running(emulator_options()) as emu:
        async with Harness(emu.url, emu.api_key, store=store) as h:
            await h.connected()
            await h.say(speech(0.3, 12))
            await h.until(lambda: h.turn_completes() == 1)
            # The handle issued after the answer, not an earlier one (resuming from a handle of
            # before the turn would roll it back): on a busy machine the first may lag.
            await h.until(lambda: _stored(store) == h.session.resumption_handle)
        async with Harness(emu.url, emu.api_key, store=store) as h2:
            await h2.connected()
            assert h2.link.counters.resumes == 1
            await h2.say(speech(0.3, 13))
            await h2.until(lambda: h2.turn_completes() == 1)
        assert emu.recording.counters["sessions"] == 1
        assert emu.recording.session().turn_count == 2


async def test_rejected_stored_handle_starts_a_fresh_conversation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored handle the server no longer accepts is dropped (memory and disk), a fresh
    session starts at once, and the log says so."""
    store = HandleStore(tmp_path)
    async with running(emulator_options()) as emu:
        async with Harness(emu.url, emu.api_key, store=store) as h:
            await h.connected()
            await h.say(speech(0.2, 14))
            await h.until(lambda: h.turn_completes() == 1)
            await h.until(lambda: store.load(1e12, 1e12).stored is not None)
        emu.expire_handles()
        async with Harness(emu.url, emu.api_key, store=store) as h2:
            await h2.connected()
            assert h2.link.counters.handles_rejected == 1
            assert h2.link.counters.fresh_sessions == 1
        assert emu.recording.counters["sessions"] == 2
    assert "starting a fresh one" in caplog.text


async def test_new_conversation_drops_the_handle(tmp_path: Path) -> None:
    """new_conversation() reconnects without a handle and forgets the stored one."""
    store = HandleStore(tmp_path)
    async with running(emulator_options()) as emu:
        async with Harness(emu.url, emu.api_key, store=store) as h:
            await h.connected()
            await h.say(speech(0.2, 15))
            await h.until(lambda: h.turn_completes() == 1)
            h.link.new_conversation()
            await h.until(lambda: h.link.counters.fresh_sessions == 2)
            await h.connected()
        assert emu.recording.counters["sessions"] == 2


def test_insecure_endpoints_are_refused() -> None:
    """Plain ws:// off loopback, and anything carrying a query or credentials, is refused."""
    check_endpoint("wss://generativelanguage.googleapis.com")
    check_endpoint("ws://127.0.0.1:8765")
    check_endpoint("ws://[::1]:8765")
    for bad in (
        "ws://generativelanguage.googleapis.com",
        "ws://192.168.1.5:8765",
        "wss://example.com/?key=abc",
        "wss://user:pw@example.com",
        "http://127.0.0.1",
    ):
        with pytest.raises(InsecureEndpointError):
            check_endpoint(bad)


def test_url_never_carries_the_key() -> None:
    """The key goes in a header; the URL is the bare BidiGenerateContent path."""
    url = LinkOptions(api_version="v1beta").url()
    assert url == (
        "wss://generativelanguage.googleapis.com/ws/"
        "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    )


async def test_tls_endpoint_is_verified(tmp_path: Path) -> None:
    """Over wss the certificate is verified: a client trusting the emulator's CA connects; one
    using the system store is refused with a TLS cause and keeps retrying."""
    from tests.support.emulator_rig import make_tls

    tls = make_tls(tmp_path)
    options = emulator_options(tls_cert=str(tls.cert_path), tls_key=str(tls.key_path))
    async with running(options) as emu:
        endpoint = emu.url
        assert endpoint.startswith("wss://")
        async with Harness(endpoint, emu.api_key, ssl_context=tls.client_context) as h:
            await h.connected()
        async with Harness(endpoint, emu.api_key) as h:
            await h.until(lambda: h.link.status.state is LinkState.RECONNECTING)
            assert "TLS" in h.link.status.detail


_WEATHER = wire.FunctionDeclaration(
    "get_weather",
    "Weather for a city",
    {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
)


@pytest.mark.parametrize("phase", [Phase.IDLE, Phase.USER_TURN, Phase.MODEL_AUDIO, Phase.TOOL_WAIT])
@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (1000, ""),
        (1001, ""),
        (1011, "The service is currently unavailable."),
        (1011, "Deadline expired before operation could complete."),
        (None, "abort"),  # the TCP connection dropped without a close frame (1006)
    ],
)
async def test_every_close_at_every_phase_keeps_the_conversation(
    phase: Phase, code: int | None, reason: str
) -> None:
    """Whatever way the connection ends, in whatever phase, the link resumes the same session
    and the next turn reaches the model byte for byte."""
    from pilive.emulator.faults import Abort, Close

    action = Abort() if code is None else Close(code, reason)
    tools = frozenset({2}) if phase is Phase.TOOL_WAIT else frozenset()
    options = emulator_options(tool_trigger=ToolTrigger(turns=tools))
    async with (
        running(options) as emu,
        Harness(emu.url, emu.api_key, functions=(_WEATHER,)) as h,
    ):
        await h.connected()
        await h.say(speech(0.2, 20))
        await h.until(lambda: h.turn_completes() == 1)
        await h.until(lambda: h.session.resumption_handle is not None)
        emu.faults.on(phase, action, turn=None if phase is Phase.IDLE else 2)
        if phase is Phase.IDLE:
            emu.faults.now(action)
        else:
            await h.say(speech(0.3, 21))
        await h.until(lambda: h.link.counters.resumes >= 1)
        last = speech(0.2, 22)
        await h.say(last)
        await h.until(lambda: emu.recording.session().turns[-1].audio == last)
        assert emu.recording.counters["sessions"] == 1


async def test_a_frame_over_the_size_limit_is_named_1009_and_survived(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server frame larger than the client's max_size: websockets closes with 1009 itself; the
    link says so (not "1006"), resumes the same conversation, and the next turn is answered."""
    from pilive.emulator.faults import SendMessages

    caplog.set_level(logging.WARNING, logger="pilive.net")
    huge = {"serverContent": {"modelTurn": {"parts": [{"text": "x" * (17 * 1024 * 1024)}]}}}
    async with running(emulator_options()) as emu, Harness(emu.url, emu.api_key) as h:
        await h.connected()
        await h.say(speech(0.2, 30))
        await h.until(lambda: h.turn_completes() == 1)
        await h.until(lambda: h.session.resumption_handle is not None)
        emu.faults.now(SendMessages(huge))
        await h.until(lambda: h.link.counters.resumes == 1, timeout_s=20)
        await h.say(speech(0.2, 31))
        await h.until(lambda: h.turn_completes() == 2)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "larger than this client accepts (1009)" in text
    assert "(1006)" not in text


async def test_new_conversation_cuts_a_long_wait_short() -> None:
    """During the slow retry of a configuration fault (30 s here) the user asks for a new
    conversation: the link tries again at once instead of after the wait."""
    from pilive.emulator.faults import Close

    async with running(emulator_options()) as emu:
        for _ in range(2):
            emu.faults.on(Phase.SETUP, Close(1007, "Request contains an invalid argument."))
        async with Harness(emu.url, emu.api_key) as h:
            await h.until(lambda: h.link.status.state is LinkState.CONFIG_FAULT)
            h.link.new_conversation()
            await h.until(lambda: h.link.status.state is LinkState.CONNECTED, timeout_s=5)
            assert h.link.counters.attempts == 3
