r"""Deterministic equivalent of a Gaussian sketch: the sketched problem averaged over :math:`S` (asymptotic).

Setting (SPEC §1): :math:`x\sim\mathcal N(0,H)`, :math:`H=\mathrm{diag}(\lambda_i)_{i\le d}` (:math:`d\le\infty`),
:math:`S\in\mathbb R^{M\times d}` with entries :math:`\mathcal N(0,1/M)`, :math:`K=SHS^\top`. Given :math:`S`, the
sketched problem is an :math:`M`-dimensional Gaussian regression (:mod:`scalinglaw.reduction`), and its expected
risk under one-pass SGD depends on :math:`S` only through [derived, ``theory/deterministic-equivalent.md``]

* the eigenvalue measure :math:`\sum_k\delta_{\mu_k}` of :math:`K`,
* the initial-error measure :math:`\sum_k\mathbb E(u_k^\top v^*)^2\delta_{\mu_k}` in :math:`K`'s eigenbasis,
* the approximation error :math:`\mathrm{Approx}(S)=\|P_{\ker SH^{1/2}}H^{1/2}w^*\|^2`.

Their deterministic equivalents follow from one scalar fixed point, the renormalised ridge :math:`\kappa(z)`
(Silverstein's equation for the sample covariance :math:`H^{1/2}S^\top SH^{1/2}` written in :math:`\kappa=-z/m`)
[paper: Bach 2024, arXiv 2303.01372; Atanasov, Zavatone-Veth, Pehlevan 2024, arXiv 2405.00592; Paquette,
Paquette, Xiao, Pennington 2024, arXiv 2405.15074 (proved for power-law random features)]:

.. math::

    z=-\kappa\Big(1-\frac{F(\kappa)}M\Big),\qquad F(\kappa)=\sum_i\frac{\lambda_i}{\lambda_i+\kappa},\qquad
    \varrho_K(x)=\frac M\pi\,\mathrm{Im}\frac1{\kappa(x+i0)},\qquad
    \frac{\varrho_\nu(x)}{x}=\frac{y}{\pi x^2}\sum_i\frac{\lambda_i^2s_i}{|\lambda_i+\kappa|^2},

with :math:`\kappa=r-iy`, and :math:`\mathbb E_S\mathrm{Approx}\asymp\kappa_0F_s(\kappa_0)`, :math:`F(\kappa_0)=M`
[derived]. The per-direction target second moment at eigenvalue :math:`x` is therefore
:math:`s(x)=\frac{|\kappa|^2}{Mx^2}\sum_i\lambda_i^2s_i/|\lambda_i+\kappa|^2` [derived].

**Branch-free computation** [derived]. On the real :math:`z` axis, :math:`\mathrm{Im}\,z(\kappa)=0` with
:math:`y>0` is exactly :math:`h(r,y)=\frac1M\sum_i\lambda_i^2/((\lambda_i+r)^2+y^2)=1`; :math:`h` decreases in
:math:`y`, so :math:`y(r)` is unique and the real parameter :math:`r` traces the whole spectral curve with no
branch to choose (Newton continuation in :math:`z` lands on wrong branches). The support in :math:`r` is where
:math:`h(r,0)>1`: a lower bulk edge :math:`r_e>0`, a top edge :math:`r_L<-\lambda_1`, and gaps between poles
:math:`-\lambda_u` found by convexity of :math:`h(\cdot,0)` between poles. On each component the map
:math:`r\mapsto x=\mathrm{Re}\,z` is monotone, :math:`dx/dr=|z'|^2/\mathrm{Re}\,z'` (since :math:`\mathrm{Im}\,z`
stays 0); masses are integrated in :math:`r` by adaptive Gauss-Legendre panels, with the substitution
:math:`r=r_{\rm edge}\pm Lu^2` at square-root edges.

The result, :class:`SketchEquivalent`, holds the fine quadrature (nodes :math:`x_j`, masses :math:`n_j`, signal
:math:`\nu_j=\sum_{k\in j}\rho_k`) and the identities it must satisfy (:math:`\sum n_j=M`,
:math:`\sum n_jx_j=\operatorname{tr}H`, :math:`\sum n_jx_j^2=\sum\lambda_i^2+(\operatorname{tr}H)^2/M`,
:math:`\sum x_j\nu_j+\mathrm{Approx}=\sum\lambda_is_i`) [derived]; :meth:`SketchEquivalent.measure` compresses it into
a :class:`~scalinglaw.measure.SpectralMeasure` for the exact engine.

The equivalent is exact as :math:`M,d\to\infty`; at finite :math:`M` its relative gap to the average over sketches
is :math:`O(1/M)` (checked numerically; ``theory/deterministic-equivalent.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from scipy.linalg import eigh_tridiagonal

from .errors import ParameterError
from .measure import BLOCK_LAMBDA_RATIO, BLOCK_POINTS, FAST_RATE, SpectralMeasure
from .spectra import Spectrum
from .spectral_sums import SpectralSums, gap_candidates, spectral_sums
from .targets import Target

__all__ = ["SketchEquivalent", "compress_measure", "sketch_equivalent"]

#: Gauss-Legendre points per panel in r.
PANEL_POINTS = 8
#: Relative tolerance of the adaptive panels at refinement level 0 (divided by 100 per level).
PANEL_TOL = 1e-8
#: Deepest panel bisection.
MAX_DEPTH = 48


# ---------------------------------------------------------------------------------------------- the curve
@dataclass
class _Curve:
    """Evaluations of the spectral curve at parameters ``r`` (one entry per point)."""

    r: np.ndarray
    y: np.ndarray
    x: np.ndarray
    density: np.ndarray  # varrho_K(x) |dx/dr|
    per_signal: np.ndarray  # s(x), per-direction target second moment


def _solve_y(ss: SpectralSums, M: float, r: np.ndarray, scale: float) -> np.ndarray:
    r"""The root :math:`y>0` of :math:`h(r,y)=1` (0 where :math:`h(r,0^+)\le1`).

    Two-sided Newton on a bracket :math:`[t_l,t_r]` of :math:`t=y^2` [derived]: :math:`g=1/h-1` is increasing and
    concave in :math:`t` (Cauchy-Schwarz on :math:`h=\sum c_i/(d_i+t)`), so Newton in :math:`t` from the left end
    never passes the root; :math:`\psi=\log h` against :math:`\log t` is exactly linear far from the spectrum and in
    a dense bulk (:math:`h\propto t^{-1/2}`) and concave for one dominant pole, so Newton in :math:`\log t` from
    the right end converges fast where the first is slow. Both ends move every iteration.
    """
    r = np.asarray(r, dtype=np.float64)
    n = r.size
    tl = (1e-9 * np.maximum(np.abs(r), scale)) ** 2
    tr = np.full(n, ss.square_sum / M * 1.0001)
    pl, dl = _psi(ss, M, r, np.log(tl), derivative=True)
    pr, dr = _psi(ss, M, r, np.log(tr), derivative=True)
    out = np.zeros(n)
    idx = np.nonzero(pl > 0)[0]  # inside the support: h(r, 0+) > 1
    for _ in range(100):
        if idx.size == 0:
            break
        a, b = tl[idx], tr[idx]
        # left: g = exp(-psi) - 1, dg/dt = -exp(-psi) psi'(u) / t
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            gl = np.expm1(-pl[idx])
            dgl = -np.exp(-pl[idx]) * dl[idx] / a
            cl = a - gl / dgl
            cr = b * np.exp(-pr[idx] / dr[idx])
        cl = np.where(np.isfinite(cl) & (cl > a) & (cl < b), cl, np.sqrt(a * b))
        cr = np.where(np.isfinite(cr) & (cr > a) & (cr < b), cr, np.sqrt(a * b))
        cr = np.where(np.abs(cr - cl) <= 1e-15 * b, np.minimum(b, cr * (1 + 1e-14)), cr)
        both = np.concatenate([cl, cr])
        pb, db = _psi(ss, M, np.concatenate([r[idx], r[idx]]), np.log(both), derivative=True)
        m = idx.size
        for c, p_, d_ in ((cl, pb[:m], db[:m]), (cr, pb[m:], db[m:])):
            inside = p_ > 0
            tl[idx] = np.where(inside & (c > tl[idx]), c, tl[idx])
            pl[idx] = np.where(inside & (c >= tl[idx]), p_, pl[idx])
            dl[idx] = np.where(inside & (c >= tl[idx]), d_, dl[idx])
            outside = ~inside
            tr[idx] = np.where(outside & (c < tr[idx]), c, tr[idx])
            pr[idx] = np.where(outside & (c <= tr[idx]), p_, pr[idx])
            dr[idx] = np.where(outside & (c <= tr[idx]), d_, dr[idx])
        conv = (tr[idx] - tl[idx] <= 2e-15 * tr[idx]) | (pl[idx] == 0) | (pr[idx] == 0)
        done = idx[conv]
        out[done] = np.sqrt(np.where(pl[done] == 0, tl[done], np.where(pr[done] == 0, tr[done],
                                                                          0.5 * (tl[done] + tr[done]))))
        idx = idx[~conv]
    if idx.size:
        out[idx] = np.sqrt(0.5 * (tl[idx] + tr[idx]))
    return out


def _psi(ss: SpectralSums, M: float, r: np.ndarray, u: np.ndarray, *, derivative: bool
         ) -> tuple[np.ndarray, np.ndarray | None]:
    r""":math:`\psi=\log h(r,y)` at :math:`y^2=t=e^u`, and :math:`d\psi/du=t\,h'(t)/h`. Head in real arithmetic;
    tail through :math:`G=\kappa F_{\rm tail}`: :math:`Mh_{\rm tail}=-\mathrm{Im}\,G/y` and
    :math:`d(Mh_{\rm tail})/dt=(\mathrm{Re}\,G'/y+\mathrm{Im}\,G/y^2)/(2y)`."""
    t = np.exp(u)
    y = np.sqrt(t)
    A, B = ss.head_h(r, y)
    dA = -B
    if ss.has_tail or ss.far_trace:
        kappa = r - 1j * y
        Ft, _ = ss.tail_resolvent(kappa)
        G = kappa * Ft
        A = A - G.imag / y
        if derivative:
            Gp = ss.resolvent_derivative(kappa, tail_only=True)
            dA = dA + (Gp.real / y + G.imag / t) / (2.0 * y)
    psi = np.log(A / M)
    if not derivative:
        return psi, None
    return psi, t * dA / A


def _evaluate(ss: SpectralSums, M: float, r: np.ndarray, scale: float) -> _Curve:
    """Solve the curve at ``r`` and compute x, the mass density in r and the per-direction signal."""
    y = _solve_y(ss, M, r, scale)
    A, X, S = ss.head_moduli(r, y)
    kappa = r - 1j * y
    if ss.has_tail or ss.far_trace:
        Ft, Fst = ss.tail_resolvent(kappa)
        kF = kappa * Ft
        X = X + kF.real
        pos = y > 0
        S = S + np.where(pos, -(kappa * Fst).imag / np.where(pos, y, 1.0), 0.0)
    x = -r + X / M
    zp = -1.0 + ss.resolvent_derivative(kappa) / M
    re = zp.real
    with np.errstate(divide="ignore", invalid="ignore"):
        dxdr = np.abs(zp) ** 2 / np.abs(re)
        mod2 = r * r + y * y
        density = np.where(y > 0, (M / math.pi) * y / mod2 * dxdr, 0.0)
        per_signal = np.where(y > 0, mod2 / (M * x * x) * S, 0.0)
    return _Curve(r=r, y=y, x=x, density=density, per_signal=per_signal)


# ---------------------------------------------------------------------------------------------- support
def _hreal(ss: SpectralSums, M: float, r: np.ndarray) -> np.ndarray:
    return ss.real_sum(r, 2, 2) / M


def _find_edges(ss: SpectralSums, M: float) -> tuple[float, float, list[tuple[float, float]]]:
    r"""Top edge :math:`r_L<-\lambda_1`, lower edge :math:`r_e>0` and the gaps :math:`(g^-,g^+)` of the support
    of the spectral curve in :math:`r` [derived]."""
    lam, c = ss.lam, ss.count
    sq = ss.square_sum
    # lower edge: h(r, 0) decreases on (0, inf) from d/M > 1 (or inf) to 0
    hi = math.sqrt(sq / M) * 1.01
    lo = hi
    for _ in range(400):
        lo *= 0.25
        if _hreal(ss, M, np.array([lo]))[0] > 1.0:
            break
    else:
        raise ParameterError("M", M, "be below d: the sketched covariance has no positive lower edge")

    def f_low(t: float) -> float:
        return float(_hreal(ss, M, np.array([math.exp(t)]))[0]) - 1.0

    r_e = math.exp(optimize.brentq(f_low, math.log(lo), math.log(hi), xtol=1e-15, rtol=1e-15, maxiter=400))
    # top edge: h increases on (-inf, -lambda_1)
    l1 = float(lam[0])
    t_lo = 0.5 * l1 * math.sqrt(c[0] / M)
    t_hi = math.sqrt(sq / M) * 1.01 + t_lo

    def f_top(t: float) -> float:
        return float(_hreal(ss, M, np.array([-l1 - t]))[0]) - 1.0

    r_L = -l1 - optimize.brentq(f_top, t_lo, t_hi, xtol=1e-16 * l1, rtol=1e-15, maxiter=400)
    # gaps between the head's poles (convex h between consecutive poles)
    U = gap_candidates(lam, c, M)
    gaps: list[tuple[float, float]] = []
    if U:
        la, lb = lam[:U], lam[1 : U + 1]
        width = la - lb

        def rr(theta: np.ndarray) -> np.ndarray:
            return -la + theta * width

        a = np.zeros(U)
        b = np.ones(U)
        for _ in range(60):  # minimum: h'(r) = 0, h' increasing from -inf to +inf on the interval
            m = 0.5 * (a + b)
            up = ss.real_sum(rr(m), 2, 3) < 0  # h' = -(2/M) sum lam^2/(lam+r)^3 > 0
            a, b = np.where(up, a, m), np.where(up, m, b)
        tm = 0.5 * (a + b)
        hmin = _hreal(ss, M, rr(tm))
        has = np.nonzero(hmin < 1.0)[0]
        if has.size:
            la, lb, width, tm = la[has], lb[has], width[has], tm[has]

            def rr2(theta: np.ndarray) -> np.ndarray:
                return -la + theta * width

            # left edge in (0, tm): h decreasing; right edge in (tm, 1): h increasing
            a1, b1 = np.zeros(has.size), tm.copy()
            a2, b2 = tm.copy(), np.ones(has.size)
            for _ in range(60):
                m1, m2 = 0.5 * (a1 + b1), 0.5 * (a2 + b2)
                in1 = _hreal(ss, M, rr2(m1)) > 1.0
                a1, b1 = np.where(in1, m1, a1), np.where(in1, b1, m1)
                in2 = _hreal(ss, M, rr2(m2)) > 1.0
                a2, b2 = np.where(in2, a2, m2), np.where(in2, m2, b2)
            g_lo, g_hi = rr2(0.5 * (a1 + b1)), rr2(0.5 * (a2 + b2))
            gaps = [(float(u), float(v)) for u, v in zip(g_lo, g_hi, strict=True)]
    return r_L, r_e, gaps


# ---------------------------------------------------------------------------------------------- quadrature
def _gauss_legendre(p: int) -> tuple[np.ndarray, np.ndarray]:
    t, w = np.polynomial.legendre.leggauss(p)
    return 0.5 * (t + 1.0), 0.5 * w


@dataclass
class _Panel:
    a: float
    b: float
    edge: int  # -1: square-root edge at a; +1: at b; 0: none; 2: both
    depth: int = 0


def _panel_points(panels: list[_Panel], p: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes in r and weights (Jacobian included) of the p-point rule on each panel (rows)."""
    u, w = _gauss_legendre(p)
    a = np.array([q.a for q in panels])[:, None]
    b = np.array([q.b for q in panels])[:, None]
    e = np.array([q.edge for q in panels])[:, None]
    L = b - a
    # edge at a: r = a + L u^2; at b: r = b - L (1-u)^2; both: r = a + L (3u^2 - 2u^3)... use symmetric sine map
    r = np.where(e == -1, a + L * u * u, np.where(e == 1, b - L * (1 - u) ** 2,
                 np.where(e == 2, a + L * 0.5 * (1 - np.cos(math.pi * u)), a + L * u)))
    jac = np.where(e == -1, 2 * L * u, np.where(e == 1, 2 * L * (1 - u),
                   np.where(e == 2, L * 0.5 * math.pi * np.sin(math.pi * u), L + 0 * u)))
    return r, jac * w


