"""The examples of the docs that are marked to run do run, on real data."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
MARK = "<!-- runs in tests/integration/test_docs.py"


def marked_blocks(page: str) -> list[str]:
    """The python blocks right after a marker line of ``docs/page``."""
    text = (DOCS / page).read_text()
    pattern = re.escape(MARK) + r"[^\n]*-->\n```python\n(.*?)```"
    return re.findall(pattern, text, flags=re.S)


def test_every_marked_block_is_found():
    assert len(marked_blocks("upscaling.md")) == 2


@pytest.mark.parametrize("index", [0, 1], ids=["stackstac", "odc-stac"])
def test_from_stac_examples_run(rkh_item, tmp_path, monkeypatch, index):
    pytest.importorskip("stackstac")
    pytest.importorskip("odc.stac")
    monkeypatch.chdir(tmp_path)
    items = []
    for day in ("2020-02-19", "2020-03-20"):
        it = copy.deepcopy(rkh_item)
        it["id"] = f"S2A_29RKH_{day.replace('-', '')}_0_L2A"
        it["properties"]["datetime"] = f"{day}T11:34:25Z"
        items.append(it)
    code = marked_blocks("upscaling.md")[index]
    namespace = {"items": items}
    exec(compile(code, f"docs/upscaling.md block {index}", "exec"), namespace)
    sr = namespace["sr"]
    assert sr.rio.resolution() == (25.0, -25.0)
    if index == 0:
        assert (tmp_path / "first_date_x4.tif").is_file()
    else:
        assert list(sr.data_vars) == ["red", "green", "blue", "nir"]
