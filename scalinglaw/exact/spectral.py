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
modes (one matrix product); near-resonant pairs keep the divided-difference form. The cost is
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
        ``Ea`` = sum_{s<n} D^(n-s) a_s and ``Sm`` = sum_{s<n} m_s.
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
                        Sa[ic], Ea[ic] = r["Sa"][0], r["Ea"][0]
                    continue
                y += X.sum(axis=1)
            a_n = a_inf + U @ (pn * y)
            if coupled:
                a_n -= U @ (X @ Dn)
                if jr.size:
                    a_n += U @ np.bincount(jr, om * divdiff1(n, k[jr], e[mr]), minlength=k.size)
            out_a[ic] = a_n
            if not sums:
                continue
            s_a = n * a_inf + U @ (gk * y)
            e_a = a_inf * D * ge + D * ((U * M1) @ y)
            if coupled:
                s_a -= U @ (X @ ge)
                E = U @ X
                M2 = divdiff1(n, e[:, None], e[None, :])
                e_a -= D * np.einsum("im,im->i", E, M2)
                if jr.size:
                    s_a += U @ np.bincount(jr, om * divdiff2(n, k[jr], e[mr], 0.0), minlength=k.size)
                    e_a += D * _resonant_pairs_sum(n, U, e, k, M1, jr, mr, om)
            Sa[ic] = s_a
            Ea[ic] = e_a
        out["a"] = out_a
        if sums:
            out["Sa"], out["Ea"], out["Sm"] = Sa, Ea, m0 * ge
        return out


#: Resonant pairs per block of the O(nodes x pairs) sum in :func:`_resonant_pairs_sum` (bounds its memory).
PAIR_BLOCK = 2048


def _resonant_pairs_sum(
    n: int, U: np.ndarray, e: np.ndarray, k: np.ndarray, M1: np.ndarray, jr: np.ndarray, mr: np.ndarray,
    om: np.ndarray,
) -> np.ndarray:
    r""":math:`\sum_rU_{i,j_r}\,f_n[D_i,p_{j_r},D_{m_r}]\,\Omega_r` for every :math:`i`, in blocks of pairs (memory
    :math:`O(d\cdot` ``PAIR_BLOCK``:math:`)` instead of :math:`O(d\cdot|\text{pairs}|)`).

    With :math:`p_j\approx D_m` (a resonant pair) the second divided difference is the quotient
    :math:`(f[D_i,p_j]-f[p_j,D_m])/(D_i-D_m)` of first ones already at hand (``M1`` and the pair's own), accurate
    unless :math:`D_i` is itself close to the pair (:math:`n|e_i-e_m|\le1`), where the confluent formula of
    :func:`~scalinglaw.exact.divdiff.divdiff2` is used.
    """
    out = np.zeros(e.size)
    F = divdiff1(n, k[jr], e[mr])  # f[p_j, D_m]
    for lo in range(0, jr.size, PAIR_BLOCK):
        j, m = jr[lo : lo + PAIR_BLOCK], mr[lo : lo + PAIR_BLOCK]
        gap = e[m][None, :] - e[:, None]  # D_i - D_m
        near = (n * np.abs(gap) <= 1.0) | (e[:, None] >= 1.0) | (e[m][None, :] >= 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            T = (M1[:, j] - F[lo : lo + PAIR_BLOCK][None, :]) / gap
        if np.any(near):
            ii, rr = np.nonzero(near)
            T[ii, rr] = divdiff2(n, e[ii], k[j][rr], e[m][rr])
        out += (U[:, j] * T) @ om[lo : lo + PAIR_BLOCK]
    return out


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

    def binomials(N: int) -> list[float]:
        """C(N, r) / n^r for r = 0..Q+3, with (N - j)/n = 1 + (N - n - j)/n exact for huge integers."""
        ratio = [1.0 + float(N - n - j) / float(n) for j in range(Q + 3)]
        return np.concatenate([[1.0], np.cumprod(np.array(ratio) / np.arange(1.0, Q + 4.0))]).tolist()

    c0, c1 = binomials(n), binomials(n + 1)
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
    Sm = nf * sum(c0[p + 1] * (-nf * e) ** p for p in range(Q + 1)) * m0
    out.update(Sa=Sa, Ea=Ea, Sm=Sm)
    return out


def _step_segment(
    step: StepMap, m0: np.ndarray, a0: np.ndarray, n: int, forcing: np.ndarray, sums: bool
) -> dict[str, np.ndarray]:
    """The outputs of :meth:`PhaseSolver.segment` by stepping the recursion ``n`` times."""
    m, a = m0.copy(), a0.copy()
    D = step.D
    Sa = np.zeros_like(a)
    Ea = np.zeros_like(a)
    for _ in range(n):
        if sums:
            Sa += a
            Ea = D * (Ea + a)
        m, a = step.apply(m, a, forcing)
    return {"m": m, "a": a, "Sa": Sa, "Ea": Ea}


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
            D = 1.0 - e
            within = (D * seg["Sa"] - seg["Ea"]) / e  # sum_{s<t<n} D^(t-s) a_s
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
