"""`pilive emulator` as a process: it serves on loopback, refuses other hosts, and keeps the key
out of its output."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from websockets.sync.client import connect

from pilive.emulator import cli
from tests.support.emulator_rig import setup_message


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_refuses_a_non_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    """Binding to all interfaces is refused with a message that says why (exit status 2)."""
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    assert cli.run(parser.parse_args(["--host", "0.0.0.0"])) == 2
    assert "only listens on loopback" in capsys.readouterr().err


def test_serves_a_session_and_never_prints_the_key() -> None:
    """The standalone server answers a setup with setupComplete; the key from the environment
    works and appears nowhere in its log output."""
    port = _free_port()
    key = "cli-test-key-7f3a"
    env = dict(os.environ, PILIVE_EMULATOR_API_KEY=key)
    code = (
        "import sys, argparse; from pilive.emulator import cli; p = argparse.ArgumentParser();"
        "cli.configure_parser(p); sys.exit(cli.run(p.parse_args(sys.argv[1:])))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", str(port), "--log-frames"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        while "emulator listening on" not in (line := proc.stdout.readline()):
            assert line, "the emulator exited before listening"
        assert line.strip().endswith(f"emulator listening on ws://127.0.0.1:{port}")
        deadline = time.monotonic() + 10
        path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
        while True:
            try:
                ws = connect(
                    f"ws://127.0.0.1:{port}{path}", additional_headers={"x-goog-api-key": key}
                )
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        with ws:
            ws.send(json.dumps(setup_message(resumption=False)))
            assert json.loads(ws.recv()) == {"setupComplete": {}}
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0  # SIGTERM is a clean stop
    assert "c1 opened" in output
    assert key not in output
