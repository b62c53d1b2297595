"""The token service's TOML file -> frozen dataclasses, read like the daemon's own config (every
problem names the key and the value), plus the rules that tie its keys together."""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from pilive.config import ConfigError, Problem, Secret
from pilive.config._fields import setting
from pilive.config._load import parse_document
from pilive.config._reader import show_value
from pilive.config.apikey import find_api_key, read_secret_file
from pilive.config.model import DEFAULT_MODEL, LogLevel, ResponseModality
from pilive.live.setup_fields import SETUP_FIELDS, SETUP_SUBFIELDS, camel, snake
from pilive.net.endpoint import https_url_problems, is_loopback_host

DEFAULT_PATH = Path("/etc/pilive/token-service.toml")
TLS_KEY_CREDENTIAL = "pilive-token-service-tls-key"
MAX_AHEAD_S = 20 * 3600 - 1
"""The service refuses an expireTime 20 hours or more ahead."""
_HOST_PORT = r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}"
_FIELD_PATH = r"[a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)?"


@dataclass(frozen=True, slots=True)
class ServiceSection:
    """Where the service listens, its TLS certificate, and where it keeps devices and audit."""

    listen: str = setting(
        "127.0.0.1:8443",
        pattern=_HOST_PORT,
        pattern_hint="be host:port, such as 0.0.0.0:8443 or [::]:8443",
    )
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    state_directory: Path = Path("/var/lib/pilive-token-service")
    log_level: LogLevel = "info"

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


@dataclass(frozen=True, slots=True)
class ApiSection:
    """The Gemini API the tokens come from (`POST {endpoint}/v1alpha/auth_tokens`)."""

    endpoint: str = "https://generativelanguage.googleapis.com"
    api_key_file: Path | None = None
    ca_file: Path | None = None
    timeout_s: float = setting(10.0, gt=0, le=120)


@dataclass(frozen=True, slots=True)
class TokenSection:
    """What each token allows: one new session (`uses = 1`), for `expire_after_s`, started
    within `new_session_window_s`, locked to `model` and to each setting given here."""

    model: str = setting(
        DEFAULT_MODEL,
        pattern=r"(models/)?[A-Za-z0-9][A-Za-z0-9._-]*",
        pattern_hint="be a model name such as gemini-live-2.5-flash-preview",
    )
    expire_after_s: float = setting(900.0, ge=2.0, le=MAX_AHEAD_S)
    new_session_window_s: float = setting(60.0, ge=1.0, le=MAX_AHEAD_S)
    system_instruction: str | None = None
    voice: str | None = setting(
        None, pattern=r"[A-Za-z][A-Za-z0-9_-]*", pattern_hint="be a voice name such as Puck"
    )
    language_code: str | None = setting(
        None,
        pattern=r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*",
        pattern_hint="be a BCP-47 language code such as en-US",
    )
    response_modality: ResponseModality | None = None
    lock_additional_fields: tuple[str, ...] = setting(
        (),
        pattern=_FIELD_PATH,
        pattern_hint="be a setup field path such as generationConfig.temperature or tools",
    )


@dataclass(frozen=True, slots=True)
class LimitsSection:
    """Per device: a burst of `burst` tokens, then `tokens_per_minute`."""

    tokens_per_minute: float = setting(6.0, gt=0, le=600)
    burst: int = setting(10, ge=1, le=1000)


@dataclass(frozen=True, slots=True)
class TokenServiceConfig:
    service: ServiceSection = field(default_factory=ServiceSection)
    api: ApiSection = field(default_factory=ApiSection)
    token: TokenSection = field(default_factory=TokenSection)
    limits: LimitsSection = field(default_factory=LimitsSection)


