"""Tests of dlbook.activations: derivatives against finite differences and tf.GradientTape,
functions against keras.activations, softmax stability, and argument errors."""

import numpy as np
import pytest

from dlbook import activations as act

# Avoids 0, where ReLU and leaky ReLU have a kink and the central difference is meaningless.
GRID = np.linspace(-6.0, 6.0, 1200)

KERAS_KWARGS = {"leaky_relu": {"negative_slope": 0.2}, "elu": {"alpha": 1.0}, "gelu": {
    "approximate": False}}


@pytest.mark.parametrize("name", sorted(act.ACTIVATIONS))
def test_derivative_matches_central_difference(name):
    function, derivative = act.ACTIVATIONS[name]
    numeric = act.numerical_derivative(function, GRID)
    np.testing.assert_allclose(derivative(GRID), numeric, rtol=0, atol=1e-8)


@pytest.mark.parametrize("name", sorted(act.ACTIVATIONS))
def test_function_matches_keras(name):
    keras = pytest.importorskip("keras")
    function, _ = act.ACTIVATIONS[name]
    x = GRID.astype(np.float32)
    expected = np.asarray(getattr(keras.activations, name)(x, **KERAS_KWARGS.get(name, {})))
    np.testing.assert_allclose(function(x), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(act.ACTIVATIONS))
def test_derivative_matches_gradient_tape(name):
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    _, derivative = act.ACTIVATIONS[name]
    x = tf.constant(GRID)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = getattr(keras.activations, name)(x, **KERAS_KWARGS.get(name, {}))
    np.testing.assert_allclose(derivative(GRID), tape.gradient(y, x).numpy(), atol=1e-7)


@pytest.mark.parametrize("name", sorted(act.ACTIVATIONS))
def test_shape_and_dtype_are_kept(name):
    function, derivative = act.ACTIVATIONS[name]
    x32 = np.zeros((3, 4), dtype=np.float32)
    for f in (function, derivative):
        out = f(x32)
        assert out.shape == (3, 4) and out.dtype == np.float32, (name, f.__name__, out.dtype)
        assert f(np.arange(3)).dtype == np.float64  # integers are promoted, not truncated


def test_known_values():
    assert act.sigmoid(0.0) == 0.5 and act.sigmoid_derivative(0.0) == 0.25
    assert act.tanh_derivative(0.0) == 1.0
    assert act.relu_derivative(0.0) == 0.0  # the convention Keras and TensorFlow use
    np.testing.assert_allclose(act.leaky_relu([-2.0, 3.0], negative_slope=0.1), [-0.2, 3.0])
    np.testing.assert_allclose(act.leaky_relu_derivative([-2.0, 3.0], 0.1), [0.1, 1.0])
    np.testing.assert_allclose(act.elu(-50.0, alpha=2.0), -2.0)
    assert act.gelu(0.0) == 0.0 and act.gelu_derivative(0.0) == 0.5
    # Phi(1) = 0.8413447460685429
    np.testing.assert_allclose(act.gelu(1.0), 0.8413447460685429, rtol=1e-12)


def test_sigmoid_never_overflows():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        values = act.sigmoid(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0]))
        derivatives = act.sigmoid_derivative(np.array([-1000.0, 1000.0]))
        elu_values = act.elu(np.array([-1000.0, 1000.0]))
    np.testing.assert_allclose(values, [0.0, np.exp(-50.0), 0.5, 1.0, 1.0], rtol=1e-12)
    assert np.all(derivatives == 0.0)
    np.testing.assert_allclose(elu_values, [-1.0, 1000.0])


def test_softmax_matches_keras_and_sums_to_one():
    keras = pytest.importorskip("keras")
    logits = np.random.default_rng(0).normal(scale=5.0, size=(4, 7)).astype(np.float32)
    for axis in (-1, 0):
        probabilities = act.softmax(logits, axis=axis)
        expected = np.asarray(keras.activations.softmax(logits, axis=axis))
        np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(probabilities.sum(axis=axis), 1.0, rtol=1e-6)
    np.testing.assert_allclose(act.naive_softmax(logits), act.softmax(logits), rtol=1e-5)


def test_softmax_is_stable_where_the_naive_one_fails():
    large = np.array([1000.0, 1001.0, 1002.0])
    expected = act.naive_softmax(np.array([0.0, 1.0, 2.0]))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_allclose(act.softmax(large), expected, rtol=1e-12)
        np.testing.assert_allclose(act.softmax(-large), expected[::-1], rtol=1e-12)
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(act.naive_softmax(large)).all()  # inf / inf
        assert np.isnan(act.naive_softmax(-large)).all()  # 0 / 0
        # float32 overflows much earlier: e^89 > 3.4e38
        assert np.isnan(act.naive_softmax(np.array([89.0, 90.0], np.float32))).any()
    assert np.all(np.isfinite(act.softmax(np.array([89.0, 90.0], np.float32))))


