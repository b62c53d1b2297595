"""The running token service: the aiohttp server, the registry reloader and systemd's notices,
until SIGTERM or SIGINT. `start` is the same service without signals, for an embedding
program or a test."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import ssl
from dataclasses import dataclass

from aiohttp import web

from pilive.config import Secret
from pilive.systemd import Notifier
from pilive.tokenservice.config import TokenServiceConfig, api_ssl_context
from pilive.tokenservice.devices import DeviceRegistry, RegistryError
from pilive.tokenservice.minting import Minter
from pilive.tokenservice.server import TokenService

log = logging.getLogger("pilive.tokenservice")


@dataclass
class RunningService:
    url: str
    """https://host:port (the bound port when the config asks for port 0)."""
    service: TokenService
    _runner: web.AppRunner
    _reloader: asyncio.Task[None]

    async def aclose(self) -> None:
        self._reloader.cancel()
        await asyncio.gather(self._reloader, return_exceptions=True)
        await self._runner.cleanup()
        await self.service.close()


async def start(
    config: TokenServiceConfig, api_key: Secret, server_tls: ssl.SSLContext | None
) -> RunningService:
    """The service listening on `service.listen` (TLS with `server_tls`), minting with
    `api_key`; raises OSError when it cannot listen."""
    registry = DeviceRegistry(config.service.state_directory)
    try:
        await asyncio.to_thread(registry.reload_if_changed)
    except RegistryError as exc:
        log.error("%s", exc)  # answered with 503 until it is readable; the reloader says when
    minter = Minter(
        config.api.endpoint,
        api_key,
        config.token,
        timeout_s=config.api.timeout_s,
        ssl_context=api_ssl_context(config),
    )
    service = TokenService(
        registry,
        minter,
        config.service.state_directory,
        tokens_per_minute=config.limits.tokens_per_minute,
        burst=config.limits.burst,
    )
    runner = web.AppRunner(service.app(), access_log=None)
    await runner.setup()
    try:
        listener = _bind(config.service.host, config.service.port)
        await web.SockSite(runner, listener, ssl_context=server_tls).start()
    except BaseException:
        await runner.cleanup()
        await service.close()
        raise
    reloader = asyncio.create_task(service.run_reloader(), name="registry reloader")
    return RunningService(_url(listener, server_tls is not None), service, runner, reloader)


async def serve(
    config: TokenServiceConfig,
    api_key: Secret,
    server_tls: ssl.SSLContext | None,
    notifier: Notifier,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    running = await start(config, api_key, server_tls)
    try:
        # stdout, for whoever started it by hand (and tests): the bound address.
        print(f"token service listening on {running.url}", flush=True)
        log.info(
            "token service on %s for %d devices; tokens for %s, %g s, new sessions within %g s",
            running.url,
            len(running.service.registry.devices),
            config.token.model,
            config.token.expire_after_s,
            config.token.new_session_window_s,
        )
        notifier.ready(f"serving tokens on {running.url}")
        await stop.wait()
        notifier.stopping("stopping")
    finally:
        await running.aclose()


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that port 0 (any free port) can be reported."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
    except OSError:
        listener.close()
        raise
    return listener


def _url(listener: socket.socket, tls: bool) -> str:
    host, port = listener.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{host}:{port}"
