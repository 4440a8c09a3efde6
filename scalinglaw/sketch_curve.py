r"""The spectral curve of a Gaussian sketch's deterministic equivalent, on the real axis [derived].

For :math:`\kappa=r-iy`, the point :math:`z(\kappa)=-\kappa(1-F(\kappa)/M)` is real exactly when :math:`y=0` or
:math:`h(r,y)=\frac1M\sum_i\lambda_i^2/((\lambda_i+r)^2+y^2)=1` (``theory/deterministic-equivalent.md``). Since
:math:`h` decreases in :math:`y`, the root :math:`y(r)` is unique and the real parameter :math:`r` traces the
boundary values :math:`\kappa(x+i0)` with no branch to choose. This module solves for :math:`y(r)`, finds the
support's edges and gaps in :math:`r`, and integrates the densities along the curve by adaptive Gauss-Legendre
panels (the fine quadrature: the reference the compressed rules of :mod:`scalinglaw.sketch` are tested against).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from .errors import ParameterError
from .spectral_sums import SpectralSums, gap_candidates

__all__ = ["CurvePoints", "FineQuadrature", "curve_points", "edge_x", "find_gaps", "fine_quadrature", "lower_edge",
           "solve_y", "top_edge", "unit_gauss_legendre"]

#: Gauss-Legendre points per panel in r.
PANEL_POINTS = 8
#: Deepest panel bisection.
MAX_DEPTH = 48


# ---------------------------------------------------------------------------------------------- the curve
@dataclass
class CurvePoints:
    """Evaluations of the spectral curve at parameters ``r`` (one entry per point)."""

    r: np.ndarray
    y: np.ndarray
    x: np.ndarray
    density: np.ndarray  # varrho_K(x) |dx/dr|
    per_signal: np.ndarray  # s(x), per-direction target second moment


def solve_y(ss: SpectralSums, M: float, r: np.ndarray, scale: float) -> np.ndarray:
    r"""The root :math:`y>0` of :math:`h(r,y)=1` (0 where :math:`h(r,0^+)\le1`).

    Two-sided Newton on a bracket :math:`[t_l,t_r]` of :math:`t=y^2` [derived]: :math:`g=1/h-1` is increasing and
    concave in :math:`t` (Cauchy-Schwarz on :math:`h=\sum c_i/(d_i+t)`), so Newton in :math:`t` from the left end
    never passes the root; :math:`\psi=\log h` against :math:`\log t` is exactly linear far from the spectrum and in
    a dense bulk (:math:`h\propto t^{-1/2}`) and concave for one dominant pole, so Newton in :math:`\log t` from
    the right end converges fast where the first is slow. Both ends move every iteration.
    """
    r = np.asarray(r, dtype=np.float64)
    n = r.size
    # left end: h exceeds its largest single term c lam^2 / (M ((lam + r)^2 + t)), which is 1 at this t
    tl = np.maximum((1e-9 * np.maximum(np.abs(r), scale)) ** 2, ss.single_pole_bound(r, M))
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
        conv = (tr[idx] - tl[idx] <= 1e-14 * tr[idx]) | (pl[idx] == 0) | (pr[idx] == 0)
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
        if derivative:
            Ft, _, Gp = ss.tail_resolvent(kappa, derivative=True)
        else:
            Ft, _ = ss.tail_resolvent(kappa)
        G = kappa * Ft
        A = A - G.imag / y
        if derivative:
            dA = dA + (Gp.real / y + G.imag / t) / (2.0 * y)
    psi = np.log(A / M)
    if not derivative:
        return psi, None
    return psi, t * dA / A


def curve_points(ss: SpectralSums, M: float, r: np.ndarray, scale: float) -> CurvePoints:
    r"""Solve the curve at ``r`` and compute :math:`x`, the mass density in :math:`r` and the per-direction signal
    :math:`s(x)=\frac{|\kappa|^2}{Mx^2}\sum_i\lambda_i^2s_i/|\lambda_i+\kappa|^2` (on the real axis outside the
    support too, where :math:`y=0`: its continuation between components)."""
    y = solve_y(ss, M, r, scale)
    _, X, S = ss.head_moduli(r, y)
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
        if np.any(y == 0):  # outside the support: the same formula on the real axis (its continuation)
            real = y == 0
            S = np.where(real, 0.0, S)
            S[real] = ss.real_sum(r[real], 2, 2, signal=True)
        per_signal = mod2 / (M * x * x) * S
    return CurvePoints(r=r, y=y, x=x, density=density, per_signal=per_signal)


# ---------------------------------------------------------------------------------------------- support
def _hreal(ss: SpectralSums, M: float, r: np.ndarray) -> np.ndarray:
    r""":math:`h(r,0)=\frac1M\sum_i\lambda_i^2/(\lambda_i+r)^2` at real :math:`r` (away from the tail's poles)."""
    return ss.real_sum(r, 2, 2) / M


def lower_edge(ss: SpectralSums, M: float) -> float:
    r"""The support's lower edge in :math:`r`: the root :math:`r_e>0` of :math:`h(r,0)=1`
    (:math:`h(\cdot,0)` decreases on :math:`(0,\infty)` from :math:`d/M>1` or :math:`\infty` to 0)."""
    hi = math.sqrt(ss.square_sum / M) * 1.01
    lo = hi
    for _ in range(400):
        lo *= 0.25
        if _hreal(ss, M, np.array([lo]))[0] > 1.0:
            break
    else:
        raise ParameterError("M", M, "be below d: the sketched covariance has no positive lower edge")

    def f_low(t: float) -> float:
        return float(_hreal(ss, M, np.array([math.exp(t)]))[0]) - 1.0

    return math.exp(optimize.brentq(f_low, math.log(lo), math.log(hi), xtol=1e-15, rtol=1e-15, maxiter=400))


def top_edge(ss: SpectralSums, M: float) -> float:
    r"""The support's top edge in :math:`r`: the root :math:`r_L<-\lambda_1` of :math:`h(r,0)=1`
    (:math:`h(\cdot,0)` increases on :math:`(-\infty,-\lambda_1)`)."""
    l1, c1 = float(ss.lam[0]), float(ss.count[0])
    t_lo = 0.5 * l1 * math.sqrt(c1 / M)
    t_hi = math.sqrt(ss.square_sum / M) * 1.01 + t_lo

    def f_top(t: float) -> float:
        return float(_hreal(ss, M, np.array([-l1 - t]))[0]) - 1.0

    return -l1 - optimize.brentq(f_top, t_lo, t_hi, xtol=1e-16 * l1, rtol=1e-15, maxiter=400)


def find_gaps(ss: SpectralSums, M: float, count: int | None = None) -> list[tuple[float, float]]:
    r"""Gaps :math:`(g^-,g^+)` of the support in :math:`r` between the head's first ``count`` pairs of poles
    (default: every pair that may hold one, :func:`~scalinglaw.spectral_sums.gap_candidates`): :math:`h(\cdot,0)`
    is convex between consecutive poles; a gap is where its minimum is below 1 [derived]."""
    lam, c = ss.lam, ss.count
    U = gap_candidates(lam, c, M)
    if count is not None:
        U = min(U, int(count))
    if not U:
        return []
    la, lb = lam[:U], lam[1 : U + 1]
    width = la - lb
    a = np.zeros(U)
    b = np.ones(U)
    for _ in range(60):  # minimum: h'(r) = 0, h' increasing from -inf to +inf on the interval
        m = 0.5 * (a + b)
        up = ss.real_sum(-la + m * width, 2, 3) < 0  # h' = -(2/M) sum lam^2/(lam+r)^3 > 0
        a, b = np.where(up, a, m), np.where(up, m, b)
    tm = 0.5 * (a + b)
    hmin = _hreal(ss, M, -la + tm * width)
    has = np.nonzero(hmin < 1.0)[0]
    if not has.size:
        return []
    la, width, tm = la[has], width[has], tm[has]
    # left edge in (0, tm): h decreasing; right edge in (tm, 1): h increasing
    a1, b1 = np.zeros(has.size), tm.copy()
    a2, b2 = tm.copy(), np.ones(has.size)
    for _ in range(60):
        m1, m2 = 0.5 * (a1 + b1), 0.5 * (a2 + b2)
        in1 = _hreal(ss, M, -la + m1 * width) > 1.0
        a1, b1 = np.where(in1, m1, a1), np.where(in1, b1, m1)
        in2 = _hreal(ss, M, -la + m2 * width) > 1.0
        a2, b2 = np.where(in2, a2, m2), np.where(in2, m2, b2)
    g_lo, g_hi = -la + 0.5 * (a1 + b1) * width, -la + 0.5 * (a2 + b2) * width
    return [(float(u), float(v)) for u, v in zip(g_lo, g_hi, strict=True)]


def edge_x(ss: SpectralSums, M: float, r: np.ndarray) -> np.ndarray:
    r""":math:`x=z(r)=-r(1-F(r)/M)` at real :math:`r` (edges and gaps, where :math:`y=0`)."""
    rr = np.asarray(r, dtype=np.float64)
    return -rr * (1.0 - ss.real_sum(rr, 1, 1) / M)


# ---------------------------------------------------------------------------------------------- quadrature
def unit_gauss_legendre(p: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``p``-point Gauss-Legendre rule on [0, 1] (nodes, weights)."""
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
    u, w = unit_gauss_legendre(p)
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
               ) -> tuple[list[CurvePoints], list[np.ndarray], float]:
    """Adaptive panels: a panel is accepted when its p-point masses (count and signal) agree with its two
    halves' within ``tol`` relative (or a floor); returns the accepted halves' curves and weights and the summed
    error indicator of the mass."""
    p = PANEL_POINTS
    curves: list[CurvePoints] = []
    weights: list[np.ndarray] = []
    err_total = 0.0
    floor_n = 1e-14 * M
    floor_s = 1e-14 * ss.signal_total

    def evaluate(ps: list[_Panel]) -> tuple[CurvePoints, np.ndarray]:
        r, w = _panel_points(ps, p)
        cv = curve_points(ss, M, r.ravel(), scale)
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
            curves.append(CurvePoints(r=cvh.r[rows], y=cvh.y[rows], x=cvh.x[rows], density=cvh.density[rows],
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
class FineQuadrature:
    r"""The densities of the equivalent integrated along the whole curve (descending :math:`x`).

    ``mass`` is the number of eigenvalues of :math:`K` per node, ``signal`` the initial-error mass
    :math:`\sum_k\mathbb E(u_k^\top v^*)^2` per node; ``components`` the ``(x_low, x_high, mass)`` of each
    connected component of the support; ``error`` the adaptive panels' summed error indicator on the mass."""

    x: np.ndarray
    mass: np.ndarray
    signal: np.ndarray
    components: tuple[tuple[float, float, float], ...]
    error: float


def fine_quadrature(ss: SpectralSums, M: float, *, tol: float = 1e-8) -> FineQuadrature:
    r"""Integrate :math:`\varrho_K` and :math:`\varrho_\nu/x` along every component of the curve by adaptive
    panels in :math:`r` (substitution :math:`r=r_{\rm edge}\pm Lu^2` at square-root edges). Cost grows like
    :math:`\sqrt M`: the reference for tests, and the explicit rule of small problems."""
    r_L, r_e = top_edge(ss, M), lower_edge(ss, M)
    gaps = find_gaps(ss, M)
    U = gap_candidates(ss.lam, ss.count, M)
    bps = _breakpoints(ss, M, r_e, U)
    bounds = [r_L] + [v for g in gaps for v in g] + [r_e]
    comps_r = [(bounds[2 * k], bounds[2 * k + 1]) for k in range(len(bounds) // 2)]
    panels: list[_Panel] = []
    for a, b in comps_r:
        inner = bps[(bps > a) & (bps < b)]
        pts = np.concatenate([[a], inner, [b]])
        for i in range(pts.size - 1):
            edge = 2 if pts.size == 2 else (-1 if i == 0 else (1 if i == pts.size - 2 else 0))
            panels.append(_Panel(float(pts[i]), float(pts[i + 1]), edge))
    curves, weights, err = _integrate(ss, M, panels, max(r_e, 1e-300), tol)
    x = np.concatenate([c.x for c in curves])
    w = np.concatenate(weights)
    mass = np.concatenate([c.density for c in curves]) * w
    signal = mass * np.concatenate([c.per_signal for c in curves])
    order = np.argsort(-x)
    x, mass, signal = x[order], mass[order], signal[order]
    ex = edge_x(ss, M, np.array([v for ab in comps_r for v in ab]))
    comps = []
    for k in range(len(comps_r)):
        x_hi, x_lo = float(ex[2 * k]), float(ex[2 * k + 1])
        sel = (x >= x_lo) & (x <= x_hi)
        comps.append((x_lo, x_hi, float(mass[sel].sum())))
    comps.sort(key=lambda c: -c[1])
    return FineQuadrature(x=x, mass=mass, signal=signal, components=tuple(comps), error=err)
