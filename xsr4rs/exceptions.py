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


class UntrustedModelError(ModelError):
    """The model runs operations that reach outside the computation (files, network, Python)."""


class NonFiniteOutputError(ModelError):
    """The model returned NaN or infinite values for valid pixels."""


class XSRWarning(UserWarning):
    """Base class of the warnings issued by xsr4rs."""


class BandWarning(XSRWarning):
    """Bands of the input that the model does not take are left out of the output."""


class CheckpointWarning(XSRWarning):
    """A broken training checkpoint was set aside; the run resumed from an older one."""


class GeoreferenceWarning(XSRWarning):
    """The input has no CRS or transform: the output is a pixel grid."""


class HaloWarning(XSRWarning):
    """The halo was measured or is smaller than the model's measured receptive field."""


class OutputWarning(XSRWarning):
    """Something beside the output deserves attention (temporaries of other runs)."""


class PrecisionWarning(XSRWarning):
    """The requested precision cannot take effect here (no bfloat16 on this CPU)."""


class SlowPathWarning(XSRWarning):
    """This CPU will likely run some of the model's convolutions on a very slow path
    (oneDNN's reference code, on CPUs without AVX-512), with how to avoid it."""


class TileWarning(XSRWarning):
    """The requested tile was reduced to keep the model's tensors below TensorFlow's limits."""
