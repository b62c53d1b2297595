"""The sans-I/O core stays sans-I/O: importing it loads no event loop, network or hardware code.

Checked in a fresh interpreter, so modules imported by other tests cannot hide a regression.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CORE = [
    "pilive.live.wire",
    "pilive.live.session",
    "pilive.live.retry",
    "pilive.live.events",
    "pilive.conversation",
    "pilive.controls.events",
    "pilive.config",
]
FORBIDDEN = ["asyncio", "websockets", "gpiozero", "pyaudio", "picamera2", "numpy", "threading"]


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_io(module: str) -> None:
    """Importing the module pulls in none of the forbidden I/O libraries."""
    code = f"import sys, {module}\nprint(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"{module} imports {out}"
