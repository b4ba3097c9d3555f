"""Unit tests of dlbook.conv: convolution, pooling and receptive fields by hand (chapter 7).

References: Keras's own layers (Conv2D, MaxPooling2D, AveragePooling2D) in float64 with the same
weights, Keras output shapes, small examples worked by hand, and tf.GradientTape for the extent
of a receptive field.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dlbook.conv import (
    build_digit_cnn,
    conv2d,
    conv_output_size,
    pool2d,
    receptive_field,
    same_padding,
)

# (height, width, in_channels, out_channels, kernel (h, w), stride, padding)
CONV_CASES = [
    (7, 9, 1, 1, (3, 3), 1, "valid"),
    (7, 9, 3, 4, (3, 3), 1, "same"),
    (8, 8, 1, 2, (3, 3), 2, "same"),
    (8, 8, 2, 3, (3, 3), 2, "valid"),
    (10, 11, 2, 3, (5, 5), 3, "same"),
    (10, 11, 3, 2, (4, 4), 2, "valid"),
    (6, 6, 2, 3, (4, 4), 1, "same"),
    (9, 12, 3, 5, (3, 5), 2, "same"),
]


def keras_conv(x, kernel, bias, stride, padding):
    layer = keras.layers.Conv2D(kernel.shape[-1], kernel.shape[:2], strides=stride,
                                padding=padding, use_bias=bias is not None, dtype="float64")
    layer.build((1, *x.shape))
    layer.set_weights([kernel] if bias is None else [kernel, bias])
    return np.asarray(layer(x[None]))[0]


@pytest.mark.parametrize("h, w, c_in, c_out, k, stride, padding", CONV_CASES)
def test_conv2d_matches_keras_conv2d(h, w, c_in, c_out, k, stride, padding):
    rng = np.random.default_rng(h * w + c_out)
    x = rng.normal(size=(h, w, c_in))
    kernel = rng.normal(size=(*k, c_in, c_out))
    bias = rng.normal(size=c_out)
    ours = conv2d(x, kernel, stride, padding, bias)
    reference = keras_conv(x, kernel, bias, stride, padding)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv2d(x, kernel, stride, padding),
                               keras_conv(x, kernel, None, stride, padding), atol=1e-12)


def test_conv2d_is_cross_correlation_not_flipped_convolution():
    image = np.arange(9.0).reshape(3, 3, 1)
    kernel = np.array([[1.0, 2.0], [0.0, -1.0]]).reshape(2, 2, 1, 1)
    # Top-left output: 1*0 + 2*1 + 0*3 - 1*4 = -2, and so on, without flipping the kernel
    # (a flipped kernel, true convolution, would give -1*0 + 0*1 + 2*3 + 1*4 = 10 there).
    expected = np.array([[-2.0, 0.0], [4.0, 6.0]])
    np.testing.assert_array_equal(conv2d(image, kernel)[..., 0], expected)


def test_conv2d_same_stride_1_keeps_size_and_pads_with_zeros():
    image = np.ones((4, 5, 1))
    box = np.ones((3, 3, 1, 1))
    out = conv2d(image, box, padding="same")[..., 0]
    assert out.shape == (4, 5)
    assert out[0, 0] == 4 and out[0, 2] == 6 and out[1, 1] == 9  # corner, edge, interior


POOL_CASES = [(2, None, "valid"), (2, None, "same"), (3, 2, "valid"), (3, 2, "same"),
              (3, 1, "same"), (2, 3, "same"), (2, 1, "valid")]


@pytest.mark.parametrize("mode, layer", [("max", keras.layers.MaxPooling2D),
                                         ("average", keras.layers.AveragePooling2D)])
@pytest.mark.parametrize("pool_size, stride, padding", POOL_CASES)
@pytest.mark.parametrize("shape", [(7, 9, 2), (8, 8, 3)])
def test_pool2d_matches_keras_pooling(mode, layer, pool_size, stride, padding, shape):
    x = np.random.default_rng(sum(shape)).normal(size=shape)
    reference = np.asarray(layer(pool_size, stride, padding=padding, dtype="float64")(x[None]))[0]
    ours = pool2d(x, pool_size, stride, padding, mode)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)


def test_pool2d_small_example_by_hand():
    x = np.array([[1, 2, 0, 1], [3, 4, 1, 1], [0, 0, 5, 6], [1, 1, 7, 8]], float)[..., None]
    np.testing.assert_array_equal(pool2d(x, 2)[..., 0], [[4, 1], [1, 8]])
    np.testing.assert_array_equal(pool2d(x, 2, mode="average")[..., 0], [[2.5, 0.75], [0.5, 6.5]])


SIZE_CASES = [(8, 3, 1, "same"), (8, 3, 1, "valid"), (8, 3, 2, "same"), (8, 3, 2, "valid"),
              (7, 2, 2, "valid"), (7, 2, 2, "same"), (256, 5, 3, "valid"), (256, 5, 3, "same"),
              (427, 3, 2, "same"), (640, 7, 4, "valid"), (5, 5, 1, "valid")]


@pytest.mark.parametrize("size, kernel_size, stride, padding", SIZE_CASES)
def test_output_size_formula_matches_keras_shapes(size, kernel_size, stride, padding):
    conv = keras.layers.Conv2D(1, kernel_size, strides=stride, padding=padding)
    pool = keras.layers.MaxPooling2D(kernel_size, stride, padding=padding)
    expected = conv_output_size(size, kernel_size, stride, padding)
    for layer in (conv, pool):
        assert layer.compute_output_shape((1, size, size + 1, 1))[1] == expected


@pytest.mark.parametrize("size, kernel_size, stride, expected", [
    (8, 3, 1, (1, 1)), (8, 3, 2, (0, 1)), (7, 3, 2, (1, 1)), (7, 4, 1, (1, 2)),
    (5, 1, 1, (0, 0)), (6, 2, 2, (0, 0)),
])
def test_same_padding_by_hand(size, kernel_size, stride, expected):
    assert same_padding(size, kernel_size, stride) == expected


def test_receptive_field_of_known_stacks():
    assert receptive_field([(3, 1)] * 3) == [3, 5, 7]  # three 3x3 convs see as far as one 7x7
    vgg_like = [(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2)]
    assert receptive_field(vgg_like) == [3, 5, 6, 10, 14, 16]
    assert receptive_field([(7, 2), (3, 2)]) == [7, 11]  # ResNet stem: 7x7/2 conv, 3x3/2 pool
    assert receptive_field([(1, 1)]) == [1]


def test_receptive_field_matches_the_support_of_a_gradient():
    """The input pixels that can change one central output unit: where its gradient is non-zero."""
    stack = [(3, 1), (3, 1), (2, 2), (3, 1), (5, 2), (3, 1)]
    layers = []
    for kernel_size, stride in stack:
        if stride == 1:
            layers.append(keras.layers.Conv2D(1, kernel_size, padding="valid", use_bias=False,
                                              kernel_initializer="ones", dtype="float64"))
        else:
            layers.append(keras.layers.AveragePooling2D(kernel_size, stride, dtype="float64"))
    model = keras.Sequential([keras.Input((64, 64, 1), dtype="float64"), *layers])
    x = tf.constant(np.ones((1, 64, 64, 1)))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = model(x)
        unit = out[0, out.shape[1] // 2, out.shape[2] // 2, 0]
    support = np.asarray(tape.gradient(unit, x))[0, :, :, 0] != 0
    rows, cols = np.flatnonzero(support.any(axis=1)), np.flatnonzero(support.any(axis=0))
    expected = receptive_field(stack)[-1]
    assert rows[-1] - rows[0] + 1 == expected and cols[-1] - cols[0] + 1 == expected


def count_by_hand(height, filters, kernel_size, head, num_classes=10, channels=1):
    total, previous, size = 0, channels, height
    for block, count in enumerate(filters, start=1):
        total += kernel_size * kernel_size * previous * count + count
        previous = count
        if block < len(filters):
            size //= 2
    features = size * size * previous if head == "flatten" else previous
    return total + features * num_classes + num_classes


@pytest.mark.parametrize("height, filters, kernel_size, head", [
    (8, (16, 32), 3, "flatten"), (8, (16, 32), 3, "global_max"), (16, (16, 32), 3, "flatten"),
    (8, (8, 16, 32), 3, "global_average"), (8, (4,), 5, "flatten"), (12, (16, 32), 3, "flatten"),
])
def test_build_digit_cnn_parameter_count_by_hand(height, filters, kernel_size, head):
    model = build_digit_cnn((height, height, 1), filters, kernel_size=kernel_size, head=head)
    assert model.count_params() == count_by_hand(height, filters, kernel_size, head)


def test_build_digit_cnn_default_model():
    model = build_digit_cnn()
    assert model.count_params() == (9 * 16 + 16) + (9 * 16 * 32 + 32) + (4 * 4 * 32 * 10 + 10)
    assert [layer.name for layer in model.layers] == [
        "image", "conv_1", "pool_1", "conv_2", "flatten", "output"]
    assert model.output_shape == (None, 10)
    assert isinstance(model.get_layer("pool_1"), keras.layers.MaxPooling2D)
    probabilities = np.asarray(model(np.zeros((2, 8, 8, 1))))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_build_digit_cnn_options():
    model = build_digit_cnn((12, 12, 1), (8, 8, 8), pooling="average", head="global_max",
                            num_classes=3, name="tiny")
    assert model.name == "tiny" and model.output_shape == (None, 3)
    assert isinstance(model.get_layer("pool_2"), keras.layers.AveragePooling2D)
    assert isinstance(model.get_layer("global_max"), keras.layers.GlobalMaxPooling2D)


def zero_filled_shift(image, dy, dx):
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_shift_augment_moves_training_images_by_whole_pixels_only():
    keras.utils.set_random_seed(0)
    layer = build_digit_cnn(shift_augment=1).get_layer("random_shift")
    image = np.arange(1, 65, dtype="float32").reshape(8, 8, 1)
    batch = np.repeat(image[None], 60, axis=0)
    moved = np.asarray(layer(batch, training=True))
    seen = set()
    for out in moved:
        matches = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                   if np.array_equal(out, zero_filled_shift(image, dy, dx))]
        assert matches, "every augmented image is the original moved by at most one pixel"
        seen.add(matches[0])
    assert len(seen) >= 5  # the shifts really vary
    np.testing.assert_array_equal(np.asarray(layer(batch, training=False)), batch)
    assert "random_shift" not in [layer.name for layer in build_digit_cnn().layers]


def test_build_digit_cnn_seed_fixes_weights_and_shifts():
    first = build_digit_cnn((12, 12, 1), (4, 8), shift_augment=2, seed=5)
    again = build_digit_cnn((12, 12, 1), (4, 8), shift_augment=2, seed=5)
    other = build_digit_cnn((12, 12, 1), (4, 8), shift_augment=2, seed=6)
    for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first.get_layer("conv_1").kernel, other.get_layer("conv_1").kernel)
    batch = np.random.default_rng(0).random((16, 12, 12, 1)).astype("float32")
    shift_a = first.get_layer("random_shift")(batch, training=True)
    shift_b = again.get_layer("random_shift")(batch, training=True)
    np.testing.assert_array_equal(np.asarray(shift_a), np.asarray(shift_b))


def test_a_sub_model_with_the_shift_layer_shifts_unless_told_not_to():
    model = build_digit_cnn((8, 8, 1), (4,), shift_augment=1, seed=0)
    front = keras.Model(model.input, model.get_layer("conv_1").output)
    digit = np.random.default_rng(1).random((1, 8, 8, 1)).astype("float32")
    kernel, bias = model.get_layer("conv_1").get_weights()
    expected = np.maximum(conv2d(digit[0], kernel, padding="same", bias=bias), 0)
    np.testing.assert_allclose(np.asarray(front(digit, training=False))[0], expected, atol=1e-5)
    shifted = [np.asarray(front(digit))[0] for _ in range(10)]  # no argument: training mode
    assert not all(np.allclose(maps, expected, atol=1e-5) for maps in shifted)


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("call, match", [
    (lambda: conv2d(np.ones((4, 4)), np.ones((3, 3, 1, 1))), "image must be"),
    (lambda: conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1))), "kernel must be"),
    (lambda: conv2d(np.ones((4, 4, 3)), np.ones((3, 3, 1, 2))), "expects 1 input channels"),
    (lambda: conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1, 2)), stride=0), "stride must be"),
    (lambda: conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1, 2)), padding="full"), "padding must"),
    (lambda: conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1, 2)), bias=[1.0]), "bias must have"),
    (lambda: conv2d(np.ones((2, 4, 1)), np.ones((3, 3, 1, 2))), "larger than the input"),
    (lambda: pool2d(np.ones((4, 4, 1)), mode="median"), "mode must be"),
    (lambda: pool2d(np.ones((4, 4, 1)), pool_size=0), "pool_size must be"),
    (lambda: pool2d(np.ones((4, 4, 1)), stride=1.5), "stride must be"),
    (lambda: conv_output_size(0, 3), "size must be"),
    (lambda: conv_output_size(8, 3, padding="SAME"), "padding must"),
    (lambda: conv_output_size(8, True), "kernel_size must be"),
    (lambda: same_padding(8, 3, 0), "stride must be"),
    (lambda: receptive_field([]), "non-empty sequence"),
    (lambda: receptive_field([(3, 1), 3]), r"layers\[1\] must be"),
    (lambda: receptive_field([(3, 0)]), r"layers\[0\] stride"),
])
def test_hand_functions_reject_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("kwargs, match", [
    ({"input_shape": (8, 8)}, "input_shape must be"),
    ({"input_shape": (8, 0, 1)}, r"input_shape\[1\]"),
    ({"filters": ()}, "filters must be"),
    ({"filters": (16, -1)}, r"filters\[1\]"),
    ({"filters": (4, 4, 4, 4, 4)}, "below one pixel"),
    ({"num_classes": 1}, "num_classes must be"),
    ({"kernel_size": 0}, "kernel_size must be"),
    ({"pooling": "min"}, "pooling must be"),
    ({"head": "dense"}, "head must be"),
    ({"shift_augment": -1}, "shift_augment must be"),
    ({"shift_augment": 8}, "smaller than the image"),
    ({"seed": -1}, "seed must be an int"),
    ({"name": " "}, "name must be"),
])
def test_build_digit_cnn_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_digit_cnn(**kwargs)
