"""Field helpers for the configuration dataclasses.

Each setting's checks (range, pattern) live in the dataclass field's metadata, next to its default,
so the reader, the renderer and the annotated config file cannot drift apart.
"""

from __future__ import annotations

from dataclasses import MISSING, field
from typing import Any


def setting(
    default: Any = MISSING,
    *,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    pattern: str | None = None,
    pattern_hint: str = "",
) -> Any:
    """A leaf setting with its default and checks (`ge`/`le` inclusive bounds, `gt` exclusive).

    Without a default the key is required (for entries of arrays of tables).

    `pattern` is a regular expression a string (or each string of a list) must match in full;
    `pattern_hint` says in words what it means, for the error message.
    """
    metadata: dict[str, object] = {}
    if ge is not None:
        metadata["ge"] = ge
    if le is not None:
        metadata["le"] = le
    if gt is not None:
        metadata["gt"] = gt
    if pattern is not None:
        metadata["pattern"] = pattern
        metadata["pattern_hint"] = pattern_hint or f"match {pattern}"
    return field(default=default, metadata=metadata)
