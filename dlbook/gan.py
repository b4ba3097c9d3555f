"""Generative adversarial networks: the game, its optimum, its failure modes, and fixes.

- The theory, checked numerically: :func:`optimal_discriminator` (the closed form
  :math:`D^* = t\\,p_{data} / (p_{data} + p_g)`, with ``t`` the target for real data: 1, or 0.9
  with one-sided label smoothing) and :func:`generator_loss_gradients` (how the minimax generator
  loss saturates where the non-saturating one does not).
- Models, as ``keras.Model`` subclasses with a custom ``train_step``, two optimizers and explicit
  tapes, noise from ``keras.random.SeedGenerator``\\ s they own: :class:`GAN` (the original game,
  with a choice of generator loss and of the target for real data), :class:`ConditionalGAN`
  (both players see the class label) and :class:`WGANGP` (a critic with a gradient penalty,
  :func:`gradient_penalty`). Their ``generate`` methods are compiled.
- Networks: :func:`build_mlp` (for 2-D toys), :func:`build_digit_generator` and
  :func:`build_digit_discriminator` (dense, for 8×8 digits, optionally conditional).
- Training: :func:`train_discriminator` (a discriminator alone against a frozen generator),
  :func:`fit_adversarial` (a seeded, repeated dataset and ``fit``) and :class:`Snapshots` (the
  generator's output for fixed noise after every epoch).
- Mode collapse, counted: :func:`ring_of_gaussians` (a synthetic mixture of Gaussians on a
  circle) and :func:`mode_coverage` (how many of its modes a set of samples covers).

Taught in chapter 15.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from dlbook.checks import check_int as _check_int

GENERATOR_LOSSES = ("non-saturating", "saturating")


# --- argument checks ---------------------------------------------------------------------------

def _check_positive(argument: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not value > 0:
        raise ValueError(f"{argument} must be a positive number, got {value!r}")
    return float(value)


def _check_hidden(hidden) -> tuple[int, ...]:
    if (isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not hidden
            or not all(isinstance(h, Integral) and not isinstance(h, bool) and h > 0
                       for h in hidden)):
        raise ValueError(f"hidden must be a non-empty sequence of positive ints, got {hidden!r}")
    return tuple(int(h) for h in hidden)


def _check_model(argument: str, model) -> keras.Model:
    if not isinstance(model, keras.Model):
        raise ValueError(f"{argument} must be a keras.Model, got {type(model).__name__}")
    return model


# --- a synthetic mixture, and counting its modes ---------------------------------------------------

def ring_centres(modes: int = 8, radius: float = 2.0) -> np.ndarray:
    """The ``(modes, 2)`` centres of :func:`ring_of_gaussians`, evenly spaced on a circle."""
    modes = _check_int("modes", modes, 2)
    radius = _check_positive("radius", radius)
    angles = 2 * np.pi * np.arange(modes) / modes
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(np.float32)


def ring_of_gaussians(n: int, seed: int, modes: int = 8, radius: float = 2.0,
                      std: float = 0.05) -> np.ndarray:
    """**Synthetic** 2-D data: ``n`` points from an equal mixture of ``modes`` Gaussians.

    The centres lie evenly on a circle of ``radius`` (:func:`ring_centres`); each Gaussian is
    isotropic with standard deviation ``std``. The classic test of mode collapse (Metz et al.
    2017, "Unrolled GANs"): a generator that puts its samples on a few of the modes can fool a
    discriminator for a while, and it is easy to count. Float32 ``(n, 2)``. Taught in chapter 15.
    """
    n = _check_int("n", n, 1)
    seed = _check_int("seed", seed, 0)
    std = _check_positive("std", std)
    centres = ring_centres(modes, radius)
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(centres), size=n)
    return (centres[which] + std * rng.standard_normal((n, 2))).astype(np.float32)


@dataclass(frozen=True)
class ModeCoverage:
    """How a set of 2-D samples covers the modes of a mixture (see :func:`mode_coverage`)."""

    counts: np.ndarray        # samples within the radius of each mode
    covered: int              # modes that got at least min_share of the samples
    on_mode_share: float      # share of samples within the radius of some mode ("high quality")
    min_share: float
    nearest_shares: np.ndarray  # share of all samples whose nearest centre is each mode
    median_distance: float    # median distance of a sample to its nearest centre


def mode_coverage(samples, centres, std: float, min_share: float = 0.01,
                  radius_in_std: float = 3.0) -> ModeCoverage:
    """Count the modes of a mixture that ``samples`` cover.

    A sample belongs to a mode if it lies within ``radius_in_std`` standard deviations of the
    mode's centre (3σ holds 98.9% of a 2-D Gaussian's mass). A mode is **covered** if at least
    ``min_share`` of the samples belong to it; an equal mixture of 8 modes gives each 12.5%. The
    share of samples near *some* mode says whether the samples are sharp or smeared between modes
    (the "high-quality samples" of Srivastava et al. 2017).

    The radius makes ``covered`` a measure of coverage *and* sharpness at once: a sample just
    outside it counts for nothing. Two numbers separate them: ``nearest_shares``, the share of
    all samples whose nearest centre is each mode (where the mass goes, however blurred: 1/modes
    each for an even cover), and ``median_distance`` to the nearest centre (how sharp). Taught in
    chapter 15.
    """
    points = np.asarray(samples, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    if points.ndim != 2 or len(points) == 0 or centres.ndim != 2 or points.shape[1] != centres.shape[1]:
        raise ValueError(f"samples (n, d) and centres (modes, d) must be 2-D with the same d, got "
                         f"{points.shape} and {centres.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("samples contain NaN or infinite values (did training diverge?)")
    std = _check_positive("std", std)
    radius_in_std = _check_positive("radius_in_std", radius_in_std)
    if isinstance(min_share, bool) or not isinstance(min_share, Real) or not 0 < min_share < 1:
        raise ValueError(f"min_share must be a number strictly between 0 and 1, got {min_share!r}")
    distances = np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=-1)
    nearest = np.argmin(distances, axis=1)
    near = distances[np.arange(len(points)), nearest] <= radius_in_std * std
    counts = np.bincount(nearest[near], minlength=len(centres))
    return ModeCoverage(counts=counts, covered=int(np.sum(counts >= min_share * len(points))),
                        on_mode_share=float(np.mean(near)), min_share=float(min_share),
                        nearest_shares=np.bincount(nearest, minlength=len(centres)) / len(points),
                        median_distance=float(np.median(distances[np.arange(len(points)), nearest])))


# --- the theory ----------------------------------------------------------------------------------

def optimal_discriminator(p_data, p_model, real_target: float = 1.0) -> np.ndarray:
    """The discriminator that maximises the GAN objective for fixed densities, pointwise.

    For real data labelled ``t`` (``real_target``) and generated data labelled 0, the
    discriminator's expected cross-entropy is minimised at each ``x`` by

    .. math:: D^*(x) = \\frac{t\\, p_{data}(x)}{p_{data}(x) + p_g(x)},

    which is :math:`p_{data} / (p_{data} + p_g)` for ``t = 1`` (Goodfellow et al. 2014) and caps
    ``D`` at ``t`` where the generator puts no mass (one-sided label smoothing, ``t = 0.9``).
    ``p_data`` and ``p_model`` are the densities evaluated at the same points. Taught in
    chapter 15.
    """
    p_data = np.asarray(p_data, dtype=np.float64)
    p_model = np.asarray(p_model, dtype=np.float64)
    if p_data.shape != p_model.shape:
        raise ValueError(f"p_data and p_model must have the same shape, got {p_data.shape} and "
                         f"{p_model.shape}")
    if np.any(p_data < 0) or np.any(p_model < 0) or np.any(p_data + p_model <= 0):
        raise ValueError("densities must be non-negative and not both zero at any point")
    if isinstance(real_target, bool) or not isinstance(real_target, Real) or not 0 < real_target <= 1:
        raise ValueError(f"real_target must be in (0, 1], got {real_target!r}")
    return real_target * p_data / (p_data + p_model)


def generator_loss_gradients(logits) -> tuple[np.ndarray, np.ndarray]:
    """Derivatives of the two generator losses with respect to the discriminator's logit.

    With :math:`D = \\sigma(\\ell)` on a generated sample, the minimax (**saturating**) generator
    minimises :math:`\\log(1 - D)`, whose derivative is :math:`-\\sigma(\\ell) = -D`; the
    **non-saturating** generator minimises :math:`-\\log D`, derivative :math:`-(1 - D)`. Early in
    training the discriminator rejects fakes, :math:`D \\approx 0`, and the saturating gradient
    vanishes with ``D`` while the non-saturating one stays near -1: their ratio is
    :math:`(1 - D) / D`. Returns ``(saturating, non_saturating)``. Taught in chapter 15.
    """
    logits = np.asarray(logits, dtype=np.float64)
    d = 1.0 / (1.0 + np.exp(-logits))
    return -d, -(1.0 - d)


# --- networks ------------------------------------------------------------------------------------

def build_mlp(input_dim: int, output_dim: int, hidden: Sequence[int], seed: int,
              name: str, activation: str = "relu") -> keras.Model:
    """A plain multilayer perceptron ``input_dim → hidden… → output_dim`` (linear output).

    Used for both players on 2-D toys: a generator maps noise to points, a discriminator maps
    points to one logit (a critic to one score). Hidden layers are He-initialised from ``seed``.
    No normalisation layers, so it is safe as a WGAN-GP critic. Taught in chapter 15.
    """
    input_dim = _check_int("input_dim", input_dim, 1)
    output_dim = _check_int("output_dim", output_dim, 1)
    hidden = _check_hidden(hidden)
    seed = _check_int("seed", seed, 0)
    inputs = keras.Input((input_dim,), name="inputs")
    x = inputs
    for i, width in enumerate(hidden, start=1):
        x = layers.Dense(width, activation=activation, name=f"hidden_{i}",
                         kernel_initializer=keras.initializers.HeUniform(seed=seed + i))(x)
    outputs = layers.Dense(output_dim, name="output",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(x)
    return keras.Model(inputs, outputs, name=name)


def _with_label(inputs: list, x, num_classes: int, name: str):
    """For a conditional network (``num_classes`` > 0): a second input, the class label, one-hot
    encoded and concatenated to ``x``; otherwise ``inputs`` and ``x`` unchanged."""
    if not num_classes:
        return inputs, x
    label = keras.Input((), dtype="int32", name="label")
    one_hot = layers.Lambda(lambda y: ops.one_hot(y, num_classes), name="one_hot")(label)
    return [*inputs, label], layers.Concatenate(name=name)([x, one_hot])


def build_digit_generator(latent_dim: int, seed: int, num_classes: int = 0,
                          hidden: Sequence[int] = (128, 128),
                          image_shape: Sequence[int] = (8, 8, 1),
                          name: str = "generator") -> keras.Model:
    """A dense generator of small images in [-1, 1] (8×8 digits by default).

    ``z (latent_dim) → Dense ReLU layers (hidden) → Dense (pixels, tanh) → image_shape``. On 8×8
    digits a dense generator is about six times cheaper per step than a DCGAN-style transposed
    convolution and, in chapter 15's measurements, makes digits the judge finds more convincing with
    less CPU time. With ``num_classes`` > 0 it takes a second input, the class label (int),
    one-hot encoded and concatenated to ``z`` (Mirza and Osindero 2014): a conditional
    generator, ``[z, label] → image``. Initialised from ``seed``. Taught in chapter 15.
    """
    latent_dim = _check_int("latent_dim", latent_dim, 1)
    seed = _check_int("seed", seed, 0)
    num_classes = _check_int("num_classes", num_classes, 0)
    hidden = _check_hidden(hidden)
    image_shape = _check_hidden(image_shape)
    z = keras.Input((latent_dim,), name="z")
    inputs, x = _with_label([z], z, num_classes, "z_and_label")
    for i, width in enumerate(hidden, start=1):
        x = layers.Dense(width, activation="relu", name=f"hidden_{i}",
                         kernel_initializer=keras.initializers.HeUniform(seed=seed + i))(x)
    pixels = layers.Dense(int(np.prod(image_shape)), activation="tanh", name="pixels",
                          kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(x)
    images = layers.Reshape(image_shape, name="image")(pixels)
    return keras.Model(inputs if num_classes else z, images, name=name)


def build_digit_discriminator(seed: int, num_classes: int = 0,
                              hidden: Sequence[int] = (128, 128),
                              image_shape: Sequence[int] = (8, 8, 1),
                              name: str = "discriminator") -> keras.Model:
    """A dense discriminator (or WGAN-GP critic) for small images in [-1, 1].

    ``image → flatten → Dense LeakyReLU(0.2) layers (hidden) → Dense 1``: one logit (a score,
    for a critic). Leaky ReLUs keep a gradient flowing back to the generator where a ReLU would
    be flat. No batch normalisation: a critic's gradient penalty is per example, and batch
    statistics would mix the examples. With ``num_classes`` > 0 it takes a second input, the
    class label, one-hot encoded and concatenated to the pixels: a conditional discriminator,
    ``[image, label] → logit``, which judges "is this a real 7?". Initialised from ``seed``.
    Taught in chapter 15.
    """
    seed = _check_int("seed", seed, 0)
    num_classes = _check_int("num_classes", num_classes, 0)
    hidden = _check_hidden(hidden)
    image_shape = _check_hidden(image_shape)
    images = keras.Input(image_shape, name="images")
    inputs, x = _with_label([images], layers.Flatten(name="flat")(images), num_classes,
                            "pixels_and_label")
    for i, width in enumerate(hidden, start=1):
        x = layers.Dense(width, name=f"hidden_{i}",
                         kernel_initializer=keras.initializers.HeUniform(seed=seed + i))(x)
        x = layers.LeakyReLU(0.2, name=f"hidden_{i}_leaky")(x)
    logit = layers.Dense(1, name="logit",
                         kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(x)
    return keras.Model(inputs if num_classes else images, logit, name=name)


# --- the original game -----------------------------------------------------------------------------

def _bce_with_logits(target: float, logits):
    """Mean binary cross-entropy of ``logits`` against the constant ``target``, stably:
    ``target·softplus(-l) + (1 - target)·softplus(l)``."""
    return ops.mean(target * ops.softplus(-logits) + (1.0 - target) * ops.softplus(logits))


class _Adversarial(keras.Model):
    """What :class:`GAN` and :class:`WGANGP` share: two players, two optimizers, seeded noise."""

    def __init__(self, generator: keras.Model, opponent: keras.Model, latent_dim: int, seed: int,
                 metric_names: Sequence[str], **kwargs):
        super().__init__(**kwargs)
        self.generator = _check_model("generator", generator)
        _check_model("the discriminator (or critic)", opponent)
        self.latent_dim = _check_int("latent_dim", latent_dim, 1)
        seed = _check_int("seed", seed, 0)
        self.noise = keras.random.SeedGenerator(seed)
        self.sample_noise = keras.random.SeedGenerator(seed + 1)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in metric_names}
        self._generate = tf.function(self._generate_step)

    def compile(self, d_optimizer: keras.optimizers.Optimizer,
                g_optimizer: keras.optimizers.Optimizer, **kwargs):
        """Each player gets its own optimizer; other arguments go to ``keras.Model.compile``."""
        for argument, optimizer in (("d_optimizer", d_optimizer), ("g_optimizer", g_optimizer)):
            if not isinstance(optimizer, keras.optimizers.Optimizer):
                raise ValueError(f"{argument} must be a keras optimizer, got {optimizer!r}")
        if d_optimizer is g_optimizer:
            raise ValueError("d_optimizer and g_optimizer must be two optimizers, not one: each "
                             "keeps its own moment estimates")
        super().compile(**kwargs)
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _z(self, batch_size):
        return keras.random.normal((batch_size, self.latent_dim), seed=self.noise)

    def _log(self, **values):
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _generate_step(self, n):
        z = keras.random.normal((n, self.latent_dim), seed=self.sample_noise)
        return self.generator(z, training=False)

    def generate(self, n: int) -> np.ndarray:
        """``n`` new samples from fresh noise, in one compiled call (each call draws new noise)."""
        return np.asarray(self._generate(tf.constant(_check_int("n", n, 1))))


@keras.saving.register_keras_serializable(package="dlbook")
class GAN(_Adversarial):
    """A generative adversarial network: a generator and a discriminator trained in turns.

    ``generator`` maps noise ``z ~ N(0, I)`` of ``latent_dim`` to samples; ``discriminator`` maps
    samples to one logit, :math:`D = \\sigma(\\text{logit})` being its probability that the input
    is real. Each ``train_step`` (one batch of real data) is one move of each player, each with its
    own optimizer and tape:

    1. the discriminator minimises the cross-entropy of real data labelled ``real_target`` and a
       fresh batch of fakes labelled 0 (``real_target = 0.9`` is one-sided label smoothing,
       Salimans et al. 2016);
    2. the generator, on new noise, minimises ``-log D(G(z))`` (``"non-saturating"``, the default)
       or ``log(1 - D(G(z)))`` (``"saturating"``, the minimax game as written).

    ``compile(d_optimizer=..., g_optimizer=...)``; ``fit`` takes the real data alone. Logged:
    ``d_loss``, ``g_loss``, ``d_real`` and ``d_fake`` (mean D on the real and fake batch). Noise
    for training comes from ``keras.random.SeedGenerator(seed)``, for :meth:`generate` from a
    second one (``seed + 1``), so sampling never changes the training stream. Taught in chapter 15.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, latent_dim: int,
                 seed: int, real_target: float = 1.0, generator_loss: str = "non-saturating",
                 **kwargs):
        super().__init__(generator, discriminator, latent_dim, seed,
                         ("d_loss", "g_loss", "d_real", "d_fake"), **kwargs)
        self.discriminator = discriminator
        if (isinstance(real_target, bool) or not isinstance(real_target, Real)
                or not 0.5 < real_target <= 1):
            raise ValueError(f"real_target must be in (0.5, 1] (1: no smoothing, 0.9: one-sided "
                             f"label smoothing), got {real_target!r}")
        self.real_target = float(real_target)
        if generator_loss not in GENERATOR_LOSSES:
            raise ValueError(f"generator_loss must be one of {GENERATOR_LOSSES}, "
                             f"got {generator_loss!r}")
        self.generator_loss = generator_loss

    def _fake(self, batch_size, conditions, training=True):
        return self.generator(self._z(batch_size), training=training)

    def _discriminate(self, samples, conditions, training=True):
        return self.discriminator(samples, training=training)

    def generator_objective(self, fake_logits):
        """The generator's loss on the discriminator's logits for its samples."""
        if self.generator_loss == "non-saturating":
            return ops.mean(ops.softplus(-fake_logits))    # -log D(G(z))
        return -ops.mean(ops.softplus(fake_logits))        # log(1 - D(G(z)))

    def _split(self, data):
        return data[0] if isinstance(data, tuple) else data, None

    def train_step(self, data):
        real, conditions = self._split(data)
        batch_size = ops.shape(real)[0]
        fake = self._fake(batch_size, conditions)
        with tf.GradientTape() as tape:                    # 1. the discriminator's move
            real_logits = self._discriminate(real, conditions)
            fake_logits = self._discriminate(fake, conditions)
            d_loss = (_bce_with_logits(self.real_target, real_logits)
                      + _bce_with_logits(0.0, fake_logits))
        weights = self.discriminator.trainable_weights
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, weights), weights, strict=True))
        with tf.GradientTape() as tape:                    # 2. the generator's move
            g_loss = self.generator_objective(
                self._discriminate(self._fake(batch_size, conditions), conditions))
        weights = self.generator.trainable_weights
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, weights), weights, strict=True))
        return self._log(d_loss=d_loss, g_loss=g_loss, d_real=ops.mean(ops.sigmoid(real_logits)),
                         d_fake=ops.mean(ops.sigmoid(fake_logits)))


