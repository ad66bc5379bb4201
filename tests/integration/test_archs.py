"""Generator architectures: output scales, and receptive fields equal to measured halos."""

import numpy as np
import pytest

import xsr4rs
from xsr4rs.training.archs import ARCHITECTURES


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_outputs_and_receptive_field(name, tmp_path):
    import keras

    arch = ARCHITECTURES[name]
    config = {"filters": 8, "blocks": 2}
    net = arch.build(3, **config)
    # as after training: no weight is zero (the light generator's corrections start at 0)
    rng = np.random.default_rng(0)
    net.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in net.get_weights()])
    y1, y2, y4 = net(np.zeros((2, 10, 12, 3), "float32"))
    assert (y1.shape, y2.shape, y4.shape) == ((2, 10, 12, 3), (2, 20, 24, 3), (2, 40, 48, 3))
    product = keras.Model(net.input, net.outputs[-1])
    handle = xsr4rs.export_model(product, tmp_path / name, scale=4, bands=3)
    # the computed radius is what the export measured: the halo needs no guessing. The
    # attention gates of lca add one pixel of reach per block that random weights
    # (saturated sigmoids) hardly show: there the computed radius bounds the measurement
    if name == "lca":
        assert 0 < handle.halo <= arch.receptive_radius(**config)
    else:
        assert handle.halo == arch.receptive_radius(**config)
    assert handle.metadata.tensor_elements_per_pixel >= 8 * 16


def test_untrained_light_generator_is_nearest_neighbour():
    """Its outputs start as the input repeated to each scale: training adds detail."""
    net = ARCHITECTURES["light"].build(2, filters=8, blocks=2)
    x = np.random.default_rng(1).uniform(0, 1, (1, 6, 5, 2)).astype("float32")
    for y, s in zip(net(x), (1, 2, 4), strict=True):
        np.testing.assert_allclose(np.asarray(y), x.repeat(s, 1).repeat(s, 2), rtol=1e-6)


def test_default_radii():
    assert ARCHITECTURES["sr4rs"].receptive_radius() == 37
    assert ARCHITECTURES["light"].receptive_radius() == 15
    assert ARCHITECTURES["lca"].receptive_radius() == 21


@pytest.mark.parametrize(
    ("name", "budget"),
    [(name, None) for name in sorted(ARCHITECTURES)]
    + [(name, 1) for name in sorted(ARCHITECTURES) if ARCHITECTURES[name].build_lean],
)
def test_inference_form_has_the_same_outputs(name, budget):
    """What an export carries (`for_inference`) computes what was trained, weight for
    weight, at every scale: the light generators' x2 stages run over strips of rows (with
    ``budget=1``, strips of 8 rows: three strips on 21 rows, one on 5, so that the
    strips' edges, the image's edges and a last, shorter strip all count)."""
    from xsr4rs.training.archs import for_inference

    config = {"filters": 8, "blocks": 2}
    net = ARCHITECTURES[name].build(3, **config)
    rng = np.random.default_rng(2)
    net.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in net.get_weights()])
    lean = for_inference(net, name, **config)
    assert (lean is net) == (ARCHITECTURES[name].build_lean is None)
    if budget is not None:
        (striped,) = [la for la in lean.layers if type(la).__name__ == "StripedCorrections"]
        striped.budget = budget
    for height in (21, 5):
        x = rng.uniform(-1, 1, (2, height, 11, 3)).astype("float32")
        for want, got in zip(net(x), lean(x), strict=True):
            assert got.shape == want.shape
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)


def test_ratio_bound_keeps_each_pixel_within_its_input_pixel_bounds():
    from xsr4rs.training.archs import _extra_layers

    _, _, RatioBound = _extra_layers()
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 4, (2, 5, 7, 3)).astype("float32")
    x[0, 1, 2] = 0.0
    y = rng.uniform(-8, 16, (2, 15, 21, 3)).astype("float32")
    got = np.asarray(RatioBound(3, 0.25, 4.0)([y, x]))
    up = x.repeat(3, 1).repeat(3, 2)
    want = np.where(up > 0, np.clip(y, 0.25 * up, 4.0 * up), y)
    np.testing.assert_array_equal(got, want)
    assert (got != y).any() and (got == y).any()
