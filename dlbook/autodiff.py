"""A small reverse-mode automatic-differentiation engine over NumPy arrays, and a gradient checker.

Written for chapter 4 (backpropagation and automatic differentiation). A :class:`Tensor` holds a
float64 array, the tensors it was computed from, and for each of them a *vector-Jacobian product*
(VJP): a function that turns the gradient of the loss with respect to this tensor into the gradient
with respect to that parent. :meth:`Tensor.backward` visits the graph in reverse topological order
and applies the chain rule node by node — that is all backpropagation is.

The engine supports ``+ - * / @ **``, ``exp``, ``log``, ``tanh``, ``relu``, ``sigmoid``, ``sum``
and ``mean``, with NumPy broadcasting (a gradient flowing into a broadcast operand is summed back
to the operand's shape). :func:`numerical_gradient` and :func:`gradient_check` compare its
gradients with central finite differences. :func:`draw_graph` draws a small scalar graph with its
values, local derivatives and gradients, and :class:`Dual` is forward-mode differentiation in a
dozen lines, for contrast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Real

import numpy as np

from dlbook.scratch import relative_error  # taught in chapter 2; chapter 4 reuses it

VJP = Callable[[np.ndarray], np.ndarray]


class Tensor:
    """A node of a computational graph: a float64 array, its parents and how to backpropagate.

    ``Tensor(data)`` makes a leaf (a parameter or an input). Operations on tensors make new nodes
    that remember ``parents``: pairs ``(parent, vjp)`` where ``vjp(g)`` maps the gradient ``g`` of
    the loss with respect to this node to the gradient with respect to ``parent`` (before any
    broadcasting is undone). Plain numbers and arrays mixed into an operation become constants
    (``requires_grad=False``): no gradient is computed for them.

    ``requires_grad`` only applies to leaves: an operation's result requires a gradient exactly
    when one of its parents does.

    After ``loss.backward()``, every node of the graph that requires a gradient has ``.grad``, an
    array of its own shape. Each call recomputes the gradients from zero (PyTorch, by contrast,
    accumulates them across calls).

    ``Tensor(array)`` does not copy a float64 NumPy array: the leaf shares memory with it, so
    changing the array in place changes the leaf. Pass ``array.copy()`` to keep them apart.
    Taught in chapter 4.
    """

    __array_ufunc__ = None  # so that ``ndarray * Tensor`` defers to ``Tensor.__rmul__``

    def __init__(self, data, parents: Sequence[tuple[Tensor, VJP]] = (), op: str = "",
                 name: str = "", requires_grad: bool = True):
        for parent in parents:
            if not (isinstance(parent, tuple) and len(parent) == 2
                    and isinstance(parent[0], Tensor) and callable(parent[1])):
                raise ValueError(f"parents must be (Tensor, vjp function) pairs, got {parent!r}")
        self.data = np.asarray(data, dtype=np.float64)
        self.parents = tuple(parents)
        self.op = op
        self.name = name
        self.requires_grad = bool(requires_grad) if not parents else any(
            parent.requires_grad for parent, _ in parents)
        self.grad: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def __repr__(self) -> str:
        values = np.array2string(self.data, precision=4, threshold=6)
        label = f", name={self.name!r}" if self.name else ""
        return f"Tensor({values}, op={self.op or 'leaf'!r}{label})"

    # --- arithmetic ---------------------------------------------------------------------------

    def __add__(self, other) -> Tensor:
        other = as_tensor(other)
        return Tensor(self.data + other.data, ((self, lambda g: g), (other, lambda g: g)), "+")

    def __sub__(self, other) -> Tensor:
        other = as_tensor(other)
        return Tensor(self.data - other.data, ((self, lambda g: g), (other, lambda g: -g)), "-")

    def __mul__(self, other) -> Tensor:
        other = as_tensor(other)
        return Tensor(self.data * other.data,
                      ((self, lambda g: g * other.data), (other, lambda g: g * self.data)), "*")

    def __truediv__(self, other) -> Tensor:
        other = as_tensor(other)
        return Tensor(self.data / other.data,
                      ((self, lambda g: g / other.data),
                       (other, lambda g: -g * self.data / other.data**2)), "/")

    def __radd__(self, other) -> Tensor:
        return as_tensor(other) + self

    def __rsub__(self, other) -> Tensor:
        return as_tensor(other) - self

    def __rmul__(self, other) -> Tensor:
        return as_tensor(other) * self

    def __rtruediv__(self, other) -> Tensor:
        return as_tensor(other) / self

    def __neg__(self) -> Tensor:
        return Tensor(-self.data, ((self, lambda g: -g),), "neg")

    def __pow__(self, exponent: float) -> Tensor:
        if isinstance(exponent, bool) or not isinstance(exponent, Real):
            raise ValueError(f"exponent must be a constant real number, got {exponent!r}")
        p = float(exponent)
        if not p.is_integer() and np.any(self.data < 0):
            raise ValueError(f"a negative base needs an integer exponent, got exponent {p}")
        return Tensor(self.data**p, ((self, lambda g: g * p * self.data ** (p - 1)),), f"**{p:g}")

    def __matmul__(self, other) -> Tensor:
        other = as_tensor(other)
        if self.data.ndim != 2 or other.data.ndim != 2:
            raise ValueError(f"matmul needs two 2-D tensors, got shapes {self.shape} and "
                             f"{other.shape}")
        if self.shape[1] != other.shape[0]:
            raise ValueError(f"matmul shapes do not fit: {self.shape} @ {other.shape} "
                             f"({self.shape[1]} != {other.shape[0]})")
        return Tensor(self.data @ other.data,
                      ((self, lambda g: g @ other.data.T), (other, lambda g: self.data.T @ g)), "@")

    def __rmatmul__(self, other) -> Tensor:
        return as_tensor(other) @ self

    # --- elementwise functions ----------------------------------------------------------------

    def exp(self) -> Tensor:
        out = np.exp(self.data)
        return Tensor(out, ((self, lambda g: g * out),), "exp")

    def log(self) -> Tensor:
        if np.any(self.data <= 0):
            raise ValueError(f"log needs positive inputs, got a minimum of {self.data.min():.4g}")
        return Tensor(np.log(self.data), ((self, lambda g: g / self.data),), "log")

    def tanh(self) -> Tensor:
        out = np.tanh(self.data)
        return Tensor(out, ((self, lambda g: g * (1.0 - out**2)),), "tanh")

    def relu(self) -> Tensor:
        # At 0 the derivative is undefined; like most libraries we use 0 there.
        return Tensor(np.maximum(self.data, 0.0), ((self, lambda g: g * (self.data > 0)),), "relu")

    def sigmoid(self) -> Tensor:
        out = 0.5 * (1.0 + np.tanh(0.5 * self.data))  # = 1 / (1 + e^-x), without overflow
        return Tensor(out, ((self, lambda g: g * out * (1.0 - out)),), "sigmoid")

    # --- reductions ---------------------------------------------------------------------------

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        axes = _normalise_axes(axis, self.data.ndim)
        shape = self.shape

        def vjp(g: np.ndarray) -> np.ndarray:
            if not keepdims:
                g = np.expand_dims(g, axes)
            return np.broadcast_to(g, shape)

        return Tensor(self.data.sum(axis=axes, keepdims=keepdims), ((self, vjp),), "sum")

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        axes = _normalise_axes(axis, self.data.ndim)
        count = int(np.prod([self.shape[a] for a in axes]))
        return self.sum(axis=axes, keepdims=keepdims) / count

    # --- backpropagation ----------------------------------------------------------------------

    def backward(self, grad=None) -> None:
        """Fill ``.grad`` of every node this tensor depends on, by the chain rule in reverse order.

        ``grad`` is the gradient of the final quantity with respect to this tensor; it defaults to
        1 and may be left out only for a single-element tensor (a loss).
        """
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward() without grad needs a single-element tensor (a loss), "
                                 f"got shape {self.shape}; pass grad of that shape")
            grad = np.ones_like(self.data)
        grad = np.asarray(grad, dtype=np.float64)
        if grad.shape != self.shape:
            raise ValueError(f"grad must have this tensor's shape {self.shape}, got {grad.shape}")
        order = topological_order(self)
        for node in order:
            node.grad = np.zeros_like(node.data) if node.requires_grad else None
        self.grad = grad.copy()
        for node in reversed(order):  # every node after all the nodes that use it
            if not node.requires_grad:
                continue
            for parent, vjp in node.parents:
                if parent.requires_grad:
                    parent.grad = parent.grad + unbroadcast(vjp(node.grad), parent.shape)


def as_tensor(value) -> Tensor:
    """``value`` itself if it is a :class:`Tensor`, else a constant tensor (no gradient).

    Taught in chapter 4.
    """
    return value if isinstance(value, Tensor) else Tensor(value, requires_grad=False)


def _normalise_axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) and not isinstance(axis, bool) else axis
    if not isinstance(axes, tuple) or not all(isinstance(a, int) for a in axes):
        raise ValueError(f"axis must be None, an int or a tuple of ints, got {axis!r}")
    if any(not -ndim <= a < ndim for a in axes):
        raise ValueError(f"axis {axis!r} is out of range for a tensor with {ndim} dimensions")
    return tuple(sorted(a % ndim for a in axes))


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``.

    If ``x`` of shape ``(1, 3)`` was broadcast to ``(4, 3)``, each of its entries was used four
    times, so its gradient is the sum of the four gradients. Taught in chapter 4.
    """
    grad = np.asarray(grad, dtype=np.float64)
    if grad.ndim < len(shape):
        raise ValueError(f"grad of shape {grad.shape} cannot come from broadcasting {shape}")
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape)))) if grad.ndim > len(shape) else grad
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and grad.shape[i] != 1)
    grad = grad.sum(axis=stretched, keepdims=True) if stretched else grad
    if grad.shape != tuple(shape):
        raise ValueError(f"grad of shape {grad.shape} cannot come from broadcasting {shape}")
    return grad


