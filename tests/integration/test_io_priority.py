"""``--idle-io`` (``XSR4RS_IO_PRIORITY=idle``): the write's threads run under Linux's
SCHED_IDLE policy; the model's threads and the file written stay as they were."""

from __future__ import annotations

import os

import dask.array as dsa
import numpy as np
import pytest
import rasterio

from xsr4rs.cli import main
from xsr4rs.io import open_raster, priority
from xsr4rs.io.write import _own_pool

linux = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE: Linux only")


@pytest.fixture
def normal_env(monkeypatch):
    """The variable set (to its default) so that what the CLI sets is undone afterwards."""
    monkeypatch.setenv(priority.ENV, "normal")


@pytest.fixture(scope="module")
def crop(tmp_path_factory) -> str:
    """A 160 x 240 crop of the real sample scene (4 bands, uint16, georeferenced)."""
    path = tmp_path_factory.mktemp("idle") / "in.tif"
    open_raster("sample:s2").isel(y=slice(0, 160), x=slice(0, 240)).rio.to_raster(path)
    return str(path)


@linux
def test_the_write_threads_run_idle_only_when_asked(normal_env, monkeypatch):
    collections = [dsa.zeros(4)]
    pool = _own_pool(collections)
    assert pool.submit(os.sched_getscheduler, 0).result() == os.SCHED_OTHER
    pool.shutdown()
    monkeypatch.setenv(priority.ENV, "idle")
    pool = _own_pool(collections)
    assert pool.submit(os.sched_getscheduler, 0).result() == os.SCHED_IDLE
    pool.shutdown()
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller keeps its policy


def _ticks() -> dict[int, int]:
    """CPU time (clock ticks) of each thread of this process."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        out[int(tid)] = int(fields[11]) + int(fields[12])
    return out


@linux  # also where /proc is
def test_idle_io_writes_the_same_file_and_the_model_keeps_its_priority(normal_env, crop, tmp_path):
    normal, idle = tmp_path / "normal.tif", tmp_path / "idle.tif"
    common = ["-m", "s2-rgbn-x4", "--chunk", "64", "--no-progress"]
    assert main(["upscale", crop, str(idle), *common, "--idle-io"]) == 0
    assert os.environ[priority.ENV] == "idle"
    os.environ[priority.ENV] = "normal"
    assert main(["upscale", crop, str(normal), *common]) == 0
    with rasterio.open(normal) as a, rasterio.open(idle) as b:
        assert a.profile == b.profile
        np.testing.assert_array_equal(a.read(), b.read())
    # the threads computing a model call afterwards are not idle ones
    from xsr4rs.model import load_model

    model = load_model("s2-rgbn-x4")
    x = np.full((1, 256, 256, 4), 1000, np.float32)
    before = _ticks()
    for _ in range(3):
        model(x)
    after = _ticks()
    busy = [t for t, n in after.items() if n - before.get(t, 0) >= 5]
    assert busy, "no thread ran the model?"
    for tid in busy:
        assert os.sched_getscheduler(tid) == os.SCHED_OTHER, tid


def test_a_bad_value_is_a_one_line_error(capsys, monkeypatch, crop, tmp_path):
    monkeypatch.setenv(priority.ENV, "fast")
    out = tmp_path / "out"
    out.mkdir()
    rc = main(["upscale", crop, str(out / "o.tif"), "-m", "bicubic", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xsr4rs: error: "), err
    assert "XSR4RS_IO_PRIORITY" in lines[0] and "'fast'" in lines[0] and "idle" in lines[0]
    assert os.listdir(out) == []
