"""The control socket's protocol: what `pilive ctl` and the daemon accept, and the words they use
for what they refuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pilive.config import ConfigError, parse_config
from pilive.control.protocol import (
    MAX_SAY_CHARS,
    Request,
    RequestError,
    encode,
    parse_request,
    request_from_argv,
)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["status"], Request("status")),
        (["press"], Request("press")),
        (["release"], Request("release")),
        (["new-conversation"], Request("new-conversation")),
        (["say", "the", "tea", "is", "ready"], Request("say", text="the tea is ready")),
        (["mute", "on"], Request("mute", on=True)),
        (["mute", "off"], Request("mute", on=False)),
        (["volume", "0"], Request("volume", percent=0)),
        (["volume", "100"], Request("volume", percent=100)),
    ],
)
def test_each_command_goes_over_the_wire_and_back_unchanged(
    argv: list[str], expected: Request
) -> None:
    """Every `pilive ctl` form becomes one JSON line that the daemon reads back as the same
    request."""
    request = request_from_argv(argv)
    assert request == expected
    line = encode(request.to_json())
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert parse_request(line) == expected


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "name a command"),
        (["shout"], "unknown command 'shout'"),
        (["say"], "say needs some text"),
        (["say", "  "], "say needs some text"),
        (["mute"], "mute takes on or off"),
        (["mute", "yes"], "mute takes on or off"),
        (["volume", "101"], "from 0 to 100, got 101"),
        (["volume", "-3"], "volume takes one whole number"),
        (["volume", "loud"], "volume takes one whole number"),
        (["status", "now"], "status takes no arguments"),
    ],
)
def test_the_client_refuses_bad_arguments_by_name(argv: list[str], says: str) -> None:
    """A bad command line is refused before anything is sent, saying which part is wrong."""
    with pytest.raises(RequestError, match=says):
        request_from_argv(argv)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b"status\n", "not a JSON object"),
        (b"[1, 2]\n", "not a JSON object"),
        (b"\xff\xfe\n", "not a JSON object"),
        (b'{"command": "reboot"}\n', "unknown command 'reboot'"),
        (b'{"command": "press", "text": "x"}\n', "press takes no text"),
        (b'{"command": "mute", "on": "yes"}\n', "mute needs on = true or false"),
        (b'{"command": "volume", "percent": true}\n', "whole number from 0 to 100"),
        (b'{"command": "volume", "percent": 50.5}\n', "whole number from 0 to 100"),
        (b'{"command": "say", "text": 7}\n', "say needs some text"),
        # Nested deeper than the JSON decoder recurses, within MAX_LINE_BYTES.
        (b"[" * 8000 + b"\n", "not a JSON object"),
        (b'{"command": "status", "x": ' + b"[" * 8000 + b"\n", "not a JSON object"),
    ],
)
def test_the_daemon_refuses_malformed_requests_by_name(line: bytes, says: str) -> None:
    """Whatever a script sends, the daemon's parser names the fault instead of raising anything
    but RequestError."""
    with pytest.raises(RequestError, match=says):
        parse_request(line)


def test_say_text_is_bounded() -> None:
    """An announcement has a length limit, so one request cannot become an unbounded frame."""
    assert parse_request(encode({"command": "say", "text": "x" * MAX_SAY_CHARS})).text
    with pytest.raises(RequestError, match=f"at most {MAX_SAY_CHARS}"):
        parse_request(encode({"command": "say", "text": "x" * (MAX_SAY_CHARS + 1)}))


def test_non_ascii_text_stays_readable_on_the_wire() -> None:
    """Text in any language goes over as UTF-8 JSON, not as escapes."""
    line = encode(Request("say", text="Der Tee ist fertig, schön").to_json())
    assert "schön".encode() in line
    assert json.loads(line)["text"] == "Der Tee ist fertig, schön"


def test_the_socket_defaults_to_systemds_runtime_directory(tmp_path: Path) -> None:
    """Unset, control.socket is where the unit's RuntimeDirectory= puts it; set, it is the
    file's path (relative to the config file); a path too long for a socket is a config fault."""
    unset = parse_config("", environ={"RUNTIME_DIRECTORY": "/run/pilive"})
    assert unset.control.socket == Path("/run/pilive/control.sock")
    assert parse_config("", environ={}).control.socket == Path("/run/pilive/control.sock")
    chosen = parse_config(
        '[control]\nsocket = "ctl.sock"\n',
        base_dir=tmp_path,
        environ={"RUNTIME_DIRECTORY": "/run/pilive"},
    )
    assert chosen.control.socket == tmp_path / "ctl.sock"
    with pytest.raises(ConfigError, match=r"control\.socket = .*longer than a Unix socket path"):
        parse_config(f'[control]\nsocket = "/{"x" * 120}.sock"\n', environ={})
