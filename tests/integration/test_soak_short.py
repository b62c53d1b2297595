"""A 75-second soak in the normal suite: the whole daemon (`pilive run`) pressed every 5 s through
gpiozero mock pins, with a fault every ~4 s (goAway, closes 1000 / 1011 deadline / 1011
unavailable, emulator stall, proxy reset, proxy stall, and the real service's reported ones:
mid-session 1008 / 1007, goAway with minutes of notice or followed by silence, an expired handle,
a stray interrupted, an empty answer). `make soak` runs the same for 10 minutes."""

from __future__ import annotations

from pathlib import Path

from tests.soak import FAULT_KINDS, print_report, soak


async def test_short_soak_loses_nothing_and_leaks_nothing(tmp_path: Path) -> None:
    """No crash; every press became a turn holding an unbroken piece of the mic signal; every
    answer not hit by a fault was played; RSS (3 MB here: the window is short), fds and threads
    stable after the warm-up; no underrun outside the injected faults."""
    report = await soak(tmp_path, 1.25, seed=1, fault_every_s=4.0, rss_limit_kb=3072)
    print_report(report)
    assert len({f.kind for f in report.faults}) >= len(FAULT_KINDS) - 1, report.faults
    assert report.connections > len(report.faults) // 2, "the faults did not reach the daemon"
    assert report.presses >= 12
    assert not report.failures, report.failures