def test_softmax_is_shift_invariant():
    z = np.array([[0.5, -1.0, 2.0], [3.0, 3.0, 3.0]])
    np.testing.assert_allclose(act.softmax(z + 123.4), act.softmax(z), rtol=1e-12)
    np.testing.assert_allclose(act.softmax(z)[1], [1 / 3] * 3)


def test_softmax_jacobian_matches_gradient_tape_and_its_rows_sum_to_zero():
    tf = pytest.importorskip("tensorflow")
    z = np.random.default_rng(2).normal(scale=2.0, size=(3, 5))
    jacobian = act.softmax_jacobian(z)
    assert jacobian.shape == (3, 5, 5)
    variable = tf.constant(z)
    with tf.GradientTape() as tape:
        tape.watch(variable)
        p = tf.nn.softmax(variable, axis=-1)
    expected = tape.batch_jacobian(p, variable).numpy()  # [example, output i, input j]
    np.testing.assert_allclose(jacobian, expected, atol=1e-12)
    np.testing.assert_allclose(jacobian.sum(axis=-1), 0.0, atol=1e-15)
    # p_i (delta_ij - p_j) at equal logits: 1/K - 1/K^2 on the diagonal, -1/K^2 off it
    np.testing.assert_allclose(act.softmax_jacobian(np.zeros(4)),
                               np.eye(4) / 4 - np.full((4, 4), 1 / 16))
    # softmax then cross-entropy: the vector-Jacobian product with -y/p is p - y
    y = np.eye(5)[[0, 3, 4]]
    p = act.softmax(z)
    np.testing.assert_allclose(np.einsum("ni,nij->nj", -y / p, jacobian), p - y, atol=1e-12)


def test_silu_and_selu_values():
    np.testing.assert_allclose(act.silu(np.array([0.0, 2.0])), [0.0, 2 / (1 + np.exp(-2.0))])
    x = np.linspace(-3, 0, 30001)
    assert act.silu(x).min() == pytest.approx(-0.2785, abs=1e-4)  # non-monotonic below ~ -1.28
    assert x[np.argmin(act.silu(x))] == pytest.approx(-1.2785, abs=1e-3)
    assert act.selu_derivative(1.0) == pytest.approx(act.SELU_SCALE)
    assert act.selu(-1e3) == pytest.approx(-act.SELU_SCALE * act.SELU_ALPHA)
    # self-normalising: with LeCun-normal weights a SELU layer keeps mean 0 and variance 1
    rng = np.random.default_rng(0)
    h = rng.normal(size=(4000, 200))
    for _ in range(10):
        h = act.selu(h @ rng.normal(scale=np.sqrt(1 / 200), size=(200, 200)))
    assert abs(h.mean()) < 0.1 and abs(h.var() - 1) < 0.15


def test_every_activation_has_a_display_name():
    assert set(act.DISPLAY_NAMES) == set(act.ACTIVATIONS)


def test_numerical_derivative_of_a_cubic():
    x = np.array([-2.0, 0.5, 3.0])
    np.testing.assert_allclose(act.numerical_derivative(lambda v: v**3, x), 3 * x**2, rtol=1e-9)
    # float32 input is evaluated in float64, so the small step is not lost to rounding
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(act.numerical_derivative(np.sin, x32), np.cos(x), rtol=1e-8)


def test_dead_units():
    activations = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0]])
    np.testing.assert_array_equal(act.dead_units(activations), [True, False, False, True])
    assert act.dead_units(np.ones((5, 3))).mean() == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: act.leaky_relu(1.0, negative_slope=-0.1), "negative_slope must be"),
        (lambda: act.leaky_relu_derivative(1.0, negative_slope=float("nan")), "negative_slope"),
        (lambda: act.elu(1.0, alpha=-1.0), "alpha must be"),
        (lambda: act.elu_derivative(1.0, alpha=True), "alpha must be"),
        (lambda: act.sigmoid(["a", "b"]), "x must be real numbers"),
        (lambda: act.relu(np.array([1 + 2j])), "x must be real numbers"),
        (lambda: act.softmax(np.ones((2, 3)), axis=2), "axis must be an int in"),
        (lambda: act.softmax(np.ones(3), axis=0.5), "axis must be an int in"),
        (lambda: act.naive_softmax(np.ones(3), axis=-2), "axis must be an int in"),
        (lambda: act.softmax(1.0), "at least one dimension"),
        (lambda: act.softmax(np.array([1.0, np.inf])), "z must be finite"),
        (lambda: act.numerical_derivative(3.0, GRID), "f must be a function"),
        (lambda: act.numerical_derivative(np.sin, GRID, h=0.0), "h must be"),
        (lambda: act.dead_units(np.ones(4)), "examples, units"),
        (lambda: act.dead_units(np.ones((0, 4))), "non-empty"),
    ],
)
def test_errors_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
