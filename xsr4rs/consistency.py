"""Consistency projection: correct an upscaled image so that degrading it gives its input.

The projection is the smallest change (least squares) of the output ``y`` that makes the
project's `xsr4rs.degrade.degrade` of it equal the low-resolution input ``x``:

    y' = y + Dᵀ (D Dᵀ)⁻¹ (x - D y)

with ``D`` = Gaussian blur (``sigma = scale / 2``, the same truncated kernel as
``degrade``) then ``scale x scale`` block averaging. ``D Dᵀ`` is a convolution of the
low-resolution grid, so it is inverted in the Fourier domain, tile by tile, on a periodic
extension of the tile: what the periodic wrap gets wrong decays within `projection_halo`
input pixels of the tile's edge, which the engine's halo keeps out of every core. Input
pixels that are no-data impose nothing. Pure numpy, float64.
"""

from __future__ import annotations

import functools
import math

import numpy as np


def blur_kernel(scale: int) -> np.ndarray:
    """The 1-D Gaussian of `xsr4rs.degrade.degrade` (scipy's: ``sigma = scale / 2``,
    truncated at 4 sigma, normalised)."""
    sigma = scale / 2
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


@functools.lru_cache(maxsize=32)
def _transfer(h: int, w: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Fourier transfer functions on a periodic (h, w) LR tile: the HR blur ``G`` (rfft2
    of the HR grid) and ``K``, that of ``D Dᵀ`` (fft2 of the LR grid)."""
    hh, ww = h * scale, w * scale
    k1 = blur_kernel(scale)
    r = len(k1) // 2

    def periodic(n: int) -> np.ndarray:
        line = np.zeros(n)
        for i, v in enumerate(k1):
            line[(i - r) % n] += v
        return line

    gy, gx = np.fft.fft(periodic(hh)).real, np.fft.rfft(periodic(ww)).real
    g = gy[:, None] * gx[None, :]
    delta = np.zeros((h, w))
    delta[0, 0] = 1.0
    column = _blur(_expand(delta, scale), g, hh, ww)
    column = _blur(column, g, hh, ww)
    k = np.fft.fft2(_reduce(column, scale)).real
    return g, k


def _expand(z: np.ndarray, scale: int) -> np.ndarray:
    """``Aᵀ``: each LR value spread over its block (the adjoint of the block mean)."""
    return np.repeat(np.repeat(z, scale, axis=-2), scale, axis=-1) / scale**2


def _reduce(y: np.ndarray, scale: int) -> np.ndarray:
    """``A``: the mean of each ``scale x scale`` block."""
    *lead, h, w = y.shape
    return y.reshape(*lead, h // scale, scale, w // scale, scale).mean(axis=(-3, -1))


def _blur(y: np.ndarray, g: np.ndarray, hh: int, ww: int) -> np.ndarray:
    return np.fft.irfft2(np.fft.rfft2(y) * g, s=(hh, ww))


def project(
    y: np.ndarray, x: np.ndarray, scale: int, valid: np.ndarray | None = None
) -> np.ndarray:
    """The consistency projection of ``y`` (..., H, W) onto input ``x`` (..., H/s, W/s).

    ``valid`` (..., H/s, W/s), when given, marks the input pixels that constrain the
    output; elsewhere the residual is set to zero. Returns float64.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    h, w = x.shape[-2:]
    hh, ww = y.shape[-2:]
    if (hh, ww) != (h * scale, w * scale):
        raise ValueError(f"output {hh}x{ww} is not {scale} times the input {h}x{w}")
    g, k = _transfer(h, w, scale)
    residual = x - _reduce(_blur(y, g, hh, ww), scale)
    if valid is not None:
        residual = np.where(valid, residual, 0.0)
    z = np.fft.ifft2(np.fft.fft2(residual) / k).real
    return y + _blur(_expand(z, scale), g, hh, ww)


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
