"""The training configuration: sections of keys with defaults, loaded from YAML or TOML
and validated on load with errors that name the key.

A configuration file has the sections ``data``, ``model``, ``loss``, ``optim`` and
``run``; every key is optional except the training data. `describe` lists every key with
its default and meaning (it is what ``xsr4rs train --help`` prints).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xsr4rs.exceptions import ParameterError


class ConfigError(ParameterError):
    """A training configuration key is unknown, missing or has a bad value."""


def _k(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    meta = {"help": help, "choices": choices}
    if isinstance(default, list | dict):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    pairs: list = _k([], "list of {lr: PATH(S), hr: PATH(S)} raster pairs (paired mode)")
    images: list = _k([], "list of PATH(S): HR images degraded into LR (Wald mode)")
    scale: int | None = _k(None, "upscaling factor (required in Wald mode; checked on pairs)")
    lr_bands: list | None = _k(None, "LR bands to use, 1-based indices or descriptions")
    hr_bands: list | None = _k(None, "HR bands to use (Wald mode: the image's bands)")
    band_names: list | None = _k(None, "names of the bands, stored in the exported model")
    units: str | None = _k(None, "units of the values, e.g. 'reflectance x 10000'")
    scale_factor: float | None = _k(
        None, "the units in numbers: physical = value * scale_factor + add_offset (1e-4)"
    )
    add_offset: float | None = _k(None, "see scale_factor (0 for reflectance x 10000)")
    nodata: float | None = _k(None, "no-data value (default: the files' own)")
    patch: int = _k(32, "LR patch size in pixels (HR patches are scale times larger)")
    batch_size: int = _k(8, "patches per step (over all devices)")
    sampling: str = _k("random", "patch windows: random, or a regular grid", ("random", "grid"))
    max_nodata: float = _k(0.1, "skip patches with a larger fraction of no-data pixels")
    flips: bool = _k(False, "augment: random flips and 90-degree rotations of patches")
    gain: list | None = _k(
        None, "augment: [low, high] range of a random brightness gain per patch (log-uniform)"
    )
    val_fraction: float = _k(0.2, "share of spatial blocks kept for validation")
    val_block: int = _k(64, "side of the validation blocks in LR pixels")
    max_val_blocks: int = _k(16, "validation blocks used at most")
    cache: str = _k(
        "auto", "load the rasters into memory: auto (<= 1 GiB), on, off", ("auto", "on", "off")
    )
    workers: int = _k(2, "parallel patch reads")
    seed: int = _k(0, "seed of the sampler, the split and the weights")


@dataclass
class ModelConfig:
    arch: str = _k("light", "generator architecture", ("light", "lca", "sr4rs"))
    filters: int | None = _k(None, "generator width (default: the architecture's)")
    blocks: int | None = _k(None, "generator residual blocks (default: the architecture's)")
    disc_filters: int = _k(32, "discriminator width")
    scaling: str = _k(
        "percentiles",
        "how values are scaled for the network: percentiles of the data (robust 2-98 %), "
        "or fixed offset/factor",
        ("percentiles", "fixed"),
    )
    offset: list | float | None = _k(None, "fixed scaling: value mapped to 0 (per band or one)")
    factor: list | float | None = _k(None, "fixed scaling: value range mapped to 1")
    init_from: str | None = _k(None, "an exported xsr4rs model to fine-tune")
    bound: list | None = _k(
        None,
        "[low, high]: keep each exported output pixel within low..high times its input "
        "pixel (e.g. [0.25, 4]; ringing and clipped zeros cannot reach the product)",
    )


@dataclass
class LossConfig:
    l1: float = _k(1.0, "weight of L1 over the x1, x2, x4 outputs")
    l2: float = _k(0.0, "weight of L2 over the x1, x2, x4 outputs")
    vgg: float = _k(0.0, "weight of the VGG19 perceptual loss (bands 1-3)")
    vgg_weights: str | None = _k(None, "Keras VGG19 no-top weight file (.h5) for the VGG loss")
    vgg_layers: list = _k(["block2_conv2", "block3_conv4"], "VGG19 feature layers")
    gan: float = _k(0.0, "weight of the adversarial loss (0: no discriminator)")
    gan_type: str = _k("wgan-gp", "GAN loss", ("wgan-gp", "lsgan"))
    relativistic: bool = _k(False, "relativistic average discriminator (lsgan)")
    gp_weight: float = _k(10.0, "WGAN-GP gradient penalty weight")
    drift: float = _k(0.001, "WGAN-GP drift penalty weight on real scores")
    sam: float = _k(0.0, "weight of the spectral angle loss (radians)")
    consistency: float = _k(0.0, "weight of L1 between degraded output and LR input")


@dataclass
class OptimConfig:
    learning_rate: float = _k(1e-3, "Adam learning rate of the generator")
    disc_learning_rate: float | None = _k(None, "Adam learning rate of the discriminator")
    beta1: float = _k(0.9, "Adam beta1 (SR4RS used 0 for GAN training)")
    beta2: float = _k(0.999, "Adam beta2")
    decay: float = _k(1.0, "learning rates are multiplied by this every decay_steps")
    decay_steps: int = _k(1000, "steps between learning-rate decays")
    ema: float = _k(0.0, "momentum of the generator's weight EMA (0: off; e.g. 0.999)")


@dataclass
class RunConfig:
    out: str = _k("xsr4rs-run", "run folder: model/, checkpoints/, logs/, config.yaml")
    steps: int = _k(1000, "total training steps (pre-training included)")
    pretrain_steps: int = _k(0, "first steps with pixel losses only (no discriminator)")
    steps_per_epoch: int = _k(100, "steps between validations and epoch checkpoints")
    checkpoint_every: int = _k(100, "steps between checkpoints")
    keep_checkpoints: int = _k(3, "checkpoints kept")
    preview_every: int = _k(100, "steps between TensorBoard image previews")
    distribute: str = _k(
        "auto",
        "several GPUs: auto (mirrored if > 1 GPU), mirrored, none",
        ("auto", "mirrored", "none"),
    )
    deterministic: bool = _k(False, "deterministic TensorFlow ops (slower)")
    export: bool = _k(True, "export run/model at the end")
    name: str | None = _k(None, "name of the exported model")
    description: str | None = _k(None, "description of the exported model")


#: The weighted loss terms of the generator (keys of the ``loss`` section).
LOSS_TERMS = ("l1", "l2", "vgg", "gan", "sam", "consistency")

SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "run": RunConfig,
}

#: Keys that may change when a run is resumed (the rest must match the saved config).
RESUMABLE = {
    "model.bound",
    "run.steps",
    "run.steps_per_epoch",
    "run.checkpoint_every",
    "run.keep_checkpoints",
    "run.preview_every",
    "run.export",
    "run.name",
    "run.description",
    "data.workers",
    "data.cache",
    "run.out",
    "run.distribute",
    "run.deterministic",
}


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Sections as plain dicts (values as given: paths, or DataArrays from Python)."""
        return {
            name: {f.name: getattr(getattr(self, name), f.name) for f in dataclasses.fields(cls)}
            for name, cls in SECTIONS.items()
        }

    def plain(self) -> dict[str, dict[str, Any]]:
        """`to_dict` with DataArrays replaced by a one-line description (for YAML and
        for comparing a resumed run's configuration with the saved one)."""
        return _plain(self.to_dict())

    def flat(self) -> dict[str, Any]:
        return {f"{s}.{k}": v for s, d in self.plain().items() for k, v in d.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "dims") and hasattr(value, "sizes"):  # an xarray object
        sizes = ", ".join(f"{d}: {n}" for d, n in value.sizes.items())
        return f"<DataArray {value.name or ''} ({sizes})>"
    return value


