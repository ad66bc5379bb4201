"""How an input is laid out: spatial, band and leading dimensions, band names, pixel grid.

Loaders hand over more than ``(band, y, x)``: stackstac returns ``(time, band, y, x)`` with
band names as coordinates and pixel-corner coordinates by default; rioxarray gives band
descriptions in ``long_name``. These functions read such layouts; the upscaling path
itself stays ``(..., band, y, x)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine

from xsr4rs.exceptions import InputError, ParameterError

#: Dimension names that are never a band dimension.
_LEADING_NAMES = {"time", "t", "date", "datetime"}


@dataclass(frozen=True)
class Layout:
    """Dimension roles of an input: ``lead`` dims (dates...), ``band`` (or ``None`` for
    a single-band raster), ``y`` and ``x``."""

    lead: tuple[str, ...]
    band: str | None
    y: str
    x: str


def layout(da: xr.DataArray, band_dim: str | None = None) -> Layout:
    """The roles of ``da``'s dimensions.

    The band dimension is ``band_dim`` if given, else one named ``band``/``bands``, else
    the only non-spatial dimension that is not a date (named ``time``, or datetime
    coordinates). Every other dimension is mapped over, one image at a time.
    """
    from rioxarray.exceptions import MissingSpatialDimensionError

    try:
        y_dim, x_dim = str(da.rio.y_dim), str(da.rio.x_dim)
    except MissingSpatialDimensionError:
        raise InputError(
            f"cannot find the spatial dimensions among {tuple(da.dims)}: name them y/x "
            "(or lat/lon), or call da.rio.set_spatial_dims(x_dim=..., y_dim=...)"
        ) from None
    others = [str(d) for d in da.dims if d not in (y_dim, x_dim)]
    if band_dim is not None:
        if band_dim not in others:
            raise ParameterError(f"band_dim={band_dim!r} is not a dimension of {tuple(da.dims)}")
        band = band_dim
    else:
        named = [d for d in others if d.lower() in ("band", "bands")]
        candidates = [d for d in others if not _is_leading(da, d)]
        if named:
            band = named[0]
        elif len(candidates) == 1:
            band = candidates[0]
        elif not candidates:
            band = None
        else:
            raise InputError(
                f"cannot tell which of {candidates} is the band dimension: pass "
                "band_dim=... (the others are mapped over, one image at a time)"
            )
    lead = tuple(d for d in others if d != band)
    return Layout(lead=lead, band=band, y=y_dim, x=x_dim)


def _is_leading(da: xr.DataArray, dim: str) -> bool:
    if dim.lower() in _LEADING_NAMES:
        return True
    coord = da.coords.get(dim)
    return coord is not None and np.issubdtype(coord.dtype, np.datetime64)


def band_labels(da: xr.DataArray, band: str | None) -> list[Any]:
    """Names of the bands: the band coordinate's strings, else rioxarray's ``long_name``
    descriptions, else ``[]``."""
    if band is None:
        name = da.attrs.get("long_name")
        return [name] if isinstance(name, str) else []
    if band in da.coords:
        values = list(da[band].values)
        if values and all(isinstance(v, str) for v in values):
            return values
    names = da.attrs.get("long_name")
    names = [names] if isinstance(names, str) else list(names or [])
    return names if len(names) == da.sizes[band] else []


def grid_transform(da: xr.DataArray) -> Affine:
    """The transform of ``da``'s pixel grid, checked against its x/y coordinates.

    rioxarray keeps the transform it read (in ``spatial_ref``) through a selection and
    uses its pixel size over the coordinates': after ``sortby("y")``, a reversed or
    strided ``isel``, ``da.rio.transform()`` puts the array at the wrong place. When
    the coordinates are not that transform's pixel centres, the transform is computed
    from them; coordinates that are not an evenly spaced grid raise `InputError`.
    """
    from xsr4rs.geo import centres_agree

    transform = da.rio.transform()
    if transform.b or transform.d or da.rio.get_gcps():
        return transform  # rotated, or located by control points: no 1-D grid to check
    x_dim, y_dim = da.rio.x_dim, da.rio.y_dim
    if x_dim not in da.coords or y_dim not in da.coords:
        return transform
    x, y = da[x_dim].values, da[y_dim].values
    if x.ndim != 1 or y.ndim != 1 or x.size < 2 or y.size < 2:
        return transform  # a single row or column says nothing of the spacing
    if centres_agree(transform, x, y):
        return transform
    try:
        recalculated = da.rio.transform(recalc=True)
    except Exception:  # noqa: BLE001 - rioxarray cannot make a grid of them: said below
        recalculated = None
    if recalculated is not None and centres_agree(recalculated, x, y):
        return recalculated
    raise InputError(
        f"the {x_dim}/{y_dim} coordinates are not an evenly spaced pixel grid (nor the "
        f"pixel centres of the array's transform {tuple(transform)[:6]}): xsr4rs needs a "
        "regular grid; select contiguous, evenly spaced pixels, or resample the array "
        "onto a grid first (e.g. da.rio.reproject)"
    )


def pixel_grid(da: xr.DataArray) -> Affine:
    """The input's transform, corrected for pixel-corner coordinates.

    stackstac's default ``xy_coords="topleft"`` puts x/y on pixel corners while rioxarray
    reads coordinates as pixel centres, so ``da.rio.transform()`` is half a pixel off.
    stackstac also stores its grid in ``attrs["transform"]`` (of the whole stack, also
    after a selection): when the coordinates fall on that grid's pixel corners rather
    than its centres, the first coordinates are the top-left corner.
    """
    derived = grid_transform(da)
    grid = da.attrs.get("transform")
    if not isinstance(grid, Affine) or derived.is_identity or grid.b or grid.d:
        return derived
    x = da[da.rio.x_dim].values if da.rio.x_dim in da.coords else None
    y = da[da.rio.y_dim].values if da.rio.y_dim in da.coords else None
    if x is None or y is None or x.size == 0 or y.size == 0:
        return derived
    col, row = (x[0] - grid.c) / grid.a, (y[0] - grid.f) / grid.e
    on_corners = abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6
    same_size = abs(derived.a - grid.a) < 1e-9 * abs(grid.a) and abs(
        derived.e - grid.e
    ) < 1e-9 * abs(grid.e)
    if on_corners and same_size:
        return Affine(grid.a, 0.0, float(x[0]), 0.0, grid.e, float(y[0]))
    return derived
