r"""Deterministic equivalent of a Gaussian sketch: the sketched problem averaged over :math:`S` (asymptotic).

Setting (SPEC §1): :math:`x\sim\mathcal N(0,H)`, :math:`H=\mathrm{diag}(\lambda_i)_{i\le d}` (:math:`d\le\infty`),
:math:`S\in\mathbb R^{M\times d}` with entries :math:`\mathcal N(0,1/M)`, :math:`K=SHS^\top`. Given :math:`S`, the
sketched problem is an :math:`M`-dimensional Gaussian regression (:mod:`scalinglaw.reduction`), and its expected
risk under one-pass SGD depends on :math:`S` only through [derived, ``theory/deterministic-equivalent.md``]

* the eigenvalue measure :math:`\sum_k\delta_{\mu_k}` of :math:`K`,
* the initial-error measure :math:`\sum_k\mathbb E(u_k^\top v^*)^2\,\delta_{\mu_k}` in :math:`K`'s eigenbasis,
* the approximation error :math:`\mathrm{Approx}(S)=\|P_{\ker SH^{1/2}}H^{1/2}w^*\|^2`.

Their deterministic equivalents follow from one scalar fixed point, the renormalised ridge :math:`\kappa(z)`
(Silverstein's equation for the sample covariance :math:`H^{1/2}S^\top SH^{1/2}` written in :math:`\kappa=-z/m`)
[paper: Bach 2024, arXiv 2303.01372; Atanasov, Zavatone-Veth, Pehlevan 2024, arXiv 2405.00592; Paquette,
Paquette, Xiao, Pennington 2024, arXiv 2405.15074, proved there for power-law random features]:

.. math::

    z=-\kappa\Big(1-\frac{F(\kappa)}M\Big),\quad F(\kappa)=\sum_i\frac{\lambda_i}{\lambda_i+\kappa},\quad
    \operatorname{tr}(K-z)^{-1}\asymp\frac M{\kappa(z)},\quad
    b^\top(W-z)^{-1}b\asymp-\frac{\kappa}{z}F_s(\kappa),\quad F_s(\kappa)=\sum_i\frac{\lambda_is_i}{\lambda_i+\kappa},

(:math:`W=H^{1/2}S^\top SH^{1/2}`, :math:`b=H^{1/2}w^*`, :math:`s_i=\mathbb Ew_i^{*2}`), so
:math:`\varrho_K(x)=\frac M\pi\mathrm{Im}\frac1{\kappa(x+i0)}`, the initial-error density is
:math:`\frac1\pi\mathrm{Im}\frac{G(x+i0)}x` with :math:`G=-\frac\kappa zF_s`, and
:math:`\mathbb E_S\mathrm{Approx}\asymp\kappa_0F_s(\kappa_0)` with :math:`F(\kappa_0)=M` (the residue of :math:`-G` at
0) [derived].

**Compressed rules by contour integration** [derived]. The exact engine needs, per block
:math:`[x_{lo},x_{hi}]` of log-width :math:`\log\sqrt{10}` (as :func:`~scalinglaw.measure.spectrum_measure`), a
:math:`p`-point Gauss rule of :math:`\varrho_K` and interpolatory signal weights. Their modified moments
:math:`\int_{x_{lo}}^{x_{hi}}T_j(t(x))\varrho_K(x)dx` (Chebyshev :math:`T_j` on the block) are
:math:`\frac1\pi\mathrm{Im}\int T_j(t(z))\frac M{\kappa(z)}dz` along the real segment, hence along any path from
:math:`x_{lo}` to :math:`x_{hi}` through the upper half plane (Cauchy). In the variable :math:`\kappa` that path is any
path below the spectral curve (:mod:`scalinglaw.sketch_curve`) between the two boundary points, and

.. math::

    \int T_j\,\frac M\kappa\,dz=\int T_j(t(z(\kappa)))\,\frac M\kappa\,z'(\kappa)\,d\kappa,\qquad
    z'(\kappa)=-1+\frac1M\sum_i\frac{\lambda_i^2}{(\lambda_i+\kappa)^2},

is explicit: no fixed point is solved along the path, and away from the curve the integrand is smooth, so a few
dozen Gauss-Legendre points per block give the moments to near machine precision. Only the block boundaries are
points of the curve (one root :math:`y(r)` each). The Gauss rule follows from the modified moments by Gautschi's
modified Chebyshev algorithm (stable on :math:`[-1,1]`), then Golub-Welsch.

The equivalent is exact as :math:`M,d\to\infty`; at finite :math:`M` its relative gap to the average over sketches
is :math:`O(1/M)` (checked numerically; ``theory/deterministic-equivalent.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
from scipy import optimize
from scipy.linalg import eigh_tridiagonal

from .errors import ParameterError
from .measure import FAST_RATE, SpectralMeasure
from .sketch_curve import curve_points, edge_x, find_gaps, lower_edge, top_edge, unit_gauss_legendre
from .spectra import Spectrum
from .spectral_sums import SpectralSums, gap_candidates, spectral_sums
from .targets import Target

__all__ = ["BlockRules", "SketchEquivalent", "gauss_from_chebyshev_moments", "sketch_approximation",
           "sketch_equivalent"]

#: Blocks of the compressed equivalent at level 0: eigenvalue ratio about 10**0.5, Gauss points per block.
BLOCK_RATIO = 10.0**0.5
BLOCK_POINTS = 8
#: Samples of the curve per decade of |r| (block boundaries are chosen among them).
SAMPLES_PER_DECADE = 40
#: Path margin below the curve as a fraction of a block's width in r, and the path's segments per block.
PATH_DEPTH = 0.12
PATH_SEGMENTS = 8


# ---------------------------------------------------------------------------------------------- Gauss rules
def gauss_from_chebyshev_moments(moments: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    r"""The ``p``-point Gauss rule on :math:`[-1,1]` of a positive measure from its Chebyshev moments
    :math:`m_j=\int T_j\,d\mu`, :math:`j<2p` (Gautschi's modified Chebyshev algorithm, *Orthogonal Polynomials*,
    2004, Alg. 2.1, with the monic Chebyshev polynomials as the reference) [paper]. Returns nodes and weights;
    fewer nodes when the recurrence breaks down (a measure with fewer points of increase, to rounding)."""
    n = int(p)
    m = np.asarray(moments, dtype=np.float64)
    # monic Chebyshev: pi_0 = 1, pi_k = 2^(1-k) T_k; pi_{k+1} = t pi_k - b_k pi_{k-1}, b_1 = 1/2, b_k = 1/4
    nu = m.copy()
    nu[1:] *= 2.0 ** (1 - np.arange(1, m.size))
    b = np.full(2 * n, 0.25)
    b[0], b[1] = 0.0, 0.5
    alpha = np.zeros(n)
    beta = np.zeros(n)
    alpha[0] = nu[1] / nu[0]
    beta[0] = nu[0]
    sig_prev = np.zeros(2 * n)
    sig = nu[: 2 * n].copy()
    k_ok = 1
    for k in range(1, n):
        new = np.zeros(2 * n)
        for ell in range(k, 2 * n - k):
            new[ell] = sig[ell + 1] - alpha[k - 1] * sig[ell] - beta[k - 1] * sig_prev[ell] + b[ell] * sig[ell - 1]
        if not new[k] > 1e-10 * abs(sig[k - 1]):
            break
        alpha[k] = new[k + 1] / new[k] - sig[k] / sig[k - 1]
        beta[k] = new[k] / sig[k - 1]
        sig_prev, sig = sig, new
        k_ok = k + 1
    a_, b_ = alpha[:k_ok], beta[1:k_ok]
    if k_ok == 1:
        return np.array([a_[0]]), np.array([beta[0]])
    t, V = eigh_tridiagonal(a_, np.sqrt(b_))
    return t, beta[0] * V[0] ** 2


def _chebyshev(t: np.ndarray, n: int) -> np.ndarray:
    """T_0..T_{n-1} at (complex) t: shape (n,) + t.shape."""
    out = np.empty((n, *np.shape(t)), dtype=np.result_type(t, np.float64))
    out[0] = 1.0
    if n > 1:
        out[1] = t
    for j in range(2, n):
        out[j] = 2.0 * t * out[j - 1] - out[j - 2]
    return out


# ---------------------------------------------------------------------------------------------- integrands
def _integrands(ss: SpectralSums, M: float, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r""":math:`z(\kappa)`, and per :math:`d\kappa`: :math:`\frac M\kappa z'` (eigenvalues) and
    :math:`-\frac{\kappa F_s}{z^2}z'` (initial error)."""
    F, Fs, D = ss.resolvents(kappa)
    z = -kappa * (1.0 - F / M)
    zp = -1.0 + D / M
    return z, M * zp / kappa, -kappa * Fs * zp / (z * z)


def _singular_distance(ss: SpectralSums, kappa: np.ndarray, kappa0: float) -> np.ndarray:
    r"""Distance from :math:`\kappa` to the integrands' singularities: the poles :math:`-\lambda_i`, 0, and
    :math:`\kappa_0` (where :math:`z=0`)."""
    kappa = np.asarray(kappa, dtype=np.complex128)
    d = np.minimum(np.abs(kappa), np.abs(kappa - kappa0))
    for i in range(0, ss.lam.size, 4096):
        d = np.minimum(d, np.min(np.abs(kappa[:, None] + ss.lam[i:i + 4096]), axis=1))
    top = float(ss.node_lam[0]) if ss.has_tail else (ss.far_top if ss.far_trace else 0.0)
    if top > 0:  # the tail's poles fill [-top, 0]
        r, y = kappa.real, np.abs(kappa.imag)
        seg = np.where(r >= 0, np.abs(kappa), np.where(r <= -top, np.abs(kappa + top), y))
        d = np.minimum(d, seg)
    return d


@dataclass(frozen=True)
class _Boundary:
    """A block boundary: a point of the curve (``y > 0``) or of the real axis outside the support (``y = 0``)."""

    r: float
    y: float
    x: float

    @property
    def kappa(self) -> complex:
        return complex(self.r, -self.y)


@dataclass(frozen=True)
class BlockRules:
    r"""The compressed equivalent: nodes, masses (eigenvalue counts) and signal weights (initial-error mass
    :math:`\sum_k\mathbb E(u_k^\top v^*)^2` per node), with diagnostics."""

    x: np.ndarray
    mass: np.ndarray
    signal: np.ndarray
    blocks: int
    path_points: int
    bernstein: float


# ---------------------------------------------------------------------------------------------- the equivalent
@dataclass(frozen=True)
class SketchEquivalent:
    r"""The deterministic equivalent of a Gaussian sketch of size :math:`M` of ``spectrum`` with ``target``.

    Attributes
    ----------
    M : int
        Sketch size.
    kappa0 : float
        The renormalised ridge at :math:`z=0`: :math:`F(\kappa_0)=M`.
    approximation : float
        :math:`\mathbb E_S\mathrm{Approx}\asymp\kappa_0F_s(\kappa_0)`.
    r_top, r_low : float
        The support's edges in :math:`r` (:mod:`scalinglaw.sketch_curve`); ``x_top``, ``x_low`` their
        eigenvalues.
    samples : tuple of ndarray
        ``(r, y, x)`` along the real :math:`r` line (curve points and, outside the support, real points), with
        :math:`x` decreasing: the candidates for block boundaries and the depth check of the paths.
    sums : SpectralSums
        The resolvent sums of :math:`H`.
    level : int
        Refinement level of the sums.
    """

    M: int
    kappa0: float
    approximation: float
    r_top: float
    r_low: float
    x_top: float
    x_low: float
    samples: tuple[np.ndarray, np.ndarray, np.ndarray] = field(repr=False)
    sums: SpectralSums = field(repr=False)
    level: int = 0
    top_mean: float = 0.0
    _rules: dict = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------------------------------ scalars
    def degrees_of_freedom(self, kappa: float) -> float:
        r""":math:`F(\kappa)=\mathrm{df}_1(\kappa)=\sum_i\lambda_i/(\lambda_i+\kappa)` at real :math:`\kappa>0`."""
        return float(self.sums.real_sum(np.array([float(kappa)]), 1, 1)[0])

    def ridge(self, eps: float) -> float:
        r""":math:`\kappa_\epsilon>0` solving :math:`\kappa(1-F(\kappa)/M)=\epsilon` (:math:`\kappa_0` at 0): the
        equivalent of additive noise :math:`\epsilon` on the sketched features (:math:`z=-\epsilon`)."""
        if eps <= 0:
            return self.kappa0

        def f(t: float) -> float:
            k = math.exp(t)
            return k * (1.0 - self.degrees_of_freedom(k) / self.M) - eps

        lo = math.log(self.kappa0)
        hi = math.log(max(self.kappa0, eps) * 2.0)
        while f(hi) < 0:
            hi += 1.0
        return math.exp(optimize.brentq(f, lo, hi, xtol=1e-15, rtol=1e-14, maxiter=400))

    def effective_model_size(self, eps: float) -> float:
        r"""SPEC §5.5's :math:`M_{\rm eff}=\sum_ks_k/\max_ks_k`, :math:`s_k=\mu_k/(\mu_k+\epsilon)`, for additive
        data noise :math:`\epsilon`: :math:`\sum_k\mu_k/(\mu_k+\epsilon)\asymp\mathrm{df}_1(\kappa_\epsilon)`
        [derived: the equivalent of :math:`M(1-m(-\epsilon))`], divided by :math:`\bar\mu_1/(\bar\mu_1+\epsilon)`
        with :math:`\bar\mu_1` the mean of the top component of the support."""
        if eps <= 0:
            return float(self.M)
        top = self.top_mean
        return self.degrees_of_freedom(self.ridge(eps)) * (top + eps) / top

    # ------------------------------------------------------------------------------------------ rules
    def _boundaries(self, ratio: float, fast_rate: float) -> list[_Boundary]:
        """Boundaries from the top (outside the support) down to below the lower edge, log-width about
        ``log ratio`` in x (a quarter of it where ``fast_rate * x > FAST_RATE``)."""
        r, y, x = self.samples
        out = [_Boundary(float(r[0]), float(y[0]), float(x[0]))]
        i = 0
        last = r.size - 1
        while i < last:
            cur = x[i]
            step = ratio ** (0.25 if fast_rate * cur > FAST_RATE else 1.0)
            want = cur / step
            j = i + 1 + int(np.argmin(np.abs(np.log(np.maximum(x[i + 1:], 1e-300)) - math.log(want))))
            if last - j <= 1:
                j = last
            out.append(_Boundary(float(r[j]), float(y[j]), float(x[j])))
            i = j
        return out

    def block_rules(self, *, fast_rate: float = 0.0, level: int = 0, points: int = BLOCK_POINTS) -> BlockRules:
        r"""Gauss rules of :math:`\varrho_K` per block with interpolatory signal weights (module docstring).

        ``level`` halves the blocks' log-width and doubles the path points per level (refinement for error
        estimates); blocks where ``fast_rate * x > FAST_RATE`` are four times narrower in log-width."""
        key = (float(fast_rate), int(level), int(points))
        if key not in self._rules:
            self._rules[key] = self._block_rules(fast_rate, level, points)
        return self._rules[key]

    def _block_rules(self, fast_rate: float, level: int, points: int) -> BlockRules:
        ratio = BLOCK_RATIO ** (0.5**level)
        bounds = self._boundaries(ratio, fast_rate)
        ss, M = self.sums, self.M
        r_s, y_s, _ = self.samples
        paths, meta = [], []
        for A, B in pairwise(bounds):
            inner = (r_s > A.r) & (r_s < B.r)
            kap, w = _path(ss, self.kappa0, A, B, r_s[inner], y_s[inner], 2.0**level)
            paths.append((kap, w))
            meta.append((A, B))
        kap_all = np.concatenate([k for k, _ in paths])
        z, fm, fs = _integrands(ss, M, kap_all)
        xs, ns, sg = [], [], []
        start = 0
        bern = 1.0
        for (kap, w), (A, B) in zip(paths, meta, strict=True):
            sl = slice(start, start + kap.size)
            start += kap.size
            x_hi, x_lo = A.x, B.x
            c, h = 0.5 * (x_hi + x_lo), 0.5 * (x_hi - x_lo)
            t = (z[sl] - c) / h
            rho = np.abs(t + np.sqrt(t - 1.0) * np.sqrt(t + 1.0))
            bern = max(bern, float(np.max(np.maximum(rho, 1.0 / rho))))
            T = _chebyshev(t, 2 * points)
            # the path runs from x_hi to x_lo: the integral over [x_lo, x_hi] is minus it
            mom = -(T * (fm[sl] * w)).sum(axis=1).imag / math.pi
            smom = -(T[:points] * (fs[sl] * w)).sum(axis=1).imag / math.pi
            if not mom[0] > 1e-14 * M:
                continue
            tq, wq = gauss_from_chebyshev_moments(mom, points)
            while tq.size > 1 and not (np.all(wq > 0) and np.all(np.abs(tq) <= 1.0)):
                tq, wq = gauss_from_chebyshev_moments(mom, tq.size - 1)
            V = _chebyshev(tq, tq.size).real
            sq = np.linalg.solve(V, smom[: tq.size])
            xs.append(np.clip(c + h * tq, x_lo, x_hi))
            ns.append(wq)
            sg.append(sq)
        x = np.concatenate(xs)
        mass = np.concatenate(ns)
        order = np.argsort(-x)
        x, mass = x[order], mass[order]
        signal = np.concatenate(sg)[order]
        return BlockRules(x=x, mass=mass, signal=signal, blocks=len(meta), path_points=int(kap_all.size),
                          bernstein=bern)

    def measure(self, sigma2: float, *, fast_rate: float = 0.0, level: int = 0) -> SpectralMeasure:
        r"""The equivalent as the exact engine's input: nodes :math:`x_q`, multiplicities :math:`n_q`,
        per-direction target second moments :math:`\nu_q/n_q`, label noise :math:`\sigma^2+\mathrm{Approx}` and the
        ``sketch_approximation`` offset (:meth:`block_rules`)."""
        rules = self.block_rules(fast_rate=fast_rate, level=level)
        notes = (
            f"deterministic equivalent of the sketch (M={self.M}): {rules.x.size} nodes in {rules.blocks} blocks "
            f"(Gauss rules from contour moments, {rules.path_points} path points); kappa0={self.kappa0:.6g}",
        )
        return SpectralMeasure(
            mu=rules.x, weight=rules.mass, target_sq=rules.signal / rules.mass,
            sigma2=float(sigma2) + self.approximation, target=None,
            excess_offset={"sketch_approximation": self.approximation}, notes=notes, compressed=True,
        )

    def identities(self, rules: BlockRules) -> dict[str, float]:
        r"""Relative residuals of :math:`\sum n=M`, :math:`\sum nx=\operatorname{tr}H`,
        :math:`\sum nx^2=\sum\lambda_i^2+(\operatorname{tr}H)^2/M` and
        :math:`\sum x\nu+\mathrm{Approx}=\sum\lambda_is_i`
        [derived; the first three are exact for the equivalent]."""
        ss = self.sums
        tr = ss.trace
        return {
            "count": float(rules.mass.sum()) / self.M - 1.0,
            "trace": float(rules.x @ rules.mass) / tr - 1.0,
            "second_moment": float((rules.x**2) @ rules.mass) / (ss.square_sum + tr * tr / self.M) - 1.0,
            "signal": (float(rules.x @ rules.signal) + self.approximation) / ss.signal_total - 1.0,
        }


def _points_for(ratio: np.ndarray, scale: float) -> np.ndarray:
    r"""Gauss-Legendre points for a segment whose nearest singularity lies ``ratio`` times its half-length away:
    the error falls like :math:`\rho^{-2n}`, :math:`\rho=\text{ratio}+\sqrt{1+\text{ratio}^2}`; aim at
    :math:`10^{-15}` (times ``scale`` more points for refinement)."""
    rho = ratio + np.sqrt(1.0 + ratio * ratio)
    n = np.ceil(scale * 17.0 / np.log10(np.maximum(rho, 1.0 + 1e-3)))
    return np.clip(n, 4, int(64 * scale)).astype(int)


def _path(ss: SpectralSums, kappa0: float, A: _Boundary, B: _Boundary, r_in: np.ndarray, y_in: np.ndarray,
          scale: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Points and weights (:math:`d\kappa`) of a path below the curve from :math:`\kappa_A` to :math:`\kappa_B`.

    The path drops vertically from :math:`\kappa_A`, follows a polyline of ``PATH_SEGMENTS`` equal segments in
    :math:`r`, each vertex at depth :math:`1.2\max y+0.12\,\Delta r` (the maximum over the sampled curve points
    ``(r_in, y_in)`` between its neighbours; :math:`\Delta r` the block's width: below the curve, close enough that
    :math:`z` stays near the block), and rises vertically into :math:`\kappa_B`. Vertical
    legs are graded towards their ends (:math:`t=d(e^\sigma-1)`, :math:`d` the distance to the nearest
    singularity); each piece gets the Gauss-Legendre points its distance to the singularities asks for
    (:func:`_points_for`)."""
    rv = np.linspace(A.r, B.r, PATH_SEGMENTS + 1)
    rs = np.concatenate([[A.r], r_in, [B.r]])
    ys = np.concatenate([[A.y], y_in, [B.y]])
    # depth at each vertex: above every sampled curve point between its neighbours, plus a margin
    lo = np.searchsorted(rs, np.concatenate([[rv[0]], rv[:-1]]), side="left")
    hi = np.searchsorted(rs, np.concatenate([rv[1:], [rv[-1]]]), side="right")
    ywin = np.array([ys[i:j].max() if j > i else 0.0 for i, j in zip(lo, hi, strict=True)])
    Y = 1.2 * ywin + PATH_DEPTH * (B.r - A.r)
    out_k, out_w = [], []
    kA, kB = A.kappa, B.kappa
    dA, dB = _singular_distance(ss, np.array([kA, kB]), kappa0)
    for k0, d0, depth, sign in ((kA, dA, Y[0], 1.0), (kB, dB, Y[-1], -1.0)):
        length = depth + k0.imag  # from Im = -y down to Im = -depth
        if length <= 0:
            continue
        d0 = max(float(d0), 1e-300)
        smax = math.log1p(length / d0)
        u, wu = unit_gauss_legendre(math.ceil(scale * (8 + 4 * smax)))
        sgm = smax * u
        t = d0 * np.expm1(sgm)
        dt = d0 * np.exp(sgm) * smax * wu
        out_k.append(k0 - 1j * t)
        out_w.append(sign * (-1j) * dt)  # down from A (+), up into B (reversed: -)
    verts = rv - 1j * Y
    mids = 0.5 * (verts[:-1] + verts[1:])
    dist = _singular_distance(ss, np.concatenate([verts, mids]), kappa0)
    dseg = np.minimum(np.minimum(dist[: verts.size - 1], dist[1 : verts.size]), dist[verts.size :])
    half = 0.5 * np.abs(np.diff(verts))
    counts = _points_for(dseg / np.maximum(half, 1e-300), scale)
    for n in np.unique(counts):
        sel = np.nonzero(counts == n)[0]
        u, wu = unit_gauss_legendre(int(n))
        p0, p1 = verts[sel, None], verts[sel + 1, None]
        out_k.append((p0 + (p1 - p0) * u).ravel())
        out_w.append(((p1 - p0) * wu).ravel())
    return np.concatenate(out_k), np.concatenate(out_w)


