"""Optimisers as NumPy update rules, gradient clipping, and per-layer statistics of a network.

The five classes here (:class:`SGD`, :class:`Momentum`, :class:`Adagrad`, :class:`RMSprop`,
:class:`Adam`) follow Keras 3's definitions exactly — the same defaults, the same place for
epsilon, the same bias correction — so that one step of ours equals one step of
``keras.optimizers`` on the same gradients. Each has one method, ``update(params, grads)``, which
changes the parameter arrays in place, as an optimiser changes a model's variables.

:func:`layer_statistics` measures, layer by layer, how large a Keras model's activations and
gradients are on one batch: the numbers that show whether an initialisation lets signals vanish,
explode or pass through a deep network intact. Taught in chapter 5.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


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

    Subclasses implement :meth:`step`, the rule for one parameter array. Taught in chapter 5.
    """

    def __init__(self, learning_rate: float):
        self.learning_rate = _check_positive("learning_rate", learning_rate)
        self.iterations = 0  # updates done so far; Adam's bias correction needs it
        self.state: list[dict[str, np.ndarray]] = []  # one dict of slots per parameter array

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
        for param, grad, slots in zip(params, grads, self.state, strict=True):
            self.step(param, np.asarray(grad, dtype=param.dtype), slots)
        self.iterations += 1

    def step(self, param: np.ndarray, grad: np.ndarray, slots: dict[str, np.ndarray]) -> None:
        """Update one parameter array in place; ``slots`` holds its state between calls."""
        raise NotImplementedError(f"{type(self).__name__} must define step()")


class SGD(Optimiser):
    r"""Plain gradient descent: $\theta \leftarrow \theta - \eta g$. Taught in chapter 5."""

    def __init__(self, learning_rate: float = 0.01):
        super().__init__(learning_rate)

    def step(self, param, grad, slots):
        param -= self.learning_rate * grad


class Momentum(Optimiser):
    r"""Gradient descent with momentum, as ``keras.optimizers.SGD(momentum=...)``.

    $v \leftarrow \mu v - \eta g$, then $\theta \leftarrow \theta + v$: the velocity $v$ is a
    running sum of past steps, so steps in a consistent direction add up and steps that flip
    sign cancel. Taught in chapter 5.
    """

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.9):
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

    def __init__(self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1,
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

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, epsilon: float = 1e-7):
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
    *outside* the square root, unlike in RMSprop and Adagrad. Taught in chapter 5.
    """

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
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

    Taught in chapter 5.
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
    return {
        "layer": np.array([layer.name for layer in dense]),
        "activation_std": np.array([float(tf.math.reduce_std(a)) for a in activations]),
        "backward_std": np.array([float(tf.math.reduce_std(g)) for g in backward]),
        "kernel_grad_norm": np.array([float(tf.norm(g)) for g in kernel_grads]),
    }