@keras.saving.register_keras_serializable(package="dlbook")
class ConditionalGAN(GAN):
    """A GAN whose players both see the class label (Mirza and Osindero 2014).

    ``generator`` takes ``[z, label]`` and ``discriminator`` takes ``[samples, label]``
    (:func:`build_digit_generator` and :func:`build_digit_discriminator` with ``num_classes``).
    ``fit`` takes ``(images, labels)``; the fakes of a batch are generated for that batch's labels,
    so the discriminator judges "is this a real 7?" rather than "is this real?". A generator that
    ignored its label would be caught. :meth:`generate` takes the labels to draw. Taught in
    chapter 15.
    """

    def __init__(self, generator, discriminator, latent_dim, seed, num_classes: int, **kwargs):
        super().__init__(generator, discriminator, latent_dim, seed, **kwargs)
        self.num_classes = _check_int("num_classes", num_classes, 2)

    def _split(self, data):
        if not isinstance(data, tuple) or len(data) < 2:
            raise ValueError("a ConditionalGAN is fitted on (images, labels)")
        return data[0], ops.cast(data[1], "int32")

    def _fake(self, batch_size, conditions, training=True):
        return self.generator([self._z(batch_size), conditions], training=training)

    def _discriminate(self, samples, conditions, training=True):
        return self.discriminator([samples, conditions], training=training)

    def _generate_step(self, labels):
        z = keras.random.normal((ops.shape(labels)[0], self.latent_dim), seed=self.sample_noise)
        return self.generator([z, labels], training=False)

    def generate(self, labels) -> np.ndarray:
        """One new sample for each requested label (ints in ``0 … num_classes - 1``)."""
        labels = np.asarray(labels)
        if (labels.ndim != 1 or len(labels) == 0 or not np.issubdtype(labels.dtype, np.integer)
                or labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must be a non-empty 1-D array of ints in "
                             f"0..{self.num_classes - 1}, got {labels!r}")
        return np.asarray(self._generate(tf.constant(labels, dtype=tf.int32)))


