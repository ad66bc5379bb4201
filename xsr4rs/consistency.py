"""Consistency projection: correct an upscaled image so that degrading it gives its input.

The projection is the smallest change (least squares) of the output ``y`` that makes the
project's `xsr4rs.degrade.degrade` of it equal the low-resolution input ``x``:

    y' = y + Dᵀ (D Dᵀ)⁻¹ (x - D y)

with ``D`` = Gaussian blur (``sigma = scale / 2``, the same truncated kernel as
``degrade``) then ``scale x scale`` block averaging. ``D Dᵀ`` is a convolution of the
low-resolution grid, so it is inverted in the Fourier domain, tile by tile, on a periodic
extension of the tile: what the periodic wrap gets wrong decays within `projection_halo`
input pixels of the tile's edge, which the engine's halo keeps out of every core. Input
pixels that are no-data impose nothing. Pure numpy: ``D`` and ``Dᵀ`` as separable
filters in the output's precision, the low-resolution solve in float64.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def blur_kernel(scale: int) -> np.ndarray:
    """The 1-D Gaussian of `xsr4rs.degrade.degrade` (scipy's: ``sigma = scale / 2``,
    truncated at 4 sigma, normalised)."""
    sigma = scale / 2
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


@functools.lru_cache(maxsize=8)
def _taps(scale: int) -> tuple[np.ndarray, int]:
    """``D`` along one axis as one filter: output ``K`` is ``sum_m taps[m] * y[s*K + m - r]``
    (the blur then the mean of ``s`` pixels), returned as ``(taps, r)``; ``taps`` is
    zero-padded to a multiple of ``s`` and shaped ``(groups, s)``."""
    k1 = blur_kernel(scale)
    r = len(k1) // 2
    groups = -(-(len(k1) + scale - 1) // scale)
    taps = np.zeros(groups * scale)
    for q in range(scale):
        taps[q : q + len(k1)] += k1 / scale
    return taps.reshape(groups, scale), r


def _down(y: np.ndarray, scale: int) -> np.ndarray:
    """``D`` along the last axis of ``y`` (periodic): length ``N`` -> ``N / scale``."""
    taps, r = _taps(scale)
    big, n = y.shape[-1], y.shape[-1] // scale
    groups = taps.shape[0]
    index = (np.arange((n + groups) * scale) - r) % big  # wrap-around, as on a torus
    padded = np.take(y, index, axis=-1).reshape(*y.shape[:-1], n + groups, scale)
    out = padded[..., 0:n, :] @ taps[0].astype(y.dtype)
    for a in range(1, groups):
        out += padded[..., a : a + n, :] @ taps[a].astype(y.dtype)
    return out


def _up(z: np.ndarray, scale: int) -> np.ndarray:
    """``Dᵀ`` along the last axis of ``z`` (periodic): length ``n`` -> ``n * scale``."""
    taps, r = _taps(scale)
    n = z.shape[-1]
    big, groups = n * scale, taps.shape[0]
    # acc[..., k, b] = sum_a z[k - a] * taps[a, b]: one small matrix product over windows
    padded = np.zeros((*z.shape[:-1], n + 2 * groups - 1), dtype=z.dtype)
    padded[..., groups - 1 : groups - 1 + n] = z
    windows = sliding_window_view(padded, groups, axis=-1)[..., ::-1]
    acc = (windows @ taps.astype(z.dtype)).reshape(*z.shape[:-1], (n + groups) * scale)
    # acc[j] belongs to pixel (j - r) mod big; a view (no block-sized copy): the two
    # wrapped ends added below lie outside it
    out = acc[..., r : r + big]
    out[..., big - r :] += acc[..., :r]
    tail = acc[..., r + big :]
    out[..., : tail.shape[-1]] += tail
    return out


def _along_y(op, a: np.ndarray, scale: int) -> np.ndarray:
    """``op`` (`_down` or `_up`) applied along the second-last axis instead."""
    turned = op(np.ascontiguousarray(a.swapaxes(-1, -2)), scale)
    return np.ascontiguousarray(turned.swapaxes(-1, -2))


def degrade_periodic(y: np.ndarray, scale: int) -> np.ndarray:
    """``D y``: the blur and block mean of `xsr4rs.degrade.degrade`, on a periodic tile."""
    return _along_y(_down, _down(y, scale), scale)


def degrade_adjoint(z: np.ndarray, scale: int) -> np.ndarray:
    """``Dᵀ z``: the adjoint of `degrade_periodic`."""
    return _up(_along_y(_up, z, scale), scale)


@functools.lru_cache(maxsize=32)
def _transfer(h: int, w: int, scale: int) -> np.ndarray:
    """Fourier transfer function of ``D Dᵀ`` on a periodic (h, w) LR tile (fft2)."""
    delta = np.zeros((h, w))
    delta[0, 0] = 1.0
    return np.fft.fft2(degrade_periodic(degrade_adjoint(delta, scale), scale)).real


def project(
    y: np.ndarray,
    x: np.ndarray,
    scale: int,
    valid: np.ndarray | None = None,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The consistency projection of ``y`` (..., H, W) onto input ``x`` (..., H/s, W/s).

    ``valid`` (..., H/s, W/s), when given, marks the input pixels that constrain the
    output; elsewhere the residual is set to zero. ``D`` and ``Dᵀ`` are applied as
    separable filters on the tile's periodic extension (a few passes over the output,
    in its own precision: float32 stays float32); only the small low-resolution system
    ``D Dᵀ`` is solved in the Fourier domain, in float64. ``out`` (which may be ``y``
    itself) receives the result instead of a new array. Images (the leading axes) are
    projected one after the other: the temporaries are those of one band, not of the
    block (a quarter of the memory and faster, for 4 bands).
    """
    y = np.asarray(y)
    if y.dtype != np.float32:
        y = y.astype(np.float64)
    if y.ndim > 2:
        lead = y.shape[:-2]
        target = np.empty(y.shape, y.dtype) if out is None else out
        xs = np.broadcast_to(x, (*lead, *np.shape(x)[-2:]))
        vs = None if valid is None else np.broadcast_to(valid, (*lead, *np.shape(valid)[-2:]))
        for i in np.ndindex(*lead):
            project(y[i], xs[i], scale, None if vs is None else vs[i], out=target[i])
        return target
    x = np.asarray(x, dtype=np.float64)
    h, w = x.shape[-2:]
    hh, ww = y.shape[-2:]
    if (hh, ww) != (h * scale, w * scale):
        raise ValueError(f"output {hh}x{ww} is not {scale} times the input {h}x{w}")
    residual = x - degrade_periodic(y, scale)
    if valid is not None:
        residual = np.where(valid, residual, 0.0)
    z = np.fft.ifft2(np.fft.fft2(residual) / _transfer(h, w, scale)).real
    return np.add(y, degrade_adjoint(z.astype(y.dtype), scale), out=out)


@functools.lru_cache(maxsize=8)
def projection_halo(scale: int, rtol: float = 1e-6) -> int:
    """Input pixels of context the projection needs on every side, measured: the largest
    distance at which one changed input pixel (or output block) still changes the
    projected output by more than ``rtol`` of the change, on a large periodic tile."""
    n = 96
    x = np.zeros((n, n))
    x[n // 2, n // 2] = 1.0
    response = np.abs(project(np.zeros((n * scale, n * scale)), x, scale))
    y = np.zeros((n * scale, n * scale))
    y[(n // 2) * scale : (n // 2 + 1) * scale, (n // 2) * scale : (n // 2 + 1) * scale] = 1.0
    response = np.maximum(response, np.abs(project(y, np.zeros((n, n)), scale) - y))
    rows, cols = np.nonzero(response > rtol * response.max())
    reach = max(np.abs(rows // scale - n // 2).max(), np.abs(cols // scale - n // 2).max())
    return int(math.ceil(reach)) + 1
