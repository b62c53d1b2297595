"""`pilive check`: is this configuration usable? Shows what the daemon would run with.

Exit status 0 when the config and the API key are usable (the key shown only as its length),
2 with every problem on stderr otherwise; with --online, 3 when the server refused the setup or
could not be reached (the cause on stderr). Besides the file, it asks what `pilive run` asks at
start (`preflight`): GPIO library installed, microphone WAV readable, tool schemas the setup takes.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

from pilive.cli import add_config_argument

# The config package is standard library only, so importing it here keeps start-up light.
from pilive.config import (
    Config,
    ConfigError,
    load_config,
    load_credentials,
    render_toml,
)
from pilive.config_warnings import model_warnings

EXIT_INVALID = 2
EXIT_OFFLINE = 3


def echo_description(config: Config) -> str:
    """Which echo mode the microphone will run in and why (without loading the audio stack)."""
    from pilive.audio.echo_mode import EchoSettings, expected  # noqa: PLC0415 - once valid

    echo = config.audio.echo
    settings = EchoSettings(
        echo.mode, echo.canceller, echo.noise_suppression, echo.auto_gain, echo.tail_ms
    )
    conv = config.conversation
    return expected(settings, hands_free=conv.mode == "hands-free", wake_word=wake_word_on(config))


def wake_word_on(config: Config) -> bool:
    """A wake word is configured and can run here (the package is installed)."""
    from pilive.wake_word import missing_package  # noqa: PLC0415 - once valid

    return config.conversation.wake_word != "off" and missing_package() is None


def wake_word_description(config: Config) -> str:
    """Whether the wake word is active and, if not, why (`pilive check`, the daemon's log)."""
    from pilive.wake_word import describe  # noqa: PLC0415 - once valid

    return describe(config.conversation.wake_word)


def camera_description(config: Config) -> str:
    """What the camera will send and whether this machine has the libraries for it: Pillow
    crops, scales and encodes every frame, picamera2 drives the Pi camera. Asked of the
    installed packages without importing them (the check stays light)."""
    camera = config.camera
    if camera.source == "none" or camera.mode == "off":
        return "camera off"
    what = (
        f"camera: {camera.source}, {camera.size_px} px JPEG at {camera.fps:g} fps ({camera.mode})"
    )
    missing = [
        f"{module} is not installed (sudo apt install {package})"
        for module, package, needed in (
            ("PIL", "python3-pil", True),
            ("picamera2", "python3-picamera2", camera.source == "picamera2"),
        )
        if needed and importlib.util.find_spec(module) is None
    ]
    if missing:
        return f"{what}; no frames will go out: {'; '.join(missing)}"
    try:
        pillow = f"Pillow {importlib.metadata.version('Pillow')}"
    except importlib.metadata.PackageNotFoundError:  # a distribution's own packaging
        pillow = "Pillow"
    return f"{what}; {pillow} encodes"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--online",
        action="store_true",
        help="also do a real setup handshake with the endpoint to test the key and model",
    )


def run(args: argparse.Namespace) -> int:
    path: Path = args.config
    try:
        config = load_config(path, os.environ)
        key = load_credentials(config, os.environ)
        from pilive.preflight import problems  # noqa: PLC0415 - needed once the file parsed

        found = problems(config, str(path))
        if found:
            raise ConfigError(found)
    except ConfigError as exc:
        count = len(exc.problems)
        print(
            f"pilive check: {path} is not usable ({count} problem{'s' * (count != 1)}):",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
    print(f"# pilive configuration from {path}: valid")
    what = "API key" if config.live.token_url is None else "device credential"
    print(f"# {what}: {key!r} from {key.origin}")
    print(f"# microphone: {echo_description(config)}")
    print(f"# {wake_word_description(config)}")
    print(f"# {camera_description(config)}")
    for warning in model_warnings(config):
        print(f"pilive check: warning: {warning}", file=sys.stderr)
    print()
    print(render_toml(config), end="")
    if getattr(args, "online", False):
        import asyncio  # noqa: PLC0415 - only the online check needs the network stack

        from pilive.probe import probe  # noqa: PLC0415

        result = asyncio.run(probe(config, key))
        print()
        if not result.ok:
            print(f"pilive check: online check failed: {result.detail}", file=sys.stderr)
            return EXIT_OFFLINE
        print(f"# online check: {result.detail}")
    return 0
