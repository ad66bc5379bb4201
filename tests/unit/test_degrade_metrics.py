import numpy as np
import pytest
from scipy import ndimage

from xsr4rs.degrade import degrade
from xsr4rs.metrics import ergas, phase_shift, psnr, sam, ssim


def _img(bands=3, n=96, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack(
        [ndimage.gaussian_filter(rng.normal(size=(n, n)), 3) * 500 + 2000 for _ in range(bands)]
    )


def test_degrade_of_constant_is_constant_and_shapes():
    out = degrade(np.full((2, 16, 12), 7.0), 4)
    assert out.shape == (2, 4, 3)
    np.testing.assert_allclose(out, 7.0)
    with pytest.raises(ValueError, match="multiple"):
        degrade(np.zeros((10, 10)), 4)


def test_degrade_is_a_blurred_block_mean():
    hr = _img(1, 64)[0]
    expected = ndimage.gaussian_filter(hr, 2.0, mode="reflect").reshape(16, 4, 16, 4).mean((1, 3))
    np.testing.assert_allclose(degrade(hr, 4), expected)


def test_degrade_does_not_shift():
    hr = _img(1, 256)[0]
    nearest_lr = hr.reshape(64, 4, 64, 4).mean((1, 3))
    dy, dx = phase_shift(nearest_lr, degrade(hr, 4))
    assert abs(dy) < 0.01 and abs(dx) < 0.01


def test_psnr_of_known_noise():
    ref = _img()
    noise = np.random.default_rng(1).normal(0, 1.0, ref.shape)
    noise *= 10.0 / np.sqrt((noise**2).mean(axis=(1, 2), keepdims=True))  # MSE exactly 100
    got = psnr(ref, ref + noise, data_range=10000)
    np.testing.assert_allclose(got, 60.0, atol=1e-9)  # 10 log10(1e8 / 100)
    assert np.isinf(psnr(ref, ref, data_range=10000)).all()


def test_ssim_identity_and_known_change():
    ref = _img()
    np.testing.assert_allclose(ssim(ref, ref, data_range=10000), 1.0)
    # a constant offset d changes only the luminance term:
    # (2 mu (mu+d) + c1) / (mu^2 + (mu+d)^2 + c1)
    d, mu, c1 = 300.0, ref.mean(), (0.01 * 10000) ** 2
    expected = (2 * mu * (mu + d) + c1) / (mu**2 + (mu + d) ** 2 + c1)
    np.testing.assert_allclose(ssim(ref, ref + d, data_range=10000), expected, rtol=2e-3)
    assert (
        ssim(ref, ref + np.random.default_rng(2).normal(0, 200, ref.shape), data_range=10000) < 0.9
    ).all()


@pytest.mark.parametrize("angle", [0.0, 5.0, 30.0])
def test_sam_of_known_angle(angle):
    a = np.zeros((2, 4, 4))
    a[0] = 1.0
    b = np.zeros((2, 4, 4))
    b[0], b[1] = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    assert sam(a, b * 3.0) == pytest.approx(angle, abs=1e-6)


def test_ergas_known_value_and_mask():
    ref = np.full((2, 4, 4), 100.0)
    est = ref + np.array([10.0, 20.0])[:, None, None]
    # 100/4 * sqrt(mean(0.01, 0.04)) = 25 * sqrt(0.025)
    assert ergas(ref, est, scale=4) == pytest.approx(25 * np.sqrt(0.025))
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = True
    est[:, 1:, :] = 0.0  # masked-out pixels do not count
    assert ergas(ref, est, scale=4, mask=mask) == pytest.approx(25 * np.sqrt(0.025))
    with pytest.raises(ValueError, match="no valid pixel"):
        ergas(ref, est, scale=4, mask=np.zeros((4, 4), bool))
