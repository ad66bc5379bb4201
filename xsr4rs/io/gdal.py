"""What GDAL does not say loudly enough: bad creation options, failed writes, OS errors.

GDAL reports some failures only as log messages (an unknown creation option, JPEG
compression of 16-bit data) and libtiff errors raised while tiles are flushed on close,
or in GDAL's compression threads, never reach Python. So creation options are tried on a
16 x 16 file in memory before any work, and a written GeoTIFF is read back tile by tile
(offsets and sizes only, not pixels) before it is placed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xsr4rs.exceptions import OutputError

#: GDAL messages about creation options that it ignores instead of failing.
_IGNORED_OPTION = re.compile(
    r"(does not support (the )?creation option|is an unexpected value|not recognised|"
    r"unexpected value|ignoring)",
    re.IGNORECASE,
)


class _Records(logging.Handler):
    """Collects the messages of GDAL errors and warnings that rasterio logs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        m = re.search(r"msg='(.*)'", text)
        if m:
            text = m.group(1)
        elif " in " in text and text.startswith("CPLE_"):
            text = text.split(" in ", 1)[1]
        elif record.levelno < logging.WARNING:
            return
        if text not in self.messages:
            self.messages.append(text)


def cache_limit(nbytes: int) -> dict[str, int]:
    """``GDAL_CACHEMAX`` bounded to ``nbytes``, as options of a ``rasterio.Env``, unless
    the user set it in the environment (theirs wins)."""
    return {} if "GDAL_CACHEMAX" in os.environ else {"GDAL_CACHEMAX": nbytes}


def num_threads() -> str:
    """GDAL's compression threads for a GeoTIFF write: ``GDAL_NUM_THREADS`` when the user
    set it, else all cores."""
    return os.environ.get("GDAL_NUM_THREADS") or "ALL_CPUS"


