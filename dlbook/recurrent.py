"""Recurrent networks by hand, in NumPy, and the pieces of an honest forecasting experiment.

Taught in chapter 10.

- **Cells in NumPy** that compute what Keras's layers compute, with the same weights:
  :func:`simple_rnn_forward`, :func:`lstm_forward` (gate order *i, f, c, o*, as Keras stores
  them) and :func:`gru_forward` (gate order *z, r, h*, ``reset_after=True``, the Keras 3
  default). The gated ones return every gate at every step, so a chapter can plot them.
  :func:`keras_weights` reads a layer's weights; ``tests/test_recurrent.py`` checks each cell
  against its Keras layer.
- **Backpropagation through time** by hand for the tanh RNN (:func:`simple_rnn_backward`),
  checked against ``tf.GradientTape``, and the size of ``∂h_T/∂x_t`` for any Keras recurrent
  layer (:func:`input_jacobian_norms`).
- **Long memory**: a synthetic task (:func:`synthetic_marked_recall`), sequence classifiers with
  the Keras or the "chrono" forget-gate initialisation (:func:`build_sequence_classifier`,
  :func:`chrono_lstm_bias`), and :func:`side_by_side`, which trains several independent models
  in one compiled step.
- **Forecasting**: windows whose alignment is explicit (:func:`make_windows`), the baselines a
  sceptic asks for first (:func:`persistence_forecast`, :func:`seasonal_naive_forecast`,
  :class:`LinearAutoregression`), a one-layer recurrent forecaster (:func:`build_forecaster`) and
  a step timer (:class:`StepTimer`).

Sequences are ``(batch, time, features)``, as in Keras. The NumPy code works in float64.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from dlbook.checks import check_int as _check_int

CELLS = ("simple_rnn", "lstm", "gru")
FORGET_BIASES = ("keras", "chrono")
OUTPUT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _check_cell(cell) -> str:
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
    return cell


def sigmoid(z):
    """The logistic function ``1 / (1 + exp(-z))``, without overflow for large ``|z|``: the gate
    nonlinearity of the LSTM and GRU cells of chapter 10."""
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def _sequences(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"x must be (batch, time, features), got shape {x.shape}")
    return x


def _cell_weights(x: np.ndarray, kernel, recurrent_kernel, bias, gates: int,
                  bias_rows: int = 0):
    """Check the weights' shapes against x; ``bias_rows=2`` for the GRU's (2, 3·units) bias."""
    kernel = np.asarray(kernel, dtype=np.float64)
    recurrent_kernel = np.asarray(recurrent_kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.shape[1] % gates:
        raise ValueError(f"kernel must be (features, {gates} * units), got shape {kernel.shape}")
    units = kernel.shape[1] // gates
    if kernel.shape[0] != x.shape[2]:
        raise ValueError(f"kernel expects {kernel.shape[0]} features per step but x has "
                         f"{x.shape[2]}")
    if recurrent_kernel.shape != (units, gates * units):
        raise ValueError(f"recurrent_kernel must be ({units}, {gates * units}), got shape "
                         f"{recurrent_kernel.shape}")
    if bias is None:  # the backward pass does not need it
        return kernel, recurrent_kernel, None, units
    bias = np.asarray(bias, dtype=np.float64)
    expected_bias = (bias_rows, gates * units) if bias_rows else (gates * units,)
    if bias.shape != expected_bias:
        raise ValueError(f"bias must have shape {expected_bias}, got {bias.shape}")
    return kernel, recurrent_kernel, bias, units


def _initial(state, batch: int, units: int, name: str) -> np.ndarray:
    if state is None:
        return np.zeros((batch, units))
    state = np.asarray(state, dtype=np.float64)
    if state.shape != (batch, units):
        raise ValueError(f"{name} must be (batch, units) = ({batch}, {units}), got {state.shape}")
    return state


def simple_rnn_forward(x, kernel, recurrent_kernel, bias, initial_state=None) -> np.ndarray:
    """Every hidden state of a tanh RNN, what ``keras.layers.SimpleRNN`` computes.

    ``h_t = tanh(x_t W + h_{t-1} U + b)`` with ``W = kernel`` (features, units),
    ``U = recurrent_kernel`` (units, units) and ``b = bias``; ``h_0`` is ``initial_state`` (zeros
    by default). The same three weights serve every step: unrolled over ``T`` steps, the loop below
    *is* the network. Returns ``(batch, T, units)``; the last step is what the Keras layer returns
    without ``return_sequences``. Taught in chapter 10.
    """
    x = _sequences(x)
    kernel, recurrent_kernel, bias, units = _cell_weights(x, kernel, recurrent_kernel, bias, 1)
    h = _initial(initial_state, len(x), units, "initial_state")
    states = np.empty((len(x), x.shape[1], units))
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ kernel + h @ recurrent_kernel + bias)
        states[:, t] = h
    return states


@dataclass(frozen=True)
class RNNGradients:
    """Gradients of a loss with respect to a tanh RNN's inputs, weights and initial state, as
    :func:`simple_rnn_backward` returns them (chapter 10)."""

    inputs: np.ndarray
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray
    initial_state: np.ndarray


def simple_rnn_backward(x, states, kernel, recurrent_kernel, grad_states,
                        initial_state=None) -> RNNGradients:
    """Backpropagation through time for :func:`simple_rnn_forward`.

    ``states`` are the forward pass's hidden states and ``grad_states`` the gradient of the loss
    with respect to each of them *directly* (``∂L/∂h_t`` through the layers above, zero where
    the loss does not read ``h_t``). Walking back from ``t = T``, the gradient reaching ``h_t``
    is its direct part plus what flows back from ``h_{t+1}``; through the tanh it becomes
    ``δ_t = ∂L/∂a_t = g_t ⊙ (1 - h_t²)``, and then

        ∂L/∂W += x_tᵀ δ_t,  ∂L/∂U += h_{t-1}ᵀ δ_t,  ∂L/∂b += Σ δ_t,
        ∂L/∂x_t = δ_t Wᵀ,  and  δ_t Uᵀ flows on to h_{t-1}.

    The weights' gradients are sums over steps, because the same weights serve every step.
    Taught in chapter 10.
    """
    x = _sequences(x)
    kernel, recurrent_kernel, _, units = _cell_weights(x, kernel, recurrent_kernel, None, 1)
    states = np.asarray(states, dtype=np.float64)
    grad_states = np.asarray(grad_states, dtype=np.float64)
    expected = (len(x), x.shape[1], units)
    if states.shape != expected or grad_states.shape != expected:
        raise ValueError(f"states and grad_states must be (batch, time, units) = {expected}, got "
                         f"{states.shape} and {grad_states.shape}")
    h0 = _initial(initial_state, len(x), units, "initial_state")
    previous = np.concatenate([h0[:, None], states[:, :-1]], axis=1)  # h_{t-1} for every t
    grads = RNNGradients(np.zeros_like(x), np.zeros_like(kernel), np.zeros_like(recurrent_kernel),
                         np.zeros(units), np.zeros_like(h0))
    flowing = np.zeros((len(x), units))  # ∂L/∂h_t arriving from step t + 1
    for t in reversed(range(x.shape[1])):
        delta = (grad_states[:, t] + flowing) * (1.0 - states[:, t] ** 2)
        grads.kernel[...] += x[:, t].T @ delta
        grads.recurrent_kernel[...] += previous[:, t].T @ delta
        grads.bias[...] += delta.sum(axis=0)
        grads.inputs[:, t] = delta @ kernel.T
        flowing = delta @ recurrent_kernel.T
    grads.initial_state[...] = flowing
    return grads


@dataclass(frozen=True)
class LSTMTrace:
    """Everything an LSTM computed, each ``(batch, time, units)``: states and gates per step
    (:func:`lstm_forward`, chapter 10)."""

    hidden: np.ndarray
    cell: np.ndarray
    input_gate: np.ndarray
    forget_gate: np.ndarray
    candidate: np.ndarray
    output_gate: np.ndarray


def lstm_forward(x, kernel, recurrent_kernel, bias, initial_state=None,
                 initial_cell=None) -> LSTMTrace:
    """An LSTM unrolled over the sequence, what ``keras.layers.LSTM`` computes (default options).

    Keras stores the four blocks of ``kernel`` (features, 4·units), ``recurrent_kernel``
    (units, 4·units) and ``bias`` (4·units) in the order **i, f, c, o**. With
    ``z_t = x_t W + h_{t-1} U + b`` split into those blocks:

        i_t = σ(z_i)   input gate: how much of the candidate to write
        f_t = σ(z_f)   forget gate: how much of the old cell state to keep
        g_t = tanh(z_c) candidate cell state
        o_t = σ(z_o)   output gate: how much of the cell to show
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t,   h_t = o_t ⊙ tanh(c_t)

    Returns an :class:`LSTMTrace` with every state and gate at every step. Taught in chapter 10.
    """
    x = _sequences(x)
    kernel, recurrent_kernel, bias, units = _cell_weights(x, kernel, recurrent_kernel, bias, 4)
    h = _initial(initial_state, len(x), units, "initial_state")
    c = _initial(initial_cell, len(x), units, "initial_cell")
    trace = {name: np.empty((len(x), x.shape[1], units))
             for name in ("hidden", "cell", "input_gate", "forget_gate", "candidate",
                          "output_gate")}
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        i, f, g, o = (z[:, k * units:(k + 1) * units] for k in range(4))
        i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
        c = f * c + i * g
        h = o * np.tanh(c)
        for name, value in (("hidden", h), ("cell", c), ("input_gate", i), ("forget_gate", f),
                            ("candidate", g), ("output_gate", o)):
            trace[name][:, t] = value
    return LSTMTrace(**trace)


@dataclass(frozen=True)
class GRUTrace:
    """Everything a GRU computed, each ``(batch, time, units)``: states and gates per step
    (:func:`gru_forward`, chapter 10)."""

    hidden: np.ndarray
    update_gate: np.ndarray
    reset_gate: np.ndarray
    candidate: np.ndarray


def gru_forward(x, kernel, recurrent_kernel, bias, initial_state=None) -> GRUTrace:
    """A GRU unrolled over the sequence, what ``keras.layers.GRU`` computes (``reset_after=True``).

    Blocks in the order **z, r, h**; ``bias`` is ``(2, 3·units)``: row 0 is added to the input
    part, row 1 to the recurrent part. See chapter 10 (and its exercise) for the equations.
    Returns a :class:`GRUTrace`. Taught in chapter 10.
    """
    x = _sequences(x)
    kernel, recurrent_kernel, bias, units = _cell_weights(x, kernel, recurrent_kernel, bias, 3,
                                                          bias_rows=2)
    h = _initial(initial_state, len(x), units, "initial_state")
    trace = {name: np.empty((len(x), x.shape[1], units))
             for name in ("hidden", "update_gate", "reset_gate", "candidate")}
    for t in range(x.shape[1]):
        from_input = x[:, t] @ kernel + bias[0]
        from_state = h @ recurrent_kernel + bias[1]
        z = sigmoid(from_input[:, :units] + from_state[:, :units])
        r = sigmoid(from_input[:, units:2 * units] + from_state[:, units:2 * units])
        candidate = np.tanh(from_input[:, 2 * units:] + r * from_state[:, 2 * units:])
        h = z * h + (1.0 - z) * candidate
        for name, value in (("hidden", h), ("update_gate", z), ("reset_gate", r),
                            ("candidate", candidate)):
            trace[name][:, t] = value
    return GRUTrace(**trace)


def keras_weights(layer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(kernel, recurrent_kernel, bias)`` of a built Keras ``SimpleRNN``, ``LSTM`` or ``GRU``,
    as float64 arrays, ready for the NumPy cells of this module. Taught in chapter 10."""
    if not isinstance(layer, (keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU)):
        raise ValueError(f"layer must be a keras SimpleRNN, LSTM or GRU, got "
                         f"{type(layer).__name__}")
    if not layer.built:
        raise ValueError(f"layer {layer.name!r} is not built yet: call it on a batch first")
    cell = layer.cell
    if not cell.use_bias:
        raise ValueError(f"layer {layer.name!r} has no bias; the NumPy cells expect one")
    if isinstance(layer, keras.layers.GRU) and not cell.reset_after:
        raise ValueError(f"layer {layer.name!r} has reset_after=False; gru_forward implements "
                         "reset_after=True, the Keras 3 default")
    return tuple(np.asarray(w, dtype=np.float64)
                 for w in (cell.kernel, cell.recurrent_kernel, cell.bias))


