"""Evaluate a model against high-resolution references, next to baselines.

Two modes. **Wald**: the low-resolution input is made from the reference by the project's
one degradation (`xsr4rs.degrade.degrade`), so any image can be a reference. **Paired**:
the LR input is a separate raster on a grid exactly ``scale`` times coarser.

Each method runs through `xsr4rs.upscale`, exactly as in production, and its output is
computed in memory: evaluation images are small (hundreds to a few thousand pixels).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine

from xsr4rs.degrade import degrade
from xsr4rs.exceptions import GeoreferenceWarning, InputError, ParameterError
from xsr4rs.model.handle import SRModel, load_model
from xsr4rs.scores import SSIM_RADIUS, EvaluationReport, interior, score_method
from xsr4rs.upscale import ModelLike, check_bands, check_input, upscale

RasterLike = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | xr.DataArray
#: Side (HR pixels) of the default crop of the comparison PNG.
PNG_CROP = 256
_BUILTIN_KINDS = ("nearest", "bicubic")


@dataclass(frozen=True)
class _Raster:
    """(band, y, x) values and their grid: lazy when opened, float64 with NaN once loaded."""

    values: Any
    transform: Affine
    crs: Any
    names: tuple[str, ...]

    @property
    def n_bands(self) -> int:
        return int(self.values.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.values.shape[1]), int(self.values.shape[2])


def evaluate(
    model: ModelLike,
    hr: RasterLike,
    *,
    lr: RasterLike | None = None,
    scale: int | None = None,
    baselines: Sequence[ModelLike] = _BUILTIN_KINDS,
    bands: Sequence[int | str] | None = None,
    nodata: float | None = None,
    border: int | None = None,
    data_range: float | None = None,
    png: str | os.PathLike[str] | None = None,
    crop: tuple[int, int, int] | None = None,
    project: bool | None = None,
) -> EvaluationReport:
    """Score ``model`` and ``baselines`` against the high-resolution reference ``hr``.

    Parameters
    ----------
    model
        A SavedModel directory, a built-in model name or an `SRModel`.
    hr
        The reference: a raster path, several single-band files stacked in order,
        ``"sample:s2"``, or a (band, y, x) / (y, x) DataArray.
    lr
        The low-resolution input, on a grid exactly ``scale`` times coarser than ``hr``
        with the same origin (paired mode). ``None``: Wald mode, the input is
        ``degrade(hr, scale)`` after cropping ``hr`` (from its top-left corner) to a
        multiple of ``scale``.
    scale
        Expected upscaling factor; must equal the model's (default: the model's).
    baselines
        Models run on the same input for comparison. ``"nearest"`` and ``"bicubic"``
        mean the built-in of the model's scale; a baseline that is the model is skipped.
    bands
        Bands of ``hr`` (and ``lr``) to use, in order: 1-based indices or descriptions.
    nodata
        No-data value of ``hr`` and ``lr``, overriding theirs (NaN is always no-data).
    border
        HR pixels left out of the scores at the image edges and around no-data;
        default ``scale`` times the largest halo of the methods, at least ``2 * scale``
        (the reach of the degradation's blur) and at least 5 (the SSIM window's reach).
    data_range
        Peak value of PSNR and SSIM (e.g. 10000 for reflectance x 10000); default: the
        HR's maximum minus minimum over the scored pixels, all bands together.
    png
        Write a comparison PNG here: crops of the LR (nearest-upsampled), the bicubic
        baseline (when among ``baselines``), the model and the HR, side by side, bands
        1-3 as RGB (one band: grey) with the HR crop's 2-98 % stretch for all.
    crop
        (row, col, size) of the PNG crop in HR pixels; default: a centred square of
        256 pixels, or of the image's shorter side when smaller.
    project
        Apply the consistency projection to the model's output (not the baselines'), as
        ``upscale(project=...)``; default: the model's choice.

    Returns
    -------
    An `EvaluationReport`: ``.rows`` (model, then baselines), ``.table()``,
    ``.to_dict()``, ``.write_json(path)``.
    """
    # every argument is checked before pixels are read or models run
    if png is not None:
        _check_png(png)
    if data_range is not None and not (np.isfinite(data_range) and data_range > 0):
        raise ParameterError(f"data_range must be a positive number, got {data_range!r}")
    ref = _open(hr, bands, nodata, "HR")
    handle = load_model(model, bands=ref.n_bands)
    _check_model(handle, ref.n_bands, scale)
    scale = handle.scale
    others = _baselines(baselines, handle, ref.n_bands)
    methods = [("model", handle)] + [("baseline", b) for b in others]
    projected = handle.metadata.project if project is None else project
    extra = 0
    if projected:  # its own reach from the image's mirror-padded edge
        from xsr4rs.consistency import projection_halo

        extra = projection_halo(scale)
    border = _border(border, scale, [m for _, m in methods], extra)
    if lr is None:
        mode = "wald"
        ref = _crop_to_multiple(ref, scale)
    else:
        mode = "paired"
        low = _open(lr, bands, nodata, "LR")
        _check_pair(ref, low, scale)
    window = _crop(crop, ref.shape) if png is not None else None

    ref = _load(ref, nodata)
    # Wald: NaN spreads through the blur, so every LR pixel that sees HR no-data is no-data
    low = _load(low, nodata) if lr is not None else _degraded(ref, scale)
    lr_da = _as_dataarray(low)
    check_input(lr_da, handle)
    outputs = [_run(lr_da, m, project if kind == "model" else False) for kind, m in methods]

    valid = np.isfinite(ref.values).all(axis=0)
    for out in outputs:
        valid &= np.isfinite(out).all(axis=0)
    mask = interior(valid, border)
    if not mask.any():
        h, w = ref.shape
        raise InputError(
            f"no HR pixel left to score: the {w}x{h} image with a border of {border} px "
            f"around its edges and no-data has none: pass a smaller border or a larger image"
        )
    from_hr = data_range is None
    data_range = float(data_range) if data_range is not None else _hr_range(ref.values, mask)
    hr_degraded = degrade(ref.values, scale)
    rows = tuple(
        score_method(
            m.name,
            role,
            ref.values,
            out,
            low.values,
            scale=scale,
            data_range=data_range,
            mask=mask,
            hr_degraded=hr_degraded,
        )
        for (role, m), out in zip(methods, outputs, strict=True)
    )
    if window is not None:
        bicubic = [o for (role, m), o in zip(methods, outputs, strict=True) if _is_bicubic(m, role)]
        lr_shown = np.repeat(np.repeat(low.values, scale, axis=1), scale, axis=2)
        _write_panels(png, [lr_shown, *bicubic[:1], outputs[0], ref.values], window)
    return EvaluationReport(
        model=handle.name,
        mode=mode,
        scale=scale,
        data_range=data_range,
        data_range_from_hr=from_hr,
        border=border,
        bands=ref.names,
        hr_shape=ref.shape,
        scored_pixels=int(mask.sum()),
        rows=rows,
    )


# -- inputs ------------------------------------------------------------------------------------


def _open(
    src: RasterLike, bands: Sequence[int | str] | None, nodata: float | None, what: str
) -> _Raster:
    """``src`` as a lazy (band, y, x) DataArray with its grid and band names."""
    from xsr4rs.io import open_raster, select_bands
    from xsr4rs.layout import layout

    if isinstance(src, xr.DataArray):
        lay = layout(src)
        if lay.lead:
            raise InputError(
                f"{what} has the dimensions {lay.lead} besides band, y and x: evaluate one "
                "image at a time (select one value of each)"
            )
        y_dim, x_dim, band_dim = lay.y, lay.x, lay.band
        if band_dim is None:
            da = src.expand_dims("band")
        else:
            da = src if band_dim == "band" else src.rename({band_dim: "band"})
        da = da.transpose("band", y_dim, x_dim)
        if bands is not None:
            da = select_bands(da, bands)
    elif isinstance(src, str | os.PathLike):
        da = open_raster(src, bands=bands, nodata=nodata)
    elif isinstance(src, Sequence) and src:
        da = open_raster(list(src), bands=bands, nodata=nodata)
    else:
        raise InputError(f"the {what} must be a raster path, a list of paths or a DataArray")
    dtype = np.dtype(da.dtype)
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise InputError(f"the {what} holds {dtype} values: give integers or floats")
    names = da.attrs.get("long_name")
    names = (names,) if isinstance(names, str) else tuple(names or ())
    if len(names) != da.sizes["band"]:
        names = tuple(f"band {i + 1}" for i in range(da.sizes["band"]))
    try:
        transform = da.rio.transform()
    except Exception:  # coordinates rioxarray cannot read as a grid
        transform = Affine.identity()
    return _Raster(da, transform, da.rio.crs, tuple(str(n) for n in names))


def _load(raster: _Raster, nodata: float | None) -> _Raster:
    """Read the values as float64, every pixel that is no-data in any band NaN in all."""
    from xsr4rs.nodata import invalid_mask
    from xsr4rs.upscale import _input_nodata

    da = raster.values
    raw = np.asarray(da.values)
    values = raw.astype(np.float64)
    values[:, invalid_mask(raw, _input_nodata(da, nodata, raw.dtype))] = np.nan
    return _Raster(values, raster.transform, raster.crs, raster.names)


def _check_model(handle: SRModel, n_bands: int, scale: int | None) -> None:
    check_bands(n_bands, handle)
    if scale is not None and scale != handle.scale:
        raise ParameterError(
            f"scale {scale} was asked but model {handle.name!r} upscales by {handle.scale}: "
            f"pass scale={handle.scale} (CLI: --scale {handle.scale}) or a x{scale} model"
        )
    n_out = handle.metadata.n_output_bands
    if n_out is not None and n_out != n_bands:
        raise InputError(
            f"model {handle.name!r} returns {n_out} bands but the HR has {n_bands}: give an HR "
            f"with the model's output bands ({', '.join(handle.metadata.output_bands or ())})"
        )


def _crop_to_multiple(ref: _Raster, scale: int) -> _Raster:
    """The HR cropped from its top-left corner to a multiple of ``scale`` pixels."""
    h, w = ref.shape
    hc, wc = h // scale * scale, w // scale * scale
    if hc == 0 or wc == 0:
        raise InputError(f"the HR is {w}x{h} pixels: too small to degrade by {scale}")
    return _Raster(ref.values[:, :hc, :wc], ref.transform, ref.crs, ref.names)


def _degraded(ref: _Raster, scale: int) -> _Raster:
    """The Wald LR twin of a loaded HR, on the grid ``scale`` times coarser."""
    lr = degrade(ref.values, scale)
    return _Raster(lr, ref.transform * Affine.scale(scale), ref.crs, ref.names)


def _check_pair(ref: _Raster, low: _Raster, scale: int) -> None:
    nh, nl = ref.n_bands, low.n_bands
    if nh != nl:
        raise InputError(f"the HR has {nh} bands and the LR {nl}: select the same bands in both")
    (h, w), (lh, lw) = ref.shape, low.shape
    if (h, w) != (lh * scale, lw * scale):
        raise InputError(
            f"the HR is {w}x{h} pixels but the LR is {lw}x{lh}, and {lw}x{lh} x {scale} = "
            f"{lw * scale}x{lh * scale}: the HR must cover the LR exactly, {scale} times finer "
            "(crop both to the same extent; the Wald mode crops the HR itself)"
        )
    if ref.crs is None or low.crs is None:
        return
    if ref.crs != low.crs:
        raise InputError(f"the HR is in {ref.crs} and the LR in {low.crs}: reproject one")
    expected = low.transform * Affine.scale(1 / scale)
    tol = 1e-3 * abs(ref.transform.a or 1.0)
    if not np.allclose(tuple(ref.transform)[:6], tuple(expected)[:6], rtol=0, atol=tol):
        raise InputError(
            f"the HR grid {tuple(ref.transform)[:6]} is not the LR grid "
            f"{tuple(low.transform)[:6]} made {scale} times finer, which is "
            f"{tuple(expected)[:6]}: the rasters must share their top-left corner"
        )


def _baselines(baselines: Sequence[ModelLike], model: SRModel, n_bands: int) -> list[SRModel]:
    from xsr4rs.model.builtin import is_builtin

    if isinstance(baselines, str | os.PathLike | SRModel):
        baselines = [baselines]
    out: list[SRModel] = []
    for b in baselines:
        if isinstance(b, str) and b in _BUILTIN_KINDS:
            b = f"{b}-x{model.scale}"
            if not is_builtin(b):
                raise ParameterError(
                    f"there is no built-in {b} baseline: give baselines of scale "
                    f"{model.scale} (CLI: --baselines MODEL...), or none"
                )
        handle = load_model(b, bands=n_bands)
        check_bands(n_bands, handle)
        if handle.scale != model.scale:
            raise ParameterError(
                f"baseline {handle.name!r} upscales by {handle.scale}, the model by "
                f"{model.scale}: give baselines of scale {model.scale}"
            )
        if handle.path != model.path and all(handle.path != o.path for o in out):
            out.append(handle)
    return out


def _as_dataarray(raster: _Raster) -> xr.DataArray:
    """A float32 (band, y, x) DataArray on the raster's grid, no-data NaN."""
    from xsr4rs.geo import pixel_centres

    n, h, w = raster.values.shape
    x, y = pixel_centres(raster.transform, h, w)
    da = xr.DataArray(
        raster.values.astype(np.float32),
        dims=("band", "y", "x"),
        coords={"band": np.arange(1, n + 1), "y": y, "x": x},
        attrs={"long_name": raster.names},
    )
    if raster.crs is not None:
        da = da.rio.write_crs(raster.crs)
    return da.rio.write_transform(raster.transform).rio.write_nodata(np.nan, encoded=False)


