"""A local Dask cluster set up for model inference."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from xsr4rs.tiling import check_positive_int


@contextlib.contextmanager
def local_cluster(n_workers: int) -> Iterator[Any]:
    """A `distributed.Client` on ``n_workers`` local processes with one dask thread each.

    Each worker gets cores/N TensorFlow threads (``XSR4RS_TF_THREADS``, unless set) so that
    the processes do not oversubscribe the cores, and this process's ``XSR4RS_PRECISION``.
    """
    from distributed import Client, LocalCluster

    n = check_positive_int("n_workers", n_workers)
    threads = str(max(1, (os.cpu_count() or 1) // n))
    env = {
        "XSR4RS_TF_THREADS": os.environ.get("XSR4RS_TF_THREADS", threads),
        "XSR4RS_PRECISION": os.environ.get("XSR4RS_PRECISION", "fp32"),
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
