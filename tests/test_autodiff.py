"""Tests of dlbook.autodiff: every operation's gradient against central finite differences,
broadcasting, agreement with tf.GradientTape, the gradient checker, and the error paths."""

from __future__ import annotations

import numpy as np
import pytest

from dlbook.autodiff import (
    Dual,
    Tensor,
    as_tensor,
    draw_graph,
    gradient_check,
    graph_table,
    numerical_gradient,
    relative_error,
    softmax_cross_entropy,
    topological_order,
    unbroadcast,
)

TOLERANCE = 1e-7  # relative error of engine vs finite differences (typically ~1e-10)


def random(shape, seed=0, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def assert_matches_finite_differences(build, *arrays):
    """``build(*tensors)`` -> Tensor; check d sum(weights * out) / d input for every input."""
    tensors = [Tensor(a) for a in arrays]
    out = build(*tensors)
    weights = random(out.shape, seed=99)  # a random linear read-out tests every output entry
    (out * weights).sum().backward()
    for i, tensor in enumerate(tensors):
        assert tensor.grad.shape == tensor.shape

        def f(values, i=i):
            inputs = [Tensor(values) if j == i else Tensor(a) for j, a in enumerate(arrays)]
            return float((build(*inputs) * weights).sum().data)

        expected = numerical_gradient(f, arrays[i])
        assert relative_error(tensor.grad, expected) < TOLERANCE, f"input {i}"


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)),
                                    ((2, 3, 4), (3, 1)), ((3, 4), ())])
def test_binary_ops_with_broadcasting(op, shapes):
    a = random(shapes[0], seed=1)
    b = random(shapes[1], seed=2, low=0.5, high=2.0)  # keep divisors away from zero
    assert_matches_finite_differences(BINARY[op], a, b)


UNARY = {
    "neg": (lambda a: -a, -2, 2),
    "pow2": (lambda a: a**2, -2, 2),
    "pow3": (lambda a: a**3, -2, 2),
    "pow_half": (lambda a: a**0.5, 0.5, 3),
    "pow_neg": (lambda a: a**-1.5, 0.5, 3),
    "exp": (lambda a: a.exp(), -2, 2),
    "log": (lambda a: a.log(), 0.1, 3),
    "tanh": (lambda a: a.tanh(), -2, 2),
    "sigmoid": (lambda a: a.sigmoid(), -4, 4),
    "relu": (lambda a: a.relu(), -2, 2),
    "sum_all": (lambda a: a.sum(), -2, 2),
    "sum_axis0": (lambda a: a.sum(axis=0), -2, 2),
    "sum_axis_neg1_keep": (lambda a: a.sum(axis=-1, keepdims=True), -2, 2),
    "sum_tuple": (lambda a: a.sum(axis=(0, 2)), -2, 2),
    "mean_all": (lambda a: a.mean(), -2, 2),
    "mean_axis1": (lambda a: a.mean(axis=1), -2, 2),
    "mean_keep": (lambda a: a.mean(axis=(1, 2), keepdims=True), -2, 2),
}


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_ops(op):
    build, low, high = UNARY[op]
    a = random((2, 3, 4), seed=3, low=low, high=high)
    if op == "relu":  # keep finite differences away from the kink at 0
        a = np.where(np.abs(a) < 0.1, 0.5, a)
    assert_matches_finite_differences(build, a)


def test_matmul_and_reflected_ops():
    a, b = random((3, 4), seed=4), random((4, 2), seed=5)
    assert_matches_finite_differences(lambda x, y: x @ y, a, b)
    constant = random((2, 3), seed=6)
    assert_matches_finite_differences(lambda x: constant @ x, a)  # __rmatmul__
    assert_matches_finite_differences(lambda x: 3.0 - 2.0 * x + 1.0 / (x * x + 1.0), a)


