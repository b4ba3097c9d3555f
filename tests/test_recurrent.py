"""Unit tests of dlbook.recurrent: recurrent cells by hand, BPTT, windows and baselines (chapter 10).

References: Keras's own SimpleRNN, LSTM and GRU layers with the same weights (float64), including
random initial states; tf.GradientTape for backpropagation through time and for the Jacobian
norms; series whose values are their own positions, for window alignment; hand-worked baselines.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dlbook.recurrent import (
    LinearAutoregression,
    StepTimer,
    build_forecaster,
    build_sequence_classifier,
    chrono_lstm_bias,
    gru_forward,
    input_jacobian_norms,
    keras_weights,
    lstm_forward,
    make_windows,
    mean_absolute_error,
    persistence_forecast,
    seasonal_naive_forecast,
    side_by_side,
    sigmoid,
    simple_rnn_backward,
    simple_rnn_forward,
    synthetic_marked_recall,
)

LAYERS = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM,
          "gru": keras.layers.GRU}


def random_layer(kind, units, features, seed, dtype="float64"):
    """A built Keras layer whose weights (bias included) are all random, not the initial zeros."""
    layer = LAYERS[kind](units, return_sequences=True, return_state=True, dtype=dtype)
    layer.build((None, None, features))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    return layer


@pytest.mark.parametrize("batch, steps, features, units", [(3, 7, 2, 4), (1, 20, 5, 3),
                                                            (4, 1, 1, 6)])
def test_simple_rnn_forward_matches_keras(batch, steps, features, units):
    rng = np.random.default_rng(steps)
    x, h0 = rng.normal(size=(batch, steps, features)), rng.normal(size=(batch, units))
    layer = random_layer("simple_rnn", units, features, seed=1)
    keras_states, keras_last = (np.asarray(t) for t in layer(x, initial_state=[h0]))
    ours = simple_rnn_forward(x, *keras_weights(layer), initial_state=h0)
    assert ours.shape == (batch, steps, units)
    np.testing.assert_allclose(ours, keras_states, atol=1e-12)
    np.testing.assert_allclose(ours[:, -1], keras_last, atol=1e-12)


@pytest.mark.parametrize("batch, steps, features, units", [(3, 9, 2, 4), (2, 30, 5, 3)])
def test_lstm_forward_matches_keras_states_and_cell(batch, steps, features, units):
    rng = np.random.default_rng(steps)
    x = rng.normal(size=(batch, steps, features))
    h0, c0 = rng.normal(size=(batch, units)), rng.normal(size=(batch, units))
    layer = random_layer("lstm", units, features, seed=2)
    keras_states, keras_h, keras_c = (np.asarray(t) for t in layer(x, initial_state=[h0, c0]))
    trace = lstm_forward(x, *keras_weights(layer), initial_state=h0, initial_cell=c0)
    np.testing.assert_allclose(trace.hidden, keras_states, atol=1e-12)
    np.testing.assert_allclose(trace.cell[:, -1], keras_c, atol=1e-12)
    np.testing.assert_allclose(trace.hidden[:, -1], keras_h, atol=1e-12)


def test_lstm_gate_order_is_i_f_c_o():
    """A large bias on one block switches exactly that gate fully on."""
    units, features = 2, 1
    x = np.zeros((1, 3, features))
    kernel, recurrent = np.zeros((features, 4 * units)), np.zeros((units, 4 * units))
    bias = np.zeros(4 * units)
    bias[units:2 * units] = 30.0  # block 1 = forget gate
    trace = lstm_forward(x, kernel, recurrent, bias)
    np.testing.assert_allclose(trace.forget_gate, 1.0, atol=1e-12)
    np.testing.assert_allclose(trace.input_gate, 0.5)
    np.testing.assert_allclose(trace.output_gate, 0.5)
    np.testing.assert_allclose(trace.candidate, 0.0)


@pytest.mark.parametrize("batch, steps, features, units", [(3, 9, 2, 4), (2, 25, 4, 5)])
def test_gru_forward_matches_keras(batch, steps, features, units):
    rng = np.random.default_rng(steps)
    x, h0 = rng.normal(size=(batch, steps, features)), rng.normal(size=(batch, units))
    layer = random_layer("gru", units, features, seed=3)
    keras_states, keras_last = (np.asarray(t) for t in layer(x, initial_state=[h0]))
    trace = gru_forward(x, *keras_weights(layer), initial_state=h0)
    np.testing.assert_allclose(trace.hidden, keras_states, atol=1e-12)
    np.testing.assert_allclose(trace.hidden[:, -1], keras_last, atol=1e-12)
    assert trace.update_gate.shape == trace.reset_gate.shape == (batch, steps, units)
    assert np.all((trace.update_gate > 0) & (trace.update_gate < 1))


def test_float32_keras_layer_agrees_to_1e_5():
    """The chapter's setting: a float32 Keras layer against the float64 NumPy cell."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 40, 3)).astype("float32")
    for kind, forward in (("lstm", lstm_forward), ("gru", gru_forward)):
        layer = LAYERS[kind](8)
        expected = np.asarray(layer(x))
        assert np.abs(forward(x, *keras_weights(layer)).hidden[:, -1] - expected).max() <= 1e-5


