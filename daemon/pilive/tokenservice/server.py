"""The token service's HTTP side: `POST /v1/token` for devices, on aiohttp.

A device sends `Authorization: Bearer NAME.SECRET` (its credential; never in the URL) and an
empty body, and gets `{"token", "expireTime", "newSessionExpireTime", "expiresInS",
"newSessionExpiresInS", "uses"}` (the relative times spare a device with a wrong clock).
Answers: 401 for a missing, malformed or unknown credential, 403 for a revoked device, 429 with
`Retry-After` past the device's rate limit, 502 when the API gave no token, 503 when the device
registry cannot be read. Every request of a device leaves one audit line, in the journal and in
`audit.log` (JSON lines) in the state directory: the device, the time, the outcome and the
token's expiry, never the token or the credential. Requests without a known credential go to the
journal only, a line a minute (anyone can send them; the disk must not fill), and `audit.log`
is rotated at `AUDIT_MAX_BYTES` (one old file kept). The registry is reloaded within
`RELOAD_INTERVAL_S` of a change (add-device, revoke-device).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pilive.ratelimit import LogLimiter, TokenBucket
from pilive.tokenservice.devices import DeviceRegistry, RegistryError
from pilive.tokenservice.minting import Minter, MintError, rfc3339

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("pilive.tokenservice")
audit_log = logging.getLogger("pilive.tokenservice.audit")

TOKEN_PATH = "/v1/token"  # noqa: S105 - a URL path, not a secret
AUDIT_FILE = "audit.log"
AUDIT_MAX_BYTES = 16 * 1024 * 1024
RELOAD_INTERVAL_S = 2.0
_MAX_BUCKETS = 10_000  # a bound whatever happens; one per registered device in practice


@dataclass
class ServiceCounters:
    issued: int = 0
    refused: dict[str, int] = field(default_factory=dict)


class TokenService:
    """Devices -> tokens. `app()` is the aiohttp application; `run_reloader()` keeps the
    registry current; `close()` ends the upstream session."""

    def __init__(
        self,
        registry: DeviceRegistry,
        minter: Minter,
        state_directory: Path,
        *,
        tokens_per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.minter = minter
        self.audit_path = state_directory / AUDIT_FILE
        self.counters = ServiceCounters()
        self._rate_per_s = tokens_per_minute / 60.0
        self._burst = burst
        self._clock = clock
        self._wall_clock = wall_clock
        self._buckets: dict[str, TokenBucket] = {}
        self._audit_lock = asyncio.Lock()
        self._strangers = LogLimiter(60.0, clock)
        self._registry_problem: str | None = None

    def app(self) -> web.Application:
        from aiohttp import web  # noqa: PLC0415 - the service's dependency, not the daemon's

        application = web.Application(client_max_size=4096)
        application.router.add_post(TOKEN_PATH, self._token)
        return application

    async def run_reloader(self) -> None:
        """Reload the registry when its file changes (stat on a worker thread)."""
        while True:
            try:
                if await asyncio.to_thread(self.registry.reload_if_changed):
                    log.info("device registry loaded: %d devices", len(self.registry.devices))
                self._registry_problem = None
            except RegistryError as exc:
                if self._registry_problem != str(exc):
                    log.error("%s", exc)
                self._registry_problem = str(exc)
            await asyncio.sleep(RELOAD_INTERVAL_S)

    async def close(self) -> None:
        await self.minter.close()

    # -- the request ----------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web  # noqa: PLC0415

        peer = request.remote or "?"
        if self._registry_problem is not None:
            return await self._refuse(503, "device registry unavailable", "", peer)
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return await self._refuse(401, "no device credential", "", peer)
        device, why = self.registry.verify(credential.strip())
        if device is None:
            return await self._refuse(
                403 if why == "revoked" else 401,
                "device revoked" if why == "revoked" else "unknown device credential",
                credential.partition(".")[0] if why == "revoked" else "",
                peer,
            )
        now = self._clock()
        bucket = self._bucket(device.name, now)
        if not bucket.take(now):
            wait_s = max(1, round(bucket.wait_s(now) + 0.5))
            return await self._refuse(
                429, "rate limited", device.name, peer, headers={"Retry-After": str(wait_s)}
            )
        moment = datetime.fromtimestamp(self._wall_clock(), UTC)
        try:
            minted = await self.minter.mint(moment)
        except MintError as exc:
            log.warning("no token for %s: %s", device.name, exc)
            return await self._refuse(502, f"API gave no token ({exc})", device.name, peer)
        self.counters.issued += 1
        expires_in_s = (minted.expire_time - moment).total_seconds()
        window_s = (minted.new_session_expire_time - moment).total_seconds()
        await self._audit(
            device.name,
            "issued",
            peer,
            expires=rfc3339(minted.expire_time),
            new_session_until=rfc3339(minted.new_session_expire_time),
        )
        body = {
            "token": minted.name.reveal(),
            "expireTime": rfc3339(minted.expire_time),
            "newSessionExpireTime": rfc3339(minted.new_session_expire_time),
            "expiresInS": expires_in_s,
            "newSessionExpiresInS": window_s,
            "uses": minted.uses,
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    def _bucket(self, name: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(name)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                # Forget the buckets that are full again: they would allow a burst anyway.
                self._buckets = {k: b for k, b in self._buckets.items() if b.full_at(now) > now}
            bucket = TokenBucket(self._burst, self._rate_per_s, now)
            self._buckets[name] = bucket
        return bucket

    async def _refuse(
        self,
        status: int,
        reason: str,
        device: str,
        peer: str,
        headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        from aiohttp import web  # noqa: PLC0415

        key = reason.split(" (", 1)[0]
        self.counters.refused[key] = self.counters.refused.get(key, 0) + 1
        if device:
            await self._audit(device, f"refused: {reason}", peer)
        elif self._strangers.allow(key):
            log.warning("refused a token request from %s: %s%s", peer, reason,
                        self._strangers.suffix(key))  # fmt: skip
        all_headers = {"Cache-Control": "no-store", **(headers or {})}
        if status == 401:
            all_headers["WWW-Authenticate"] = 'Bearer realm="pilive token service"'
        return web.json_response({"error": key}, status=status, headers=all_headers)

    async def _audit(self, device: str, outcome: str, peer: str, **fields: str) -> None:
        """One line per token request, in the journal and appended to audit.log."""
        record: dict[str, Any] = {
            "time": rfc3339(datetime.fromtimestamp(self._wall_clock(), UTC)),
            "device": device,
            "outcome": outcome,
            "peer": peer,
            **fields,
        }
        audit_log.info(
            "token %s for %s from %s%s",
            outcome,
            device,
            peer,
            f", expires {fields['expires']}" if "expires" in fields else "",
        )
        line = json.dumps(record, separators=(",", ":")) + "\n"
        async with self._audit_lock:
            try:
                await asyncio.to_thread(_append, self.audit_path, line)
            except OSError as exc:
                log.error("cannot write %s: %s", self.audit_path, exc.strerror)


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        if path.stat().st_size + len(line) > AUDIT_MAX_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass
    with path.open("a", encoding="utf-8") as out:
        out.write(line)
