"""The control socket's file is never wider than mode 0660, not even between bind and chmod."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pilive.control import server as control_server
from pilive.control.server import ControlServer


async def test_the_socket_is_born_0660_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a umask of 0 (as a careless service manager may leave it), binding an ordinary Unix
    socket makes a 0777 file until the chmod after it; the server sets the socket's own mode
    before bind, so the mode the file has at the chmod (read here, just before it runs) is
    already 0660, and it ends 0660."""
    seen: list[int] = []
    real_chmod = os.chmod

    def chmod_seeing(path: os.PathLike[str] | str, mode: int) -> None:
        seen.append(stat.S_IMODE(os.stat(path).st_mode))
        real_chmod(path, mode)

    monkeypatch.setattr(control_server.os, "chmod", chmod_seeing)
    path = tmp_path / "control.sock"
    old_umask = os.umask(0)
    try:
        server = ControlServer(path, lambda request: {"ok": True})
        await server.start()
    finally:
        os.umask(old_umask)
    try:
        assert seen == [0o660]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    finally:
        await server.aclose()
