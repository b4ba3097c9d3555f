"""Neural networks from scratch in NumPy: a neuron, the perceptron, a multi-layer perceptron.

Chapter 2 builds these pieces and checks them against central finite differences and against
Keras; later chapters (chapter 4 on) reuse them as a small, transparent reference to compare
Keras with. Everything is float64 and seeded.

Conventions, the same as Keras so that weights copy across unchanged:

- samples are rows: ``X`` has shape ``(n_samples, n_features)``;
- a dense layer computes ``Z = A @ W + b`` with ``W`` of shape ``(fan_in, fan_out)`` (the layout
  of a ``keras.layers.Dense`` kernel) and ``b`` of shape ``(fan_out,)``;
- class labels are integers ``0 .. n_classes - 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

# --- Activations --------------------------------------------------------------------------------


def heaviside(z: np.ndarray) -> np.ndarray:
    """The step function: 1 where ``z > 0``, else 0 — the perceptron's activation.

    Taught in chapter 2.
    """
    return (np.asarray(z) > 0).astype(np.float64)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic sigmoid ``1 / (1 + exp(-z))``, written with tanh so it never overflows.

    Taught in chapter 2.
    """
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def relu(z: np.ndarray) -> np.ndarray:
    """Rectified linear unit ``max(z, 0)``. Taught in chapter 2."""
    return np.maximum(np.asarray(z, dtype=np.float64), 0.0)


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "step": heaviside,
    "identity": lambda z: np.asarray(z, dtype=np.float64),
    "sigmoid": sigmoid,
    "tanh": lambda z: np.tanh(np.asarray(z, dtype=np.float64)),
    "relu": relu,
}

# Derivative of each differentiable activation with respect to its input z. The step function
# has derivative 0 almost everywhere, which is why it cannot be trained by gradient descent.
DERIVATIVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": np.ones_like,
    "sigmoid": lambda z: sigmoid(z) * (1.0 - sigmoid(z)),
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,
    "relu": lambda z: (z > 0).astype(np.float64),
}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax; the row maximum is subtracted first so ``exp`` cannot overflow.

    Taught in chapter 2.
    """
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exps = np.exp(shifted)
    return exps / exps.sum(axis=-1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise ``log(softmax(logits))``, computed without forming tiny probabilities first."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# --- A single neuron and the perceptron ----------------------------------------------------------


def neuron(x: np.ndarray, w: np.ndarray, b: float, activation: str = "step") -> np.ndarray:
    """One artificial neuron: ``activation(x @ w + b)``.

    ``x`` is one input ``(n_features,)`` or a batch ``(n_samples, n_features)``; ``w`` is
    ``(n_features,)``; ``activation`` is one of :data:`ACTIVATIONS`. Taught in chapter 2.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"w must be a 1-D weight vector, got shape {w.shape}")
    if x.ndim not in (1, 2) or x.shape[-1] != w.shape[0]:
        raise ValueError(f"x must have {w.shape[0]} features in its last axis, got shape {x.shape}")
    return ACTIVATIONS[activation](x @ w + b)


