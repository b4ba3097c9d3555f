"""Unit tests of dlbook.scratch: the NumPy neuron, perceptron and MLP of chapter 2.

References: the formulas themselves, central finite differences in float64, and Keras
(forward pass, loss, parameter count) and tf.GradientTape (gradients) with the same weights.
"""

import numpy as np
import pytest

from dlbook.scratch import (
    MLP,
    heaviside,
    log_softmax,
    neuron,
    numerical_gradients,
    perceptron_predict,
    perceptron_train,
    relative_error,
    sigmoid,
    softmax,
)

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
AND_Y = np.array([0, 0, 0, 1])
OR_Y = np.array([0, 1, 1, 1])
XOR_Y = np.array([0, 1, 1, 0])


def small_problem(n=7, n_features=4, n_classes=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_features)), rng.integers(0, n_classes, n)


def keras_twin(model: MLP, dtype="float64"):
    """A Keras Sequential model computing the same function as ``model``, weights copied in."""
    import keras

    sizes = model.layer_sizes
    layers = [keras.Input((sizes[0],), dtype=dtype)]
    for layer, width in enumerate(sizes[1:], 1):
        last = layer == model.n_layers
        layers.append(keras.layers.Dense(width, activation="softmax" if last else model.activation,
                                         dtype=dtype, name=f"dense_{layer}"))
    twin = keras.Sequential(layers)
    twin.set_weights(model.keras_weights())
    return twin


# --- activations ---------------------------------------------------------------------------------


def test_heaviside_is_one_only_for_positive_inputs():
    np.testing.assert_array_equal(heaviside(np.array([-2.0, 0.0, 1e-9, 3.0])), [0, 0, 1, 1])


def test_sigmoid_matches_formula_and_does_not_overflow():
    z = np.linspace(-20, 20, 41)
    np.testing.assert_allclose(sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-12, atol=1e-15)
    with np.errstate(over="raise"):
        np.testing.assert_array_equal(sigmoid(np.array([-1000.0, 1000.0])), [0.0, 1.0])


def test_softmax_rows_sum_to_one_and_ignore_shifts():
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 0.0]])
    probs = softmax(logits)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(softmax(logits[:1] + 50.0), probs[:1])
    np.testing.assert_allclose(probs[1], [0.5, 0.5, 0.0], atol=1e-300)
    np.testing.assert_allclose(np.exp(log_softmax(logits)), probs)
    assert np.isfinite(log_softmax(np.array([[0.0, -1e4]]))).all()


# --- neuron and perceptron -----------------------------------------------------------------------


def test_neuron_with_hand_set_weights_computes_and():
    np.testing.assert_array_equal(neuron(XOR_X, np.array([1.0, 1.0]), -1.5), AND_Y)
    assert neuron(np.array([1.0, 1.0]), np.array([1.0, 1.0]), -1.5).shape == ()
    np.testing.assert_allclose(neuron(np.array([2.0]), np.array([0.5]), 0.0, "sigmoid"),
                               sigmoid(1.0))


@pytest.mark.parametrize(
    "x, w, activation, match",
    [
        (XOR_X, np.ones(2), "softplus", "activation must be one of"),
        (XOR_X, np.ones((2, 1)), "step", "w must be a 1-D"),
        (XOR_X, np.ones(3), "step", "x must have 3 features"),
    ],
)
def test_neuron_rejects_bad_arguments(x, w, activation, match):
    with pytest.raises(ValueError, match=match):
        neuron(x, w, 0.0, activation)


@pytest.mark.parametrize("y", [AND_Y, OR_Y])
def test_perceptron_learns_linearly_separable_gates(y):
    w, b, errors = perceptron_train(XOR_X, y, epochs=20, lr=1.0)
    assert w.shape == (2,) and isinstance(b, float)
    assert len(errors) == 20
    assert errors[0] > 0 and errors[-1] == 0
    np.testing.assert_array_equal(perceptron_predict(XOR_X, w, b), y)
    assert perceptron_predict(XOR_X, w, b).dtype == np.int64


def test_perceptron_never_gets_an_error_free_epoch_on_xor():
    w, b, errors = perceptron_train(XOR_X, XOR_Y, epochs=100)
    assert min(errors) >= 1
    assert (perceptron_predict(XOR_X, w, b) == XOR_Y).sum() <= 3


