"""Re-export the packaged default model s2-rgbn-x4 with today's export code.

    python scripts/reexport_default_model.py

The weights and the metadata stay as they are; only the graph changes, to the one
`xsr4rs.training.archs` builds now (the inference form of `for_inference`, the bound
without repeated inputs), and with it the metadata's sizes of the tensors it forms.
Before the packaged model is replaced, both are run on the sample scene and must agree
to float32 rounding; the largest difference is printed.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

import xsr4rs
from xsr4rs.io import open_raster, sample_scene_paths
from xsr4rs.model.contract import METADATA_PATH

HERE = Path(__file__).resolve().parent
PACKAGED = HERE.parent / "xsr4rs" / "models" / "s2-rgbn-x4"
#: largest difference allowed between the two graphs, in the data's units (0..10000)
TOLERANCE = 0.05


def rebuild(meta: dict, weights: list) -> object:
    from xsr4rs.training.archs import ARCHITECTURES, for_inference, wrap_for_export

    train, scaling = meta["provenance"]["training"], meta["provenance"]["scaling"]
    kwargs = {"filters": train["filters"], "blocks": train["blocks"]}
    generator = ARCHITECTURES[train["arch"]].build(len(meta["input_bands"]), **kwargs)
    shapes = [tuple(w.shape) for w in generator.weights]
    if shapes != [tuple(w.shape) for w in weights]:
        raise SystemExit(f"{PACKAGED} does not hold a {train['arch']} generator of {kwargs}")
    generator.set_weights(weights)
    return wrap_for_export(
        for_inference(generator, train["arch"], **kwargs),
        scaling["offset"],
        scaling["factor"],
        bound=tuple(meta["bound"]),
        factor=meta["scale"],
    )


def main() -> None:
    from xsr4rs._tf import import_tf

    tf = import_tf()
    meta_file = PACKAGED / METADATA_PATH
    meta = json.loads(meta_file.read_text())
    weights = [v.numpy() for v in tf.saved_model.load(str(PACKAGED)).variables]
    product = rebuild(meta, weights)
    with tempfile.TemporaryDirectory(dir=PACKAGED.parent) as tmp:
        new = Path(tmp) / "model"
        xsr4rs.export_model(
            product,
            new,
            scale=meta["scale"],
            bands=meta["input_bands"],
            halo=meta["halo"],
            units=meta["units"],
            scale_factor=meta["scale_factor"],
            add_offset=meta["add_offset"],
            nodata=meta["nodata"],
            bound=tuple(meta["bound"]),
            value_range=tuple(meta["value_range"]),
            fill_values=meta["fill_values"],
            name=meta["name"],
            description=meta["description"],
            provenance=meta["provenance"],
        )
        # the metadata stays as it was, but for what describes the graph: the sizes of
        # the tensors it forms, which the new graph may have changed
        fresh = json.loads((new / METADATA_PATH).read_text())
        for key in ("conv_input_elements_per_pixel", "tensor_elements_per_pixel"):
            if fresh[key] != meta[key]:
                print(f"{key}: {meta[key]} -> {fresh[key]}")
                meta[key] = fresh[key]
        (new / METADATA_PATH).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        worst = largest_difference(PACKAGED, new)
        print(f"largest difference on the sample scene: {worst:.4g} (tolerance {TOLERANCE})")
        if not worst <= TOLERANCE:
            raise SystemExit("the re-exported model does not compute what the packaged one does")
        old = Path(tmp) / "old"
        PACKAGED.rename(old)
        new.rename(PACKAGED)
    print(f"re-exported {PACKAGED}")


def largest_difference(a: Path, b: Path) -> float:
    """Largest difference of the two models' network outputs (no projection) on a
    1024 x 1024 crop of the sample scene, in one call each."""
    scene = open_raster(sample_scene_paths())
    x = scene.isel(x=slice(0, 1024), y=slice(0, 1024)).values.astype(np.float32)
    x = np.moveaxis(x, 0, -1)[None]
    outputs = [xsr4rs.load_model(str(p)).core(x, 0) for p in (a, b)]
    return float(np.abs(outputs[0] - outputs[1]).max())


if __name__ == "__main__":
    main()
