r"""Stable divided differences of :math:`f(x)=x^n` for huge :math:`n` [derived].

The closed-form engine writes every sum over SGD steps as a divided difference of :math:`x^n` on the
contraction factors of the modes, e.g. :math:`\sum_{s<n}p^s=f[p,1]` or
:math:`\sum_{s<n}D^{n-1-s}p^s=f[D,p]`. Nodes sit within :math:`10^{-12}` of 1 (slow modes) and close to each
other (near-resonant modes), where the textbook quotient :math:`(a^n-b^n)/(a-b)` cancels catastrophically.

Nodes are passed as **complements** :math:`\xi=1-x` so that slow modes keep their relative accuracy
(:math:`x^n=\exp(n\,\mathrm{log1p}(-\xi))`). Three regimes:

* well separated (:math:`n|\log(x_b/x_a)|>1`): the quotient loses at most a factor
  :math:`1/(1-e^{-1})`;
* confluent, first order: :math:`f[a,b]=a^{n-1}\,\mathrm{expm1}(n\,\mathrm{log1p}(t))/t`, :math:`t=(b-a)/a`;
* confluent, second order: Faà di Bruno for divided differences of :math:`F\circ g` with :math:`F=e^{ny}`,
  :math:`g=\log`: :math:`f[x_0,x_1,x_2]=F[y_1,y_2]\,g[x_0,x_1,x_2]+F[y_0,y_1,y_2]\,g[x_0,x_1]\,g[x_0,x_2]`,
  each factor by a short convergent series.

:func:`divdiff_opitz` (Opitz: :math:`f[x_0..x_k]=(J^n)_{0k}` for the bidiagonal :math:`J`) is a slower general
reference, used for tests.
"""

from __future__ import annotations

import numpy as np

__all__ = ["divdiff1", "divdiff2", "divdiff_opitz", "powc"]

_SMALL_N = 24


def _log_abs(xi: np.ndarray) -> np.ndarray:
    """log|1 - xi| accurately for xi near 0."""
    with np.errstate(divide="ignore"):
        return np.where(xi < 1.0, np.log1p(-np.minimum(xi, 1.0)), np.log(np.abs(xi - 1.0)))


def powc(xi: np.ndarray, n: float) -> np.ndarray:
    """:math:`(1-\\xi)^n` for integer ``n >= 0`` (huge n fine)."""
    xi = np.asarray(xi, dtype=np.float64)
    if n == 0:
        return np.ones_like(xi)
    return _pow_from_log(xi, _log_abs(xi), n)


def divdiff1(n: int, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    r"""First divided difference :math:`f[a,b]=\sum_{s=0}^{n-1}a^{n-1-s}b^s` of :math:`x^n`.

    ``xa``, ``xb`` are complements :math:`1-a`, :math:`1-b` (broadcast).
    """
    xa, xb = np.asarray(xa, dtype=np.float64), np.asarray(xb, dtype=np.float64)
    shape = np.broadcast_shapes(xa.shape, xb.shape)
    if n <= 0:
        return np.zeros(shape)
    if n == 1:
        return np.ones(shape)
    # logs and powers on the unbroadcast nodes (an outer call then costs O(rows + cols) transcendentals)
    la0, lb0 = _log_abs(xa), _log_abs(xb)
    pa0, pb0 = _pow_from_log(xa, la0, n), _pow_from_log(xb, lb0, n)
    xa, xb, la, lb, pa, pb = np.broadcast_arrays(xa, xb, la0, lb0, pa0, pb0)
    a = 1.0 - xa
    same = ((xa < 1.0) & (xb < 1.0)) | ((xa > 1.0) & (xb > 1.0))
    close = same & (n * np.abs(lb - la) <= 1.0)
    # separated: plain quotient (computed everywhere, densely, then replaced where close)
    den = xb - xa
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den != 0.0, (pa - pb) / np.where(den != 0.0, den, 1.0), 0.0)
    if np.any(close):
        ac = np.abs(a[close])
        t = (np.abs(1.0 - xb[close]) - ac) / ac  # relative gap, computed from complements
        t = np.where(np.abs(t) < 1.0, (xa[close] - xb[close]) / (1.0 - xa[close]), t)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(t != 0.0, np.expm1(n * np.log1p(t)) / np.where(t != 0.0, t, 1.0), float(n))
        val = np.exp((n - 1) * la[close]) * ratio
        neg = xa[close] > 1.0
        if (n - 1) % 2 == 1:
            val = np.where(neg, -val, val)
        out[close] = val
    return out


def _pow_from_log(xi: np.ndarray, log_abs: np.ndarray, n: int) -> np.ndarray:
    """:func:`powc` given ``log|1 - xi|``."""
    mag = np.exp(n * log_abs)
    if int(n) % 2 == 1:
        return np.where(xi > 1.0, -mag, mag)
    return mag


