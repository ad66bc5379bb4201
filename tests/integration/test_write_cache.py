"""GDAL's block cache while writing holds two rows of the input's tiles: it grows for wide,
many-band inputs (a tile decoded again costs a JPEG 2000 input dearly) and stays at its
least bound for small ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

import xsr4rs
from xsr4rs.io import cache, open_raster, write


def _wide(s2_paths: list[str], path: Path, bands: int, width: int, block: int) -> Path:
    """A tiled GeoTIFF ``width`` pixels wide of ``bands`` bands (the real scene's bands in
    turn), only its first tile written (sparse): the geometry of a wide input, cheaply."""
    scene = open_raster(s2_paths).isel(y=slice(0, block), x=slice(0, block)).values
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": 2 * block,
        "count": bands,
        "dtype": "uint16",
        "crs": "EPSG:32618",
        "transform": rasterio.transform.from_origin(300000, 4300020, 10, 10),
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "sparse_ok": True,
        "compress": "zstd",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(scene[np.arange(bands) % 4], window=Window(0, 0, block, block))
    return path


def _bound_while_writing(gdal_lib, da, out: Path) -> int:
    """GDAL's cache bound, as seen by a block computed during `write`."""
    seen = []

    def record(block):
        seen.append(gdal_lib.GDALGetCacheMax64())
        return block

    write(da.map_blocks(record, template=da), out)
    assert seen
    return max(seen)


def test_real_band_files_each_counted_once(s2_paths):
    up = xsr4rs.upscale(open_raster(s2_paths), "bicubic")
    expected = 0
    for p in s2_paths:
        with rasterio.open(p) as src:
            expected += cache.tile_rows_bytes(src.width, 1, 2, src.block_shapes[0][0])
    assert cache.input_tile_rows([up]) == expected > 0
    assert cache.input_tile_rows([up, up.isel(band=[0])]) == expected  # shared files once


def test_wide_many_band_input_raises_the_bound(s2_paths, tmp_path, gdal_lib, monkeypatch):
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    src = _wide(s2_paths, tmp_path / "wide.tif", bands=8, width=10980, block=1024)
    lr = open_raster(src, chunks=256).isel(y=slice(0, 64), x=slice(0, 64))
    up = xsr4rs.upscale(lr, "bicubic")
    need = cache.tile_rows_bytes(10980, 8, 2, 1024)
    assert cache.input_tile_rows([up]) == need
    expected = cache.cache_bytes(need)
    assert expected > cache.MIN_BYTES
    assert _bound_while_writing(gdal_lib, up, tmp_path / "out.tif") == expected


def test_small_input_keeps_the_least_bound(s2_paths, tmp_path, gdal_lib, monkeypatch):
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    lr = open_raster(s2_paths).isel(y=slice(0, 64), x=slice(0, 64))
    up = xsr4rs.upscale(lr, "bicubic")
    assert _bound_while_writing(gdal_lib, up, tmp_path / "out.tif") == cache.MIN_BYTES