def _run(lr: xr.DataArray, model: SRModel, project: bool | None) -> np.ndarray:
    """``model`` on ``lr`` through `xsr4rs.upscale`, computed: float64 (band, y, x)."""
    with warnings.catch_warnings():
        # a reference without CRS is usual here (Wald pairs, test scenes): no note about it
        warnings.simplefilter("ignore", GeoreferenceWarning)
        out = upscale(lr, model, dtype="float32", project=project)
    return np.asarray(out.values, dtype=np.float64)


def _border(border: int | None, scale: int, models: Sequence[SRModel], extra: int = 0) -> int:
    from xsr4rs.tiling import check_positive_int

    if border is not None:
        return check_positive_int("border", border, minimum=0)
    return max(scale * (max(m.halo for m in models) + extra), 2 * scale, SSIM_RADIUS)


def _hr_range(hr: np.ndarray, mask: np.ndarray) -> float:
    """Maximum minus minimum of the HR over the scored pixels, all bands together."""
    scored = hr[:, mask]
    span = float(scored.max() - scored.min())
    if span <= 0:
        raise InputError(
            f"the HR is constant ({scored.min():g}) over the scored pixels: PSNR needs a "
            "data range, pass data_range= (CLI: --data-range)"
        )
    return span


# -- comparison picture ------------------------------------------------------------------------


