"""Built-in baseline models (nearest and bicubic, x2 and x4) as real SavedModels.

They are written on first use into the cache directory (``$XSR4RS_CACHE_DIR`` or
``~/.cache/xsr4rs``) and then load like any other model, so the baselines exercise exactly
the code path of a trained network. Both accept any band count.

``nearest`` repeats each pixel ``scale x scale`` times: averaging each output block gives
the input back exactly, which makes it the oracle for georeferencing tests.
``bicubic`` is the Keys cubic convolution (a = -0.5, the kernel of GDAL's and
TensorFlow's bicubic) on pixel centres, evaluated as ``scale`` phases of a 4-tap filter
along each axis; its halo is 2 input pixels.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from xsr4rs.model.contract import ModelMetadata, is_saved_model, write_metadata

#: Bump when the graph of a built-in changes, so caches are rebuilt.
_VERSION = 1

_SPECS = {
    "nearest-x2": ("nearest", 2),
    "nearest-x4": ("nearest", 4),
    "bicubic-x2": ("bicubic", 2),
    "bicubic-x4": ("bicubic", 4),
}
_ALIASES = {"nearest": "nearest-x4", "bicubic": "bicubic-x4"}
_HALO = {"nearest": 0, "bicubic": 2}


#: Trained models shipped inside the package (folder ``xsr4rs/models/NAME``).
PACKAGED = ("s2-rgbn-x4",)
#: The model ``xsr4rs upscale`` uses when no ``--model`` is given.
DEFAULT_MODEL = "s2-rgbn-x4"


def builtin_models() -> list[str]:
    """Names accepted wherever a model is expected (aliases included)."""
    return list(PACKAGED) + sorted(_SPECS) + sorted(_ALIASES)


def is_builtin(name: str) -> bool:
    return name in _SPECS or name in _ALIASES or name in PACKAGED


def packaged_path(name: str) -> Path:
    """Folder of a model shipped inside the package."""
    return Path(__file__).resolve().parent.parent / "models" / name


def cache_dir() -> Path:
    root = os.environ.get("XSR4RS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "xsr4rs"
    )
    return Path(root) / "models"


def keys_weights(scale: int, a: float = -0.5) -> np.ndarray:
    """(scale, 5) weights of input pixels k-2..k+2 for the ``scale`` output phases of pixel k.

    Output pixel ``scale*k + r`` has its centre at ``k + (2r + 1) / (2 scale) - 1/2`` in
    input pixel units; each row sums to 1.
    """

    def w(x: np.ndarray) -> np.ndarray:
        x = np.abs(x)
        return np.where(
            x <= 1,
            (a + 2) * x**3 - (a + 3) * x**2 + 1,
            np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0.0),
        )

    d = (2 * np.arange(scale) + 1) / (2 * scale) - 0.5
    taps = np.arange(-2, 3)
    return w(d[:, None] - taps[None, :])


def builtin_path(name: str) -> str:
    """Path of the built-in model ``name``, writing it into the cache on first use."""
    if name in PACKAGED:
        return str(packaged_path(name))
    name = _ALIASES.get(name, name)
    kind, scale = _SPECS[name]
    path = cache_dir() / f"{name}-v{_VERSION}"
    if not is_saved_model(path):
        _write(path, kind, scale)
    return str(path)


def _write(path: Path, kind: str, scale: int) -> None:
    from xsr4rs._tf import import_tf

    tf = import_tf()
    weights = keys_weights(scale).astype(np.float32)

    def along(x, axis: int):
        """Bicubic upscaling along axis 1 or 2 of an NHWC tensor."""
        pad = [[0, 0]] * 4
        pad[axis] = [2, 2]
        xp = tf.pad(x, pad, mode="SYMMETRIC")
        n = tf.shape(x)[axis]
        phases = []
        for r in range(scale):
            acc = None
            for t in range(5):
                if weights[r, t] == 0:
                    continue
                begin = [0, 0, 0, 0]
                begin[axis] = t
                size = [-1, -1, -1, -1]
                size = tf.tensor_scatter_nd_update(tf.constant(size), [[axis]], [n])
                term = float(weights[r, t]) * tf.slice(xp, begin, size)
                acc = term if acc is None else acc + term
            phases.append(acc)
        y = tf.stack(phases, axis=axis + 1)
        shape = tf.shape(x)
        new = tf.tensor_scatter_nd_update(shape, [[axis]], [n * scale])
        return tf.reshape(y, new)

    class Baseline(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.float32)])
        def upscale(self, x):
            if kind == "nearest":
                y = tf.repeat(tf.repeat(x, scale, axis=1), scale, axis=2)
            else:
                y = along(along(x, 1), 2)
            return {"output_0": y}

    module = Baseline()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        target = tmp / "model"
        tf.saved_model.save(module, str(target), signatures={"serving_default": module.upscale})
        write_metadata(
            target,
            ModelMetadata(
                scale=scale,
                halo=_HALO[kind],
                name=f"{kind}-x{scale}",
                description=(
                    f"{kind} interpolation x{scale} (built-in baseline, any band count, "
                    "values in the input's units)"
                ),
                provenance={"builtin": True, "version": _VERSION},
            ),
        )
        try:
            os.replace(target, path)
        except OSError:  # another process wrote it first
            if not is_saved_model(path):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
