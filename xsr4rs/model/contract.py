"""The model contract: metadata stored inside an xsr4rs SavedModel.

A model is a TensorFlow SavedModel whose serving signature maps one float32 tensor
``[batch, H, W, bands]`` in the data's own units to one float32 tensor
``[batch, scale*H, scale*W, out_bands]`` in the same units. xsr4rs models also carry
``assets/xsr4rs.json`` described by `ModelMetadata`; any other SavedModel with such a
signature works too, its scale and halo being measured.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from xsr4rs.exceptions import ModelError

FORMAT_VERSION = 1
METADATA_PATH = os.path.join("assets", "xsr4rs.json")


@dataclass(frozen=True)
class ModelMetadata:
    """What an xsr4rs model says about itself (``assets/xsr4rs.json``).

    Parameters
    ----------
    scale
        Integer upscaling factor.
    halo
        Input pixels each tile needs on every side (>= the receptive field radius).
    input_bands
        Names of the input bands in order; ``None`` means any band count (band-wise models).
    output_bands
        Names of the output bands; ``None`` means the same as the input.
    units
        Units of input and output values, e.g. ``"reflectance x 10000"``.
    scale_factor, add_offset
        The same in numbers, CF's way: ``physical = value * scale_factor + add_offset``
        (``1e-4`` and ``0`` for reflectance x 10000). When both the model and the input
        say how their values relate to physical ones, xsr4rs converts the input into the
        model's units and the output back (`xsr4rs.units`).
    nodata
        The value that means no data in the model's domain (0 for Sentinel-2 products):
        an integer input in the model's units that declares no no-data value of its own
        takes it, so its zeros are no-data and no valid output pixel equals it.
    project
        Whether `xsr4rs.upscale` applies the consistency projection by default.
    bound
        ``[low, high]``: every output pixel lies within ``low`` and ``high`` times the
        input pixel it falls in, where that is positive (a bound built into the model).
        xsr4rs applies it again after the consistency projection, which would otherwise
        undo it at sharp bright/dark edges.
    value_range
        ``[low, high]`` range of typical valid input values, used to reject data in other units.
    fill_values
        Per-band values given to the model in place of no-data pixels.
    tile
        Largest tile core (input pixels) the model should be called on.
    output
        Name of the signature output to use, for models with several (``None``: the only
        one).
    crop
        Output pixels the model crops from every side of its output ("valid" outputs:
        ``scale*H - 2*crop`` high); xsr4rs restores the full extent. The halo is at
        least ``ceil(crop / scale)``.
    tensor_elements_per_pixel
        Elements of the network's largest intermediate tensor per input pixel (e.g.
        ``64 * 4**2`` for 64 features at x4); tiles are capped so that no tensor reaches
        2**31 elements, where TensorFlow's CPU convolutions slow down.
    conv_input_elements_per_pixel
        Elements of the largest input of the network's convolutions per input pixel, by
        kernel: ``{"1x1": ..., "kxk": ...}`` (``kxk``: any larger kernel), and
        ``"features"``, the most input features of a ``kxk`` convolution. On CPUs without
        AVX-512, tiles are capped so that these stay below what oneDNN's fast
        convolution code takes (``xsr4rs.tiling.conv_tile_cap``).
    name, description, provenance
        Free text and a dict saying where the model comes from.
    """

    scale: int
    halo: int
    input_bands: tuple[str, ...] | None = None
    output_bands: tuple[str, ...] | None = None
    units: str | None = None
    scale_factor: float | None = None
    add_offset: float | None = None
    nodata: float | None = None
    project: bool = False
    bound: tuple[float, float] | None = None
    value_range: tuple[float, float] | None = None
    fill_values: tuple[float, ...] | None = None
    tile: int | None = None
    output: str | None = None
    crop: int = 0
    tensor_elements_per_pixel: float | None = None
    conv_input_elements_per_pixel: dict[str, float] | None = None
    name: str | None = None
    description: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        def bad(msg: str) -> ModelError:
            return ModelError(f"invalid model metadata: {msg}")

        if not isinstance(self.scale, int) or self.scale < 1:
            raise bad(f"scale must be a positive integer, got {self.scale!r}")
        if not isinstance(self.halo, int) or self.halo < 0:
            raise bad(f"halo must be an integer >= 0, got {self.halo!r}")
        if self.format_version > FORMAT_VERSION:
            raise bad(
                f"format_version {self.format_version} is newer than this xsr4rs understands "
                f"({FORMAT_VERSION}): upgrade xsr4rs"
            )
        for name in ("input_bands", "output_bands", "fill_values", "value_range", "bound"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))
        if self.value_range is not None and (
            len(self.value_range) != 2 or not self.value_range[0] < self.value_range[1]
        ):
            raise bad(f"value_range must be [low, high] with low < high, got {self.value_range}")
        if self.bound is not None and (
            len(self.bound) != 2 or not 0 <= self.bound[0] < 1 < self.bound[1]
        ):
            raise bad(f"bound must be [low, high] with 0 <= low < 1 < high, got {self.bound}")
        if self.fill_values is not None and self.input_bands is not None:
            if len(self.fill_values) != len(self.input_bands):
                raise bad(
                    f"{len(self.fill_values)} fill_values for {len(self.input_bands)} input bands"
                )
        if self.tile is not None and (not isinstance(self.tile, int) or self.tile < 1):
            raise bad(f"tile must be a positive integer, got {self.tile!r}")
        if self.scale_factor is not None and not (
            isinstance(self.scale_factor, int | float) and self.scale_factor != 0
        ):
            raise bad(f"scale_factor must be a non-zero number, got {self.scale_factor!r}")
        conv = self.conv_input_elements_per_pixel
        if conv is not None and not (
            isinstance(conv, dict)
            and set(conv) <= {"1x1", "kxk", "features"}
            and all(isinstance(v, int | float) and 0 <= v < float("inf") for v in conv.values())
        ):
            raise bad(
                "conv_input_elements_per_pixel must map '1x1', 'kxk' and/or 'features' to "
                "numbers >= 0, "
                f"got {conv!r}"
            )
        if not isinstance(self.crop, int) or self.crop < 0:
            raise bad(f"crop must be an integer >= 0, got {self.crop!r}")
        if self.crop and self.halo * self.scale < self.crop:
            raise bad(
                f"halo {self.halo} is smaller than the cropped border ({self.crop} output "
                f"pixels = {-(-self.crop // self.scale)} input pixels)"
            )

    @property
    def physical(self) -> tuple[float, float] | None:
        """``(scale_factor, add_offset)`` when the model states its units in numbers."""
        if self.scale_factor is None and self.add_offset is None:
            return None
        return (
            float(self.scale_factor if self.scale_factor is not None else 1.0),
            float(self.add_offset or 0.0),
        )

    @property
    def n_input_bands(self) -> int | None:
        return None if self.input_bands is None else len(self.input_bands)

    @property
    def n_output_bands(self) -> int | None:
        bands = self.output_bands if self.output_bands is not None else self.input_bands
        return None if bands is None else len(bands)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        known = {f.name for f in fields(cls)}
        missing = {"scale", "halo"} - set(data)
        if missing:
            raise ModelError(f"invalid model metadata: missing key(s) {sorted(missing)}")
        extra = {k: v for k, v in data.items() if k not in known}
        kwargs = {k: v for k, v in data.items() if k in known}
        if extra:
            kwargs["provenance"] = {**kwargs.get("provenance", {}), "extra": extra}
        return cls(**kwargs)


def read_metadata(path: str | os.PathLike[str]) -> ModelMetadata | None:
    """Metadata of the SavedModel at ``path``, or ``None`` for a plain SavedModel."""
    file = Path(path) / METADATA_PATH
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(f"cannot read model metadata {file}: {err}") from None
    if not isinstance(data, dict):
        raise ModelError(f"invalid model metadata {file}: expected a JSON object")
    return ModelMetadata.from_dict(data)


def write_metadata(path: str | os.PathLike[str], metadata: ModelMetadata) -> None:
    """Write ``metadata`` into the SavedModel directory ``path``."""
    file = Path(path) / METADATA_PATH
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(metadata.to_dict(), indent=2, sort_keys=True) + "\n")


def is_saved_model(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a directory holding a SavedModel protobuf."""
    p = Path(path)
    return p.is_dir() and ((p / "saved_model.pb").is_file() or (p / "saved_model.pbtxt").is_file())
