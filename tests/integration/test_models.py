"""The model contract: export round trip, plain SavedModels, built-ins, the picklable handle."""

import json
import pickle
import warnings

import dask
import numpy as np
import pytest
import xarray as xr
from conftest import raise_if_dask_computes

import xsr4rs
from xsr4rs.model.contract import METADATA_PATH, ModelMetadata, read_metadata
from xsr4rs.model.handle import loaded_models
from xsr4rs.testing import assert_tiling_invariant, whole_image_reference


def _raster(h=37, w=29, bands=3, seed=0):
    values = np.random.default_rng(seed).uniform(0, 1000, (bands, h, w)).astype("float32")
    return xr.DataArray(values, dims=("band", "y", "x")).rio.write_crs("EPSG:32633")


def test_export_round_trip(test_model, tmp_path):
    """Reload with bare TensorFlow, compare with the Keras model, other tile size and batch."""
    import keras
    import tensorflow as tf

    meta = read_metadata(test_model.path)
    assert meta.scale == 2 and meta.halo == 2 and meta.input_bands == ("band_1", "band_2", "band_3")
    assert meta.value_range == (0, 1000)
    loaded = tf.saved_model.load(test_model.path)
    fn = loaded.signatures["serving_default"]
    x = np.random.default_rng(1).uniform(0, 1000, (3, 21, 34, 3)).astype("float32")
    (y,) = fn(**{next(iter(fn.structured_input_signature[1])): tf.constant(x)}).values()
    assert y.shape == (3, 42, 68, 3)
    np.testing.assert_allclose(test_model(x), y.numpy(), rtol=1e-6)
    # the exported graph computes what the Keras model computes
    km = keras.layers.TFSMLayer(test_model.path, call_endpoint="serve")
    np.testing.assert_allclose(np.asarray(km(x)), y.numpy(), rtol=1e-5, atol=1e-3)


def test_export_measures_halo_and_checks_scale(tmp_path):
    import keras

    inp = keras.Input((None, None, 2))
    x = keras.layers.Conv2D(2, 5, padding="same")(inp)  # radius 2
    x = keras.layers.Conv2D(2, 3, padding="same")(x)  # + 1
    x = keras.layers.UpSampling2D(3)(x)
    model = keras.Model(inp, x)
    handle = xsr4rs.export_model(model, tmp_path / "m", scale=3, bands=["a", "b"], units="DN")
    assert handle.halo == 3 and handle.scale == 3
    with pytest.raises(xsr4rs.ModelError, match="upscales by 3, not by scale=2"):
        xsr4rs.export_model(model, tmp_path / "bad", scale=2, bands=2)
    assert not (tmp_path / "bad").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary left behind
    with pytest.warns(xsr4rs.HaloWarning):
        xsr4rs.export_model(model, tmp_path / "small", scale=3, bands=2, halo=1)
    with pytest.raises(xsr4rs.OutputError, match="exists"):
        xsr4rs.export_model(model, tmp_path / "m", scale=3, bands=2)


def test_plain_saved_model_works_with_measured_halo(plain_model_path):
    model = xsr4rs.load_model(plain_model_path)
    assert model.scale == 2 and model.halo == 2
    prov = model.metadata.provenance
    assert prov["probed"] is True and prov["halo_measured"] == 2
    assert prov["input"] == {"key": "x", "dtype": "float32"}
    assert prov["outputs"] == {"sr": {"scale": 2, "crop": 0, "bands": 3}}
    assert not (read_metadata(plain_model_path))  # nothing was written into the user's model
    da = _raster()
    assert_tiling_invariant(da, plain_model_path, chunks=7)


