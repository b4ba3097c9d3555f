"""Activation functions in NumPy: each function, its derivative, and the tools to check them.

Chapter 3 defines every activation here, plots it beside its derivative, and checks the derivative
against :func:`numerical_derivative` and the function against ``keras.activations``. Everything is
elementwise except the softmax, which normalises along an axis; :func:`softmax` is the numerically
stable form and :func:`naive_softmax` the textbook formula that overflows, kept to show why.

:data:`ACTIVATIONS` maps a name to its ``(function, derivative)`` pair, so that a chapter or a test
can loop over all of them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
from scipy.special import erf as _erf  # NumPy has no erf; SciPy's is vectorised and exact

ArrayFunction = Callable[[np.ndarray], np.ndarray]

# SELU's two constants (Klambauer et al., 2017), to the precision Keras uses.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _as_float_array(x) -> np.ndarray:
    array = np.asarray(x)
    if not (np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array)):
        raise ValueError(f"x must be real numbers, got an array of dtype {array.dtype}")
    return array.astype(np.result_type(array.dtype, np.float32), copy=False)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_non_negative(name: str, value: float) -> None:
    if not (_is_real(value) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def sigmoid(x) -> np.ndarray:
    r"""The logistic sigmoid :math:`\sigma(x) = 1 / (1 + e^{-x})`, computed without overflow.

    For very negative ``x``, ``exp(-x)`` overflows; the equivalent form
    :math:`e^{x} / (1 + e^{x})` does not, so each half of the line uses the safe form.
    Taught in chapter 3.
    """
    x = _as_float_array(x)
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_derivative(x) -> np.ndarray:
    r""":math:`\sigma'(x) = \sigma(x)\,(1 - \sigma(x))`, at most 1/4 (at 0). Taught in chapter 3."""
    s = sigmoid(x)
    return s * (1 - s)


def tanh(x) -> np.ndarray:
    r"""The hyperbolic tangent :math:`\tanh(x) = 2\sigma(2x) - 1`, zero-centred in (-1, 1).

    Taught in chapter 3.
    """
    return np.tanh(_as_float_array(x))


def tanh_derivative(x) -> np.ndarray:
    r""":math:`\tanh'(x) = 1 - \tanh^2(x)`, at most 1 (at 0). Taught in chapter 3."""
    return 1 - np.tanh(_as_float_array(x)) ** 2


def relu(x) -> np.ndarray:
    """The rectified linear unit ``max(0, x)``. Taught in chapter 3."""
    x = _as_float_array(x)
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def relu_derivative(x) -> np.ndarray:
    """1 where ``x > 0``, else 0 (at the kink, 0, we take 0, as Keras does). Taught in chapter 3."""
    x = _as_float_array(x)
    return (x > 0).astype(x.dtype)


def leaky_relu(x, negative_slope: float = 0.2) -> np.ndarray:
    """``x`` for ``x > 0``, ``negative_slope * x`` otherwise. Taught in chapter 3.

    The default slope, 0.2, is that of Keras' *function* ``keras.activations.leaky_relu`` (and of
    ``activation="leaky_relu"``); Keras' *layer* ``keras.layers.LeakyReLU`` defaults to 0.3, and the
    paper that introduced the function (Maas et al., 2013) and PyTorch use 0.01.
    """
    _check_non_negative("negative_slope", negative_slope)
    x = _as_float_array(x)
    return np.where(x > 0, x, negative_slope * x).astype(x.dtype, copy=False)


def leaky_relu_derivative(x, negative_slope: float = 0.2) -> np.ndarray:
    """1 where ``x > 0``, else ``negative_slope``: never exactly zero. Taught in chapter 3."""
    _check_non_negative("negative_slope", negative_slope)
    x = _as_float_array(x)
    return np.where(x > 0, 1.0, negative_slope).astype(x.dtype)


def elu(x, alpha: float = 1.0) -> np.ndarray:
    r"""The exponential linear unit: ``x`` for ``x > 0``, :math:`\alpha (e^{x} - 1)` otherwise.

    Smooth at 0 when ``alpha`` is 1, and bounded below by ``-alpha``. Taught in chapter 3.
    """
    _check_non_negative("alpha", alpha)
    x = _as_float_array(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)


def elu_derivative(x, alpha: float = 1.0) -> np.ndarray:
    r"""1 where ``x > 0``, else :math:`\alpha e^{x}`. Taught in chapter 3."""
    _check_non_negative("alpha", alpha)
    x = _as_float_array(x)
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0))).astype(x.dtype)


def selu(x) -> np.ndarray:
    r"""The scaled ELU :math:`\lambda\,\mathrm{elu}_\alpha(x)` with SELU's fixed constants.

    :math:`\lambda \approx 1.0507` and :math:`\alpha \approx 1.6733` are chosen so that, with
    LeCun-normal weights (variance 1/fan-in), activations with mean 0 and variance 1 keep them layer
    after layer (Klambauer et al., 2017, "self-normalising networks"). Taught in chapter 3.
    """
    return (SELU_SCALE * elu(x, alpha=SELU_ALPHA)).astype(_as_float_array(x).dtype, copy=False)


def selu_derivative(x) -> np.ndarray:
    r""":math:`\lambda` where ``x > 0``, else :math:`\lambda\alpha e^{x}`. Taught in chapter 3."""
    return (SELU_SCALE * elu_derivative(x, alpha=SELU_ALPHA)).astype(_as_float_array(x).dtype,
                                                                      copy=False)


def silu(x) -> np.ndarray:
    r"""The sigmoid-weighted linear unit, or swish: :math:`x\,\sigma(x)`.

    Like GELU a smooth, non-monotonic ReLU (its minimum is about -0.278, at x about -1.28); used in
    EfficientNet and, inside SwiGLU, in most recent language models. Taught in chapter 3.
    """
    x = _as_float_array(x)
    return (x * sigmoid(x)).astype(x.dtype, copy=False)


def silu_derivative(x) -> np.ndarray:
    r""":math:`\sigma(x)\,(1 + x\,(1 - \sigma(x)))`. Taught in chapter 3."""
    x = _as_float_array(x)
    s = sigmoid(x)
    return (s * (1 + x * (1 - s))).astype(x.dtype, copy=False)


def gelu(x) -> np.ndarray:
    r"""The Gaussian error linear unit :math:`x\,\Phi(x)`, :math:`\Phi` the standard normal CDF.

    The exact form (Keras' ``gelu(x, approximate=False)``), using
    :math:`\Phi(x) = \tfrac12\,(1 + \operatorname{erf}(x/\sqrt2))`. Taught in chapter 3.
    """
    x = _as_float_array(x)
    return (x * 0.5 * (1 + _erf(x / math.sqrt(2)))).astype(x.dtype, copy=False)


def gelu_derivative(x) -> np.ndarray:
    r""":math:`\Phi(x) + x\,\varphi(x)`, with :math:`\varphi` the standard normal density.

    Taught in chapter 3.
    """
    x = _as_float_array(x)
    cdf = 0.5 * (1 + _erf(x / math.sqrt(2)))
    density = np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    return (cdf + x * density).astype(x.dtype, copy=False)


def naive_softmax(z, axis: int = -1) -> np.ndarray:
    r"""The textbook :math:`e^{z_i} / \sum_j e^{z_j}`: overflows for logits above ~709 (float64).

    Kept only to show what goes wrong; use :func:`softmax`. Taught in chapter 3.
    """
    z = _as_float_array(z)
    _check_axis(z, axis)
    exps = np.exp(z)
    return exps / exps.sum(axis=axis, keepdims=True)


def softmax(z, axis: int = -1) -> np.ndarray:
    r"""Numerically stable softmax along ``axis``.

    Softmax is unchanged by subtracting a constant from every logit, so subtract the largest:
    then every exponent is :math:`\le 0` (no overflow) and the largest term is exactly 1 (the sum
    is at least 1, never 0). Infinite logits are not supported. Taught in chapter 3.
    """
    z = _as_float_array(z)
    _check_axis(z, axis)
    if not np.all(np.isfinite(z)):
        raise ValueError("z must be finite; got inf or nan among the logits")
    exps = np.exp(z - z.max(axis=axis, keepdims=True))
    return exps / exps.sum(axis=axis, keepdims=True)


def softmax_jacobian(z) -> np.ndarray:
    r"""The Jacobian of the softmax of each vector of logits: :math:`\partial p_i / \partial z_j`.

    For logits of shape ``(..., K)`` it returns ``(..., K, K)`` with entries
    :math:`p_i(\delta_{ij} - p_j)`, i.e. :math:`\operatorname{diag}(p) - p\,p^\top`: each row sums
    to 0, because adding a constant to every logit leaves the softmax unchanged. Taught in chapter 3.
    """
    p = softmax(z, axis=-1)
    return p[..., :, None] * (np.eye(p.shape[-1]) - p[..., None, :])


def _check_axis(z: np.ndarray, axis: int) -> None:
    if z.ndim == 0:
        raise ValueError("z must have at least one dimension (a vector of logits), got a scalar")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) \
            or not -z.ndim <= axis < z.ndim:
        raise ValueError(f"axis must be an int in [-{z.ndim}, {z.ndim}) for a {z.ndim}-d input, "
                         f"got {axis!r}")


def numerical_derivative(f: ArrayFunction, x, h: float = 1e-5) -> np.ndarray:
    r"""Central difference :math:`(f(x+h) - f(x-h)) / 2h` of an elementwise ``f``, in float64.

    Its error is :math:`O(h^2)` where ``f`` is smooth; at a kink (ReLU at 0) it returns the
    average of the two one-sided slopes, which is neither. Taught in chapter 3.
    """
    if not callable(f):
        raise ValueError(f"f must be a function of an array, got {type(f).__name__}")
    if not (_is_real(h) and math.isfinite(h) and h > 0):
        raise ValueError(f"h must be a finite number > 0, got {h!r}")
    x = _as_float_array(x).astype(np.float64)
    return (np.asarray(f(x + h), np.float64) - np.asarray(f(x - h), np.float64)) / (2 * h)


def dead_units(activations) -> np.ndarray:
    """Which units (columns) output exactly 0 for every example (row): a boolean mask.

    ``activations`` is ``(examples, units)``, e.g. a ReLU layer's outputs on a data set;
    ``dead_units(a).mean()`` is the fraction of dead units. A dead ReLU unit has zero derivative
    on every one of these examples, so no gradient reaches its weights and gradient descent
    cannot revive it. Taught in chapter 3.
    """
    activations = _as_float_array(activations)
    if activations.ndim != 2 or 0 in activations.shape:
        raise ValueError("activations must be a non-empty (examples, units) array, "
                         f"got shape {activations.shape}")
    return np.all(activations == 0, axis=0)


ACTIVATIONS: dict[str, tuple[ArrayFunction, ArrayFunction]] = {
    "sigmoid": (sigmoid, sigmoid_derivative),
    "tanh": (tanh, tanh_derivative),
    "relu": (relu, relu_derivative),
    "leaky_relu": (leaky_relu, leaky_relu_derivative),
    "elu": (elu, elu_derivative),
    "gelu": (gelu, gelu_derivative),
    "silu": (silu, silu_derivative),
    "selu": (selu, selu_derivative),
}
"""Name -> ``(function, derivative)`` for every elementwise activation here. Taught in chapter 3."""

DISPLAY_NAMES: dict[str, str] = {
    "sigmoid": "sigmoid", "tanh": "tanh", "relu": "ReLU", "leaky_relu": "leaky ReLU (slope 0.2)",
    "elu": "ELU", "gelu": "GELU", "silu": "SiLU (swish)", "selu": "SELU",
}
"""Name -> how a figure or a table writes it. Taught in chapter 3."""
