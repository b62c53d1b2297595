"""TOML tables -> the schema's dataclasses, checking every key, type, range and pattern.

The reader walks the dataclasses' type hints, so the schema in `model` is the single source of
truth. It collects every problem instead of stopping at the first, so `pilive check` shows them
all at once.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, Field, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from pilive.config._secret import Secret

_MAX_SHOWN_CHARS = 60
# An unknown key whose name (or suggested name) has one of these words may hold a credential.
_SECRET_WORDS = ("key", "secret", "token", "pass", "cred")
# What a Google API key looks like: never shown, whatever key it was put under.
_GOOGLE_KEY = re.compile(r"AIza[0-9A-Za-z_-]{10,}")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a configuration: where (file, dotted key), what value, and why."""

    source: str
    key: str
    value: str
    message: str

    def __str__(self) -> str:
        if not self.key:
            return f"{self.source}: {self.message}"
        if not self.value:
            return f"{self.source}: {self.key}: {self.message}"
        return f"{self.source}: {self.key} = {self.value}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used. `problems` lists each fault; str() shows them all."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, source: str, key: str, value: str, message: str) -> ConfigError:
        return cls([Problem(source, key, value, message)])


def show_value(value: object, *, secret: bool = False) -> str:
    """A short TOML-like rendering of a bad value for an error message (secrets masked)."""
    if secret or (isinstance(value, str) and _GOOGLE_KEY.search(value)):
        return "<secret>"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k} = {show_value(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join(show_value(v) for v in value) + "]"
    else:
        text = str(value)
    if len(text) > _MAX_SHOWN_CHARS:
        text = text[: _MAX_SHOWN_CHARS - 1] + "…"
    return text


def join_key(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


_HINTS: dict[type[Any], dict[str, Any]] = {}
_ALL_KEYS: dict[type[Any], tuple[str, ...]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def schema_fields(cls: type[Any]) -> Iterator[tuple[Field[Any], Any]]:
    """Each dataclass field with its resolved type."""
    hints = _hints(cls)
    for f in fields(cls):
        yield f, hints[f.name]


def is_section(tp: Any) -> bool:
    return isinstance(tp, type) and is_dataclass(tp)


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """(inner type, whether None is allowed) for `X | None`."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0], True
    return tp, False


def all_keys(cls: type[Any]) -> tuple[str, ...]:
    """Every dotted key of the schema, for suggestions across sections."""
    if cls not in _ALL_KEYS:
        _ALL_KEYS[cls] = _collect_keys(cls, "")
    return _ALL_KEYS[cls]


def _collect_keys(cls: type[Any], prefix: str) -> tuple[str, ...]:
    keys: list[str] = []
    for f, tp in schema_fields(cls):
        inner, _ = unwrap_optional(tp)
        dotted = join_key(prefix, f.name)
        keys.append(dotted)
        if is_section(inner):
            keys.extend(_collect_keys(inner, dotted))
        elif get_origin(inner) is tuple and is_section(get_args(inner)[0]):
            keys.extend(_collect_keys(get_args(inner)[0], dotted))
    return tuple(keys)


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    matches = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return matches[0] if matches else None


class Reader:
    """Converts one parsed TOML document, collecting problems as it goes."""

    def __init__(self, source: str, root: type[Any], resolve_path: Callable[[str], Path]) -> None:
        self.source = source
        self.root = root
        self.problems: list[Problem] = []
        self._resolve_path = resolve_path

    def problem(self, key: str, value: object, message: str, *, secret: bool = False) -> None:
        shown = "" if value is MISSING else show_value(value, secret=secret)
        self.problems.append(Problem(self.source, key, shown, message))

    def read_section(self, cls: type[Any], table: Mapping[str, Any], prefix: str) -> Any:
        """Build `cls` from `table`; a bad field keeps its default so reading can go on."""
        known = {f.name for f in fields(cls)}
        for key, value in table.items():
            if key not in known:
                self._unknown_key(prefix, key, value, sorted(known))
        kwargs: dict[str, Any] = {}
        missing = False
        for f, tp in schema_fields(cls):
            dotted = join_key(prefix, f.name)
            if f.name not in table:
                if f.default is MISSING and f.default_factory is MISSING:
                    self.problem(dotted, MISSING, "is required")
                    missing = True
                continue
            ok, value = self._convert(tp, table[f.name], dotted, f.metadata)
            if ok:
                kwargs[f.name] = value
            elif f.default is MISSING and f.default_factory is MISSING:
                missing = True
        if missing:
            return None
        return cls(**kwargs)

    def _unknown_key(self, prefix: str, key: str, value: object, known: list[str]) -> None:
        hint = suggest(key, known)
        if hint is not None:
            where = f"did you mean {join_key(prefix, hint)}?"
        else:
            # The right key in the wrong table: chunk_ms under [audio] instead of [audio.input].
            elsewhere = [k for k in all_keys(self.root) if k.rsplit(".", 1)[-1] == key]
            if elsewhere:
                where = f"it belongs in {' or '.join(elsewhere)}"
            else:
                where = "valid keys here: " + ", ".join(known)
        secret = any(word in (key + where).lower() for word in _SECRET_WORDS)
        self.problem(join_key(prefix, key), value, f"unknown key; {where}", secret=secret)

    def _convert(self, tp: Any, value: Any, key: str, meta: Mapping[str, Any]) -> tuple[bool, Any]:
        """(ok, converted value); on failure a problem has been recorded."""
        tp, _ = unwrap_optional(tp)
        origin = get_origin(tp)
        if is_section(tp):
            if not isinstance(value, dict):
                self.problem(key, value, "must be a table")
                return False, None
            before = len(self.problems)
            built = self.read_section(tp, value, key)
            return len(self.problems) == before, built
        if origin is tuple:
            return self._convert_tuple(tp, value, key, meta)
        if origin is Literal:
            choices = [str(c) for c in get_args(tp)]
            if not isinstance(value, str) or value not in choices:
                hint = suggest(value, choices) if isinstance(value, str) else None
                extra = f"; did you mean {json.dumps(hint)}?" if hint else ""
                allowed = ", ".join(json.dumps(c) for c in choices)
                self.problem(key, value, f"must be one of {allowed}{extra}")
                return False, None
            return True, value
        if tp is Secret:
            if not isinstance(value, str):
                self.problem(key, value, "must be a string", secret=True)
                return False, None
            return True, Secret(value, origin=f"{self.source}: {key}")
        if origin is Mapping or tp is Mapping:
            return self._convert_json_table(value, key)
        return self._convert_scalar(tp, value, key, meta)

    def _convert_tuple(
        self, tp: Any, value: Any, key: str, meta: Mapping[str, Any]
    ) -> tuple[bool, Any]:
        args = get_args(tp)
        if not isinstance(value, list):
            self.problem(key, value, "must be an array")
            return False, None
        if len(args) == 2 and args[1] is Ellipsis:
            item_types = [args[0]] * len(value)
        else:
            item_types = list(args)
            if len(value) != len(args):
                self.problem(key, value, f"must be an array of {len(args)} values")
                return False, None
        items: list[Any] = []
        ok = True
        for index, (item_tp, item) in enumerate(zip(item_types, value, strict=True)):
            item_ok, converted = self._convert(item_tp, item, f"{key}[{index}]", meta)
            ok = ok and item_ok
            items.append(converted)
        return ok, tuple(items)

    def _convert_json_table(self, value: Any, key: str) -> tuple[bool, Any]:
        """A free-form table (a JSON schema) that must survive json.dumps unchanged."""
        if not isinstance(value, dict):
            self.problem(key, value, "must be a table")
            return False, None

        def plain(item: Any, where: str) -> bool:
            if isinstance(item, dict):
                return all(plain(v, join_key(where, str(k))) for k, v in item.items())
            if isinstance(item, list):
                return all(plain(v, f"{where}[{i}]") for i, v in enumerate(item))
            if isinstance(item, float) and not math.isfinite(item):
                self.problem(where, item, "must be a finite number")
                return False
            if item is None or isinstance(item, str | int | float | bool):
                return True
            self.problem(where, item, "must be a JSON value (no dates or times)")
            return False

        return (plain(value, key), value)

    def _convert_scalar(
        self, tp: Any, value: Any, key: str, meta: Mapping[str, Any]
    ) -> tuple[bool, Any]:
        if tp is bool:
            if not isinstance(value, bool):
                self.problem(key, value, "must be true or false")
                return False, None
            return True, value
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self.problem(key, value, "must be a whole number")
                return False, None
            return self._check_range(value, key, meta)
        if tp is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.problem(key, value, "must be a number")
                return False, None
            if not math.isfinite(value):
                self.problem(key, value, "must be a finite number")
                return False, None
            ok, _ = self._check_range(value, key, meta)
            return ok, float(value) if ok else None
        if tp is str:
            if not isinstance(value, str):
                self.problem(key, value, "must be a string")
                return False, None
            pattern = meta.get("pattern")
            if pattern is not None and re.fullmatch(pattern, value) is None:
                self.problem(key, value, f"must {meta['pattern_hint']}")
                return False, None
            return True, value
        if tp is Path:
            if not isinstance(value, str) or not value.strip():
                self.problem(key, value, "must be a path (a non-empty string)")
                return False, None
            if "\x00" in value:
                self.problem(key, value, "must not contain a NUL character")
                return False, None
            return True, self._resolve_path(value)
        raise TypeError(f"schema type {tp!r} at {key} has no reader")

    def _check_range(self, value: float, key: str, meta: Mapping[str, Any]) -> tuple[bool, Any]:
        ge, le, gt = meta.get("ge"), meta.get("le"), meta.get("gt")
        low_ok = (ge is None or value >= ge) and (gt is None or value > gt)
        high_ok = le is None or value <= le
        if low_ok and high_ok:
            return True, value
        self.problem(key, value, f"must be {describe_range(meta)}")
        return False, None


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def describe_range(meta: Mapping[str, Any]) -> str:
    ge, le, gt = meta.get("ge"), meta.get("le"), meta.get("gt")
    if gt is not None and le is not None:
        return f"more than {_num(gt)} and at most {_num(le)}"
    if ge is not None and le is not None:
        return f"between {_num(ge)} and {_num(le)}"
    if gt is not None:
        return f"more than {_num(gt)}"
    if ge is not None:
        return f"at least {_num(ge)}"
    return f"at most {_num(le)}" if le is not None else "in range"
