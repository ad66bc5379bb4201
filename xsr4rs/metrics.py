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


def _valid(reference: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """(y, x) boolean mask of pixels to score: finite in every band and not masked out."""
    valid = np.isfinite(reference).all(axis=0)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    if not valid.any():
        raise ValueError("no valid pixel to score")
    return valid


def psnr(
    reference: np.ndarray,
    estimate: np.ndarray,
    *,
    data_range: float,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Peak signal-to-noise ratio per band (dB) of (band, y, x) arrays.

    ``data_range`` is explicit (e.g. 10000 for reflectance x 10000): no 255 is assumed.
    """
    ref, est = np.asarray(reference, np.float64), np.asarray(estimate, np.float64)
    valid = _valid(ref, mask)
    mse = ((ref - est)[:, valid] ** 2).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(data_range**2 / mse)


def ssim(
    reference: np.ndarray,
    estimate: np.ndarray,
    *,
    data_range: float,
    mask: np.ndarray | None = None,
    sigma: float = 1.5,
) -> np.ndarray:
    """Structural similarity per band (Wang et al. 2004, Gaussian window of ``sigma``).

    Local statistics use a Gaussian window (sigma 1.5, truncated at 3.5 sigma: the
    11-pixel window of the original paper), K1 = 0.01, K2 = 0.03 and the explicit
    ``data_range``; the SSIM map is averaged over valid pixels.
    """
    from scipy import ndimage

    ref, est = np.asarray(reference, np.float64), np.asarray(estimate, np.float64)
    valid = _valid(ref, mask)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(a: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(a, sigma, mode="reflect", truncate=3.5)

    out = []
    for x, y in zip(ref, est, strict=True):
        x = np.where(valid, x, 0.0)
        y = np.where(valid, y, 0.0)
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        out.append(smap[valid].mean())
    return np.array(out)


def sam(reference: np.ndarray, estimate: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Mean spectral angle (degrees) between the band vectors of each valid pixel."""
    ref, est = np.asarray(reference, np.float64), np.asarray(estimate, np.float64)
    valid = _valid(ref, mask)
    a, b = ref[:, valid], est[:, valid]
    dot = (a * b).sum(axis=0)
    norms = np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)
    ok = norms > 0
    cos = np.clip(dot[ok] / norms[ok], -1.0, 1.0)
    return float(np.degrees(np.arccos(cos)).mean())


def ergas(
    reference: np.ndarray, estimate: np.ndarray, *, scale: int, mask: np.ndarray | None = None
) -> float:
    """ERGAS (Wald 2000): ``100 / scale * sqrt(mean_b(RMSE_b**2 / mean_b**2))``.

    ``scale`` is the ratio of low to high resolution pixel sizes (4 for 10 m -> 2.5 m);
    lower is better, 0 is identical.
    """
    ref, est = np.asarray(reference, np.float64), np.asarray(estimate, np.float64)
    valid = _valid(ref, mask)
    rmse2 = ((ref - est)[:, valid] ** 2).mean(axis=1)
    means2 = ref[:, valid].mean(axis=1) ** 2
    return float(100 / scale * np.sqrt((rmse2 / means2).mean()))
