"""Write outputs atomically and streaming: tiled GeoTIFF, Cloud Optimized GeoTIFF or zarr.

Every failure ends in one `OutputError` (or `InputError` when reading the input failed)
and nothing at the output path: options are tried before any work, blocks stream into a
temporary beside the output, a GeoTIFF is checked tile by tile, and only a complete file
is placed (`xsr4rs.io.atomic`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xsr4rs.exceptions import InputError, OutputError, XSRError
from xsr4rs.io import cache, gdal, priority
from xsr4rs.io.atomic import atomic_output, check_folder, check_replaceable, same_file

#: Compression of the intermediate GeoTIFF of a COG, rewritten at once: fast.
_COG_INTERMEDIATE = "zstd"
#: Default compression of GeoTIFF outputs, from benchmarks/compression.py: zstd at level 1
#: wrote 6x faster than deflate (level 6) at about the same size, and reads 4x faster; GDAL
#: reads it since 2.3 (built with libzstd, as rasterio's wheels, conda's and QGIS's are).
DEFAULT_COMPRESS = "zstd"
#: Levels used unless a creation option says otherwise: GDAL's zstd default (9) wrote 9x
#: slower than level 1 for a 9 % smaller file, level 2 1.7x slower for a 1.4 % smaller
#: one; on a machine where the model keeps every core busy, compressing is pure cost.
#: (GeoTIFF option, COG option).
_LEVELS = {"ZSTD": ("ZSTD_LEVEL", "LEVEL", 1)}


def output_format(path: str | os.PathLike[str]) -> str | None:
    suffix = Path(path).suffix.lower()
    return {".tif": "gtiff", ".tiff": "gtiff", ".zarr": "zarr"}.get(suffix)


def check_output(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    cog: bool = False,
    compress: str = DEFAULT_COMPRESS,
    creation_options: Mapping[str, Any] | None = None,
    inputs: list[str] | None = None,
) -> None:
    """Raise `OutputError` when ``path`` cannot be written with these options.

    This checks the path (format, folder, an existing output, an input of the same run)
    and the compression name; `check_encoding` checks options against the data type.
    """
    path = Path(path)
    check_replaceable(path, overwrite=overwrite)
    check_folder(path)
    fmt = output_format(path)
    if fmt is None:
        raise OutputError(f"cannot tell the format of {path}: name it .tif (GeoTIFF/COG) or .zarr")
    if fmt == "zarr" and (cog or creation_options):
        raise OutputError("--cog and --co (cog=, creation_options=) apply to GeoTIFF outputs")
    if fmt == "gtiff":
        check_compression(compress)
    for p in inputs or []:
        if same_file(p, path):
            raise OutputError(
                f"the output {path} is also an input of this run: give the output a new name "
                "(the last path is the output)"
            )


def check_not_an_input(path: str | os.PathLike[str], da: xr.DataArray) -> None:
    """Refuse an existing output on the input's own grid: an upscaled output never is,
    so it is an input file, as when the OUTPUT of a band stack was forgotten and the
    last band file took its place."""
    path = Path(path)
    if not path.is_file() or output_format(path) != "gtiff":
        return
    import rasterio

    try:
        with rasterio.open(path) as src:
            grid = (src.width, src.height, src.transform, src.crs)
    except Exception:
        return
    if grid == (da.rio.width, da.rio.height, da.rio.transform(), da.rio.crs):
        raise OutputError(
            f"the output {path} exists on the input's own grid: it looks like an input "
            "file (was the OUTPUT path forgotten after a band stack?). Give the output a "
            "new name; nothing was changed"
        )


def check_compression(compress: str) -> None:
    """Raise `OutputError` unless GDAL's GeoTIFF driver knows the compression ``compress``."""
    from rasterio.enums import Compression

    known = {c.value.lower() for c in Compression} | {"none"}
    if compress.lower() not in known:
        raise OutputError(
            f"unknown compression {compress!r}: use one of deflate, zstd, lzw, lerc, none "
            f"(GDAL knows {', '.join(sorted(known))})"
        )


def _predictor(dtype: np.dtype, compress: str, *, cog: bool = False) -> int | str:
    """The TIFF predictor of the lossless codecs: horizontal for integers, floating point
    for floats (the COG driver spells them STANDARD and FLOATING_POINT)."""
    if compress.lower() not in ("deflate", "zstd", "lzw", "lzma"):
        return "NO" if cog else 1
    if np.issubdtype(dtype, np.floating):
        return "FLOATING_POINT" if cog else 3
    return "STANDARD" if cog else 2


