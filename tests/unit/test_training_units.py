"""Pure parts of the trainer: patch geometry, splits, configuration, TF degradation, losses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from xsr4rs.degrade import degrade
from xsr4rs.training import config as cfg
from xsr4rs.training.windows import Window, pair_geometry, random_window, split_blocks

# -- geometry ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    scale=st.integers(1, 8),
    lr_h=st.integers(1, 60),
    lr_w=st.integers(1, 60),
    hr_h=st.integers(1, 300),
    hr_w=st.integers(1, 300),
    dy=st.integers(-200, 200),
    dx=st.integers(-200, 200),
    data=st.data(),
)
def test_hr_window_covers_exactly_the_lr_footprint(scale, lr_h, lr_w, hr_h, hr_w, dy, dx, data):
    """On real map coordinates: the HR window of any LR window inside the common extent
    has the LR window's bounds and lies inside the HR raster."""
    hr_px = 2.5
    hr_t = Affine(hr_px, 0, 435730.0, 0, -hr_px, 4179460.0)
    lr_t = hr_t * Affine.translation(dx, dy) * Affine.scale(scale)  # LR (0,0) at HR (dy, dx)
    geom = pair_geometry((lr_h, lr_w), (hr_h, hr_w), scale, dy, dx)
    e = geom.extent
    assert 0 <= e.row and e.row + e.height <= lr_h and 0 <= e.col and e.col + e.width <= lr_w
    if e.height == 0 or e.width == 0:
        return
    h = data.draw(st.integers(1, e.height))
    w = data.draw(st.integers(1, e.width))
    r = data.draw(st.integers(e.row, e.row + e.height - h))
    c = data.draw(st.integers(e.col, e.col + e.width - w))
    hw = geom.hr_window(Window(r, c, h, w))
    assert 0 <= hw.row and hw.row + hw.height <= hr_h
    assert 0 <= hw.col and hw.col + hw.width <= hr_w
    np.testing.assert_allclose(lr_t * (c, r), hr_t * (hw.col, hw.row))
    np.testing.assert_allclose(
        lr_t * (c + w, r + h), hr_t * (hw.col + hw.width, hw.row + hw.height)
    )


def test_extent_is_maximal():
    """One more LR row or column would leave the HR raster."""
    g = pair_geometry((100, 100), (203, 190), 4, -5, 6)
    e = g.extent
    assert (e.row, e.col) == (2, 0)
    below = g.hr_window(Window(e.row + e.height, 0, 1, 1))
    right = g.hr_window(Window(0, e.col + e.width, 1, 1))
    assert below.row + below.height > 203 and right.col + right.width > 190


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10**6), frac=st.floats(0.05, 0.5), size=st.integers(70, 300))
def test_training_windows_never_touch_validation_blocks(seed, frac, size):
    extent = Window(0, 0, size, size + 17)
    train, val = split_blocks(extent, 32, frac, seed, patch=16)
    assert val and not set(train) & set(val)
    assert sum(b.height * b.width for b in train + val) == extent.height * extent.width
    rng = np.random.default_rng(seed)
    for _ in range(50):
        w = random_window(rng, extent, 16, val, margin=2)
        if w is not None:
            assert not any(w.grow(2).intersects(v) for v in val)


# -- configuration ----------------------------------------------------------------------------

MINIMAL = {"data": {"images": ["a.tif"], "scale": 4}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**MINIMAL, "loss": {"l3": 1.0}}, "unknown key loss.l3"),
        ({**MINIMAL, "lossses": {}}, "unknown section(s) ['lossses']"),
        ({"data": {"images": ["a.tif"], "scale": 4, "patch": "big"}}, "data.patch must be int"),
        ({"data": {"images": ["a.tif"]}}, "needs data.scale"),
        ({"data": {}}, "no training data"),
        ({**MINIMAL, "loss": {"relativistic": True}}, "Set loss.gan_type: lsgan"),
        ({**MINIMAL, "loss": {"vgg": 1.0}}, "needs loss.vgg_weights"),
        ({**MINIMAL, "model": {"arch": "unet"}}, "model.arch must be one of light, lca, sr4rs"),
        ({**MINIMAL, "run": {"steps": 10, "pretrain_steps": 20}}, "run.pretrain_steps"),
        ({"data": {"pairs": [{"lr": "a"}]}}, "data.pairs[0] must be a mapping with keys lr and hr"),
    ],
)
def test_bad_configuration_names_the_key(data, message):
    with pytest.raises(cfg.ConfigError) as err:
        cfg.from_dict(data)
    assert message in str(err.value)


