"""Image comparison measures with explicit conventions (numpy only)."""

from __future__ import annotations

import numpy as np


def block_mean(values: np.ndarray, scale: int) -> np.ndarray:
    """Average each ``scale x scale`` block of the last two axes (their sizes must divide)."""
    *lead, h, w = values.shape
    if h % scale or w % scale:
        raise ValueError(f"shape {h}x{w} is not a multiple of {scale}")
    v = values.reshape(*lead, h // scale, scale, w // scale, scale)
    return v.mean(axis=(-3, -1))


def _upsampled_dft(data: np.ndarray, size: int, factor: int, offsets: np.ndarray) -> np.ndarray:
    """Cross-correlation ``data`` (frequency domain) upsampled by ``factor`` near ``offsets``."""
    for n, off in list(zip(data.shape, offsets, strict=True))[::-1]:
        kernel = (np.arange(size) - off)[:, None] * np.fft.fftfreq(n, factor)
        data = np.tensordot(np.exp(-2j * np.pi * kernel), data, axes=(1, -1))
    return data


def phase_shift(
    reference: np.ndarray, moved: np.ndarray, *, upsample: int = 100
) -> tuple[float, float]:
    """Sub-pixel translation (dy, dx) of ``moved`` relative to ``reference`` (2-D arrays).

    Cross-correlation of Hann-windowed images computed in the Fourier domain, refined to
    ``1/upsample`` pixel by an upsampled DFT around the integer peak (Guizar-Sicairos et
    al., Opt. Lett. 2008). The spectrum is not whitened: with band-limited imagery,
    whitening lets the noise of empty high frequencies bias the sub-pixel peak.
    A positive dy means ``moved`` shows ``reference`` shifted down (towards larger rows).
    """
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(moved, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two 2-D arrays of one shape, got {a.shape} and {b.shape}")
    win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    fa = np.fft.fft2((a - a.mean()) * win)
    fb = np.fft.fft2((b - b.mean()) * win)
    product = fb * np.conj(fa)
    corr = np.abs(np.fft.ifft2(product))
    shape = np.array(corr.shape)
    shifts = np.array(np.unravel_index(np.argmax(corr), corr.shape), dtype=np.float64)
    wrap = shifts > np.fix(shape / 2)
    shifts[wrap] -= shape[wrap]
    if upsample > 1:
        shifts = np.round(shifts * upsample) / upsample
        size = int(np.ceil(upsample * 1.5))
        centre = np.fix(size / 2.0)
        region = _upsampled_dft(product.conj(), size, upsample, centre - shifts * upsample).conj()
        peak = np.array(np.unravel_index(np.argmax(np.abs(region)), region.shape), dtype=np.float64)
        shifts = shifts + (peak - centre) / upsample
    return float(shifts[0]), float(shifts[1])
