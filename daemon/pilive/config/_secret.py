"""`Secret`: a string that never shows itself by accident, and `mask_secrets` for text that
came from elsewhere (an exception quoting a header a server echoed back)."""

from __future__ import annotations

import hmac
import re
from typing import NoReturn

MASK = "<redacted>"
# A run of characters a key or token may be made of (and its neighbours in a header or a query
# string); one holding a piece of a secret at least _MIN_PIECE_CHARS long is masked whole.
_SECRET_RUN = re.compile(r"[A-Za-z0-9_\-./+=%]{12,}")
_MIN_PIECE_CHARS = 12
MIN_SECRET_CHARS = 8
"""A Gemini API key is 39 characters and an ephemeral token longer; shorter values are no key."""


class Secret:
    """Holds a credential; repr, str and format show only its length.

    The value comes out only through `reveal()`, so a key cannot reach a log line, an exception,
    a traceback's locals or a URL by string formatting. Pickling is refused for the same reason.
    `origin` says where the value came from (a file name or variable name, never the value).
    """

    __slots__ = ("_value", "origin")

    _value: str
    origin: str

    def __init__(self, value: str, origin: str = "") -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret value must be str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "origin", origin)

    def reveal(self) -> str:
        """The plain value, for the one place that must send it (the connection header)."""
        return self._value

    def redact(self, text: str) -> str:
        """`text` with this secret masked (see `mask_secrets`)."""
        return mask_secrets(text, self)

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"<secret: {len(self._value)} chars>"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, len(self._value)))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


def mask_secrets(text: str, *secrets: Secret | str) -> str:
    """`text` with every secret replaced by MASK, for any text that did not come from us.

    An exception from the handshake can quote what a server sent back (a header echoing the
    request's `x-goog-api-key`), so its text may hold the key however carefully we format our
    own. Besides every whole occurrence, a run of key-like characters that holds 12 or more
    consecutive characters of a secret (an echo cut short) is masked whole. Secrets shorter
    than `MIN_SECRET_CHARS` are not masked: no real key or token is that short, and masking
    every "k" in a text (a test's key) would only garble it. The cost is linear in the text.
    """
    values = {
        value
        for value in (s.reveal() if isinstance(s, Secret) else s for s in secrets)
        if len(value) >= MIN_SECRET_CHARS
    }
    if not values or not text:
        return text
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    pieces = {
        value[i : i + _MIN_PIECE_CHARS]
        for value in values
        for i in range(len(value) - _MIN_PIECE_CHARS + 1)
    }
    if not pieces:
        return text

    def masked(match: re.Match[str]) -> str:
        run = match.group(0)
        for i in range(len(run) - _MIN_PIECE_CHARS + 1):
            if run[i : i + _MIN_PIECE_CHARS] in pieces:
                return MASK
        return run

    return _SECRET_RUN.sub(masked, text)
