"""Tests of dlbook.optimisers: NumPy update rules against keras.optimizers, clipping, statistics."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from dlbook.optimisers import (  # noqa: E402
    SGD,
    Adagrad,
    Adam,
    AdamW,
    Momentum,
    RMSprop,
    clip_by_global_norm,
    cosine_decay,
    layer_statistics,
    predicted_signal,
)

PAIRS = [
    (lambda: SGD(0.1), lambda: keras.optimizers.SGD(0.1)),
    (lambda: Momentum(0.1, 0.9), lambda: keras.optimizers.SGD(0.1, momentum=0.9)),
    (lambda: Momentum(0.05, 0.5), lambda: keras.optimizers.SGD(0.05, momentum=0.5)),
    (lambda: Adagrad(0.1), lambda: keras.optimizers.Adagrad(0.1)),
    (lambda: Adagrad(0.1, 0.0, 1e-3),
     lambda: keras.optimizers.Adagrad(0.1, initial_accumulator_value=0.0, epsilon=1e-3)),
    (lambda: RMSprop(0.01), lambda: keras.optimizers.RMSprop(0.01)),
    (lambda: RMSprop(0.01, 0.5, 1e-2),
     lambda: keras.optimizers.RMSprop(0.01, rho=0.5, epsilon=1e-2)),
    (lambda: Adam(0.01), lambda: keras.optimizers.Adam(0.01)),
    (lambda: Adam(0.02, 0.5, 0.9, 1e-3),
     lambda: keras.optimizers.Adam(0.02, beta_1=0.5, beta_2=0.9, epsilon=1e-3)),
    (lambda: AdamW(0.01), lambda: keras.optimizers.AdamW(0.01)),
    (lambda: AdamW(0.02, weight_decay=0.5, beta_1=0.8),
     lambda: keras.optimizers.AdamW(0.02, weight_decay=0.5, beta_1=0.8)),
    (lambda: RMSprop(cosine_decay(0.05, 4)),
     lambda: keras.optimizers.RMSprop(keras.optimizers.schedules.CosineDecay(0.05, 4))),
    (lambda: SGD(cosine_decay(0.0, 3, alpha=0.1, warmup_target=0.2, warmup_steps=2)),
     lambda: keras.optimizers.SGD(keras.optimizers.schedules.CosineDecay(
         0.0, 3, alpha=0.1, warmup_target=0.2, warmup_steps=2))),
    (lambda: AdamW(cosine_decay(0.02, 5), weight_decay=0.3),
     lambda: keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(0.02, 5),
                                    weight_decay=0.3)),
]


def run_both(ours, theirs, steps=6, seed=0):
    """Apply the same gradient sequence with our optimiser (float64) and Keras' (float32)."""
    rng = np.random.default_rng(seed)
    start = [rng.normal(size=(3, 4)), rng.normal(size=(4,))]
    params = [p.copy() for p in start]
    variables = [keras.Variable(p.astype("float32")) for p in start]
    for _ in range(steps):
        # gradients of very different sizes, some tiny, so epsilon placement matters
        grads = [rng.normal(size=p.shape) * 10.0 ** rng.integers(-4, 2, size=p.shape)
                 for p in start]
        ours.update(params, grads)
        theirs.apply_gradients(
            [(tf.constant(g, tf.float32), v) for g, v in zip(grads, variables, strict=True)]
        )
    return params, [v.numpy() for v in variables]


@pytest.mark.parametrize("make_ours, make_theirs", PAIRS)
def test_several_steps_match_keras(make_ours, make_theirs):
    params, keras_params = run_both(make_ours(), make_theirs())
    for ours, theirs in zip(params, keras_params, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0)


def test_update_changes_arrays_in_place_and_counts_steps():
    param = np.array([1.0, -2.0])
    optimiser = SGD(0.5)
    optimiser.update([param], [np.array([2.0, 2.0])])
    np.testing.assert_array_equal(param, [0.0, -3.0])
    assert optimiser.iterations == 1


