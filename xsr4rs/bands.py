"""Band names: match an input's bands to a model's by name (pure functions, no xarray).

Names are compared by their *canonical* form: Sentinel-2 band ids (``B04``, ``b4``,
``s2_B04``, ``B8A``) and STAC ``eo`` common names (``red``, ``nir``, ``swir16``...) of
Sentinel-2 all map to one id, so a model trained on ``B04, B03, B02, B08`` accepts a
stackstac cube whose bands are ``red, green, blue, nir`` or an odc-stac Dataset with those
variables, in any order. Names that are neither (``band_1``, ``1``) are *unnamed*: such
inputs keep positional behaviour.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: STAC ``eo:common_name`` of each Sentinel-2 MSI band (STAC eo extension; earth-search).
COMMON_NAMES = {
    "coastal": "B01",
    "blue": "B02",
    "green": "B03",
    "red": "B04",
    "rededge1": "B05",
    "rededge2": "B06",
    "rededge3": "B07",
    "nir": "B08",
    "nir08": "B8A",
    "nir09": "B09",
    "cirrus": "B10",
    "swir16": "B11",
    "swir22": "B12",
}
#: GDAL colour interpretation (rasterio ``ColorInterp`` names, GDAL >= 3.10) of each band.
COLOR_INTERP = {
    "B01": "coastal",
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B05": "rededge",
    "B06": "rededge",
    "B07": "rededge",
    "B08": "nir",
    "B8A": "nir",
    "B09": "nir",
    "B10": "swir",
    "B11": "swir",
    "B12": "swir",
}

_ID = re.compile(r"(?:^|[^a-z0-9])b0?(\d{1,2}a?)(?:$|[^a-z0-9])")


def canonical(name: object) -> str | None:
    """The Sentinel-2 band id a name stands for (``"B04"``), or ``None``.

    >>> [canonical(n) for n in ("red", "B4", "s2_B04", "B8A", "nir", "band_1", 3)]
    ['B04', 'B04', 'B04', 'B8A', 'B08', None, None]
    """
    if not isinstance(name, str):
        return None
    text = name.strip().lower()
    if text in COMMON_NAMES:
        return COMMON_NAMES[text]
    m = _ID.search(text)
    if not m:
        return None
    number = m.group(1).upper()
    return "B" + (number if number.endswith("A") else number.zfill(2))


def is_named(names: Sequence[object]) -> bool:
    """True when every name stands for a known band (so matching by name applies)."""
    return bool(names) and all(canonical(n) is not None for n in names)


def match(wanted: Sequence[str], given: Sequence[object]) -> list[int] | None:
    """Positions in ``given`` of each band of ``wanted`` (by canonical name).

    Returns ``None`` when the two cannot be compared by name (either side unnamed), and
    raises `KeyError` naming what is missing when ``given`` lacks a wanted band.

    >>> match(["B04", "B03", "B02", "B08"], ["blue", "green", "red", "nir"])
    [2, 1, 0, 3]
    """
    if not is_named(wanted) or not is_named(given):
        return None
    ids = [canonical(g) for g in given]
    if len(set(ids)) != len(ids):
        raise KeyError(f"the input names the same band twice: {list(given)}")
    out, missing = [], []
    for w in wanted:
        key = canonical(w)
        if key in ids:
            out.append(ids.index(key))
        else:
            missing.append(w)
    if missing:
        raise KeyError(
            f"the input has no band {', '.join(map(str, missing))} "
            f"(its bands are {', '.join(map(str, given))})"
        )
    return out
