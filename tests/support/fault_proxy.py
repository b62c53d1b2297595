"""A TCP proxy on 127.0.0.1 that injects network faults between the daemon and the emulator.

The kernel on the build machines has no netem, so loss of the network is played here: cut every
connection with a reset, stall silently (bytes stop flowing both ways while the sockets stay open,
as when Wi-Fi drops behind a NAT), delay each chunk, or refuse new connections for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from types import TracebackType


class FaultProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target_port`, with faults switched on demand."""

    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.connections_accepted = 0
        self.connections_refused = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._refusing = False
        self.delay_s = 0.0

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._flowing.set()
        if self._server is not None:
            self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stall(self) -> None:
        """Stop forwarding in both directions; sockets stay open (a silent dead peer)."""
        self._flowing.clear()

    def unstall(self) -> None:
        self._flowing.set()

    def cut(self) -> None:
        """Reset every open connection (RST, no close frame: the client sees 1006)."""
        for writer in list(self._writers):
            _reset(writer)
        self._writers.clear()

    def refuse(self, refusing: bool) -> None:
        """While refusing, new connections are reset at once, like a closed port."""
        self._refusing = refusing

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            self.connections_refused += 1
            _reset(writer)
            return
        self.connections_accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            _reset(writer)
            return
        self._writers.update((writer, up_writer))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                await self._flowing.wait()
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                if dst.is_closing():
                    break
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if dst in self._writers:
                self._writers.discard(dst)
                dst.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    # SO_LINGER with a zero timeout turns close() into an RST instead of an orderly FIN.
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()
