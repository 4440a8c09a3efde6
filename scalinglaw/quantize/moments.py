r"""Exact moments of a real number format applied to a Gaussian coordinate [derived].

For :math:`x\sim\mathcal N(0,\lambda)` and a format :math:`Q` that rounds each coordinate on its own to a fixed
symmetric grid (INT with a fixed range, FP without absmax scaling; stochastic or round-to-nearest), the exact
engine needs five moments per coordinate (``theory/exact-risk.md`` §2):

.. math::

    \mathbb EQ^2,\quad \mathbb E[Qx],\quad \mathbb EQ^4,\quad \mathbb E[Q^3x],\quad \mathbb E[Q^2x^2].

**Cells.** Between neighbouring grid points :math:`g_-<g_+` (spacing :math:`\Delta`, :math:`u=(x-g_-)/\Delta`),
:math:`\mathbb E[Q^k\mid x]` is the linear interpolant of :math:`v^k` on :math:`[g_-,g_+]` for stochastic rounding
and the step :math:`g_\mp^k` (below/above the midpoint) for round-to-nearest; beyond the largest value :math:`G`
the format saturates, :math:`Q=\pm G`. Every moment is therefore a sum over cells of Gaussian partial moments
:math:`\int x^p\varphi` (:math:`p\le4`, erfc and exp): exact, no quadrature (:func:`_cell_excess`).

**Fine segments.** With :math:`\eta=Q-x`, :math:`\mathbb E[\eta^q\mid x]=\Delta^q m_q(u)` with the same polynomial
window :math:`m_q` in every cell (stochastic: :math:`m_1=0`, :math:`m_2=u(1-u)`, :math:`m_3=(1-2u)u(1-u)`,
:math:`m_4=u(1-u)(1-3u+3u^2)`; nearest: :math:`m_q=(-u)^q` below the midpoint, :math:`(1-u)^q` above), and
:math:`Q^kx^j-x^{k+j}` expands in :math:`x^p\eta^q`. On a run of :math:`n` cells of equal spacing from grid point
:math:`a` to :math:`b` and any smooth :math:`F`, with Bernoulli polynomials :math:`B_r` and
:math:`\beta_{q,r}=\int_0^1B_r(u)m_q(u)\,du`,

.. math::

    \int_a^bF(x)\,m_q(u(x))\,dx=\bar m_q\int_a^bF+\sum_{r=1}^{R}\frac{\Delta^r\beta_{q,r}}{r!}
    \big[F^{(r-1)}\big]_a^b+(-1)^R\Delta^R\!\int_a^bF^{(R)}V_R(u(x))\,dx,

where :math:`V_R` is the :math:`R`-th zero-mean periodic antiderivative of :math:`m_q-\bar m_q`
(Euler-Maclaurin with a periodic weight; integrate by parts :math:`R` times) [derived]. For
:math:`F=x^p\varphi_\sigma` the remainder is at most :math:`\|V_R\|_\infty\Delta^R\int|F^{(R)}|`,
about :math:`2(\Delta/2\pi\sigma)^R\sqrt{R!}` relative: with :math:`\Delta\le\sigma/4` and :math:`R=12` below
:math:`10^{-12}` (the tests check it against the cell sum and mpmath). Runs with :math:`\Delta\le\sigma/4` use this
expansion (fp16, bf16, fp32 and wide INT need it: millions of cells), coarser ones the cell sum, restricted to
:math:`|x|<40\sigma` (the Gaussian mass beyond is below :math:`10^{-340}`). Rounding errors are relative to the
moment (a few ulps per cell that carries mass).

**Small variances.** Below a few hundredths of the first cell, :math:`\mathbb EQ^2=A+B\sqrt{2\lambda/\pi}`
exactly (:func:`deep_second_moment`): :math:`B` = the subnormal spacing for stochastic FP (additive-like, not
relative: the trace :math:`\sum_i\mathbb EQ(x_i)^2` of a power law :math:`i^{-a}` diverges for :math:`a\le2`),
:math:`A=(\Delta/2)^2` for INT (zero is not a level), :math:`A=B=0` for FP round-to-nearest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from numpy.polynomial import polynomial as P
from scipy import special

from .. import _checks
from ..errors import ParameterError
from .base import Quantizer
from .formats import FloatFormat, IntFormat

__all__ = [
    "FixedGrid",
    "GridMoments",
    "deep_second_moment",
    "fixed_grid",
    "grid_moments",
    "second_moment_bound",
]

#: Standard deviations beyond which the Gaussian density is treated as zero (mass < 1e-340).
CUTOFF = 40.0
#: A run of cells with spacing <= FINE * sigma is summed by the Euler-Maclaurin expansion, coarser ones cell by cell.
FINE = 0.25
#: Number of Euler-Maclaurin correction terms.
EM_TERMS = 12
#: Runs ending below this many standard deviations contribute below 1e-18 relative and are skipped.
NEGLIGIBLE = 1e-6

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

#: The five moments as (k, j): E[Q^k x^j].
_MOMENTS = ((2, 0), (1, 1), (4, 0), (3, 1), (2, 2))
#: Q^k x^j - x^(k+j) = sum of coef * x^p eta^q (eta = Q - x), per moment.
_EXPANSION = (
    ((2, 1, 1), (1, 0, 2)),
    ((1, 1, 1),),
    ((4, 3, 1), (6, 2, 2), (4, 1, 3), (1, 0, 4)),
    ((3, 3, 1), (3, 2, 2), (1, 1, 3)),
    ((2, 3, 1), (1, 2, 2)),
)


@dataclass(frozen=True)
class FixedGrid:
    r"""The non-negative half of a format's symmetric grid, as runs of equally spaced cells.

    Attributes
    ----------
    start, spacing, cells : ndarray
        Run :math:`k` covers :math:`[a_k,a_k+n_k\Delta_k]` with :math:`n_k` cells of width :math:`\Delta_k`.
    zero_cell : float
        Half-width :math:`g_0` of the cell :math:`[-g_0,g_0]` that straddles zero (INT: zero is not a level), 0
        when zero is a grid point (FP).
    top : float
        The largest value :math:`G`; beyond it the format saturates to :math:`\pm G` (or overflows).
    top_spacing : float
        The spacing the grid would continue with above :math:`G` (round-to-nearest overflows above
        :math:`G+\Delta/2`).
    rounding : str
        ``"stochastic"`` or ``"nearest"``.
    saturate : bool
        Whether values beyond :math:`G` go to :math:`\pm G` (else to :math:`\pm\infty`).
    first_cell : float
        Width of the first cell above zero (FP: the subnormal spacing, or the smallest normal when flushing).
    kind : str
        ``"int"`` or ``"fp"``.
    """

    start: np.ndarray = field(repr=False)
    spacing: np.ndarray = field(repr=False)
    cells: np.ndarray = field(repr=False)
    zero_cell: float
    top: float
    top_spacing: float
    rounding: str
    saturate: bool
    first_cell: float
    kind: str


def fixed_grid(q: Quantizer | None) -> FixedGrid | None:
    """The fixed grid of ``q``, or ``None`` when ``q`` has none (idealised schemes, absmax scaling)."""
    if isinstance(q, IntFormat) and q.range is not None:
        L = q.levels - 1
        delta = 2.0 * q.range / L
        g0 = q.range / L
        return FixedGrid(
            start=np.array([g0]), spacing=np.array([delta]), cells=np.array([(L - 1) // 2]), zero_cell=g0,
            top=float(q.range), top_spacing=delta, rounding=q.rounding, saturate=True, first_cell=2.0 * g0,
            kind="int",
        )
    if isinstance(q, FloatFormat) and q.scale == "none":
        m = q.man_bits
        normal = q.min_normal
        starts, spacings, cells = [0.0], [q.subnormal_spacing], [2**m if q.subnormals else 1]
        G = q.max_value
        top_exp = min(q.emax, 1023)
        for k in range(q.emin, top_exp + 1):
            lo = math.ldexp(1.0, k)
            d = math.ldexp(1.0, k - m)
            n = 2**m if k < top_exp else round((G - lo) / d)
            if n > 0:
                starts.append(lo)
                spacings.append(d)
                cells.append(n)
        return FixedGrid(
            start=np.array(starts), spacing=np.array(spacings), cells=np.array(cells), zero_cell=0.0, top=G,
            top_spacing=math.ldexp(1.0, top_exp - m), rounding=q.rounding, saturate=q.saturate,
            first_cell=q.subnormal_spacing if q.subnormals else normal, kind="fp",
        )
    return None


@dataclass(frozen=True)
class GridMoments:
    r"""Per-coordinate moments of :math:`Q(x)`, :math:`x\sim\mathcal N(0,\lambda)` (arrays over :math:`\lambda`).

    Attributes
    ----------
    variance : ndarray
        :math:`\lambda`.
    second, cross, fourth, third_cross, second_square : ndarray
        :math:`\mathbb EQ^2`, :math:`\mathbb E[Qx]`, :math:`\mathbb EQ^4`, :math:`\mathbb E[Q^3x]`,
        :math:`\mathbb E[Q^2x^2]`.
    """

    variance: np.ndarray = field(repr=False)
    second: np.ndarray = field(repr=False)
    cross: np.ndarray = field(repr=False)
    fourth: np.ndarray = field(repr=False)
    third_cross: np.ndarray = field(repr=False)
    second_square: np.ndarray = field(repr=False)


# --------------------------------------------------------------------------------------------- building blocks
def _mass(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    r""":math:`\Phi(hi)-\Phi(lo)` for standardised limits with ``lo <= hi`` (upper tails when ``lo >= 0``)."""
    with np.errstate(invalid="ignore"):
        upper = 0.5 * (special.erfc(lo / math.sqrt(2.0)) - special.erfc(hi / math.sqrt(2.0)))
        lower = 0.5 * (special.erfc(-hi / math.sqrt(2.0)) - special.erfc(-lo / math.sqrt(2.0)))
        middle = 0.5 * (special.erf(hi / math.sqrt(2.0)) - special.erf(lo / math.sqrt(2.0)))
    return np.where(lo >= 0.0, upper, np.where(hi <= 0.0, lower, middle))


def _partial_moments(lo: np.ndarray, hi: np.ndarray, sigma: np.ndarray, top: int) -> list[np.ndarray]:
    r""":math:`\int_{lo}^{hi}x^p\varphi_\sigma(x)\,dx` for :math:`p=0..` ``top`` (real units; limits clipped to
    :math:`\pm40\sigma`), by :math:`J_p=(p-1)J_{p-2}+\alpha^{p-1}\varphi(\alpha)-\beta^{p-1}\varphi(\beta)`."""
    a = np.clip(lo / sigma, -CUTOFF, CUTOFF)
    b = np.clip(hi / sigma, -CUTOFF, CUTOFF)
    pa = np.exp(-0.5 * a * a) * _INV_SQRT_2PI
    pb = np.exp(-0.5 * b * b) * _INV_SQRT_2PI
    J = [_mass(a, b), pa - pb]
    ap, bp = np.ones_like(a), np.ones_like(b)
    for p in range(2, top + 1):
        ap, bp = ap * a, bp * b
        J.append((p - 1) * J[p - 2] + ap * pa - bp * pb)
    s = np.ones_like(sigma)
    out = []
    for p in range(top + 1):
        out.append(J[p] * s)
        s = s * sigma
    return out


def _upper_moments(x: np.ndarray, sigma: np.ndarray, top: int) -> list[np.ndarray]:
    r""":math:`\int_x^\infty t^p\varphi_\sigma(t)\,dt` for :math:`p=0..` ``top`` (``x >= 0``)."""
    return _partial_moments(x, np.full_like(x, np.inf), sigma, top)


@cache
def _windows(rounding: str) -> tuple[np.ndarray, np.ndarray]:
    r"""Window means :math:`\bar m_q` (``[q]``) and :math:`\beta_{q,r}/r!` (``[q, r]``), :math:`q=0..4`,
    :math:`r=0..R`, for the rounding mode (see the module docstring)."""
    R = EM_TERMS
    bern = special.bernoulli(R)
    # B_r(u) = sum_k C(r, k) B_k u^(r-k), ascending coefficients
    bpolys = []
    for r in range(R + 1):
        c = np.zeros(r + 1)
        for k in range(r + 1):
            c[r - k] += math.comb(r, k) * bern[k]
        bpolys.append(c)
    if rounding == "stochastic":
        u1 = np.array([0.0, 1.0, -1.0])  # u (1 - u)
        pieces = {
            1: [((0.0, 1.0), np.zeros(1))],
            2: [((0.0, 1.0), u1)],
            3: [((0.0, 1.0), P.polymul(u1, [1.0, -2.0]))],
            4: [((0.0, 1.0), P.polymul(u1, [1.0, -3.0, 3.0]))],
        }
    else:
        pieces = {q: [((0.0, 0.5), P.polypow([0.0, -1.0], q)), ((0.5, 1.0), P.polypow([1.0, -1.0], q))]
                  for q in range(1, 5)}
    mean = np.zeros(5)
    beta = np.zeros((5, R + 1))
    for q, parts in pieces.items():
        for (lo, hi), poly in parts:
            for r in range(R + 1):
                anti = P.polyint(P.polymul(bpolys[r], poly))
                beta[q, r] += (P.polyval(hi, anti) - P.polyval(lo, anti)) / math.factorial(r)
        mean[q] = beta[q, 0]
    return mean, beta


@cache
def _derivative_polys(top: int) -> list[list[np.ndarray]]:
    r""":math:`P_{p,n}` with :math:`\frac{d^n}{dt^n}[t^p\varphi(t)]=P_{p,n}(t)\varphi(t)`, :math:`p\le3`,
    :math:`n\le` ``top``: :math:`P_{p,n+1}=P_{p,n}'-tP_{p,n}`."""
    out = []
    for p in range(4):
        row = [np.eye(p + 1)[p]]
        for _ in range(top):
            c = row[-1]
            row.append(P.polysub(P.polyder(c), P.polymulx(c)))
        out.append(row)
    return out


# --------------------------------------------------------------------------------------------- the two paths
def _cell_moments(lo: np.ndarray, hi: np.ndarray, sigma: np.ndarray, rounding: str) -> list[np.ndarray]:
    r"""Per cell :math:`[lo,hi]`: :math:`\int_{lo}^{hi}\mathbb E[Q^kx^j\mid x]\varphi_\sigma(x)\,dx` for the five
    moments (non-negative for :math:`lo\ge0` and for the zero cell: no cancellation)."""
    if rounding == "stochastic":
        M = _partial_moments(lo, hi, sigma, 3)
        # E[Q^k | x] = A_k + B_k x (linear interpolation of v^k); E[Q | x] = x
        A2, B2 = -lo * hi, lo + hi
        A3, B3 = -lo * hi * (lo + hi), lo * lo + lo * hi + hi * hi
        A4, B4 = -lo * hi * (lo * lo + lo * hi + hi * hi), (lo + hi) * (lo * lo + hi * hi)
        return [A2 * M[0] + B2 * M[1], M[2], A4 * M[0] + B4 * M[1], A3 * M[1] + B3 * M[2], A2 * M[2] + B2 * M[3]]
    mid = 0.5 * (lo + hi)
    Ml = _partial_moments(lo, mid, sigma, 2)
    Mh = _partial_moments(mid, hi, sigma, 2)
    return [lo**k * Ml[j] + hi**k * Mh[j] for k, j in _MOMENTS]


def _run_moments(a: np.ndarray, b: np.ndarray, delta: np.ndarray, sigma: np.ndarray, rounding: str
                 ) -> list[np.ndarray]:
    r"""Per fine run :math:`[a,b]` of spacing :math:`\Delta`: :math:`\int_a^bx^{k+j}\varphi_\sigma` plus the excess
    :math:`\int_a^b(\mathbb E[Q^kx^j\mid x]-x^{k+j})\varphi_\sigma`, by Euler-Maclaurin with the periodic windows
    (module docstring)."""
    mean, beta = _windows(rounding)
    polys = _derivative_polys(EM_TERMS)
    t_a, t_b = a / sigma, np.minimum(b / sigma, CUTOFF)
    live_b = b / sigma <= CUTOFF
    phi_a = np.exp(-0.5 * t_a * t_a) * _INV_SQRT_2PI
    phi_b = np.where(live_b, np.exp(-0.5 * t_b * t_b) * _INV_SQRT_2PI, 0.0)
    dt = delta / sigma
    M = _partial_moments(a, b, sigma, 4)
    needed = {(p, q) for terms in _EXPANSION for _, p, q in terms}
    I: dict[tuple[int, int], np.ndarray] = {}
    for p, q in needed:
        if not mean[q] and not np.any(beta[q, 1:]):
            I[p, q] = np.zeros_like(a)
            continue
        # sum_r dt^(q+r) beta_{q,r}/r! (P_{p,r-1}(t_b) phi_b - P_{p,r-1}(t_a) phi_a), in units of sigma^(p+q)
        acc = np.zeros_like(a)
        power = dt**q
        for r in range(1, EM_TERMS + 1):
            power = power * dt
            if beta[q, r] == 0.0:
                continue
            c = polys[p][r - 1]
            acc += power * beta[q, r] * (P.polyval(t_b, c) * phi_b - P.polyval(t_a, c) * phi_a)
        I[p, q] = mean[q] * delta**q * M[p] + acc * sigma ** (p + q)
    return [M[k + j] + sum(c * I[p, q] for c, p, q in terms)
            for (k, j), terms in zip(_MOMENTS, _EXPANSION, strict=True)]


#: Cells evaluated per block of the coarse path (bounds the temporaries).
_BLOCK_CELLS = 1 << 16


def _moments(grid: FixedGrid, lam: np.ndarray) -> GridMoments:
    r"""Sum the cells (coarse), runs (fine), the clean bottom left out as negligible and the saturated tails."""
    sigma = np.sqrt(lam)
    total = [np.zeros_like(lam) for _ in _MOMENTS]

    def add(parts: list[np.ndarray], idx: np.ndarray, factor: float) -> None:
        for e, part in zip(total, parts, strict=True):
            e += factor * np.bincount(idx, weights=part, minlength=lam.size)

    every = np.arange(lam.size)
    # the cell straddling zero (INT): counted once on the full line
    if grid.zero_cell > 0:
        g0 = np.full_like(lam, grid.zero_cell)
        add(_cell_moments(-g0, g0, sigma, grid.rounding), every, 1.0)
    # runs of equal cells on the positive side, mirrored (every integrand is even in x); (node, run) pairs
    a, d, n = grid.start[None, :], grid.spacing[None, :], grid.cells[None, :]
    b = a + n * d
    s = sigma[:, None]
    reach = a < CUTOFF * s
    skip = b < NEGLIGIBLE * s
    fine = reach & (d <= FINE * s) & ~skip
    coarse = reach & (d > FINE * s)
    # the runs left out at the bottom hold x^(k+j) up to a relative 1e-18: their clean moments only
    bottom = np.max(np.where(skip, b, 0.0), axis=1)
    if np.any(bottom > grid.zero_cell):
        low = np.full_like(lam, grid.zero_cell)
        M = _partial_moments(low, np.maximum(bottom, low), sigma, 4)
        add([M[k + j] for k, j in _MOMENTS], every, 2.0)
    node, run = np.nonzero(fine)
    if node.size:
        a_r, d_r = grid.start[run], grid.spacing[run]
        add(_run_moments(a_r, a_r + grid.cells[run] * d_r, d_r, sigma[node], grid.rounding), node, 2.0)
    node, run = np.nonzero(coarse)
    if node.size:
        a_r, d_r, s_r = grid.start[run], grid.spacing[run], sigma[node]
        count = np.minimum(grid.cells[run], np.ceil((CUTOFF * s_r - a_r) / d_r)).astype(np.int64)
        # one row per cell: repeat each (node, run) pair over its cells, in blocks
        cell_node = np.repeat(node, count)
        cell_lo = np.repeat(a_r, count) + np.repeat(d_r, count) * (
            np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count))
        cell_d = np.repeat(d_r, count)
        for lo_i in range(0, cell_node.size, _BLOCK_CELLS):
            sl = slice(lo_i, lo_i + _BLOCK_CELLS)
            lo = cell_lo[sl]
            add(_cell_moments(lo, lo + cell_d[sl], sigma[cell_node[sl]], grid.rounding), cell_node[sl], 2.0)
    # beyond the largest value G: Q = +-G (saturation); an overflow to inf must carry no probability
    G = grid.top
    over = G < CUTOFF * sigma
    if np.any(over):
        if not grid.saturate:
            edge = G + (0.5 * grid.top_spacing if grid.rounding == "nearest" else 0.0)
            t = float(np.min(edge / sigma[over]))
            prob = float(special.erfc(t / math.sqrt(2.0)))
            if prob > 0.0:
                worst = float(np.max(lam[over]))
                raise ParameterError(
                    "data", f"saturate=off (max {G:g})",
                    f"saturate: at variance {worst:.3g} the format overflows to inf with probability {prob:.2g}, "
                    "so its moments are infinite",
                )
        else:
            idx = np.nonzero(over)[0]
            U = _upper_moments(np.full(idx.size, G), sigma[idx], 2)
            add([G**k * U[j] for k, j in _MOMENTS], idx, 2.0)
    return GridMoments(variance=lam, second=total[0], cross=total[1], fourth=total[2], third_cross=total[3],
                       second_square=total[4])


# --------------------------------------------------------------------------------------------- public functions
def _grid_or_refuse(q: Quantizer, name: str) -> FixedGrid:
    grid = fixed_grid(q)
    if grid is None:
        raise ParameterError(
            name, q.spec, "be a format with a fixed grid (INT with range=R, or FP without scale=absmax) for exact "
            "moments; an absmax scale depends on the whole vector",
        )
    return grid


def grid_moments(q: Quantizer, variances: object, *, name: str = "data") -> GridMoments:
    r"""Exact :math:`\mathbb EQ^2,\ \mathbb E[Qx],\ \mathbb EQ^4,\ \mathbb E[Q^3x],\ \mathbb E[Q^2x^2]` of
    :math:`Q(x)`, :math:`x\sim\mathcal N(0,\lambda)`, for each variance [derived].

    Parameters
    ----------
    q : Quantizer
        A format with a fixed grid: ``IntFormat`` with ``range=R`` or ``FloatFormat`` with ``scale="none"``,
        stochastic or nearest rounding, saturating (or overflowing with probability zero in float64).
    variances : array_like
        Positive finite variances :math:`\lambda` (any shape; flattened).
    name : str
        Parameter name for error messages.

    Returns
    -------
    GridMoments

    Notes
    -----
    Cell sums of Gaussian partial moments where cells are coarser than :math:`\sigma/4`, the Euler-Maclaurin
    expansion with periodic windows on finer runs (module docstring; ``theory/quantizers.md`` §7). Accurate to
    about :math:`10^{-13}` relative (tested against mpmath and Monte Carlo of ``q.quantize``).
    """
    grid = _grid_or_refuse(q, name)
    lam = _checks.as_array("variances", variances).ravel()
    if lam.size and not (np.all(lam > 0) and np.all(np.isfinite(lam))):
        raise ParameterError("variances", f"min {lam.min():g}", "be positive and finite")
    return _moments(grid, lam)


def deep_second_moment(q: Quantizer, *, name: str = "data") -> tuple[float, float, float]:
    r"""``(A, B, lam_max)`` with :math:`\mathbb EQ^2=A+B\sqrt\lambda` exactly (to float64) for
    :math:`\lambda\le` ``lam_max`` [derived].

    Below :math:`\sigma=c/40` (:math:`c` the first cell) only the first cell carries mass: stochastic FP rounds
    :math:`x\in[0,c]` to :math:`\{0,c\}`, :math:`\mathbb E[Q^2\mid x]=c|x|`, so :math:`B=c\sqrt{2/\pi}`; INT rounds
    the straddling cell to :math:`\pm g_0`, :math:`A=g_0^2`; FP round-to-nearest gives 0 below :math:`c/2`.
    """
    grid = _grid_or_refuse(q, name)
    if grid.kind == "int":
        return grid.zero_cell**2, 0.0, (grid.zero_cell / CUTOFF) ** 2
    if grid.rounding == "nearest":
        return 0.0, 0.0, (0.5 * grid.first_cell / CUTOFF) ** 2
    return 0.0, grid.first_cell * _SQRT_2_OVER_PI, (grid.first_cell / CUTOFF) ** 2


def second_moment_bound(q: Quantizer, *, name: str = "data") -> tuple[float, float, float]:
    r"""``(scale, floor, root)`` with :math:`\mathbb EQ^2\le\text{scale}\,\lambda+\text{floor}+\text{root}\sqrt\lambda`
    for every :math:`\lambda` [derived].

    Stochastic rounding: :math:`\mathbb E[Q^2\mid x]-x^2=(x-g_-)(g_+-x)`, at most :math:`\epsilon x^2`
    (:math:`\epsilon=4^{-m}/4`) in a normal FP binade, at most :math:`c|x|` below the smallest normal (first cell
    or subnormal spacing :math:`c`), at most :math:`\Delta^2/4` for INT. Round-to-nearest: :math:`|Q-x|\le\Delta/2`,
    so :math:`Q^2\le(1+2^{-m-1})^2x^2` (normal), :math:`\le x^2+\tfrac32c|x|` (subnormal; 0 below :math:`c/2`),
    :math:`\le x^2+\Delta|x|+\Delta^2/4` (INT). Saturation only lowers :math:`Q^2`.
    :math:`\mathbb E|x|=\sqrt{2\lambda/\pi}`.
    """
    grid = _grid_or_refuse(q, name)
    nearest = grid.rounding == "nearest"
    if grid.kind == "int":
        delta = 2.0 * grid.zero_cell
        return 1.0, delta * delta / 4.0, (delta * _SQRT_2_OVER_PI if nearest else 0.0)
    m = int(q.man_bits)  # type: ignore[attr-defined]
    if nearest:
        return (1.0 + 2.0 ** (-m - 1)) ** 2, 0.0, 1.5 * grid.first_cell * _SQRT_2_OVER_PI
    return 1.0 + 4.0**-m / 4.0, 0.0, grid.first_cell * _SQRT_2_OVER_PI
