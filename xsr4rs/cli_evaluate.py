"""The ``xsr4rs evaluate`` subcommand: its arguments and the call of `xsr4rs.evaluate`."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_evaluate_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``evaluate`` on ``sub``, the object returned by ``add_subparsers()``."""
    ev = sub.add_parser(
        "evaluate",
        usage=(
            "xsr4rs evaluate --model MODEL --hr HR... [--lr LR... | --wald] [--scale N] [options]"
        ),
        help="score a model and baselines against high-resolution references",
        description=(
            "Run MODEL and the baselines on a low-resolution input and score their outputs "
            "against the high-resolution reference HR: PSNR, SSIM, SAM, ERGAS, consistency "
            "with the input and sub-pixel shift. Without --lr (Wald mode) the input is HR "
            "degraded by the project's degradation (Gaussian blur, sigma = scale/2 HR pixels, "
            "then scale x scale block mean); with --lr it is that raster, which must be "
            "exactly SCALE times coarser than HR with the same top-left corner."
        ),
    )
    ev.add_argument(
        "--model",
        "-m",
        required=True,
        help="SavedModel directory or built-in name (bicubic, nearest, bicubic-x2, nearest-x2)",
    )
    ev.add_argument(
        "--hr",
        nargs="+",
        required=True,
        metavar="HR",
        help="reference raster, or single-band files stacked in order ('sample:s2' works)",
    )
    mode = ev.add_mutually_exclusive_group()
    mode.add_argument("--lr", nargs="+", metavar="LR", help="low-resolution input (paired mode)")
    mode.add_argument(
        "--wald", action="store_true", help="make the input by degrading HR (the default)"
    )
    ev.add_argument(
        "--scale", type=int, help="expected upscaling factor; must be the model's (checked)"
    )
    ev.add_argument(
        "--baselines",
        nargs="*",
        default=["nearest", "bicubic"],
        metavar="MODEL",
        help="models to compare with (default: nearest bicubic; none without a value)",
    )
    ev.add_argument(
        "--bands", nargs="+", help="bands to use, in order: 1-based indices or descriptions"
    )
    ev.add_argument("--nodata", type=float, help="no-data value of HR and LR (default: theirs)")
    ev.add_argument(
        "--border",
        type=int,
        help="HR pixels left out at the edges and around no-data "
        "(default: scale x the largest halo, at least 2 x scale and 5)",
    )
    ev.add_argument(
        "--data-range",
        type=float,
        help="peak value for PSNR and SSIM, e.g. 10000 (default: HR max - min)",
    )
    ev.add_argument("--json", metavar="OUT.json", help="also write the scores as JSON")
    ev.add_argument(
        "--project",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="consistency projection of the model's output (default: the model's choice)",
    )
    ev.add_argument(
        "--png",
        metavar="OUT.png",
        help="write crops of LR, bicubic, model and HR side by side",
    )
    ev.add_argument(
        "--crop",
        nargs=3,
        type=int,
        metavar=("ROW", "COL", "SIZE"),
        help="the PNG crop in HR pixels (default: a centred 256-pixel square)",
    )
    return ev


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate as ``args`` say, print the table on stdout; return the exit code."""
    from xsr4rs.evaluate import evaluate
    from xsr4rs.io.atomic import check_folder, check_not_inputs

    inputs = [*(args.hr or []), *(args.lr or []), args.model]
    for out in (args.json, args.png):
        if out:
            check_not_inputs(out, inputs)
    if args.json:  # fail before the models run
        check_folder(args.json)
    report = evaluate(
        args.model,
        _one_or_many(args.hr),
        lr=_one_or_many(args.lr) if args.lr else None,
        scale=args.scale,
        baselines=tuple(args.baselines),
        bands=args.bands,
        nodata=args.nodata,
        border=args.border,
        data_range=args.data_range,
        png=args.png,
        crop=tuple(args.crop) if args.crop else None,
        project=args.project,
    )
    print(report.table())
    if args.json:
        report.write_json(args.json)
        print(f"xsr4rs: wrote {args.json}", file=sys.stderr)
    if args.png:
        print(f"xsr4rs: wrote {args.png}", file=sys.stderr)
    return 0


def _one_or_many(paths: list[str]) -> str | list[str]:
    return paths[0] if len(paths) == 1 else paths
