"""Lazy LR/HR patch sampling from rasters: pair checks, Wald degradation, splits, tf.data.

A `Source` is one HR raster with its LR twin: another raster (paired mode, checked for
CRS, pixel sizes and alignment) or the HR degraded by `xsr4rs.degrade.degrade` (Wald
mode). Patches are read window by window; nothing is loaded whole unless caching is on.
The batch of step ``s`` depends only on ``(seed, s)``, so a resumed run sees exactly the
batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from xsr4rs.degrade import degrade
from xsr4rs.exceptions import InputError
from xsr4rs.nodata import invalid_mask
from xsr4rs.training.windows import (
    PairGeometry,
    Window,
    grid_windows,
    pair_geometry,
    random_window,
    split_blocks,
)

#: Relative tolerance on the ratio of pixel sizes.
GRID_TOLERANCE = 1e-3
#: Largest misalignment of LR pixel corners and HR pixel corners, in HR pixels.
ALIGN_TOLERANCE = 0.01


@dataclass
class Source:
    """One HR raster and its LR twin (``lr is None``: Wald mode, LR = degrade(HR))."""

    hr: xr.DataArray
    lr: xr.DataArray | None
    geometry: PairGeometry
    name: str
    hr_nodata: float | None = None
    lr_nodata: float | None = None
    val_blocks: list[Window] = field(default_factory=list)

    @property
    def scale(self) -> int:
        return self.geometry.scale

    @property
    def wald_margin(self) -> int:
        """LR pixels read around a Wald patch so that its blur sees real neighbours:
        the Gaussian of ``sigma = scale/2`` truncated at 4 sigma reaches 2 LR pixels."""
        return 2 if self.lr is None and self.scale > 1 else 0

    def read(self, lr_win: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(lr, hr, lr_invalid, hr_invalid) of an LR window: (b, h, w) float32 arrays and
        (h, w) masks in their own grids."""
        hr_win = self.geometry.hr_window(lr_win)
        if self.lr is None:
            m = self.wald_margin
            grown = self.geometry.hr_window(lr_win.grow(m))
            big = _read_clamped(self.hr, grown)
            hr_big_invalid = invalid_mask(big, self.hr_nodata)
            s = self.scale
            core = (
                slice(None),
                slice(m * s, big.shape[1] - m * s),
                slice(m * s, big.shape[2] - m * s),
            )
            hr = big[core]
            hr_invalid = hr_big_invalid[core[1:]]
            lr = degrade(_fill_mean(big, hr_big_invalid), s)[
                :, m : m + lr_win.height, m : m + lr_win.width
            ]
            lr_invalid = hr_invalid.reshape(lr_win.height, s, lr_win.width, s).any(axis=(1, 3))
            return lr.astype(np.float32), hr.astype(np.float32), lr_invalid, hr_invalid
        lr = _read(self.lr, lr_win)
        hr = _read(self.hr, hr_win)
        return (
            lr.astype(np.float32),
            hr.astype(np.float32),
            invalid_mask(lr, self.lr_nodata),
            invalid_mask(hr, self.hr_nodata),
        )


def _joint_invalid(lr_bad: np.ndarray, hr_bad: np.ndarray, scale: int) -> np.ndarray:
    """HR-grid mask of pixels that are no-data in the HR or under a no-data LR pixel."""
    return hr_bad | np.repeat(np.repeat(lr_bad, scale, 0), scale, 1)


def _fill_mean(values: np.ndarray, invalid: np.ndarray) -> np.ndarray:
    """``values`` with invalid pixels set to the band's mean over the valid ones (or 0)."""
    if not invalid.any():
        return values
    out = values.astype(np.float64, copy=True)
    means = out[:, ~invalid].mean(axis=1) if (~invalid).any() else np.zeros(len(out))
    out[:, invalid] = means[:, None]
    return out


def _read(da: xr.DataArray, win: Window) -> np.ndarray:
    ys, xs = win.slices()
    return np.asarray(da.isel({da.rio.y_dim: ys, da.rio.x_dim: xs}).values)


