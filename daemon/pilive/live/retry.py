"""Reconnect policy: what each way a link ends means, and what to do about it, given the history.

Pure: no sleeping, no clocks, no I/O; `now` is an argument where time matters. Two layers:

1. **Classification** (`classify_close`, `classify_exception`, `classify_handshake_status`): one
   ended connection -> a `Failure` kind and a cause in words. It looks at the *phase* the link
   was in (opening, a fresh setup, a resume, a running session), the close code and the reason
   text, never at the code alone. The table, with where each row comes from, is in
   `pilive.emulator.catalogue` (the real service's known behaviour) and in the unit tests.

   | phase    | what ended it                                            | failure        |
   |----------|----------------------------------------------------------|----------------|
   | connect  | HTTP 400/401/403/404                                     | SETUP_REFUSED  |
   | connect  | HTTP 429/5xx, DNS, refused, TLS, timeout, OS errors      | TRANSIENT      |
   | setup    | 1007/1008 naming key, location, model, field, feature    | SETUP_REFUSED  |
   | setup    | 1007/1008 "operation was aborted", "entity not found"    | TRANSIENT      |
   | setup    | 1009 (the setup itself was too big)                      | SETUP_REFUSED  |
   | setup    | anything else (1011, 1006, 1000, no setupComplete)       | TRANSIENT      |
   | resume   | 1007/1008 naming key, location or model                  | SETUP_REFUSED  |
   | resume   | a reason naming the session, handle or expiry            | HANDLE_REFUSED (named) |
   | resume   | any other close, or no setupComplete                     | HANDLE_REFUSED |
   | session  | 1000, 1011 "deadline", any close after goAway            | NORMAL_END     |
   | session  | 1007/1008 (e.g. "The operation was aborted."), 1009,     | TRANSIENT      |
   |          | 1011, 1006, 1001, 1012-1014, others                      |                |

2. **Decision** (`RetryPolicy`): the classified end plus what came before it -> resume now, retry
   after a backoff delay, start a fresh conversation, or declare a configuration fault. It counts
   repetitions: a setup refused for configuration reasons is a fault only once it repeats; a
   refused resume drops the handle after a few tries (at once when the reason names it); planned
   ends resume at once only a few times a minute, so whatever the server sends, the appliance
   opens at most a few connections a minute while the network itself is fine.
"""

from __future__ import annotations

import enum
import errno
import random
import socket
import ssl
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = [
    "Classified",
    "Decision",
    "Failure",
    "Next",
    "Phase",
    "RetryPolicy",
    "backoff",
    "classify_close",
    "classify_exception",
    "classify_handshake_status",
]


def backoff(
    initial_s: float = 1.0,
    max_s: float = 30.0,
    factor: float = 2.0,
    rng: random.Random | None = None,
    *,
    jitter: float = 1.0,
) -> Iterator[float]:
    """Endless delays under a cap that grows from `initial_s` by `factor` up to `max_s`; the n-th
    is uniform in [cap * (1 - jitter), cap] with cap = min(max_s, initial_s * factor**n).

    Full jitter (1.0, the default) spreads many clients' retries apart; a local device has no
    crowd to spread and takes less (a camera none, an audio device a little, so retries of two
    devices do not fall together). The cap keeps an appliance that was offline for hours
    retrying every `max_s` at worst. Reset by starting a new generator. The one backoff of pilive.
    """
    if not 0 < initial_s <= max_s:
        raise ValueError(f"backoff: need 0 < initial_s <= max_s, got {initial_s!r}, {max_s!r}")
    if not factor >= 1.0:
        raise ValueError(f"backoff: factor {factor!r} must be >= 1")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"backoff: jitter {jitter!r} must be in 0..1")
    draw = (rng or random.Random()).uniform
    cap_s = initial_s
    while True:
        yield min(draw(cap_s * (1.0 - jitter), cap_s), cap_s)
        cap_s = min(cap_s * factor, max_s)