def test_perceptron_from_zero_is_unchanged_by_learning_rate_scale():
    # Starting at zero, lr only scales w and b, so predictions (and errors) are identical.
    w1, b1, errors1 = perceptron_train(XOR_X, AND_Y, epochs=10, lr=1.0)
    w2, b2, errors2 = perceptron_train(XOR_X, AND_Y, epochs=10, lr=0.01)
    assert errors1 == errors2
    np.testing.assert_allclose(w2, 0.01 * w1)
    assert b2 == pytest.approx(0.01 * b1)


@pytest.mark.parametrize(
    "X, y, epochs, lr, match",
    [
        (XOR_X[:, 0], AND_Y, 5, 1.0, "X must be 2-D"),
        (XOR_X, AND_Y[:3], 5, 1.0, r"y must have shape \(4,\)"),
        (XOR_X, np.array([0, 1, 2, 1]), 5, 1.0, "only the labels 0 and 1"),
        (XOR_X, AND_Y, 0, 1.0, "epochs must be a positive int"),
        (XOR_X, AND_Y, 2.5, 1.0, "epochs must be a positive int"),
        (XOR_X, AND_Y, 5, 0.0, "lr must be positive"),
    ],
)
def test_perceptron_rejects_bad_arguments(X, y, epochs, lr, match):
    with pytest.raises(ValueError, match=match):
        perceptron_train(X, y, epochs=epochs, lr=lr)


# --- MLP: construction ---------------------------------------------------------------------------


def test_mlp_parameters_have_keras_layout_and_count():
    model = MLP([64, 32, 16, 10], activation="tanh", seed=3)
    assert list(model.params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert model.params["W1"].shape == (64, 32) and model.params["b3"].shape == (10,)
    assert all(p.dtype == np.float64 for p in model.params.values())
    expected = 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    assert model.count_params() == expected
    assert keras_twin(model).count_params() == expected
    assert [w.shape for w in model.keras_weights()] == [
        (64, 32), (32,), (32, 16), (16,), (16, 10), (10,)]


def test_mlp_init_is_seeded_and_scaled_by_fan_in():
    a, b, c = MLP([400, 300, 2], seed=5), MLP([400, 300, 2], seed=5), MLP([400, 300, 2], seed=6)
    np.testing.assert_array_equal(a.params["W1"], b.params["W1"])
    assert not np.array_equal(a.params["W1"], c.params["W1"])
    assert a.params["W1"].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)  # He, for ReLU
    tanh = MLP([400, 300, 2], activation="tanh", seed=5)
    assert tanh.params["W1"].std() == pytest.approx(np.sqrt(1 / 400), rel=0.02)
    assert not a.params["b1"].any()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"layer_sizes": [4]}, "at least two positive ints"),
        ({"layer_sizes": [4, 0, 3]}, "at least two positive ints"),
        ({"layer_sizes": [4, 2.5, 3]}, "at least two positive ints"),
        ({"layer_sizes": [4, 1]}, "number of classes and must be >= 2"),
        ({"layer_sizes": [4, 3], "activation": "softmax"}, "activation must be one of"),
        ({"layer_sizes": [4, 3], "seed": -1}, "seed must be a non-negative int"),
    ],
)
def test_mlp_rejects_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(**kwargs)


# --- MLP: forward pass and loss vs Keras ---------------------------------------------------------


