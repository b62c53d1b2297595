"""mask_secrets / Secret.redact: text that came from elsewhere (an exception quoting what a
server sent back) never carries the API key into a log line or STATUS."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import InvalidHeaderValue, InvalidUpgrade

from pilive.config._secret import MASK, Secret, mask_secrets

KEY = "AIzaSyD-3xampleKey_0123456789abcdefghij"


def test_every_occurrence_is_masked_and_the_rest_kept() -> None:
    """The key is replaced wherever it stands, alone, in a header, in a query string; the
    surrounding text survives so the message still says what went wrong."""
    text = f"invalid Upgrade header: {KEY}; url wss://h/ws?key={KEY}&x=1 ({KEY})"
    masked = mask_secrets(text, Secret(KEY))
    assert KEY not in masked
    assert masked.startswith("invalid Upgrade header: ")
    assert masked.count(MASK) == 3
    assert Secret(KEY).redact(text) == masked


def test_websockets_handshake_errors_quoting_the_key_are_masked() -> None:
    """The exceptions websockets raises for a bad handshake response quote the header value:
    an echoed x-goog-api-key appears in their text, and masked text no longer holds it."""
    for exc in (InvalidUpgrade("Upgrade", KEY), InvalidHeaderValue("Sec-WebSocket-Accept", KEY)):
        assert KEY in str(exc)
        assert KEY not in mask_secrets(f"handshake failed ({exc})", Secret(KEY))


@pytest.mark.parametrize(
    "echo",
    [KEY[:20] + "...", "..." + KEY[-15:], f"key={KEY[3:30]}", KEY[5:17]],
)
def test_a_piece_of_the_key_is_masked_too(echo: str) -> None:
    """An echo cut short (a prefix, a suffix, a middle of 12 characters or more) is masked."""
    masked = mask_secrets(f"bad header: {echo} end", KEY)
    assert MASK in masked and masked.endswith(" end")
    assert not any(KEY[i : i + 12] in masked for i in range(len(KEY) - 11))


def test_text_without_secrets_is_unchanged() -> None:
    """Short runs that happen to share a few characters with the key, and texts without any
    secret to mask, come back as they were."""
    text = "HTTP 403: AIza is a prefix, abcdefghij is not enough"
    assert mask_secrets(text, KEY) == text
    assert mask_secrets(text) == text
    assert mask_secrets(text, "") == text
    assert mask_secrets("", KEY) == ""


def test_several_secrets_and_overlapping_values() -> None:
    """Every secret given is masked, a longer one first (so a token containing the key does not
    leave its tail behind)."""
    token = "auth_tokens/" + KEY + "-rest"
    masked = mask_secrets(f"{token} and {KEY}", KEY, Secret(token))
    assert masked == f"{MASK} and {MASK}"


@given(st.text(max_size=200), st.text(max_size=200))
def test_property_the_key_never_survives(before: str, after: str) -> None:
    """Whatever surrounds it, the whole key is never left in the text."""
    assert KEY not in mask_secrets(before + KEY + after, KEY)


def test_a_value_too_short_to_be_a_key_is_not_masked() -> None:
    """A one-letter test key must not turn every "k" of a log line into the mask ("broken" once
    became "bro<redacted>en"); any real key is far longer than MIN_SECRET_CHARS."""
    assert mask_secrets("the link broke: broken pipe", "k") == "the link broke: broken pipe"
    assert mask_secrets("key 12345678 here", "12345678") == f"key {MASK} here"
