"""No-data masks, fills and the cast of model output to the output type (pure numpy)."""

from __future__ import annotations

import numpy as np

from xsr4rs.exceptions import ParameterError


def is_nan(value: float | None) -> bool:
    """True for a float NaN (a no-data value that never compares equal)."""
    return value is not None and isinstance(value, float | np.floating) and np.isnan(value)


def invalid_mask(block: np.ndarray, nodata: float | None) -> np.ndarray:
    """(..., y, x) mask of pixels that are no-data in any band of a (..., band, y, x) block.

    NaN is always no-data in float data, whatever ``nodata`` says.
    """
    mask = np.zeros(block.shape[:-3] + block.shape[-2:], dtype=bool)
    if np.issubdtype(block.dtype, np.floating):
        mask |= np.isnan(block).any(axis=-3)
    if nodata is not None and not is_nan(nodata):
        mask |= (block == nodata).any(axis=-3)
    return mask


def fill_invalid(block: np.ndarray, mask: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Float32 copy of a (..., band, y, x) ``block`` with masked pixels set to the
    per-band ``fill`` values.

    The fill depends on the pixel alone, never on its neighbourhood, so valid output
    cannot change with the chunking.
    """
    out = block.astype(np.float32, copy=True)
    return set_masked(out, mask, np.asarray(fill, dtype=np.float32))


def set_masked(values: np.ndarray, mask: np.ndarray, fill: np.ndarray | float) -> np.ndarray:
    """Set (in place) the pixels of a (..., band, y, x) array where the (..., y, x)
    ``mask`` is true to ``fill`` (one value, or one per band)."""
    if mask.any():
        fill = np.asarray(fill, dtype=values.dtype)
        fill = fill[:, None, None] if fill.ndim == 1 else fill
        np.copyto(values, np.broadcast_to(fill, values.shape), where=mask[..., None, :, :])
    return values


def check_nodata(dtype: np.dtype, nodata: float | None, what: str = "output") -> float | None:
    """Validate that ``nodata`` can be stored in ``dtype``; return it as a Python scalar."""
    if nodata is None:
        return None
    if np.issubdtype(dtype, np.integer):
        if is_nan(nodata):
            raise ParameterError(
                f"no-data is NaN but the {what} type is {dtype}, which cannot store NaN: "
                "pass dtype='float32' or a numeric nodata= value"
            )
        info = np.iinfo(dtype)
        if not (info.min <= nodata <= info.max) or int(nodata) != nodata:
            raise ParameterError(
                f"no-data value {nodata} does not fit the {what} type {dtype} "
                f"({info.min}..{info.max}): pass another nodata= or dtype="
            )
        return int(nodata)
    value = float(nodata)
    if np.issubdtype(dtype, np.floating) and np.isfinite(value):
        info = np.finfo(dtype)
        if abs(value) > float(info.max):  # the cast would make it infinity
            raise ParameterError(
                f"no-data value {nodata} does not fit the {what} type {dtype} (at most "
                f"{float(info.max):.6g} in magnitude; it would become infinity): pass "
                "another nodata= or dtype="
            )
    return value


def to_output_dtype(
    values: np.ndarray,
    dtype: np.dtype,
    nodata: float | None,
    mask: np.ndarray | None,
    *,
    overwrite: bool = False,
) -> np.ndarray:
    """Cast float (..., band, y, x) model output to ``dtype``; no-data where ``mask`` is set.

    Integers are rounded and clipped to the type's range. A valid pixel that would equal
    the no-data value is nudged by one step (one integer unit, or one float ulp) so that
    valid pixels never become no-data. With ``overwrite`` the float ``values`` are used
    as scratch space (rounded and clipped in place): one pass less over the block, and
    no temporary of its size.
    """
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        lo, hi = info.min, info.max
        if nodata is not None and nodata == lo:  # the usual case (0 in unsigned types):
            lo, nodata_left = lo + 1, False  # the clip does the nudge
        elif nodata is not None and nodata == hi:
            hi, nodata_left = hi - 1, False
        else:
            nodata_left = nodata is not None
        # float32 holds every integer of up to 24 bits exactly; wider types need float64
        wide = np.dtype(np.float64 if info.bits > 16 else np.float32)
        work = values if overwrite and values.dtype == wide else values.astype(wide)
        np.rint(work, out=work)
        np.clip(work, lo, hi, out=work)
        out = work.astype(dtype)
        if nodata_left:
            out[out == nodata] = nodata + 1
    else:
        out = values.astype(dtype, copy=False)
        if nodata is not None and not is_nan(nodata):
            hit = out == nodata
            if hit.any():
                out[hit] = np.nextafter(
                    out[hit], np.inf if nodata < np.finfo(dtype).max else -np.inf
                )
    if mask is not None and nodata is not None:
        set_masked(out, mask, nodata)
    return out