@pytest.mark.parametrize("activation", MLP.HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("sizes", [(4, 3), (4, 6, 3), (4, 6, 5, 3)])
def test_forward_matches_keras_with_the_same_weights(sizes, activation):
    X, y = small_problem()
    model = MLP(sizes, activation=activation, seed=2)
    probs = model.forward(X)
    assert probs.shape == (7, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    # Called directly: predict() would cast the inputs to float32 first.
    reference = np.asarray(keras_twin(model)(X))
    assert reference.dtype == np.float64
    np.testing.assert_allclose(probs, reference, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(model.predict(X), probs.argmax(axis=1))


def test_forward_matches_a_float32_keras_model_to_float32_precision():
    X, _ = small_problem(n=50, n_features=64, n_classes=10)
    model = MLP([64, 64, 10], seed=0)
    twin = keras_twin(model, dtype="float32")
    np.testing.assert_allclose(model.forward(X), twin.predict(X.astype("float32"), verbose=0),
                               atol=1e-5)


def test_loss_and_accuracy_match_keras():
    import keras

    X, y = small_problem(n=20)
    model = MLP([4, 5, 3], activation="tanh", seed=4)
    reference = keras.losses.SparseCategoricalCrossentropy(dtype="float64")(y, model.forward(X))
    assert model.loss(X, y) == pytest.approx(float(reference), rel=1e-10)
    loss, accuracy = model.evaluate(X, y)
    assert loss == model.loss(X, y)
    assert accuracy == model.accuracy(X, y) == np.mean(model.forward(X).argmax(axis=1) == y)


def test_loss_stays_finite_for_confident_wrong_predictions():
    model = MLP([1, 2], seed=0)
    model.params["W1"][:] = [[1000.0, -1000.0]]
    assert model.loss(np.array([[1.0]]), np.array([1])) == pytest.approx(2000.0)


# --- MLP: gradients ------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", MLP.HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("sizes", [(4, 3), (4, 6, 3), (4, 6, 5, 3)])
def test_gradients_match_central_finite_differences(sizes, activation):
    X, y = small_problem()
    model = MLP(sizes, activation=activation, seed=7)
    model.params = {k: v + 0.1 for k, v in model.params.items()}  # non-zero biases too
    loss, grads = model.loss_and_gradients(X, y)
    assert loss == pytest.approx(model.loss(X, y), rel=1e-14)
    assert list(grads) == list(model.params)
    numeric = numerical_gradients(model, X, y)
    for key, grad in grads.items():
        assert grad.shape == model.params[key].shape
        assert relative_error(grad, numeric[key]) <= 1e-6, key


def test_gradients_match_tf_gradient_tape():
    import keras
    import tensorflow as tf

    X, y = small_problem(n=30)
    model = MLP([4, 8, 6, 3], activation="sigmoid", seed=9)
    twin = keras_twin(model)
    with tf.GradientTape() as tape:
        probs = twin(tf.constant(X), training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, probs))
    tape_grads = tape.gradient(loss, twin.trainable_variables)
    _, grads = model.loss_and_gradients(X, y)
    for ours, theirs in zip(model.keras_weights(), tape_grads, strict=True):
        assert ours.shape == tuple(theirs.shape)
    for ours, theirs in zip([grads[k] for k in model.params], tape_grads, strict=True):
        assert relative_error(ours, theirs.numpy()) <= 1e-10


def test_numerical_gradients_restore_parameters_and_reject_bad_eps():
    X, y = small_problem()
    model = MLP([4, 5, 3], seed=1)
    before = {k: v.copy() for k, v in model.params.items()}
    numerical_gradients(model, X, y)
    for key, value in before.items():
        np.testing.assert_array_equal(model.params[key], value)
    with pytest.raises(ValueError, match="eps must be positive"):
        numerical_gradients(model, X, y, eps=0.0)


def test_relative_error():
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert relative_error([3.0, 0.0], [0.0, 4.0]) == pytest.approx(5.0 / 7.0)
    with pytest.raises(ValueError, match="same shape"):
        relative_error(np.zeros(3), np.zeros(4))


# --- MLP: training -------------------------------------------------------------------------------


def test_step_moves_against_the_gradient():
    X, y = small_problem()
    model = MLP([4, 5, 3], seed=1)
    before = {k: v.copy() for k, v in model.params.items()}
    loss, grads = model.loss_and_gradients(X, y)
    model.step(grads, lr=0.1)
    for key in before:
        np.testing.assert_allclose(model.params[key], before[key] - 0.1 * grads[key])
    assert model.loss(X, y) < loss


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda g: {k: v for k, v in g.items() if k != "b2"}, "grads must have the keys"),
        (lambda g: {**g, "W1": g["W1"].T}, r"grads\['W1'\] must have shape \(4, 5\)"),
    ],
)
def test_step_rejects_gradients_that_do_not_fit(change, match):
    X, y = small_problem()
    model = MLP([4, 5, 3], seed=1)
    _, grads = model.loss_and_gradients(X, y)
    with pytest.raises(ValueError, match=match):
        model.step(change(grads), lr=0.1)
    with pytest.raises(ValueError, match="lr must be positive"):
        model.step(grads, lr=-1.0)


