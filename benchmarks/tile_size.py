"""Model throughput against tile size: how the default tile (512) was chosen.

For each tile core size T the model is called on (T + 2*halo)^2 pixel tiles, as the engine
does; the useful output is the core. Reported: seconds per call after a warm-up, the time
of the first call of a new shape, useful output megapixels/s and its ratio to the best
tile, the largest tensor inside the network (elements, against TensorFlow's 2**31 CPU
convolution slow-down) and the process's peak memory (tiles run in increasing size).

    python benchmarks/tile_size.py [--filters 64 --blocks 16] [--tiles 128 256 384 512 768]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from _common import report, sr4rs_like


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--filters", type=int, default=64)
    p.add_argument("--blocks", type=int, default=16)
    p.add_argument("--tiles", type=int, nargs="+", default=[128, 256, 384, 512, 768])
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    model = sr4rs_like(filters=args.filters, blocks=args.blocks)
    h, s = model.halo, model.scale
    rng = np.random.default_rng(0)
    rows = []
    for tile in args.tiles:
        side = tile + 2 * h
        x = rng.uniform(0, 10000, (1, side, side, 4)).astype(np.float32)
        t0 = time.perf_counter()
        model(x)
        first = time.perf_counter() - t0
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
        dt = min(times)
        rows.append(
            {
                "tile": tile,
                "tile_with_halo": side,
                "s_per_call": dt,
                "first_call_s": first,
                "useful_MP_per_s": (tile * s) ** 2 / dt / 1e6,
                "largest_tensor": (side * s) ** 2 * args.filters,
                # tiles grow, so the process's peak RSS after each is that tile's peak
                "peak_rss_GiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            }
        )
    best = max(r["useful_MP_per_s"] for r in rows)
    for r in rows:
        r["vs_best"] = r["useful_MP_per_s"] / best
    report(
        "tile_size",
        rows,
        {"model": repr(model), "halo": h, "filters": args.filters, "blocks": args.blocks},
    )


if __name__ == "__main__":
    main()