def test_yaml_and_toml_load_the_same(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "data:\n  images: [a.tif]\n  scale: 4\nloss:\n  gan: 0.01\n  gan_type: lsgan\n"
    )
    (tmp_path / "c.toml").write_text(
        '[data]\nimages = ["a.tif"]\nscale = 4\n[loss]\ngan = 0.01\ngan_type = "lsgan"\n'
    )
    a, b = cfg.load(tmp_path / "c.yaml"), cfg.load(tmp_path / "c.toml")
    assert a == b and a.loss.gan_type == "lsgan"
    c = cfg.load(tmp_path / "c.toml", {"run.steps": 7, "data.patch": None})
    assert c.run.steps == 7 and c.data.patch == 32
    (tmp_path / "bad.yaml").write_text("data: [1, 2\n")
    with pytest.raises(cfg.ConfigError, match="cannot parse"):
        cfg.load(tmp_path / "bad.yaml")


def test_describe_lists_every_key():
    text = cfg.describe()
    for section, cls in cfg.SECTIONS.items():
        for f in cls.__dataclass_fields__:
            assert f"  {f} = " in text, f"{section}.{f}"


# -- TensorFlow parts ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_tf_degrade_equals_the_numpy_degradation(scale):
    from xsr4rs.training.losses import tf_degrade

    rng = np.random.default_rng(scale)
    x = rng.uniform(0, 5000, (2, 3, 16 * scale, 12 * scale))
    ref = degrade(x, scale)
    out = np.asarray(tf_degrade(np.moveaxis(x, 1, -1).astype(np.float32), scale))
    np.testing.assert_allclose(np.moveaxis(out, -1, 1), ref, rtol=1e-5, atol=1e-2)


def test_losses_known_values():
    from xsr4rs.training import losses as L

    hr = np.zeros((1, 8, 8, 2), np.float32)
    hr[..., 0] = 1.0
    out = np.zeros_like(hr)
    out[..., 1] = 1.0  # orthogonal spectra: 90 degrees
    mask = np.ones((1, 8, 8, 1), np.float32)
    sam = float(L.sam_loss(out, hr, mask, np.zeros(2, np.float32), np.ones(2, np.float32)))
    assert sam == pytest.approx(np.pi / 2, abs=1e-3)
    # pixel losses: masked pixels weigh nothing, every scale counts
    est = hr.copy()
    est[0, :4] += 10.0  # wrong only where masked out
    mask[0, :4] = 0
    outs = [L.pyramid(est)[2], L.pyramid(est)[1], est]
    l1, l2 = L.pixel_losses(outs, hr, mask)
    assert float(l1) == pytest.approx(0.0) and float(l2) == pytest.approx(0.0)
    real, fake = np.ones((4, 1), np.float32), np.zeros((4, 1), np.float32)
    d, g = L.gan_losses(real, fake, "lsgan", relativistic=False)
    assert float(d) == 0.0 and float(g) == 1.0
    d, g = L.gan_losses(real, fake, "wgan-gp", relativistic=False)
    assert float(d) == -1.0 and float(g) == 0.0


def test_training_guide_documents_every_key():
    guide = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text()
    for section, cls in cfg.SECTIONS.items():
        assert f"### `{section}`" in guide
        for f in cls.__dataclass_fields__:
            assert f"| `{f}` |" in guide, f"{section}.{f} is missing from docs/training.md"