def geotiff_options(
    dtype: np.dtype,
    compress: str,
    block: int,
    extra: Mapping[str, Any] | None,
    *,
    level: int | None = None,
) -> dict[str, Any]:
    """Creation options of a tiled GeoTIFF; ``extra`` (``--co``) wins. ``level``
    replaces the codec's default level (zstd: 1)."""
    options: dict[str, Any] = {
        "TILED": "YES",
        "BLOCKXSIZE": block,
        "BLOCKYSIZE": block,
        "COMPRESS": compress.upper(),
        "PREDICTOR": _predictor(dtype, compress),
        "BIGTIFF": "IF_SAFER",
    }
    default = _LEVELS.get(options["COMPRESS"])
    if default is not None:
        options[default[0]] = level if level is not None else default[2]
    options.update({k.upper(): v for k, v in (extra or {}).items()})
    return options


def cog_options(dtype: np.dtype, compress: str, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "COMPRESS": compress.upper(),
        "PREDICTOR": _predictor(dtype, compress, cog=True),
        "BLOCKSIZE": 512,
        "OVERVIEW_RESAMPLING": "AVERAGE",
        "BIGTIFF": "IF_SAFER",
    }
    default = _LEVELS.get(options["COMPRESS"])
    if default is not None:
        options[default[1]] = default[2]
    options.update({k.upper(): v for k, v in (extra or {}).items()})
    return options


def check_encoding(
    dtype: Any,
    count: int,
    *,
    cog: bool = False,
    compress: str = DEFAULT_COMPRESS,
    creation_options: Mapping[str, Any] | None = None,
) -> None:
    """Raise `OutputError` unless GDAL writes ``count`` bands of ``dtype`` with these options.

    A tiny file is written in memory with the same options (GDAL only warns about an
    unknown option, and fails JPEG or WebP compression of 16-bit data mid-write).
    """
    dtype = np.dtype(dtype)
    check_compression(compress)
    shown = {"COMPRESS", *(k.upper() for k in (creation_options or {}))}
    if cog:
        gdal.check_creation_options(
            dtype, count, cog_options(dtype, compress, creation_options), driver="COG", shown=shown
        )
    else:
        opts = geotiff_options(dtype, compress, 16, creation_options)
        opts.update({"BLOCKXSIZE": 16, "BLOCKYSIZE": 16})
        gdal.check_creation_options(dtype, count, opts, shown=shown)


def stored_dtype(da: xr.DataArray) -> np.dtype:
    """The type written to disk: the CF encoding's (a decoded array goes back to its
    stored type with its scale and offset), else the array's."""
    return np.dtype(da.encoding.get("dtype", da.dtype))


def _block_size(da: xr.DataArray) -> int:
    """Largest GeoTIFF tile size (<= 512) dividing the dask chunks: writes then hit whole tiles."""
    sizes = da.chunksizes
    chunks = [c for dim in (da.rio.y_dim, da.rio.x_dim) for c in sizes.get(dim, ())[:-1]]
    for size in (512, 256, 128, 64, 32, 16):
        if all(c % size == 0 for c in chunks):
            return size
    return 256


