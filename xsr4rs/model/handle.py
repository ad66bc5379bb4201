"""A picklable handle on a SavedModel that loads it lazily, once per process.

The handle holds only the model's path, a stamp of its files and its metadata, so a dask
graph (local or distributed) carries a few hundred bytes per model, never the weights.
Each process loads the SavedModel on first use and keeps it; TensorFlow calls are
serialised per process, so dask threads overlap reading and writing with one inference
that uses all the cores TensorFlow is given.

Whatever its signature (several outputs, an output cropped by a fixed border, an integer
input type, TF1 names), an `SRModel` is called like every other: float32
``[1, H, W, bands]`` in, float32 ``[1, scale*H, scale*W, out]`` out, a cropped border
restored (as zeros, which the halo keeps out of every tile's core).
"""

from __future__ import annotations

import hashlib
import json
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
from xsr4rs.model.runtime import Runtime, bands_first, first_line, output_key, stamp_of

log = logging.getLogger("xsr4rs")

_LOAD_LOCK = threading.Lock()
_RUN_LOCK = threading.Lock()
_LOADED: dict[tuple[str, tuple[int, int]], Runtime] = {}
#: Metadata measured for plain SavedModels, so probing happens once per process.
_PROBED: dict[tuple[Any, ...], ModelMetadata] = {}
#: Bump when what probing measures changes, so cached measurements are redone.
_PROBE_VERSION = 3


def runtime(path: str, stamp: tuple[int, int], trusted: bool = False) -> Runtime:
    """The model at ``path`` loaded in this process (once per path and stamp)."""
    key = (path, stamp)
    rt = _LOADED.get(key)
    if rt is None:
        with _LOAD_LOCK:
            rt = _LOADED.get(key)
            if rt is None:
                rt = _LOADED[key] = Runtime(path, trusted)
    return rt


def loaded_models() -> list[str]:
    """Paths of the SavedModels loaded in this process (for tests and diagnostics)."""
    return [path for path, _ in _LOADED]


