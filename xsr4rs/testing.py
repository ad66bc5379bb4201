"""Reusable checks and tiny deterministic models, for xsr4rs's tests and for yours.

``make_test_model`` builds a small nonlinear convolutional network with fixed weights
(exported through `xsr4rs.export_model`), and ``make_plain_saved_model`` a SavedModel
written with bare ``tf.saved_model.save`` and no xsr4rs metadata, as a user's own model
would be. ``whole_image_reference`` is the oracle of the halo engine.
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from xsr4rs.model.handle import SRModel, load_model


def make_test_model(
    path: str | os.PathLike[str], *, scale: int = 2, bands: int = 3, convs: int = 2, seed: int = 0
) -> SRModel:
    """Export a deterministic x``scale`` CNN of ``convs`` 3x3 convolutions (halo = ``convs``).

    The network mixes bands, is nonlinear (ReLU) and upsamples by a sub-pixel convolution,
    so any seam or misplaced crop of the engine changes its output.
    """
    from xsr4rs._tf import import_tf
    from xsr4rs.model.export import export_model

    tf = import_tf()
    import keras

    rng = np.random.default_rng(seed)
    inp = keras.Input((None, None, bands))
    x = keras.layers.Rescaling(1 / 1000)(inp)
    for i in range(convs):
        last = i == convs - 1
        layer = keras.layers.Conv2D(
            bands * scale * scale if last else 8,
            3,
            padding="same",
            activation=None if last else "relu",
        )
        x = layer(x)
        kernel, bias = layer.get_weights()
        layer.set_weights(
            [
                rng.normal(0, 0.5, kernel.shape).astype("float32"),
                rng.normal(0, 0.1, bias.shape).astype("float32"),
            ]
        )
    x = keras.layers.Lambda(lambda t: tf.nn.depth_to_space(t, scale))(x)
    x = keras.layers.Rescaling(1000)(x)
    model = keras.Model(inp, x)
    return export_model(
        model,
        path,
        scale=scale,
        bands=bands,
        units="test units",
        value_range=(0, 1000),
        name=f"test-cnn-x{scale}",
        overwrite=True,
    )


def make_plain_saved_model(path: str | os.PathLike[str], *, scale: int = 2, bands: int = 3) -> str:
    """Write a SavedModel with ``tf.saved_model.save`` only (no xsr4rs metadata).

    It applies a fixed 5x5 blur mixed across bands (receptive radius 2), a ReLU, and a
    nearest-neighbour upsampling by ``scale``; returns ``path``.
    """
    from xsr4rs._tf import import_tf

    tf = import_tf()
    rng = np.random.default_rng(7)
    kernel = tf.constant(rng.uniform(0, 1, (5, 5, bands, bands)).astype("float32") / (25 * bands))

    class Plain(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, bands], tf.float32)])
        def __call__(self, x):
            y = tf.nn.relu(tf.nn.conv2d(x, kernel, strides=1, padding="SAME") - 10.0) + x * 0.5
            y = tf.repeat(tf.repeat(y, scale, axis=1), scale, axis=2)
            return {"sr": y}

    module = Plain()
    tf.saved_model.save(module, os.fspath(path), signatures={"serving_default": module.__call__})
    return os.fspath(path)


def whole_image_reference(
    values: np.ndarray, model: SRModel | str, *, halo: int | None = None
) -> np.ndarray:
    """The model applied once to the whole (band, y, x) image, mirror-padded by the halo.

    Returns float32 (band, scale*y, scale*x): what chunked upscaling must equal.
    """
    handle = load_model(model, bands=values.shape[0])
    h = handle.halo if halo is None else halo
    padded = np.pad(values.astype(np.float32), ((0, 0), (h, h), (h, h)), mode="symmetric")
    out = handle(np.ascontiguousarray(padded.transpose(1, 2, 0))[None])[0].transpose(2, 0, 1)
    c = h * handle.scale
    return out[:, c : out.shape[1] - c, c : out.shape[2] - c]


def assert_tiling_invariant(
    da: xr.DataArray, model: SRModel | str, *, rtol: float = 1e-5, **upscale_kwargs
) -> None:
    """Assert that ``xsr4rs.upscale(da, model, **kwargs)`` equals whole-image inference.

    ``da`` must be a (band, y, x) float raster without no-data.
    """
    from xsr4rs.upscale import upscale

    got = upscale(da, model, dtype="float32", **upscale_kwargs).values
    ref = whole_image_reference(np.asarray(da.values), model, halo=upscale_kwargs.get("halo"))
    scale = max(float(np.abs(ref).max()), 1e-30)
    err = float(np.abs(got - ref).max()) / scale
    assert got.shape == ref.shape, f"shape {got.shape} != whole-image {ref.shape}"
    assert err <= rtol, f"chunked output differs from whole-image output by {err:.2e} (relative)"
