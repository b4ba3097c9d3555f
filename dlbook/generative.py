"""The judge of generated digits, and the honest baselines every generative chapter compares with.

A generative model's samples are judged, offline, by a small digit classifier trained in the
notebook on real digits (:func:`train_judge`), not by eye and not by metrics that need downloaded
ImageNet weights (FID and KID use InceptionV3). From the judge, four numbers for a batch of samples
(:meth:`Judge.score`, or each on its own):

- **confidence** — the mean over samples of the judge's largest class probability. A recognisable
  digit gets a confident answer; a smudge between a 3 and an 8 does not.
- **coverage** — the share of samples the judge assigns to each class, and how many classes get at
  least ``min_share`` of them. A model that makes only 1s can be confident and still fail.
- **Fréchet distance** on the judge's penultimate features, between the samples and held-out real
  digits (:func:`frechet_distance`): the distance between two Gaussians fitted to the two sets of
  features. It is zero only if the features' means and covariances agree, so it sees a lack of
  variety that confidence cannot.
- **memorisation ratio** (:func:`memorisation_ratio`) — the median pixel distance from each sample
  to its nearest training image, divided by the same median for held-out real digits. Copies of
  training images score 0; new digits as close to the training set as real unseen digits are
  score about 1.

The baselines a sceptic asks for: samples from a Gaussian fitted to the training pixels
(:func:`gaussian_samples`), the nearest training image of each sample, i.e. what a perfect copier
would have produced (:func:`nearest_training_images`), and a decoder fed random codes
(:func:`decode_noise`). :func:`scores_table` prints them side by side.

Taught in chapter 13 (the baselines) and chapter 14 (the judge); used in chapters 14–16.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import keras
import numpy as np
import tensorflow as tf

from dlbook.checks import check_int as _check_int

_NEIGHBOUR_CHUNK = 1024  # query rows per block in nearest-neighbour searches (bounds memory)


# --- argument checks ---------------------------------------------------------------------------

def _check_fraction(argument: str, value, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not low < value < high:
        raise ValueError(f"{argument} must be a number strictly between {low:g} and {high:g}, "
                         f"got {value!r}")
    return float(value)


def _as_rows(argument: str, images, size: int | None = None) -> np.ndarray:
    """Images ``(n, h, w)``, ``(n, h, w, 1)`` or already flat ``(n, h*w)`` as float32 rows."""
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or len(array) == 0:
        raise ValueError(f"{argument} must be a non-empty batch of images (n, h, w), (n, h, w, 1) "
                         f"or flat (n, pixels), got shape {np.shape(images)}")
    rows = array.reshape(len(array), -1)
    if size is not None and rows.shape[1] != size:
        raise ValueError(f"{argument} must have {size} pixels per image (the judge's image size), "
                         f"got shape {np.shape(images)} = {rows.shape[1]} pixels")
    if not np.all(np.isfinite(rows)):
        raise ValueError(f"{argument} contains NaN or infinite pixel values")
    return rows


def _as_features(argument: str, features) -> np.ndarray:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2 or len(array) < 2:
        raise ValueError(f"{argument} must be a 2-D array (samples, features) with at least 2 rows, "
                         f"got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{argument} contains NaN or infinite values")
    return array


# --- the statistics, independent of any model --------------------------------------------------

def frechet_distance(features_a, features_b) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of feature vectors (rows).

    For means :math:`\\mu_a, \\mu_b` and covariances :math:`\\Sigma_a, \\Sigma_b`,

    .. math:: d^2 = \\lVert \\mu_a - \\mu_b \\rVert^2
              + \\operatorname{tr}\\big(\\Sigma_a + \\Sigma_b - 2 (\\Sigma_a \\Sigma_b)^{1/2}\\big),

    the squared 2-Wasserstein distance between the two Gaussians (the quantity FID reports, on
    other features). The matrix square root is computed as
    :math:`\\operatorname{tr}(\\Sigma_a^{1/2} \\Sigma_b \\Sigma_a^{1/2})^{1/2}`, a symmetric matrix,
    by eigendecomposition, so it is real and stable. Estimates from few rows are biased upwards;
    compare sets of the same size. Taught in chapter 14.
    """
    a = _as_features("features_a", features_a)
    b = _as_features("features_b", features_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_a and features_b must have the same number of features, "
                         f"got {a.shape[1]} and {b.shape[1]}")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _psd_sqrt(cov_a)
    cross = _psd_sqrt(root_a @ cov_b @ root_a)
    distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(cross)
    return float(max(distance, 0.0))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    symmetric = (matrix + matrix.T) / 2
    values, vectors = np.linalg.eigh(symmetric)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def nearest_neighbour_indices(queries, references) -> np.ndarray:
    """For each query row, the index of its nearest reference row (Euclidean, pixels).

    Images may be ``(n, h, w)`` or flat. Computed in blocks, so 5,000 × 5,000 comparisons stay
    small in memory. Taught in chapter 14.
    """
    q = _as_rows("queries", queries).astype(np.float64)
    r = _as_rows("references", references, q.shape[1]).astype(np.float64)
    r_norms = np.sum(r**2, axis=1)
    indices = np.empty(len(q), dtype=np.int64)
    for start in range(0, len(q), _NEIGHBOUR_CHUNK):
        block = q[start:start + _NEIGHBOUR_CHUNK]
        indices[start:start + len(block)] = np.argmin(r_norms[None, :] - 2 * block @ r.T, axis=1)
    return indices