def test_keras_weights_rejects_what_the_cells_do_not_implement():
    with pytest.raises(ValueError, match="not built"):
        keras_weights(keras.layers.LSTM(3))
    gru = keras.layers.GRU(3, reset_after=False)
    gru.build((None, 4, 2))
    with pytest.raises(ValueError, match="reset_after=True"):
        keras_weights(gru)
    with pytest.raises(ValueError, match="SimpleRNN, LSTM or GRU"):
        keras_weights(keras.layers.Dense(3))


def test_cells_check_shapes():
    kernel, recurrent, bias = np.zeros((2, 8)), np.zeros((2, 8)), np.zeros(8)
    with pytest.raises(ValueError, match=r"\(batch, time, features\)"):
        lstm_forward(np.zeros((5, 2)), kernel, recurrent, bias)
    with pytest.raises(ValueError, match="expects 2 features"):
        lstm_forward(np.zeros((1, 5, 3)), kernel, recurrent, bias)
    with pytest.raises(ValueError, match="recurrent_kernel"):
        lstm_forward(np.zeros((1, 5, 2)), kernel, np.zeros((3, 8)), bias)
    with pytest.raises(ValueError, match="bias must have shape"):
        gru_forward(np.zeros((1, 5, 2)), np.zeros((2, 6)), np.zeros((2, 6)), np.zeros(6))
    with pytest.raises(ValueError, match="initial_state"):
        simple_rnn_forward(np.zeros((1, 5, 2)), np.zeros((2, 3)), np.zeros((3, 3)), np.zeros(3),
                           initial_state=np.zeros((2, 3)))


def test_sigmoid_is_stable_and_correct():
    z = np.array([-800.0, -1.0, 0.0, 2.0, 800.0])
    with np.errstate(over="raise"):
        values = sigmoid(z)
    np.testing.assert_allclose(values, [0.0, 1 / (1 + np.e), 0.5, 1 / (1 + np.exp(-2)), 1.0])


def test_simple_rnn_backward_matches_gradient_tape():
    rng = np.random.default_rng(4)
    batch, steps, features, units = 3, 12, 2, 5
    x, h0 = rng.normal(size=(batch, steps, features)), rng.normal(size=(batch, units))
    kernel, recurrent = rng.normal(0, 0.5, (features, units)), rng.normal(0, 0.5, (units, units))
    bias = rng.normal(0, 0.1, units)
    readout = rng.normal(size=(batch, steps, units))  # loss = Σ readout ⊙ h over all steps
    readout[:, : steps // 2] = 0.0  # the loss reads only the second half directly
    states = simple_rnn_forward(x, kernel, recurrent, bias, initial_state=h0)
    ours = simple_rnn_backward(x, states, kernel, recurrent, readout, initial_state=h0)

    variables = [tf.Variable(v) for v in (x, kernel, recurrent, bias, h0)]
    with tf.GradientTape() as tape:
        tx, tk, tr, tb, th = variables
        h, outs = th, []
        for t in range(steps):
            h = tf.tanh(tx[:, t] @ tk + h @ tr + tb)
            outs.append(h)
        loss = tf.reduce_sum(tf.stack(outs, axis=1) * readout)
    expected = tape.gradient(loss, variables)
    for got, want in zip((ours.inputs, ours.kernel, ours.recurrent_kernel, ours.bias,
                          ours.initial_state), expected, strict=True):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12)
    assert np.abs(ours.inputs[:, 0]).max() > 0  # early inputs get gradient only through time


def test_simple_rnn_backward_checks_shapes():
    with pytest.raises(ValueError, match="grad_states"):
        simple_rnn_backward(np.zeros((1, 4, 2)), np.zeros((1, 4, 3)), np.zeros((2, 3)),
                            np.zeros((3, 3)), np.zeros((1, 3, 3)))


def test_input_jacobian_norms_match_full_jacobian():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 6, 2)).astype("float32")
    layer = keras.layers.GRU(4)
    layer(x)
    ours = input_jacobian_norms(layer, x)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        last = layer(xt)
    jacobian = tape.batch_jacobian(last, xt).numpy()  # (batch, units, T, features)
    expected = np.sqrt((jacobian.astype(np.float64) ** 2).sum(axis=(1, 3))).mean(axis=0)
    assert ours.shape == (6,)
    np.testing.assert_allclose(ours, expected, rtol=1e-5)