# --- Wasserstein GAN with gradient penalty ---------------------------------------------------------

def gradient_penalty(critic: keras.Model, real, fake, alpha):
    """The WGAN-GP penalty and the critic's gradient norms on interpolates.

    ``x̂ = α·real + (1 - α)·fake`` with one ``α`` per example (``alpha``, drawn from U(0, 1) by the
    caller: shape ``(batch, 1, …)``); the penalty is the mean of :math:`(\\lVert \\nabla_{\\hat x}
    f(\\hat x) \\rVert - 1)^2`. The gradient comes from an inner tape, so an outer tape can
    differentiate the penalty with respect to the critic's weights (a second-order gradient). A
    tiny constant inside the square root keeps its gradient finite at 0. Returns
    ``(penalty, norms)``. Taught in chapter 15.
    """
    interpolates = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        scores = critic(interpolates, training=True)
    gradients = tape.gradient(scores, interpolates)
    axes = list(range(1, len(gradients.shape)))
    norms = ops.sqrt(ops.sum(ops.square(gradients), axis=axes) + 1e-12)
    return ops.mean(ops.square(norms - 1.0)), norms


@keras.saving.register_keras_serializable(package="dlbook")
class WGANGP(_Adversarial):
    """A Wasserstein GAN with gradient penalty (Gulrajani et al. 2017, Algorithm 1).

    The ``critic`` outputs an unbounded score, not a probability. It maximises
    :math:`\\mathbb{E} f(x) - \\mathbb{E} f(G(z))`, an estimate of the Wasserstein-1 distance
    between data and samples when :math:`f` is 1-Lipschitz; the penalty ``gp_weight ·
    E(‖∇f(x̂)‖ - 1)²`` on random interpolates x̂ (:func:`gradient_penalty`, α ~ U(0, 1) per example)
    keeps it so. Each ``train_step`` takes a batch of ``critic_steps × n`` real examples, makes
    ``critic_steps`` critic updates on ``n`` of them each, then one generator update (loss
    ``-E f(G(z))``). Use ``drop_remainder=True`` batches, so that every batch splits evenly.

    ``compile(d_optimizer=..., g_optimizer=...)`` (Adam(1e-4, β₁ = 0.5 or 0, β₂ = 0.9) in the
    paper). The paper's λ = 10 is for images; its toy code uses λ = 0.1, and chapter 15 uses 1.
    Logged: ``critic_loss``, ``g_loss``, ``wasserstein`` (the critic's estimate) and
    ``gradient_norm`` (the mean ‖∇f(x̂)‖). ``gp_weight = 0`` trains an unconstrained critic, to
    see what the penalty does. Noise as in :class:`GAN`. Taught in chapter 15.
    """

    def __init__(self, generator: keras.Model, critic: keras.Model, latent_dim: int, seed: int,
                 critic_steps: int = 5, gp_weight: float = 10.0, **kwargs):
        super().__init__(generator, critic, latent_dim, seed,
                         ("critic_loss", "g_loss", "wasserstein", "gradient_norm"), **kwargs)
        if any(isinstance(layer, layers.BatchNormalization) for layer in critic.layers):
            raise ValueError("the critic must not use BatchNormalization: the gradient penalty is "
                             "per example (use LayerNormalization or nothing)")
        self.critic = critic
        self.critic_steps = _check_int("critic_steps", critic_steps, 1)
        if isinstance(gp_weight, bool) or not isinstance(gp_weight, Real) or gp_weight < 0:
            raise ValueError(f"gp_weight must be a number ≥ 0, got {gp_weight!r}")
        self.gp_weight = float(gp_weight)

    def _critic_step(self, real):
        batch_size = ops.shape(real)[0]
        fake = self.generator(self._z(batch_size), training=True)
        alpha = keras.random.uniform((batch_size,) + (1,) * (len(real.shape) - 1),
                                     seed=self.noise)          # U(0, 1), one per example
        with tf.GradientTape() as tape:
            wasserstein = (ops.mean(self.critic(real, training=True))
                           - ops.mean(self.critic(fake, training=True)))
            penalty, norms = gradient_penalty(self.critic, real, fake, alpha)
            loss = -wasserstein + self.gp_weight * penalty
        weights = self.critic.trainable_weights
        self.d_optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))
        return loss, wasserstein, ops.mean(norms)

    def train_step(self, data):
        real = data[0] if isinstance(data, tuple) else data
        chunks = ops.reshape(real, (self.critic_steps, -1) + tuple(real.shape[1:]))
        for i in range(self.critic_steps):
            loss, wasserstein, norm = self._critic_step(chunks[i])
        with tf.GradientTape() as tape:
            fake = self.generator(self._z(ops.shape(chunks)[1]), training=True)
            g_loss = -ops.mean(self.critic(fake, training=True))
        weights = self.generator.trainable_weights
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, weights), weights, strict=True))
        return self._log(critic_loss=loss, g_loss=g_loss, wasserstein=wasserstein,
                         gradient_norm=norm)

    def interpolate_gradient_norms(self, real, fake, seed: int) -> np.ndarray:
        """‖∇f(x̂)‖ of the trained critic on interpolates of ``real`` and ``fake`` (same shape),
        α ~ U(0, 1) per example drawn with ``seed``: is the critic 1-Lipschitz where it matters?"""
        real = np.asarray(real, np.float32)
        fake = np.asarray(fake, np.float32)
        if real.shape != fake.shape:
            raise ValueError(f"real and fake must have the same shape, got {real.shape} and "
                             f"{fake.shape}")
        alpha = np.random.default_rng(_check_int("seed", seed, 0)).uniform(
            size=(len(real),) + (1,) * (real.ndim - 1)).astype(np.float32)
        _, norms = gradient_penalty(self.critic, tf.constant(real), tf.constant(fake),
                                    tf.constant(alpha))
        return np.asarray(norms)