def nearest_neighbour_distances(queries, references) -> np.ndarray:
    """For each query row, the Euclidean distance to its nearest reference row (pixels).

    The distance to the neighbour found is computed directly, so an exact copy scores exactly 0.
    Taught in chapter 14.
    """
    q = _as_rows("queries", queries).astype(np.float64)
    r = _as_rows("references", references, q.shape[1]).astype(np.float64)
    return np.linalg.norm(q - r[nearest_neighbour_indices(q, r)], axis=1)


def memorisation_ratio(samples, training_images, held_out_images) -> float:
    """Median nearest-training-image distance of ``samples`` over that of real held-out digits.

    ``0`` means the samples are copies of training images. About ``1`` means they are as far from
    the training set as real digits the model never saw — new digits, not copies. Far above 1 means
    they are far from every training image (blurry or not digit-like); the judge's other numbers
    tell those apart. The held-out digits must not be in ``training_images``. Taught in chapter 14.
    """
    train = _as_rows("training_images", training_images)
    to_samples = nearest_neighbour_distances(_as_rows("samples", samples, train.shape[1]), train)
    to_real = nearest_neighbour_distances(
        _as_rows("held_out_images", held_out_images, train.shape[1]), train)
    reference = float(np.median(to_real))
    if reference == 0.0:
        raise ValueError("the held-out images have median distance 0 to the training images: "
                         "they are (mostly) copies of training images, not held out")
    return float(np.median(to_samples)) / reference


def class_shares(predicted_classes, num_classes: int = 10) -> np.ndarray:
    """The share of samples in each class, ``(num_classes,)``, summing to 1."""
    num_classes = _check_int("num_classes", num_classes, 2)
    classes = np.asarray(predicted_classes)
    if classes.ndim != 1 or len(classes) == 0 or not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(f"predicted_classes must be a non-empty 1-D array of ints, "
                         f"got shape {classes.shape} and dtype {classes.dtype}")
    if classes.min() < 0 or classes.max() >= num_classes:
        raise ValueError(f"predicted_classes must be in 0..{num_classes - 1}, "
                         f"got values from {classes.min()} to {classes.max()}")
    return np.bincount(classes, minlength=num_classes) / len(classes)


