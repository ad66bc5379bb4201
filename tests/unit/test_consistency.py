"""The projection's operators: ``D`` is `degrade` on a periodic tile, ``Dᵀ`` its adjoint,
and the projection makes the output consistent with its input."""

import numpy as np
import pytest

from xsr4rs.consistency import degrade_adjoint, degrade_periodic, project
from xsr4rs.degrade import degrade


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_periodic_degradation_equals_degrade_away_from_the_wrap(scale):
    """Inside, where neither the wrap nor the mirror is reached, both degradations agree."""
    rng = np.random.default_rng(scale)
    y = rng.uniform(0, 1000, (2, 40 * scale, 36 * scale))
    a, b = degrade_periodic(y, scale), degrade(y, scale)
    m = 6  # input pixels reached by the blur (4 sigma = 2 scale HR pixels), and then some
    np.testing.assert_allclose(a[:, m:-m, m:-m], b[:, m:-m, m:-m], rtol=1e-12)
    assert not np.allclose(a[:, 0], b[:, 0])  # the control: at the border they differ


@pytest.mark.parametrize(("h", "w"), [(7, 9), (16, 5)])
def test_adjoint(h, w):
    rng = np.random.default_rng(h * w)
    y, z = rng.normal(size=(3, 4 * h, 4 * w)), rng.normal(size=(3, h, w))
    assert np.vdot(degrade_periodic(y, 4), z) == pytest.approx(np.vdot(y, degrade_adjoint(z, 4)))


def test_projection_is_consistent_in_float32_and_float64():
    rng = np.random.default_rng(0)
    x = rng.uniform(100, 5000, (4, 30, 22))
    y = np.repeat(np.repeat(x, 4, -2), 4, -1) + rng.normal(0, 300, (4, 120, 88))
    for dtype, tol in ((np.float64, 1e-9), (np.float32, 1e-3)):
        p = project(y.astype(dtype), x, 4)
        assert p.dtype == dtype
        assert np.abs(degrade_periodic(p.astype(np.float64), 4) - x).max() < tol * x.max()
    valid = rng.uniform(size=x.shape) > 0.2
    p = project(y, x, 4, valid)
    err = np.abs(degrade_periodic(p, 4) - x)
    assert err[valid].max() < 1e-6 and err[~valid].max() > 1  # no-data imposes nothing


def test_projection_in_place_equals_a_new_array():
    """``out=y`` (how the engine calls it, to save a block-sized array) gives the same
    result as a new array, and writes it into ``y``."""
    rng = np.random.default_rng(1)
    x = rng.uniform(100, 5000, (2, 4, 26, 18))
    y = (np.repeat(np.repeat(x, 4, -2), 4, -1) + rng.normal(0, 300, (2, 4, 104, 72))).astype(
        np.float32
    )
    valid = rng.uniform(size=x.shape) > 0.1
    expected = project(y, x, 4, valid)
    same = y.copy()
    result = project(same, x, 4, valid, out=same)
    assert result is same
    np.testing.assert_array_equal(same, expected)
    assert not np.array_equal(same, y)  # the control: the projection changed the values