def test_plain_arrays_are_constants_and_numpy_defers_to_tensor():
    x = Tensor(random((2, 3)))
    out = np.ones((2, 3)) * x + np.ones(3)  # ndarray on the left: Tensor.__rmul__ must run
    assert isinstance(out, Tensor)
    out.sum().backward()
    np.testing.assert_allclose(x.grad, np.ones((2, 3)))
    constant = as_tensor(np.ones(3))
    assert not constant.requires_grad
    assert as_tensor(x) is x


def test_sigmoid_is_stable_for_large_inputs():
    x = Tensor(np.array([-800.0, 0.0, 800.0]))
    out = x.sigmoid()
    np.testing.assert_allclose(out.data, [0.0, 0.5, 1.0])
    out.sum().backward()
    np.testing.assert_allclose(x.grad, [0.0, 0.25, 0.0])


def test_fan_out_accumulates_gradients():
    x = Tensor(3.0)
    y = x * x + x.exp() * x  # x is used four times
    y.backward()
    assert x.grad == pytest.approx(2 * 3.0 + np.exp(3.0) * (1 + 3.0))


def test_backward_recomputes_from_zero_and_skips_constants():
    w = Tensor(random((3,)))
    c = Tensor(random((3,)), requires_grad=False)
    loss = (w * c).sum()
    loss.backward()
    first = w.grad.copy()
    loss.backward()
    np.testing.assert_array_equal(w.grad, first)
    np.testing.assert_allclose(first, c.data)
    assert c.grad is None


def test_backward_with_explicit_grad():
    x = Tensor(random((2, 3)))
    y = x * 2.0
    seed = random((2, 3), seed=8)
    y.backward(seed)
    np.testing.assert_allclose(x.grad, 2.0 * seed)


def test_topological_order_puts_parents_first():
    a, b = Tensor(1.0), Tensor(2.0)
    c = a * b
    d = c + a
    e = d * c
    order = topological_order(e)
    position = {id(node): k for k, node in enumerate(order)}
    assert len(order) == 5 and order[-1] is e
    for node in order:
        for parent, _ in node.parents:
            assert position[id(parent)] < position[id(node)]


def test_long_chain_does_not_hit_the_recursion_limit():
    x = Tensor(0.5)
    y = x
    for _ in range(5000):
        y = y * 1.0 + 0.0
    y.backward()
    assert x.grad == pytest.approx(1.0)


def test_unbroadcast():
    g = np.ones((2, 3, 4))
    assert unbroadcast(g, (4,)).shape == (4,)
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), np.full((3, 1), 8.0))
    assert unbroadcast(g, ()) == 24.0
    with pytest.raises(ValueError, match="cannot come from broadcasting"):
        unbroadcast(g, (5,))
    with pytest.raises(ValueError, match="cannot come from broadcasting"):
        unbroadcast(np.ones(3), (2, 3))


def test_softmax_cross_entropy_value_gradient_and_stability():
    logits = random((5, 4), seed=9)
    labels = np.array([0, 3, 1, 1, 2])
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -log_probs[np.arange(5), labels].mean()
    z = Tensor(logits)
    loss = softmax_cross_entropy(z, labels)
    assert float(loss.data) == pytest.approx(expected, rel=1e-12)
    loss.backward()
    softmax = np.exp(log_probs)
    np.testing.assert_allclose(z.grad, (softmax - np.eye(4)[labels]) / 5, atol=1e-14)
    huge = softmax_cross_entropy(Tensor(logits + 1000.0), labels)  # no overflow
    assert float(huge.data) == pytest.approx(expected, rel=1e-9)


