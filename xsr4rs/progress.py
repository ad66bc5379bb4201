"""Progress of a write: upscaled blocks done, output megapixels per second, time left.

Shown with ``tqdm.auto``: a widget in Jupyter notebooks, a line in terminals. Blocks report
themselves to a process-wide counter when they finish (dask fuses and renames the model
tasks into its store tasks, so task keys cannot be counted); a thread moves the bar. On a
distributed cluster, `xsr4rs.io.write` shows distributed's own progress, which follows
every worker.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any


class BlockCounter:
    """Thread-safe count of upscaled blocks and output pixels in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.blocks = 0
        self.pixels = 0

    def add(self, blocks: int, pixels: int) -> None:
        with self._lock:
            self.blocks += blocks
            self.pixels += pixels

    def read(self) -> tuple[int, int]:
        with self._lock:
            return self.blocks, self.pixels


COUNTER = BlockCounter()


class BlockProgress:
    """Context manager showing a ``tqdm.auto`` bar of ``total`` upscaled blocks."""

    def __init__(self, total: int, stream: Any = None, interval: float = 0.5) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.interval = interval
        self._stop = threading.Event()

    def __enter__(self) -> BlockProgress:
        from tqdm.auto import tqdm

        self.base = COUNTER.read()
        self.t0 = time.perf_counter()
        self.bar = tqdm(
            total=self.total, unit="block", desc="upscaling", file=self.stream, dynamic_ncols=True
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._draw()
        self.bar.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._draw()

    def _draw(self) -> None:
        blocks, pixels = COUNTER.read()
        done = min(blocks - self.base[0], self.total)
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        rate = (pixels - self.base[1]) / elapsed / 1e6
        self.bar.set_postfix_str(f"{rate:.1f} MP/s", refresh=False)
        self.bar.update(done - self.bar.n)
