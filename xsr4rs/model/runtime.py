"""The loaded serving function of one SavedModel in this process, called by output name.

This is where foreign signatures are met: input keys with TF1 ``:0`` suffixes, integer
input types (values are cast with a check that they fit), several outputs (one is chosen
by name). What an output's geometry is (scale, cropped border) is measured by
`xsr4rs.model.probe`; `xsr4rs.model.handle.SRModel` then presents every model to the
engine as the same float32 ``[1, H, W, bands] -> [1, s*H, s*W, out]`` function.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xsr4rs.exceptions import InputError, ModelError
from xsr4rs.tiling import conv_input_sizes


def output_key(name: str, outputs: list[str]) -> str:
    """The key of ``outputs`` named ``name``, with or without a ``:0`` suffix.

    >>> output_key("output_64", ["output_32:0", "output_64:0"])
    'output_64:0'
    """
    bare = name.split(":")[0]
    for key in outputs:
        if key == name or key.split(":")[0] == bare:
            return key
    raise ModelError(f"the model has no output {name!r}: its outputs are {', '.join(outputs)}")


def choose_output(output: str | None, outputs: list[str]) -> str:
    """The key of the output to use: ``output`` (see `output_key`), or the only one."""
    if output is not None:
        return output_key(output, outputs)
    if len(outputs) != 1:
        raise ModelError(
            f"the model returns {len(outputs)} outputs ({', '.join(outputs)}): choose one "
            "with output= (CLI --output)"
        )
    return outputs[0]


def bands_first(y: np.ndarray, crop: int) -> np.ndarray:
    """Model output ``[n, h, w, bands]`` with ``crop`` pixels cut from every side, as a
    ``[n, bands, h - 2 crop, w - 2 crop]`` view."""
    return y[:, crop : y.shape[1] - crop, crop : y.shape[2] - crop].transpose(0, 3, 1, 2)


def to_input_dtype(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``x`` (float32 ``[n, h, w, bands]``) as the model's input type.

    Integers are rounded; a value that does not fit the type raises `InputError` naming
    the band and the value (a silent wrap would turn 40000 into -25536 in int16).
    """
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype, copy=False)
    if not np.issubdtype(dtype, np.integer):
        raise ModelError(f"the model takes {dtype} input: xsr4rs gives it numbers only")
    info = np.iinfo(dtype)
    lo = x.min(axis=(0, 1, 2))
    hi = x.max(axis=(0, 1, 2))
    for band, (a, b) in enumerate(zip(lo, hi, strict=True)):
        bad = a if a < info.min else b if b > info.max else None
        if bad is not None or not (np.isfinite(a) and np.isfinite(b)):
            raise InputError(
                f"band {band + 1} holds the value {bad if bad is not None else a:g}, which does "
                f"not fit the model's {dtype} input ({info.min}..{info.max}): convert the "
                "data to the units the model was trained on, or mark such pixels as no-data"
            )
    return np.rint(x).astype(dtype)


#: Graph operations that oneDNN runs as 2-D convolutions on CPU.
_CONVOLUTIONS = ("Conv2D", "Conv2DBackpropInput", "DepthwiseConv2dNative", "_FusedConv2D")


