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


#: Tile shapes tried to find the outputs' geometry: an output cropped by ``c`` pixels per
#: side is empty on tiles of ``scale * H <= 2c``, so larger shapes follow.
GEOMETRY_SHAPES = ((32, 48), (48, 64), (96, 112), (160, 176), (288, 304))

Geometry = tuple[int, int, int]


def output_geometry(call: Call, bands: int) -> Geometry | None:
    """``(scale, crop, output_bands)`` of a one-output model, or ``None`` if it stays empty."""
    return output_geometries(lambda x: {"y": call(x)}, bands)[0]["y"]


def output_geometries(
    call: Callable[[np.ndarray], dict[str, np.ndarray]], bands: int, wanted: str | None = None
) -> tuple[dict[str, Geometry | None], tuple[int, int]]:
    """``(scale, crop, output_bands)`` of every output, and the largest tile shape tried.

    ``call(x)`` returns every output for ``x[1, H, W, bands]`` (one model run for all).
    A "valid" output, cropped by ``crop`` output pixels on every side, is ``scale*H -
    2*crop`` high: two tile shapes on which it is not empty give both numbers. Shapes grow
    until ``wanted`` (or, when ``None``, the first output to appear) is seen on two, so a
    large model runs on small tiles only. An output still empty has no geometry (``None``),
    unless seen on one shape: as tiles are not square, one shape gives both numbers too.
    """
    rng = np.random.default_rng(0)
    seen: dict[str, list[tuple[int, int, tuple[int, ...]]]] = {}
    shape = GEOMETRY_SHAPES[0]
    for shape in GEOMETRY_SHAPES:
        h, w = shape
        x = rng.uniform(0, 1, (1, h, w, bands)).astype(np.float32)
        for key, y in call(x).items():
            if y.ndim != 4 or y.shape[0] != 1:
                raise ModelError(
                    f"the model maps a tile of shape {x.shape} to shape {y.shape}; "
                    "expected [batch, scale*H, scale*W, bands]"
                )
            found = seen.setdefault(key, [])
            if y.shape[1] > 0 and y.shape[2] > 0 and len(found) < 2:
                found.append((h, w, y.shape))
        done = [k for k, v in seen.items() if len(v) == 2]
        if (wanted in done) if wanted is not None else done:
            break
    return {k: _geometry(v) for k, v in seen.items()}, shape


def _geometry(seen: list[tuple[int, int, tuple[int, ...]]]) -> Geometry | None:
    if not seen:
        return None
    if len(seen) == 1:  # one rectangular tile: scale from the two sides, then the border
        (h1, w1, y1) = seen[0]
        seen = [seen[0], (w1, h1, (1, y1[2], y1[1], y1[3]))]  # the same tile, transposed
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


def influence_radius(diff: np.ndarray, scale: int, at: tuple[int, int], tol: float) -> int:
    """Largest distance, in input pixels, from input pixel ``at`` to an output pixel with
    ``diff > tol``.

    ``diff`` is a (scale*h, scale*w) map of output changes caused by changing input
    pixel ``at``; output pixel ``j`` lies in input pixel ``j // scale``.
    """
    ys, xs = np.nonzero(diff > tol)
    if ys.size == 0:
        return 0
    return int(max(np.abs(ys // scale - at[0]).max(), np.abs(xs // scale - at[1]).max()))


#: Value ranges tried when a model does not say which values it expects: a ReLU network
#: probed far from its working range can look blind to its neighbours, and small values
#: matter to integer models too: where the output carries the input (a skip connection),
#: large values hide the weak far reach under the relative tolerance.
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

    Random tiles are called as they are, with a pixel near their top-left corner changed,
    and with a pixel near their bottom-right corner changed; how far the output changes
    towards the opposite corner, in all four directions, is the radius. Perturbing the
    corners rather than the centre lets a tile half as wide show the same reach, a quarter
    of the work for large models. The largest radius over ``samples`` tiles (one batched
    call) per value range is kept (``value_range``, or each of `PROBE_RANGES` when
    unknown). ``blind`` input pixels along the tile's edges show no output (a model that
    crops its output). When the change reaches the visible edge the tile grows by half,
    up to ``limit``; a model whose influence still reaches it (a global operation
    such as image-wide normalisation) cannot be tiled exactly and raises `ModelError`.
    """
    ranges = (tuple(value_range),) if value_range is not None else PROBE_RANGES
    rng = np.random.default_rng(1234)
    size = tried = max(start, 2 * blind + 16)
    while size <= limit:
        p, q = blind + 2, size - 3 - blind  # the changed pixels, inside the visible output
        edge = q - p - 2  # reach from one to the far visible edge, less a margin
        radius = 0
        for lo, hi in ranges:
            base = rng.uniform(lo, hi, (samples, size, size, bands)).astype(np.float32)
            first, last = base.copy(), base.copy()
            first[:, p, p, :] += np.float32(0.5 * (hi - lo))
            last[:, q, q, :] -= np.float32(0.5 * (hi - lo))
            out = _batched(call, np.concatenate([base, first, last]))
            out, out1, out2 = out[:samples], out[samples : 2 * samples], out[2 * samples :]
            finite = np.abs(out[np.isfinite(out)])
            tol = rtol * max(float(finite.max()) if finite.size else 0.0, 1e-30)
            for moved, at in ((out1, (p, p)), (out2, (q, q))):
                with np.errstate(invalid="ignore"):  # inf - inf where the model overflows
                    diff = np.abs(moved.astype(np.float64) - out).max(axis=(0, 3))
                diff[~np.isfinite(diff)] = 0.0
                radius = max(radius, influence_radius(diff, scale, at, tol))
            if radius >= edge:
                break  # a larger tile is needed whatever the other ranges say
        if radius < edge:
            return radius
        tried, size = size, -(-size * 3 // 16) * 8  # x1.5, a multiple of 8
        if tried < limit < size:
            size = limit  # the last step at the limit itself
    raise ModelError(
        f"changing one input pixel changes the output up to the edge of a {tried}x{tried} "
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
