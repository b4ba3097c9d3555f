"""Autoencoders: encoder, decoder, bottleneck; PCA as the yardstick; denoising; anomaly scores.

- :func:`build_coder` makes an encoder or a decoder (a stack of dense layers), and
  :class:`Autoencoder` joins them into a ``keras.Model`` with its own ``train_step``: the
  reconstruction loss is computed inside it, and a denoising autoencoder corrupts each batch with
  Gaussian noise drawn from a ``keras.random.SeedGenerator`` the model owns.
  :func:`shuffled_batches` feeds ``fit`` in an order fixed by a seed.
- The yardsticks: :func:`pca_reconstruct` (the best *linear* code of a given size),
  :func:`principal_angles` (how far two subspaces are apart), :func:`gaussian_blur` and
  :func:`psnr` for denoising, :func:`reconstruction_errors` and :func:`quantile_threshold` for
  anomaly detection.
- :class:`LeaveOneClassOut` trains one autoencoder per class, each on every class but its own,
  as one model with one compiled training step.

Taught in chapter 13; :func:`shuffled_batches` and :func:`build_coder` are used again in chapter 14.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral, Real

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from dlbook.checks import check_int as _check_int
from dlbook.recurrent import StepTimer  # noqa: F401 (chapters 13-16 import it from here)

LOSSES = ("mse", "bce")

# fit(dataset) warns that its own shuffle=True is ignored for a tf.data.Dataset; the datasets of
# shuffled_batches and labelled_batches are shuffled already, with a seed, so the warning is noise.
warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed, but will be ignored")


def _check_number(argument: str, value, minimum: float = 0.0, inclusive: bool = True) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool) and (
        value >= minimum if inclusive else value > minimum)
    if not ok:
        relation = "at least" if inclusive else "greater than"
        raise ValueError(f"{argument} must be a number {relation} {minimum:g}, got {value!r}")
    return float(value)


def _flat(argument: str, x) -> np.ndarray:
    array = np.asarray(x, dtype=np.float32)
    if array.ndim < 2 or len(array) == 0:
        raise ValueError(f"{argument} must be a non-empty batch (n, features) or (n, h, w), "
                         f"got shape {array.shape}")
    return array.reshape(len(array), -1)


# --- models --------------------------------------------------------------------------------------

def build_coder(input_dim: int, output_dim: int, hidden: Sequence[int] = (), activation: str = "relu",
                output_activation: str | None = None, seed: int = 0, name: str = "coder") -> keras.Model:
    """A stack of dense layers, ``input_dim → hidden… → output_dim``: an encoder or a decoder.

    Hidden layers use ``activation``; the last layer uses ``output_activation`` (``None`` for a
    linear code or a linear reconstruction, ``"sigmoid"`` for pixels in [0, 1]). With
    ``hidden=()`` and no output activation it is one linear map, the linear autoencoder's half.
    Layers are named ``{name}_1``, ``{name}_2``, … and ``{name}_out``; weights start from
    ``seed``. Taught in chapter 13.
    """
    input_dim = _check_int("input_dim", input_dim, 1)
    output_dim = _check_int("output_dim", output_dim, 1)
    seed = _check_int("seed", seed, 0)
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not all(
            isinstance(h, Integral) and not isinstance(h, bool) and h > 0 for h in hidden):
        raise ValueError(f"hidden must be a sequence of positive ints (may be empty), got {hidden!r}")
    inputs = keras.Input(shape=(input_dim,), name=f"{name}_input")
    x = inputs
    for i, width in enumerate(hidden, start=1):
        x = keras.layers.Dense(int(width), activation=activation, name=f"{name}_{i}",
                               kernel_initializer=keras.initializers.HeUniform(seed=seed + i))(x)
    outputs = keras.layers.Dense(
        output_dim, activation=output_activation, name=f"{name}_out",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + len(hidden) + 1))(x)
    return keras.Model(inputs, outputs, name=name)


@keras.saving.register_keras_serializable(package="dlbook")
class Autoencoder(keras.Model):
    """``decoder(encoder(x))``, trained to give back its input; optionally a denoising one.

    ``encoder`` maps ``(batch, features)`` to codes, ``decoder`` maps codes back. The training
    step computes the reconstruction loss itself: ``"mse"`` (mean squared error per feature) or
    ``"bce"`` (binary cross-entropy per pixel, for a sigmoid decoder and pixels in [0, 1]). With
    ``noise_std > 0`` each training batch is corrupted with Gaussian noise of that standard
    deviation before it is encoded, and the loss compares the reconstruction with the *clean*
    batch: a denoising autoencoder. The noise comes from a ``keras.random.SeedGenerator(seed)``
    owned by the model, so training is reproducible. ``fit(x)`` takes the inputs alone. Taught in
    chapter 13.
    """

    def __init__(self, encoder: keras.Model, decoder: keras.Model, loss: str = "mse",
                 noise_std: float = 0.0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(encoder, keras.Model) or not isinstance(decoder, keras.Model):
            raise ValueError("encoder and decoder must be keras.Model instances (see build_coder)")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.encoder, self.decoder = encoder, decoder
        self.reconstruction = loss
        self.noise_std = _check_number("noise_std", noise_std)
        self.seed_generator = keras.random.SeedGenerator(_check_int("seed", seed, 0))
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training), training=training)

    def errors(self, x, reconstruction):
        """Per-example reconstruction loss, averaged over features, ``(batch,)``."""
        if self.reconstruction == "bce":
            return ops.mean(keras.losses.binary_crossentropy(x[..., None], reconstruction[..., None]),
                            axis=-1)
        return ops.mean(ops.square(x - reconstruction), axis=-1)

    def corrupt(self, x):
        noise = keras.random.normal(ops.shape(x), stddev=self.noise_std, seed=self.seed_generator)
        return x + noise

    def train_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        inputs = self.corrupt(x) if self.noise_std > 0 else x
        with tf.GradientTape() as tape:
            loss = ops.mean(self.errors(x, self(inputs, training=True)))
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(gradients, self.trainable_weights)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        inputs = self.corrupt(x) if self.noise_std > 0 else x
        self.loss_tracker.update_state(ops.mean(self.errors(x, self(inputs, training=False))))
        return {"loss": self.loss_tracker.result()}


def shuffled_batches(x, batch_size: int, seed: int) -> tf.data.Dataset:
    """``x`` as a ``tf.data.Dataset`` of batches, reshuffled every epoch in an order fixed by
    ``seed`` (``fit`` on arrays shuffles with TensorFlow's global seed instead). Taught in
    chapter 13.
    """
    array = np.asarray(x, dtype=np.float32)
    if array.ndim < 2 or len(array) == 0:
        raise ValueError(f"x must be a non-empty batch of examples, got shape {array.shape}")
    batch_size = _check_int("batch_size", batch_size, 1)
    seed = _check_int("seed", seed, 0)
    return (tf.data.Dataset.from_tensor_slices(array)
            .shuffle(len(array), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size))


# --- yardsticks ----------------------------------------------------------------------------------

def reconstruction_errors(model, x, batch_size: int = 1024) -> np.ndarray:
    """Mean squared reconstruction error of each example, ``(n,)`` — an anomaly score.

    ``model`` maps a batch to its reconstruction (an :class:`Autoencoder`, or any Keras model).
    Taught in chapter 13.
    """
    rows = _flat("x", x)
    reconstructed = np.asarray(model.predict(rows, batch_size=batch_size, verbose=0)).reshape(rows.shape)
    return np.mean((rows - reconstructed) ** 2, axis=1)


def pca_reconstruct(pca, x) -> np.ndarray:
    """Project ``x`` on a fitted scikit-learn ``PCA``'s subspace and map back: the best linear
    reconstruction with that many components (in squared error, on the data PCA was fitted to).
    Same shape as ``x``. Taught in chapter 13."""
    rows = _flat("x", x)
    if not hasattr(pca, "components_"):
        raise ValueError("pca must be a fitted sklearn.decomposition.PCA")
    return pca.inverse_transform(pca.transform(rows)).reshape(np.shape(x)).astype(np.float32)


def principal_angles(basis_a, basis_b) -> np.ndarray:
    """The principal angles, in degrees and ascending, between the row spaces of two matrices.

    ``basis_a`` is ``(k, d)``: ``k`` vectors spanning a subspace of R^d (they need not be
    orthonormal: a decoder's weight matrix, PCA's components). 0° everywhere means the subspaces
    are the same; the largest angle is how far apart they are at worst. Taught in chapter 13.
    """
    a, b = np.asarray(basis_a, dtype=np.float64), np.asarray(basis_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"bases must be (k, d) matrices with the same d, got {a.shape} and {b.shape}")
    q_a, q_b = np.linalg.qr(a.T)[0], np.linalg.qr(b.T)[0]
    cosines = np.linalg.svd(q_a.T @ q_b, compute_uv=False)
    return np.sort(np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0))))


def gaussian_blur(images, sigma: float) -> np.ndarray:
    """Each image ``(n, h, w)`` smoothed by a Gaussian of ``sigma`` pixels (zero padding outside
    the image): the classical denoiser a denoising autoencoder must beat. Taught in chapter 13."""
    from scipy.ndimage import gaussian_filter

    array = np.asarray(images, dtype=np.float32)
    if array.ndim != 3:
        raise ValueError(f"images must be (n, h, w), got shape {array.shape}")
    sigma = _check_number("sigma", sigma)
    if sigma == 0:
        return array.copy()
    return gaussian_filter(array, sigma=(0, sigma, sigma), mode="constant").astype(np.float32)


def psnr(clean, estimate, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(peak² / MSE)``, over a whole batch.

    Higher is better; +3 dB halves the mean squared error. Taught in chapter 13.
    """
    a, b = np.asarray(clean, dtype=np.float64), np.asarray(estimate, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"clean and estimate must have the same shape, got {a.shape} and {b.shape}")
    peak = _check_number("peak", peak, 0.0, inclusive=False)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(peak**2 / mse))


