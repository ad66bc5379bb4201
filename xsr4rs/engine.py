"""The halo engine: map a model over the blocks of a (..., band, y, x) dask array.

Each chunk is extended by ``halo`` input pixels taken from its neighbours (dask
``overlap``) or, at the image border, by mirror padding (``numpy.pad(mode="symmetric")``,
which is dask's ``boundary="reflect"``). The model runs on tiles of the extended chunk and
``scale * halo`` output pixels are cropped from each side of every tile, so the result
equals the model applied once to the mirror-padded whole image whatever the chunking.
Leading dimensions (dates of a time cube) keep their chunks; the images of one block go
through the model together, as one batch per tile. No xarray here, and TensorFlow only
behind the model handle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dask.array as dsa
import numpy as np

from xsr4rs.consistency import project
from xsr4rs.exceptions import InputError, ModelError, NonFiniteOutputError, XSRError
from xsr4rs.model.runtime import bands_first, first_line, shape_related
from xsr4rs.nodata import invalid_mask, set_masked, to_output_dtype
from xsr4rs.progress import COUNTER
from xsr4rs.tiling import output_chunks, split_axis
from xsr4rs.units import apply

Model = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class BlockSpec:
    """What every block needs besides its data and the model (small, hashable, tokenizable).

    ``nodata`` is the input's no-data value (NaN is always no-data in floats), ``fill``
    the per-band values given to the model in place of no-data, ``out_nodata`` the value
    written where the input was no-data. ``nonfinite`` says what NaN or infinite model
    output at a valid pixel does: ``"error"`` (`NonFiniteOutputError`) or ``"nodata"``
    (the pixel becomes ``out_nodata``, which must then be set). ``to_model`` is the
    per-band ``(a, b)`` of ``model = a * input + b`` and ``from_model`` the per-output-band
    ``(c, d)`` of ``output = c * model + d`` (`xsr4rs.units`), or ``None``.
    ``value_range`` (model units): when set, a sample of the input's blocks is checked
    against it once, before any model task runs (`check_range`); ``what`` names the model
    and its units in that error. ``project`` applies the consistency projection
    (`xsr4rs.consistency`) to each block's output, which needs ``post_halo`` of the
    ``halo`` input pixels. ``ensemble`` adds, as ``out_bands`` more float bands, the
    spread of the model's outputs over the eight flips and turns of each tile (the block
    is then float with NaN where no-data; `finish_ensemble` casts its output part).
    """

    scale: int
    halo: int
    tile: int
    nodata: float | None
    fill: tuple[float, ...]
    out_bands: int
    out_dtype: str
    out_nodata: float | None
    nonfinite: str = "error"
    to_model: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    from_model: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    value_range: tuple[float, float] | None = None
    what: str = "the model"
    project: bool = False
    bound: tuple[float, float] | None = None
    post_halo: int = 0
    ensemble: bool = False


def run_block(
    block: np.ndarray,
    checked: np.ndarray | None = None,
    *,
    model: Model,
    spec: BlockSpec,
    pad: tuple[bool, bool],
    block_info: dict | None = None,
) -> np.ndarray:
    """Upscale one extended (..., band, y, x) block and return its cropped output block.

    ``block`` carries ``spec.halo`` pixels on each side, except along axes flagged in
    ``pad`` (an axis that is a single chunk), which are mirror-padded here.
    ``block_info`` (from dask) locates the block, to say where bad output is.
    ``checked`` is the token of the range check the block waited for.
    """
    scale, halo = spec.scale, spec.halo
    lead = block.shape[:-3]
    images = block.reshape((-1,) + block.shape[-3:])
    if any(pad):
        widths = ((0, 0), (0, 0), (halo if pad[0] else 0,) * 2, (halo if pad[1] else 0,) * 2)
        images = np.pad(images, widths, mode="symmetric")
    mask = invalid_mask(images, spec.nodata)
    values = images.astype(np.float32, copy=True)
    if spec.to_model is not None:
        apply(values, *spec.to_model)
    set_masked(values, mask, np.asarray(spec.fill, dtype=np.float32))
    n = images.shape[0]
    ring = spec.post_halo  # the projection's context, inside the halo
    mh = halo - ring  # the model's own halo
    core_h, core_w = images.shape[-2] - 2 * halo, images.shape[-1] - 2 * halo
    ext_h, ext_w = core_h + 2 * ring, core_w + 2 * ring
    channels = spec.out_bands * (2 if spec.ensemble else 1)
    shape = (n, channels, scale * ext_h, scale * ext_w)
    c = scale * mh
    # a tile carries the projection's ring too: a chunk of one tile stays one model call
    step = spec.tile + 2 * ring
    rows, cols = split_axis(ext_h, step), split_axis(ext_w, step)
    if len(rows) == 1 and len(cols) == 1:  # the usual chunk: the model's output is the block
        out = _writable(_call(model, values, spec, c))
    else:
        out = np.empty(shape, dtype=np.float32)
        for y0, y1 in rows:
            for x0, x1 in cols:
                x = values[:, :, y0 : y1 + 2 * mh, x0 : x1 + 2 * mh]
                out[:, :, scale * y0 : scale * y1, scale * x0 : scale * x1] = _call(
                    model, x, spec, c
                )
    if spec.project:
        lr = values[:, :, mh : mh + ext_h, mh : mh + ext_w]
        valid = ~mask[:, None, mh : mh + ext_h, mh : mh + ext_w]
        main = out[:, : spec.out_bands]
        project(main, lr, scale, valid, out=main)
        if spec.bound is not None:  # the model's own bound, which the projection can break
            bound_by_input(main, lr, scale, spec.bound)
    if ring:
        out = out[
            :, :, scale * ring : scale * (ring + core_h), scale * ring : scale * (ring + core_w)
        ]
    core_mask = mask[:, halo : halo + core_h, halo : halo + core_w]
    up_mask = np.repeat(np.repeat(core_mask, scale, axis=1), scale, axis=2)
    if spec.ensemble:
        out, spread = out[:, : spec.out_bands], out[:, spec.out_bands :]
    if spec.from_model is not None:
        apply(out, *spec.from_model)
    up_mask = _check_finite(out, up_mask, spec, block_info)
    if spec.ensemble:  # float, NaN where no-data: cast by `finish_ensemble`
        if spec.from_model is not None:
            spread *= np.abs(np.asarray(spec.from_model[0], np.float32))[:, None, None]
        packed = np.concatenate([out, spread], axis=1)
        set_masked(packed, up_mask, np.float32(np.nan))
        COUNTER.add(1, n * packed.shape[-2] * packed.shape[-1])
        return packed.reshape(lead + packed.shape[1:])
    result = to_output_dtype(
        out, np.dtype(spec.out_dtype), spec.out_nodata, up_mask, overwrite=True
    )
    COUNTER.add(1, n * result.shape[-2] * result.shape[-1])
    return result.reshape(lead + result.shape[1:])


def _writable(y: np.ndarray) -> np.ndarray:
    """``y`` itself when it is a writable float32 C-contiguous array (what `SRModel.core`
    returns), else such a copy: no block-sized copy in the usual case."""
    if y.dtype == np.float32 and y.flags.c_contiguous and y.flags.writeable:
        return y
    return np.array(y, dtype=np.float32, order="C")


def bound_by_input(out: np.ndarray, lr: np.ndarray, scale: int, bound: tuple[float, float]) -> None:
    """Clip (in place) each output pixel of (..., H, W) ``out`` to ``[low, high]`` times its
    input pixel of (..., H/s, W/s) ``lr``, where that input is positive; broadcast over
    each ``scale x scale`` block, without an upsampled copy of the input."""
    *lead, h, w = lr.shape
    blocks = out.view()
    blocks.shape = (*lead, h, scale, w, scale)  # splitting axes never copies
    ref = lr.reshape(*lead, h, 1, w, 1)
    low, high = bound
    np.clip(blocks, low * ref, high * ref, out=blocks, where=ref > 0)


def finish_ensemble(packed: np.ndarray, spec: BlockSpec) -> np.ndarray:
    """The output of an ensemble block (its first ``out_bands`` bands) in the output type."""
    out = packed[..., : spec.out_bands, :, :]
    mask = np.isnan(out).any(axis=-3)
    return to_output_dtype(
        np.nan_to_num(out), np.dtype(spec.out_dtype), spec.out_nodata, mask, overwrite=True
    )


#: The eight flips and quarter turns of a tile (the dihedral group): (transpose, flip y,
#: flip x). Self-ensembling runs the model on each and maps the outputs back.
DIHEDRAL = [(t, fy, fx) for t in (False, True) for fy in (False, True) for fx in (False, True)]


def _dihedral(x: np.ndarray, t: bool, fy: bool, fx: bool, inverse: bool = False) -> np.ndarray:
    """Transform a (n, h, w, c) array (or undo it with ``inverse``)."""
    if not inverse and t:
        x = x.transpose(0, 2, 1, 3)
    if fy:
        x = x[:, ::-1]
    if fx:
        x = x[:, :, ::-1]
    if inverse and t:
        x = x.transpose(0, 2, 1, 3)
    return x


def _ensemble(model: Model, x: np.ndarray) -> np.ndarray:
    """The model's output on ``x`` (n, h, w, c) and, as ``c`` more channels, the standard
    deviation of its outputs over the eight flips and turns of ``x``: where the model
    guesses, the variants disagree. The first channels are the plain output, so an
    ensemble run's output equals a plain run's."""
    outs = []
    for transposed in (False, True):
        variants = [v for v in DIHEDRAL if v[0] == transposed]
        batch = np.concatenate([_dihedral(x, *v) for v in variants])
        y = model(np.ascontiguousarray(batch))
        n = x.shape[0]
        outs += [
            _dihedral(y[i * n : (i + 1) * n], *v, inverse=True) for i, v in enumerate(variants)
        ]
    stack = np.stack(outs)  # (8, n, H, W, c)
    spread = stack.std(axis=0, dtype=np.float64).astype(np.float32)
    return np.concatenate([outs[0], spread], axis=-1)


def model_values(block: np.ndarray, spec: BlockSpec) -> np.ndarray:
    """The valid values of a (..., band, y, x) block in the model's units (1-D float32)."""
    images = block.reshape((-1,) + block.shape[-3:])
    mask = invalid_mask(images, spec.nodata)
    values = images.astype(np.float32, copy=True)
    if spec.to_model is not None:
        apply(values, *spec.to_model)
    return values[np.broadcast_to(~mask[:, None], values.shape)]


