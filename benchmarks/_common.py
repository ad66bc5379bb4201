"""Shared helpers of the benchmark scripts: a SR4RS-sized network, machine description, output."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from xsr4rs._tf import cpu_flags, onednn_isa_cap

    flags = cpu_flags() or set()
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
    return {
        "cpu": cpu,
        "cpu_flags": " ".join(f for f in wanted if f in flags) or "unknown",
        "onednn_max_cpu_isa": onednn_isa_cap() or "not set",
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
    }


def sr4rs_like(path: str | None = None, *, bands: int = 4, filters: int = 64, blocks: int = 16):
    """Export a network of SR4RS's generator size (random weights) and return its handle.

    9x9 input convolution, ``blocks`` residual blocks of two 3x3 convolutions, two x2
    sub-pixel upsampling stages and a 3x3 output convolution: the compute per pixel of the
    SR4RS generator, which is what the benchmarks need (not its quality).
    """
    import xsr4rs
    from xsr4rs._tf import import_tf

    tf = import_tf()
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, bands))
    x = keras.layers.Rescaling(1 / 10000)(inp)
    x = head = keras.layers.Conv2D(filters, 9, padding="same", activation="relu")(x)
    for _ in range(blocks):
        y = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        y = keras.layers.Conv2D(filters, 3, padding="same")(y)
        x = keras.layers.Add()([x, y])
    x = keras.layers.Add()([x, head])
    for _ in range(2):
        x = keras.layers.Conv2D(filters * 4, 3, padding="same", activation="relu")(x)
        x = keras.layers.Lambda(lambda t: tf.nn.depth_to_space(t, 2))(x)
    x = keras.layers.Conv2D(bands, 3, padding="same")(x)
    x = keras.layers.Rescaling(10000)(x)
    model = keras.Model(inp, x)
    path = path or os.path.join(
        tempfile.mkdtemp(prefix="xsr4rs-bench-"), f"sr4rs-{filters}x{blocks}"
    )
    return xsr4rs.export_model(
        model,
        path,
        scale=4,
        bands=bands,
        value_range=(0, 10000),
        name=f"sr4rs-like-{filters}x{blocks}",
        overwrite=True,
    )


def report(name: str, rows: list[dict], extra: dict) -> Path:
    """Print ``rows`` as a table and write them with ``extra`` to results/NAME.json."""
    cols = list(rows[0])
    widths = [max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(_fmt(r[c]).rjust(w) for c, w in zip(cols, widths, strict=True)))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps({"machine": machine(), **extra, "rows": rows}, indent=2) + "\n")
    print(f"\nwritten {out}")
    return out


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def sr4rs_like_flops(
    h: int, w: int, *, bands: int = 4, filters: int = 64, blocks: int = 16
) -> float:
    """Floating-point operations (multiply and add counted apart) of `sr4rs_like` on h x w."""
    f, b, px = filters, bands, h * w
    lr = 2 * 81 * b * f + blocks * 2 * (2 * 9 * f * f) + 2 * 9 * f * 4 * f  # at LR resolution
    x2 = 4 * (2 * 9 * f * 4 * f)  # second sub-pixel convolution, at x2
    x4 = 16 * (2 * 9 * f * b)  # output convolution, at x4
    return float(px * (lr + x2 + x4))


def mosaic(path: Path, size: int, height: int | None = None, bands: int = 4) -> None:
    """Mirror-tile the sample scene to ``size`` x ``size`` pixels (``size`` x ``height``
    when given) in a tiled GeoTIFF, block by block. With ``bands`` other than 4, band
    ``i`` is the scene's band ``i % 4`` (B04, B03, B02, B08, B04, ...)."""
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    from xsr4rs.io import open_raster

    scene = open_raster("sample:s2").values  # (4, 1947, 1933) uint16, 30 MB
    h, w = scene.shape[1:]
    reflected = np.pad(scene, ((0, 0), (0, h), (0, w)), mode="symmetric")  # seamless period
    height = size if height is None else height
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": height,
        "count": bands,
        "dtype": "uint16",
        "crs": "EPSG:32618",
        "transform": Affine(10, 0, 300000, 0, -10, 4300020),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "predictor": 2,
        "bigtiff": "YES",
    }
    with rasterio.open(path, "w", **profile) as dst:
        names = ("B04", "B03", "B02", "B08")
        dst.descriptions = tuple(names[i % 4] for i in range(bands))
        order = np.arange(bands) % 4
        for row in range(0, height, 512):
            rows = np.arange(row, min(row + 512, height)) % (2 * h)
            band = reflected[np.ix_(order, rows)]
            cols = np.arange(size) % (2 * w)
            dst.write(band[:, :, cols], window=Window(0, row, size, len(rows)))
