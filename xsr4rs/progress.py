"""A terminal progress line: chunks done, output throughput and ETA.

Blocks report themselves to a process-wide counter when they finish (dask may fuse and
rename the upscale tasks, so task keys cannot be counted); a thread draws the line.
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

    def add(self, pixels: int) -> None:
        with self._lock:
            self.blocks += 1
            self.pixels += pixels

    def read(self) -> tuple[int, int]:
        with self._lock:
            return self.blocks, self.pixels


COUNTER = BlockCounter()


class ChunkProgress:
    """Context manager printing ``[####  ] done/total chunks, MP/s, ETA`` to ``stream``."""

    def __init__(self, total: int, stream: Any = None, interval: float = 0.5) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.interval = interval
        self._stop = threading.Event()

    def __enter__(self) -> ChunkProgress:
        self.base = COUNTER.read()
        self.t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._draw()
        self.stream.write("\n")
        self.stream.flush()

    def _run(self) -> None:
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        last = -1
        while not self._stop.wait(self.interval):
            done = COUNTER.read()[0] - self.base[0]
            if tty or done != last:  # redraw in place on a terminal, else one line per chunk
                self._draw(end="" if tty else "\n")
                last = done

    def _draw(self, end: str = "") -> None:
        blocks, pixels = COUNTER.read()
        done, pixels = blocks - self.base[0], pixels - self.base[1]
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        frac = min(done / max(self.total, 1), 1.0)
        eta = f"{elapsed * (1 - frac) / frac:5.0f} s" if frac else "    ?"
        bar = "#" * int(30 * frac)
        self.stream.write(
            f"\r[{bar:<30}] {done}/{self.total} chunks  {pixels / elapsed / 1e6:6.1f} MP/s  "
            f"elapsed {elapsed:5.0f} s  ETA {eta}{end}"
        )
        self.stream.flush()
