r"""Statistical helpers of the validation suite: fitted slopes with confidence intervals, z-tests, pairing.

Every pass/fail criterion of :mod:`scalinglaw.validate` is built from these functions, so that each one is a
statement in standard errors or about a confidence interval:

* :func:`power_fit` fits :math:`Y=cX^p` by weighted least squares on the Monte Carlo means and their standard
  errors (Gauss-Newton in linear space, so noisy points near zero are kept), and :func:`linear_fit` fits
  :math:`Y=c_0+c_1X`. The parameter covariance is :math:`(J^\top WJ)^{-1}` with
  :math:`W=\mathrm{diag}(\mathrm{SE}^{-2})`,
  inflated by the Birge ratio :math:`\sqrt{\chi^2/\nu}` when the scatter about the fit exceeds the standard errors
  (model misfit, e.g. pre-asymptotic curvature); intervals are normal at 95%.
* :func:`z_score` and :func:`bonferroni_z`: a difference in standard errors, and the family-wise threshold
  :math:`\max(3,\Phi^{-1}(1-\alpha/2m))` for :math:`m` simultaneous comparisons (:math:`\alpha=0.01`).
* :func:`paired` summarises per-replica differences of runs that share their random inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as _st

__all__ = [
    "Z95",
    "Estimate",
    "LineFit",
    "bonferroni_z",
    "interval_hits",
    "linear_fit",
    "paired",
    "power_fit",
    "ratio_estimate",
    "z_score",
]

#: Two-sided 95% normal quantile.
Z95 = float(_st.norm.ppf(0.975))


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo estimate: mean and standard error."""

    mean: float
    se: float

    def ci(self, z: float = Z95) -> tuple[float, float]:
        """Normal interval ``mean ± z se``."""
        return self.mean - z * self.se, self.mean + z * self.se

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "se": self.se}


@dataclass(frozen=True)
class LineFit:
    """A weighted fit with two parameters: ``slope`` and ``intercept`` (power fits: exponent and log-prefactor).

    Attributes
    ----------
    slope, intercept : float
        Point estimates.
    slope_se, intercept_se : float
        Standard errors (Birge-inflated when ``birge > 1``).
    chi2, dof : float, int
        Weighted residual sum of squares and degrees of freedom (points minus 2).
    birge : float
        :math:`\\max(1,\\sqrt{\\chi^2/\\nu})`, the factor applied to the standard errors.
    """

    slope: float
    intercept: float
    slope_se: float
    intercept_se: float
    chi2: float
    dof: int
    birge: float

    def slope_ci(self, z: float = Z95) -> tuple[float, float]:
        """The 95% interval of the slope (normal quantile)."""
        return self.slope - z * self.slope_se, self.slope + z * self.slope_se

    def intercept_ci(self, z: float = Z95) -> tuple[float, float]:
        return self.intercept - z * self.intercept_se, self.intercept + z * self.intercept_se

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.slope_ci()
        return {
            "slope": self.slope,
            "slope_se": self.slope_se,
            "slope_ci95": [lo, hi],
            "intercept": self.intercept,
            "intercept_se": self.intercept_se,
            "chi2": self.chi2,
            "dof": self.dof,
            "birge": self.birge,
        }


def _as(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).ravel()


def _finish(theta: np.ndarray, cov: np.ndarray, chi2: float, n: int) -> LineFit:
    dof = n - 2
    birge = max(1.0, math.sqrt(chi2 / dof)) if dof > 0 else 1.0
    se = np.sqrt(np.diag(cov)) * birge
    return LineFit(
        slope=float(theta[1]), intercept=float(theta[0]), slope_se=float(se[1]), intercept_se=float(se[0]),
        chi2=float(chi2), dof=int(dof), birge=float(birge),
    )


def linear_fit(x: Sequence[float], y: Sequence[float], se: Sequence[float]) -> LineFit:
    """Weighted least squares fit of ``y = intercept + slope * x`` with known standard errors ``se``.

    Parameters
    ----------
    x, y, se : array_like
        Abscissae, measured means and their standard errors (> 0). At least two points.

    Returns
    -------
    LineFit
    """
    x, y, s = _as(x), _as(y), _as(se)
    if x.size < 2 or not (x.size == y.size == s.size):
        raise ValueError("linear_fit needs at least two points with matching x, y and se")
    if np.any(~(s > 0)):
        raise ValueError("standard errors must be > 0")
    w = 1.0 / s**2
    X = np.column_stack([np.ones_like(x), x])
    A = X.T @ (X * w[:, None])
    cov = np.linalg.inv(A)
    theta = cov @ (X.T @ (w * y))
    chi2 = float(np.sum(w * (y - X @ theta) ** 2))
    return _finish(theta, cov, chi2, x.size)


