import pytest
from hypothesis import given
from hypothesis import strategies as st

from xsr4rs.exceptions import ParameterError
from xsr4rs.tiling import (
    check_positive_int,
    conv_tile_cap,
    crop,
    max_tile,
    merge_small_chunks,
    output_chunks,
    regular_chunks,
    split_axis,
)


@given(st.integers(1, 5000), st.integers(1, 700), st.integers(0, 64))
def test_regular_chunks_cover_axis_and_lend_halo(size, chunk, halo):
    chunks = regular_chunks(size, chunk, halo)
    assert sum(chunks) == size
    if len(chunks) > 1:
        assert min(chunks) >= halo
        assert max(chunks) <= max(chunk, halo) + max(halo - 1, 0)  # merged remainder < halo


@given(st.lists(st.integers(1, 50), min_size=1, max_size=30), st.integers(0, 40))
def test_merge_small_chunks(chunks, minimum):
    merged = merge_small_chunks(chunks, minimum)
    assert sum(merged) == sum(chunks)
    if len(merged) > 1:
        assert min(merged) >= minimum


def test_regular_chunks_examples():
    assert regular_chunks(10, 4, 3) == (4, 6)
    assert regular_chunks(10, 4, 2) == (4, 4, 2)
    assert regular_chunks(5, 100, 2) == (5,)
    assert regular_chunks(3, 1, 8) == (3,)  # axis shorter than the halo: one chunk
    assert regular_chunks(20, 2, 8) == (8, 12)  # chunks below the halo are enlarged


@given(st.integers(1, 3000), st.integers(1, 600))
def test_split_axis(size, tile):
    pieces = split_axis(size, tile)
    assert pieces[0][0] == 0 and pieces[-1][1] == size
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))
    assert all(0 < stop - start <= tile for start, stop in pieces)
    assert len({stop - start for start, stop in pieces[:-1]}) <= 1  # few shapes


def test_output_chunks_and_crop():
    assert output_chunks((4, 6), 4) == (16, 24)
    assert crop(3, 4) == 12


def test_max_tile_keeps_tensors_below_limit():
    side = max_tile(16, 64 * 16)
    assert (side + 32) ** 2 * 64 * 16 <= 2**30
    assert (side + 33) ** 2 * 64 * 16 > 2**30 - 2 * (side + 33) * 1024  # close to the limit


def test_conv_tile_cap_keeps_convolution_inputs_below_avx2_limits():
    # the shipped model (halo 15 + 19): its 1x1 input (512 per pixel) caps at 656, not 512
    assert conv_tile_cap(34, {"1x1": 512, "kxk": 128, "features": 32}) == 656
    # wide convolutions (over 64 input features) have a lower limit: 2**24 elements
    side = conv_tile_cap(10, {"kxk": 256, "features": 256})
    assert (side + 20) ** 2 * 256 < 2**24 <= (side + 21) ** 2 * 256
    side = conv_tile_cap(18, {"1x1": 0, "kxk": 512})
    assert (side + 36) ** 2 * 512 < 2**27 <= (side + 37) ** 2 * 512
    assert conv_tile_cap(5, {"1x1": 0, "kxk": 0}) is None


@pytest.mark.parametrize(
    ("flags", "cap", "fast"),
    [
        ({"avx", "avx2", "fma"}, None, False),
        ({"avx2", "avx512f", "avx512bw", "avx512dq", "avx512vl"}, None, True),
        ({"avx2", "avx512f", "avx512bw", "avx512dq", "avx512vl"}, "AVX2", False),
        ({"avx2", "avx512f", "avx512bw", "avx512dq", "avx512vl"}, "AVX512_CORE", True),
        ({"fp", "asimd"}, None, True),  # not x86: nothing assumed
        (None, None, True),
    ],
)
def test_avx512_convolutions(flags, cap, fast):
    from xsr4rs._tf import avx512_convolutions

    assert avx512_convolutions(flags, cap) is fast


@pytest.mark.parametrize(
    ("value", "on"), [(None, True), ("1", True), ("0", False), ("false", False), (" FALSE ", False)]
)
def test_onednn_enabled_follows_tf_enable_onednn_opts(value, on, monkeypatch):
    from xsr4rs._tf import onednn_enabled

    if value is None:
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    else:
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", value)
    assert onednn_enabled() is on


@pytest.mark.parametrize("value", [0, -3, 2.5, "8", True, None])
def test_check_positive_int_rejects(value):
    with pytest.raises(ParameterError, match="chunk"):
        check_positive_int("chunk", value)
