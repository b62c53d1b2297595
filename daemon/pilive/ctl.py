"""`pilive ctl`: talk to the running daemon through its control socket.

    pilive ctl status                  the state as JSON (state, link, mute, volume, timers, ...)
    pilive ctl press | release         the talk button, as if pressed
    pilive ctl say TEXT...             a typed turn: the model speaks about TEXT (while the
                                       speaker is busy or offline it waits, and says so: up
                                       to 8, 5 minutes each)
    pilive ctl new-conversation
    pilive ctl mute on|off
    pilive ctl volume N                0-100

The socket is `control.socket` of the configuration (default /run/pilive/control.sock), or
--socket. Using it takes write permission on the socket: root, the pilive user, or a member of
the pilive group. Exit status: 0 done, 1 refused by the daemon, 2 bad arguments or no daemon.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path

from pilive.cli import add_config_argument
from pilive.config import ConfigError, load_config
from pilive.control.protocol import (
    COMMANDS,
    MAX_LINE_BYTES,
    RequestError,
    encode,
    request_from_argv,
)

EXIT_REFUSED = 1
EXIT_USAGE = 2
TIMEOUT_S = 10.0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--socket", type=Path, metavar="PATH", help="the control socket (default: from --config)"
    )
    parser.add_argument("command", metavar="COMMAND", help=", ".join(COMMANDS))
    parser.add_argument("arguments", nargs="*", metavar="ARG", help="say TEXT, mute on|off, ...")


def run(args: argparse.Namespace) -> int:
    try:
        request = request_from_argv([args.command, *args.arguments])
    except RequestError as exc:
        print(f"pilive ctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    path = args.socket
    if path is None:
        try:
            path = load_config(args.config if args.config.exists() else None).control.socket
        except ConfigError as exc:
            print(f"pilive ctl: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        reply = exchange(path, encode(request.to_json()))
    except OSError as exc:
        print(f"pilive ctl: cannot reach the daemon at {path}: {_why(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if not reply.get("ok"):
        print(f"pilive ctl: {reply.get('error', 'refused')}", file=sys.stderr)
        return EXIT_REFUSED
    if request.command == "status":
        print(json.dumps(reply.get("status"), indent=2, ensure_ascii=False))
    elif request.command == "say" and reply.get("queued"):
        print(
            f"queued ({reply['queued']} waiting: {reply.get('waiting_for')}); "
            "it is said once the speaker is free"
        )
    return 0


def exchange(path: Path, line: bytes) -> dict[str, object]:
    """Send one request line, read one reply line (blocking: this is a short-lived command)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT_S)
        sock.connect(str(path))
        sock.sendall(line)
        received = bytearray()
        while not received.endswith(b"\n") and len(received) <= 64 * MAX_LINE_BYTES:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    try:
        reply = json.loads(received)
    except ValueError:
        raise OSError(f"the daemon's reply was not JSON: {bytes(received[:80])!r}") from None
    if not isinstance(reply, dict):
        raise OSError("the daemon's reply was not a JSON object")
    return reply


def _why(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such socket (is pilive running, with control.enabled = true?)"
    if isinstance(exc, PermissionError):
        return "permission denied (use sudo, or join the pilive group)"
    if isinstance(exc, ConnectionRefusedError):
        return "nobody listens there (pilive is not running)"
    return exc.strerror or str(exc)