def topological_order(root: Tensor) -> list[Tensor]:
    """The nodes ``root`` depends on, each listed after all of its parents; ``root`` is last.

    Iterative depth-first search, so that long graphs (a recurrent network unrolled over many
    steps) do not hit Python's recursion limit. Taught in chapter 4.
    """
    if not isinstance(root, Tensor):
        raise ValueError(f"root must be a Tensor, got {type(root).__name__}")
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        # Reversed, so that the first parent is popped (and listed) first.
        stack.extend((parent, False) for parent, _ in reversed(node.parents)
                     if id(parent) not in visited)
    return order


def graph_table(root: Tensor) -> str:
    """One line per node of ``root``'s graph, parents first: label, operation, inputs, value, grad.

    A node is labelled by its ``name``, or ``#k`` by its position. Single-element values and
    gradients are printed to 4 decimals, larger ones by their shape. Run ``root.backward()`` first
    to see the gradients. Taught in chapter 4.
    """
    order = topological_order(root)
    labels = {id(node): node.name or f"#{k}" for k, node in enumerate(order)}

    def brief(array: np.ndarray | None) -> str:
        if array is None:
            return "-"
        return f"{array.item():.4f}" if array.size == 1 else f"shape {array.shape}"

    rows = [("node", "op", "inputs", "value", "grad")]
    rows += [(labels[id(node)], node.op or "leaf",
              ", ".join(labels[id(parent)] for parent, _ in node.parents),
              brief(node.data), brief(node.grad)) for node in order]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def draw_graph(root: Tensor, ax=None, title: str = ""):
    """Draw the graph of a scalar ``root``: one box per node, parents to the left of their users.

    Each box shows the node's label and operation, its value (black) and, once
    ``root.backward()`` has run, its gradient ∂root/∂node (red). Each edge is labelled with the
    local derivative ∂(user)/∂(parent) — what the chain rule multiplies along that edge. Every node
    must hold a single number. Returns the matplotlib axes. Taught in chapter 4.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    order = topological_order(root)
    if any(node.data.size != 1 for node in order):
        raise ValueError("draw_graph draws scalar graphs only: every node must hold one number")
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.6))
    labels = {id(node): node.name or f"#{k}" for k, node in enumerate(order)}
    depth: dict[int, int] = {}
    for node in order:  # parents come first
        depth[id(node)] = 1 + max((depth[id(p)] for p, _ in node.parents), default=-1)
    users: dict[int, list[Tensor]] = {id(node): [] for node in order}
    for node in order:
        for parent, _ in node.parents:
            users[id(parent)].append(node)
    for node in order:  # a leaf sits just left of its first user, not in the far-left column
        if not node.parents and users[id(node)]:
            depth[id(node)] = min(depth[id(u)] for u in users[id(node)]) - 1
    columns: dict[int, list[Tensor]] = {}
    for node in order:
        columns.setdefault(depth[id(node)], []).append(node)
    width, height, x_gap, y_gap = 1.5, 0.9, 2.3, 1.35
    position = {}
    for column, nodes in columns.items():
        for row, node in enumerate(nodes):
            position[id(node)] = (column * x_gap, (row - (len(nodes) - 1) / 2) * -y_gap)
    seen: dict[tuple[int, int], int] = {}
    for node in order:
        for parent, vjp in node.parents:
            key = (id(parent), id(node))
            repeat = seen[key] = seen.get(key, -1) + 1
            local = unbroadcast(vjp(np.ones_like(node.data)), parent.shape).item()
            (x0, y0), (x1, y1) = position[id(parent)], position[id(node)]
            bend = 0.35 * repeat * (1 if repeat % 2 else -1)
            if not bend and abs(x1 - x0) > 1.5 * x_gap and abs(y1 - y0) < 1e-9:
                bend = -0.45  # a straight edge would run through the boxes in between
            ax.annotate("", xy=(x1 - width / 2, y1), xytext=(x0 + width / 2, y0),
                        arrowprops={"arrowstyle": "->", "color": "0.45",
                                    "connectionstyle": f"arc3,rad={bend}"})
            lift = 0.3 * repeat + (0.45 * abs(x1 - x0) / x_gap if bend == -0.45 else 0.0)
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.12 + lift, f"{local:.3g}",
                    ha="center", va="bottom", fontsize=8, color="tab:blue")
    for node in order:
        x, y = position[id(node)]
        ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                    boxstyle="round,pad=0.02", facecolor="0.95",
                                    edgecolor="0.3"))
        op = node.op or ("leaf" if node.requires_grad else "constant")
        ax.text(x, y + 0.22, f"{labels[id(node)]}  ({op})", ha="center", va="center", fontsize=8,
                weight="bold")
        ax.text(x, y, f"value {node.data.item():.4g}", ha="center", va="center", fontsize=8)
        grad = "-" if node.grad is None else f"{node.grad.item():.4g}"
        ax.text(x, y - 0.22, f"grad {grad}", ha="center", va="center", fontsize=8,
                color="tab:red")
    xs = [p[0] for p in position.values()]
    ys = [p[1] for p in position.values()]
    ax.set_xlim(min(xs) - width, max(xs) + width)
    ax.set_ylim(min(ys) - height, max(ys) + height)
    ax.set_axis_off()
    ax.set_title(title or "Computational graph: value (black), ∂root/∂node (red), "
                 "local derivative on each edge (blue)", fontsize=9)
    return ax


class Dual:
    """A dual number ``value + tangent·ε`` with ``ε² = 0``: forward-mode differentiation.

    Arithmetic on duals carries a derivative alongside each value: ``f(a + ε) = f(a) + f'(a) ε``.
    Seed the input you differentiate with respect to with tangent 1 (the others 0), evaluate the
    function once, and the result's ``tangent`` is the derivative with respect to that one input.
    A gradient over ``n`` inputs takes ``n`` such sweeps; reverse mode (:class:`Tensor`) takes one.
    Supports ``+ - * /``, constant powers, ``exp``, ``tanh`` and ``sigmoid``. Taught in chapter 4.
    """

    def __init__(self, value, tangent=0.0):
        self.value, self.tangent = np.asarray(value, float), np.asarray(tangent, float)

    def __repr__(self) -> str:
        return f"Dual({self.value}, tangent={self.tangent})"

    @staticmethod
    def lift(other) -> Dual:
        return other if isinstance(other, Dual) else Dual(other)

    def __add__(self, other) -> Dual:
        other = Dual.lift(other)
        return Dual(self.value + other.value, self.tangent + other.tangent)

    def __sub__(self, other) -> Dual:
        other = Dual.lift(other)
        return Dual(self.value - other.value, self.tangent - other.tangent)

    def __mul__(self, other) -> Dual:  # the product rule
        other = Dual.lift(other)
        return Dual(self.value * other.value,
                    self.tangent * other.value + self.value * other.tangent)

    def __truediv__(self, other) -> Dual:
        other = Dual.lift(other)
        return Dual(self.value / other.value,
                    (self.tangent * other.value - self.value * other.tangent) / other.value**2)

    __radd__ = __add__
    __rmul__ = __mul__

    def __rsub__(self, other) -> Dual:
        return Dual.lift(other) - self

    def __rtruediv__(self, other) -> Dual:
        return Dual.lift(other) / self

    def __neg__(self) -> Dual:
        return Dual(-self.value, -self.tangent)

    def __pow__(self, exponent: float) -> Dual:
        if isinstance(exponent, bool) or not isinstance(exponent, Real):
            raise ValueError(f"exponent must be a constant real number, got {exponent!r}")
        return Dual(self.value**exponent,
                    exponent * self.value ** (exponent - 1) * self.tangent)

    def exp(self) -> Dual:
        out = np.exp(self.value)
        return Dual(out, out * self.tangent)

    def tanh(self) -> Dual:
        out = np.tanh(self.value)
        return Dual(out, (1.0 - out**2) * self.tangent)

    def sigmoid(self) -> Dual:
        out = 0.5 * (1.0 + np.tanh(0.5 * self.value))
        return Dual(out, out * (1.0 - out) * self.tangent)


def softmax_cross_entropy(logits: Tensor, labels) -> Tensor:
    """Mean cross-entropy of a softmax over ``logits`` ``(n, k)`` for integer ``labels`` ``(n,)``.

    Built from the engine's primitives: ``log sum_j exp(z_j) - z_label``. The row maximum is
    subtracted first as a constant, which leaves the value and the gradient unchanged (softmax is
    shift-invariant) but keeps ``exp`` from overflowing. Taught in chapter 4.
    """
    logits = as_tensor(logits)
    labels = np.asarray(labels)
    if logits.data.ndim != 2:
        raise ValueError(f"logits must be 2-D (examples, classes), got shape {logits.shape}")
    n, k = logits.shape
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {n} integers, got shape {labels.shape} "
                         f"and dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"labels must lie in [0, {k - 1}], got [{labels.min()}, {labels.max()}]")
    shifted = logits - logits.data.max(axis=1, keepdims=True)
    log_normaliser = shifted.exp().sum(axis=1).log()
    picked = (shifted * np.eye(k)[labels]).sum(axis=1)
    return (log_normaliser - picked).mean()


# --- gradient checking ------------------------------------------------------------------------


def numerical_gradient(f: Callable[[np.ndarray], float], x, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences: ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` for each ``i``.

    Works in float64. The error of the estimate is ``O(eps**2)`` from truncation plus about
    ``machine_epsilon * |f| / eps`` from rounding, so ``eps`` of 1e-6 to 1e-5 balances the two.
    Costs two evaluations of ``f`` per entry of ``x``: a check, not a way to train.
    Taught in chapter 4.
    """
    if isinstance(eps, bool) or not isinstance(eps, Real) or not 0 < eps < float("inf"):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    point = np.array(x, dtype=np.float64)
    grad = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        original = point[index]
        point[index] = original + eps
        above = float(f(point))
        point[index] = original - eps
        below = float(f(point))
        point[index] = original
        grad[index] = (above - below) / (2 * eps)
    return grad


