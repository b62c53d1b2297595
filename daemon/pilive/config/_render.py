"""A `Config` written back as TOML: what `pilive check` prints.

The output is itself a valid config that loads to the same values; a set key is shown only as a
comment with its length.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

from pilive.config._reader import is_section, schema_fields, unwrap_optional
from pilive.config._secret import Secret
from pilive.config.model import Config

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def render_toml(config: Config) -> str:
    """The resolved configuration as TOML text, with any secret masked."""
    lines: list[str] = []
    _render_section(config, "", "", lines)
    return "\n".join(lines).strip() + "\n"


def _render_section(obj: Any, prefix: str, header: str, lines: list[str]) -> None:
    """Write `obj`'s keys under `header`; a table with only sub-tables gets no header line."""
    nested: list[tuple[str, Any, Any]] = []
    leaves: list[str] = []
    for f, tp in schema_fields(type(obj)):
        value = getattr(obj, f.name)
        inner, _ = unwrap_optional(tp)
        if is_section(inner) or _is_table_array(inner):
            nested.append((f.name, inner, value))
        elif value is None:
            leaves.append(f"# {f.name} is not set")
        elif isinstance(value, Secret):
            leaves.append(f"# {f.name} = {value!r} (set inline)")
        else:
            leaves.append(f"{f.name} = {toml_value(value)}")
    if leaves:
        lines.extend(["", header] if header else [])
        lines.extend(leaves)
    for name, inner, value in nested:
        dotted = f"{prefix}.{name}" if prefix else name
        if is_section(inner):
            _render_section(value, dotted, f"[{dotted}]", lines)
        else:
            for item in value:
                _render_section(item, dotted, f"[[{dotted}]]", lines)


def _is_table_array(tp: Any) -> bool:
    args = get_args(tp)
    return get_origin(tp) is tuple and bool(args) and is_section(args[0])


def toml_value(value: object) -> str:
    """One TOML value (inline tables for mappings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        # JSON string escapes are TOML basic-string escapes; TOML also forbids a raw DEL.
        return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = [f"{_toml_key(str(k))} = {toml_value(v)}" for k, v in value.items()]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_value(key)
