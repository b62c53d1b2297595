"""The daemon's memory bound against the C allocator's defaults (glibc malloc).

glibc serves a block of 128 KiB or more with its own mmap, returned to the kernel when freed,
but after the first such block is freed it raises that threshold to the block's size (up to 32
MiB). From then on every camera frame (1.7 MB at 768x768 RGB), its JPEG and base64 copies come
from the heap of the thread that made them and stay resident after they are freed: 2.4 MB in the
camera thread's heap, measured, for frames that live a few milliseconds once a second. Fixing
the threshold keeps them short-lived in memory too; a block that size costs one mmap and munmap,
nothing beside the work done on it.
"""

from __future__ import annotations

import ctypes

_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value, now kept


def bound_malloc() -> bool:
    """Keep big blocks on mmap for the life of the process; call it before threads start.
    False where the C library has no such setting (not glibc): nothing changes there."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
