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
    Classified,
    Decision,
    Failure,
    Next,
    OwnClose,
    Phase,
    RetryPolicy,
    backoff,
    classify_close,
    classify_exception,
    classify_handshake_status,
    classify_own_close,
    stronger,
)


def test_backoff_without_jitter_doubles_to_the_cap() -> None:
    """jitter=0 (a local device: the camera): 1, 2, 4, ... capped at 30 s, forever."""
    delays = list(itertools.islice(backoff(jitter=0.0), 8))
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert list(itertools.islice(backoff(0.1, 0.25, jitter=0.0), 4)) == [0.1, 0.2, 0.25, 0.25]
    with pytest.raises(ValueError, match="jitter"):
        next(backoff(jitter=1.5))


def test_partial_jitter_stays_in_the_top_of_the_cap() -> None:
    """jitter=0.2 (an audio device): each delay within the top fifth of its cap."""
    delays = itertools.islice(backoff(0.2, 5.0, 2.0, random.Random(3), jitter=0.2), 12)
    caps = itertools.chain([0.2, 0.4, 0.8, 1.6, 3.2], itertools.repeat(5.0))
    for delay, cap in zip(delays, caps, strict=False):
        assert 0.8 * cap <= delay <= cap


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


DEADLINE = "Deadline expired before operation could complete."
UNAVAILABLE = "The service is currently unavailable."
ABORTED = "The operation was aborted."
ENTITY = "Requested entity was not found."
BAD_KEY = "API key not valid. Please pass a valid API key."
EXPIRED_KEY = "API key expired. Please renew the API key."
LOCATION = "User location is not supported for the API use."
INVALID = "Request contains an invalid argument."
NO_MODEL = (
    "models/x is not found for API version v1beta, or is not supported for "
    "bidiGenerateContent. Call ListMo"
)
NOT_IMPLEMENTED = "Operation is not implemented, or supported, or enabled."
SESSION_EXPIRED = "Session expired. Please start a new session."
HANDLE_INVALID = "Session resumption handle is invalid or has expired."
INTERNAL = "Internal error encountered."

S, U, R = Phase.SESSION, Phase.SETUP, Phase.RESUME
NORMAL, TRANSIENT = Failure.NORMAL_END, Failure.TRANSIENT
REFUSED, HANDLE = Failure.SETUP_REFUSED, Failure.HANDLE_REFUSED


