"""Variational autoencoders: the probabilistic encoder, the ELBO, reparameterisation, sampling.

- :class:`VAE`, a ``keras.Model`` whose ``train_step`` computes the negative ELBO — the
  reconstruction term (Bernoulli likelihood of the pixels: binary cross-entropy on the decoder's
  logits, summed over pixels) plus ``beta`` times the KL divergence of the encoder's Gaussian from
  the prior N(0, I) — with the latent noise drawn from a ``keras.random.SeedGenerator`` the model
  owns. :meth:`VAE.generate` decodes prior samples in one compiled call.
- The maths, checked in NumPy: :func:`gaussian_kl` (closed form) against :func:`monte_carlo_kl`,
  and the two gradient estimators of :math:`\\nabla_\\mu \\mathbb{E}_{z\\sim N(\\mu,\\sigma^2)} f(z)`,
  :func:`reparameterised_gradients` and :func:`score_function_gradients`; the same two
  estimators on a trained VAE's decoder, :func:`code_gradient_estimates`.
- :func:`interpolate` walks between two codes (latent interpolation); :func:`cross_fade` mixes two
  images pixel by pixel (the baseline it is compared with).

Taught in chapter 14.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from dlbook.autoencoders import _check_int, _check_number  # the same argument checks as chapter 13

# --- the maths, in NumPy -----------------------------------------------------------------------

def gaussian_kl(mean, log_var) -> np.ndarray:
    """KL( N(mean, exp(log_var)) ‖ N(0, 1) ) per dimension, in nats, in closed form:
    ``0.5 * (mean² + exp(log_var) - 1 - log_var)``. Sum over the last axis for a diagonal Gaussian.
    Taught in chapter 14."""
    mean, log_var = np.asarray(mean, dtype=np.float64), np.asarray(log_var, dtype=np.float64)
    if mean.shape != log_var.shape:
        raise ValueError(f"mean and log_var must have the same shape, got {mean.shape} and "
                         f"{log_var.shape}")
    return 0.5 * (mean**2 + np.exp(log_var) - 1.0 - log_var)


def monte_carlo_kl(mean: float, log_var: float, n: int, seed: int) -> tuple[float, float]:
    """Monte Carlo estimate of KL( N(mean, exp(log_var)) ‖ N(0, 1) ) and its standard error.

    Averages ``log q(z) - log p(z)`` over ``n`` draws ``z ~ q``: the definition of the KL
    divergence, with no algebra. Taught in chapter 14."""
    n = _check_int("n", n, 2)
    seed = _check_int("seed", seed, 0)
    mean, log_var = float(mean), float(log_var)
    std = np.exp(0.5 * log_var)
    z = mean + std * np.random.default_rng(seed).standard_normal(n)
    log_q = -0.5 * (np.log(2 * np.pi) + log_var + ((z - mean) / std) ** 2)
    log_p = -0.5 * (np.log(2 * np.pi) + z**2)
    terms = log_q - log_p
    return float(terms.mean()), float(terms.std(ddof=1) / np.sqrt(n))


def reparameterised_gradients(df: Callable, mean: float, std: float, n: int, seed: int) -> np.ndarray:
    """``n`` single-sample estimates of d/d(mean) E_{z ~ N(mean, std²)} f(z), reparameterised.

    With ``z = mean + std * eps``, ``eps ~ N(0, 1)``, the gradient moves inside the expectation:
    each estimate is ``f'(mean + std * eps)``. ``df`` is f's derivative (vectorised). Taught in
    chapter 14."""
    n = _check_int("n", n, 1)
    std = _check_number("std", std, 0.0, inclusive=False)
    eps = np.random.default_rng(_check_int("seed", seed, 0)).standard_normal(n)
    return np.asarray(df(mean + std * eps), dtype=np.float64)


def score_function_gradients(f: Callable, mean: float, std: float, n: int, seed: int) -> np.ndarray:
    """``n`` single-sample estimates of the same gradient by the score function (REINFORCE).

    ``d/dmean E f(z) = E[ f(z) * d/dmean log q(z) ] = E[ f(z) (z - mean) / std² ]``: it needs
    only values of ``f``, not its derivative — and pays for that in variance. Taught in chapter 14.
    """
    n = _check_int("n", n, 1)
    std = _check_number("std", std, 0.0, inclusive=False)
    eps = np.random.default_rng(_check_int("seed", seed, 0)).standard_normal(n)
    z = mean + std * eps
    return np.asarray(f(z), dtype=np.float64) * (z - mean) / std**2


# --- the model ---------------------------------------------------------------------------------

def bernoulli_nll(logits, x):
    """``-log p(x | z)`` per example, in nats: the binary cross-entropy of pixels ``x`` against the
    decoder's ``logits``, summed over the last axis, in its stable form
    ``max(l, 0) - l x + log(1 + exp(-|l|))``. Taught in chapter 14."""
    return ops.sum(ops.maximum(logits, 0) - logits * x + ops.log1p(ops.exp(-ops.abs(logits))),
                   axis=-1)


@keras.saving.register_keras_serializable(package="dlbook")
class VAE(keras.Model):
    """A variational autoencoder for images with pixels in [0, 1] (flat: ``(batch, pixels)``).

    ``encoder`` maps a batch to ``2 * latent_dim`` numbers per example, the mean and the log
    variance of the Gaussian q(z | x); ``decoder`` maps codes to one logit per pixel (the Bernoulli
    parameters of p(x | z) before the sigmoid). The training step minimises, per example,

        reconstruction + beta * KL = -E_q log p(x | z) + beta * KL(q(z | x) ‖ N(0, I)),

    the negative ELBO at ``beta = 1``, estimated with one reparameterised draw
    ``z = mean + exp(log_var / 2) * eps`` per example. The reconstruction term is summed over the
    pixels (a per-pixel mean would weigh the KL term hundreds of times more and collapse the
    codes). ``eps`` comes from ``keras.random.SeedGenerator(seed)``, owned by the model; prior
    samples for :meth:`generate` come from a second generator (``seed + 1``), so sampling never
    changes the training stream. ``fit(x)`` takes the images alone; the logged metrics are
    ``loss``, ``reconstruction`` and ``kl`` (nats per image). Taught in chapter 14.
    """

    def __init__(self, encoder: keras.Model, decoder: keras.Model, latent_dim: int,
                 beta: float = 1.0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(encoder, keras.Model) or not isinstance(decoder, keras.Model):
            raise ValueError("encoder and decoder must be keras.Model instances")
        self.latent_dim = _check_int("latent_dim", latent_dim, 1)
        if encoder.output_shape[-1] != 2 * self.latent_dim:
            raise ValueError(f"the encoder must output 2 * latent_dim = {2 * self.latent_dim} "
                             f"numbers (mean and log variance), it outputs {encoder.output_shape[-1]}")
        if decoder.input_shape[-1] != self.latent_dim:
            raise ValueError(f"the decoder must take codes of latent_dim = {self.latent_dim}, "
                             f"it takes {decoder.input_shape[-1]}")
        self.encoder, self.decoder = encoder, decoder
        self.beta = _check_number("beta", beta)
        seed = _check_int("seed", seed, 0)
        self.noise = keras.random.SeedGenerator(seed)
        self.prior_noise = keras.random.SeedGenerator(seed + 1)
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss", "reconstruction", "kl")}
        self._generate = tf.function(self._generate_step)
        self._decode = tf.function(lambda z: ops.sigmoid(self.decoder(z, training=False)))
        self._value_and_slope = tf.function(self._value_and_slope_step)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def posterior(self, x, training=False):
        """The mean and log variance of q(z | x), each ``(batch, latent_dim)``."""
        statistics = self.encoder(x, training=training)
        return statistics[:, :self.latent_dim], statistics[:, self.latent_dim:]

    def call(self, x, training=False):
        """Reconstruction probabilities from the posterior mean (no sampling)."""
        mean, _ = self.posterior(x, training=training)
        return ops.sigmoid(self.decoder(mean, training=training))

    def losses_of(self, x, training):
        """Per-example reconstruction term and KL term (nats), one reparameterised draw."""
        mean, log_var = self.posterior(x, training=training)
        eps = keras.random.normal(ops.shape(mean), seed=self.noise)
        z = mean + ops.exp(0.5 * log_var) * eps
        reconstruction = bernoulli_nll(self.decoder(z, training=training), x)
        kl = 0.5 * ops.sum(ops.square(mean) + ops.exp(log_var) - 1.0 - log_var, axis=-1)
        return reconstruction, kl

    def _record(self, reconstruction, kl):
        loss = ops.mean(reconstruction + self.beta * kl)
        self.trackers["reconstruction"].update_state(ops.mean(reconstruction))
        self.trackers["kl"].update_state(ops.mean(kl))
        self.trackers["loss"].update_state(loss)
        return loss

    def train_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            reconstruction, kl = self.losses_of(x, training=True)
            loss = self._record(reconstruction, kl)  # mean over the batch of reconstruction + β KL
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(gradients, self.trainable_weights)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def test_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        self._record(*self.losses_of(x, training=False))
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _value_and_slope_step(self, x, z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            values = bernoulli_nll(self.decoder(z, training=False), x)
        return values, tape.gradient(values, z)  # each value depends on its own z only

    def _generate_step(self, n):
        z = keras.random.normal((n, self.latent_dim), seed=self.prior_noise)
        return ops.sigmoid(self.decoder(z, training=False))

    def generate(self, n: int) -> np.ndarray:
        """``n`` images decoded from codes drawn from the prior N(0, I): pixel probabilities,
        ``(n, pixels)``, in one compiled call. Each call draws new codes."""
        return np.asarray(self._generate(tf.constant(_check_int("n", n, 1))))

    def encode(self, x) -> np.ndarray:
        """The posterior means of a batch, ``(n, latent_dim)``: the code of each image."""
        return np.asarray(self.posterior(tf.constant(np.asarray(x, np.float32)))[0])

    def decode(self, z) -> np.ndarray:
        """Pixel probabilities for codes ``z`` ``(n, latent_dim)``, in one compiled call."""
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be (n, {self.latent_dim}), got shape {z.shape}")
        return np.asarray(self._decode(tf.constant(z)))


def code_gradient_estimates(model: VAE, x, draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Single-draw estimates of the gradient that trains the encoder's means, in the real model.

    For each image of ``x`` ``(n, pixels)`` and its posterior N(mean, std²): ``draws`` estimates
    of d/d(mean) E_q[-log p(x | z)] (the reconstruction term), both ways, from the same draws
    ``z = mean + std * eps``: reparameterised, the decoder's slope ``∂(-log p(x | z))/∂z`` (one
    compiled tape call), and score function, ``-log p(x | z) * (z - mean) / std²`` (values only).
    Returns the two arrays, each ``(draws, n, latent_dim)``; both have the same expectation.
    Taught in chapter 14.
    """
    if not isinstance(model, VAE):
        raise ValueError(f"model must be a dlbook.vae.VAE, got {type(model).__name__}")
    rows = np.asarray(x, dtype=np.float32)
    if rows.ndim != 2 or len(rows) == 0:
        raise ValueError(f"x must be a non-empty batch (n, pixels), got shape {rows.shape}")
    draws = _check_int("draws", draws, 2)
    mean, log_var = (np.asarray(a, dtype=np.float64) for a in model.posterior(tf.constant(rows)))
    std = np.exp(0.5 * log_var)
    eps = np.random.default_rng(_check_int("seed", seed, 0)).standard_normal((draws, *mean.shape))
    z = (mean + std * eps).astype(np.float32).reshape(-1, model.latent_dim)
    repeated = np.broadcast_to(rows, (draws, *rows.shape)).reshape(-1, rows.shape[1])
    values, slopes = model._value_and_slope(tf.constant(repeated), tf.constant(z))
    values = np.asarray(values, dtype=np.float64).reshape(draws, len(rows), 1)
    slopes = np.asarray(slopes, dtype=np.float64).reshape(eps.shape)
    return slopes, values * eps / std  # (z - mean) / std² = eps / std


