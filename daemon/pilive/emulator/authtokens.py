"""The emulator's `auth_tokens` API: ephemeral tokens minted with the API key, and the rules a
token puts on the connections that present it to `BidiGenerateContentConstrained`.

What the service documents, and the emulator does (google-genai `types.py`, `AuthToken` and
`CreateAuthTokenConfig`; `tokens.py`; ai.google.dev "Ephemeral tokens"):
- `POST /v1alpha/auth_tokens` with the key (header `x-goog-api-key`) answers `{"name":
  "auth_tokens/..."}`. The body's `uses` defaults to 1 (0: no limit), `expireTime` to 30 minutes
  and `newSessionExpireTime` to 60 seconds from now; either must be less than 20 hours ahead.
- A token starts new sessions until `newSessionExpireTime`, each spending one use. "Resuming a
  Live API session does not count as a use", and the new-session window is for new sessions:
  a resume is accepted with a spent token until `expireTime`. After `expireTime` "messages ...
  will be rejected (Gemini may preemptively close the session after this time)": the emulator
  closes an open connection then (`EmulatorOptions.token_expiry_close`).
- `bidiGenerateContentSetup` (the SDK's `liveConnectConstraints`) and `fieldMask` lock the
  setup. Without a field mask the whole setup is the token's (the SDK: the client's changes
  "will be ignored by the API"); with one, the listed fields are locked (the SDK builds it from
  the fields the constraints set, one level into an object, plus `lock_additional_fields`).

Inferred, because no public source says it:
- Which close a refused token gets. The token is used "as if it were an API key" (the docs), so
  the emulator answers like a bad key: 1007 "API key not valid. Please pass a valid API key."
- Whether a setup that contradicts a locked field is refused or the field silently replaced:
  `EmulatorOptions.locked_field_conflict` picks ("refuse": 1007 INVALID_ARGUMENT, the default,
  so a device whose setup disagrees with its token fails loudly; "ignore": the token's value
  wins).
  A locked field the client leaves out takes the token's value either way; an unlocked one the
  token sets is a default the client may override. The resumption handle is never locked (a
  token that forbade resuming would make `uses` meaningless for resumes).
- That a session survives its token: a resume with another valid token is accepted.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pilive.emulator.frames import INVALID_ARGUMENT, ProtocolViolation, get
from pilive.live.setup_fields import camel, snake

if TYPE_CHECKING:
    from aiohttp import web

BAD_KEY = "API key not valid. Please pass a valid API key."
TOKEN_EXPIRED = "Ephemeral token expired."  # noqa: S105 - the emulator's own text (inferred)
DEFAULT_EXPIRE_S = 1800.0
DEFAULT_NEW_SESSION_S = 60.0
MAX_AHEAD_S = 20 * 3600.0
TOKEN_PREFIX = "auth_tokens/"  # noqa: S105 - a name prefix, not a secret
_PATH_PART = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_NEVER_LOCKED = frozenset({"sessionResumption"})
_REQUEST_FIELDS = frozenset(
    {"name", "uses", "expire_time", "new_session_expire_time", "bidi_generate_content_setup",
     "field_mask"}
)  # fmt: skip

Conflict = Literal["refuse", "ignore"]


class TokenRequestError(Exception):
    """`auth_tokens.create` refused: the HTTP status and the service-style message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        """The error body Google APIs answer with."""
        state = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND"}
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "status": state.get(self.status, "UNKNOWN"),
            }
        }


@dataclass
class EphemeralToken:
    """One minted token and what became of it (tests read `connections` and `sessions`)."""

    name: str
    uses_left: int | None
    """None: no limit (`uses: 0`)."""
    expire_at_s: float
    new_session_expire_at_s: float
    setup: dict[str, Any] | None = None
    """`bidiGenerateContentSetup`, its first two levels of names in camelCase."""
    locked: tuple[str, ...] | None = None
    """The `fieldMask` paths; None with a setup: the whole setup is locked."""
    connections: list[str] = field(default_factory=list)
    sessions: int = 0
    refusals: list[str] = field(default_factory=list)
    """Why each connection presenting it was refused (the emulator's detail)."""


