"""The upscaled DataArray: its coordinates, attributes, encoding and georeferencing.

What stays true on the finer grid travels along (band names and band coordinates such as
wavelengths, dates and their coordinates, the CRS, CF encodings, ground control points);
what described the old grid is dropped (x/y-dependent coordinates, GDAL statistics,
stackstac's ``spec``/``resolution``/``transform``, STAC ``gsd``/``proj:shape``/
``proj:transform``) or updated (``raster:bands`` ``spatial_resolution``).
"""

from __future__ import annotations

import warnings
from typing import Any

import dask.array as dsa
import numpy as np
import xarray as xr
from affine import Affine

from xsr4rs.exceptions import GeoreferenceWarning
from xsr4rs.geo import pixel_centres, upscaled_transform
from xsr4rs.layout import Layout

#: Attributes and coordinates that describe the input's grid, not the output's.
STALE = {
    "_FillValue",
    "missing_value",
    "GeoTransform",
    "transform",
    "res",
    "resolution",
    "nodatavals",
    "spec",
    "gsd",
    "proj:shape",
    "proj:transform",
    "OVR_RESAMPLING_ALG",
}


def is_stale(name: str) -> bool:
    return name in STALE or name.startswith("STATISTICS_")


def build(
    da: xr.DataArray,
    work: xr.DataArray,
    out: dsa.Array,
    lay: Layout,
    band: str,
    *,
    transform: Affine,
    scale: int,
    model_name: str,
    band_labels: Any,
    output_band_names: tuple[str, ...] | None,
    out_nodata: float | None,
    encoding: dict[str, Any] | None,
) -> xr.DataArray:
    """Wrap the (*lead, band, y, x) dask array ``out`` as the upscaled DataArray.

    ``work`` is the input as it reached the engine (bands in the model's order);
    ``band_labels`` the band coordinate of the output (the input's, for models that keep
    the bands), or ``None`` for 1..n.
    """
    n_out = out.shape[-3]
    height, width = out.shape[-2:]
    gcps = da.rio.get_gcps()
    new_transform = upscaled_transform(transform, scale)
    coords: dict[str, Any] = {}
    if not gcps:  # a raster located by GCPs only has no x/y coordinates
        coords[lay.x], coords[lay.y] = pixel_centres(new_transform, height, width)
    attrs = {k: v for k, v in da.attrs.items() if not is_stale(k)}
    coords[band] = band_labels if band_labels is not None else np.arange(1, n_out + 1)
    keep_band_coords = band_labels is not None and output_band_names is None
    if output_band_names is not None:
        attrs["long_name"] = tuple(output_band_names)
    elif not keep_band_coords and not isinstance(attrs.get("long_name"), str):
        attrs.pop("long_name", None)
    for name, coord in work.coords.items():
        if name in coords or name == "spatial_ref" or is_stale(str(name)):
            continue
        dims = set(coord.dims)
        if not dims or dims <= set(lay.lead):  # scalars, dates and what varies with them
            coords[name] = coord
        elif keep_band_coords and dims == {band}:  # wavelengths, common names...
            coords[name] = coord.assign_coords({band: coords[band]})
        elif keep_band_coords and dims <= {band, *lay.lead}:
            coords[name] = coord
    if "raster:bands" in coords:
        coords["raster:bands"] = _finer_raster_bands(coords["raster:bands"], scale)
    dims = (*lay.lead, band, lay.y, lay.x)
    result = xr.DataArray(out, dims=dims, coords=coords, attrs=attrs)
    result.name = da.name  # not the dask array's name
    crs = da.rio.crs
    if gcps:
        result = result.rio.write_gcps(_scaled_gcps(gcps, scale), crs)
    else:
        if crs is not None:
            result = result.rio.write_crs(crs)
        else:
            warnings.warn(
                "the input has no CRS: the output is a pixel grid without CRS "
                f"(transform {tuple(new_transform)[:6]})",
                GeoreferenceWarning,
                stacklevel=4,
            )
        result = result.rio.write_transform(new_transform)
    encoding = dict(encoding or {})
    stored_nodata = encoding.pop("_FillValue", None)
    if stored_nodata is not None:  # decoded: NaN in memory, the stored value on disk
        result = result.rio.write_nodata(stored_nodata, encoded=True)
    elif out_nodata is not None:
        result = result.rio.write_nodata(out_nodata, encoded=False)
    result.encoding.update(encoding)
    result.attrs["xsr4rs_model"] = model_name
    result.attrs["xsr4rs_scale"] = scale
    return result


def _scaled_gcps(gcps: list, scale: int) -> list:
    """Ground control points of the finer grid: the same ground points, pixel/line
    positions (GDAL's corner-based convention) multiplied by the scale."""
    from rasterio.control import GroundControlPoint

    return [
        GroundControlPoint(
            row=g.row * scale, col=g.col * scale, x=g.x, y=g.y, z=g.z, id=g.id, info=g.info
        )
        for g in gcps
    ]


def _finer_raster_bands(coord: Any, scale: int) -> Any:
    """STAC ``raster:bands`` entries with their ``spatial_resolution`` divided by the scale."""

    def finer(rb: Any) -> Any:
        if isinstance(rb, dict) and isinstance(rb.get("spatial_resolution"), int | float):
            return {**rb, "spatial_resolution": rb["spatial_resolution"] / scale}
        return rb

    values = np.asarray(coord.values, dtype=object)
    new = np.empty(values.shape, dtype=object)
    for idx, rb in np.ndenumerate(values):
        new[idx] = finer(rb)
    return coord.copy(data=new)
