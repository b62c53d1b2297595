"""One real setup handshake with the configured endpoint, key and model: `pilive check --online`.

It runs the daemon's own link (the same URL, header, TLS and setup message) until the first
verdict: `setupComplete` (the key and model work), a configuration fault (1007/1008: the server
named what it refused), or a network failure. It sends no audio and keeps no conversation.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pilive import wiring
from pilive.config import Config, Secret
from pilive.live.events import LinkState
from pilive.live.session import LiveSession
from pilive.net.connection import LinkStatus, LiveLink


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    detail: str


async def probe(config: Config, api_key: Secret, timeout_s: float | None = None) -> ProbeResult:
    """Connect once and report; never retries (a fault or failure is the answer)."""
    verdict: asyncio.Future[LinkStatus] = asyncio.get_running_loop().create_future()

    def on_status(status: LinkStatus) -> None:
        if status.state is not LinkState.CONNECTING and not verdict.done():
            verdict.set_result(status)

    key, tokens = wiring.link_credentials(config, api_key)
    link = LiveLink(
        LiveSession(wiring.setup_options(config)),
        key,
        wiring.link_options(config),
        on_event=lambda event: None,
        on_status=on_status,
        tokens=tokens,
    )
    task = asyncio.create_task(link.run())
    limit_s = timeout_s if timeout_s is not None else config.connection.connect_timeout_s + 5
    try:
        status = await asyncio.wait_for(verdict, limit_s)
    except TimeoutError:
        return ProbeResult(False, f"no answer within {limit_s:.0f} s")
    finally:
        link.stop()
        await task
    if status.state is LinkState.CONNECTED:
        return ProbeResult(
            True, f"setup accepted by {config.live.endpoint} for {config.live.model}"
        )
    return ProbeResult(False, status.detail or status.state.value)