def test_adam_first_step_has_length_learning_rate():
    # bias correction makes the first step lr * g / |g| per coordinate, whatever |g| is
    param = np.zeros(3)
    Adam(0.1, epsilon=1e-12).update([param], [np.array([1e-3, -5.0, 200.0])])
    np.testing.assert_allclose(param, [-0.1, 0.1, -0.1], rtol=1e-6)


def test_momentum_on_a_constant_gradient_approaches_lr_over_one_minus_mu():
    param = np.zeros(1)
    optimiser = Momentum(0.1, 0.9)
    positions = []
    for _ in range(200):
        optimiser.update([param], [np.ones(1)])
        positions.append(param[0])
    step = positions[-1] - positions[-2]
    np.testing.assert_allclose(step, -0.1 / (1 - 0.9), rtol=1e-6)


def test_adam_first_step_would_be_three_times_too_long_without_bias_correction():
    # uncorrected, m = (1 - b1) g and sqrt(v) = sqrt(1 - b2) |g|: a step of 0.1 / sqrt(0.001) * lr
    param = np.zeros(1)
    Adam(0.1, epsilon=1e-12).update([param], [np.array([2.0])])
    uncorrected = 0.1 * (1 - 0.9) / np.sqrt(1 - 0.999)
    np.testing.assert_allclose(abs(param[0]), 0.1, rtol=1e-6)
    np.testing.assert_allclose(uncorrected / abs(param[0]), 3.162, rtol=1e-3)


def test_adamw_decays_a_weight_without_gradient_by_one_minus_lr_times_decay_per_step():
    param = np.array([2.0, -0.5])
    optimiser = AdamW(0.01, weight_decay=0.1)
    for _ in range(50):
        optimiser.update([param], [np.zeros(2)])
    np.testing.assert_allclose(param, np.array([2.0, -0.5]) * (1 - 0.01 * 0.1) ** 50, rtol=1e-12)


def test_adam_with_an_l2_penalty_moves_an_ungraded_weight_by_about_lr_per_step_whatever_lambda():
    # the penalty gradient 2*lambda*w is divided by its own size: lambda drops out
    for strength in (1e-4, 1e-1):
        param = np.array([1.0])
        optimiser = Adam(0.01)
        for _ in range(20):
            optimiser.update([param], [2 * strength * param])
        np.testing.assert_allclose(param[0], 1.0 - 20 * 0.01, atol=0.01)


def test_cosine_decay_matches_keras_schedule_at_every_step():
    cases = [dict(initial_learning_rate=0.1, decay_steps=10),
             dict(initial_learning_rate=0.1, decay_steps=10, alpha=0.2),
             dict(initial_learning_rate=0.0, decay_steps=8, warmup_target=0.5, warmup_steps=4),
             dict(initial_learning_rate=0.01, decay_steps=5, alpha=0.1, warmup_target=0.3,
                  warmup_steps=3)]
    for case in cases:
        ours = cosine_decay(**case)
        theirs = keras.optimizers.schedules.CosineDecay(**case)
        for step in range(20):
            np.testing.assert_allclose(ours(step), float(theirs(step)), rtol=1e-5, atol=1e-9,
                                       err_msg=f"{case} at step {step}")


def test_cosine_decay_shape():
    schedule = cosine_decay(1.0, 100)
    assert schedule(0) == 1.0 and schedule(100) == pytest.approx(0.0, abs=1e-15)
    assert schedule(50) == pytest.approx(0.5) and schedule(500) == schedule(100)
    warm = cosine_decay(0.0, 10, warmup_target=2.0, warmup_steps=4)
    assert [warm(t) for t in range(5)] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])


def test_a_schedule_sets_the_learning_rate_before_each_update():
    param = np.zeros(1)
    optimiser = SGD(lambda step: 0.1 * (step + 1))
    for _ in range(3):
        optimiser.update([param], [np.ones(1)])
    np.testing.assert_allclose(param, [-(0.1 + 0.2 + 0.3)])
    assert optimiser.learning_rate == pytest.approx(0.3)


