"""Return large freed blocks to the operating system (glibc only), without paying for it
on every small buffer.

glibc serves allocations below its mmap threshold from heaps that threads share and that
rarely shrink, and it raises that threshold to the size of the largest block freed (up to
32 MiB). Blocks of an upscaled image (4 to 90 MB each, allocated and freed by several
threads) then stay in the heaps and fragment them: the peak memory of a run grew with the
image (2.40 GiB at 2k, 2.94 GiB at 8k with the shipped model, benchmarks/memory.py).
A fixed threshold maps every large block on its own and unmaps it when freed.

The threshold is 4 MiB, not lower: GDAL compresses a GeoTIFF tile (2 MiB for 512 x 512
x 4 uint16) through buffers of about the tile's size, allocated and freed for every
tile. Mapped on their own (a threshold of 1 MiB), each came back from the kernel as
fresh pages to zero: 360 thousand page faults for the x4 sample scene written with zstd,
against 110 thousand uncompressed. Below 4 MiB they come from the heaps, and a trim
threshold of 8 MiB keeps the heaps from handing such buffers back between tiles (24-37
thousand faults, benchmarks/pipeline.py). ``MALLOC_MMAP_THRESHOLD_`` and
``MALLOC_TRIM_THRESHOLD_`` in the environment win over these values.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

#: ``M_TRIM_THRESHOLD`` and ``M_MMAP_THRESHOLD`` of glibc's ``mallopt``.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 4 << 20
TRIM_BYTES = 8 << 20


def map_large_blocks() -> bool:
    """Make glibc map blocks of 4 MiB and more on their own, and keep up to 8 MiB free at
    the top of a heap; True if anything was set here."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        done = False
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            done |= bool(libc.mallopt(_M_MMAP_THRESHOLD, THRESHOLD_BYTES))
        if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
            done |= bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES))
        return done
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