def check_range(values: np.ndarray, value_range: tuple[float, float], what: str) -> None:
    """Raise `InputError` when valid values (model units) are far outside ``value_range``:
    99 % of them below 1 % of the range above its low end (reflectance in 0..1 given to a
    model of reflectance x 10000), a median a tenth of the range below the low end of a
    model of non-negative values (counts shifted down by an offset), or a median ten
    ranges away (raw counts given to a model of physical values). Thresholds leave dark
    water and bright clouds alone."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return
    lo, hi = value_range
    span = hi - lo
    p99, p50 = np.percentile(values, 99), np.percentile(values, 50)
    if p99 < lo + span / 100:
        raise InputError(
            f"input values look too small for {what}: 99% of sampled valid pixels are below "
            f"{p99:.4g} (in the model's units) but the model expects values in {lo:g}..{hi:g}. "
            "Give the input's scale_factor/add_offset (CLI --scale-factor/--add-offset), "
            "rescale it (e.g. multiply 0..1 reflectance by 10000), or pass check_range=False "
            "(CLI --no-range-check) if you are sure"
        )
    if lo >= 0 and p50 < lo - span / 10:
        raise InputError(
            f"input values look shifted below the range of {what}: the median of sampled "
            f"valid pixels is {p50:.4g} (in the model's units) but the model expects values "
            f"in {lo:g}..{hi:g}, none negative. Give the input's scale_factor/add_offset "
            "(CLI --scale-factor/--add-offset) or convert it, or pass check_range=False "
            "(CLI --no-range-check) if you are sure"
        )
    if p50 > hi + 10 * span or p50 < lo - 10 * span:
        raise InputError(
            f"input values look out of range for {what}: the median of sampled valid pixels "
            f"is {p50:.4g} (in the model's units) but the model expects values in "
            f"{lo:g}..{hi:g}. Give the input's scale_factor/add_offset (CLI --scale-factor/"
            "--add-offset) or convert it, or pass check_range=False (CLI --no-range-check)"
        )


def _check_sample(*blocks: np.ndarray, spec: BlockSpec) -> np.ndarray:
    """The range check of a few blocks; returns a token the model tasks wait for."""
    assert spec.value_range is not None
    values = np.concatenate([model_values(b, spec) for b in blocks])
    check_range(values, spec.value_range, spec.what)
    return np.zeros((), dtype=bool)


def _sample_blocks(arr: dsa.Array, count: int = 9) -> list[dsa.Array]:
    """Up to ``count`` blocks of ``arr`` spread over its block grid (corners, middle...)."""
    grid = arr.numblocks
    picks = set()
    for k in range(count):
        picks.add(
            tuple(
                0 if n == 1 else int(round((k * (i + 2) * 0.37) % 1 * (n - 1)))
                for i, n in enumerate(grid)
            )
        )
    return [arr.blocks[p] for p in sorted(picks)]


def _check_finite(
    out: np.ndarray, mask: np.ndarray, spec: BlockSpec, block_info: dict | None
) -> np.ndarray:
    """``mask`` extended by valid pixels where the model returned NaN or Inf, or raise."""
    bad = ~np.isfinite(out).all(axis=1)
    if not bad.any():
        return mask
    bad &= ~mask
    if not bad.any():
        return mask
    if spec.nonfinite == "nodata":
        set_masked(out, bad, 0.0)  # overwritten by no-data; keeps the cast free of NaN
        return mask | bad
    image, rows, cols = np.nonzero(bad)
    loc = [(0, s) for s in bad.shape]
    if block_info and None in block_info:
        loc = block_info[None]["array-location"]
    (y0, _), (x0, _) = loc[-2], loc[-1]
    h, w = bad.shape[-2:]
    where = ""
    if len(loc) > 3:  # a cube: say which image of the leading dimensions
        index = np.unravel_index(image[0], [b - a for a, b in loc[:-3]])
        first = tuple(int(a + i) for (a, _), i in zip(loc[:-3], index, strict=True))
        where = f" of the image at index {first}"
    raise NonFiniteOutputError(
        f"the model returned NaN or infinite values for {int(bad.sum())} valid output "
        f"pixels of the block at output rows {y0}-{y0 + h - 1}, columns {x0}-{x0 + w - 1}"
        f"{where} (the first at row {y0 + rows[0]}, column {x0 + cols[0]}): check the model "
        "and the input's units, or pass nonfinite='nodata' (CLI --nonfinite nodata) to write "
        "those pixels as no-data"
    )


def _call(model: Model, tile: np.ndarray, spec: BlockSpec, crop: int) -> np.ndarray:
    """Run the model on a (n, band, y, x) tile; check the shape of what it returns and
    return it bands first with ``crop`` output pixels cut from every side. A model with
    a ``core`` method (`xsr4rs.model.handle.SRModel`) crops and transposes itself."""
    shape = (tile.shape[0], *tile.shape[2:], tile.shape[1])
    fast = not spec.ensemble and hasattr(model, "core")
    try:
        x = np.ascontiguousarray(tile.transpose(0, 2, 3, 1))
        if fast:
            y = model.core(x, crop)  # type: ignore[attr-defined]
        else:
            y = _ensemble(model, x) if spec.ensemble else model(x)
    except XSRError:  # the adapter's own errors (input out of the model's type...) say it all
        raise
    except Exception as err:  # TensorFlow's errors: say which tile and what to try
        message = first_line(err)
        hint = (
            ". If it needs tile sizes divisible by some number, choose tile= and chunks= "
            "accordingly"
            if shape_related(message)
            else ""
        )
        raise ModelError(
            f"the model failed on a tile of shape {shape}: {message.rstrip('.')}{hint}"
        ) from err
    channels = spec.out_bands * (2 if spec.ensemble else 1)
    expected = (shape[0], spec.scale * shape[1], spec.scale * shape[2], channels)
    if fast:  # what the model returned, before the crop, as (n, y, x, bands)
        n, bands, h, w = y.shape
        returned = (n, h + 2 * crop, w + 2 * crop, bands)
    else:
        returned = tuple(y.shape)
    if returned != expected:
        raise ModelError(
            f"the model returned shape {returned} for a tile of shape {shape}; expected {expected}"
        )
    if fast:
        return y
    return bands_first(y, crop)


def map_model(
    arr: dsa.Array,
    model: Model,
    spec: BlockSpec,
    chunks: tuple[tuple[int, ...], tuple[int, ...]],
    annotations: dict | None = None,
) -> dsa.Array:
    """Lazily upscale a (..., band, y, x) dask array; output chunks are ``chunks`` times
    the scale along y and x, the input's chunks along leading dimensions.

    ``chunks`` must come from `xsr4rs.tiling.regular_chunks` or
    `~xsr4rs.tiling.merge_small_chunks`: with more than one chunk along an axis, every
    chunk must be at least ``halo`` pixels so that it can lend its neighbours a halo.
    ``annotations`` (e.g. ``{"resources": {"GPU": 1}}``) go on the model tasks only.
    """
    ychunks, xchunks = chunks
    halo, scale = spec.halo, spec.scale
    nlead = arr.ndim - 3
    arr = arr.rechunk(arr.chunks[:nlead] + ((arr.shape[nlead],), ychunks, xchunks))
    extra: list[dsa.Array] = []
    if spec.value_range is not None:  # every model task waits for one check of a sample
        import dask

        check = dask.delayed(
            _check_sample, name="xsr4rs-range-check-" + dask.base.tokenize(arr.name, spec)
        )
        extra = [dsa.from_delayed(check(*_sample_blocks(arr), spec=spec), (), dtype=bool)]
    split = (len(ychunks) > 1 and halo > 0, len(xchunks) > 1 and halo > 0)
    if any(split):
        depth = {i: 0 for i in range(nlead + 1)}
        depth.update({nlead + 1: halo if split[0] else 0, nlead + 2: halo if split[1] else 0})
        boundary = {i: "none" for i in range(nlead + 1)}
        boundary.update({nlead + 1: "reflect", nlead + 2: "reflect"})
        arr = dsa.overlap.overlap(arr, depth=depth, boundary=boundary)
    # an ensemble block is float (its output part is cast by `finish_ensemble`)
    out_dtype = np.dtype("float32") if spec.ensemble else np.dtype(spec.out_dtype)
    channels = spec.out_bands * (2 if spec.ensemble else 1)
    out = dsa.map_blocks(
        run_block,
        arr,
        *extra,
        dtype=out_dtype,
        chunks=arr.chunks[:nlead]
        + ((channels,), output_chunks(ychunks, scale), output_chunks(xchunks, scale)),
        meta=np.empty((0,) * arr.ndim, dtype=out_dtype),
        token="xsr4rs-upscale",
        model=model,
        spec=spec,
        pad=(not split[0] and halo > 0, not split[1] and halo > 0),
    )
    return out if not annotations else isolate(out, annotations)


def isolate(arr: dsa.Array, annotations: dict) -> dsa.Array:
    """``arr`` with its last layer made unfusable and annotated (e.g. worker resources).

    dask fuses blockwise layers, and fusion drops annotations, so tasks meant for GPU
    workers would run anywhere. A materialized layer is never fused with its neighbours;
    low-level fusion must also be off when the graph is optimised (`xsr4rs.upscale` turns
    it off in dask's configuration when annotations are given).
    """
    from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

    hlg = arr.__dask_graph__()
    layers = dict(hlg.layers)
    layers[arr.name] = MaterializedLayer(dict(layers[arr.name]), annotations=annotations)
    graph = HighLevelGraph(layers, dict(hlg.dependencies))
    return dsa.Array(graph, arr.name, arr.chunks, meta=arr._meta)
