"""Denoising diffusion: the forward noising process, noise schedules, a noise-prediction network,
DDPM ancestral sampling and deterministic DDIM sampling.

- :class:`NoiseSchedule` holds a schedule's :math:`\\beta_t`, :math:`\\alpha_t = 1 - \\beta_t` and
  :math:`\\bar\\alpha_t = \\prod_{s \\le t} \\alpha_s` as float32 arrays (float64 arrays leaking into
  TensorFlow ops is the classic bug here): :meth:`NoiseSchedule.linear` (Ho et al. 2020, rescaled
  to any number of steps) and :meth:`NoiseSchedule.cosine` (Nichol and Dhariwal 2021), with their
  log signal-to-noise ratio.
- The forward process in NumPy: :func:`noise_closed_form` draws :math:`x_t \\mid x_0` in one step,
  :func:`noise_chain` iterates :math:`x_t = \\sqrt{\\alpha_t} x_{t-1} + \\sqrt{\\beta_t}\\,\\varepsilon`
  step by step; the chapter checks that they agree.
- :func:`build_noise_predictor`, an MLP :math:`\\varepsilon_\\theta(x_t, t[, c])` with a sinusoidal
  time embedding (:class:`TimeEmbedding`) and an optional class label whose extra index means "no
  label" (for classifier-free guidance).
- :class:`Diffusion`, a ``keras.Model`` whose ``train_step`` draws ``t`` and the noise from a
  ``keras.random.SeedGenerator`` it owns and minimises :math:`\\lVert \\varepsilon -
  \\varepsilon_\\theta(x_t, t) \\rVert^2`; its samplers :meth:`Diffusion.ddpm` and
  :meth:`Diffusion.ddim` (with Song et al.'s η, from deterministic to DDPM's noise) run the whole
  reverse loop inside one ``tf.function``.
- :func:`gaussian_noise_predictor`, the exact noise predictor for a Gaussian fitted to the data
  (a linear, Wiener-filter denoiser): the honest baseline for the network, and the exact predictor
  the tests check the samplers with.

Taught in chapter 16.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from dlbook.autoencoders import _check_int, _check_number

# --- schedules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseSchedule:
    """The variances :math:`\\beta_1 … \\beta_T` of a forward noising process and what follows.

    Index ``t - 1`` of each array holds step ``t`` (so ``alpha_bars[0]`` is
    :math:`\\bar\\alpha_1` and ``alpha_bars[-1]`` is :math:`\\bar\\alpha_T`). Every array is float32.
    Build one with :meth:`linear`, :meth:`cosine` or from any ``betas``. Taught in chapter 16.
    """

    betas: np.ndarray

    def __post_init__(self):
        betas = np.asarray(self.betas, dtype=np.float64)
        if betas.ndim != 1 or len(betas) < 2:
            raise ValueError(f"betas must be a 1-D array of at least 2 steps, got shape {betas.shape}")
        if not np.all((betas > 0) & (betas < 1)):
            raise ValueError("every beta must be strictly between 0 and 1, got values from "
                             f"{betas.min():g} to {betas.max():g}")
        object.__setattr__(self, "betas", betas.astype(np.float32))

    @classmethod
    def linear(cls, steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
        """Betas rising linearly from ``beta_start`` to ``beta_end`` — Ho et al.'s values for
        1,000 steps — multiplied by ``1000 / steps``, so that a shorter chain destroys the signal
        as completely as theirs (the rescaling of Nichol and Dhariwal 2021)."""
        steps = _check_int("steps", steps, 2)
        scale = 1000.0 / steps
        return cls(np.linspace(beta_start * scale, beta_end * scale, steps))

    @classmethod
    def cosine(cls, steps: int, offset: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
        """Nichol and Dhariwal's cosine schedule: :math:`\\bar\\alpha_t = f(t)/f(0)` with
        :math:`f(t) = \\cos^2\\big(\\frac{t/T + s}{1 + s}\\cdot\\frac{\\pi}{2}\\big)`, betas clipped at
        ``max_beta`` (the last steps would otherwise be 1)."""
        steps = _check_int("steps", steps, 2)
        offset = _check_number("offset", offset, 0.0, inclusive=False)
        f = np.cos((np.arange(steps + 1) / steps + offset) / (1 + offset) * np.pi / 2) ** 2
        betas = 1.0 - f[1:] / f[:-1]
        return cls(np.clip(betas, 1e-8, max_beta))

    @property
    def steps(self) -> int:
        return len(self.betas)

    @property
    def alphas(self) -> np.ndarray:
        return (1.0 - self.betas.astype(np.float64)).astype(np.float32)

    @property
    def alpha_bars(self) -> np.ndarray:
        """:math:`\\bar\\alpha_t = \\prod_{s=1}^{t} (1 - \\beta_s)`, the signal's share of variance."""
        return np.cumprod(1.0 - self.betas.astype(np.float64)).astype(np.float32)

    @property
    def log_snr(self) -> np.ndarray:
        """The signal-to-noise ratio :math:`\\bar\\alpha_t / (1 - \\bar\\alpha_t)`, as a natural log."""
        alpha_bars = np.cumprod(1.0 - self.betas.astype(np.float64))
        return (np.log(alpha_bars) - np.log1p(-alpha_bars)).astype(np.float32)


