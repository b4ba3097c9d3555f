import numpy as np
import pytest

from dlbook.exercises import (
    ExerciseFeedback,
    check_between,
    check_close,
    check_equal,
    check_shape,
)


def test_feedback_is_an_assertion_error():
    assert issubclass(ExerciseFeedback, AssertionError)


def test_check_shape():
    check_shape("logits", np.zeros((5, 10)), (None, 10))
    with pytest.raises(ExerciseFeedback, match=r"logits: expected shape \(None, 10\), got \(5, 12\)"):
        check_shape("logits", np.zeros((5, 12)), (None, 10))
    with pytest.raises(ExerciseFeedback, match=r"got \(5,\)"):
        check_shape("logits", np.zeros(5), (None, 10))


def test_check_close_names_the_worst_element():
    check_close("w", [1.0, 2.0], [1.0, 2.0 + 1e-9])
    with pytest.raises(ExerciseFeedback,
                       match=r"w: 1 of 3 values differ; largest difference at index \(2,\): "
                             r"got 5, expected 3"):
        check_close("w", [1.0, 2.0, 5.0], [1.0, 2.0, 3.0])
    with pytest.raises(ExerciseFeedback, match=r"expected shape \(2,\), got \(3,\)"):
        check_close("w", [1, 2, 3], [1, 2])
    with pytest.raises(ExerciseFeedback, match="got 0.5, expected 0.25"):
        check_close("scalar", 0.5, 0.25)


def test_check_between():
    check_between("accuracy", 0.97, 0.95, 1.0)
    with pytest.raises(ExerciseFeedback, match=r"accuracy: expected a value in \[0.95, 1.0\], got 0.9"):
        check_between("accuracy", 0.9, 0.95, 1.0)
    with pytest.raises(ExerciseFeedback, match="expected a single number"):
        check_between("accuracy", [0.9, 0.99], 0.95, 1.0)
    with pytest.raises(ValueError, match="low must not exceed high"):
        check_between("accuracy", 0.9, 1.0, 0.0)


def test_check_equal():
    check_equal("classes", np.array([1, 2]), np.array([1, 2]))
    check_equal("name", "relu", "relu")
    with pytest.raises(ExerciseFeedback, match="name: expected 'relu', got 'tanh'"):
        check_equal("name", "tanh", "relu")
    with pytest.raises(ExerciseFeedback, match="classes"):
        check_equal("classes", np.array([1, 2, 3]), np.array([1, 2]))
