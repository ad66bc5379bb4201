"""Memory of one model call against tile size: the floor under `memory.py`'s peaks.

Each row is a fresh process that loads the model (RSS after loading: Python, TensorFlow
and the weights), runs it once on one tile of the given side (input pixels, halo
included; 580 is the default 512 tile plus the shipped model's halo with the
projection's ring), then reports the process's peak RSS and its RSS after the call.
TensorFlow's oneDNN allocator keeps the memory of its largest call for the next ones,
so "after" is what stays held through a run. ``--system-allocator`` runs the same with
``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1`` (memory handed back after each call) for comparison,
with the time of a call.

    python benchmarks/model_memory.py [--model s2-rgbn-x4] [--sides 452 516 580]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _common import report

CHILD = """
import json, os, resource, sys, time
import numpy as np
from xsr4rs._malloc import map_large_blocks
map_large_blocks()
import xsr4rs
model = xsr4rs.load_model(sys.argv[1])
side = int(sys.argv[2])
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
small = np.full((1, 16, 16, model.metadata.n_input_bands), 1000.0, np.float32)
model.core(small, 0)
loaded = rss()
x = np.random.default_rng(0).uniform(200, 3000, (1, side, side, small.shape[-1]))
x = x.astype(np.float32)
model.core(x, 0)  # first call: oneDNN builds its kernels
t0 = time.perf_counter()
model.core(x, 0)
call = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"loaded": loaded, "after": rss(), "peak": peak, "call": call}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="s2-rgbn-x4")
    p.add_argument("--sides", type=int, nargs="+", default=[452, 516, 580])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--system-allocator", action="store_true")
    args = p.parse_args()
    rows = []
    allocators = ["oneDNN (default)"] + (["system"] if args.system_allocator else [])
    for precision in args.precisions:
        for allocator in allocators:
            for side in args.sides:
                env = dict(os.environ, XSR4RS_PRECISION=precision)
                if allocator == "system":
                    env["TF_ONEDNN_USE_SYSTEM_ALLOCATOR"] = "1"
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, args.model, str(side)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                m = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append(
                    {
                        "precision": precision,
                        "allocator": allocator,
                        "tile_side": side,
                        "loaded_GiB": m["loaded"],
                        "peak_GiB": m["peak"],
                        "after_call_GiB": m["after"],
                        "model_GiB": m["peak"] - m["loaded"],
                        "call_s": m["call"],
                    }
                )
    report(f"model_memory_{args.model}", rows, {"model": args.model})


if __name__ == "__main__":
    main()
