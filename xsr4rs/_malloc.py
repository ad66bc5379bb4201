"""Return large freed blocks to the operating system (glibc only).

glibc serves allocations below its mmap threshold from heaps that threads share and that
rarely shrink, and it raises that threshold to the size of the largest block freed (up to
32 MiB). Blocks of an upscaled image (1 to 90 MB each, allocated and freed by several
threads) then stay in the heaps and fragment them: the peak memory of a run grew with the
image (2.40 GiB at 2k, 2.94 GiB at 8k with the shipped model, benchmarks/memory.py).
A fixed threshold of 1 MiB maps every large block on its own and unmaps it when freed.
Setting ``MALLOC_MMAP_THRESHOLD_`` in the environment does the same before start-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

#: ``M_MMAP_THRESHOLD`` of glibc's ``mallopt``.
_M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 1 << 20


def map_large_blocks() -> bool:
    """Make glibc map blocks of 1 MiB and more on their own; True if it was set here."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, THRESHOLD_BYTES))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