@contextlib.contextmanager
def gdal_messages() -> Iterator[list[str]]:
    """Collect, during the block, the GDAL error and warning messages rasterio logs."""
    handler = _Records()
    loggers = [logging.getLogger(n) for n in ("rasterio._env", "rasterio._err", "rasterio._io")]
    saved = [(lg, lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
        lg.propagate = False
    try:
        yield handler.messages
    finally:
        for lg, level, propagate in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate


def parse_creation_options(items: list[str] | None) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` (GDAL's ``-co``) as a dict with upper-case keys."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OutputError(f"--co takes KEY=VALUE creation options, got {item!r}")
        out[key.strip().upper()] = value.strip()
    return out


def check_creation_options(
    dtype: Any,
    count: int,
    options: Mapping[str, Any],
    *,
    driver: str = "GTiff",
    shown: set[str] | None = None,
) -> None:
    """Write a 16 x 16 file of ``dtype`` x ``count`` bands with ``options`` in memory.

    Raise `OutputError` naming GDAL's reason when the write fails or an option is
    ignored (GDAL only warns about an unknown option or an unknown compression).
    """
    import rasterio
    import rasterio.shutil
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioError

    dtype = np.dtype(dtype)
    described = ", ".join(f"{k}={v}" for k, v in options.items() if shown is None or k in shown)
    path = f"/vsimem/xsr4rs-check-{uuid.uuid4().hex}.tif"
    copy = path.replace(".tif", "-copy.tif")
    profile = {"width": 16, "height": 16, "count": count, "dtype": dtype.name}
    with gdal_messages() as messages:
        try:
            with rasterio.Env(CPL_DEBUG=False):
                if driver == "COG":  # the COG driver only copies: write a GeoTIFF first
                    with rasterio.open(path, "w", driver="GTiff", **profile) as dst:
                        dst.write(np.ones((count, 16, 16), dtype=dtype))
                    rasterio.shutil.copy(path, copy, driver="COG", **options)
                    check = copy
                else:
                    with rasterio.open(path, "w", driver=driver, **profile, **options) as dst:
                        dst.write(np.ones((count, 16, 16), dtype=dtype))
                    check = path
                with rasterio.open(check) as src:
                    src.read(1)
            failed = None
        except (RasterioError, CPLE_BaseError, ValueError, TypeError) as err:
            failed = str(err).splitlines()[0] if str(err) else type(err).__name__
        finally:
            for p in (path, copy):
                with contextlib.suppress(Exception):
                    rasterio.shutil.delete(p)
    ignored = [m for m in messages if _IGNORED_OPTION.search(m)]
    if failed is not None or ignored:
        reason = str((ignored or messages or [failed])[0]).rstrip(". ")
        raise OutputError(
            f"GDAL cannot write {count}-band {dtype} {driver} with {described}: {reason}. "
            "Choose another compression or option (deflate, zstd and lzw fit every type; "
            "jpeg and webp only 8-bit data)"
        )


#: GDAL's error class (``CPLErr``) ``CE_Failure``: ``CE_Fatal`` is worse.
_CE_FAILURE = 3


@contextlib.contextmanager
def gdal_failures() -> Iterator[list[str]]:
    """Collect the errors GDAL reports, during the block, in threads where rasterio has
    not installed its own handler: dask's worker threads, and GDAL's own (decoding JPEG
    2000 tiles). GDAL's default handler only prints them, and a read that failed there
    returns zeros: a JPEG 2000 cut inside its tiles was upscaled into an all-zero output
    with exit 0. Errors (``CE_Failure`` and worse) are collected; warnings are dropped,
    as rasterio's handler logs them at debug level."""
    failures: list[str] = []
    try:
        import ctypes

        import rasterio._env

        lib = ctypes.CDLL(rasterio._env.__file__)  # GDAL's symbols, through its links
        handler_type = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_char_p)
        set_handler = lib.CPLSetErrorHandler
        set_handler.restype = ctypes.c_void_p
    except (ImportError, OSError, AttributeError):  # no ctypes access to GDAL here
        yield failures
        return

    def record(err_class: int, err_no: int, message: bytes | None) -> None:
        if err_class >= _CE_FAILURE:
            text = (message or b"").decode("utf-8", "replace").strip()
            if text not in failures:
                failures.append(text)

    handler = handler_type(record)
    set_handler.argtypes = [handler_type]
    previous = set_handler(handler)
    try:
        yield failures
    finally:
        set_handler.argtypes = [ctypes.c_void_p]
        set_handler(previous)


@contextlib.contextmanager
def c_stderr_lines() -> Iterator[list[str]]:
    """Collect what C code writes to the process's stderr (file descriptor 2) during the
    block, as lines; other lines than write errors are passed on afterwards.

    libtiff reports a failed write while a file is closed (its last tiles flushed)
    straight to stderr with its own default handler, not through GDAL's error handler
    that rasterio logs: a full disk there left a file with a cut tile and no error.
    """
    import sys
    import tempfile

    lines: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters)
        yield lines
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            lines.extend(ln.strip() for ln in text.splitlines() if ln.strip())
            rest = [ln for ln in lines if not io_error(ln)]
            if rest:
                os.write(2, ("\n".join(rest) + "\n").encode())


def verify_geotiff(path: Path, *, what: Path | None = None) -> None:
    """Raise `OutputError` unless every tile of every image of the GeoTIFF ``path``
    (overviews included) has data inside the file.

    A tile GDAL failed to write keeps offset 0 and reads back as zeros without an error;
    a tile cut by a full disk ends past the end of the file.
    """
    import rasterio

    size = path.stat().st_size
    shown = what or path
    with rasterio.open(path) as src:
        levels = len(src.overviews(1))
    for level in [None, *range(levels)]:
        kwargs = {} if level is None else {"overview_level": level}
        with rasterio.open(path, **kwargs) as src:
            bh, bw = src.block_shapes[0]
            ny, nx = -(-src.height // bh), -(-src.width // bw)
            planes = range(1, src.count + 1) if src.interleaving.name == "BAND" else [1]
            missing = 0
            for band in planes:
                for j in range(ny):
                    for i in range(nx):
                        off = src.get_tag_item(f"BLOCK_OFFSET_{i}_{j}", "TIFF", bidx=band)
                        n = src.get_tag_item(f"BLOCK_SIZE_{i}_{j}", "TIFF", bidx=band)
                        if not off or not n or int(off) == 0 or int(off) + int(n) > size:
                            missing += 1
            if missing:
                image = "the image" if level is None else f"overview {level + 1}"
                raise OutputError(
                    f"writing {shown} failed: {missing} of {ny * nx * len(planes)} tiles of "
                    f"{image} were not written{_disk_hint(path)}"
                )


def _disk_hint(path: Path) -> str:
    import shutil

    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return ""
    if free < 64 * 2**20:
        return f" (disk full: {free // 2**20} MiB free in {path.parent})"
    return " (disk full, a file size limit, or a GDAL write error)"


_OS_CAUSES = {
    errno.ENOSPC: "no space left on device (disk full)",
    errno.EFBIG: "file too large (a file size limit of the system or file system)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
}


def os_cause(err: BaseException) -> str | None:
    """A short cause for an OS-level write failure found in ``err`` or its chain."""
    seen = 0
    e: BaseException | None = err
    while e is not None and seen < 8:
        if isinstance(e, OSError) and e.errno in _OS_CAUSES:
            return _OS_CAUSES[e.errno]
        text = str(e).lower()
        for key, cause in (
            ("no space left", _OS_CAUSES[errno.ENOSPC]),
            ("file too large", _OS_CAUSES[errno.EFBIG]),
            ("quota", _OS_CAUSES[errno.EDQUOT]),
            ("permission denied", _OS_CAUSES[errno.EACCES]),
            ("read-only file system", _OS_CAUSES[errno.EROFS]),
        ):
            if key in text:
                return cause
        e = e.__cause__ or e.__context__
        seen += 1
    return None


def _io_cause(messages: list[str]) -> str | None:
    """A write error GDAL or libtiff reported (a full disk, a file-size limit): what
    failed first, rather than the unreadable file it left behind."""
    for m in messages:
        low = m.lower()
        if any(k in low for k in ("no space", "too large", "permission denied")):
            return m
    for m in messages:
        if "write error" in m.lower():
            return f"{m} (is the disk full, or a file-size limit reached?)"
    return None


def io_error(message: str) -> bool:
    """Whether a GDAL or libtiff message reports a failed write (`_io_cause`)."""
    return _io_cause([message]) is not None


def gdal_cause(messages: list[str]) -> str | None:
    """The first GDAL message that explains a failed write, if any."""
    for m in messages:
        low = m.lower()
        if any(k in low for k in ("write", "space", "too large", "failed", "cannot", "error")):
            return m
    return None


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def chain(err: BaseException) -> list[str]:
    """First lines of ``err`` and of the exceptions it was raised from, outermost first."""
    out: list[str] = []
    e: BaseException | None = err
    while e is not None and len(out) < 8:
        out.append(first_line(e))
        e = e.__cause__ or e.__context__
    return out


_READ_FAILURE = re.compile(r"^(?P<file>.+?), band (?P<band>\d+): (?P<reason>.*)$")


def read_failure(err: BaseException) -> str | None:
    """``"reading FILE (band N) failed: REASON"`` when ``err`` is GDAL failing to read an
    input block, else ``None``."""
    lines = chain(err)
    if not any("read failed" in ln.lower() or "IReadBlock" in ln for ln in lines):
        return None
    where, reason = "the input", lines[-1]
    for ln in lines:
        m = _READ_FAILURE.match(ln)
        if m:
            where = f"{m.group('file')} (band {m.group('band')})"
            reason = m.group("reason").split(":")[0]
            break
    detail = lines[-1]
    text = f"reading {where} failed: {reason}"
    if detail and detail not in text:
        text += f" ({detail})"
    return text + ". Is the file complete and readable?"


def describe_write_failure(err: BaseException, path: Path, messages: list[str]) -> str:
    """One line: why writing ``path`` failed."""
    cause = os_cause(err) or _io_cause(messages)
    if cause is None:
        specific = [c for c in chain(err) if "see previous exception" not in c.lower()]
        cause = (specific or [gdal_cause(messages) or first_line(err)])[-1]
        if "write error" in cause.lower():
            cause += _disk_hint(path)
    return f"writing {path} failed: {cause}"
