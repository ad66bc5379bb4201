"""The same upscale on a dask distributed LocalCluster of processes."""

import numpy as np
import pytest
import rasterio

import xsr4rs
from xsr4rs.cli import main
from xsr4rs.cluster import local_cluster
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
    import importlib.util

    err = capsys.readouterr().err
    assert all(ln.startswith("xsr4rs: ") for ln in err.strip().splitlines()), err  # no INFO
    assert ("dashboard" in err) == (importlib.util.find_spec("bokeh") is not None)
    with rasterio.open(tmp_path / "threads.tif") as a, rasterio.open(tmp_path / "dist.tif") as b:
        assert_equal_within_rounding(b.read(), a.read())
        assert a.profile == b.profile


def test_client_zarr_and_models_loaded_on_workers(crop, test_model, tmp_path):
    da = open_raster(crop, bands=[1, 2, 3], chunks=64)
    expected = xsr4rs.upscale(da, test_model, dtype="float32").values
    with local_cluster(2) as client:
        out = xsr4rs.upscale(da, test_model, dtype="float32")
        write(out, tmp_path / "out.zarr")
        loaded = client.run(lambda: __import__("xsr4rs.model.handle").model.handle.loaded_models())
    assert sum(paths.count(test_model.path) for paths in loaded.values()) >= 1
    assert all(paths.count(test_model.path) <= 1 for paths in loaded.values())
    import xarray as xr

    got = xr.open_zarr(tmp_path / "out.zarr")["data"].values
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-3)


def _start_gpu_worker(address):
    """A worker process advertising a GPU resource, as `dask worker --resources GPU=1` starts."""
    import subprocess
    import sys

    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            address,
            "--resources",
            "GPU=1",
            "--nthreads",
            "1",
            "--no-dashboard",
            "--name",
            "gpu",
        ],
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("how", ["argument", "annotate"])
def test_model_tasks_run_only_on_resource_workers(crop, tmp_path, how):

    import dask
    from distributed import get_task_stream

    da = open_raster(crop, chunks=64)
    with local_cluster(1) as client:
        worker = _start_gpu_worker(client.scheduler.address)
        try:
            client.wait_for_workers(2, timeout=60)
            gpu = next(
                a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "gpu"
            )
            if how == "argument":
                out = xsr4rs.upscale(da, "bicubic", resources={"GPU": 1})
            else:
                with dask.annotate(resources={"GPU": 1}):
                    out = xsr4rs.upscale(da, "bicubic")
            with get_task_stream(client) as stream:
                write(out, tmp_path / "out.tif")
        finally:
            worker.terminate()
            worker.wait()
    model_tasks = [t for t in stream.data if "xsr4rs-upscale" in str(t["key"])]
    assert len(model_tasks) == out.data.npartitions == 20
    assert {t["worker"] for t in model_tasks} == {gpu}
    assert {t["worker"] for t in stream.data} != {gpu}  # reading ran on the other worker too
    with rasterio.open(tmp_path / "out.tif") as dst:
        assert_equal_within_rounding(dst.read(), xsr4rs.upscale(da, "bicubic").values)


def test_killed_worker_does_not_change_the_output(crop, test_model, tmp_path):
    """A worker process killed mid-run is replaced; the output is complete and equal to
    the threaded run's within float rounding (recomputed blocks may run with another
    TensorFlow thread count, whose float sums round differently: see
    docs/guarantees.md)."""
    import os
    import signal
    import threading
    import time

    import xarray as xr

    da = open_raster(crop, bands=[1, 2, 3], chunks=24)
    expected = xsr4rs.upscale(da, test_model, dtype="float32").values
    with local_cluster(2) as client:
        pids = client.run(os.getpid)
        victim = next(iter(pids.values()))

        killed = []

        def kill_mid_run():
            # kill once some output chunks exist and the output is not complete yet
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if len(list(tmp_path.glob(".out.zarr.xsr4rs-*/data/*"))) >= 3:
                    os.kill(victim, signal.SIGKILL)
                    killed.append(not (tmp_path / "out.zarr").exists())
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_mid_run)
        killer.start()
        write(xsr4rs.upscale(da, test_model, dtype="float32"), tmp_path / "out.zarr")
        killer.join()
        assert killed == [True]  # killed while the output was being written
        assert victim not in client.run(os.getpid).values()  # the worker was really replaced
    got = xr.open_zarr(tmp_path / "out.zarr")["data"].values
    assert np.isfinite(got).all()
    assert_equal_within_rounding(got, expected)


def assert_equal_within_rounding(got: np.ndarray, expected: np.ndarray) -> None:
    """Float outputs: relative to the output's range, 1e-4 at most (float32 sums in
    another order); integer outputs: one unit at most (rounding of such a float)."""
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if np.issubdtype(got.dtype, np.integer):
        assert np.abs(got.astype(np.int64) - expected).max() <= 1
    else:
        span = float(np.abs(expected).max())
        assert float(np.abs(got - expected).max()) <= 1e-4 * span


def test_cli_workers_get_a_share_of_the_cores():
    import argparse
    import os

    from xsr4rs.cli import _cluster

    args = argparse.Namespace(workers=2, scheduler=None)
    with _cluster(args) as client:
        threads = client.run(lambda: os.environ.get("XSR4RS_TF_THREADS"))
    assert set(threads.values()) == {str(max(1, (os.cpu_count() or 1) // 2))}


@pytest.mark.parametrize("how", ["compute", "persist", "client.compute"])
def test_resources_hold_with_plain_dask_calls(crop, how):
    """Low-level fusion used to drop the resources, so .compute(), .persist() and
    client.compute() ran model tasks on any worker; upscale turns that fusion off."""
    import dask
    from distributed import get_task_stream

    da = open_raster(crop, chunks=64)
    with dask.config.set({"optimization.fuse.active": None}):  # dask's default
        with local_cluster(1) as client:
            worker = _start_gpu_worker(client.scheduler.address)
            try:
                client.wait_for_workers(2, timeout=60)
                gpu = next(
                    a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "gpu"
                )
                out = xsr4rs.upscale(da, "bicubic", resources={"GPU": 1})
                with get_task_stream(client) as stream:
                    if how == "compute":
                        values = out.compute().values
                    elif how == "persist":
                        values = out.persist().values
                    else:
                        values = client.compute(out).result().values
            finally:
                worker.terminate()
                worker.wait()
            assert dask.config.get("optimization.fuse.active") is False
    model_tasks = [t for t in stream.data if "xsr4rs-upscale" in str(t["key"])]
    assert len(model_tasks) == out.data.npartitions
    assert {t["worker"] for t in model_tasks} == {gpu}
    assert values.shape == out.shape
