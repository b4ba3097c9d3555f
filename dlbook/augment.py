"""Data augmentation: Keras 3 preprocessing-layer pipelines, a small-data experiment, tf.data timing.

:func:`build_augmenter` stacks Keras random-transformation layers (rotation, translation, zoom,
contrast, flip) into one ``keras.layers.Pipeline`` that works in both places augmentation can
live: as the first layer of a model (active in ``fit``, a no-op in ``predict`` and ``evaluate``)
or in a ``tf.data`` map (``dataset.map(lambda x, y: (augmenter(x, training=True), y))``), on any
Keras backend. :class:`LabelSwappingRotation` rotates images and, past ±90°, swaps labels that a
half turn exchanges (6 and 9). :func:`compare_augmentations` trains a small CNN with each of
several augmentations over several seeds and reports test and training accuracies;
:func:`measure_throughput` times a ``tf.data`` pipeline. Taught in chapter 8.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import keras
import numpy as np
import tensorflow as tf
from sklearn.model_selection import train_test_split

from dlbook.checks import check_int as _check_int

FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")
FILL_MODES = ("constant", "reflect", "wrap", "nearest")


def _check_fraction(argument: str, value, upper: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= value <= upper:
        raise ValueError(f"{argument} must be a number in [0, {upper:g}] (0 switches it off), "
                         f"got {value!r}")
    return float(value)


def build_augmenter(
    rotation: float = 0.0,
    translation: float = 0.0,
    zoom: float = 0.0,
    contrast: float = 0.0,
    flip: str | None = None,
    fill_mode: str = "constant",
    value_range: tuple[float, float] = (0.0, 1.0),
    seed: int | None = None,
    name: str = "augment",
) -> keras.layers.Pipeline:
    """A ``keras.layers.Pipeline`` of random image transformations for ``(batch, h, w, c)`` images.

    - ``rotation``: largest rotation angle in **degrees** (each image turns by a uniform angle in
      ``[-rotation, rotation]``; Keras's ``RandomRotation`` counts in turns, so it gets
      ``rotation / 360``). 180 allows any orientation.
    - ``translation``: largest shift, as a fraction of the height (and of the width).
    - ``zoom``: largest zoom in or out, as a fraction of the size.
    - ``contrast``: contrast factor range ``[1 - contrast, 1 + contrast]``, within ``value_range``.
    - ``flip``: ``None``, ``"horizontal"``, ``"vertical"`` or ``"horizontal_and_vertical"``.

    A transformation at 0 (or ``None``) is left out. Pixels moved in from outside the image are
    filled by ``fill_mode``: ``"constant"`` fills with 0, the blank background of a digit. With a
    ``seed`` the layers draw reproducible random streams (layer ``i`` gets ``seed + i``); with
    ``None`` they draw from Keras's global generator.

    A ``Pipeline``, unlike a ``keras.Sequential``, is a plain layer that leaves its inputs as they
    are inside a ``tf.data`` map, so the same object works in a pipeline on every backend; it
    also passes dicts such as ``{"images": x, "labels": y}`` through its layers.

    Inside a model the pipeline transforms only in training: ``fit`` calls it with
    ``training=True``; ``predict`` and ``evaluate`` pass ``training=False`` and get the input back
    unchanged. Called directly, Keras's random layers default to ``training=True``, so say
    ``augmenter(x, training=False)`` (or ``True``) explicitly. Taught in chapter 8.
    """
    rotation = _check_fraction("rotation", rotation, 180.0)
    translation = _check_fraction("translation", translation, 1.0)
    zoom = _check_fraction("zoom", zoom, 1.0)
    contrast = _check_fraction("contrast", contrast, 1.0)
    if flip is not None and flip not in FLIP_MODES:
        raise ValueError(f"flip must be None or one of {FLIP_MODES}, got {flip!r}")
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
    if (not isinstance(value_range, Sequence) or len(value_range) != 2
            or not all(isinstance(v, Real) for v in value_range)
            or not value_range[0] < value_range[1]):
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range!r}")
    if seed is not None:
        seed = _check_int("seed", seed, 0)
    if not any((rotation, translation, zoom, contrast, flip)):
        raise ValueError("every transformation is switched off: give at least one of rotation, "
                         "translation, zoom, contrast (> 0) or flip")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string, got {name!r}")

    geometry = {"fill_mode": fill_mode, "fill_value": 0.0}
    makers: list[Callable[[int | None], keras.layers.Layer]] = []
    if flip:
        makers.append(lambda s: keras.layers.RandomFlip(flip, seed=s, name="flip"))
    if rotation:
        makers.append(lambda s: keras.layers.RandomRotation(
            rotation / 360.0, seed=s, name="rotation", **geometry))
    if translation:
        makers.append(lambda s: keras.layers.RandomTranslation(
            translation, translation, seed=s, name="translation", **geometry))
    if zoom:
        makers.append(lambda s: keras.layers.RandomZoom(zoom, seed=s, name="zoom", **geometry))
    if contrast:
        makers.append(lambda s: keras.layers.RandomContrast(
            contrast, value_range=tuple(value_range), seed=s, name="contrast"))
    layers = [make(None if seed is None else seed + i) for i, make in enumerate(makers)]
    return keras.layers.Pipeline(layers, name=name)


class LabelSwappingRotation(keras.layers.RandomRotation):
    """``RandomRotation`` (angles in degrees) that also fixes the labels a half turn changes.

    Called on ``{"images": x, "labels": y}`` with one-hot ``y``, it rotates each image by a
    uniform angle in ``[-degrees, degrees]``, and where ``|angle| > 90`` it exchanges the label
    columns of each pair in ``swap`` (default ``((6, 9),)``: an upside-down 6 is read as a 9).
    The label then says what the rotated image looks like, nearest to upright. Images only, or
    ``training=False``, behave as ``RandomRotation``. Pixels moved in are filled with 0.
    Taught in chapter 8.
    """

    def __init__(self, degrees: float, swap=((6, 9),), seed: int | None = None, **kwargs):
        degrees = _check_fraction("degrees", degrees, 180.0)
        if not degrees:
            raise ValueError("degrees must be above 0: with no rotation there is nothing to swap")
        pairs = tuple(tuple(pair) for pair in swap)
        if not pairs or any(len(pair) != 2 or not all(isinstance(c, Integral) and c >= 0
                                                      for c in pair) or pair[0] == pair[1]
                            for pair in pairs):
            raise ValueError(f"swap must be pairs of two different class indices, got {swap!r}")
        if seed is not None:
            seed = _check_int("seed", seed, 0)
        kwargs.setdefault("fill_mode", "constant")
        kwargs.setdefault("fill_value", 0.0)
        super().__init__(degrees / 360.0, seed=seed, **kwargs)
        self.degrees = degrees
        self.swap = pairs

    def transform_labels(self, labels, transformation, training=True):
        if not training or transformation is None:
            return labels
        ops = self.backend
        classes = labels.shape[-1]
        order = list(range(classes))
        for a, b in self.swap:
            if max(a, b) >= classes:
                raise ValueError(f"swap pair {(a, b)} is out of range for {classes} classes")
            order[a], order[b] = b, a
        swapped = ops.numpy.take(labels, ops.convert_to_tensor(order), axis=-1)
        upside_down = ops.numpy.abs(transformation["angle"]) > 90.0
        return ops.numpy.where(ops.numpy.expand_dims(upside_down, -1), swapped, labels)

    def get_config(self):
        config = super().get_config()
        config.pop("factor", None)
        return {**config, "degrees": self.degrees, "swap": self.swap}


class OnGrey(keras.layers.Layer):
    """Run an image layer written for colour images, such as ``keras.layers.RandAugment``, on
    grey ones: the single channel is copied into three, ``layer`` runs, and the three channels
    are averaged back into one. (Keras 3.13's RandAugment weighs R, G and B in its colour
    operations and fails on one channel; later versions accept it.) Every operation that treats
    the three channels alike keeps them equal, so for those the average is exact.

    Called on images ``(n, h, w, 1)`` or on ``{"images": x, "labels": y}`` batches, whose
    labels pass through unchanged. Taught in chapter 8.
    """

    def __init__(self, layer: keras.layers.Layer, **kwargs):
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(f"layer must be a Keras layer, got {type(layer).__name__}")
        super().__init__(**kwargs)
        self.layer = layer

    def call(self, inputs, training=True):
        batch = inputs if isinstance(inputs, Mapping) else None
        images = batch["images"] if batch is not None else inputs
        if images.shape[-1] != 1:
            raise ValueError(f"OnGrey takes images with one channel, got shape {tuple(images.shape)}")
        colour = self.layer(keras.ops.repeat(images, 3, axis=-1), training=training)
        grey = keras.ops.mean(colour, axis=-1, keepdims=True)
        return grey if batch is None else {**batch, "images": grey}


def build_small_cnn(input_shape: tuple[int, int, int], num_classes: int,
                    augmenter: keras.layers.Layer | None = None, *, seed: int,
                    name: str = "small_cnn") -> keras.Model:
    """A two-block CNN classifier, with ``augmenter`` (if given) as its first layer.

    ``input -> [augmenter] -> conv_1 (16, 3x3) -> pool_1 -> conv_2 (32, 3x3) -> pool_2 ->
    flatten -> output (softmax)``. Weights are initialised from ``seed``. Taught in chapter 8.
    """
    if (not isinstance(input_shape, Sequence) or len(input_shape) != 3
            or not all(isinstance(d, Integral) and d > 0 for d in input_shape)):
        raise ValueError(f"input_shape must be (height, width, channels) of positive ints, "
                         f"got {input_shape!r}")
    num_classes = _check_int("num_classes", num_classes, 2)
    seed = _check_int("seed", seed, 0)
    if augmenter is not None and not isinstance(augmenter, keras.layers.Layer):
        raise ValueError(f"augmenter must be a Keras layer (see build_augmenter) or None, "
                         f"got {type(augmenter).__name__}")

    def he(offset: int) -> keras.initializers.Initializer:
        return keras.initializers.HeUniform(seed=seed * 100 + offset)

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = augmenter(inputs) if augmenter is not None else inputs
    for block, filters in enumerate((16, 32), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                kernel_initializer=he(block), name=f"conv_{block}")(x)
        x = keras.layers.MaxPooling2D(name=f"pool_{block}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", kernel_initializer=he(9),
                                 name="output")(x)
    return keras.Model(inputs, outputs, name=name)


@dataclass(frozen=True)
class AugmentationResults:
    """Per setting: test and training accuracies (one per seed), confusion matrices summed over
    the seeds (rows: true class, columns: predicted)."""

    accuracies: dict[str, list[float]]
    train_accuracies: dict[str, list[float]]
    confusion: dict[str, np.ndarray]

    def mean(self, setting: str) -> float:
        """Mean test accuracy of one setting over the seeds."""
        return float(np.mean(self.accuracies[setting]))

    def train_mean(self, setting: str) -> float:
        """Mean accuracy on the (un-augmented) training images over the seeds."""
        return float(np.mean(self.train_accuracies[setting]))

    def class_accuracy(self, setting: str) -> np.ndarray:
        """Test accuracy of each true class, over all seeds."""
        matrix = self.confusion[setting]
        return np.diag(matrix) / matrix.sum(axis=1).clip(min=1)


def _check_setting(name, setting):
    if setting is None or isinstance(setting, Mapping) or callable(setting):
        return
    raise ValueError(f"setting {name!r} must be None, a dict of build_augmenter arguments, or a "
                     f"function of the seed that returns a layer for {{'images', 'labels'}} "
                     f"batches; got {type(setting).__name__}")


def compare_augmentations(
    images: np.ndarray,
    labels: np.ndarray,
    settings: Mapping[str, object],
    *,
    seeds: Sequence[int],
    train_size: int = 200,
    epochs: int = 30,
    batch_size: int = 20,
    learning_rate: float = 3e-3,
) -> AugmentationResults:
    """Train :func:`build_small_cnn` once per setting and seed; return the accuracies.

    ``settings`` maps a name to one of

    - ``None``: no augmentation;
    - a dict of :func:`build_augmenter` arguments, e.g. ``{"translation": 0.1}``: the augmenter
      becomes the model's first layer;
    - a function ``make(seed)`` returning a Keras layer that transforms whole batches given as
      ``{"images": x, "labels": y}`` (labels one-hot), such as ``keras.layers.MixUp`` or
      :class:`LabelSwappingRotation`: it is mapped over the ``tf.data`` training batches, where
      it can change the labels too.

    Each seed draws its own stratified training set of ``train_size`` images (the rest is the
    test set), its own initial weights and its own batch order; within a seed every setting gets
    the same three, so the settings differ only in their augmentation. Training is ``epochs``
    passes of Adam over the training set with categorical cross-entropy, in one ``fit`` call.
    Training accuracy is measured on the training images as they are, without augmentation.
    Taught in chapter 8.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 4:
        raise ValueError(f"images must be (n, height, width, channels), got shape {images.shape}")
    if len(images) != len(labels):
        raise ValueError(f"images and labels differ in number: {len(images)} vs {len(labels)}")
    if not isinstance(settings, Mapping) or not settings:
        raise ValueError(f"settings must be a non-empty dict of name -> setting, got {settings!r}")
    for name, setting in settings.items():
        _check_setting(name, setting)
    num_classes = int(labels.max()) + 1
    train_size = _check_int("train_size", train_size, num_classes)
    if train_size > len(images) - num_classes:
        raise ValueError(f"train_size must leave at least one test image per class: got "
                         f"{train_size} of {len(images)} images")
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise ValueError(f"seeds must be a non-empty sequence of ints, got {seeds!r}")
    seeds = [_check_int("each seed", s, 0) for s in seeds]
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, Real) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")

    accuracies: dict[str, list[float]] = {name: [] for name in settings}
    train_accuracies: dict[str, list[float]] = {name: [] for name in settings}
    confusion = {name: np.zeros((num_classes, num_classes), dtype=np.int64) for name in settings}
    for seed in seeds:
        x_train, x_test, y_train, y_test = train_test_split(
            images, labels, train_size=train_size, stratify=labels, random_state=seed)
        one_hot = np.eye(num_classes, dtype="float32")[y_train]
        for name, setting in settings.items():
            keras.utils.set_random_seed(seed)
            augmenter = build_augmenter(**setting, seed=seed) if isinstance(setting, Mapping) \
                else None
            model = build_small_cnn(images.shape[1:], num_classes, augmenter, seed=seed)
            model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                          loss="categorical_crossentropy")
            batches = (tf.data.Dataset.from_tensor_slices((x_train, one_hot))
                       .shuffle(len(x_train), seed=seed).batch(batch_size).repeat(epochs))
            if callable(setting) and not isinstance(setting, Mapping):
                batch_layer = setting(seed)
                batches = batches.map(lambda x, y, layer=batch_layer: _as_pair(
                    layer({"images": x, "labels": y}, training=True)))
            model.fit(batches, epochs=1, shuffle=False, verbose=0)
            predicted = np.argmax(model(x_test, training=False), axis=-1)
            accuracies[name].append(float(np.mean(predicted == y_test)))
            on_train = np.argmax(model(x_train, training=False), axis=-1)
            train_accuracies[name].append(float(np.mean(on_train == y_train)))
            np.add.at(confusion[name], (y_test, predicted), 1)
    return AugmentationResults(accuracies, train_accuracies, confusion)


