import numpy as np
import pytest
from affine import Affine

from xsr4rs.geo import apply, bounds, pixel_centres, upscaled_transform


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_upscaled_transform_keeps_corner_and_divides_pixel(scale):
    t = Affine(10, 0, 435730, 0, -10, 4179460)
    u = upscaled_transform(t, scale)
    assert (u.c, u.f) == (t.c, t.f)
    assert (u.a, u.e) == (10 / scale, -10 / scale)
    assert np.allclose(
        bounds(u, 1947 * scale, 1933 * scale), bounds(t, 1947, 1933), rtol=0, atol=1e-6
    )


def test_rotated_transform_scales_every_term():
    t = Affine(10, 2, 1000, -1, -10, 5000)
    u = upscaled_transform(t, 4)
    assert u == Affine(2.5, 0.5, 1000, -0.25, -2.5, 5000)
    # every fine pixel corner maps to the coarse grid position it subdivides
    for col, row in [(0, 0), (4, 8), (7, 3)]:
        assert np.allclose(apply(u, col, row), apply(t, col / 4, row / 4))


def test_pixel_centres():
    t = Affine(2.5, 0, 100, 0, -2.5, 200)
    x, y = pixel_centres(t, 3, 2)
    assert np.allclose(x, [101.25, 103.75])
    assert np.allclose(y, [198.75, 196.25, 193.75])