def _split(q: _Panel) -> tuple[_Panel, _Panel]:
    m = 0.5 * (q.a + q.b)
    left_edge = -1 if q.edge in (-1, 2) else 0
    right_edge = 1 if q.edge in (1, 2) else 0
    return _Panel(q.a, m, left_edge, q.depth + 1), _Panel(m, q.b, right_edge, q.depth + 1)


def _integrate(ss: SpectralSums, M: float, panels: list[_Panel], scale: float, tol: float
               ) -> tuple[list[_Curve], list[np.ndarray], float]:
    """Adaptive panels: a panel is accepted when its p-point masses (count and signal) agree with its two
    halves' within ``tol`` relative (or a floor); returns the accepted halves' curves and weights and the summed
    error indicator of the mass."""
    p = PANEL_POINTS
    curves: list[_Curve] = []
    weights: list[np.ndarray] = []
    err_total = 0.0
    floor_n = 1e-14 * M
    floor_s = 1e-14 * ss.signal_total

    def evaluate(ps: list[_Panel]) -> tuple[_Curve, np.ndarray]:
        r, w = _panel_points(ps, p)
        cv = _evaluate(ss, M, r.ravel(), scale)
        return cv, w

    cv, w = evaluate(panels)
    n_whole = (cv.density.reshape(w.shape) * w).sum(axis=1)
    s_whole = (cv.density.reshape(w.shape) * cv.per_signal.reshape(w.shape) * w).sum(axis=1)
    while panels:
        halves = [h for q in panels for h in _split(q)]
        cvh, wh = evaluate(halves)
        dens = cvh.density.reshape(wh.shape)
        nh = (dens * wh).sum(axis=1)
        sh = (dens * cvh.per_signal.reshape(wh.shape) * wh).sum(axis=1)
        n2 = nh[0::2] + nh[1::2]
        s2 = sh[0::2] + sh[1::2]
        en = np.abs(n2 - n_whole)
        es = np.abs(s2 - s_whole)
        depth = np.array([q.depth for q in panels])
        ok = ((en <= np.maximum(tol * np.abs(n2), floor_n)) & (es <= np.maximum(tol * np.abs(s2), floor_s))) | (
            depth >= MAX_DEPTH)
        keep = np.repeat(ok, 2)
        if np.any(keep):
            sel = np.nonzero(keep)[0]
            rows = np.repeat(sel * p, p) + np.tile(np.arange(p), sel.size)
            curves.append(_Curve(r=cvh.r[rows], y=cvh.y[rows], x=cvh.x[rows], density=cvh.density[rows],
                                 per_signal=cvh.per_signal[rows]))
            weights.append(wh[sel].ravel())
            err_total += float(en[ok].sum())
        nxt = np.nonzero(~keep)[0]
        panels = [halves[i] for i in nxt]
        n_whole, s_whole = nh[nxt], sh[nxt]
    return curves, weights, err_total


