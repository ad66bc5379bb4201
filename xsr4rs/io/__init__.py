"""Reading rasters and writing outputs.

``open_raster`` opens files or band stacks lazily; ``write`` streams an upscaled array
to a tiled GeoTIFF, a Cloud Optimized GeoTIFF or zarr, atomically: the output appears
only when complete and checked, and every failure is one `OutputError` or `InputError`
that leaves nothing behind.
"""

from xsr4rs.io.atomic import atomic_output, remove_stale_temporaries
from xsr4rs.io.read import (
    SAMPLE_SCENE,
    band_names,
    input_paths,
    open_raster,
    sample_scene_paths,
    select_bands,
)
from xsr4rs.io.write import (
    check_encoding,
    check_not_an_input,
    check_output,
    output_format,
    write,
    write_all,
)

__all__ = [
    "SAMPLE_SCENE",
    "atomic_output",
    "band_names",
    "check_encoding",
    "check_not_an_input",
    "check_output",
    "input_paths",
    "open_raster",
    "output_format",
    "remove_stale_temporaries",
    "sample_scene_paths",
    "select_bands",
    "write",
    "write_all",
]