# --- the forward process, in NumPy -------------------------------------------------------------

def _check_step(t, steps: int) -> int:
    t = _check_int("t", t, 1)
    if t > steps:
        raise ValueError(f"t must be a step in 1…{steps} (the schedule's length), got {t}")
    return t


def noise_closed_form(x0, t: int, schedule: NoiseSchedule, seed: int) -> np.ndarray:
    """Draw :math:`x_t \\sim q(x_t \\mid x_0) = N(\\sqrt{\\bar\\alpha_t}\\, x_0, (1 - \\bar\\alpha_t) I)`
    in one step, for step ``t`` in 1…T. Taught in chapter 16."""
    t = _check_step(t, schedule.steps)
    x0 = np.asarray(x0, dtype=np.float64)
    alpha_bar = float(schedule.alpha_bars[t - 1])
    eps = np.random.default_rng(_check_int("seed", seed, 0)).standard_normal(x0.shape)
    return np.sqrt(alpha_bar) * x0 + np.sqrt(1.0 - alpha_bar) * eps


def noise_chain(x0, t: int, schedule: NoiseSchedule, seed: int) -> np.ndarray:
    """Draw :math:`x_t` by running the Markov chain :math:`x_s = \\sqrt{1 - \\beta_s}\\, x_{s-1} +
    \\sqrt{\\beta_s}\\, \\varepsilon_s` for s = 1…t, fresh noise at every step. Taught in chapter 16."""
    t = _check_step(t, schedule.steps)
    x = np.asarray(x0, dtype=np.float64).copy()
    rng = np.random.default_rng(_check_int("seed", seed, 0))
    for beta in schedule.betas[:t].astype(np.float64):
        x = np.sqrt(1.0 - beta) * x + np.sqrt(beta) * rng.standard_normal(x.shape)
    return x


# --- the noise-prediction network ----------------------------------------------------------------

@keras.saving.register_keras_serializable(package="dlbook")
class TimeEmbedding(keras.layers.Layer):
    """Sinusoidal embedding of integer steps ``t`` ``(batch,)`` → ``(batch, dim)`` float32:
    :math:`[\\sin(t \\omega_k), \\cos(t \\omega_k)]` with frequencies
    :math:`\\omega_k = \\text{max\\_period}^{-k/(dim/2)}`, k = 0…dim/2 − 1 (the transformer's
    positional encoding, chapter 12, applied to the noise level). Taught in chapter 16."""

    def __init__(self, dim: int, max_period: float = 10_000.0, **kwargs):
        super().__init__(**kwargs)
        self.dim = _check_int("dim", dim, 2)
        if self.dim % 2:
            raise ValueError(f"dim must be even (sines and cosines in pairs), got {dim}")
        self.max_period = _check_number("max_period", max_period, 1.0, inclusive=False)
        half = self.dim // 2
        self.frequencies = np.exp(-np.log(self.max_period) * np.arange(half) / half).astype(np.float32)

    def call(self, t):
        angles = ops.cast(ops.reshape(t, (-1, 1)), "float32") * ops.convert_to_tensor(self.frequencies)
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_period": self.max_period}


