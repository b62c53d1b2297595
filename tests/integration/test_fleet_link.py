"""The link of a fleet device on ephemeral tokens: the real link and session, the real token
service (in process) and the emulator's auth_tokens API and Constrained method. A turn, a goAway
handover that resumes with the token it has, a handover before the token expires, a resume after
it expired, a used token, a revoked device, the token service down or slow, and a setup that
contradicts the token's locks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pilive.config import Secret
from pilive.emulator import Emulator
from pilive.emulator.authtokens import BAD_KEY, TOKEN_EXPIRED
from pilive.live.events import LinkState
from pilive.live.retry import Failure
from pilive.net.tokens import TokenSource, TokenUnavailable
from tests.support.emulator_rig import RawClient, emulator_options, running, setup_message
from tests.support.fault_proxy import FaultProxy
from tests.support.fleet_rig import Fleet, token_service
from tests.support.link_rig import Harness, speech


def _source(url: str, credential: Secret, **overrides: Any) -> TokenSource:
    from pilive.live import retry

    values: dict[str, Any] = {"timeout_s": 3.0, "new_backoff": lambda: retry.backoff(0.05, 0.4)}
    values.update(overrides)
    return TokenSource(url, credential, **values)


@contextlib.asynccontextmanager
async def _chain(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[Emulator, Fleet, Secret]]:
    async with (
        running(emulator_options(auth_tokens_api=True)) as emu,
        token_service(emu, tmp_path, **settings) as fleet,
    ):
        credential = fleet.add_device("kitchen")
        fleet.service.registry.reload_if_changed()
        yield emu, fleet, credential


def _issued(fleet: Fleet) -> int:
    return sum(line["outcome"] == "issued" for line in fleet.audit())


async def test_a_turn_on_a_token(tmp_path: Path) -> None:
    """The link fetches a token, opens v1alpha's Constrained method with it (no key anywhere),
    and a push-to-talk turn goes through; the token started one session."""
    async with _chain(tmp_path) as (emu, fleet, credential):
        source = _source(fleet.url, credential)
        async with Harness(emu.url, "", tokens=source) as h:
            await h.connected()
            sent = speech(0.5, 1)
            await h.say(sent)
            await h.until(lambda: h.turn_completes() == 1)
        record = emu.recording.connections[0]
        assert record.constrained and record.api_version == "v1alpha"
        assert "x-goog-api-key" not in record.headers
        assert record.headers["authorization"] == "<redacted>"
        assert emu.recording.turn(None, 1).audio == sent
        (token,) = emu.auth_tokens.tokens.values()
        assert token.sessions == 1 and _issued(fleet) == 1


async def test_go_away_handover_resumes_with_the_token_it_has(tmp_path: Path) -> None:
    """goAway: the next connection resumes the conversation with the same token (a resume
    spends no use), so a handover needs no token service at all."""
    async with _chain(tmp_path) as (emu, fleet, credential):
        async with Harness(emu.url, "", tokens=_source(fleet.url, credential)) as h:
            await h.connected()
            emu.faults.go_away(1.5)
            await h.until(lambda: h.link.counters.resumes == 1)
            await h.say(speech(0.3, 2))
            await h.until(lambda: h.turn_completes() == 1)
        (token,) = emu.auth_tokens.tokens.values()
        assert token.connections == ["c1", "c2"] and token.sessions == 1
        assert emu.recording.connections[1].resumed and _issued(fleet) == 1
        assert emu.recording.counters["sessions"] == 1


async def test_hands_over_to_a_fresh_token_before_the_token_expires(tmp_path: Path) -> None:
    """A 4 s token: the next one is fetched ahead, and the conversation moves to a connection
    with it before the first expires (never closed by the service for an expired token), still
    the same session."""
    async with _chain(tmp_path, expire_after_s=4.0, new_session_window_s=2.0) as (
        emu,
        fleet,
        credential,
    ):
        async with Harness(emu.url, "", tokens=_source(fleet.url, credential)) as h:
            await h.connected()
            await h.until(lambda: h.link.counters.resumes >= 1, timeout_s=15)
            await h.say(speech(0.3, 3))
            await h.until(lambda: h.turn_completes() == 1)
        assert not any(r.close_reason == TOKEN_EXPIRED for r in emu.recording.connections)
        first, second = list(emu.auth_tokens.tokens.values())[:2]
        assert first.connections == ["c1"] and second.connections[0] == "c2"
        assert emu.recording.connections[1].resumed
        assert emu.recording.counters["sessions"] == 1 and h.link.counters.handovers >= 1


async def test_a_resume_after_the_token_expired_takes_a_fresh_one(tmp_path: Path) -> None:
    """The network is gone longer than the token lives: the resume after it is made with a
    fresh token (the expired one is never presented) and continues the conversation."""
    async with (
        _chain(tmp_path, expire_after_s=3.0, new_session_window_s=2.0) as (emu, fleet, credential),
        FaultProxy(emu.port) as proxy,
    ):
        async with Harness(proxy.url, "", tokens=_source(fleet.url, credential)) as h:
            await h.connected()
            proxy.refuse(True)
            proxy.cut()
            await h.until(lambda: h.link.status.state is not LinkState.CONNECTED)
            await asyncio.sleep(3.5)
            proxy.refuse(False)
            await h.until(lambda: h.link.counters.resumes >= 1, timeout_s=15)
        assert all(not t.refusals for t in emu.auth_tokens.tokens.values())
        assert emu.recording.counters["sessions"] == 1
        assert emu.recording.connections[-1].resumed


async def test_a_used_token_is_refused_and_a_fresh_one_taken(tmp_path: Path) -> None:
    """Someone else started a session with the device's token first: the service refuses it
    for a new session (1007, like a bad key), and the link fetches a fresh one at once."""
    async with _chain(tmp_path) as (emu, fleet, credential):
        source = _source(fleet.url, credential)
        stolen = await source.token_for(resuming=False)
        headers = {"Authorization": f"Token {stolen.secret.reveal()}"}
        path = emu.path("v1alpha", constrained=True)
        async with RawClient.connect(emu, key=None, path=path, headers=headers) as thief:
            await thief.setup()
        async with Harness(emu.url, "", tokens=source) as h:
            await h.connected()
        assert emu.recording.connections[1].close_code == 1007
        assert emu.recording.connections[1].close_reason == BAD_KEY
        assert emu.auth_tokens.tokens[stolen.secret.reveal()].refusals == ["used up"]
        assert source.counters.refused == 1 and _issued(fleet) == 2


async def test_a_revoked_device_is_a_configuration_fault(tmp_path: Path) -> None:
    """Revoked: the token service answers 403; the link says so (a configuration fault after
    the second refusal, retried slowly), and the journal and STATUS name it."""
    async with _chain(tmp_path) as (emu, fleet, credential):
        fleet.revoke("kitchen")
        fleet.service.registry.reload_if_changed()
        async with Harness(emu.url, "", tokens=_source(fleet.url, credential)) as h:
            await h.until(lambda: h.link.status.state is LinkState.CONFIG_FAULT)
            assert "this device is revoked (HTTP 403)" in h.link.status.describe()
        assert emu.recording.connections == []


async def test_token_service_down_or_slow(tmp_path: Path) -> None:
    """With the token service unreachable the current conversation carries on (a turn, and a
    goAway handover resumed with the token it has), the next token's problem shows, and a new
    connection retries with backoff naming the problem; a service that stalls is given up after
    the timeout. When it answers again, so does the link."""
    async with _chain(tmp_path) as (emu, fleet, credential):
        port = int(fleet.url.rsplit(":", 1)[1].split("/")[0])
        async with FaultProxy(port) as proxy:
            url = f"http://127.0.0.1:{proxy.port}/v1/token"
            async with Harness(emu.url, "", tokens=_source(url, credential, timeout_s=1.0)) as h:
                await h.connected()
                proxy.refuse(True)
                emu.faults.go_away(1.5)
                await h.until(lambda: h.link.counters.resumes == 1)
                await h.say(speech(0.3, 4))
                await h.until(lambda: h.turn_completes() == 1)
                h.link.new_conversation()  # a new session needs a new token
                await h.until(lambda: h.link.status.state in (LinkState.RECONNECTING,
                                                              LinkState.OFFLINE))  # fmt: skip
                status = h.link.status
                assert status.detail.startswith("token service: network error")
                assert status.next_attempt_in_s is not None
                proxy.refuse(False)
                proxy.stall()
                await h.until(lambda: "did not answer within 1 s" in h.link.status.detail)
                proxy.unstall()
                await h.connected()
        assert emu.recording.counters["sessions"] == 2


async def test_a_setup_that_contradicts_the_locks_is_a_configuration_fault(tmp_path: Path) -> None:
    """The token locks the system instruction; a device whose setup says otherwise is refused
    (1007 INVALID_ARGUMENT) with each fresh token, and the link calls it a configuration
    fault, not a network problem."""
    extra = 'system_instruction = "Only speak French."'
    async with _chain(tmp_path, token_extra=extra) as (emu, fleet, credential):
        setup = {"system_instruction": "Only speak English."}
        async with Harness(emu.url, "", tokens=_source(fleet.url, credential), setup=setup) as h:
            await h.until(lambda: h.link.status.state is LinkState.CONFIG_FAULT)
            assert "invalid configuration" in h.link.status.detail
        refusals = [r for t in emu.auth_tokens.tokens.values() for r in t.refusals]
        assert refusals[:2] == ["systemInstruction.parts contradicts the token's locked value"] * 2


async def test_the_token_never_reaches_a_log_line(tmp_path: Path, caplog: Any) -> None:
    """At debug level, a whole chain run (token fetched, connection, refusal of a used token)
    logs neither a token nor the device credential in any of pilive's loggers."""
    import logging

    caplog.set_level(logging.DEBUG)
    async with _chain(tmp_path) as (emu, fleet, credential):
        source = _source(fleet.url, credential)
        first = await source.token_for(resuming=False)
        async with RawClient.connect(
            emu,
            key=None,
            path=emu.path("v1alpha", constrained=True),
            headers={"Authorization": f"Token {first.secret.reveal()}"},
        ) as thief:
            await thief.send(setup_message())
            await thief.recv()
        async with Harness(emu.url, "", tokens=source) as h:
            await h.connected()
        names = list(emu.auth_tokens.tokens)
    # pilive's own loggers (the link, the token service, the emulator); the test's raw client
    # is a plain websockets client that logs its headers at debug level, as it may.
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("pilive"))
    assert "auth_tokens" in text or "token" in text
    assert names and not any(name in text for name in names)
    assert credential.reveal() not in text and credential.reveal().split(".")[1] not in text


