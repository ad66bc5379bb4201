"""``upscale``: validate a raster against a model, map the model lazily, set georeferencing."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import dask
import dask.array as dsa
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor used below)
import xarray as xr

from xsr4rs.engine import BlockSpec, map_model
from xsr4rs.exceptions import GeoreferenceWarning, InputError, ParameterError, TileWarning
from xsr4rs.geo import pixel_centres, upscaled_transform
from xsr4rs.model.handle import SRModel, load_model
from xsr4rs.nodata import check_nodata, is_nan
from xsr4rs.tiling import check_positive_int, max_tile, merge_small_chunks, regular_chunks

#: Default chunk (input pixels per side) when the input is not dask-backed: one default
#: tile, so each chunk is one model call. Measured on the x4 sample scene with bicubic
#: (benchmarks/chunk_size.py): 512 was the fastest at a 1.5 GiB peak; 1024 was 8 % slower
#: at 2.4 GiB and 2048 34 % slower at 4.1 GiB.
DEFAULT_CHUNK = 512
#: Default tile (input pixels per side of one model call, before the halo). Measured with a
#: network of SR4RS's generator size (benchmarks/tile_size.py): 512 reaches 96 % of the
#: best throughput at 5.2 GiB peak memory, 768 gains 4 % for 9.6 GiB, 256 and below lose
#: half to the halo and per-call overhead. Its largest tensor (3.3e8 elements) stays far
#: below TensorFlow's 2**31-element convolution slow-down.
DEFAULT_TILE = 512

ModelLike = str | os.PathLike[str] | SRModel
_DROP_ATTRS = {"_FillValue", "missing_value", "GeoTransform", "transform", "res", "nodatavals"}


def upscale(
    da: xr.DataArray | xr.Dataset,
    model: ModelLike,
    *,
    halo: int | None = None,
    chunks: int | tuple[int, int] | None = None,
    tile: int | None = None,
    nodata: float | None = None,
    dtype: Any = None,
    fill: float | Sequence[float] | None = None,
    resources: dict[str, float] | None = None,
    nonfinite: str = "error",
    trust_model: bool = False,
    output: str | None = None,
) -> xr.DataArray | xr.Dataset:
    """Super-resolve a georeferenced raster with a model, lazily and seam-free.

    Parameters
    ----------
    da
        A (band, y, x) or (y, x) DataArray, numpy- or dask-backed, in any dimension order
        (rioxarray finds the spatial dimensions). A Dataset upscales each of its raster
        variables.
    model
        A SavedModel directory, a built-in model name (``"bicubic"``, ``"nearest-x2"``...)
        or an `SRModel` from `xsr4rs.load_model`.
    halo
        Input pixels of overlap per side; default: the model's own (metadata or measured).
    chunks
        Input pixels per chunk side (int or ``(y, x)``); default: the dask chunks of ``da``,
        or 512 for numpy data. Chunks smaller than the halo are merged.
    tile
        Input pixels per side of one model call (chunks are split into tiles); default:
        the model's ``tile`` or 512.
    nodata
        No-data value of the input; default: the raster's own (``da.rio.nodata``), NaN for
        floats. No-data pixels (in any band) are replaced by the model's fill values before
        inference, and their output pixels are set to no-data.
    dtype
        Output type; default: the input's (integers are rounded and clipped).
    fill
        Value(s) given to the model in place of no-data; default: the model's
        ``fill_values``, else 0.
    resources
        Dask worker resources the model tasks need, e.g. ``{"GPU": 1}``: on a distributed
        cluster they then run only on workers started with ``--resources GPU=1``, while
        reading and writing run anywhere. Resources set with ``dask.annotate`` around
        this call are honoured too. Write with `xsr4rs.io.write` (or compute with dask's
        ``optimization.fuse.active`` set to False) so that graph optimisation keeps them.
    nonfinite
        What NaN or infinite model output at a valid pixel does when computed:
        ``"error"`` (the default) raises `NonFiniteOutputError` saying how many pixels and
        where; ``"nodata"`` writes those pixels as no-data (the output's no-data value,
        NaN for floats; integer outputs need a ``nodata``).
    trust_model
        Run a model whose graph reads or writes files, reaches the network or calls
        Python; such models are refused by default (see docs/guarantees.md).
    output
        For models with several outputs (SR4RS's ``output_32:0`` ... ``output_512:0``),
        the one to use, with or without ``:0``; default: the largest. Outputs cropped by
        a fixed border are restored to full extent.

    Returns
    -------
    A lazy DataArray with ``scale`` times more pixels in y and x, dims in the input's
    order, the input's CRS and attributes, and the transform ``transform * Affine.scale(1/scale)``.
    """
    if isinstance(da, xr.Dataset):
        return _upscale_dataset(
            da,
            model,
            halo=halo,
            chunks=chunks,
            tile=tile,
            nodata=nodata,
            dtype=dtype,
            fill=fill,
            resources=resources,
            nonfinite=nonfinite,
            trust_model=trust_model,
            output=output,
        )
    if not isinstance(da, xr.DataArray):
        raise InputError(f"upscale needs an xarray DataArray or Dataset, got {type(da).__name__}")
    y_dim, x_dim, band_dim = _dims(da)
    work = da if band_dim is not None else da.expand_dims("__band__")
    band_dim = band_dim or "__band__"
    work = work.transpose(band_dim, y_dim, x_dim)
    n_bands, height, width = work.shape
    handle = load_model(model, halo=halo, bands=n_bands, trust=trust_model, output=output)
    meta = handle.metadata
    check_bands(n_bands, handle, band_dim)
    scale, h = handle.scale, handle.halo

    in_dtype = np.dtype(work.dtype)
    if not (np.issubdtype(in_dtype, np.integer) or np.issubdtype(in_dtype, np.floating)):
        raise InputError(f"cannot upscale data of type {in_dtype}: give integers or floats")
    try:
        out_dtype = np.dtype(dtype) if dtype is not None else in_dtype
    except TypeError:
        raise ParameterError(
            f"unknown dtype {dtype!r}: use e.g. uint16, int16 or float32"
        ) from None
    if not (np.issubdtype(out_dtype, np.integer) or np.issubdtype(out_dtype, np.floating)):
        raise ParameterError(f"dtype must be an integer or float type, got {out_dtype}")
    in_nodata = _input_nodata(da, nodata, in_dtype)
    out_nodata = in_nodata
    if (
        out_nodata is None
        and np.issubdtype(in_dtype, np.floating)
        and np.issubdtype(out_dtype, np.floating)
    ):
        out_nodata = float("nan")
    if nonfinite not in ("error", "nodata"):
        raise ParameterError(f"nonfinite must be 'error' or 'nodata', got {nonfinite!r}")
    if nonfinite == "nodata" and out_nodata is None:
        if not np.issubdtype(out_dtype, np.floating):
            raise ParameterError(
                f"nonfinite='nodata' needs a no-data value for {out_dtype} output, and neither "
                "the input nor nodata= gives one: pass nodata= (CLI --nodata)"
            )
        out_nodata = float("nan")
    out_nodata = check_nodata(out_dtype, out_nodata)
    fill_values = _fill(fill, meta.fill_values, n_bands)

    ychunks, xchunks = _chunk_plan(work, chunks, h)
    tile = _tile(tile, meta, h)
    if work.chunks is None:  # numpy or lazily indexed file data: chunk without loading it
        work = work.chunk({band_dim: -1, y_dim: ychunks, x_dim: xchunks})
    data = work.data
    spec = BlockSpec(
        scale=scale,
        halo=h,
        tile=tile,
        nodata=in_nodata,
        fill=tuple(float(v) for v in fill_values),
        out_bands=meta.n_output_bands or n_bands,
        out_dtype=out_dtype.str,
        out_nodata=out_nodata,
        nonfinite=nonfinite,
    )
    annotations = dict(dask.get_annotations())
    if resources:
        annotations["resources"] = dict(resources)
    out = map_model(data, handle, spec, (ychunks, xchunks), annotations or None)
    result = _wrap(da, work, out, handle, band_dim, y_dim, x_dim, out_nodata)
    if band_dim == "__band__":
        result = result.squeeze("__band__", drop=True)
    order = [d for d in da.dims]
    return result.transpose(*order)


def check_bands(n_bands: int, model: SRModel, band_dim: str = "band") -> None:
    """Raise `InputError` when the model's metadata fixes another band count."""
    expected = model.metadata.n_input_bands
    if expected is not None and expected != n_bands:
        names = ", ".join(model.metadata.input_bands or ())
        raise InputError(
            f"model {model.name!r} expects {expected} bands ({names}) but the input has "
            f"{n_bands}: select the bands in this order (CLI: --bands or one file per band; "
            f"Python: da.isel({band_dim}=[...]))"
        )


def check_input(
    da: xr.DataArray,
    model: ModelLike,
    *,
    nodata: float | None = None,
    sample: int = 512,
    trust_model: bool = False,
) -> None:
    """Check band count and value range of ``da`` against ``model``'s metadata.

    Reads a strided sample of about ``sample x sample`` pixels (this computes), and raises
    `InputError` when the values are far outside the range the model was trained on, for
    example reflectance in 0..1 given to a model of reflectance x 10000.
    """
    y_dim, x_dim, band_dim = _dims(da)
    n_bands = da.sizes[band_dim] if band_dim else 1
    handle = load_model(model, bands=n_bands, trust=trust_model)
    check_bands(n_bands, handle, band_dim or "band")
    rng = handle.metadata.value_range
    if rng is None:
        return
    step_y = max(da.sizes[y_dim] // sample, 1)
    step_x = max(da.sizes[x_dim] // sample, 1)
    values = np.asarray(
        da.isel({y_dim: slice(None, None, step_y), x_dim: slice(None, None, step_x)})
    )
    values = values.astype(np.float64)
    nd = _input_nodata(da, nodata, np.dtype(da.dtype))
    valid = np.isfinite(values)
    if nd is not None and not is_nan(nd):
        valid &= values != nd
    if not valid.any():
        return
    v = values[valid]
    lo, hi = rng
    p99, p50 = np.percentile(v, 99), np.percentile(v, 50)
    span = hi - lo
    units = f" ({handle.metadata.units})" if handle.metadata.units else ""
    if p99 < lo + span / 100:
        raise InputError(
            f"input values look too small for model {handle.name!r}: 99% of sampled valid "
            f"pixels are below {p99:.4g} but the model expects values in {lo:g}..{hi:g}{units}. "
            "Rescale the data (e.g. multiply 0..1 reflectance by 10000) or pass the right bands"
        )
    if p50 > hi + 10 * span or p50 < lo - 10 * span:
        raise InputError(
            f"input values look out of range for model {handle.name!r}: the median of sampled "
            f"valid pixels is {p50:.4g} but the model expects values in {lo:g}..{hi:g}{units}"
        )


# -- helpers -------------------------------------------------------------------------------


def _dims(da: xr.DataArray) -> tuple[str, str, str | None]:
    from rioxarray.exceptions import MissingSpatialDimensionError

    try:
        y_dim, x_dim = da.rio.y_dim, da.rio.x_dim
    except MissingSpatialDimensionError:
        raise InputError(
            f"cannot find the spatial dimensions among {tuple(da.dims)}: name them y/x "
            "(or lat/lon), or call da.rio.set_spatial_dims(x_dim=..., y_dim=...)"
        ) from None
    others = [d for d in da.dims if d not in (y_dim, x_dim)]
    if len(others) > 1:
        raise InputError(
            f"upscale takes a (band, y, x) or (y, x) raster; this one has dims {tuple(da.dims)}: "
            f"select one value of {others[:-1]} or stack them into a single band dimension"
        )
    return str(y_dim), str(x_dim), (str(others[0]) if others else None)


def _input_nodata(da: xr.DataArray, nodata: float | None, dtype: np.dtype) -> float | None:
    """The no-data value: the argument, else the raster's (NaN once masked), else NaN for floats."""
    if nodata is not None:
        return float(nodata)
    floating = np.issubdtype(dtype, np.floating)
    for value in (da.rio.nodata, da.rio.encoded_nodata):
        if value is None or (is_nan(value) and not floating):
            continue
        return value.item() if hasattr(value, "item") else value
    return float("nan") if floating else None


def _fill(
    fill: float | Sequence[float] | None, meta_fill: Sequence[float] | None, n: int
) -> np.ndarray:
    if fill is None:
        fill = meta_fill if meta_fill is not None else 0.0
    values = (
        np.broadcast_to(np.asarray(fill, dtype=np.float32), (n,))
        if np.ndim(fill) == 0
        else (np.asarray(fill, dtype=np.float32))
    )
    if values.shape != (n,) or not np.isfinite(values).all():
        raise ParameterError(f"fill must be one finite value or {n} (one per band), got {fill!r}")
    return values.copy()


def _tile(tile: int | None, meta: Any, halo: int) -> int:
    """The tile side: asked for, or the model's, or the default; capped by tensor size."""
    asked = tile is not None
    tile = check_positive_int("tile", tile if asked else (meta.tile or DEFAULT_TILE))
    if meta.tensor_elements_per_pixel:
        cap = max_tile(halo, meta.tensor_elements_per_pixel)
        if tile > cap:
            if asked:
                warnings.warn(
                    f"tile={tile} would make tensors of over 2**30 elements inside the model; "
                    f"using tile={cap}",
                    TileWarning,
                    stacklevel=4,
                )
            tile = cap
    return tile


def _chunk_plan(
    work: xr.DataArray, chunks: int | tuple[int, int] | None, halo: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    _, height, width = work.shape
    if chunks is None and work.chunks is not None:
        return (
            merge_small_chunks(work.chunks[1], halo),
            merge_small_chunks(work.chunks[2], halo),
        )
    if chunks is None:
        cy = cx = DEFAULT_CHUNK
    elif isinstance(chunks, int | np.integer):
        cy = cx = check_positive_int("chunks", int(chunks))
    else:
        try:
            cy, cx = (check_positive_int("chunks", int(c)) for c in chunks)
        except (TypeError, ValueError):
            raise ParameterError(f"chunks must be an int or (y, x), got {chunks!r}") from None
    return regular_chunks(height, cy, halo), regular_chunks(width, cx, halo)


def _wrap(
    da: xr.DataArray,
    work: xr.DataArray,
    out: dsa.Array,
    model: SRModel,
    band_dim: str,
    y_dim: str,
    x_dim: str,
    out_nodata: float | None,
) -> xr.DataArray:
    scale = model.scale
    meta = model.metadata
    n_out, height, width = out.shape
    gcps = da.rio.get_gcps()
    transform = upscaled_transform(da.rio.transform(), scale)
    coords: dict[str, Any] = {}
    if not gcps:  # a raster located by GCPs only has no x/y coordinates
        coords[x_dim], coords[y_dim] = pixel_centres(transform, height, width)
    attrs = {k: v for k, v in da.attrs.items() if k not in _DROP_ATTRS}
    if meta.output_bands is None and n_out == work.sizes[band_dim]:
        if band_dim in work.coords:
            coords[band_dim] = work[band_dim].values
    else:
        coords[band_dim] = np.arange(1, n_out + 1)
        if meta.output_bands is not None:
            attrs["long_name"] = tuple(meta.output_bands)
        else:
            attrs.pop("long_name", None)
    # scalar coordinates (time, spatial_ref...) travel along; others depended on the old grid
    for name, coord in work.coords.items():
        if coord.ndim == 0 and name not in coords and name != "spatial_ref":
            coords[name] = coord
    result = xr.DataArray(out, dims=(band_dim, y_dim, x_dim), coords=coords, attrs=attrs)
    result.name = da.name  # not the dask array's name
    crs = da.rio.crs
    if gcps:
        return _with_gcps(result, gcps, crs, scale, model, out_nodata)
    if crs is not None:
        result = result.rio.write_crs(crs)
    else:
        warnings.warn(
            "the input has no CRS: the output is a pixel grid without CRS "
            f"(transform {tuple(transform)[:6]})",
            GeoreferenceWarning,
            stacklevel=3,
        )
    result = result.rio.write_transform(transform)
    return _stamp(result, model, out_nodata)


def _stamp(result: xr.DataArray, model: SRModel, out_nodata: float | None) -> xr.DataArray:
    if out_nodata is not None:
        result = result.rio.write_nodata(out_nodata, encoded=False)
    result.attrs["xsr4rs_model"] = model.name
    result.attrs["xsr4rs_scale"] = model.scale
    return result


def _with_gcps(
    result: xr.DataArray,
    gcps: list,
    crs: Any,
    scale: int,
    model: SRModel,
    out_nodata: float | None,
) -> xr.DataArray:
    """The output of a raster located by ground control points: the same points, their
    pixel/line positions (GDAL's corner-based convention) multiplied by the scale."""
    from rasterio.control import GroundControlPoint

    scaled = [
        GroundControlPoint(
            row=g.row * scale, col=g.col * scale, x=g.x, y=g.y, z=g.z, id=g.id, info=g.info
        )
        for g in gcps
    ]
    result = result.rio.write_gcps(scaled, crs)
    return _stamp(result, model, out_nodata)


def _upscale_dataset(ds: xr.Dataset, model: ModelLike, **kwargs: Any) -> xr.Dataset:
    out = {}
    for name, var in ds.data_vars.items():
        try:
            y_dim, x_dim = var.rio.y_dim, var.rio.x_dim
        except Exception:
            continue
        if y_dim in var.dims and x_dim in var.dims:
            out[name] = upscale(var, model, **kwargs)
    if not out:
        raise InputError(
            f"the Dataset has no raster variable with y/x dims among {list(ds.data_vars)}"
        )
    return xr.Dataset(out, attrs=ds.attrs)
