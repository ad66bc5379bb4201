"""GDAL's block cache during a write: bounded, yet large enough for the input's tile rows.

GDAL keeps the tiles it reads and writes until its cache is full (by default 5 % of the
memory: 1.2 GiB on 24 GiB), which made the peak memory of a run grow with the image
(benchmarks/memory.py); a bound of 256 MiB keeps it flat at no measured cost in speed.
But each row of input tiles is read by two or three strips of chunks (with their halo),
and a tile that left the cache is decoded again: for JPEG 2000 inputs, as Sentinel-2's
bands come, that is costly. A 4-band input 10980 pixels wide in 1024 x 1024 tiles needs
two rows of tiles (176 MiB) to stay cached; below that, bicubic took 1.5 times as long
(benchmarks/read_cache.py). With 8 bands, the 256 MiB bound made the same run take
1.7 times as long as with a larger cache. So the bound grows with the input's tile rows,
up to a share of the machine's memory. ``GDAL_CACHEMAX`` set by the user wins.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

#: The least cache while writing, in bytes.
MIN_BYTES = 256 * 2**20
#: Room kept beside the input's tile rows, for the blocks being written.
MARGIN_BYTES = 128 * 2**20
#: Input tile rows kept: the rows a strip reads and the next strip reads again.
ROWS = 2
#: The cache never takes more than this share of the machine's memory...
MAX_SHARE = 0.125
#: ... or, where the memory is not known, more than this.
MAX_BYTES_UNKNOWN = 2 * 2**30


def tile_rows_bytes(width: int, count: int, itemsize: int, block_height: int) -> int:
    """Bytes of `ROWS` rows of tiles of a raster ``width`` pixels wide, ``count`` bands.

    >>> tile_rows_bytes(10980, 4, 2, 1024) / 2**20
    171.5625
    """
    return ROWS * block_height * width * count * itemsize


def cache_bytes(need: int, memory: int | None = None) -> int:
    """The bound for inputs whose tile rows take ``need`` bytes: at least `MIN_BYTES`,
    ``need`` plus `MARGIN_BYTES` when larger, at most `MAX_SHARE` of ``memory`` (the
    machine's when not given; `MAX_BYTES_UNKNOWN` when 0 or unknown) unless that is below
    `MIN_BYTES`.

    >>> cache_bytes(0) // 2**20
    256
    >>> cache_bytes(400 * 2**20, memory=24 * 2**30) // 2**20
    528
    >>> cache_bytes(4 * 2**30, memory=8 * 2**30) // 2**20
    1024
    """
    memory = _memory() if memory is None else memory
    most = int(memory * MAX_SHARE) if memory else MAX_BYTES_UNKNOWN
    return max(MIN_BYTES, min(need + MARGIN_BYTES if need else 0, most))


def input_tile_rows(arrays: Iterable[Any]) -> int:
    """Bytes of the tile rows (`tile_rows_bytes`) of every raster file that the dask
    graphs of ``arrays`` read through rioxarray, each file counted once; 0 when none
    is found."""
    seen: dict[str, int] = {}
    for src in raster_sources(arrays):
        try:
            name = str(src.name)
            if name in seen:
                continue
            block_height = int(src.block_shapes[0][0])
            itemsize = max(np.dtype(d).itemsize for d in src.dtypes)
            seen[name] = tile_rows_bytes(int(src.width), int(src.count), itemsize, block_height)
        except Exception:  # noqa: BLE001 - a source we cannot size keeps the default bound
            continue
    return sum(seen.values())


def raster_sources(arrays: Iterable[Any]) -> Iterator[Any]:
    """The open rasterio datasets behind the dask graphs of ``arrays`` (rioxarray's lazy
    arrays, held once per file in the graph's ``original-`` layers)."""
    for da in arrays:
        data = getattr(da, "data", None)
        graph = getattr(data, "dask", None)
        layers = getattr(graph, "layers", None)
        if not layers:
            continue
        for name, layer in layers.items():
            if not str(name).startswith("original-"):
                continue
            for value in layer.values():
                src = _open_dataset(value)
                if src is not None:
                    yield src


def _open_dataset(value: Any) -> Any:
    """The rasterio dataset under xarray's lazy-array wrappers, or None."""
    for _ in range(8):  # ImplicitToExplicit -> CopyOnWrite -> LazilyIndexed -> wrapper
        manager = getattr(value, "manager", None)
        if manager is not None:
            try:
                return manager.acquire()
            except Exception:  # noqa: BLE001 - closed or not a file: not sized
                return None
        value = getattr(value, "array", None)
        if value is None:
            return None
    return None


def _memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