def _kind_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_kind_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typing.get_origin(hint) or hint)


def _hint_name(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def from_dict(data: dict[str, Any] | None) -> TrainConfig:
    """Validate a nested dict (as read from YAML/TOML) into a `TrainConfig`."""
    data = dict(data or {})
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise ConfigError(
            f"unknown section(s) {sorted(unknown)}: the sections are {list(SECTIONS)}"
        )
    parts = {}
    for name, cls in SECTIONS.items():
        values = data.get(name) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"section {name!r} must be a mapping of keys, got {values!r}")
        hints = typing.get_type_hints(cls)
        fields_ = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in values.items():
            if key not in fields_:
                raise ConfigError(
                    f"unknown key {name}.{key}: the keys of {name} are {', '.join(fields_)}"
                )
            if isinstance(value, float) and hints[key] in (int, int | None) and value.is_integer():
                values[key] = value = int(value)
            if isinstance(value, str) and hints[key] in (float, float | None):
                # YAML 1.1 reads 1e-3 (no dot) as a string: accept the numbers users write
                try:
                    values[key] = value = float(value)
                except ValueError:
                    pass
            if not _kind_ok(value, hints[key]):
                raise ConfigError(f"{name}.{key} must be {_hint_name(hints[key])}, got {value!r}")
            choices = fields_[key].metadata.get("choices")
            if choices and value not in choices:
                raise ConfigError(
                    f"{name}.{key} must be one of {', '.join(choices)}, got {value!r}"
                )
        parts[name] = cls(**values)
    cfg = TrainConfig(**parts)
    _check(cfg)
    return cfg