# --- training helpers ----------------------------------------------------------------------------

def train_discriminator(real, fake, seed: int, real_target: float = 1.0,
                        hidden: Sequence[int] = (32, 32), epochs: int = 10,
                        batch_size: int = 256, learning_rate: float = 3e-3) -> keras.Model:
    """Train a discriminator alone, against a *frozen* generator's samples ``fake``.

    The first half of the GAN game with the generator held still: an MLP (:func:`build_mlp`)
    maps a sample to a logit and minimises the cross-entropy of ``real`` labelled
    ``real_target`` (1, or 0.9 for one-sided label smoothing) and ``fake`` labelled 0, shuffled
    with ``seed``, by Adam with a cosine-decayed learning rate (so that the last weights are not
    a snapshot of the noise of the last steps). Its :math:`\\sigma(\\text{logit})` should approach
    :func:`optimal_discriminator` of the two densities. Returns the logit model. Taught in
    chapter 15.
    """
    real = np.asarray(real, np.float32)
    fake = np.asarray(fake, np.float32)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1] or not len(real) or not len(fake):
        raise ValueError(f"real and fake must be non-empty (n, d) arrays with the same d, got "
                         f"{real.shape} and {fake.shape}")
    seed = _check_int("seed", seed, 0)
    if isinstance(real_target, bool) or not isinstance(real_target, Real) or not 0.5 < real_target <= 1:
        raise ValueError(f"real_target must be in (0.5, 1], got {real_target!r}")
    network = build_mlp(real.shape[1], 1, hidden, seed, "discriminator")
    x = np.concatenate([real, fake])
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    schedule = keras.optimizers.schedules.CosineDecay(  # a final iterate that has settled
        _check_positive("learning_rate", learning_rate), epochs * -(-len(x) // batch_size))
    network.compile(optimizer=keras.optimizers.Adam(schedule),
                    loss=keras.losses.BinaryCrossentropy(from_logits=True))
    y = np.concatenate([np.full(len(real), real_target), np.zeros(len(fake))]).astype(np.float32)
    batches = (tf.data.Dataset.from_tensor_slices((x, y))
               .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
               .batch(batch_size))
    network.fit(batches, epochs=epochs, shuffle=False,  # shuffled above
                verbose=0)
    return network


def fit_adversarial(model: keras.Model, data, steps: int, batch_size: int, seed: int,
                    epochs: int = 10, callbacks=None) -> keras.callbacks.History:
    """Train a compiled :class:`GAN`, :class:`ConditionalGAN` or :class:`WGANGP` for ``steps``.

    ``data`` is an array (or a tuple ``(images, labels)`` for a conditional GAN), shuffled with
    ``seed`` and repeated, in batches of ``batch_size`` (a :class:`WGANGP` takes
    ``critic_steps × batch_size`` per step, one chunk per critic update). ``steps`` are spread
    over ``epochs`` so that the history (and callbacks) see ``epochs`` points. Taught in chapter 15.
    """
    steps = _check_int("steps", steps, 1)
    epochs = _check_int("epochs", epochs, 1)
    if steps % epochs:
        raise ValueError(f"steps ({steps}) must be a multiple of epochs ({epochs})")
    batch_size = _check_int("batch_size", batch_size, 1)
    if isinstance(model, WGANGP):
        batch_size *= model.critic_steps
    arrays = tuple(np.asarray(a) for a in data) if isinstance(data, tuple) else np.asarray(data)
    first = arrays[0] if isinstance(arrays, tuple) else arrays
    dataset = (tf.data.Dataset.from_tensor_slices(arrays)
               .shuffle(len(first), seed=_check_int("seed", seed, 0))
               .repeat().batch(batch_size, drop_remainder=True))
    return model.fit(dataset, steps_per_epoch=steps // epochs, epochs=epochs, shuffle=False,
                     verbose=0, callbacks=callbacks)  # shuffled above, seeded


class Snapshots(keras.callbacks.Callback):
    """Keep the generator's output for the same inputs after every epoch: samples over training.

    ``inputs`` is what the generator takes (fixed noise ``z``, or ``[z, labels]``). After each
    epoch the generator's images (``training=False``) are stored in :attr:`images`, a list.
    Taught in chapter 15.
    """

    def __init__(self, inputs):
        super().__init__()
        self.inputs = inputs
        self.images: list[np.ndarray] = []

    def on_epoch_end(self, epoch, logs=None):
        self.images.append(np.asarray(self.model.generator(self.inputs, training=False)))
