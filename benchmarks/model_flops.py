"""Model efficiency: achieved GFLOP/s of each network against a TensorFlow matmul.

All rows are measured in the same process: the matmul (4096 x 4096 fp32) gives the
machine's practical peak, one 3 x 3 convolution of the shipped model's width (32 -> 32
features) the practical peak of its layers; each network is called on a 512-pixel tile
plus its halo (the engine's default tile) after a warm-up, and its analytic FLOP count
divided by the time gives the achieved rate. The shipped model is also run through
XLA (``jit_compile``), the one whole-graph optimisation TensorFlow offers on CPU, where
XLA can compile it (exports with strip loops it cannot: that row is then left out).
Run with ``XSR4RS_PRECISION=bf16`` for bfloat16 (on CPUs with AVX512-BF16 or AMX).

    python benchmarks/model_flops.py
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _common import report, sr4rs_like, sr4rs_like_flops

ARCHS = {"sr4rs-like 64x16": (64, 16), "light 32x6": (32, 6)}


def light_flops(h: int, w: int, *, bands: int = 4, filters: int = 32, blocks: int = 6) -> float:
    """FLOPs of xsr4rs's ``light`` generator (the shipped model) on an h x w input: 3 x 3
    head, residual blocks, two sub-pixel stages (at x1 and x2), 1 x 1 corrections."""
    f = filters
    macs = 9 * bands * f + blocks * 2 * 9 * f * f + 9 * f * 4 * f  # at the input's size
    macs += 4 * 9 * f * 4 * f  # the second sub-pixel convolution, at x2
    macs += f * bands * (1 + 4 + 16)  # corrections at x1, x2, x4
    return 2.0 * macs * h * w


def row(what: str, flops: float, seconds: float, peak: float) -> dict:
    """A table row: ``flops`` done in ``seconds``, against the matmul's ``peak`` GFLOP/s."""
    rate = flops / seconds / 1e9
    return {
        "what": what,
        "GFLOP": flops / 1e9,
        "seconds": seconds,
        "GFLOP_per_s": rate,
        "vs_matmul": rate / peak,
    }


def best_of(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    from xsr4rs._tf import import_tf

    tf = import_tf()
    n = 4096
    a = tf.random.uniform((n, n))
    matmul = best_of(lambda: tf.linalg.matmul(a, a).numpy(), args.repeat)
    peak = 2 * n**3 / matmul / 1e9
    rows = [row(f"matmul {n}x{n} fp32", 2 * n**3, matmul, peak)]
    import xsr4rs
    from xsr4rs.model.handle import runtime

    shipped = xsr4rs.load_model("s2-rgbn-x4")
    side = args.tile + 2 * shipped.halo
    x = np.random.default_rng(0).uniform(200, 4000, (1, side, side, 4)).astype(np.float32)
    feat = tf.random.uniform((1, side, side, 32))
    kernel = tf.random.uniform((3, 3, 32, 32))
    conv = best_of(lambda: tf.nn.conv2d(feat, kernel, 1, "SAME").numpy(), args.repeat)
    conv_flops = 2.0 * 9 * 32 * 32 * side * side
    rows.append(row(f"one 3x3 conv 32->32 on {side}x{side}", conv_flops, conv, peak))
    rt = runtime(shipped.path, shipped.stamp)
    xla = tf.function(lambda t: rt.fn(**{rt.input_key: t}), jit_compile=True)
    flops = light_flops(side, side)
    for name, call in (
        ("s2-rgbn-x4 (shipped)", lambda: shipped(x)),
        ("s2-rgbn-x4 through XLA", lambda: {k: v.numpy() for k, v in xla(tf.constant(x)).items()}),
    ):
        try:
            seconds = best_of(call, args.repeat)
        except tf.errors.InvalidArgumentError as err:
            # the light generators' inference form loops over strips of rows whose sizes
            # are known only at run time, which XLA does not compile
            print(f"{name}: not measured, XLA cannot compile it: {str(err).splitlines()[0]}")
            continue
        rows.append(row(f"{name} on {side}x{side}", flops, seconds, peak))
    for name, (filters, blocks) in ARCHS.items():
        model = sr4rs_like(filters=filters, blocks=blocks)
        side = args.tile + 2 * model.halo
        x = np.random.default_rng(0).uniform(0, 10000, (1, side, side, 4)).astype(np.float32)
        seconds = best_of(lambda m=model, x=x: m(x), args.repeat)
        flops = sr4rs_like_flops(side, side, filters=filters, blocks=blocks)
        rows.append(row(f"{name} on {side}x{side}", flops, seconds, peak))

    precision = os.environ.get("XSR4RS_PRECISION", "fp32")
    report(f"model_flops_{precision}", rows, {"tile": args.tile, "precision": precision})


if __name__ == "__main__":
    main()
