"""The asyncio + websockets shell around the sans-I/O model: handshake, pacing, faults.

async with Emulator(EmulatorOptions(time_scale=0.01)) as emu:
    ...connect to emu.url with header x-goog-api-key: emu.api_key...
    emu.faults.go_away(0.5)
    assert emu.recording.counters["turns"] == 2
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from pilive.emulator import faults as fx
from pilive.emulator.authtokens import BAD_KEY, AuthTokens, AuthTokensApi
from pilive.emulator.frames import ProtocolViolation
from pilive.emulator.model import DEADLINE_EXPIRED, ConnectionModel, Send
from pilive.emulator.options import EmulatorOptions
from pilive.emulator.recording import ConnectionRecord, Recording, SentFrame
from pilive.emulator.replies import audio_message
from pilive.emulator.sessions import SessionRegistry
from pilive.net.endpoint import is_loopback_host

logger = logging.getLogger("pilive.emulator")

_PATH = re.compile(
    r"^/ws/google\.ai\.generativelanguage\.(?P<version>v1alpha|v1beta|v1)"
    r"\.GenerativeService\.(?P<method>BidiGenerateContent|BidiGenerateContentConstrained)$"
)
_SECRET_HEADERS = frozenset({"x-goog-api-key", "authorization"})
_CLOSED = object()
_WAKE = object()


def _websockets_logger() -> logging.Logger:
    """websockets logs raw request lines at DEBUG, and `?key=` would be among them: cap it."""
    ws_logger = logging.getLogger("pilive.emulator.websockets")
    if ws_logger.getEffectiveLevel() < logging.INFO:
        ws_logger.setLevel(logging.INFO)
    return ws_logger


def _ends_connection(action: fx.FaultAction) -> bool:
    if isinstance(action, fx.SendMalformed):
        return action.kind == "wire_truncated"
    return isinstance(action, fx.Close | fx.Abort)


@dataclass
class _Handshake:
    path: str
    version: str
    constrained: bool
    headers: dict[str, str]
    auth_error: ProtocolViolation | None
    token: str | None


@dataclass
class _Live:
    """One open connection as the shell sees it."""

    ws: ServerConnection
    model: ConnectionModel
    number: int
    queue: asyncio.Queue[object]
    kill: asyncio.Event = field(default_factory=asyncio.Event)
    token_expire_at_s: float | None = None  # the presented ephemeral token's expireTime
    muted: bool = False
    stalled: bool = False
    done: bool = False


class Emulator:
    """A local Live API server. Use as an async context manager or start()/stop()."""

    def __init__(
        self, options: EmulatorOptions | None = None, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.options = options or EmulatorOptions()
        if not is_loopback_host(self.options.host):
            raise ValueError(f"the emulator only binds to loopback, not {self.options.host!r}")
        self._ssl = ssl_context
        if self._ssl is None and self.options.tls_cert is not None:
            self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ssl.load_cert_chain(self.options.tls_cert, self.options.tls_key)
        self.registry = SessionRegistry(self.options.scaled(self.options.handle_lifetime_s))
        self.recording = Recording(self.registry)
        self.faults = fx.FaultScript()
        self.auth_tokens = AuthTokens(self.options.locked_field_conflict)
        self._auth_api: AuthTokensApi | None = None
        self._server: Server | None = None
        self._handshakes: dict[ServerConnection, _Handshake] = {}
        self._live: dict[str, _Live] = {}
        self._numbers = itertools.count(1)
        self._changed: asyncio.Event | None = None
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._changed = asyncio.Event()
        self._server = await serve(
            self._handler,
            self.options.host,
            self.options.port,
            ssl=self._ssl,
            process_request=self._process_request,
            max_size=None,
            compression=None,
            ping_interval=self.options.ping_interval_s,
            ping_timeout=None if self.options.ping_interval_s is None else 20,
            logger=_websockets_logger(),
        )
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        logger.info("emulator listening on %s", self.url)
        if self.options.auth_tokens_api:
            self._auth_api = AuthTokensApi(
                self.auth_tokens, self.options.api_key, clock=self._now, wall_clock=time.time
            )
            await self._auth_api.start(self.options.host, self._ssl)
            logger.info("auth_tokens API on %s", self.rest_url)

    async def stop(self) -> None:
        if self._auth_api is not None:
            await self._auth_api.stop()
            self._auth_api = None
        if self._server is None:
            return
        for live in list(self._live.values()):
            live.kill.set()
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        assert self._server is not None, "start() first"
        await self._server.serve_forever()

    # --- what tests use ------------------------------------------------------------------------

    @property
    def api_key(self) -> str:
        return self.options.api_key

    @property
    def url(self) -> str:
        host = self.options.host
        host = f"[{host}]" if ":" in host else host
        return f"{'wss' if self._ssl is not None else 'ws'}://{host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """The base URL of the auth_tokens API (`auth_tokens_api=True`): POST {rest_url}/v1alpha/
        auth_tokens, as on https://generativelanguage.googleapis.com."""
        if self._auth_api is None:
            raise RuntimeError("the auth_tokens API is off: EmulatorOptions(auth_tokens_api=True)")
        host = self.options.host
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self._ssl is not None else 'http'}://{host}:{self._auth_api.port}"

    @property
    def auth_token_requests(self) -> int:
        """Create requests the auth_tokens API received (refused ones too)."""
        return 0 if self._auth_api is None else self._auth_api.requests

    def refuse_auth_tokens(self, status: int | None) -> None:
        """Every create request gets this HTTP status (a Google outage), or None to serve again."""
        if self._auth_api is None:
            raise RuntimeError("the auth_tokens API is off: EmulatorOptions(auth_tokens_api=True)")
        self._auth_api.refuse_with = status

    def path(self, api_version: str = "v1beta", constrained: bool = False) -> str:
        method = "BidiGenerateContentConstrained" if constrained else "BidiGenerateContent"
        return f"/ws/google.ai.generativelanguage.{api_version}.GenerativeService.{method}"

    def endpoint(self, api_version: str = "v1beta", constrained: bool = False) -> str:
        return self.url + self.path(api_version, constrained)

    def issue_ephemeral_token(
        self, uses: int = 1, lifetime_s: float | None = None, **constraints: Any
    ) -> str:
        """A token as `auth_tokens.create` would mint it (no HTTP): `lifetime_s` real seconds
        (default: expireTime's 30 minutes, scaled), `new_session_s`, `setup`, `locked`."""
        lifetime = self.options.scaled(1800.0) if lifetime_s is None else lifetime_s
        token = self.auth_tokens.issue(self._now(), uses=uses, lifetime_s=lifetime, **constraints)
        return token.name

    def expire_handles(self, session_id: str | None = None) -> int:
        return self.registry.expire_handles(session_id)

    @property
    def live_connections(self) -> list[str]:
        return list(self._live)

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        """Wake on every recorded change until predicate() holds (TimeoutError otherwise)."""
        assert self._changed is not None, "start() first"
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await self._changed.wait()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    # --- handshake -----------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        # Not urlsplit: a path starting with "//" would be read as a network location.
        raw_path, _, raw_query = request.path.partition("?")
        path = re.sub(r"/{2,}", "/", raw_path)
        match = _PATH.match(path)
        if match is None:
            logger.info("404 for path %s", path)
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        query = {k: v[-1] for k, v in parse_qs(raw_query).items()}
        constrained = match["method"] == "BidiGenerateContentConstrained"
        headers = {
            k.lower(): ("<redacted>" if k.lower() in _SECRET_HEADERS else v)
            for k, v in request.headers.raw_items()
        }
        key = request.headers.get("x-goog-api-key") or query.get("key")
        token: str | None = None
        auth_error: ProtocolViolation | None = None
        if constrained:
            auth = request.headers.get("authorization", "")
            if auth.startswith("Token "):
                token = auth.removeprefix("Token ").strip()
            token = token or query.get("access_token")
            if token is None and key is not None and key.startswith("auth_tokens/"):
                token = key
            auth_error = self.auth_tokens.check_connect(token, self._now())
            if auth_error is not None:
                token = None
        elif key != self.options.api_key:
            auth_error = ProtocolViolation(1007, BAD_KEY, "bad or missing API key")
        self._handshakes[connection] = _Handshake(
            path, match["version"], constrained, headers, auth_error, token
        )
        return None

    # --- one connection ------------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        shake = self._handshakes.pop(ws)
        loop = asyncio.get_running_loop()
        number = next(self._numbers)
        record = ConnectionRecord(
            f"c{number}",
            shake.path,
            shake.version,
            shake.constrained,
            shake.headers,
            opened_at_s=loop.time(),
        )
        self.recording.connections.append(record)
        model = ConnectionModel(
            self.options,
            self.registry,
            record,
            record.opened_at_s,
            auth_error=shake.auth_error,
            ephemeral_token=shake.token,
            auth_tokens=self.auth_tokens,
        )
        live = _Live(ws, model, number, asyncio.Queue())
        if shake.token is not None:
            self.auth_tokens.attached(shake.token, record.connection_id)
            live.token_expire_at_s = self.auth_tokens.tokens[shake.token].expire_at_s
        self._live[record.connection_id] = live
        logger.info("%s opened %s", record.connection_id, shake.path)

        def wake() -> None:
            loop.call_soon_threadsafe(live.queue.put_nowait, _WAKE)

        self.faults.add_listener(wake)
        reader = asyncio.create_task(
            self._read(ws, live.queue), name=f"{record.connection_id} read"
        )
        try:
            await self._run(live, loop)
        finally:
            self.faults.remove_listener(wake)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            del self._live[record.connection_id]
            if not live.done:
                # The client went away (or the emulator is stopping).
                model.connection_closed(ws.close_code, ws.close_reason or "", "client")
            logger.info(
                "%s closed %s %s by %s",
                record.connection_id,
                record.close_code,
                record.close_reason,
                record.closed_by,
            )
            self._notify()

    @staticmethod
    async def _read(ws: ServerConnection, queue: asyncio.Queue[object]) -> None:
        try:
            async for message in ws:
                queue.put_nowait(message)
        except ConnectionClosed:
            pass
        finally:
            queue.put_nowait(_CLOSED)

    async def _run(self, live: _Live, loop: asyncio.AbstractEventLoop) -> None:
        model = live.model
        setup_deadline = loop.time() + self.options.scaled(self.options.setup_timeout_s)
        while not live.done:
            await self._flush(live)
            if live.done:
                return
            action = self._take(live, fx.Phase.NOW, model.completed_turns)
            if action is not None:
                await self._apply(live, action)
                continue
            deadline = model.next_deadline()
            if model.setup is None:
                deadline = setup_deadline if deadline is None else min(deadline, setup_deadline)
            expiry = live.token_expire_at_s
            if expiry is not None:
                if loop.time() >= expiry:
                    # expireTime: "messages ... will be rejected"; the close is inferred.
                    await self._close(live, *self.options.token_expiry_close)
                    return
                deadline = expiry if deadline is None else min(deadline, expiry)
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                async with asyncio.timeout(timeout):
                    item = await live.queue.get()
            except TimeoutError:
                item = _WAKE
            now = loop.time()
            if item is _CLOSED:
                return
            if isinstance(item, str | bytes):
                self._log_frame(live, "<", item)
                refused, withheld = model.violation, model.withheld
                model.receive_data(item, now)
                if model.violation is not refused and model.violation is not None:
                    logger.info("%s refused: %s", model.record.connection_id, model.violation)
                if model.withheld is not None and withheld is None:
                    logger.info("%s setup withheld: %s", model.record.connection_id, model.withheld)
                if model.busy_session is not None:
                    await self._settle_busy_resume(live, item)
            elif model.setup is None and now >= setup_deadline:
                await self._close(live, 1011, DEADLINE_EXPIRED)
            model.tick(loop.time())
            self._notify()

    async def _settle_busy_resume(self, live: _Live, data: str | bytes) -> None:
        """A resume of a session whose old socket is open: a stalled (dead) socket is taken over
        at once (unless `resume_takeover` is off); a live one gets `resume_grace_s` to finish
        closing, else the resume fails 1011."""
        session = self.recording.session(live.model.busy_session)
        holder = self._live.get(session.attached_connection or "")
        if holder is not None and holder.stalled and self.options.resume_takeover:
            holder.kill.set()
            holder.model.connection_closed(None, "taken over by a resume", "server")
            holder.done = True
        with contextlib.suppress(TimeoutError):
            await self.wait_until(
                lambda: session.attached_connection is None, self.options.resume_grace_s
            )
        if session.attached_connection is None:
            live.model.retry_busy_setup(data, asyncio.get_running_loop().time())

    async def _flush(self, live: _Live) -> None:
        model = live.model
        # A fault applied mid-flush (goAway) may queue more output: drain until empty.
        while items := model.data_to_send():
            for item in items:
                if live.done:
                    return
                if isinstance(item, Send):
                    if not live.muted:
                        await self._send(live, item.message)
                else:
                    action = self._take(live, item.phase, item.turn, item.chunk)
                    if action is not None:
                        if item.phase == fx.Phase.SETUP and _ends_connection(action):
                            model.setup_refused()  # before the client can see the close
                        await self._apply(live, action)
        if model.close_to_send is not None and not live.done:
            await self._close(live, *model.close_to_send)

    def _take(
        self, live: _Live, phase: fx.Phase, turn: int, chunk: int = 0
    ) -> fx.FaultAction | None:
        if not self.faults.pending:
            return None
        record = live.model.record
        setup = live.model.setup
        action = self.faults.take(
            phase,
            connection_number=live.number,
            connection_id=record.connection_id,
            session_id=record.session_id,
            turn=turn,
            chunk=chunk,
            resuming=None if setup is None else setup.resume_handle is not None,
        )
        if action is not None:
            logger.info("%s fault at %s: %r", record.connection_id, phase.value, action)
        return action

    async def _send(self, live: _Live, message: dict[str, Any] | None, raw: bytes = b"") -> None:
        data = raw or json.dumps(message, separators=(",", ":")).encode("utf-8")
        loop = asyncio.get_running_loop()
        record = live.model.record
        try:
            await live.ws.send(data)
        except ConnectionClosed:
            return  # the reader sees the close and ends the loop
        record.sent.append(SentFrame(loop.time() - live.model.opened_at_s, data, message))
        self._log_frame(live, ">", data)

    async def _close(self, live: _Live, code: int, reason: str) -> None:
        live.done = True
        live.model.connection_closed(code, reason, "server")
        await live.ws.close(code, reason)

    async def _apply(self, live: _Live, action: fx.FaultAction) -> None:
        loop = asyncio.get_running_loop()
        if isinstance(action, fx.GoAway):
            live.model.send_go_away(action.time_left_s, loop.time(), action.then_silent)
            live.model.tick(loop.time())
        elif isinstance(action, fx.Close):
            await self._close(live, action.code, action.reason)
        elif isinstance(action, fx.Abort):
            live.done = True
            live.model.connection_closed(1006, "aborted", "server")
            live.ws.transport.abort()
        elif isinstance(action, fx.Stall):
            await self._stall(live, action.duration_s)
        elif isinstance(action, fx.DelaySetupComplete):
            await asyncio.sleep(action.delay_s)
        elif isinstance(action, fx.WithholdSetupComplete):
            live.muted = True
        elif isinstance(action, fx.SendInterrupted):
            live.model.send_interrupted(loop.time(), action.end_reply)
        elif isinstance(action, fx.EmptyReply):
            live.model.empty_next_reply(action.reason, action.waiting_for_input)
        elif isinstance(action, fx.SendMessages):
            await self._send_messages(live, action)
        else:
            await self._send_malformed(live, action.kind)

    async def _send_messages(self, live: _Live, action: fx.SendMessages) -> None:
        message = dict(action.message)
        data = json.dumps(message, separators=(",", ":")).encode("utf-8")
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(action.count):
            if live.done:
                return
            delay_s = start + i * action.interval_s - loop.time()
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            await self._send(live, message, data)

    async def _stall(self, live: _Live, duration_s: float | None) -> None:
        """Neither read (so pings go unanswered) nor write; TCP stays open."""
        transport = live.ws.transport
        transport.pause_reading()
        live.stalled = True
        try:
            async with asyncio.timeout(duration_s):
                await live.kill.wait()
        except TimeoutError:
            transport.resume_reading()
        else:
            live.done = True
            transport.abort()
        finally:
            live.stalled = False

    async def _send_malformed(self, live: _Live, kind: str) -> None:
        valid = json.dumps(audio_message(b"\x00" * 1920)).encode()
        if kind == "json":
            await self._send(live, None, b'{"serverContent": {"modelTurn": ')
        elif kind == "truncated_json":
            await self._send(live, None, valid[: len(valid) // 2])
        elif kind == "unknown_message":
            await self._send(live, None, b'{"noSuchMessage": {}}')
        else:
            # A binary frame header promising more payload than ever comes, then a TCP drop.
            header = struct.pack("!BBH", 0x82, 126, len(valid))
            live.ws.transport.write(header + valid[: len(valid) // 2])
            live.done = True
            live.model.connection_closed(1006, "truncated frame", "server")
            live.ws.transport.close()

    def _log_frame(self, live: _Live, direction: str, data: str | bytes) -> None:
        if not self.options.log_frames:
            return
        text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
        text = re.sub(r'("data"\s*:\s*")([^"]{16})[^"]*"', r'\1\2..."', text)
        logger.info("%s %s %s", live.model.record.connection_id, direction, text[:400])
