"""Pure arithmetic of chunks, halos and tiles (no xarray, no TensorFlow).

Vocabulary: ``halo`` is counted in input (low-resolution) pixels; a *chunk* is a dask
block of the input; a *tile* is what one model call sees, a piece of a chunk's core
plus ``halo`` pixels on each side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xsr4rs.exceptions import ParameterError

#: TensorFlow's CPU convolution becomes dozens of times slower once a single tensor reaches
#: 2**31 elements; tiles are sized to stay below this with a margin.
TF_TENSOR_LIMIT = 2**31

#: Largest input of one convolution, in elements, that TensorFlow's oneDNN (3.7) computes
#: with its GEMM code on a CPU without AVX-512 (measured with ``ONEDNN_MAX_CPU_ISA=AVX2``,
#: 1 and 2 threads: a 3x3 convolution of 32 features ran in 0.58 s at 2000 x 2000 and in
#: 52 s at 2100 x 2100). Above it, oneDNN falls back to its reference code, about 100
#: times slower. oneDNN's own criterion is a 1 GiB limit on the GEMM code's scratch
#: buffers, which wide convolutions reach sooner: ``"wide"`` applies to convolutions of
#: more than `NARROW_FEATURES` input features (128 and 256 features fell back at 3.2e7
#: and 3.1e7 elements, and stayed on GEMM at 2.6e7 and 2.3e7). With AVX-512, oneDNN's
#: other kernels take all these sizes at full speed.
AVX2_CONV_INPUT_LIMITS = {"1x1": 2**28, "kxk": 2**27, "wide": 2**24}
NARROW_FEATURES = 64


def check_positive_int(name: str, value: int, *, minimum: int = 1) -> int:
    """Return ``value`` as int or raise a `ParameterError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ParameterError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def regular_chunks(size: int, chunk: int, minimum: int) -> tuple[int, ...]:
    """Split ``size`` pixels into chunks of ``chunk`` pixels, none smaller than ``minimum``.

    A remainder smaller than ``minimum`` is merged into the chunk before it, so that every
    chunk can lend ``minimum`` pixels of halo to its neighbours. An axis shorter than
    ``minimum`` stays one chunk.

    >>> regular_chunks(10, 4, 3)
    (4, 6)
    >>> regular_chunks(10, 4, 2)
    (4, 4, 2)
    """
    size = check_positive_int("size", size)
    chunk = max(check_positive_int("chunk", chunk), minimum)
    chunks = [chunk] * (size // chunk)
    if size % chunk:
        chunks.append(size % chunk)
    return merge_small_chunks(chunks, minimum)


def merge_small_chunks(chunks: Sequence[int], minimum: int) -> tuple[int, ...]:
    """Merge chunks smaller than ``minimum`` with a neighbour (the previous one if any).

    >>> merge_small_chunks((2, 5, 1, 5, 2), 3)
    (8, 7)
    >>> merge_small_chunks((1, 1, 5), 3)
    (7,)
    """
    out: list[int] = []
    for c in chunks:
        if c <= 0:
            continue
        if out and (c < minimum or out[-1] < minimum):
            out[-1] += c
        else:
            out.append(c)
    if len(out) > 1 and out[-1] < minimum:
        out[-2] += out.pop()
    return tuple(out)


def split_axis(size: int, tile: int) -> list[tuple[int, int]]:
    """Split ``[0, size)`` into consecutive ``(start, stop)`` pieces of at most ``tile``.

    The pieces have equal length but for the last one, so that a model sees few shapes.

    >>> split_axis(10, 4)
    [(0, 4), (4, 8), (8, 10)]
    """
    return [(start, min(start + tile, size)) for start in range(0, size, tile)]


def output_chunks(chunks: Sequence[int], scale: int) -> tuple[int, ...]:
    """Chunks of the output along one axis: the input chunks times ``scale``."""
    return tuple(c * scale for c in chunks)


def crop(halo: int, scale: int) -> int:
    """Output pixels removed from each side of a tile's output: ``scale * halo``."""
    return halo * scale


def max_tile(halo: int, elements_per_pixel: float, *, limit: int = TF_TENSOR_LIMIT // 2) -> int:
    """Largest square tile core (input pixels) whose largest tensor stays below ``limit``.

    ``elements_per_pixel`` is the size of the model's largest intermediate tensor divided
    by the number of input pixels of the tile (for a network whose widest layer has ``f``
    features at ``s`` times the resolution, ``f * s**2``).

    >>> max_tile(8, 1024)
    1008
    """
    side = math.isqrt(int(limit // max(elements_per_pixel, 1)))
    return max(side - 2 * halo, 1)


def conv_input_sizes(
    convs: Sequence[tuple[Sequence[int], Sequence[int]]], pixels: int
) -> dict[str, float]:
    """The ``conv_input_elements_per_pixel`` of a model from its convolutions, each given
    as (kernel ``(kh, kw)``, input shape ``(h, w, features)``) measured on an input of
    ``pixels`` pixels: the largest 1x1 and larger (``kxk``) inputs per input pixel, and
    the most input features of the ``kxk`` ones.

    >>> conv_input_sizes([((3, 3), (16, 16, 4)), ((1, 1), (64, 64, 8))], 256)
    {'1x1': 128.0, 'kxk': 4.0, 'features': 4.0}
    """
    found = {"1x1": 0.0, "kxk": 0.0, "features": 0.0}
    for kernel, shape in convs:
        kind = "1x1" if tuple(kernel) == (1, 1) else "kxk"
        found[kind] = max(found[kind], math.prod(shape) / pixels)
        if kind == "kxk":
            found["features"] = max(found["features"], float(shape[-1]))
    return found


def conv_tile_cap(halo: int, conv_inputs: dict[str, float]) -> int | None:
    """Largest square tile core whose convolution inputs stay below oneDNN's GEMM limits
    on CPUs without AVX-512 (`AVX2_CONV_INPUT_LIMITS`); ``None`` when nothing caps it.

    ``conv_inputs`` gives, per kind of kernel (``"1x1"``, or ``"kxk"`` for larger ones),
    the largest convolution input of the model in elements per input pixel of the tile,
    and as ``"features"`` the most input features of its ``kxk`` convolutions (unknown:
    taken as narrow). The result can be below 1 for a model that no useful tile keeps off
    the slow path.

    >>> conv_tile_cap(34, {"1x1": 512, "kxk": 128, "features": 32})
    656
    >>> conv_tile_cap(18, {"1x1": 0, "kxk": 512})
    475
    >>> conv_tile_cap(42, {"1x1": 4096, "kxk": 4096, "features": 256})  # SR4RS's generator
    -21
    """
    wide = conv_inputs.get("features", 0) > NARROW_FEATURES
    limits = {"1x1": AVX2_CONV_INPUT_LIMITS["1x1"]}
    limits["kxk"] = AVX2_CONV_INPUT_LIMITS["wide" if wide else "kxk"]
    caps = [
        math.isqrt((limits[kind] - 1) // max(int(per_pixel), 1)) - 2 * halo
        for kind, per_pixel in conv_inputs.items()
        if per_pixel and kind in limits
    ]
    return min(caps) if caps else None
