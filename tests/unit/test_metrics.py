import numpy as np
import pytest
from scipy import ndimage

from xsr4rs.metrics import block_mean, phase_shift


def _texture(n=128, seed=0):
    return ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=(n, n)), 2)


@pytest.mark.parametrize("dy,dx", [(0, 0), (3, -2), (0.5, 0.0), (-0.25, 0.75)])
def test_phase_shift_recovers_known_shift(dy, dx):
    a = _texture()
    b = ndimage.shift(a, (dy, dx), mode="wrap", order=3)
    got = phase_shift(a, b)
    assert got == pytest.approx((dy, dx), abs=0.03)


def test_block_mean():
    v = np.arange(16.0).reshape(4, 4)
    assert block_mean(v, 2).tolist() == [[2.5, 4.5], [10.5, 12.5]]
    with pytest.raises(ValueError):
        block_mean(v, 3)


def test_phase_shift_on_non_periodic_crop():
    big = ndimage.gaussian_filter(np.random.default_rng(1).normal(size=(300, 300)), 2)
    moved = ndimage.shift(big, (0.25, -0.4), order=3)
    assert phase_shift(big[50:250, 50:250], moved[50:250, 50:250]) == pytest.approx(
        (0.25, -0.4), abs=0.03
    )
