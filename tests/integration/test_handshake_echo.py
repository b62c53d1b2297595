"""A server that echoes the API key back in its handshake response: the daemon's journal and
its systemd STATUS never show the key (the handshake error is masked before it is said)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from tests.support.daemon_rig import DaemonProcess, NotifySocket, daemon_toml, noise_wav

KEY = "AIzaSyD-echoedKey_0123456789abcdefghijk"


class EchoingServer:
    """Answers every WebSocket upgrade with a 101 whose Upgrade header is the request's
    x-goog-api-key, which websockets quotes in the error it raises."""

    def __init__(self) -> None:
        self.attempts = 0
        self.heard_key = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> EchoingServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            request = await reader.readuntil(b"\r\n\r\n")
            echoed = b""
            for line in request.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"x-goog-api-key":
                    echoed = value.strip()
            self.attempts += 1
            if echoed == KEY.encode():
                self.heard_key.set()
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: "
                + echoed
                + b"\r\nConnection: Upgrade\r\nX-Goog-Api-Key: "
                + echoed
                + b"\r\n\r\n"
            )
            await writer.drain()
        writer.close()


async def test_key_echoed_in_the_handshake_never_reaches_the_log_or_status(
    tmp_path: Path,
) -> None:
    """The server sends the key back in the Upgrade header (websockets then raises an error
    quoting it) on every connection attempt; after several attempts, at debug log level, the
    key appears neither in the daemon's log nor in any STATUS it sent."""
    async with EchoingServer() as server:
        config = tmp_path / "pilive.toml"
        config.write_text(
            daemon_toml(
                endpoint=server.url,
                api_key=KEY,
                mic_wav=noise_wav(tmp_path / "mic.wav", 5.0),
                state_dir=tmp_path / "state",
                camera_mode="off",
                log_level="debug",
            )
        )
        notify = NotifySocket(tmp_path / "notify.sock")
        daemon = DaemonProcess(config, tmp_path / "daemon.log", notify)
        await daemon.start()
        try:
            await notify.wait_for("READY=1", 30)
            async with asyncio.timeout(30):
                await server.heard_key.wait()
                while server.attempts < 3 or not any("handshake" in s for s in notify.statuses()):
                    await asyncio.sleep(0.05)
        finally:
            code = await daemon.stop()
            notify.close()
    log = daemon.log_text()
    assert code == 0, log[-2000:]
    assert "handshake" in log
    assert KEY not in log
    assert not [s for s in notify.statuses() if KEY in s or KEY[:12] in s]
