"""Typed errors raised by scalinglaw.

Every error that comes from bad input is a :class:`ParameterError` (a ``ValueError``) whose message names the
parameter, the value it got and the valid range, in one line. The CLI prints that line to stderr and exits
with code 2.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AllocationError",
    "BoundaryOptimumError",
    "FlatOptimumError",
    "NonFiniteResultError",
    "ParameterError",
    "ScalingLawError",
    "UnstableStepError",
    "UnsupportedConfigurationError",
]


class ScalingLawError(Exception):
    """Base class of every error scalinglaw raises on purpose."""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value) if isinstance(value, str) else str(value)


class ParameterError(ScalingLawError, ValueError):
    """A parameter is outside its valid range.

    Parameters
    ----------
    name : str
        The parameter's name, as the user spells it (``"a"``, ``"gamma"``, ``"--data"``).
    value : object
        The value received.
    requirement : str
        The valid range, phrased to follow "<name> must ...", e.g. ``"be > 1 for a summable spectrum"``.
    """

    def __init__(self, name: str, value: Any, requirement: str) -> None:
        self.name = name
        self.value = value
        self.requirement = requirement
        super().__init__(f"{name} must {requirement}, got {_fmt(value)}")


class UnstableStepError(ParameterError):
    """The step size makes the second-moment recursion of SGD diverge.

    Attributes
    ----------
    max_stable : float
        The supremum of the stable step sizes for this problem (exclusive).
    """

    def __init__(self, value: float, max_stable: float, detail: str = "") -> None:
        self.max_stable = float(max_stable)
        extra = f" ({detail})" if detail else ""
        super().__init__(
            "gamma",
            value,
            f"be < {self.max_stable:.6g}, the largest stable step size for this problem{extra}",
        )


class UnsupportedConfigurationError(ScalingLawError, ValueError):
    """A valid configuration that the requested method cannot handle (the message says what can)."""


class AllocationError(ScalingLawError, ValueError):
    """An allocation problem without a well-defined answer (the message says why)."""


class BoundaryOptimumError(AllocationError):
    """The optimum sits on a bound of the search: there is no interior minimum."""

    def __init__(self, variable: str, value: float, bound: str, hint: str = "") -> None:
        self.variable, self.value, self.bound = variable, float(value), bound
        extra = f"; {hint}" if hint else ""
        super().__init__(f"no interior minimum: the optimum of {variable} is at the {bound} of the search "
                         f"({variable}={value:.6g}){extra}")


class FlatOptimumError(AllocationError):
    """The loss is too flat around the optimum to pin the allocation."""

    def __init__(self, variable: str, low: float, high: float, rtol: float) -> None:
        self.variable, self.low, self.high, self.rtol = variable, float(low), float(high), float(rtol)
        super().__init__(f"too flat to pin: every {variable} in [{low:.4g}, {high:.4g}] (a factor "
                         f"{high / low:.3g}) is within {rtol:.2%} of the optimal loss")


class NonFiniteResultError(ScalingLawError, ValueError):
    """A result came out NaN or infinite (the computation left float64's range); it is refused, not printed.

    Attributes
    ----------
    quantity : str
        Which output (e.g. ``"terms.variance"``).
    value : float
        The non-finite value.
    """

    def __init__(self, quantity: str, value: float) -> None:
        self.quantity, self.value = quantity, float(value)
        super().__init__(f"the result is not finite ({quantity} = {value}): the computation left float64's range "
                         "for these inputs (look for an extreme value such as a huge --sigma2, --lambda1 or "
                         "quantizer epsilon); nothing was printed")
