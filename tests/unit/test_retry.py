"""Unit and property tests for pilive.live.retry: backoff bounds/jitter and failure outcomes."""

from __future__ import annotations

import contextlib
import errno
import itertools
import random
import socket
import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pilive.live.retry import (
    CloseAction,
    CloseKind,
    backoff,
    classify_close,
    classify_exception,
    classify_handshake_status,
)


@given(
    initial_s=st.floats(0.001, 10.0),
    extra_s=st.floats(0.0, 100.0),
    factor=st.floats(1.0, 5.0),
    seed=st.integers(0, 2**32),
)
def test_backoff_delays_stay_within_the_growing_cap(
    initial_s: float, extra_s: float, factor: float, seed: int
) -> None:
    """Every delay lies in [0, min(max_s, initial_s * factor**n)] and never exceeds max_s."""
    max_s = initial_s + extra_s
    delays = list(itertools.islice(backoff(initial_s, max_s, factor, random.Random(seed)), 40))
    cap_s = initial_s
    for delay in delays:
        assert 0.0 <= delay <= cap_s * (1 + 1e-12)
        assert delay <= max_s
        cap_s = min(cap_s * factor, max_s)


@given(seed=st.integers(0, 2**32))
def test_backoff_is_jittered_over_the_whole_range(seed: int) -> None:
    """Full jitter: once capped, delays spread over [0, max_s] (not clustered at the cap)."""
    delays = list(itertools.islice(backoff(1.0, 30.0, 2.0, random.Random(seed)), 400))[10:]
    assert min(delays) < 30.0 * 0.25
    assert max(delays) > 30.0 * 0.75
    assert len(set(delays)) > 300


def test_backoff_caps_grow_then_hold() -> None:
    """With an rng that always draws the top, delays show the caps: 1, 2, 4, ..., 30, 30."""

    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    delays = list(itertools.islice(backoff(1.0, 30.0, 2.0, Top()), 8))
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_backoff_reset_is_a_new_generator() -> None:
    """A fresh generator starts again from initial_s (the caller resets after setupComplete)."""

    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    first = backoff(1.0, 30.0, 2.0, Top())
    assert [next(first) for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert next(backoff(1.0, 30.0, 2.0, Top())) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_s": 0.0}, "0 < initial_s <= max_s"),
        ({"initial_s": 5.0, "max_s": 1.0}, "0 < initial_s <= max_s"),
        ({"factor": 0.5}, "factor 0.5"),
        ({"initial_s": float("nan")}, "0 < initial_s"),
    ],
)
def test_backoff_rejects_bad_parameters(kwargs: dict[str, float], message: str) -> None:
    """Nonsense parameters fail on the first draw with the parameter named."""
    with pytest.raises(ValueError, match=message):
        next(backoff(**kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "reason", "kind", "cause"),
    [
        (1000, "", CloseKind.RESUME, "closed normally (1000)"),
        (
            1011,
            "Deadline expired before operation could complete.",
            CloseKind.RESUME,
            "lifetime ended (1011 deadline)",
        ),
        (1011, "The service is currently unavailable.", CloseKind.RETRY_BACKOFF, "unavailable"),
        (1011, "keepalive ping timeout", CloseKind.RETRY_BACKOFF, "keepalive"),
        (1011, "Internal error encountered.", CloseKind.RETRY_BACKOFF, "server error (1011: Int"),
        (1006, "", CloseKind.RETRY_BACKOFF, "without a close frame"),
        (None, "", CloseKind.RETRY_BACKOFF, "without a close frame"),
        (1001, "", CloseKind.RETRY_BACKOFF, "going away (1001)"),
        (1012, "", CloseKind.RETRY_BACKOFF, "(1012)"),
        (1013, "", CloseKind.RETRY_BACKOFF, "(1013)"),
        (1014, "", CloseKind.RETRY_BACKOFF, "(1014)"),
        (4000, "custom", CloseKind.RETRY_BACKOFF, "closed (4000: custom)"),
        (
            1007,
            "API key not valid. Please pass a valid API key.",
            CloseKind.CONFIG_FAULT,
            "API key invalid (1007)",
        ),
        (
            1007,
            "API key expired. Please renew the API key.",
            CloseKind.CONFIG_FAULT,
            "API key expired (1007)",
        ),
        (
            1007,
            "User location is not supported for the API use.",
            CloseKind.CONFIG_FAULT,
            "location not supported",
        ),
        (
            1007,
            "Request contains an invalid argument.",
            CloseKind.CONFIG_FAULT,
            "invalid configuration: Request contains an invalid argument. (1007)",
        ),
        (1007, "", CloseKind.CONFIG_FAULT, "invalid configuration (1007)"),
        (
            1008,
            "models/x is not found for API version v1beta, or is not supported for "
            "bidiGenerateContent. Call ListMo",
            CloseKind.CONFIG_FAULT,
            "model not found",
        ),
        (
            1008,
            "Operation is not implemented, or supported, or enabled.",
            CloseKind.CONFIG_FAULT,
            "feature not supported",
        ),
        (1008, "Permission denied", CloseKind.CONFIG_FAULT, "permission denied (1008)"),
        (1009, "", CloseKind.CONFIG_FAULT, "size limit (1009)"),
    ],
)
def test_classify_close(code: int | None, reason: str, kind: CloseKind, cause: str) -> None:
    """Each close code and reason the service is known to use maps to its outcome and cause."""
    action = classify_close(code, reason, during_setup=False)
    assert action.kind is kind
    assert cause in action.cause


