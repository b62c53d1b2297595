"""Shared test configuration.

Rigs (the PulseAudio null-sink rig, the emulator) are fixtures that start what they need and stop
it again; tests that need a rig skip with a reason when its programs are missing.
"""

from __future__ import annotations

import os

from hypothesis import settings

# CI gets a modest fuzz budget; `-m slow` runs use the "slow" profile with far more examples.
settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile("slow", max_examples=100_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
