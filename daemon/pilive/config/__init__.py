"""pilive's configuration: one TOML file -> frozen, typed dataclasses.

`load_config(path)` reads and checks the file; every problem is reported at once in one
`ConfigError`, each naming the file, the dotted key and the bad value (with the nearest valid key
for a typo). `load_api_key(config)` finds the key separately (see `apikey`), as a `Secret`.
"""

from __future__ import annotations

from pilive.config._load import DEFAULT_CONFIG_PATH, load_config, parse_config
from pilive.config._reader import ConfigError, Problem
from pilive.config._render import render_toml
from pilive.config._secret import Secret
from pilive.config.apikey import load_api_key
from pilive.config.devicetoken import load_credentials
from pilive.config.model import (
    AudioConfig,
    AudioInputConfig,
    AudioOutputConfig,
    CameraConfig,
    CommandTool,
    Config,
    ConnectionConfig,
    ConversationConfig,
    GpioConfig,
    LedPattern,
    LedPatterns,
    LiveConfig,
    LogConfig,
    StateConfig,
    TimelineStep,
    ToolsConfig,
    VadConfig,
)
from pilive.net.endpoint import is_loopback_host

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "AudioConfig",
    "AudioInputConfig",
    "AudioOutputConfig",
    "CameraConfig",
    "CommandTool",
    "Config",
    "ConfigError",
    "ConnectionConfig",
    "ConversationConfig",
    "GpioConfig",
    "LedPattern",
    "LedPatterns",
    "LiveConfig",
    "LogConfig",
    "Problem",
    "Secret",
    "StateConfig",
    "TimelineStep",
    "ToolsConfig",
    "VadConfig",
    "is_loopback_host",
    "load_api_key",
    "load_config",
    "load_credentials",
    "parse_config",
    "render_toml",
]
