"""Pure grid arithmetic of LR/HR patch pairs: pair geometry, windows, spatial-block splits.

Everything here is in pixel units of the low-resolution (LR) grid unless said otherwise.
An LR/HR pair is described by `PairGeometry`: the HR grid is ``scale`` times finer and its
pixel ``(scale * r + dy, scale * c + dx)`` is the top-left HR pixel under LR pixel ``(r, c)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A square-or-rectangular window ``rows [row, row + height) x cols [col, col + width)``."""

    row: int
    col: int
    height: int
    width: int

    def intersects(self, other: Window) -> bool:
        return (
            self.row < other.row + other.height
            and other.row < self.row + self.height
            and self.col < other.col + other.width
            and other.col < self.col + self.width
        )

    def grow(self, margin: int) -> Window:
        return Window(
            self.row - margin, self.col - margin, self.height + 2 * margin, self.width + 2 * margin
        )

    def slices(self) -> tuple[slice, slice]:
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)


@dataclass(frozen=True)
class PairGeometry:
    """Where an HR raster lies relative to an LR raster, and their common LR extent.

    ``dy, dx``: HR pixel index of the top-left corner of LR pixel (0, 0) (may be negative).
    ``extent``: the LR pixels whose whole footprint lies inside both rasters.
    """

    scale: int
    dy: int
    dx: int
    extent: Window

    def hr_window(self, lr: Window) -> Window:
        """The HR window covering exactly the ground footprint of the LR window ``lr``."""
        s = self.scale
        return Window(s * lr.row + self.dy, s * lr.col + self.dx, s * lr.height, s * lr.width)


def pair_geometry(
    lr_shape: tuple[int, int], hr_shape: tuple[int, int], scale: int, dy: int, dx: int
) -> PairGeometry:
    """The common extent, in LR pixels, of an LR grid and an HR grid offset by ``(dy, dx)``.

    LR row ``r`` is inside the HR raster when ``0 <= scale * r + dy`` and
    ``scale * (r + 1) + dy <= hr_height``; the same for columns.
    """

    def span(n_lr: int, n_hr: int, d: int) -> tuple[int, int]:
        first = min(max(0, math.ceil(-d / scale)), n_lr)
        stop = min(n_lr, (n_hr - d) // scale)
        return first, max(first, stop)

    r0, r1 = span(lr_shape[0], hr_shape[0], dy)
    c0, c1 = span(lr_shape[1], hr_shape[1], dx)
    return PairGeometry(scale, dy, dx, Window(r0, c0, r1 - r0, c1 - c0))


def block_grid(extent: Window, block: int) -> list[Window]:
    """Tile ``extent`` with blocks of ``block`` pixels (the last row/column may be smaller)."""
    out = []
    for r in range(extent.row, extent.row + extent.height, block):
        for c in range(extent.col, extent.col + extent.width, block):
            h = min(block, extent.row + extent.height - r)
            w = min(block, extent.col + extent.width - c)
            out.append(Window(r, c, h, w))
    return out


def split_blocks(
    extent: Window, block: int, fraction: float, seed: int, patch: int
) -> tuple[list[Window], list[Window]]:
    """Split ``extent`` into training blocks and validation blocks, by whole blocks.

    A seeded random ``fraction`` of the full-size blocks (those holding at least one
    ``patch``-pixel window) is kept for validation; at least one when ``fraction > 0``.
    """
    blocks = block_grid(extent, block)
    full = [i for i, b in enumerate(blocks) if b.height >= patch and b.width >= patch]
    n_val = 0 if fraction <= 0 else max(1, round(fraction * len(full)))
    if n_val >= len(full) and fraction > 0:
        n_val = len(full) - 1 if len(full) > 1 else 0
    rng = np.random.default_rng([seed, 1])
    val_idx = set(rng.choice(full, size=n_val, replace=False).tolist()) if n_val else set()
    train = [b for i, b in enumerate(blocks) if i not in val_idx]
    val = [b for i, b in enumerate(blocks) if i in val_idx]
    return train, val


def random_window(
    rng: np.random.Generator,
    extent: Window,
    patch: int,
    exclude: list[Window],
    margin: int = 0,
    tries: int = 1000,
) -> Window | None:
    """A random ``patch x patch`` window inside ``extent`` whose footprint grown by ``margin``
    touches none of ``exclude`` (``None`` after ``tries`` rejections)."""
    if extent.height < patch or extent.width < patch:
        return None
    for _ in range(tries):
        r = extent.row + int(rng.integers(0, extent.height - patch + 1))
        c = extent.col + int(rng.integers(0, extent.width - patch + 1))
        w = Window(r, c, patch, patch)
        grown = w.grow(margin)
        if not any(grown.intersects(e) for e in exclude):
            return w
    return None


def grid_windows(
    extent: Window, patch: int, exclude: list[Window], margin: int = 0, stride: int | None = None
) -> Iterator[Window]:
    """Windows of a regular grid over ``extent`` (step ``stride``, default ``patch``) whose
    footprint grown by ``margin`` touches none of ``exclude``."""
    stride = stride or patch
    for r in range(extent.row, extent.row + extent.height - patch + 1, stride):
        for c in range(extent.col, extent.col + extent.width - patch + 1, stride):
            w = Window(r, c, patch, patch)
            if not any(w.grow(margin).intersects(e) for e in exclude):
                yield w