def _check(cfg: TrainConfig) -> None:
    """Checks across keys."""
    d, r, lo, o = cfg.data, cfg.run, cfg.loss, cfg.optim
    positive = {
        "data.patch": d.patch,
        "data.batch_size": d.batch_size,
        "data.val_block": d.val_block,
        "data.workers": d.workers,
        "run.steps": r.steps,
        "run.steps_per_epoch": r.steps_per_epoch,
        "run.checkpoint_every": r.checkpoint_every,
        "run.keep_checkpoints": r.keep_checkpoints,
        "run.preview_every": r.preview_every,
        "optim.decay_steps": o.decay_steps,
    }
    for key, v in positive.items():
        if v < 1:
            raise ConfigError(f"{key} must be >= 1, got {v}")
    if d.scale is not None and d.scale < 1:
        raise ConfigError(f"data.scale must be >= 1, got {d.scale}")
    if d.gain is not None and (
        len(d.gain) != 2
        or not all(isinstance(v, int | float) for v in d.gain)
        or not 0 < d.gain[0] <= d.gain[1]
    ):
        raise ConfigError(f"data.gain must be [low, high] with 0 < low <= high, got {d.gain}")
    if not 0 <= d.max_nodata <= 1 or not 0 <= d.val_fraction < 1:
        raise ConfigError("data.max_nodata must be in 0..1 and data.val_fraction in 0..1 (<1)")
    if not 0 <= r.pretrain_steps <= r.steps:
        raise ConfigError(f"run.pretrain_steps must be in 0..run.steps ({r.steps})")
    for key in (*LOSS_TERMS, "gp_weight", "drift"):
        if getattr(lo, key) < 0:
            raise ConfigError(f"loss.{key} must be >= 0, got {getattr(lo, key)}")
    if sum(getattr(lo, k) for k in LOSS_TERMS) == 0:
        raise ConfigError("all loss weights are 0: set loss.l1 (or another loss) above 0")
    if lo.vgg > 0 and not lo.vgg_weights:
        raise ConfigError(
            "loss.vgg > 0 needs loss.vgg_weights: the path of Keras' "
            "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 (it is never downloaded)"
        )
    if lo.vgg_weights and not os.path.isfile(lo.vgg_weights):
        raise ConfigError(f"loss.vgg_weights: {lo.vgg_weights} is not a file")
    if lo.relativistic and lo.gan_type == "wgan-gp":
        raise ConfigError(
            "loss.relativistic applies to lsgan: WGAN's critic loss is linear, so its "
            "relativistic average form is the same loss. Set loss.gan_type: lsgan"
        )
    if not o.learning_rate > 0:
        raise ConfigError(f"optim.learning_rate must be > 0, got {o.learning_rate}")
    if o.disc_learning_rate is not None and not o.disc_learning_rate > 0:
        raise ConfigError(f"optim.disc_learning_rate must be > 0, got {o.disc_learning_rate}")
    for key in ("beta1", "beta2"):
        if not 0 <= getattr(o, key) < 1:
            raise ConfigError(f"optim.{key} must be in [0, 1), got {getattr(o, key)}")
    if not 0 < o.decay <= 1:
        raise ConfigError(f"optim.decay must be in (0, 1] (1: no decay), got {o.decay}")
    b = cfg.model.bound
    if b is not None and (
        len(b) != 2 or not all(isinstance(v, int | float) for v in b) or not 0 < b[0] < 1 < b[1]
    ):
        raise ConfigError(f"model.bound must be [low, high] with 0 < low < 1 < high, got {b}")
    if cfg.model.filters is not None and cfg.model.filters < 1:
        raise ConfigError(f"model.filters must be >= 1, got {cfg.model.filters}")
    if cfg.model.blocks is not None and cfg.model.blocks < 0:
        raise ConfigError(f"model.blocks must be >= 0, got {cfg.model.blocks}")
    if cfg.model.disc_filters < 1:
        raise ConfigError(f"model.disc_filters must be >= 1, got {cfg.model.disc_filters}")
    if not 0 <= o.ema < 1:
        raise ConfigError(f"optim.ema must be in 0..1 (e.g. 0.999), got {o.ema}")
    if cfg.model.scaling == "fixed" and (cfg.model.offset is None or cfg.model.factor is None):
        raise ConfigError("model.scaling: fixed needs model.offset and model.factor")
    if not d.pairs and not d.images:
        raise ConfigError("no training data: set data.pairs (--lr/--hr) or data.images (--image)")
    for i, pair in enumerate(d.pairs):
        if not isinstance(pair, dict) or set(pair) != {"lr", "hr"}:
            raise ConfigError(
                f"data.pairs[{i}] must be a mapping with keys lr and hr, got {pair!r}"
            )
    if d.images and d.scale is None:
        raise ConfigError("Wald mode (data.images, --image) needs data.scale (--scale)")


