"""Scores of an evaluation: what is scored, one row of measures per method, the report.

Numpy only. `xsr4rs.evaluate` runs the models; this module turns their outputs into
numbers with the conventions of `xsr4rs.metrics` and `xsr4rs.degrade`, and presents them
as a JSON-ready dict and a text table.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xsr4rs.degrade import degrade
from xsr4rs.metrics import block_mean, ergas, phase_shift, psnr, sam, ssim

#: Reach (pixels) of the Gaussian window of `xsr4rs.metrics.ssim` (sigma 1.5 truncated at
#: 3.5 sigma): a pixel that close to no-data would see the zeros no-data is replaced by,
#: so the border is never smaller.
SSIM_RADIUS = 5
#: Smallest LR extent (pixels per side) on which a sub-pixel shift is measured.
MIN_SHIFT_SIZE = 16
#: Width (pixels) of the taper of `measure_shift` around no-data. Measured on a shifted
#: texture with a masked blob (0.4 % to 50 % of the box): a hard-edged mean fill biased the
#: shift towards zero by up to 0.14 pixel, an 8-pixel raised cosine by at most 0.02.
SHIFT_TAPER = 8

Shift = tuple[float, float]


def interior(valid: np.ndarray, border: int) -> np.ndarray:
    """Pixels of the (y, x) mask ``valid`` at least ``border`` pixels inside it.

    A pixel is kept when the ``(2 border + 1)``-pixel square around it lies inside the
    image and holds only valid pixels: the ``border`` outer rows and columns go, and so
    does a ring of ``border`` pixels around every invalid pixel.
    """
    from scipy import ndimage

    valid = np.asarray(valid, dtype=bool)
    if border <= 0:
        return valid.copy()
    kept = ndimage.minimum_filter(
        valid.view(np.uint8), size=2 * border + 1, mode="constant", cval=0
    )
    return kept.astype(bool)


def lr_interior(mask: np.ndarray, scale: int) -> np.ndarray:
    """LR pixels whose ``scale x scale`` HR pixels are all in ``mask``."""
    return block_mean(np.asarray(mask, dtype=np.float64), scale) == 1.0


def measure_shift(reference: np.ndarray, moved: np.ndarray, mask: np.ndarray) -> Shift | None:
    """`phase_shift` of two 2-D images over the bounding box of ``mask``.

    Inside the box, both images (less the mean of their masked pixels) are weighted by a
    raised-cosine taper rising from 0 on the unmasked pixels to 1 at ``SHIFT_TAPER``
    pixels inside the mask: a hard edge around no-data, the same in both images, would
    pull the estimate towards zero. ``None`` when the box is smaller than
    ``MIN_SHIFT_SIZE`` on a side.
    """
    from scipy import ndimage

    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size < MIN_SHIFT_SIZE or cols.size < MIN_SHIFT_SIZE:
        return None
    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    m = mask[box]
    weight = np.ones(m.shape)
    if not m.all():
        ramp = np.clip(ndimage.distance_transform_edt(m) / SHIFT_TAPER, 0.0, 1.0)
        weight = 0.5 - 0.5 * np.cos(np.pi * ramp)
    a, b = reference[box], moved[box]
    a = np.where(m, a - a[m].mean(), 0.0) * weight
    b = np.where(m, b - b[m].mean(), 0.0) * weight
    return phase_shift(a, b)


@dataclass(frozen=True)
class MethodScores:
    """The measures of one method (the evaluated model or a baseline), per band.

    Tuples hold one value per band; ``shift`` and ``hr_shift`` hold one (dy, dx) per
    band in LR pixels, or ``None`` where the scored area is too small to measure one.
    """

    method: str
    role: str
    psnr: tuple[float, ...]
    ssim: tuple[float, ...]
    sam: float | None
    ergas: float
    consistency_psnr: tuple[float, ...]
    consistency_mae: tuple[float, ...]
    shift: tuple[Shift | None, ...]
    hr_shift: tuple[Shift | None, ...]

    @property
    def psnr_mean(self) -> float:
        """Mean over bands of the per-band PSNR (dB)."""
        return float(np.mean(self.psnr))

    @property
    def ssim_mean(self) -> float:
        return float(np.mean(self.ssim))

    @property
    def consistency_psnr_mean(self) -> float:
        return float(np.mean(self.consistency_psnr))

    @property
    def consistency_mae_mean(self) -> float:
        return float(np.mean(self.consistency_mae))

    @property
    def shift_mean(self) -> Shift | None:
        """Mean over bands of the (dy, dx) shift of the degraded output on the LR."""
        return _mean_shift(self.shift)

    @property
    def hr_shift_mean(self) -> Shift | None:
        """Mean over bands of the (dy, dx) shift of the output on the HR, in LR pixels."""
        return _mean_shift(self.hr_shift)

    def to_dict(self, bands: Sequence[str]) -> dict[str, Any]:
        mean = {
            "psnr": self.psnr_mean,
            "ssim": self.ssim_mean,
            "sam": self.sam,
            "ergas": self.ergas,
            "consistency_psnr": self.consistency_psnr_mean,
            "consistency_mae": self.consistency_mae_mean,
            "shift": self.shift_mean,
            "hr_shift": self.hr_shift_mean,
        }
        per_band = [
            {
                "band": name,
                "psnr": self.psnr[i],
                "ssim": self.ssim[i],
                "consistency_psnr": self.consistency_psnr[i],
                "consistency_mae": self.consistency_mae[i],
                "shift": self.shift[i],
                "hr_shift": self.hr_shift[i],
            }
            for i, name in enumerate(bands)
        ]
        return _jsonable(
            {"method": self.method, "role": self.role, "mean": mean, "bands": per_band}
        )


def _mean_shift(shifts: Sequence[Shift | None]) -> Shift | None:
    known = [s for s in shifts if s is not None]
    if not known:
        return None
    dy, dx = np.mean(known, axis=0)
    return float(dy), float(dx)


def _jsonable(value: Any) -> Any:
    """Plain lists, dicts and floats; infinite or NaN numbers become ``None``."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def score_method(
    method: str,
    role: str,
    hr: np.ndarray,
    output: np.ndarray,
    lr: np.ndarray,
    *,
    scale: int,
    data_range: float,
    mask: np.ndarray,
    hr_degraded: np.ndarray | None = None,
) -> MethodScores:
    """All measures of one output against the HR reference and the LR input.

    ``hr`` and ``output`` are (band, y, x) on the HR grid, ``lr`` is (band, y / scale,
    x / scale); no-data is NaN. ``mask`` (y, x) selects the scored HR pixels. The
    consistency and shift measures compare ``degrade(output, scale)`` with ``lr`` on the
    LR pixels lying entirely in ``mask``; ``hr_degraded`` (``degrade(hr, scale)``, passed
    when several methods are scored) is the reference of ``hr_shift``.
    """
    hr_degraded = degrade(hr, scale) if hr_degraded is None else hr_degraded
    down = degrade(output, scale)
    lr_mask = lr_interior(mask, scale)
    lr_mask &= np.isfinite(down).all(axis=0) & np.isfinite(lr).all(axis=0)
    lr_mask &= np.isfinite(hr_degraded).all(axis=0)
    n_bands = hr.shape[0]
    if lr_mask.any():
        cons_psnr = psnr(lr, down, data_range=data_range, mask=lr_mask)
        cons_mae = np.abs(lr - down)[:, lr_mask].mean(axis=1)
        shift = tuple(measure_shift(lr[b], down[b], lr_mask) for b in range(n_bands))
        hr_shift = tuple(measure_shift(hr_degraded[b], down[b], lr_mask) for b in range(n_bands))
    else:
        cons_psnr = cons_mae = np.full(n_bands, np.nan)
        shift = hr_shift = (None,) * n_bands
    return MethodScores(
        method=method,
        role=role,
        psnr=tuple(float(v) for v in psnr(hr, output, data_range=data_range, mask=mask)),
        ssim=tuple(float(v) for v in ssim(hr, output, data_range=data_range, mask=mask)),
        sam=sam(hr, output, mask=mask) if n_bands >= 2 else None,
        ergas=ergas(hr, output, scale=scale, mask=mask),
        consistency_psnr=tuple(float(v) for v in cons_psnr),
        consistency_mae=tuple(float(v) for v in cons_mae),
        shift=shift,
        hr_shift=hr_shift,
    )


