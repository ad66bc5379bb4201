"""``upscale``: validate a raster against a model, map the model lazily, set georeferencing.

The one path is ``(..., band, y, x)``: leading dimensions (dates of a stackstac cube) are
mapped over by the engine, band names are matched to the model's (`xsr4rs.bands`), values
are taken into the model's units and back (`xsr4rs.units`), and the output's coordinates
and attributes are built by `xsr4rs.output`. Datasets with one variable per band
(odc-stac) go through `xsr4rs.dataset`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor used below)
import xarray as xr

from xsr4rs import bands as band_names
from xsr4rs import output as output_mod
from xsr4rs import units
from xsr4rs._tf import avx512_convolutions, cpu_flags, onednn_enabled, onednn_isa_cap
from xsr4rs.engine import BlockSpec, check_range, map_model, model_values
from xsr4rs.exceptions import (
    BandWarning,
    InputError,
    ParameterError,
    SlowPathWarning,
    TileWarning,
)
from xsr4rs.io.read import sampling_env
from xsr4rs.layout import Layout, band_labels, layout, pixel_grid
from xsr4rs.model.handle import SRModel, load_model
from xsr4rs.nodata import check_nodata, is_nan
from xsr4rs.tiling import (
    check_positive_int,
    conv_tile_cap,
    max_tile,
    merge_small_chunks,
    regular_chunks,
)

log = logging.getLogger("xsr4rs")

#: Default chunk (input pixels per side) when the input is not dask-backed: one default
#: tile, so each chunk is one model call. Measured on the x4 sample scene with bicubic
#: (benchmarks/chunk_size.py): 512 was the fastest at a 1.5 GiB peak; 1024 was 8 % slower
#: at 2.4 GiB and 2048 34 % slower at 4.1 GiB.
DEFAULT_CHUNK = 512
#: Smallest tile worth capping to for oneDNN's sake on CPUs without AVX-512: below it the
#: halo and per-call costs outweigh the slow path's, and TF_ENABLE_ONEDNN_OPTS=0 is advised.
MIN_USEFUL_TILE = 64
#: Default tile (input pixels per side of one model call, before the halo). Measured with a
#: network of SR4RS's generator size (benchmarks/tile_size.py): 512 reaches 96 % of the
#: best throughput at 5.2 GiB peak memory, 768 gains 4 % for 9.6 GiB, 256 and below lose
#: half to the halo and per-call overhead. Its largest tensor (3.3e8 elements) stays far
#: below TensorFlow's 2**31-element convolution slow-down.
DEFAULT_TILE = 512

ModelLike = str | os.PathLike[str] | SRModel
_BAND = "__band__"


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
    band_dim: str | None = None,
    scale_factor: float | Sequence[float] | None = None,
    add_offset: float | Sequence[float] | None = None,
    check_range: bool = True,
    project: bool | None = None,
    uncertainty: bool = False,
) -> Any:
    """Super-resolve a georeferenced raster with a model, lazily and seam-free.

    Parameters
    ----------
    da
        A DataArray with y/x dimensions (rioxarray finds them), numpy- or dask-backed, in
        any dimension order: ``(y, x)``, ``(band, y, x)``, or a cube such as stackstac's
        ``(time, band, y, x)`` whose other dimensions are mapped over. A Dataset whose
        variables are the model's bands (odc-stac's ``red``, ``green``... or ``B04``...)
        is upscaled as one multi-band image; otherwise each raster variable alone.
    model
        A SavedModel directory, a built-in model name (``"bicubic"``, ``"nearest-x2"``...)
        or an `SRModel` from `xsr4rs.load_model`.
    halo
        Input pixels of overlap per side; default: the model's own (metadata or measured).
    chunks
        Input pixels per chunk side (int or ``(y, x)``); default: the dask chunks of ``da``,
        or 512 for numpy data. Chunks smaller than the halo are merged. Leading dimensions
        keep their chunks (one image per chunk for numpy data).
    tile
        Input pixels per side of one model call (chunks are split into tiles); default:
        the model's ``tile`` or 512.
    nodata
        No-data value of the input; default: the raster's own (``da.rio.nodata``), NaN for
        floats, else the model's ``nodata`` for integer input in its units. No-data pixels
        (in any band) are replaced by the model's fill values before inference, and their
        output pixels are set to no-data.
    dtype
        Output type; default: the input's (integers are rounded and clipped).
    fill
        Value(s) given to the model in place of no-data, in the model's units; default:
        the model's ``fill_values``, else 0.
    resources
        Dask worker resources the model tasks need, e.g. ``{"GPU": 1}``: on a distributed
        cluster they then run only on workers started with ``--resources GPU=1``, while
        reading and writing run anywhere. Resources set with ``dask.annotate`` around this
        call are honoured too. Low-level task fusion, which drops them, is turned off in
        dask's configuration then, so ``.compute()``, ``.persist()`` and writers keep them.
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
    band_dim
        The band dimension, when its name does not say it (default: ``band``, or the only
        dimension besides y/x and dates).
    scale_factor, add_offset
        How the input's values relate to physical ones (``physical = value * scale_factor
        + add_offset``; one value or one per band), overriding what the data says (CF
        attributes or encoding, STAC ``raster:bands``). E.g. Sentinel-2 L2A of processing
        baseline 04.00 and later: ``scale_factor=1e-4, add_offset=-0.1``. When the model
        states its units too, values are converted into them and the output back.
    check_range
        Check, once, a sample of the input against the model's ``value_range`` before any
        model task runs (`InputError` for data far outside it, such as 0..1 reflectance
        for a model of reflectance x 10000). This happens when the result is computed.
    project
        Correct the output so that degrading it with `xsr4rs.degrade.degrade` gives the
        input back (`xsr4rs.consistency`): seam-free, with a halo of its own added to the
        model's. Default: the model's ``project`` metadata, else off.
    uncertainty
        Also return the per-pixel spread of the model's outputs over the eight flips and
        quarter turns of its input (test-time self-ensembling; eight times the model's
        cost): ``(output, spread)``, both seam-free and on the same grid; the output is
        the plain one.

    Returns
    -------
    A lazy DataArray with ``scale`` times more pixels in y and x, dims in the input's
    order and band names kept, the input's CRS, units, encoding and attributes (those of
    the old grid dropped), and the transform ``transform * Affine.scale(1/scale)``; for a
    Dataset, a Dataset with the same variable names. With ``uncertainty``, a tuple
    ``(output, spread)``; the spread is float32, in the output's units.
    """
    kwargs = dict(
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
        scale_factor=scale_factor,
        add_offset=add_offset,
        check_range=check_range,
        project=project,
        uncertainty=uncertainty,
    )
    if isinstance(da, xr.Dataset):
        from xsr4rs.dataset import upscale_dataset

        return upscale_dataset(da, model, band_dim=band_dim, **kwargs)
    if not isinstance(da, xr.DataArray):
        raise InputError(f"upscale needs an xarray DataArray or Dataset, got {type(da).__name__}")
    return _upscale_array(da, model, band_dim=band_dim, **kwargs)


@dataclass
class _Prepared:
    """An input laid out for the engine: ``work`` is (*lead, band, y, x), bands in the
    model's order; ``order`` the input bands used, in that order (``None``: all, as they
    are); ``labels`` their names or coordinate values."""

    lay: Layout
    band: str
    work: xr.DataArray
    handle: SRModel
    order: list[int] | None
    labels: list[Any] | None
    names: list[Any] | None
    encoding: units.Encoding | None


def _prepare(
    da: xr.DataArray,
    model: ModelLike,
    *,
    halo: int | None,
    band_dim: str | None,
    trust_model: bool,
    output: str | None,
    scale_factor: Any,
    add_offset: Any,
) -> _Prepared:
    lay = layout(da, band_dim)
    band = lay.band or _BAND
    work = da if lay.band else da.expand_dims(_BAND)
    work = work.transpose(*lay.lead, band, lay.y, lay.x)
    n = work.sizes[band]
    handle = load_model(model, halo=halo, bands=n, trust=trust_model, output=output)
    names = band_labels(da, lay.band)
    order = _band_order(handle, names, n, band)
    if order is not None:
        unused = [str(names[i]) for i in range(n) if i not in order]
        if unused:
            warnings.warn(
                f"bands not used by model {handle.name!r} are left out: {', '.join(unused)} "
                f"(it takes {', '.join(handle.metadata.input_bands or ())}; select the "
                "bands yourself to silence this note)",
                BandWarning,
                stacklevel=4,
            )
        work = work.isel({band: order})
    check_bands(work.sizes[band], handle, band)
    labels = list(work[band].values) if lay.band and band in work.coords else None
    used = [names[i] for i in (order or range(n))] if names else None
    encoding = _input_encoding(da, work, band, order, n, scale_factor, add_offset)
    return _Prepared(lay, band, work, handle, order, labels, used, encoding)


def _band_order(handle: SRModel, names: list[Any], n: int, band: str) -> list[int] | None:
    """Input bands to give the model, in its order, when both sides name their bands."""
    wanted = handle.metadata.input_bands
    if not wanted or not names:
        return None
    try:
        order = band_names.match(wanted, names)
    except KeyError as err:
        raise InputError(
            f"model {handle.name!r} needs the bands {', '.join(wanted)}: {err.args[0]}"
        ) from None
    return None if order == list(range(n)) else order


def _input_encoding(
    da: xr.DataArray,
    work: xr.DataArray,
    band: str,
    order: list[int] | None,
    n_in: int,
    scale_factor: Any,
    add_offset: Any,
) -> units.Encoding | None:
    n = work.sizes[band]

    def ordered(mapping: dict[str, Any]) -> dict[str, Any]:  # per-band values follow `order`
        out = dict(mapping)
        for key in ("scale_factor", "add_offset"):
            value = np.atleast_1d(out.get(key, 0))
            if order is not None and value.size == n_in > 1:
                out[key] = value[order]
        return out

    pairs = (("scale_factor", scale_factor), ("add_offset", add_offset))
    given = ordered({k: v for k, v in pairs if v is not None})  # per band: the input's order
    enc = units.explicit(given.get("scale_factor"), given.get("add_offset"), n)
    if enc is None:
        enc = units.from_cf(ordered(_cf_attrs(da.attrs)), n, "CF attributes")
    if enc is None:
        decoded = da.encoding if "dtype" in da.encoding else {}
        enc = units.from_cf(ordered(decoded), n, "CF encoding (decoded values)")
        if enc is not None:  # the values were decoded: they are physical
            enc = units.Encoding((1.0,) * n, (0.0,) * n, enc.source)
    if enc is None and "raster:bands" in work.coords:
        rb = work.coords["raster:bands"]
        values = [rb.item()] * n if rb.ndim == 0 else list(rb.values)
        enc = units.from_stac(values, np.issubdtype(work.dtype, np.integer))
    return enc


def _cf_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """``attrs`` with per-band ``scales``/``offsets`` (rioxarray's attributes for a file
    whose bands differ) as ``scale_factor``/``add_offset``."""
    out = dict(attrs)
    for per_band, cf in (("scales", "scale_factor"), ("offsets", "add_offset")):
        if cf not in out and per_band in out:
            out[cf] = tuple(out[per_band])
    return out


def _upscale_array(
    da: xr.DataArray,
    model: ModelLike,
    *,
    halo: int | None,
    chunks: Any,
    tile: int | None,
    nodata: float | None,
    dtype: Any,
    fill: Any,
    resources: dict[str, float] | None,
    nonfinite: str,
    trust_model: bool,
    output: str | None,
    band_dim: str | None,
    scale_factor: Any,
    add_offset: Any,
    check_range: bool,
    project: bool | None,
    uncertainty: bool,
) -> Any:
    p = _prepare(
        da,
        model,
        halo=halo,
        band_dim=band_dim,
        trust_model=trust_model,
        output=output,
        scale_factor=scale_factor,
        add_offset=add_offset,
    )
    work, band, lay, handle = p.work, p.band, p.lay, p.handle
    meta = handle.metadata
    n_bands = work.sizes[band]
    scale, h = handle.scale, handle.halo
    project = meta.project if project is None else bool(project)
    post_halo = 0
    if project:
        from xsr4rs.consistency import projection_halo

        if (meta.n_output_bands or n_bands) != n_bands:
            raise ParameterError(
                f"project=True compares each output band with its input band, but model "
                f"{handle.name!r} returns {meta.n_output_bands} bands for {n_bands}"
            )
        post_halo = projection_halo(scale)
        h += post_halo

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
    n_out = meta.n_output_bands or n_bands
    conv = units.conversion(p.encoding, meta.physical, n_out)
    if in_nodata is None and meta.nodata is not None and conv is None:
        in_nodata = meta.nodata  # the model's domain says what no-data is (S2: 0)
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

    ychunks, xchunks = _chunk_plan(work, band, lay, chunks, h)
    tile = choose_tile(tile, meta, h)
    if work.chunks is None:  # numpy or lazily indexed file data: chunk without loading it
        work = work.chunk({**{d: 1 for d in lay.lead}, band: -1, lay.y: ychunks, lay.x: xchunks})
    spec = BlockSpec(
        scale=scale,
        halo=h,
        tile=tile,
        nodata=in_nodata,
        fill=tuple(float(v) for v in fill_values),
        out_bands=n_out,
        out_dtype=out_dtype.str,
        out_nodata=out_nodata,
        nonfinite=nonfinite,
        to_model=(conv.a, conv.b) if conv else None,
        from_model=(conv.c, conv.d) if conv else None,
        value_range=meta.value_range if check_range else None,
        what=f"model {handle.name!r}" + (f" ({meta.units})" if meta.units else ""),
        project=project,
        bound=meta.bound if project else None,
        post_halo=post_halo,
        ensemble=uncertainty,
    )
    annotations = dict(dask.get_annotations())
    if resources:
        annotations["resources"] = dict(resources)
    if annotations:
        _keep_annotations()
    out = map_model(work.data, handle, spec, (ychunks, xchunks), annotations or None)
    same_bands = meta.output_bands is None and n_out == n_bands

    def wrap(arr: Any, nodata: float | None, encoding: Any, spread: bool = False) -> xr.DataArray:
        result = output_mod.build(
            da,
            work,
            arr,
            lay,
            band,
            transform=pixel_grid(da),
            scale=scale,
            model_name=handle.name,
            band_labels=p.labels if same_bands else None,
            output_band_names=None if same_bands else meta.output_bands,
            out_nodata=nodata,
            encoding=encoding,
        )
        back = None  # model order -> the input's band order
        if same_bands and p.order is not None:
            if sorted(p.order) == list(range(da.sizes[band])):
                back = np.argsort(p.order)
                result = result.isel({band: back})
            elif p.names is not None and "long_name" in result.attrs:
                result.attrs["long_name"] = tuple(str(v) for v in p.names)
        declared = _declared_units(p.encoding, n_out, back, offset=not spread)
        if declared:
            for key in ("scale_factor", "add_offset", "scales", "offsets"):
                result.attrs.pop(key, None)
            result.attrs.update(declared)
        if lay.band is None:
            result = result.squeeze(_BAND, drop=True)
        return result.transpose(*da.dims)

    encoding = units.cf_encoding_for_output(da.encoding, out_dtype)
    if not uncertainty:
        return wrap(out, out_nodata, encoding)
    from xsr4rs.engine import finish_ensemble

    main = out[..., :n_out, :, :].map_blocks(
        finish_ensemble, spec=spec, dtype=out_dtype, meta=np.empty((0,) * out.ndim, out_dtype)
    )
    spread = wrap(out[..., n_out:, :, :], float("nan"), None, spread=True)
    spread.attrs["long_name_of_values"] = "spread over 8 flips and turns (standard deviation)"
    return wrap(main, out_nodata, encoding), spread.rename(
        f"{da.name}_spread" if da.name else "spread"
    )


def _declared_units(
    enc: units.Encoding | None, n_out: int, back: Any, *, offset: bool = True
) -> dict[str, Any]:
    """Attributes that declare the scaling given as ``scale_factor=``/``add_offset=`` on
    the output, which holds values in those units (rioxarray writes them as the
    GeoTIFF's scales and offsets): ``{}`` when none was given. ``offset=False`` for a
    spread, which scales but has no offset."""
    if enc is None or enc.source != "given" or enc.identity:
        return {}
    scale, add = np.asarray(enc.scale), np.asarray(enc.offset)
    if not offset:
        add = np.zeros_like(add)
    if len(scale) != n_out:  # other bands: declared only when one scaling holds for all
        if np.ptp(scale) or np.ptp(add):
            return {}
        scale, add = scale[:1], add[:1]
    elif back is not None:
        scale, add = scale[back], add[back]
    if not (np.ptp(scale) or np.ptp(add)):
        return {"scale_factor": float(scale[0]), "add_offset": float(add[0])}
    # per band, as rioxarray reads a file whose bands differ
    return {"scales": tuple(float(v) for v in scale), "offsets": tuple(float(v) for v in add)}


def _keep_annotations() -> None:
    """Turn off dask's low-level task fusion, which drops task annotations (worker
    resources), for every later compute of this process (`.compute()`, `.persist()`,
    `client.compute`); it only merges chains of small tasks."""
    if dask.config.get("optimization.fuse.active", None) is not False:
        dask.config.set({"optimization.fuse.active": False})
        log.info("dask low-level task fusion turned off so that task resources hold")


def check_bands(n_bands: int, model: SRModel, band_dim: str = "band") -> None:
    """Raise `InputError` when the model's metadata fixes another band count."""
    expected = model.metadata.n_input_bands
    if expected is not None and expected != n_bands:
        names = ", ".join(model.metadata.input_bands or ())
        raise InputError(
            f"model {model.name!r} expects {expected} bands ({names}) but the input has "
            f"{n_bands}: select the bands in this order (CLI: --bands or one file per band; "
            f"Python: da.isel({band_dim}=[...])), or name them (band coordinate or "
            "long_name: B04, red...)"
        )


