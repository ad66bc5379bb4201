"""A picklable handle on a SavedModel that loads it lazily, once per process.

The handle holds only the model's path, a stamp of its files and its metadata, so a dask
graph (local or distributed) carries a few hundred bytes per model, never the weights.
Each process loads the SavedModel on first use and keeps it; TensorFlow calls are
serialised per process, so dask threads overlap reading and writing with one inference
that uses all the cores TensorFlow is given.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from xsr4rs.exceptions import HaloWarning, ModelError
from xsr4rs.model.contract import ModelMetadata, is_saved_model, read_metadata

log = logging.getLogger("xsr4rs")

_LOAD_LOCK = threading.Lock()
_RUN_LOCK = threading.Lock()
_LOADED: dict[tuple[str, tuple[int, int]], _Runtime] = {}
#: Metadata measured for plain SavedModels, so probing happens once per process.
_PROBED: dict[tuple[Any, ...], ModelMetadata] = {}


class _Runtime:
    """The loaded serving function of one SavedModel in this process."""

    def __init__(self, path: str, trusted: bool = False) -> None:
        from xsr4rs._tf import import_tf
        from xsr4rs.model.savedmodel import check_trusted

        tf = import_tf()
        check_trusted(path, _stamp(path), trust=trusted)  # before anything of it runs
        for gpu in tf.config.list_physical_devices("GPU"):
            try:  # take GPU memory as needed, so several processes can share a GPU
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # TensorFlow already initialised its devices
                pass
        try:
            loaded = tf.saved_model.load(path)
        except Exception as err:  # TensorFlow raises many types here
            raise ModelError(f"cannot load the SavedModel {path}: {_first_line(err)}") from None
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
                f"the SavedModel {path} serving signature takes {len(inputs)} named inputs; "
                "xsr4rs needs exactly one [batch, H, W, bands] tensor"
            )
        outputs = fn.structured_outputs
        if isinstance(outputs, dict) and len(outputs) != 1:
            raise ModelError(
                f"the SavedModel {path} serving signature returns {len(outputs)} outputs "
                f"({', '.join(outputs)}); xsr4rs needs exactly one"
            )
        ((self.input_key, spec),) = inputs.items()
        if spec.shape.rank not in (None, 4):
            raise ModelError(
                f"the SavedModel {path} takes a tensor of shape {spec.shape}; "
                "xsr4rs needs [batch, H, W, bands]"
            )
        self.bands = spec.shape[-1] if spec.shape.rank == 4 else None
        self.dtype = spec.dtype
        self.fn = fn
        self.loaded = loaded  # keeps variables alive
        self.tf = tf

    def __call__(self, x: np.ndarray) -> np.ndarray:
        tensor = self.tf.constant(x, dtype=self.dtype)
        out = self.fn(**{self.input_key: tensor})
        if isinstance(out, dict):
            (out,) = out.values()
        return out.numpy().astype(np.float32, copy=False)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _stamp(path: str) -> tuple[int, int]:
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        p = os.path.join(path, name)
        if os.path.exists(p):
            st = os.stat(p)
            return st.st_mtime_ns, st.st_size
    return 0, 0


def _runtime(path: str, stamp: tuple[int, int], trusted: bool = False) -> _Runtime:
    key = (path, stamp)
    rt = _LOADED.get(key)
    if rt is None:
        with _LOAD_LOCK:
            rt = _LOADED.get(key)
            if rt is None:
                rt = _LOADED[key] = _Runtime(path, trusted)
    return rt


def loaded_models() -> list[str]:
    """Paths of the SavedModels loaded in this process (for tests and diagnostics)."""
    return [path for path, _ in _LOADED]


class SRModel:
    """A super-resolution model: a SavedModel path with its metadata.

    Create it with `load_model`. It pickles as its path, file stamp and metadata; the
    TensorFlow graph is loaded on the first call in each process and kept there.
    """

    __slots__ = ("path", "metadata", "stamp", "trusted")

    def __init__(
        self, path: str, metadata: ModelMetadata, stamp: tuple[int, int], trusted: bool = False
    ) -> None:
        self.path = path
        self.metadata = metadata
        self.stamp = stamp
        self.trusted = trusted

    # -- what the engine needs ---------------------------------------------------------
    @property
    def scale(self) -> int:
        return self.metadata.scale

    @property
    def halo(self) -> int:
        return self.metadata.halo

    @property
    def name(self) -> str:
        return self.metadata.name or Path(self.path).name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run the model on a float32 ``[batch, H, W, bands]`` array in this process."""
        rt = _runtime(self.path, self.stamp, self.trusted)
        with _RUN_LOCK:
            return rt(x)

    def with_halo(self, halo: int) -> SRModel:
        """A copy using ``halo`` input pixels instead of the model's own."""
        return SRModel(self.path, replace(self.metadata, halo=halo), self.stamp, self.trusted)

    # -- identity ----------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "metadata": self.metadata,
            "stamp": self.stamp,
            "trusted": self.trusted,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("xsr4rs.SRModel", self.path, self.stamp, repr(self.metadata))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SRModel) and self.__dask_tokenize__() == other.__dask_tokenize__()

    def __hash__(self) -> int:
        return hash(self.__dask_tokenize__())

    def __repr__(self) -> str:
        bands = self.metadata.n_input_bands
        return (
            f"SRModel({self.name!r}, scale={self.scale}, halo={self.halo}, "
            f"bands={bands if bands is not None else 'any'}, path={self.path!r})"
        )