def test_mlp_gradients_agree_with_tf_gradient_tape():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(10)
    x, labels = rng.normal(size=(16, 8)), rng.integers(0, 3, 16)
    arrays = [rng.normal(size=(8, 5)), rng.normal(size=5), rng.normal(size=(5, 3)),
              rng.normal(size=3)]
    params = [Tensor(a) for a in arrays]
    w1, b1, w2, b2 = params
    loss = softmax_cross_entropy((x @ w1 + b1).tanh() @ w2 + b2, labels)
    loss.backward()
    variables = [tf.Variable(a) for a in arrays]  # float64, like the engine
    with tf.GradientTape() as tape:
        hidden = tf.tanh(x @ variables[0] + variables[1])
        logits = hidden @ variables[2] + variables[3]
        tf_loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    tf_grads = tape.gradient(tf_loss, variables)
    assert float(loss.data) == pytest.approx(float(tf_loss), rel=1e-12)
    for param, tf_grad in zip(params, tf_grads, strict=True):
        assert relative_error(param.grad, tf_grad.numpy()) < 1e-12


def test_numerical_gradient_and_relative_error():
    x = random((3, 2), seed=11)
    grad = numerical_gradient(lambda v: float(np.sum(v**3)), x)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-7, atol=1e-8)
    assert relative_error(np.ones(3), np.ones(3)) == 0.0
    assert relative_error(np.ones(3), -np.ones(3)) == pytest.approx(1.0)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0


def test_gradient_check_reports_small_errors_and_restores_params():
    rng = np.random.default_rng(12)
    x, labels = rng.normal(size=(6, 4)), rng.integers(0, 3, 6)
    w, b = Tensor(rng.normal(size=(4, 3))), Tensor(rng.normal(size=3))
    before = w.data.copy(), b.data.copy()
    errors = gradient_check(lambda: softmax_cross_entropy((x @ w + b).sigmoid(), labels), [w, b])
    assert len(errors) == 2 and max(errors) < TOLERANCE
    np.testing.assert_array_equal(w.data, before[0])
    np.testing.assert_array_equal(b.data, before[1])


def test_gradient_check_catches_a_wrong_gradient():
    x = Tensor(random((4,), seed=13))

    def bad_square(t):
        return Tensor(t.data**2, ((t, lambda g: g * t.data),), "bad square")  # should be 2 t

    assert gradient_check(lambda: bad_square(x).sum(), [x])[0] > 0.1


def test_graph_table():
    w = Tensor(0.5, name="w")
    x = Tensor(2.0, name="x", requires_grad=False)
    loss = (w * x - 1.0) ** 2
    loss.name = "loss"
    loss.backward()
    lines = graph_table(loss).splitlines()
    assert lines[0].split() == ["node", "op", "inputs", "value", "grad"]
    assert lines[1].split() == ["w", "leaf", "0.5000", "0.0000"]
    assert lines[2].split() == ["x", "leaf", "2.0000", "-"]
    assert lines[-1].split()[:2] == ["loss", "**2"]
    assert "shape (2,)" in graph_table(Tensor(np.ones(2)))
    assert repr(loss) == "Tensor(0., op='**2', name='loss')"


