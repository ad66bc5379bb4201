"""Return large freed blocks to the operating system (glibc only), without paying for it
on every small buffer.

glibc serves allocations below its mmap threshold from heaps that threads share and that
rarely shrink, and it raises that threshold to the size of the largest block freed (up to
32 MiB). Blocks of an upscaled image (4 to 90 MB each, allocated and freed by several
threads) then stay in the heaps and fragment them: the peak memory of a run grew with the
image (2.40 GiB at 2k, 2.94 GiB at 8k with the shipped model, benchmarks/memory.py).
A fixed threshold of 1 MiB maps every large block on its own and unmaps it when freed.

Memory first, at a measured cost in speed. GDAL compresses each GeoTIFF tile (2 MiB for
512 x 512 x 4 uint16) through buffers of about that size, allocated and freed per tile;
mapped on their own, they come back from the kernel as fresh pages to zero (360 thousand
page faults for the x4 sample scene with zstd). A 4 MiB threshold with an 8 MiB trim
threshold keeps them in the heaps: the x4 sample scene ran at 0.97-1.00 of the raw
model uncompressed instead of 0.93-0.95, and a full Sentinel-2 tile took 7.4 minutes
instead of 8.1 (bf16). But there the compressed tiles of real data, of every size below
2 MiB, leave holes in the heaps that the next buffer does not fit: the full tile peaked
at 2.86 GiB against 1.94 GiB (2.23 GiB with `PeriodicTrim`). Where memory is not tight,
``MALLOC_MMAP_THRESHOLD_=4194304 MALLOC_TRIM_THRESHOLD_=8388608`` in the environment
choose the faster setting: values set there win over the ones set here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
import threading
import time
from typing import Any

#: ``M_MMAP_THRESHOLD`` of glibc's ``mallopt``.
_M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 1 << 20


def map_large_blocks() -> bool:
    """Make glibc map blocks of 1 MiB and more on their own (unless the environment
    sets ``MALLOC_MMAP_THRESHOLD_``); True if it was set here."""
    libc = _libc()
    if libc is None:
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, THRESHOLD_BYTES))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


def trim() -> bool:
    """Hand the free memory of glibc's heaps back to the system, holes inside them
    included (``malloc_trim(0)``); True if some was."""
    libc = _libc()
    try:
        return bool(libc.malloc_trim(0)) if libc is not None else False
    except AttributeError:  # not glibc
        return False


class PeriodicTrim:
    """Call `trim` at most once every ``seconds``, from any thread: ``trimmer()``.

    The GeoTIFF writer calls one after each block. Holes left in glibc's heaps by GDAL's
    per-tile buffers (when they come from the heaps: a raised mmap threshold, or memory
    freed below it) then go back to the system instead of adding up over the run."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.seconds:
                return
            self._last = now
        trim()


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