@dataclass(frozen=True)
class EvaluationReport:
    """The result of `xsr4rs.evaluate`: one `MethodScores` row per method, model first.

    Attributes
    ----------
    model
        Name of the evaluated model.
    mode
        ``"wald"`` (LR made from the HR by `xsr4rs.degrade.degrade`) or ``"paired"``.
    scale
        Upscaling factor.
    data_range
        Peak value of every PSNR and of the SSIM constants.
    data_range_from_hr
        True when ``data_range`` is the HR's max - min over the scored pixels.
    border
        HR pixels left out at the image edges and around no-data.
    bands
        Band names, in order.
    hr_shape
        (height, width) of the HR grid compared.
    scored_pixels
        Number of HR pixels (y, x positions) scored.
    rows
        The model's scores, then the baselines'.
    """

    model: str
    mode: str
    scale: int
    data_range: float
    data_range_from_hr: bool
    border: int
    bands: tuple[str, ...]
    hr_shape: tuple[int, int]
    scored_pixels: int
    rows: tuple[MethodScores, ...] = field(default_factory=tuple)

    def row(self, method: str) -> MethodScores:
        """The row of ``method``: its name, or a built-in alias (``"bicubic"``)."""
        for name in (method, f"{method}-x{self.scale}"):
            for r in self.rows:
                if r.method == name:
                    return r
        raise KeyError(f"no method {method!r} in the report: {[r.method for r in self.rows]}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; infinite values (identical images) become ``None``."""
        return _jsonable(
            {
                "model": self.model,
                "mode": self.mode,
                "scale": self.scale,
                "data_range": self.data_range,
                "data_range_from_hr": self.data_range_from_hr,
                "border": self.border,
                "bands": list(self.bands),
                "hr_shape": list(self.hr_shape),
                "scored_pixels": self.scored_pixels,
                "methods": [r.to_dict(self.bands) for r in self.rows],
            }
        )

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write `to_dict` as indented JSON to ``path`` (replaced if it exists, only by
        a complete file)."""
        from xsr4rs.io.atomic import write_atomically

        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

        def write(tmp: Any) -> None:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)

        write_atomically(path, write)

    def table(self) -> str:
        """A plain-text table: mean measures per method, then PSNR and shifts per band."""
        h, w = self.hr_shape
        c = max([16] + [len(r.method) + 2 for r in self.rows])
        source = "HR max - min" if self.data_range_from_hr else "given"
        lines = [
            f"{self.mode} x{self.scale} evaluation of {self.model}: {w}x{h} HR pixels, "
            f"{len(self.bands)} band(s), border {self.border} px, {self.scored_pixels} "
            f"pixels scored, data range {self.data_range:g} ({source})",
            "",
            f"{'method':<{c}}{'PSNR':>8}{'SSIM':>8}{'SAM°':>7}{'ERGAS':>8}"
            f"{'cons.PSNR':>11}{'shift y':>9}{'shift x':>9}",
        ]
        for r in self.rows:
            dy, dx = r.shift_mean or (math.nan, math.nan)
            lines.append(
                f"{r.method:<{c}}{_num(r.psnr_mean, '.2f', 8)}{_num(r.ssim_mean, '.4f', 8)}"
                f"{_num(r.sam, '.3f', 7)}{_num(r.ergas, '.3f', 8)}"
                f"{_num(r.consistency_psnr_mean, '.2f', 11)}"
                f"{_num(dy, '+.3f', 9)}{_num(dx, '+.3f', 9)}"
            )
        width = max([10] + [len(b) + 2 for b in self.bands])
        lines += ["", f"{'PSNR (dB)':<{c}}" + "".join(f"{b:>{width}}" for b in self.bands)]
        for r in self.rows:
            lines.append(f"{r.method:<{c}}" + "".join(_num(v, ".2f", width) for v in r.psnr))
        lines += ["", f"{'shift on HR':<{c}}{'dy':>9}{'dx':>9}   (output vs HR, LR pixels)"]
        for r in self.rows:
            dy, dx = r.hr_shift_mean or (math.nan, math.nan)
            lines.append(f"{r.method:<{c}}{_num(dy, '+.3f', 9)}{_num(dx, '+.3f', 9)}")
        return "\n".join(lines)


def _num(value: float | None, fmt: str, width: int) -> str:
    if value is None or math.isnan(value):
        return f"{'-':>{width}}"
    sign, fmt = ("+", fmt[1:]) if fmt.startswith("+") else ("", fmt)
    return f"{value:>{sign}{width}{fmt}}"