def power_fit(x: Sequence[float], y: Sequence[float], se: Sequence[float], *, iterations: int = 50) -> LineFit:
    r"""Weighted least squares fit of :math:`y=e^{c}x^{p}` (``slope`` = :math:`p`, ``intercept`` = :math:`c`).

    The residuals are taken in linear space with the Monte Carlo standard errors as weights (Gauss-Newton from
    the log-log least squares start), so points whose mean is near zero or slightly negative are kept with
    their honest weight instead of being dropped by a logarithm. Equivalent, for small relative errors, to the
    log-log fit with :math:`\mathrm{SE}(\log y)=\mathrm{SE}(y)/y`.
    """
    x, y, s = _as(x), _as(y), _as(se)
    if x.size < 2 or not (x.size == y.size == s.size):
        raise ValueError("power_fit needs at least two points with matching x, y and se")
    if np.any(~(x > 0)) or np.any(~(s > 0)):
        raise ValueError("power_fit needs x > 0 and se > 0")
    lx = np.log(x)
    pos = y > 0
    if pos.sum() >= 2:
        start = linear_fit(lx[pos], np.log(y[pos]), s[pos] / y[pos])
        theta = np.array([start.intercept, start.slope])
    else:
        theta = np.array([math.log(max(abs(float(np.mean(y))), 1e-300)), 0.0])
    w = 1.0 / s**2
    for _ in range(iterations):
        f = np.exp(theta[0] + theta[1] * lx)
        J = np.column_stack([f, f * lx])
        A = J.T @ (J * w[:, None])
        step = np.linalg.solve(A, J.T @ (w * (y - f)))
        theta = theta + step
        if np.max(np.abs(step)) < 1e-12:
            break
    f = np.exp(theta[0] + theta[1] * lx)
    J = np.column_stack([f, f * lx])
    cov = np.linalg.inv(J.T @ (J * w[:, None]))
    chi2 = float(np.sum(w * (y - f) ** 2))
    return _finish(theta, cov, chi2, x.size)


def interval_hits(ci: tuple[float, float], target: float, tol: float = 0.0) -> bool:
    """Whether the interval ``ci`` intersects ``[target - tol, target + tol]``."""
    lo, hi = ci
    return bool(lo <= target + tol and hi >= target - tol)


def z_score(a: float, b: float, se: float) -> float:
    """``(a - b) / se`` (``inf`` with the sign of the difference when ``se`` is 0)."""
    if se > 0:
        return float((a - b) / se)
    return 0.0 if a == b else math.copysign(math.inf, a - b)


def bonferroni_z(m: int, alpha: float = 0.01) -> float:
    r"""Threshold in standard errors for ``m`` simultaneous two-sided tests: :math:`\max(3,\Phi^{-1}(1-\alpha/2m))`."""
    m = max(int(m), 1)
    return max(3.0, float(_st.norm.ppf(1.0 - alpha / (2.0 * m))))


def paired(a: Sequence[float], b: Sequence[float]) -> Estimate:
    """Mean and standard error of the per-replica differences ``a - b`` (runs that share their inputs)."""
    diff = _as(a) - _as(b)
    if diff.size < 2:
        raise ValueError("paired needs at least two replicas")
    return Estimate(float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(diff.size)))


def ratio_estimate(a: Sequence[float], b: Sequence[float]) -> Estimate:
    r"""``mean(a)/mean(b) - 1`` with its delta-method standard error, for paired replicas ``a`` and ``b``.

    :math:`\mathrm{Var}(\bar a/\bar b)\approx(\mathrm{Var}\,a-2r\,\mathrm{Cov}(a,b)+r^2\mathrm{Var}\,b)/(n\bar b^2)`,
    :math:`r=\bar a/\bar b`.
    """
    a, b = _as(a), _as(b)
    n = a.size
    ma, mb = float(a.mean()), float(b.mean())
    r = ma / mb
    cov = np.cov(np.vstack([a, b]), ddof=1)
    var = (cov[0, 0] - 2.0 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * mb * mb)
    return Estimate(r - 1.0, float(math.sqrt(max(var, 0.0))))
