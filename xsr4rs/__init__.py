"""xsr4rs: super-resolution of remote sensing rasters as an xarray/Dask extension.

``import xsr4rs`` registers the ``.sr`` accessor on DataArray and Dataset; TensorFlow is
imported only when a model is run or written.
"""

from xsr4rs import accessor as _accessor  # noqa: F401  (registers the .sr accessor)
from xsr4rs import io
from xsr4rs._version import __version__
from xsr4rs.evaluate import evaluate
from xsr4rs.exceptions import (
    BandWarning,
    GeoreferenceWarning,
    HaloWarning,
    InputError,
    ModelError,
    NonFiniteOutputError,
    OutputError,
    ParameterError,
    SlowPathWarning,
    TileWarning,
    UntrustedModelError,
    XSRError,
    XSRWarning,
)
from xsr4rs.model import ModelMetadata, SRModel, builtin_models, export_model, load_model
from xsr4rs.scores import EvaluationReport
from xsr4rs.training import train
from xsr4rs.upscale import check_input, upscale

__all__ = [
    "BandWarning",
    "EvaluationReport",
    "GeoreferenceWarning",
    "HaloWarning",
    "InputError",
    "ModelError",
    "ModelMetadata",
    "NonFiniteOutputError",
    "OutputError",
    "ParameterError",
    "SRModel",
    "SlowPathWarning",
    "TileWarning",
    "UntrustedModelError",
    "XSRError",
    "XSRWarning",
    "__version__",
    "builtin_models",
    "check_input",
    "evaluate",
    "export_model",
    "io",
    "load_model",
    "train",
    "upscale",
]
