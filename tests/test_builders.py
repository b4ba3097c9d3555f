"""Tests of dlbook.builders: layer names, shapes, parameter counts, penalties, and argument errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from dlbook.builders import build_mlp, default_initializer


def dense_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def layer_names(model):
    return [layer.name for layer in model.layers]


def count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


# --- Structure and parameter counts (counted by hand) -----------------------------------------


def test_plain_mlp_layers_shape_and_parameter_count():
    model = build_mlp(64, [256, 256], 10, name="baseline")
    assert model.name == "baseline"
    assert layer_names(model) == ["features", "hidden_1", "hidden_2", "output"]
    assert model.output_shape == (None, 10)
    # 64*256 + 256  +  256*256 + 256  +  256*10 + 10
    assert model.count_params() == 16_640 + 65_792 + 2_570 == 85_002
    assert count(model.non_trainable_weights) == 0


def test_batch_norm_blocks_have_no_dense_bias_and_four_parameters_per_unit():
    model = build_mlp(64, [32, 16], 10, batch_norm=True)
    assert layer_names(model) == [
        "features",
        "hidden_1", "batch_norm_1", "activation_1",
        "hidden_2", "batch_norm_2", "activation_2",
        "output",
    ]
    assert model.get_layer("hidden_1").bias is None
    assert model.get_layer("output").bias is not None
    # hidden_1 64*32 (no bias), BN 32*(gamma, beta) trainable + 32*(mean, variance) not,
    # hidden_2 32*16, BN 16*2 + 16*2, output 16*10 + 10.
    assert count(model.trainable_weights) == 2_048 + 64 + 512 + 32 + 170 == 2_826
    assert count(model.non_trainable_weights) == 64 + 32 == 96


def test_dropout_layers_present_only_when_asked_with_the_given_rate():
    model = build_mlp(8, [6, 5, 4], 3, dropout=0.25)
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [layer.name for layer in drops] == ["dropout_1", "dropout_2", "dropout_3"]
    assert all(layer.rate == 0.25 for layer in drops)
    assert layer_names(model).index("dropout_1") == layer_names(model).index("hidden_1") + 1
    plain = build_mlp(8, [6, 5, 4], 3)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in plain.layers)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in plain.layers)
    assert model.count_params() == plain.count_params() == 8 * 6 + 6 + 6 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3


def test_batch_norm_momentum_reaches_every_batch_norm_layer():
    default = build_mlp(4, [3, 3], 2, batch_norm=True)
    assert [default.get_layer(f"batch_norm_{i}").momentum for i in (1, 2)] == [0.99, 0.99]
    fast = build_mlp(4, [3, 3], 2, batch_norm=True, batch_norm_momentum=0.9)
    assert [fast.get_layer(f"batch_norm_{i}").momentum for i in (1, 2)] == [0.9, 0.9]


def test_batch_norm_and_dropout_together_in_that_order():
    model = build_mlp(4, [3], 2, batch_norm=True, dropout=0.5)
    assert layer_names(model) == [
        "features", "hidden_1", "batch_norm_1", "activation_1", "dropout_1", "output"
    ]


def test_no_hidden_layers_is_multinomial_logistic_regression():
    model = build_mlp(10, [], 4)
    assert layer_names(model) == ["features", "output"]
    assert model.count_params() == 10 * 4 + 4


def test_one_class_gives_a_sigmoid_unit_and_many_give_a_softmax():
    binary = build_mlp(5, [4], 1)
    assert binary.output_shape == (None, 1)
    assert binary.get_layer("output").activation is keras.activations.sigmoid
    multi = build_mlp(5, [4], 3)
    assert multi.get_layer("output").activation is keras.activations.softmax
    x = np.random.default_rng(0).normal(size=(7, 5)).astype("float32")
    np.testing.assert_allclose(np.sum(multi(x), axis=1), np.ones(7), rtol=1e-6)
    assert np.all((binary(x).numpy() > 0) & (binary(x).numpy() < 1))


def test_activation_is_used_in_hidden_layers():
    plain = build_mlp(5, [4], 3, activation="tanh")
    assert plain.get_layer("hidden_1").activation is keras.activations.tanh
    normed = build_mlp(5, [4], 3, activation="tanh", batch_norm=True)
    assert normed.get_layer("hidden_1").activation is keras.activations.linear
    assert normed.get_layer("activation_1").activation is keras.activations.tanh


# --- Numerical agreement with references --------------------------------------------------------


def test_forward_pass_matches_numpy_reference():
    model = build_mlp(6, [5, 4], 3)
    x = np.random.default_rng(1).normal(size=(9, 6))
    h = x
    for name in ("hidden_1", "hidden_2"):
        layer = model.get_layer(name)
        h = np.maximum(h @ layer.kernel.numpy() + layer.bias.numpy(), 0.0)
    out = model.get_layer("output")
    logits = h @ out.kernel.numpy() + out.bias.numpy()
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model(x.astype("float32")).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_batch_norm_inference_matches_numpy_reference():
    model = build_mlp(6, [5], 3, batch_norm=True)
    rng = np.random.default_rng(2)
    bn = model.get_layer("batch_norm_1")
    # Non-trivial statistics and scale, so that a wrong formula cannot pass by accident.
    bn.gamma.assign(rng.uniform(0.5, 2.0, 5))
    bn.beta.assign(rng.normal(size=5))
    bn.moving_mean.assign(rng.normal(size=5))
    bn.moving_variance.assign(rng.uniform(0.5, 3.0, 5))
    x = rng.normal(size=(8, 6))
    z = x @ model.get_layer("hidden_1").kernel.numpy()
    z_hat = (z - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    h = np.maximum(bn.gamma.numpy() * z_hat + bn.beta.numpy(), 0.0)
    out = model.get_layer("output")
    logits = h @ out.kernel.numpy() + out.bias.numpy()
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    actual = model(x.astype("float32"), training=False).numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_dropout_is_random_in_training_and_off_at_inference():
    model = build_mlp(6, [64], 3, dropout=0.5)
    x = np.ones((4, 6), dtype="float32")
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=False))


@pytest.mark.parametrize(
    ("options", "penalty"),
    [
        ({"l2": 0.03}, lambda w: 0.03 * np.sum(w**2)),
        ({"l1": 0.02}, lambda w: 0.02 * np.sum(np.abs(w))),
        ({"l1": 0.02, "l2": 0.03}, lambda w: 0.02 * np.sum(np.abs(w)) + 0.03 * np.sum(w**2)),
    ],
)
def test_penalty_on_every_dense_kernel_and_never_on_biases(options, penalty):
    model = build_mlp(5, [4, 3], 2, batch_norm=False, **options)
    for layer in dense_layers(model):
        layer.bias.assign(np.full(layer.bias.shape, 7.0))  # a penalised bias would show
    assert len(model.losses) == len(dense_layers(model)) == 3
    expected = sum(penalty(layer.kernel.numpy().astype(np.float64)) for layer in dense_layers(model))
    actual = float(sum(float(loss) for loss in model.losses))
    np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_no_penalty_means_no_regularisation_losses():
    assert build_mlp(5, [4, 3], 2).losses == []
    assert build_mlp(5, [4, 3], 2, l1=0.0, l2=0.0, dropout=0.3, batch_norm=True).losses == []


def test_penalty_gradient_matches_central_finite_differences():
    model = build_mlp(3, [2], 2, l1=0.01, l2=0.05)
    kernel = model.get_layer("hidden_1").kernel
    with tf.GradientTape() as tape:
        total = tf.add_n(model.losses)
    gradient = tape.gradient(total, kernel).numpy()

    weights = kernel.numpy().astype(np.float64)

    def penalty(w):  # the hidden_1 term of the loss, in float64
        return 0.01 * np.sum(np.abs(w)) + 0.05 * np.sum(w**2)

    step = 1e-6
    numeric = np.zeros_like(weights)
    for index in np.ndindex(weights.shape):
        shifted = np.zeros_like(weights)
        shifted[index] = step
        numeric[index] = (penalty(weights + shifted) - penalty(weights - shifted)) / (2 * step)
    assert np.all(np.abs(weights) > 10 * step)  # finite differences are exact away from |w| = 0
    np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(gradient, 0.01 * np.sign(weights) + 0.1 * weights, rtol=1e-5)


# --- Initialisation follows the activation ------------------------------------------------------


@pytest.mark.parametrize(("activation", "expected"),
                         [("relu", keras.initializers.HeNormal),
                          ("gelu", keras.initializers.HeNormal),
                          ("selu", keras.initializers.LecunNormal),
                          ("tanh", keras.initializers.GlorotUniform),
                          ("sigmoid", keras.initializers.GlorotUniform)])
def test_hidden_kernels_are_initialised_for_their_activation(activation, expected):
    model = build_mlp(8, [6, 5], 3, activation=activation)
    for layer in ("hidden_1", "hidden_2"):
        assert type(model.get_layer(layer).kernel_initializer) is expected, (activation, layer)
    assert type(model.get_layer("output").kernel_initializer) is keras.initializers.GlorotUniform


def test_default_relu_kernels_have_he_spread_and_an_explicit_name_overrides_it():
    keras.utils.set_random_seed(0)
    relu = build_mlp(400, [300], 2)
    drawn = relu.get_layer("hidden_1").kernel.numpy()
    np.testing.assert_allclose(drawn.std(), np.sqrt(2 / 400), rtol=0.02)
    glorot = build_mlp(400, [300], 2, kernel_initializer="glorot_normal")
    np.testing.assert_allclose(glorot.get_layer("hidden_1").kernel.numpy().std(),
                               np.sqrt(2 / 700), rtol=0.02)
    assert default_initializer("relu") == "he_normal"
    assert default_initializer("tanh") == "glorot_uniform"


def test_each_layer_draws_its_own_initial_weights():
    keras.utils.set_random_seed(1)
    model = build_mlp(16, [16, 16], 2)
    first, second = (model.get_layer(f"hidden_{i}").kernel.numpy() for i in (1, 2))
    assert not np.allclose(first, second)


def test_layer_norm_blocks_keep_the_bias_and_normalise_each_example():
    model = build_mlp(6, [5, 4], 3, layer_norm=True)
    assert layer_names(model) == ["features", "hidden_1", "layer_norm_1", "activation_1",
                                  "hidden_2", "layer_norm_2", "activation_2", "output"]
    assert model.get_layer("hidden_1").use_bias
    assert model.get_layer("hidden_1").activation is keras.activations.linear
    # (6*5 + 5) + 2*5  +  (5*4 + 4) + 2*4  +  4*3 + 3, nothing non-trainable
    assert model.count_params() == 35 + 10 + 24 + 8 + 15
    assert count(model.non_trainable_weights) == 0
    x = np.random.default_rng(0).normal(size=(7, 6)).astype("float32")
    hidden = model.get_layer("hidden_1")
    z = x @ hidden.kernel.numpy() + hidden.bias.numpy()
    expected = (z - z.mean(1, keepdims=True)) / np.sqrt(z.var(1, keepdims=True) + 1e-3)
    probe = keras.Model(model.input, model.get_layer("layer_norm_1").output)
    np.testing.assert_allclose(probe(x, training=False).numpy(), expected, rtol=1e-4, atol=1e-5)
    # the same example gives the same output whatever else is in the batch
    np.testing.assert_allclose(probe(x[:1], training=True).numpy(),
                               probe(x, training=True).numpy()[:1], rtol=1e-5, atol=1e-6)


def test_accepts_numpy_scalars_and_tuples():
    model = build_mlp(np.int64(4), (np.int64(3),), np.int32(2), l2=np.float64(0.1),
                      dropout=np.float32(0.2))
    assert model.output_shape == (None, 2)


# --- Argument errors name the argument and say why ----------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"input_dim": 0}, r"input_dim must be an int of at least 1, got 0"),
        ({"input_dim": 2.5}, r"input_dim must be an int"),
        ({"input_dim": True}, r"input_dim must be an int"),
        ({"input_dim": "64"}, r"input_dim must be an int"),
        ({"hidden_units": 64}, r"hidden_units must be a sequence of ints"),
        ({"hidden_units": "64"}, r"hidden_units must be a sequence of ints"),
        ({"hidden_units": [64, 0]}, r"hidden_units\[1\] must be an int of at least 1, got 0"),
        ({"hidden_units": [64, 3.0]}, r"hidden_units\[1\] must be an int"),
        ({"hidden_units": [-2]}, r"hidden_units\[0\] must be an int of at least 1"),
        ({"num_classes": 0}, r"num_classes must be an int of at least 1, got 0"),
        ({"num_classes": 2.0}, r"num_classes must be an int"),
        ({"activation": "relux"}, r"activation 'relux' is not a Keras activation"),
        ({"activation": None}, r"activation must be the name of a Keras activation"),
        ({"activation": np.tanh}, r"activation must be the name of a Keras activation"),
        ({"l1": -0.1}, r"l1 must be a finite number >= 0"),
        ({"l1": float("nan")}, r"l1 must be a finite number >= 0"),
        ({"l1": True}, r"l1 must be a finite number >= 0"),
        ({"l2": float("inf")}, r"l2 must be a finite number >= 0"),
        ({"l2": "0.01"}, r"l2 must be a finite number >= 0"),
        ({"dropout": 1.0}, r"dropout must be a rate in \[0, 1\)"),
        ({"dropout": -0.1}, r"dropout must be a rate in \[0, 1\)"),
        ({"dropout": True}, r"dropout must be a rate in \[0, 1\)"),
        ({"batch_norm": 1}, r"batch_norm must be True or False, got 1"),
        ({"batch_norm": "yes"}, r"batch_norm must be True or False"),
        ({"batch_norm_momentum": 1.0}, r"batch_norm_momentum must be a number in \(0, 1\)"),
        ({"batch_norm_momentum": 0}, r"batch_norm_momentum must be a number in \(0, 1\)"),
        ({"batch_norm_momentum": "0.9"}, r"batch_norm_momentum must be a number in \(0, 1\)"),
        ({"layer_norm": 1}, r"layer_norm must be True or False, got 1"),
        ({"layer_norm": True, "batch_norm": True}, r"choose batch_norm or layer_norm, not both"),
        ({"kernel_initializer": "he_normalx"}, r"'he_normalx' is not a Keras initializer"),
        ({"kernel_initializer": keras.initializers.HeNormal()},
         r"kernel_initializer must be the name of a Keras initializer"),
        ({"name": ""}, r"name must be a non-empty string"),
        ({"name": 3}, r"name must be a non-empty string"),
    ],
)
def test_bad_argument_raises_value_error_naming_it(options, message):
    arguments = {"input_dim": 8, "hidden_units": [4], "num_classes": 3} | options
    with pytest.raises(ValueError, match=message):
        build_mlp(**arguments)
