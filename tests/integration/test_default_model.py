"""The Sentinel-2 RGBN x4 model shipped inside the package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xsr4rs
from xsr4rs.exceptions import InputError
from xsr4rs.io import open_raster


def test_default_model_loads_from_the_installed_package():
    model = xsr4rs.load_model("s2-rgbn-x4")
    assert Path(model.path).parent == Path(xsr4rs.__file__).parent / "models"
    meta = model.metadata
    assert (meta.scale, meta.halo) == (4, 15)
    assert meta.input_bands == ("B04", "B03", "B02", "B08")
    assert "reflectance x 10000" in meta.units
    training = meta.provenance["training"]
    assert training["mode"] == "wald" and training["arch"] == "light"
    assert not any("sharkbay" in d.lower() or "brandenburg" in d.lower() for d in training["data"])
    size = sum(f.stat().st_size for f in Path(model.path).rglob("*") if f.is_file())
    assert size < 5 * 2**20


@pytest.fixture(scope="module")
def crop(s2_paths):
    return open_raster(s2_paths).isel(x=slice(600, 728), y=slice(700, 828))


def test_three_bands_are_rejected(crop):
    with pytest.raises(InputError) as err:
        xsr4rs.check_input(crop.isel(band=[0, 1, 2]), "s2-rgbn-x4")
    message = str(err.value)
    assert "expects 4 bands (B04, B03, B02, B08) but the input has 3" in message


def test_reflectance_0_to_1_is_rejected(crop):
    scaled = (crop.astype("float32") / 10000).compute()
    with pytest.raises(InputError, match=r"multiply 0\.\.1 reflectance by 10000"):
        xsr4rs.check_input(scaled, "s2-rgbn-x4")


def test_default_model_output_stays_consistent_with_its_input(crop):
    """Averaged back over 4 x 4 blocks, the output is close to the input it came from."""
    out = xsr4rs.upscale(crop, "s2-rgbn-x4").values.astype(float)
    blocks = out.reshape(4, 128, 4, 128, 4).mean(axis=(2, 4))
    rel = np.abs(blocks - crop.values) / crop.values
    assert np.median(rel) < 0.02


def test_the_range_check_leaves_no_input_in_gdals_cache(s2_paths, gdal_lib, monkeypatch):
    """`check_input` reads a strided sample of the whole input. With GDAL's default cache
    (5 % of the memory) its blocks stayed cached through the whole run, since the input
    stays open: 1.0 GiB for a full Sentinel-2 tile. Read here from GDAL itself."""
    import rasterio

    from xsr4rs.io.read import SAMPLE_CACHE_BYTES

    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    scene = open_raster(s2_paths)  # 30 MB of blocks, open as during a run
    with rasterio.Env(GDAL_CACHEMAX=512 * 2**20):  # a cache that could hold them all
        xsr4rs.check_input(scene, "s2-rgbn-x4")
        used = gdal_lib.GDALGetCacheUsed64()
    assert 0 < used <= SAMPLE_CACHE_BYTES + 2**20