def test_shape_and_requires_grad_of_results():
    a = Tensor(np.ones((2, 3)), requires_grad=False)
    b = Tensor(np.ones((3, 4)))
    assert (a @ b).shape == (2, 4)
    assert (a @ b).requires_grad
    assert not (a * 2.0).requires_grad


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Tensor(np.ones(3)).backward(), "single-element tensor"),
        (lambda: Tensor(1.0).backward(np.ones(2)), "grad must have this tensor's shape"),
        (lambda: Tensor(np.ones((2, 3))) @ Tensor(np.ones((2, 3))), "matmul shapes do not fit"),
        (lambda: Tensor(np.ones(3)) @ Tensor(np.ones((3, 2))), "matmul needs two 2-D tensors"),
        (lambda: Tensor(2.0) ** Tensor(2.0), "exponent must be a constant real number"),
        (lambda: Tensor(-2.0) ** 0.5, "negative base needs an integer exponent"),
        (lambda: Tensor(np.array([1.0, 0.0])).log(), "log needs positive inputs"),
        (lambda: Tensor(np.ones((2, 3))).sum(axis=2), "out of range"),
        (lambda: Tensor(np.ones((2, 3))).mean(axis="rows"), "axis must be None, an int"),
        (lambda: Tensor(1.0, parents=[(np.ones(1), lambda g: g)]), "parents must be"),
        (lambda: topological_order(np.ones(2)), "root must be a Tensor"),
        (lambda: numerical_gradient(np.sum, np.ones(2), eps=0), "eps must be a positive"),
        (lambda: relative_error(np.ones(2), np.ones(3)), "same shape"),
        (lambda: softmax_cross_entropy(Tensor(np.ones(3)), [0]), "logits must be 2-D"),
        (lambda: softmax_cross_entropy(Tensor(np.ones((2, 3))), [0]), "labels must be 2 integers"),
        (lambda: softmax_cross_entropy(Tensor(np.ones((2, 3))), [0.0, 1.0]), "labels must be 2"),
        (lambda: softmax_cross_entropy(Tensor(np.ones((2, 3))), [0, 3]), r"labels must lie in"),
        (lambda: gradient_check(lambda: Tensor(1.0), []), "params must be a non-empty"),
        (lambda: gradient_check(lambda: 1.0, [Tensor(1.0)]), "loss_fn must return a Tensor"),
        (lambda: gradient_check(lambda: Tensor(2.0) * 3.0, [Tensor(1.0)]), "not part of the graph"),
        (lambda: draw_graph(Tensor(np.ones(2)).sum()), "scalar graphs only"),
        (lambda: Dual(2.0) ** Dual(1.0), "exponent must be a constant real number"),
    ],
)
def test_errors_say_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- forward mode and drawing ------------------------------------------------------------------


def neuron(w, b, x=1.5, t=1.0):
    return ((w * x + b).sigmoid() - t) ** 2


def test_dual_numbers_give_one_partial_derivative_per_sweep():
    w, b = Tensor(0.8), Tensor(-0.2)
    neuron(w, b).backward()
    d_w = neuron(Dual(0.8, 1.0), Dual(-0.2, 0.0)).tangent
    d_b = neuron(Dual(0.8, 0.0), Dual(-0.2, 1.0)).tangent
    np.testing.assert_allclose([d_w, d_b], [w.grad, b.grad], rtol=1e-12)


def test_dual_arithmetic_matches_the_engine_on_a_composite_function():
    def f(x):
        return (2.0 - x) * x.exp() / (1.0 + x**2) + (3.0 / x).tanh() - x

    for value in (-1.3, 0.4, 2.2):
        leaf = Tensor(value)
        f(leaf).backward()
        np.testing.assert_allclose(f(Dual(value, 1.0)).tangent, leaf.grad, rtol=1e-12)
        np.testing.assert_allclose(f(Dual(value)).value, f(Tensor(value)).data, rtol=1e-12)


def test_draw_graph_draws_every_node_and_labels_every_edge():
    import matplotlib

    matplotlib.use("Agg")
    w, b = Tensor(0.8, name="w"), Tensor(-0.2, name="b")
    x = Tensor(1.5, name="x", requires_grad=False)
    loss = ((w * x + b).sigmoid() - 1.0) ** 2
    loss.backward()
    ax = draw_graph(loss)
    nodes = topological_order(loss)
    assert len(ax.patches) == len(nodes)
    edges = sum(len(node.parents) for node in nodes)
    texts = [t.get_text() for t in ax.texts if t.get_text()]  # arrows are empty annotations
    assert len(texts) == 3 * len(nodes) + edges
    assert f"grad {float(w.grad):.4g}" in texts and "value 0.8" in texts
    assert "1.5" in texts  # the local derivative of w * x with respect to w is x


def test_draw_graph_labels_both_edges_of_a_node_used_twice():
    import matplotlib

    matplotlib.use("Agg")
    x = Tensor(3.0, name="x")
    y = x * x + x
    y.backward()
    ax = draw_graph(y)
    assert float(x.grad) == 7.0
    assert [t.get_text() for t in ax.texts].count("3") == 2  # d(x*x)/dx along each operand
