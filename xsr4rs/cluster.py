"""A local Dask cluster set up for model inference."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from xsr4rs.tiling import check_positive_int


def quiet_distributed(level: str = "error") -> None:
    """Keep distributed's start/stop INFO lines off the terminal, here and in the worker
    processes it starts (distributed sets its loggers from dask's configuration, also
    read from ``DASK_LOGGING__DISTRIBUTED``, when it is first imported)."""
    import dask

    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", level)
    dask.config.set({"logging.distributed": os.environ["DASK_LOGGING__DISTRIBUTED"]})
    for name in (
        "distributed",
        "distributed.scheduler",
        "distributed.nanny",
        "distributed.worker",
        "distributed.core",
        "distributed.http.proxy",
    ):
        logging.getLogger(name).setLevel(getattr(logging, level.upper()))


@contextlib.contextmanager
def local_cluster(n_workers: int) -> Iterator[Any]:
    """A `distributed.Client` on ``n_workers`` local processes with one dask thread each.

    Each worker gets cores/N TensorFlow threads (``XSR4RS_TF_THREADS``, unless set) so that
    the processes do not oversubscribe the cores, and this process's ``XSR4RS_PRECISION``.
    """
    quiet_distributed()
    from distributed import Client, LocalCluster

    n = check_positive_int("n_workers", n_workers)
    threads = str(max(1, (os.cpu_count() or 1) // n))
    env = {
        "XSR4RS_TF_THREADS": os.environ.get("XSR4RS_TF_THREADS", threads),
        "XSR4RS_PRECISION": os.environ.get("XSR4RS_PRECISION", "fp32"),
        "DASK_LOGGING__DISTRIBUTED": os.environ["DASK_LOGGING__DISTRIBUTED"],
    }
    with (
        LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
            env=env,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