# --- the judge ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scores:
    """The judge's numbers for one batch of images (see :meth:`Judge.score`)."""

    confidence: float
    shares: np.ndarray
    classes_covered: int
    frechet: float
    memorisation: float
    min_share: float

    def row(self) -> str:
        """One table row: confidence, classes covered, Fréchet distance, memorisation ratio."""
        covered = f"{self.classes_covered}/{len(self.shares)}"
        return (f"{self.confidence:10.3f} {covered:>7} {self.frechet:9.1f} "
                f"{self.memorisation:9.2f}")


@dataclass(frozen=True)
class Judge:
    """A digit classifier trained on real digits, and the data it measures samples against.

    ``network`` maps flat images ``(n, pixels)`` to ``(probabilities, features)``; ``features`` are
    its penultimate layer. ``training_images`` (flat) is the training set the memorisation check
    compares with; ``held_out_images`` / ``held_out_labels`` are real digits it was not trained on,
    the reference for the Fréchet distance and for the memorisation ratio. ``accuracy`` is its
    accuracy on them: check it before trusting the judge. Made by :func:`train_judge`.
    """

    network: keras.Model
    image_shape: tuple[int, ...]
    training_images: np.ndarray
    held_out_images: np.ndarray
    held_out_labels: np.ndarray
    accuracy: float
    num_classes: int

    @property
    def pixels(self) -> int:
        return int(np.prod(self.image_shape))

    def predict(self, images) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities (n, classes), features (n, d))`` for a batch of images, one pass."""
        rows = _as_rows("images", images, self.pixels)
        probabilities, features = _forward(self.network, rows)
        return probabilities, features

    def probabilities(self, images) -> np.ndarray:
        return self.predict(images)[0]

    def features(self, images) -> np.ndarray:
        return self.predict(images)[1]

    def confidence(self, images) -> float:
        """Mean over images of the largest class probability (1/classes … 1)."""
        return float(np.mean(np.max(self.probabilities(images), axis=1)))

    def shares(self, images) -> np.ndarray:
        """Share of the images the judge assigns to each class."""
        return class_shares(np.argmax(self.probabilities(images), axis=1), self.num_classes)

    def frechet(self, images, reference=None) -> float:
        """Fréchet distance of the images' judge features to those of ``reference`` images
        (default: the held-out real digits)."""
        reference = self.held_out_images if reference is None else reference
        return frechet_distance(self.features(images), self.features(reference))

    def memorisation(self, images) -> float:
        """:func:`memorisation_ratio` against the judge's training and held-out images."""
        return memorisation_ratio(images, self.training_images, self.held_out_images)

    def score(self, images, min_share: float = 0.03) -> Scores:
        """All four numbers for a batch of images; a class is covered if it gets ≥ ``min_share``."""
        min_share = _check_fraction("min_share", min_share)
        rows = _as_rows("images", images, self.pixels)
        probabilities, features = _forward(self.network, rows)
        shares = class_shares(np.argmax(probabilities, axis=1), self.num_classes)
        _, reference = _forward(self.network, self.held_out_images)
        return Scores(
            confidence=float(np.mean(np.max(probabilities, axis=1))),
            shares=shares,
            classes_covered=int(np.sum(shares >= min_share)),
            frechet=frechet_distance(features, reference),
            memorisation=memorisation_ratio(rows, self.training_images, self.held_out_images),
            min_share=min_share,
        )


