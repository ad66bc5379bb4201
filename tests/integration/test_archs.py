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