def _check_binary_data(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X, got {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"y must contain only the labels 0 and 1, got {np.unique(y).tolist()}")
    return X, y.astype(np.float64)


def _check_epochs_and_lr(epochs, lr) -> None:
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")


def perceptron_predict(X: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    """The labels (ints, 0 or 1) a perceptron with weights ``w`` and bias ``b`` gives rows of ``X``.

    Taught in chapter 2.
    """
    return neuron(np.atleast_2d(X), w, b, "step").astype(np.int64)


def perceptron_train(X: np.ndarray, y: np.ndarray, epochs: int = 20,
                     lr: float = 1.0) -> tuple[np.ndarray, float, list[int]]:
    """Rosenblatt's perceptron learning rule; returns ``(w, b, errors_per_epoch)``.

    Weights and bias start at zero. Each epoch visits the samples in order and, for each, nudges
    the weights by ``lr * (target - prediction) * x`` — nothing changes when the prediction is
    right. ``errors_per_epoch[k]`` is how many samples epoch ``k`` got wrong (before updating on
    them). On linearly separable data the count reaches 0 after finitely many updates and stays
    there; on data that no line separates (XOR) it never does. Taught in chapter 2.
    """
    X, y = _check_binary_data(X, y)
    _check_epochs_and_lr(epochs, lr)
    w = np.zeros(X.shape[1])
    b = 0.0
    errors_per_epoch = []
    for _ in range(epochs):
        mistakes = 0
        for x_i, y_i in zip(X, y, strict=True):
            error = y_i - heaviside(x_i @ w + b)
            if error != 0:
                w += lr * error * x_i
                b += lr * error
                mistakes += 1
        errors_per_epoch.append(mistakes)
    return w, float(b), errors_per_epoch


# --- A multi-layer perceptron -------------------------------------------------------------------


class MLP:
    """A fully connected network in NumPy: hidden layers with one activation, a softmax output.

    ``layer_sizes = (n_inputs, hidden_1, ..., n_classes)``; with only two sizes there is no hidden
    layer and the model is multinomial logistic regression. Parameters live in the dict
    ``params`` as ``"W1", "b1", "W2", "b2", ...`` (``W`` in Keras's ``(fan_in, fan_out)``
    layout). Weights start as ``normal(0, sqrt(gain / fan_in))`` draws from
    ``numpy.random.default_rng(seed)`` — gain 2 for ReLU (He et al., 2015), 1 otherwise (LeCun
    et al., 1998) — and biases at zero. Taught in chapter 2; reused from chapter 4 on.
    """

    HIDDEN_ACTIVATIONS = ("relu", "tanh", "sigmoid")

    def __init__(self, layer_sizes: Sequence[int], activation: str = "relu", seed: int = 0):
        sizes = list(layer_sizes)
        if len(sizes) < 2 or not all(
            isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 1 for s in sizes
        ):
            raise ValueError(
                f"layer_sizes must list at least two positive ints (inputs, ..., classes), "
                f"got {layer_sizes!r}"
            )
        if sizes[-1] < 2:
            raise ValueError(f"the last layer size is the number of classes and must be >= 2, "
                             f"got {sizes[-1]}")
        if activation not in self.HIDDEN_ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {self.HIDDEN_ACTIVATIONS}, got {activation!r}"
            )
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.layer_sizes = tuple(int(s) for s in sizes)
        self.activation = activation
        rng = np.random.default_rng(seed)
        gain = 2.0 if activation == "relu" else 1.0
        self.params: dict[str, np.ndarray] = {}
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), 1):
            self.params[f"W{layer}"] = rng.normal(0.0, np.sqrt(gain / fan_in), (fan_in, fan_out))
            self.params[f"b{layer}"] = np.zeros(fan_out)

    @property
    def n_layers(self) -> int:
        """Number of dense layers (weight matrices)."""
        return len(self.layer_sizes) - 1

    @property
    def n_classes(self) -> int:
        return self.layer_sizes[-1]

    def count_params(self) -> int:
        """Total number of weights and biases (the number Keras's ``count_params`` reports)."""
        return sum(p.size for p in self.params.values())

    def keras_weights(self) -> list[np.ndarray]:
        """The parameters in the order ``keras.Model.set_weights`` expects: W1, b1, W2, b2, ..."""
        return [self.params[f"{kind}{layer}"] for layer in range(1, self.n_layers + 1)
                for kind in ("W", "b")]

    # Forward and backward passes ---------------------------------------------------------------

    def _check_X(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.layer_sizes[0] or len(X) == 0:
            raise ValueError(
                f"X must have shape (n_samples >= 1, {self.layer_sizes[0]}), got {X.shape}"
            )
        return X

    def _check_y(self, y, n_samples: int) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (n_samples,):
            raise ValueError(f"y must have shape ({n_samples},) to match X, got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= self.n_classes:
            raise ValueError(
                f"y must hold integer class labels in [0, {self.n_classes - 1}], got dtype "
                f"{y.dtype} with values in [{y.min()}, {y.max()}]"
            )
        return y

    def _forward(self, X: np.ndarray) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """Logits, and for each layer the (input, pre-activation) pair backprop needs."""
        hidden = ACTIVATIONS[self.activation]
        cache = []
        a = X
        for layer in range(1, self.n_layers + 1):
            z = a @ self.params[f"W{layer}"] + self.params[f"b{layer}"]
            cache.append((a, z))
            a = hidden(z) if layer < self.n_layers else z
        return a, cache

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)``; each row sums to 1."""
        logits, _ = self._forward(self._check_X(X))
        return softmax(logits)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class of each row of ``X``."""
        return self.forward(X).argmax(axis=1)

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """``(loss, accuracy)`` on ``(X, y)`` from one forward pass.

        The loss is the mean cross-entropy ``-mean(log p[y])``; the accuracy is the fraction of
        rows whose most probable class is ``y``.
        """
        X = self._check_X(X)
        y = self._check_y(y, len(X))
        logits, _ = self._forward(X)
        loss = -log_softmax(logits)[np.arange(len(y)), y].mean()
        return float(loss), float(np.mean(logits.argmax(axis=1) == y))

    def loss(self, X: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy ``-mean(log p[y])`` of the labels ``y`` under the model."""
        return self.evaluate(X, y)[0]

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        """Fraction of rows of ``X`` whose most probable class is ``y``."""
        return self.evaluate(X, y)[1]

    def loss_and_gradients(self, X: np.ndarray,
                           y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Mean cross-entropy and its gradient with respect to every parameter (backpropagation).

        The gradient dict has the same keys and shapes as ``params``. Backward through the
        network, with ``n`` samples and one-hot labels ``Y``:

        - output: ``dZ = (softmax(Z) - Y) / n`` (softmax and cross-entropy together);
        - every layer: ``dW = A_in.T @ dZ``, ``db = dZ.sum(axis=0)``, ``dA_in = dZ @ W.T``;
        - below a hidden layer: ``dZ = dA * activation'(Z)``.
        """
        X = self._check_X(X)
        y = self._check_y(y, len(X))
        n = len(X)
        logits, cache = self._forward(X)
        log_probs = log_softmax(logits)
        loss = float(-log_probs[np.arange(n), y].mean())
        dz = np.exp(log_probs)
        dz[np.arange(n), y] -= 1.0
        dz /= n
        derivative = DERIVATIVES[self.activation]
        grads: dict[str, np.ndarray] = {}
        for layer in range(self.n_layers, 0, -1):
            a_in, _ = cache[layer - 1]
            grads[f"W{layer}"] = a_in.T @ dz
            grads[f"b{layer}"] = dz.sum(axis=0)
            if layer > 1:
                _, z_below = cache[layer - 2]
                dz = (dz @ self.params[f"W{layer}"].T) * derivative(z_below)
        return loss, {key: grads[key] for key in self.params}

    def step(self, grads: Mapping[str, np.ndarray], lr: float) -> None:
        """One gradient-descent update, in place: ``params[k] -= lr * grads[k]`` for every k."""
        if set(grads) != set(self.params):
            raise ValueError(
                f"grads must have the keys {sorted(self.params)}, got {sorted(grads)}"
            )
        for key, grad in grads.items():
            if np.shape(grad) != self.params[key].shape:
                raise ValueError(f"grads[{key!r}] must have shape {self.params[key].shape}, "
                                 f"got {np.shape(grad)}")
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr!r}")
        for key, grad in grads.items():
            self.params[key] -= lr * np.asarray(grad, dtype=np.float64)

    def fit(self, X: np.ndarray, y: np.ndarray, epochs: int, lr: float,
            batch_size: int | None = None, seed: int = 0,
            validation_data: tuple[np.ndarray, np.ndarray] | None = None,
            shuffle: bool = True) -> dict[str, list[float]]:
        """Mini-batch stochastic gradient descent; returns the history of each epoch.

        Each epoch shuffles the samples (``numpy.random.default_rng(seed)``; with
        ``shuffle=False`` they keep their order, as in Keras's ``fit(shuffle=False)``), splits
        them into batches of ``batch_size`` (``None``: the whole set, i.e. full-batch gradient
        descent) and takes one :meth:`step` per batch. After each epoch the history records
        ``loss`` and ``accuracy`` on the whole training set, and ``val_loss`` and
        ``val_accuracy`` if ``validation_data=(X_val, y_val)`` is given — the same keys as a
        Keras ``History``.
        """
        X = self._check_X(X)
        y = self._check_y(y, len(X))
        _check_epochs_and_lr(epochs, lr)
        if not isinstance(shuffle, bool):
            raise ValueError(f"shuffle must be True or False, got {shuffle!r}")
        if batch_size is None:
            batch_size = len(X)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
        evaluated = {"": (X, y)}
        if validation_data is not None:
            if len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (X_val, y_val)")
            X_val = self._check_X(validation_data[0])
            evaluated["val_"] = (X_val, self._check_y(validation_data[1], len(X_val)))
        history: dict[str, list[float]] = {
            f"{prefix}{metric}": [] for prefix in evaluated for metric in ("loss", "accuracy")
        }
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(len(X)) if shuffle else np.arange(len(X))
            for start in range(0, len(X), batch_size):
                batch = order[start:start + batch_size]
                _, grads = self.loss_and_gradients(X[batch], y[batch])
                self.step(grads, lr)
            for prefix, (X_eval, y_eval) in evaluated.items():
                loss, accuracy = self.evaluate(X_eval, y_eval)
                history[f"{prefix}loss"].append(loss)
                history[f"{prefix}accuracy"].append(accuracy)
        return history


# --- Checking gradients -------------------------------------------------------------------------


def numerical_gradients(model: MLP, X: np.ndarray, y: np.ndarray,
                        eps: float = 1e-6) -> dict[str, np.ndarray]:
    """Central finite-difference estimate of every gradient of ``model.loss(X, y)``.

    For each parameter entry ``theta``: ``(L(theta + eps) - L(theta - eps)) / (2 * eps)``, whose
    error shrinks like ``eps**2`` (a one-sided difference only like ``eps``). Two loss
    evaluations per parameter, so use it on small models only. Parameters are restored exactly
    afterwards. Taught in chapter 2.
    """
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    estimates = {}
    for key, param in model.params.items():
        estimate = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            original = param[index]
            param[index] = original + eps
            loss_plus = model.loss(X, y)
            param[index] = original - eps
            loss_minus = model.loss(X, y)
            param[index] = original
            estimate[index] = (loss_plus - loss_minus) / (2 * eps)
        estimates[key] = estimate
    return estimates


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b|| / (||a|| + ||b||)`` (Euclidean norms over all entries); 0 when both are zero.

    Scale-free, so one threshold (say 1e-6 in float64) suits large and small gradients alike.
    Taught in chapter 2.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)