def _as_pair(batch):
    if not isinstance(batch, Mapping) or not {"images", "labels"} <= set(batch):
        raise ValueError("a batch augmentation must return {'images': ..., 'labels': ...}, got "
                         f"{type(batch).__name__}")
    return batch["images"], batch["labels"]


@dataclass(frozen=True)
class Throughput:
    """How many examples a pass over a dataset delivered, and in how many seconds."""

    examples: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else math.inf


def _batch_size(element) -> int:
    first = tf.nest.flatten(element)[0]
    if first.shape.rank == 0:
        raise ValueError("batched=True, but the dataset's elements are scalars with no batch "
                         "dimension; pass batched=False to count elements")
    return int(first.shape[0])


def measure_throughput(dataset: tf.data.Dataset, epochs: int = 1, batched: bool = True,
                       step: Callable[[object], object] | None = None) -> Throughput:
    """Iterate over ``dataset`` ``epochs`` times and time it; return examples and seconds.

    With ``batched=True`` every element counts as many examples as the leading dimension of its
    first tensor; otherwise each element counts as one. ``step`` (optional) is called on every
    element, standing in for the training step that consumes the data. Taught in chapter 8.
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(f"dataset must be a tf.data.Dataset, got {type(dataset).__name__}")
    epochs = _check_int("epochs", epochs, 1)
    if not isinstance(batched, bool):
        raise ValueError(f"batched must be True or False, got {batched!r}")
    if step is not None and not callable(step):
        raise ValueError(f"step must be callable or None, got {type(step).__name__}")
    examples = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for element in dataset:
            examples += _batch_size(element) if batched else 1
            if step is not None:
                step(element)
    return Throughput(examples, time.perf_counter() - start)
