"""Idle priority for the threads that read, prepare, compress and write blocks (opt-in).

On a machine where the model keeps every core busy, each CPU-second spent outside it
(reading, casting, above all compressing the output) delays the model: a convolution
split over all cores waits for its slowest part, and a core shared with a compressing
thread makes that part slow. With ``XSR4RS_IO_PRIORITY=idle`` (CLI ``--idle-io``) the
threads of a write run under Linux's ``SCHED_IDLE`` policy: they get a core only when
the model's threads leave it free, and give it back as soon as those wake up. On the
x4 sample scene with zstd output this took the whole run from 0.86-0.93 to 0.93-0.94 of
the model's own speed on the same tiles, and to 0.96-0.97 with the faster allocator
setting of `xsr4rs._malloc` (benchmarks/pipeline.py, 2 cores).

Off by default, because idle threads get almost nothing while anything else keeps the
cores busy: another process using every core (0.3 % of a core measured, against 70 % at
normal priority) stalls the run until it ends. For a machine given to the run alone.
Linux only; elsewhere the setting is accepted and does nothing, as it does for the
workers of a dask cluster (only a write's own thread pool, in one process, is lowered).
The model's own threads keep their priority (TensorFlow starts them before the write's
threads, which are dropped when the write ends). GDAL's compression threads, started by
the first write that compresses on several cores, inherit the policy of the thread that
started them and keep it for the rest of the process: in a long-lived Python session,
later GDAL compression then also runs on idle cores only.
"""

from __future__ import annotations

import os

from xsr4rs.exceptions import ParameterError

ENV = "XSR4RS_IO_PRIORITY"
CHOICES = ("normal", "idle")


def requested() -> str:
    """The priority asked for in the environment: ``"normal"`` (default) or ``"idle"``."""
    value = os.environ.get(ENV, "").strip().lower() or "normal"
    if value not in CHOICES:
        raise ParameterError(
            f"{ENV} must be 'normal' or 'idle', got {os.environ[ENV]!r}: unset it, or set "
            f"{ENV}=idle to run reading and writing only on cores the model leaves free"
        )
    return value


def idle() -> bool:
    """Whether writes run their threads at idle priority (and the platform can)."""
    return requested() == "idle" and hasattr(os, "SCHED_IDLE")


def lower_this_thread() -> None:
    """Put the calling thread under ``SCHED_IDLE`` (a thread pool's initializer). Linux
    applies the policy to the calling thread only, and threads it starts inherit it."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):  # not permitted or not Linux: normal priority
        pass


def model_threads_started() -> None:
    """Start TensorFlow's thread pools here, if TensorFlow is in use, before any idle
    thread calls a model: threads inherit their creator's policy, and the model's must
    keep a normal one."""
    import sys

    if "tensorflow" in sys.modules:
        from tensorflow.python.eager import context

        context.ensure_initialized()
