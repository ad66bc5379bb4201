"""Output grid arithmetic: the upscaled grid keeps the top-left corner and divides the pixel size.

Pure functions on `affine.Affine` and integers, tested without xarray or TensorFlow.
"""

from __future__ import annotations

import numpy as np
from affine import Affine


def upscaled_transform(transform: Affine, scale: int) -> Affine:
    """The transform of the grid ``scale`` times finer: ``transform * Affine.scale(1 / scale)``.

    The top-left corner stays where it is and every column of the matrix (pixel size,
    rotation and shear terms) is divided by ``scale``.

    >>> upscaled_transform(Affine(10, 0, 435730, 0, -10, 4179460), 4)
    Affine(2.5, 0.0, 435730.0,
           0.0, -2.5, 4179460.0)
    """
    t = transform
    return Affine(t.a / scale, t.b / scale, t.c, t.d / scale, t.e / scale, t.f)


def pixel_centres(transform: Affine, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """1-D x and y coordinates of pixel centres along the first row and first column.

    For a north-up grid these are the usual xarray coordinates; rotated grids are described
    by their transform, which is written next to them.
    """
    cols = np.arange(width) + 0.5
    rows = np.arange(height) + 0.5
    x = transform.c + transform.a * cols + transform.b * 0.5
    y = transform.f + transform.d * 0.5 + transform.e * rows
    return x, y


def centres_agree(transform: Affine, x: np.ndarray, y: np.ndarray, tolerance: float = 1e-3) -> bool:
    """Whether 1-D ``x`` and ``y`` are the `pixel_centres` of ``transform``, within
    ``tolerance`` of a pixel.

    >>> t = Affine(10, 0, 435730, 0, -10, 4179460)
    >>> centres_agree(t, np.array([435735.0, 435745.0]), np.array([4179455.0, 4179445.0]))
    True
    >>> centres_agree(t, np.array([435735.0, 435745.0]), np.array([4179445.0, 4179455.0]))
    False
    """
    ex, ey = pixel_centres(transform, len(y), len(x))
    px = max(abs(transform.a), abs(transform.b))
    py = max(abs(transform.d), abs(transform.e))
    return bool(
        np.allclose(np.asarray(x, float), ex, rtol=0, atol=tolerance * px)
        and np.allclose(np.asarray(y, float), ey, rtol=0, atol=tolerance * py)
    )


def apply(transform: Affine, col: float, row: float) -> tuple[float, float]:
    """Map a (col, row) pixel position to (x, y) with ``transform``."""
    t = transform
    return t.a * col + t.b * row + t.c, t.d * col + t.e * row + t.f


def bounds(transform: Affine, height: int, width: int) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of a north-up grid, as rasterio reports them."""
    x0, y0 = apply(transform, 0, 0)
    x1, y1 = apply(transform, width, height)
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)