def build_noise_predictor(data_dim: int, hidden: int = 256, depth: int = 3, embed_dim: int = 64,
                          num_classes: int | None = None, seed: int = 0) -> keras.Model:
    """The network :math:`\\varepsilon_\\theta(x_t, t[, c])`: an MLP that predicts the noise in
    ``x_t``.

    Inputs ``x`` ``(batch, data_dim)`` and integer steps ``t`` ``(batch,)`` (0-based: 0 … T − 1),
    plus integer ``label`` ``(batch,)`` when ``num_classes`` is given, where ``label ==
    num_classes`` means "no label". The step (and label) become a ``hidden``-wide embedding that is
    concatenated to the input of each of the ``depth`` SiLU layers, so every layer knows the noise
    level. Output: the predicted noise, ``(batch, data_dim)``. Initialised from ``seed``. Taught in
    chapter 16.
    """
    data_dim = _check_int("data_dim", data_dim, 1)
    hidden = _check_int("hidden", hidden, 1)
    depth = _check_int("depth", depth, 1)
    seed = _check_int("seed", seed, 0)
    init = iter(range(seed, seed + 100))

    def dense(width, activation=None, name=None):
        return keras.layers.Dense(width, activation=activation, name=name,
                                  kernel_initializer=keras.initializers.GlorotUniform(next(init)))

    x = keras.Input(shape=(data_dim,), name="x")
    t = keras.Input(shape=(), dtype="int32", name="t")
    inputs = [x, t]
    embedding = dense(hidden, "silu", "time_dense")(TimeEmbedding(embed_dim, name="time_embedding")(t))
    if num_classes is not None:
        num_classes = _check_int("num_classes", num_classes, 2)
        label = keras.Input(shape=(), dtype="int32", name="label")
        inputs.append(label)
        label_embedding = keras.layers.Embedding(
            num_classes + 1, hidden, name="label_embedding",
            embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=next(init)))(label)
        embedding = keras.layers.Add(name="condition")([embedding, label_embedding])
    h = x
    for i in range(1, depth + 1):
        h = dense(hidden, "silu", f"hidden_{i}")(
            keras.layers.Concatenate(name=f"with_condition_{i}")([h, embedding]))
    noise = dense(data_dim, name="noise")(h)
    return keras.Model(inputs, noise, name="noise_predictor")