def _breakpoints(ss: SpectralSums, M: float, r_e: float, U: int) -> np.ndarray:
    r"""Interior breakpoints in :math:`r`: the head's poles up to index :math:`4U+8`, then poles at
    geometrically spaced indices down to :math:`\lambda\approx r_e/100`, and 0."""
    lam = ss.lam
    n_all = min(lam.size, 4 * U + 8)
    pts = list(-lam[:n_all])
    levels = np.concatenate([lam[n_all:], ss.node_lam]) if ss.has_tail else lam[n_all:]
    if levels.size:
        idx = np.unique(np.round(np.geomspace(1, levels.size, max(2, int(4 * math.log2(levels.size + 1))))) - 1)
        sel = levels[idx.astype(int)]
        pts += list(-sel[sel > 1e-2 * r_e])
    pts.append(0.0)
    return np.unique(np.array(pts))


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
    x, mass, signal : ndarray
        The fine quadrature (descending :math:`x`): eigenvalue nodes of :math:`K`, their masses (number of
        eigenvalues) and signal :math:`\sum_k\mathbb E(u_k^\top v^*)^2` over the cell.
    components : tuple
        ``(x_low, x_high, mass)`` of each connected component of the support.
    identities : dict
        Relative residuals of the identities in the module docstring (quadrature accuracy).
    quadrature_error : float
        Summed error indicator of the adaptive panels on the mass (absolute, eigenvalue count).
    sums : SpectralSums
        The resolvent sums of :math:`H` (for :meth:`ridge`).
    """

    M: int
    kappa0: float
    approximation: float
    x: np.ndarray = field(repr=False)
    mass: np.ndarray = field(repr=False)
    signal: np.ndarray = field(repr=False)
    components: tuple[tuple[float, float, float], ...] = field(repr=False)
    identities: dict[str, float] = field(default_factory=dict)
    quadrature_error: float = 0.0
    sums: SpectralSums | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------------------------------ scalars
    def degrees_of_freedom(self, kappa: float) -> float:
        r""":math:`F(\kappa)=\sum_i\lambda_i/(\lambda_i+\kappa)` at real :math:`\kappa>0`."""
        assert self.sums is not None
        return float(self.sums.real_sum(np.array([float(kappa)]), 1, 1)[0])

    def ridge(self, eps: float) -> float:
        r""":math:`\kappa_\epsilon>0` solving :math:`\kappa(1-F(\kappa)/M)=\epsilon` (:math:`\kappa_0` at 0)."""
        if eps <= 0:
            return self.kappa0

        def f(t: float) -> float:
            k = math.exp(t)
            return k * (1.0 - self.degrees_of_freedom(k) / self.M) - eps

        lo = math.log(self.kappa0)
        hi = math.log(max(self.kappa0, eps) * 2.0 + 1e-300)
        while f(hi) < 0:
            hi += 1.0
        return math.exp(optimize.brentq(f, lo, hi, xtol=1e-15, rtol=1e-14, maxiter=400))

    def effective_model_size(self, eps: float) -> float:
        r""":math:`\mathrm{df}_1(\kappa_\epsilon)=` the equivalent of :math:`\sum_k\mu_k/(\mu_k+\epsilon)`
        [derived], divided by the top direction's :math:`\bar\mu_1/(\bar\mu_1+\epsilon)` (SPEC §5.5's
        normalisation; :math:`\bar\mu_1` the mean of the top component)."""
        if eps <= 0:
            return float(self.M)
        top = self.top_mean()
        return self.degrees_of_freedom(self.ridge(eps)) * (top + eps) / top

    def top_mean(self) -> float:
        """Mean eigenvalue of the top connected component of the support."""
        lo, hi, _ = self.components[0]
        sel = (self.x >= lo) & (self.x <= hi)
        return float((self.x[sel] * self.mass[sel]).sum() / self.mass[sel].sum())

    # ------------------------------------------------------------------------------------------ measure
    def measure(self, sigma2: float, *, fast_rate: float = 0.0, level: int = 0) -> SpectralMeasure:
        r"""The equivalent as the exact engine's input: nodes :math:`x`, multiplicities, per-direction target
        second moments, label noise :math:`\sigma^2+\mathrm{Approx}` and the ``sketch_approximation`` offset.

        ``fast_rate`` is the largest step times the data quantizer's rate scale: nodes with
        ``fast_rate * x > FAST_RATE`` stay as computed; the others are compressed per log-width block
        (:func:`compress_measure`).
        """
        x, n, s = compress_measure(self.x, self.mass, self.signal, fast_rate=fast_rate, level=level)
        notes = (
            f"deterministic equivalent of the sketch (M={self.M}): {self.x.size} quadrature nodes compressed to "
            f"{x.size}; renormalised ridge kappa0={self.kappa0:.6g}",
        )
        return SpectralMeasure(
            mu=x, weight=n, target_sq=s / n, sigma2=float(sigma2) + self.approximation, target=None,
            excess_offset={"sketch_approximation": self.approximation}, notes=notes, compressed=True,
        )


def _lanczos_gauss(t: np.ndarray, w: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """The p-point Gauss rule of the discrete measure sum_j w_j delta_{t_j} (Lanczos with reorthogonalisation,
    then Golub-Welsch)."""
    q = np.sqrt(w / w.sum())
    Q = np.zeros((p, t.size))
    alpha = np.zeros(p)
    beta = np.zeros(max(p - 1, 0))
    v = q
    for k in range(p):
        Q[k] = v
        u = t * v
        alpha[k] = u @ v
        u = u - alpha[k] * v - (beta[k - 1] * Q[k - 1] if k else 0.0)
        u -= Q[: k + 1].T @ (Q[: k + 1] @ u)
        if k < p - 1:
            beta[k] = np.linalg.norm(u)
            v = u / beta[k]
    nodes, V = eigh_tridiagonal(alpha, beta)
    return nodes, w.sum() * V[0] ** 2


def compress_measure(x: np.ndarray, n: np.ndarray, s: np.ndarray, *, fast_rate: float = 0.0, level: int = 0,
                     points: int = BLOCK_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Compress a fine discrete measure :math:`\sum_jn_j\delta_{x_j}` with signal weights :math:`\nu_j` [derived].

    Blocks of log-width :math:`\log\sqrt{10}\,2^{-\text{level}}` in :math:`x` (below the fast nodes,
    ``fast_rate * x > FAST_RATE``, which stay) are replaced by the ``points``-point Gauss rule of
    :math:`\sum n_j\delta_{x_j}` (exact for polynomials of degree :math:`2p-1` in :math:`x`: count, trace and
    :math:`\sum nx^2` are kept) and the signal by the interpolatory weights at its nodes
    :math:`\nu_q=\sum_j\nu_j\ell_q(x_j)` (exact to degree :math:`p-1`). A block whose interpolatory signal is not
    positive stays uncompressed.

    Returns nodes, masses and signal weights (descending nodes).
    """
    order = np.argsort(-x)
    x, n, s = x[order], n[order], s[order]
    keep = n > 0
    x, n, s = x[keep], n[keep], s[keep]
    fast = fast_rate * x > FAST_RATE
    xs, ns, ss = [x[fast]], [n[fast]], [s[fast]]
    rest = ~fast
    xr, nr, sr = x[rest], n[rest], s[rest]
    if xr.size:
        width = math.log(BLOCK_LAMBDA_RATIO) * 0.5**level
        top = math.log(xr[0]) + 1e-12
        block = np.floor((top - np.log(xr)) / width).astype(np.int64)
        starts = np.nonzero(np.diff(np.concatenate([[-1], block])))[0]
        ends = np.append(starts[1:], xr.size)
        for i0, i1 in zip(starts, ends, strict=True):
            bx, bn, bs = xr[i0:i1], nr[i0:i1], sr[i0:i1]
            if bx.size <= points:
                xs.append(bx)
                ns.append(bn)
                ss.append(bs)
                continue
            lo, hi = bx[-1], bx[0]
            c, h = 0.5 * (lo + hi), 0.5 * (hi - lo)
            t = (bx - c) / h
            tq, wq = _lanczos_gauss(t, bn, points)
            # interpolatory signal weights: nu_q = sum_j nu_j l_q(t_j)
            diff = t[:, None] - tq[None, :]
            lag = np.ones((t.size, points))
            for m in range(points):
                others = [k for k in range(points) if k != m]
                lag[:, m] = np.prod(diff[:, others], axis=1) / np.prod(tq[m] - tq[others])
            sq = bs @ lag
            if np.all(sq > 0) and np.all(wq > 0):
                xs.append(c + h * tq[::-1])
                ns.append(wq[::-1])
                ss.append(sq[::-1])
            else:
                xs.append(bx)
                ns.append(bn)
                ss.append(bs)
    return np.concatenate(xs), np.concatenate(ns), np.concatenate(ss)


