"""Training losses in TensorFlow: masked pixel losses over the MSG scales, SAM, consistency,
VGG features and the GAN losses. Every function takes NHWC tensors.

Masks are ``(n, h, w, 1)`` tensors of 1 (valid) and 0 (no-data); masked pixels weigh
nothing. Values are the network's scaled values, except for SAM (angles need the data's
own units) which receives the scaling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

GAN_TYPES = ("wgan-gp", "lsgan")
#: Keras VGG19 layers offered for the perceptual loss.
VGG_LAYERS = (
    "block1_conv2",
    "block2_conv2",
    "block3_conv4",
    "block4_conv4",
    "block5_conv4",
)


def _tf() -> Any:
    from xsr4rs._tf import import_tf

    return import_tf()


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """The 1-D kernel of ``scipy.ndimage.gaussian_filter`` for ``sigma`` and ``truncate``."""
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def tf_degrade(x: Any, scale: int) -> Any:
    """`xsr4rs.degrade.degrade` in TensorFlow on NHWC tensors (same kernel, same mirror).

    Gaussian of sigma ``scale / 2`` (scipy's ``reflect`` = TensorFlow's ``SYMMETRIC``
    padding), then the mean of each ``scale x scale`` block.
    """
    tf = _tf()
    k = gaussian_kernel(scale / 2).astype(np.float32)
    r = len(k) // 2
    bands = x.shape[-1]
    x = tf.pad(x, [[0, 0], [r, r], [r, r], [0, 0]], mode="SYMMETRIC")
    ky = tf.constant(np.tile(k[:, None, None, None], (1, 1, bands, 1)))
    kx = tf.constant(np.tile(k[None, :, None, None], (1, 1, bands, 1)))
    x = tf.nn.depthwise_conv2d(x, ky, [1, 1, 1, 1], "VALID")
    x = tf.nn.depthwise_conv2d(x, kx, [1, 1, 1, 1], "VALID")
    return tf.nn.avg_pool2d(x, scale, scale, "VALID")


def pyramid(x: Any, levels: int = 3) -> list[Any]:
    """``[x, x/2, x/4...]`` by block averaging, finest first (the MSG targets)."""
    tf = _tf()
    out = [x]
    for _ in range(levels - 1):
        out.append(tf.nn.avg_pool2d(out[-1], 2, 2, "VALID"))
    return out


def mask_pyramid(mask: Any, levels: int = 3) -> list[Any]:
    """Masks of the pyramid levels: a coarse pixel is valid when all its fine pixels are."""
    tf = _tf()
    return [tf.cast(m > 0.999, m.dtype) for m in pyramid(mask, levels)]


def masked_mean(values: Any, mask: Any) -> Any:
    """Mean of ``values`` (n, h, w, c) over pixels where ``mask`` (n, h, w, 1) is 1."""
    tf = _tf()
    w = tf.broadcast_to(mask, tf.shape(values))
    return tf.reduce_sum(values * w) / tf.maximum(tf.reduce_sum(w), 1.0)


def pixel_losses(outputs: Sequence[Any], hr: Any, mask: Any) -> tuple[Any, Any]:
    """(L1, L2) averaged over the multi-scale outputs (coarsest first, as the generators
    return them), each against the HR averaged down to its scale."""
    tf = _tf()
    levels = len(outputs)
    targets = pyramid(hr, levels)[::-1]
    masks = mask_pyramid(mask, levels)[::-1]
    l1 = tf.add_n(
        [masked_mean(tf.abs(o - t), m) for o, t, m in zip(outputs, targets, masks, strict=True)]
    )
    l2 = tf.add_n(
        [masked_mean(tf.square(o - t), m) for o, t, m in zip(outputs, targets, masks, strict=True)]
    )
    return l1 / levels, l2 / levels


def sam_loss(out: Any, hr: Any, mask: Any, offset: Any, scale: Any) -> Any:
    """Mean spectral angle (radians) between output and HR pixel vectors in the data's units."""
    tf = _tf()
    a = out * scale + offset
    b = hr * scale + offset
    dot = tf.reduce_sum(a * b, axis=-1, keepdims=True)
    norm = tf.norm(a, axis=-1, keepdims=True) * tf.norm(b, axis=-1, keepdims=True)
    cos = tf.clip_by_value(dot / tf.maximum(norm, 1e-6), -1.0 + 1e-6, 1.0 - 1e-6)
    return masked_mean(tf.acos(cos), mask)


