"""The devices a token service serves: names, hashed credentials, revocations.

A device's credential is `NAME.SECRET`, the secret 32 random bytes (URL-safe base64). Only
SHA-256 of the secret is stored: a slow password hash buys nothing for a 256-bit random secret,
which no one can guess or look up, and a fast one keeps every request cheap. Comparison is in
constant time, and an unknown name costs the same work as a known one.

The registry is one JSON file in the service's state directory, written whole to a temporary
file and renamed into place (owner and group of the directory, mode 0600), so the running
service, which reloads it when it changes, never reads half a file. `add-device` and
`revoke-device` run as separate commands (root); the service notices within a few seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pilive.config import Secret

FILE_NAME = "devices.json"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_SECRET_BYTES = 32
_NO_SUCH_DEVICE = hashlib.sha256(b"no such device").hexdigest()


class RegistryError(Exception):
    """The registry file cannot be read or written, or a command cannot be done; says why."""


@dataclass(frozen=True, slots=True)
class Device:
    name: str
    secret_sha256: str
    added: str
    revoked: str | None = None


def _stamp(now_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_s))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii", "replace")).hexdigest()


class DeviceRegistry:
    """The devices in `directory`/devices.json; `reload_if_changed` picks up other writers."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME
        self.devices: dict[str, Device] = {}
        self._seen: tuple[int, int, int] | None = None

    # -- reading ------------------------------------------------------------------------------

    def reload_if_changed(self) -> bool:
        """Read the file again if it changed since the last read; True when it was read."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            changed = self._seen is not None or self.devices
            self.devices, self._seen = {}, None
            return bool(changed)
        except OSError as exc:
            raise RegistryError(f"cannot read {self.path}: {exc.strerror}") from None
        seen = (info.st_ino, info.st_mtime_ns, info.st_size)
        if seen == self._seen:
            return False
        self.devices = self._read()
        self._seen = seen
        return True

    def _read(self) -> dict[str, Device]:
        try:
            data = json.loads(self.path.read_bytes())
            devices = {
                name: Device(name, entry["sha256"], entry["added"], entry.get("revoked"))
                for name, entry in data["devices"].items()
            }
        except OSError as exc:
            raise RegistryError(f"cannot read {self.path}: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RegistryError(f"{self.path} is not a device registry (damaged?)") from None
        return devices

    def verify(self, credential: str) -> tuple[Device | None, str]:
        """(the device, "") for a good credential, else (None, why: "unknown" or "revoked");
        "revoked" only to a holder of the right secret."""
        name, _, secret = credential.partition(".")
        device = self.devices.get(name) if NAME_PATTERN.fullmatch(name) else None
        expected = device.secret_sha256 if device is not None else _NO_SUCH_DEVICE
        matches = hmac.compare_digest(_digest(secret), expected)
        if device is None or not matches or not secret:
            return None, "unknown"
        if device.revoked is not None:
            return None, "revoked"
        return device, ""

    # -- writing (the CLI) --------------------------------------------------------------------

    def add(self, name: str, *, replace: bool = False, now_s: float | None = None) -> Secret:
        """Register `name` and return its credential (shown once, never stored)."""
        if not NAME_PATTERN.fullmatch(name):
            raise RegistryError(
                f"device name {name!r} must be 1-63 lower-case letters, digits, - or _"
            )
        self.reload_if_changed()
        if name in self.devices and not replace:
            raise RegistryError(
                f"device {name!r} exists; revoke it, or give --replace for a new credential"
            )
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        stamp = _stamp(time.time() if now_s is None else now_s)
        self.devices[name] = Device(name, _digest(secret), stamp)
        self._write()
        return Secret(f"{name}.{secret}", origin=f"device {name}")

    def revoke(self, name: str, *, now_s: float | None = None) -> None:
        self.reload_if_changed()
        device = self.devices.get(name)
        if device is None:
            raise RegistryError(f"no device {name!r}; known: {', '.join(sorted(self.devices))}")
        if device.revoked is None:
            stamp = _stamp(time.time() if now_s is None else now_s)
            self.devices[name] = Device(name, device.secret_sha256, device.added, stamp)
            self._write()

    def _write(self) -> None:
        directory = self.path.parent
        data = {
            "version": 1,
            "devices": {
                d.name: {"sha256": d.secret_sha256, "added": d.added, "revoked": d.revoked}
                for d in sorted(self.devices.values(), key=lambda d: d.name)
            },
        }
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            owner = directory.stat()
            handle, temp = tempfile.mkstemp(prefix=".devices.", dir=directory)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump(data, out, indent=1)
                    out.write("\n")
                    out.flush()
                    os.fsync(out.fileno())
                    if os.geteuid() == 0:
                        # Written by root for a service that runs as the directory's owner.
                        os.fchown(out.fileno(), owner.st_uid, owner.st_gid)
                os.replace(temp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
        except OSError as exc:
            raise RegistryError(f"cannot write {self.path}: {exc.strerror}") from None
        self._seen = None
