r"""Closed-form exact risk: cost per constant-step phase independent of the number of steps [derived].

Within a phase the centred moment map (:class:`~scalinglaw.dynamics.StepMap`) is

.. math::

    \tilde m_{s+1}=D\tilde m_s,\qquad a_{s+1}=Pa_s+R'\tilde m_s+c',\qquad
    P=I-K,\quad K=\mathrm{diag}(\kappa)-\beta hh^\top,\quad R'=\mathrm{diag}(r)+h\rho^\top .

With :math:`K=U\mathrm{diag}(k)U^\top`, :math:`p=1-k`, the fixed point :math:`a_\infty=K^{-1}c'` (Sherman-Morrison)
and :math:`\Omega_{jm}=(U^\top R')_{jm}\tilde m_{0,m}`,

.. math::

    U^\top a_s=p^s\odot U^\top(a_0-a_\infty)+U^\top a_\infty
    +\sum_m\Omega_{jm}\,f_s[p_j,D_m],\qquad f_s(x)=x^s .

Every quantity the outputs need (the state after :math:`n` steps, :math:`\sum_{s<n}a_s`,
:math:`\sum_{s<n}D^{n-s}a_s`, :math:`\sum_{s<n}\tilde m_s`) is then a divided difference of :math:`x^n` on the
contraction factors, evaluated stably by :mod:`~scalinglaw.exact.divdiff`. Pairs :math:`(j,m)` far from
resonance (:math:`|p_j-D_m|\ge\tau\max(k_j,1-D_m,1/n)`) are split by partial fractions into plain geometric
modes (one matrix product); near-resonant pairs keep the divided-difference form, summed by separable binomial
series where all their nodes are within a few :math:`1/n` of 1. The within-phase pair sum
:math:`\sum_{s<t<n}D^{t-s}a_s` of averaged outputs is :math:`(D\sum_sa_s-\sum_sD^{n-s}a_s)/(1-D)` for fast
coordinates and, for slow ones (:math:`n(1-D)<1`, where that quotient keeps only :math:`n(1-D)` of the digits),
:math:`D\sum_{\text{modes}}c\,f_n[x,1,D]`: divided differences with the node 1. The cost is
:math:`O(d^2)` per phase for the eigendecomposition (secular equation, :mod:`~scalinglaw.exact.secular`) and
the divided differences, plus one :math:`O(d^3)` matrix product (BLAS) when multiplicative noise couples the second
moments to the mean.
"""

from __future__ import annotations

import numpy as np

from ..dynamics import StepMap
from .divdiff import divdiff1, divdiff2, powc
from .secular import eig_diag_minus_rank_one
from .window import Moments, averaging_window

__all__ = ["PhaseSolver", "spectral_moments"]

#: Relative gap below which a (p_j, D_m) pair is treated as resonant.
RESONANCE_TOL = 1e-4


#: A phase is "slow" when n * (largest rate) is at most this: its Taylor series in n K converges, with rounding
#: error ~ eps * exp(SLOW_PHASE) (2e-13 at 8), and replaces the near-resonant divided differences that abound there.
SLOW_PHASE = 8.0