def test_fit_solves_xor_with_a_hidden_layer_but_not_without():
    hidden = MLP([2, 4, 2], activation="tanh", seed=0)
    history = hidden.fit(XOR_X, XOR_Y, epochs=2000, lr=0.5)
    assert set(history) == {"loss", "accuracy"} and len(history["loss"]) == 2000
    assert history["loss"][-1] < 0.05 and history["accuracy"][-1] == 1.0
    single = MLP([2, 2], seed=0)
    single.fit(XOR_X, XOR_Y, epochs=2000, lr=0.5)
    assert single.loss(XOR_X, XOR_Y) >= np.log(2) - 1e-9  # the best any single layer can do


def test_fit_is_reproducible_and_records_validation():
    X, y = small_problem(n=60)
    runs = []
    for _ in range(2):
        model = MLP([4, 8, 3], seed=3)
        runs.append(model.fit(X[:40], y[:40], epochs=5, lr=0.1, batch_size=8, seed=11,
                              validation_data=(X[40:], y[40:])))
    assert runs[0] == runs[1]
    assert set(runs[0]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 5 for v in runs[0].values())
    assert runs[0]["loss"][-1] < runs[0]["loss"][0]


def test_fit_without_shuffling_takes_the_batches_in_order():
    X, y = small_problem(n=10)
    fitted, by_hand = MLP([4, 5, 3], seed=2), MLP([4, 5, 3], seed=2)
    fitted.fit(X, y, epochs=2, lr=0.3, batch_size=4, shuffle=False)
    for _ in range(2):
        for start in (0, 4, 8):
            by_hand.step(by_hand.loss_and_gradients(X[start:start + 4], y[start:start + 4])[1], 0.3)
    for key in fitted.params:
        np.testing.assert_array_equal(fitted.params[key], by_hand.params[key])
    shuffled = MLP([4, 5, 3], seed=2)
    shuffled.fit(X, y, epochs=2, lr=0.3, batch_size=4, seed=0)
    assert not np.array_equal(shuffled.params["W1"], fitted.params["W1"])


def test_one_epoch_matches_keras_sgd_in_the_same_batch_order():
    import keras

    X, y = small_problem(n=48, n_features=6, n_classes=4)
    model = MLP([6, 7, 4], activation="relu", seed=5)
    twin = keras_twin(model)
    twin.compile(optimizer=keras.optimizers.SGD(learning_rate=0.2),
                 loss="sparse_categorical_crossentropy")
    twin.fit(X, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    model.fit(X, y, epochs=1, lr=0.2, batch_size=16, shuffle=False)
    for ours, theirs in zip(model.keras_weights(), twin.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-8)  # lr is a float32


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 1, "lr": 0.1, "shuffle": "no"}, "shuffle must be True or False"),
        ({"epochs": 0, "lr": 0.1}, "epochs must be a positive int"),
        ({"epochs": 1, "lr": 0.0}, "lr must be positive"),
        ({"epochs": 1, "lr": 0.1, "batch_size": 0}, "batch_size must be a positive int or None"),
        ({"epochs": 1, "lr": 0.1, "validation_data": (np.zeros((2, 4)),)},
         "validation_data must be a pair"),
        ({"epochs": 1, "lr": 0.1, "validation_data": (np.zeros((2, 5)), np.zeros(2, int))},
         r"X must have shape \(n_samples >= 1, 4\)"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, match):
    X, y = small_problem()
    with pytest.raises(ValueError, match=match):
        MLP([4, 3], seed=0).fit(X, y, **kwargs)


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.zeros((3, 5)), np.zeros(3, int), r"X must have shape \(n_samples >= 1, 4\)"),
        (np.zeros((0, 4)), np.zeros(0, int), r"X must have shape \(n_samples >= 1, 4\)"),
        (np.zeros((3, 4)), np.zeros(2, int), r"y must have shape \(3,\)"),
        (np.zeros((3, 4)), np.array([0, 1, 3]), r"integer class labels in \[0, 2\]"),
        (np.zeros((3, 4)), np.array([0.0, 1.0, 2.0]), "integer class labels"),
    ],
)
def test_loss_rejects_bad_data(X, y, match):
    with pytest.raises(ValueError, match=match):
        MLP([4, 3], seed=0).loss_and_gradients(X, y)