def load(
    path: str | os.PathLike[str] | None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Read a YAML (.yaml, .yml) or TOML (.toml) file, apply ``{"section.key": value}``
    overrides (None values are ignored) and validate."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"configuration file {p} does not exist")
        text = p.read_text()
        try:
            if p.suffix.lower() == ".toml":
                import tomllib

                data = tomllib.loads(text)
            elif p.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                raise ConfigError(f"cannot tell the format of {p}: name it .yaml, .yml or .toml")
        except ConfigError:
            raise
        except Exception as err:
            raise ConfigError(f"cannot parse {p}: {str(err).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p} must hold a mapping of sections")
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, key = dotted.split(".")
        data.setdefault(section, {})
        data[section] = {**data[section], key: value}
    return from_dict(data)


def dump(cfg: TrainConfig, path: str | os.PathLike[str]) -> None:
    import yaml

    Path(path).write_text(yaml.safe_dump(cfg.plain(), sort_keys=False))


def describe() -> str:
    """Every key with its default and meaning, section by section."""
    lines = []
    for name, cls in SECTIONS.items():
        lines.append(f"{name}:")
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            choices = f.metadata.get("choices")
            extra = f" [{'|'.join(choices)}]" if choices else ""
            lines.append(f"  {f.name} = {default!r}{extra}: {f.metadata['help']}")
    return "\n".join(lines)