def input_jacobian_norms(layer, x) -> np.ndarray:
    """``‖∂h_T/∂x_t‖`` for every step ``t``, averaged over the sequences in ``x``.

    ``layer`` maps ``(batch, T, features)`` to the last hidden state ``(batch, units)`` (a Keras
    recurrent layer without ``return_sequences``, or a model ending in one). The norm is the
    Frobenius norm of the ``units × features`` Jacobian of ``h_T`` with respect to ``x_t``: how
    strongly the input at step ``t`` can still move the final state, the path every gradient to
    an early input must travel. All ``units`` rows come from one backward pass: each sequence is
    copied ``units`` times and copy ``u`` back-propagates the ``u``-th coordinate of its ``h_T``.
    Returns ``(T,)`` float64. Taught in chapter 10.
    """
    x = tf.convert_to_tensor(_sequences(x), dtype=tf.float32)
    batch, steps, features = x.shape
    units = int(layer(x[:1]).shape[-1])
    copies = tf.repeat(x, units, axis=0)  # (batch * units, T, features)
    pick = tf.tile(tf.eye(units), [batch, 1])  # copy u of each sequence keeps coordinate u
    with tf.GradientTape() as tape:
        tape.watch(copies)
        last = layer(copies)
        if last.shape != (batch * units, units):
            raise ValueError(f"layer must return the last state (batch, units), got {last.shape}")
        picked = tf.reduce_sum(last * pick)
    rows = tf.reshape(tape.gradient(picked, copies), (batch, units, steps, features))
    return np.sqrt(np.sum(np.asarray(rows, dtype=np.float64) ** 2, axis=(1, 3))).mean(axis=0)


