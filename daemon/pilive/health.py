"""The periodic health line: what would grow if something leaked or stalled.

Kept apart from the app, which hands in its parts' counters; the watchdog is systemd.run_watchdog.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Mapping

from pilive.systemd import event_fields

log = logging.getLogger("pilive")


async def report_health(
    interval_s: float, part_figures: Callable[[], Mapping[str, int | float]]
) -> None:
    """One line per interval with what would grow if something leaked or stalled: the process's
    tasks, threads, descriptors and memory, then the parts' own counters."""
    while True:
        await asyncio.sleep(interval_s)
        figures = {
            "tasks": len(asyncio.all_tasks()),
            "threads": threading.active_count(),
            "fds": open_fds(),
            "rss_kb": rss_kb(),
            **part_figures(),
        }
        text = " ".join(f"{k}={v}" for k, v in figures.items())
        log.info("health %s", text, extra=event_fields("health", **figures))


def open_fds() -> int:
    """Open file descriptors of this process, or -1 where /proc cannot tell."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def rss_kb() -> int:
    """Resident memory of this process in KiB, or -1 where /proc cannot tell."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return -1