def test_builtin_bicubic_matches_gdal_cubic_interior():
    """The bicubic baseline is GDAL's cubic (Keys, a=-0.5) away from the border."""
    import rasterio
    from affine import Affine
    from rasterio.warp import Resampling, reproject

    src = np.random.default_rng(5).uniform(0, 1000, (40, 40)).astype("float32")
    dst = np.zeros((160, 160), "float32")
    reproject(
        src,
        dst,
        src_transform=Affine(4, 0, 500000, 0, -4, 4000000),
        src_crs="EPSG:32633",
        dst_transform=Affine(1, 0, 500000, 0, -1, 4000000),
        dst_crs="EPSG:32633",
        resampling=Resampling.cubic,
    )
    ours = whole_image_reference(src[None], "bicubic")[0]
    np.testing.assert_allclose(ours[12:-12, 12:-12], dst[12:-12, 12:-12], rtol=1e-4, atol=1e-2)
    assert rasterio  # imported for its GDAL


@pytest.mark.parametrize(
    "name,scale,halo",
    [("nearest", 4, 0), ("bicubic", 4, 2), ("bicubic-x2", 2, 2), ("nearest-x2", 2, 0)],
)
def test_builtins(name, scale, halo):
    m = xsr4rs.load_model(name)
    assert (m.scale, m.halo) == (scale, halo)
    assert m.metadata.input_bands is None  # any band count
    for bands in (1, 5):
        assert m(np.ones((1, 6, 7, bands), "float32")).shape == (1, 6 * scale, 7 * scale, bands)


def test_handle_pickles_small_and_tokenizes_by_path(test_model):
    blob = pickle.dumps(test_model)
    assert len(blob) < 2000
    again = pickle.loads(blob)
    assert again == test_model
    assert dask.base.tokenize(again) == dask.base.tokenize(test_model)
    assert dask.base.tokenize(test_model.with_halo(5)) != dask.base.tokenize(test_model)


def test_graph_does_not_embed_the_model(test_model):
    """The graph carries the handle (path + metadata), never weights: its pickle is small."""
    out = xsr4rs.upscale(_raster(200, 200), test_model, chunks=50)
    graph = dict(out.data.__dask_graph__())
    tasks = [v for k, v in graph.items() if "xsr4rs-upscale" in str(k)]
    assert len(tasks) == 16
    assert max(len(pickle.dumps(t)) for t in tasks) < 10_000


def test_model_loaded_once_per_process(test_model):
    xsr4rs.upscale(_raster(), test_model, chunks=8).compute()
    assert loaded_models().count(test_model.path) == 1


def test_upscale_is_lazy(test_model):
    da = _raster().chunk({"y": 10, "x": 10})
    with raise_if_dask_computes():
        out = da.sr.upscale(test_model)
        out = xsr4rs.upscale(da, "bicubic-x2", nodata=0)
    assert out.chunks is not None


def test_laziness_guard_can_fail():
    with pytest.raises(Exception, match="lazy"):
        with raise_if_dask_computes():
            _raster().chunk({"y": 10}).sum().compute()


def test_numpy_and_dask_inputs_agree(test_model):
    da = _raster()
    a = xsr4rs.upscale(da, test_model, chunks=9).values
    b = xsr4rs.upscale(da.chunk({"x": 5, "y": 13}), test_model).values
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-3)


def test_model_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(xsr4rs.ModelError, match="not a TensorFlow SavedModel"):
        xsr4rs.load_model(tmp_path / "empty")
    with pytest.raises(xsr4rs.ModelError, match="not found.*built-in"):
        xsr4rs.load_model("no-such-model")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(xsr4rs.ModelError, match="cannot load the SavedModel"):
        xsr4rs.load_model(tmp_path / "broken")


