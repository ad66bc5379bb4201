"""Late, quiet import of TensorFlow.

TensorFlow is imported only by the functions that run or write models, never by
``import xsr4rs``. Its C++ start-up messages (CUDA probing, oneDNN notices) are kept off
the user's terminal; set ``TF_CPP_MIN_LOG_LEVEL`` yourself to see later TensorFlow logs.

Process-wide settings are read from the environment at that import:
``XSR4RS_TF_THREADS`` (TensorFlow intra-op threads) and ``XSR4RS_PRECISION`` (``fp32``,
the default, or ``bf16`` for mixed-precision inference).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType

_tf: ModuleType | None = None

#: Values of ``XSR4RS_PRECISION``, read once per process when TensorFlow is imported.
PRECISIONS = ("fp32", "bf16")


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Send the process's C-level stderr to /dev/null for the duration.

    TensorFlow's native libraries log at load time, before ``TF_CPP_MIN_LOG_LEVEL`` is
    read ("oneDNN custom operations are on", "Could not find cuda drivers"); only a
    redirection of file descriptor 2 keeps that off the terminal.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tf() -> ModuleType:
    """Import TensorFlow once, with its log noise silenced; return the module."""
    global _tf
    if _tf is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with warnings.catch_warnings(), _stderr_silenced():
            warnings.simplefilter("ignore")
            import tensorflow as tf
        tf.get_logger().setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)
        precision = os.environ.get("XSR4RS_PRECISION", "fp32").lower()
        if precision not in PRECISIONS:
            from xsr4rs.exceptions import ParameterError

            raise ParameterError(
                f"XSR4RS_PRECISION={precision!r} is not one of {', '.join(PRECISIONS)}"
            )
        if precision == "bf16" and _bf16_usable(tf):
            # grappler rewrites the model's graph when it is first run: bfloat16 through
            # oneDNN on CPUs (AVX512-BF16, AMX), float16 mixed precision on NVIDIA GPUs
            tf.config.optimizer.set_experimental_options(
                {"auto_mixed_precision_onednn_bfloat16": True, "auto_mixed_precision": True}
            )
        threads = os.environ.get("XSR4RS_TF_THREADS")
        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            except RuntimeError:  # TensorFlow was already initialised by the caller
                pass
        _tf = tf
    return _tf


#: CPU flags (Linux ``/proc/cpuinfo``) of the instructions oneDNN uses for bfloat16.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags on Linux; ``None`` where they cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


#: Values of oneDNN's ``ONEDNN_MAX_CPU_ISA`` under which it has bfloat16 convolutions.
BF16_ISAS = (
    "AVX512_CORE_BF16",
    "AVX512_CORE_FP16",
    "AVX10_1_512",
    "AVX512_CORE_AMX",
    "AVX10_1_512_AMX",
    "AVX512_CORE_AMX_FP16",
    "AVX10_1_512_AMX_FP16",
    "ALL",
    "DEFAULT",
)


def onednn_isa_cap() -> str | None:
    """The instruction-set cap put on oneDNN by ``ONEDNN_MAX_CPU_ISA`` (or its older name
    ``DNNL_MAX_CPU_ISA``), upper-case; ``None`` when neither is set."""
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        value = os.environ.get(name, "").strip()
        if value:
            return value.upper()
    return None


#: oneDNN ISA caps below AVX-512 (``ONEDNN_MAX_CPU_ISA``).
_BELOW_AVX512 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2")


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its CPU convolutions through oneDNN in this process: its
    default on x86, turned off by ``TF_ENABLE_ONEDNN_OPTS=0`` before TensorFlow loads."""
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip().lower() not in ("0", "false")


def avx512_convolutions(flags: set[str] | None, isa_cap: str | None = None) -> bool:
    """True when oneDNN can use its AVX-512 convolution kernels here (or when the CPU's
    flags cannot be read, e.g. off Linux or on ARM, where nothing is assumed).

    Without them (an AVX2-only CPU, or ``ONEDNN_MAX_CPU_ISA=AVX2``), large convolution
    inputs fall back to oneDNN's reference code (``xsr4rs.tiling.AVX2_CONV_INPUT_LIMITS``).
    """
    if isa_cap is not None and isa_cap in _BELOW_AVX512:
        return False
    if flags is None or not flags & {"avx", "avx2", "sse4_2"}:
        return True
    return {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags


def bf16_note(flags: set[str] | None, gpus: int, isa_cap: str | None = None) -> str | None:
    """Why ``bf16`` would change nothing here, or ``None`` when it can take effect.

    ``isa_cap`` is :func:`onednn_isa_cap`: a cap below AVX512_CORE_BF16 leaves oneDNN no
    bfloat16 convolution, and TensorFlow then fails on the first call of a model rewritten
    to bfloat16 ("could not create a primitive descriptor"), so it counts as no bf16 CPU.
    """
    if gpus:
        return None
    if isa_cap is not None and isa_cap not in BF16_ISAS:
        return (
            f"bf16 was asked for, but ONEDNN_MAX_CPU_ISA={isa_cap} keeps oneDNN from its "
            "bfloat16 instructions and no GPU is visible: inference runs in float32"
        )
    if flags is None or any(f in flags for f in BF16_FLAGS):
        return None
    return (
        "bf16 was asked for, but this CPU has no bfloat16 instructions (neither AVX512_BF16 "
        "nor AMX_BF16) and no GPU is visible: inference runs in float32"
    )


def _bf16_usable(tf: ModuleType) -> bool:
    from xsr4rs.exceptions import PrecisionWarning

    gpus = len(tf.config.list_physical_devices("GPU"))
    note = bf16_note(cpu_flags(), gpus, onednn_isa_cap())
    if note:
        warnings.warn(note, PrecisionWarning, stacklevel=4)
    return note is None
