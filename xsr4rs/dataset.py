"""Datasets with one variable per band (odc-stac's default): matched to the model's bands
by name, stacked in its order, upscaled as one image and split back into variables."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from xsr4rs import bands as band_names
from xsr4rs.exceptions import BandWarning, InputError


def _raster_variables(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    out = {}
    for name, var in ds.data_vars.items():
        try:
            y_dim, x_dim = var.rio.y_dim, var.rio.x_dim
        except Exception:
            continue
        if y_dim in var.dims and x_dim in var.dims:
            out[str(name)] = var
    return out


def upscale_dataset(ds: xr.Dataset, model: Any, **kwargs: Any) -> xr.Dataset:
    """Upscale a Dataset: its variables together when they are the model's bands by name
    (``red``/``B04``...), else each raster variable alone (band-wise models)."""
    from xsr4rs.model.handle import load_model
    from xsr4rs.upscale import upscale

    variables = _raster_variables(ds)
    if not variables:
        raise InputError(
            f"the Dataset has no raster variable with y/x dims among {list(ds.data_vars)}"
        )
    handle = load_model(
        model,
        halo=kwargs.get("halo"),
        trust=kwargs.get("trust_model", False),
        output=kwargs.get("output"),
    )
    wanted = handle.metadata.input_bands
    names = list(variables)
    one_band = all(_bands_of(v, kwargs.get("band_dim")) == 1 for v in variables.values())
    named = [n for n in names if band_names.canonical(n) is not None]
    if wanted and len(wanted) > 1 and one_band and band_names.is_named(wanted) and named:
        try:
            order = band_names.match(wanted, named)
        except KeyError as err:
            raise InputError(
                f"model {handle.name!r} needs the bands {', '.join(wanted)}; the Dataset's "
                f"variables cannot give them ({err.args[0]}): name the variables after "
                "the bands (B04 or red...) or stack them yourself"
            ) from None
        if order is not None:
            return _stacked(ds, variables, [named[i] for i in order], handle, kwargs)
    out = {name: upscale(var, handle, **kwargs) for name, var in variables.items()}
    return xr.Dataset(out, attrs=ds.attrs)


def _bands_of(var: xr.DataArray, band_dim: str | None) -> int:
    from xsr4rs.layout import layout

    lay = layout(var, band_dim)
    return 1 if lay.band is None else var.sizes[lay.band]


def _stacked(
    ds: xr.Dataset,
    variables: dict[str, xr.DataArray],
    used: list[str],
    handle: Any,
    kwargs: dict[str, Any],
) -> xr.Dataset:
    from xsr4rs.upscale import upscale

    unused = [n for n in variables if n not in used]
    if unused:
        warnings.warn(
            f"variables not used by model {handle.name!r} are left out: {', '.join(unused)} "
            "(upscale them on their own, e.g. with model='nearest')",
            BandWarning,
            stacklevel=4,
        )
    parts = [_one_band(variables[n]) for n in used]
    nodatas = {_nodata(p) for p in parts} - {None}
    if len(nodatas) > 1 and kwargs.get("nodata") is None:
        raise InputError(
            f"the variables {', '.join(used)} declare different no-data values "
            f"{sorted(nodatas, key=str)}: pass nodata= to choose one"
        )
    stacked = xr.concat(
        parts, dim="band", coords="minimal", compat="override", combine_attrs="drop_conflicts"
    )
    stacked = stacked.assign_coords(band=used)
    first = variables[used[0]]
    if first.rio.crs is not None:
        stacked = stacked.rio.write_crs(first.rio.crs)
    if nodatas:
        stacked = stacked.rio.write_nodata(nodatas.pop(), encoded=False)
    scales, offsets = zip(*(_cf(variables[n]) for n in used), strict=True)
    if kwargs.get("scale_factor") is None and kwargs.get("add_offset") is None:
        if any(s != 1 for s in scales) or any(o != 0 for o in offsets):
            kwargs = {**kwargs, "scale_factor": list(scales), "add_offset": list(offsets)}
    stacked.encoding = dict(first.encoding)
    result = upscale(stacked, handle, **{**kwargs, "band_dim": "band"})
    out = {}
    for name in used:
        var = result.sel(band=name, drop=True)
        var.attrs = {**var.attrs, **_kept_attrs(variables[name])}
        var.encoding = dict(variables[name].encoding)
        out[name] = var
    return xr.Dataset(out, attrs=ds.attrs)


def _one_band(var: xr.DataArray) -> xr.DataArray:
    band = [d for d in var.dims if str(d).lower() in ("band", "bands")]
    return var.isel({band[0]: 0}, drop=True) if band else var


def _nodata(var: xr.DataArray) -> float | None:
    value = var.rio.nodata
    if value is None and "nodata" in var.attrs:
        value = var.attrs["nodata"]
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value


def _cf(var: xr.DataArray) -> tuple[float, float]:
    for mapping in (var.attrs,):
        if "scale_factor" in mapping or "add_offset" in mapping:
            return float(mapping.get("scale_factor", 1.0)), float(mapping.get("add_offset", 0.0))
    return 1.0, 0.0


def _kept_attrs(var: xr.DataArray) -> dict[str, Any]:
    from xsr4rs.output import is_stale

    return {
        k: v
        for k, v in var.attrs.items()
        if not is_stale(k) and k not in ("long_name",) and k != "nodata"
    }
