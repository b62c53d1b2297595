"""Finding the Gemini API key, separately from parsing the config.

Looked for in this order, first found wins:

1. `live.api_key` in the config: allowed only when `live.endpoint` is a loopback address, so the
   demo and tests can pin the local emulator's fixed key, and a real key from the environment is
   never sent to a local test server.
2. `$CREDENTIALS_DIRECTORY/gemini-api-key`: systemd's `LoadCredential=gemini-api-key:...`, the way
   the service gets it (systemd keeps that file private to the service; it is not mode-checked).
3. The `GEMINI_API_KEY` environment variable (for trying pilive by hand).
4. `live.api_key_file`, which must not be readable or writable by group or others.

Whitespace around the key (a trailing newline) is removed. The key itself never appears in an
error message.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from pilive.config._reader import ConfigError
from pilive.config._rules import key_text_problem
from pilive.config._secret import Secret
from pilive.config.model import Config

CREDENTIAL_NAME = "gemini-api-key"
ENV_VAR = "GEMINI_API_KEY"
_MAX_KEY_FILE_BYTES = 4096


def load_api_key(config: Config, environ: Mapping[str, str] = os.environ) -> Secret:
    """The API key as a `Secret` whose `origin` says where it came from; `ConfigError` if none."""
    live = config.live
    return find_api_key(live.api_key, live.api_key_file, "live.api_key_file", environ)


def find_api_key(
    inline: Secret | None,
    key_file: Path | None,
    key_file_setting: str,
    environ: Mapping[str, str] = os.environ,
) -> Secret:
    """The key by the order above; `key_file_setting` names the file's key in error messages
    (the daemon's `live.api_key_file`, the token service's `api.api_key_file`)."""
    if inline is not None:
        return inline
    credentials_dir = environ.get("CREDENTIALS_DIRECTORY")
    if credentials_dir:
        path = Path(credentials_dir) / CREDENTIAL_NAME
        if path.exists():
            origin = f"$CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME}"
            return _validated(read_secret_file(path, origin, check_mode=False), origin)
    value = environ.get(ENV_VAR)
    if value is not None:
        return _validated(value.strip(), f"${ENV_VAR}")
    if key_file is not None:
        origin = str(key_file)
        return _validated(read_secret_file(key_file, origin, check_mode=True), origin)
    raise ConfigError.single(
        "API key",
        "",
        "",
        "no API key found: looked for systemd credential "
        f"$CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME}, the {ENV_VAR} environment variable and "
        f"{key_file_setting} (none is set)",
    )


def read_secret_file(path: Path, origin: str, *, check_mode: bool, what: str = "API key") -> str:
    """The text of a secret's file (the key, a device credential), stripped; a regular file,
    small, ASCII, and with `check_mode` not accessible to group or others."""
    try:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if check_mode and mode & 0o077:
                raise ConfigError.single(
                    origin,
                    "",
                    "",
                    f"refusing the {what} file: its mode is {stat.filemode(mode)} "
                    f"({stat.S_IMODE(mode):04o}) and it must not be accessible to group or "
                    f"others; run: chmod 600 {path}",
                )
            if not stat.S_ISREG(mode):
                raise ConfigError.single(origin, "", "", f"the {what} file is not a regular file")
            data = handle.read(_MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError.single(origin, "", "", f"cannot read the {what} file: {reason}") from None
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise ConfigError.single(origin, "", "", f"the {what} file is too large")
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError.single(origin, "", "", f"the {what} file holds non-ASCII bytes") from None


def _validated(key: str, origin: str) -> Secret:
    problem = key_text_problem(key)
    if problem:
        raise ConfigError.single(origin, "", "", f"the API key {problem}")
    return Secret(key, origin=origin)
