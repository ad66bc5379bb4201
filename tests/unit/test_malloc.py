"""The allocator settings of `xsr4rs upscale` (glibc): blocks of 1 MiB and more go back to
the operating system as soon as they are freed (flat memory), a user's ``MALLOC_*``
settings win (the faster setting of the docs reuses GDAL's per-tile buffers), and holes
left in the heaps go back now and then. Run in a fresh interpreter: the settings are
process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only"
)

SCRIPT = r"""
import json, resource, numpy as np
from xsr4rs._malloc import map_large_blocks

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

set_here = map_large_blocks()
del_block = np.ones(16 * 2**20, np.uint8)  # an image block freed: glibc's own dynamic
del del_block  # threshold would rise to its size, and keep smaller blocks in the heaps
# tile buffers freed between long-lived cached blocks, as GDAL's compression leaves them
buffers, cached = [], []
for _ in range(100):
    buffers.append(np.ones(2 * 2**20 - 4096, np.uint8))
    cached.append(np.ones(512 * 2**10, np.uint8))
before_free = rss()
del buffers
holes_kept = rss() - (before_free - 100 * (2 * 2**20 - 4096))
tile = 2 * 2**20  # a 512 x 512 x 4 uint16 GeoTIFF tile
for _ in range(5):  # warm the heap
    np.ones(tile + 4096, np.uint8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    np.ones(tile + 4096, np.uint8)  # allocated, written, freed: as a compression buffer
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
base = rss()
block = np.ones(256 * 2**20, np.uint8)  # an output block
held = rss()
del block
left = rss() - base
print(json.dumps({"set": set_here, "faults": faults, "held": held - base, "left": left,
                  "holes_kept": holes_kept}))
"""


def _run(env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_freed_blocks_of_a_mib_and_more_go_back_at_once():
    """Tile-sized buffers freed between cached blocks and a freed image block leave
    nothing behind: glibc's dynamic threshold (raised to the largest block freed, up to
    32 MiB) would keep both in its heaps, and memory would grow with the image."""
    r = _run({})
    if not r["set"]:
        pytest.skip("not glibc: mallopt is unavailable")
    assert r["holes_kept"] < 16 * 2**20, r
    assert r["held"] > 200 * 2**20, r  # the block was really there...
    assert r["left"] < 16 * 2**20, r  # ...and went back to the system when freed


def test_the_faster_setting_of_the_docs_wins_and_reuses_tile_buffers():
    """``MALLOC_MMAP_THRESHOLD_=4194304 MALLOC_TRIM_THRESHOLD_=8388608`` (docs: faster,
    more memory on real data) is kept: 2 MiB buffers come from the heaps and are reused,
    where mapped on their own each would be 512 fresh pages (25600 faults for 50)."""
    r = _run({"MALLOC_MMAP_THRESHOLD_": str(4 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(8 * 2**20)})
    assert not r["set"]
    assert r["faults"] < 2000, r
    assert r["left"] < 16 * 2**20, r


FRAGMENTS = r"""
import json, resource, sys, time, numpy as np
from xsr4rs._malloc import PeriodicTrim, _libc

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

trimmer = PeriodicTrim(float(sys.argv[1]))
# tile buffers between long-lived cached blocks, as GDAL's compression leaves them
buffers, cached = [], []
for _ in range(100):
    buffers.append(np.ones(2 * 2**20, np.uint8))
    cached.append(np.ones(512 * 2**10, np.uint8))
base = rss()
del buffers  # 200 MiB of holes below the cached blocks: no heap top to give back
freed = rss()
trimmer()  # at once: too soon after the trimmer was made
soon = rss()
time.sleep(float(sys.argv[1]) + 0.1)
trimmer()
glibc = hasattr(_libc(), "malloc_trim")
later = rss()
print(json.dumps({"glibc": glibc, "freed": base - freed, "soon": base - soon,
                  "later": base - later}))
"""


def test_holes_left_in_the_heaps_go_back_to_the_system_now_and_then():
    """GDAL's 2 MiB tile buffers, when they come from glibc's heaps, stay there once freed
    between long-lived cached blocks (with the faster setting, a full tile peaked 0.6 GiB
    higher without trimming); the GeoTIFF writer's `PeriodicTrim` hands them back at
    most once per interval."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", FRAGMENTS, "0.5"],
        # the buffers come from the heaps, as with the faster setting of the docs
        env=env | {"MALLOC_MMAP_THRESHOLD_": str(4 * 2**20)},
        capture_output=True,
        text=True,
        check=True,
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    if not r["glibc"]:
        pytest.skip("not glibc: malloc_trim is unavailable")
    assert r["freed"] < 32 * 2**20, r  # freeing alone kept the holes...
    assert r["soon"] < 32 * 2**20, r  # ...and so did a call within the interval...
    assert r["later"] > 150 * 2**20, r  # ...the next one returned them
