import json

import numpy as np
import pytest
from scipy import ndimage

from xsr4rs.degrade import degrade
from xsr4rs.scores import (
    EvaluationReport,
    interior,
    lr_interior,
    measure_shift,
    score_method,
)


def _texture(n=128, seed=0, bands=1):
    rng = np.random.default_rng(seed)
    return np.stack(
        [ndimage.gaussian_filter(rng.normal(size=(n, n)), 2) * 300 + 1000 for _ in range(bands)]
    )


def test_interior_drops_the_border_and_a_ring_around_invalid_pixels():
    valid = np.ones((20, 20), bool)
    kept = interior(valid, 3)
    assert kept[3:17, 3:17].all() and kept.sum() == 14 * 14
    valid[10, 10] = False
    kept = interior(valid, 3)
    assert not kept[7:14, 7:14].any() and kept.sum() == 14 * 14 - 7 * 7
    np.testing.assert_array_equal(interior(valid, 0), valid)


def test_lr_interior_needs_every_hr_pixel_of_the_block():
    mask = np.ones((8, 12), bool)
    mask[5, 2] = False
    expected = np.ones((2, 3), bool)
    expected[1, 0] = False
    np.testing.assert_array_equal(lr_interior(mask, 4), expected)


def test_measure_shift_ignores_masked_pixels():
    big = _texture(200)[0]
    moved = ndimage.shift(big, (0.5, -0.25), order=3)
    a, b = big[20:180, 20:180].copy(), moved[20:180, 20:180].copy()
    mask = np.ones(a.shape, bool)
    mask[40:90, 30:70] = False  # a no-data blob, with wild values in both images
    mask[120:128, :] = False  # and a strip across the bounding box
    a[~mask], b[~mask] = 0.0, 1e6
    assert measure_shift(a, b, mask) == pytest.approx((0.5, -0.25), abs=0.02)
    tiny = np.zeros(a.shape, bool)
    tiny[:8, :8] = True
    assert measure_shift(a, b, tiny) is None


def test_identical_output_has_infinite_psnr_written_as_null():
    hr = _texture(128)
    lr = degrade(hr, 4)
    row = score_method(
        "same", "model", hr, hr.copy(), lr, scale=4, data_range=1000.0, mask=interior(hr[0] > 0, 8)
    )
    assert np.isinf(row.psnr_mean) and row.ssim_mean == pytest.approx(1.0)
    assert row.sam is None  # one band: no spectral angle
    assert row.ergas == 0.0 and row.shift_mean == (0.0, 0.0)
    report = EvaluationReport(
        model="same",
        mode="wald",
        scale=4,
        data_range=1000.0,
        data_range_from_hr=False,
        border=8,
        bands=("pan",),
        hr_shape=(128, 128),
        scored_pixels=112 * 112,
        rows=(row,),
    )
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["methods"][0]["mean"]["psnr"] is None
    assert data["methods"][0]["mean"]["sam"] is None
    assert data["methods"][0]["bands"][0]["band"] == "pan"
    line = next(t for t in report.table().splitlines() if t.startswith("same "))
    assert line.split()[1:4] == ["inf", "1.0000", "-"]
