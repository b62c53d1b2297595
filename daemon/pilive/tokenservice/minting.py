"""The `auth_tokens.create` request, built from the owner's `[token]` settings (pure), and the
HTTP call that sends it with the API key (aiohttp).

The request body is what the google-genai SDK sends (`tokens.py`, `_tokens_converters.py`):
`uses`, `expireTime` and `newSessionExpireTime` (RFC 3339), `bidiGenerateContentSetup` (the
SDK's `liveConnectConstraints`: the setup fields to lock, spelled as in a `setup` message) and
`fieldMask`, the fields locked: the SDK's rule with `lock_additional_fields` given (one level
into a non-empty object, plus the extra paths). Leaving the mask out would lock the whole setup
to the token's and the device's own (push-to-talk, resumption, compression) would be dropped, so
pilive's service always sends one. The setup fragments come from `pilive.live.setup_message`,
the code that builds the devices' setup, so both spell every field alike.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pilive.config import Secret
from pilive.config._secret import mask_secrets
from pilive.live import wire
from pilive.tokenservice.config import TokenSection

API_VERSION = "v1alpha"  # auth_tokens and BidiGenerateContentConstrained exist only there
MAX_ANSWER_BYTES = 64 * 1024


class MintError(Exception):
    """The API did not give a token; `status` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class Minted:
    name: Secret
    expire_time: datetime
    new_session_expire_time: datetime
    uses: int


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def locked_setup(token: TokenSection) -> dict[str, Any]:
    """`bidiGenerateContentSetup`: the model and each setting the owner gave, as a device's
    `setup` message spells them (wire.build_setup)."""
    modality = (token.response_modality or "audio").upper()
    options = wire.SetupOptions(
        model=token.model.removeprefix("models/"),
        response_modalities=(modality,),
        voice_name=token.voice,
        language_code=token.language_code,
        system_instruction=token.system_instruction,
    )
    built = json.loads(wire.build_setup(options))["setup"]
    setup: dict[str, Any] = {"model": built["model"]}
    generation: dict[str, Any] = {}
    if token.response_modality is not None:
        generation["responseModalities"] = built["generationConfig"]["responseModalities"]
    if token.voice is not None or token.language_code is not None:
        generation["speechConfig"] = built["generationConfig"]["speechConfig"]
    if generation:
        setup["generationConfig"] = generation
    if token.system_instruction is not None:
        setup["systemInstruction"] = built["systemInstruction"]
    return setup


def field_mask(setup: dict[str, Any], additional: tuple[str, ...]) -> str:
    """The SDK's `_get_field_masks` rule, then the additional paths."""
    paths: list[str] = []
    for key, value in setup.items():
        if isinstance(value, dict) and value:
            paths.extend(f"{key}.{inner}" for inner in value)
        else:
            paths.append(key)
    paths.extend(p for p in additional if p not in paths)
    return ",".join(paths)


def create_request(token: TokenSection, now: datetime) -> dict[str, Any]:
    """The body of `POST /v1alpha/auth_tokens` for one device's token."""
    setup = locked_setup(token)
    return {
        "uses": 1,
        "expireTime": rfc3339(now + timedelta(seconds=token.expire_after_s)),
        "newSessionExpireTime": rfc3339(now + timedelta(seconds=token.new_session_window_s)),
        "bidiGenerateContentSetup": setup,
        "fieldMask": field_mask(setup, token.lock_additional_fields),
    }


class Minter:
    """Sends create requests to `endpoint` with the key in `x-goog-api-key` (never in the URL),
    on one aiohttp session; TLS verified (against `ca_file` when given)."""

    def __init__(
        self,
        endpoint: str,
        api_key: Secret,
        token: TokenSection,
        *,
        timeout_s: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = f"{endpoint.rstrip('/')}/{API_VERSION}/auth_tokens"
        self.token = token
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._ssl = ssl_context
        self._session: Any = None

    async def mint(self, now: datetime) -> Minted:
        import aiohttp  # noqa: PLC0415 - the service's dependency, not the daemon's

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
                connector=aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True),
            )
        body = create_request(self.token, now)
        headers = {"x-goog-api-key": self._api_key.reveal(), "Content-Type": "application/json"}
        try:
            async with self._session.post(self.url, json=body, headers=headers) as reply:
                data = await reply.content.read(MAX_ANSWER_BYTES + 1)
                status = reply.status
        except TimeoutError:
            raise MintError(0, f"no answer within {self._timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            reason = mask_secrets(str(exc) or type(exc).__name__, self._api_key)
            raise MintError(0, f"cannot reach the API ({reason})") from None
        if status != 200:
            text = mask_secrets(_error_text(data), self._api_key)
            raise MintError(status, f"the API answered HTTP {status}{text}")
        try:
            name = json.loads(data)["name"]
        except (ValueError, KeyError, TypeError):
            raise MintError(status, "the API answered without a token name") from None
        if not isinstance(name, str) or not name.startswith("auth_tokens/"):
            raise MintError(status, "the API answered with something that is not a token")
        return Minted(
            Secret(name, origin="auth_tokens.create"),
            now + timedelta(seconds=self.token.expire_after_s),
            now + timedelta(seconds=self.token.new_session_window_s),
            uses=1,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _error_text(data: bytes) -> str:
    """ ": <message>" from a Google API error body, cut short; "" when there is none."""
    try:
        message = json.loads(data)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return ""
    if not isinstance(message, str):
        return ""
    message = " ".join(message.split())[:160]
    return f": {message}"
