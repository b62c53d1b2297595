"""Keeps one Live API conversation connected: connect, keepalive, resume, reconnect, forever.

`LiveLink` is the thin asyncio + websockets shell around the sans-I/O `LiveSession`. It owns the
socket and the clock; every decision about frames (what to replay, when a turn is taken in, when
goAway wants a handover) is the session's, and every decision about failures is in
`pilive.live.retry`.

Policies, each named so the appliance can show it:
- The API key travels only in the `x-goog-api-key` header. TLS is verified against the system CA
  store; plain `ws://` is refused except to loopback (the local emulator). A fleet device has no
  key: each connection gets an ephemeral token from `pilive.net.tokens` (see there for which
  token a new session or a resume takes), sent as `Authorization: Token ...` to v1alpha's
  `BidiGenerateContentConstrained`; a connection hands over before its token expires.
- Keepalive pings every `ping_interval_s` with `ping_timeout_s` to answer: the real service's
  pongs have taken up to 30 s, so the websockets default (20 s) would drop live sessions, while a
  dead peer is still noticed within `ping_interval_s + ping_timeout_s + close_timeout_s` (41 s
  by default: websockets waits out the closing handshake after a ping times out).
- Reconnects never give up. What each ended connection means, and what follows it, is decided by
  the pure `pilive.live.retry.RetryPolicy` from the phase it ended in, the close code and reason,
  and what came before: full-jitter exponential backoff capped at `backoff_max_s`, reset only
  after a *productive* connection (one that completed a model turn or stayed up for
  `stable_after_s`), so a server that accepts and then closes, or sends goAway at once, cannot
  cause a storm of connections.
- goAway: the next connection opens with the newest resumable handle at a turn boundary near the
  deadline, when the user starts a new turn, or just before `timeLeft` runs out (the rule is the
  session's); the old socket is closed first (a second live socket of the same session is refused
  by the service).
- A server that owes an answer (to the user's finished turn, to a tool result, or the rest of an
  answer it started) and sends nothing for `answer_timeout_s` is treated as a broken connection:
  it is resumed and the unanswered turn replayed (a server may go silent after goAway).
- Sending never blocks the capture side: `send_*` only queue into the session. When the network
  carries less than real time, a frame that cannot be written within `send_stall_s` marks the
  link as broken; it is resumed and the user's current activity is replayed from its start.
- A resume the server refuses is retried a few times, then the handle is dropped and a fresh
  conversation starts; a `ConversationReset` event lets the appliance say the context was lost.
- Whatever the server or the network put into an error (a handshake failure can quote a header
  the server echoed back), the key is masked before it reaches a log line or STATUS.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from pilive.config._secret import mask_secrets
from pilive.live import retry, wire
from pilive.live.events import (
    LinkState,
    SessionEvent,
    SessionResumptionUpdate,
    SetupComplete,
)
from pilive.live.retry import Classified, Failure, Next, OwnClose, Phase, RetryPolicy
from pilive.live.session import LiveSession, SessionState
from pilive.net.endpoint import endpoint_problems, shown_endpoint
from pilive.net.tokens import EphemeralToken, TokenSource, TokenUnavailable
from pilive.ratelimit import LogLimiter
from pilive.state import HandleStore, LoadOutcome

log = logging.getLogger("pilive.net")

# websockets logs handshake headers at DEBUG, and the API key is a header. Its logger is pinned
# above DEBUG whatever the root level is, so `--log-level debug` cannot leak the key.
_ws_log = logging.getLogger("pilive.net.websocket")
_ws_log.setLevel(logging.INFO)

_PATH = "/ws/google.ai.generativelanguage.{version}.GenerativeService.{method}"
_MAX_FRAME_BYTES = 16 * 1024 * 1024  # a 768x768 JPEG in base64 is ~150 KB; leave room for text


class SecretLike(Protocol):
    """The API key holder: the value comes out only through an explicit call."""

    def reveal(self) -> str: ...


@dataclass(frozen=True, slots=True)
class LinkStatus:
    state: LinkState
    detail: str = ""
    """Why, in words: the close cause, or what is being done."""
    next_attempt_in_s: float | None = None
    """Seconds until the next connection attempt, while waiting."""

    def describe(self) -> str:
        """A STATUS= line: "offline (connection refused), retry in 8 s"."""
        text = self.state.value
        if self.detail:
            text += f" ({self.detail})"
        if self.next_attempt_in_s is not None:
            text += f", retry in {self.next_attempt_in_s:.0f} s"
        return text


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """Connection settings; `from_config` in the composition root fills them from TOML."""

    endpoint: str = "wss://generativelanguage.googleapis.com"
    api_version: str = "v1beta"
    connect_timeout_s: float = 15.0
    ping_interval_s: float = 10.0
    ping_timeout_s: float = 30.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    backoff_factor: float = 2.0
    config_fault_retry_s: float = 300.0
    send_stall_s: float = 5.0
    offline_after_s: float = 10.0
    close_timeout_s: float = 1.0
    handle_max_age_s: float = 7200.0
    answer_timeout_s: float = 20.0
    """A server that owes an answer and sends nothing this long is treated as gone."""
    stable_after_s: float = 30.0
    """A connection up this long counts as productive even without a completed turn."""
    ssl_context: ssl.SSLContext | None = None
    """For `wss://`: None means the system CA store (tests pass one trusting their own CA)."""
    constrained: bool = False
    """Ephemeral tokens: `BidiGenerateContentConstrained` (v1alpha) in place of the key's method."""

    def url(self) -> str:
        """The BidiGenerateContent URL; it never carries the key or a token."""
        method = "BidiGenerateContentConstrained" if self.constrained else "BidiGenerateContent"
        return self.endpoint.rstrip("/") + _PATH.format(version=self.api_version, method=method)