def _read_clamped(da: xr.DataArray, win: Window) -> np.ndarray:
    """Read ``win``; parts outside the raster are mirrored from the inside (symmetric)."""
    h, w = da.sizes[da.rio.y_dim], da.sizes[da.rio.x_dim]
    r0, c0 = max(win.row, 0), max(win.col, 0)
    r1, c1 = min(win.row + win.height, h), min(win.col + win.width, w)
    inner = _read(da, Window(r0, c0, r1 - r0, c1 - c0))
    pad = (
        (0, 0),
        (r0 - win.row, win.row + win.height - r1),
        (c0 - win.col, win.col + win.width - c1),
    )
    if any(p for pair in pad for p in pair):
        inner = np.pad(inner, pad, mode="symmetric")
    return inner


# -- building sources ---------------------------------------------------------------------------


def _as_array(src: Any, bands: Sequence[int | str] | None, nodata: float | None) -> xr.DataArray:
    """A (band, y, x) DataArray from paths (read lazily, window by window) or a DataArray."""
    from xsr4rs.io import open_raster, select_bands

    if isinstance(src, xr.DataArray):
        da = src if src.ndim == 3 else src.expand_dims("band")
        if nodata is not None:
            da = da.rio.write_nodata(nodata, encoded=False)
        return select_bands(da, bands) if bands else da
    return open_raster(src, bands=bands, chunks=512, nodata=nodata)


def _label(src: Any) -> str:
    if isinstance(src, xr.DataArray):
        return f"DataArray {src.name or ''}".strip()
    if isinstance(src, str | os.PathLike):
        return os.fspath(src)
    return " + ".join(os.fspath(p) for p in src)


def _nodata(da: xr.DataArray) -> float | None:
    nd = da.rio.nodata if da.rio.nodata is not None else da.rio.encoded_nodata
    return None if nd is None else float(nd)


def check_pair(
    lr: xr.DataArray, hr: xr.DataArray, scale: int | None, names: tuple[str, str]
) -> PairGeometry:
    """Check that ``hr`` is a ``scale`` times finer grid aligned with ``lr``; return the geometry.

    Raises `InputError` naming both rasters and the numbers that disagree.
    """
    lr_name, hr_name = names
    if lr.sizes["band"] != hr.sizes["band"]:
        raise InputError(
            f"{lr_name} has {lr.sizes['band']} bands but {hr_name} has {hr.sizes['band']}: "
            "choose matching bands with data.lr_bands / data.hr_bands"
        )
    if lr.rio.crs != hr.rio.crs:
        raise InputError(
            f"{lr_name} is in CRS {lr.rio.crs} but {hr_name} in {hr.rio.crs}: reproject one "
            "of them onto the other's CRS (e.g. gdalwarp -t_srs)"
        )
    tl, th = lr.rio.transform(), hr.rio.transform()
    if tl.b or tl.d or th.b or th.d:
        raise InputError(f"{lr_name} or {hr_name} has a rotated grid: warp both to north-up grids")
    ratio_x, ratio_y = tl.a / th.a, tl.e / th.e
    found = round(ratio_x)
    if (
        found < 1
        or abs(ratio_x - found) > GRID_TOLERANCE * found
        or abs(ratio_y - found) > GRID_TOLERANCE * found
    ):
        raise InputError(
            f"pixel sizes do not differ by an integer factor: {lr_name} has {abs(tl.a):g} x "
            f"{abs(tl.e):g}, {hr_name} has {abs(th.a):g} x {abs(th.e):g} "
            f"(ratio {ratio_x:.4f} x {ratio_y:.4f}). Resample the HR to LR pixel size / scale"
        )
    if scale is not None and found != scale:
        raise InputError(
            f"{hr_name} ({abs(th.a):g} m pixels) is {found} times finer than {lr_name} "
            f"({abs(tl.a):g} m), not scale={scale}: fix data.scale or the rasters"
        )
    ox, oy = (tl.c - th.c) / th.a, (tl.f - th.f) / th.e
    dx, dy = round(ox), round(oy)
    if max(abs(ox - dx), abs(oy - dy)) > ALIGN_TOLERANCE:
        raise InputError(
            f"{hr_name} is not aligned with the pixel corners of {lr_name}: the LR origin "
            f"({tl.c:.3f}, {tl.f:.3f}) falls at HR pixel ({oy:.3f}, {ox:.3f}), which is not whole "
            f"(off by {abs(oy - dy) * abs(th.e):.3f} and {abs(ox - dx) * abs(th.a):.3f} map "
            "units). "
            "Resample one raster so that every LR pixel corner is an HR pixel corner"
        )
    geom = pair_geometry(
        (lr.sizes[lr.rio.y_dim], lr.sizes[lr.rio.x_dim]),
        (hr.sizes[hr.rio.y_dim], hr.sizes[hr.rio.x_dim]),
        found,
        dy,
        dx,
    )
    if geom.extent.height == 0 or geom.extent.width == 0:
        raise InputError(f"{lr_name} and {hr_name} do not overlap: give rasters of the same area")
    return geom


