"""Model efficiency: achieved GFLOP/s of each architecture against a TensorFlow matmul.

Both are measured in the same process: the matmul (4096 x 4096 fp32) gives the machine's
practical peak, each network is called on a 512-pixel tile plus its halo (the engine's
default tile) after a warm-up, and its analytic FLOP count divided by the time gives the
achieved rate.

    python benchmarks/model_flops.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import report, sr4rs_like, sr4rs_like_flops

ARCHS = {"sr4rs-like 64x16": (64, 16), "light 32x6": (32, 6)}


def best_of(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    from xsr4rs._tf import import_tf

    tf = import_tf()
    n = 4096
    a = tf.random.uniform((n, n))
    matmul = best_of(lambda: tf.linalg.matmul(a, a).numpy(), args.repeat)
    peak = 2 * n**3 / matmul / 1e9
    rows = [
        {
            "what": f"matmul {n}x{n} fp32",
            "GFLOP": 2 * n**3 / 1e9,
            "seconds": matmul,
            "GFLOP_per_s": peak,
            "vs_matmul": 1.0,
        }
    ]
    for name, (filters, blocks) in ARCHS.items():
        model = sr4rs_like(filters=filters, blocks=blocks)
        side = args.tile + 2 * model.halo
        x = np.random.default_rng(0).uniform(0, 10000, (1, side, side, 4)).astype(np.float32)
        seconds = best_of(lambda m=model, x=x: m(x), args.repeat)
        flops = sr4rs_like_flops(side, side, filters=filters, blocks=blocks)
        rows.append(
            {
                "what": f"{name} on {side}x{side}",
                "GFLOP": flops / 1e9,
                "seconds": seconds,
                "GFLOP_per_s": flops / seconds / 1e9,
                "vs_matmul": flops / seconds / 1e9 / peak,
            }
        )
    report("model_flops", rows, {"tile": args.tile})


if __name__ == "__main__":
    main()