def consistency_loss(out: Any, lr: Any, mask: Any, scale: int, border: int = 2) -> Any:
    """L1 between the output degraded like Wald's protocol and the LR input, on LR pixels
    whose HR pixels are all valid, ``border`` LR pixels from the patch edge excluded (the
    degradation there would need pixels outside the patch)."""
    tf = _tf()
    down = tf_degrade(out, scale)
    lr_mask = tf.cast(tf.nn.avg_pool2d(mask, scale, scale, "VALID") > 0.999, mask.dtype)
    lr_mask = lr_mask[:, border:-border, border:-border] if border else lr_mask
    diff = tf.abs(down - lr)
    diff = diff[:, border:-border, border:-border] if border else diff
    return masked_mean(diff, lr_mask)


class VGGFeatures:
    """Perceptual loss on bands 1-3 with Keras VGG19 weights read from a local file.

    The file is Keras' ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` (what
    ``keras.applications.VGG19(include_top=False, weights="imagenet")`` downloads); it is
    never downloaded here. Scaled values are mapped to 0..255 and through VGG's
    ``preprocess_input`` (RGB to BGR, ImageNet means).
    """

    def __init__(self, weights: str | None, layers: Sequence[str]) -> None:
        import keras

        unknown = [name for name in layers if name not in VGG_LAYERS]
        if unknown:
            raise ValueError(f"unknown VGG layers {unknown}: choose among {list(VGG_LAYERS)}")
        vgg = keras.applications.VGG19(
            include_top=False, weights=weights, input_shape=(None, None, 3)
        )
        vgg.trainable = False
        self.model = keras.Model(vgg.input, [vgg.get_layer(n).output for n in layers])

    def __call__(self, out: Any, hr: Any, mask: Any) -> Any:
        import keras

        tf = _tf()
        out = out * mask + hr * (1 - mask)  # no-data pixels: no difference

        def features(x: Any) -> list[Any]:
            rgb = tf.clip_by_value(x[..., :3], 0.0, 1.0) * 255.0
            f = self.model(keras.applications.vgg19.preprocess_input(rgb), training=False)
            return f if isinstance(f, list) else [f]

        fo, fh = features(out), features(hr)
        return tf.add_n(
            [tf.reduce_mean(tf.square(a - b)) for a, b in zip(fo, fh, strict=True)]
        ) / len(fo)


def gan_losses(real: Any, fake: Any, kind: str, relativistic: bool) -> tuple[Any, Any]:
    """(discriminator loss, generator adversarial loss) from the scores of real and fake."""
    tf = _tf()
    mean = tf.reduce_mean
    if kind == "wgan-gp":
        return mean(fake) - mean(real), -mean(fake)
    if relativistic:  # relativistic average LSGAN (Jolicoeur-Martineau 2018)
        r, f = real - mean(fake), fake - mean(real)
        d = mean(tf.square(r - 1)) + mean(tf.square(f + 1))
        g = mean(tf.square(f - 1)) + mean(tf.square(r + 1))
        return d / 2, g / 2
    return (mean(tf.square(real - 1)) + mean(tf.square(fake))) / 2, mean(tf.square(fake - 1))


def gradient_penalty(disc: Any, real: Sequence[Any], fake: Sequence[Any], seed: Any) -> Any:
    """WGAN-GP: (|grad D| - 1)^2 at random interpolates of real and fake (all scales).

    The interpolation weights are drawn from the stateless generator with ``seed`` (two
    integers, e.g. step and replica), so that a resumed run draws what it would have drawn.
    """
    tf = _tf()
    n = tf.shape(real[0])[0]
    eps = tf.random.stateless_uniform([n, 1, 1, 1], seed=seed)
    mixed = [eps * r + (1 - eps) * f for r, f in zip(real, fake, strict=True)]
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        score = disc(mixed, training=True)
    grads = tape.gradient(score, mixed)
    sq = tf.add_n([tf.reduce_sum(tf.square(g), axis=[1, 2, 3]) for g in grads])
    return tf.reduce_mean(tf.square(tf.sqrt(sq + 1e-12) - 1.0))