def test_input_jacobian_norms_need_the_last_state():
    layer = keras.layers.SimpleRNN(3, return_sequences=True)
    with pytest.raises(ValueError, match="last state"):
        input_jacobian_norms(layer, np.zeros((2, 4, 1)))


def test_synthetic_marked_recall():
    x, y = synthetic_marked_recall(500, length=30, n_symbols=3, marker_window=5, seed=0)
    assert x.shape == (500, 30, 4) and x.dtype == np.float32 and y.shape == (500,)
    assert np.all(x[..., :3].sum(axis=-1) == 1) and np.all(x[..., 3].sum(axis=1) == 1)
    marked = x[..., 3].argmax(axis=1)
    assert marked.max() < 5
    np.testing.assert_array_equal(x[np.arange(500), marked, :3].argmax(axis=1), y)
    assert set(np.unique(y)) == {0, 1, 2}
    again, _ = synthetic_marked_recall(500, length=30, n_symbols=3, marker_window=5, seed=0)
    np.testing.assert_array_equal(x, again)
    with pytest.raises(ValueError, match="seed"):
        synthetic_marked_recall(5, 10)
    with pytest.raises(ValueError, match="marker_window"):
        synthetic_marked_recall(5, 10, marker_window=11, seed=0)


def test_chrono_bias_blocks_and_range():
    bias = chrono_lstm_bias(64, max_lag=80, seed=0)
    i, f, c, o = bias.reshape(4, 64)
    assert np.all((f >= 0) & (f <= np.log(79)))
    np.testing.assert_array_equal(i, -f)
    assert np.all(c == 0) and np.all(o == 0)
    with pytest.raises(ValueError, match="max_lag"):
        chrono_lstm_bias(4, max_lag=2, seed=0)


def test_sequence_classifier_parameters_and_chrono_bias():
    for cell, per_unit in (("simple_rnn", 1), ("lstm", 4), ("gru", 3)):
        model = build_sequence_classifier(cell, length=20, features=5, classes=4, units=8, seed=1)
        gru_extra = 3 * 8 if cell == "gru" else 0  # the GRU's second (recurrent) bias row
        recurrent = per_unit * 8 * (5 + 8 + 1) + gru_extra
        assert model.count_params() == recurrent + 8 * 4 + 4
        assert model.output.shape == (None, 4)
    lstm = build_sequence_classifier("lstm", 20, 5, 4, units=8, seed=1, forget_bias="chrono")
    bias = np.asarray(lstm.get_layer("recurrent").cell.bias)
    np.testing.assert_allclose(bias, chrono_lstm_bias(8, 20, 103))
    default = build_sequence_classifier("lstm", 20, 5, 4, units=8, seed=1)
    np.testing.assert_array_equal(np.asarray(default.get_layer("recurrent").cell.bias)[8:16], 1.0)
    with pytest.raises(ValueError, match="LSTM initialisation"):
        build_sequence_classifier("gru", 20, 5, 4, seed=1, forget_bias="chrono")
    with pytest.raises(ValueError, match="cell must be"):
        build_sequence_classifier("rnn", 20, 5, 4, seed=1)
    with pytest.raises(ValueError, match="seed"):
        build_sequence_classifier("lstm", 20, 5, 4)


def test_same_seed_same_weights_other_seed_other_weights():
    a = build_forecaster("lstm", past=10, seed=3)
    b = build_forecaster("lstm", past=10, seed=3)
    c = build_forecaster("lstm", past=10, seed=4)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    assert a.output.shape == (None, 1) and a.count_params() == 4 * 16 * (1 + 16 + 1) + 16 + 1


