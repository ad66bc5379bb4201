"""The project's one degradation: how a high-resolution image becomes its low-resolution twin.

Used by Wald-protocol training (LR patches made from HR ones) and by evaluation
(consistency and alignment of an output with its input), so both measure the same thing.
"""

from __future__ import annotations

import numpy as np


def degrade(values: np.ndarray, scale: int, *, sigma: float | None = None) -> np.ndarray:
    """Blur by a Gaussian of ``sigma = scale / 2`` HR pixels, then average ``scale x scale`` blocks.

    ``values`` is (..., y, x) with y and x multiples of ``scale``; the result is float64
    (..., y / scale, x / scale). The blur mirrors the image at its borders (numpy's
    ``symmetric`` padding, as the upscaling engine does), and the block average puts each
    LR pixel exactly over the HR pixels it covers: degrading does not shift the image.
    """
    from scipy import ndimage

    values = np.asarray(values, dtype=np.float64)
    *lead, h, w = values.shape
    if scale < 1 or h % scale or w % scale:
        raise ValueError(f"image of {h}x{w} pixels cannot be degraded by {scale}: not a multiple")
    sigma = scale / 2 if sigma is None else sigma
    blurred = ndimage.gaussian_filter(
        values, sigma=[0] * len(lead) + [sigma, sigma], mode="reflect", truncate=4.0
    )
    return blurred.reshape(*lead, h // scale, scale, w // scale, scale).mean(axis=(-3, -1))
