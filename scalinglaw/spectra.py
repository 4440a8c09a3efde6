r"""Eigenvalue spectra of the feature covariance :math:`H=\mathrm{diag}(\lambda_1,\lambda_2,\dots)`.

Three families (SPEC §1):

* :class:`PowerLaw`: :math:`\lambda_i=\lambda_1 i^{-a}`; needs :math:`a>1` when :math:`d=\infty`.
* :class:`LogPowerLaw`: :math:`\lambda_i=c\,i^{-1}\log^{-a}(i+1)`; needs :math:`a>1` when :math:`d=\infty`.
* :class:`ArraySpectrum`: any user array of positive eigenvalues (finite :math:`d`).

Power-law sums are closed with the Hurwitz zeta function,
:math:`\sum_{i>k} i^{-s}=\zeta(s,k+1)` [derived], never with Python loops.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
from scipy import integrate, special

from . import _checks
from .errors import ParameterError

__all__ = ["ArraySpectrum", "LogPowerLaw", "PowerLaw", "Spectrum", "hurwitz_tail", "parse_dimension"]


def parse_dimension(d: object) -> int | float:
    """Validate a dimension: an integer >= 1, or ``inf`` (also the strings ``"inf"``, ``"infinity"``)."""
    if isinstance(d, str):
        if d.strip().lower() in {"inf", "infinity", "∞"}:
            return math.inf
        x = _checks.as_float("d", d)
        if math.isinf(x) and x > 0:  # e.g. '1e400': a number, not the word
            raise ParameterError("d", d, "be an integer >= 1 or 'inf' (this number overflows float64)")
        if math.isinf(x):
            raise ParameterError("d", d, "be >= 1")
    return _checks.integer("d", d, minimum=1, allow_inf=True)


def quantized_trace(trace: Any, size: Any, kind: str | None, eps: Any, top: Any = 1.0) -> tuple[Any, Any]:
    r""":math:`\operatorname{tr}H^{(q)}` and :math:`\lambda_1^{(q)}` of data quantized by an idealised scheme.

    :math:`H^{(q)}=H+\epsilon I` over ``size`` coordinates (``kind="additive"``) or :math:`(1+\epsilon)H`
    (``"multiplicative"``, ``"multiplicative-coord"``); ``kind=None`` is full precision. ``top`` is
    :math:`\lambda_1`. [recon: SPEC §5.2, §5.4] Broadcasts; an infinite ``size`` with :math:`\epsilon=0` adds 0.
    """
    if kind is None:
        return trace, top
    if kind == "additive":
        with np.errstate(invalid="ignore"):
            return trace + np.where(np.asarray(eps) > 0, np.multiply(size, eps), 0.0), top + eps
    return trace * (1.0 + eps), top * (1.0 + eps)


def hurwitz_tail(s: float, k: float) -> float:
    r"""Return :math:`\sum_{i>k} i^{-s}=\zeta(s,k+1)` for :math:`s>1` [derived]."""
    return float(special.zeta(s, k + 1.0))


class Spectrum(ABC):
    """A spectrum: the eigenvalues of :math:`H` in decreasing order of index.

    Subclasses hold only the mathematics; the constructor validates.
    """

    d: int | float

    @property
    def is_infinite(self) -> bool:
        """Whether :math:`d=\\infty` (formulas then use a finite proxy plus an analytic tail)."""
        return math.isinf(self.d)

    @abstractmethod
    def head(self, n: int) -> np.ndarray:
        """The first ``n`` eigenvalues (``n <= d``), float64."""

    def eigenvalues(self) -> np.ndarray:
        """All eigenvalues; only for finite ``d``."""
        if self.is_infinite:
            raise ParameterError("d", self.d, "be finite to list every eigenvalue (use head(n))")
        return self.head(int(self.d))

    @abstractmethod
    def tail_sum(self, k: int, *, target_exponent: float | None = None) -> float:
        r"""Return :math:`\sum_{k<i\le d}\lambda_i\,i^{e}` with :math:`e` = ``target_exponent`` (0 if None).

        The weight :math:`i^{e}` is the prior variance :math:`\mathbb E w_i^{*2}=i^{a-b}` of a source-condition
        target (SPEC §1), so this is the signal mass of the tail.
        """

    def trace(self) -> float:
        r""":math:`\operatorname{tr}H=\sum_i\lambda_i`."""
        return self.tail_sum(0)

    @property
    @abstractmethod
    def label(self) -> str:
        """A short description, e.g. ``power(a=2, d=200)``."""


@dataclass(frozen=True)
class PowerLaw(Spectrum):
    r"""Power-law spectrum :math:`\lambda_i=\lambda_1 i^{-a}` (SPEC §1) [paper: Lin et al. 2024; 2510.18259].

    Parameters
    ----------
    a : float
        Decay exponent. Any ``a >= 0`` for finite ``d``; ``a > 1`` for ``d = inf`` (summable spectrum).
    d : int or inf
        Dimension.
    lambda1 : float
        Top eigenvalue :math:`\lambda_1>0`.
    """

    a: float
    d: int | float = math.inf
    lambda1: float = 1.0

    def __post_init__(self) -> None:
        d = parse_dimension(self.d)
        a = _checks.as_float("a", self.a)
        if math.isinf(d):
            if not a > 1:
                raise ParameterError("a", self.a, "be > 1 for a summable spectrum with d=inf")
        elif not a >= 0 or math.isinf(a):
            raise ParameterError("a", self.a, "be >= 0 and finite")
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "lambda1", _checks.positive("lambda1", self.lambda1))

    def head(self, n: int) -> np.ndarray:
        i = np.arange(1, int(n) + 1, dtype=np.float64)
        return self.lambda1 * np.exp(-self.a * np.log(i))

    def tail_sum(self, k: int, *, target_exponent: float | None = None) -> float:
        s = self.a - (target_exponent or 0.0)
        if k >= self.d:
            return 0.0
        if math.isinf(self.d):
            if not s > 1:
                raise ParameterError(
                    "b", s, "be > 1 so that the signal of an infinite-dimensional target is finite"
                )
            return self.lambda1 * hurwitz_tail(s, k)
        if self.d - k <= 1_000_000:
            # short range: a vectorised direct sum has no cancellation (no Python loop)
            i = np.arange(k + 1, int(self.d) + 1, dtype=np.float64)
            return float(self.lambda1 * math.fsum(np.exp(-s * np.log(i))))
        if s > 1:
            return self.lambda1 * (hurwitz_tail(s, k) - hurwitz_tail(s, self.d))
        # a non-summable exponent on a long finite range: zeta(s, k+1) - zeta(s, d+1) by analytic continuation
        # (digamma at s = 1), at raised precision for the difference
        with mpmath.workdps(40):
            if s == 1:
                val = mpmath.digamma(self.d + 1) - mpmath.digamma(k + 1)
            else:
                val = mpmath.zeta(s, k + 1) - mpmath.zeta(s, self.d + 1)
        return float(self.lambda1 * val)

    @property
    def label(self) -> str:
        return f"power(a={self.a:g}, d={self.d:g}, lambda1={self.lambda1:g})"


@dataclass(frozen=True)
class LogPowerLaw(Spectrum):
    r"""Logarithmic power law :math:`\lambda_i=c\,i^{-1}\log^{-a}(i+1)` (SPEC §1) [paper: Lin et al. 2024].

    Parameters
    ----------
    a : float
        Log exponent; ``a > 1`` for ``d = inf``.
    d : int or inf
        Dimension.
    scale : float
        The constant :math:`c>0`.
    """

    a: float
    d: int | float = math.inf
    scale: float = 1.0

    def __post_init__(self) -> None:
        d = parse_dimension(self.d)
        a = _checks.as_float("a", self.a)
        if math.isinf(d) and not a > 1:
            raise ParameterError("a", self.a, "be > 1 for a summable log-power spectrum with d=inf")
        if math.isinf(a) or a < 0:
            raise ParameterError("a", self.a, "be >= 0 and finite")
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "scale", _checks.positive("scale", self.scale))

    def head(self, n: int) -> np.ndarray:
        return self._at(np.arange(1, int(n) + 1, dtype=np.float64))

    def _at(self, i: np.ndarray) -> np.ndarray:
        r""":math:`\lambda_i` at (float) indices ``i``."""
        return self.scale / (i * np.log1p(i) ** self.a)

    def tail_sum(self, k: int, *, target_exponent: float | None = None, power: int = 1) -> float:
        r"""Return :math:`\sum_{k<i\le d}\lambda_i^{p}` (``power`` :math:`p`; only the isotropic target)."""
        if target_exponent:
            raise ParameterError("b", target_exponent, "equal a (isotropic prior) for a log-power spectrum")
        if k >= self.d:
            return 0.0
        if not math.isinf(self.d) and self.d - k <= 1_000_000:
            return float(math.fsum(self._at(np.arange(k + 1, int(self.d) + 1, dtype=np.float64)) ** power))
        # Euler-Maclaurin beyond the head: sum_{lo<=i<=stop} f(i) = int_{lo}^{stop} f + (f(lo)+f(stop))/2
        #   - (f'(lo)-f'(stop))/12 + ...
        def f(x: float) -> float:
            return (self.scale / (x * math.log1p(x) ** self.a)) ** power

        def fprime(x: float) -> float:
            lg = math.log1p(x)
            dlam = -self.scale * (1.0 / (x * x * lg**self.a) + self.a / (x * (1 + x) * lg ** (self.a + 1)))
            return power * (self.scale / (x * lg**self.a)) ** (power - 1) * dlam

        # the first terms exactly: the Euler-Maclaurin remainder falls like the third derivative, ~ k^-4
        head_terms = 10_000
        head = math.fsum(self._at(np.arange(k + 1, k + head_terms + 1, dtype=np.float64)) ** power)
        lo = k + head_terms + 1.0
        hi = math.inf if math.isinf(self.d) else float(self.d)

        # substitute x = e^t to tame the slow decay: f(x) x = scale^p e^((1-p) t) / log(1 + e^t)^(p a), without
        # overflow in e^t
        def integrand(t: float) -> float:
            return self.scale**power * math.exp((1 - power) * t) / np.logaddexp(0.0, t) ** (power * self.a)

        val, _ = integrate.quad(integrand, math.log(lo), math.log(hi) if math.isfinite(hi) else np.inf, limit=200,
                                epsabs=0, epsrel=1e-12)
        val += 0.5 * f(lo) - fprime(lo) / 12.0
        if math.isfinite(hi):
            val += 0.5 * f(hi) + fprime(hi) / 12.0
        return float(head + val)

    @property
    def label(self) -> str:
        return f"logpower(a={self.a:g}, d={self.d:g}, scale={self.scale:g})"


@dataclass(frozen=True)
class ArraySpectrum(Spectrum):
    """A user-given spectrum (finite ``d``): the diagonal of :math:`H` in the eigenbasis.

    Parameters
    ----------
    values : array_like
        Positive eigenvalues. Order is kept as given.
    """

    values: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        v = _checks.as_array("spectrum", self.values).ravel()
        if v.size < 1:
            raise ParameterError("d", 0, "be >= 1")
        if not np.all(v > 0) or not np.all(np.isfinite(v)):
            raise ParameterError("spectrum", f"min {v.min():g}", "contain only positive finite eigenvalues")
        v.setflags(write=False)
        object.__setattr__(self, "values", v)

    @property
    def d(self) -> int:  # type: ignore[override]
        return int(self.values.size)

    def head(self, n: int) -> np.ndarray:
        return self.values[: int(n)].copy()

    def tail_sum(self, k: int, *, target_exponent: float | None = None) -> float:
        if target_exponent:
            raise ParameterError("b", target_exponent, "equal a (isotropic prior) for an array spectrum")
        return float(self.values[int(k):].sum())

    @property
    def label(self) -> str:
        return f"array(d={self.d})"
