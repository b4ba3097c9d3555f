import numpy as np
import pytest

from dlbook.checks import check_int


def test_check_int_accepts_integers_of_numpy_too():
    assert check_int("units", 3) == 3
    assert check_int("units", np.int64(5)) == 5 and type(check_int("units", np.int64(5))) is int
    assert check_int("start", 0, minimum=0) == 0


@pytest.mark.parametrize("value", [0, -1, 2.0, "3", True, None])
def test_check_int_names_the_argument_and_the_value(value):
    with pytest.raises(ValueError, match=r"units must be an int of at least 1, got "):
        check_int("units", value)
