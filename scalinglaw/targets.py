r"""Targets :math:`w^*` (SPEC §1).

* :class:`Ones`: :math:`w^*=\mathbf 1`, as in the experiments of 2510.18259 [paper].
* :class:`SourcePrior`: Gaussian :math:`w^*` with :math:`\mathbb E w^*w^{*\top}=\mathrm{diag}(i^{a-b})`, so that
  :math:`\lambda_i\mathbb E w_i^{*2}\eqsim i^{-b}` (source condition); ``b = a`` is the isotropic prior
  :math:`\mathbb E w^*w^{*\top}=I` of Lin et al. 2024 [paper].
* :class:`ArrayTarget`: a user vector (finite :math:`d`).

Everything the exact engine needs from a target is its coordinate-wise second moment
:math:`\mathbb E w_i^{*2}` in the eigenbasis of :math:`H` (the risk is quadratic in :math:`w^*`, and only the
diagonal of :math:`\mathbb E w^*w^{*\top}` enters; see ``theory/exact-risk.md``) [derived].
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from . import _checks
from .errors import ParameterError
from .spectra import LogPowerLaw, PowerLaw, Spectrum

__all__ = ["ArrayTarget", "Ones", "SourcePrior", "Target", "make_target"]


class Target(ABC):
    """A target parameter, deterministic or drawn from a prior."""

    is_random: bool = False

    @abstractmethod
    def second_moments(self, spectrum: Spectrum, n: int) -> np.ndarray:
        r""":math:`\mathbb E w_i^{*2}` for :math:`i=1..n`."""

    @abstractmethod
    def tail_mass(self, spectrum: Spectrum, n: int) -> float:
        r"""Signal beyond the first ``n`` coordinates, :math:`\sum_{i>n}\lambda_i\mathbb E w_i^{*2}`."""

    @abstractmethod
    def draw(self, spectrum: Spectrum, n: int, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` draws of the first ``n`` coordinates, shape ``(size, n)`` (copies for fixed targets)."""

    def check(self, spectrum: Spectrum) -> None:  # noqa: B027 - optional hook
        """Validate against a spectrum (raises :class:`~scalinglaw.errors.ParameterError`)."""

    @property
    @abstractmethod
    def label(self) -> str: ...


@dataclass(frozen=True)
class Ones(Target):
    r""":math:`w^*=\mathbf 1` [paper: 2510.18259 experiments]."""

    def second_moments(self, spectrum: Spectrum, n: int) -> np.ndarray:
        return np.ones(int(n))

    def tail_mass(self, spectrum: Spectrum, n: int) -> float:
        return spectrum.tail_sum(n)

    def draw(self, spectrum: Spectrum, n: int, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.ones((size, int(n)))

    @property
    def label(self) -> str:
        return "ones"


@dataclass(frozen=True)
class SourcePrior(Target):
    r"""Gaussian prior :math:`w^*\sim\mathcal N(0,\mathrm{diag}(i^{a-b}))` (source condition, SPEC §1).

    Parameters
    ----------
    b : float or None
        Source exponent: :math:`\lambda_i\mathbb E w_i^{*2}=\lambda_1 i^{-b}` for a power law. ``None`` means
        ``b = a``, the isotropic prior of Lin et al. (the only choice for non-power-law spectra).
    """

    b: float | None = None
    is_random = True

    def __post_init__(self) -> None:
        if self.b is not None:
            b = _checks.as_float("b", self.b)
            if math.isinf(b):
                raise ParameterError("b", self.b, "be finite")
            object.__setattr__(self, "b", b)

    def exponent(self, spectrum: Spectrum) -> float:
        """The exponent :math:`a-b` of the prior variance :math:`i^{a-b}`."""
        if self.b is None:
            return 0.0
        if isinstance(spectrum, PowerLaw | LogPowerLaw) and self.b == spectrum.a:
            return 0.0
        if not isinstance(spectrum, PowerLaw):
            raise ParameterError("b", self.b, "be omitted (isotropic prior) unless the spectrum is a power law")
        return spectrum.a - self.b

    def check(self, spectrum: Spectrum) -> None:
        e = self.exponent(spectrum)
        if spectrum.is_infinite and isinstance(spectrum, PowerLaw) and not spectrum.a - e > 1:
            raise ParameterError("b", self.b, "be > 1 so that the signal of an infinite-dimensional target is finite")

    def second_moments(self, spectrum: Spectrum, n: int) -> np.ndarray:
        e = self.exponent(spectrum)
        i = np.arange(1, int(n) + 1, dtype=np.float64)
        return np.exp(e * np.log(i))

    def tail_mass(self, spectrum: Spectrum, n: int) -> float:
        return spectrum.tail_sum(n, target_exponent=self.exponent(spectrum))

    def draw(self, spectrum: Spectrum, n: int, rng: np.random.Generator, size: int) -> np.ndarray:
        sd = np.sqrt(self.second_moments(spectrum, n))
        return rng.standard_normal((size, int(n))) * sd

    @property
    def label(self) -> str:
        return "prior(b=a)" if self.b is None else f"prior(b={self.b:g})"


@dataclass(frozen=True)
class ArrayTarget(Target):
    """A user-given target vector in the eigenbasis of :math:`H` (finite ``d``)."""

    values: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        v = _checks.as_array("target", self.values).ravel()
        if not np.all(np.isfinite(v)):
            raise ParameterError("target", "non-finite entries", "be finite")
        v.setflags(write=False)
        object.__setattr__(self, "values", v)

    def check(self, spectrum: Spectrum) -> None:
        if spectrum.is_infinite or spectrum.d != self.values.size:
            raise ParameterError("target", f"length {self.values.size}", f"have length d={spectrum.d:g}")

    def second_moments(self, spectrum: Spectrum, n: int) -> np.ndarray:
        return self.values[: int(n)] ** 2

    def tail_mass(self, spectrum: Spectrum, n: int) -> float:
        lam = spectrum.eigenvalues()
        return float((lam[n:] * self.values[n:] ** 2).sum())

    def draw(self, spectrum: Spectrum, n: int, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.broadcast_to(self.values[: int(n)], (size, int(n))).copy()

    @property
    def label(self) -> str:
        return f"array(d={self.values.size})"


def make_target(kind: str | Target | np.ndarray, b: float | None = None) -> Target:
    """Build a target from ``"ones"``, ``"prior"`` (with ``b``), an array or a :class:`Target`."""
    if isinstance(kind, Target):
        return kind
    if isinstance(kind, str):
        _checks.choice("target", kind, ["ones", "prior"])
        if kind == "ones":
            if b is not None:
                raise ParameterError("b", b, "be omitted unless target is 'prior'")
            return Ones()
        return SourcePrior(b)
    return ArrayTarget(np.asarray(kind))
