"""Arithmetic of GDAL's block cache bound while writing (`xsr4rs.io.cache`)."""

from __future__ import annotations

import pytest

from xsr4rs.io.cache import (
    MARGIN_BYTES,
    MAX_BYTES_UNKNOWN,
    MAX_SHARE,
    MIN_BYTES,
    cache_bytes,
    tile_rows_bytes,
)

MiB = 2**20
GiB = 2**30


def test_two_rows_of_tiles_across_the_whole_width():
    # a 4-band Sentinel-2 JPEG 2000 10 m stack: two rows of 1024-pixel tiles
    assert tile_rows_bytes(10980, 4, 2, 1024) == 2 * 1024 * 10980 * 4 * 2
    assert tile_rows_bytes(10980, 12, 2, 1024) == 3 * tile_rows_bytes(10980, 4, 2, 1024)
    assert tile_rows_bytes(5490, 1, 4, 512) == 2 * 512 * 5490 * 4


def test_small_inputs_keep_the_flat_bound():
    assert cache_bytes(0, memory=24 * GiB) == MIN_BYTES
    # a 4-band GeoTIFF 10980 wide in 512-pixel tiles: 86 MiB
    assert cache_bytes(tile_rows_bytes(10980, 4, 2, 512), memory=24 * GiB) == MIN_BYTES


@pytest.mark.parametrize("bands", [4, 8, 12])
def test_wide_jpeg2000_inputs_get_their_tile_rows_and_room_to_write(bands):
    need = tile_rows_bytes(10980, bands, 2, 1024)  # 172, 343, 515 MiB
    assert cache_bytes(need, memory=24 * GiB) == need + MARGIN_BYTES


def test_bound_by_a_share_of_memory_but_never_below_the_least():
    need = tile_rows_bytes(10980, 64, 2, 1024)  # 2.7 GiB
    assert cache_bytes(need, memory=8 * GiB) == int(8 * GiB * MAX_SHARE)
    assert cache_bytes(need, memory=1 * GiB) == MIN_BYTES
    assert cache_bytes(need, memory=0) == MAX_BYTES_UNKNOWN  # memory unknown
