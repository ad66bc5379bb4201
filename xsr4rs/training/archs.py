"""Generator architectures in an explicit registry, with their receptive fields.

Each builder returns a Keras 3 model mapping ``[batch, H, W, bands]`` (values already
scaled for the network) to a list of outputs at x1, x2 and x4 (the SR4RS multi-scale
outputs, MSG-GAN style); the last one is the product. ``receptive_radius`` gives, in input
pixels, how far one input pixel can influence the product: the halo an export needs.
Keras is imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Architecture:
    """A generator family: how to build it and how far it sees."""

    build: Callable[..., Any]
    receptive_radius: Callable[..., int]
    description: str
    #: the same network in a form that holds less memory at inference (same weights, in
    #: the same order, and the same outputs); None where ``build`` is that form already
    build_lean: Callable[..., Any] | None = None


def _layers():
    """Custom layers (defined lazily so that Keras loads only when a network is built)."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable("xsr4rs")
    class EqualizedConv2D(keras.layers.Layer):
        """Convolution with an equalised learning rate: N(0, 1) weights scaled by He's constant."""

        def __init__(
            self, filters: int, kernel_size: int, zero_init: bool = False, **kwargs: Any
        ) -> None:
            super().__init__(**kwargs)
            self.filters, self.kernel_size, self.zero_init = filters, kernel_size, zero_init

        def build(self, input_shape: Any) -> None:
            fan_in = self.kernel_size**2 * input_shape[-1]
            self.scale = math.sqrt(2.0 / fan_in)
            self.kernel = self.add_weight(
                shape=(self.kernel_size, self.kernel_size, input_shape[-1], self.filters),
                initializer="zeros"
                if self.zero_init
                else keras.initializers.RandomNormal(0.0, 1.0),
                name="kernel",
            )
            self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

        def call(self, x: Any) -> Any:
            return ops.conv(x, self.kernel * self.scale, padding="same") + self.bias

        def get_config(self) -> dict:
            return {
                **super().get_config(),
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "zero_init": self.zero_init,
            }

    @keras.saving.register_keras_serializable("xsr4rs")
    class PixelNorm(keras.layers.Layer):
        """Normalise each pixel's feature vector to unit mean square (Karras et al. 2018)."""

        def call(self, x: Any) -> Any:
            return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + 1e-8)

    @keras.saving.register_keras_serializable("xsr4rs")
    class DepthToSpace(keras.layers.Layer):
        """Sub-pixel upsampling: ``block**2`` feature maps become one map ``block`` times finer."""

        def __init__(self, block: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.block = block

        def call(self, x: Any) -> Any:
            return ops.depth_to_space(x, self.block)

        def get_config(self) -> dict:
            return {**super().get_config(), "block": self.block}

    @keras.saving.register_keras_serializable("xsr4rs")
    class StripedCorrections(keras.layers.Layer):
        """The light generator's three corrections (at x1, x2 and x4) from its features,
        with its two x2 stages computed over strips of rows, one strip after the other.

        Same weights, in the same order as the training form lists them, and the same
        sums: each stage is a 3x3 convolution to ``4 * features`` maps, a ReLU and a
        depth-to-space, and each correction a 1x1 convolution to ``bands``. Whole, the
        stages' maps are the largest tensors of the network (``4 * features`` values per
        pixel at x1, then at x2); in strips, no tensor of them holds more than
        ``budget`` values, whatever the tile, and a strip's rows overlap the next by one
        row at x1. The last 1x1 convolution runs before the last depth-to-space, its
        weights repeated for the four sub-pixel positions, so the features at x4 are never
        formed either; only the ``bands`` corrections are.

        An export's tensor sizes (``tensor_elements_per_pixel``, the tile caps of
        `xsr4rs.tiling`) see this layer's input and outputs only: its strips stay near
        ``budget`` values (at least 8 rows), far below TensorFlow's 2**31 limit and
        oneDNN's convolution limits without AVX-512, at any useful tile."""

        def __init__(self, bands: int, budget: int = 2**24, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.bands, self.budget = int(bands), int(budget)

        def build(self, input_shape: Any) -> None:
            features = input_shape[-1]
            self.features = features

            def conv(filters: int, kernel: int) -> Any:
                layer = EqualizedConv2D(filters, kernel)
                layer.build((None, None, None, features))
                return layer

            # the training form's convolutions, in its order: both stages (deepest first),
            # then the corrections
            self.stage2, self.stage4 = conv(4 * features, 3), conv(4 * features, 3)
            self.corr1, self.corr2, self.corr4 = (conv(self.bands, 1) for _ in range(3))

        def compute_output_shape(self, input_shape: Any) -> list[tuple]:
            n, h, w, _ = input_shape
            return [
                (n, None if h is None else s * h, None if w is None else s * w, self.bands)
                for s in (1, 2, 4)
            ]

        def call(self, x: Any) -> Any:
            import tensorflow as tf

            def weights(conv: Any) -> tuple[Any, Any]:
                return conv.kernel * conv.scale, conv.bias

            k2, b2 = weights(self.stage2)
            k4, b4 = weights(self.stage4)
            c1, d1 = weights(self.corr1)
            c2, d2 = weights(self.corr2)
            c4, d4 = weights(self.corr4)
            # the x4 correction before the depth-to-space: one 1x1 convolution per sub-pixel
            w = c4[0, 0]
            diagonal = tf.einsum("ij,fb->ifjb", tf.eye(4, dtype=w.dtype), w)
            c4 = tf.reshape(diagonal, (1, 1, 4 * self.features, 4 * self.bands))
            d4 = tf.tile(d4, [4])

            def same(t: Any, kernel: Any, bias: Any) -> Any:
                return tf.nn.conv2d(t, kernel, 1, "SAME") + bias

            def rows_valid(t: Any, kernel: Any, bias: Any, top: Any, bottom: Any) -> Any:
                """A 3x3 convolution of ``t`` padded with ``top`` and ``bottom`` rows of
                zeros and one column each side, keeping only the rows it computes whole."""
                t = tf.pad(t, [[0, 0], [top, bottom], [1, 1], [0, 0]])
                return tf.nn.relu(tf.nn.conv2d(t, kernel, 1, "VALID") + bias)

            shape = tf.shape(x)
            n, h, width = shape[0], shape[1], shape[2]
            widest = n * 16 * width * self.features  # a strip's x4 stage, per input row
            rows = tf.maximum(8, self.budget // tf.maximum(widest, 1))
            strips = (h + rows - 1) // rows

            def strip(i: Any, out2: Any, out4: Any) -> tuple[Any, Any, Any]:
                start = i * rows
                stop = tf.minimum(start + rows, h)
                # the x2 stage for input rows [a, b): the strip and one row each side
                a, b = tf.maximum(start - 1, 0), tf.minimum(stop + 1, h)
                lo, hi = tf.maximum(a - 1, 0), tf.minimum(b + 1, h)
                y = rows_valid(x[:, lo:hi], k2, b2, lo - (a - 1), (b + 1) - hi)
                y = tf.nn.depth_to_space(y, 2)  # rows [2a, 2b) at x2
                own = y[:, 2 * (start - a) : 2 * (stop - a)]
                corr2 = tf.nn.conv2d(own, c2, 1, "SAME") + d2
                # the x4 stage for x2 rows [2 start, 2 stop), from one row each side
                top, bottom = tf.maximum(2 * start - 1, 0), tf.minimum(2 * stop + 1, 2 * h)
                z = y[:, top - 2 * a : bottom - 2 * a]
                z = rows_valid(z, k4, b4, top - (2 * start - 1), (2 * stop + 1) - bottom)
                corr4 = tf.nn.conv2d(z, c4, 1, "SAME") + d4
                # rows first: a TensorArray concatenates along its first axis
                return (
                    i + 1,
                    out2.write(i, tf.transpose(corr2, [1, 0, 2, 3])),
                    out4.write(i, tf.transpose(corr4, [1, 0, 2, 3])),
                )

            arrays = [tf.TensorArray(x.dtype, size=strips, infer_shape=False) for _ in range(2)]
            _, out2, out4 = tf.while_loop(
                lambda i, *_: i < strips, strip, (0, *arrays), parallel_iterations=1
            )
            corr2 = tf.transpose(out2.concat(), [1, 0, 2, 3])
            corr4 = tf.nn.depth_to_space(tf.transpose(out4.concat(), [1, 0, 2, 3]), 2)
            return [same(x, c1, d1), corr2, corr4]

        def get_config(self) -> dict:
            return {**super().get_config(), "bands": self.bands, "budget": self.budget}

    return keras, EqualizedConv2D, PixelNorm, DepthToSpace, StripedCorrections


def _extra_layers():
    """Layers of the discriminator and of exported models (defined lazily, like `_layers`)."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable("xsr4rs")
    class MinibatchStddev(keras.layers.Layer):
        """Append the batch's mean feature standard deviation as one more channel
        (Karras et al. 2018): lets a discriminator see a lack of variety in a batch."""

        def call(self, x: Any) -> Any:
            std = ops.sqrt(ops.var(x, axis=0) + 1e-8)
            mean = ops.mean(std)
            return ops.concatenate([x, ops.ones_like(x[..., :1]) * mean], axis=-1)

    @keras.saving.register_keras_serializable("xsr4rs")
    class BandAffine(keras.layers.Layer):
        """``x * scale + offset`` per band, with constants (not weights): the scaling of
        values into and out of a network, carried inside exported models."""

        def __init__(self, scale: Any, offset: Any, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.scale_values = [float(v) for v in scale]
            self.offset_values = [float(v) for v in offset]

        def call(self, x: Any) -> Any:
            scale = ops.convert_to_tensor(self.scale_values, dtype=x.dtype)
            offset = ops.convert_to_tensor(self.offset_values, dtype=x.dtype)
            return x * scale + offset

        def get_config(self) -> dict:
            return {
                **super().get_config(),
                "scale": self.scale_values,
                "offset": self.offset_values,
            }

    @keras.saving.register_keras_serializable("xsr4rs")
    class RatioBound(keras.layers.Layer):
        """Keep each output pixel within ``[low, high]`` times the input pixel it lies in
        (repeated to the output's scale), where that input pixel is positive: ringing
        on bright roofs and clipped zeros over dark water cannot reach the product. The
        bound is pointwise, so it widens no receptive field."""

        def __init__(self, scale: int, low: float, high: float, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.scale, self.low, self.high = int(scale), float(low), float(high)

        def call(self, inputs: Any) -> Any:
            y, x = inputs
            # y as [n, h, scale, w, scale, bands] against x as [n, h, 1, w, 1, bands]: the
            # input is broadcast, never repeated to the output's size
            s, fine, coarse = self.scale, ops.shape(y), ops.shape(x)
            y = ops.reshape(y, (fine[0], coarse[1], s, coarse[2], s, fine[3]))
            x = ops.expand_dims(ops.expand_dims(x, 2), 4)
            bounded = ops.where(x > 0, ops.clip(y, self.low * x, self.high * x), y)
            return ops.reshape(bounded, fine)

        def get_config(self) -> dict:
            return {**super().get_config(), "scale": self.scale, "low": self.low, "high": self.high}

    return MinibatchStddev, BandAffine, RatioBound


def build_sr4rs(bands: int, *, filters: int = 64, blocks: int = 16) -> Any:
    """The SR4RS generator: 9x9 input convolution, residual blocks with pixel normalisation,
    two x2 upsampling stages (nearest, then 3x3 convolution), outputs at x1, x2 and x4."""
    keras, Conv, PixelNorm, _, _ = _layers()
    act = keras.layers.LeakyReLU(0.2)
    inp = keras.Input((None, None, bands), name="lr")
    x = head = act(Conv(filters, 9)(inp))
    for _ in range(blocks):
        y = act(PixelNorm()(Conv(filters, 3)(x)))
        y = PixelNorm()(Conv(filters, 3)(y))
        x = keras.layers.Add()([x, y])
    x = keras.layers.Add()([x, head])
    outputs = [Conv(bands, 1)(x)]
    for _ in range(2):
        x = keras.layers.UpSampling2D(2, interpolation="nearest")(x)
        x = act(PixelNorm()(Conv(filters, 3)(x)))
        outputs.append(Conv(bands, 1)(x))
    return keras.Model(inp, outputs, name=f"sr4rs_{filters}x{blocks}")


def sr4rs_radius(*, filters: int = 64, blocks: int = 16) -> int:
    """9x9 (4) + 2 per block + a 3x3 at x2 (1/2) + a 3x3 at x4 (1/4), rounded up."""
    return math.ceil(4 + 2 * blocks + 1 / 2 + 1 / 4)


def build_light(bands: int, *, filters: int = 32, blocks: int = 6) -> Any:
    """A lighter generator for CPU training and fast inference: 3x3 convolutions, residual
    blocks scaled by 0.1 (EDSR), sub-pixel (depth-to-space) x2 stages, outputs at x1, x2,
    x4. Each output adds a correction to the input repeated to its scale (nearest
    neighbour, which widens no receptive field), and the corrections start at zero: an
    untrained network is the nearest-neighbour upscaling, training learns the detail."""
    return _light(bands, filters, blocks, attention=False)


def build_light_lean(bands: int, *, filters: int = 32, blocks: int = 6) -> Any:
    """`build_light` in its inference form (see `for_inference`)."""
    return _light(bands, filters, blocks, attention=False, lean=True)


def build_lca_lean(bands: int, *, filters: int = 32, blocks: int = 6) -> Any:
    """`build_lca` in its inference form (see `for_inference`)."""
    return _light(bands, filters, blocks, attention=True, lean=True)


def for_inference(generator: Any, arch: str, **kwargs: int) -> Any:
    """``generator`` (built by ``ARCHITECTURES[arch]`` with ``kwargs``) in the form an
    export should carry: the light generators compute their two x2 stages over strips of
    rows and their last 1x1 convolution before the last depth-to-space
    (`StripedCorrections`), so that their largest tensors (``4 * filters`` values per
    pixel at x1 and at x2, ``filters`` per pixel at x4) are never formed whole; one call
    of the shipped model then holds a fifth (fp32) to a third (bf16) of the memory of the
    network as trained (benchmarks/model_memory.py). Same weights, in the same order,
    same outputs; other architectures are returned as they are."""
    lean = ARCHITECTURES[arch].build_lean
    if lean is None:
        return generator
    model = lean(generator.input.shape[-1], **kwargs)
    model.set_weights(generator.get_weights())
    return model


def build_lca(bands: int, *, filters: int = 32, blocks: int = 6) -> Any:
    """The light generator with local channel attention in every residual block (RCAN's
    idea made tile-safe): each block's features are reweighted per channel by a gate
    computed from their 3x3 neighbourhood average, not from the whole image, so the
    receptive field stays finite (one more input pixel per block) and tiles equal
    whole-image inference."""
    return _light(bands, filters, blocks, attention=True)


def _light(bands: int, filters: int, blocks: int, *, attention: bool, lean: bool = False) -> Any:
    """``lean``: the inference form, whose corrections come from `StripedCorrections`;
    same weights, in the same order, and same outputs."""
    keras, Conv, _, DepthToSpace, StripedCorrections = _layers()

    act = keras.layers.ReLU()
    inp = keras.Input((None, None, bands), name="lr")
    x = head = act(Conv(filters, 3)(inp))
    for _ in range(blocks):
        y = Conv(filters, 3)(act(Conv(filters, 3)(x)))
        if attention:
            local = keras.layers.AveragePooling2D(3, strides=1, padding="same")(y)
            squeeze = Conv(max(filters // 4, 4), 1)(local)
            gate = keras.layers.Activation("sigmoid")(Conv(filters, 1)(act(squeeze)))
            y = keras.layers.Multiply()([y, gate])
        x = keras.layers.Add()([x, keras.layers.Rescaling(0.1)(y)])
    x = keras.layers.Add()([x, head])

    def product(features: Any, factor: int, correction: Any = None) -> Any:
        base = inp if factor == 1 else keras.layers.UpSampling2D(factor)(inp)
        if correction is None:
            correction = Conv(bands, 1, zero_init=True)(features)
        return keras.layers.Add()([base, correction])

    if lean:
        corrections = StripedCorrections(bands)(x)
        outputs = [product(None, s, c) for s, c in zip((1, 2, 4), corrections, strict=True)]
    else:
        outputs = [product(x, 1)]
        for level in (2, 4):
            x = DepthToSpace(2)(act(Conv(filters * 4, 3)(x)))
            outputs.append(product(x, level))
    name = "lca" if attention else "light"
    return keras.Model(inp, outputs, name=f"{name}_{filters}x{blocks}")


def lca_radius(*, filters: int = 32, blocks: int = 6) -> int:
    """The light generator's radius plus one per block (the 3x3 average of the gate)."""
    return light_radius(filters=filters, blocks=blocks) + blocks


def light_radius(*, filters: int = 32, blocks: int = 6) -> int:
    """3x3 (1) + 2 per block + a 3x3 at x1 (1) + a 3x3 at x2 (1/2), rounded up."""
    return math.ceil(1 + 2 * blocks + 1 + 1 / 2)


def build_discriminator(bands: int, *, filters: int = 32, levels: int = 3) -> Any:
    """The multi-scale (MSG-GAN) discriminator matching the generators' x1, x2, x4 outputs.

    Takes ``[x4, x2, x1]`` images (finest first); each coarser image is concatenated to the
    features once they reach its resolution. Ends with minibatch standard deviation, a 3x3
    convolution, global averaging and one linear score per image.
    """
    keras, Conv, _, _, _ = _layers()
    MinibatchStddev, _, _ = _extra_layers()
    act = keras.layers.LeakyReLU(0.2)
    inputs = [
        keras.Input((None, None, bands), name=f"x{2 ** (levels - 1 - i)}") for i in range(levels)
    ]
    x = act(Conv(filters, 1)(inputs[0]))
    for i in range(levels):
        width = filters * 2 ** min(i, 3)
        if i:
            x = keras.layers.Concatenate()([x, inputs[i]])
        x = act(Conv(width, 3)(x))
        x = act(Conv(width, 3)(x))
        x = keras.layers.AveragePooling2D(2)(x)
    x = MinibatchStddev()(x)
    x = act(Conv(filters * 4, 3)(x))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x), name=f"discriminator_{filters}")


def wrap_for_export(
    generator: Any,
    offset: Any,
    scale: Any,
    *,
    bound: tuple[float, float] | None = None,
    factor: int = 4,
) -> Any:
    """A model taking values in the data's units to the product (last output) in the same
    units: ``(x - offset) / scale`` in, ``y * scale + offset`` out, then, with ``bound``
    ``(low, high)``, each output pixel kept within ``low..high`` times its input pixel
    (`RatioBound`; ``factor`` is the upscaling factor)."""
    import keras

    _, BandAffine, RatioBound = _extra_layers()
    bands = generator.input.shape[-1]
    inp = keras.Input((None, None, bands), name="image")
    x = BandAffine([1 / s for s in scale], [-o / s for o, s in zip(offset, scale, strict=True)])(
        inp
    )
    y = generator(x)
    y = y[-1] if isinstance(y, list | tuple) else y
    out = BandAffine(list(scale), list(offset))(y)
    if bound is not None:
        out = RatioBound(factor, *bound)([out, inp])
    return keras.Model(inp, out, name=generator.name)


ARCHITECTURES: dict[str, Architecture] = {
    "sr4rs": Architecture(build_sr4rs, sr4rs_radius, "SR4RS generator (64 filters, 16 blocks)"),
    "light": Architecture(
        build_light, light_radius, "light generator (32 filters, 6 blocks)", build_light_lean
    ),
    "lca": Architecture(
        build_lca,
        lca_radius,
        "light generator with local channel attention (32 x 6)",
        build_lca_lean,
    ),
}
