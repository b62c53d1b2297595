"""Ephemeral tokens for the link, fetched from the owner's token service (`live.token_url`).

A fleet device holds no API key: before a connection it asks the token service for a short-lived
`auth_tokens/...` token, presenting its own device credential in the `Authorization: Bearer`
header (never in the URL). The link then opens `v1alpha`'s `BidiGenerateContentConstrained`
with `Authorization: Token auth_tokens/...`, the header the google-genai SDK sends there
(`live.py`); the token never goes into a URL or a log line either.

Which token a connection gets follows the token's documented rules (google-genai `types.py`,
`CreateAuthTokenConfig`; ai.google.dev "Ephemeral tokens"):
- A **new session** needs a token with a use left (`uses`, 1 from pilive's token service) inside
  its new-session window (`newSessionExpireTime`, 60 s by default).
- A **resume** does not: "Resuming a Live API session does not count as a use", and the window
  is for new sessions. So a goAway handover or a reconnect resumes with the token the
  conversation already has while it lives, and works while the token service is down. A token
  opens connections until a quarter of its lifetime (at most a minute) is left, so the next
  connection does not have to hand over again at once.
- After `expireTime` "messages ... will be rejected (Gemini may preemptively close the
  session)": the link hands the conversation over to a connection with the next token before
  then, at a turn boundary where one comes (`LiveSession.expect_end`, the goAway rule).
- The next token is fetched ahead (`keep_fresh`), when 40 % of the current one's lifetime is
  left, and retried with pilive's backoff while the service does not answer; STATUS names the
  problem meanwhile, and the conversation carries on.
- A token a connection was refused with is never presented again: the next attempt fetches a
  fresh one. Whether a resume with a different token than the session started with is accepted
  is not documented; the emulator accepts it, and a refused resume falls back to the retry
  policy like any other.

The HTTP request runs on a daemon thread of its own with `http.client` (the standard library:
one small POST every few minutes needs no async HTTP stack on a Pi), bounded by `timeout_s`;
cancelling it shuts the socket down so the thread ends at once, and the process never waits for
it at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import math
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pilive import __version__
from pilive.config._secret import Secret, mask_secrets
from pilive.live import retry
from pilive.live.retry import Classified, Failure
from pilive.net.endpoint import is_loopback_host, token_url_problems

log = logging.getLogger("pilive.net.tokens")

MAX_ANSWER_BYTES = 64 * 1024
HANDOVER_LEAD_FRACTION = 0.25
HANDOVER_LEAD_MAX_S = 60.0
"""The link announces a token's end to its session this share of the lifetime before it, at
most a minute ahead, like a goAway's notice; from then on the token opens no connection."""
REFRESH_LEFT_FRACTION = 0.4
"""The next token is fetched when this share of the current one's lifetime is left."""
EXPIRY_SAFETY_S = 2.0
"""The handover is planned this long before the expiry (clock and fetch skew; less for a token
that lives under 20 s)."""
TOKEN_PREFIX = "auth_tokens/"  # noqa: S105 - the name prefix of every ephemeral token
_ROUNDING_S = 0.01


@dataclass(eq=False)
class EphemeralToken:
    """One token and its limits, on the event loop's clock."""

    secret: Secret
    fetched_at_s: float
    expires_at_s: float
    new_session_until_s: float
    uses: int
    """Uses the token service asked for (0: unlimited)."""
    sessions_started: int = 0

    @property
    def lifetime_s(self) -> float:
        return self.expires_at_s - self.fetched_at_s

    def left_s(self, now: float) -> float:
        return self.expires_at_s - now

    @property
    def _safety_s(self) -> float:
        return min(EXPIRY_SAFETY_S, 0.1 * self.lifetime_s)

    @property
    def reserve_s(self) -> float:
        """The time left at which the link announces the end to the session; with no more
        than this left the token opens no connection (a handover then takes the next one)."""
        lead_s = min(HANDOVER_LEAD_MAX_S, HANDOVER_LEAD_FRACTION * self.lifetime_s)
        return self._safety_s + lead_s

    def opens_resume(self, now: float) -> bool:
        # A hair more than the reserve: at the announced handover itself, whatever the rounding,
        # the token must already count as spent.
        return self.left_s(now) > self.reserve_s + _ROUNDING_S

    def opens_new_session(self, now: float) -> bool:
        uses_left = self.uses == 0 or self.sessions_started < self.uses
        return uses_left and now < self.new_session_until_s and self.opens_resume(now)

    def handover_plan(self) -> tuple[float, float]:
        """(when to announce the end to the session, the end it plans for): `reserve_s` before
        the expiry, when the token stops opening connections, and the expiry less a margin."""
        return self.expires_at_s - self.reserve_s, self.expires_at_s - self._safety_s


