"""A small JSON-schema validator for tool arguments: the subset the model and the config need.

Supported keywords: type (object, string, integer, number, boolean), properties, required,
additionalProperties (true/false), enum, minimum, maximum, minLength, maxLength, pattern (Python
`re` syntax, matched anywhere in the string as JSON schema says), plus the annotations description
and title. Every node needs a `type`; the top level must be an object. Anything else is refused
when the tool is defined, so a schema never silently means less than its author thinks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

TYPES: tuple[str, ...] = ("object", "string", "integer", "number", "boolean")
_COMMON = frozenset({"type", "enum", "description", "title"})
_ALLOWED: dict[str, frozenset[str]] = {
    "object": _COMMON | {"properties", "required", "additionalProperties"},
    "string": _COMMON | {"minLength", "maxLength", "pattern"},
    "integer": _COMMON | {"minimum", "maximum"},
    "number": _COMMON | {"minimum", "maximum"},
    "boolean": _COMMON,
}


class SchemaError(ValueError):
    """The schema itself is unusable (raised when a tool is defined)."""


class ArgumentError(ValueError):
    """The model's arguments do not match the schema; the message names the argument."""


def check_schema(schema: Mapping[str, Any], where: str = "parameters") -> dict[str, Any]:
    """Check `schema` against the supported subset and return a normalised copy.

    Type names are accepted in any case (Gemini's own examples write "STRING") and stored in
    lower case. `where` prefixes every error, e.g. "tools.lookup.parameters".
    """
    normal = _check_node(schema, where)
    if normal["type"] != "object":
        raise SchemaError(f"{where}: the top level must have type 'object', got {schema['type']!r}")
    return normal


def _check_node(schema: object, where: str) -> dict[str, Any]:
    if not isinstance(schema, Mapping):
        raise SchemaError(f"{where}: expected a schema object, got {schema!r}")
    raw_type = schema.get("type")
    if not isinstance(raw_type, str) or raw_type.lower() not in TYPES:
        raise SchemaError(f"{where}.type: must be one of {TYPES}, got {raw_type!r}")
    kind = raw_type.lower()
    unsupported = sorted(set(schema) - _ALLOWED[kind])
    if unsupported:
        raise SchemaError(
            f"{where}: unsupported keyword(s) {unsupported} for type {kind!r}; "
            f"supported: {sorted(_ALLOWED[kind])}"
        )
    out: dict[str, Any] = dict(schema)
    out["type"] = kind
    for key in ("description", "title"):
        if key in schema and not isinstance(schema[key], str):
            raise SchemaError(f"{where}.{key}: must be a string, got {schema[key]!r}")
    if kind == "object":
        props = schema.get("properties", {})
        if not isinstance(props, Mapping):
            raise SchemaError(f"{where}.properties: must be a table of schemas, got {props!r}")
        out["properties"] = {
            name: _check_node(sub, f"{where}.properties.{name}") for name, sub in props.items()
        }
        required = schema.get("required", [])
        if not isinstance(required, list | tuple) or not all(isinstance(r, str) for r in required):
            raise SchemaError(f"{where}.required: must be a list of names, got {required!r}")
        missing = [r for r in required if r not in out["properties"]]
        if missing:
            raise SchemaError(f"{where}.required: {missing} not in properties")
        if "required" in schema:
            out["required"] = list(required)
        extra = schema.get("additionalProperties", True)
        if not isinstance(extra, bool):
            raise SchemaError(
                f"{where}.additionalProperties: only true or false is supported, got {extra!r}"
            )
    for key in ("minimum", "maximum"):
        if key in schema and not _is_number(schema[key]):
            raise SchemaError(f"{where}.{key}: must be a number, got {schema[key]!r}")
    for key in ("minLength", "maxLength"):
        if key in schema:
            value = schema[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SchemaError(f"{where}.{key}: must be an integer >= 0, got {value!r}")
    if "pattern" in schema:
        pattern = schema["pattern"]
        if not isinstance(pattern, str):
            raise SchemaError(f"{where}.pattern: must be a string, got {pattern!r}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise SchemaError(f"{where}.pattern: {pattern!r} is not a valid regex: {exc}") from None
    if "enum" in schema:
        values = schema["enum"]
        if not isinstance(values, list | tuple) or not values:
            raise SchemaError(f"{where}.enum: must be a non-empty list, got {values!r}")
        for value in values:
            try:
                _validate_node({**out, "enum": None}, value, f"{where}.enum")
            except ArgumentError as exc:
                raise SchemaError(str(exc)) from None
        out["enum"] = list(values)
    return out


def validate(schema: Mapping[str, Any], value: object, where: str = "args") -> Any:
    """Check `value` against a schema that passed check_schema; return it normalised.

    Normalisation: a whole-number float given for an integer becomes an int (function-call args
    travel as a protobuf Struct, whose numbers are doubles).
    """
    return _validate_node(schema, value, where)


def _validate_node(schema: Mapping[str, Any], value: object, where: str) -> Any:
    kind = schema["type"]
    result: Any
    if kind == "object":
        if not isinstance(value, Mapping):
            raise ArgumentError(f"{where}: expected an object, got {_show(value)}")
        props: Mapping[str, Any] = schema.get("properties", {})
        missing = [name for name in schema.get("required", ()) if name not in value]
        if missing:
            raise ArgumentError(f"{where}: missing required argument(s) {missing}")
        if schema.get("additionalProperties", True) is False:
            extra = sorted(str(k) for k in value if k not in props)
            if extra:
                raise ArgumentError(
                    f"{where}: unexpected argument(s) {extra}; allowed: {sorted(props)}"
                )
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ArgumentError(f"{where}: argument names must be strings, got {key!r}")
            sub = props.get(key)
            result[key] = _validate_node(sub, item, f"{where}.{key}") if sub else item
    elif kind == "string":
        if not isinstance(value, str):
            raise ArgumentError(f"{where}: expected a string, got {_show(value)}")
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise ArgumentError(f"{where}: shorter than minLength {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise ArgumentError(f"{where}: longer than maxLength {schema['maxLength']}")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            raise ArgumentError(
                f"{where}: {_show(value)} does not match pattern {schema['pattern']!r}"
            )
        result = value
    elif kind == "integer":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ArgumentError(f"{where}: expected an integer, got {_show(value)}")
        result = value
    elif kind == "number":
        if not _is_number(value) or not math.isfinite(float(value)):  # type: ignore[arg-type]
            raise ArgumentError(f"{where}: expected a finite number, got {_show(value)}")
        result = value
    else:  # boolean
        if not isinstance(value, bool):
            raise ArgumentError(f"{where}: expected true or false, got {_show(value)}")
        result = value
    if kind in ("integer", "number"):
        if "minimum" in schema and result < schema["minimum"]:
            raise ArgumentError(f"{where}: {result!r} is less than the minimum {schema['minimum']}")
        if "maximum" in schema and result > schema["maximum"]:
            raise ArgumentError(
                f"{where}: {result!r} is greater than the maximum {schema['maximum']}"
            )
    enum = schema.get("enum")
    if enum is not None and not any(_same(result, e) for e in enum):
        raise ArgumentError(f"{where}: {_show(result)} is not one of {list(enum)!r}")
    return result


def _same(a: object, b: object) -> bool:
    """JSON equality: 1 == 1.0 but True is not 1."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: object, limit: int = 60) -> str:
    """A short repr for error messages: the model's arguments may be long."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