def synthetic_marked_recall(n: int, length: int, n_symbols: int = 4, marker_window: int = 10,
                            seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A **synthetic** long-memory task: recall the one symbol that was marked, long ago.

    Each sequence has ``length`` steps; at each step a symbol drawn uniformly from ``n_symbols``
    arrives one-hot, plus a marker channel that is 1 at a single step, drawn uniformly among the
    first ``marker_window``. The label is the symbol at the marked step, so the network must keep
    it for at least ``length - marker_window`` steps, past distractors drawn from the same
    symbols; chance accuracy is ``1 / n_symbols``. Returns ``x`` float32
    ``(n, length, n_symbols + 1)`` and labels int64 ``(n,)``. Taught in chapter 10.
    """
    n = _check_int("n", n)
    length = _check_int("length", length, 2)
    n_symbols = _check_int("n_symbols", n_symbols, 2)
    marker_window = _check_int("marker_window", marker_window)
    if marker_window > length:
        raise ValueError(f"marker_window ({marker_window}) cannot exceed length ({length})")
    if seed is None:
        raise ValueError("pass seed= (derived from the chapter's SEED): the task is random")
    rng = np.random.default_rng(seed)
    symbols = rng.integers(0, n_symbols, size=(n, length))
    marked = rng.integers(0, marker_window, size=n)
    x = np.zeros((n, length, n_symbols + 1), dtype=np.float32)
    x[..., :n_symbols] = np.eye(n_symbols, dtype=np.float32)[symbols]
    x[np.arange(n), marked, n_symbols] = 1.0
    return x, symbols[np.arange(n), marked].astype(np.int64)


def chrono_lstm_bias(units: int, max_lag: int, seed: int) -> np.ndarray:
    """An LSTM bias (order i, f, c, o) with the "chrono" initialisation of Tallec & Ollivier.

    Forget-gate biases ``b_f = log(u)``, ``u`` uniform in ``[1, max_lag - 1]``, and input-gate
    biases ``b_i = -b_f``; the other two blocks are zero. At initialisation, with a small
    pre-activation, unit ``j`` then keeps a fraction ``σ(b_f) = u/(1+u)`` of its cell per step:
    a memory of about ``u`` steps, spread over the range up to ``max_lag``. (Keras's default,
    ``unit_forget_bias=True``, sets ``b_f = 1``: σ(1) = 0.73, a memory of a few steps.)
    Taught in chapter 10.
    """
    units = _check_int("units", units)
    max_lag = _check_int("max_lag", max_lag, 3)
    seed = _check_int("seed", seed, 0)
    forget = np.log(np.random.default_rng(seed).uniform(1.0, max_lag - 1.0, size=units))
    return np.concatenate([-forget, forget, np.zeros(units), np.zeros(units)]).astype(np.float32)


def _recurrent_layer(cell: str, units: int, seed: int, forget_bias: str, max_lag: int | None,
                     **options) -> keras.layers.Layer:
    initialisers = {"kernel_initializer": keras.initializers.GlorotUniform(seed=seed * 100 + 1),
                    "recurrent_initializer": keras.initializers.Orthogonal(seed=seed * 100 + 2)}
    if forget_bias not in FORGET_BIASES:
        raise ValueError(f"forget_bias must be one of {FORGET_BIASES}, got {forget_bias!r}")
    if forget_bias == "chrono":
        if cell != "lstm":
            raise ValueError(f"forget_bias='chrono' is an LSTM initialisation, not for {cell!r}")
        if max_lag is None:
            raise ValueError("forget_bias='chrono' needs max_lag (the longest memory wanted)")
        bias = chrono_lstm_bias(units, max_lag, seed * 100 + 3)
        initialisers.update(bias_initializer=keras.initializers.Constant(bias),
                            unit_forget_bias=False)
    layer = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM,
             "gru": keras.layers.GRU}[cell]
    return layer(units, name="recurrent", **initialisers, **options)


def build_sequence_classifier(cell: str, length: int, features: int, classes: int,
                              units: int = 32, seed: int | None = None,
                              forget_bias: str = "keras", name: str | None = None) -> keras.Model:
    """``input (length, features) -> recurrent (cell, units) -> head (classes logits)``.

    ``cell`` is ``"simple_rnn"``, ``"lstm"`` or ``"gru"``, with Keras's default options and
    initialisers seeded from ``seed`` (Glorot-uniform input kernel, orthogonal recurrent kernel).
    ``forget_bias="chrono"`` (LSTM only) initialises the gate biases with
    :func:`chrono_lstm_bias` for memories up to ``length`` steps. The head returns logits (use a
    loss with ``from_logits=True``). Taught in chapter 10.
    """
    cell = _check_cell(cell)
    length, features = _check_int("length", length), _check_int("features", features)
    classes, units = _check_int("classes", classes, 2), _check_int("units", units)
    if seed is None:
        raise ValueError("pass seed= (derived from the chapter's SEED)")
    seed = _check_int("seed", seed, 0)
    inputs = keras.Input((length, features), name="sequence")
    state = _recurrent_layer(cell, units, seed, forget_bias, length)(inputs)
    logits = keras.layers.Dense(classes, name="head",
                                kernel_initializer=keras.initializers.GlorotUniform(
                                    seed=seed * 100 + 4))(state)
    return keras.Model(inputs, logits, name=name or f"{cell}_{forget_bias}_{seed}")


def build_forecaster(cell: str, past: int, units: int = 16, seed: int | None = None,
                     name: str | None = None) -> keras.Model:
    """``input (past, 1) -> recurrent (cell, units) -> head (1 value)``: a one-step forecaster.

    Reads a window of ``past`` scaled values, one per step, and returns one scaled number (what
    the number means — a level or a change — is decided by how the chapter scales inputs and
    targets). Initialisers are seeded from ``seed``. Taught in chapter 10.
    """
    cell = _check_cell(cell)
    past, units = _check_int("past", past), _check_int("units", units)
    if seed is None:
        raise ValueError("pass seed= (derived from the chapter's SEED)")
    seed = _check_int("seed", seed, 0)
    inputs = keras.Input((past, 1), name="window")
    state = _recurrent_layer(cell, units, seed, "keras", None)(inputs)
    value = keras.layers.Dense(1, name="head", kernel_initializer=keras.initializers.GlorotUniform(
        seed=seed * 100 + 4))(state)
    return keras.Model(inputs, value, name=name or f"{cell}_forecaster_{seed}")


def side_by_side(models: Mapping[str, keras.Model], name: str = "side_by_side") -> keras.Model:
    """One Keras model that runs independent ``models`` on the same input, one output each.

    Compiled with one loss per output, its training loss is the *sum* of the models' losses. They
    share no weights, so each model's gradient is exactly the gradient of its own loss, and Adam
    (like every Keras optimiser without ``global_clipnorm``) updates each weight from its own
    gradient: each model trains as it would alone on the same batches — with one compiled step
    (one trace) instead of one per model, and independent branches free to run in parallel. The
    models keep their weights, so each can be used on its own afterwards. Taught in chapter 10.
    """
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty dict of name -> keras.Model")
    for key in models:  # Keras names each output's loss and metrics after its key
        if not isinstance(key, str) or not OUTPUT_NAME.match(key):
            raise ValueError(f"model names must be letters, digits, '_', '.' or '-' (they name "
                             f"the outputs), got {key!r}")
    shapes = {tuple(m.input.shape[1:]) for m in models.values()}
    if len(shapes) != 1:
        raise ValueError(f"the models must take the same input shape, got {sorted(shapes)}")
    inputs = keras.Input(shapes.pop(), name="shared_input")
    outputs = {key: model(inputs) for key, model in models.items()}
    return keras.Model(inputs, outputs, name=name)


@dataclass(frozen=True)
class Windows:
    """Forecasting examples cut from one series by :func:`make_windows` (chapter 10).

    ``inputs[i]`` are the values at positions ``starts[i] … starts[i] + past - 1``, and
    ``targets[i]`` is the value ``horizon`` steps after the last of them, at position
    ``target_positions[i] = starts[i] + past - 1 + horizon``.
    """

    inputs: np.ndarray
    targets: np.ndarray
    target_positions: np.ndarray
    past: int
    horizon: int

    @property
    def last_positions(self) -> np.ndarray:
        """Position of each window's last input: the time at which the forecast is made."""
        return self.target_positions - self.horizon


def make_windows(values, past: int, horizon: int) -> Windows:
    """Every window of ``past`` consecutive values and the value ``horizon`` steps after it.

    ``values`` is a 1-D series in time order. Window ``i`` starts at position ``i``; its last input
    is at ``i + past - 1`` (the forecast's "now") and its target at ``i + past - 1 + horizon``,
    so ``horizon=1`` is the next value. Off-by-one errors here are silent and fatal (a target
    inside its own window makes forecasting look easy), so the positions are returned with the
    windows and the chapter checks them. Taught in chapter 10.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"values must be a 1-D series, got shape {values.shape}")
    past, horizon = _check_int("past", past), _check_int("horizon", horizon)
    count = len(values) - past - horizon + 1
    if count < 1:
        raise ValueError(f"a series of {len(values)} values has no window of past={past} with a "
                         f"target horizon={horizon} steps later")
    starts = np.arange(count)
    inputs = np.lib.stride_tricks.sliding_window_view(values, past)[:count].copy()
    target_positions = starts + past - 1 + horizon
    return Windows(inputs, values[target_positions], target_positions, past, horizon)


def persistence_forecast(inputs) -> np.ndarray:
    """The naive forecast: the future equals the last observed value. Taught in chapter 10."""
    inputs = np.asarray(inputs, dtype=np.float64)
    if inputs.ndim != 2:
        raise ValueError(f"inputs must be (windows, past), got shape {inputs.shape}")
    return inputs[:, -1].copy()


def seasonal_naive_forecast(inputs, horizon: int, period: int) -> np.ndarray:
    """The seasonal-naive forecast: the value one ``period`` before the target.

    The target lies ``horizon`` steps after the window's last value, so the value one period
    earlier sits at window position ``past - 1 + horizon - period``; it must be inside the window
    (``horizon ≤ period ≤ past - 1 + horizon``). Taught in chapter 10.
    """
    inputs = np.asarray(inputs, dtype=np.float64)
    if inputs.ndim != 2:
        raise ValueError(f"inputs must be (windows, past), got shape {inputs.shape}")
    horizon, period = _check_int("horizon", horizon), _check_int("period", period)
    position = inputs.shape[1] - 1 + horizon - period
    if not 0 <= position <= inputs.shape[1] - 1:
        raise ValueError(f"the value one period ({period}) before a target {horizon} steps ahead "
                         f"is not inside a window of {inputs.shape[1]}")
    return inputs[:, position].copy()


class LinearAutoregression:
    """Least-squares linear autoregression on the last ``order`` values of each window.

    ``relative_to_last=False`` fits ``ŷ = a + Σ_j β_j x_j`` on the raw values.
    ``relative_to_last=True`` fits the *change* from the last value instead,
    ``ŷ - x_last = a + Σ_j w_j (x_j - x_last)``, which is the same model with its coefficients
    constrained to sum to 1: adding a constant to the whole window adds it to the forecast.
    Taught in chapter 10.
    """

    def __init__(self, order: int, relative_to_last: bool = True):
        self.order = _check_int("order", order)
        self.relative_to_last = bool(relative_to_last)
        self.coefficients: np.ndarray | None = None

    def _design(self, inputs) -> tuple[np.ndarray, np.ndarray]:
        inputs = np.asarray(inputs, dtype=np.float64)
        if inputs.ndim != 2 or inputs.shape[1] < self.order:
            raise ValueError(f"inputs must be (windows, past) with past ≥ order {self.order}, got "
                             f"shape {inputs.shape}")
        recent = inputs[:, -self.order:]
        offset = recent[:, -1:] if self.relative_to_last else np.zeros((len(inputs), 1))
        return np.column_stack([np.ones(len(inputs)), recent - offset]), offset[:, 0]

    def fit(self, inputs, targets) -> LinearAutoregression:
        design, offset = self._design(inputs)
        targets = np.asarray(targets, dtype=np.float64)
        if targets.shape != (len(design),):
            raise ValueError(f"targets must be ({len(design)},), got {targets.shape}")
        self.coefficients = np.linalg.lstsq(design, targets - offset, rcond=None)[0]
        return self

    def predict(self, inputs) -> np.ndarray:
        if self.coefficients is None:
            raise ValueError("call fit() before predict()")
        design, offset = self._design(inputs)
        return design @ self.coefficients + offset


def mean_absolute_error(forecast, actual) -> float:
    """Mean of ``|forecast - actual|``, in the units of the series. Taught in chapter 10."""
    forecast, actual = np.asarray(forecast, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    if forecast.shape != actual.shape:
        raise ValueError(f"forecast and actual differ in shape: {forecast.shape} vs {actual.shape}")
    return float(np.mean(np.abs(forecast - actual)))


class StepTimer(keras.callbacks.Callback):
    """Records the wall time of every training step after the first epoch (which traces).

    ``milliseconds`` (or ``seconds_per_step``) is the median step time, robust to a busy
    machine's pauses. Pass it to ``fit(callbacks=[timer])``. Taught in chapter 10; used in
    chapters 13–16.
    """

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._epoch = 0
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self._epoch > 0:
            self.seconds.append(time.perf_counter() - self._start)

    @property
    def seconds_per_step(self) -> float:
        if not self.seconds:
            raise ValueError("no step timed: train for at least two epochs with this callback")
        return float(np.median(self.seconds))

    @property
    def milliseconds(self) -> float:
        return 1000.0 * self.seconds_per_step
