"""The same upscale on a dask distributed LocalCluster of processes."""

import numpy as np
import pytest
import rasterio

import xsr4rs
from xsr4rs.cli import main
from xsr4rs.io import open_raster, write


@pytest.fixture(scope="module")
def crop(s2_paths, tmp_path_factory):
    da = open_raster(s2_paths, chunks=128).isel(x=slice(500, 800), y=slice(600, 850))
    path = tmp_path_factory.mktemp("crop") / "crop.tif"
    da.rio.to_raster(path)
    return path


def test_local_cluster_output_identical(crop, tmp_path, capsys):
    assert (
        main(
            [
                "upscale",
                str(crop),
                str(tmp_path / "threads.tif"),
                "--model",
                "bicubic",
                "--chunk",
                "96",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "upscale",
                str(crop),
                str(tmp_path / "dist.tif"),
                "--model",
                "bicubic",
                "--chunk",
                "96",
                "--workers",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "dashboard" in capsys.readouterr().err
    with rasterio.open(tmp_path / "threads.tif") as a, rasterio.open(tmp_path / "dist.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())
        assert a.profile == b.profile


def test_client_zarr_and_models_loaded_on_workers(crop, test_model, tmp_path):
    from distributed import Client, LocalCluster

    da = open_raster(crop, bands=[1, 2, 3], chunks=64)
    expected = xsr4rs.upscale(da, test_model, dtype="float32").values
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        out = xsr4rs.upscale(da, test_model, dtype="float32")
        write(out, tmp_path / "out.zarr")
        loaded = client.run(lambda: __import__("xsr4rs.model.handle").model.handle.loaded_models())
    assert sum(paths.count(test_model.path) for paths in loaded.values()) >= 1
    assert all(paths.count(test_model.path) <= 1 for paths in loaded.values())
    import xarray as xr

    got = xr.open_zarr(tmp_path / "out.zarr")["data"].values
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-3)
