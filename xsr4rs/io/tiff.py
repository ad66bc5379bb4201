"""A GeoTIFF kept open in write mode while dask streams blocks into it.

rioxarray's dask writer reopens the file in update mode for every chunk. GDAL applies
compression levels (``ZSTD_LEVEL``, ``ZLEVEL``...) only to a file it creates: in update
mode it compresses at the codec's default (zstd 9), which made writing the x4 sample
scene five times slower than the level asked for. Here rioxarray still decides what the
file says (data type, no-data, CRS, transform or GCPs, tags, band names, units, scales and
offsets, CF encoding): it writes a sparse template, whose profile and metadata go into
the real file, opened once in write mode; blocks are written into that open file, one at
a time. For one process only (threads): a distributed cluster writes through rioxarray.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xsr4rs.io import gdal


class OpenGeoTIFF:
    """A dask ``store`` target: ``target[band, rows, cols] = block`` writes a window."""

    def __init__(self, dataset: Any) -> None:
        from xsr4rs._malloc import PeriodicTrim

        self.dataset = dataset
        self.lock = threading.Lock()
        # GDAL's per-tile buffers fragment glibc's heaps: return the holes now and then
        self.trim = PeriodicTrim(1.0)

    def __setitem__(self, key: tuple[slice, ...], block: np.ndarray) -> None:
        from rasterio.windows import Window

        if len(key) == 3:
            bands, rows, cols = key
            indexes: Any = list(range(bands.start + 1, bands.stop + 1, bands.step or 1))
        else:
            (rows, cols), indexes = key, 1
        window = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        with self.lock:  # one GDAL dataset: one writer at a time
            self.dataset.write(block, window=window, indexes=indexes)
        self.trim()

    def close(self) -> None:
        """Flush and close the file (GDAL writes what its cache still holds); raise
        `OSError` when libtiff reports a failed write meanwhile (a full disk, a file-size
        limit), which it prints instead of raising."""
        with self.lock:
            if self.dataset.closed:
                return
            with gdal.c_stderr_lines() as lines:
                self.dataset.close()
        failed = [ln for ln in lines if gdal.io_error(ln)]
        if failed:
            raise OSError(f"closing {self.dataset.name} failed: {failed[0]}")


#: Blocks computed together at most (whole rows of blocks): dask may read a computation's
#: inputs well ahead of the model, so one computation over a whole large image held
#: blocks in proportion to the image (benchmarks/memory.py); strips bound that.
STRIP_BLOCKS = 32


def strips(row_chunks: tuple[int, ...], per_row: int) -> list[slice]:
    """Rows of the image in strips of whole block rows, each of about `STRIP_BLOCKS`
    blocks (at least one row).

    >>> strips((2, 2, 2, 1), 16)
    [slice(0, 4, None), slice(4, 7, None)]
    """
    rows = max(1, STRIP_BLOCKS // max(per_row, 1))
    edges = np.cumsum((0, *row_chunks))
    return [
        slice(int(edges[i]), int(edges[min(i + rows, len(row_chunks))]))
        for i in range(0, len(row_chunks), rows)
    ]


def open_geotiff(
    da: xr.DataArray, path: Path, options: dict[str, Any]
) -> tuple[list[Any], OpenGeoTIFF]:
    """The dask tasks writing ``da`` into a new GeoTIFF at ``path`` (creation ``options``,
    lower-case keys as rasterio takes them), one per strip of `strips`, to compute in
    order, and the open file to close afterwards."""
    import dask.array
    import rasterio
    from xarray.conventions import encode_cf_variable

    if da.chunks is None:  # numpy data: lazily, or rioxarray writes it into the template
        da = da.chunk()
    template = path.with_name(path.name + ".template.tif")
    try:
        # rioxarray writes the metadata; SPARSE_OK: no tile of the template is written
        da.rio.to_raster(
            template,
            driver="GTiff",
            compute=False,
            lock=True,
            sparse_ok=True,
            recalc_transform=False,  # the transform written, not one from the coordinates
        )
        with rasterio.open(template) as src:
            threads = gdal.num_threads()
            profile = {**src.profile, **options, "tiled": True, "num_threads": threads}
            gcps, gcp_crs = src.gcps
            meta = {
                "tags": src.tags(),
                "band_tags": [src.tags(i) for i in src.indexes],
                "descriptions": src.descriptions,
                "units": src.units,
                "scales": src.scales,
                "offsets": src.offsets,
            }
    finally:
        template.unlink(missing_ok=True)
    if gcps:  # georeferenced by control points only: no transform
        profile.pop("transform", None)
        profile.update(gcps=gcps, crs=gcp_crs)
    dst = rasterio.open(path, "w", **profile)
    try:
        dst.update_tags(**meta["tags"])
        for i, tags in zip(dst.indexes, meta["band_tags"], strict=True):
            dst.update_tags(i, **tags)
        for i, (name, unit) in enumerate(zip(meta["descriptions"], meta["units"], strict=True)):
            if name:
                dst.set_band_description(i + 1, name)
            if unit:
                dst.set_band_unit(i + 1, unit)
        dst.scales, dst.offsets = meta["scales"], meta["offsets"]
        data = encode_cf_variable(da.variable).data.astype(np.dtype(profile["dtype"]))
        target = OpenGeoTIFF(dst)
        stores = [
            dask.array.store(
                data[..., rows, :],
                target,
                regions=(slice(None),) * (data.ndim - 2) + (rows, slice(None)),
                lock=False,
                compute=False,
            )
            for rows in strips(data.chunks[-2], len(data.chunks[-1]))
        ]
        return stores, target
    except BaseException:
        dst.close()
        raise
