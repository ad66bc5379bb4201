"""Run the benchmark suite, one script after the other, and print where each table went.

    python benchmarks/run_all.py          # pipeline, loop, I/O floor, memory, FLOP/s, scaling
    python benchmarks/run_all.py --quick  # smaller inputs, to check that all scripts run

Each script prints its own table and writes benchmarks/results/NAME.json. They run one at a
time because they measure time on the same cores. The tile- and chunk-size studies
(tile_size.py, chunk_size.py) and bf16.py run on their own.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE = {
    "pipeline.py": ([], ["--size", "512"]),
    "user_loop.py": ([], ["--size", "512"]),
    "io_floor.py": ([], ["--crop", "800"]),
    "memory.py": ([], ["--sizes", "1024", "2048"]),
    "model_flops.py": ([], ["--repeat", "1"]),
    "scaling.py": ([], ["--size", "512"]),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller inputs")
    args = p.parse_args()
    failed = []
    for script, (full, quick) in SUITE.items():
        print(f"\n=== {script}", flush=True)
        done = subprocess.run(
            [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        )
        if done.returncode:
            failed.append(script)
    print(f"\nresults in {HERE / 'results'}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
