"""SR4RS's tiling against xsr4rs's, on a model exported by SR4RS, on the real sample scene.

SR4RS's ``sr.py`` serves its SavedModel through OTBTF: tiles of ``rfield = (ts + 2*pad)/4``
LR pixels every ``ts/4`` LR pixels, each giving ``output_{pad}`` (``ts`` HR pixels), so
every output pixel sees ``pad/4`` LR pixels of context on the tile's side. This script
runs that tiling itself (OTBTF, a C++ application, is not needed to reproduce which pixels
each tile sees) and compares it with xsr4rs's output, which equals whole-image inference:
how far SR4RS's output depends on its tiles. It also prints the output grid OTBTF writes,
derived from its code (otbTensorflowMultisourceModelFilter.hxx: the extent shrunk by half
the receptive field, the origin placed half an *input* pixel inside it), against xsr4rs's.

    python benchmarks/sr4rs_tiling.py --model PATH [--pad 64] [--ts 512] [--size 544]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import machine, report


def otbtf_tiles(model, lr: np.ndarray, pad: int, ts: int, output: str) -> np.ndarray:
    """The mosaic sr.py/OTBTF writes: (bands, n*ts, n*ts) for an LR (bands, h, w) image,
    HR pixel k of it being HR pixel pad + k of the full-resolution grid."""
    from xsr4rs.model.handle import runtime

    rt = runtime(model.path, model.stamp, model.trusted)
    step, rfield = ts // 4, (ts + 2 * pad) // 4
    ny = (4 * lr.shape[1] - 2 * pad + 3) // ts  # OTBTF's size, rounded down to the grid
    nx = (4 * lr.shape[2] - 2 * pad + 3) // ts
    out = np.zeros((lr.shape[0], ny * ts, nx * ts), np.float32)
    for j in range(ny):
        for i in range(nx):
            tile = lr[:, j * step : j * step + rfield, i * step : i * step + rfield]
            y = rt(np.ascontiguousarray(tile.transpose(1, 2, 0))[None].astype(np.float32), output)
            out[:, j * ts : (j + 1) * ts, i * ts : (i + 1) * ts] = y[0].transpose(2, 0, 1)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a SavedModel exported by SR4RS's train.py")
    p.add_argument("--pad", type=int, default=64, help="sr.py's --pad (default 64)")
    p.add_argument("--ts", type=int, default=512, help="sr.py's --ts (default 512)")
    p.add_argument("--size", type=int, default=544, help="LR window side (default 544)")
    args = p.parse_args()

    import xsr4rs
    from xsr4rs.io import open_raster

    pad, ts = args.pad, args.ts
    model = xsr4rs.load_model(args.model)
    da = open_raster("sample:s2").isel(x=slice(500, 500 + args.size), y=slice(600, 600 + args.size))
    lr = da.values.astype(np.float32)
    t0 = time.perf_counter()
    ours = xsr4rs.upscale(da, model, dtype="float32").values
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = otbtf_tiles(model, lr, pad, ts, f"output_{pad}:0")
    t_theirs = time.perf_counter() - t0
    h, w = theirs.shape[1:]
    ref = ours[:, pad : pad + h, pad : pad + w]  # the same ground
    diff = np.abs(theirs - ref)
    # distance of each output pixel to the nearest tile seam (HR pixels)
    rows = np.arange(h) % ts
    cols = np.arange(w) % ts
    seam = np.minimum.outer(np.minimum(rows, ts - 1 - rows), np.minimum(cols, ts - 1 - cols))
    border = np.minimum.outer(
        np.minimum(np.arange(h) + pad, 4 * lr.shape[1] - pad - np.arange(h) - 1),
        np.minimum(np.arange(w) + pad, 4 * lr.shape[2] - pad - np.arange(w) - 1),
    )
    radius_hr = 4 * model.metadata.provenance.get("halo_measured", model.halo)
    interior = border >= radius_hr  # image borders (mirror padding vs OTBTF's edge) aside
    near = interior & (seam < radius_hr - pad)
    far = interior & (seam >= radius_hr - pad)
    d = diff.max(axis=0)
    s = 10.0  # LR pixel size of the scene (m)
    rows_out = [
        ["model receptive radius (LR px)", f"{radius_hr // 4}"],
        ["context sr.py gives each tile (LR px)", f"{pad // 4}"],
        ["max |SR4RS tiling - whole image| (DN)", f"{d[interior].max():.1f}"],
        ["mean |difference| (DN)", f"{d[interior].mean():.2f}"],
        ["pixels differing by more than 1 DN", f"{(d[interior] > 1).mean() * 100:.1f} %"],
        ["max within reach of a seam (DN)", f"{d[near].max() if near.any() else 0:.1f}"],
        ["max farther from seams (DN)", f"{d[far].max() if far.any() else 0:.1f}"],
        ["xsr4rs output extent (HR px)", f"{4 * lr.shape[2]} x {4 * lr.shape[1]}"],
        ["SR4RS/OTBTF output extent (HR px)", f"{w} x {h}"],
        ["SR4RS data origin vs input (m)", f"+{pad / 4 * s:.2f} E, -{pad / 4 * s:.2f} N"],
        [
            "origin OTBTF writes vs input (m)",
            f"+{(pad / 4 + 0.375) * s:.2f} E, -{(pad / 4 + 0.375) * s:.2f} N",
        ],
        ["origin error of SR4RS output (HR px)", "1.5 (0.375 LR px) east and south"],
        ["xsr4rs origin error (HR px)", "0 (same top-left corner as the input)"],
        ["time: xsr4rs / SR4RS tiling (s)", f"{t_ours:.1f} / {t_theirs:.1f}"],
    ]
    print(
        f"{machine()['cpu']}; model {args.model}; window {args.size} LR px; --pad {pad} --ts {ts}"
    )
    report(
        "sr4rs_tiling",
        [{"measure": m, "value": v} for m, v in rows_out],
        {"model": str(args.model), "pad": pad, "ts": ts, "window_lr": args.size},
    )


if __name__ == "__main__":
    main()