@pytest.mark.parametrize(
    ("phase", "code", "reason", "failure", "cause"),
    [
        # A running session: planned ends resume, everything else is transient, 1007/1008 too.
        (S, 1000, "", NORMAL, "closed normally (1000)"),
        (S, 1011, DEADLINE, NORMAL, "lifetime ended (1011 deadline)"),
        (S, 1011, UNAVAILABLE, TRANSIENT, "service unavailable (1011)"),
        (S, 1011, "keepalive ping timeout", TRANSIENT, "keepalive ping timed out"),
        (S, 1011, INTERNAL, TRANSIENT, "server error (1011: Internal error"),
        (S, 1008, ABORTED, TRANSIENT, "server ended the session (1008: The operation was abor"),
        (S, 1007, ENTITY, TRANSIENT, "(1007: Requested entity was not found.)"),
        (S, 1008, ENTITY, TRANSIENT, "(1008: Requested entity"),
        (S, 1007, INVALID, TRANSIENT, "server ended the session (1007"),
        (S, 1008, NOT_IMPLEMENTED, TRANSIENT, "server ended the session (1008"),
        (S, 1009, "", TRANSIENT, "size limit (1009)"),
        (S, 1006, "", TRANSIENT, "without a close frame (1006)"),
        (S, None, "", TRANSIENT, "without a close frame (1006)"),
        (S, 1001, "", TRANSIENT, "going away (1001)"),
        (S, 1012, "", TRANSIENT, "(1012)"),
        (S, 1013, "", TRANSIENT, "(1013)"),
        (S, 1014, "", TRANSIENT, "(1014)"),
        (S, 4000, "custom", TRANSIENT, "connection closed (4000: custom)"),
        # A fresh setup: configuration refusals (a fault once they repeat), else transient.
        (U, 1007, BAD_KEY, REFUSED, "API key invalid (1007)"),
        (U, 1007, EXPIRED_KEY, REFUSED, "API key expired (1007)"),
        (U, 1007, LOCATION, REFUSED, "user location not supported"),
        (U, 1008, NO_MODEL, REFUSED, "model not found or not available"),
        (U, 1007, INVALID, REFUSED, "invalid configuration: Request contains an invalid"),
        (U, 1007, "", REFUSED, "invalid configuration (1007)"),
        (U, 1008, NOT_IMPLEMENTED, REFUSED, "feature not supported"),
        (U, 1008, "Permission denied", REFUSED, "permission denied (1008)"),
        (U, 1009, "", REFUSED, "setup exceeded the server's size limit (1009)"),
        (U, 1008, ABORTED, TRANSIENT, "before setup completed (1008: The operation was"),
        (U, 1007, ENTITY, TRANSIENT, "before setup completed (1007: Requested entity"),
        (U, 1011, UNAVAILABLE, TRANSIENT, "before setup completed (1011: The service"),
        (U, 1011, DEADLINE, TRANSIENT, "before setup completed (1011: Deadline"),
        (U, 1000, "", TRANSIENT, "before setup completed (1000)"),
        (U, None, "", TRANSIENT, "before setup completed (no close frame)"),
        # A resume: key, location and model problems are the configuration's, the rest the
        # handle's; a dropped TCP connection is nobody's.
        (R, 1007, BAD_KEY, REFUSED, "API key invalid (1007)"),
        (R, 1007, LOCATION, REFUSED, "user location not supported"),
        (R, 1008, NO_MODEL, REFUSED, "model not found"),
        (R, 1008, SESSION_EXPIRED, HANDLE, "refused to resume the conversation (1008: Session"),
        (R, 1008, HANDLE_INVALID, HANDLE, "refused to resume"),
        (R, 1008, ENTITY, HANDLE, "refused to resume"),
        (R, 1011, INTERNAL, HANDLE, "refused to resume the conversation (1011: Internal"),
        (R, 1011, UNAVAILABLE, HANDLE, "(1011: The service is currently unavailable.)"),
        (R, 1007, INVALID, HANDLE, "refused to resume"),
        (R, 1000, "", HANDLE, "refused to resume the conversation (1000)"),
        (R, 1006, "", TRANSIENT, "connection lost while resuming (1006)"),
        (R, None, "", TRANSIENT, "connection lost while resuming (no close frame)"),
    ],
)
def test_each_close_row_by_phase(
    phase: Phase, code: int | None, reason: str, failure: Failure, cause: str
) -> None:
    """One row each of the classification table: a close in a phase maps to its failure kind and
    a cause that names it; never the code alone (1007/1008 mean three different things)."""
    classified = classify_close(code, reason, phase=phase)
    assert classified.failure is failure
    assert cause in classified.cause, classified.cause


@pytest.mark.parametrize(
    ("reason", "named"),
    [
        (SESSION_EXPIRED, True),
        (HANDLE_INVALID, True),
        (ENTITY, True),
        (INTERNAL, False),
        (UNAVAILABLE, False),
        (INVALID, False),
    ],
)
def test_a_resume_refusal_that_names_the_session_says_so(reason: str, named: bool) -> None:
    """Only a reason about the session or handle lets the policy give the handle up at once."""
    assert classify_close(1008, reason, phase=Phase.RESUME).names_handle is named


@pytest.mark.parametrize("code", [1000, 1006, None, 1011, 1008])
def test_any_close_after_go_away_is_a_normal_end(code: int | None) -> None:
    """After goAway every close, even an abrupt one, is the announced end: resume."""
    assert classify_close(code, "", phase=Phase.SESSION, after_go_away=True).failure is NORMAL


def test_long_reasons_are_shortened() -> None:
    """Reason text in causes is one line and bounded (it goes into STATUS and LED logs)."""
    classified = classify_close(1007, "bad\nfield " + "x" * 500, phase=Phase.SETUP)
    assert "\n" not in classified.cause
    assert len(classified.cause) < 120


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
        classified = classify_exception(exc)
        assert classified.failure is Failure.TRANSIENT, exc
        assert cause in classified.cause, (exc, classified.cause)


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
    classified = classify_exception(info.value)
    assert classified.failure is Failure.TRANSIENT
    assert classified.cause.startswith("TLS certificate not trusted (")
    assert "certificate" in classified.cause.removeprefix("TLS certificate not trusted")
    assert classified.cause.endswith("check the system clock")


