"""`Secret`: a string that never shows itself by accident."""

from __future__ import annotations

import hmac
from typing import NoReturn


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
