r"""Resolvent sums over the spectrum of :math:`H` at complex arguments [derived].

The deterministic equivalent of a Gaussian sketch (:mod:`scalinglaw.sketch`) needs, for complex :math:`\kappa`
off the negative real axis, the two Stieltjes-type sums

.. math::

    F(\kappa)=\sum_{i\le d}\frac{\lambda_i}{\lambda_i+\kappa},\qquad
    F_s(\kappa)=\sum_{i\le d}\frac{\lambda_is_i}{\lambda_i+\kappa},

(:math:`s_i=\mathbb E w_i^{*2}`; :math:`F` at real :math:`\kappa>0` is the degrees of freedom
:math:`\mathrm{df}_1(\kappa)`), for :math:`d` up to :math:`\infty`, without a loop over :math:`d`.
:func:`spectral_sums` splits the index range in three [derived]:

* an explicit **head** :math:`i\le n_h`, grouped by distinct eigenvalue (multiplicities for array spectra);
* a compressed **tail** :math:`n_h<i\le n_e`: consecutive-integer blocks replaced by the discrete Gauss rule of
  :func:`~scalinglaw.measure.discrete_gauss_rule` (exact for polynomials in the index);
* a **far** tail :math:`i>n_e`, where :math:`\lambda_i\le10^{-12}\lambda_M`: there
  :math:`\lambda_i/(\lambda_i+\kappa)=\lambda_i/\kappa\,(1+O(10^{-11}))` for every :math:`\kappa` the equivalent
  evaluates, so it contributes :math:`\kappa^{-1}\sum_{i>n_e}\lambda_i` (Hurwitz zeta for a power law).

**Pole subtraction.** As a function of a real index :math:`x`, the summand
:math:`\phi(x)=\lambda(x)w(x)/(\lambda(x)+\kappa)` has a simple pole at the root :math:`x_p` of
:math:`\lambda(x)=-\kappa`. For :math:`\kappa` near the negative real axis, :math:`x_p` is close to the tail's
indices and no polynomial rule resolves the summand. The tail is therefore summed as

.. math::

    \sum_{i=n_h+1}^{n_e}\phi(i)=\sum_jw_j\big[\phi(x_j)-R\,g(x_j)\big]+R\sum_{i=n_h+1}^{n_e}g(i),\qquad
    g(x)=\frac1{x-x_p}-\frac1{x+|x_p|},

with :math:`R` the residue of :math:`\phi` at :math:`x_p`; the subtracted summand is analytic near the real
axis, and :math:`\sum g(i)` is a difference of digamma functions,
:math:`[\psi(n_e{+}1{-}x_p)-\psi(n_h{+}1{-}x_p)]-[\psi(n_e{+}1{+}c)-\psi(n_h{+}1{+}c)]`, exact for any
:math:`x_p`. For :math:`\lambda(x)=\lambda_1x^{-a}`: :math:`x_p=(-\kappa/\lambda_1)^{-1/a}`,
:math:`R=-w(x_p)\,x_p/a`; in general :math:`R=-w(x_p)/g_\lambda(x_p)` with
:math:`g_\lambda=-\lambda'/\lambda`.

The head is long enough that every gap of the sketch's spectrum lies among its eigenvalues
(:func:`gap_candidates`): near the head's poles the summand is resolved coordinate by coordinate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from .errors import ParameterError
from .measure import (
    _at,
    _index_below,
    _target_at,
    block_rule,
    compressible,
)
from .spectra import LogPowerLaw, PowerLaw, Spectrum
from .targets import SourcePrior, Target

__all__ = ["SpectralSums", "gap_candidates", "spectral_sums"]

#: The explicit head holds at least this many coordinates.
HEAD_MIN = 256
#: Tail blocks at level 0: index ratio at most 2 and eigenvalue ratio at most 10**0.5; Gauss points per block.
TAIL_RATIO = 2.0
TAIL_LAMBDA_RATIO = 10.0**0.5
TAIL_POINTS = 8
#: The far tail starts where lambda_i <= FAR_LEVEL * lambda_M.
FAR_LEVEL = 1e-12
#: Bytes per chunk of the (points x nodes) work arrays.
CHUNK_BYTES = 32 * 2**20


@dataclass(frozen=True)
class SpectralSums:
    r"""The spectrum of :math:`H` and the target's second moments, ready for resolvent sums (see the module).

    Attributes
    ----------
    lam, count, signal : ndarray
        Head: distinct eigenvalues (descending), their multiplicities and :math:`\sum s_i` over each group.
    node_x, node_w, node_lam, node_sig : ndarray
        Tail quadrature: real indices, weights, :math:`\lambda(x_j)` and :math:`s(x_j)` (empty without a tail).
    tail_first, tail_last : float
        The tail's index range :math:`n_h+1..n_e`.
    far_trace, far_signal : float
        :math:`\sum_{i>n_e}\lambda_i` and :math:`\sum_{i>n_e}\lambda_is_i` (0 when :math:`n_e=d`).
    far_top : float
        :math:`\lambda_{n_e+1}` (0 when :math:`n_e=d`): bounds the far tail's relative error by
        ``far_top / |kappa|``.
    trace, signal_total, square_sum : float
        :math:`\operatorname{tr}H`, :math:`\sum\lambda_is_i` and :math:`\sum\lambda_i^2` (the last to
        :math:`O(\lambda_{n_e}\,\mathrm{far\_trace})`).
    dimension : float
        :math:`d`.
    """

    lam: np.ndarray = field(repr=False)
    count: np.ndarray = field(repr=False)
    signal: np.ndarray = field(repr=False)
    node_x: np.ndarray = field(repr=False)
    node_w: np.ndarray = field(repr=False)
    node_lam: np.ndarray = field(repr=False)
    node_sig: np.ndarray = field(repr=False)
    tail_first: float
    tail_last: float
    far_trace: float
    far_signal: float
    far_top: float
    trace: float
    signal_total: float
    square_sum: float
    dimension: float
    spectrum: Spectrum = field(repr=False)
    target: Target = field(repr=False)

    @property
    def has_tail(self) -> bool:
        return self.node_x.size > 0

    # ------------------------------------------------------------------------------------------ chunking
    def _chunks(self, n: int, width: int) -> list[slice]:
        step = max(1, CHUNK_BYTES // (16 * 4 * max(width, 1)))
        return [slice(i, min(n, i + step)) for i in range(0, n, step)]

    # ------------------------------------------------------------------------------------------ head, real
    def head_moduli(self, r: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""Head sums at :math:`\kappa=r-iy`, in real arithmetic (no cancellation as :math:`y\to0`):
        :math:`\sum c\lambda^2/|\lambda+\kappa|^2`, :math:`\sum c\lambda\,\mathrm{Re}[\kappa/(\lambda+\kappa)]` and
        :math:`\sum\sigma\lambda^2/|\lambda+\kappa|^2` (:math:`c` multiplicity, :math:`\sigma` signal)."""
        r = np.asarray(r, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        A = np.empty(r.size)
        X = np.empty(r.size)
        S = np.empty(r.size)
        lam, c, sig = self.lam, self.count, self.signal
        l2 = lam * lam
        for sl in self._chunks(r.size, lam.size):
            rr, yy = r[sl, None], y[sl, None]
            u = lam + rr
            inv = 1.0 / (u * u + yy * yy)
            A[sl] = inv @ (c * l2)
            S[sl] = inv @ (sig * l2)
            X[sl] = ((rr * u + yy * yy) * inv) @ (c * lam)
        return A, X, S

    def single_pole_bound(self, r: np.ndarray, M: float) -> np.ndarray:
        r""":math:`\max_u\,(c_u\lambda_u^2/M-(\lambda_u+r)^2)\cdot(1-10^{-12})`: below it, one head term alone
        makes :math:`h>1` [derived]."""
        out = np.full(r.size, -np.inf)
        w = self.count * self.lam * self.lam / M
        for sl in self._chunks(r.size, self.lam.size):
            u = self.lam + r[sl, None]
            out[sl] = np.max(w - u * u, axis=1)
        return out * (1.0 - 1e-12)

    def head_h(self, r: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""Head sums :math:`\sum c\lambda^2/D` and :math:`\sum c\lambda^2/D^2`, :math:`D=(\lambda+r)^2+y^2`."""
        A = np.empty(r.size)
        B = np.empty(r.size)
        w = self.count * self.lam * self.lam
        for sl in self._chunks(r.size, self.lam.size):
            u = self.lam + r[sl, None]
            inv = 1.0 / (u * u + (y[sl, None]) ** 2)
            A[sl] = inv @ w
            B[sl] = (inv * inv) @ w
        return A, B

    def head_resolvent(self, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""Head sums :math:`\sum c\lambda/(\lambda+\kappa)` and :math:`\sum\sigma\lambda/(\lambda+\kappa)`."""
        kappa = np.asarray(kappa, dtype=np.complex128).ravel()
        F = np.empty(kappa.size, dtype=np.complex128)
        Fs = np.empty(kappa.size, dtype=np.complex128)
        wc, ws = self.count * self.lam, self.signal * self.lam
        kr, ki = kappa.real, kappa.imag
        for sl in self._chunks(kappa.size, self.lam.size):
            u = self.lam + kr[sl, None]
            inv = 1.0 / (u * u + ki[sl, None] ** 2)
            re, im = u * inv, inv * (-ki[sl, None])
            F[sl] = (re @ wc) + 1j * (im @ wc)
            Fs[sl] = (re @ ws) + 1j * (im @ ws)
        return F, Fs

    # ------------------------------------------------------------------------------------------ tail
    def _pole(self, kappa: np.ndarray) -> tuple[np.ndarray, ...]:
        r"""Root :math:`x_p` of :math:`\lambda(x)=-\kappa` near the positive axis, :math:`dx_p/d\kappa`, the
        residues :math:`R,R_s` of the two summands, :math:`dR/d\kappa`, and where the subtraction applies (the
        root lies beyond a quarter of the head, within 61 degrees of the positive axis)."""
        spec = self.spectrum
        n = kappa.size
        xp = np.ones(n, dtype=np.complex128)
        if isinstance(spec, PowerLaw) and spec.a > 0:
            a = spec.a
            xp = np.exp(-np.log(-kappa / spec.lambda1) / a)
            dxp = -xp / (a * kappa)
            R = -xp / a
            dR = -dxp / a
            allowed = np.ones(n, dtype=bool)
        elif isinstance(spec, LogPowerLaw):
            allowed = kappa.real < 0
            if np.any(allowed):
                xp[allowed] = _log_power_root(spec, -kappa[allowed])
            L = np.log1p(xp)
            grate = 1.0 / xp + spec.a / ((1.0 + xp) * L)  # -lambda'/lambda
            dgrate = -1.0 / (xp * xp) - spec.a * (L + 1.0) / ((1.0 + xp) ** 2 * L * L)
            dxp = -1.0 / (kappa * grate)
            R = -1.0 / grate
            dR = dgrate * dxp / (grate * grate)
        else:
            zero = np.zeros(n, dtype=np.complex128)
            return xp, zero, zero, zero, zero, np.zeros(n, dtype=bool)
        ok = allowed & (xp.real > 0.25 * self.tail_first) & (np.abs(xp.imag) < 1.8 * xp.real)
        Rs = R * _target_at(self.target, spec, xp) if isinstance(self.target, SourcePrior) else R
        return xp, dxp, R, Rs, dR, ok

    def tail_resolvent(
        self, kappa: np.ndarray, *, derivative: bool = False
    ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""Tail plus far-tail parts of :math:`F` and :math:`F_s` (complex), pole-subtracted (module docstring);
        with ``derivative``, also :math:`\sum_{\rm tail}\lambda^2/(\lambda+\kappa)^2=(\kappa F_{\rm tail})'`.

        The derivative differentiates the subtracted representation term by term (the auxiliary pole sits at
        :math:`-x_p`, so every term is holomorphic in :math:`\kappa`; :math:`\psi'` by :func:`trigamma`)."""
        kappa = np.asarray(kappa, dtype=np.complex128).ravel()
        n = kappa.size
        F = np.zeros(n, dtype=np.complex128)
        Fs = np.zeros(n, dtype=np.complex128)
        dF = np.zeros(n, dtype=np.complex128)
        if self.far_trace:
            F += self.far_trace / kappa
            Fs += self.far_signal / kappa
            dF -= self.far_trace / (kappa * kappa)
        if self.has_tail:
            xp, dxp, R, Rs, dR, ok = self._pole(kappa)
            xj, wj, lj, sj = self.node_x, self.node_w, self.node_lam, self.node_sig
            wl, wls = wj * lj, wj * lj * sj
            kr, ki = kappa.real, kappa.imag
            for sl in self._chunks(n, xj.size):
                # lam/(lam + kappa) = lam (lam + kr - i ki) / ((lam + kr)^2 + ki^2), in real arithmetic
                u = lj + kr[sl, None]
                inv = 1.0 / (u * u + ki[sl, None] ** 2)
                re, im = u * inv, inv * (-ki[sl, None])
                F[sl] += (re @ wl) + 1j * (im @ wl)
                Fs[sl] += (re @ wls) + 1j * (im @ wls)
                if derivative:  # -lam / (lam + kappa)^2 = -lam (re + i im)^2 / lam^2 ... in terms of 1/(lam+kappa)
                    dF[sl] -= ((re * re - im * im) @ wl) + 2j * ((re * im) @ wl)
                sub = np.nonzero(ok[sl])[0]
                if sub.size:
                    rows = sl.start + sub
                    pr, pi = xp[rows].real[:, None], xp[rows].imag[:, None]
                    # e1 = 1/(x - p) = (v1 + i pi)/D1, e2 = 1/(x + p) = (v2 - i pi)/D2, in real arithmetic
                    v1, v2 = xj - pr, xj + pr
                    i1, i2 = 1.0 / (v1 * v1 + pi * pi), 1.0 / (v2 * v2 + pi * pi)
                    g = ((v1 * i1 - v2 * i2) @ wj) + 1j * ((pi * (i1 + i2)) @ wj)
                    F[rows] -= R[rows] * g
                    Fs[rows] -= Rs[rows] * g
                    if derivative:
                        # e1^2 + e2^2 = ((v1^2 - pi^2) + 2i v1 pi) i1^2 + ((v2^2 - pi^2) - 2i v2 pi) i2^2
                        a1, a2 = i1 * i1, i2 * i2
                        pi2 = pi * pi
                        re = ((v1 * v1 - pi2) * a1 + (v2 * v2 - pi2) * a2) @ wj
                        im = (2.0 * pi * (v1 * a1 - v2 * a2)) @ wj
                        dg = dxp[rows] * (re + 1j * im)
                        dF[rows] -= dR[rows] * g + R[rows] * dg
            if np.any(ok):
                p = xp[ok]
                lo, hi = self.tail_first, self.tail_last + 1.0
                P = (special.psi(hi - p) - special.psi(lo - p)) - (special.psi(hi + p) - special.psi(lo + p))
                F[ok] += R[ok] * P
                Fs[ok] += Rs[ok] * P
                if derivative:
                    dP = dxp[ok] * (-trigamma(hi - p) + trigamma(lo - p) - trigamma(hi + p) + trigamma(lo + p))
                    dF[ok] += dR[ok] * P + R[ok] * dP
        if not derivative:
            return F, Fs
        return F, Fs, F + kappa * dF

    def resolvent(self, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r""":math:`F(\kappa)` and :math:`F_s(\kappa)` over the whole spectrum (complex)."""
        F, Fs = self.head_resolvent(kappa)
        Ft, Fst = self.tail_resolvent(kappa)
        return F + Ft, Fs + Fst

    def resolvent_derivative(self, kappa: np.ndarray) -> np.ndarray:
        r""":math:`\sum_i\lambda_i^2/(\lambda_i+\kappa)^2=\frac{d}{d\kappa}(\kappa F)` (complex)."""
        return self.resolvents(kappa)[2]

    def resolvents(self, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r""":math:`F`, :math:`F_s` and :math:`(\kappa F)'=\sum_i\lambda_i^2/(\lambda_i+\kappa)^2` in one pass."""
        kappa = np.asarray(kappa, dtype=np.complex128).ravel()
        n = kappa.size
        F = np.empty(n, dtype=np.complex128)
        Fs = np.empty(n, dtype=np.complex128)
        D = np.empty(n, dtype=np.complex128)
        lam = self.lam
        wc, ws, w2 = self.count * lam, self.signal * lam, self.count * lam * lam
        kr, ki = kappa.real, kappa.imag
        for sl in self._chunks(n, lam.size):
            u = lam + kr[sl, None]
            k2 = ki[sl, None] ** 2
            inv = 1.0 / (u * u + k2)
            re, im = u * inv, inv * (-ki[sl, None])
            F[sl] = (re @ wc) + 1j * (im @ wc)
            Fs[sl] = (re @ ws) + 1j * (im @ ws)
            # 1/(lam + kappa)^2 = (re + i im)^2
            D[sl] = ((re * re - im * im) @ w2) + 2j * ((re * im) @ w2)
        if self.has_tail or self.far_trace:
            Ft, Fst, Dt = self.tail_resolvent(kappa, derivative=True)
            F += Ft
            Fs += Fst
            D += Dt
        return F, Fs, D

    # ------------------------------------------------------------------------------------------ real arguments
    def real_sum(self, r: np.ndarray, p: int, q: int, signal: bool = False) -> np.ndarray:
        r""":math:`\sum_i w_i\lambda_i^p/(\lambda_i+r)^q` at real :math:`r` away from the tail's eigenvalues
        (:math:`w=1` or :math:`s`); the far tail enters at leading order for ``p == 1``."""
        r = np.asarray(r, dtype=np.float64).ravel()
        out = np.empty(r.size)
        wh = (self.signal if signal else self.count) * self.lam**p
        wt = self.node_w * (self.node_sig if signal else 1.0) * self.node_lam**p
        for sl in self._chunks(r.size, self.lam.size + self.node_x.size):
            rr = r[sl, None]
            out[sl] = (1.0 / (self.lam + rr) ** q) @ wh
            if self.has_tail:
                out[sl] += (1.0 / (self.node_lam + rr) ** q) @ wt
        if p == 1 and self.far_trace:
            out += (self.far_signal if signal else self.far_trace) / r**q
        return out


#: Bernoulli numbers B_2..B_18 for the asymptotic series of the trigamma function.
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510, 43867 / 798)


def trigamma(z: np.ndarray) -> np.ndarray:
    r"""Complex trigamma :math:`\psi'(z)` (vectorised): reflection :math:`\psi'(z)=\pi^2/\sin^2(\pi z)-\psi'(1-z)`
    for :math:`\mathrm{Re}\,z<1/2`, recurrence :math:`\psi'(z)=\psi'(z+1)+z^{-2}` up to :math:`\mathrm{Re}\,z\ge10`,
    then :math:`\psi'(z)\sim1/z+1/(2z^2)+\sum_kB_{2k}z^{-2k-1}` (DLMF 5.15.8, 5.15.6, 5.15.5) [paper]."""
    z = np.asarray(z, dtype=np.complex128)
    refl = z.real < 0.5
    w = np.where(refl, 1.0 - z, z)
    acc = np.zeros_like(w)
    for _ in range(10):
        low = w.real < 10.0
        if not np.any(low):
            break
        acc = acc + np.where(low, 1.0 / (w * w), 0.0)
        w = np.where(low, w + 1.0, w)
    inv = 1.0 / w
    inv2 = inv * inv
    series = np.zeros_like(w)
    for b in reversed(_BERNOULLI):
        series = (series + b) * inv2
    val = acc + inv + 0.5 * inv2 + series * inv
    if np.any(refl):
        # pi^2 / sin^2(pi z) = -4 pi^2 q / (1 - q)^2 with q = exp(+-2 i pi z), |q| <= 1 (no overflow)
        q = np.exp(2j * math.pi * np.where(z.imag >= 0, z, -z))
        val = np.where(refl, -4.0 * math.pi**2 * q / (1.0 - q) ** 2 - val, val)
    return val


def _log_power_root(spec: LogPowerLaw, value: np.ndarray) -> np.ndarray:
    r"""Complex :math:`x` with :math:`\lambda(x)=c/(x\log^a(1+x))=` ``value``, near the real root of
    :math:`\lambda(x)=|\mathrm{value}|` (Newton in :math:`u=\log x`)."""
    target = np.log(value)
    # real start: bisection in u on log lambda(e^u) = log|value|
    lo = np.full(value.size, -5.0)
    hi = np.full(value.size, 700.0)
    lv = np.log(np.abs(value))

    def loglam(u: np.ndarray) -> np.ndarray:
        return math.log(spec.scale) - u - spec.a * np.log(np.logaddexp(0.0, u))

    for _ in range(80):
        mid = 0.5 * (lo + hi)
        big = loglam(mid) > lv
        lo, hi = np.where(big, mid, lo), np.where(big, hi, mid)
    u = (0.5 * (lo + hi)).astype(np.complex128)
    for _ in range(30):
        e = np.exp(u)
        l1 = np.log1p(e)
        f = math.log(spec.scale) - u - spec.a * np.log(l1) - target
        fp = -1.0 - spec.a * e / ((1.0 + e) * l1)
        step = f / fp
        u = u - step
        if np.all(np.abs(step) < 1e-15 * np.maximum(1.0, np.abs(u))):
            break
    return np.exp(u)


def gap_candidates(lam: np.ndarray, count: np.ndarray, M: float) -> int:
    r"""Number of leading head intervals :math:`(-\lambda_u,-\lambda_{u+1})` that may hold a gap of the
    sketch's spectrum: beyond it, :math:`\frac1M\sum_i\lambda_i^2/(\lambda_i+r)^2\ge
    \frac{8\min(c_u,c_{u+1})\lambda_{u+1}^2}{M(\lambda_u-\lambda_{u+1})^2}\ge1` on every interval [derived]."""
    if lam.size < 2:
        return 0
    gaps = lam[:-1] - lam[1:]
    with np.errstate(divide="ignore"):  # equal eigenvalues: no interval between them
        bound = 8.0 * np.minimum(count[:-1], count[1:]) * lam[1:] ** 2 / (M * gaps * gaps)
    low = np.nonzero(bound < 1.0)[0]
    return int(low[-1]) + 1 if low.size else 0


def _head_groups(lam: np.ndarray, sig: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(-lam, kind="stable")
    lam, sig = lam[order], sig[order]
    uniq, start, count = np.unique(-lam, return_index=True, return_counts=True)
    signal = np.add.reduceat(sig, start) if lam.size else sig
    return -uniq, count.astype(np.float64), signal


def spectral_sums(spectrum: Spectrum, target: Target, M: float, *, level: int = 0) -> SpectralSums:
    """Prepare the resolvent sums of ``spectrum`` with ``target``'s second moments for sketch size ``M``.

    ``level`` refines the tail's blocks (halving their log-width), for error estimates by refinement.
    """
    d = spectrum.d
    e = target.exponent(spectrum) if isinstance(target, SourcePrior) else 0.0
    n_h = 0
    if compressible(spectrum, target):
        # head long enough to hold every possible gap, with room (gap indices <= n_h / 4)
        n_h = max(HEAD_MIN, 8 * math.ceil(math.sqrt(M)))
        while True:
            n_h = int(min(n_h, d))
            lam = spectrum.head(n_h)
            u = gap_candidates(lam, np.ones_like(lam), M)
            need = max(HEAD_MIN, 4 * (u + 2))
            if need <= n_h or n_h >= d:
                n_h = int(min(need, d))
                lam = lam[:n_h]
                break
            n_h = need
    if not n_h or d <= 2 * n_h:
        if spectrum.is_infinite:
            raise ParameterError("d", d, "be finite for a spectrum or target given coordinate by coordinate")
        n = int(d)
        lam = spectrum.head(n)
        sig = target.second_moments(spectrum, n)
        L, C, S = _head_groups(lam, sig)
        empty = np.zeros(0)
        return SpectralSums(
            lam=L, count=C, signal=S, node_x=empty, node_w=empty, node_lam=empty, node_sig=empty,
            tail_first=float(n + 1), tail_last=float(n), far_trace=0.0, far_signal=0.0, far_top=0.0,
            trace=float(lam.sum()), signal_total=float(lam @ sig), square_sum=float(lam @ lam), dimension=float(n),
            spectrum=spectrum, target=target,
        )
    lam_M = float(_at(spectrum, np.array([float(max(M, 1))]))[0])
    with np.errstate(over="ignore"):  # the search may probe indices where lambda underflows to 0
        n_e = min(float(d), _index_below(spectrum, FAR_LEVEL * lam_M, d))
    sig = target.second_moments(spectrum, n_h)
    node_x = node_w = np.zeros(0)
    if n_e > n_h:
        node_x, node_w = block_rule(spectrum, n_h + 1.0, n_e, TAIL_RATIO, TAIL_LAMBDA_RATIO, TAIL_POINTS, level)
    node_lam = _at(spectrum, node_x) if node_x.size else node_x
    node_sig = _target_at(target, spectrum, node_x) if node_x.size else node_x
    far_trace = far_signal = far_top = 0.0
    if n_e < d:
        far_trace = spectrum.tail_sum(n_e)  # type: ignore[arg-type]
        far_signal = spectrum.tail_sum(n_e, target_exponent=e or None)  # type: ignore[arg-type]
        far_top = float(_at(spectrum, np.array([n_e + 1.0]))[0])
    L, C, S = _head_groups(lam, sig)
    trace = float(lam.sum() + node_w @ node_lam + far_trace)
    signal_total = float(lam @ sig + node_w @ (node_lam * node_sig) + far_signal)
    square_sum = float(lam @ lam + node_w @ node_lam**2 + far_top * far_trace)
    return SpectralSums(
        lam=L, count=C, signal=S, node_x=node_x, node_w=node_w, node_lam=node_lam, node_sig=node_sig,
        tail_first=float(n_h + 1), tail_last=float(n_e), far_trace=far_trace, far_signal=far_signal, far_top=far_top,
        trace=trace, signal_total=signal_total, square_sum=square_sum, dimension=float(d),
        spectrum=spectrum, target=target,
    )
