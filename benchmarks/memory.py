"""Peak memory against image size: `xsr4rs upscale` must stream (flat memory).

For each size a synthetic 4-band uint16 tiled GeoTIFF (smooth random fields, generated
block by block) is upscaled x4 by the CLI in a fresh process (default options: zstd
GeoTIFF out) with the bicubic model or the one given, to a file deleted afterwards;
reported are wall time, output megapixels/s and the process's peak RSS. Target: flat.

    python benchmarks/memory.py [--sizes 2048 4096 8192 16384] [--model s2-rgbn-x4]

16384 writes a 34 GB output and takes about 15 minutes on 2 cores; it is not in the
default list.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import report

CHILD = """
import resource, sys
from xsr4rs.cli import main
rc = main(["upscale", sys.argv[1], sys.argv[2], "--model", sys.argv[3], "--no-progress",
           "--no-range-check", *sys.argv[4:]])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(rc)
"""


def synthetic(path: Path, size: int) -> None:
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=4,
        dtype="uint16",
        crs="EPSG:32633",
        transform=Affine(10, 0, 300000, 0, -10, 5800000),
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
    )
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:512, 0:512] / 512.0
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, 512):
            for col in range(0, size, 512):
                f = rng.uniform(1, 6, 4)
                block = np.stack(
                    [2000 + 1500 * np.sin(6.3 * (k * xx + yy) * fk) for k, fk in enumerate(f)]
                )
                block += rng.normal(0, 50, block.shape)
                dst.write(block.astype("uint16"), window=Window(col, row, 512, 512))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 8192])
    p.add_argument("--model", default="bicubic", help="model name or path (default bicubic)")
    p.add_argument("--options", default="", help="more upscale options, e.g. '--bf16'")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-c", f"import xsr4rs; xsr4rs.load_model({args.model!r})"], check=True
        )
        for size in args.sizes:
            src, out = Path(tmp) / f"in-{size}.tif", Path(tmp) / f"out-{size}.tif"
            synthetic(src, size)
            t0 = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(src), str(out), args.model]
                + args.options.split(),
                capture_output=True,
                text=True,
                check=True,
            )
            dt = time.perf_counter() - t0
            rss = int(done.stderr.strip().splitlines()[-1]) / 2**20
            mp = (4 * size) ** 2 / 1e6
            rows.append(
                {
                    "model": args.model,
                    "input": f"{size}x{size}x4",
                    "output_MP": mp,
                    "wall_s": dt,
                    "output_MP_per_s": mp / dt,
                    "peak_rss_GiB": rss,
                }
            )
            src.unlink()
            out.unlink()
    name = "memory" if args.model == "bicubic" else f"memory_{Path(args.model).name}"
    report(name, rows, {"model": args.model, "options": args.options, "target": "flat"})


if __name__ == "__main__":
    main()
