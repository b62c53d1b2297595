"""A real MQTT broker for the tests: Debian's mosquitto, started on loopback by the test.

Two listeners on free ports: plain (for the test's own observer) and TLS with a trustme
certificate for 127.0.0.1; both take the user and password, and by default nothing else (no
anonymous access; `anonymous_mosquitto` lets clients in without credentials too, while a wrong
user or password is still refused). Persistence is off, so a restart forgets retained messages:
a client that reconnects must publish again.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "pilive"
PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Mosquitto:
    directory: Path
    port: int
    tls_port: int
    ca_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.directory / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.directory / "mosquitto.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_text(self) -> str:
        path = self.directory / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def broker(tmp_path: Path, *, allow_anonymous: bool = False) -> Iterator[Mosquitto]:
    """A running broker (skipped where Debian's mosquitto is not installed)."""
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto is not installed (Debian package: mosquitto)")
    import trustme

    directory = tmp_path / "broker"
    directory.mkdir()
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.private_key_pem.write_to_path(str(directory / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(directory / "cert.pem"))
    passwd = directory / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), USER, PASSWORD], check=True)
    running = Mosquitto(directory, _free_port(), _free_port(), ca_path)
    (directory / "mosquitto.conf").write_text(
        "\n".join(
            [
                "user root",  # as root, mosquitto would otherwise switch to its own user
                "persistence false",
                f"allow_anonymous {'true' if allow_anonymous else 'false'}",
                f"password_file {passwd}",
                f"listener {running.port} 127.0.0.1",
                f"listener {running.tls_port} 127.0.0.1",
                f"cafile {ca_path}",
                f"certfile {directory / 'cert.pem'}",
                f"keyfile {directory / 'key.pem'}",
                "",
            ]
        )
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running broker that lets in only USER with PASSWORD."""
    with broker(tmp_path) as running:
        yield running


@pytest.fixture
def anonymous_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running broker that also lets in clients without credentials (allow_anonymous)."""
    with broker(tmp_path, allow_anonymous=True) as running:
        yield running
