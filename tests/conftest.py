"""Shared test configuration.

Rigs (the PulseAudio null-sink rig, the emulator) are fixtures that start what they need and stop
it again; tests that need a rig skip with a reason when its programs are missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

# CI gets a modest fuzz budget; `-m slow` runs use the "slow" profile with far more examples.
settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile("slow", max_examples=100_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _own_runtime_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test's daemons open their control socket in a directory of their own (as systemd's
    RuntimeDirectory= gives the service one), never the machine's /run/pilive: two daemons, or a
    test and a real installation, cannot take each other's socket."""
    runtime = tmp_path_factory.mktemp("run")
    before = os.environ.get("RUNTIME_DIRECTORY")
    os.environ["RUNTIME_DIRECTORY"] = str(runtime)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("RUNTIME_DIRECTORY", None)
        else:
            os.environ["RUNTIME_DIRECTORY"] = before
