"""`pilive token-service`: serve tokens, and manage the devices that may ask for them.

    pilive token-service serve            run the service (as its systemd unit does)
    pilive token-service add-device NAME  register a device; prints its credential once
    pilive token-service revoke-device NAME
    pilive token-service list-devices

Exit status: 0 done; 1 the service failed while running; 2 unusable configuration, key,
certificate or command (named by key and value, the key never shown).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pilive.config import ConfigError
from pilive.tokenservice.config import DEFAULT_PATH, TokenServiceConfig, load_service_config

EXIT_FAILURE = 1
EXIT_CONFIG = 2


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_PATH,
        metavar="FILE",
        help=f"the token service's TOML file (default: {DEFAULT_PATH})",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("serve", help="run the service (as its systemd unit does)")
    add = actions.add_parser(
        "add-device", help="register a device and print its credential (shown only this once)"
    )
    add.add_argument("name", help="1-63 lower-case letters, digits, - or _ (e.g. kitchen)")
    add.add_argument(
        "--replace", action="store_true", help="give an existing device a new credential"
    )
    revoke = actions.add_parser("revoke-device", help="refuse a device's token requests")
    revoke.add_argument("name")
    actions.add_parser("list-devices", help="the devices, when added and when revoked")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_service_config(args.config, os.environ)
    except ConfigError as exc:
        print(f"pilive token-service: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.action == "serve":
        return _serve(config)
    return _manage(config, args)


def _manage(config: TokenServiceConfig, args: argparse.Namespace) -> int:
    from pilive.tokenservice.devices import DeviceRegistry, RegistryError  # noqa: PLC0415

    registry = DeviceRegistry(config.service.state_directory)
    try:
        if args.action == "add-device":
            credential = registry.add(args.name, replace=args.replace)
            print(
                f"pilive token-service: device {args.name!r} added. Its credential follows, "
                "shown this once: give it to the device (install.sh --device-credential-stdin "
                "there), then forget it.",
                file=sys.stderr,
            )
            print(credential.reveal(), flush=True)
        elif args.action == "revoke-device":
            registry.revoke(args.name)
            print(
                f"pilive token-service: device {args.name!r} revoked; the service refuses it "
                "within seconds (tokens it holds expire by themselves)",
                file=sys.stderr,
            )
        else:
            registry.reload_if_changed()
            for device in sorted(registry.devices.values(), key=lambda d: d.name):
                state = f"revoked {device.revoked}" if device.revoked else "active"
                print(f"{device.name}\tadded {device.added}\t{state}")
    except RegistryError as exc:
        print(f"pilive token-service: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def _serve(config: TokenServiceConfig) -> int:
    import asyncio  # noqa: PLC0415 - heavy imports only to serve
    import ssl  # noqa: PLC0415

    from pilive.systemd import Notifier, SystemdUnavailable, setup_logging  # noqa: PLC0415
    from pilive.tokenservice.config import (  # noqa: PLC0415
        api_ssl_context,
        load_master_key,
        tls_key_path,
    )

    try:
        api_key = load_master_key(config, os.environ)
        key_path = tls_key_path(config, os.environ)
    except ConfigError as exc:
        print(f"pilive token-service: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    server_tls: ssl.SSLContext | None = None
    try:
        if config.service.tls_cert_file is not None:
            server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            server_tls.minimum_version = ssl.TLSVersion.TLSv1_2
            server_tls.load_cert_chain(config.service.tls_cert_file, key_path)
        api_ssl_context(config)  # a bad api.ca_file is said here, not at the first token
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        print(f"pilive token-service: TLS certificate or key unusable: {reason}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.service.log_level.upper())
    try:
        notifier = Notifier()
    except SystemdUnavailable as exc:
        print(f"pilive token-service: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    from pilive.tokenservice.serve import serve  # noqa: PLC0415

    try:
        asyncio.run(serve(config, api_key, server_tls, notifier))
    except OSError as exc:
        print(
            f"pilive token-service: cannot listen on {config.service.listen}: {exc.strerror}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return 0