def make_sources(
    *,
    pairs: Sequence[tuple[Any, Any]] = (),
    images: Sequence[Any] = (),
    scale: int | None = None,
    lr_bands: Sequence[int | str] | None = None,
    hr_bands: Sequence[int | str] | None = None,
    nodata: float | None = None,
) -> list[Source]:
    """Open and check the training rasters: ``pairs`` of (LR, HR), or ``images`` (Wald mode)."""
    sources = []
    for lr_src, hr_src in pairs:
        lr = _as_array(lr_src, lr_bands, nodata)
        hr = _as_array(hr_src, hr_bands, nodata)
        names = (_label(lr_src), _label(hr_src))
        geom = check_pair(lr, hr, scale, names)
        sources.append(Source(hr, lr, geom, f"{names[0]} -> {names[1]}", _nodata(hr), _nodata(lr)))
    for img in images:
        if scale is None:
            raise InputError("Wald mode (data.images) needs data.scale (--scale)")
        hr = _as_array(img, hr_bands, nodata)
        h, w = hr.sizes[hr.rio.y_dim], hr.sizes[hr.rio.x_dim]
        geom = pair_geometry((h // scale, w // scale), (h, w), scale, 0, 0)
        sources.append(Source(hr, None, geom, _label(img), _nodata(hr), None))
    if not sources:
        raise InputError("no training data: give data.pairs (--lr/--hr) or data.images (--image)")
    bands = {s.hr.sizes["band"] for s in sources}
    if len(bands) > 1:
        raise InputError(f"the training rasters have different band counts {sorted(bands)}")
    scales = {s.scale for s in sources}
    if len(scales) > 1:
        raise InputError(f"the pairs have different scales {sorted(scales)}: train one at a time")
    return sources


# -- the sampler --------------------------------------------------------------------------------


@dataclass
class Batch:
    lr: np.ndarray  # (n, p, p, bands) float32, no-data filled
    hr: np.ndarray  # (n, s*p, s*p, bands) float32
    mask: np.ndarray  # (n, s*p, s*p, 1) float32, 1 where HR and LR are valid


class PatchSampler:
    """Training batches and validation blocks drawn from `Source` objects.

    Parameters
    ----------
    patch
        LR patch size in pixels (HR patches are ``scale * patch``).
    sampling
        ``"random"`` windows or a regular ``"grid"`` (visited in a seeded order per pass).
    max_nodata
        Patches with a larger fraction of no-data HR pixels are skipped (and counted).
    val_fraction, val_block
        Share of ``val_block``-pixel LR blocks kept for validation; no training patch
        (grown by the Wald margin) touches them.
    cache
        Load the rasters into memory once (small datasets).
    """

    def __init__(
        self,
        sources: list[Source],
        *,
        patch: int = 32,
        batch_size: int = 8,
        seed: int = 0,
        sampling: str = "random",
        max_nodata: float = 0.1,
        val_fraction: float = 0.2,
        val_block: int = 64,
        max_val_blocks: int = 16,
        cache: bool = False,
        flips: bool = False,
        gain: tuple[float, float] | None = None,
    ) -> None:
        self.sources, self.patch, self.batch_size, self.seed = sources, patch, batch_size, seed
        self.flips, self.gain = flips, gain
        self.sampling, self.max_nodata = sampling, max_nodata
        self.skipped = 0
        self.fill: np.ndarray | None = None
        if cache:
            for s in sources:
                s.hr = s.hr.load()
                s.lr = s.lr.load() if s.lr is not None else None
        for i, s in enumerate(sources):
            _, val = split_blocks(s.geometry.extent, val_block, val_fraction, seed + i, patch)
            s.val_blocks = val[:max_val_blocks]
        area = [s.geometry.extent.height * s.geometry.extent.width for s in sources]
        self._weights = np.asarray(area, dtype=float) / sum(area)
        if all(
            random_window(
                np.random.default_rng(0), s.geometry.extent, patch, s.val_blocks, s.wald_margin
            )
            is None
            for s in sources
        ):
            raise InputError(
                f"no {patch}x{patch} LR training patch fits outside the validation blocks: "
                "use smaller data.patch, data.val_block or data.val_fraction, or larger images"
            )
        self._grid = [
            (i, w)
            for i, s in enumerate(sources)
            for w in grid_windows(s.geometry.extent, patch, s.val_blocks, s.wald_margin)
        ]
        if sampling == "grid" and not self._grid:
            raise InputError(f"no {patch}x{patch} grid window lies outside the validation blocks")

    @property
    def bands(self) -> int:
        return self.sources[0].hr.sizes["band"]

    @property
    def scale(self) -> int:
        return self.sources[0].scale

    def _grid_window(self, k: int) -> tuple[int, Window]:
        """Item ``k`` of the grid windows visited pass after pass, each in a seeded order."""
        n = len(self._grid)
        epoch, pos = divmod(k, n)
        order = np.random.default_rng([self.seed, 2, epoch]).permutation(n)
        return self._grid[order[pos]]

    def _random_window(self, rng: np.random.Generator) -> tuple[int, Window]:
        """A source (chosen by area) and a random training window in it."""
        while True:
            i = int(rng.choice(len(self.sources), p=self._weights))
            s = self.sources[i]
            w = random_window(rng, s.geometry.extent, self.patch, s.val_blocks, s.wald_margin)
            if w is not None:
                return i, w

    def sample(self, k: int) -> tuple[np.ndarray, ...]:
        """Patch number ``k`` of the run, skipping patches with too much no-data."""
        for attempt in range(1000):
            if self.sampling == "grid":
                i, w = self._grid_window(k + attempt * 7919)
            else:
                i, w = self._random_window(np.random.default_rng([self.seed, 3, k, attempt]))
            lr, hr, lr_bad, hr_bad = self.sources[i].read(w)
            bad = _joint_invalid(lr_bad, hr_bad, self.scale)
            if bad.mean() <= self.max_nodata:
                if self.flips or self.gain:
                    lr, hr, lr_bad, bad = self._augment(k, lr, hr, lr_bad, bad)
                return self._finish(lr, hr, lr_bad, bad)
            self.skipped += 1
        raise InputError(
            f"1000 patches in a row had more than {self.max_nodata:.0%} no-data pixels: "
            "raise data.max_nodata or check the no-data value"
        )

    def _augment(self, k: int, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        """Training patch ``k`` flipped and rotated by multiples of 90 degrees (the same for
        LR, HR and masks, so the geometry holds) and multiplied by one random gain (a
        brightness change that the degradation, being linear, commutes with)."""
        rng = np.random.default_rng([self.seed, 5, k])
        lr, hr, lr_bad, bad = arrays
        if self.flips:
            turns, flip = int(rng.integers(4)), bool(rng.integers(2))

            def move(a: np.ndarray) -> np.ndarray:
                a = np.rot90(a, turns, axes=(-2, -1))
                return np.ascontiguousarray(a[..., ::-1] if flip else a)

            lr, hr, lr_bad, bad = (move(a) for a in (lr, hr, lr_bad, bad))
        if self.gain:
            g = np.float32(np.exp(rng.uniform(np.log(self.gain[0]), np.log(self.gain[1]))))
            lr, hr = lr * g, hr * g
        return lr, hr, lr_bad, bad

    def _finish(self, lr, hr, lr_bad, bad) -> tuple[np.ndarray, ...]:  # noqa: ANN001
        fill = self.fill if self.fill is not None else np.zeros(lr.shape[0], np.float32)
        lr = np.where(lr_bad[None], fill[:, None, None], lr)
        hr = np.where(bad[None], fill[:, None, None], hr)
        return (
            np.moveaxis(lr, 0, -1).astype(np.float32),
            np.moveaxis(hr, 0, -1).astype(np.float32),
            (~bad)[..., None].astype(np.float32),
        )

    def batch(self, step: int) -> Batch:
        """The training batch of step ``step``: a pure function of ``(seed, step)``."""
        items = [self.sample(step * self.batch_size + j) for j in range(self.batch_size)]
        return Batch(*(np.stack(a) for a in zip(*items, strict=True)))

    def validation(self) -> list[Batch]:
        """Every validation block as a batch of one (whole blocks, not patches)."""
        out = []
        for s in self.sources:
            for w in s.val_blocks:
                lr, hr, lr_bad, hr_bad = s.read(w)
                bad = _joint_invalid(lr_bad, hr_bad, s.scale)
                if bad.mean() > 0.5:
                    continue
                out.append(Batch(*(a[None] for a in self._finish(lr, hr, lr_bad, bad))))
        return out

    def statistics(self, n: int = 64, percentiles: tuple[float, float] = (2, 98)) -> np.ndarray:
        """(3, bands) robust low percentile, median and high percentile of valid HR values,
        from ``n`` seeded random patches."""
        rng = np.random.default_rng([self.seed, 4])
        values = []
        for _ in range(n):
            i, w = (
                self._random_window(rng)
                if self.sampling != "grid"
                else self._grid[int(rng.integers(len(self._grid)))]
            )
            _, hr, _, hr_bad = self.sources[i].read(w)
            values.append(hr[:, ~hr_bad])
        v = np.concatenate(values, axis=1)
        if v.shape[1] == 0:
            raise InputError("no valid pixel found in the training data: check the no-data value")
        return np.percentile(v, [percentiles[0], 50, percentiles[1]], axis=1).astype(np.float32)

    def dataset(self, start_step: int, stop_step: int, workers: int = 2) -> Any:
        """A ``tf.data.Dataset`` of (lr, hr, mask) batches for steps ``[start, stop)``, read by
        ``workers`` parallel calls and prefetched; its memory does not grow with the data."""
        from xsr4rs._tf import import_tf

        tf = import_tf()
        p, s, b, n = self.patch, self.scale, self.batch_size, self.bands

        def read(step: Any) -> tuple[np.ndarray, ...]:
            batch = self.batch(int(step))
            return batch.lr, batch.hr, batch.mask

        def load(step: Any) -> tuple[Any, ...]:
            lr, hr, mask = tf.numpy_function(read, [step], [tf.float32] * 3, stateful=False)
            lr.set_shape([b, p, p, n])
            hr.set_shape([b, s * p, s * p, n])
            mask.set_shape([b, s * p, s * p, 1])
            return lr, hr, mask

        ds = tf.data.Dataset.range(start_step, stop_step)
        ds = ds.map(load, num_parallel_calls=max(1, workers), deterministic=True)
        return ds.prefetch(2)


def dataset_bytes(sources: list[Source]) -> int:
    """Bytes the rasters would take in memory (to decide on caching)."""
    return sum(s.hr.nbytes + (s.lr.nbytes if s.lr is not None else 0) for s in sources)


def cache_decision(setting: str | bool, sources: list[Source], limit: float = 1 * 2**30) -> bool:
    if setting in (True, "true", "on", "yes"):
        return True
    if setting in (False, "false", "off", "no"):
        return False
    return dataset_bytes(sources) <= limit


__all__ = ["Batch", "PatchSampler", "Source", "check_pair", "make_sources"]
