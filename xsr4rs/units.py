"""Units at the edge: input values into the model's units, model output back (pure numpy).

An *encoding* says how stored values relate to physical ones, the CF way:
``physical = stored * scale_factor + add_offset``, per band. A model that declares its
own (the shipped Sentinel-2 model: reflectance x 10000, i.e. ``scale_factor=1e-4``,
``add_offset=0``) receives the input converted into its units, and its output is
converted back into the input's units, so a round trip keeps the user's conventions.

Where the input's encoding comes from, first match wins:

1. ``scale_factor=`` / ``add_offset=`` given to `xsr4rs.upscale` (CLI ``--scale-factor``,
   ``--add-offset``);
2. CF attributes of undecoded data (``da.attrs["scale_factor"]``, as rioxarray opens a file
   with GDAL scale/offset);
3. the encoding of decoded data (``da.encoding``, as ``open_rasterio(mask_and_scale=True)``
   or ``xr.open_dataset`` leave it): the values are physical;
4. a STAC ``raster:bands`` coordinate (stackstac): integer data holds raw counts scaled by
   its ``scale``/``offset``; float data was already rescaled by stackstac (its default)
   and is physical.

Identity scalings (1 and 0) as rioxarray writes them for files without scale/offset say
nothing and are ignored: such data is taken to be in the model's units already.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xsr4rs.exceptions import InputError, ParameterError


@dataclass(frozen=True)
class Encoding:
    """``physical = stored * scale + offset`` per band, and where that was read."""

    scale: tuple[float, ...]
    offset: tuple[float, ...]
    source: str

    @property
    def identity(self) -> bool:
        return all(s == 1 for s in self.scale) and all(o == 0 for o in self.offset)


def _per_band(value: Any, n: int, what: str) -> tuple[float, ...]:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.shape != (n,) or not np.isfinite(arr).all():
        raise ParameterError(
            f"{what} must be one finite number or {n} (one per band), got {value!r}"
        )
    return tuple(float(v) for v in arr)


def explicit(scale_factor: Any, add_offset: Any, n: int) -> Encoding | None:
    """The encoding given by the user, or ``None``."""
    if scale_factor is None and add_offset is None:
        return None
    scale = _per_band(1.0 if scale_factor is None else scale_factor, n, "scale_factor")
    if any(s == 0 for s in scale):
        raise ParameterError("scale_factor must not be 0")
    return Encoding(
        scale, _per_band(0.0 if add_offset is None else add_offset, n, "add_offset"), "given"
    )


def from_cf(mapping: Mapping[str, Any], n: int, source: str) -> Encoding | None:
    """``scale_factor``/``add_offset`` of CF attributes or an encoding, unless identity."""
    if "scale_factor" not in mapping and "add_offset" not in mapping:
        return None
    enc = Encoding(
        _per_band(mapping.get("scale_factor", 1.0), n, "scale_factor"),
        _per_band(mapping.get("add_offset", 0.0), n, "add_offset"),
        source,
    )
    return None if enc.identity else enc


def from_stac(raster_bands: Sequence[Any], integer: bool) -> Encoding | None:
    """The encoding a stackstac cube's ``raster:bands`` coordinate implies (per band)."""
    scales, offsets = [], []
    for rb in raster_bands:
        rb = rb if isinstance(rb, Mapping) else {}
        scales.append(float(rb.get("scale", 1.0)))
        offsets.append(float(rb.get("offset", 0.0)))
    if not integer:  # stackstac's rescale=True applied them: the values are physical
        return Encoding((1.0,) * len(scales), (0.0,) * len(scales), "STAC raster:bands (applied)")
    enc = Encoding(tuple(scales), tuple(offsets), "STAC raster:bands")
    return None if enc.identity else enc


@dataclass(frozen=True)
class Conversion:
    """``model = a * input + b`` per input band; ``c, d`` take model output back:
    ``output = c * model + d`` per output band."""

    a: tuple[float, ...]
    b: tuple[float, ...]
    c: tuple[float, ...]
    d: tuple[float, ...]

    @property
    def identity(self) -> bool:
        return all(v == 1 for v in self.a + self.c) and all(v == 0 for v in self.b + self.d)


def conversion(
    source: Encoding | None, model: tuple[float, float] | None, n_out: int
) -> Conversion | None:
    """How to take input of encoding ``source`` into a model whose values are
    ``physical = value * model[0] + model[1]``, and its output back; ``None`` when
    either side says nothing (values pass unchanged)."""
    if source is None or model is None:
        return None
    ms, mo = model
    s, o = np.asarray(source.scale), np.asarray(source.offset)
    a, b = s / ms, (o - mo) / ms
    if n_out == len(a):
        c, d = 1 / a, -b / a
    elif np.all(a == a[0]) and np.all(b == b[0]):
        c, d = np.full(n_out, 1 / a[0]), np.full(n_out, -b[0] / a[0])
    else:
        raise InputError(
            f"the input's bands have different scalings ({source.source}) but the model "
            f"returns {n_out} bands for {len(a)}: its output cannot be taken back to the "
            "input's units; convert the input to one scaling first"
        )
    conv = Conversion(*(tuple(float(v) for v in x) for x in (a, b, c, d)))
    return None if conv.identity else conv


def apply(values: np.ndarray, scale: Sequence[float], offset: Sequence[float]) -> np.ndarray:
    """``scale * values + offset`` per band of a ``(..., band, y, x)`` float array, in place."""
    s = np.asarray(scale, dtype=np.float32)[:, None, None]
    o = np.asarray(offset, dtype=np.float32)[:, None, None]
    values *= s
    values += o
    return values


def cf_encoding_for_output(enc: Mapping[str, Any] | None, dtype: np.dtype) -> dict[str, Any] | None:
    """The CF encoding to write a decoded (float, physical) output with, as it was read."""
    if not enc or "dtype" not in enc:
        return None
    keep = {k: enc[k] for k in ("dtype", "scale_factor", "add_offset", "_FillValue") if k in enc}
    if np.dtype(keep["dtype"]) == np.dtype(dtype):
        return None
    return keep