def load_model(
    model: str | os.PathLike[str] | SRModel,
    *,
    halo: int | None = None,
    bands: int | None = None,
    trust: bool = False,
) -> SRModel:
    """Open a model: a SavedModel directory, a built-in name, or an `SRModel`.

    Parameters
    ----------
    model
        Path to a SavedModel directory, or the name of a built-in model
        (see `xsr4rs.builtin_models`), or an already loaded `SRModel`.
    halo
        Input pixels of overlap to use instead of the model's own (or measured) halo.
    bands
        Band count to probe a plain SavedModel with when its signature does not fix it.
    trust
        Run the model even if its graph reads or writes files, reaches the network or
        calls Python (`xsr4rs.model.savedmodel`); without it such a model raises
        `UntrustedModelError` before anything of it runs. ``XSR4RS_TRUST_MODELS=1``
        trusts every model.

    A SavedModel without xsr4rs metadata is probed with small tiles: its scale from the
    output shape and, unless ``halo`` is given, its halo from how far one changed input
    pixel changes the output. The measurement is logged and stored in the handle.
    """
    from xsr4rs.tiling import check_positive_int

    if halo is not None:
        halo = check_positive_int("halo", halo, minimum=0)
    if isinstance(model, SRModel):
        if trust and not model.trusted:
            model = SRModel(model.path, model.metadata, model.stamp, True)
        return model if halo is None else _override_halo(model, halo)
    from xsr4rs.model.builtin import builtin_path, is_builtin

    name = os.fspath(model)
    path = builtin_path(name) if is_builtin(name) else name
    path = os.path.abspath(path)
    if not os.path.exists(path):
        raise ModelError(
            f"model {name!r} not found: give a SavedModel directory or one of the built-in "
            f"models ({', '.join(_builtin_names())})"
        )
    if not is_saved_model(path):
        raise ModelError(
            f"{path} is not a TensorFlow SavedModel (no saved_model.pb inside): give the "
            "directory written by xsr4rs.export_model() or tf.saved_model.save()"
        )
    from xsr4rs.model.savedmodel import check_trusted

    stamp = _stamp(path)
    check_trusted(path, stamp, trust=trust)
    metadata = read_metadata(path)
    if metadata is None:
        key = (path, stamp, halo, bands)
        if key not in _PROBED:
            _PROBED[key] = _probe(path, stamp, halo=halo, bands=bands, trusted=trust)
        metadata = _PROBED[key]
    handle = SRModel(path, metadata, stamp, trust)
    return handle if halo is None else _override_halo(handle, halo)


def _override_halo(model: SRModel, halo: int) -> SRModel:
    if halo < model.halo:
        warnings.warn(
            f"halo={halo} is smaller than the model's halo {model.halo}: tiled output will "
            "differ from whole-image output (seams)",
            HaloWarning,
            stacklevel=3,
        )
    return model.with_halo(halo)


def _builtin_names() -> list[str]:
    from xsr4rs.model.builtin import builtin_models

    return builtin_models()


def _probe(
    path: str, stamp: tuple[int, int], *, halo: int | None, bands: int | None, trusted: bool
) -> ModelMetadata:
    from xsr4rs.model.probe import measure_halo, probe_scale

    rt = _runtime(path, stamp, trusted)
    n = rt.bands if rt.bands is not None else (bands or 1)

    def call(x: np.ndarray) -> np.ndarray:
        with _RUN_LOCK:
            return rt(x)

    try:
        scale, out_bands = probe_scale(call, n)
    except ModelError:
        raise
    except Exception as err:
        raise ModelError(
            f"calling the SavedModel {path} on a float32 tile of shape [1, 32, 48, {n}] "
            f"failed: {_first_line(err)}"
        ) from None
    measured = halo is None
    if measured:
        halo = measure_halo(call, n, scale)
        log.info("measured halo of %s: %d input pixels", path, halo)
    in_names = None if rt.bands is None else tuple(f"band_{i + 1}" for i in range(n))
    out_names = None
    if out_bands != n:
        out_names = tuple(f"band_{i + 1}" for i in range(out_bands))
    return ModelMetadata(
        scale=scale,
        halo=int(halo),
        input_bands=in_names,
        output_bands=out_names,
        name=Path(path).name,
        provenance={"probed": True, "halo_measured": int(halo) if measured else None},
    )