class PhaseSolver:
    """Closed-form propagation of the centred moments through one constant-step phase."""

    def __init__(self, step: StepMap) -> None:
        self.step = step
        self.e = step.gamma * step.rate  # complements of D
        self.coupled = step.coupled
        # the largest rate of K = diag(kappa) - beta h h^T is below max(kappa) (a negative rank-one update)
        self.max_rate = float(max(np.max(step.kappa), np.max(self.e)))

    def _spectral(self) -> None:
        if hasattr(self, "U"):
            return
        step, h = self.step, self.step.h
        k, U = eig_diag_minus_rank_one(step.kappa, step.beta, h)
        self.k, self.U = k, U
        # a_inf = K^{-1} c' by Sherman-Morrison (accurate for slow coordinates, unlike via k)
        z1 = step.c / step.kappa
        z2 = h / step.kappa
        self.a_inf = z1 + step.beta * z2 * (h @ z1) / (1.0 - step.beta * (h @ z2))
        self.y_inf = U.T @ self.a_inf
        self.eta = U.T @ h

    # ------------------------------------------------------------------------------------------------ helpers
    def _coupling(self, m0: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Split Omega into partial-fraction amplitudes X (non-resonant) and resonant triples."""
        st = self.step
        Om = (self.U.T * st.r[None, :] + np.outer(self.eta, st.rho)) * m0[None, :]
        gap = self.e[None, :] - self.k[:, None]  # p_j - D_m
        scale = np.maximum(np.maximum(self.k[:, None], self.e[None, :]), 1.0 / max(n, 1))
        res = np.abs(gap) < RESONANCE_TOL * scale
        with np.errstate(divide="ignore", invalid="ignore"):
            X = np.where(res, 0.0, Om / np.where(res, 1.0, gap))
        jr, mr = np.nonzero(res)
        return X, jr, mr, Om[jr, mr]

    def segment(
        self, m0: np.ndarray, a0: np.ndarray, n: int, forcing: np.ndarray, *, sums: bool = True
    ) -> dict[str, np.ndarray]:
        """Advance ``n`` steps from ``(m0, a0)`` (leading axis: initial conditions, each with its ``forcing``
        multiplier of the constant ``c'``, 0 or 1).

        Returns ``m``, ``a`` after ``n`` steps and, with ``sums``, ``Sa`` = sum_{s<n} a_s,
        ``Ea`` = sum_{s<n} D^(n-s) a_s, ``within`` = sum_{s<t<n} D^(t-s) a_s and ``Sm`` = sum_{s<n} m_s.
        """
        if n * self.max_rate <= SLOW_PHASE:
            return _taylor_segment(self.step, m0, a0, n, forcing, sums, _taylor_order(n * self.max_rate))
        self._spectral()
        U, k, e = self.U, self.k, self.e
        D = 1.0 - e
        pn, Dn = powc(k, n), powc(e, n)
        f = np.asarray(forcing, dtype=np.float64)
        yhat = a0 @ U - f[:, None] * self.y_inf  # (I, d)
        out_a = np.empty_like(a0)
        out = {"m": Dn * m0}
        if sums:
            Sa = np.empty_like(a0)
            Ea = np.empty_like(a0)
            Wa = np.empty_like(a0)
            slow_rows = n * e < WITHIN_SLOW
            gk = divdiff1(n, k, 0.0)  # sum_{s<n} p^s
            ge = divdiff1(n, e, 0.0)  # sum_{s<n} D^s
            M1 = divdiff1(n, e[:, None], k[None, :])  # sum_s D_i^(n-1-s) p_j^s
        for ic in range(a0.shape[0]):
            a_inf = f[ic] * self.a_inf
            y = yhat[ic].copy()
            coupled = self.coupled and np.any(m0[ic] != 0.0)
            if coupled:
                X, jr, mr, om = self._coupling(m0[ic], n)
                if jr.size > max(64, n // 4):
                    # Near-resonances everywhere (a slow phase): stepping is cheaper than O(d |res|) terms.
                    r = _step_segment(self.step, m0[ic : ic + 1], a0[ic : ic + 1], n, f[ic : ic + 1], sums)
                    out_a[ic] = r["a"][0]
                    if sums:
                        Sa[ic], Ea[ic], Wa[ic] = r["Sa"][0], r["Ea"][0], r["within"][0]
                    continue
                y += X.sum(axis=1)
            a_n = a_inf + U @ (pn * y)
            if coupled:
                a_n -= U @ (X @ Dn)
                F = divdiff1(n, k[jr], e[mr])  # f[p_j, D_m] of the resonant pairs
                if jr.size:
                    a_n += U @ np.bincount(jr, om * F, minlength=k.size)
            out_a[ic] = a_n
            if not sums:
                continue
            s_a = n * a_inf + U @ (gk * y)
            e_a = a_inf * D * ge + D * ((U * M1) @ y)
            E = M2 = None
            if coupled:
                s_a -= U @ (X @ ge)
                E = U @ X
                M2 = divdiff1(n, e[:, None], e[None, :])
                e_a -= D * np.einsum("im,im->i", E, M2)
                if jr.size:
                    s_a += U @ np.bincount(jr, om * divdiff2(n, k[jr], e[mr], 0.0), minlength=k.size)
                    e_a += D * _resonant_pairs_sum(n, U, e, k, M1, jr, mr, om, F)
            Sa[ic] = s_a
            Ea[ic] = e_a
            # within = sum_{s<t<n} D^(t-s) a_s = (D Sa - Ea) / e keeps about n e of the digits: rows with
            # n e < WITHIN_SLOW take it from divided differences with the node 1 instead
            with np.errstate(divide="ignore", invalid="ignore"):
                w_a = (D * s_a - e_a) / e
            if np.any(slow_rows):
                R = slow_rows
                val = a_inf[R] * _dd2_one_one(n, n * e[R])
                val += (U[R] * _dd2_with_one(n, e[R], k, ge[R], M1[R])) @ y  # f[p_j, 1, D_i]
                if coupled:
                    N2 = _dd2_with_one(n, e[R], e, ge[R], M2[R])  # f[D_m, 1, D_i]
                    val -= np.einsum("im,im->i", E[R], N2)
                    if jr.size:
                        val += _resonant_pairs_third(n, U[R], e[R], k, e, M1[R], N2, jr, mr, om, F)
                w_a[R] = D[R] * val
            Wa[ic] = w_a
        out["a"] = out_a
        if sums:
            out["Sa"], out["Ea"], out["Sm"], out["within"] = Sa, Ea, m0 * ge, Wa
        return out


#: Resonant pairs per block of the O(nodes x pairs) sum in :func:`_resonant_pairs_sum` (bounds its memory).
PAIR_BLOCK = 2048


def _resonant_pairs_sum(
    n: int, U: np.ndarray, e: np.ndarray, k: np.ndarray, M1: np.ndarray, jr: np.ndarray, mr: np.ndarray,
    om: np.ndarray, F: np.ndarray | None = None,
) -> np.ndarray:
    r""":math:`\sum_rU_{i,j_r}\,f_n[D_i,p_{j_r},D_{m_r}]\,\Omega_r` for every :math:`i`, in blocks of pairs (memory
    :math:`O(d\cdot` ``PAIR_BLOCK``:math:`)` instead of :math:`O(d\cdot|\text{pairs}|)`).

    With :math:`p_j\approx D_m` (a resonant pair) the second divided difference is the quotient
    :math:`(f[D_i,p_j]-f[p_j,D_m])/(D_i-D_m)` of first ones already at hand (``M1`` and the pair's own), accurate
    unless :math:`D_i` is itself close to the pair (:math:`n|e_i-e_m|\le1`), where the confluent formula of
    :func:`~scalinglaw.exact.divdiff.divdiff2` is used. Slow pairs and slow rows (all three complements at most
    a few :math:`1/n`), where the confluent cases crowd, go through the separable series of
    :func:`_slow_pairs_sum`, and the other rows of slow pairs through :func:`_fast_rows_slow_pairs_sum`: both cost
    a matrix product instead of a term per (row, pair). ``F`` holds the pairs' :math:`f_n[p_j,D_m]` (computed if
    not given).
    """
    if F is None:
        F = divdiff1(n, k[jr], e[mr])
    out = np.zeros(e.size)
    slow_pair = _slow_pairs(n, k, e, jr, mr)
    slow_row = (e >= 0.0) & (n * e <= SLOW_PAIR + 1.0)
    if np.any(slow_pair) and np.any(slow_row):
        s = slow_pair
        out[slow_row] = _slow_pairs_sum(n, U[slow_row], e[slow_row], k, e, jr[s], mr[s], om[s])
        rows = ~slow_row
        out[rows] = _fast_rows_slow_pairs_sum(n, U[rows], M1[rows], e[rows], k, e, jr[s], mr[s], om[s], F[s])
        jr, mr, om, F = jr[~s], mr[~s], om[~s], F[~s]
    return out + _quotient_pairs_sum(n, U, e, k, e, M1, jr, mr, om, F)


def _slow_pairs(n: int, k: np.ndarray, e: np.ndarray, jr: np.ndarray, mr: np.ndarray) -> np.ndarray:
    """The resonant pairs whose nodes are both within ``SLOW_PAIR / n`` of 1 (the separable series' domain)."""
    return (k[jr] >= 0.0) & (e[mr] >= 0.0) & (n * np.maximum(k[jr], e[mr]) <= SLOW_PAIR)


def _quotient_pairs_sum(
    n: int, U: np.ndarray, e_rows: np.ndarray, k: np.ndarray, e: np.ndarray, M1: np.ndarray, jr: np.ndarray,
    mr: np.ndarray, om: np.ndarray, F: np.ndarray,
) -> np.ndarray:
    """The rows ``e_rows`` of :func:`_resonant_pairs_sum` by the quotient of first divided differences (the
    confluent formula where a row is close to the pair)."""
    out = np.zeros(e_rows.size)
    if not jr.size or not e_rows.size:
        return out
    for lo in range(0, jr.size, PAIR_BLOCK):
        j, m = jr[lo : lo + PAIR_BLOCK], mr[lo : lo + PAIR_BLOCK]
        T = _pair_dd2(n, e_rows, k, e, M1, F[lo : lo + PAIR_BLOCK], j, m)
        out += (U[:, j] * T) @ om[lo : lo + PAIR_BLOCK]
    return out


def _pair_dd2(
    n: int, e_rows: np.ndarray, k: np.ndarray, e: np.ndarray, M1: np.ndarray, F: np.ndarray, j: np.ndarray,
    m: np.ndarray,
) -> np.ndarray:
    """:math:`f_n[D_i,p_j,D_m]` for rows ``e_rows`` and pairs ``(j, m)`` (``M1`` the rows' :math:`f[D_i,p_j]`, ``F``
    the pairs' :math:`f[p_j,D_m]`)."""
    gap = e[m][None, :] - e_rows[:, None]  # D_i - D_m
    near = (n * np.abs(gap) <= 1.0) | (e_rows[:, None] >= 1.0) | (e[m][None, :] >= 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        T = (M1[:, j] - F[None, :]) / gap
    if np.any(near):
        ii, rr = np.nonzero(near)
        T[ii, rr] = divdiff2(n, e_rows[ii], k[j][rr], e[m][rr])
    return T


def _binomial_ratios(n: int, Q: int, N: int | None = None) -> np.ndarray:
    r""":math:`\binom Nq/n^q` for :math:`q=0..Q` (``N`` defaults to ``n``), exact for huge integers:
    :math:`(N-j)/n=1+(N-n-j)/n` with the integer :math:`N-n-j` exact."""
    N = n if N is None else N
    ratio = np.array([1.0 + float(N - n - j) / float(n) for j in range(Q)])
    return np.concatenate([[1.0], np.cumprod(ratio / np.arange(1.0, Q + 1.0))])


#: Terms of the binomial series of slow divided differences (:func:`_slow_pairs_sum`, :func:`_dd2_with_one`):
#: with every n * complement at most 2.5 the omitted terms are below 1e-18 relative.
SERIES_TERMS = 32

#: Rows with n * e below this take the within-phase pair sum from divided differences with the node 1.
WITHIN_SLOW = 1.0


def _dd2_one_one(n: int, z: np.ndarray) -> np.ndarray:
    r""":math:`f_n[1,1,x]` for complements :math:`\xi=z/n`, :math:`z\le` ``WITHIN_SLOW``:
    :math:`n^2\sum_{q\ge2}c_q(-z)^{q-2}`."""
    c = _binomial_ratios(n, SERIES_TERMS)
    out = np.zeros_like(z)
    for q in range(SERIES_TERMS, 1, -1):  # Horner
        out = out * (-z) + c[q]
    return float(n) ** 2 * out


def _dd2_with_one(n: int, e_rows: np.ndarray, x: np.ndarray, g_rows: np.ndarray, M_rows: np.ndarray) -> np.ndarray:
    r""":math:`f_n[x_j,1,D_i]` for slow rows (:math:`ne_i<` ``WITHIN_SLOW``) and every column [derived].

    ``x`` are the columns' complements, ``g_rows`` is :math:`f_n[D_i,1]` and ``M_rows`` :math:`f_n[D_i,x_j]`.
    Columns with :math:`n|\xi_j|\le2.5`: the separable binomial series
    :math:`n^2\sum_{a,b}z_i^az_j^b(-1)^{a+b}c_{a+b+2}` (all three nodes within :math:`2.5/n` of 1); the others:
    :math:`(f[D_i,1]-f[x_j,D_i])/\xi_j`, the quotient across the widest gap, which loses at most a factor 3 there.
    """
    nf = float(n)
    out = np.empty((e_rows.size, x.size))
    slow = np.abs(nf * x) <= 2.5
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, ~slow] = (g_rows[:, None] - M_rows[:, ~slow]) / x[None, ~slow]
    if np.any(slow):
        Q = SERIES_TERMS
        c = _binomial_ratios(n, Q)
        idx = np.arange(Q - 1)
        tot = idx[:, None] + idx[None, :]
        C = np.where(tot <= Q - 2, (-1.0) ** tot * c[np.minimum(tot + 2, Q)], 0.0)
        Zi = (nf * e_rows)[:, None] ** idx[None, :]
        Zj = (nf * x[slow])[:, None] ** idx[None, :]
        out[:, slow] = nf * nf * (Zi @ C @ Zj.T)
    return out


def _resonant_pairs_third(
    n: int, U: np.ndarray, e_rows: np.ndarray, k: np.ndarray, e: np.ndarray, M1: np.ndarray, N2: np.ndarray,
    jr: np.ndarray, mr: np.ndarray, om: np.ndarray, F: np.ndarray,
) -> np.ndarray:
    r""":math:`\sum_rU_{i,j_r}f_n[p_{j_r},D_{m_r},1,D_i]\Omega_r` for slow rows: the resonant pairs' part of the
    within-phase pair sum [derived].

    Slow pairs: the separable series of order 3 (:func:`_slow_pairs_sum`); the others:
    :math:`(f[D_m,1,D_i]-f[p_j,D_m,D_i])/k_j` (``N2`` holds the first), the quotient across the widest gap.
    """
    slow_pair = _slow_pairs(n, k, e, jr, mr)
    out = np.zeros(e_rows.size)
    if np.any(slow_pair):
        out += _slow_pairs_sum(n, U, e_rows, k, e, jr[slow_pair], mr[slow_pair], om[slow_pair], order=3)
    jr, mr, om, F = jr[~slow_pair], mr[~slow_pair], om[~slow_pair], F[~slow_pair]
    if jr.size:
        for lo in range(0, jr.size, PAIR_BLOCK):
            j, m = jr[lo : lo + PAIR_BLOCK], mr[lo : lo + PAIR_BLOCK]
            T = _pair_dd2(n, e_rows, k, e, M1, F[lo : lo + PAIR_BLOCK], j, m)
            third = (N2[:, m] - T) / k[j][None, :]
            out += (U[:, j] * third) @ om[lo : lo + PAIR_BLOCK]
    return out


#: Pairs with n * max(k_j, e_m) at most this (and rows with n * e_i at most this plus one) are summed by the
#: separable series of :func:`_slow_pairs_sum`: its alternating terms then cost at most a factor e^3 of rounding.
SLOW_PAIR = 0.5


def _fast_rows_slow_pairs_sum(
    n: int, U: np.ndarray, M1: np.ndarray, e_rows: np.ndarray, k: np.ndarray, e: np.ndarray, jr: np.ndarray,
    mr: np.ndarray, om: np.ndarray, F: np.ndarray,
) -> np.ndarray:
    r"""Rows with :math:`n e_i>` ``SLOW_PAIR + 1`` of :func:`_resonant_pairs_sum` for slow pairs
    (:math:`n\max(k_j,e_m)\le` ``SLOW_PAIR``) [derived].

    The quotient :math:`f[D_i,p_j,D_m]=(f[D_i,p_j]-f[p_j,D_m])/(e_m-e_i)` has no cancellation there
    (:math:`e_m/e_i\le1/3`), and :math:`1/(e_m-e_i)=-e_i^{-1}\sum_c(e_m/e_i)^c` separates the row from the pair:
    two matrix products with ``C`` columns replace a quotient per (row, pair); the series' remainder is below
    :math:`3^{-C}`.
    """
    C = 36
    nf = float(n)
    rho = nf * e[mr]  # <= SLOW_PAIR
    V = np.empty((k.size, C))
    W = np.empty((k.size, C))
    w = om.copy()
    for c in range(C):
        V[:, c] = np.bincount(jr, w, minlength=k.size)
        W[:, c] = np.bincount(jr, w * F, minlength=k.size)
        w = w * rho
    R = (U * M1) @ V - U @ W  # (rows, C)
    sigma = nf * e_rows  # > SLOW_PAIR + 1
    powers = (1.0 / sigma)[:, None] ** np.arange(1, C + 1)[None, :]
    return -nf * np.einsum("ic,ic->i", R, powers)


def _slow_pairs_sum(
    n: int, U: np.ndarray, e_rows: np.ndarray, k: np.ndarray, e: np.ndarray, jr: np.ndarray, mr: np.ndarray,
    om: np.ndarray, *, order: int = 2,
) -> np.ndarray:
    r""":math:`\sum_rU_{i,j_r}f_n[D_i,p_{j_r},D_{m_r}(,1)]\Omega_r` for slow rows and slow pairs by a separable series
    [derived].

    With complements :math:`\xi=1-x` and :math:`z=n\xi`, :math:`x^n=\sum_q\binom nq(-\xi)^q` gives the divided
    difference of order :math:`k` (``order``: 2 for the nodes :math:`D_i,p_j,D_m`; 3 with the node 1 added, whose
    :math:`z=0` drops out) as :math:`n^k\sum_{q\ge k}(-1)^{q-k}c_q\,h_{q-k}(z_i,z_j,z_m)`, :math:`c_q=\binom nq/n^q`,
    :math:`h` the complete homogeneous polynomials; :math:`h_t(z_i,z_j,z_m)=\sum_az_i^ah_{t-a}(z_j,z_m)` separates
    the row from the pair, so the sum over pairs is one matrix product with ``Q`` columns instead of a divided
    difference per (row, pair). Exact up to the truncation (terms below 1e-18 relative for :math:`z\le2.5`).
    """
    Q = SERIES_TERMS
    nf = float(n)
    c = _binomial_ratios(n, Q)
    zj, zm = nf * k[jr], nf * e[mr]
    # u[:, t] = sum over pairs of om h_t(z_j, z_m), gathered on j
    h = np.ones_like(zj)
    pm = np.ones_like(zj)
    cols = []
    for t in range(Q - order + 1):
        if t:
            pm = pm * zm
            h = pm + zj * h
        cols.append(np.bincount(jr, om * h, minlength=k.size))
    G = U @ np.stack(cols, axis=1)  # (rows, Q - order + 1)
    idx = np.arange(Q - order + 1)
    tot = idx[:, None] + idx[None, :]
    C = np.where(tot <= Q - order, (-1.0) ** tot * c[np.minimum(tot + order, Q)], 0.0)  # C[a, t]
    Z = (nf * e_rows)[:, None] ** idx[None, :]
    return nf**order * np.einsum("ia,ia->i", Z, G @ C.T)


def _taylor_order(nu: float) -> int:
    r"""Terms for the Taylor series in :math:`nK` with :math:`\|nK\|\le\nu`: the first ``Q`` with
    :math:`\nu^Q/Q!<10^{-20}`."""
    q, term = 0, 1.0
    while term >= 1e-20 or q < 4:
        q += 1
        term *= nu / q
    return q


def _taylor_segment(
    step: StepMap, m0: np.ndarray, a0: np.ndarray, n: int, forcing: np.ndarray, sums: bool, Q: int
) -> dict[str, np.ndarray]:
    r"""The outputs of :meth:`PhaseSolver.segment` for a slow phase (:math:`n\max(k,1-D)\le` ``SLOW_PHASE``)
    [derived].

    With :math:`A=-K`, :math:`a_s=\sum_q\binom sqA^qa_0+\sum_q\binom s{q+1}A^qc'+\sum_{q,p}\binom s{q+p+1}
    A^qR'(-E)^p\tilde m_0` (:math:`E=\mathrm{diag}(1-D)`), and the sums over :math:`s` close by Vandermonde's
    identities: :math:`\sum_{s<n}\binom sr=\binom n{r+1}` and
    :math:`\sum_{s<n}\binom{n-s}u\binom sr=\binom{n+1}{r+u+1}-[u=0]\binom nr`. Terms are scaled by powers of
    :math:`n` (:math:`\tilde A=nA`, :math:`\tilde E=-nE`) so they stay of order :math:`1/q!`; :math:`K` and :math:`R'`
    only enter through :math:`O(d)` matrix-vector products. No eigendecomposition, no resonances, cost independent
    of :math:`n`.
    """
    e = step.gamma * step.rate

    c0, c1 = _binomial_ratios(n, Q + 4).tolist(), _binomial_ratios(n, Q + 4, n + 1).tolist()
    nf = float(n)
    # powers of the scaled operators
    T0 = [np.array(a0, dtype=np.float64)]
    Tc = [np.asarray(forcing, dtype=np.float64)[:, None] * step.c]
    for _ in range(Q):
        T0.append(-nf * step.K(T0[-1]))
        Tc.append(-nf * step.K(Tc[-1]))
    coupled = step.coupled and np.any(m0 != 0.0)
    V: dict[tuple[int, int], np.ndarray] = {}
    if coupled:
        w = np.array(m0, dtype=np.float64)
        for p in range(Q + 1):
            y = step.R(w)
            for q in range(Q + 1 - p):
                V[(q, p)] = y
                y = -nf * step.K(y)
            w = -nf * e * w
    a_n = sum(c0[q] * T0[q] for q in range(Q + 1)) + nf * sum(c0[q + 1] * Tc[q] for q in range(Q + 1))
    if coupled:
        a_n = a_n + nf * sum(c0[q + p + 1] * v for (q, p), v in V.items())
    out = {"m": powc(e, n) * m0, "a": a_n}
    if not sums:
        return out
    Sa = nf * sum(c0[q + 1] * T0[q] for q in range(Q + 1)) + nf * nf * sum(c0[q + 2] * Tc[q] for q in range(Q + 1))
    if coupled:
        Sa = Sa + nf * nf * sum(c0[q + p + 2] * v for (q, p), v in V.items())
    Ea = np.zeros_like(a_n)
    eu = np.ones_like(e)
    for u in range(Q + 1):
        inner = sum((nf * c1[q + u + 1] - (c0[q] if u == 0 else 0.0)) * T0[q] for q in range(Q + 1 - u))
        inner = inner + sum((nf * nf * c1[q + u + 2] - (nf * c0[q + 1] if u == 0 else 0.0)) * Tc[q]
                            for q in range(Q + 1 - u))
        if coupled:
            inner = inner + sum((nf * nf * c1[q + p + u + 2] - (nf * c0[q + p + 1] if u == 0 else 0.0)) * v
                                for (q, p), v in V.items() if q + p + u <= Q)
        Ea = Ea + eu * inner
        eu = eu * (-nf * e)
    # within = sum_{s<t<n} D^(t-s) a_s, directly: sum_{s<t<n} C(t-s, u) C(s, r) = C(n+1, r+u+2) - [u=0] C(n, r+1)
    # (the difference (D Sa - Ea) / e loses all digits when n e is tiny)
    W = np.zeros_like(a_n)
    eu = np.ones_like(e)
    for u in range(Q + 1):
        inner = sum((nf * nf * c1[q + u + 2] - (nf * c0[q + 1] if u == 0 else 0.0)) * T0[q] for q in range(Q + 1 - u))
        inner = inner + sum((nf**3 * c1[q + u + 3] - (nf * nf * c0[q + 2] if u == 0 else 0.0)) * Tc[q]
                            for q in range(Q + 1 - u))
        if coupled:
            inner = inner + sum((nf**3 * c1[q + p + u + 3] - (nf * nf * c0[q + p + 2] if u == 0 else 0.0)) * v
                                for (q, p), v in V.items() if q + p + u <= Q)
        W = W + eu * inner
        eu = eu * (-nf * e)
    Sm = nf * sum(c0[p + 1] * (-nf * e) ** p for p in range(Q + 1)) * m0
    out.update(Sa=Sa, Ea=Ea, Sm=Sm, within=W)
    return out


def _step_segment(
    step: StepMap, m0: np.ndarray, a0: np.ndarray, n: int, forcing: np.ndarray, sums: bool
) -> dict[str, np.ndarray]:
    """The outputs of :meth:`PhaseSolver.segment` by stepping the recursion ``n`` times."""
    m, a = m0.copy(), a0.copy()
    D = step.D
    Sa = np.zeros_like(a)
    Ea = np.zeros_like(a)
    W = np.zeros_like(a)
    for _ in range(n):
        if sums:
            W += Ea  # Ea is sum_{s<t} D^(t-s) a_s here
            Sa += a
            Ea = D * (Ea + a)
        m, a = step.apply(m, a, forcing)
    return {"m": m, "a": a, "Sa": Sa, "Ea": Ea, "within": W}


def spectral_moments(
    maps: list[tuple[StepMap, int]], m0: np.ndarray, a0: np.ndarray, forcing: np.ndarray, average: str
) -> Moments:
    """Output moments by the closed form (same contract as :func:`~scalinglaw.exact.recursion.recursion_moments`)."""
    T = sum(n for _, n in maps)
    t0, t1 = averaging_window(T, average)
    m = np.array(m0, dtype=np.float64)
    a = np.array(a0, dtype=np.float64)
    tot_S = np.zeros_like(a)
    tot_pair = np.zeros_like(a)
    tot_m = np.zeros_like(m)
    carry = np.zeros_like(a)
    tau = 0
    for step, L in maps:
        solver = PhaseSolver(step)
        lo, hi = max(tau, t0), min(tau + L, t1)
        if lo < hi:
            if lo > tau:
                r = solver.segment(m, a, lo - tau, forcing, sums=False)
                m, a = r["m"], r["a"]
            n = hi - lo
            seg = solver.segment(m, a, n, forcing)
            e = solver.e
            within = seg["within"]  # sum_{s<t<n} D^(t-s) a_s
            tot_pair += within + carry * divdiff1(n, e, 0.0)
            carry = carry * powc(e, n) + seg["Ea"]
            tot_S += seg["Sa"]
            tot_m += seg["Sm"]
            m, a = seg["m"], seg["a"]
            if tau + L > hi:
                r = solver.segment(m, a, tau + L - hi, forcing, sums=False)
                m, a = r["m"], r["a"]
        else:
            r = solver.segment(m, a, L, forcing, sums=False)
            m, a = r["m"], r["a"]
        tau += L
    if average == "last":
        return Moments(second=a, cross=m)
    nw = t1 - t0
    return Moments(second=(tot_S + 2.0 * tot_pair) / (nw * nw), cross=tot_m / nw)
