"""`pilive emulator`: run the local Live API server in the foreground (loopback only)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys

API_KEY_ENV = "PILIVE_EMULATOR_API_KEY"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0: any free port)")
    parser.add_argument("--tls-cert", metavar="FILE", help="PEM certificate chain (serve wss)")
    parser.add_argument("--tls-key", metavar="FILE", help="PEM private key for --tls-cert")
    parser.add_argument(
        "--api-key",
        help=f"the key clients must send (default: ${API_KEY_ENV}, else 'emulator-test-key'); "
        "prefer the environment variable, process arguments are visible to other users",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply every service duration (limits, pacing) by this; 0.01 runs 100x faster",
    )
    parser.add_argument("--log-frames", action="store_true", help="log every frame (data cut)")
    parser.add_argument(
        "--auth-tokens",
        action="store_true",
        help="also serve POST /v1alpha/auth_tokens (ephemeral tokens) on a second loopback port",
    )
    parser.add_argument(
        "--tool-every",
        type=int,
        default=0,
        metavar="N",
        help="call the first declared function on every Nth user turn (0: never)",
    )
    parser.add_argument(
        "--tool-turns",
        default="",
        metavar="N,M",
        help="also call a function on these user turns (1-based, over the session)",
    )
    parser.add_argument(
        "--tool-function", metavar="NAME", help="the declared function to call (default: first)"
    )
    parser.add_argument(
        "--tool-args",
        metavar="JSON",
        help="its arguments as a JSON object (default: made up from its schema)",
    )


def run(args: argparse.Namespace) -> int:
    # Imported here so `pilive --help` stays light (see pilive.cli).
    import asyncio  # noqa: PLC0415

    from pilive.emulator.options import EmulatorOptions, ToolTrigger  # noqa: PLC0415
    from pilive.emulator.server import Emulator  # noqa: PLC0415
    from pilive.net.endpoint import is_loopback_host  # noqa: PLC0415

    if not is_loopback_host(args.host):
        print(
            f"pilive emulator: refusing to bind to {args.host!r}: it is a test tool and only "
            "listens on loopback (127.0.0.1 or ::1)",
            file=sys.stderr,
        )
        return 2
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or "emulator-test-key"
    try:
        options = EmulatorOptions(
            host=args.host,
            port=args.port,
            api_key=api_key,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            time_scale=args.time_scale,
            log_frames=args.log_frames,
            auth_tokens_api=args.auth_tokens,
            tool_trigger=ToolTrigger(
                every_n_turns=max(0, args.tool_every),
                turns=frozenset(int(n) for n in args.tool_turns.split(",") if n.strip()),
                function=args.tool_function,
                args=json.loads(args.tool_args) if args.tool_args else None,
            ),
        )
        emulator = Emulator(options)
    except (ValueError, OSError) as exc:
        print(f"pilive emulator: {exc}", file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def serve() -> None:
        # SIGINT and SIGTERM stop the server cleanly (open connections get a 1001 close).
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with emulator:
            print(f"emulator listening on {emulator.url}", flush=True)
            if args.auth_tokens:
                print(f"auth_tokens API on {emulator.rest_url}", flush=True)
            await stop.wait()

    try:
        asyncio.run(serve())
    except OSError as exc:
        print(f"pilive emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