# --- the model and its samplers ------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="dlbook")
class Diffusion(keras.Model):
    """A denoising diffusion model (DDPM, Ho et al. 2020) around a noise-prediction ``network``.

    ``fit(x)`` (or ``fit(x, labels)`` for a conditional network) trains with the simple loss of
    Ho et al.: for each example draw a step ``t`` uniformly and noise ``eps ~ N(0, I)``, form
    ``x_t = sqrt(alpha_bar_t) x + sqrt(1 - alpha_bar_t) eps`` and minimise the mean squared error
    between ``eps`` and ``network(x_t, t)``. With ``num_classes`` (a conditional network), each
    label is replaced by the "no label" index with probability ``label_dropout``, so the one network
    learns both the conditional and the unconditional noise (classifier-free guidance).

    Randomness: training draws from ``keras.random.SeedGenerator(seed)``, the samplers from a
    second generator (``seed + 1``), both owned by the model, so a rerun from the same seeds is
    identical and sampling never shifts the training stream. The samplers clip their prediction
    of the clean data to [-``clip``, ``clip``] (the data's range; ``None``: no clipping). Taught in
    chapter 16.
    """

    def __init__(self, network: keras.Model, schedule: NoiseSchedule, seed: int,
                 num_classes: int | None = None, label_dropout: float = 0.2,
                 clip: float | None = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(network, keras.Model):
            raise ValueError(f"network must be a keras.Model, got {type(network).__name__}")
        if not isinstance(schedule, NoiseSchedule):
            raise ValueError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
        expected_inputs = 2 if num_classes is None else 3
        if len(network.inputs) != expected_inputs:
            raise ValueError(f"the network must take {expected_inputs} inputs (x, t"
                             f"{', label' if num_classes is not None else ''}), "
                             f"it takes {len(network.inputs)}")
        self.network, self.schedule = network, schedule
        self.data_dim = int(network.inputs[0].shape[-1])
        self.num_classes = None if num_classes is None else _check_int("num_classes", num_classes, 2)
        self.label_dropout = _check_number("label_dropout", label_dropout)
        if self.label_dropout >= 1:
            raise ValueError(f"label_dropout must be below 1, got {label_dropout!r}")
        self.clip = None if clip is None else _check_number("clip", clip, 0.0, inclusive=False)
        seed = _check_int("seed", seed, 0)
        self.noise = keras.random.SeedGenerator(seed)
        self.sampling_noise = keras.random.SeedGenerator(seed + 1)
        # every schedule tensor float32: a float64 array here breaks the TF ops (the plan's probe)
        self.betas = tf.constant(schedule.betas, tf.float32)
        self.alpha_bars = tf.constant(schedule.alpha_bars, tf.float32)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self._ddpm = tf.function(self._ddpm_loop)
        self._ddim = tf.function(self._ddim_loop)
        self._noise_errors = tf.function(self._noise_errors_step)

    @property
    def metrics(self):
        return [self.loss_tracker]

    @property
    def steps(self) -> int:
        return self.schedule.steps

    def _labels(self, labels, n):
        if self.num_classes is None:
            if labels is not None:
                raise ValueError("this model is unconditional: it takes no labels")
            return None
        if labels is None:
            return tf.fill((n,), self.num_classes)  # "no label": the unconditional noise
        return ops.cast(labels, "int32")

    def predict_noise(self, x, t, labels=None, training=False):
        """:math:`\\varepsilon_\\theta(x_t, t[, c])` for a batch; ``t`` 0-based ``(batch,)``."""
        inputs = [x, ops.cast(t, "int32")]
        if self.num_classes is not None:
            inputs.append(self._labels(labels, ops.shape(x)[0]))
        return self.network(inputs, training=training)

    def noisy(self, x, t, eps):
        """:math:`x_t = \\sqrt{\\bar\\alpha_t}\\, x_0 + \\sqrt{1 - \\bar\\alpha_t}\\, \\varepsilon`
        (``t`` 0-based, one per example): the closed form of the forward process."""
        alpha_bar = ops.expand_dims(ops.take(self.alpha_bars, t), -1)
        return ops.sqrt(alpha_bar) * x + ops.sqrt(1.0 - alpha_bar) * eps

    def train_step(self, data):
        x, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        n = ops.shape(x)[0]
        t = keras.random.randint((n,), 0, self.steps, seed=self.noise)
        eps = keras.random.normal(ops.shape(x), seed=self.noise)
        if self.num_classes is not None:
            if labels is None:
                raise ValueError("a conditional model trains on (x, labels): fit(x, labels)")
            drop = keras.random.uniform((n,), seed=self.noise) < self.label_dropout
            labels = ops.where(drop, self.num_classes, ops.cast(labels, "int32"))
        with tf.GradientTape() as tape:
            predicted = self.predict_noise(self.noisy(x, t, eps), t, labels, training=True)
            loss = ops.mean(ops.square(predicted - eps))
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(gradients, self.trainable_weights)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def _noise_errors_step(self, x, t, eps, labels, noise_fn):
        return ops.mean(ops.square(noise_fn(self.noisy(x, t, eps), t, labels) - eps), axis=-1)

    def noise_errors(self, x, t: int, seed: int, labels=None,
                     noise_fn: Callable | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per example, the squared error of the predicted noise at 0-based step ``t`` and that of
        the predict-zero baseline (:math:`\\lVert\\varepsilon\\rVert^2 / d`), on the same noise
        drawn with NumPy from ``seed``; both ``(n,)``, means over the pixels. ``noise_fn(x, t,
        labels)`` is scored instead of the network when given (e.g. a baseline predictor)."""
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        t = _check_int("t", t, 0)
        if t >= self.steps:
            raise ValueError(f"t must be a 0-based step below {self.steps}, got {t}")
        eps = np.random.default_rng(_check_int("seed", seed, 0)).standard_normal(x.shape)
        eps = eps.astype(np.float32)
        steps = tf.fill((len(x),), t)
        labels = self._labels(None if labels is None else tf.constant(labels), len(x))
        errors = self._noise_errors(tf.constant(x), steps, tf.constant(eps), labels,
                                    self._noise_fn(noise_fn))
        return np.asarray(errors), np.mean(eps**2, axis=1)

    def _predicted_x0(self, x, eps, alpha_bar):
        x0 = (x - ops.sqrt(1.0 - alpha_bar) * eps) / ops.sqrt(alpha_bar)
        return x0 if self.clip is None else ops.clip(x0, -self.clip, self.clip)

    def _ddpm_loop(self, x, labels, noise_fn, keep_path):
        """The reverse chain t = T … 1 in one graph (``tf.range`` becomes a ``tf.while_loop``)."""
        path = tf.TensorArray(tf.float32, size=self.steps + 1 if keep_path else 1)
        path = path.write(0, x)
        for i in tf.range(self.steps):
            t = self.steps - 1 - i
            steps = tf.fill((tf.shape(x)[0],), t)
            alpha_bar = tf.gather(self.alpha_bars, t)
            alpha_bar_prev = tf.where(t > 0, tf.gather(self.alpha_bars, tf.maximum(t - 1, 0)), 1.0)
            beta = tf.gather(self.betas, t)
            eps = noise_fn(x, steps, labels)
            x0 = self._predicted_x0(x, eps, alpha_bar)
            # the mean and variance of q(x_{t-1} | x_t, x_0), with x_0 replaced by its prediction
            mean = (tf.sqrt(alpha_bar_prev) * beta / (1.0 - alpha_bar) * x0
                    + tf.sqrt(1.0 - beta) * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar) * x)
            variance = beta * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
            z = keras.random.normal(tf.shape(x), seed=self.sampling_noise)
            x = mean + tf.sqrt(variance) * z  # the variance is 0 at the last step
            if keep_path:
                path = path.write(i + 1, x)
        return path.stack() if keep_path else x

    def _ddim_loop(self, x, step_list, etas, labels, noise_fn, keep_path, stochastic):
        count = tf.shape(step_list)[0]
        path = tf.TensorArray(tf.float32, size=count + 1 if keep_path else 1)
        path = path.write(0, x)
        for i in tf.range(count):
            t = step_list[count - 1 - i]
            t_prev = tf.where(i < count - 1, step_list[tf.maximum(count - 2 - i, 0)], -1)
            alpha_bar = tf.gather(self.alpha_bars, t)
            alpha_bar_prev = tf.where(t_prev >= 0, tf.gather(self.alpha_bars, tf.maximum(t_prev, 0)),
                                      1.0)
            eps = noise_fn(x, tf.fill((tf.shape(x)[0],), t), labels)
            x0 = self._predicted_x0(x, eps, alpha_bar)
            eps = (x - tf.sqrt(alpha_bar) * x0) / tf.sqrt(1.0 - alpha_bar)  # consistent with x0
            if stochastic:  # sigma^2 = eta^2 * beta-tilde between the two steps; 0 at the last
                eta = etas[count - 1 - i]
                sigma = eta * tf.sqrt((1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
                                      * (1.0 - alpha_bar / alpha_bar_prev))
                z = keras.random.normal(tf.shape(x), seed=self.sampling_noise)
                x = (tf.sqrt(alpha_bar_prev) * x0
                     + tf.sqrt(tf.maximum(1.0 - alpha_bar_prev - sigma**2, 0.0)) * eps + sigma * z)
            else:
                x = tf.sqrt(alpha_bar_prev) * x0 + tf.sqrt(1.0 - alpha_bar_prev) * eps
            if keep_path:
                path = path.write(i + 1, x)
        return path.stack() if keep_path else x

    def _start(self, n, x_T):
        if x_T is None:
            n = _check_int("n", n, 1)
            return keras.random.normal((n, self.data_dim), seed=self.sampling_noise)
        x_T = np.asarray(x_T, dtype=np.float32)
        if x_T.ndim != 2 or x_T.shape[1] != self.data_dim:
            raise ValueError(f"x_T must be (n, {self.data_dim}) starting noise, got {x_T.shape}")
        return tf.constant(x_T)

    def _noise_fn(self, noise_fn):
        if noise_fn is None:
            return self.predict_noise
        if not callable(noise_fn):
            raise ValueError("noise_fn must be a callable (x, t, labels) -> predicted noise")
        return noise_fn

    def ddpm(self, n: int | None = None, labels=None, x_T=None, noise_fn: Callable | None = None,
             keep_path: bool = False) -> np.ndarray:
        """DDPM ancestral sampling: ``n`` samples ``(n, data_dim)`` from pure noise through all T
        steps, :math:`x_{t-1} \\sim N(\\tilde\\mu_t(x_t, \\hat x_0), \\tilde\\beta_t I)`, with
        :math:`\\hat x_0` predicted from the network's noise and clipped to the data's range.

        ``x_T`` (``(n, data_dim)``) fixes the starting noise instead of drawing it; the noise added
        at each step is always drawn from the model's sampling generator. ``labels`` (conditional
        networks) requests classes; ``noise_fn(x, t, labels)`` replaces the network's prediction
        (e.g. a guided one). ``keep_path=True`` returns every state, ``(T + 1, n, data_dim)``, from
        :math:`x_T` to :math:`x_0`. The loop over the steps is one ``tf.function``.
        """
        x = self._start(n, x_T)
        labels = self._labels(None if labels is None else tf.constant(labels), x.shape[0])
        return np.asarray(self._ddpm(x, labels, self._noise_fn(noise_fn), bool(keep_path)))

    def ddim(self, x_T, steps: int, labels=None, noise_fn: Callable | None = None,
             keep_path: bool = False, eta=0.0) -> np.ndarray:
        """DDIM sampling (Song, Meng and Ermon 2021) on ``steps`` evenly spaced steps of the T the
        network was trained on, from step :math:`t` to the next listed step :math:`t'`:

        .. math:: x_{t'} = \\sqrt{\\bar\\alpha_{t'}}\\, \\hat x_0
                  + \\sqrt{1 - \\bar\\alpha_{t'} - \\sigma_t^2}\\, \\hat\\varepsilon + \\sigma_t z,
                  \\qquad \\sigma_t^2 = \\eta^2\\, \\frac{1 - \\bar\\alpha_{t'}}{1 - \\bar\\alpha_t}
                  \\Big(1 - \\frac{\\bar\\alpha_t}{\\bar\\alpha_{t'}}\\Big).

        With ``eta=0`` (the default) no noise is added: the same starting noise ``x_T``
        ``(n, data_dim)`` always gives the same samples. ``eta=1`` on all T steps is DDPM's
        ancestral sampler (:math:`\\sigma_t^2 = \\tilde\\beta_t`). ``eta`` is a number ≥ 0, or one
        per listed step (``(steps,)``, in increasing order of t) to add noise at some steps only;
        the noise comes from the model's sampling generator. ``labels``, ``noise_fn`` and
        ``keep_path`` as in :meth:`ddpm`.
        """
        steps = _check_int("steps", steps, 1)
        if steps > self.steps:
            raise ValueError(f"steps must be at most the schedule's {self.steps}, got {steps}")
        x = self._start(None, x_T)
        step_list = np.unique(np.linspace(0, self.steps - 1, steps).round().astype(np.int32))
        etas = np.broadcast_to(np.asarray(eta, dtype=np.float64), (len(step_list),)) \
            if np.ndim(eta) == 0 else np.asarray(eta, dtype=np.float64)
        if etas.shape != (len(step_list),) or not np.all(np.isfinite(etas)) or np.any(etas < 0):
            raise ValueError(f"eta must be a number >= 0 or {len(step_list)} of them (one per step), "
                             f"got {eta!r}")
        labels = self._labels(None if labels is None else tf.constant(labels), x.shape[0])
        return np.asarray(self._ddim(x, tf.constant(step_list), tf.constant(etas, tf.float32), labels,
                                     self._noise_fn(noise_fn), bool(keep_path),
                                     bool(np.any(etas > 0))))


def gaussian_noise_predictor(data, schedule: NoiseSchedule) -> Callable:
    """The exact noise predictor :math:`E[\\varepsilon \\mid x_t]` for data drawn from the Gaussian
    :math:`N(\\mu, \\Sigma)` fitted to ``data`` ``(n, d)`` (mean and covariance):

    .. math:: \\hat\\varepsilon(x_t, t) = \\sqrt{1 - \\bar\\alpha_t}\\,
              \\big(\\bar\\alpha_t \\Sigma + (1 - \\bar\\alpha_t) I\\big)^{-1}
              (x_t - \\sqrt{\\bar\\alpha_t}\\, \\mu),

    a linear (Wiener) filter for each step — the best any predictor can do that knows only the
    data's first two moments. Returns ``noise_fn(x, t, labels=None)`` (``t`` 0-based, ``(batch,)``)
    for :meth:`Diffusion.noise_errors` and the samplers. Taught in chapter 16.
    """
    if not isinstance(schedule, NoiseSchedule):
        raise ValueError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or len(data) < 2:
        raise ValueError(f"data must be (n, d) with n >= 2, got shape {data.shape}")
    mean, cov = data.mean(0), np.atleast_2d(np.cov(data, rowvar=False))
    alpha_bars = schedule.alpha_bars.astype(np.float64)
    eye = np.eye(data.shape[1])
    filters = np.stack([np.sqrt(1 - a) * np.linalg.inv(a * cov + (1 - a) * eye) for a in alpha_bars])
    offsets = -np.einsum("tij,j->ti", filters, mean) * np.sqrt(alpha_bars)[:, None]
    filters, offsets = tf.constant(filters, tf.float32), tf.constant(offsets, tf.float32)

    def noise_fn(x, t, labels=None):
        t = tf.cast(t, tf.int32)
        return tf.einsum("bij,bj->bi", tf.gather(filters, t), tf.cast(x, tf.float32)) + tf.gather(
            offsets, t)

    return noise_fn


def to_pixels(samples, image_shape=(8, 8)) -> np.ndarray:
    """Samples in [−1, 1] as images in [0, 1] of ``image_shape`` (clipped), for the judge."""
    samples = np.asarray(samples, dtype=np.float32)
    return np.clip((samples + 1.0) / 2.0, 0.0, 1.0).reshape((len(samples), *image_shape))


class SampleSnapshots(keras.callbacks.Callback):
    """Keeps DDIM samples from the same starting noise ``x_T`` after the chosen ``epochs``
    (1-based), in ``snapshots[epoch]`` ``(n, data_dim)``: the samples forming as training goes on.
    Cheap: ``steps`` network calls per snapshot. Taught in chapter 16."""

    def __init__(self, x_T, epochs, steps: int = 10):
        super().__init__()
        self.x_T = np.asarray(x_T, dtype=np.float32)
        self.epochs = tuple(_check_int("epoch", e, 1) for e in epochs)
        self.steps = _check_int("steps", steps, 1)
        self.snapshots: dict[int, np.ndarray] = {}

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 in self.epochs:
            self.snapshots[epoch + 1] = self.model.ddim(self.x_T, self.steps)
