"""How foreign signatures are adapted: output names, input types, cropped outputs (numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from xsr4rs.exceptions import InputError, ModelError
from xsr4rs.model.handle import restore_crop
from xsr4rs.model.probe import measure_halo, output_geometries, output_geometry
from xsr4rs.model.runtime import bands_first, choose_output, output_key, to_input_dtype


def test_output_names_with_or_without_the_tf1_suffix():
    outputs = ["output_32:0", "output_64:0", "sr"]
    assert output_key("output_64", outputs) == "output_64:0"
    assert output_key("output_64:0", outputs) == "output_64:0"
    assert output_key("sr:0", outputs) == "sr"
    with pytest.raises(ModelError, match="its outputs are output_32:0, output_64:0, sr"):
        output_key("output_128", outputs)


def test_an_output_must_be_chosen_among_several():
    """With no name, the only output is used; among several, the error names them and the
    option that chooses (for plain calls and the engine's cropped calls alike)."""
    assert choose_output(None, ["sr"]) == "sr"
    assert choose_output("output_64", ["output_32:0", "output_64:0"]) == "output_64:0"
    with pytest.raises(
        ModelError,
        match=r"returns 2 outputs \(output_32:0, output_64:0\): "
        r"choose one with output= \(CLI --output\)",
    ):
        choose_output(None, ["output_32:0", "output_64:0"])


def test_bands_first_crops_every_side():
    y = np.arange(2 * 6 * 8 * 3).reshape(2, 6, 8, 3)
    got = bands_first(y, 2)
    assert got.shape == (2, 3, 2, 4)
    np.testing.assert_array_equal(got[1, 2], y[1, 2:4, 2:6, 2])


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


def _cropped(x: np.ndarray, scale: int, crop: int) -> np.ndarray:
    y = np.repeat(np.repeat(x, scale, axis=1), scale, axis=2)
    h, w = max(y.shape[1] - 2 * crop, 0), max(y.shape[2] - 2 * crop, 0)
    return y[:, crop : crop + h, crop : crop + w]


def test_all_outputs_come_from_one_run_per_tile_and_small_tiles_only():
    """A large model (SR4RS's 16 blocks take minutes on a 288-pixel tile) is run once per
    tile shape for all its outputs, and only until the largest output is known."""
    shapes = []

    def model(x: np.ndarray) -> dict[str, np.ndarray]:
        shapes.append(x.shape[1:3])
        return {f"output_{c}:0": _cropped(x, 4, c) for c in (32, 64, 128, 256, 512)}

    geometry, tried = output_geometries(model, 1)
    assert shapes == [(32, 48), (48, 64)] and tried == (48, 64)
    assert geometry["output_32:0"] == (4, 32, 1)
    assert geometry["output_64:0"] == (4, 64, 1)  # seen on one (rectangular) tile
    assert geometry["output_128:0"] is None and geometry["output_512:0"] is None

    shapes.clear()
    geometry, tried = output_geometries(model, 1, wanted="output_256:0")
    assert tried == (288, 304) and geometry["output_256:0"] == (4, 256, 1)
    assert len(shapes) == 5


@pytest.mark.parametrize(
    ("before", "after", "blind"), [(3, 3, 0), (7, 2, 0), (1, 12, 4), (21, 21, 8)]
)
def test_measured_halo_is_the_reach_on_the_farther_side(before, after, blind):
    """A box filter reaching ``before`` pixels up/left and ``after`` down/right: the halo is
    the larger reach, whichever side it is on, also for a model that crops its output."""

    def model(x: np.ndarray) -> np.ndarray:
        pad = np.pad(x.astype(np.float64), ((0, 0), (before, after), (before, after), (0, 0)))
        h, w, k = x.shape[1], x.shape[2], before + after + 1
        rows = sum(pad[:, i : i + h] for i in range(k))
        box = sum(rows[:, :, j : j + w] for j in range(k))
        y = np.repeat(np.repeat(box, 2, axis=1), 2, axis=2)
        if blind:
            y[:, : 2 * blind] = y[:, -2 * blind :] = 0
            y[:, :, : 2 * blind] = y[:, :, -2 * blind :] = 0
        return y.astype(np.float32)

    assert measure_halo(model, 2, 2, blind=blind) == max(before, after)