def parse_service_config(
    text: str,
    *,
    source: str = "<token-service config>",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> TokenServiceConfig:
    """TOML text -> `TokenServiceConfig`, or `ConfigError` listing every problem."""
    env = os.environ if environ is None else environ
    config: TokenServiceConfig
    config, document = parse_document(
        text, TokenServiceConfig, source=source, base_dir=base_dir, environ=env
    )
    problems = _check_rules(config, source)
    if problems:
        raise ConfigError(problems)
    state_dirs = env.get("STATE_DIRECTORY", "")
    if "state_directory" not in document.get("service", {}) and state_dirs:
        directory = Path(state_dirs.split(":")[0])
        config = replace(config, service=replace(config.service, state_directory=directory))
    return config


def load_service_config(path: Path, environ: Mapping[str, str] | None = None) -> TokenServiceConfig:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError.single(str(path), "", "", f"cannot read the file: {reason}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError.single(str(path), "", "", f"is not UTF-8 (byte {exc.start})") from None
    return parse_service_config(text, source=str(path), base_dir=path.parent, environ=environ)


def _check_rules(config: TokenServiceConfig, source: str) -> list[Problem]:
    found: list[Problem] = []

    def problem(key: str, value: object, message: str) -> None:
        found.append(Problem(source, key, show_value(value), message))

    service = config.service
    if not 0 <= service.port <= 65535:
        problem("service.listen", service.listen, "the port must be 0-65535 (0: any free port)")
    if service.tls_cert_file is None:
        if not is_loopback_host(service.host):
            problem(
                "service.listen",
                service.listen,
                "a non-loopback address needs service.tls_cert_file (device credentials and "
                "tokens must not cross the network in the clear); or listen on 127.0.0.1 "
                "behind a TLS reverse proxy",
            )
        if service.tls_key_file is not None:
            problem("service.tls_key_file", str(service.tls_key_file), "needs tls_cert_file")
    for message in https_url_problems(config.api.endpoint, path=False, credential="the API key"):
        problem("api.endpoint", config.api.endpoint.split("?", 1)[0], message)
    token = config.token
    if token.new_session_window_s > token.expire_after_s:
        problem(
            "token.new_session_window_s",
            token.new_session_window_s,
            f"must not exceed token.expire_after_s ({token.expire_after_s:g})",
        )
    for index, path in enumerate(token.lock_additional_fields):
        if path.split(".")[0] == "sessionResumption":
            problem(
                f"token.lock_additional_fields[{index}]",
                path,
                "locking sessionResumption would keep devices from resuming their conversation",
            )
        elif re.fullmatch(r"model|systemInstruction", path):
            problem(
                f"token.lock_additional_fields[{index}]",
                path,
                "is always locked (model) or locked by its own key (system_instruction)",
            )
        else:
            why = _not_a_setup_path(path)
            if why:
                problem(f"token.lock_additional_fields[{index}]", path, why)
    return found


def _not_a_setup_path(path: str) -> str:
    """Why `path` names no field of the Live API setup ("" when it does). The API takes the mask
    as it is: a path it does not know locks nothing. The SDK turns a bare generationConfig
    field ("temperature") into its full path; the owner writes that path here."""
    head, _, inner = path.partition(".")
    setup_fields = {camel(name) for name in SETUP_FIELDS}
    generation_fields = {camel(name) for name in SETUP_SUBFIELDS["generation_config"]}
    if head not in setup_fields:
        if not inner and head in generation_fields:
            return f'is a generationConfig field: write "generationConfig.{head}"'
        return "is not a field of the Live API setup (" + ", ".join(sorted(setup_fields)) + ")"
    known = SETUP_SUBFIELDS.get(snake(head))
    if inner and known is not None and inner not in {camel(name) for name in known}:
        return (
            f"is not a field of the Live API setup ({head} has "
            + ", ".join(sorted(camel(name) for name in known))
            + ")"
        )
    return ""


def load_master_key(config: TokenServiceConfig, environ: Mapping[str, str]) -> Secret:
    """The API key: systemd credential gemini-api-key, $GEMINI_API_KEY, then api.api_key_file."""
    return find_api_key(None, config.api.api_key_file, "api.api_key_file", environ)


def api_ssl_context(config: TokenServiceConfig) -> ssl.SSLContext | None:
    """TLS for the API: the system CA store, or `api.ca_file` (a private CA, or the emulator's)."""
    if config.api.ca_file is None:
        return None
    return ssl.create_default_context(cafile=str(config.api.ca_file))


def tls_key_path(config: TokenServiceConfig, environ: Mapping[str, str]) -> Path | None:
    """The TLS private key: systemd credential pilive-token-service-tls-key, else
    service.tls_key_file (which must be private to its owner); None when TLS is off."""
    if config.service.tls_cert_file is None:
        return None
    credentials_dir = environ.get("CREDENTIALS_DIRECTORY")
    if credentials_dir:
        path = Path(credentials_dir) / TLS_KEY_CREDENTIAL
        if path.exists() and path.stat().st_size > 0:
            return path
    key_file = config.service.tls_key_file
    if key_file is None:
        raise ConfigError.single(
            "service.tls_key_file",
            "",
            "",
            "service.tls_cert_file is set but no private key was found: looked for systemd "
            f"credential $CREDENTIALS_DIRECTORY/{TLS_KEY_CREDENTIAL} and service.tls_key_file",
        )
    read_secret_file(key_file, str(key_file), check_mode=True, what="TLS private key")
    return key_file
