"""Atomic outputs: write beside the target under a temporary name, then place it in one step.

The temporary name carries the host and process id of its writer
(``.NAME.xsr4rs-HOST-PID-RANDOM.tmp.EXT``), so a later run can tell a temporary left by
a dead process (removed) from one still being written by a live one (left alone).
Placing uses ``renameat2(RENAME_NOREPLACE)`` where the system has it, so an output that
appeared in the meantime is never clobbered; with ``overwrite`` an existing file is
replaced atomically, and an existing xsr4rs zarr store is swapped
(``RENAME_EXCHANGE``) before the old one is removed. Nothing else at the output path
(a folder of other files) is ever replaced.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import logging
import os
import re
import shutil
import socket
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from xsr4rs.exceptions import OutputError, OutputWarning, XSRError

log = logging.getLogger("xsr4rs")

_TMP_TAG = ".xsr4rs-"
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
#: Paths of temporaries to remove again at exit: a task that was still running when the
#: write failed may recreate part of them after the first removal.
_LEFTOVERS: set[Path] = set()


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:40] or "host"


def temporary_path(path: Path) -> Path:
    """A fresh temporary name beside ``path`` naming this host and process."""
    tag = f"{_TMP_TAG}{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return path.with_name(f".{path.name}{tag}.tmp{path.suffix}")


def _temporaries(path: Path) -> list[Path]:
    prefix = f".{path.name}{_TMP_TAG}"
    try:
        return [p for p in path.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return []


def _writer(tmp: Path, path: Path) -> tuple[str, int] | None:
    """(host, pid) encoded in the name of a temporary of ``path``."""
    rest = tmp.name[len(f".{path.name}{_TMP_TAG}") :]
    m = re.match(r"(.+)-(\d+)-[0-9a-f]{8}\.tmp", rest)
    return (m.group(1), int(m.group(2))) if m else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Remove temporaries of ``path`` left by dead processes of this host; return them.

    Temporaries of live processes, and of other hosts (on a shared file system, whose
    processes cannot be checked from here), are left alone and reported as a note.
    """
    path = Path(path)
    removed, foreign = [], []
    for tmp in _temporaries(path):
        writer = _writer(tmp, path)
        if writer is None:
            continue
        host, pid = writer
        if host == _host() and not _alive(pid):
            remove(tmp)
            removed.append(tmp)
        elif host != _host():
            foreign.append(tmp)
    if removed:
        log.info("removed %d temporary output(s) of dead processes: %s", len(removed), removed)
    if foreign:
        warnings.warn(
            f"{len(foreign)} temporary output(s) of {path.name} written from other hosts "
            f"stand beside it ({foreign[0].name}...): remove them if those runs are over",
            OutputWarning,
            stacklevel=3,
        )
    return removed


def remove(p: Path) -> None:
    """Remove a file, link or folder if it exists."""
    try:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists() or p.is_symlink():
            p.unlink()
    except FileNotFoundError:
        pass


def _remove_leftovers() -> None:
    for p in list(_LEFTOVERS):
        remove(p)
        for aux in p.parent.glob(p.name + ".*"):
            remove(aux)


atexit.register(_remove_leftovers)


def is_xsr4rs_store(path: Path) -> bool:
    """True for a zarr store written by xsr4rs (its metadata names an xsr4rs model)."""
    meta = path / ".zmetadata"
    try:
        return path.is_dir() and meta.is_file() and '"xsr4rs_model"' in meta.read_text()
    except OSError:
        return False


def check_replaceable(path: Path, *, overwrite: bool) -> None:
    """Raise `OutputError` unless ``path`` is absent, or replaceable with ``overwrite``."""
    if not (path.exists() or path.is_symlink()):
        return
    if not overwrite:
        raise OutputError(f"output {path} exists: pass --overwrite (overwrite=True) to replace it")
    if path.is_dir() and not path.is_symlink() and not is_xsr4rs_store(path):
        raise OutputError(
            f"output {path} is a folder that is not an xsr4rs zarr output: --overwrite "
            "replaces only files and xsr4rs zarr stores; remove it yourself or choose "
            "another output name"
        )


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)``; False when the system or file system lacks it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    rc = fn(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), ctypes.c_uint(flags))
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(dst))


