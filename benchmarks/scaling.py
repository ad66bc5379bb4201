"""Scaling: the same upscale on the threaded scheduler and on 1 and 2 worker processes.

On a crop of the sample scene with the light network (32 x 6), each configuration writes
the same GeoTIFF; clusters are started and their workers warmed (model loaded, tile shapes
seen) before the timing. Worker processes get cores/N TensorFlow threads, as
``xsr4rs upscale --workers N`` gives them. Reported: wall time and speed against the
threaded run.

    python benchmarks/scaling.py [--size 1024]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import report, sr4rs_like


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--chunk", type=int, default=256)
    args = p.parse_args()
    import xsr4rs
    from xsr4rs.cluster import local_cluster
    from xsr4rs.io import open_raster, write

    model = sr4rs_like(filters=32, blocks=6)
    da = open_raster("sample:s2", chunks=args.chunk)
    da = da.isel(x=slice(0, args.size), y=slice(0, args.size))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:

        def timed() -> float:
            out = xsr4rs.upscale(da, model)
            write(out, Path(tmp) / "warm.tif", overwrite=True)  # loads the model, sees shapes
            t0 = time.perf_counter()
            write(out, Path(tmp) / "out.tif", overwrite=True)
            return time.perf_counter() - t0

        rows.append({"scheduler": "threads (1 process)", "wall_s": timed()})
        for n in (1, 2):
            with local_cluster(n):
                threads = max(1, (os.cpu_count() or 1) // n)
                rows.append(
                    {
                        "scheduler": f"{n} worker process(es), {threads} TF threads",
                        "wall_s": timed(),
                    }
                )
    base = rows[0]["wall_s"]
    for r in rows:
        r["speed_vs_threads"] = base / r["wall_s"]
    report(
        "scaling",
        rows,
        {
            "model": repr(model),
            "input": f"{args.size}x{args.size}x4",
            "chunk": args.chunk,
            "cores": os.cpu_count(),
        },
    )


if __name__ == "__main__":
    main()
