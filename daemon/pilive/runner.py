"""`pilive run`: the daemon, as systemd (or a terminal) starts it.

Exit status:
- 0 after a clean stop (SIGTERM/SIGINT, or a timeline "stop");
- 1 when a part failed and stopped the daemon ("... failed; stopping" in the log), or when systemd
  expects notifications that cannot be sent (NOTIFY_SOCKET set, systemd-python missing): the
  unit restarts it;
- 2 when it cannot start as configured: an unusable configuration or key, a start-up fault that
  `pilive check` also reports (named by key and value, the key never shown), or another pilive
  already running with the same state directory.
SIGHUP is logged and ignored (there is no reload).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from pilive.cli import add_config_argument
from pilive.config import ConfigError, load_config, load_credentials

EXIT_CONFIG = 2
EXIT_ENVIRONMENT = 1
EXIT_FAILURE = 1


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    from pilive.preflight import problems  # noqa: PLC0415 - after argument parsing

    try:
        config = load_config(args.config, os.environ)
        # The API key, or on a fleet device (live.token_url) its token-service credential.
        api_key = load_credentials(config, os.environ)
        # The keyboard backend reads fd 0 (stdin), whatever sys.stdin has become.
        found = problems(config, str(args.config), stdin_fd=0)
        if found:
            raise ConfigError(found)
    except ConfigError as exc:
        print(f"pilive: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    from pilive.app import App, install_signal_handlers  # noqa: PLC0415 - heavy imports
    from pilive.memory import bound_malloc  # noqa: PLC0415
    from pilive.state import AlreadyRunning, StateLock  # noqa: PLC0415
    from pilive.systemd import Notifier, SystemdUnavailable, setup_logging  # noqa: PLC0415

    setup_logging(config.log.level.upper())
    bound_malloc()  # before any device, camera or tool thread allocates
    try:
        notifier = Notifier()
    except SystemdUnavailable as exc:
        print(f"pilive: {exc}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    try:
        lock = StateLock(config.state.directory)
    except AlreadyRunning as exc:
        print(f"pilive: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if lock.problem is not None:
        # Nothing can be shared through a directory that cannot be opened: run unguarded.
        logging.getLogger("pilive").warning(
            "%s; running without the single-instance lock", lock.problem
        )
    app = App(config, api_key, notifier=notifier)

    async def main() -> None:
        install_signal_handlers(app)
        await app.run()

    try:
        asyncio.run(main())
    finally:
        lock.release()
    if app.failure is not None:
        # The exception itself is in the log; this line is for whoever reads the exit status.
        print(f"pilive: {app.failure}; exit status {EXIT_FAILURE}", file=sys.stderr)
        return EXIT_FAILURE
    return 0
