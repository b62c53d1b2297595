"""Reconnect policy: jittered backoff delays and a named outcome for every way a link ends.

Pure functions: no sleeping, no clocks, no I/O. The connection layer asks `classify_close` (or
`classify_exception` / `classify_handshake_status`) what a failure means and draws its delay from
a `backoff()` generator, which it replaces with a fresh one after `setupComplete` (so a server
that accepts and then closes at once cannot cause a hot loop).
"""

from __future__ import annotations

import enum
import errno
import random
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "CloseAction",
    "CloseKind",
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
) -> Iterator[float]:
    """Endless delays with full jitter: the n-th is uniform in [0, min(max_s, initial_s*factor**n)].

    Full jitter spreads many clients' retries apart; the cap keeps an appliance that was offline
    for hours retrying every `max_s` at worst. Reset by starting a new generator.
    """
    if not 0 < initial_s <= max_s:
        raise ValueError(f"backoff: need 0 < initial_s <= max_s, got {initial_s!r}, {max_s!r}")
    if not factor >= 1.0:
        raise ValueError(f"backoff: factor {factor!r} must be >= 1")
    draw = (rng or random.Random()).uniform
    cap_s = initial_s
    while True:
        yield min(draw(0.0, cap_s), cap_s)
        cap_s = min(cap_s * factor, max_s)


class CloseKind(enum.Enum):
    """What to do after a connection ended."""

    RESUME = "resume"
    """Reconnect at once with the newest resumption handle (normal end of a connection)."""
    RETRY_BACKOFF = "retry_backoff"
    """Transient failure: reconnect after the next backoff delay."""
    CONFIG_FAULT = "config_fault"
    """Retrying will not help until the configuration changes: say so, retry slowly."""


@dataclass(frozen=True, slots=True)
class CloseAction:
    """A failure's outcome with a short human-readable cause for logs and STATUS lines."""

    kind: CloseKind
    cause: str


_REASON_MAX_CHARS = 80


def _short(reason: str) -> str:
    reason = " ".join(reason.split())
    if len(reason) > _REASON_MAX_CHARS:
        reason = reason[: _REASON_MAX_CHARS - 1] + "…"
    return reason


def _config_cause(code: int, reason: str) -> str:
    lowered = reason.lower()
    if "api key" in lowered or "api_key" in lowered:
        if "expired" in lowered:
            return f"API key expired ({code})"
        return f"API key invalid ({code})"
    if "location" in lowered and "not supported" in lowered:
        return f"user location not supported by the API ({code})"
    if "not found" in lowered and "model" in lowered:
        return f"model not found or not available for the Live API ({code})"
    if "not implemented" in lowered or "not supported" in lowered or "not enabled" in lowered:
        return f"feature not supported by this model or API version ({code})"
    if "permission" in lowered or "denied" in lowered:
        return f"permission denied ({code})"
    if reason:
        return f"invalid configuration: {_short(reason)} ({code})"
    return f"invalid configuration ({code})"


def classify_close(
    code: int | None, reason: str = "", *, during_setup: bool, after_go_away: bool = False
) -> CloseAction:
    """Map a WebSocket close (code None: no close frame, a network error) to an outcome.

    `during_setup`: the link ended before `setupComplete`; a "normal" end then is no success, so
    it backs off instead of resuming. `after_go_away`: the server announced the end.
    """
    text = _short(reason)
    lowered = reason.lower()
    if code in (1007, 1008):
        return CloseAction(CloseKind.CONFIG_FAULT, _config_cause(code, reason))
    if code == 1009:
        return CloseAction(CloseKind.CONFIG_FAULT, "a frame exceeded the peer's size limit (1009)")
    if during_setup:
        shown = "no close frame" if code is None else str(code)
        return CloseAction(
            CloseKind.RETRY_BACKOFF,
            f"connection ended before setup completed ({shown}{': ' + text if text else ''})",
        )
    if after_go_away:
        return CloseAction(CloseKind.RESUME, f"connection ended after goAway ({code})")
    if code == 1000:
        return CloseAction(CloseKind.RESUME, "connection closed normally (1000)")
    if code == 1011:
        if "deadline" in lowered:
            return CloseAction(CloseKind.RESUME, "connection lifetime ended (1011 deadline)")
        if "keepalive" in lowered or "ping" in lowered:
            return CloseAction(CloseKind.RETRY_BACKOFF, "keepalive ping timed out (1011)")
        if "unavailable" in lowered or "overload" in lowered:
            return CloseAction(CloseKind.RETRY_BACKOFF, "service unavailable (1011)")
        return CloseAction(
            CloseKind.RETRY_BACKOFF, f"server error (1011{': ' + text if text else ''})"
        )
    if code is None or code == 1006:
        return CloseAction(CloseKind.RETRY_BACKOFF, "connection lost without a close frame (1006)")
    if code == 1001:
        return CloseAction(CloseKind.RETRY_BACKOFF, "server going away (1001)")
    if code in (1012, 1013, 1014):
        return CloseAction(CloseKind.RETRY_BACKOFF, f"server restarting or overloaded ({code})")
    return CloseAction(
        CloseKind.RETRY_BACKOFF, f"connection closed ({code}{': ' + text if text else ''})"
    )


_NETWORK_ERRNOS = {
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETDOWN: "network down",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.ETIMEDOUT: "connection timed out",
    errno.EPIPE: "connection broken",
}


def classify_exception(exc: Exception) -> CloseAction:
    """Map a connect/receive failure (refused, DNS, TLS, timeout, OS error) to an outcome.

    All are transient on an appliance (Wi-Fi drops, the clock not yet set for TLS), so they back
    off; the cause names what happened. `CancelledError` is not an Exception and never lands here.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        return CloseAction(
            CloseKind.RETRY_BACKOFF,
            f"TLS certificate not trusted ({exc.verify_message}); check the system clock",
        )
    if isinstance(exc, ssl.SSLError):
        return CloseAction(
            CloseKind.RETRY_BACKOFF, f"TLS error ({getattr(exc, 'reason', None) or exc})"
        )
    if isinstance(exc, socket.gaierror):
        return CloseAction(CloseKind.RETRY_BACKOFF, f"DNS lookup failed ({exc.strerror})")
    if isinstance(exc, ConnectionRefusedError):
        return CloseAction(CloseKind.RETRY_BACKOFF, "connection refused")
    if isinstance(exc, TimeoutError):
        return CloseAction(CloseKind.RETRY_BACKOFF, "timed out")
    if isinstance(exc, OSError):
        described = _NETWORK_ERRNOS.get(exc.errno or 0) or exc.strerror or type(exc).__name__
        return CloseAction(CloseKind.RETRY_BACKOFF, f"network error ({described})")
    return CloseAction(CloseKind.RETRY_BACKOFF, f"unexpected error ({type(exc).__name__})")


def classify_handshake_status(status: int) -> CloseAction:
    """Map an HTTP status refusing the WebSocket upgrade to an outcome."""
    if status in (400, 401, 403):
        return CloseAction(
            CloseKind.CONFIG_FAULT, f"server refused the credentials (HTTP {status})"
        )
    if status == 404:
        return CloseAction(
            CloseKind.CONFIG_FAULT, "endpoint not found: check api_version (HTTP 404)"
        )
    return CloseAction(CloseKind.RETRY_BACKOFF, f"server refused the connection (HTTP {status})")
