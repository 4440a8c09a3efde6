r"""Special functions that close power-law sums, symbolically and numerically [derived].

* :class:`PowerHead` :math:`(p,k)=\sum_{i=1}^{k}i^{-p}=\zeta(p)-\zeta(p,k+1)` for real :math:`k\ge0` and every
  real :math:`p` (analytic continuation of the Hurwitz zeta function; :math:`p=1` gives
  :math:`\psi(k+1)+\gamma_E`). Head sums of growing terms (:math:`p<1`) are what the bias of SGD needs, and
  ``scipy.special.zeta`` returns NaN there, so the NumPy back end is an Euler-Maclaurin expansion written for
  the difference :math:`\zeta(p,1)-\zeta(p,k+1)`, uniformly accurate in :math:`p` (no pole at 1).
* :class:`PowerTail` :math:`(p,k,d)=\sum_{k<i\le d}i^{-p}=\zeta(p,k+1)-\zeta(p,d+1)`; :math:`d=\infty` needs
  :math:`p>1`.
* :class:`Hyp2F1`: Gauss's hypergeometric function, for integral forms such as
  :math:`\int_0^M\frac{dx}{1+\epsilon x^a}=M\,{}_2F_1(1,\tfrac1a;1+\tfrac1a;-\epsilon M^a)`.
* :class:`SketchApproximation` :math:`(a,b,M,d)`: the deterministic equivalent of a Gaussian sketch's
  approximation error, :math:`\sum_{i\le d}i^{-b}\kappa/(i^{-a}+\kappa)` with :math:`\kappa` the renormalised
  ridge, :math:`\sum_{i\le d}i^{-a}/(i^{-a}+\kappa)=M`.

Each class evaluates with mpmath at any precision (``evalf``) and maps to a vectorised NumPy function in
:data:`NUMPY_FUNCTIONS` for ``lambdify``. Never lambdify an unevaluated ``Sum``: these close it.
"""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np
import sympy as sp
from scipy import special as sc

__all__ = [
    "NUMPY_FUNCTIONS",
    "Hyp2F1",
    "PowerHead",
    "PowerTail",
    "SketchApproximation",
    "power_head",
    "power_tail",
    "sketch_approximation",
    "sketch_ridge",
]

# Euler-Maclaurin: K shifted terms, Bernoulli numbers B_2..B_16
_K = 10
_BERN = [float(sp.bernoulli(2 * j)) / math.factorial(2 * j) for j in range(1, 9)]