def write(
    da: xr.DataArray,
    path: str | os.PathLike[str],
    *,
    cog: bool = False,
    overwrite: bool = False,
    compress: str = DEFAULT_COMPRESS,
    creation_options: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> None:
    """Compute ``da`` and write it to ``path`` (.tif: tiled GeoTIFF or COG; .zarr: zarr).

    Blocks are computed and written as they come, so memory does not grow with the image.
    The output appears at ``path`` only when complete and checked; any failure raises
    `OutputError` (or `InputError` when reading the input failed) and leaves nothing
    there, and an existing output is replaced (``overwrite``) only by a complete one.
    ``creation_options`` are GDAL GeoTIFF (or COG) creation options, e.g.
    ``{"ZLEVEL": 9}``; they are tried on a tiny file before any work.
    """
    write_all(
        [(da, path)],
        cog=cog,
        overwrite=overwrite,
        compress=compress,
        creation_options=creation_options,
        progress=progress,
    )


def write_all(
    outputs: Sequence[tuple[xr.DataArray, str | os.PathLike[str]]],
    *,
    cog: bool = False,
    overwrite: bool = False,
    compress: str = DEFAULT_COMPRESS,
    creation_options: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> None:
    """`write` several arrays in one computation, so that work they share runs once (an
    upscaled output and its uncertainty map). Each output is atomic and checked as with
    `write`; on any failure none is placed."""
    import dask

    planned = []
    for da, path in outputs:
        check_output(
            path,
            overwrite=overwrite,
            cog=cog,
            compress=compress,
            creation_options=creation_options,
        )
        da = _exact_grid(da)
        if da.ndim == 3:  # GeoTIFF bands first, whatever the order of the upscaled array
            band_dim = next(d for d in da.dims if d not in (da.rio.y_dim, da.rio.x_dim))
            da = da.transpose(band_dim, da.rio.y_dim, da.rio.x_dim)
        if output_format(path) == "gtiff":
            count = da.shape[0] if da.ndim == 3 else 1
            check_encoding(
                stored_dtype(da),
                count,
                cog=cog,
                compress=compress,
                creation_options=creation_options,
            )
        planned.append((da, Path(path)))
    bound = cache.cache_bytes(cache.input_tile_rows(da for da, _ in planned))
    with (
        dask.config.set({"optimization.fuse.active": False}),  # keeps task annotations
        _gdal_env(bound),  # also while files are closed and cleaned up, so that GDAL's
        gdal.gdal_messages() as messages,  # messages are caught, not printed
        contextlib.ExitStack() as stack,
    ):
        tmps = [stack.enter_context(atomic_output(p, overwrite=overwrite)) for _, p in planned]
        current = planned[0][1], tmps[0]
        try:
            tasks, finish = [], []
            for (da, path), tmp in zip(planned, tmps, strict=True):
                if output_format(path) == "zarr":
                    tasks.append([_zarr_task(da, tmp)])
                else:
                    task, done, close = _geotiff(da, tmp, path, cog, compress, creation_options)
                    stack.callback(_quietly, close)  # after a failure: before the cleanup
                    tasks.append(task if isinstance(task, list) else [task])
                    finish.append((path, tmp, done))
            with gdal.gdal_failures() as failures:
                _compute(tasks, planned[0][0], progress)
            if failures:  # a read or write that GDAL reported only through its handler
                raise _unraised(failures, messages, [da for da, _ in planned])
            for path, tmp, done in finish:
                current = path, tmp
                done()
        except XSRError:
            raise
        except KeyboardInterrupt:
            raise
        except Exception as err:
            text = " ".join(gdal.chain(err))
            for (_, path), tmp in zip(planned, tmps, strict=True):
                if tmp.name in text:  # the output the error names (an --uncertainty map)
                    current = path, tmp
                    break
            raise _failure(err, current[1], current[0], messages) from err


def _geotiff(
    da: xr.DataArray,
    tmp: Path,
    path: Path,
    cog: bool,
    compress: str,
    creation_options: Mapping[str, Any] | None,
) -> tuple[Any, Any, Any]:
    """The dask task writing a GeoTIFF (a COG's intermediate), what finishes it once the
    task ran, and what closes the file if the task failed."""
    dtype = stored_dtype(da)
    raw = tmp.with_name(tmp.name + ".raw.tif") if cog else tmp
    options = geotiff_options(
        dtype,
        _COG_INTERMEDIATE if cog else compress,
        _block_size(da),
        None if cog else creation_options,
        level=1 if cog else None,  # the intermediate is rewritten at once: fastest
    )

    def finish() -> None:
        gdal.verify_geotiff(raw, what=path)
        if not cog:
            _set_color_interp(raw, da, rgb_only=True)
            return
        import rasterio.shutil

        # libtiff complains while reading the intermediate once it holds RGB + extra
        # bands set in update mode; the COG written from it by CreateCopy is clean
        with gdal.gdal_messages():
            _set_color_interp(raw, da, rgb_only=False)
            rasterio.shutil.copy(
                raw,
                tmp,
                driver="COG",
                num_threads="ALL_CPUS",
                **cog_options(dtype, compress, creation_options),
            )
        gdal.verify_geotiff(tmp, what=path)

    task, close = _geotiff_task(da, raw, options)

    def done() -> None:
        close()
        finish()

    return task, done, close


def _set_color_interp(path: Path, da: xr.DataArray, *, rgb_only: bool) -> None:
    """Red/Green/Blue/NIR... colour interpretation when every band is named (B04, red...).

    GDAL cannot add the extra-sample declaration of a fourth band to a TIFF it updates
    in place (libtiff then warns on every read), so with ``rgb_only`` only an exactly
    red, green, blue file gets one; COGs, written from scratch by a copy, get all."""
    import rasterio
    from rasterio.enums import ColorInterp

    from xsr4rs.bands import COLOR_INTERP, canonical

    names = da.attrs.get("long_name")
    names = [names] if isinstance(names, str) else list(names or [])
    if da.ndim == 3 and da.dims[0] in da.coords and len(names) != da.shape[0]:
        names = [str(v) for v in da[da.dims[0]].values]
    interp = [COLOR_INTERP.get(canonical(n) or "") for n in names]
    count = da.shape[0] if da.ndim == 3 else 1
    if len(interp) != count or None in interp:
        return
    if rgb_only and interp != ["red", "green", "blue"]:
        return
    values = [getattr(ColorInterp, name, ColorInterp.undefined) for name in interp]
    with rasterio.open(path, "r+") as dst:
        dst.colorinterp = values


def _unraised(failures: list[str], messages: list[str], arrays: list[Any]) -> Exception:
    """What to raise when GDAL reported errors that no call raised: the failures join
    ``messages`` (for the cause of a write error); a read error becomes `InputError`."""
    messages.extend(failures)
    if any(gdal.io_error(m) for m in failures):
        return OSError(failures[0])
    names = sorted({str(src.name) for src in cache.raster_sources(arrays)})
    what = ", ".join(names[:3]) or "the input"
    shown = "; ".join(failures[:3])
    return InputError(
        f"reading {what} failed: GDAL reported {shown!r} while blocks were read, and the "
        "values it returned cannot be trusted. Is the file complete and readable?"
    )


def _failure(err: BaseException, tmp: Path, path: Path, messages: list[str]) -> XSRError:
    """The one-line error for ``err`` raised while writing ``tmp`` (for ``path``)."""
    text = " ".join(gdal.chain(err))
    if str(tmp) not in text and tmp.name not in text and gdal.os_cause(err) is None:
        reading = gdal.read_failure(err)
        if reading:
            return InputError(reading)
    message = gdal.describe_write_failure(err, path, messages)
    return OutputError(f"{message}; nothing was written to {path}")


def _geotiff_task(da: xr.DataArray, path: Path, options: Mapping[str, Any]) -> tuple[Any, Any]:
    """The dask task writing ``da`` to ``path``, and what closes the file after it.

    In one process the file stays open in write mode (`xsr4rs.io.tiff`: GDAL applies
    the compression level only there); on a cluster each block is written by rioxarray,
    which reopens the file under a cluster-wide lock."""
    from xsr4rs.io.tiff import open_geotiff

    kwargs = {k.lower(): v for k, v in options.items()}
    kwargs["tiled"] = True
    if _client() is None:
        stores, target = open_geotiff(da, path, kwargs)
        return stores, target.close
    from distributed import Lock

    task = da.rio.to_raster(
        path,
        driver="GTiff",
        recalc_transform=False,  # the grid's own transform (`_exact_grid`)
        num_threads="ALL_CPUS",
        lock=Lock("xsr4rs-geotiff-write"),  # one writer at a time, cluster-wide
        compute=False,
        **kwargs,
    )
    return task, lambda: None


def _quietly(close: Any) -> None:
    """Close a file after a failure; the failure, not this, is what gets reported."""
    try:
        close()
    except Exception:  # noqa: S110  (a full disk fails again here: already reported)
        pass


def _client() -> Any:
    """The dask distributed client in use, or None."""
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None


def _exact_grid(da: xr.DataArray) -> xr.DataArray:
    """``da`` with the transform of its pixel grid written (`xsr4rs.layout.grid_transform`):
    writers use it as it is, not recomputed from the coordinates, whose floating-point
    rounding changed the pixel size of a geographic grid in its 13th digit, and not a
    transform left stale by a selection."""
    from xsr4rs.layout import grid_transform

    try:
        located = not da.rio.get_gcps() and da.rio.x_dim in da.coords
    except Exception:  # noqa: BLE001 - no spatial dimensions: the writer says so
        return da
    return da.rio.write_transform(grid_transform(da)) if located else da


def _zarr_task(da: xr.DataArray, path: Path) -> Any:
    if da.chunks is not None:  # zarr needs equal chunks but the last (a window's are not)
        regular = {
            d: max(c)
            for d, c in zip(da.dims, da.chunks, strict=True)
            if len(set(c[:-1])) > 1 or (len(c) > 1 and c[-1] > c[0])
        }
        if regular:
            da = da.chunk(regular)
    name = da.name or "data"
    ds = da.to_dataset(name=name)
    var = ds[name]
    # identity CF scaling (rioxarray's scale_factor 1, add_offset 0) would make readers
    # decode the data to float64; a real scaling is kept
    if var.attrs.get("scale_factor", 1.0) == 1.0 and var.attrs.get("add_offset", 0.0) == 0.0:
        var.attrs.pop("scale_factor", None)
        var.attrs.pop("add_offset", None)
    fill = var.attrs.pop("_FillValue", None)
    if fill is not None:
        var.encoding["_FillValue"] = fill
    crs = da.rio.crs
    if crs is not None:  # GDAL's own Zarr CRS attribute, beside CF's grid_mapping
        var.attrs["_CRS"] = {"wkt": crs.to_wkt()}
    # zarr v2 with consolidated metadata: readable by GDAL, older zarr and xarray versions
    return ds.to_zarr(path, mode="w", compute=False, zarr_format=2, consolidated=True)


def _gdal_env(cache_bytes: int = cache.MIN_BYTES) -> Any:
    """GDAL's settings while writing, its block cache bounded to ``cache_bytes``
    (`xsr4rs.io.cache`): a value set by the user wins."""
    import rasterio

    # GDAL compresses GeoTIFF tiles on all cores (measured: 20.5 s -> 12.2 s for the
    # x4 sample scene)
    return rasterio.Env(GDAL_NUM_THREADS=gdal.num_threads(), **gdal.cache_limit(cache_bytes))


def _compute(tasks: list[list[Any]], da: xr.DataArray, progress: bool) -> None:
    """Compute each output's tasks: in rounds (strip k of every output together) when
    every output is written in strips of the same rows, else all at once."""
    if len({len(t) for t in tasks}) == 1:
        rounds = [list(r) for r in zip(*tasks, strict=True)]
    else:  # e.g. a zarr beside a GeoTIFF: one computation, so shared work runs once
        rounds = [[t for ts in tasks for t in ts]]
    _run(rounds, da, progress)


def _blocks(da: xr.DataArray) -> int:
    """Model blocks behind ``da``: its chunks, all bands counting as one."""
    if not da.chunks:
        return 1
    band = [i for i, d in enumerate(da.dims) if d not in (da.rio.y_dim, da.rio.x_dim)]
    counts = [len(c) for i, c in enumerate(da.chunks) if i not in band[-1:]]
    return int(np.prod(counts))


def _run(rounds: list[list[Any]], da: xr.DataArray, progress: bool) -> None:
    import dask

    client = _client()
    if client is not None:
        futures = client.compute([t for r in rounds for t in r])
        if progress:
            from distributed import progress as dprogress

            dprogress(futures)
        client.gather(futures)
        return
    with contextlib.ExitStack() as stack:
        pool = _own_pool(rounds[0])
        if pool is not None:
            stack.enter_context(dask.config.set(pool=pool))
            # on a failure dask raises at once, while other blocks may still be computing
            # and writing: wait for them (and drop those not started) before the output's
            # temporary is removed, or a late zarr chunk would recreate it
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
        if progress:
            from xsr4rs.progress import BlockProgress

            stack.enter_context(BlockProgress(total=_blocks(da)))
        for r in rounds:
            dask.compute(*r)


def _own_pool(collections: list[Any]) -> Any:
    """A thread pool for this write when dask would run it on its threaded scheduler's
    shared pool (the default), so that the write can wait for its own tasks; ``None``
    when another scheduler, or a pool the user configured, is in use."""
    import dask
    import dask.base
    import dask.system
    import dask.threaded

    if dask.config.get("pool", None) is not None:
        return None
    if dask.base.get_scheduler(collections=collections) is not dask.threaded.get:
        return None
    from concurrent.futures import ThreadPoolExecutor

    workers = dask.config.get("num_workers", None) or dask.system.CPU_COUNT
    idle = priority.idle()
    if idle:
        priority.model_threads_started()
    initializer = priority.lower_this_thread if idle else None
    return ThreadPoolExecutor(workers, thread_name_prefix="xsr4rs-write", initializer=initializer)
