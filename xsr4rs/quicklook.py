"""Quicklook PNGs: a percentile-stretched RGB (or grey) picture of a raster, or a crop of it."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xsr4rs.exceptions import InputError


def _valid(values: np.ndarray, nodata: float | None) -> np.ndarray:
    valid = np.isfinite(values).all(axis=0)
    if nodata is not None and not np.isnan(nodata):
        valid &= ~(values == nodata).any(axis=0)
    return valid


def stretch_limits(
    values: np.ndarray, nodata: float | None = None, percentiles=(2, 98)
) -> np.ndarray:
    """(band, 2) low and high percentiles of each band over the pixels valid in every band.

    Bands without a valid pixel get the limits (0, 1).
    """
    values = values.astype(np.float64)
    valid = _valid(values, nodata)
    if not valid.any():
        return np.tile([0.0, 1.0], (values.shape[0], 1))
    return np.array([np.percentile(band[valid], percentiles) for band in values])


def stretch(
    values: np.ndarray,
    nodata: float | None = None,
    percentiles=(2, 98),
    *,
    limits: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 (band, y, x) from a (band, y, x) array, each band stretched between percentiles.

    ``limits`` ((band, 2) low and high values, e.g. `stretch_limits` of another image)
    replaces the image's own percentiles, so that several pictures share one stretch.
    Valid pixels map to 1..255; no-data is 0.
    """
    values = values.astype(np.float64)
    valid = _valid(values, nodata)
    out = np.zeros(values.shape, dtype=np.uint8)
    if not valid.any():
        return out
    if limits is None:
        limits = stretch_limits(values, nodata, percentiles)
    for i, band in enumerate(values):
        lo, hi = limits[i]
        scaled = (band - lo) / max(hi - lo, 1e-12)
        out[i] = np.where(valid, np.clip(scaled * 254 + 1, 1, 255), 0).astype(np.uint8)
    return out


def quicklook(
    src: str | os.PathLike[str],
    png: str | os.PathLike[str],
    *,
    bands: Sequence[int] = (1, 2, 3),
    window: tuple[int, int, int, int] | None = None,
    max_size: int = 1024,
) -> None:
    """Write a PNG of ``bands`` of raster ``src`` (whole, or ``window=(col, row, width, height)``).

    The picture is at most ``max_size`` pixels on its longer side (read through overviews
    when the file has them); no-data is black.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    if not os.path.exists(src):
        raise InputError(f"input {src} does not exist")
    from xsr4rs.io.atomic import check_not_inputs

    check_not_inputs(png, [src])
    with rasterio.open(src) as ds:
        bands = [b for b in bands if b <= ds.count] or [1]
        win = Window(*window) if window else Window(0, 0, ds.width, ds.height)
        factor = max(win.width / max_size, win.height / max_size, 1)
        shape = (len(bands), max(int(win.height / factor), 1), max(int(win.width / factor), 1))
        data = ds.read(bands, window=win, out_shape=shape, resampling=Resampling.average)
        nodata = ds.nodata
    if data.size == 0:
        raise InputError(f"the window {window} is empty in {src}")
    write_png(stretch(data, nodata), png)


def write_png(rgb: np.ndarray, png: str | os.PathLike[str]) -> None:
    """Write a uint8 (band, y, x) array as a PNG, without GDAL's .aux.xml side file: to
    a temporary first, which replaces ``png`` only when complete (`OutputError` else)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    from xsr4rs.io.atomic import write_atomically

    profile = dict(driver="PNG", width=rgb.shape[2], height=rgb.shape[1], count=rgb.shape[0])

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), rasterio.Env(GDAL_PAM_ENABLED="NO"):
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # no georeferencing
            with rasterio.open(tmp, "w", dtype="uint8", **profile) as out:
                out.write(rgb)

    write_atomically(png, write)