def _refused(detail: str) -> ProtocolViolation:
    return ProtocolViolation(1007, BAD_KEY, detail)


class AuthTokens:
    """The tokens one emulator minted. `now_s` is the emulator's loop clock; `wall_s` (Unix
    time) is only used to read the RFC 3339 times of a create request."""

    def __init__(self, conflict: Conflict = "refuse") -> None:
        self.conflict = conflict
        self.tokens: dict[str, EphemeralToken] = {}

    # --- minting -------------------------------------------------------------------------------

    def create(self, body: object, now_s: float, wall_s: float) -> EphemeralToken:
        """`auth_tokens.create`: the request body (proto3 JSON, either spelling) -> a token."""
        if not isinstance(body, dict):
            raise TokenRequestError(400, "Invalid JSON payload: the body must be an object.")
        for key in body:
            if snake(key) not in _REQUEST_FIELDS:
                raise TokenRequestError(400, f'Invalid JSON payload received. Unknown name "{key}"')
        uses = get(body, "uses", 1)
        if isinstance(uses, str) and uses.isdigit():
            uses = int(uses)  # int32 in proto3 JSON may come as a string
        if isinstance(uses, bool) or not isinstance(uses, int) or uses < 0:
            raise TokenRequestError(400, f"uses must be a non-negative integer, got {uses!r}")
        expire_s = _ahead_s(get(body, "expire_time"), wall_s, DEFAULT_EXPIRE_S, "expireTime")
        window_s = _ahead_s(
            get(body, "new_session_expire_time"),
            wall_s,
            DEFAULT_NEW_SESSION_S,
            "newSessionExpireTime",
        )
        setup = get(body, "bidi_generate_content_setup")
        if setup is not None and not isinstance(setup, dict):
            raise TokenRequestError(400, "bidiGenerateContentSetup must be an object")
        mask = get(body, "field_mask")
        locked: tuple[str, ...] | None = None
        if mask is not None:
            locked = _parse_mask(mask)
        stored = _camel_two_levels(setup) if setup else None
        if stored is not None and "model" in stored:
            stored["model"] = _model_name(stored["model"])
        return self._add(uses or None, now_s + expire_s, now_s + window_s, stored, locked)

    def issue(
        self,
        now_s: float,
        *,
        uses: int = 1,
        lifetime_s: float = DEFAULT_EXPIRE_S,
        new_session_s: float | None = None,
        setup: Mapping[str, Any] | None = None,
        locked: tuple[str, ...] | None = None,
    ) -> EphemeralToken:
        """A token without the HTTP round trip (tests of the WebSocket side)."""
        window_s = new_session_s
        if window_s is None:
            window_s = min(lifetime_s, DEFAULT_NEW_SESSION_S)
        stored = _camel_two_levels(dict(setup)) if setup else None
        return self._add(uses or None, now_s + lifetime_s, now_s + window_s, stored, locked)

    def _add(
        self,
        uses: int | None,
        expire_at_s: float,
        new_session_at_s: float,
        setup: dict[str, Any] | None,
        locked: tuple[str, ...] | None,
    ) -> EphemeralToken:
        name = TOKEN_PREFIX + secrets.token_urlsafe(24)
        token = EphemeralToken(name, uses, expire_at_s, new_session_at_s, setup, locked)
        self.tokens[name] = token
        return token

    # --- presenting ----------------------------------------------------------------------------

    def check_connect(self, name: str | None, now_s: float) -> ProtocolViolation | None:
        """Why a connection presenting `name` is refused at once, or None."""
        token = self.tokens.get(name or "")
        if token is None:
            return _refused("unknown or missing ephemeral token")
        if now_s >= token.expire_at_s:
            token.refusals.append("expired")
            return _refused("ephemeral token expired")
        return None

    def constrain(self, name: str, frame: str | bytes, now_s: float) -> str | bytes:
        """The first frame of a connection with the token's locks applied (a setup that agrees
        with them goes through as sent); raises the ProtocolViolation the service answers with.

        A frame that is not a setup object is passed on unchanged for the parser to refuse."""
        token = self.tokens[name]
        try:
            message = json.loads(frame)
        except ValueError:
            return frame
        setup = message.get("setup") if isinstance(message, dict) and len(message) == 1 else None
        if not isinstance(setup, dict):
            return frame
        resuming = bool(get(get(setup, "session_resumption") or {}, "handle"))
        if not resuming:
            if now_s >= token.new_session_expire_at_s:
                token.refusals.append("new-session window over")
                raise _refused("the token's newSessionExpireTime has passed")
            if token.uses_left is not None and token.uses_left <= 0:
                token.refusals.append("used up")
                raise _refused("the token has no uses left")
        if token.setup is None:
            return frame
        try:
            effective = self._apply_locks(token, setup)
        except ProtocolViolation as exc:
            token.refusals.append(exc.detail)
            raise
        return json.dumps({"setup": effective}, separators=(",", ":"))

    def spend(self, name: str, connection_id: str) -> None:
        """A new session started with the token: one use gone (a resume spends none)."""
        token = self.tokens[name]
        token.sessions += 1
        if token.uses_left is not None:
            token.uses_left -= 1
        if connection_id not in token.connections:
            token.connections.append(connection_id)

    def attached(self, name: str, connection_id: str) -> None:
        """A connection presenting `name` got through the handshake."""
        token = self.tokens[name]
        if connection_id not in token.connections:
            token.connections.append(connection_id)

    def _apply_locks(self, token: EphemeralToken, client: dict[str, Any]) -> dict[str, Any]:
        theirs = token.setup or {}
        whole = token.locked is None
        locked = [p for p in (_paths(theirs) if whole else token.locked or ()) if p]
        effective = copy.deepcopy(client)
        for path in locked:
            if path.split(".")[0] in _NEVER_LOCKED:
                continue
            has_token_value, token_value = _lookup(theirs, path)
            sent, value = _lookup(client, path)
            agrees = has_token_value and _same(path, value, token_value)
            if sent and not agrees and self.conflict == "refuse":
                raise ProtocolViolation(
                    1007, INVALID_ARGUMENT, f"{path} contradicts the token's locked value"
                )
            _remove(effective, path)
            if has_token_value:
                _assign(effective, path, copy.deepcopy(token_value))
        if whole:
            # The whole setup is the token's: what the client adds is dropped, its handle kept.
            kept = {k: v for k, v in effective.items() if camel(k) in _NEVER_LOCKED}
            effective = {**copy.deepcopy(theirs), **kept}
            effective.setdefault("model", client.get("model"))
        else:
            for path in _paths(theirs):
                sent, _ = _lookup(effective, path)
                if not sent:
                    _assign(effective, path, copy.deepcopy(_lookup(theirs, path)[1]))
        return effective