class Phase(enum.Enum):
    """Where a connection was when it ended."""

    CONNECT = "connect"
    """Opening TCP, TLS and the WebSocket: the server has not seen a setup."""
    SETUP = "setup"
    """A fresh setup was sent; no `setupComplete` yet."""
    RESUME = "resume"
    """A setup carrying a resumption handle was sent; no `setupComplete` yet."""
    SESSION = "session"
    """After `setupComplete`."""


class Failure(enum.Enum):
    """What one ended connection means, before its history is taken into account."""

    NORMAL_END = "normal_end"
    """The server ended the connection as planned (lifetime, goAway): resume with the handle."""
    TRANSIENT = "transient"
    """The network, an overload or a transient refusal: resume after a backoff delay."""
    SETUP_REFUSED = "setup_refused"
    """The setup was refused for a configuration reason (key, model, field, location)."""
    HANDLE_REFUSED = "handle_refused"
    """A resume was refused: the handle may be stale, expired or unknown to the server."""


@dataclass(frozen=True, slots=True)
class Classified:
    """One ended connection: its failure kind and a short cause for logs and STATUS."""

    failure: Failure
    cause: str
    names_handle: bool = False
    """The reason itself says the session or handle is gone: no point trying it again."""
    lost_resuming: bool = False
    """The server took the connection and the resume, then dropped it without a word."""


_REASON_MAX_CHARS = 80


def _short(reason: str) -> str:
    reason = " ".join(reason.split())
    if len(reason) > _REASON_MAX_CHARS:
        reason = reason[: _REASON_MAX_CHARS - 1] + "…"
    return reason


def _with_reason(text: str, code: int | None, reason: str) -> str:
    shown = "no close frame" if code is None else str(code)
    short = _short(reason)
    return f"{text} ({shown}{': ' + short if short else ''})"


# Reason texts the real service sends for transient trouble, even as 1007/1008 (see the catalogue).
_TRANSIENT_TEXTS = (
    "operation was aborted",
    "requested entity was not found",
    "try again",
    "currently unavailable",
    "internal error",
)
# Reason texts that point at the resumption handle or the session behind it.
_HANDLE_TEXTS = ("session", "handle", "resum", "expired")


def _config_cause(code: int, reason: str) -> str | None:
    """The configuration problem a refusal names, or None when it names none."""
    lowered = reason.lower()
    if "api key" in lowered or "api_key" in lowered:
        if "expired" in lowered:
            return f"API key expired ({code})"
        return f"API key invalid ({code})"
    if "location" in lowered and "not supported" in lowered:
        return f"user location not supported by the API ({code})"
    if "not found" in lowered and "model" in lowered:
        return f"model not found or not available for the Live API ({code})"
    if "permission" in lowered or "denied" in lowered:
        return f"permission denied ({code})"
    return None


def _field_cause(code: int, reason: str) -> str:
    """A refused setup that names no key, model or location: a field or a feature."""
    lowered = reason.lower()
    if "not implemented" in lowered or "not supported" in lowered or "not enabled" in lowered:
        return f"feature not supported by this model or API version ({code})"
    if reason:
        return f"invalid configuration: {_short(reason)} ({code})"
    return f"invalid configuration ({code})"


class OwnClose(enum.IntEnum):
    """Why the client itself ended a connection; when several apply, the lowest value wins
    (a handover the user's new conversation interrupted is still a handover)."""

    HANDOVER = 1
    """goAway: the next connection resumes before the deadline."""
    NEW_CONVERSATION = 2
    """The user asked for a new conversation."""
    STALLED = 3
    """A frame waited longer than `send_stall_s`: the network is slower than real time."""
    SILENT = 4
    """The server owed an answer and sent nothing for `answer_timeout_s`."""
    SETUP_TIMEOUT = 5
    """No setupComplete within `connect_timeout_s`."""


def stronger(current: OwnClose | None, reason: OwnClose) -> OwnClose:
    """The reason that explains a connection when `reason` joins `current`."""
    return reason if current is None else min(current, reason)


