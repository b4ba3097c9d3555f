"""Self-check helpers for exercises: each failure says what was expected and what was found.

Every helper raises :class:`ExerciseFeedback` (an ``AssertionError``, so nbgrader and pytest treat
it as a failed test) with a message a learner can act on. Taught in chapter 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class ExerciseFeedback(AssertionError):
    """A failed self-check, with a message that says what to fix."""


def check_shape(name: str, value, expected: Sequence[int | None]) -> None:
    """``value.shape`` must equal ``expected``; ``None`` in ``expected`` matches any size."""
    actual = tuple(getattr(value, "shape", np.shape(value)))
    expected = tuple(expected)
    matches = len(actual) == len(expected) and all(
        e is None or a == e for a, e in zip(actual, expected, strict=True)
    )
    if not matches:
        raise ExerciseFeedback(f"{name}: expected shape {expected}, got {actual}")


def check_close(name: str, value, expected, rtol: float = 1e-5, atol: float = 1e-8) -> None:
    """``value`` must equal ``expected`` elementwise within tolerance (``numpy.isclose``)."""
    actual = np.asarray(value, dtype=float)
    target = np.asarray(expected, dtype=float)
    if actual.shape != target.shape:
        raise ExerciseFeedback(f"{name}: expected shape {target.shape}, got {actual.shape}")
    close = np.isclose(actual, target, rtol=rtol, atol=atol)
    if not close.all():
        worst = np.unravel_index(np.argmax(np.abs(actual - target)), actual.shape)
        where = f" at index {tuple(int(i) for i in worst)}" if actual.ndim else ""
        raise ExerciseFeedback(
            f"{name}: {np.size(close) - int(close.sum())} of {np.size(close)} values differ; "
            f"largest difference{where}: got {actual[worst]:.6g}, expected {target[worst]:.6g}"
        )


def check_between(name: str, value: float, low: float, high: float) -> None:
    """``low <= value <= high``."""
    if not low <= high:
        raise ValueError(f"low must not exceed high, got low={low}, high={high}")
    if not (np.isscalar(value) or np.ndim(value) == 0):
        raise ExerciseFeedback(f"{name}: expected a single number, got shape {np.shape(value)}")
    if not low <= float(value) <= high:
        raise ExerciseFeedback(f"{name}: expected a value in [{low}, {high}], got {float(value):.6g}")


def check_equal(name: str, value, expected) -> None:
    """``value == expected`` (arrays compared elementwise)."""
    if isinstance(expected, np.ndarray) or isinstance(value, np.ndarray):
        equal = np.shape(value) == np.shape(expected) and bool(np.all(value == expected))
    else:
        equal = value == expected
    if not equal:
        raise ExerciseFeedback(f"{name}: expected {expected!r}, got {value!r}")
