import numpy as np
import pytest

from xsr4rs.exceptions import ParameterError
from xsr4rs.nodata import check_nodata, fill_invalid, invalid_mask, to_output_dtype


def test_invalid_mask_any_band_and_nan():
    block = np.array([[[1, 0], [3, 4]], [[0, 0], [7, np.nan]]], dtype="float32")
    assert invalid_mask(block, 0).tolist() == [[True, True], [False, True]]
    assert invalid_mask(block, None).tolist() == [[False, False], [False, True]]


def test_fill_is_per_pixel_constant():
    block = np.arange(8, dtype="uint16").reshape(2, 2, 2)
    mask = np.array([[True, False], [False, False]])
    out = fill_invalid(block, mask, np.array([5.0, 9.0]))
    assert out.dtype == np.float32
    assert out[:, 0, 0].tolist() == [5.0, 9.0]
    assert out[:, 1, 1].tolist() == [3.0, 7.0]


def test_integer_output_rounds_clips_and_nudges():
    values = np.array([[[-3.2, 0.4, 1.6, 70000.0]]], dtype="float32")
    out = to_output_dtype(values, np.dtype("uint16"), 0, None)
    # 0.4 rounds to the no-data value 0 and is nudged to 1; -3.2 clips to 0 then nudges too
    assert out.tolist() == [[[1, 1, 2, 65535]]]


def test_nudge_downwards_at_type_maximum():
    out = to_output_dtype(np.array([[[65535.0, 3.0]]]), np.dtype("uint16"), 65535, None)
    assert out.tolist() == [[[65534, 3]]]


def test_masked_pixels_become_nodata_and_valid_never_do():
    values = np.array([[[0.0, 0.0], [2.0, 0.2]]], dtype="float32")
    mask = np.array([[True, False], [False, False]])
    out = to_output_dtype(values, np.dtype("float32"), 0.0, mask)
    assert out[0, 0, 0] == 0.0
    assert (out[0][~mask] != 0.0).all()
    nan_out = to_output_dtype(values.copy(), np.dtype("float32"), float("nan"), mask)
    assert np.isnan(nan_out[0, 0, 0]) and not np.isnan(nan_out[0][~mask]).any()


def test_check_nodata():
    assert check_nodata(np.dtype("uint16"), 0.0) == 0
    with pytest.raises(ParameterError, match="cannot store NaN"):
        check_nodata(np.dtype("uint16"), float("nan"))
    with pytest.raises(ParameterError, match="does not fit"):
        check_nodata(np.dtype("uint8"), -1)
    with pytest.raises(ParameterError, match="would become infinity"):
        check_nodata(np.dtype("float32"), -1e40)
    assert check_nodata(np.dtype("float64"), -1e40) == -1e40
    assert check_nodata(np.dtype("float32"), float("inf")) == float("inf")  # as asked