def test_bad_schedules_are_rejected():
    with pytest.raises(ValueError, match="schedule returned -1.0 at step 0"):
        SGD(lambda step: -1.0)
    optimiser = SGD(lambda step: 0.1 if step == 0 else float("nan"))
    optimiser.update([np.zeros(1)], [np.ones(1)])
    with pytest.raises(ValueError, match="schedule returned nan at step 1"):
        optimiser.update([np.zeros(1)], [np.ones(1)])
    with pytest.raises(ValueError, match="decay_steps must be an int >= 1"):
        cosine_decay(0.1, 0)
    with pytest.raises(ValueError, match=r"alpha .* must be in \[0, 1\]"):
        cosine_decay(0.1, 10, alpha=1.5)
    with pytest.raises(ValueError, match="warmup_steps needs a warmup_target"):
        cosine_decay(0.1, 10, warmup_steps=3)
    with pytest.raises(ValueError, match="warmup_target must be a positive number"):
        cosine_decay(0.1, 10, warmup_target=-1.0, warmup_steps=3)
    with pytest.raises(ValueError, match="initial_learning_rate must be a finite number >= 0"):
        cosine_decay(-0.1, 10)
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
        AdamW(0.1, weight_decay=-1.0)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: SGD(0.0), "learning_rate must be a positive number"),
        (lambda: SGD(float("nan")), "learning_rate must be a positive number"),
        (lambda: Momentum(0.1, 1.0), r"momentum must be in \[0, 1\)"),
        (lambda: Adagrad(0.1, -1.0), "initial_accumulator_value must be >= 0"),
        (lambda: RMSprop(0.1, rho=1.5), r"rho must be in \[0, 1\)"),
        (lambda: Adam(0.1, beta_2=-0.1), r"beta_2 must be in \[0, 1\)"),
        (lambda: Adam(0.1, epsilon=0.0), "epsilon must be a positive number"),
    ],
)
def test_bad_hyperparameters_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_update_rejects_mismatched_inputs():
    optimiser = Adam()
    with pytest.raises(ValueError, match="2 parameter arrays but 1 gradients"):
        optimiser.update([np.zeros(2), np.zeros(3)], [np.zeros(2)])
    with pytest.raises(ValueError, match=r"grads\[0\] has shape \(3,\), its parameter has \(2,\)"):
        optimiser.update([np.zeros(2)], [np.zeros(3)])
    with pytest.raises(ValueError, match=r"params\[0\] must be a float NumPy array"):
        optimiser.update([[0.0, 1.0]], [np.zeros(2)])
    with pytest.raises(ValueError, match=r"params\[0\] must be a float NumPy array"):
        optimiser.update([np.zeros(2, dtype=int)], [np.zeros(2)])
    optimiser.update([np.zeros(2)], [np.ones(2)])
    with pytest.raises(ValueError, match="holds state for 1 parameter arrays, got 2"):
        optimiser.update([np.zeros(2), np.zeros(2)], [np.ones(2), np.ones(2)])


def test_clip_by_global_norm_matches_keras_global_clipnorm():
    rng = np.random.default_rng(1)
    grads = [rng.normal(size=(3, 4)) * 10, rng.normal(size=(4,))]
    variables = [keras.Variable(np.zeros(g.shape, "float32")) for g in grads]
    # with lr 1 from zero, the parameters after one step are minus the clipped gradients
    keras.optimizers.SGD(1.0, global_clipnorm=2.0).apply_gradients(
        [(tf.constant(g, tf.float32), v) for g, v in zip(grads, variables, strict=True)]
    )
    clipped = clip_by_global_norm(grads, 2.0)
    for ours, variable in zip(clipped, variables, strict=True):
        np.testing.assert_allclose(ours, -variable.numpy(), rtol=1e-5)
    total = np.sqrt(sum(np.sum(c**2) for c in clipped))
    np.testing.assert_allclose(total, 2.0)


def test_clip_by_global_norm_leaves_small_and_zero_gradients_alone():
    small = [np.array([0.3, 0.4])]
    np.testing.assert_array_equal(clip_by_global_norm(small, 1.0)[0], small[0])
    np.testing.assert_array_equal(clip_by_global_norm([np.zeros(3)], 1.0)[0], np.zeros(3))