def test_side_by_side_trains_each_model_as_if_alone():
    x, y = synthetic_marked_recall(64, length=8, n_symbols=3, marker_window=2, seed=1)

    def pair():
        return {"rnn": build_sequence_classifier("simple_rnn", 8, 4, 3, units=4, seed=1),
                "gru": build_sequence_classifier("gru", 8, 4, 3, units=4, seed=2)}

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    together = pair()
    joint = side_by_side(together)
    joint.compile(keras.optimizers.Adam(0.01), loss={k: loss for k in together})
    joint.fit(x, {k: y for k in together}, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for key, model in pair().items():
        model.compile(keras.optimizers.Adam(0.01), loss=loss)
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        for alone, joined in zip(model.get_weights(), together[key].get_weights(), strict=True):
            np.testing.assert_allclose(joined, alone, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="name the outputs"):
        side_by_side({"simple rnn": together["rnn"]})
    with pytest.raises(ValueError, match="same input shape"):
        side_by_side({"a": build_forecaster("lstm", 5, seed=0),
                      "b": build_forecaster("lstm", 6, seed=0)})


def test_windows_are_aligned():
    positions = np.arange(20.0)  # each value is its own position
    windows = make_windows(positions, past=5, horizon=3)
    assert windows.inputs.shape == (20 - 5 - 3 + 1, 5)
    np.testing.assert_array_equal(windows.inputs[0], [0, 1, 2, 3, 4])
    assert windows.targets[0] == 4 + 3  # horizon steps after the last input
    np.testing.assert_array_equal(windows.inputs[:, -1], windows.last_positions)
    np.testing.assert_array_equal(windows.targets, windows.target_positions)
    assert windows.targets[-1] == 19  # the last window uses the last value as its target
    assert np.all(windows.targets > windows.inputs.max(axis=1))  # no target inside its window
    one_step = make_windows(positions, past=4, horizon=1)
    np.testing.assert_array_equal(one_step.targets, one_step.inputs[:, -1] + 1)


def test_windows_check_arguments():
    with pytest.raises(ValueError, match="no window"):
        make_windows(np.arange(5.0), past=4, horizon=2)
    with pytest.raises(ValueError, match="1-D"):
        make_windows(np.zeros((5, 2)), past=2, horizon=1)
    with pytest.raises(ValueError, match="horizon"):
        make_windows(np.arange(5.0), past=2, horizon=0)


def test_baselines_by_hand():
    inputs = np.array([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]])
    np.testing.assert_array_equal(persistence_forecast(inputs), [4.0, 40.0])
    # target 2 steps after position 3 (=5); one period of 3 earlier is position 2
    np.testing.assert_array_equal(seasonal_naive_forecast(inputs, horizon=2, period=3), [3.0, 30])
    np.testing.assert_array_equal(seasonal_naive_forecast(inputs, horizon=1, period=4), [1.0, 10])
    with pytest.raises(ValueError, match="not inside a window"):
        seasonal_naive_forecast(inputs, horizon=1, period=5)
    with pytest.raises(ValueError, match="not inside a window"):
        seasonal_naive_forecast(inputs, horizon=3, period=2)


def test_seasonal_naive_on_a_periodic_series_is_exact():
    series = np.tile([1.0, 5.0, 2.0, 7.0], 10)
    windows = make_windows(series, past=6, horizon=3)
    np.testing.assert_array_equal(seasonal_naive_forecast(windows.inputs, 3, 4), windows.targets)


def test_linear_autoregression_recovers_a_known_process():
    rng = np.random.default_rng(6)
    values = np.zeros(600)
    for t in range(2, 600):  # x_t = 0.5 + 1.2 x_{t-1} - 0.3 x_{t-2} + noise (coefficients sum 0.9)
        values[t] = 0.5 + 1.2 * values[t - 1] - 0.3 * values[t - 2] + rng.normal(0, 0.01)
    windows = make_windows(values, past=2, horizon=1)
    raw = LinearAutoregression(order=2, relative_to_last=False).fit(windows.inputs,
                                                                   windows.targets)
    np.testing.assert_allclose(raw.coefficients, [0.5, -0.3, 1.2], atol=0.05)
    assert mean_absolute_error(raw.predict(windows.inputs), windows.targets) < 0.01


def test_relative_autoregression_is_shift_equivariant():
    rng = np.random.default_rng(7)
    inputs, targets = rng.normal(size=(200, 6)), rng.normal(size=200)
    model = LinearAutoregression(order=4).fit(inputs, targets)
    np.testing.assert_allclose(model.predict(inputs + 100.0), model.predict(inputs) + 100.0)
    raw = LinearAutoregression(order=4, relative_to_last=False).fit(inputs, targets)
    assert not np.allclose(raw.predict(inputs + 100.0), raw.predict(inputs) + 100.0)
    with pytest.raises(ValueError, match="fit"):
        LinearAutoregression(2).predict(inputs)
    with pytest.raises(ValueError, match="order"):
        LinearAutoregression(order=7).fit(inputs, targets)


def test_mean_absolute_error():
    assert mean_absolute_error([1.0, 2.0, 4.0], [1.0, 3.0, 1.0]) == pytest.approx(4 / 3)
    with pytest.raises(ValueError, match="shape"):
        mean_absolute_error([1.0], [1.0, 2.0])


def test_step_timer_skips_the_first_epoch():
    model = build_forecaster("simple_rnn", past=4, units=2, seed=0)
    model.compile("sgd", "mse")
    timer = StepTimer()
    with pytest.raises(ValueError, match="no step"):
        _ = timer.milliseconds
    model.fit(np.zeros((32, 4, 1)), np.zeros(32), batch_size=8, epochs=3, verbose=0,
              callbacks=[timer])
    assert len(timer.seconds) == 2 * 4 and timer.milliseconds > 0
