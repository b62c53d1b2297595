"""Reading a configuration file (or text) into a `Config`."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pilive.config._reader import ConfigError, Reader
from pilive.config._rules import check_rules
from pilive.config.model import Config

# Where the systemd unit's ExecStart and `pilive check` look when no --config is given.
DEFAULT_CONFIG_PATH = Path("/etc/pilive/pilive.toml")
# Deeper than any real config (a tool schema is a few levels); the checks after parsing recurse,
# so a document nested hundreds of levels deep is refused before them.
MAX_NESTING = 100


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Parse TOML text into a `Config`, or raise `ConfigError` listing every problem.

    Relative paths are taken relative to `base_dir` (the config file's folder; the current
    folder when None) and `~` means `$HOME`. When the text does not set `state.directory`,
    systemd's `$STATE_DIRECTORY` (set by the unit's StateDirectory=) is used if present, and
    likewise `$RUNTIME_DIRECTORY` for `control.socket`.
    """
    env = os.environ if environ is None else environ
    config: Config
    config, document = parse_document(text, Config, source=source, base_dir=base_dir, environ=env)
    problems = check_rules(config, source)
    if problems:
        raise ConfigError(problems)
    state_table = document.get("state", {})
    state_dirs = env.get("STATE_DIRECTORY", "")
    if "directory" not in state_table and state_dirs:
        # systemd passes a colon-separated list when several StateDirectory= are set.
        state = dataclasses.replace(config.state, directory=Path(state_dirs.split(":")[0]))
        config = dataclasses.replace(config, state=state)
    control_table = document.get("control", {})
    runtime_dirs = env.get("RUNTIME_DIRECTORY", "")
    if "socket" not in control_table and runtime_dirs:
        # The unit's RuntimeDirectory=pilive: the socket goes where systemd made room for it.
        socket = Path(runtime_dirs.split(":")[0]) / "control.sock"
        config = dataclasses.replace(
            config, control=dataclasses.replace(config.control, socket=socket)
        )
    return config


def parse_document(
    text: str,
    root: type[Any],
    *,
    source: str,
    base_dir: Path | None,
    environ: Mapping[str, str],
) -> tuple[Any, dict[str, Any]]:
    """TOML text -> an instance of the `root` dataclass schema and the raw document, or
    `ConfigError` naming every problem with a key or value (cross-field rules are the
    caller's). The daemon's configuration and the token service's are read by it alike."""
    env = environ
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError.single(source, "", "", f"invalid TOML: {exc}") from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively.
        raise ConfigError.single(
            source, "", "", "invalid TOML: arrays or inline tables are nested too deeply"
        ) from None
    if _nesting(document) > MAX_NESTING:
        raise ConfigError.single(
            source, "", "", f"arrays or tables are nested more than {MAX_NESTING} levels deep"
        )

    def resolve(value: str) -> Path:
        path = Path(value)
        if value == "~" or value.startswith("~/"):
            home = env.get("HOME")
            if not home:
                raise ConfigError.single(source, "", value, "a path with ~ needs $HOME to be set")
            path = Path(home) / value[2:]
        if not path.is_absolute() and base_dir is not None:
            path = Path(os.path.normpath(base_dir.absolute() / path))
        return path

    reader = Reader(source, root, resolve)
    built = reader.read_section(root, document, "")
    if reader.problems or built is None:
        raise ConfigError(reader.problems)
    return built, document


def _nesting(document: object) -> int:
    """How deep tables and arrays nest, counted without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(value, dict):
            stack.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value)
    return deepest


def load_config(path: Path | None, environ: Mapping[str, str] = os.environ) -> Config:
    """Load the config file at `path` (all defaults when None); raise `ConfigError` if unusable.

    This does not read the API key: see `load_api_key`, which the daemon calls separately so a
    config can be checked and shown without the key being present.
    """
    if path is None:
        return parse_config("", source="<defaults>", environ=environ)
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError.single(
            str(path), "", "", f"cannot read the config file: {reason}"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError.single(
            str(path), "", "", f"is not UTF-8 text (byte {exc.start}): TOML files must be UTF-8"
        ) from None
    return parse_config(text, source=str(path), base_dir=path.parent, environ=environ)