@pytest.mark.parametrize(
    ("status", "failure"),
    [
        (401, REFUSED),
        (403, REFUSED),
        (400, REFUSED),
        (404, REFUSED),
        (429, TRANSIENT),
        (500, TRANSIENT),
        (503, TRANSIENT),
    ],
)
def test_classify_handshake_status(status: int, failure: Failure) -> None:
    """HTTP refusals of the upgrade: credentials/path problems are refusals, others transient."""
    classified = classify_handshake_status(status)
    assert classified.failure is failure
    assert f"HTTP {status}" in classified.cause


def test_hostname_mismatch_is_not_blamed_on_the_clock() -> None:
    """A certificate for another host says so; only an untrusted one mentions the clock."""
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "Hostname mismatch, certificate is not valid for 'x'."
    cause = classify_exception(exc).cause
    assert "another host" in cause
    assert "clock" not in cause


# -- the policy: repetition and history -------------------------------------------------------


class Top(random.Random):
    """Draws the top of every range: delays show the backoff caps (1, 2, 4, ...)."""

    def uniform(self, a: float, b: float) -> float:
        return b


def policy() -> RetryPolicy:
    return RetryPolicy(lambda: backoff(1.0, 30.0, 2.0, Top()), config_fault_retry_s=300.0)


def ended(
    p: RetryPolicy,
    failure: Failure,
    now: float = 0.0,
    *,
    setup: bool = False,
    productive: bool = False,
    names_handle: bool = False,
) -> Decision:
    return p.connection_ended(
        Classified(failure, failure.value, names_handle),
        now,
        setup_completed=setup,
        productive=productive,
    )


def test_a_single_mid_session_refusal_resumes_within_a_second() -> None:
    """A mid-session 1008 "The operation was aborted." after a productive connection: back off
    by at most the first step (1 s) and keep the handle. Never a configuration fault."""
    classified = classify_close(1008, ABORTED, phase=Phase.SESSION)
    d = policy().connection_ended(classified, 0.0, setup_completed=True, productive=True)
    assert d.next is Next.RETRY_AFTER
    assert d.delay_s <= 1.0


def test_setup_refusal_is_a_configuration_fault_only_once_it_repeats() -> None:
    """The first refused setup backs off; the second in a row is a configuration fault."""
    p = policy()
    assert ended(p, REFUSED).next is Next.RETRY_AFTER
    assert ended(p, REFUSED) == Decision(Next.CONFIG_FAULT, 300.0, "setup_refused")


def test_a_completed_setup_clears_the_refusal_count() -> None:
    """Refusals must be in a row: an accepted setup in between starts the count again."""
    p = policy()
    ended(p, REFUSED)
    ended(p, TRANSIENT, setup=True)
    assert ended(p, REFUSED).next is Next.RETRY_AFTER


def test_a_refused_resume_is_retried_then_the_conversation_starts_fresh() -> None:
    """A resume refused without saying why (1011) is tried twice more with backoff; the third
    refusal in a row drops the handle, and the count starts again."""
    p = policy()
    assert [ended(p, HANDLE).next for _ in range(3)] == [
        Next.RETRY_AFTER,
        Next.RETRY_AFTER,
        Next.START_FRESH,
    ]
    assert ended(p, HANDLE).next is Next.RETRY_AFTER


def test_resumes_dropped_without_a_word_end_in_a_fresh_conversation() -> None:
    """A resume the server takes and then drops with no close frame (1006) looks like the
    network, so it backs off; but the fifth in a row, each time after the WebSocket opened,
    starts a fresh conversation instead of retrying a handle the server cannot restore for ever.
    Drops elsewhere (mid-session) never count, and an accepted setup clears the count."""
    lost = classify_close(None, "", phase=Phase.RESUME)
    assert lost.failure is Failure.TRANSIENT and lost.lost_resuming
    assert not classify_close(None, "", phase=Phase.SESSION).lost_resuming
    p = policy()

    def drop() -> Next:
        return p.connection_ended(lost, 0.0, setup_completed=False, productive=False).next

    assert [drop() for _ in range(5)] == [Next.RETRY_AFTER] * 4 + [Next.START_FRESH]
    for _ in range(4):
        drop()
    ended(p, TRANSIENT, setup=True)
    assert [drop() for _ in range(4)] == [Next.RETRY_AFTER] * 4
    mid_session = classify_close(1006, "", phase=Phase.SESSION)
    for _ in range(10):
        assert (
            p.connection_ended(mid_session, 0.0, setup_completed=True, productive=False).next
            is Next.RETRY_AFTER
        )


