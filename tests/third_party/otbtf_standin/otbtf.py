"""A stand-in for the part of OTBTF's ``otbtf`` module that SR4RS's ``train.py`` uses.

OTBTF (https://github.com/remicres/otbtf) needs GDAL's Python bindings and the Orfeo
ToolBox. ``train.py`` only reads patch images: ``gdal_open``, ``read_as_np_arr`` (for the
preview) and ``DatasetFromPatchesImages`` (``output_types``, ``output_shapes``,
``get_tf_dataset``, ``get_total_wait_in_seconds``). This module implements just that over
rasterio, numpy and tf.data, with OTBTF's semantics: a patch image holds N patches of
ps x ps pixels stacked vertically (width ps, height N * ps, bands as raster bands); all
patches are read into memory; each pass over the dataset visits every patch once in a
shuffled order, as ``tf.data.Dataset.from_generator`` batches with the remainder dropped.
Written for xsr4rs's tests; not part of OTBTF.
"""

from __future__ import annotations

import numpy as np
import rasterio
import tensorflow as tf

_RNG = np.random.default_rng(0)


def gdal_open(filename):
    """Open a raster (a rasterio dataset stands in for GDAL's)."""
    return rasterio.open(filename)


def read_as_np_arr(ds, as_patches=True, dtype=None):
    """The raster as (n, ps, ps, bands) patches, or (1, height, width, bands)."""
    arr = ds.read().transpose(1, 2, 0)
    size_x = ds.width
    if as_patches:
        n, size_y = ds.height // size_x, size_x
    else:
        n, size_y = 1, ds.height
    arr = arr.reshape((n, size_y, size_x, ds.count))
    return arr if dtype is None else arr.astype(dtype)


class DatasetFromPatchesImages:
    """Patches of several sources (``{key: [patch image, ...]}``), sample by sample."""

    def __init__(self, filenames_dict, use_streaming=False, buffer_length=128):
        self.patches = {}
        for key, filenames in filenames_dict.items():
            arrays = []
            for filename in filenames:
                with gdal_open(filename) as ds:
                    arrays.append(read_as_np_arr(ds))
            self.patches[key] = np.concatenate(arrays, axis=0)
        sizes = {len(arr) for arr in self.patches.values()}
        if len(sizes) != 1:
            raise ValueError(f"sources must have the same number of patches: {sizes}")
        self.size = sizes.pop()
        self.output_types = {k: tf.dtypes.as_dtype(a.dtype) for k, a in self.patches.items()}
        self.output_shapes = {k: a.shape[1:] for k, a in self.patches.items()}

    def _generator(self):
        for index in _RNG.permutation(self.size):
            yield {key: arr[index] for key, arr in self.patches.items()}

    def get_tf_dataset(self, batch_size, drop_remainder=True):
        signature = {
            key: tf.TensorSpec(shape=self.output_shapes[key], dtype=self.output_types[key])
            for key in self.patches
        }
        dataset = tf.data.Dataset.from_generator(self._generator, output_signature=signature)
        return dataset.batch(batch_size, drop_remainder=drop_remainder)

    def get_total_wait_in_seconds(self):
        return 0.0
