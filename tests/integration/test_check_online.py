"""`pilive check --online` against the emulator: a real setup handshake, verdict and exit code."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pilive import check
from tests.support.emulator_rig import emulator_options, running


def _config(tmp_path: Path, endpoint: str, key: str, model: str | None = None) -> Path:
    path = tmp_path / "pilive.toml"
    lines = ["[live]", f'endpoint = "{endpoint}"', f'api_key = "{key}"']
    if model is not None:
        lines.append(f'model = "{model}"')
    lines += ["[connection]", "connect_timeout_s = 3.0"]
    # Mock pins: check also asks for the GPIO library a real pin factory needs.
    lines += ["[gpio]", 'pin_factory = "mock"']
    path.write_text("\n".join(lines) + "\n")
    return path


async def _run_check(path: Path) -> int:
    import asyncio

    args = argparse.Namespace(config=path, online=True)
    return await asyncio.to_thread(check.run, args)


async def test_online_check_accepts_a_working_key_and_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The emulator completes setup: exit 0 and the endpoint and model named."""
    async with running(emulator_options()) as emu:
        status = await _run_check(_config(tmp_path, emu.url, emu.api_key))
    assert status == 0
    assert "online check: setup accepted by" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("key", "model", "cause"),
    [
        ("wrong-key", None, "API key invalid (1007)"),
        (None, "gemini-no-such-model", "model not found"),
    ],
)
async def test_online_check_names_what_the_server_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    key: str | None,
    model: str | None,
    cause: str,
) -> None:
    """A refused key or model: exit 3 and the cause the server gave, the key never printed."""
    async with running(emulator_options()) as emu:
        path = _config(tmp_path, emu.url, key or emu.api_key, model)
        status = await _run_check(path)
    assert status == check.EXIT_OFFLINE
    err = capsys.readouterr().err
    assert cause in err
    assert "wrong-key" not in err


async def test_online_check_reports_an_unreachable_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listening: exit 3 with the network cause, after one attempt (no retry loop)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    status = await _run_check(_config(tmp_path, f"ws://127.0.0.1:{port}", "k"))
    assert status == check.EXIT_OFFLINE
    assert "connection refused" in capsys.readouterr().err