def _h_direct(k: int, x0: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """Complete homogeneous polynomial h_k(x0, x1, x2) by recurrence (small k)."""
    h2 = np.ones_like(x0)  # h_j(x1, x2)
    h3 = np.ones_like(x0)  # h_j(x0, x1, x2)
    p2 = np.ones_like(x0)
    for _ in range(k):
        p2 = p2 * x2
        h2 = p2 + x1 * h2
        h3 = h2 + x0 * h3
    return h3 if k >= 0 else np.zeros_like(x0)


def _exp_dd2(u: np.ndarray, v: np.ndarray, terms: int = 22) -> np.ndarray:
    """e^x[0, u, v] = sum_k h_k(u, v)/(k+2)! for |u|, |v| <= 1 (a zero node drops out of h_k)."""
    huv = np.ones_like(u)  # h_k(u, v)
    pv = np.ones_like(u)
    fact = 2.0
    out = huv / fact
    for k in range(1, terms):
        pv = pv * v
        huv = pv + u * huv
        fact *= k + 2
        out = out + huv / fact
    return out


def _log1p_dd2(e1: np.ndarray, e2: np.ndarray, terms: int = 24) -> np.ndarray:
    """log(1+e)[0, e1, e2] = sum_{k>=2} (-1)^(k+1)/k h_{k-2}(e1, e2) for small e."""
    huv = np.ones_like(e1)
    pv = np.ones_like(e1)
    out = -0.5 * huv
    for k in range(3, terms + 2):
        pv = pv * e2
        huv = pv + e1 * huv
        out = out + ((-1.0) ** (k + 1) / k) * huv
    return out


def divdiff2(n: int, x0: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    r"""Second divided difference :math:`f[a,b,c]=h_{n-2}(a,b,c)` of :math:`x^n` (complement nodes)."""
    x0, x1, x2 = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x0, x1, x2)))
    shape = x0.shape
    if n < 2:
        return np.zeros(shape)
    if n <= _SMALL_N:
        return _h_direct(n - 2, 1.0 - x0, 1.0 - x1, 1.0 - x2)
    neg = (x0 > 1.0) & (x1 > 1.0) & (x2 > 1.0)
    if np.any(neg):
        # all nodes negative: f[x0,x1,x2] = (-1)^n f[|x0|,|x1|,|x2|], and |x| = 1 - (2 - xi)
        out = np.empty(shape)
        out[~neg] = divdiff2(n, x0[~neg], x1[~neg], x2[~neg])
        sign = -1.0 if n % 2 else 1.0
        out[neg] = sign * divdiff2(n, 2.0 - x0[neg], 2.0 - x1[neg], 2.0 - x2[neg])
        return out
    # sort by node value x = 1 - xi: descending xi gives ascending x
    xs = np.sort(np.stack([x0, x1, x2]), axis=0)[::-1]
    c0, c1, c2 = xs[0], xs[1], xs[2]  # x(c0) <= x(c1) <= x(c2)
    out = np.empty(shape)
    pos = c0 < 1.0
    lo = _log_abs(c0)
    hi = _log_abs(c2)
    conf = pos & (n * (hi - lo) <= 1.0)
    gen = ~conf
    if np.any(gen):
        g0, g1, g2 = c0[gen], c1[gen], c2[gen]
        num = divdiff1(n, g1, g2) - divdiff1(n, g0, g1)
        den = g0 - g2  # x2 - x0 in node values
        with np.errstate(invalid="ignore", divide="ignore"):
            out[gen] = np.where(den != 0.0, num / np.where(den != 0.0, den, 1.0), 0.0)
        # all three nodes equal and not confluent-positive (e.g. zero or negative): f''/2
        eq = den == 0.0
        if np.any(eq):
            xv = 1.0 - g0[eq]
            tmp = out[gen]
            tmp[eq] = 0.5 * n * (n - 1) * np.sign(xv) ** (n - 2) * np.abs(xv) ** (n - 2)
            out[gen] = tmp
    if np.any(conf):
        a0, a1, a2 = c0[conf], c1[conf], c2[conf]
        xv0 = 1.0 - a0
        e1 = (a0 - a1) / xv0
        e2 = (a0 - a2) / xv0
        with np.errstate(invalid="ignore", divide="ignore"):
            g01 = np.where(e1 != 0.0, np.log1p(e1) / np.where(e1 != 0.0, e1, 1.0), 1.0) / xv0
            g02 = np.where(e2 != 0.0, np.log1p(e2) / np.where(e2 != 0.0, e2, 1.0), 1.0) / xv0
        g012 = _log1p_dd2(e1, e2) / (xv0 * xv0)
        y0, y1 = _log_abs(a0), _log_abs(a1)
        d12 = np.log1p((a1 - a2) / (1.0 - a1))
        z = n * d12
        with np.errstate(invalid="ignore", divide="ignore"):
            phi1 = np.where(z != 0.0, np.expm1(z) / np.where(z != 0.0, z, 1.0), 1.0)
        F12 = n * np.exp(n * y1) * phi1
        u = n * np.log1p(e1)
        v = n * np.log1p(e2)
        F012 = float(n) * n * np.exp(n * y0) * _exp_dd2(u, v)
        out[conf] = F12 * g012 + F012 * g01 * g02
    return out


def divdiff_opitz(n: int, nodes: np.ndarray) -> np.ndarray:
    r"""General divided difference :math:`f[x_0,\dots,x_k]` of :math:`x^n` by the Opitz formula.

    ``nodes`` has shape ``(..., k+1)`` of complements. Computes :math:`(J^n)_{0k}` for the upper bidiagonal
    :math:`J` (nodes on the diagonal, ones above) by binary powering; exact-sign positive sums for nodes in
    (0, 1], so accurate there. Slow: a reference for tests.
    """
    xi = np.asarray(nodes, dtype=np.float64)
    k1 = xi.shape[-1]
    x = 1.0 - xi
    batch = xi.shape[:-1]
    J = np.zeros((*batch, k1, k1))
    idx = np.arange(k1)
    J[..., idx, idx] = x
    J[..., idx[:-1], idx[:-1] + 1] = 1.0
    result = np.broadcast_to(np.eye(k1), J.shape).copy()
    base = J
    m = int(n)
    while m:
        if m & 1:
            result = result @ base
        m >>= 1
        if m:
            base = base @ base
    return result[..., 0, k1 - 1]