def classify_own_close(
    reason: OwnClose, phase: Phase, *, answer_timeout_s: float, connect_timeout_s: float
) -> Classified:
    """What a connection the client ended itself means. A resume that never completes its setup
    counts as a refused handle (the real service has answered stale handles with silence)."""
    if reason is OwnClose.HANDOVER:
        return Classified(Failure.NORMAL_END, "goAway handover")
    if reason is OwnClose.NEW_CONVERSATION:
        return Classified(Failure.NORMAL_END, "new conversation requested")
    if reason is OwnClose.STALLED:
        return Classified(Failure.TRANSIENT, "network stalled")
    if reason is OwnClose.SILENT:
        return Classified(
            Failure.TRANSIENT, f"no answer from the server for {answer_timeout_s:.0f} s"
        )
    text = f"no setupComplete within {connect_timeout_s:.0f} s"
    if phase is Phase.RESUME:
        return Classified(Failure.HANDLE_REFUSED, text)
    return Classified(Failure.TRANSIENT, text)


def classify_close(
    code: int | None, reason: str = "", *, phase: Phase, after_go_away: bool = False
) -> Classified:
    """Map a WebSocket close (code None: no close frame, a network error) in `phase` to a failure.

    `after_go_away`: the server announced the end of this connection with goAway.
    """
    lowered = reason.lower()
    transient_text = any(text in lowered for text in _TRANSIENT_TEXTS)
    if phase is Phase.SESSION:
        return _classify_session_close(code, reason, lowered, after_go_away)
    if phase is Phase.RESUME:
        if code in (1007, 1008) and (cause := _config_cause(code, reason)) is not None:
            return Classified(Failure.SETUP_REFUSED, cause)
        if code is None or code == 1006:
            return Classified(
                Failure.TRANSIENT,
                _with_reason("connection lost while resuming", code, reason),
                lost_resuming=True,
            )
        names = any(text in lowered for text in _HANDLE_TEXTS) or (
            "not found" in lowered and "model" not in lowered
        )
        return Classified(
            Failure.HANDLE_REFUSED,
            _with_reason("server refused to resume the conversation", code, reason),
            names_handle=names,
        )
    # A fresh setup (or the handshake's WebSocket part, which ends the same way).
    if code in (1007, 1008) and not transient_text:
        cause = _config_cause(code, reason) or _field_cause(code, reason)
        return Classified(Failure.SETUP_REFUSED, cause)
    if code == 1009:
        return Classified(
            Failure.SETUP_REFUSED, "the setup exceeded the server's size limit (1009)"
        )
    return Classified(
        Failure.TRANSIENT, _with_reason("connection ended before setup completed", code, reason)
    )


def _classify_session_close(
    code: int | None, reason: str, lowered: str, after_go_away: bool
) -> Classified:
    if after_go_away:
        return Classified(
            Failure.NORMAL_END, _with_reason("connection ended after goAway", code, "")
        )
    if code == 1000:
        return Classified(Failure.NORMAL_END, "connection closed normally (1000)")
    if code == 1011 and "deadline" in lowered:
        return Classified(Failure.NORMAL_END, "connection lifetime ended (1011 deadline)")
    if code in (1007, 1008):
        # The real service sends these mid-session for passing trouble ("The operation was
        # aborted.", "Requested entity was not found."); a setup it accepted stays acceptable.
        return Classified(Failure.TRANSIENT, _with_reason("server ended the session", code, reason))
    if code == 1009:
        return Classified(Failure.TRANSIENT, "a frame exceeded the server's size limit (1009)")
    if code == 1011:
        if "keepalive" in lowered or "ping" in lowered:
            return Classified(Failure.TRANSIENT, "keepalive ping timed out (1011)")
        if "unavailable" in lowered or "overload" in lowered:
            return Classified(Failure.TRANSIENT, "service unavailable (1011)")
        return Classified(Failure.TRANSIENT, _with_reason("server error", code, reason))
    if code is None or code == 1006:
        return Classified(Failure.TRANSIENT, "connection lost without a close frame (1006)")
    if code == 1001:
        return Classified(Failure.TRANSIENT, "server going away (1001)")
    if code in (1012, 1013, 1014):
        return Classified(Failure.TRANSIENT, f"server restarting or overloaded ({code})")
    return Classified(Failure.TRANSIENT, _with_reason("connection closed", code, reason))