def test_clip_by_global_norm_errors():
    with pytest.raises(ValueError, match="max_norm must be a positive number"):
        clip_by_global_norm([np.ones(2)], -1.0)
    with pytest.raises(ValueError, match="grads must hold at least one array"):
        clip_by_global_norm([], 1.0)


def small_model(width=5, depth=3):
    # built with add(), the way chapter 5 builds its deep networks
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,))])
    for i in range(depth):
        model.add(keras.layers.Dense(width, activation="tanh", name=f"hidden_{i + 1}"))
    model.add(keras.layers.Dense(3, name="logits"))
    return model


def test_layer_statistics_agree_with_a_direct_computation():
    model = small_model()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = rng.integers(0, 3, size=16)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    stats = layer_statistics(model, x, y, loss)

    assert list(stats["layer"]) == ["hidden_1", "hidden_2", "hidden_3", "logits"]
    for key in ("activation_std", "backward_std", "kernel_grad_norm"):
        assert stats[key].shape == (4,)

    # reference: run the layers by hand under one tape
    with tf.GradientTape(persistent=True) as tape:
        outputs, h = [], tf.constant(x)
        for layer in model.layers:
            h = layer(h)
            outputs.append(h)
        value = loss(y, h)
    kernels = [layer.kernel for layer in model.layers]
    np.testing.assert_allclose(stats["activation_std"], [np.std(o.numpy()) for o in outputs],
                               rtol=1e-5)
    np.testing.assert_allclose(stats["backward_std"],
                               [np.std(tape.gradient(value, o).numpy()) for o in outputs],
                               rtol=1e-4)
    np.testing.assert_allclose(stats["kernel_grad_norm"],
                               [np.linalg.norm(tape.gradient(value, k).numpy()) for k in kernels],
                               rtol=1e-4)


def test_layer_statistics_backward_signal_matches_finite_differences():
    # d loss / d (output of hidden_2), checked in float64 by central differences through the rest
    model = small_model()
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 4))
    y = np.array([0, 2])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    weights = [(layer.kernel.numpy().astype(float), layer.bias.numpy().astype(float))
               for layer in model.layers]
    h2 = np.tanh(np.tanh(x @ weights[0][0] + weights[0][1]) @ weights[1][0] + weights[1][1])

    def loss_from_h2(h):
        logits = np.tanh(h @ weights[2][0] + weights[2][1]) @ weights[3][0] + weights[3][1]
        logits = logits - logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -log_p[np.arange(len(y)), y].mean()

    numeric = np.zeros_like(h2)
    for index in np.ndindex(h2.shape):
        bump = np.zeros_like(h2)
        bump[index] = 1e-6
        numeric[index] = (loss_from_h2(h2 + bump) - loss_from_h2(h2 - bump)) / 2e-6
    stats = layer_statistics(model, x.astype("float32"), y, loss)
    np.testing.assert_allclose(stats["backward_std"][1], numeric.std(), rtol=1e-3)


def test_layer_statistics_errors():
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model = small_model()
    x = np.zeros((4, 4), "float32")
    with pytest.raises(ValueError, match="x has 4 examples but y has 3"):
        layer_statistics(model, x, np.zeros(3, int), loss)
    with pytest.raises(ValueError, match="loss must return a scalar"):
        layer_statistics(model, x, np.zeros(4, int),
                         keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                     reduction=None))
    with pytest.raises(ValueError, match="model must be a keras.Sequential, got str"):
        layer_statistics("not a model", x, np.zeros(4, int), loss)
    inputs = keras.Input((4,))
    functional = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    with pytest.raises(ValueError, match="model must be a keras.Sequential, got Functional"):
        layer_statistics(functional, x, np.zeros(4, int), loss)
    no_dense = keras.Sequential([keras.Input((4,)), keras.layers.Activation("relu")])
    with pytest.raises(ValueError, match="model has no Dense layers"):
        layer_statistics(no_dense, x, np.zeros(4, int), loss)