def _stable_pow_diff(x: np.ndarray, k: np.ndarray, e: np.ndarray) -> np.ndarray:
    """((x+k)^e - x^e) / e for x > 0, k >= 0, stable as e -> 0 (-> log1p(k/x)) and for k << x."""
    g = np.log1p(k / x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = x**e * np.expm1(e * g) / e
    return np.where(e == 0.0, g, out)


def _pow_gap(x: np.ndarray, k: np.ndarray, e: np.ndarray) -> np.ndarray:
    """x^e - (x+k)^e for x > 0, k >= 0, without cancellation when k << x."""
    return -(x**e) * np.expm1(e * np.log1p(k / x))


def _gap_sum(p: np.ndarray, x0: np.ndarray, L: np.ndarray) -> np.ndarray:
    r""":math:`\sum_{n\ge0}[(x_0+n)^{-p}-(x_0+L+n)^{-p}]=\zeta(p,x_0)-\zeta(p,x_0+L)` (analytic continuation).

    The first ``_K`` terms directly, the rest by Euler-Maclaurin at :math:`x_0+K`; every difference of powers is
    written with ``expm1``/``log1p``, so nothing cancels when :math:`L\ll x_0` or :math:`p\to1`. Arguments are
    broadcast float64 arrays with :math:`x_0\ge1`, :math:`0\le L<\infty`.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # overflow of growing terms: handled by the callers
        out = np.zeros(np.broadcast(p, x0, L).shape)
        for n in range(_K):  # one fixed order, so a grid gives exactly the scalar values
            out += _pow_gap(x0 + n, L, -p)
        x = x0 + _K
        out += _stable_pow_diff(x, L, 1.0 - p)
        out += 0.5 * _pow_gap(x, L, -p)
        rising = p.copy()  # (p)_{2j-1}
        for j, bj in enumerate(_BERN, start=1):
            if j > 1:
                rising = rising * (p + 2 * j - 3) * (p + 2 * j - 2)
            out += bj * rising * _pow_gap(x, L, -p - 2 * j + 1)
    return out


def power_head(p: np.ndarray, k: np.ndarray) -> np.ndarray:
    r""":math:`\sum_{i=1}^{k}i^{-p}` for real ``k >= 0`` and any real ``p`` (vectorised).

    Euler-Maclaurin for :math:`\zeta(p,1)-\zeta(p,1+k)`, with every difference of powers written as
    ``expm1``/``log1p`` so that small ``k`` and ``p`` near 1 keep full relative accuracy. Accuracy: about
    1e-13 relative, except for growing terms (``p < 0``) summed to ``k < 10``, where intermediates of size
    :math:`11^{1-p}` bound it by about :math:`10^{-15}\cdot 11^{1-p}` absolute.
    """
    p, k = np.broadcast_arrays(np.asarray(p, dtype=np.float64), np.asarray(k, dtype=np.float64))
    if np.any(k < 0):
        raise ValueError("power_head needs k >= 0")
    inf = np.isinf(k)
    out = _gap_sum(p, np.ones_like(p), np.where(inf, 1.0, k))
    if np.any(inf):
        with np.errstate(invalid="ignore"):
            full = np.where(p > 1.0, sc.zeta(np.where(p > 1.0, p, 2.0), 1.0), np.inf)
        out = np.where(inf, full, out)
    # growing terms summed past the float64 range: the intermediates give inf - inf, the sum is inf
    return np.where(np.isnan(out) & (p < 1.0) & (k > 1.0), np.inf, out)


def power_tail(p: np.ndarray, k: np.ndarray, d: np.ndarray) -> np.ndarray:
    r""":math:`\sum_{k<i\le d}i^{-p}` (``d`` may be ``inf``, which needs ``p > 1``); 0 when ``k >= d``.

    ``d = inf``: the Hurwitz zeta :math:`\zeta(p,k+1)` (SciPy). Finite ``d``: :math:`\zeta(p,k+1)-\zeta(p,d+1)`
    as one Euler-Maclaurin sum of differences (:func:`_gap_sum`), which keeps full relative accuracy when
    :math:`d-k\ll k`, where the difference of two zeta values would cancel.
    """
    p, k, d = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (p, k, d)))
    kk = np.minimum(k, d)
    out = np.full(p.shape, np.inf)
    inf = np.isinf(d)
    conv = inf & (p > 1.0)
    if np.any(conv):
        out[conv] = sc.zeta(p[conv], kk[conv] + 1.0)
    fin = ~inf
    if np.any(fin):
        vals = _gap_sum(p[fin], kk[fin] + 1.0, d[fin] - kk[fin])
        out[fin] = np.where(np.isnan(vals) & (p[fin] < 1.0), np.inf, vals)
    return np.where(kk >= d, 0.0, out)


def hyp2f1(a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Gauss hypergeometric 2F1 (SciPy)."""
    return sc.hyp2f1(a, b, c, z)


def _mp(x: sp.Basic, prec: int) -> mpmath.mpf:
    return x._to_mpmath(prec)  # type: ignore[attr-defined]


def _mp_hurwitz(s: mpmath.mpf, q: mpmath.mpf) -> mpmath.mpf:
    """Hurwitz zeta at working precision; large ``q`` with ``s < 1`` by Euler-Maclaurin (mpmath's own routine
    is very slow there), which converges fast for ``q > 1000``: remainder below ``q^(-s-41)``."""
    if s >= 1 or q <= 1000:
        return mpmath.zeta(s, q)
    tot = q ** (1 - s) / (s - 1) + q ** (-s) / 2
    for j in range(1, 21):
        tot += mpmath.bernoulli(2 * j) / mpmath.factorial(2 * j) * mpmath.rf(s, 2 * j - 1) * q ** (-s - 2 * j + 1)
    return tot


class PowerHead(sp.Function):
    r"""``PowerHead(p, k)`` :math:`=\sum_{i=1}^{k}i^{-p}` (real :math:`k`, analytic continuation)."""

    nargs = 2

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        p, k = self.args
        if not (p.is_number and k.is_number):
            return None
        with mpmath.workprec(prec):
            pm, km = _mp(p, prec), _mp(k, prec)
            if km == mpmath.inf:
                val = mpmath.zeta(pm) if pm > 1 else mpmath.inf
            elif pm == 1:
                val = mpmath.digamma(km + 1) + mpmath.euler
            else:
                val = mpmath.zeta(pm) - _mp_hurwitz(pm, km + 1)
            return sp.Expr._from_mpmath(val, prec)

    def _latex(self, printer: sp.printing.latex.LatexPrinter) -> str:
        p, k = self.args
        return rf"\sum_{{i\le {printer._print(k)}}} i^{{{printer._print(-p)}}}"


class PowerTail(sp.Function):
    r"""``PowerTail(p, k, d)`` :math:`=\sum_{k<i\le d}i^{-p}=\zeta(p,k+1)-\zeta(p,d+1)`."""

    nargs = 3

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        p, k, d = self.args
        if not all(a.is_number for a in self.args):
            return None
        with mpmath.workprec(prec):
            pm, km, dm = _mp(p, prec), _mp(k, prec), _mp(d, prec)
            if km >= dm:
                return sp.Float(0)
            if dm == mpmath.inf:
                val = mpmath.zeta(pm, km + 1)
            elif pm == 1:
                val = mpmath.digamma(dm + 1) - mpmath.digamma(km + 1)
            else:
                val = _mp_hurwitz(pm, km + 1) - _mp_hurwitz(pm, dm + 1)
            return sp.Expr._from_mpmath(val, prec)

    def _latex(self, printer: sp.printing.latex.LatexPrinter) -> str:
        p, k, d = self.args
        return rf"\sum_{{{printer._print(k)}<i\le {printer._print(d)}}} i^{{{printer._print(-p)}}}"


class Hyp2F1(sp.Function):
    r"""Gauss's hypergeometric function :math:`{}_2F_1(a,b;c;z)`."""

    nargs = 4

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        if not all(a.is_number for a in self.args):
            return None
        with mpmath.workprec(prec):
            val = mpmath.hyp2f1(*(_mp(a, prec) for a in self.args))
            return sp.Expr._from_mpmath(val, prec)

    def _latex(self, printer: sp.printing.latex.LatexPrinter) -> str:
        a, b, c, z = (printer._print(x) for x in self.args)
        return rf"{{}}_2F_1\left({a},{b};{c};{z}\right)"


# ------------------------------------------------------------------------------------ sketch: renormalised ridge
#: terms summed one by one before the integral takes over (midpoint rule; relative error ~ 1e-6 at this size)
_SKETCH_HEAD = 128
#: the ridge's root finder: at most this many secant/bisection steps, stopping at |log df - log M| <= _RIDGE_TOL
_RIDGE_ITERATIONS = 100
_RIDGE_TOL = 1e-13


def _far_integral(p: np.ndarray, a: np.ndarray, kappa: np.ndarray, x: np.ndarray) -> np.ndarray:
    r""":math:`\int_x^\infty t^{-p}\,\frac{\kappa t^a}{1+\kappa t^a}dt` for :math:`p>1` (``x = inf`` gives 0).

    With :math:`u=1/t`: :math:`\int_0^{1/x}u^{p-2}/(1+u^a/\kappa)\,du=\frac{U^{p-1}}{p-1}\,
    {}_2F_1(1,\tfrac{p-1}a;1+\tfrac{p-1}a;-U^a/\kappa)`, :math:`U=1/x`: every parameter positive, no cancellation.
    """
    U = np.where(np.isinf(x), 0.0, 1.0 / np.where(np.isinf(x), 1.0, x))
    beta = (p - 1.0) / a
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        z = -np.where(U > 0, U**a / kappa, 0.0)
        out = U ** (p - 1.0) / (p - 1.0) * sc.hyp2f1(1.0, beta, 1.0 + beta, z)
    return np.where(U > 0, out, 0.0)


def _ridge_sum(p: np.ndarray, a: np.ndarray, kappa: np.ndarray, d: np.ndarray, weight_kappa: bool) -> np.ndarray:
    r""":math:`\sum_{i\le d}i^{-p}g_i` with :math:`g_i=\kappa/(i^{-a}+\kappa)` (``weight_kappa``) or
    :math:`g_i=i^{-a}/(i^{-a}+\kappa)` (then ``p`` is ignored: the degrees of freedom). The first
    :data:`_SKETCH_HEAD` terms one by one, the rest as the midpoint-rule integral from ``K + 1/2`` to ``d + 1/2``."""
    K = _SKETCH_HEAD
    i = np.arange(1, K + 1, dtype=np.float64)
    shape = np.broadcast(p, a, kappa, d).shape
    p, a, kappa, d = (np.broadcast_to(v, shape)[..., None] for v in (p, a, kappa, d))
    lam = i ** (-a)
    g = kappa / (lam + kappa) if weight_kappa else lam / (lam + kappa)
    terms = (i ** (-p) if weight_kappa else 1.0) * g
    head = np.sum(np.where(i <= d, terms, 0.0), axis=-1)
    p, a, kappa, d = (v[..., 0] for v in (p, a, kappa, d))
    lo, hi = np.full(shape, K + 0.5), d + 0.5
    if weight_kappa:
        far = _far_integral(p, a, kappa, lo) - _far_integral(p, a, kappa, hi)
    else:
        # sum_{i} 1/(1 + kappa i^a) = sum_i i^{-a} (1/kappa) kappa/(i^{-a}+kappa): the same integral, p = a
        far = (_far_integral(a, a, kappa, lo) - _far_integral(a, a, kappa, hi)) / kappa
    return head + np.where(d > K, far, 0.0)


def sketch_ridge(a: np.ndarray, M: np.ndarray, d: np.ndarray) -> np.ndarray:
    r"""The renormalised ridge :math:`\kappa` of a Gaussian sketch of size :math:`M` of the spectrum
    :math:`i^{-a}`, :math:`i\le d`: the root of :math:`\mathrm{df}(\kappa)=\sum_{i\le d}\frac{i^{-a}}{i^{-a}+\kappa}=M`
    (0 when :math:`M\ge d`) [derived; the fixed point of the deterministic equivalent, theory/sketched.md].

    :math:`h(t)=\log\mathrm{df}(e^t)-\log M` decreases in :math:`t=\log\kappa`, nearly linearly (slope
    :math:`-1/a` for :math:`d=\infty`): secant steps from the :math:`d=\infty` estimate
    :math:`\kappa\approx(\pi/(a\sin(\pi/a))/M)^a`, kept inside a bracket (bisection when a step leaves it). Each
    element stops once :math:`|h|\le10^{-13}` (``df`` within :math:`10^{-13}` relative of ``M``), so a grid gives
    the same bits as scalar calls."""
    a, M, d = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, M, d)))
    full = M >= d
    Ms = np.where(full, 0.5, np.maximum(M, 1e-6))  # M -> 0: kappa -> inf, nothing captured
    dd = np.where(full, 1.0, d)
    log_m = np.log(Ms)

    def h(t: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):  # df underflows to 0 far above the root: h = -inf, still a bracket
            return np.log(_ridge_sum(a, a, np.exp(t), dd, weight_kappa=False)) - log_m

    t = np.log((np.pi / (a * np.sin(np.pi / a)) / Ms) ** a)
    lo, hi = t - 40.0, t + 40.0  # h(lo) > 0 > h(hi): df runs from about d down to 0
    ht = h(t)
    slope = -1.0 / a
    for _ in range(_RIDGE_ITERATIONS):
        done = np.abs(ht) <= _RIDGE_TOL
        if np.all(done):
            break
        lo = np.where(ht > 0, t, lo)
        hi = np.where(ht < 0, t, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = t - ht / slope
        step = np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
        t_new = np.where(done, t, step)
        h_new = np.where(done, ht, h(t_new))
        moved = t_new != t
        with np.errstate(divide="ignore", invalid="ignore"):
            secant = (h_new - ht) / (t_new - t)
        slope = np.where(moved & (secant < 0) & np.isfinite(secant), secant, slope)
        t, ht = t_new, h_new
    return np.where(full, 0.0, np.exp(t))


def sketch_approximation(a: np.ndarray, b: np.ndarray, M: np.ndarray, d: np.ndarray) -> np.ndarray:
    r"""Deterministic equivalent of :math:`\mathbb E_S\,\mathrm{Approx}` for a Gaussian sketch [derived]:
    :math:`\sum_{i\le d}i^{-b}\frac{\kappa}{i^{-a}+\kappa}`, :math:`\kappa=` :func:`sketch_ridge` ``(a, M, d)``
    (``b > 1`` when ``d = inf``). 0 when :math:`M\ge d`."""
    a, b, M, d = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, M, d)))
    kappa = sketch_ridge(a, M, d)
    full = kappa <= 0
    out = _ridge_sum(b, a, np.where(full, 1.0, kappa), d, weight_kappa=True)
    return np.where(full, 0.0, out)