def test_close_during_setup_never_resumes() -> None:
    """Before setupComplete even a 1000 backs off (no hot loop); 1007/1008 stay config faults."""
    assert classify_close(1000, "", during_setup=True).kind is CloseKind.RETRY_BACKOFF
    deadline = classify_close(1011, "Deadline expired", during_setup=True)
    assert deadline == CloseAction(
        CloseKind.RETRY_BACKOFF, "connection ended before setup completed (1011: Deadline expired)"
    )
    assert classify_close(None, "", during_setup=True).cause == (
        "connection ended before setup completed (no close frame)"
    )
    assert classify_close(1007, "API key not valid", during_setup=True).kind is (
        CloseKind.CONFIG_FAULT
    )


def test_close_after_go_away_resumes() -> None:
    """After goAway any close (even an abrupt one) means: resume with the newest handle."""
    assert classify_close(1006, "", during_setup=False, after_go_away=True).kind is (
        CloseKind.RESUME
    )
    assert classify_close(None, "", during_setup=False, after_go_away=True).kind is (
        CloseKind.RESUME
    )


def test_long_reasons_are_shortened() -> None:
    """Reason text in causes is one line and bounded (it goes into STATUS and LED logs)."""
    action = classify_close(1007, "bad\nfield " + "x" * 500, during_setup=False)
    assert "\n" not in action.cause
    assert len(action.cause) < 120


def test_classify_exception_by_type_and_errno() -> None:
    """Refused, DNS, TLS, timeouts and OS errors back off, each with its own cause."""
    cases: list[tuple[Exception, str]] = [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "connection refused"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "DNS lookup failed"),
        (TimeoutError(), "timed out"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "network unreachable"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "host unreachable"),
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        (OSError("no errno"), "OSError"),
        (ssl.SSLError(1, "[SSL] bad record"), "TLS error"),
        (RuntimeError("boom"), "unexpected error (RuntimeError)"),
    ]
    for exc, cause in cases:
        action = classify_exception(exc)
        assert action.kind is CloseKind.RETRY_BACKOFF, exc
        assert cause in action.cause, (exc, action.cause)


def test_classify_real_tls_verification_failure() -> None:
    """A real untrusted-certificate handshake failure names the check and hints at the clock."""
    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()  # does not trust the test CA
    client_in, c2s, server_in, s2c = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(client_in, c2s, server_hostname="localhost")
    server = server_ctx.wrap_bio(server_in, s2c, server_side=True)
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        for _ in range(20):  # pump the in-memory handshake until the client gives up
            for side in (client, server):
                with contextlib.suppress(ssl.SSLWantReadError):
                    side.do_handshake()
            server_in.write(c2s.read())
            client_in.write(s2c.read())
    action = classify_exception(info.value)
    assert action.kind is CloseKind.RETRY_BACKOFF
    assert action.cause.startswith("TLS certificate not trusted (")
    assert "certificate" in action.cause.removeprefix("TLS certificate not trusted")
    assert action.cause.endswith("check the system clock")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, CloseKind.CONFIG_FAULT),
        (403, CloseKind.CONFIG_FAULT),
        (400, CloseKind.CONFIG_FAULT),
        (404, CloseKind.CONFIG_FAULT),
        (429, CloseKind.RETRY_BACKOFF),
        (500, CloseKind.RETRY_BACKOFF),
        (503, CloseKind.RETRY_BACKOFF),
    ],
)
def test_classify_handshake_status(status: int, kind: CloseKind) -> None:
    """HTTP refusals of the upgrade: credentials/path problems are config faults, others retry."""
    action = classify_handshake_status(status)
    assert action.kind is kind
    assert f"HTTP {status}" in action.cause