async def test_stopping_does_not_wait_for_a_stalled_token_service(tmp_path: Path) -> None:
    """A token request that hangs (a 30 s timeout) does not hold up stop(): the link returns at
    once, as the daemon's shutdown needs."""
    async with _chain(tmp_path) as (emu, fleet, credential):
        port = int(fleet.url.rsplit(":", 1)[1].split("/")[0])
        async with FaultProxy(port) as proxy:
            proxy.stall()
            url = f"http://127.0.0.1:{proxy.port}/v1/token"
            harness = Harness(emu.url, "", tokens=_source(url, credential, timeout_s=30.0))
            async with harness as h:
                await h.until(lambda: proxy.connections_accepted == 1)
                loop = asyncio.get_running_loop()
                started_s = loop.time()
            # __aexit__ stopped the link and waited for run() to return: far sooner than the
            # request's own 30 s timeout would have let it.
            assert loop.time() - started_s < 15.0
            proxy.unstall()
        assert emu.recording.connections == []


@contextlib.asynccontextmanager
async def _answering(body: bytes) -> AsyncIterator[str]:
    """A loopback HTTP server that answers every request 200 with `body` (a token service gone
    wrong); yields its token URL."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
             if line.lower().startswith(b"content-length:")),
            0,
        )  # fmt: skip
        await reader.readexactly(length)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1/token"
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "body",
    [
        b'{"token": "auth_tokens/x", "expiresInS": 60, "newSessionExpiresInS": 30, "uses": 1e400}',
        b'{"token": "auth_tokens/x", "expiresInS": 60, "newSessionExpiresInS": NaN, "uses": 1}',
        b'{"token": "auth_tokens/x", "expiresInS": 60, "newSessionExpiresInS": 30, "uses": 1.5}',
        b"[" * 60_000,
    ],
    ids=["uses-infinite", "window-nan", "uses-fraction", "nested"],
)
async def test_a_malformed_token_answer_is_a_transient_failure(body: bytes) -> None:
    """Whatever a token service answers with 200 (a count no integer holds, NaN, deep nesting),
    the device's token source calls it a malformed answer (retried with backoff) and raises
    nothing else: anything else would end the link's supervisor for good."""
    async with _answering(body) as url:
        source = _source(url, Secret("kitchen.secret", "test"))
        with pytest.raises(TokenUnavailable) as caught:
            await source.token_for(resuming=False)
    assert caught.value.classified.failure is Failure.TRANSIENT
    assert "malformed" in caught.value.classified.cause