def test_layer_statistics_do_not_underflow_for_tiny_signals():
    # activations near 1e-22 are ordinary float32 numbers, but their squares are not
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)),
                              keras.layers.Dense(8, kernel_initializer="identity",
                                                 name="hidden"),
                              keras.layers.Dense(2, name="logits")])
    x = (np.random.default_rng(0).normal(size=(32, 8)) * 1e-22).astype("float32")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    stats = layer_statistics(model, x, np.zeros(32, int), loss)
    assert float(tf.math.reduce_std(tf.constant(x))) < 0.5 * np.std(x.astype(float))
    np.testing.assert_allclose(stats["activation_std"][0], np.std(x.astype(float)), rtol=1e-5)


def test_predicted_signal_of_a_linear_network_is_the_product_of_the_variance_factors():
    sigma, width, depth = 0.15, 50, 6
    predicted = predicted_signal("linear", sigma, width, depth, input_dim=20,
                                 input_second_moment=2.0)
    first = np.sqrt(20 * sigma**2 * 2.0)
    factor = np.sqrt(width * sigma**2)
    np.testing.assert_allclose(predicted["activation_std"], first * factor ** np.arange(depth),
                               rtol=1e-9)
    np.testing.assert_allclose(predicted["backward_std"], factor ** np.arange(depth)[::-1],
                               rtol=1e-9)


def test_predicted_signal_for_relu_halves_the_variance_factor():
    sigma, width = 0.3, 64
    predicted = predicted_signal("relu", sigma, width, 5)
    factor = np.sqrt(width * sigma**2 / 2)
    ratios = predicted["activation_std"][1:] / predicted["activation_std"][:-1]
    np.testing.assert_allclose(ratios, factor, rtol=1e-6)
    # the std of a rectified N(0, q) is sqrt(q (1/2 - 1/(2 pi)))
    np.testing.assert_allclose(predicted["activation_std"][0],
                               np.sqrt(width * sigma**2 * (0.5 - 0.5 / np.pi)), rtol=1e-6)
    np.testing.assert_allclose(predicted["backward_std"][:-1] / predicted["backward_std"][1:],
                               factor, rtol=1e-3)


def test_predicted_signal_tanh_with_glorot_decays_like_one_over_root_two_l():
    # for small q, E[tanh(z)^2] ~ q - 2 q^2, so with n sigma^2 = 1, q_l ~ 1 / (2 l)
    predicted = predicted_signal("tanh", 1 / np.sqrt(64), 64, 400, input_second_moment=0.05)
    np.testing.assert_allclose(predicted["activation_std"][-1], 1 / np.sqrt(2 * 400), rtol=0.05)


def test_predicted_signal_matches_a_wide_network():
    keras.utils.set_random_seed(3)
    width, depth = 512, 6
    model = keras.Sequential([keras.Input((width,))] + [
        keras.layers.Dense(width, activation="tanh", use_bias=False,
                           kernel_initializer=keras.initializers.RandomNormal(stddev=0.07))
        for _ in range(depth)] + [keras.layers.Dense(10)])
    x = np.random.default_rng(3).normal(size=(256, width)).astype("float32")
    stats = layer_statistics(model, x, np.arange(256) % 10,
                             keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    predicted = predicted_signal("tanh", 0.07, width, depth)
    np.testing.assert_allclose(stats["activation_std"][:-1], predicted["activation_std"],
                               rtol=0.05)
    backward = stats["backward_std"][:-1] / stats["backward_std"][-2]
    np.testing.assert_allclose(backward, predicted["backward_std"], rtol=0.1)


def test_predicted_signal_errors():
    with pytest.raises(ValueError, match="activation must be one of"):
        predicted_signal("gelu", 0.1, 8, 3)
    with pytest.raises(ValueError, match="weight_std must be a positive number"):
        predicted_signal("relu", 0.0, 8, 3)
    with pytest.raises(ValueError, match="depth must be an int >= 1"):
        predicted_signal("relu", 0.1, 8, 0)
    with pytest.raises(ValueError, match="input_dim must be an int >= 1"):
        predicted_signal("relu", 0.1, 8, 3, input_dim=2.5)
