"""No-data on real imagery: declared (29RKH L2A), undeclared zeros (Brandenburg JPEG 2000), NaN.

Users rely on three things: the output no-data mask is exactly the input's (any band) blown
up ``scale x scale``, no valid output pixel takes the no-data value, and the result does
not depend on the chunking.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import shared_file
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

import xsr4rs
from xsr4rs.cli import main
from xsr4rs.io import open_raster, write

L2A = "sentinel2-l2a-29RKH-100m"
L2A_BANDS = ("B04", "B03", "B02", "B08")
BRANDENBURG = ("sentinel2-brandenburg-b", "ref_S2A_20160608T153121_T33UUU_sub.jp2")
#: 300 x 200 pixels at the swath edge of the Brandenburg scene: about half zeros (no-data),
#: with a ragged border where valid pixels of value 1 and 2 touch the zeros.
BRANDENBURG_WINDOW = Window(col_off=100, row_off=2700, width=300, height=200)


def repeat(mask: np.ndarray, k: int) -> np.ndarray:
    return np.repeat(np.repeat(mask, k, axis=-2), k, axis=-1)


def _write(path: Path, data: np.ndarray, *, crs, transform, nodata=None, **extra) -> Path:
    count = data.shape[0]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=count,
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
        **extra,
    ) as dst:
        dst.write(data)
    return path


# -- declared no-data: Sentinel-2 L2A 29RKH, four band files stacked -----------------------


def test_l2a_band_files_declare_nodata_zero():
    """The premise of the stack tests: nodata 0 is declared, and the scene itself has no zeros.

    (The tile is fully inside the swath, ``s2:nodata_pixel_percentage`` 0 in its STAC item,
    so the stack tests below place no-data taken from a real swath edge onto it.)
    """
    paths = [shared_file(L2A, f"S2A_29RKH_20200219_L2A_{b}.tif") for b in L2A_BANDS]
    da = open_raster(paths, chunks=512)
    assert da.rio.nodata == 0
    assert da.shape == (4, 1098, 1098) and da.dtype == np.uint16
    crop = da.isel(x=slice(0, 256), y=slice(0, 256))
    out = xsr4rs.upscale(crop, "bicubic")
    assert out.rio.nodata == 0
    values = out.values
    assert values.shape == (4, 1024, 1024)
    assert (values != 0).all()  # every input pixel is valid: no output pixel is no-data


@pytest.fixture(scope="module")
def l2a_with_edge(tmp_path_factory) -> tuple[list[str], np.ndarray]:
    """Four single-band GeoTIFFs (nodata=0 declared) of a 200 x 232 crop of the 29RKH tile.

    Values and grid are the tile's; the no-data zeros are the ragged swath-edge zeros of
    the Brandenburg scene (same window size) in all four bands, plus zeros in a single band
    (a 3x5 block in B08, one pixel in B02) that make the pixel no-data all the same.
    Returns the paths and the expected (y, x) no-data mask.
    """
    paths = [shared_file(L2A, f"S2A_29RKH_20200219_L2A_{b}.tif") for b in L2A_BANDS]
    edge_src = shared_file(*BRANDENBURG)
    window = Window(col_off=300, row_off=400, width=232, height=200)
    with rasterio.open(edge_src) as ds:
        edge = ds.read(1, window=Window(100, 2700, 232, 200)) == 0
    assert 0.2 < edge.mean() < 0.8
    folder = tmp_path_factory.mktemp("l2a")
    out_paths = []
    mask = edge.copy()
    for b, p in zip(L2A_BANDS, paths, strict=True):
        with rasterio.open(p) as src:
            data = src.read(window=window)
            crs, transform = src.crs, window_transform(window, src.transform)
            assert src.nodata == 0
        assert (data > 0).all()
        data[:, edge] = 0
        if b == "B08":
            data[:, 150:153, 40:45] = 0
            mask[150:153, 40:45] = True
        if b == "B02":
            data[:, 120, 200] = 0
            mask[120, 200] = True
        out_paths.append(
            str(_write(folder / f"{b}.tif", data, crs=crs, transform=transform, nodata=0))
        )
    return out_paths, mask


@pytest.mark.parametrize("model", ["bicubic", "nearest"])
def test_l2a_declared_nodata_stack(l2a_with_edge, model, tmp_path):
    paths, mask = l2a_with_edge
    chunked = open_raster(paths, chunks=64)
    whole = open_raster(paths, chunks=100000)
    assert chunked.rio.nodata == 0 and chunked.sizes == {"band": 4, "y": 200, "x": 232}
    assert chunked.chunks[1] != whole.chunks[1]  # really two different chunkings
    np.testing.assert_array_equal((chunked.values == 0).any(axis=0), mask)

    out = xsr4rs.upscale(chunked, model)
    assert out.rio.nodata == 0 and out.dtype == np.uint16
    values = out.values
    assert values.shape == (4, 800, 928)
    up_mask = repeat(mask, 4)
    # no-data in = no-data out, in every band, same 4x4 blocks
    for band in values:
        np.testing.assert_array_equal(band == 0, up_mask)
    # valid pixels never take the no-data value (checked band by band above: band == 0
    # only where the mask is); and they are real data, not the fill
    assert (values[:, ~up_mask] > 0).all()

    if model == "nearest":
        # the nearest oracle: every valid output pixel is its input pixel
        with rasterio.open(paths[0]) as ds:
            red = ds.read(1)
        np.testing.assert_array_equal(values[0][~up_mask], repeat(red, 4)[~up_mask])

    reference = xsr4rs.upscale(whole, model).values
    np.testing.assert_array_equal(values, reference)

    # the written file declares the no-data value and masks the same pixels
    write(out, tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as ds:
        assert ds.nodata == 0
        np.testing.assert_array_equal(ds.dataset_mask() == 0, up_mask)


# -- undeclared zeros: Brandenburg JPEG 2000, --nodata 0 -----------------------------------


@pytest.fixture(scope="module")
def brandenburg_crop(tmp_path_factory) -> Path:
    """BRANDENBURG_WINDOW of the JPEG 2000 file as a GeoTIFF without declared no-data."""
    src_path = shared_file(*BRANDENBURG)
    with rasterio.open(src_path) as src:
        assert src.driver == "JP2OpenJPEG" and src.nodata is None
        data = src.read(window=BRANDENBURG_WINDOW)
        crs, transform = src.crs, window_transform(BRANDENBURG_WINDOW, src.transform)
    zeros = data[0] == 0
    assert 0.2 < zeros.mean() < 0.8
    assert ((data > 0) & (data <= 2)).sum() > 100  # valid pixels almost at zero
    return _write(tmp_path_factory.mktemp("bb") / "crop.tif", data, crs=crs, transform=transform)


@pytest.mark.parametrize("model", ["bicubic", "nearest"])
def test_brandenburg_nodata_zero_cli(capsys, brandenburg_crop, model, tmp_path):
    out = tmp_path / "out.tif"
    rc = main(
        [
            "upscale",
            str(brandenburg_crop),
            str(out),
            "-m",
            model,
            "--nodata",
            "0",
            "--chunk",
            "64",
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert os.listdir(tmp_path) == ["out.tif"]
    with rasterio.open(brandenburg_crop) as src, rasterio.open(out) as dst:
        zeros = src.read(1) == 0
        assert dst.nodata == 0
        assert dst.crs == src.crs and dst.bounds == src.bounds
        values = dst.read(1)
    up_mask = repeat(zeros, 4)
    np.testing.assert_array_equal(values == 0, up_mask)  # mask kept; valid pixels never 0
    assert values.shape == (800, 1200)


def test_brandenburg_without_nodata_zero_is_data(capsys, brandenburg_crop, tmp_path):
    """Without --nodata the zeros are ordinary values: the output declares no no-data."""
    out = tmp_path / "out.tif"
    rc = main(["upscale", str(brandenburg_crop), str(out), "-m", "nearest", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    with rasterio.open(out) as dst:
        assert dst.nodata is None


@pytest.mark.slow
def test_brandenburg_full_jp2_nodata_zero(capsys, tmp_path):
    """The whole 2400 x 3200 JPEG 2000 file, as a user would run it (about 20 s)."""
    src_path = shared_file(*BRANDENBURG)
    out = tmp_path / "out.tif"
    rc = main(
        ["upscale", str(src_path), str(out), "-m", "bicubic", "--nodata", "0", "--no-progress"]
    )
    assert rc == 0, capsys.readouterr().err
    assert os.listdir(tmp_path) == ["out.tif"]
    with rasterio.open(src_path) as src, rasterio.open(out) as dst:
        assert dst.nodata == 0
        assert (dst.width, dst.height) == (4 * src.width, 4 * src.height)
        assert dst.crs == src.crs and dst.bounds == src.bounds
        for row in range(0, src.height, 400):
            win = Window(0, row, src.width, min(400, src.height - row))
            zeros = src.read(1, window=win) == 0
            big = Window(0, 4 * row, dst.width, 4 * win.height)
            np.testing.assert_array_equal(dst.read(1, window=big) == 0, repeat(zeros, 4))


# -- NaN in float input --------------------------------------------------------------------


def test_float_nan_in_is_nan_out(s2_paths, tmp_path):
    """A real crop as float32 with a NaN block across a chunk border and one single-band NaN."""
    window = Window(col_off=900, row_off=1100, width=232, height=200)
    bands = []
    for p in s2_paths:
        with rasterio.open(p) as ds:
            bands.append(ds.read(1, window=window).astype("float32") / 10000)
            crs, transform = ds.crs, window_transform(window, ds.transform)
    data = np.stack(bands)
    data[:, 56:77, 100:131] = np.nan  # rows 56..76 straddle the chunk border at 64
    data[2, 150, 200] = np.nan  # NaN in one band: the pixel is no-data in all bands
    mask = np.isnan(data).any(axis=0)
    src = _write(tmp_path / "float.tif", data, crs=crs, transform=transform)

    da = open_raster(src, chunks=64)
    out = xsr4rs.upscale(da, "bicubic")
    assert out.dtype == np.float32 and np.isnan(out.rio.nodata)
    values = out.values
    up_mask = repeat(mask, 4)
    for band in values:
        np.testing.assert_array_equal(np.isnan(band), up_mask)
    assert np.isfinite(values[:, ~up_mask]).all()
    # valid pixels next to the hole are bicubic of real reflectance (0..1), not the fill's
    # or NaN's doing: within the small overshoot of the Keys kernel
    assert -0.1 < np.nanmin(values) and np.nanmax(values) < 1.5

    whole = xsr4rs.upscale(open_raster(src, chunks=100000), "bicubic").values
    np.testing.assert_array_equal(values, whole)  # NaN == NaN here

    write(out, tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as ds:
        assert np.isnan(ds.nodata)
        back = ds.read()
    np.testing.assert_array_equal(np.isnan(back), np.broadcast_to(up_mask, back.shape))