def _forward(network: keras.Model, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probabilities, features = network.predict(rows, batch_size=1024, verbose=0)
    return np.asarray(probabilities, dtype=np.float64), np.asarray(features, dtype=np.float64)


def build_judge_network(pixels: int, num_classes: int = 10, hidden: Sequence[int] = (256, 64),
                        dropout: float = 0.2, seed: int = 0) -> keras.Model:
    """The judge's network: flat pixels → dense ReLU layers → softmax, with two outputs.

    Outputs ``(probabilities, features)``; ``features`` is the last hidden layer (after ReLU), the
    space the Fréchet distance is measured in. Dropout before the output layer. Initialised from
    ``seed``. Taught in chapter 14.
    """
    pixels = _check_int("pixels", pixels, 1)
    num_classes = _check_int("num_classes", num_classes, 2)
    seed = _check_int("seed", seed, 0)
    if (isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not hidden
            or not all(isinstance(h, Integral) and not isinstance(h, bool) and h > 0 for h in hidden)):
        raise ValueError(f"hidden must be a non-empty sequence of positive ints, got {hidden!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, Real) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    inputs = keras.Input(shape=(pixels,), name="pixels")
    x = inputs
    for i, width in enumerate(hidden, start=1):
        x = keras.layers.Dense(int(width), activation="relu", name=f"hidden_{i}",
                               kernel_initializer=keras.initializers.HeUniform(seed=seed + i))(x)
    features = x
    if dropout:
        x = keras.layers.Dropout(dropout, seed=seed, name="dropout")(x)
    probabilities = keras.layers.Dense(
        num_classes, activation="softmax", name="probabilities",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + len(hidden) + 1))(x)
    return keras.Model(inputs, [probabilities, features], name="judge")


def train_judge(images, labels, seed: int, *, held_out=None, held_out_fraction: float = 0.25,
                epochs: int = 20, batch_size: int = 64, hidden: Sequence[int] = (256, 64),
                learning_rate: float = 1e-3) -> Judge:
    """Train a digit classifier on real digits: the judge of generated samples.

    ``images`` ``(n, h, w)`` in [0, 1] and integer ``labels`` are the real training digits — train
    the judge on the same digits the generative model learns from, so that its memorisation check
    compares samples with the model's training set. ``held_out`` is ``(images, labels)`` of real
    digits kept out of training (the chapter's test digits); without it, a stratified
    ``held_out_fraction`` of ``images`` is split off. The held-out digits measure the judge's
    accuracy and are the reference for the Fréchet distance and the memorisation ratio.

    Seconds on a CPU: 20 epochs of Adam on an MLP (:func:`build_judge_network`), batches shuffled
    with ``seed``. Taught in chapter 14.
    """
    seed = _check_int("seed", seed, 0)
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, Real) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
    images = np.asarray(images, dtype=np.float32)
    rows = _as_rows("images", images)
    labels = _check_labels("labels", labels, len(rows))
    if held_out is None:
        from sklearn.model_selection import train_test_split

        fraction = _check_fraction("held_out_fraction", held_out_fraction)
        rows, test_rows, labels, test_labels = train_test_split(
            rows, labels, test_size=fraction, stratify=labels, random_state=seed)
    else:
        if not isinstance(held_out, Sequence) or len(held_out) != 2:
            raise ValueError("held_out must be a pair (images, labels) of real digits not in images")
        test_rows = _as_rows("held_out images", held_out[0], rows.shape[1])
        test_labels = _check_labels("held_out labels", held_out[1], len(test_rows))
    num_classes = int(max(labels.max(), test_labels.max())) + 1
    if num_classes < 2:
        raise ValueError("labels must contain at least two classes")

    network = build_judge_network(rows.shape[1], num_classes, hidden, seed=seed)
    classifier = keras.Model(network.input, network.outputs[0])
    classifier.compile(optimizer=keras.optimizers.Adam(learning_rate),
                       loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    batches = (tf.data.Dataset.from_tensor_slices((rows, labels))
               .shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
               .batch(batch_size))
    classifier.fit(batches, epochs=epochs, shuffle=False, verbose=0)  # shuffled above, seeded
    probabilities, _ = _forward(network, test_rows)
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == test_labels))
    image_shape = images.shape[1:] if images.ndim >= 3 else (rows.shape[1],)
    if len(image_shape) == 3 and image_shape[-1] == 1:
        image_shape = image_shape[:2]
    return Judge(network=network, image_shape=tuple(int(s) for s in image_shape),
                 training_images=rows, held_out_images=test_rows, held_out_labels=test_labels,
                 accuracy=accuracy, num_classes=num_classes)


