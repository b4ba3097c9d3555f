"""Tests of dlbook.augment: augmentation layers are inactive at inference, keep shapes and dtypes,
are reproducible with a seed and work in a tf.data map; the label-swapping rotation against a
rotation by hand; the small CNN's parameter count; the throughput helper's counting; the
experiment helper's bookkeeping (in-model and pipeline settings); and argument errors."""

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
    assert isinstance(augmenter, keras.layers.Pipeline)
    assert [layer.name for layer in augmenter.layers] == [
        "flip", "rotation", "translation", "zoom", "contrast"]
    rotation = {layer.name: layer for layer in augmenter.layers}["rotation"]
    assert rotation.factor == pytest.approx((-15 / 360, 15 / 360))
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
    model = augment.build_small_cnn((16, 16, 1), 10, augment.build_augmenter(rotation=30, seed=0),
                                    seed=0)
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


def test_pipeline_passes_image_label_dicts_through():
    x, y = images(6), np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2]]
    out = augment.build_augmenter(translation=0.2, seed=1)({"images": x, "labels": y},
                                                          training=True)
    np.testing.assert_array_equal(np.asarray(out["labels"]), y)
    assert np.asarray(out["images"]).shape == x.shape
    assert not np.allclose(np.asarray(out["images"]), x)


def test_label_swapping_rotation_swaps_exactly_when_upside_down():
    layer = augment.LabelSwappingRotation(180, swap=[(6, 9)], seed=4)
    n = 64
    x = np.zeros((n, 9, 9, 1), np.float32)
    x[:, 1:4, 4] = 1.0  # a bar above the centre: its position tells the angle
    y = np.eye(10, dtype="float32")[np.tile([6, 9, 3, 0], n // 4)]
    out = layer({"images": x, "labels": y}, training=True)
    rotated, new_labels = np.asarray(out["images"]), np.asarray(out["labels"])
    # the bar's centre of mass after rotation: below the centre means |angle| > 90
    rows = np.arange(9)[None, :, None]
    mass = rotated[..., 0].sum(axis=(1, 2))
    below = (rotated[..., 0] * rows).sum(axis=(1, 2)) / mass > 4.0
    clearly = np.abs((rotated[..., 0] * rows).sum(axis=(1, 2)) / mass - 4.0) > 0.5
    old, new = y.argmax(axis=1), new_labels.argmax(axis=1)
    expected = np.where(below & (old == 6), 9, np.where(below & (old == 9), 6, old))
    assert clearly.sum() >= n // 2 and below[clearly].any() and (~below[clearly]).any()
    np.testing.assert_array_equal(new[clearly], expected[clearly])
    np.testing.assert_array_equal(new[old == 3], 3)  # other classes keep their label
    np.testing.assert_allclose(new_labels.sum(axis=1), 1.0)
    unchanged = layer({"images": x, "labels": y}, training=False)
    np.testing.assert_array_equal(np.asarray(unchanged["labels"]), y)
    np.testing.assert_array_equal(np.asarray(unchanged["images"]), x)


def test_label_swapping_rotation_matches_random_rotation_on_images():
    x = images(8, size=12)
    ours = augment.LabelSwappingRotation(30, seed=5)(x, training=True)
    theirs = keras.layers.RandomRotation(30 / 360, fill_mode="constant", fill_value=0.0,
                                         seed=5)(x, training=True)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"degrees": 0}, "degrees must be above 0"),
    ({"degrees": 200}, "degrees must be a number"),
    ({"degrees": 90, "swap": [(6, 6)]}, "swap must be pairs"),
    ({"degrees": 90, "swap": [(6,)]}, "swap must be pairs"),
    ({"degrees": 90, "swap": []}, "swap must be pairs"),
    ({"degrees": 90, "seed": -2}, "seed must be an int"),
])
def test_label_swapping_rotation_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        augment.LabelSwappingRotation(**kwargs)


def test_label_swapping_rotation_rejects_pairs_beyond_the_classes():
    layer = augment.LabelSwappingRotation(180, swap=[(6, 9)], seed=0)
    with pytest.raises(ValueError, match="out of range for 5 classes"):
        layer({"images": images(2), "labels": np.eye(5, dtype="float32")[[0, 1]]},
              training=True)


def test_small_cnn_shapes_and_parameter_count():
    plain = augment.build_small_cnn((16, 16, 1), 10, seed=0)
    with_augmenter = augment.build_small_cnn((16, 16, 1), 10, augment.build_augmenter(zoom=0.1),
                                             seed=0)
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
    settings = {"none": None, "shift": {"translation": 0.1},
                "mixup": lambda seed: keras.layers.MixUp(seed=seed)}
    results = augment.compare_augmentations(x, y, settings, train_size=28, seeds=(0, 1),
                                            epochs=1, batch_size=14)
    assert list(results.accuracies) == ["none", "shift", "mixup"]
    for name in settings:
        assert len(results.accuracies[name]) == 2 and len(results.train_accuracies[name]) == 2
        assert all(0.0 <= a <= 1.0 for a in results.accuracies[name])
        assert all(0.0 <= a <= 1.0 for a in results.train_accuracies[name])
        assert results.confusion[name].shape == (4, 4)
        assert results.confusion[name].sum() == 2 * 12  # every test image, once per seed
        np.testing.assert_array_equal(results.confusion[name].sum(axis=1), [6, 6, 6, 6])
        correct = np.trace(results.confusion[name])
        assert correct == round(12 * sum(results.accuracies[name]))
    assert results.mean("none") == pytest.approx(np.mean(results.accuracies["none"]))
    assert results.train_mean("shift") == pytest.approx(np.mean(results.train_accuracies["shift"]))
    by_class = results.class_accuracy("none")
    np.testing.assert_allclose(by_class, np.diag(results.confusion["none"]) / 6)


