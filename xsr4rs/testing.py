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


#: The cropped outputs of an SR4RS SavedModel: ``output_P`` is the x4 output with P
#: output pixels removed from every side.
SR4RS_PADS = (32, 64, 128, 256, 512)


def make_sr4rs_format_model(
    path: str | os.PathLike[str],
    *,
    bands: int = 4,
    dtype: str = "int16",
    blocks: int = 2,
    depth: int = 8,
    seed: int = 0,
) -> str:
    """Write a SavedModel in the format SR4RS's ``train.py`` exports; return ``path``.

    Written from SR4RS's documented export (github remicres/sr4rs, ``code/train.py``),
    not from its code: a TF1 graph (reference variables) saved by ``simple_save`` with
    tag ``serve``; one input keyed ``lr_input:0`` of type ``dtype`` whose placeholder
    defaults to a dataset iterator (as SR4RS's training pipeline); values scaled by 1e-4
    on the way in and 1e4 on the way out inside the graph; five outputs
    ``output_32:0`` ... ``output_512:0``, the x4 output with 32 ... 512 output pixels
    cropped from every side. The generator is small (a 5x5 convolution, ``blocks``
    residual blocks, two stride-2 transposed convolutions, a 3x3 convolution, plus the
    nearest-neighbour upscaled input), so its receptive radius is ``4 + 2*blocks`` input
    pixels and its output stays close to the input's values.
    """
    from xsr4rs._tf import import_tf

    tf = import_tf()
    v1 = tf.compat.v1
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():

        def weight(name: str, shape: tuple[int, ...], std: float) -> object:
            init = rng.normal(0, std, shape).astype("float32")
            return v1.get_variable(name, initializer=init, use_resource=False)

        def conv(x: object, name: str, k: int, n_in: int, n_out: int) -> object:
            w = weight(name, (k, k, n_in, n_out), 0.5 / (k * np.sqrt(n_in)))
            return tf.nn.conv2d(x, w, strides=1, padding="SAME")

        def up(x: object, name: str, n: int) -> object:
            w = weight(name, (4, 4, n, n), 0.5 / (4 * np.sqrt(n)))
            shape = tf.shape(x)
            out_shape = tf.stack([shape[0], 2 * shape[1], 2 * shape[2], n])
            return tf.nn.leaky_relu(
                tf.nn.conv2d_transpose(x, w, out_shape, strides=2, padding="SAME"), 0.2
            )

        tf_dtype = tf.as_dtype(dtype)
        default = np.zeros((1, 8, 8, bands), dtype=dtype)
        iterator = v1.data.make_initializable_iterator(
            tf.data.Dataset.from_tensors(default).repeat()
        )
        lr = v1.placeholder_with_default(
            iterator.get_next(), shape=(None, None, None, bands), name="lr_input"
        )
        x = 1e-4 * tf.cast(lr, tf.float32)
        h = tf.nn.leaky_relu(conv(x, "conv_in", 5, bands, depth), 0.2)
        for i in range(blocks):
            r = tf.nn.leaky_relu(conv(h, f"block{i}_a", 3, depth, depth), 0.2)
            h = h + conv(r, f"block{i}_b", 3, depth, depth)
        h = up(up(h, "up1", depth), "up2", depth)
        y = conv(h, "conv_out", 3, depth, bands)
        y = y + tf.repeat(tf.repeat(x, 4, axis=1), 4, axis=2)
        gen = 1e4 * y
        outputs = {
            f"output_{p}:0": tf.identity(gen[:, p:-p, p:-p, :], name=f"output_{p}")
            for p in SR4RS_PADS
        }
        assert lr.dtype == tf_dtype
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            v1.saved_model.simple_save(sess, os.fspath(path), {"lr_input:0": lr}, outputs)
    return os.fspath(path)