class TokenUnavailable(Exception):
    """No token now; `classified` is what the link's retry policy makes of it."""

    def __init__(self, classified: Classified, retry_after_s: float | None = None) -> None:
        super().__init__(classified.cause)
        self.classified = classified
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    retry_after: str | None


@dataclass
class TokenCounters:
    fetched: int = 0
    """Tokens the service handed out."""
    fetch_failures: int = 0
    refused: int = 0
    """Tokens a connection was refused with (never presented again)."""
    by_purpose: dict[str, int] = field(default_factory=lambda: {"new": 0, "resume": 0})
    """Connections opened with a token, by what they were for."""


class TokenSource:
    """Hands the link a token for each connection and keeps the next one ready.

    Call `token_for()` before each connection and `connection_ended()` after it, from the event
    loop; run `keep_fresh()` as a task for as long as the link runs.
    """

    def __init__(
        self,
        url: str,
        credential: Secret,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout_s: float = 10.0,
        new_backoff: Callable[[], Iterator[float]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        problems = token_url_problems(url)
        if problems:
            raise ValueError(f"token URL: {problems[0]}")
        self.url = url
        self.counters = TokenCounters()
        self._credential = credential
        self._ssl_context = ssl_context
        self._timeout_s = timeout_s
        self._new_backoff = new_backoff or (lambda: retry.backoff(1.0, 30.0))
        self._clock = clock
        self._current: EphemeralToken | None = None
        self._spare: EphemeralToken | None = None
        self._not_before_s = 0.0
        self._changed = asyncio.Event()
        self._fetching: asyncio.Future[EphemeralToken] | None = None
        self.problem: str | None = None
        """Why the next token could not be fetched ahead of time (for STATUS), or None."""

    # -- what the link calls ----------------------------------------------------------------

    def secrets(self) -> list[Secret]:
        """Everything to mask in text that did not come from us: the credential and tokens."""
        held = [t.secret for t in (self._current, self._spare) if t is not None]
        return [self._credential, *held]

    def redact(self, text: str) -> str:
        return mask_secrets(text, *self.secrets())

    async def token_for(self, *, resuming: bool) -> EphemeralToken:
        """A token for the next connection: the current one or the spare where its rules allow
        (a resume spends no use), else a fresh one. Raises `TokenUnavailable`."""
        now = self._now()
        for candidate in (self._current, self._spare):
            if candidate is None:
                continue
            usable = candidate.opens_resume(now) if resuming else candidate.opens_new_session(now)
            if usable:
                return self._hand_out(candidate, resuming)
        token = await self._fetch_shared()
        return self._hand_out(token, resuming)

    def connection_ended(
        self, token: EphemeralToken, *, accepted: bool, new_session: bool, presented: bool = True
    ) -> None:
        """The outcome of a connection opened with `token`: refused (it ended before
        setupComplete: never presented again), accepted, as a new session (one use spent) or a
        resume, or never `presented` (the server was not reached: the token stays good)."""
        if not accepted and presented:
            self.counters.refused += 1
            if self._current is token:
                self._current = None
            if self._spare is token:
                self._spare = None
        elif accepted and new_session:
            token.sessions_started += 1
        self._changed.set()

    async def keep_fresh(self) -> None:
        """Fetch the next token before the current one runs low; retry with the backoff while
        the service fails (the problem shows in `problem`). Runs until cancelled."""
        delays: Iterator[float] | None = None
        try:
            while True:
                wait_s = self._refresh_in_s()
                if wait_s is None or wait_s > 0:
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait_s):
                            await self._changed.wait()
                    continue
                try:
                    self._spare = await self._fetch_shared()
                except TokenUnavailable as exc:
                    delays = delays or self._new_backoff()
                    delay_s = max(next(delays), exc.retry_after_s or 0.0)
                    self.problem = f"{exc.classified.cause}; next try in {delay_s:.0f} s"
                    log.warning("next token not fetched: %s", self.problem)
                    await asyncio.sleep(delay_s)
                    continue
                delays = None
                if self.problem is not None:
                    log.info("token service answers again")
                self.problem = None
        finally:
            fetching = self._fetching
            if fetching is not None and not fetching.done():
                fetching.cancel()  # its socket is shut down: the thread ends at once

    # -- internals ----------------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def _hand_out(self, token: EphemeralToken, resuming: bool) -> EphemeralToken:
        if token is self._spare:
            self._spare = None
        if token is not self._current:
            self._current = token
            self._changed.set()
        self.counters.by_purpose["resume" if resuming else "new"] += 1
        return token

    def _refresh_in_s(self) -> float | None:
        """Seconds until the spare should be fetched (<= 0: now); None while nothing is due."""
        current = self._current
        if current is None:
            return None
        now = self._now()
        spare = self._spare
        if spare is not None and spare.opens_resume(now):
            # Ready; look again when the spare itself runs low.
            return max(0.5, spare.left_s(now) - REFRESH_LEFT_FRACTION * spare.lifetime_s)
        return current.left_s(now) - REFRESH_LEFT_FRACTION * current.lifetime_s

    async def _fetch_shared(self) -> EphemeralToken:
        """One request at a time: a connection and the refresher asking together share it."""
        if self._fetching is None or self._fetching.done():
            self._fetching = asyncio.ensure_future(self._fetch())
            # A fetch whose asker was cancelled is still looked at (no "never retrieved").
            self._fetching.add_done_callback(_retrieve)
        return await asyncio.shield(self._fetching)

    async def _fetch(self) -> EphemeralToken:
        now = self._now()
        if now < self._not_before_s:
            wait_s = self._not_before_s - now
            raise TokenUnavailable(
                Classified(Failure.TRANSIENT, f"token service: rate limited for {wait_s:.0f} s"),
                wait_s,
            )
        try:
            answer = await asyncio.wait_for(self._post(), self._timeout_s + 1.0)
        except TimeoutError:
            self.counters.fetch_failures += 1
            raise TokenUnavailable(
                Classified(
                    Failure.TRANSIENT,
                    f"token service did not answer within {self._timeout_s:.0f} s",
                )
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            self.counters.fetch_failures += 1
            cause = (
                retry.classify_exception(exc).cause
                if isinstance(exc, OSError)
                else (f"bad HTTP answer ({type(exc).__name__})")
            )
            raise TokenUnavailable(
                Classified(Failure.TRANSIENT, "token service: " + self.redact(cause))
            ) from None
        token = self._read_answer(answer, self._now())
        self.counters.fetched += 1
        return token

    def _read_answer(self, answer: _Answer, now: float) -> EphemeralToken:
        status = answer.status
        if status != 200:
            self.counters.fetch_failures += 1
            raise self._refusal(answer, now)
        try:
            data = json.loads(answer.body)
            name = data["token"]
            expires_in_s = float(data["expiresInS"])
            window_s = float(data["newSessionExpiresInS"])
            uses = data.get("uses", 1)
            if isinstance(uses, bool) or not isinstance(uses, int) or math.isnan(window_s):
                raise ValueError("uses is not a whole number, or the window is NaN")
        except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: deep nesting
            self.counters.fetch_failures += 1
            raise TokenUnavailable(
                Classified(Failure.TRANSIENT, "token service sent a malformed answer")
            ) from None
        if not (isinstance(name, str) and name.startswith(TOKEN_PREFIX) and name.isascii()):
            self.counters.fetch_failures += 1
            raise TokenUnavailable(
                Classified(Failure.TRANSIENT, "token service sent something that is not a token")
            )
        if not 0 < expires_in_s <= 20 * 3600 or window_s < 0 or uses < 0:
            self.counters.fetch_failures += 1
            raise TokenUnavailable(
                Classified(Failure.TRANSIENT, "token service sent impossible token lifetimes")
            )
        return EphemeralToken(
            Secret(name, origin=self.url),
            fetched_at_s=now,
            expires_at_s=now + expires_in_s,
            new_session_until_s=now + min(window_s, expires_in_s),
            uses=uses,
        )

    def _refusal(self, answer: _Answer, now: float) -> TokenUnavailable:
        status = answer.status
        if status == 401:
            return TokenUnavailable(
                Classified(
                    Failure.SETUP_REFUSED,
                    "token service refused this device's credential (HTTP 401)",
                )
            )
        if status == 403:
            return TokenUnavailable(
                Classified(
                    Failure.SETUP_REFUSED, "token service: this device is revoked (HTTP 403)"
                )
            )
        if status == 429:
            wait_s = 60.0
            with contextlib.suppress(TypeError, ValueError):
                wait_s = min(3600.0, max(1.0, float(answer.retry_after or "")))
            self._not_before_s = now + wait_s
            return TokenUnavailable(
                Classified(Failure.TRANSIENT, f"token service: rate limited for {wait_s:.0f} s"),
                wait_s,
            )
        if status == 404:
            return TokenUnavailable(
                Classified(Failure.SETUP_REFUSED, "token service: no such URL (HTTP 404)")
            )
        return TokenUnavailable(
            Classified(Failure.TRANSIENT, f"token service could not give a token (HTTP {status})")
        )

    async def _post(self) -> _Answer:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            context = self._ssl_context or ssl.create_default_context()
            connection = http.client.HTTPSConnection(
                host, parts.port, timeout=self._timeout_s, context=context
            )
        else:
            assert is_loopback_host(host), (
                "token_url_problems lets http:// through to loopback only"
            )
            connection = http.client.HTTPConnection(host, parts.port, timeout=self._timeout_s)
        path = parts.path or "/"
        headers = {
            "Authorization": f"Bearer {self._credential.reveal()}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"pilive/{__version__}",
        }

        def request() -> _Answer:
            try:
                connection.request("POST", path, body=b"{}", headers=headers)
                response = connection.getresponse()
                body = response.read(MAX_ANSWER_BYTES + 1)
                if len(body) > MAX_ANSWER_BYTES:
                    raise http.client.HTTPException("answer too large")
                return _Answer(response.status, body, response.getheader("Retry-After"))
            finally:
                connection.close()

        # A daemon thread of its own, not an executor's: the process never waits at exit for a
        # request that is still connecting (cancelling shuts down only a connected socket).
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Answer] = loop.create_future()

        def work() -> None:
            try:
                answer = request()
            except BaseException as exc:  # handed to the loop, which raises it in the caller
                _hand_over(loop, future, None, exc)
            else:
                _hand_over(loop, future, answer, None)

        threading.Thread(target=work, name="pilive-token-fetch", daemon=True).start()
        try:
            return await future
        except asyncio.CancelledError:
            sock = connection.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            raise


def _hand_over(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[_Answer],
    answer: _Answer | None,
    exc: BaseException | None,
) -> None:
    """From the request's thread to the loop; nothing if the asker gave up or the loop ended."""

    def settle() -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            assert answer is not None
            future.set_result(answer)

    with contextlib.suppress(RuntimeError):  # the loop is closed: no one waits any more
        loop.call_soon_threadsafe(settle)


def _retrieve(future: asyncio.Future[EphemeralToken]) -> None:
    if not future.cancelled():
        future.exception()