# ---------------------------------------------------------------------------------------------- builder
def sketch_equivalent(spectrum: Spectrum, target: Target, M: int, *, level: int = 0) -> SketchEquivalent:
    r"""The deterministic equivalent of a Gaussian sketch of size ``M`` (see the module docstring).

    Parameters
    ----------
    spectrum, target : Spectrum, Target
        :math:`H` (any :math:`d>M`, including :math:`\infty`) and :math:`w^*`.
    M : int
        Sketch size.
    level : int
        Refinement level: the spectrum's blocks and the panels' tolerance are refined (error estimates).
    """
    M = int(M)
    if not spectrum.d > M:
        raise ParameterError("M", M, f"be < d={spectrum.d:g} for the deterministic equivalent (K needs a kernel)")
    ss = spectral_sums(spectrum, target, M, level=level)
    # renormalised ridge at z = 0
    hi = ss.trace / M

    def f0(t: float) -> float:
        return float(ss.real_sum(np.array([math.exp(t)]), 1, 1)[0]) - M

    lo = hi
    for _ in range(400):
        lo *= 0.1
        if f0(math.log(lo)) > 0:
            break
    kappa0 = math.exp(optimize.brentq(f0, math.log(lo), math.log(hi), xtol=1e-15, rtol=1e-15, maxiter=400))
    approx = kappa0 * float(ss.real_sum(np.array([kappa0]), 1, 1, signal=True)[0])
    r_L, r_e, gaps = _find_edges(ss, M)
    U = gap_candidates(ss.lam, ss.count, M)
    bps = _breakpoints(ss, M, r_e, U)
    bounds = [r_L] + [v for g in gaps for v in g] + [r_e]
    panels: list[_Panel] = []
    comps_r = [(bounds[2 * k], bounds[2 * k + 1]) for k in range(len(bounds) // 2)]
    for a, b in comps_r:
        inner = bps[(bps > a) & (bps < b)]
        pts = np.concatenate([[a], inner, [b]])
        for i in range(pts.size - 1):
            edge = (-1 if i == 0 else 0) + (1 if i == pts.size - 2 else 0)
            if i == 0 and i == pts.size - 2:
                edge = 2
            panels.append(_Panel(float(pts[i]), float(pts[i + 1]), edge))
    tol = PANEL_TOL * 0.01**level
    curves, weights, qerr = _integrate(ss, M, panels, max(r_e, 1e-300), tol)
    x = np.concatenate([c.x for c in curves])
    w = np.concatenate(weights)
    dens = np.concatenate([c.density for c in curves])
    per = np.concatenate([c.per_signal for c in curves])
    mass = dens * w
    signal = mass * per
    order = np.argsort(-x)
    x, mass, signal = x[order], mass[order], signal[order]
    # components in x (r decreasing <-> x increasing)
    comps = []
    edges_x = _edge_x(ss, M, [v for ab in comps_r for v in ab])
    for k, (a, b) in enumerate(comps_r):
        x_hi, x_lo = edges_x[2 * k], edges_x[2 * k + 1]
        sel = (x >= x_lo) & (x <= x_hi)
        comps.append((x_lo, x_hi, float(mass[sel].sum())))
    comps.sort(key=lambda c: -c[1])
    tr = ss.trace
    identities = {
        "count": float(mass.sum()) / M - 1.0,
        "trace": float(x @ mass) / tr - 1.0,
        "second_moment": float((x * x) @ mass) / (ss.square_sum + tr * tr / M) - 1.0,
        "signal": (float(x @ signal) + approx) / ss.signal_total - 1.0,
    }
    return SketchEquivalent(M=M, kappa0=kappa0, approximation=approx, x=x, mass=mass, signal=signal,
                            components=tuple(comps), identities=identities, quadrature_error=qerr, sums=ss)


def _edge_x(ss: SpectralSums, M: float, r: list[float]) -> list[float]:
    r""":math:`x=z(r)` at real edges (:math:`y=0`): :math:`z=-r(1-F(r)/M)`."""
    rr = np.asarray(r, dtype=np.float64)
    return list(-rr * (1.0 - ss.real_sum(rr, 1, 1) / M))
