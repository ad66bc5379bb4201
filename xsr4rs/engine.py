"""The halo engine: map a model over the blocks of a (band, y, x) dask array.

Each chunk is extended by ``halo`` input pixels taken from its neighbours (dask
``overlap``) or, at the image border, by mirror padding (``numpy.pad(mode="symmetric")``,
which is dask's ``boundary="reflect"``). The model runs on tiles of the extended chunk and
``scale * halo`` output pixels are cropped from each side of every tile, so the result
equals the model applied once to the mirror-padded whole image whatever the chunking.
No xarray here, and TensorFlow only behind the model handle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dask.array as dsa
import numpy as np

from xsr4rs.exceptions import ModelError, NonFiniteOutputError, XSRError
from xsr4rs.nodata import fill_invalid, invalid_mask, to_output_dtype
from xsr4rs.progress import COUNTER
from xsr4rs.tiling import output_chunks, split_axis

Model = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class BlockSpec:
    """What every block needs besides its data and the model (small, hashable, tokenizable).

    ``nodata`` is the input's no-data value (NaN is always no-data in floats), ``fill``
    the per-band values given to the model in place of no-data, ``out_nodata`` the value
    written where the input was no-data. ``nonfinite`` says what NaN or infinite model
    output at a valid pixel does: ``"error"`` (`NonFiniteOutputError`) or ``"nodata"``
    (the pixel becomes ``out_nodata``, which must then be set).
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


def run_block(
    block: np.ndarray,
    *,
    model: Model,
    spec: BlockSpec,
    pad: tuple[bool, bool],
    block_info: dict | None = None,
) -> np.ndarray:
    """Upscale one extended (band, y, x) block and return its cropped output block.

    ``block`` carries ``spec.halo`` pixels on each side, except along axes flagged in
    ``pad`` (an axis that is a single chunk), which are mirror-padded here.
    ``block_info`` (from dask) locates the block, to say where bad output is.
    """
    scale, halo = spec.scale, spec.halo
    if any(pad):
        widths = ((0, 0), (halo if pad[0] else 0,) * 2, (halo if pad[1] else 0,) * 2)
        block = np.pad(block, widths, mode="symmetric")
    mask = invalid_mask(block, spec.nodata)
    values = fill_invalid(block, mask, np.asarray(spec.fill, dtype=np.float32))
    core_h, core_w = block.shape[1] - 2 * halo, block.shape[2] - 2 * halo
    out = np.empty((spec.out_bands, scale * core_h, scale * core_w), dtype=np.float32)
    c = scale * halo
    for y0, y1 in split_axis(core_h, spec.tile):
        for x0, x1 in split_axis(core_w, spec.tile):
            x = values[:, y0 : y1 + 2 * halo, x0 : x1 + 2 * halo]
            y = _call(model, x, spec)
            out[:, scale * y0 : scale * y1, scale * x0 : scale * x1] = y[
                0, c : y.shape[1] - c, c : y.shape[2] - c, :
            ].transpose(2, 0, 1)
    core_mask = mask[halo : halo + core_h, halo : halo + core_w]
    up_mask = np.repeat(np.repeat(core_mask, scale, axis=0), scale, axis=1)
    up_mask = _check_finite(out, up_mask, spec, block_info)
    result = to_output_dtype(out, np.dtype(spec.out_dtype), spec.out_nodata, up_mask)
    COUNTER.add(result.shape[1] * result.shape[2])
    return result


def _check_finite(
    out: np.ndarray, mask: np.ndarray, spec: BlockSpec, block_info: dict | None
) -> np.ndarray:
    """``mask`` extended by valid pixels where the model returned NaN or Inf, or raise."""
    bad = ~np.isfinite(out).all(axis=0)
    if not bad.any():
        return mask
    bad &= ~mask
    if not bad.any():
        return mask
    if spec.nonfinite == "nodata":
        out[:, bad] = 0.0  # overwritten by no-data; keeps the cast free of NaN
        return mask | bad
    rows, cols = np.nonzero(bad)
    y0, x0 = 0, 0
    if block_info and None in block_info:
        (_, _), (y0, _), (x0, _) = block_info[None]["array-location"]
    h, w = bad.shape
    raise NonFiniteOutputError(
        f"the model returned NaN or infinite values for {int(bad.sum())} valid output "
        f"pixels of the block at output rows {y0}-{y0 + h - 1}, columns {x0}-{x0 + w - 1} "
        f"(the first at row {y0 + rows[0]}, column {x0 + cols[0]}): check the model and "
        "the input's units, or pass nonfinite='nodata' (CLI --nonfinite nodata) to write "
        "those pixels as no-data"
    )


def _call(model: Model, tile: np.ndarray, spec: BlockSpec) -> np.ndarray:
    """Run the model on a (band, y, x) tile; check the shape of what it returns."""
    shape = (1, *tile.shape[1:], tile.shape[0])
    try:
        y = model(np.ascontiguousarray(tile.transpose(1, 2, 0))[None])
    except XSRError:  # the adapter's own errors (input out of the model's type...) say it all
        raise
    except Exception as err:  # TensorFlow's errors: say which tile and what to try
        text = str(err).strip().splitlines()
        raise ModelError(
            f"the model failed on a tile of shape {shape}: "
            f"{text[0] if text else type(err).__name__}. If it needs tile sizes "
            "divisible by some number, choose tile= and chunks= accordingly"
        ) from err
    expected = (1, spec.scale * shape[1], spec.scale * shape[2], spec.out_bands)
    if y.shape != expected:
        raise ModelError(
            f"the model returned shape {tuple(y.shape)} for a tile of shape {shape}; "
            f"expected {expected}"
        )
    return y


def map_model(
    arr: dsa.Array,
    model: Model,
    spec: BlockSpec,
    chunks: tuple[tuple[int, ...], tuple[int, ...]],
    annotations: dict | None = None,
) -> dsa.Array:
    """Lazily upscale a (band, y, x) dask array; output chunks are ``chunks`` times the scale.

    ``chunks`` must come from `xsr4rs.tiling.regular_chunks` or
    `~xsr4rs.tiling.merge_small_chunks`: with more than one chunk along an axis, every
    chunk must be at least ``halo`` pixels so that it can lend its neighbours a halo.
    ``annotations`` (e.g. ``{"resources": {"GPU": 1}}``) go on the model tasks only.
    """
    ychunks, xchunks = chunks
    halo, scale = spec.halo, spec.scale
    arr = arr.rechunk(((arr.shape[0],), ychunks, xchunks))
    split = (len(ychunks) > 1 and halo > 0, len(xchunks) > 1 and halo > 0)
    if any(split):
        arr = dsa.overlap.overlap(
            arr,
            depth={0: 0, 1: halo if split[0] else 0, 2: halo if split[1] else 0},
            boundary={0: "none", 1: "reflect", 2: "reflect"},
        )
    out_dtype = np.dtype(spec.out_dtype)
    out = dsa.map_blocks(
        run_block,
        arr,
        dtype=out_dtype,
        chunks=((spec.out_bands,), output_chunks(ychunks, scale), output_chunks(xchunks, scale)),
        meta=np.empty((0, 0, 0), dtype=out_dtype),
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
    low-level fusion must also be off when the graph is optimised (`xsr4rs.io.write`
    does this).
    """
    from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

    hlg = arr.__dask_graph__()
    layers = dict(hlg.layers)
    layers[arr.name] = MaterializedLayer(dict(layers[arr.name]), annotations=annotations)
    graph = HighLevelGraph(layers, dict(hlg.dependencies))
    return dsa.Array(graph, arr.name, arr.chunks, meta=arr._meta)