def gradient_check(loss_fn: Callable[[], Tensor], params: Sequence[Tensor],
                   eps: float = 1e-6) -> list[float]:
    """Relative error between the engine's gradient and finite differences, one per parameter.

    ``loss_fn()`` builds the graph from ``params`` and returns a single-element :class:`Tensor`.
    Each parameter's ``data`` is perturbed in place and restored afterwards. Taught in chapter 4.
    """
    if not params or not all(isinstance(p, Tensor) and p.requires_grad for p in params):
        raise ValueError("params must be a non-empty sequence of Tensors that require gradients")
    loss = loss_fn()
    if not isinstance(loss, Tensor):
        raise ValueError(f"loss_fn must return a Tensor, got {type(loss).__name__}")
    for param in params:
        param.grad = None  # so that a parameter missing from the graph shows up below
    loss.backward()
    if any(p.grad is None for p in params):
        raise ValueError("some params are not part of the graph loss_fn builds")
    analytic = [p.grad.copy() for p in params]
    errors = []
    for param, engine_grad in zip(params, analytic, strict=True):
        saved = param.data

        def loss_at(values: np.ndarray, param: Tensor = param) -> float:
            param.data = values
            return float(loss_fn().data)

        try:
            errors.append(relative_error(engine_grad, numerical_gradient(loss_at, saved, eps)))
        finally:
            param.data = saved
    return errors