def check_input(
    da: xr.DataArray,
    model: ModelLike,
    *,
    nodata: float | None = None,
    sample: int = 512,
    trust_model: bool = False,
    band_dim: str | None = None,
    scale_factor: Any = None,
    add_offset: Any = None,
    output: str | None = None,
) -> None:
    """Check band names or count and value range of ``da`` against ``model`` now.

    Reads a strided sample of about ``sample x sample`` pixels of the first image (this
    computes), converts it into the model's units as `upscale` would, and raises
    `InputError` when the values are far outside the range the model was trained on, for
    example reflectance in 0..1 given to a model of reflectance x 10000. `upscale` runs
    the same check on a few whole blocks when its result is computed.
    """
    p = _prepare(
        da,
        model,
        halo=None,
        band_dim=band_dim,
        trust_model=trust_model,
        output=output,
        scale_factor=scale_factor,
        add_offset=add_offset,
    )
    meta = p.handle.metadata
    if meta.value_range is None:
        return
    first = p.work.isel({d: 0 for d in p.lay.lead})
    step_y = max(first.sizes[p.lay.y] // sample, 1)
    step_x = max(first.sizes[p.lay.x] // sample, 1)
    try:
        with sampling_env():
            values = np.asarray(
                first.isel({p.lay.y: slice(None, None, step_y), p.lay.x: slice(None, None, step_x)})
            )
    except Exception as err:  # a damaged file: say which and why, as a write would
        from xsr4rs.io.gdal import read_failure

        reading = read_failure(err)
        if reading is None:
            raise
        raise InputError(reading) from None
    conv = units.conversion(p.encoding, meta.physical, meta.n_output_bands or values.shape[0])
    spec = BlockSpec(
        scale=1,
        halo=0,
        tile=1,
        nodata=_input_nodata(da, nodata, np.dtype(da.dtype)),
        fill=(),
        out_bands=0,
        out_dtype="f4",
        out_nodata=None,
        to_model=(conv.a, conv.b) if conv else None,
    )
    what = f"model {p.handle.name!r}" + (f" ({meta.units})" if meta.units else "")
    check_range(model_values(values, spec), meta.value_range, what)


# -- helpers -------------------------------------------------------------------------------


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
    bad = ParameterError(f"fill must be one finite value or {n} (one per band), got {fill!r}")
    try:
        values = np.asarray(fill, dtype=np.float32)
    except (TypeError, ValueError):  # "dark", [1, "x"]
        raise bad from None
    if values.ndim == 0:
        values = np.broadcast_to(values, (n,))
    if values.shape != (n,) or not np.isfinite(values).all():
        raise bad
    return values.copy()


def choose_tile(tile: int | None, meta: Any, halo: int) -> int:
    """The tile side: asked for, or the model's, or the default; capped by tensor size,
    and on CPUs without AVX-512 by oneDNN's limits (what ``upscale`` and the CLI use)."""
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
                    stacklevel=5,
                )
            tile = cap
    conv = meta.conv_input_elements_per_pixel
    if conv is None and meta.tensor_elements_per_pixel:
        # exported before the field existed: the largest tensor bounds every input
        conv = {"kxk": meta.tensor_elements_per_pixel}
    if conv and onednn_enabled() and not avx512_convolutions(cpu_flags(), onednn_isa_cap()):
        cap = conv_tile_cap(halo, conv)
        if cap is not None and cap < MIN_USEFUL_TILE:
            warnings.warn(
                f"this model's convolutions (up to {conv.get('features', 0):.0f} input "
                "features) are too large for oneDNN's fast code on a CPU without AVX-512 at "
                "any useful tile size: it would run them with its reference code, about 100 "
                "times slower. Set TF_ENABLE_ONEDNN_OPTS=0 in the environment before starting "
                "Python to use TensorFlow's own convolutions",
                SlowPathWarning,
                stacklevel=5,
            )
        elif cap is not None and tile > cap:
            if asked:
                warnings.warn(
                    f"tile={tile} would give a convolution of this model an input that "
                    "oneDNN computes with its reference code on a CPU without AVX-512, "
                    f"about 100 times slower; using tile={cap}",
                    TileWarning,
                    stacklevel=5,
                )
            tile = cap
    return tile


def _chunk_plan(
    work: xr.DataArray, band: str, lay: Layout, chunks: Any, halo: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    height, width = work.sizes[lay.y], work.sizes[lay.x]
    if chunks is None and work.chunks is not None:
        sizes = work.chunksizes
        return (
            merge_small_chunks(sizes[lay.y], halo),
            merge_small_chunks(sizes[lay.x], halo),
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