def _is_bicubic(model: SRModel, role: str) -> bool:
    """True for the built-in bicubic run as a baseline (the second panel of the PNG)."""
    builtin = bool(model.metadata.provenance.get("builtin"))
    return role == "baseline" and builtin and model.name.startswith("bicubic")


def _check_png(png: str | os.PathLike[str]) -> None:
    from xsr4rs.io.atomic import check_folder

    check_folder(png)


def _crop(crop: tuple[int, int, int] | None, shape: tuple[int, int]) -> tuple[int, int, int]:
    h, w = shape
    if crop is None:
        size = min(PNG_CROP, h, w)
        return (h - size) // 2, (w - size) // 2, size
    try:
        row, col, size = (int(v) for v in crop)
    except (TypeError, ValueError):
        raise ParameterError(f"crop must be (row, col, size), got {crop!r}") from None
    if size < 1 or row < 0 or col < 0 or row + size > h or col + size > w:
        raise ParameterError(
            f"crop (row {row}, col {col}, size {size}) does not fit in the {w}x{h} HR image: "
            f"row + size <= {h} and col + size <= {w}"
        )
    return row, col, size


def _write_panels(
    png: str | os.PathLike[str], panels: Sequence[np.ndarray], crop: tuple[int, int, int]
) -> None:
    """Crops of (band, y, x) images side by side, stretched like the last one (the HR)."""
    from xsr4rs.quicklook import stretch, stretch_limits, write_png

    row, col, size = crop
    shown = [0, 1, 2] if panels[-1].shape[0] >= 3 else [0]
    cuts = [p[shown, row : row + size, col : col + size] for p in panels]
    limits = stretch_limits(cuts[-1])
    picture = np.concatenate([stretch(c, limits=limits) for c in cuts], axis=2)
    write_png(picture, png)  # atomic: OutputError with the cause on any failure
