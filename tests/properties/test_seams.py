"""Chunked output equals whole-image output, for any chunking and image size."""

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xsr4rs.exceptions import HaloWarning
from xsr4rs.testing import assert_tiling_invariant, whole_image_reference
from xsr4rs.upscale import upscale

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _raster(values: np.ndarray) -> xr.DataArray:
    _, h, w = values.shape
    return xr.DataArray(
        values,
        dims=("band", "y", "x"),
        coords={
            "band": [1, 2, 3],
            "y": 1000 - 10 * (np.arange(h) + 0.5),
            "x": 10 * (np.arange(w) + 0.5),
        },
    ).rio.write_crs("EPSG:32633")


@st.composite
def rasters(draw):
    h = draw(st.integers(1, 48))
    w = draw(st.integers(1, 48))
    seed = draw(st.integers(0, 2**16))
    values = np.random.default_rng(seed).uniform(0, 1000, (3, h, w)).astype("float32")
    return values


@SETTINGS
@given(values=rasters(), cy=st.integers(1, 40), cx=st.integers(1, 40), tile=st.integers(1, 40))
def test_chunked_equals_whole_image(test_model, values, cy, cx, tile):
    """Any chunk and tile sizes, chunks smaller than the halo, odd and rectangular images."""
    assert_tiling_invariant(_raster(values), test_model, chunks=(cy, cx), tile=tile)


@SETTINGS
@given(values=rasters(), data=st.data())
def test_irregular_dask_chunks_equal_whole_image(test_model, values, data):
    """Input already chunked irregularly by dask (e.g. from file blocks)."""

    def cuts(n):
        sizes = []
        while sum(sizes) < n:
            sizes.append(min(data.draw(st.integers(1, 12)), n - sum(sizes)))
        return tuple(sizes)

    _, h, w = values.shape
    da = _raster(values).copy(data=dsa.from_array(values, chunks=((3,), cuts(h), cuts(w))))
    assert_tiling_invariant(da, test_model)


@SETTINGS
@given(values=rasters(), halo=st.integers(2, 9), chunk=st.integers(3, 20))
def test_larger_halo_changes_nothing(test_model, values, halo, chunk):
    """A halo above the receptive field gives the same output (the padding is cropped away)."""
    got = upscale(_raster(values), test_model, halo=halo, chunks=chunk, dtype="float32").values
    ref = whole_image_reference(values, test_model)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_too_small_halo_shows_seams(test_model):
    """The property above can fail: halo 0 on a model of radius 2 breaks equality."""
    values = np.random.default_rng(3).uniform(0, 1000, (3, 40, 40)).astype("float32")
    with pytest.warns(HaloWarning, match="smaller than the model's halo 2"):
        got = upscale(_raster(values), test_model, halo=0, chunks=10, dtype="float32").values
    ref = whole_image_reference(values, test_model)
    assert np.abs(got - ref).max() > 1e-3 * np.abs(ref).max()


@SETTINGS
@given(
    dates=st.integers(1, 3),
    h=st.integers(1, 30),
    w=st.integers(1, 30),
    seed=st.integers(0, 2**16),
    time_chunk=st.integers(1, 3),
    cy=st.integers(1, 24),
    cx=st.integers(1, 24),
    order=st.permutations(["time", "band", "y", "x"]),
)
def test_cube_dates_equal_their_upscaling_alone(
    test_model, dates, h, w, seed, time_chunk, cy, cx, order
):
    """A (time, band, y, x) cube in any dimension order and time chunking: each date
    equals upscaling that date alone, and the time chunks are kept."""
    values = np.random.default_rng(seed).uniform(0, 1000, (dates, 3, h, w)).astype("float32")
    cube = xr.DataArray(
        values,
        dims=("time", "band", "y", "x"),
        coords={
            "time": np.arange(dates).astype("datetime64[D]"),
            "band": [1, 2, 3],
            "y": 1000 - 10 * (np.arange(h) + 0.5),
            "x": 10 * (np.arange(w) + 0.5),
        },
    ).rio.write_crs("EPSG:32633")
    cube = cube.chunk({"time": time_chunk, "y": cy, "x": cx}).transpose(*order)
    out = upscale(cube, test_model, dtype="float32")
    assert out.dims == cube.dims
    assert out.chunksizes["time"] == cube.chunksizes["time"]
    got = out.transpose("time", "band", "y", "x").values
    for t in range(dates):
        alone = whole_image_reference(values[t], test_model)
        err = np.abs(got[t] - alone).max() / max(np.abs(alone).max(), 1e-30)
        assert err <= 1e-5, (t, err)
