"""The control socket's protocol: one JSON object per line each way, pure data (no I/O).

A request is `{"command": "say", "text": "..."}`; a reply is `{"ok": true, ...}` or
`{"ok": false, "error": "..."}`. JSON lines keep the socket usable from any language or from
`socat` without `pilive ctl`, and one line per request bounds what the daemon reads.

Commands (the `pilive ctl` arguments in brackets): status, press, release, say [TEXT...],
new-conversation, mute [on|off], volume [N]. Every check that names a bad argument is here, so the
daemon and the client refuse the same requests with the same words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

Command = Literal["status", "press", "release", "say", "new-conversation", "mute", "volume"]
COMMANDS: tuple[str, ...] = get_args(Command)

MAX_LINE_BYTES = 8192
"""A request line longer than this is refused without being read whole."""
MAX_SAY_CHARS = 2000
"""Text for `say`: an announcement, not a document (it becomes one realtimeInput.text frame)."""
MAX_SOCKET_PATH_BYTES = 107
"""A Unix socket path is at most 108 bytes, the last one a NUL (sun_path)."""


class RequestError(ValueError):
    """A request that cannot be carried out as written; the message says which part is wrong."""


@dataclass(frozen=True, slots=True)
class Request:
    """One command with its argument: `text` for say, `on` for mute, `percent` for volume."""

    command: Command
    text: str | None = None
    on: bool | None = None
    percent: int | None = None

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"command": self.command}
        if self.text is not None:
            body["text"] = self.text
        if self.on is not None:
            body["on"] = self.on
        if self.percent is not None:
            body["percent"] = self.percent
        return body


def parse_request(line: bytes) -> Request:
    """A request line as the daemon reads it; RequestError names what is wrong."""
    try:
        body = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting fits in a line
        raise RequestError("not a JSON object on one line") from None
    if not isinstance(body, dict):
        raise RequestError("not a JSON object on one line")
    return request_from_json(body)


def request_from_json(body: Mapping[str, Any]) -> Request:
    command = body.get("command")
    if command not in COMMANDS:
        raise RequestError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")
    allowed = {"command", *_ARGUMENT.get(command, ())}
    extra = sorted(str(k) for k in body if k not in allowed)
    if extra:
        raise RequestError(f"{command} takes no {', '.join(extra)}")
    if command == "say":
        return Request("say", text=_say_text(body.get("text")))
    if command == "mute":
        on = body.get("on")
        if not isinstance(on, bool):
            raise RequestError(f"mute needs on = true or false, got {on!r}")
        return Request("mute", on=on)
    if command == "volume":
        return Request("volume", percent=_percent(body.get("percent")))
    return Request(command)


_ARGUMENT: dict[str, tuple[str, ...]] = {"say": ("text",), "mute": ("on",), "volume": ("percent",)}


def _say_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise RequestError("say needs some text")
    if len(text) > MAX_SAY_CHARS:
        raise RequestError(f"say takes at most {MAX_SAY_CHARS} characters, got {len(text)}")
    return text.strip()


def _percent(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise RequestError(f"volume needs a whole number from 0 to 100, got {value!r}")
    return value


def request_from_argv(argv: Sequence[str]) -> Request:
    """`pilive ctl` arguments -> a request: `say hello there`, `mute on`, `volume 40`."""
    if not argv:
        raise RequestError(f"name a command: {', '.join(COMMANDS)}")
    command, *rest = argv
    if command == "say":
        return request_from_json({"command": "say", "text": " ".join(rest)})
    if command == "mute":
        if rest not in (["on"], ["off"]):
            raise RequestError("mute takes on or off")
        return Request("mute", on=rest == ["on"])
    if command == "volume":
        if len(rest) != 1 or not rest[0].isdigit():
            raise RequestError("volume takes one whole number from 0 to 100")
        return Request("volume", percent=_percent(int(rest[0])))
    if command in COMMANDS:
        if rest:
            raise RequestError(f"{command} takes no arguments")
        return request_from_json({"command": command})
    raise RequestError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")


def encode(message: Mapping[str, object]) -> bytes:
    """One line of compact JSON (request or reply); non-ASCII stays readable."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def ok(**fields: object) -> dict[str, object]:
    return {"ok": True, **fields}


def refused(error: str) -> dict[str, object]:
    return {"ok": False, "error": error}