@dataclass(slots=True)
class LinkCounters:
    """What happened to the link, for the journal, benchmarks and soak checks."""

    attempts: int = 0
    setups_completed: int = 0
    resumes: int = 0
    fresh_sessions: int = 0
    handovers: int = 0
    handles_rejected: int = 0
    """Times a refused resume made the link drop the handle and start a fresh conversation."""
    config_faults: int = 0
    silent_servers: int = 0
    """Connections given up because the server owed an answer and stayed silent."""
    protocol_errors: int = 0
    reconnects_by_cause: collections.Counter[str] = field(default_factory=collections.Counter)
    reconnects_by_kind: collections.Counter[str] = field(default_factory=collections.Counter)
    """The same ends by `retry.Failure` kind (four values: a bounded label for metrics)."""
    handover_gaps_s: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=100)
    )
    """Per goAway handover: from closing the old socket to `setupComplete` on the new one."""


class InsecureEndpointError(ValueError):
    """`ws://` to anything but loopback would send the key and the user's audio in clear."""


def check_endpoint(endpoint: str) -> None:
    """Refuse endpoints that would leak or that `pilive check` refuses (net/endpoint.py rules)."""
    problems = endpoint_problems(endpoint)
    if problems:
        raise InsecureEndpointError(f"endpoint {shown_endpoint(endpoint)}: {problems[0]}")


@dataclass(slots=True)
class _Ended:
    """How one connection ended."""

    classified: Classified
    setup_completed: bool = False
    productive: bool = False
    reached_server: bool = True
    """False when the server never saw the credentials (DNS, refused, TLS, timeout)."""


