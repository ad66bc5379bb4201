"""``xsr4rs train``: argument parsing for the trainer; the work is `xsr4rs.training.train`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

#: Flags that override configuration keys: (flag, key, type, help).
_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--scale", "data.scale", int, "upscaling factor (required with --image)"),
    ("--out", "run.out", str, "run folder (model/, checkpoints/, logs/)"),
    ("--steps", "run.steps", int, "total training steps"),
    ("--pretrain-steps", "run.pretrain_steps", int, "first steps with pixel losses only"),
    ("--batch-size", "data.batch_size", int, "patches per step"),
    ("--patch", "data.patch", int, "LR patch size in pixels"),
    ("--arch", "model.arch", str, "generator: light or sr4rs"),
    ("--learning-rate", "optim.learning_rate", float, "Adam learning rate"),
    ("--gan", "loss.gan", float, "weight of the adversarial loss (0: none)"),
    ("--nodata", "data.nodata", float, "no-data value of the rasters"),
    ("--seed", "data.seed", int, "seed of sampling, split and weights"),
    ("--init-from", "model.init_from", str, "exported xsr4rs model to fine-tune"),
]


def add_train_parser(sub: Any) -> None:
    from xsr4rs.training.config import describe

    p = sub.add_parser(
        "train",
        usage=(
            "xsr4rs train [CONFIG] [--lr LR... --hr HR... | --image IMG... --scale S] "
            "[--out RUN_DIR] [options]"
        ),
        help="train a super-resolution network on rasters and export it",
        description=(
            "Train a generator (SR4RS-style, optionally adversarial) on LR/HR patches read "
            "lazily from rasters, or on one image degraded by Wald's protocol (--image), and "
            "export it to RUN_DIR/model. CONFIG is a YAML or TOML file of the keys below; "
            "flags override them. Running again on the same RUN_DIR resumes from its last "
            "checkpoint; Ctrl-C saves a checkpoint and stops."
        ),
        epilog="configuration keys (section.key = default: meaning):\n" + describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", help="YAML (.yaml/.yml) or TOML (.toml) configuration")
    p.add_argument("--lr", nargs="+", metavar="LR", help="low-resolution raster (or band files)")
    p.add_argument("--hr", nargs="+", metavar="HR", help="high-resolution raster (or band files)")
    p.add_argument(
        "--image",
        nargs="+",
        action="append",
        metavar="IMG",
        help="an image to degrade into LR (Wald mode); repeat for several images",
    )
    for flag, key, kind, text in _FLAGS:
        meta = key.split(".")[1].upper()
        p.add_argument(flag, type=kind, dest=key, metavar=meta, help=f"{text} ({key})")
    p.add_argument(
        "--export-only",
        action="store_true",
        help="train nothing: export the run's last checkpoint to RUN_DIR/model",
    )
    p.add_argument("--no-progress", action="store_true", help="do not show the progress line")


def _one(paths: list[str]) -> str | list[str]:
    return paths[0] if len(paths) == 1 else paths


def run_train(args: argparse.Namespace) -> int:
    from xsr4rs.exceptions import ParameterError
    from xsr4rs.training import config as config_mod
    from xsr4rs.training import train

    overrides = {key: getattr(args, key) for _, key, _, _ in _FLAGS}
    if (args.lr is None) != (args.hr is None):
        raise ParameterError("--lr and --hr go together: give both rasters of the pair")
    if args.lr is not None:
        overrides["data.pairs"] = [{"lr": _one(args.lr), "hr": _one(args.hr)}]
    if args.image:
        overrides["data.images"] = [_one(paths) for paths in args.image]
    cfg = config_mod.load(args.config, overrides)
    result = train(cfg, progress=not args.no_progress, export_only=args.export_only)
    v = result.validation
    if v:
        print(
            f"validation: PSNR {v['psnr']:.2f} dB (bicubic {v['psnr_bicubic']:.2f}), "
            f"SSIM {v['ssim']:.4f} (bicubic {v['ssim_bicubic']:.4f})"
            + (f", SAM {v['sam']:.3f} deg (bicubic {v['sam_bicubic']:.3f})" if "sam" in v else "")
        )
    if result.interrupted:
        print(f"stopped at step {result.step}: run the same command to resume", file=sys.stderr)
        return 143 if result.terminated else 130
    if result.model_path is not None:
        print(f"model exported to {result.model_path}")
    return 0
