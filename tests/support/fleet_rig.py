"""The fleet chain for tests: the real token service (in process, or as `pilive token-service
serve`) minting from the emulator's auth_tokens API, and devices registered with it.

`token_service(emu, directory, ...)` yields a `Fleet`: the service's token URL, the running
service (its registry, counters and audit file) and its config. Times are short so a token's
whole life fits in a test; the emulator's token rules are wall-clock based (not time-scaled).
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pilive.config import Secret
from pilive.emulator import Emulator
from pilive.tokenservice.config import TokenServiceConfig, parse_service_config
from pilive.tokenservice.devices import DeviceRegistry
from pilive.tokenservice.serve import start
from pilive.tokenservice.server import TokenService
from tests.support.emulator_rig import MODEL, TlsMaterial


def service_toml(
    *,
    state_dir: Path,
    api_endpoint: str,
    model: str = MODEL,
    expire_after_s: float = 600.0,
    new_session_window_s: float = 60.0,
    tls: TlsMaterial | None = None,
    api_ca_file: Path | None = None,
    burst: int = 10,
    tokens_per_minute: float = 60.0,
    token_extra: str = "",
    api_key_file: Path | None = None,
) -> str:
    lines = [
        "[service]",
        'listen = "127.0.0.1:0"',
        f'state_directory = "{state_dir}"',
        *(
            [f'tls_cert_file = "{tls.cert_path}"', f'tls_key_file = "{tls.key_path}"']
            if tls is not None
            else []
        ),
        "[api]",
        f'endpoint = "{api_endpoint}"',
        "timeout_s = 5.0",
        *([f'ca_file = "{api_ca_file}"'] if api_ca_file is not None else []),
        *([f'api_key_file = "{api_key_file}"'] if api_key_file is not None else []),
        "[token]",
        f'model = "{model}"',
        f"expire_after_s = {expire_after_s}",
        f"new_session_window_s = {new_session_window_s}",
        token_extra,
        "[limits]",
        f"burst = {burst}",
        f"tokens_per_minute = {tokens_per_minute}",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Fleet:
    url: str
    """The token endpoint a device's live.token_url names."""
    service: TokenService
    config: TokenServiceConfig
    client_tls: ssl.SSLContext | None

    def add_device(self, name: str) -> Secret:
        return DeviceRegistry(self.config.service.state_directory).add(name)

    def revoke(self, name: str) -> None:
        DeviceRegistry(self.config.service.state_directory).revoke(name)

    def audit(self) -> list[dict[str, Any]]:
        path = self.service.audit_path
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


@contextlib.asynccontextmanager
async def token_service(
    emu: Emulator, directory: Path, *, tls: TlsMaterial | None = None, **settings: Any
) -> AsyncIterator[Fleet]:
    """The real token service in this process, minting from `emu` (auth_tokens_api=True)."""
    text = service_toml(
        state_dir=directory / "token-service", api_endpoint=emu.rest_url, tls=tls, **settings
    )
    config = parse_service_config(text, environ={})
    server_tls = None
    if tls is not None:
        server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_tls.load_cert_chain(tls.cert_path, tls.key_path)
    running = await start(config, Secret(emu.api_key, "test"), server_tls)
    try:
        yield Fleet(
            running.url + "/v1/token",
            running.service,
            config,
            tls.client_context if tls is not None else None,
        )
    finally:
        await running.aclose()
