"""The `pilive` command: one entry point, a subcommand per job.

Each subcommand lives in its own module that imports nothing heavy at module level (hardware and
network libraries are imported inside `run`), so `pilive check` works on a machine without audio
or camera libraries and start-up stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from pilive import __version__

# name -> (module, one-line help); the module has configure_parser(parser) and run(args) -> int.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("pilive.runner", "Run the daemon (as the systemd service does)"),
    "demo": (
        "pilive.demo",
        "Run the whole daemon on simulated hardware against a local emulator, with a timeline",
    ),
    "ctl": (
        "pilive.ctl",
        "Talk to the running daemon: status, press, release, say, new-conversation, mute, volume",
    ),
    "check": (
        "pilive.check",
        "Check a configuration file and show the settings it resolves to (API key masked)",
    ),
    "emulator": (
        "pilive.emulator.cli",
        "Run a local Gemini Live API emulator (loopback only, for tests and demos)",
    ),
    "camera": (
        "pilive.camera.cli",
        "Take a few frames through the camera pipeline and save them as JPEGs",
    ),
    "token-service": (
        "pilive.tokenservice.cli",
        "On the owner's server: mint ephemeral tokens for a fleet of devices, manage devices",
    ),
    "devices": (
        "pilive.audio.devices",
        "List audio devices, the rates they accept, and which ones a name picks",
    ),
}


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """`--config FILE`, the same for every subcommand that reads the configuration."""
    from pilive.config import DEFAULT_CONFIG_PATH  # noqa: PLC0415 - only where a config is read

    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        metavar="FILE",
        help=f"the TOML configuration file (default: {DEFAULT_CONFIG_PATH})",
    )


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `command`, only that subcommand's module is imported to add
    its options (the others are listed by name and help): `pilive run` must not load the emulator,
    the demo or the camera tool, and numpy with them."""
    parser = argparse.ArgumentParser(
        prog="pilive",
        description="Push-to-talk voice and vision assistant on the Gemini Live API.",
    )
    parser.add_argument("--version", action="version", version=f"pilive {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module_name)
        if command is None or command == name:
            importlib.import_module(module_name).configure_parser(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The first word that is not an option names the subcommand (`pilive --version` has none).
    command = next((word for word in argv if not word.startswith("-")), "")
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(args._module)
    result: int = module.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
