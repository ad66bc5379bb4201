"""Measure what a plain SavedModel does: its scale and its receptive-field radius (halo).

Only numpy here: the model is any callable ``f(x[n, h, w, bands]) -> y[n, s*h, s*w, out]``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xsr4rs.exceptions import ModelError

Call = Callable[[np.ndarray], np.ndarray]

#: Shape of the tile used to find the scale: rectangular, divisible by 16.
PROBE_SHAPE = (32, 48)


def probe_scale(call: Call, bands: int) -> tuple[int, int]:
    """Return ``(scale, output_bands)`` found by calling the model on one small tile."""
    h, w = PROBE_SHAPE
    x = np.random.default_rng(0).uniform(0, 1, (1, h, w, bands)).astype(np.float32)
    y = call(x)
    if y.ndim != 4 or y.shape[0] != 1:
        raise ModelError(
            f"the model maps a tile of shape {x.shape} to shape {y.shape}; "
            "expected [batch, scale*H, scale*W, bands]"
        )
    sy, ry = divmod(y.shape[1], h)
    sx, rx = divmod(y.shape[2], w)
    if ry or rx or sy != sx or sy < 1:
        raise ModelError(
            f"the model maps a {h}x{w} tile to {y.shape[1]}x{y.shape[2]}: not one integer "
            "scale for both axes"
        )
    return sy, int(y.shape[3])


#: Tile shapes tried to find an output's geometry: an output cropped by ``c`` pixels per
#: side is empty on tiles of ``scale * H <= 2c``, so larger shapes follow.
GEOMETRY_SHAPES = ((32, 48), (48, 64), (96, 112), (160, 176), (288, 304))


def output_geometry(call: Call, bands: int) -> tuple[int, int, int] | None:
    """``(scale, crop, output_bands)`` of a model output, or ``None`` if it stays empty.

    ``call(x)`` returns one output for ``x[1, H, W, bands]``. A "valid" output, cropped
    by ``crop`` output pixels on every side, is ``scale*H - 2*crop`` high: two tile
    shapes on which it is not empty give both numbers.
    """
    rng = np.random.default_rng(0)
    seen: list[tuple[int, int, tuple[int, ...]]] = []
    for h, w in GEOMETRY_SHAPES:
        x = rng.uniform(0, 1, (1, h, w, bands)).astype(np.float32)
        y = call(x)
        if y.ndim != 4 or y.shape[0] != 1:
            raise ModelError(
                f"the model maps a tile of shape {x.shape} to shape {y.shape}; "
                "expected [batch, scale*H, scale*W, bands]"
            )
        if y.shape[1] > 0 and y.shape[2] > 0:
            seen.append((h, w, y.shape))
        if len(seen) == 2:
            break
    if len(seen) < 2:
        return None
    (h1, w1, y1), (h2, w2, y2) = seen
    sy, ry = divmod(y2[1] - y1[1], h2 - h1)
    sx, rx = divmod(y2[2] - y1[2], w2 - w1)
    cy2, cx2 = sy * h1 - y1[1], sx * w1 - y1[2]
    if ry or rx or sy != sx or sy < 1 or cy2 != cx2 or cy2 < 0 or cy2 % 2:
        raise ModelError(
            f"the model maps {h1}x{w1} and {h2}x{w2} tiles to {y1[1]}x{y1[2]} and "
            f"{y2[1]}x{y2[2]}: not one integer scale with a fixed border"
        )
    return int(sy), int(cy2 // 2), int(y1[3])


def influence_radius(diff: np.ndarray, scale: int, centre: int, tol: float) -> int:
    """Largest distance, in input pixels, from ``centre`` to an output pixel with ``diff > tol``.

    ``diff`` is a (scale*n, scale*n) map of output changes caused by changing input
    pixel (centre, centre); output pixel ``j`` lies in input pixel ``j // scale``.
    """
    ys, xs = np.nonzero(diff > tol)
    if ys.size == 0:
        return 0
    return int(max(np.abs(ys // scale - centre).max(), np.abs(xs // scale - centre).max()))


#: Value ranges tried when a model does not say which values it expects: a ReLU network
#: probed far from its working range can look blind to its neighbours.
PROBE_RANGES = ((0.0, 1.0), (0.0, 255.0), (0.0, 10000.0), (-1.0, 1.0))


def measure_halo(
    call: Call,
    bands: int,
    scale: int,
    value_range: tuple[float, float] | None = None,
    *,
    blind: int = 0,
    start: int = 32,
    limit: int = 512,
    samples: int = 3,
    rtol: float = 1e-6,
) -> int:
    """Measure how far (input pixels) one input pixel influences the output.

    Random tiles are called with and without a change of their centre pixel, and the
    extent of changed output pixels is the radius; the largest over ``samples`` tiles
    (one batched call) per value range is kept (``value_range``, or each of
    `PROBE_RANGES` when unknown). ``blind`` input pixels along the tile's edges show no
    output (a model that crops its output). When the change reaches the visible edge
    the tile is doubled at once, up to ``limit``; a model whose influence still reaches
    it (a global operation such as image-wide normalisation) cannot be tiled exactly and
    raises `ModelError`.
    """
    ranges = (tuple(value_range),) if value_range is not None else PROBE_RANGES
    rng = np.random.default_rng(1234)
    size = max(start, 4 * blind + 16)
    while size <= limit:
        c = size // 2
        edge = c - 2 - blind
        radius = 0
        for lo, hi in ranges:
            base = rng.uniform(lo, hi, (samples, size, size, bands)).astype(np.float32)
            moved = base.copy()
            moved[:, c, c, :] += np.float32(0.5 * (hi - lo))
            out, out2 = _batched(call, base), _batched(call, moved)
            with np.errstate(invalid="ignore"):  # inf - inf where the model overflows
                diff = np.abs(out2.astype(np.float64) - out).max(axis=(0, 3))
            diff[~np.isfinite(diff)] = 0.0
            finite = np.abs(out[np.isfinite(out)])
            tol = rtol * max(float(finite.max()) if finite.size else 0.0, 1e-30)
            radius = max(radius, influence_radius(diff, scale, c, tol))
            if radius >= edge:
                break  # a larger tile is needed whatever the other ranges say
        if radius < edge:
            return radius
        size *= 2
    raise ModelError(
        f"changing one input pixel changes the output up to the edge of a {limit}x{limit} "
        "tile: the model's receptive field is global or larger than the tile, so tiled "
        "inference cannot equal whole-image inference. Pass halo= (--halo) explicitly if "
        "you accept the difference."
    )


def _batched(call: Call, x: np.ndarray) -> np.ndarray:
    """``call`` on a batch, or tile by tile for models whose signature fixes batch 1."""
    try:
        return call(x)
    except ModelError:
        raise
    except Exception:
        if x.shape[0] == 1:
            raise
        return np.concatenate([call(x[i : i + 1]) for i in range(x.shape[0])])
