r"""The spectral measure: the one input of the exact engine [derived].

For a diagonal Gaussian problem the second-moment map of SGD is diagonal plus rank-one couplings through sums
over coordinates (``theory/exact-risk.md`` §4). Coordinates with the same clean variance :math:`\mu`, the same
target second moment and the same quantizer moments therefore evolve identically, and a group of :math:`n`
of them is represented *exactly* by one node of multiplicity :math:`n`. The risk depends on the problem only
through the weighted measure

.. math::

    \sum_q n_q\,\delta_{(\mu_q,\,s_q)},\qquad s_q=\mathbb E v_q^{*2}\ \text{(per coordinate)},

plus the label noise and the irreducible terms. :class:`SpectralMeasure` holds it; the engine sums with the
weights ``weight`` (:math:`n_q`).

For power-law-like spectra (:class:`~scalinglaw.spectra.PowerLaw`, :class:`~scalinglaw.spectra.LogPowerLaw`)
with smooth targets, :func:`spectrum_measure` builds a compressed measure [derived]:

* the **head** :math:`i\le n_0` coordinate by coordinate (exact);
* log-spaced **blocks** of consecutive integers :math:`\{i_0,\dots,i_1\}`, each replaced by the :math:`p`-point
  Gauss rule of the *discrete* uniform measure on the block (discrete Chebyshev polynomials, Golub-Welsch):
  exact for polynomials of degree :math:`2p-1` in the index, positive weights summing to the block's size, so
  there is no sum-versus-integral (Euler-Maclaurin) error; the summand is analytic in the index on blocks of
  ratio :math:`\le2`, so the error falls geometrically with :math:`p`;
* the **slow range** (:math:`\tilde\mu_i\sum_t\gamma_t\le` ``SLOW_RATE``), where a coordinate's contribution is a
  low-degree polynomial in :math:`\lambda` to rounding (its deviation from the initial state is a power series in
  :math:`\lambda\sum_t\gamma_t`): its blocks' nodes are merged into ``SLOW_POINTS`` nodes, the Gauss rule of the
  count measure :math:`\sum_i\delta_{\lambda_i}` in :math:`\lambda` (exact for degree :math:`2p-1`), whose
  signal weights are the interpolatory ones of the signal measure :math:`\sum_i\lambda_is_i\delta_{\lambda_i}`
  (degree :math:`p-1`) (:func:`slow_rule`);
* a **frozen remainder** :math:`i\ge I` whose coordinates the whole run cannot move
  (:math:`\tilde\mu_I\sum_t\gamma_t\le\delta`), lumped into one node that carries its count, trace and signal
  exactly (sums in closed form: Hurwitz zeta). Everything the engine needs from a coordinate it cannot move is
  affine in its variance to :math:`O(\delta)`, so the lumped node is exact to that order (engine notes give the
  bound).

No finite proxy of :math:`d=\infty` remains: the blocks run to :math:`I` or :math:`d`, and the remainder is summed
to infinity. The engine estimates the quadrature error by refinement (``level + 1`` halves every block's
log-width) and reports it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from .errors import ParameterError
from .spectra import LogPowerLaw, PowerLaw, Spectrum, hurwitz_tail
from .targets import Ones, SourcePrior, Target

__all__ = [
    "FrozenTail",
    "QuantizedVariance",
    "SpectralMeasure",
    "compressible",
    "discrete_gauss_rule",
    "slow_rule",
    "spectrum_measure",
]

#: Coordinates with (total step) x (quantized variance) below this form the remainder: they move by O(FREEZE)
#: relative, and the lumped node is exact to O(FREEZE^2).
FREEZE = 1e-6
#: Dimensions up to this are kept coordinate by coordinate by default (exact, and cheap at this size).
EXPLICIT_MAX = 256
#: Explicit head: at least this many coordinates, and every one with gamma_max * mu_tilde above FAST_RATE.
HEAD_MIN = 32
FAST_RATE = 0.05
#: Block geometry at level 0: index ratio at most 2, eigenvalue ratio at most 4 (steep spectra: a > 2); Gauss points
#: per block.
BLOCK_RATIO = 2.0
BLOCK_LAMBDA_RATIO = 4.0
BLOCK_POINTS = 6
#: Slow coordinates, (total step) x (quantized variance) at most SLOW_RATE, are merged into SLOW_POINTS nodes per
#: slow range by a Gauss rule in the eigenvalue (:func:`slow_rule`); ``level`` splits the slow range in 2**level.
SLOW_RATE = 0.1
SLOW_POINTS = 6


@dataclass(frozen=True)
class FrozenTail:
    r"""Coordinates :math:`i\ge I` (to :math:`d`) that the run cannot move (:math:`\tilde\mu_i\sum_t\gamma_t\le\delta`).

    Attributes
    ----------
    start : float
        The first frozen index :math:`I`.
    mass : float
        Their signal :math:`\sum_{i\ge I}\lambda_i\mathbb E w_i^{*2}` (unlearned: it acts as label noise).
    trace : float
        :math:`\sum_{i\ge I}\lambda_i` (feeds the gradient noise through :math:`\operatorname{tr}H^{(q)}`).
    top : float
        :math:`\lambda_I`, the largest variance among them.
    count : float
        How many coordinates (``inf`` for :math:`d=\infty`).
    quantized_trace : float or None
        :math:`\sum_{i\ge I}\mathbb EQ_d(x_i)^2` when the data quantizer is a real format treated exactly (the
        lumped node reproduces it), else ``None``.
    quantized_top : float or None
        :math:`\mathbb EQ_d(x_I)^2`, the largest quantized variance among them (same condition).
    """

    start: float
    mass: float
    trace: float
    top: float
    count: float
    quantized_trace: float | None = None
    quantized_top: float | None = None


@dataclass(frozen=True)
class QuantizedVariance:
    r""":math:`\mathbb EQ_d(x)^2` of a real data format as a function of the variance :math:`\lambda` of :math:`x`.

    ``second(lam)`` evaluates it (vectorised); for :math:`\lambda\le` ``deep`` it equals
    ``floor + root * sqrt(lam)`` exactly (the first grid cell alone carries the mass), which closes the sum over an
    infinite frozen remainder.
    """

    second: Callable[[np.ndarray], np.ndarray]
    floor: float
    root: float
    deep: float


@dataclass(frozen=True)
class SpectralMeasure:
    r"""A diagonal Gaussian problem as a weighted measure of nodes (the exact engine's input).

    Attributes
    ----------
    mu : ndarray
        Clean feature variance :math:`\mu_q` at each node.
    weight : ndarray
        Multiplicity :math:`n_q>0` (1 for an explicit coordinate; a quadrature weight for a merged block).
    target_sq : ndarray
        Per-coordinate target second moment :math:`\mathbb E v^{*2}` at the node.
    sigma2 : float
        Label-noise variance seen by the learner (including the sketch's approximation error).
    target : ndarray or None
        Per-coordinate deterministic target at the node, ``None`` for a random prior.
    excess_offset : dict
        Irreducible terms added to the excess risk (``sketch_approximation``, ``tail``).
    notes : tuple of str
        Statements about approximations made.
    frozen : FrozenTail or None
        The frozen remainder, if any (its lumped node is the last one).
    compressed : bool
        Whether some nodes merge blocks of coordinates by quadrature (the engine then estimates the quadrature
        error by refinement).
    """

    mu: np.ndarray = field(repr=False)
    target_sq: np.ndarray = field(repr=False)
    sigma2: float
    target: np.ndarray | None = field(default=None, repr=False)
    excess_offset: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    weight: np.ndarray | None = field(default=None, repr=False)
    frozen: FrozenTail | None = None
    compressed: bool = False

    def __post_init__(self) -> None:
        mu = np.asarray(self.mu, dtype=np.float64)
        w = np.ones_like(mu) if self.weight is None else np.asarray(self.weight, dtype=np.float64)
        if w.shape != mu.shape or not np.all(w > 0):
            raise ParameterError("weight", "shape or sign", f"be positive with the shape of mu {mu.shape}")
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "target_sq", np.asarray(self.target_sq, dtype=np.float64))

    @property
    def size(self) -> int:
        """Number of nodes."""
        return int(self.mu.size)



# ------------------------------------------------------------------------------------------- quadrature
def discrete_gauss_rule(count: float, points: int) -> tuple[np.ndarray, np.ndarray]:
    r"""The ``points``-point Gauss rule of the uniform measure on the integers :math:`\{0,\dots,N-1\}`.

    The monic orthogonal polynomials of that measure (discrete Chebyshev, or Gram, polynomials) have
    :math:`\alpha_k=(N-1)/2` and :math:`\beta_k=k^2(N^2-k^2)/(4(4k^2-1))` (Gautschi, *Orthogonal Polynomials*,
    2004, §1.5) [paper]; in the variable :math:`t=(2x-N+1)/N` the Jacobi matrix has zero diagonal and
    off-diagonal :math:`\sqrt{(1-k^2/N^2)/(4-k^{-2})}`, well scaled for any :math:`N` (it tends to Legendre's).
    Golub-Welsch gives nodes and weights: :math:`\sum_{i<N}f(i)=\sum_jw_jf(x_j)` exactly for polynomials of
    degree :math:`\le2p-1`, with :math:`w_j>0`, :math:`\sum_jw_j=N`.

    Returns
    -------
    nodes, weights : ndarray
        Nodes in :math:`[0,N-1]` (ascending) and weights.
    """
    x, w = _discrete_gauss_rules(np.array([float(count)]), int(points))
    return x[0], w[0]


def _discrete_gauss_rules(counts: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`discrete_gauss_rule` for many counts ``N > p`` at once (one batched eigensolve); a count of at most
    ``p`` must be handled by the caller (its rule is every integer)."""
    N = np.asarray(counts, dtype=np.float64)[:, None]
    if np.any(N <= p):
        if N.size == 1:
            x = np.arange(int(N[0, 0]), dtype=np.float64)
            return x[None, :], np.ones_like(x)[None, :]
        raise ValueError("counts must exceed the number of points")
    k = np.arange(1, p, dtype=np.float64)[None, :]
    off = np.sqrt((1.0 - (k / N) ** 2) / (4.0 - 1.0 / (k * k)))
    J = np.zeros((N.shape[0], p, p))
    i = np.arange(p - 1)
    J[:, i, i + 1] = off
    J[:, i + 1, i] = off
    t, V = np.linalg.eigh(J)
    w = N * V[:, 0, :] ** 2
    x = 0.5 * ((N - 1.0) + N * t)
    return x, w


def slow_rule(
    lam: np.ndarray, weight: np.ndarray, target_sq: np.ndarray, points: int, pieces: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Merge the nodes of slow coordinates into ``points`` nodes per piece: Gauss in the eigenvalue [derived].

    The nodes ``lam`` with multiplicities ``weight`` and per-coordinate target second moments ``target_sq`` (a
    fine rule of the slow range) are split into ``pieces`` ranges of equal width in :math:`\log\lambda`. On each,
    the ``points``-point Gauss rule of the count measure :math:`\sum_kw_k\delta_{\lambda_k}` (Lanczos with full
    reorthogonalisation on the fine nodes, then Golub-Welsch) gives nodes :math:`\mu_q` and multiplicities
    :math:`W_q`: :math:`\sum_qW_qP(\mu_q)=\sum_kw_kP(\lambda_k)` for :math:`\deg P\le2p-1`. The target second
    moment at a node is fixed by the interpolatory rule of the signal measure,
    :math:`W_q\mu_qS_q=\sum_kw_k\lambda_ks_kL_q(\lambda_k)` (Lagrange basis :math:`L_q` on the nodes), exact for
    signal-weighted polynomials of degree :math:`\le p-1`. Where the total step moves these coordinates by at most
    ``SLOW_RATE``, what the run does to a coordinate is a power series in :math:`\lambda` whose degree-:math:`p`
    remainder is at most about ``SLOW_RATE**p / p!`` (1.4e-9 for the defaults; measured: 6e-12 on 56 random
    problems) relative; the engine's refinement (``pieces`` doubled) measures the actual error. A piece with at
    most ``points`` nodes, or whose signal weights come out non-positive, is kept as it is.

    Returns
    -------
    mu, weight, target_sq : ndarray
        The merged nodes, in decreasing order of the eigenvalue.
    """
    order = np.argsort(-lam, kind="stable")
    lam, weight, target_sq = lam[order], weight[order], target_sq[order]
    if lam.size == 0:
        return lam, weight, target_sq
    edges = np.exp(np.linspace(math.log(lam[0]), math.log(lam[-1]), pieces + 1)[1:-1])
    cut = np.searchsorted(-lam, -edges, side="right")  # piece k: lam in (edge_k, edge_{k-1}]
    out = []
    for idx in np.split(np.arange(lam.size), cut):
        l, w, t = lam[idx], weight[idx], target_sq[idx]
        if l.size > points:
            merged = _gauss_in_eigenvalue(l, w, t, points)
            if merged is not None:
                out.append(merged)
                continue
        out.append((l, w, t))
    return tuple(np.concatenate([o[i] for o in out]) for i in range(3))  # type: ignore[return-value]


def _gauss_in_eigenvalue(
    lam: np.ndarray, weight: np.ndarray, target_sq: np.ndarray, p: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """One piece of :func:`slow_rule` (``None`` if the signal weights are not all positive)."""
    top = float(lam.max())
    t = lam / top  # in (0, 1]: a well-scaled Lanczos
    total = float(weight.sum())
    q = np.sqrt(weight / total)
    Q = np.zeros((p, t.size))
    alpha, beta = np.zeros(p), np.zeros(p)
    Q[0] = q
    for j in range(p):
        v = t * Q[j]
        alpha[j] = Q[j] @ v
        for _ in range(2):  # full reorthogonalisation, twice
            v -= Q[: j + 1].T @ (Q[: j + 1] @ v)
        if j + 1 < p:
            beta[j] = float(np.linalg.norm(v))
            if not beta[j] > 0:
                return None
            Q[j + 1] = v / beta[j]
    J = np.diag(alpha) + np.diag(beta[: p - 1], 1) + np.diag(beta[: p - 1], -1)
    nodes, V = np.linalg.eigh(J)
    W = total * V[0] ** 2
    if not (np.all(nodes > 0) and np.all(W > 0)):
        return None
    # Lagrange basis on the nodes at every fine node
    L = np.ones((p, t.size))
    for a in range(p):
        for b in range(p):
            if a != b:
                L[a] *= (t - nodes[b]) / (nodes[a] - nodes[b])
    S = (L @ (weight * target_sq * t)) / (W * nodes)
    if not np.all(np.isfinite(S)) or np.any(S < 0) or (np.any(S == 0) and np.any(target_sq > 0)):
        return None
    order = np.argsort(-nodes)
    return nodes[order] * top, W[order], S[order]


def block_rule(spectrum: Spectrum, first: float, last: float, index_ratio: float, lambda_ratio: float,
               points: int, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (indices) and weights of the blockwise discrete Gauss rule over the indices ``first..last``.

    Blocks of consecutive indices with ``hi + 1 <= ratio * lo``, ``ratio`` the smaller of ``index_ratio`` and the
    index ratio at which a power law falls by ``lambda_ratio``, halved in log ``level`` times (refinement); each block
    gets the ``points``-point rule of :func:`discrete_gauss_rule` (a block of fewer indices keeps them all).
    """
    a_eff = getattr(spectrum, "a", 1.0) or 1.0
    ratio = min(index_ratio, lambda_ratio ** (1.0 / max(a_eff, 1e-12))) ** (0.5**level)
    return _gauss_blocks(first, last, max(ratio, 1.0 + 1e-9), points)


def _gauss_blocks(first: float, last: float, ratio: float, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights of the ``points``-point discrete Gauss rule on each block of :func:`_blocks`."""
    blocks = np.array(_blocks(first, last, ratio)).reshape(-1, 2)
    if not blocks.size:
        return np.zeros(0), np.zeros(0)
    counts = blocks[:, 1] - blocks[:, 0] + 1.0
    big = counts > points
    xs, ws = [], []
    if np.any(big):
        x, w = _discrete_gauss_rules(counts[big], points)
        xs.append((blocks[big, :1] + x).ravel())
        ws.append(w.ravel())
    for lo, hi in blocks[~big]:  # a block of at most ``points`` indices keeps them all
        xs.append(np.arange(lo, hi + 1.0))
        ws.append(np.ones(int(hi - lo + 1.0)))
    x, w = np.concatenate(xs), np.concatenate(ws)
    order = np.argsort(x, kind="stable")
    return x[order], w[order]


def _blocks(first: float, last: float, ratio: float) -> list[tuple[float, float]]:
    """Consecutive integer blocks ``[lo, hi]`` covering ``first..last`` with ``hi + 1 <= ratio * lo`` (at least
    one integer each)."""
    out = []
    lo = float(first)
    while lo <= last:
        hi = min(float(last), max(lo, math.floor(lo * ratio) - 1.0))
        out.append((lo, hi))
        if hi >= last:  # beyond 2**53, last + 1 == last in float64
            break
        lo = hi + 1.0
    return out


# ------------------------------------------------------------------------------------------- spectra
def _at(spectrum: Spectrum, x: np.ndarray) -> np.ndarray:
    r""":math:`\lambda(x)` at real indices ``x`` (the spectrum's formula continued to non-integers)."""
    if isinstance(spectrum, PowerLaw):
        return spectrum.lambda1 * np.exp(-spectrum.a * np.log(x))
    if isinstance(spectrum, LogPowerLaw):
        return spectrum._at(x)
    raise TypeError(type(spectrum).__name__)


def _target_at(target: Target, spectrum: Spectrum, x: np.ndarray) -> np.ndarray:
    """Per-coordinate target second moment at real indices ``x``."""
    if isinstance(target, Ones):
        return np.ones_like(x)
    assert isinstance(target, SourcePrior)
    return np.exp(target.exponent(spectrum) * np.log(x))


def _index_below(spectrum: Spectrum, level: float, d: float) -> float:
    r"""The smallest integer index :math:`I` with :math:`\lambda_I\le` ``level`` (``inf`` if none up to ``d``)."""
    if level >= float(_at(spectrum, np.array([1.0]))[0]):
        return 1.0
    if isinstance(spectrum, PowerLaw) and spectrum.a > 0:
        # lambda1 I^-a <= level  <=>  log I >= log(lambda1/level)/a; computed in logs (sizes up to 1e300)
        logI = (math.log(spectrum.lambda1) - math.log(level)) / spectrum.a
        if logI > math.log(min(d, 1e300)):
            return math.inf
        I = math.ceil(math.exp(logI) * (1 - 1e-15))
        while I > 1 and float(_at(spectrum, np.array([I - 1.0]))[0]) <= level:
            I -= 1
        while float(_at(spectrum, np.array([float(I)]))[0]) > level:
            I += 1
        return float(I)
    # monotone decreasing: bisection in log index
    lo, hi = 0.0, math.log(min(d, 1e300))
    if float(_at(spectrum, np.array([math.exp(hi)]))[0]) > level:
        return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float(_at(spectrum, np.array([math.exp(mid)]))[0]) > level:
            lo = mid
        else:
            hi = mid
    return float(math.ceil(math.exp(hi)))


def _variance_at_rate(level: float, scale: float, floor: float, root: float) -> float:
    r"""The largest :math:`\lambda` with ``scale * lam + floor + root * sqrt(lam) <= level`` (0 if none)."""
    c = level - floor
    if not c > 0:
        return 0.0
    if math.isinf(c):
        return math.inf
    x = 2.0 * c / (root + math.sqrt(root * root + 4.0 * scale * c))
    return x * x


#: Gauss points per block of index ratio 2 in the remainder's quantized trace (about 1e-12 relative for the
#: grid moments of real formats, which oscillate once per binade).
REMAINDER_POINTS = 10


def _block_sum(spectrum: Spectrum, first: float, last: float, f: Callable[[np.ndarray], np.ndarray]) -> float:
    r""":math:`\sum_{i=\text{first}}^{\text{last}}f(\lambda_i)` for ``f`` smooth in the index: discrete Gauss rules
    on blocks of index ratio 2 (exact on blocks of at most ``REMAINDER_POINTS`` coordinates)."""
    x, w = _gauss_blocks(first, last, BLOCK_RATIO, REMAINDER_POINTS)
    if not x.size:
        return 0.0
    return float(w @ f(_at(spectrum, x)))


def _remainder_second_moment(spectrum: Spectrum, start: float, qv: QuantizedVariance) -> float:
    r""":math:`\sum_{i\ge I}\mathbb EQ(x_i)^2` over the frozen remainder [derived]: quadrature blocks down to the
    deep regime, then ``floor * count + root * sum sqrt(lambda_i)`` (Hurwitz zeta at :math:`d=\infty`)."""
    d = float(spectrum.d)
    J = _index_below(spectrum, qv.deep, d)
    if math.isinf(J) and math.isinf(d):
        raise ParameterError("d", d, "be finite: the quantized trace of this spectrum cannot be summed to infinity")
    total = _block_sum(spectrum, start, min(d, J - 1.0), qv.second)
    if J > d:
        return total
    J = max(J, start)
    if math.isinf(d):
        a = getattr(spectrum, "a", 0.0) if isinstance(spectrum, PowerLaw) else 0.0
        if qv.floor > 0 or (qv.root > 0 and not a > 2):
            raise ParameterError(
                "data", "a real format on infinitely many coordinates",
                "have a finite quantized trace: sum_i E Q(x_i)^2 diverges at d=inf (use a finite d, a > 2 or a sketch)",
            )
        if qv.root > 0:
            total += qv.root * math.sqrt(spectrum.lambda1) * hurwitz_tail(a / 2.0, J - 1.0)  # type: ignore[attr-defined]
        return total
    total += qv.floor * (d - J + 1.0)
    if qv.root > 0:
        total += qv.root * _block_sum(spectrum, J, d, np.sqrt)
    return total


def _matching_variance(spectrum: Spectrum, start: float, ratio: float, qv: QuantizedVariance) -> float:
    r"""A variance :math:`\lambda_f` in the remainder's range with :math:`\mathbb EQ^2(\lambda_f)/\lambda_f=` ``ratio``.

    ``ratio`` is a weighted mean of :math:`\mathbb EQ^2(\lambda_i)/\lambda_i` over the remainder, so such a
    :math:`\lambda_f` exists between its smallest and largest variance (intermediate values)."""
    top = float(_at(spectrum, np.array([start]))[0])
    bottom = float(_at(spectrum, np.array([float(spectrum.d)]))[0]) if not spectrum.is_infinite else 0.0
    bottom = max(bottom, top * 1e-250, 1e-300)
    grid = np.exp(np.linspace(math.log(top), math.log(bottom), 400))
    diff = qv.second(grid) / grid - ratio
    sign = np.nonzero(np.diff(np.sign(diff)) != 0)[0]
    if not sign.size:
        return float(grid[int(np.argmin(np.abs(diff)))])
    k = int(sign[0])
    f = lambda t: float(qv.second(np.array([math.exp(t)]))[0] / math.exp(t) - ratio)  # noqa: E731
    return math.exp(brentq(f, math.log(grid[k + 1]), math.log(grid[k]), xtol=1e-14, rtol=1e-14))


def _remainder_sum(spectrum: Spectrum, target: Target, start: float, d: float, *, power: int, signal: bool) -> float:
    r""":math:`\sum_{start\le i\le d}\lambda_i^{p}\,s_i^{[signal]}` in closed form (Hurwitz zeta for power laws) or by
    the spectrum's own tail sums [derived]."""
    e = target.exponent(spectrum) if (signal and isinstance(target, SourcePrior)) else 0.0
    k = start - 1.0
    if power == 1:
        return float(spectrum.tail_sum(k, target_exponent=e or None))  # type: ignore[arg-type]
    if isinstance(spectrum, PowerLaw):
        # lambda_i^2 s_i = lambda1 * (lambda1 i^-a) i^(e - a): the tail sum with exponent e - a
        return spectrum.lambda1 * float(spectrum.tail_sum(k, target_exponent=e - spectrum.a))  # type: ignore[arg-type]
    assert isinstance(spectrum, LogPowerLaw)
    return float(spectrum.tail_sum(k, power=power))  # type: ignore[arg-type]


def compressible(spectrum: Spectrum, target: Target) -> bool:
    """Whether :func:`spectrum_measure` may merge coordinates (a smooth spectrum and a smooth target)."""
    return isinstance(spectrum, PowerLaw | LogPowerLaw) and isinstance(target, Ones | SourcePrior)


def spectrum_measure(
    spectrum: Spectrum,
    target: Target,
    *,
    sigma2: float,
    horizon: float,
    fast_gamma: float,
    rate_scale: float = 1.0,
    rate_floor: float = 0.0,
    rate_root: float = 0.0,
    data_variance: QuantizedVariance | None = None,
    level: int = 0,
    compress: bool | None = None,
) -> SpectralMeasure:
    r"""The spectral measure of a plain (unsketched) regression problem.

    Parameters
    ----------
    spectrum, target : Spectrum, Target
        :math:`H` and :math:`w^*`.
    sigma2 : float
        Label-noise variance.
    horizon : float
        :math:`\sum_t\gamma_t`, the run's total step: coordinates with
        ``horizon * (rate_scale * lambda + rate_floor) <= FREEZE`` are frozen, and those up to ``SLOW_RATE`` are
        merged by :func:`slow_rule` (not with a real data format, whose moments are not polynomial in lambda).
    fast_gamma : float
        The largest step: coordinates with ``fast_gamma * (rate_scale * lambda + rate_floor) > FAST_RATE`` stay
        explicit (there the per-step contraction is far from 1 and the summand is not smooth in the index).
    rate_scale, rate_floor, rate_root : float
        :math:`\tilde\mu\le` ``rate_scale`` :math:`\lambda+` ``rate_floor`` :math:`+` ``rate_root``
        :math:`\sqrt\lambda` bounds the quantized variance (for freezing and the head only; the engine computes
        the exact moments at the nodes). The square-root term is the subnormal range of a real FP format.
    data_variance : QuantizedVariance, optional
        :math:`\mathbb EQ_d(x)^2` of a real data format treated exactly: the lumped node of the frozen remainder
        then reproduces :math:`\sum_{i\ge I}\mathbb EQ_d(x_i)^2` as well as the count-free trace and signal.
    level : int
        Refinement level: the blocks' log-width is halved at each level.
    compress : bool or None
        ``None`` (default): merge blocks of coordinates when the spectrum and target are smooth and
        :math:`d>` ``EXPLICIT_MAX``; ``False``: every coordinate explicit (finite ``d``); ``True``: merge whenever
        the spectrum and target allow it, even for small ``d`` (to test the quadrature).

    Returns
    -------
    SpectralMeasure
    """
    d = spectrum.d
    if compress is None:
        compress = compressible(spectrum, target) and d > EXPLICIT_MAX
    elif compress and not compressible(spectrum, target):
        raise ParameterError("compress", compress, "be False for a spectrum or target given coordinate by coordinate")
    if not compress:
        if spectrum.is_infinite:
            raise ParameterError("d", d, "be finite to list every coordinate (a spectral measure needs a smooth "
                                 "spectrum and target for d=inf)")
        n = int(d)
        fixed = None if target.is_random else target.draw(spectrum, n, np.random.default_rng(0), 1)[0]
        return SpectralMeasure(mu=spectrum.head(n), target_sq=target.second_moments(spectrum, n), sigma2=sigma2,
                               target=fixed)
    # frozen remainder: rate_scale * lambda_I + rate_floor <= FREEZE / horizon
    level_mu = _variance_at_rate(FREEZE / horizon, rate_scale, rate_floor, rate_root) if horizon > 0 else math.inf
    start = _index_below(spectrum, level_mu, d) if level_mu > 0 else math.inf
    last = min(float(d), start - 1.0)
    fast_mu = _variance_at_rate(FAST_RATE / fast_gamma, rate_scale, rate_floor, rate_root)
    n_fast = _index_below(spectrum, fast_mu, d) if fast_mu > 0 else math.inf
    n0 = min(last, max(float(HEAD_MIN), n_fast - 1.0))
    if not math.isfinite(n0):
        raise ParameterError("gamma", fast_gamma, "leave a finite number of fast coordinates")
    head = np.arange(1.0, n0 + 1.0)
    xs = [head]
    ws = [np.ones_like(head)]
    compressed = False
    slow_start = last + 1.0
    if last > n0 and data_variance is None and rate_root == 0.0 and horizon > 0:
        slow_mu = _variance_at_rate(SLOW_RATE / horizon, rate_scale, rate_floor, rate_root)
        if slow_mu > 0:
            slow_start = max(n0 + 1.0, min(slow_start, _index_below(spectrum, slow_mu, d)))
    if slow_start - 1.0 > n0:
        x, w = block_rule(spectrum, n0 + 1.0, slow_start - 1.0, BLOCK_RATIO, BLOCK_LAMBDA_RATIO, BLOCK_POINTS, level)
        compressed = x.size < slow_start - 1.0 - n0
        xs.append(x)
        ws.append(w)
    x = np.concatenate(xs)
    weight = np.concatenate(ws)
    mu = _at(spectrum, x)
    s = _target_at(target, spectrum, x)
    n_slow = 0
    if slow_start <= last:
        xl, wl = block_rule(spectrum, slow_start, last, BLOCK_RATIO, BLOCK_LAMBDA_RATIO, BLOCK_POINTS, level)
        mu_l, w_l, s_l = slow_rule(_at(spectrum, xl), wl, _target_at(target, spectrum, xl), SLOW_POINTS, 2**level)
        compressed = compressed or mu_l.size < last - slow_start + 1.0
        n_slow = mu_l.size
        mu, weight, s = np.append(mu, mu_l), np.append(weight, w_l), np.append(s, s_l)
    frozen = None
    notes: list[str] = []
    if start <= d:
        count = float(d) - start + 1.0
        trace = _remainder_sum(spectrum, target, start, d, power=1, signal=False)
        mass = _remainder_sum(spectrum, target, start, d, power=1, signal=True)
        top = float(_at(spectrum, np.array([start]))[0])
        qtrace = qtop = None
        if data_variance is not None:
            # A real data format: E Q^2 is not proportional to lambda (subnormals). The node's E Q^2 / lambda is the
            # remainder's mean ratio, so that it carries sum_i E Q(x_i)^2 (tr H^(q): the stability limit and
            # additive parameter noise, zeroth order) besides the trace and the signal; its first-order learning is
            # then within the frozen-remainder bound.
            qtrace = _remainder_second_moment(spectrum, start, data_variance)
            qtop = float(data_variance.second(np.array([top]))[0])
            mu_f = _matching_variance(spectrum, start, qtrace / trace, data_variance)
        else:
            # One node that reproduces the remainder's trace, signal and first-order learning exactly:
            # n mu = sum lambda, n mu s = sum lambda s, n mu^2 s = sum lambda^2 s. What the run does to coordinates
            # it can barely move is affine in lambda to O((horizon * lambda)^2), so the node is exact to that order.
            # Additive data noise counts coordinates (n eps): there the node keeps the count instead.
            second = _remainder_sum(spectrum, target, start, d, power=2, signal=True)
            mu_f = trace / count if (rate_floor > 0 and math.isfinite(count)) else second / mass
        frozen = FrozenTail(start=start, mass=mass, trace=trace, top=top, count=count, quantized_trace=qtrace,
                            quantized_top=qtop)
        mu = np.append(mu, mu_f)
        weight = np.append(weight, trace / mu_f)
        s = np.append(s, mass / trace)
        notes.append(
            f"coordinates i >= {start:.6g} move by at most {FREEZE:g} of their signal over the run: one node "
            f"carries their signal {mass:.6g} and trace {trace:.6g}"
            + (f" and quantized trace {qtrace:.6g} (exact to first order in that motion)" if qtrace is not None
               else " (exact to second order in that motion)")
        )
    if compressed:
        notes.append(
            f"spectral measure: {int(n0)} explicit coordinates and {x.size - int(n0) + n_slow} quadrature nodes for "
            f"indices {int(n0) + 1}..{last:.6g}"
            + (f" ({n_slow} of them Gauss nodes in the eigenvalue for the slow indices from {slow_start:.6g})"
               if n_slow else "")
        )
    fixed = None if target.is_random else np.sqrt(s)  # Ones: 1 at every node, the lumped one included
    return SpectralMeasure(
        mu=mu, weight=weight, target_sq=s, sigma2=sigma2, target=fixed, notes=tuple(notes), frozen=frozen,
        compressed=compressed,
    )