# --- interpolation -----------------------------------------------------------------------------

def interpolate(start, end, steps: int) -> np.ndarray:
    """``steps`` points on the straight line from ``start`` to ``end`` (both included), for
    batches: ``(n, d)`` and ``(n, d)`` give ``(steps, n, d)``. Taught in chapter 14."""
    a, b = np.asarray(start, dtype=np.float32), np.asarray(end, dtype=np.float32)
    if a.shape != b.shape:
        raise ValueError(f"start and end must have the same shape, got {a.shape} and {b.shape}")
    steps = _check_int("steps", steps, 2)
    weights = np.linspace(0.0, 1.0, steps, dtype=np.float32).reshape(-1, *([1] * a.ndim))
    return (1 - weights) * a[None] + weights * b[None]


def cross_fade(start_images, end_images, steps: int) -> np.ndarray:
    """Pixel-space interpolation: the images blended ``(1 - t) a + t b``: the baseline a
    latent interpolation is compared with. Taught in chapter 14."""
    return interpolate(start_images, end_images, steps)


class SampleSnapshots(keras.callbacks.Callback):
    """Decodes the same fixed codes at the end of chosen epochs: samples over training.

    ``codes`` ``(n, latent_dim)`` are drawn once (from the prior), so the snapshots show the same
    samples maturing. After ``fit``, ``snapshots`` maps each epoch number (1-based) in ``epochs``
    to its ``(n, pixels)`` images. Taught in chapter 14.
    """

    def __init__(self, codes, epochs):
        super().__init__()
        self.codes = np.asarray(codes, dtype=np.float32)
        if self.codes.ndim != 2:
            raise ValueError(f"codes must be (n, latent_dim), got shape {self.codes.shape}")
        self.epochs = sorted({_check_int("epoch", e, 1) for e in epochs})
        if not self.epochs:
            raise ValueError("epochs must name at least one epoch (1-based)")
        self.snapshots: dict[int, np.ndarray] = {}

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 in self.epochs:
            self.snapshots[epoch + 1] = self.model.decode(self.codes)
