"""Argument checks shared by the library's modules, so that every function says the same thing
when it is given a wrong argument (the name of the argument, what was expected, what came)."""

from numbers import Integral


def check_int(argument: str, value, minimum: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) of at least ``minimum``; otherwise
    a ``ValueError`` naming ``argument``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{argument} must be an int of at least {minimum}, got {value!r}")
    return int(value)