def _check_labels(argument: str, labels, n: int) -> np.ndarray:
    array = np.asarray(labels)
    if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{argument} must be {n} integer class labels (one per image), "
                         f"got shape {array.shape} and dtype {array.dtype}")
    if array.min() < 0:
        raise ValueError(f"{argument} must be non-negative class indices, got {array.min()}")
    return array.astype(np.int64)


# --- baselines ---------------------------------------------------------------------------------

def gaussian_samples(images, n: int, seed: int) -> np.ndarray:
    """``n`` images drawn from a Gaussian fitted to ``images`` (full covariance), clipped to [0, 1].

    The simplest generative model of pixels: it knows each pixel's mean and every pair's
    covariance, nothing more. Returned in the shape of ``images`` (``(n, h, w)`` for
    ``(m, h, w)`` input). A generative model that does not beat it has learned no more than
    second-order statistics. Taught in chapter 13.
    """
    n = _check_int("n", n, 1)
    seed = _check_int("seed", seed, 0)
    array = np.asarray(images, dtype=np.float32)
    rows = _as_rows("images", array).astype(np.float64)
    if len(rows) < 2:
        raise ValueError("images must hold at least 2 images to fit a covariance")
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(rows.mean(axis=0), np.cov(rows, rowvar=False), size=n,
                                    method="eigh")
    return np.clip(draws, 0.0, 1.0).astype(np.float32).reshape((n, *array.shape[1:]))


def nearest_training_images(samples, training_images) -> np.ndarray:
    """For each sample, its nearest training image (Euclidean, pixels): the memorisation extreme.

    A model that only copied its training set, with the same mix of digits as ``samples``, would
    have produced exactly these. They score the best confidence and Fréchet distance that copying
    can give, and a memorisation ratio of 0. Shape of ``training_images``' images. Taught in
    chapter 14.
    """
    train = np.asarray(training_images, dtype=np.float32)
    train_rows = _as_rows("training_images", train)
    indices = nearest_neighbour_indices(_as_rows("samples", samples, train_rows.shape[1]),
                                        train_rows)
    return train[indices]


def decode_noise(decoder: Callable, n: int, latent_dim: int, seed: int,
                 scale: float = 1.0) -> np.ndarray:
    """Decode ``n`` codes drawn from N(0, scale² I): how a decoder does as a generator.

    ``decoder`` maps codes ``(n, latent_dim)`` to images (a Keras model or any callable). For a
    plain autoencoder, whose codes were never asked to look like N(0, I), this is the baseline a
    VAE must beat. Taught in chapter 13.
    """
    if not callable(decoder):
        raise ValueError(f"decoder must be callable (a Keras model), got {type(decoder).__name__}")
    n = _check_int("n", n, 1)
    latent_dim = _check_int("latent_dim", latent_dim, 1)
    seed = _check_int("seed", seed, 0)
    if isinstance(scale, bool) or not isinstance(scale, Real) or scale <= 0:
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    codes = np.random.default_rng(seed).normal(0.0, scale, size=(n, latent_dim)).astype(np.float32)
    if isinstance(decoder, keras.Model):
        return np.asarray(decoder.predict(codes, batch_size=1024, verbose=0))
    return np.asarray(decoder(codes))


def scores_table(scores: Mapping[str, Scores]) -> str:
    """The judge's numbers for several sets of images, one row each, as printable text."""
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError("scores must be a non-empty mapping of name -> Scores")
    bad = [name for name, value in scores.items() if not isinstance(value, Scores)]
    if bad:
        raise ValueError(f"every value must be a Scores (from Judge.score); not: {bad}")
    width = max(len(name) for name in scores)
    share = next(iter(scores.values())).min_share
    header = (f"{'':{width}} {'confidence':>10} {'classes':>7} {'Fréchet':>9} {'NN-dist.':>9}\n"
              f"{'':{width}} {'mean max p':>10} {f'≥ {share:.0%}':>7} {'distance':>9} "
              f"{'ratio':>9}")
    return "\n".join([header] + [f"{name:{width}} {value.row()}" for name, value in scores.items()])
