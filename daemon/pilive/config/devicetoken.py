"""A fleet device's credential for the token service (`live.token_url`), found apart from the
config like the API key (see `apikey`), and `load_credentials`, which picks the one the daemon
needs.

The credential is looked for in this order:

1. `$CREDENTIALS_DIRECTORY/pilive-device-token`: systemd's `LoadCredential=`, the way the service
   gets it. An empty one counts as absent: the installer leaves an empty file where no
   credential was given, so that `LoadCredential=` never fails the unit.
2. `live.device_token_file`, which must not be readable or writable by group or others.

Never from an argument (argv is visible to every user) nor the environment. A device with a
token URL must not hold the master key either: one found in `$CREDENTIALS_DIRECTORY/
gemini-api-key` or `$GEMINI_API_KEY` is refused, naming where it is (never what it is).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pilive.config._reader import ConfigError
from pilive.config._rules import key_text_problem
from pilive.config._secret import Secret
from pilive.config.apikey import CREDENTIAL_NAME as KEY_CREDENTIAL_NAME
from pilive.config.apikey import ENV_VAR, load_api_key, read_secret_file
from pilive.config.model import Config

CREDENTIAL_NAME = "pilive-device-token"
_WHAT = "device credential"


def load_credentials(config: Config, environ: Mapping[str, str] = os.environ) -> Secret:
    """What the daemon authenticates with: the device credential when `live.token_url` is set,
    else the API key. `ConfigError` (never showing the secret) when it is missing or unusable."""
    if config.live.token_url is None:
        return load_api_key(config, environ)
    stray = _master_key_origin(environ)
    if stray is not None:
        raise ConfigError.single(
            stray,
            "",
            "",
            "live.token_url is set, so this device must not hold the API key: remove it "
            "(the token service holds it)",
        )
    return load_device_credential(config, environ)


def load_device_credential(config: Config, environ: Mapping[str, str] = os.environ) -> Secret:
    """The device credential as a `Secret` whose `origin` says where it came from."""
    credentials_dir = environ.get("CREDENTIALS_DIRECTORY")
    if credentials_dir:
        path = Path(credentials_dir) / CREDENTIAL_NAME
        if path.exists():
            origin = f"$CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME}"
            text = read_secret_file(path, origin, check_mode=False, what=_WHAT)
            if text:
                return _validated(text, origin)
    token_file = config.live.device_token_file
    if token_file is not None:
        origin = str(token_file)
        return _validated(read_secret_file(token_file, origin, check_mode=True, what=_WHAT), origin)
    raise ConfigError.single(
        "device credential",
        "",
        "",
        "live.token_url is set but no device credential was found: looked for systemd "
        f"credential $CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME} (absent or empty) and "
        "live.device_token_file (not set); `pilive token-service add-device NAME` on the token "
        "service prints one",
    )


def _master_key_origin(environ: Mapping[str, str]) -> str | None:
    credentials_dir = environ.get("CREDENTIALS_DIRECTORY")
    if credentials_dir:
        path = Path(credentials_dir) / KEY_CREDENTIAL_NAME
        try:
            if path.stat().st_size > 0 and path.read_bytes().strip():
                return f"$CREDENTIALS_DIRECTORY/{KEY_CREDENTIAL_NAME}"
        except OSError:
            pass
    if environ.get(ENV_VAR, "").strip():
        return f"${ENV_VAR}"
    return None


def _validated(text: str, origin: str) -> Secret:
    problem = key_text_problem(text)
    if problem:
        raise ConfigError.single(origin, "", "", f"the {_WHAT} {problem}")
    return Secret(text, origin=origin)
