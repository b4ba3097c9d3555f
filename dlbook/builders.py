"""Model builders: plain functions that return Keras models with explicit layer names.

Every argument is checked before any layer is made, and a bad one raises a ``ValueError`` that
names the argument and says why it is wrong, so a typo fails at the call and not deep inside
``fit``. Layer names are stable (``hidden_1``, ``batch_norm_1``, ``dropout_1``, ``output`` …) so
that chapters can pick a layer out of a model by name: ``model.get_layer("hidden_1").kernel``.
Initial weights follow the activation (He for ReLU, chapter 5) unless the caller says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import keras


def _check_positive_int(argument: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{argument} must be an int of at least {minimum}, got {value!r}")
    return int(value)


def _check_penalty(argument: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= value < float("inf"):
        raise ValueError(f"{argument} must be a finite number >= 0 (0 switches it off), "
                         f"got {value!r}")
    return float(value)


# The initialiser each activation's variance arithmetic asks for (chapter 5): He for the
# rectifier family, which zeroes about half of its inputs; LeCun for SELU, whose self-normalising
# fixed point assumes it; Glorot for the rest (tanh, sigmoid, linear, ...), which are close to
# linear near 0.
HE_ACTIVATIONS = frozenset({"relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "swish",
                            "mish", "celu", "softplus"})


def default_initializer(activation: str) -> str:
    """The Keras initialiser name :func:`build_mlp` uses for ``activation`` by default.

    ``"he_normal"`` for ReLU and its relatives, ``"lecun_normal"`` for SELU, ``"glorot_uniform"``
    (Keras' own default) for everything else. Taught in chapter 5; used from chapter 6 on.
    """
    if activation in HE_ACTIVATIONS:
        return "he_normal"
    if activation == "selu":
        return "lecun_normal"
    return "glorot_uniform"


def _kernel_regulariser(l1: float, l2: float) -> keras.regularizers.Regularizer | None:
    if l1 and l2:
        return keras.regularizers.L1L2(l1=l1, l2=l2)
    if l1:
        return keras.regularizers.L1(l1)
    if l2:
        return keras.regularizers.L2(l2)
    return None


def build_mlp(
    input_dim: int,
    hidden_units: Sequence[int],
    num_classes: int,
    activation: str = "relu",
    l1: float = 0.0,
    l2: float = 0.0,
    dropout: float = 0.0,
    batch_norm: bool = False,
    name: str = "mlp",
    *,
    batch_norm_momentum: float = 0.99,
    layer_norm: bool = False,
    kernel_initializer: str | None = None,
) -> keras.Model:
    """A multilayer perceptron classifier, with optional L1/L2, dropout and batch or layer norm.

    Each hidden block ``i`` (counting from 1) is::

        hidden_i (Dense) [-> batch_norm_i | layer_norm_i -> activation_i] [-> dropout_i]

    Without normalisation the activation sits inside ``hidden_i``. With batch normalisation,
    ``hidden_i`` has no bias (the normalisation's learned shift ``beta`` does that job) and the
    activation is applied after normalising, as in Ioffe & Szegedy (2015). ``layer_norm=True``
    puts a ``LayerNormalization`` in the same place (Ba et al., 2016): it standardises each
    example over its units instead of each unit over the batch, so it behaves the same in training
    and inference and for any batch size; ``hidden_i`` keeps its bias, which a per-example
    normalisation does not make redundant. The two are exclusive. With dropout and batch
    normalisation together, block ``i + 1``'s BN sees block ``i``'s dropped-out outputs, so its
    statistics shift between training and inference (the "variance shift" of Li et al., 2019).

    ``kernel_initializer`` names a Keras initialiser for the hidden kernels (a name, so that each
    layer gets its own draw). By default it follows the activation, as chapter 5 derives:
    ``"he_normal"`` for ReLU and its relatives, ``"lecun_normal"`` for SELU, ``"glorot_uniform"``
    otherwise (see :func:`default_initializer`). The output layer always starts Glorot-uniform.

    The ``output`` layer is a softmax over ``num_classes`` classes, or a single sigmoid unit when
    ``num_classes`` is 1 (binary labels), so that ``model.predict`` returns probabilities. Training
    it with ``"sparse_categorical_crossentropy"`` (``from_logits=False``) loses nothing: on the
    TensorFlow backend Keras finds the logits behind a softmax or sigmoid output and computes the
    loss from them, exactly as ``from_logits=True`` on a linear output would.

    ``l1`` and ``l2`` penalise every Dense *kernel* (the output layer's included, biases never):
    the training loss gains ``l1 * sum|w| + l2 * sum w**2``, collected in ``model.losses``.
    ``dropout`` is the fraction of each hidden block's outputs zeroed during training.
    ``batch_norm_momentum`` is how much of its moving mean and variance a BN layer keeps at each
    training step; Keras' default 0.99 averages over roughly the last 100 batches, so on a small
    training set (a few batches per epoch) a lower value such as 0.9 lets them settle in time.

    Taught in chapter 6 (regularisation); later chapters reuse it.
    """
    input_dim = _check_positive_int("input_dim", input_dim)
    if isinstance(hidden_units, (str, bytes)) or not isinstance(hidden_units, Sequence):
        raise ValueError(f"hidden_units must be a sequence of ints (e.g. [64, 64]), "
                         f"got {hidden_units!r}")
    hidden_units = [_check_positive_int(f"hidden_units[{i}]", units)
                    for i, units in enumerate(hidden_units)]
    num_classes = _check_positive_int("num_classes", num_classes)
    if not isinstance(activation, str):
        raise ValueError(f"activation must be the name of a Keras activation, got {activation!r}")
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError):
        raise ValueError(f"activation {activation!r} is not a Keras activation "
                         "(try 'relu', 'tanh', 'gelu' or 'sigmoid')") from None
    l1 = _check_penalty("l1", l1)
    l2 = _check_penalty("l2", l2)
    if isinstance(dropout, bool) or not isinstance(dropout, Real) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a rate in [0, 1) (the fraction of units dropped), "
                         f"got {dropout!r}")
    if not isinstance(batch_norm, bool):
        raise ValueError(f"batch_norm must be True or False, got {batch_norm!r}")
    if not isinstance(layer_norm, bool):
        raise ValueError(f"layer_norm must be True or False, got {layer_norm!r}")
    if batch_norm and layer_norm:
        raise ValueError("choose batch_norm or layer_norm, not both")
    if kernel_initializer is None:
        kernel_initializer = default_initializer(activation)
    elif not isinstance(kernel_initializer, str):
        raise ValueError("kernel_initializer must be the name of a Keras initializer (e.g. "
                         f"'he_normal'), so that each layer draws its own, got "
                         f"{kernel_initializer!r}")
    else:
        try:
            keras.initializers.get(kernel_initializer)
        except (ValueError, TypeError):
            raise ValueError(f"kernel_initializer {kernel_initializer!r} is not a Keras "
                             "initializer (try 'he_normal' or 'glorot_uniform')") from None
    if (isinstance(batch_norm_momentum, bool) or not isinstance(batch_norm_momentum, Real)
            or not 0.0 < batch_norm_momentum < 1.0):
        raise ValueError(f"batch_norm_momentum must be a number in (0, 1), "
                         f"got {batch_norm_momentum!r}")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string, got {name!r}")

    regulariser = _kernel_regulariser(l1, l2)
    inputs = keras.Input(shape=(input_dim,), name="features")
    x = inputs
    for block, units in enumerate(hidden_units, start=1):
        x = keras.layers.Dense(
            units,
            activation=None if batch_norm or layer_norm else activation,
            use_bias=not batch_norm,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=regulariser,
            name=f"hidden_{block}",
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(momentum=float(batch_norm_momentum),
                                                name=f"batch_norm_{block}")(x)
        if layer_norm:
            x = keras.layers.LayerNormalization(name=f"layer_norm_{block}")(x)
        if batch_norm or layer_norm:
            x = keras.layers.Activation(activation, name=f"activation_{block}")(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"dropout_{block}")(x)
    outputs = keras.layers.Dense(
        num_classes,
        activation="sigmoid" if num_classes == 1 else "softmax",
        kernel_regularizer=regulariser,
        name="output",
    )(x)
    return keras.Model(inputs, outputs, name=name)
