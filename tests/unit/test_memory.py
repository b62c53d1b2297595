"""The daemon's malloc bound: big short-lived blocks made by a thread go back to the kernel."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# A worker thread makes and frees 2 MB blocks, as the camera thread does with frames; how much the
# process's RSS grew afterwards, in kB.
CHURN = textwrap.dedent(
    """
    import re, sys, threading
    from pilive.memory import bound_malloc
    if sys.argv[1] == "bound" and not bound_malloc():
        sys.exit("not glibc")
    def rss_kb():
        return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
    def frames(size, count):
        for _ in range(count):
            block = bytearray(size)
            del block
    # The same code with small blocks first: under qemu-user RSS also counts the emulator's
    # translated code, which must not grow during the measurement.
    warm_up = threading.Thread(target=frames, args=(50_000, 5))
    warm_up.start()
    warm_up.join()
    before = rss_kb()
    worker = threading.Thread(target=frames, args=(2_000_000, 20))
    worker.start()
    worker.join()
    print(rss_kb() - before)
    """
)


def grown_kb(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", CHURN, mode], check=False, capture_output=True, text=True
    )
    if done.returncode != 0 and "not glibc" in done.stderr:
        pytest.skip("not glibc: mallopt(M_MMAP_THRESHOLD) is not available")
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_freed_frames_do_not_stay_resident_once_malloc_is_bounded() -> None:
    """With bound_malloc() the thread's freed 2 MB blocks are returned (RSS grows by under 1 MB:
    the thread's stack and bookkeeping); without it glibc keeps the last one in the thread's heap
    (RSS grows by more than 1.5 MB), which is what the bound is for."""
    assert grown_kb("bound") < 1000
    assert grown_kb("default") > 1500