def test_compare_augmentations_is_reproducible_and_learns():
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(2), 40)
    x = rng.normal(0, 0.1, (80, 8, 8, 1)).astype("float32")
    x[y == 1, 2:6, 2:6] += 1.0  # class 1 has a bright square
    first = augment.compare_augmentations(x, y, {"none": None}, train_size=40, seeds=(3,),
                                          epochs=5, batch_size=10)
    again = augment.compare_augmentations(x, y, {"none": None}, train_size=40, seeds=(3,),
                                          epochs=5, batch_size=10)
    assert first.accuracies == again.accuracies
    assert first.mean("none") >= 0.9 and first.train_mean("none") >= 0.9


class ImagesOnly(keras.layers.Layer):
    """A faulty batch augmentation: it drops the labels."""

    def call(self, batch, training=None):
        return batch["images"]


def test_a_batch_setting_must_return_images_and_labels():
    x, y = images(20, size=8), np.tile(np.arange(2), 10)
    with pytest.raises(ValueError, match="must return"):
        augment.compare_augmentations(x, y, {"bad": lambda seed: ImagesOnly()},
                                      train_size=10, seeds=(0,), epochs=1)


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
        augment.build_small_cnn((16, 16), 10, seed=0)
    with pytest.raises(ValueError, match="num_classes must be an int of at least 2"):
        augment.build_small_cnn((16, 16, 1), 1, seed=0)
    with pytest.raises(ValueError, match="augmenter must be a Keras layer"):
        augment.build_small_cnn((16, 16, 1), 10, augmenter="rotate", seed=0)
    with pytest.raises(TypeError):
        augment.build_small_cnn((16, 16, 1), 10)  # the seed is required
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
        augment.compare_augmentations(x, y[:5], {"none": None}, seeds=(0,))
    with pytest.raises(ValueError, match="images must be \\(n, height, width, channels\\)"):
        augment.compare_augmentations(x[..., 0], y, {"none": None}, seeds=(0,))
    with pytest.raises(ValueError, match="settings must be a non-empty dict"):
        augment.compare_augmentations(x, y, {}, seeds=(0,))
    with pytest.raises(ValueError, match="setting 'odd' must be None, a dict"):
        augment.compare_augmentations(x, y, {"odd": 3}, seeds=(0,))
    with pytest.raises(ValueError, match="train_size must leave at least one test image"):
        augment.compare_augmentations(x, y, {"none": None}, train_size=19, seeds=(0,))
    with pytest.raises(ValueError, match="train_size must be an int of at least 2"):
        augment.compare_augmentations(x, y, {"none": None}, train_size=1, seeds=(0,))
    with pytest.raises(ValueError, match="seeds must be a non-empty sequence"):
        augment.compare_augmentations(x, y, {"none": None}, train_size=10, seeds=())
    with pytest.raises(ValueError, match="learning_rate must be a positive number"):
        augment.compare_augmentations(x, y, {"none": None}, train_size=10, learning_rate=0,
                                      seeds=(0,))


def test_on_grey_runs_a_colour_layer_on_one_channel_and_passes_labels_through():
    grey = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    labels = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    shifted = augment.OnGrey(keras.layers.Rescaling(0.5, offset=0.1))({"images": grey, "labels": labels})
    np.testing.assert_allclose(np.asarray(shifted["images"]), 0.5 * grey + 0.1, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(shifted["labels"]), labels)
    weighted = augment.OnGrey(keras.layers.Lambda(lambda x: x * np.array([0.0, 1.0, 2.0], "float32")))
    np.testing.assert_allclose(np.asarray(weighted(grey)), grey, rtol=1e-6)  # mean of 0, 1, 2 times
    randaugment = augment.OnGrey(keras.layers.RandAugment(value_range=(0, 1), seed=3))
    out = np.asarray(randaugment({"images": grey, "labels": labels}, training=True)["images"])
    assert out.shape == grey.shape and np.all((out >= 0) & (out <= 1)) and not np.allclose(out, grey)


def test_on_grey_argument_errors():
    with pytest.raises(TypeError, match="Keras layer"):
        augment.OnGrey(lambda x: x)
    with pytest.raises(ValueError, match="one channel"):
        augment.OnGrey(keras.layers.Identity())(np.zeros((2, 4, 4, 3), "float32"))
