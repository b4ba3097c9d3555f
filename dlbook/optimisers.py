"""Optimisers as NumPy update rules, learning-rate schedules, clipping, and signal statistics.

The classes here (:class:`SGD`, :class:`Momentum`, :class:`Adagrad`, :class:`RMSprop`,
:class:`Adam`, :class:`AdamW`) follow Keras 3's definitions exactly — the same defaults, the same
place for epsilon, the same bias correction, the same decoupled weight decay — so that one step of
ours equals one step of ``keras.optimizers`` on the same gradients. Each has one method,
``update(params, grads)``, which changes the parameter arrays in place, as an optimiser changes a
model's variables. The learning rate may be a number or a schedule (a function of the step, such
as :func:`cosine_decay`).

:func:`layer_statistics` measures, layer by layer, how large a Keras model's activations and
gradients are on one batch, and :func:`predicted_signal` predicts the same numbers from the
variance arithmetic: together they show whether an initialisation lets signals vanish, explode or
pass through a deep network intact. Taught in chapter 5.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

Schedule = Callable[[int], float]


def _check_positive(name: str, value: float) -> float:
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _check_fraction(name: str, value: float) -> float:
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


class Optimiser:
    """What every update rule shares: a learning rate, a step counter and per-parameter state.

    ``learning_rate`` is a positive number, or a schedule: a function of the number of updates
    done so far (0 for the first) that returns the rate for the next one, as a Keras
    ``LearningRateSchedule`` is. Before each update the schedule's value is stored in
    ``self.learning_rate``, so :meth:`step` always reads the current rate there.

    Subclasses implement :meth:`step`, the rule for one parameter array. Taught in chapter 5.
    """

    def __init__(self, learning_rate: float | Schedule):
        self.schedule: Schedule | None = None
        if callable(learning_rate):
            self.schedule = learning_rate
            learning_rate = self._scheduled_rate(0)
        else:
            learning_rate = _check_positive("learning_rate", learning_rate)
        self.learning_rate = learning_rate
        self.iterations = 0  # updates done so far; Adam's bias correction needs it
        self.state: list[dict[str, np.ndarray]] = []  # one dict of slots per parameter array

    def _scheduled_rate(self, step: int) -> float:
        rate = float(self.schedule(step))
        if not np.isfinite(rate) or rate < 0:
            raise ValueError(f"the learning-rate schedule returned {rate!r} at step {step}; "
                             "it must return a finite number >= 0")
        return rate

    def update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        """Apply one update to each array in ``params`` (in place) from its gradient in ``grads``."""
        if len(params) != len(grads):
            raise ValueError(f"got {len(params)} parameter arrays but {len(grads)} gradients")
        for index, (param, grad) in enumerate(zip(params, grads, strict=True)):
            if not isinstance(param, np.ndarray) or param.dtype.kind != "f":
                raise ValueError(f"params[{index}] must be a float NumPy array (updated in place)")
            if np.shape(grad) != param.shape:
                raise ValueError(
                    f"grads[{index}] has shape {np.shape(grad)}, its parameter has {param.shape}"
                )
        if not self.state:
            self.state = [{} for _ in params]
        elif len(self.state) != len(params):
            raise ValueError(
                f"this optimiser holds state for {len(self.state)} parameter arrays, got "
                f"{len(params)}; use one optimiser per set of parameters"
            )
        if self.schedule is not None:
            self.learning_rate = self._scheduled_rate(self.iterations)
        for param, grad, slots in zip(params, grads, self.state, strict=True):
            self.step(param, np.asarray(grad, dtype=param.dtype), slots)
        self.iterations += 1

    def step(self, param: np.ndarray, grad: np.ndarray, slots: dict[str, np.ndarray]) -> None:
        """Update one parameter array in place; ``slots`` holds its state between calls."""
        raise NotImplementedError(f"{type(self).__name__} must define step()")


class SGD(Optimiser):
    r"""Plain gradient descent: $\theta \leftarrow \theta - \eta g$. Taught in chapter 5."""

    def __init__(self, learning_rate: float | Schedule = 0.01):
        super().__init__(learning_rate)

    def step(self, param, grad, slots):
        param -= self.learning_rate * grad


class Momentum(Optimiser):
    r"""Gradient descent with momentum, as ``keras.optimizers.SGD(momentum=...)``.

    $v \leftarrow \mu v - \eta g$, then $\theta \leftarrow \theta + v$: the velocity $v$ is a
    running sum of past steps, so steps in a consistent direction add up and steps that flip
    sign cancel. Taught in chapter 5.
    """

    def __init__(self, learning_rate: float | Schedule = 0.01, momentum: float = 0.9):
        super().__init__(learning_rate)
        self.momentum = _check_fraction("momentum", momentum)

    def step(self, param, grad, slots):
        velocity = slots.setdefault("velocity", np.zeros_like(param))
        velocity *= self.momentum
        velocity -= self.learning_rate * grad
        param += velocity


class Adagrad(Optimiser):
    r"""Adagrad, as ``keras.optimizers.Adagrad``: a per-coordinate step that shrinks forever.

    $a \leftarrow a + g^2$ (starting from ``initial_accumulator_value``), then
    $\theta \leftarrow \theta - \eta g / \sqrt{a + \epsilon}$. Taught in chapter 5.
    """

    def __init__(self, learning_rate: float | Schedule = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7):
        super().__init__(learning_rate)
        if not initial_accumulator_value >= 0:
            raise ValueError(
                f"initial_accumulator_value must be >= 0, got {initial_accumulator_value!r}"
            )
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = _check_positive("epsilon", epsilon)

    def step(self, param, grad, slots):
        accumulator = slots.setdefault(
            "accumulator", np.full_like(param, self.initial_accumulator_value)
        )
        accumulator += grad**2
        param -= self.learning_rate * grad / np.sqrt(accumulator + self.epsilon)


class RMSprop(Optimiser):
    r"""RMSprop, as ``keras.optimizers.RMSprop``: Adagrad with a forgetting running average.

    $s \leftarrow \rho s + (1 - \rho) g^2$, then
    $\theta \leftarrow \theta - \eta g / \sqrt{s + \epsilon}$. Taught in chapter 5.
    """

    def __init__(self, learning_rate: float | Schedule = 0.001, rho: float = 0.9, epsilon: float = 1e-7):
        super().__init__(learning_rate)
        self.rho = _check_fraction("rho", rho)
        self.epsilon = _check_positive("epsilon", epsilon)

    def step(self, param, grad, slots):
        square_average = slots.setdefault("square_average", np.zeros_like(param))
        square_average *= self.rho
        square_average += (1 - self.rho) * grad**2
        param -= self.learning_rate * grad / np.sqrt(square_average + self.epsilon)


class Adam(Optimiser):
    r"""Adam, as ``keras.optimizers.Adam``: momentum plus RMSprop, with bias correction.

    $m \leftarrow \beta_1 m + (1-\beta_1) g$, $v \leftarrow \beta_2 v + (1-\beta_2) g^2$; at step
    $t$ the learning rate becomes $\alpha_t = \eta \sqrt{1-\beta_2^t} / (1-\beta_1^t)$ and
    $\theta \leftarrow \theta - \alpha_t m / (\sqrt{v} + \epsilon)$. Note that epsilon is added
    *outside* the square root, unlike in RMSprop and Adagrad, and to the uncorrected $\sqrt{v}$: in
    the textbook form $\hat m / (\sqrt{\hat v} + \hat\epsilon)$ with bias-corrected averages this
    is $\hat\epsilon = \epsilon / \sqrt{1 - \beta_2^t}$. Taught in chapter 5.
    """

    def __init__(self, learning_rate: float | Schedule = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7):
        super().__init__(learning_rate)
        self.beta_1 = _check_fraction("beta_1", beta_1)
        self.beta_2 = _check_fraction("beta_2", beta_2)
        self.epsilon = _check_positive("epsilon", epsilon)

    def step(self, param, grad, slots):
        m = slots.setdefault("m", np.zeros_like(param))
        v = slots.setdefault("v", np.zeros_like(param))
        t = self.iterations + 1
        alpha = self.learning_rate * np.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        m += (1 - self.beta_1) * (grad - m)
        v += (1 - self.beta_2) * (grad**2 - v)
        param -= alpha * m / (np.sqrt(v) + self.epsilon)


class AdamW(Adam):
    r"""Adam with decoupled weight decay, as ``keras.optimizers.AdamW`` (Loshchilov & Hutter, 2019).

    Each update first shrinks the parameter, $\theta \leftarrow \theta - \eta\lambda\theta$
    ($\lambda$ = ``weight_decay``), and then takes the Adam step computed from the gradient alone.
    The decay never enters the moment estimates $m$ and $v$, so every weight decays by the same
    factor $1 - \eta\lambda$ per step, however large or rare its gradients are. An L2 penalty under
    Adam, by contrast, adds $2\lambda\theta$ to the gradient, which Adam then divides by
    $\sqrt{v}$. Like Keras, this decays every array it is given: leave biases out if they should
    not decay. Taught in chapter 5 (and used in chapter 6).
    """

    def __init__(self, learning_rate: float | Schedule = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7):
        super().__init__(learning_rate, beta_1, beta_2, epsilon)
        if not np.isfinite(weight_decay) or weight_decay < 0:
            raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
        self.weight_decay = float(weight_decay)

    def step(self, param, grad, slots):
        param -= self.learning_rate * self.weight_decay * param
        super().step(param, grad, slots)


def cosine_decay(initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 warmup_target: float | None = None, warmup_steps: int = 0) -> Schedule:
    r"""A cosine learning-rate schedule with optional linear warm-up, as Keras' ``CosineDecay``.

    Without warm-up the rate at step $t$ is
    $\eta_0\,[\alpha + (1-\alpha)\,\tfrac12(1 + \cos(\pi \min(t, T)/T))]$ with $T$ =
    ``decay_steps``: it falls from $\eta_0$ to $\alpha\eta_0$ along half a cosine and stays there.
    With ``warmup_target`` the rate first climbs linearly from ``initial_learning_rate`` to
    ``warmup_target`` over ``warmup_steps`` steps, then decays from ``warmup_target`` as above.
    Returns a function of the step (0 for the first update). Taught in chapter 5.
    """
    if not np.isfinite(initial_learning_rate) or initial_learning_rate < 0:
        raise ValueError(f"initial_learning_rate must be a finite number >= 0, "
                         f"got {initial_learning_rate!r}")
    if isinstance(decay_steps, bool) or not isinstance(decay_steps, int) or decay_steps < 1:
        raise ValueError(f"decay_steps must be an int >= 1, got {decay_steps!r}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha (the final fraction of the rate) must be in [0, 1], got {alpha!r}")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise ValueError(f"warmup_steps must be an int >= 0, got {warmup_steps!r}")
    if warmup_target is not None and (not np.isfinite(warmup_target) or warmup_target <= 0):
        raise ValueError(f"warmup_target must be a positive number, got {warmup_target!r}")
    if warmup_target is None and warmup_steps:
        raise ValueError("warmup_steps needs a warmup_target, the rate to warm up to")

    def decayed(step: float, peak: float) -> float:
        fraction = min(step, decay_steps) / decay_steps
        return peak * (alpha + (1 - alpha) * 0.5 * (1 + math.cos(math.pi * fraction)))

    def schedule(step: int) -> float:
        if warmup_target is None:
            return decayed(step, initial_learning_rate)
        if step < warmup_steps:
            return initial_learning_rate + (warmup_target - initial_learning_rate) * (
                step / warmup_steps)
        return decayed(step - warmup_steps, warmup_target)

    return schedule


def clip_by_global_norm(grads: Sequence[np.ndarray], max_norm: float) -> list[np.ndarray]:
    r"""Scale all gradients by one factor so that their joint L2 norm is at most ``max_norm``.

    With $\|g\| = \sqrt{\sum_i \|g_i\|^2}$ over all arrays, each $g_i$ becomes
    $g_i \cdot \min(1, \text{max\_norm} / \|g\|)$: the direction is kept, only the length is
    capped. This is what ``global_clipnorm=`` does in every Keras optimiser. Taught in chapter 5.
    """
    max_norm = _check_positive("max_norm", max_norm)
    grads = [np.asarray(g) for g in grads]
    if not grads:
        raise ValueError("grads must hold at least one array")
    norm = np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
    scale = min(1.0, max_norm / norm) if norm > 0 else 1.0
    return [g * np.asarray(scale, dtype=g.dtype) for g in grads]


_ACTIVATIONS = {  # name: (phi, phi')
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
}
_NORMAL_GRID = np.linspace(-12.0, 12.0, 48_001)  # includes 0, so ReLU's kink is a grid point
_NORMAL_WEIGHTS = np.exp(-0.5 * _NORMAL_GRID**2) / np.sqrt(2 * np.pi) * (_NORMAL_GRID[1]
                                                                         - _NORMAL_GRID[0])


def _gaussian_mean(f: Callable[[np.ndarray], np.ndarray], variance: float) -> float:
    """E[f(z)] for z ~ N(0, variance), by quadrature on a fine grid."""
    return float(np.sum(_NORMAL_WEIGHTS * f(np.sqrt(variance) * _NORMAL_GRID)))


def predicted_signal(activation: str, weight_std: float, width: int, depth: int,
                     input_dim: int | None = None,
                     input_second_moment: float = 1.0) -> dict[str, np.ndarray]:
    r"""The per-layer spread of signals in a deep MLP at initialisation, from the variance arithmetic.

    For ``depth`` hidden ``Dense`` layers of ``width`` units with zero biases and weights drawn
    with mean 0 and standard deviation ``weight_std`` (the first layer has ``input_dim`` inputs,
    default ``width``; the inputs have mean square ``input_second_moment``), the pre-activation
    variance of layer $l$ is $q_l = n_{\text{in}}\sigma^2\,\mathbb{E}[h_{l-1}^2]$ and
    $h_l = \phi(z_l)$ with $z_l \sim \mathcal N(0, q_l)$: the infinitely-wide ("mean-field") limit,
    in which each expectation is a one-dimensional Gaussian integral, computed here by quadrature.
    Going backwards, the error's variance is multiplied by
    $n_{\text{out}}\sigma^2\,\mathbb{E}[\phi'(z_{l+1})^2]$ per layer.

    Returns ``"activation_std"``, the predicted standard deviation of each layer's output, and
    ``"backward_std"``, that of the gradient with respect to each layer's output *relative to the
    last hidden layer's* (whose size depends on the output layer and the loss), both of shape
    ``(depth,)`` — the quantities :func:`layer_statistics` measures. ``activation`` is
    ``"linear"``, ``"relu"`` or ``"tanh"``. Taught in chapter 5.
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    weight_std = _check_positive("weight_std", weight_std)
    for argument, value in (("width", width), ("depth", depth)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{argument} must be an int >= 1, got {value!r}")
    input_dim = width if input_dim is None else input_dim
    if isinstance(input_dim, bool) or not isinstance(input_dim, int) or input_dim < 1:
        raise ValueError(f"input_dim must be an int >= 1, got {input_dim!r}")
    input_second_moment = _check_positive("input_second_moment", input_second_moment)
    phi, phi_prime = _ACTIVATIONS[activation]
    variances, stds = [], []
    second_moment, fan_in = input_second_moment, input_dim
    for _ in range(depth):
        q = fan_in * weight_std**2 * second_moment
        mean = _gaussian_mean(phi, q)
        second_moment = _gaussian_mean(lambda z: phi(z) ** 2, q)
        variances.append(q)
        stds.append(np.sqrt(max(second_moment - mean**2, 0.0)))
        fan_in = width
    backward = np.ones(depth)
    for layer in range(depth - 2, -1, -1):  # the error reaching layer l came through layer l + 1
        gain = width * weight_std**2 * _gaussian_mean(lambda z: phi_prime(z) ** 2,
                                                      variances[layer + 1])
        backward[layer] = backward[layer + 1] * np.sqrt(gain)
    return {"activation_std": np.array(stds), "backward_std": backward}


def layer_statistics(model, x, y, loss: Callable) -> dict[str, np.ndarray]:
    """Per-layer activation and gradient sizes of a Keras model (TensorFlow backend) on one batch.

    ``model`` must be a ``keras.Sequential``: its layers are applied one after the other to ``x``
    (with ``training=True``) under one ``tf.GradientTape``, and ``loss(y, predictions)`` must
    return a scalar. For each ``Dense`` layer, in order, the result holds (one entry per layer):

    - ``"layer"``: the layer names;
    - ``"activation_std"``: standard deviation of the layer's output (after its activation);
    - ``"backward_std"``: standard deviation of the gradient of the loss with respect to that
      output — the error signal backpropagation carries into the layer;
    - ``"kernel_grad_norm"``: L2 norm of the gradient of the loss with respect to the layer's
      kernel — what the optimiser sees.

    The network runs in its own precision; the statistics are computed in float64, because a
    float32 standard deviation squares its inputs and so underflows to 0 for values near 1e-19
    that float32 itself holds without trouble. Taught in chapter 5.
    """
    import keras
    import tensorflow as tf

    if not isinstance(model, keras.Sequential):
        raise ValueError(f"model must be a keras.Sequential, got {type(model).__name__}")
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise ValueError("model has no Dense layers to measure")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    activations = []
    with tf.GradientTape() as tape:
        outputs = tf.convert_to_tensor(x)
        for layer in model.layers:
            outputs = layer(outputs, training=True)
            if isinstance(layer, keras.layers.Dense):
                activations.append(outputs)
        loss_value = loss(y, outputs)
    if loss_value.shape.rank != 0:
        raise ValueError(f"loss must return a scalar, got shape {tuple(loss_value.shape)}")
    backward, kernel_grads = tape.gradient(
        loss_value, (activations, [layer.kernel for layer in dense])
    )
    # In float64: the squares inside a float32 std underflow (below ~1e-38, or ~1e-45 with
    # subnormals) long before the values themselves do, and would report tiny signals as 0.
    def as64(tensors):
        return [np.asarray(t.numpy(), dtype=np.float64) for t in tensors]

    return {
        "layer": np.array([layer.name for layer in dense]),
        "activation_std": np.array([np.std(a) for a in as64(activations)]),
        "backward_std": np.array([np.std(g) for g in as64(backward)]),
        "kernel_grad_norm": np.array([np.linalg.norm(g) for g in as64(kernel_grads)]),
    }
