"""Argument checks shared by the whole package: one policy for every public function.

- A value of the wrong type raises `TypeError`; a value of the right type that is
  out of range (NaN and infinity included) raises `ValueError`.
- Every message names the argument, says what would be valid, and ends with
  ``Received: name=value``.
- NumPy scalars are accepted wherever Python numbers are, and come back as
  Python numbers, so that they print and serialize like the numbers users typed.

Keras-free: the configuration, counting and search modules use it too.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

__all__ = [
    "batch_shape_text",
    "check_bool",
    "check_choice",
    "check_int",
    "check_real",
    "check_str",
    "fits_batch_shape",
    "is_int",
    "is_real",
    "received",
]


def received(name: str, value) -> str:
    """The closing words of every message: ``Received: name=value``."""
    return f"Received: {name}={value!r}"


def is_int(value) -> bool:
    """An integer, NumPy's included, but not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A real number, NumPy's included, but not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool)


def check_bool(name: str, value) -> bool:
    """Accepts True or False (NumPy's bool too).

    Example:
        >>> check_bool("include_top", False)
        False
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"`{name}` must be True or False. {received(name, value)}")


def _range_text(minimum, maximum, min_open: bool, max_open: bool) -> str:
    """``">= 1 and < 1"``-style bounds; integers with thousands separators."""

    def number(x):
        return f"{x:,}" if is_int(x) else f"{x:g}"

    parts = []
    if minimum is not None:
        parts.append(f"{'>' if min_open else '>='} {number(minimum)}")
    if maximum is not None:
        parts.append(f"{'<' if max_open else '<='} {number(maximum)}")
    return " and ".join(parts)


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None, hint="") -> int:
    """Accepts an integer within [minimum, maximum]; returns it as a Python int.

    Example:
        >>> check_int("classes", 10, minimum=1)
        10
    """
    if not is_int(value):
        raise TypeError(f"`{name}` must be an integer.{hint} {received(name, value)}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(
            f"`{name}` must be an integer {_range_text(minimum, maximum, False, False)}.{hint} "
            f"{received(name, value)}"
        )
    return int(value)


def check_real(
    name: str,
    value,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    hint: str = "",
) -> float:
    """Accepts a finite real number within the bounds; returns it as a Python float.

    Args:
        name: The argument's name, for the message.
        value: What was received.
        minimum, maximum: Bounds; None for none.
        min_open, max_open: Whether the bound itself is excluded.
        hint: A sentence added to the message (how to fix it).

    Example:
        >>> check_real("dropout_rate", 0.2, minimum=0, maximum=1, max_open=True)
        0.2
    """
    if not is_real(value):
        raise TypeError(f"`{name}` must be a number.{hint} {received(name, value)}")
    number = float(value)
    ok = math.isfinite(number)
    if ok and minimum is not None:
        ok = number > minimum if min_open else number >= minimum
    if ok and maximum is not None:
        ok = number < maximum if max_open else number <= maximum
    if not ok:
        bounds = _range_text(minimum, maximum, min_open, max_open)
        raise ValueError(
            f"`{name}` must be a finite number{' ' + bounds if bounds else ''}.{hint} {received(name, value)}"
        )
    return number


def check_str(name: str, value, *, hint: str = "") -> str:
    """Accepts a non-empty str.

    Example:
        >>> check_str("name", "efficientnet")
        'efficientnet'
    """
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a str.{hint} {received(name, value)}")
    if not value:
        raise ValueError(f"`{name}` must not be empty.{hint} {received(name, value)}")
    return value


def check_choice(name: str, value, choices, *, hint: str = ""):
    """Accepts one of `choices` (None among them where listed).

    A value of another type than every choice is a TypeError, an unknown one
    of the right type a ValueError.

    Example:
        >>> check_choice("pooling", "avg", (None, "avg", "max"))
        'avg'
    """
    choices = tuple(choices)
    try:
        if value in choices:
            return value
    except TypeError:  # unhashable or incomparable: certainly not a choice
        pass
    valid = ", ".join(repr(c) for c in choices)
    if not any(type(value) is type(c) for c in choices):
        raise TypeError(f"`{name}` must be one of {valid}.{hint} {received(name, value)}")
    raise ValueError(f"`{name}` must be one of {valid}.{hint} {received(name, value)}")


def fits_batch_shape(shape, input_shape) -> bool:
    """Whether `shape` is a batch of inputs shaped `input_shape` (None there: any size)."""
    return len(shape) == len(input_shape) + 1 and all(
        want is None or want == got for want, got in zip(input_shape, shape[1:], strict=True)
    )


def batch_shape_text(input_shape, batch: str = "N") -> str:
    """`input_shape` with a batch axis, for messages: ``(N, 224, 224, 3)``, "any" for an open size."""
    return f"({batch}, " + ", ".join("any" if size is None else str(size) for size in input_shape) + ")"