# ---------------------------------------------------------------------------------------------- builder
def _samples(ss: SpectralSums, M: float, r_top: float, r_low: float, kappa0: float, x_low: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points along the real r line: above the top edge, through the support (log-spaced in |r|, then linear
    around 0, plus the head's poles), and below the lower edge down to x_low / 2; x decreasing."""
    decades = max(1.0, math.log10(abs(r_top) / (1e-3 * r_low)))
    neg = -np.geomspace(abs(r_top), 1e-3 * r_low, max(8, int(SAMPLES_PER_DECADE * decades)))
    mid = np.linspace(-1e-3 * r_low, r_low, 12)[1:-1]
    # the head's poles where components may be separated or barely merged: the curve peaks there. Needed only
    # where the peak (about lam sqrt(c/M), at most thrice that) may exceed the paths' margin (~0.08 |r|)
    u = min(ss.lam.size, 2 * gap_candidates(ss.lam, ss.count, M) + 8)
    lam, c = ss.lam[:u], ss.count[:u]
    poles = -lam[3.0 * np.sqrt(c / M) > 0.02]
    inside = np.unique(np.concatenate([neg[1:], mid, poles]))
    cv = curve_points(ss, M, inside, r_low)
    # real points outside: above the top edge and between the lower edge and kappa0
    top = r_top - 0.05 * abs(r_top)
    below = np.geomspace(r_low, kappa0, 64)[1:-1]
    xb = edge_x(ss, M, below)
    k = int(np.argmin(np.abs(np.log(np.maximum(xb, 1e-300)) - math.log(x_low / 2.0))))
    r = np.concatenate([[top], inside, [below[k]]])
    y = np.concatenate([[0.0], cv.y, [0.0]])
    x = np.concatenate([edge_x(ss, M, np.array([top])), cv.x, [xb[k]]])
    keep = np.concatenate([[True], np.diff(x) < 0])  # x strictly decreasing along r
    return r[keep], y[keep], x[keep]


def _top_component_mean(ss: SpectralSums, M: float, kappa0: float, r_top: float, x_top: float) -> float:
    """Mean eigenvalue of the top connected component (its first moment by the contour of the module docstring,
    up to the first gap); the top edge when the top is not separated."""
    gaps = find_gaps(ss, M, count=1)
    if not gaps:
        return x_top
    g = 0.5 * (gaps[0][0] + gaps[0][1])
    A = _Boundary(r_top - 0.05 * abs(r_top), 0.0, float(edge_x(ss, M, np.array([r_top - 0.05 * abs(r_top)]))[0]))
    B = _Boundary(g, 0.0, float(edge_x(ss, M, np.array([g]))[0]))
    rr = np.linspace(A.r, B.r, 18)[1:-1]
    kap, w = _path(ss, kappa0, A, B, rr, np.full(rr.size, 0.1 * (B.r - A.r)), 1.0)
    z, fm, _ = _integrands(ss, M, kap)
    m0 = -(fm * w).sum().imag / math.pi
    m1 = -(z * fm * w).sum().imag / math.pi
    return float(m1 / m0)


def _check_size(spectrum: Spectrum, M: int) -> int:
    M = int(M)
    if not spectrum.d > M:
        raise ParameterError("M", M, f"be < d={spectrum.d:g} for the deterministic equivalent (K needs a kernel)")
    return M


def _ridge_at_zero(ss: SpectralSums, M: int) -> tuple[float, float]:
    r""":math:`\kappa_0` (:math:`F(\kappa_0)=M`, bisection-free: Brent in :math:`\log\kappa`) and
    :math:`\kappa_0F_s(\kappa_0)`."""
    hi = ss.trace / M  # F(kappa) <= tr H / kappa

    def f0(t: float) -> float:
        return float(ss.real_sum(np.array([math.exp(t)]), 1, 1)[0]) - M

    lo = hi
    for _ in range(400):
        lo *= 0.1
        if f0(math.log(lo)) > 0:
            break
    kappa0 = math.exp(optimize.brentq(f0, math.log(lo), math.log(hi), xtol=1e-15, rtol=1e-15, maxiter=400))
    return kappa0, kappa0 * float(ss.real_sum(np.array([kappa0]), 1, 1, signal=True)[0])


def sketch_approximation(spectrum: Spectrum, target: Target, M: int) -> tuple[float, float]:
    r"""The renormalised ridge :math:`\kappa_0` and :math:`\mathbb E_S\mathrm{Approx}\asymp\kappa_0F_s(\kappa_0)`
    alone (no spectral curve; cheap at any :math:`M`) [derived]."""
    M = _check_size(spectrum, M)
    return _ridge_at_zero(spectral_sums(spectrum, target, M), M)


def sketch_equivalent(spectrum: Spectrum, target: Target, M: int, *, level: int = 0) -> SketchEquivalent:
    r"""The deterministic equivalent of a Gaussian sketch of size ``M`` (see the module docstring).

    Parameters
    ----------
    spectrum, target : Spectrum, Target
        :math:`H` (any :math:`d>M`, including :math:`\infty`) and :math:`w^*`.
    M : int
        Sketch size.
    level : int
        Refinement level of the resolvent sums (error estimates).
    """
    M = _check_size(spectrum, M)
    ss = spectral_sums(spectrum, target, M, level=level)
    kappa0, approx = _ridge_at_zero(ss, M)
    r_top, r_low = top_edge(ss, M), lower_edge(ss, M)
    x_top, x_low = (float(v) for v in edge_x(ss, M, np.array([r_top, r_low])))
    samples = _samples(ss, M, r_top, r_low, kappa0, x_low)
    return SketchEquivalent(M=M, kappa0=kappa0, approximation=approx, r_top=r_top, r_low=r_low, x_top=x_top,
                            x_low=x_low, samples=samples, sums=ss, level=level,
                            top_mean=_top_component_mean(ss, M, kappa0, r_top, x_top))
