"""Argument checks shared by the public functions (the scipy.stats-style validating layer)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .errors import ParameterError


def as_float(name: str, value: Any) -> float:
    """Cast a scalar to float, refusing NaN, booleans and non-numbers with a named error."""
    if isinstance(value, bool | np.bool_):  # True would silently become 1
        raise ParameterError(name, value, "be a number, not a boolean")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ParameterError(name, value, "be a real number") from None
    if math.isnan(out):
        raise ParameterError(name, value, "be a real number (not NaN)")
    return out


def as_array(name: str, value: Any) -> np.ndarray:
    """Cast to a float64 array, refusing NaN."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(name, value, "be an array of real numbers") from None
    if np.isnan(arr).any():
        raise ParameterError(name, "array with NaN", "contain no NaN")
    return arr


def positive(name: str, value: Any, *, allow_inf: bool = False) -> float:
    x = as_float(name, value)
    if not x > 0 or (math.isinf(x) and not allow_inf):
        raise ParameterError(name, value, "be > 0" + ("" if allow_inf else " and finite"))
    return x


def nonnegative(name: str, value: Any) -> float:
    x = as_float(name, value)
    if not (x >= 0) or math.isinf(x):
        raise ParameterError(name, value, "be >= 0 and finite")
    return x


def greater(name: str, value: Any, bound: float, why: str = "") -> float:
    x = as_float(name, value)
    if not x > bound or math.isinf(x):
        raise ParameterError(name, value, f"be > {bound:g}" + (f" {why}" if why else ""))
    return x


def integer(name: str, value: Any, *, minimum: int | None = None, allow_inf: bool = False) -> int | float:
    """Cast to int (accepting ``1e6``-style floats that are whole); ``inf`` when ``allow_inf``."""
    x = as_float(name, value)
    if math.isinf(x):
        if allow_inf and x > 0:
            return math.inf
        raise ParameterError(name, value, "be a finite integer")
    if x != math.floor(x):
        raise ParameterError(name, value, "be an integer")
    n = int(x)
    if minimum is not None and n < minimum:
        raise ParameterError(name, value, f"be >= {minimum}")
    return n


def choice(name: str, value: Any, options: Iterable[str]) -> str:
    opts = list(options)
    if value not in opts:
        raise ParameterError(name, value, "be one of " + ", ".join(opts))
    return value