def test_a_refusal_naming_the_session_starts_fresh_at_once() -> None:
    """A "session expired" refusal needs no second try."""
    assert ended(policy(), HANDLE, names_handle=True) == Decision(
        Next.START_FRESH, 0.0, "handle_refused"
    )


def test_planned_ends_resume_at_once_but_not_in_a_storm() -> None:
    """A server that ends every connection right after setup (goAway, 1000): three immediate
    resumes, then a growing backoff until a connection is productive; those resume at once."""
    p = policy()
    decisions = [ended(p, NORMAL, now=0.1 * i, setup=True) for i in range(8)]
    assert [d.next for d in decisions[:3]] == [Next.RESUME_NOW] * 3
    assert [d.delay_s for d in decisions[3:]] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert ended(p, NORMAL, now=61.0, setup=True).next is Next.RETRY_AFTER  # still a storm
    assert ended(p, NORMAL, now=62.0, setup=True, productive=True).next is Next.RESUME_NOW
    assert ended(p, NORMAL, now=63.0, setup=True).next is Next.RESUME_NOW  # calm again


@pytest.mark.parametrize("failure", [NORMAL, TRANSIENT, HANDLE, REFUSED])
def test_connections_stay_bounded_whatever_the_server_does(failure: Failure) -> None:
    """Against a server that ends every connection unproductively, in any way, ten minutes see a
    few connections a minute at most (the backoff caps at 30 s; drawn at the top here)."""
    p = policy()
    now, connections = 0.0, 0
    while now < 600.0:
        connections += 1
        now += ended(p, failure, now, setup=failure in (NORMAL, TRANSIENT)).delay_s + 0.05
    assert connections <= 40, connections


def test_only_productive_connections_reset_the_backoff() -> None:
    """Accepting a setup is not enough: the backoff grows until a connection was useful."""
    p = policy()
    assert [ended(p, TRANSIENT, setup=True).delay_s for _ in range(3)] == [1.0, 2.0, 4.0]
    assert ended(p, TRANSIENT, setup=True, productive=True).delay_s == 1.0


def test_even_productive_connections_resume_at_once_only_thirty_times_a_minute() -> None:
    """Connections that each answered a user's turn and then ended (productive needs a real
    user turn, so this is paced by the user): after thirty immediate resumes in a minute the
    backoff spaces them, whatever the server does."""
    p = policy()
    decisions = [ended(p, NORMAL, now=0.5 * i, setup=True, productive=True) for i in range(32)]
    assert [d.next for d in decisions[:30]] == [Next.RESUME_NOW] * 30
    assert decisions[30].next is Next.RETRY_AFTER


# --- connections the client ended itself ----------------------------------------------------


def _own(reason: OwnClose, phase: Phase = Phase.SESSION) -> Classified:
    return classify_own_close(reason, phase, answer_timeout_s=45.0, connect_timeout_s=15.0)


@pytest.mark.parametrize(
    ("reason", "failure", "cause"),
    [
        (OwnClose.HANDOVER, Failure.NORMAL_END, "goAway handover"),
        (OwnClose.NEW_CONVERSATION, Failure.NORMAL_END, "new conversation requested"),
        (OwnClose.STALLED, Failure.TRANSIENT, "network stalled"),
        (OwnClose.SILENT, Failure.TRANSIENT, "no answer from the server for 45 s"),
        (OwnClose.SETUP_TIMEOUT, Failure.TRANSIENT, "no setupComplete within 15 s"),
    ],
)
def test_each_own_close_has_its_outcome(reason: OwnClose, failure: Failure, cause: str) -> None:
    assert _own(reason) == Classified(failure, cause)


def test_a_resume_that_never_completes_its_setup_is_a_refused_handle() -> None:
    assert _own(OwnClose.SETUP_TIMEOUT, Phase.RESUME).failure is Failure.HANDLE_REFUSED


def test_the_stronger_reason_explains_the_connection_whatever_the_order() -> None:
    """A handover wins over everything, a new conversation over the faults; None yields."""
    reasons = list(OwnClose)
    for first in reasons:
        for second in reasons:
            assert stronger(stronger(None, first), second) == min(first, second)
    assert stronger(OwnClose.STALLED, OwnClose.HANDOVER) is OwnClose.HANDOVER
    assert stronger(OwnClose.SETUP_TIMEOUT, OwnClose.NEW_CONVERSATION) is OwnClose.NEW_CONVERSATION