class Runtime:
    """A SavedModel loaded in this process (after its graph was checked)."""

    def __init__(self, path: str, trusted: bool = False) -> None:
        from xsr4rs._tf import import_tf
        from xsr4rs.model.savedmodel import check_trusted

        tf = import_tf()
        check_trusted(path, stamp_of(path), trust=trusted)  # before anything of it runs
        for gpu in tf.config.list_physical_devices("GPU"):
            try:  # take GPU memory as needed, so several processes can share a GPU
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # TensorFlow already initialised its devices
                pass
        try:
            loaded = tf.saved_model.load(path)
        except Exception as err:  # TensorFlow raises many types here
            raise ModelError(f"cannot load the SavedModel {path}: {first_line(err)}") from None
        fn = loaded.signatures.get("serving_default")
        if fn is None and loaded.signatures:
            fn = next(iter(loaded.signatures.values()))
        if fn is None:
            raise ModelError(
                f"the SavedModel {path} has no serving signature: export it with "
                "xsr4rs.export_model() or with a signature taking one [batch, H, W, bands] tensor"
            )
        inputs = fn.structured_input_signature[1]
        if len(inputs) != 1 or fn.structured_input_signature[0]:
            raise ModelError(
                f"the SavedModel {path} serving signature takes {len(inputs)} named inputs "
                f"({', '.join(inputs)}); xsr4rs needs one [batch, H, W, bands] tensor: export "
                "the model with a signature taking only the image, e.g. xsr4rs.export_model()"
            )
        ((self.input_key, spec),) = inputs.items()
        if spec.shape.rank not in (None, 4):
            raise ModelError(
                f"the SavedModel {path} takes a tensor of shape {spec.shape}; "
                "xsr4rs needs [batch, H, W, bands]"
            )
        outputs = fn.structured_outputs
        self.outputs = list(outputs) if isinstance(outputs, dict) else ["output_0"]
        self.bands = spec.shape[-1] if spec.shape.rank == 4 else None
        self.dtype = np.dtype(spec.dtype.as_numpy_dtype)
        self.fn = fn
        self.loaded = loaded  # keeps variables alive
        self.tf = tf
        self._cores: dict[str | None, Any] = {}

    def conv_inputs_per_pixel(self, bands: int, side: int = 64) -> dict[str, float] | None:
        """Largest input of the graph's 1x1 and larger convolutions, in elements per input
        pixel, and the most input features of the larger ones (the keys of
        ``ModelMetadata.conv_input_elements_per_pixel``), by static shape inference on a
        ``side`` x ``side`` input (nothing runs).

        This sees the convolutions of graphs that hold them directly, as TF1 SavedModels
        do (SR4RS's); convolutions inside called functions (Keras exports) are not
        reached, and ``None`` is returned when no convolution of known size is found.
        """
        tf = self.tf
        feeds = [t for t in self.fn.inputs if t.dtype != tf.resource]
        if len(feeds) != 1:
            return None
        convs = []
        try:
            graph_def = self.fn.graph.as_graph_def()
            with tf.Graph().as_default() as graph:
                x = tf.compat.v1.placeholder(feeds[0].dtype, [1, side, side, bands])
                tf.graph_util.import_graph_def(graph_def, input_map={feeds[0].name: x}, name="")
                for op in graph.get_operations():
                    if op.type not in _CONVOLUTIONS:
                        continue
                    # a transposed convolution's image is its third input
                    image = op.inputs[2] if op.type == "Conv2DBackpropInput" else op.inputs[0]
                    kernel = op.inputs[1].shape
                    if image.shape.is_fully_defined() and kernel.rank == 4:
                        convs.append((tuple(kernel[:2]), tuple(image.shape[1:])))
        except Exception:  # an unusual graph: no cap rather than a failed load
            return None
        return conv_input_sizes(convs, side**2) if convs else None

    def every(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every output for the float32 input ``x``, from one run of the model."""
        out = self.fn(**{self.input_key: self.tf.constant(to_input_dtype(x, self.dtype))})
        if not isinstance(out, dict):
            out = {self.outputs[0]: out}
        return {k: v.numpy().astype(np.float32, copy=False) for k, v in out.items()}

    def core(self, x: np.ndarray, output: str | None, crop: int) -> np.ndarray:
        """The output ``output`` for ``x`` with ``crop`` pixels cut from every side, bands
        first (``[n, bands, h, w]`` float32): cropped and transposed by TensorFlow, on
        all its threads, in the same graph run as the model."""
        fn = self._cores.get(output)
        if fn is None:
            fn = self._cores[output] = self._core_function(output)
        tf = self.tf
        tensor = tf.constant(to_input_dtype(x, self.dtype))
        return fn(tensor, tf.constant(crop, tf.int32)).numpy()

    def _core_function(self, output: str | None) -> Any:
        tf = self.tf
        key = choose_output(output, self.outputs)
        spec = tf.TensorSpec([None, None, None, None], tf.as_dtype(self.dtype))

        @tf.function(input_signature=[spec, tf.TensorSpec([], tf.int32)])
        def core(x: Any, crop: Any) -> Any:
            out = self.fn(**{self.input_key: x})
            y = out[key] if isinstance(out, dict) else out
            h, w = tf.shape(y)[1], tf.shape(y)[2]
            y = tf.cast(y[:, crop : h - crop, crop : w - crop, :], tf.float32)
            return tf.transpose(y, [0, 3, 1, 2])

        return core

    def __call__(self, x: np.ndarray, output: str | None = None) -> np.ndarray:
        """The output ``output`` (the only one when ``None``) for the float32 input ``x``."""
        tensor = self.tf.constant(to_input_dtype(x, self.dtype))
        out = self.fn(**{self.input_key: tensor})
        if isinstance(out, dict):
            out = out[choose_output(output, list(out))]
        return out.numpy().astype(np.float32, copy=False)


#: Lines of TensorFlow's error text that say where, not what.
_TF_NOISE = (
    "Graph execution error",
    "Detected at node",
    "<stack traces unavailable>",
    "File ",
    "[[",
)


def first_line(err: BaseException) -> str:
    """The line of ``err`` that says what went wrong: its first, past TensorFlow's
    "Graph execution error:" preamble and node locations."""
    lines = [line.strip() for line in str(err).strip().splitlines()]
    lines = [line for line in lines if line]
    for line in lines:
        if not line.startswith(_TF_NOISE):
            return line
    return lines[0] if lines else type(err).__name__


def shape_related(message: str) -> bool:
    """Whether a model's error message is about tensor sizes (odd tiles and the like)."""
    words = ("shape", "divisible", "dimension", "size", "incompatible")
    return any(w in message.lower() for w in words)


def stamp_of(path: str) -> tuple[int, int]:
    """(mtime, size) of the SavedModel's protobuf: it changes when the model is rewritten."""
    import os

    for name in ("saved_model.pb", "saved_model.pbtxt"):
        p = os.path.join(path, name)
        if os.path.exists(p):
            st = os.stat(p)
            return st.st_mtime_ns, st.st_size
    return 0, 0
