"""The fault proxy itself: it must forward faithfully and inject each fault it claims to."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.fault_proxy import FaultProxy


async def _echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def test_forwards_bytes_in_order() -> None:
    """Bytes pass through unchanged and in order in both directions."""
    server = await _echo_server()
    async with server, FaultProxy(server.sockets[0].getsockname()[1]) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        payload = bytes(range(256)) * 400
        writer.write(payload)
        await writer.drain()
        assert await reader.readexactly(len(payload)) == payload
        writer.close()


async def test_stall_stops_traffic_until_unstalled() -> None:
    """While stalled nothing arrives, the socket stays open; after unstall the data arrives."""
    server = await _echo_server()
    async with server, FaultProxy(server.sockets[0].getsockname()[1]) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        proxy.stall()
        writer.write(b"ping")
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(4), 0.3)
        proxy.unstall()
        assert await asyncio.wait_for(reader.readexactly(4), 2) == b"ping"
        writer.close()


async def test_cut_resets_the_connection() -> None:
    """cut() ends open connections abruptly: the client sees a reset or EOF, not a hang."""
    server = await _echo_server()
    async with server, FaultProxy(server.sockets[0].getsockname()[1]) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"x")
        await reader.readexactly(1)
        proxy.cut()
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(reader.readexactly(1), 2)
        writer.close()


async def test_refuse_resets_new_connections_and_counts_them() -> None:
    """While refusing, a new connection is reset at once; afterwards connections work again."""
    server = await _echo_server()
    async with server, FaultProxy(server.sockets[0].getsockname()[1]) as proxy:
        proxy.refuse(True)
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(reader.readexactly(1), 2)
        writer.close()
        assert proxy.connections_refused == 1
        proxy.refuse(False)
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"ok")
        assert await asyncio.wait_for(reader.readexactly(2), 2) == b"ok"
        writer.close()