def _mp_ridge_sum(p: Any, a: Any, kappa: Any, d: Any, weight_kappa: bool) -> Any:
    """:func:`_ridge_sum` at working precision (the same head and midpoint-rule integral)."""
    K = _SKETCH_HEAD
    head = mpmath.fsum(
        (i ** (-p) if weight_kappa else 1) * (kappa if weight_kappa else i ** (-a)) / (i ** (-a) + kappa)
        for i in range(1, int(min(K, d)) + 1))
    if d <= K:
        return head

    def far(q: Any, x: Any) -> Any:
        if x == mpmath.inf:
            return mpmath.mpf(0)
        U = 1 / x
        beta = (q - 1) / a
        return U ** (q - 1) / (q - 1) * mpmath.hyp2f1(1, beta, 1 + beta, -(U**a) / kappa)

    if weight_kappa:
        return head + far(p, K + mpmath.mpf(1) / 2) - far(p, d + mpmath.mpf(1) / 2)
    return head + (far(a, K + mpmath.mpf(1) / 2) - far(a, d + mpmath.mpf(1) / 2)) / kappa


def _mp_sketch_approximation(a: Any, b: Any, M: Any, d: Any) -> Any:
    """:func:`sketch_approximation` at working precision (bisection in log kappa to the working precision)."""
    if M >= d:
        return mpmath.mpf(0)
    M = max(M, mpmath.mpf("1e-6"))
    # start from the float64 root, then the secant method at working precision (df is smooth in log kappa)
    t0 = mpmath.log(mpmath.mpf(float(sketch_ridge(float(a), float(M), float(d)))))
    def f(t: Any) -> Any:
        return _mp_ridge_sum(a, a, mpmath.exp(t), d, weight_kappa=False) - M

    t_prev, t = t0, t0 + mpmath.mpf("1e-6")
    f_prev, f_t = f(t_prev), f(t)
    for _ in range(60):
        if f_t == f_prev:
            break
        t_prev, t = t, t - f_t * (t - t_prev) / (f_t - f_prev)
        f_prev, f_t = f_t, f(t)
        if abs(t - t_prev) <= mpmath.mpf(2) ** (-mpmath.mp.prec + 4) * max(1, abs(t)):
            break
    return _mp_ridge_sum(b, a, mpmath.exp(t), d, weight_kappa=True)


class SketchApproximation(sp.Function):
    r"""``SketchApproximation(a, b, M, d)``: :func:`sketch_approximation` (deterministic equivalent of the
    approximation error of a Gaussian sketch of size :math:`M`)."""

    nargs = 4

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        if not all(x.is_number for x in self.args):
            return None
        with mpmath.workprec(prec):
            val = _mp_sketch_approximation(*(_mp(x, prec) for x in self.args))
            return sp.Expr._from_mpmath(val, prec)

    def _latex(self, printer: sp.printing.latex.LatexPrinter) -> str:
        a, b, M, d = (printer._print(x) for x in self.args)
        return (rf"\sum_{{i\le {d}}} i^{{-{b}}}\frac{{\kappa_{{{M}}}}}{{i^{{-{a}}}+\kappa_{{{M}}}}}")


#: Name -> NumPy implementation, passed first in lambdify's ``modules``.
NUMPY_FUNCTIONS = {"PowerHead": power_head, "PowerTail": power_tail, "Hyp2F1": hyp2f1,
                   "SketchApproximation": sketch_approximation}
