"""How foreign signatures are adapted: output names, input types, cropped outputs (numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from xsr4rs.exceptions import InputError, ModelError
from xsr4rs.model.handle import restore_crop
from xsr4rs.model.probe import output_geometry
from xsr4rs.model.runtime import output_key, to_input_dtype


def test_output_names_with_or_without_the_tf1_suffix():
    outputs = ["output_32:0", "output_64:0", "sr"]
    assert output_key("output_64", outputs) == "output_64:0"
    assert output_key("output_64:0", outputs) == "output_64:0"
    assert output_key("sr:0", outputs) == "sr"
    with pytest.raises(ModelError, match="its outputs are output_32:0, output_64:0, sr"):
        output_key("output_128", outputs)


def test_integer_inputs_are_rounded_and_checked_band_by_band():
    x = np.array([[[[1.4, -2.6], [32767.0, 0.5]]]], dtype=np.float32)  # [1, 1, 2, 2]
    np.testing.assert_array_equal(to_input_dtype(x, np.dtype("int16"))[0, 0], [[1, -3], [32767, 0]])
    x[0, 0, 1, 1] = 40000.0
    with pytest.raises(InputError, match=r"band 2 holds the value 40000, .* int16 input \(-32768"):
        to_input_dtype(x, np.dtype("int16"))
    with pytest.raises(InputError, match="band 2 holds the value -3"):
        to_input_dtype(np.array([[[[1.0, -3.0]]]], np.float32), np.dtype("uint16"))
    assert to_input_dtype(x, np.dtype("float32")) is x


@pytest.mark.parametrize(("scale", "crop"), [(4, 32), (4, 0), (2, 5), (3, 64)])
def test_geometry_of_a_cropped_output(scale, crop):
    def model(x: np.ndarray) -> np.ndarray:
        y = np.repeat(np.repeat(x, scale, axis=1), scale, axis=2)
        h, w = y.shape[1] - 2 * crop, y.shape[2] - 2 * crop
        return y[:, crop : crop + max(h, 0), crop : crop + max(w, 0), :2]

    assert output_geometry(model, 3) == (scale, crop, 2)
    y = model(np.ones((1, 60, 70, 3), np.float32))
    assert restore_crop(y, crop).shape == (1, 60 * scale, 70 * scale, 2)


def test_an_output_empty_on_every_probe_tile_has_no_geometry():
    assert output_geometry(lambda x: np.zeros((1, 0, 0, 1), np.float32), 1) is None


def test_an_output_that_is_not_scale_times_minus_a_border_is_refused():
    def model(x: np.ndarray) -> np.ndarray:
        return np.zeros((1, x.shape[1] * 2, x.shape[2] * 3, 1), np.float32)

    with pytest.raises(ModelError, match="not one integer scale with a fixed border"):
        output_geometry(model, 1)
