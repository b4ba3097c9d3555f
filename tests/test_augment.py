"""Tests of dlbook.augment: augmentation layers are inactive at inference, keep shapes and dtypes,
are reproducible with a seed and work in a tf.data map; the small CNN's parameter count; the
throughput helper's counting; the experiment helper's bookkeeping; and argument errors."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from dlbook import augment  # noqa: E402

ALL_ON = {"rotation": 15, "translation": 0.1, "zoom": 0.1, "contrast": 0.3, "flip": "horizontal"}


def images(n=4, size=16, seed=0):
    return np.random.default_rng(seed).random((n, size, size, 1)).astype(np.float32)


def test_layers_in_order_and_rotation_in_degrees():
    augmenter = augment.build_augmenter(**ALL_ON, seed=3)
    assert [layer.name for layer in augmenter.layers] == [
        "flip", "rotation", "translation", "zoom", "contrast"]
    assert augmenter.get_layer("rotation").factor == pytest.approx((-15 / 360, 15 / 360))
    augmenter(images(), training=True)
    assert not augmenter.weights  # random transformations learn nothing
    only_zoom = augment.build_augmenter(zoom=0.2)
    assert [layer.name for layer in only_zoom.layers] == ["zoom"]


@pytest.mark.parametrize("setting", [{"rotation": 30}, {"translation": 0.2}, {"zoom": 0.2},
                                     {"contrast": 0.5}, {"flip": "horizontal_and_vertical"},
                                     ALL_ON])
def test_inactive_at_inference_active_in_training(setting):
    x = images()
    augmenter = augment.build_augmenter(**setting, seed=0)
    np.testing.assert_array_equal(np.asarray(augmenter(x, training=False)), x)
    # Called directly without `training`, Keras's random layers *do* transform: say which.
    assert not np.allclose(np.asarray(augmenter(x)), x)
    changed = np.asarray(augmenter(x, training=True))
    assert changed.shape == x.shape and changed.dtype == np.float32
    assert not np.allclose(changed, x)


def test_inactive_inside_a_model_at_predict():
    x = images()
    model = augment.build_small_cnn((16, 16, 1), 10, augment.build_augmenter(rotation=30, seed=0))
    front = keras.Model(model.input, model.get_layer("augment").output)
    np.testing.assert_array_equal(front.predict(x, verbose=0), x)
    assert not np.allclose(np.asarray(front(x, training=True)), x)


def test_contrast_stays_in_value_range_and_constant_fill_is_zero():
    x = images(8)
    out = np.asarray(augment.build_augmenter(contrast=0.9, seed=1)(x, training=True))
    assert out.min() >= 0.0 and out.max() <= 1.0
    ones = np.ones((8, 16, 16, 1), np.float32)
    shifted = np.asarray(augment.build_augmenter(translation=0.3, seed=1)(ones, training=True))
    assert shifted.min() == pytest.approx(0.0, abs=1e-6)  # pixels moved in are background


def test_same_seed_same_draws_different_seed_different_draws():
    x = images()
    first = augment.build_augmenter(**ALL_ON, seed=7)(x, training=True)
    again = augment.build_augmenter(**ALL_ON, seed=7)(x, training=True)
    other = augment.build_augmenter(**ALL_ON, seed=8)(x, training=True)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(again))
    assert not np.allclose(np.asarray(first), np.asarray(other))


def test_works_in_a_tf_data_map_and_keeps_labels():
    x, y = images(10), np.arange(10)
    augmenter = augment.build_augmenter(rotation=20, translation=0.1, seed=0)
    dataset = (tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
               .map(lambda image, label: (augmenter(image, training=True), label)))
    batches = list(dataset)
    assert [b[0].shape for b in batches] == [(4, 16, 16, 1), (4, 16, 16, 1), (2, 16, 16, 1)]
    assert batches[0][0].dtype == tf.float32
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    assert not np.allclose(np.concatenate([b[0] for b in batches]), x)


def test_small_cnn_shapes_and_parameter_count():
    plain = augment.build_small_cnn((16, 16, 1), 10)
    with_augmenter = augment.build_small_cnn((16, 16, 1), 10, augment.build_augmenter(zoom=0.1))
    # conv_1 16·(3·3·1)+16, conv_2 32·(3·3·16)+32, output (4·4·32)·10+10
    expected = (16 * 9 + 16) + (32 * 9 * 16 + 32) + (4 * 4 * 32 * 10 + 10)
    assert plain.count_params() == with_augmenter.count_params() == expected
    assert plain.output_shape == (None, 10)
    assert plain.get_layer("conv_2").kernel.shape == (3, 3, 16, 32)
    same = augment.build_small_cnn((16, 16, 1), 10, seed=0)
    np.testing.assert_array_equal(np.asarray(plain.get_layer("conv_1").kernel),
                                  np.asarray(same.get_layer("conv_1").kernel))


def test_throughput_counts_examples():
    numbers = tf.data.Dataset.range(10)
    assert augment.measure_throughput(numbers.batch(3)).examples == 10
    assert augment.measure_throughput(numbers, batched=False).examples == 10
    assert augment.measure_throughput(numbers.batch(4), epochs=3).examples == 30
    pairs = tf.data.Dataset.from_tensor_slices((images(7), np.arange(7))).batch(2)
    steps = []
    result = augment.measure_throughput(pairs, epochs=2, step=steps.append)
    assert result.examples == 14 and len(steps) == 8 and result.seconds > 0
    assert result.per_second == pytest.approx(14 / result.seconds)
    assert augment.Throughput(5, 0.0).per_second == float("inf")


def test_compare_augmentations_bookkeeping():
    x, y = images(40, size=8), np.tile(np.arange(4), 10)
    settings = {"none": None, "shift": {"translation": 0.1}}
    results = augment.compare_augmentations(x, y, settings, train_size=28, seeds=(0, 1),
                                            epochs=1, batch_size=14)
    assert list(results.accuracies) == ["none", "shift"]
    for name in settings:
        assert len(results.accuracies[name]) == 2
        assert all(0.0 <= a <= 1.0 for a in results.accuracies[name])
        assert results.confusion[name].shape == (4, 4)
        assert results.confusion[name].sum() == 2 * 12  # every test image, once per seed
        np.testing.assert_array_equal(results.confusion[name].sum(axis=1), [6, 6, 6, 6])
        correct = np.trace(results.confusion[name])
        assert correct == round(12 * sum(results.accuracies[name]))
    assert results.mean("none") == pytest.approx(np.mean(results.accuracies["none"]))


@pytest.mark.parametrize("kwargs, message", [
    ({"rotation": -5}, "rotation must be a number in \\[0, 180\\]"),
    ({"rotation": 200}, "rotation must be"),
    ({"translation": 1.5}, "translation must be"),
    ({"zoom": "big"}, "zoom must be"),
    ({"contrast": True}, "contrast must be"),
    ({"rotation": 5, "flip": "diagonal"}, "flip must be None or one of"),
    ({"rotation": 5, "fill_mode": "mirror"}, "fill_mode must be one of"),
    ({"contrast": 0.2, "value_range": (1, 0)}, "value_range must be"),
    ({"rotation": 5, "seed": -1}, "seed must be an int"),
    ({"rotation": 5, "name": ""}, "name must be a non-empty string"),
    ({}, "every transformation is switched off"),
])
def test_build_augmenter_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        augment.build_augmenter(**kwargs)


def test_other_argument_errors():
    with pytest.raises(ValueError, match="input_shape must be"):
        augment.build_small_cnn((16, 16), 10)
    with pytest.raises(ValueError, match="num_classes must be an int of at least 2"):
        augment.build_small_cnn((16, 16, 1), 1)
    with pytest.raises(ValueError, match="augmenter must be a Keras layer"):
        augment.build_small_cnn((16, 16, 1), 10, augmenter="rotate")
    with pytest.raises(ValueError, match="dataset must be a tf.data.Dataset"):
        augment.measure_throughput([1, 2, 3])
    with pytest.raises(ValueError, match="epochs must be an int of at least 1"):
        augment.measure_throughput(tf.data.Dataset.range(3), epochs=0)
    with pytest.raises(ValueError, match="no batch dimension"):
        augment.measure_throughput(tf.data.Dataset.range(3))
    with pytest.raises(ValueError, match="step must be callable"):
        augment.measure_throughput(tf.data.Dataset.range(3), batched=False, step=5)
    x, y = images(20), np.tile(np.arange(2), 10)
    with pytest.raises(ValueError, match="images and labels differ in number"):
        augment.compare_augmentations(x, y[:5], {"none": None})
    with pytest.raises(ValueError, match="images must be \\(n, height, width, channels\\)"):
        augment.compare_augmentations(x[..., 0], y, {"none": None})
    with pytest.raises(ValueError, match="settings must be a non-empty dict"):
        augment.compare_augmentations(x, y, {})
    with pytest.raises(ValueError, match="train_size must leave at least one test image"):
        augment.compare_augmentations(x, y, {"none": None}, train_size=19)
    with pytest.raises(ValueError, match="train_size must be an int of at least 2"):
        augment.compare_augmentations(x, y, {"none": None}, train_size=1)
    with pytest.raises(ValueError, match="seeds must be a non-empty sequence"):
        augment.compare_augmentations(x, y, {"none": None}, train_size=10, seeds=())
    with pytest.raises(ValueError, match="learning_rate must be a positive number"):
        augment.compare_augmentations(x, y, {"none": None}, train_size=10, learning_rate=0)
