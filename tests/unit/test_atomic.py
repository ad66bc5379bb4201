"""Placing outputs: never clobber without overwrite, replace only files and xsr4rs stores,
clean the temporaries of dead processes (no GDAL or TensorFlow here)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from xsr4rs.exceptions import OutputError, OutputWarning
from xsr4rs.io import atomic
from xsr4rs.io.atomic import atomic_output, place


def _store(path, marker=True):
    path.mkdir()
    (path / ".zmetadata").write_text('{"xsr4rs_model": "m"}' if marker else "{}")
    return path


@pytest.mark.parametrize("renameat2", [True, False])
def test_a_new_output_never_replaces_one_that_appeared(tmp_path, monkeypatch, renameat2):
    if not renameat2:  # the fallbacks of systems without renameat2
        monkeypatch.setattr(atomic, "_renameat2", lambda *a: False)
    for kind in ("file", "store"):
        out = tmp_path / f"o_{kind}"
        tmp = tmp_path / f"t_{kind}"
        if kind == "file":
            tmp.write_text("new")
        else:
            _store(tmp)
        out.write_text("theirs")
        with pytest.raises(OutputError, match="appeared while this run was writing"):
            place(tmp, out, overwrite=False)
        assert out.read_text() == "theirs"


def test_no_hard_links_fall_back_to_a_checked_rename(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_renameat2", lambda *a: False)

    def no_links(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    tmp, out = tmp_path / "t", tmp_path / "o"
    tmp.write_text("new")
    place(tmp, out, overwrite=False)
    assert out.read_text() == "new" and not tmp.exists()


def test_overwrite_replaces_files_and_stores_only(tmp_path):
    out = tmp_path / "o.zarr"
    _store(out)
    new = _store(tmp_path / "new.zarr")
    (new / "data").write_text("fresh")
    place(new, out, overwrite=True)
    assert (out / "data").read_text() == "fresh" and not new.exists()
    folder = tmp_path / "thesis.tif"
    folder.mkdir()
    (folder / "chapter1.txt").write_text("years of work")
    with pytest.raises(OutputError, match="not an xsr4rs zarr output"):
        with atomic_output(folder, overwrite=True):
            pass
    assert (folder / "chapter1.txt").exists()


def test_failed_writes_leave_nothing(tmp_path):
    out = tmp_path / "o.tif"
    with pytest.raises(RuntimeError):
        with atomic_output(out) as tmp:
            tmp.write_text("half")
            (tmp.parent / (tmp.name + ".aux.xml")).write_text("<x/>")
            raise RuntimeError("disk full")
    assert os.listdir(tmp_path) == []


def test_temporaries_of_dead_processes_are_removed_others_kept(tmp_path):
    pid = int(
        subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
        ).stdout
    )
    out = tmp_path / "o.tif"
    host = atomic._host()
    dead = tmp_path / f".o.tif.xsr4rs-{host}-{pid}-0123abcd.tmp.tif"
    live = tmp_path / f".o.tif.xsr4rs-{host}-{os.getpid()}-0123abcd.tmp.tif"
    other = tmp_path / ".o.tif.xsr4rs-elsewhere-1-0123abcd.tmp.tif"
    for p in (dead, live, other):
        p.write_text("x")
    with pytest.warns(OutputWarning, match="other hosts"):
        assert atomic.remove_stale_temporaries(out) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])