# --- field paths --------------------------------------------------------------------------------


def _ahead_s(value: object, wall_s: float, default_s: float, name: str) -> float:
    """Seconds from now to an RFC 3339 time; the service's rule: in the future, under 20 h."""
    if value is None:
        return default_s
    if not isinstance(value, str):
        raise TokenRequestError(400, f"{name} must be an RFC 3339 timestamp string")
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise TokenRequestError(400, f"{name} {value!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise TokenRequestError(400, f"{name} {value!r} needs a time zone (Z)")
    ahead_s = moment.timestamp() - wall_s
    if ahead_s >= MAX_AHEAD_S:
        raise TokenRequestError(400, f"{name} must be less than 20 hours in the future")
    if ahead_s <= 0:
        raise TokenRequestError(400, f"{name} must be in the future")
    return ahead_s


def _parse_mask(mask: object) -> tuple[str, ...]:
    """`fieldMask`: proto3 JSON writes a FieldMask as one comma-separated string."""
    parts = mask.split(",") if isinstance(mask, str) else mask
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        raise TokenRequestError(400, "fieldMask must be a comma-separated string of field paths")
    paths: list[str] = []
    for raw in parts:
        path = raw.strip()
        if not path:
            continue
        pieces = path.split(".")
        if len(pieces) > 2 or not all(_PATH_PART.fullmatch(p) for p in pieces):
            raise TokenRequestError(400, f"fieldMask path {path!r} is not a setup field path")
        paths.append(".".join(camel(p) for p in pieces))
    return tuple(paths)


def _camel_two_levels(setup: dict[str, Any]) -> dict[str, Any]:
    """Names at the top and one level down in camelCase (where field masks point); deeper
    names are left as sent (they may be user keys, as in a function's parameter schema)."""
    out: dict[str, Any] = {}
    for key, value in setup.items():
        inner = {camel(k): v for k, v in value.items()} if isinstance(value, dict) else value
        out[camel(key)] = inner
    return out


def _paths(setup: Mapping[str, Any]) -> list[str]:
    """The SDK's field-mask rule (`tokens._get_field_masks`): a non-empty object contributes
    its keys one level down, anything else its own name."""
    paths: list[str] = []
    for key, value in setup.items():
        if isinstance(value, dict) and value:
            paths.extend(f"{camel(key)}.{camel(k)}" for k in value)
        else:
            paths.append(camel(key))
    return paths


def _find(obj: Mapping[str, Any], name: str) -> str | None:
    """The key under which `obj` holds the camelCase field `name`, in either spelling."""
    for key in obj:
        if camel(key) == name:
            return key
    return None


def _lookup(setup: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = setup
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return False, None
        key = _find(node, part)
        if key is None:
            return False, None
        node = node[key]
    return True, node


def _remove(setup: dict[str, Any], path: str) -> None:
    head, _, rest = path.partition(".")
    key = _find(setup, head)
    if key is None:
        return
    if not rest:
        del setup[key]
    elif isinstance(setup[key], dict):
        inner = _find(setup[key], rest)
        if inner is not None:
            del setup[key][inner]


def _assign(setup: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if not rest:
        setup[head] = value
        return
    key = _find(setup, head)
    if key is None or not isinstance(setup[key], dict):
        key = head
        setup[key] = {}
    setup[key][rest] = value


def _model_name(value: object) -> object:
    if isinstance(value, str) and not value.startswith("models/"):
        return "models/" + value
    return value


def _canonical(value: Any) -> Any:
    """A value compared by meaning: names in camelCase at every level, int64 strings as ints."""
    if isinstance(value, dict):
        return {camel(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,19}", value):
        return int(value)
    return value


def _same(path: str, sent: Any, locked: Any) -> bool:
    if path == "model":
        return _model_name(sent) == _model_name(locked)
    return bool(_canonical(sent) == _canonical(locked))


# --- the HTTP side ------------------------------------------------------------------------------


class AuthTokensApi:
    """`POST /v1alpha/auth_tokens` on a loopback port of its own (websockets' server does not
    take request bodies), served with aiohttp, the library the token service uses too."""

    def __init__(
        self,
        tokens: AuthTokens,
        api_key: str,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self.tokens = tokens
        self.api_key = api_key
        self._clock = clock
        self._wall_clock = wall_clock
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.requests = 0
        self.refuse_with: int | None = None
        """A test sets an HTTP status (500, 503) that every create request then gets."""

    async def start(self, host: str, ssl_context: ssl.SSLContext | None = None) -> None:
        from aiohttp import web  # noqa: PLC0415 - only where the auth_tokens API is wanted

        app = web.Application(client_max_size=256 * 1024)
        app.router.add_post("/{version}/auth_tokens", self._create)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.bind((host, 0))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock, ssl_context=ssl_context).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _create(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web  # noqa: PLC0415

        self.requests += 1
        try:
            if request.match_info["version"] != "v1alpha":
                raise TokenRequestError(404, "auth_tokens is served on v1alpha only")
            key = request.headers.get("x-goog-api-key") or request.query.get("key")
            if key != self.api_key:
                raise TokenRequestError(400, BAD_KEY)
            if self.refuse_with is not None:
                raise TokenRequestError(self.refuse_with, "The service is currently unavailable.")
            try:
                body = json.loads(await request.read() or b"{}")
            except ValueError:
                raise TokenRequestError(400, "Invalid JSON payload received.") from None
            token = self.tokens.create(body, self._clock(), self._wall_clock())
        except TokenRequestError as exc:
            return web.json_response(exc.body(), status=exc.status)
        return web.json_response({"name": token.name})