def place(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Move the complete temporary ``tmp`` to ``path`` in one step.

    Without ``overwrite`` an output that appeared at ``path`` since the run started is
    never replaced (`OutputError`). With it, a file is replaced atomically and an
    xsr4rs store is swapped, then the old one removed.
    """
    try:
        if not overwrite:
            _place_new(tmp, path)
            return
        check_replaceable(path, overwrite=True)
        if tmp.is_dir() and (path.is_dir() and not path.is_symlink()):
            if not _renameat2(tmp, path, _RENAME_EXCHANGE):
                old = temporary_path(path)
                os.rename(path, old)
                try:
                    os.rename(tmp, path)
                except OSError:
                    os.rename(old, path)
                    raise
                tmp = old
            remove(tmp)  # now the old output
        elif tmp.is_dir() and path.exists():  # a store replacing a file
            old = temporary_path(path)
            os.rename(path, old)
            os.rename(tmp, path)
            remove(old)
        else:
            os.replace(tmp, path)
    except FileExistsError:
        raise OutputError(
            f"output {path} appeared while this run was writing (another process?): it was "
            "left as it is and nothing was written; pass --overwrite to replace it"
        ) from None


def _place_new(tmp: Path, path: Path) -> None:
    if _renameat2(tmp, path, _RENAME_NOREPLACE):
        return
    if tmp.is_dir():
        # rename(2) of a folder fails on an existing file or non-empty folder; an empty
        # folder that appeared in the meantime is the one case it would replace
        if path.exists() or path.is_symlink():
            raise FileExistsError(errno.EEXIST, "exists", str(path))
        try:
            os.rename(tmp, path)
        except OSError as err:
            if err.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
            raise
    else:
        try:
            os.link(tmp, path)  # fails with EEXIST, never replaces
        except FileExistsError:
            raise
        except OSError:  # no hard links here (some network or FAT file systems)
            if path.exists() or path.is_symlink():
                raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
            os.rename(tmp, path)  # the one case left: a file created in the meantime
            return
        os.unlink(tmp)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success place it at ``path``.

    On any failure (an exception, Ctrl-C, SIGTERM turned into an exception by the CLI)
    the temporary and GDAL's side files are removed, now and again at exit.
    """
    path = Path(path)
    check_replaceable(path, overwrite=overwrite)
    remove_stale_temporaries(path)
    tmp = temporary_path(path)
    ok = False
    try:
        yield tmp
        place(tmp, path, overwrite=overwrite)
        ok = True
    finally:
        remove(tmp)
        for aux in tmp.parent.glob(tmp.name + ".*"):  # .aux.xml, .ovr, .raw.tif
            remove(aux)
        if not ok:
            _LEFTOVERS.add(tmp)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` are one file (their real paths when either is missing)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_folder(path: str | os.PathLike[str]) -> None:
    """Raise `OutputError` unless the folder of ``path`` exists."""
    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: {path.parent} is a file, not a folder")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")


def check_not_inputs(path: str | os.PathLike[str], inputs: Sequence[Any]) -> None:
    """Raise `OutputError` when ``path`` is one of the ``inputs`` files (it would be
    replaced by the output)."""
    for src in inputs:
        if same_file(src, path):
            raise OutputError(
                f"the output {path} is the input {src}: writing it would destroy the input. "
                "Give the output another name; nothing was changed"
            )


def write_atomically(path: str | os.PathLike[str], write: Any) -> None:
    """Call ``write(tmp)`` for a temporary beside ``path`` and place it at ``path``
    (replacing a file there) only when complete; a failure leaves ``path`` as it was and
    raises `OutputError` naming the cause."""
    from xsr4rs.io import gdal

    path = Path(path)
    check_folder(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    try:
        with atomic_output(path, overwrite=True) as tmp:
            write(tmp)
    except XSRError:
        raise
    except Exception as err:
        raise OutputError(
            f"{gdal.describe_write_failure(err, path, [])}; {path} was left as it was"
        ) from None
