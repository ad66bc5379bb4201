"""The allocator settings of `xsr4rs upscale` (glibc): GDAL's per-tile buffers are reused
instead of coming back from the kernel as fresh pages, and large blocks still go back to
the operating system when freed (flat memory). Run in a fresh interpreter: the settings
are process-wide."""

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
print(json.dumps({"set": set_here, "faults": faults, "held": held - base, "left": rss() - base}))
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


def test_tile_sized_buffers_are_reused_and_large_blocks_returned():
    r = _run({})
    if not r["set"]:
        pytest.skip("not glibc: mallopt is unavailable")
    # 50 fresh 2 MiB buffers would be 25600 page faults
    assert r["faults"] < 2000, r
    assert r["held"] > 200 * 2**20, r  # the block was really there...
    assert r["left"] < 16 * 2**20, r  # ...and went back to the system when freed


def test_a_user_setting_wins():
    """MALLOC_MMAP_THRESHOLD_ set by the user is kept (here 1 MiB: every tile buffer is
    mapped on its own, and comes back as fresh pages)."""
    r = _run({"MALLOC_MMAP_THRESHOLD_": str(2**20), "MALLOC_TRIM_THRESHOLD_": str(2**20)})
    assert not r["set"]
    assert r["faults"] > 10000, r