def quantile_threshold(validation_scores, false_alarm_rate: float) -> float:
    """The anomaly threshold that flags ``false_alarm_rate`` of *normal* validation examples.

    Chosen on validation data that holds normal examples only, never on the test set: the
    ``1 - false_alarm_rate`` quantile of their scores. Taught in chapter 13.
    """
    scores = np.asarray(validation_scores, dtype=np.float64)
    if scores.ndim != 1 or len(scores) < 2:
        raise ValueError(f"validation_scores must be a 1-D array of at least 2 scores, got shape "
                         f"{scores.shape}")
    if isinstance(false_alarm_rate, bool) or not isinstance(false_alarm_rate, Real) or not (
            0 < false_alarm_rate < 1):
        raise ValueError(f"false_alarm_rate must be a number strictly between 0 and 1, "
                         f"got {false_alarm_rate!r}")
    return float(np.quantile(scores, 1 - false_alarm_rate))


# --- one autoencoder per left-out class, trained together ---------------------------------------

@keras.saving.register_keras_serializable(package="dlbook")
class LeaveOneClassOut(keras.Model):
    """``num_classes`` dense autoencoders in one model; member ``c`` never sees class ``c``.

    Each member is ``input_dim → hidden… → code_dim → …hidden → input_dim`` (ReLU inside, sigmoid
    output). Their weights are stacked along a first axis of size ``num_classes``, so one
    ``einsum`` per layer runs all members at once and one compiled ``train_step`` trains them all:
    for member ``c`` the batch's examples of class ``c`` get weight 0 in its mean squared error.
    ``fit((x, y))`` takes images and labels; :meth:`errors` gives every member's reconstruction
    error of every example. Used to score a class none of the members it was hidden from has seen
    (anomaly detection). Taught in chapter 13.
    """

    def __init__(self, input_dim: int, code_dim: int, hidden: Sequence[int] = (32,),
                 num_classes: int = 10, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = _check_int("input_dim", input_dim, 1)
        self.code_dim = _check_int("code_dim", code_dim, 1)
        self.num_classes = _check_int("num_classes", num_classes, 2)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not all(
                isinstance(h, Integral) and not isinstance(h, bool) and h > 0 for h in hidden):
            raise ValueError(f"hidden must be a sequence of positive ints, got {hidden!r}")
        seed = _check_int("seed", seed, 0)
        widths = [self.input_dim, *hidden, self.code_dim, *reversed(hidden), self.input_dim]
        self.kernels, self.biases = [], []
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            limit = float(np.sqrt(6.0 / fan_in))  # He-uniform, per member
            self.kernels.append(self.add_weight(
                shape=(self.num_classes, fan_in, fan_out), name=f"kernel_{i}",
                initializer=keras.initializers.RandomUniform(-limit, limit, seed=seed + i)))
            self.biases.append(self.add_weight(shape=(self.num_classes, 1, fan_out),
                                               name=f"bias_{i}", initializer="zeros"))
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, x):
        """Every member's reconstruction of ``x``: ``(num_classes, batch, input_dim)``."""
        h = ops.einsum("bi,mio->mbo", x, self.kernels[0]) + self.biases[0]
        for kernel, bias in zip(self.kernels[1:], self.biases[1:], strict=True):
            h = ops.einsum("mbi,mio->mbo", ops.relu(h), kernel) + bias
        return ops.sigmoid(h)

    def _member_errors(self, x):
        return ops.mean(ops.square(self(x) - x[None]), axis=-1)  # (members, batch)

    def train_step(self, data):
        x, y = data
        members = ops.arange(self.num_classes, dtype=y.dtype)
        seen = ops.cast(ops.not_equal(y[None, :], members[:, None]), x.dtype)  # (members, batch)
        with tf.GradientTape() as tape:
            errors = self._member_errors(x)
            per_member = ops.sum(seen * errors, axis=1) / ops.maximum(ops.sum(seen, axis=1), 1.0)
            loss = ops.sum(per_member)  # members share no weights: each gets its own gradient
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(gradients, self.trainable_weights)
        self.loss_tracker.update_state(loss / self.num_classes)
        return {"loss": self.loss_tracker.result()}

    def errors(self, x, batch_size: int = 1024) -> np.ndarray:
        """Mean squared reconstruction error of each example by each member, ``(n, num_classes)``."""
        rows = _flat("x", x)
        if rows.shape[1] != self.input_dim:
            raise ValueError(f"x must have {self.input_dim} features, got {rows.shape[1]}")
        step = tf.function(self._member_errors)
        blocks = [np.asarray(step(tf.constant(rows[i:i + batch_size])))
                  for i in range(0, len(rows), batch_size)]
        return np.concatenate(blocks, axis=1).T


def labelled_batches(x, y, batch_size: int, seed: int) -> tf.data.Dataset:
    """``(x, y)`` batches reshuffled every epoch in an order fixed by ``seed``."""
    array, labels = _flat("x", x), np.asarray(y)
    if labels.shape != (len(array),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"y must be {len(array)} integer labels, got shape {labels.shape}")
    batch_size = _check_int("batch_size", batch_size, 1)
    seed = _check_int("seed", seed, 0)
    return (tf.data.Dataset.from_tensor_slices((array, labels.astype(np.int64)))
            .shuffle(len(array), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size))
