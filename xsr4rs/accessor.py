"""The ``sr`` accessor on DataArray and Dataset: one-line forwards to module functions."""

from __future__ import annotations

import functools
from typing import Any

import xarray as xr

from xsr4rs import upscale as _upscale_module


class _SRAccessor:
    def __init__(self, obj: xr.DataArray | xr.Dataset) -> None:
        self._obj = obj

    @functools.wraps(_upscale_module.upscale)
    def upscale(self, model: Any, **kwargs: Any) -> Any:
        return _upscale_module.upscale(self._obj, model, **kwargs)


@xr.register_dataarray_accessor("sr")
class SRDataArrayAccessor(_SRAccessor):
    """``da.sr.upscale(model, ...)`` is ``xsr4rs.upscale(da, model, ...)``."""


@xr.register_dataset_accessor("sr")
class SRDatasetAccessor(_SRAccessor):
    """``ds.sr.upscale(model, ...)`` upscales each raster variable of the Dataset."""