def test_bad_metadata_is_reported(test_model, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(test_model.path, copy)
    (copy / METADATA_PATH).write_text(json.dumps({"scale": 0, "halo": 1}))
    with pytest.raises(xsr4rs.ModelError, match="scale must be a positive integer"):
        xsr4rs.load_model(copy)
    (copy / METADATA_PATH).write_text(json.dumps({"scale": 2, "halo": 1, "format_version": 99}))
    with pytest.raises(xsr4rs.ModelError, match="upgrade xsr4rs"):
        xsr4rs.load_model(copy)


@pytest.mark.parametrize("conv", [{"3x3": 8.0}, {"kxk": -1}, {"kxk": "many"}, [8.0]])
def test_bad_conv_input_sizes_are_reported(conv):
    with pytest.raises(xsr4rs.ModelError, match="conv_input_elements_per_pixel must map"):
        ModelMetadata(scale=2, halo=1, conv_input_elements_per_pixel=conv)


def test_metadata_round_trip():
    meta = ModelMetadata(
        scale=4,
        halo=12,
        input_bands=("B04", "B03"),
        value_range=(0, 10000),
        fill_values=(0, 0),
        conv_input_elements_per_pixel={"1x1": 512.0, "kxk": 128.0, "features": 32.0},
        provenance={"data": "x"},
    )
    assert ModelMetadata.from_dict(json.loads(json.dumps(meta.to_dict()))) == meta


def test_band_count_mismatch(test_model):
    with pytest.raises(xsr4rs.InputError, match="expects 3 bands .* has 4"):
        xsr4rs.upscale(_raster(bands=4), test_model)


def test_value_range_check(test_model):
    with pytest.raises(xsr4rs.InputError, match="too small.*0..1000"):
        xsr4rs.check_input(_raster() / 1000, test_model)
    xsr4rs.check_input(_raster(), test_model)  # in range: no error


def test_tile_capped_by_tensor_size(test_model):
    assert test_model.metadata.tensor_elements_per_pixel == 12  # 12 features per input pixel
    with pytest.warns(xsr4rs.TileWarning, match="using tile=9455"):
        out = xsr4rs.upscale(_raster(), test_model, tile=20000)
    assert out.shape == (3, 74, 58)


def test_tile_capped_on_cpus_without_avx512(test_model, monkeypatch):
    """With oneDNN held to AVX2 (as on an AVX2-only CPU), a tile whose convolution inputs
    would pass 2**27 elements is cut, with a warning when it was asked for: oneDNN would
    run that convolution with its reference code, about 100 times slower. Only the tile
    choice is tested (lazily); the slowdown itself is measured in docs/benchmarks.md."""
    from xsr4rs._tf import avx512_convolutions, cpu_flags

    # the x2 test CNN: its largest convolution input has 8 elements per input pixel
    assert test_model.metadata.conv_input_elements_per_pixel == {
        "1x1": 0.0,
        "kxk": 8.0,
        "features": 8.0,
    }
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    with pytest.warns(xsr4rs.TileWarning, match="reference code.*using tile=4091"):
        out = xsr4rs.upscale(_raster(), test_model, tile=5000)
    assert out.shape == (3, 74, 58)
    assert (4091 + 2 * 2) ** 2 * 8 < 2**27 <= (4092 + 2 * 2) ** 2 * 8
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    if avx512_convolutions(cpu_flags()):
        with warnings.catch_warnings():
            warnings.simplefilter("error", xsr4rs.TileWarning)
            xsr4rs.upscale(_raster(), test_model, tile=5000)


def test_models_too_wide_for_any_tile_get_advice_not_a_tiny_tile(test_model, tmp_path, monkeypatch):
    """Convolutions of 256 input features on 16 times the input's pixels (as SR4RS's
    generator at x4), which oneDNN's GEMM code takes only on tiles too small to use
    without AVX-512: the tile is kept and the warning says to turn oneDNN off; with
    TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's own convolutions) nothing is said."""
    import shutil

    copy = tmp_path / "wide"
    shutil.copytree(test_model.path, copy)
    meta = json.loads((copy / METADATA_PATH).read_text())
    meta["conv_input_elements_per_pixel"] = {"1x1": 0, "kxk": 256 * 16, "features": 256}
    (copy / METADATA_PATH).write_text(json.dumps(meta))
    wide = xsr4rs.load_model(copy)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    with pytest.warns(xsr4rs.SlowPathWarning, match="TF_ENABLE_ONEDNN_OPTS=0"):
        out = xsr4rs.upscale(_raster(), wide, tile=512)
    assert out.shape == (3, 74, 58)
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error", xsr4rs.XSRWarning)
        xsr4rs.upscale(_raster(), wide, tile=512)


def test_older_exports_are_capped_by_their_largest_tensor(test_model, tmp_path, monkeypatch):
    """A model exported before conv_input_elements_per_pixel existed: its largest tensor
    (12 elements per input pixel) stands for every convolution input."""
    import shutil

    copy = tmp_path / "older"
    shutil.copytree(test_model.path, copy)
    meta = json.loads((copy / METADATA_PATH).read_text())
    del meta["conv_input_elements_per_pixel"]
    (copy / METADATA_PATH).write_text(json.dumps(meta))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    with pytest.warns(xsr4rs.TileWarning, match="using tile=3340"):
        xsr4rs.upscale(_raster(), xsr4rs.load_model(copy), tile=5000)
    assert (3340 + 4) ** 2 * 12 < 2**27 <= (3341 + 4) ** 2 * 12


def test_exported_models_record_their_convolution_inputs(tmp_path):
    """export_model measures the largest input of the 1x1 and of the larger convolutions,
    custom convolution layers included (the trainer's light generator at x4, 8 filters:
    8 features at x4 feed its 1x1 output convolution, 8 at x2 its last 3x3)."""
    import keras

    from xsr4rs.training.archs import ARCHITECTURES

    net = ARCHITECTURES["light"].build(3, filters=8, blocks=1)
    product = keras.Model(net.input, net.outputs[-1])
    handle = xsr4rs.export_model(product, tmp_path / "light", scale=4, bands=3)
    assert handle.metadata.conv_input_elements_per_pixel == {
        "1x1": 8 * 16,
        "kxk": 8 * 4,
        "features": 8,
    }


def test_lazily_indexed_file_is_not_loaded(s2_paths):
    """A raster opened without dask stays unread until the output is computed."""
    import rioxarray

    da = rioxarray.open_rasterio(s2_paths[0])  # lazily indexed, no dask
    with raise_if_dask_computes():
        out = da.sr.upscale("nearest", chunks=512)
    assert out.chunks is not None
    assert not da.variable._in_memory


def test_global_model_rejected_unless_halo_given(tmp_path):
    import keras

    from xsr4rs._tf import import_tf

    tf = import_tf()
    inp = keras.Input((None, None, 1))
    x = keras.layers.Lambda(lambda t: t - tf.reduce_mean(t, axis=[1, 2], keepdims=True))(inp)
    model = keras.Model(inp, keras.layers.UpSampling2D(2)(x))
    with pytest.raises(xsr4rs.ModelError, match="receptive field is global"):
        xsr4rs.export_model(model, tmp_path / "g", scale=2, bands=1)
    assert not (tmp_path / "g").exists()
    handle = xsr4rs.export_model(model, tmp_path / "g", scale=2, bands=1, halo=4)
    assert handle.halo == 4 and handle.metadata.provenance["halo_measured"] is None


#: A fresh interpreter's run of a model (argv[1]) on a fixed 64 x 48 x 3 tile, saved to argv[2].
SAVE_OUTPUT = (
    "import sys, numpy as np, xsr4rs\n"
    "m = xsr4rs.load_model(sys.argv[1])\n"
    "x = np.random.default_rng(0).uniform(0, 1000, (1, 64, 48, 3)).astype('float32')\n"
    "np.save(sys.argv[2], m(x))\n"
)


def _run_in_process(code: str, env: dict, *args: str, stderr: bool = False) -> str:
    """Run ``code`` in a fresh interpreter (process-wide TensorFlow settings) with ``env``."""
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + (done.stderr if stderr else "")


def test_bf16_is_active_where_the_cpu_has_it_and_says_so_where_not(test_model, tmp_path):
    """On a CPU with AVX512-BF16 or AMX, XSR4RS_PRECISION=bf16 changes the arithmetic (so
    it is on) but stays close to fp32; on one without (AVX2 only), it warns that it
    changes nothing and the output is fp32's."""
    from xsr4rs._tf import bf16_note, cpu_flags, onednn_isa_cap

    said = {}
    for precision in ("fp32", "bf16"):
        out = str(tmp_path / f"{precision}.npy")
        said[precision] = _run_in_process(
            SAVE_OUTPUT, {"XSR4RS_PRECISION": precision}, test_model.path, out, stderr=True
        )
    fp32, bf16 = np.load(tmp_path / "fp32.npy"), np.load(tmp_path / "bf16.npy")
    rel = np.abs(bf16 - fp32).max() / np.abs(fp32).max()
    if bf16_note(cpu_flags(), 0, onednn_isa_cap()) is None:
        assert 0 < rel < 0.03
        assert "PrecisionWarning" not in said["bf16"]
    else:
        assert rel < 1e-5
        assert "PrecisionWarning" in said["bf16"] and "bfloat16 instructions" in said["bf16"]
    assert "PrecisionWarning" not in said["fp32"]


@pytest.mark.parametrize(
    ("flags", "gpus", "says"),
    [
        ({"avx2", "fma"}, 0, True),
        ({"avx2", "avx512f", "avx512_bf16"}, 0, False),
        ({"avx2", "amx_bf16", "amx_tile"}, 0, False),
        ({"avx2"}, 1, False),
        (None, 0, False),
    ],
)
def test_bf16_note_depends_on_cpu_flags_and_gpus(flags, gpus, says):
    from xsr4rs._tf import bf16_note

    assert (bf16_note(flags, gpus) is not None) == says


@pytest.mark.parametrize(
    ("cap", "says"),
    [("AVX2", True), ("AVX512_CORE", True), ("AVX512_CORE_BF16", False), ("ALL", False)],
)
def test_bf16_note_honours_a_onednn_isa_cap(cap, says):
    """ONEDNN_MAX_CPU_ISA below AVX512_CORE_BF16 on a bf16 CPU: TensorFlow would fail on
    the first call of the rewritten graph, so bf16 is refused with a warning."""
    from xsr4rs._tf import bf16_note

    note = bf16_note({"avx2", "avx512f", "avx512_bf16"}, 0, cap)
    assert (note is not None) == says
    if says:
        assert f"ONEDNN_MAX_CPU_ISA={cap}" in note


def test_bf16_under_an_avx2_cap_runs_fp32_with_a_warning(test_model, tmp_path):
    """A real process with oneDNN capped to AVX2 and XSR4RS_PRECISION=bf16: the model runs
    (in float32, equal to an uncapped fp32 run within float tolerance) and says why."""
    runs = {"capped": {"ONEDNN_MAX_CPU_ISA": "AVX2", "XSR4RS_PRECISION": "bf16"}}
    runs["fp32"] = {"XSR4RS_PRECISION": "fp32"}
    said = {}
    for name, env in runs.items():
        said[name] = _run_in_process(
            SAVE_OUTPUT, env, test_model.path, str(tmp_path / f"{name}.npy"), stderr=True
        )
    capped, fp32 = np.load(tmp_path / "capped.npy"), np.load(tmp_path / "fp32.npy")
    np.testing.assert_allclose(capped, fp32, rtol=1e-4, atol=1e-2)
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in said["capped"]


def test_bad_precision_is_reported():
    code = (
        "import numpy as np, xsr4rs\n"
        "try:\n"
        "    xsr4rs.load_model('bicubic')(np.zeros((1, 4, 4, 1), 'float32'))\n"
        "except xsr4rs.ParameterError as e:\n"
        "    print(e)\n"
    )
    out = _run_in_process(code, {"XSR4RS_PRECISION": "fp8"})
    assert "XSR4RS_PRECISION='fp8' is not one of fp32, bf16" in out