def restore_crop(y: np.ndarray, crop: int) -> np.ndarray:
    """A "valid" output cropped by ``crop`` pixels per side, padded back to full extent."""
    if not crop:
        return y
    return np.pad(y, ((0, 0), (crop, crop), (crop, crop), (0, 0)))


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
        rt = runtime(self.path, self.stamp, self.trusted)
        with _RUN_LOCK:
            y = rt(x, self.metadata.output)
        return restore_crop(y, self.metadata.crop)

    def core(self, x: np.ndarray, crop: int) -> np.ndarray:
        """The model on ``x`` (float32 ``[batch, H, W, bands]``) with ``crop`` output pixels
        cut from every side, bands first: ``[batch, out, scale*H - 2*crop, ...]``. The
        engine's fast path (cropping and transposing happen in TensorFlow); ``crop`` must
        be at least the border the model crops itself."""
        meta = self.metadata
        if crop < meta.crop:  # the restored border (zeros) is kept: as the plain call
            return bands_first(self(x), crop)
        rt = runtime(self.path, self.stamp, self.trusted)
        with _RUN_LOCK:
            return rt.core(x, meta.output, crop - meta.crop)

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
    output: str | None = None,
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
    output
        For models with several outputs (SR4RS's ``output_32:0`` ... ``output_512:0``),
        the one to use, with or without ``:0``; default: the largest.

    A SavedModel without xsr4rs metadata is probed with small tiles: for each output its
    scale and the border it crops (a "valid" output of ``scale*H - 2*crop`` pixels) from
    the output shapes and, unless ``halo`` is given, its halo from how far one changed
    input pixel changes the output. Measured halos are cached on disk (beside the
    built-in models) per model file, so later runs skip the measurement.
    """
    from xsr4rs.tiling import check_positive_int

    if halo is not None:
        halo = check_positive_int("halo", halo, minimum=0)
    if isinstance(model, SRModel):
        if trust and not model.trusted:
            model = SRModel(model.path, model.metadata, model.stamp, True)
        return model if halo is None else _override_halo(model, halo)
    from xsr4rs.model.builtin import builtin_path, is_builtin
    from xsr4rs.model.savedmodel import check_trusted

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
    stamp = stamp_of(path)
    report = check_trusted(path, stamp, trust=trust)
    metadata = read_metadata(path)
    if metadata is None:
        key = (path, stamp, halo, bands, output)
        if key not in _PROBED:
            _PROBED[key] = _probe(path, stamp, halo=halo, bands=bands, trusted=trust, output=output)
        metadata = _PROBED[key]
    elif output is not None:
        outputs = list(report.signatures["serving_default"].outputs) if report else [output]
        chosen = output_key(output, outputs) if report else output
        if chosen != (metadata.output or chosen):
            raise ModelError(
                f"model {metadata.name!r} declares its output {metadata.output!r}; "
                f"{output!r} was asked for"
            )
    handle = SRModel(path, metadata, stamp, trust)
    return handle if halo is None else _override_halo(handle, halo)


def _override_halo(model: SRModel, halo: int) -> SRModel:
    meta = model.metadata
    need = -(-meta.crop // meta.scale)
    if halo < need:
        raise ModelError(
            f"halo={halo} is smaller than the border the model crops from its output "
            f"({meta.crop} output pixels = {need} input pixels): use halo >= {need}"
        )
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
    path: str,
    stamp: tuple[int, int],
    *,
    halo: int | None,
    bands: int | None,
    trusted: bool,
    output: str | None,
) -> ModelMetadata:
    cache = _probe_cache_file(path, stamp, bands, output)
    if halo is None and cache is not None and cache.is_file():
        try:
            return ModelMetadata.from_dict(json.loads(cache.read_text()))
        except (OSError, ValueError, ModelError):
            pass  # measured again below
    meta = _measure(path, stamp, halo=halo, bands=bands, trusted=trusted, output=output)
    if halo is None and cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
            tmp.write_text(json.dumps(meta.to_dict()))
            os.replace(tmp, cache)
        except OSError:
            pass  # a read-only cache only costs a measurement next time
    return meta


def _probe_cache_file(
    path: str, stamp: tuple[int, int], bands: int | None, output: str | None
) -> Path | None:
    from xsr4rs.model.builtin import cache_dir

    variables = Path(path) / "variables" / "variables.index"
    vstamp = (variables.stat().st_mtime_ns, variables.stat().st_size) if variables.exists() else 0
    key = json.dumps([_PROBE_VERSION, path, stamp, vstamp, bands, output])
    return cache_dir().parent / "probes" / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".json")


def _measure(
    path: str,
    stamp: tuple[int, int],
    *,
    halo: int | None,
    bands: int | None,
    trusted: bool,
    output: str | None,
) -> ModelMetadata:
    from xsr4rs.model.probe import measure_halo, output_geometries

    rt = runtime(path, stamp, trusted)
    n = rt.bands if rt.bands is not None else (bands or 1)
    wanted = output_key(output, rt.outputs) if output is not None else None

    def every(x: np.ndarray) -> dict[str, np.ndarray]:
        with _RUN_LOCK:
            return rt.every(x)

    try:
        geometry, (h, w) = output_geometries(every, n, wanted)
    except ModelError:
        raise
    except Exception as err:
        raise ModelError(
            f"calling the SavedModel {path} on a tile of shape [1, 32, 48, {n}] "
            f"({rt.dtype}) failed: {first_line(err)}"
        ) from None
    if wanted is not None:
        geometry = {wanted: geometry[wanted]}
    usable = {k: g for k, g in geometry.items() if g is not None}
    if not usable:
        raise ModelError(
            f"the SavedModel {path} returns empty outputs on tiles up to {h}x{w} pixels: "
            "its output is cropped by more than xsr4rs can probe"
        )
    # the largest output: the one with the smallest cropped border
    chosen = min(usable, key=lambda k: usable[k][1]) if wanted is None else wanted
    if chosen not in usable:
        raise ModelError(f"the output {chosen!r} of {path} stays empty on every probe tile")
    scale, crop, out_bands = usable[chosen]
    key_out = chosen if len(rt.outputs) > 1 else None
    need = -(-crop // scale)
    measured = halo is None
    if measured:

        def adapted(x: np.ndarray) -> np.ndarray:
            with _RUN_LOCK:
                return restore_crop(rt(x, key_out), crop)

        radius = measure_halo(adapted, n, scale, blind=need)
        halo = max(radius, need)
        log.info("measured halo of %s: %d input pixels (radius %d)", path, halo, radius)
    elif halo < need:
        raise ModelError(
            f"halo={halo} is smaller than the border the model crops from its output "
            f"({crop} output pixels = {need} input pixels): use halo >= {need}"
        )
    in_names = None if rt.bands is None else tuple(f"band_{i + 1}" for i in range(n))
    out_names = None
    if out_bands != n:
        out_names = tuple(f"band_{i + 1}" for i in range(out_bands))
    outputs = {
        k: ({"scale": g[0], "crop": g[1], "bands": g[2]} if g else f"empty on a {h}x{w} tile")
        for k, g in geometry.items()
    }
    return ModelMetadata(
        scale=scale,
        halo=int(halo),
        input_bands=in_names,
        output_bands=out_names,
        output=key_out,
        crop=crop,
        conv_input_elements_per_pixel=rt.conv_inputs_per_pixel(n),
        name=Path(path).name,
        provenance={
            "probed": True,
            "halo_measured": int(halo) if measured else None,
            "input": {"key": rt.input_key, "dtype": rt.dtype.name},
            "outputs": outputs,
        },
    )
