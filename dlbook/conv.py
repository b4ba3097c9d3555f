"""Convolution by hand, in NumPy, and a small Keras CNN for the digits.

The pieces of a convolutional layer, written so that each line can be read against the formula:
the output-size formula and the padding Keras adds for ``"same"`` (:func:`conv_output_size`,
:func:`same_padding`), multi-channel 2-D cross-correlation with stride and padding
(:func:`conv2d`), max and average pooling (:func:`pool2d`), and how far back into the input one
output unit of a stack of layers can see (:func:`receptive_field`). Each agrees with the Keras
layer it explains (``tests/test_conv.py``). :func:`build_digit_cnn` builds the small CNN that
chapter 7 trains. Images are channels-last, ``(height, width, channels)``, as in Keras.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from dlbook.checks import check_int as _check_int

PADDINGS = ("valid", "same")


def _check_padding(padding) -> str:
    if padding not in PADDINGS:
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return padding


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: str = "valid") -> int:
    """Length of one spatial axis after a convolution or pooling window slides along it.

    ``"valid"`` keeps only windows that lie wholly inside the input:
    ``floor((size - kernel_size) / stride) + 1``. ``"same"`` gives ``ceil(size / stride)``
    outputs, one per ``stride`` input positions (with stride 1, as many as inputs), and pads with
    just enough zeros for the last window to fit (:func:`same_padding`); window ``i`` then starts
    at input position ``i * stride - before``. Taught in chapter 7.
    """
    size = _check_int("size", size)
    kernel_size = _check_int("kernel_size", kernel_size)
    stride = _check_int("stride", stride)
    if _check_padding(padding) == "same":
        return -(-size // stride)
    if kernel_size > size:
        raise ValueError(f"kernel_size {kernel_size} is larger than the input size {size}: "
                         "with 'valid' padding no window fits")
    return (size - kernel_size) // stride + 1


def same_padding(size: int, kernel_size: int, stride: int = 1) -> tuple[int, int]:
    """Zeros added ``(before, after)`` one axis for ``"same"`` padding, as Keras/TensorFlow do.

    The total is whatever the last window needs to fit; when it is odd, the extra zero goes
    *after* the input (bottom or right). Taught in chapter 7.
    """
    out = conv_output_size(size, kernel_size, stride, "same")
    total = max((out - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


def _as_image(image, argument: str = "image") -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3:
        raise ValueError(f"{argument} must be (height, width, channels), got shape {image.shape}")
    return image


def _pad(image: np.ndarray, kernel_hw: tuple[int, int], stride: int, padding: str,
         fill: float) -> np.ndarray:
    if padding == "valid":
        return image
    rows = same_padding(image.shape[0], kernel_hw[0], stride)
    cols = same_padding(image.shape[1], kernel_hw[1], stride)
    return np.pad(image, (rows, cols, (0, 0)), constant_values=fill)


def _window_views(padded: np.ndarray, kernel_hw: tuple[int, int], stride: int,
                  out_hw: tuple[int, int]):
    """For each kernel offset (i, j): the input values it meets at every output position."""
    (kh, kw), (oh, ow) = kernel_hw, out_hw
    for i in range(kh):
        for j in range(kw):
            yield i, j, padded[i: i + stride * (oh - 1) + 1: stride,
                               j: j + stride * (ow - 1) + 1: stride]


def conv2d(image, kernel, stride: int = 1, padding: str = "valid", bias=None) -> np.ndarray:
    """2-D cross-correlation of a multi-channel image, what ``keras.layers.Conv2D`` computes.

    ``image`` is ``(H, W, C_in)`` and ``kernel`` ``(k_h, k_w, C_in, C_out)`` (Keras's layout);
    ``bias``, if given, has ``C_out`` entries. Output unit ``(r, c, f)`` is

        sum over i, j, ch of  padded[r * stride + i, c * stride + j, ch] * kernel[i, j, ch, f]

    plus ``bias[f]``. Rather than looping over the output positions, the loop runs over the
    ``k_h * k_w`` kernel offsets: at each, a strided slice of the input holds the value that
    offset meets at *every* output position, and one matrix product over channels adds its
    contribution. Returns float64 ``(H_out, W_out, C_out)``. Taught in chapter 7.
    """
    image = _as_image(image)
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 4:
        raise ValueError(f"kernel must be (k_h, k_w, in_channels, out_channels), "
                         f"got shape {kernel.shape}")
    if kernel.shape[2] != image.shape[2]:
        raise ValueError(f"kernel expects {kernel.shape[2]} input channels but the image has "
                         f"{image.shape[2]}")
    stride = _check_int("stride", stride)
    padding = _check_padding(padding)
    kh, kw, _, filters = kernel.shape
    out_hw = (conv_output_size(image.shape[0], kh, stride, padding),
              conv_output_size(image.shape[1], kw, stride, padding))
    padded = _pad(image, (kh, kw), stride, padding, fill=0.0)
    out = np.zeros((*out_hw, filters))
    for i, j, patch in _window_views(padded, (kh, kw), stride, out_hw):
        out += patch @ kernel[i, j]
    if bias is not None:
        bias = np.asarray(bias, dtype=np.float64)
        if bias.shape != (filters,):
            raise ValueError(f"bias must have shape ({filters},), one per filter, "
                             f"got {bias.shape}")
        out += bias
    return out


def pool2d(image, pool_size: int = 2, stride: int | None = None, padding: str = "valid",
           mode: str = "max") -> np.ndarray:
    """Max or average pooling of each channel separately, as Keras's pooling layers compute it.

    Windows are ``pool_size x pool_size``, ``stride`` apart (default: ``pool_size``, so windows
    tile the input without overlap). With ``"same"`` padding, padded positions are ignored: they
    never win a max and do not count in an average. Taught in chapter 7.
    """
    image = _as_image(image)
    pool_size = _check_int("pool_size", pool_size)
    stride = pool_size if stride is None else _check_int("stride", stride)
    padding = _check_padding(padding)
    if mode not in ("max", "average"):
        raise ValueError(f"mode must be 'max' or 'average', got {mode!r}")
    out_hw = (conv_output_size(image.shape[0], pool_size, stride, padding),
              conv_output_size(image.shape[1], pool_size, stride, padding))
    padded = _pad(image, (pool_size, pool_size), stride, padding, fill=np.nan)
    windows = np.stack([patch for *_, patch in
                        _window_views(padded, (pool_size, pool_size), stride, out_hw)])
    return np.nanmax(windows, axis=0) if mode == "max" else np.nanmean(windows, axis=0)


def receptive_field(layers: Sequence[tuple[int, int]]) -> list[int]:
    """Receptive field (in input pixels, per axis) after each layer of a stack.

    ``layers`` lists ``(kernel_size, stride)`` for each convolution or pooling layer, input
    first. With ``jump`` the distance in input pixels between neighbouring units of the current
    layer (the product of the strides so far), a layer with kernel ``k`` and stride ``s`` makes

        field = field + (k - 1) * jump,    then    jump = jump * s,

    starting from ``field = jump = 1`` (one input pixel sees itself). Taught in chapter 7.
    """
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or not layers:
        raise ValueError(f"layers must be a non-empty sequence of (kernel_size, stride) pairs, "
                         f"got {layers!r}")
    field, jump, fields = 1, 1, []
    for index, layer in enumerate(layers):
        if not isinstance(layer, Sequence) or len(layer) != 2:
            raise ValueError(f"layers[{index}] must be a (kernel_size, stride) pair, got {layer!r}")
        kernel_size = _check_int(f"layers[{index}] kernel_size", layer[0])
        stride = _check_int(f"layers[{index}] stride", layer[1])
        field += (kernel_size - 1) * jump
        jump *= stride
        fields.append(field)
    return fields


def build_digit_cnn(
    input_shape: Sequence[int] = (8, 8, 1),
    filters: Sequence[int] = (16, 32),
    num_classes: int = 10,
    kernel_size: int = 3,
    pooling: str = "max",
    head: str = "flatten",
    shift_augment: int = 0,
    seed: int | None = None,
    name: str = "digit_cnn",
) -> keras.Model:
    """A small CNN classifier: convolution blocks, then a head, then a softmax.

    Block ``i`` (counting from 1) is ``conv_i`` (``kernel_size`` square, ``"same"`` padding,
    ReLU), followed, in every block but the last, by ``pool_i`` (2x2, stride 2, max or average
    by ``pooling``). ``same`` padding keeps 8x8 digits from shrinking away. The ``head`` turns
    the last feature maps into one vector: ``"flatten"`` keeps every position (a dense layer
    then learns a weight per position), ``"global_max"`` or ``"global_average"`` keep one
    number per filter, wherever in the image it was found. ``output`` is a Dense softmax over
    ``num_classes``.

    With ``shift_augment`` > 0, a ``random_shift`` layer comes first: it moves each *training*
    image by a random whole number of pixels, at most ``shift_augment`` along each axis, filling
    with zeros. ``fit`` runs it and ``predict``/``evaluate`` skip it, but a direct call
    ``model(x)`` (or a sub-model cut from it) runs it too, because Keras's random layers default
    to ``training=True``: call ``model(x, training=False)`` to see the unshifted image's maps.

    ``seed`` seeds the initial weights (layer ``i`` gets ``seed + i``) and the random shifts; with
    ``None`` they come from Keras's global generator (which ``repro.setup`` seeds). Taught in
    chapter 7.
    """
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence) \
            or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    input_shape = tuple(_check_int(f"input_shape[{i}]", size) for i, size in
                        enumerate(input_shape))
    if isinstance(filters, (str, bytes)) or not isinstance(filters, Sequence) or not filters:
        raise ValueError(f"filters must be a non-empty sequence of ints (e.g. (16, 32)), "
                         f"got {filters!r}")
    filters = [_check_int(f"filters[{i}]", count) for i, count in enumerate(filters)]
    num_classes = _check_int("num_classes", num_classes, minimum=2)
    kernel_size = _check_int("kernel_size", kernel_size)
    if pooling not in ("max", "average"):
        raise ValueError(f"pooling must be 'max' or 'average', got {pooling!r}")
    heads = {"flatten": keras.layers.Flatten, "global_max": keras.layers.GlobalMaxPooling2D,
             "global_average": keras.layers.GlobalAveragePooling2D}
    if head not in heads:
        raise ValueError(f"head must be one of {sorted(heads)}, got {head!r}")
    smallest = min(input_shape[:2])
    if smallest < 2 ** (len(filters) - 1):
        raise ValueError(f"{len(filters) - 1} poolings halve the {input_shape[0]}x"
                         f"{input_shape[1]} input below one pixel: use fewer filters entries")
    shift_augment = _check_int("shift_augment", shift_augment, minimum=0)
    if shift_augment >= smallest:
        raise ValueError(f"shift_augment must be smaller than the image ({smallest} pixels), "
                         f"got {shift_augment}")
    if seed is not None:
        seed = _check_int("seed", seed, minimum=0)
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string, got {name!r}")

    def initialiser(offset: int):
        return "glorot_uniform" if seed is None else keras.initializers.GlorotUniform(seed + offset)

    pool = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    if shift_augment:
        x = keras.layers.RandomTranslation(
            shift_augment / input_shape[0], shift_augment / input_shape[1], fill_mode="constant",
            interpolation="nearest", seed=seed, name="random_shift")(x)
    for block, count in enumerate(filters, start=1):
        x = keras.layers.Conv2D(count, kernel_size, padding="same", activation="relu",
                                kernel_initializer=initialiser(block), name=f"conv_{block}")(x)
        if block < len(filters):
            x = pool(pool_size=2, name=f"pool_{block}")(x)
    x = heads[head](name=head)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax",
                                 kernel_initializer=initialiser(0), name="output")(x)
    return keras.Model(inputs, outputs, name=name)
