"""The exceptions and warnings raised by xsr4rs."""


class XSRError(Exception):
    """Base class of every error raised by xsr4rs."""


class InputError(XSRError, ValueError):
    """The input raster cannot be used as given (missing, unreadable, wrong bands or values)."""


class ModelError(XSRError, ValueError):
    """The model is not a usable SavedModel or its metadata is invalid."""


class ParameterError(XSRError, ValueError):
    """An argument (chunk, halo, tile, dtype, no-data...) is out of its valid range."""


class OutputError(XSRError, OSError):
    """The output cannot be written (exists already, unknown format, write failed)."""


class XSRWarning(UserWarning):
    """Base class of the warnings issued by xsr4rs."""


class GeoreferenceWarning(XSRWarning):
    """The input has no CRS or transform: the output is a pixel grid."""


class HaloWarning(XSRWarning):
    """The halo was measured or is smaller than the model's measured receptive field."""


class TileWarning(XSRWarning):
    """The requested tile was reduced to keep the model's tensors below TensorFlow's limits."""
