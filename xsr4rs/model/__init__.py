"""Models: the metadata contract, the lazy picklable handle, export and built-in baselines."""

from xsr4rs.model.builtin import builtin_models
from xsr4rs.model.contract import ModelMetadata, read_metadata
from xsr4rs.model.export import export_model
from xsr4rs.model.handle import SRModel, load_model
from xsr4rs.model.savedmodel import describe_model

__all__ = [
    "ModelMetadata",
    "SRModel",
    "builtin_models",
    "describe_model",
    "export_model",
    "load_model",
    "read_metadata",
]