class LiveLink:
    """Keeps `session` connected until `stop()`; see the module docstring for the policies.

    Call the `send_*` methods from the event loop thread; events from the server reach
    `on_event` (in order, on the loop) and link changes reach `on_status`.
    """

    def __init__(
        self,
        session: LiveSession,
        api_key: SecretLike | None,
        options: LinkOptions,
        *,
        on_event: Callable[[SessionEvent], None],
        on_status: Callable[[LinkStatus], None] = lambda status: None,
        handle_store: HandleStore | None = None,
        wall_clock: Callable[[], float] = time.time,
        backoff: Callable[[], Iterator[float]] | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        check_endpoint(options.endpoint)
        if (api_key is None) == (tokens is None):
            raise ValueError("LiveLink takes an API key or a token source, not both or neither")
        if tokens is not None and not options.constrained:
            raise ValueError("ephemeral tokens work only with LinkOptions(constrained=True)")
        self.tokens = tokens
        self.session = session
        self.options = options
        self.counters = LinkCounters()
        self._api_key = api_key
        self._on_event = on_event
        self._on_status = on_status
        self._handle_store = handle_store
        self._wall_clock = wall_clock
        self._new_backoff = backoff or (
            lambda: retry.backoff(
                options.backoff_initial_s, options.backoff_max_s, options.backoff_factor
            )
        )
        self.policy = RetryPolicy(
            self._new_backoff, config_fault_retry_s=options.config_fault_retry_s
        )
        self._log_limiter = LogLimiter(60.0)
        self._status = LinkStatus(LinkState.CONNECTING)
        self._ws: ClientConnection | None = None
        self._data_ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._restart_fresh = False
        self._own_close: OwnClose | None = None  # why we ended the current connection
        self._last_frame_s = 0.0
        self._saved_handle: str | None = None
        self._initial_handle: str | None = None
        self._lost_at: float | None = None
        self._setup_deadline: asyncio.TimerHandle | None = None
        self._handover_started_s: float | None = None
        self._token: EphemeralToken | None = None  # the current connection's
        self._token_expiry: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what the appliance reads and calls ------------------------------------------------------

    @property
    def status(self) -> LinkStatus:
        return self._status

    @property
    def connected(self) -> bool:
        return self.session.state is SessionState.READY

    @property
    def problem(self) -> str | None:
        """A problem the conversation carries on through, for STATUS (the next token)."""
        return None if self.tokens is None else self.tokens.problem

    def send_activity_start(self) -> None:
        self.session.send_activity_start()
        self._data_ready.set()
        ws = self._ws
        if ws is not None and self.session.handover_due(asyncio.get_running_loop().time()):
            self._start_handover(ws)  # a turn started after goAway goes to the next connection

    def send_activity_end(self) -> None:
        self.session.send_activity_end()
        self._data_ready.set()

    def send_audio(self, pcm: bytes | bytearray | memoryview) -> None:
        self.session.send_audio(pcm)
        self._data_ready.set()

    def send_video(self, jpeg: bytes) -> None:
        self.session.send_video(jpeg)
        self._data_ready.set()

    def send_audio_stream_end(self) -> None:
        self.session.send_audio_stream_end()
        self._data_ready.set()

    def send_text(self, text: str) -> None:
        self.session.send_text(text)
        self._data_ready.set()

    def send_tool_response(self, responses: Sequence[wire.FunctionResponse]) -> None:
        self.session.send_tool_response(responses)
        self._data_ready.set()

    def new_conversation(self) -> None:
        """Drop the handle (memory and disk) and reconnect without it: the model forgets, and
        nothing of the old conversation (an unanswered question) is replayed into the new one.
        A wait for the next attempt (backoff, configuration fault) is cut short."""
        self._restart_fresh = True
        self.session.start_over()
        self._initial_handle = None
        if self._ws is not None:
            self._close_soon(self._ws, 1000, "new conversation")
        self._wake.set()

    def stop(self) -> None:
        """End `run()`: the socket is closed normally; the handle stays saved for the restart."""
        self._stop.set()
        if self._ws is not None:
            self._close_soon(self._ws, 1000, "client stopping")

    # -- the supervisor loop -------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and reconnect until `stop()`; returns only then."""
        await self._load_stored_handle()
        refresher = None
        if self.tokens is not None:
            refresher = asyncio.create_task(self.tokens.keep_fresh(), name="fetching tokens ahead")
            self._track(refresher)
        try:
            await self._supervise()
        finally:
            if refresher is not None:
                refresher.cancel()

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        offline_since: float | None = None
        while not self._stop.is_set():
            if self._restart_fresh:
                self._restart_fresh = False
                await self._forget_stored_handle()
            ended = await self._run_connection()
            if self._stop.is_set():
                break
            if self._restart_fresh:
                continue  # the user asked for a new conversation: no policy, no wait
            now = loop.time()
            cause = self._masked(ended.classified.cause)
            self.counters.reconnects_by_cause[cause] += 1
            self.counters.reconnects_by_kind[ended.classified.failure.value] += 1
            decision = self.policy.connection_ended(
                ended.classified,
                now,
                setup_completed=ended.setup_completed,
                productive=ended.productive,
            )
            if ended.setup_completed:
                offline_since = None
            if offline_since is None:
                offline_since = now
            if decision.next is Next.START_FRESH:
                self.counters.handles_rejected += 1
                log.warning(
                    "server refused to resume the stored conversation (%s); starting a fresh one",
                    cause,
                )
                self.session.forget_resumption_handle(cause)
                self._deliver_events()
                self._initial_handle = None
                await self._forget_stored_handle()
                self._set_status(LinkStatus(LinkState.CONNECTING, "starting a new conversation"))
                continue
            if decision.next is Next.RESUME_NOW:
                log.info("%s; resuming", cause)
                self._set_status(LinkStatus(LinkState.CONNECTING, cause))
                continue
            delay_s = decision.delay_s
            if decision.next is Next.CONFIG_FAULT:
                self.counters.config_faults += 1
                log.error("configuration fault: %s; next try in %.0f s", cause, delay_s)
                state = LinkState.CONFIG_FAULT
            else:
                if ended.classified.failure is Failure.NORMAL_END:
                    log.info("%s; resuming in %.1f s (many ends in a row)", cause, delay_s)
                else:
                    log.warning("link lost: %s; next try in %.1f s", cause, delay_s)
                offline = now - offline_since >= self.options.offline_after_s
                state = LinkState.OFFLINE if offline else LinkState.RECONNECTING
            self._set_status(LinkStatus(state, cause, delay_s))
            await self._sleep_unless_stopped(delay_s)
        self.session.close()
        self._set_status(LinkStatus(LinkState.STOPPED))

    async def _sleep_unless_stopped(self, delay_s: float) -> None:
        """Wait `delay_s`, or less if the link is stopped or a new conversation is asked for."""
        self._wake.clear()
        waits = [asyncio.ensure_future(e.wait()) for e in (self._stop, self._wake)]
        try:
            await asyncio.wait(waits, timeout=delay_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def _run_connection(self) -> _Ended:
        """One WebSocket connection, from connect to close; never raises for network reasons."""
        loop = asyncio.get_running_loop()
        handle = self.session.resumption_handle or self._initial_handle
        self.counters.attempts += 1
        phase = Phase.SETUP if handle is None else Phase.RESUME
        if self._status.state is not LinkState.CONNECTING:
            self._set_status(LinkStatus(LinkState.CONNECTING, self._status.detail))
        token: EphemeralToken | None = None
        if self.tokens is not None:
            try:
                token = await self._token_unless_stopped(self.tokens, resuming=handle is not None)
            except TokenUnavailable as exc:
                return _Ended(exc.classified)
            if token is None:
                return _Ended(Classified(Failure.NORMAL_END, "client stopping"))
            headers = {"Authorization": f"Token {token.secret.reveal()}"}
        else:
            assert self._api_key is not None
            headers = {"x-goog-api-key": self._api_key.reveal()}
        self._token = token
        ended = await self._open_and_run(loop, handle, phase, headers)
        if self.tokens is not None and token is not None:
            self.tokens.connection_ended(
                token,
                accepted=ended.setup_completed,
                new_session=handle is None,
                presented=ended.reached_server,
            )
        self._token = None
        if self._token_expiry is not None:
            self._token_expiry.cancel()
            self._token_expiry = None
        return ended

    async def _token_unless_stopped(
        self, tokens: TokenSource, *, resuming: bool
    ) -> EphemeralToken | None:
        """A token for the next connection, or None if `stop()` comes first (a slow token
        service must not hold up the daemon's shutdown)."""
        fetch = asyncio.ensure_future(tokens.token_for(resuming=resuming))
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not fetch.done():
                fetch.cancel()
            await asyncio.gather(fetch, stopping, return_exceptions=True)
        if fetch.cancelled():
            return None
        return fetch.result()

    async def _open_and_run(
        self,
        loop: asyncio.AbstractEventLoop,
        handle: str | None,
        phase: Phase,
        headers: dict[str, str],
    ) -> _Ended:
        try:
            ws = await connect(
                self.options.url(),
                additional_headers=headers,
                ssl=self._ssl_context(),
                open_timeout=self.options.connect_timeout_s,
                ping_interval=self.options.ping_interval_s,
                ping_timeout=self.options.ping_timeout_s,
                close_timeout=self.options.close_timeout_s,
                max_size=_MAX_FRAME_BYTES,
                compression=None,  # base64 PCM barely compresses; deflate costs a Pi's CPU
                user_agent_header="pilive",
                logger=_ws_log,
            )
        except InvalidStatus as exc:
            return _Ended(retry.classify_handshake_status(exc.response.status_code))
        except (InvalidURI, InvalidHandshake) as exc:
            # The text can quote what the server sent back: masked where it is shown.
            return _Ended(Classified(Failure.TRANSIENT, f"handshake failed ({exc})"))
        except (OSError, TimeoutError) as exc:
            return _Ended(retry.classify_exception(exc), reached_server=False)

        self._ws = ws
        self._own_close = None
        answered_before = self.session.turns_answered
        opened_s = self._last_frame_s = loop.time()
        if self._stop.is_set() or self._restart_fresh:
            self._close_soon(ws, 1000, "client stopping")
        self.session.connect(handle)
        self._setup_deadline = loop.call_later(
            self.options.connect_timeout_s, self._setup_timed_out, ws
        )
        self._data_ready.set()
        helpers = [
            asyncio.create_task(self._write_loop(ws), name="pilive-live-writer"),
            asyncio.create_task(self._watch_silence(ws), name="pilive-live-silence"),
        ]
        setup_completed = False
        try:
            setup_completed = await self._read_loop(ws, handle is not None)
        finally:
            self._setup_deadline.cancel()
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self._ws = None
            if self.session.state is not SessionState.CLOSED:
                self.session.connection_lost()
            self._deliver_events()
        lasted_s = loop.time() - opened_s
        # Productive: it answered one of the user's turns, or stayed up. A bare turnComplete
        # from the server answers nothing (else a server could reset the backoff at will).
        productive = setup_completed and (
            self.session.turns_answered > answered_before or lasted_s >= self.options.stable_after_s
        )
        phase = Phase.SESSION if setup_completed else phase
        return _Ended(self._close_action(ws, phase), setup_completed, productive)

    async def _read_loop(self, ws: ClientConnection, resuming: bool) -> bool:
        """Feed frames to the session until the connection ends; True once setup completed."""
        setup_completed = False
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionClosed):
            async for frame in ws:
                self._last_frame_s = loop.time()
                try:
                    self.session.receive_data(frame, self._last_frame_s)
                except wire.LiveProtocolError as exc:
                    # A bad frame is logged and survived; the session state is unchanged. A
                    # server can send one in every frame: the journal gets a line a minute.
                    self.counters.protocol_errors += 1
                    self._warn("malformed", "ignored a malformed server frame: %s", exc)
                    continue
                for event in self._deliver_events():
                    if isinstance(event, SetupComplete):
                        setup_completed = True
                        self._on_setup_complete(resuming)
                    elif isinstance(event, SessionResumptionUpdate):
                        self._save_handle_soon()

                self._data_ready.set()
                if self.session.handover_due(loop.time()):
                    self._start_handover(ws)
        return setup_completed

    async def _write_loop(self, ws: ClientConnection) -> None:
        """Write what the session queued, in order; a stalled write marks the link broken."""
        loop = asyncio.get_running_loop()
        handover_timers: list[asyncio.TimerHandle] = []
        armed_for: float | None = None
        try:
            while True:
                await self._data_ready.wait()
                self._data_ready.clear()
                deadline = self.session.handover_at_s()
                window = self.session.handover_window_at_s()
                if deadline is not None and window is not None and deadline != armed_for:
                    # Armed again when a later goAway moves the deadline.
                    for timer in handover_timers:
                        timer.cancel()
                    handover_timers = [
                        loop.call_at(at, self._handover_timer_fired, ws)
                        for at in (window, deadline)
                    ]
                    armed_for = deadline
                for frame in self.session.data_to_send():
                    try:
                        # Sent by this task, not by a task per frame (wait_for's): the frame
                        # reaches the socket in the loop iteration that woke us, before a camera
                        # or tool thread can take the GIL (an activityStart waited ~3 ms for it).
                        async with asyncio.timeout(self.options.send_stall_s):
                            await ws.send(frame)
                    except TimeoutError:
                        self._close_because(OwnClose.STALLED)
                        log.warning(
                            "network slower than real time: a frame waited %.1f s; reconnecting",
                            self.options.send_stall_s,
                        )
                        ws.transport.abort()
                        return
                    except ConnectionClosed:
                        return
        finally:
            for timer in handover_timers:
                timer.cancel()

    async def _watch_silence(self, ws: ClientConnection) -> None:
        """Give up a connection whose server owes an answer and has sent nothing for
        `answer_timeout_s` (a server silent after goAway, or stuck): the turn is replayed on the
        next one. Polled, not timed to the frame: a few hundred ms late is fine here."""
        loop = asyncio.get_running_loop()
        timeout_s = self.options.answer_timeout_s
        owed_since: float | None = None
        while True:
            await asyncio.sleep(min(0.5, timeout_s / 4))
            now = loop.time()
            if not self.session.owes_answer:
                owed_since = None
                continue
            if owed_since is None:
                owed_since = now
            if now - max(owed_since, self._last_frame_s) >= timeout_s:
                self._close_because(OwnClose.SILENT)
                self.counters.silent_servers += 1
                log.warning(
                    "the server sent nothing for %.0f s while an answer was due; reconnecting",
                    timeout_s,
                )
                ws.transport.abort()
                return

    # -- events and decisions ------------------------------------------------------------------

    def _deliver_events(self) -> list[SessionEvent]:
        events = self.session.events_received()
        for event in events:
            self._on_event(event)
        return events

    def _on_setup_complete(self, resuming: bool) -> None:
        if self._setup_deadline is not None:
            self._setup_deadline.cancel()
        self.counters.setups_completed += 1
        if resuming:
            self.counters.resumes += 1
        else:
            self.counters.fresh_sessions += 1
        self._initial_handle = None
        if self._handover_started_s is not None:
            gap_s = asyncio.get_running_loop().time() - self._handover_started_s
            self.counters.handover_gaps_s.append(gap_s)
            self._handover_started_s = None
            log.info("handover took %.0f ms", gap_s * 1000)
        detail = "resumed" if resuming else "new conversation"
        log.info("connected (%s)", detail)
        self._set_status(LinkStatus(LinkState.CONNECTED, detail))
        if self._token is not None and self._ws is not None:
            announce_at, deadline = self._token.handover_plan()
            self._token_expiry = asyncio.get_running_loop().call_at(
                announce_at, self._token_expiring, self._ws, deadline
            )

    def _token_expiring(self, ws: ClientConnection, deadline_s: float) -> None:
        """The connection's token expires soon: hand over by the goAway rule before then."""
        self._token_expiry = None
        log.info("the connection's token expires in %.0f s: handing over before then",
                 deadline_s - asyncio.get_running_loop().time())  # fmt: skip
        self.session.expect_end(deadline_s)
        self._data_ready.set()  # the write loop arms the handover timers
        if self.session.handover_due(asyncio.get_running_loop().time()):
            self._start_handover(ws)

    def _setup_timed_out(self, ws: ClientConnection) -> None:
        log.warning("no setupComplete within %.0f s", self.options.connect_timeout_s)
        self._close_because(OwnClose.SETUP_TIMEOUT)
        ws.transport.abort()

    def _handover_timer_fired(self, ws: ClientConnection) -> None:
        if self.session.handover_due(asyncio.get_running_loop().time()):
            self._start_handover(ws)

    def _start_handover(self, ws: ClientConnection) -> None:
        if self._own_close is OwnClose.HANDOVER:
            return
        self._close_because(OwnClose.HANDOVER)
        self._handover_started_s = asyncio.get_running_loop().time()
        self.counters.handovers += 1
        log.info("goAway: handing over to a new connection")
        self._close_soon(ws, 1000, "handover after goAway")

    def _close_because(self, reason: OwnClose) -> None:
        self._own_close = retry.stronger(self._own_close, reason)

    def _close_soon(self, ws: ClientConnection, code: int, reason: str) -> None:
        self._track(asyncio.get_running_loop().create_task(ws.close(code, reason)))

    def _close_action(self, ws: ClientConnection, phase: Phase) -> Classified:
        """How this connection ended; our own reasons first, then the server's close frame."""
        own = self._own_close
        if self._restart_fresh:  # asked for while this connection was open or opening
            own = retry.stronger(own, OwnClose.NEW_CONVERSATION)
        if own is not None:
            return retry.classify_own_close(
                own,
                phase,
                answer_timeout_s=self.options.answer_timeout_s,
                connect_timeout_s=self.options.connect_timeout_s,
            )
        received = ws.protocol.close_rcvd
        sent = ws.protocol.close_sent
        if received is None and sent is not None and sent.code == 1011:
            # websockets closes with 1011 itself when a keepalive ping goes unanswered.
            return retry.classify_close(1011, sent.reason, phase=phase)
        if received is None and sent is not None and sent.code == 1009:
            # websockets closes with 1009 itself on a frame over max_size: say so, not "1006".
            return Classified(
                Failure.TRANSIENT, "the server sent a frame larger than this client accepts (1009)"
            )
        return retry.classify_close(
            None if received is None else received.code,
            "" if received is None else received.reason,
            phase=phase,
            after_go_away=self.session.go_away_deadline_s is not None,
        )

    def _masked(self, text: str) -> str:
        if self.tokens is not None:
            return self.tokens.redact(text)
        assert self._api_key is not None
        return mask_secrets(text, self._api_key.reveal())

    def _warn(self, kind: str, message: str, *args: object) -> None:
        """A warning a peer can repeat at will: one line a minute per kind, with a count."""
        if self._log_limiter.allow(kind):
            log.warning("%s", self._masked(message % args) + self._log_limiter.suffix(kind))

    def _set_status(self, status: LinkStatus) -> None:
        if status != self._status:
            self._status = status
            self._on_status(status)

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.options.endpoint.startswith("wss:"):
            return None
        return self.options.ssl_context or ssl.create_default_context()

    # -- the persisted handle ------------------------------------------------------------------

    async def _load_stored_handle(self) -> None:
        if self._handle_store is None:
            return
        result = await asyncio.to_thread(
            self._handle_store.load, self._wall_clock(), self.options.handle_max_age_s
        )
        if result.outcome is LoadOutcome.LOADED and result.stored is not None:
            self._initial_handle = self._saved_handle = result.stored.handle
            log.info("resuming the stored conversation (%s)", result.detail)
        elif result.outcome is LoadOutcome.MISSING:
            log.info("no stored conversation; starting a new one")
        else:
            log.warning("stored conversation not used: %s %s", result.outcome.value, result.detail)

    def _save_handle_soon(self) -> None:
        handle = self.session.resumption_handle
        store = self._handle_store
        if store is None or handle is None or handle == self._saved_handle:
            return
        self._saved_handle = handle
        # The generation is taken here, in the order the handles arrived: saves run on worker
        # threads, and the store skips one that reaches the disk after a newer one.
        generation = store.next_generation()
        self._track(
            asyncio.get_running_loop().create_task(
                self._save_handle(store, handle, generation), name="saving the resumption handle"
            )
        )

    async def _save_handle(self, store: HandleStore, handle: str, generation: int) -> None:
        # The store never raises for I/O: a failure becomes its `problem` (STATUS shows it).
        await asyncio.to_thread(store.save, handle, self._wall_clock(), generation)

    def _track(self, task: asyncio.Task[None]) -> None:
        """Keep a reference to a background task and log its failure instead of losing it."""
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s failed: %s", _describe_task(task), exc)

    async def _forget_stored_handle(self) -> None:
        self._saved_handle = None
        store = self._handle_store
        if store is not None:
            # Ordered after every save already requested: a late save cannot bring it back.
            await asyncio.to_thread(store.clear, store.next_generation())


def _describe_task(task: asyncio.Task[None]) -> str:
    """A task's name, or for an unnamed one what it runs ("ClientConnection.close")."""
    name = task.get_name()
    if name.startswith("Task-"):
        name = getattr(task.get_coro(), "__qualname__", "a background task")
    return name