_NETWORK_ERRNOS = {
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETDOWN: "network down",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.ETIMEDOUT: "connection timed out",
    errno.EPIPE: "connection broken",
}


def classify_exception(exc: Exception) -> Classified:
    """Map a connect failure (refused, DNS, TLS, timeout, OS error) to a transient failure.

    All are transient on an appliance (Wi-Fi drops, the clock not yet set for TLS); the cause
    names what happened. `CancelledError` is not an Exception and never lands here.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = exc.verify_message or ""
        if "hostname" in message.lower() or "ip address mismatch" in message.lower():
            # The certificate is fine but names another host: a proxy or a wrong endpoint.
            return Classified(
                Failure.TRANSIENT,
                f"TLS certificate is for another host ({message}); check the endpoint",
            )
        return Classified(
            Failure.TRANSIENT,
            f"TLS certificate not trusted ({message}); check the system clock",
        )
    if isinstance(exc, ssl.SSLError):
        return Classified(Failure.TRANSIENT, f"TLS error ({getattr(exc, 'reason', None) or exc})")
    if isinstance(exc, socket.gaierror):
        return Classified(Failure.TRANSIENT, f"DNS lookup failed ({exc.strerror})")
    if isinstance(exc, ConnectionRefusedError):
        return Classified(Failure.TRANSIENT, "connection refused")
    if isinstance(exc, TimeoutError):
        return Classified(Failure.TRANSIENT, "timed out")
    if isinstance(exc, OSError):
        described = _NETWORK_ERRNOS.get(exc.errno or 0) or exc.strerror or type(exc).__name__
        return Classified(Failure.TRANSIENT, f"network error ({described})")
    return Classified(Failure.TRANSIENT, f"unexpected error ({type(exc).__name__})")


def classify_handshake_status(status: int) -> Classified:
    """Map an HTTP status refusing the WebSocket upgrade to a failure."""
    if status in (400, 401, 403):
        return Classified(Failure.SETUP_REFUSED, f"server refused the credentials (HTTP {status})")
    if status == 404:
        return Classified(Failure.SETUP_REFUSED, "endpoint not found: check api_version (HTTP 404)")
    return Classified(Failure.TRANSIENT, f"server refused the connection (HTTP {status})")


class Next(enum.Enum):
    """What the link does after a connection ended."""

    RESUME_NOW = "resume_now"
    """Connect again at once (with the handle, if there is one)."""
    RETRY_AFTER = "retry_after"
    """Wait `delay_s`, then connect again (with the handle, if there is one)."""
    START_FRESH = "start_fresh"
    """Drop the handle (the model forgets the conversation), wait `delay_s`, connect afresh."""
    CONFIG_FAULT = "config_fault"
    """The configuration is refused: say so plainly, retry only every `delay_s`."""


@dataclass(frozen=True, slots=True)
class Decision:
    next: Next
    delay_s: float
    cause: str


class RetryPolicy:
    """Decides what follows each ended connection from its classification and the history.

    - A *productive* connection (the caller says so: it answered one of the user's turns, or
      stayed up for a while) resets the backoff and every repetition count. Whatever the server
      does, at most `immediate_cap_per_minute` resumes a minute are immediate.
    - NORMAL_END resumes at once after a productive connection; after an unproductive one only
      `immediate_per_minute` times in any 60 s; beyond that (a server that ends every
      connection right after setup) it backs off like a failure until a productive connection.
    - TRANSIENT backs off (full jitter, growing until a productive connection).
    - SETUP_REFUSED backs off the first time and is a configuration fault from the
      `config_fault_after`-th time in a row (a refusal can itself be transient; "in a row" means
      without an accepted setup between, transient failures aside).
    - HANDLE_REFUSED backs off and retries the handle; the `fresh_after`-th refusal in a row, or
      one whose reason names the handle or session, starts a fresh conversation.
    - A resume the server accepts on the wire and then drops without a close frame looks like
      the network, so it backs off like any transient failure; but the `fresh_after_lost`-th in
      a row (the WebSocket opened every time, so the network was there) is taken as a handle
      the server cannot restore, and starts a fresh conversation rather than retrying forever.
    """

    def __init__(
        self,
        new_backoff: Callable[[], Iterator[float]],
        *,
        config_fault_retry_s: float = 300.0,
        config_fault_after: int = 2,
        fresh_after: int = 3,
        fresh_after_lost: int = 5,
        immediate_per_minute: int = 3,
        immediate_cap_per_minute: int = 30,
    ) -> None:
        if (
            config_fault_after < 1
            or fresh_after < 1
            or fresh_after_lost < 1
            or immediate_per_minute < 0
        ):
            raise ValueError("RetryPolicy: repetition limits must be >= 1 (immediate >= 0)")
        self._new_backoff = new_backoff
        self._delays = new_backoff()
        self.config_fault_retry_s = config_fault_retry_s
        self.config_fault_after = config_fault_after
        self.fresh_after = fresh_after
        self.fresh_after_lost = fresh_after_lost
        self.immediate_per_minute = immediate_per_minute
        self.immediate_cap_per_minute = immediate_cap_per_minute
        self._all_immediate_s: deque[float] = deque()
        self.setup_refusals = 0
        """Setups refused for configuration reasons in a row."""
        self.handle_refusals = 0
        """Resumes refused in a row."""
        self.resumes_lost = 0
        """Resumes dropped without a close frame in a row (`Classified.lost_resuming`)."""
        self._immediate_s: deque[float] = deque()
        self._storm = False

    def connection_ended(
        self, ended: Classified, now: float, *, setup_completed: bool, productive: bool
    ) -> Decision:
        """The decision for one ended connection (call once per connection, in order)."""
        if productive:
            self._delays = self._new_backoff()
            self._storm = False
        if setup_completed:
            self.setup_refusals = 0
            self.handle_refusals = 0
            self.resumes_lost = 0
        failure = ended.failure
        if failure is Failure.NORMAL_END:
            if (productive or self._immediate_allowed(now)) and self._under_cap(now):
                return Decision(Next.RESUME_NOW, 0.0, ended.cause)
            return Decision(
                Next.RETRY_AFTER,
                next(self._delays),
                ended.cause + "; the server keeps ending connections early",
            )
        if failure is Failure.SETUP_REFUSED:
            self.setup_refusals += 1
            if self.setup_refusals >= self.config_fault_after:
                return Decision(Next.CONFIG_FAULT, self.config_fault_retry_s, ended.cause)
            return Decision(Next.RETRY_AFTER, next(self._delays), ended.cause)
        if failure is Failure.HANDLE_REFUSED:
            self.handle_refusals += 1
            if ended.names_handle or self.handle_refusals >= self.fresh_after:
                self.handle_refusals = 0
                return Decision(Next.START_FRESH, 0.0, ended.cause)
            return Decision(Next.RETRY_AFTER, next(self._delays), ended.cause)
        if ended.lost_resuming:
            self.resumes_lost += 1
            if self.resumes_lost >= self.fresh_after_lost:
                self.resumes_lost = 0
                return Decision(
                    Next.START_FRESH,
                    0.0,
                    ended.cause + f"; {self.fresh_after_lost} resumes in a row were dropped",
                )
        return Decision(Next.RETRY_AFTER, next(self._delays), ended.cause)

    def _under_cap(self, now: float) -> bool:
        """A hard cap on immediate resumes, productive or not: however the server makes its
        connections look useful, they are never opened back to back more than this a minute."""
        while self._all_immediate_s and now - self._all_immediate_s[0] >= 60.0:
            self._all_immediate_s.popleft()
        if len(self._all_immediate_s) >= self.immediate_cap_per_minute:
            return False
        self._all_immediate_s.append(now)
        return True

    def _immediate_allowed(self, now: float) -> bool:
        """Within the budget of immediate resumes after unproductive connections; once spent,
        none until a productive connection (a storm does not earn a fresh budget each minute)."""
        if self._storm:
            return False
        while self._immediate_s and now - self._immediate_s[0] >= 60.0:
            self._immediate_s.popleft()
        if len(self._immediate_s) >= self.immediate_per_minute:
            self._storm = True
            return False
        self._immediate_s.append(now)
        return True
