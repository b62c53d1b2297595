"""The daemon's end of the control socket: a Unix stream socket, never a network port.

Who may talk to it is decided by the file system: the socket is created mode 0660 (owner and
group of the service, pilive:pilive under systemd) in the runtime directory (0750), so the service
user, root and members of the pilive group can use it and nobody else can. Each request is logged
with the peer's uid (SO_PEERCRED), so the journal says who pressed or muted.

Whatever a client does, the daemon stays bounded: at most `MAX_CLIENTS` connections at once, a
line longer than `MAX_LINE_BYTES` is refused, a client idle for `IDLE_TIMEOUT_S` is dropped, and a
reply that cannot be written within `WRITE_TIMEOUT_S` (a client that does not read) ends it.
Requests are answered on the event loop by a plain function: none of them waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
import struct
from collections.abc import Callable
from pathlib import Path

from pilive.control.protocol import (
    MAX_LINE_BYTES,
    MAX_SOCKET_PATH_BYTES,
    Request,
    RequestError,
    encode,
    parse_request,
    refused,
)

log = logging.getLogger("pilive.control")

SOCKET_MODE = 0o660
DIRECTORY_MODE = 0o750
MAX_CLIENTS = 8
IDLE_TIMEOUT_S = 60.0
WRITE_TIMEOUT_S = 5.0

Handler = Callable[[Request], dict[str, object]]


class ControlSocketError(Exception):
    """The socket cannot be opened where configured (the message says why); talking goes on."""


class ControlServer:
    """Listens on `path` and answers each request line with `handler(request)`."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self.requests = 0

    async def start(self) -> None:
        """Bind and listen; ControlSocketError when the path is unusable or another daemon
        answers on it."""
        if len(os.fsencode(self.path)) > MAX_SOCKET_PATH_BYTES:
            raise ControlSocketError(
                f"{self.path} is longer than a Unix socket path may be "
                f"({MAX_SOCKET_PATH_BYTES} bytes)"
            )
        await asyncio.to_thread(self._clear_stale)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # Linux gives the socket's file the mode of the socket itself (less the umask): set
            # before bind, the file is never wider than SOCKET_MODE, not even for an instant.
            os.fchmod(listener.fileno(), SOCKET_MODE)
            listener.bind(os.fspath(self.path))
            os.chmod(self.path, SOCKET_MODE)  # and not narrower: the umask may have cut group
            self._server = await asyncio.start_unix_server(
                self._serve, sock=listener, limit=MAX_LINE_BYTES
            )
        except OSError as exc:
            listener.close()
            await self.aclose()
            raise ControlSocketError(f"cannot listen on {self.path}: {_reason(exc)}") from None
        log.info("control socket listening on %s", self.path)

    def _clear_stale(self) -> None:
        """Make the directory if missing; remove a socket a crashed daemon left behind, but
        never a live one or anything that is not a socket."""
        try:
            self.path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ControlSocketError(f"cannot use {self.path}: {_reason(exc)}") from None
        if not stat.S_ISSOCK(st.st_mode):
            raise ControlSocketError(f"{self.path} exists and is not a socket; not replacing it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(str(self.path))
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise ControlSocketError(f"cannot use {self.path}: {_reason(exc)}") from None
            self.path.unlink(missing_ok=True)  # nobody listens: left by a daemon that died
        else:
            raise ControlSocketError(f"another pilive already listens on {self.path}")
        finally:
            probe.close()

    async def aclose(self) -> None:
        """Stop listening, drop the clients and remove the socket file."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._clients) >= MAX_CLIENTS:
            await _reply_and_close(writer, refused(f"busy: {MAX_CLIENTS} clients are connected"))
            return
        self._clients.add(task)
        uid = _peer_uid(writer)
        try:
            await self._conversation(reader, writer, uid)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away or stopped reading: nothing to tell it
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(WRITE_TIMEOUT_S):
                    await writer.wait_closed()

    async def _conversation(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, uid: int | None
    ) -> None:
        while True:
            try:
                async with asyncio.timeout(IDLE_TIMEOUT_S):
                    line = await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                await _reply_and_close(
                    writer, refused(f"request longer than {MAX_LINE_BYTES} bytes")
                )
                return
            except asyncio.IncompleteReadError as exc:
                if not exc.partial.strip():
                    return  # closed between requests
                line = exc.partial  # a last request without its newline
            reply = self._answer(line, uid)
            writer.write(encode(reply))
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await writer.drain()

    def _answer(self, line: bytes, uid: int | None) -> dict[str, object]:
        try:
            request = parse_request(line)
        except RequestError as exc:
            return refused(str(exc))
        self.requests += 1
        if request.command != "status":  # status is polled by scripts: not worth a line each
            log.info("control: %s from uid %s", request.command, "?" if uid is None else uid)
        return self._handler(request)


async def _reply_and_close(writer: asyncio.StreamWriter, reply: dict[str, object]) -> None:
    writer.write(encode(reply))
    with contextlib.suppress(ConnectionError, TimeoutError):
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await writer.drain()
    writer.close()


_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    try:
        _pid, uid, _gid = _UCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        )
    except OSError:
        return None
    return int(uid)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
