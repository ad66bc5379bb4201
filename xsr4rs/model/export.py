"""Write a Keras model as an xsr4rs SavedModel: the serving signature plus its metadata."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xsr4rs.exceptions import HaloWarning, ModelError, OutputError
from xsr4rs.model.contract import ModelMetadata, write_metadata
from xsr4rs.model.handle import SRModel, load_model, runtime
from xsr4rs.model.runtime import stamp_of


def export_model(
    keras_model: Any,
    path: str | os.PathLike[str],
    *,
    scale: int,
    bands: int | Sequence[str],
    output_bands: Sequence[str] | None = None,
    units: str | None = None,
    scale_factor: float | None = None,
    add_offset: float | None = None,
    nodata: float | None = None,
    bound: tuple[float, float] | None = None,
    value_range: tuple[float, float] | None = None,
    halo: int | None = None,
    fill_values: Sequence[float] | None = None,
    tile: int | None = None,
    name: str | None = None,
    description: str | None = None,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> SRModel:
    """Export ``keras_model`` as a SavedModel with xsr4rs metadata and return its handle.

    The model must be fully convolutional, take float32 ``[batch, H, W, bands]`` in the
    data's own units and return ``[batch, scale*H, scale*W, out_bands]`` in the same
    units (put any scaling inside the model, e.g. ``keras.layers.Rescaling``).

    The exported model is reloaded and probed: its scale must equal ``scale`` and its
    halo is measured. Without ``halo`` the measured one is stored; a ``halo`` smaller than
    the measurement warns (`HaloWarning`), since tiles would then show seams.
    ``path`` is written atomically: a failure leaves nothing behind.
    """
    from xsr4rs._tf import import_tf
    from xsr4rs.model.probe import measure_halo, probe_scale

    tf = import_tf()
    names = [f"band_{i + 1}" for i in range(bands)] if isinstance(bands, int) else list(bands)
    if not names:
        raise ModelError("bands must name at least one band")
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists: pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        target = tmp / "model"
        spec = tf.TensorSpec([None, None, None, len(names)], tf.float32, name="image")
        try:
            keras_model.export(
                str(target), format="tf_saved_model", input_signature=[spec], verbose=False
            )
        except Exception as err:
            raise ModelError(f"exporting the Keras model failed: {err}") from err
        rt = runtime(str(target), stamp_of(str(target)), trusted=True)  # just written by us
        probed_scale, n_out = probe_scale(rt, len(names))
        if probed_scale != scale:
            raise ModelError(f"the model upscales by {probed_scale}, not by scale={scale}")
        if output_bands is not None and len(output_bands) != n_out:
            raise ModelError(
                f"the model returns {n_out} bands, output_bands names {len(output_bands)}"
            )
        try:
            measured: int | None = measure_halo(rt, len(names), scale, value_range)
        except ModelError:
            if halo is None:
                raise
            measured = None  # global receptive field: the caller chose a halo knowingly
        if halo is not None and measured is not None and halo < measured:
            warnings.warn(
                f"halo={halo} is smaller than the measured receptive field radius {measured}: "
                "tiled output will differ from whole-image output",
                HaloWarning,
                stacklevel=2,
            )
        meta = ModelMetadata(
            scale=scale,
            halo=measured if halo is None else int(halo),
            input_bands=tuple(names),
            output_bands=tuple(output_bands)
            if output_bands is not None
            else (None if n_out == len(names) else tuple(f"band_{i + 1}" for i in range(n_out))),
            units=units,
            scale_factor=scale_factor,
            add_offset=add_offset,
            nodata=nodata,
            bound=tuple(bound) if bound is not None else None,
            value_range=tuple(value_range) if value_range is not None else None,
            fill_values=tuple(float(v) for v in fill_values) if fill_values is not None else None,
            tile=tile,
            tensor_elements_per_pixel=_elements_per_pixel(keras_model, len(names)),
            conv_input_elements_per_pixel=conv_inputs_per_pixel(keras_model, len(names)),
            name=name or path.name,
            description=description,
            provenance={**(provenance or {}), "halo_measured": measured},
        )
        write_metadata(target, meta)
        if path.exists():
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return load_model(path)


def conv_inputs_per_pixel(keras_model: Any, bands: int) -> dict[str, float] | None:
    """Size of the largest input of the model's 1x1 and of its larger convolutions, per
    input pixel, and the most input features of the larger ones (``{"1x1": ..., "kxk":
    ..., "features": ...}``), from a call on a 16 x 16 tile.

    Any layer with a 4-D kernel counts as a 2-D convolution (Keras's ``Conv2D``,
    transposed, depthwise and separable ones, and custom layers), nested models included,
    measured at the resolution of the outer input. ``None`` where the layers' inputs
    cannot be reached (subclassed models, layers called more than once).
    """
    from xsr4rs.tiling import conv_input_sizes

    convs = _conv_inputs(keras_model, bands)
    return None if convs is None else conv_input_sizes(convs, 256)


def _conv_inputs(keras_model: Any, bands: int) -> list[tuple[Any, Any]] | None:
    """(kernel (kh, kw), input shape) of every convolution of ``keras_model`` and of its
    nested models, on a 16 x 16 input; ``None`` where they cannot be reached."""
    import keras
    import numpy as np

    found: list[tuple[Any, Any]] = []
    try:
        for layer in keras_model.layers:
            if isinstance(layer, keras.Model):
                inner = _conv_inputs(layer, layer.input.shape[-1])
                if inner is None:
                    return None
                found += inner
        # a convolution is a layer with a 4-D kernel (kh, kw, ...): Keras's own and custom ones
        convs = []
        for layer in keras_model.layers:
            kernels = [w.shape for w in layer.weights if len(w.shape) == 4]
            if kernels and not isinstance(layer, keras.Model):
                convs.append((layer, tuple(kernels[0][:2])))
        if convs:
            probe = keras.Model(keras_model.input, [layer.input for layer, _ in convs])
            values = probe(np.zeros((1, 16, 16, bands), dtype="float32"))
            values = values if isinstance(values, list | tuple) else [values]
            found += [
                (kernel, tuple(value.shape[1:]))
                for (_, kernel), value in zip(convs, values, strict=True)
            ]
    except Exception:
        return None
    return found


def _elements_per_pixel(keras_model: Any, bands: int) -> float | None:
    """Size of the largest layer output per input pixel, from a call on a 16 x 16 tile.

    Only functional and sequential Keras models expose their layers' outputs; for others
    ``None`` is returned and tiles keep the default size.
    """
    import keras
    import numpy as np

    try:
        # a nested model (e.g. a generator wrapped with its scaling) is measured on its own,
        # at the resolution of the outer input
        nested = [
            _elements_per_pixel(layer, layer.input.shape[-1])
            for layer in keras_model.layers
            if isinstance(layer, keras.Model)
        ]
        outputs = keras.tree.flatten(
            [layer.output for layer in keras_model.layers if not isinstance(layer, keras.Model)]
        )
        probe = keras.Model(keras_model.input, outputs)
        values = probe(np.zeros((1, 16, 16, bands), dtype="float32"))
    except Exception:
        return None
    values = values if isinstance(values, list | tuple) else [values]
    sizes = [float(np.prod(v.shape[1:])) / 256 for v in values]
    if any(n is None for n in nested):
        return None
    return max(sizes + nested)
