"""What `pilive run` would refuse at start that the file alone does not show; `check` asks too.

The config package checks the file: keys, types, ranges, rules between keys. Some faults show only
on the machine or once the daemon builds its parts: a GPIO library that is not installed, a
microphone WAV that is missing or not a WAV, a tool schema the setup message refuses, the keyboard
backend without a terminal. `pilive run` and `pilive check` call the same `problems`, so check
catches what run would reject, and run stops with a one-line error naming the key instead of a
traceback. Each fault is a config `Problem`: the file, the dotted key, the value and why.
"""

from __future__ import annotations

import importlib
import json
import os
import ssl
import stat
from collections.abc import Callable
from pathlib import Path

from pilive.config import Config, ConfigError, Problem
from pilive.config._reader import show_value
from pilive.config.apikey import read_secret_file

# gpio.pin_factory -> (the module gpiozero's pin factory imports, the Debian package holding it).
GPIO_LIBRARIES: dict[str, tuple[str, str]] = {
    "lgpio": ("lgpio", "python3-lgpio"),
    "pigpio": ("pigpio", "python3-pigpio"),
    "rpigpio": ("RPi.GPIO", "python3-rpi.gpio"),
}
_MAX_MESSAGE_CHARS = 200

_Report = Callable[[str, object, str], None]
"""problem(key, value, message): how each check reports; a value of "" is not shown."""


def problems(config: Config, source: str, *, stdin_fd: int | None = None) -> list[Problem]:
    """Every start-up fault of a config that parsed. `stdin_fd` is where the keyboard backend
    reads (run passes 0; check runs on a terminal of its own and leaves it out)."""
    found: list[Problem] = []

    def problem(key: str, value: object, message: str) -> None:
        # A path is shown whole: its end names the file, where show_value would cut it.
        shown = json.dumps(str(value)) if isinstance(value, Path) else show_value(value)
        shown = "" if value == "" else shown
        found.append(Problem(source, key, shown, _shorten(message)))

    if config.conversation.button_backend == "gpio":
        _check_gpio_library(config, problem)
    mic = config.audio.input
    if mic.backend == "file" and mic.file_path is not None:
        why = _wav_problem(mic.file_path)
        if why:
            problem("audio.input.file_path", mic.file_path, why)
    _check_setup(config, problem)
    _check_mqtt_password(config, problem)
    ca_file = config.live.token_ca_file
    if ca_file is not None:
        try:
            ssl.create_default_context(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
            problem("live.token_ca_file", ca_file, f"is not a usable CA file ({reason})")
    if config.conversation.button_backend == "keyboard" and stdin_fd is not None:
        why = _not_a_terminal(stdin_fd)
        if why:
            problem(
                "conversation.button_backend",
                "keyboard",
                f"needs a terminal on standard input, but {why} (as under systemd); "
                'use "gpio" for the service',
            )
    return found


def _check_mqtt_password(config: Config, problem: _Report) -> None:
    """The MQTT password file is read as the API key's is: present, small, mode 600."""
    path = config.mqtt.password_file
    if not config.mqtt.enabled or path is None:
        return
    try:
        read_secret_file(path, "mqtt.password_file", check_mode=True, what="MQTT password")
    except ConfigError as exc:
        problem("mqtt.password_file", path, "; ".join(p.message for p in exc.problems))


def _check_gpio_library(config: Config, problem: _Report) -> None:
    factory = config.gpio.pin_factory
    library = GPIO_LIBRARIES.get(factory)
    if library is None:
        return
    module, package = library
    try:
        importlib.import_module(module)
    except ImportError:
        problem(
            "gpio.pin_factory",
            factory,
            f"needs the Python module {module}, which is not installed: "
            f"sudo apt install {package} (the venv must use --system-site-packages)",
        )
    except Exception as exc:  # a broken install; RPi.GPIO refuses a machine that is not a Pi
        problem("gpio.pin_factory", factory, f"the Python module {module} cannot load: {exc!r}")


def _wav_problem(path: Path) -> str:
    """Why the file backend could not read `path` as its microphone, or ""."""
    from pilive.audio.backends import AudioDeviceError  # noqa: PLC0415 - run and check only
    from pilive.audio.backends.simulated import read_wav_format  # noqa: PLC0415

    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "no such file (the microphone WAV)"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory, not a WAV file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file (a FIFO or device), not a WAV file"
    try:
        read_wav_format(path)
    except AudioDeviceError as exc:
        return str(exc).removeprefix(f"{path}: ")
    return ""


def _check_setup(config: Config, problem: _Report) -> None:
    """Each command tool's schema as the daemon declares it in `setup`: normalised by the tools'
    schema checker, then a `wire.FunctionDeclaration`, whose own checks (JSON nested at most 64
    levels, say) are the ones `pilive run` meets when it builds the setup message. Only light
    modules are loaded: `pilive check` must not pull in asyncio or the network stack."""
    from pilive.live import wire  # noqa: PLC0415 - loaded only when asked
    from pilive.tools.schema import check_schema  # noqa: PLC0415

    for index, tool in enumerate(config.tools.command):
        key = f"tools.command[{index}].parameters"
        try:
            parameters = check_schema(tool.parameters or {"type": "object", "properties": {}})
            # As tools.base.declaration_of: a tool without arguments declares no parameters.
            declared = parameters if parameters.get("properties") else None
            wire.FunctionDeclaration(tool.name, tool.description, declared)
        except ValueError as exc:
            problem(key, "", f"the Live API setup refuses it: {exc}")


def _not_a_terminal(fd: int) -> str:
    """Why `fd` cannot carry keyboard presses, or "" for a terminal or a pipe."""
    try:
        st = os.fstat(fd)
    except OSError:
        return "standard input is closed"
    if os.isatty(fd) or stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
        return ""
    if stat.S_ISCHR(st.st_mode):
        return "standard input is a device that is not a terminal (/dev/null?)"
    return "standard input is a file, not a terminal"


def _shorten(message: str) -> str:
    """Keep one readable line: a schema path can be hundreds of characters long."""
    if len(message) <= _MAX_MESSAGE_CHARS:
        return message
    keep = _MAX_MESSAGE_CHARS // 2 - 1
    return message[:keep] + " … " + message[-keep:]
