r"""Monte Carlo building blocks shared by the experiments.

* :func:`moment_chunk` / :func:`feature_moments`: per-coordinate Monte Carlo estimates of
  :math:`\mathbb E[Q(x)_i^2]` and :math:`\mathbb E[(Q(x)_i-x_i)^2]` for Gaussian features, chunked with one
  ``SeedSequence`` child per chunk so that any executor gives the same numbers.
* :func:`grid_error_moment`: the same error moment predicted exactly, for formats with a fixed grid (FP without
  scaling, INT with a fixed range), by quadrature of the stochastic-rounding variance
  :math:`(g_+-u)(u-g_-)` [derived, SPEC §2] against the Gaussian density.
* :func:`reduced_problems` / :func:`sketched_mc`: the sketched model of Lin et al. simulated through its exact
  reduction to an :math:`M`-dimensional regression in the eigenbasis of :math:`SHS^\top` with noise
  :math:`\sigma^2+\mathrm{Approx}` [derived, SPEC §1; checked against the full sketched simulator in
  ``tests/test_exact_vs_mc.py``], which makes Lin et al.'s sample sizes affordable.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..problem import Problem, make_problem
from ..quantize import FloatFormat, IntFormat, Quantizer, parse_quantizer
from .base import Context
from .stats import Estimate

__all__ = [
    "FeatureMoments",
    "SketchMC",
    "feature_moments",
    "grid_error_moment",
    "moment_chunk",
    "paired_sketch_difference",
    "reduced_problems",
    "sketched_mc",
]


def _children(seed: int, n: int) -> list[np.random.SeedSequence]:
    return np.random.SeedSequence(seed).spawn(n)


def moment_chunk(spec: str, sigma: np.ndarray, n: int, seed: np.random.SeedSequence) -> np.ndarray:
    """Sums over ``n`` samples of :math:`Q(x)^2, Q(x)^4, e^2, e^4` per coordinate, ``x ~ N(0, diag(sigma^2))``.

    ``spec`` is a quantizer spec string (picklable); the sample is one vector for the quantizer. Returns an
    array of shape ``(4, d)``.
    """
    q = parse_quantizer(spec)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((int(n), sigma.size)) * sigma
    qx = x if q is None else q.quantize(x, rng, vector_axes=(-1,))
    e = qx - x
    q2, e2 = qx * qx, e * e
    return np.stack([q2.sum(0), (q2 * q2).sum(0), e2.sum(0), (e2 * e2).sum(0)])


@dataclass(frozen=True)
class FeatureMoments:
    """Per-coordinate Monte Carlo moments of quantized Gaussian features.

    Attributes
    ----------
    hq, hq_se : ndarray
        :math:`\\mathbb E[Q(x)_i^2]` (the quantized spectrum :math:`H^{(q)}`) and its standard error.
    e2, e2_se : ndarray
        :math:`\\mathbb E[(Q(x)_i-x_i)^2]` (the error variance) and its standard error.
    n : int
        Number of samples.
    """

    hq: np.ndarray
    hq_se: np.ndarray
    e2: np.ndarray
    e2_se: np.ndarray
    n: int


def feature_moments(
    ctx: Context, specs: list[str], sigma: np.ndarray, n: int, seed: int, chunk: int = 5000,
) -> dict[str, FeatureMoments]:
    """Estimate :class:`FeatureMoments` for every quantizer spec, with ``n`` samples each (chunked tasks)."""
    n_chunks = max(1, math.ceil(n / chunk))
    sizes = [chunk] * (n_chunks - 1) + [n - chunk * (n_chunks - 1)]
    tasks = []
    for k, spec in enumerate(specs):
        kids = _children(seed + 7919 * k, n_chunks)
        tasks += [(spec, sigma, sizes[j], kids[j]) for j in range(n_chunks)]
    sums = ctx.map(moment_chunk, tasks, desc="feature moments")
    out = {}
    for k, spec in enumerate(specs):
        tot = np.sum(sums[k * n_chunks:(k + 1) * n_chunks], axis=0)
        m = tot / n
        var_q = np.maximum(m[1] - m[0] ** 2, 0.0) * n / (n - 1)
        var_e = np.maximum(m[3] - m[2] ** 2, 0.0) * n / (n - 1)
        out[spec] = FeatureMoments(m[0], np.sqrt(var_q / n), m[2], np.sqrt(var_e / n), n)
    return out


# ------------------------------------------------------------------------------------------------ fixed grids
def _grid(q: Quantizer) -> np.ndarray:
    """Non-negative representable values of a fixed-grid format, ascending."""
    if isinstance(q, FloatFormat):
        if q.scale != "none":
            raise ValueError(f"{q.spec}: the grid depends on the data (absmax scaling)")
        m = q.man_bits
        sub = np.arange(0, 2**m) * q.subnormal_spacing if q.subnormals else np.array([0.0])
        normals = [math.ldexp(1.0 + j / 2**m, e) for e in range(q.emin, min(q.emax, 1023) + 1) for j in range(2**m)]
        vals = np.concatenate([sub, np.array(normals)])
        return np.unique(vals[vals <= q.max_value])
    if isinstance(q, IntFormat):
        if q.range is None:
            raise ValueError(f"{q.spec}: the grid depends on the data (absmax scaling)")
        L = q.levels - 1
        vals = q.range * (2.0 * np.arange(L + 1) - L) / L
        return np.unique(np.abs(vals))
    raise ValueError(f"{q.spec} has no fixed grid")


def grid_error_moment(spec: str, sigma: np.ndarray, points_per_cell: int = 48) -> np.ndarray:
    r""":math:`\mathbb E[(Q(u)-u)^2]` for :math:`u\sim\mathcal N(0,\sigma^2)`, stochastic rounding to a fixed grid.

    Given :math:`u` between neighbours :math:`g_-\le|u|\le g_+`, the error variance is :math:`(g_+-|u|)(|u|-g_-)`
    [derived]; beyond the largest value it is the saturation error :math:`(|u|-g_{\max})^2`. The expectation is a
    trapezoid quadrature over :math:`|u|\in[0,12\sigma]` with ``points_per_cell`` points in each grid cell.
    (For an INT grid without a zero level the cell around zero is :math:`[-\Delta/2,\Delta/2]`.)
    """
    q = parse_quantizer(spec)
    g = _grid(q)
    if g[0] > 0:  # symmetric INT grid without zero: the innermost cell straddles zero
        g = np.concatenate([[-g[0]], g])
    out = np.empty(np.asarray(sigma).size)
    for k, s in enumerate(np.asarray(sigma, dtype=float).ravel()):
        top = 12.0 * s
        nodes = g[(g >= 0) & (g < top)]
        edges = np.unique(np.concatenate([[0.0], nodes, [top]]))
        t = np.concatenate([np.linspace(a, b, points_per_cell, endpoint=False) for a, b in itertools.pairwise(edges)])
        t = np.concatenate([t, [top]])
        idx = np.clip(np.searchsorted(g, t, side="right") - 1, 0, g.size - 1)
        lo = g[idx]
        inside = idx + 1 < g.size
        hi = g[np.minimum(idx + 1, g.size - 1)]
        var = np.where(inside, (hi - t) * (t - lo), (t - g[-1]) ** 2)
        dens = 2.0 * np.exp(-0.5 * (t / s) ** 2) / (s * math.sqrt(2.0 * math.pi))
        out[k] = np.trapezoid(var * dens, t)
    return out


# ------------------------------------------------------------------------------------------------ sketches
def reduced_problems(problem: Problem) -> list[tuple[Problem, float]]:
    """The exact plain-regression equivalents of a sketched ``problem``, one per sketch draw.

    Each is ``(plain problem in the eigenbasis of S H S^T, offset)``: spectrum :math:`\\mu`, target
    :math:`v^*`, noise :math:`\\sigma^2+\\mathrm{Approx}`, the same training set-up and quantizers (data
    quantization acts in the eigenbasis, ``sketch_basis="eigen"``). The sketched excess risk is the plain
    excess risk plus ``offset`` = Approx. Needs a deterministic target.
    """
    from ..reduction import reduce_problem

    if problem.M is None or problem.target.is_random or problem.sketch_basis != "eigen":
        raise ValueError("reduced_problems needs a sketched problem with a fixed target in the eigen basis")
    out = []
    for dp in reduce_problem(problem):
        plain = make_problem(
            spectrum=np.asarray(dp.mu), target=np.asarray(dp.target), sigma2=dp.sigma2, N=problem.N, B=problem.B,
            gamma=problem.gamma, schedule=problem.schedule, average=problem.average, test_inputs=problem.test_inputs,
            **{k: v for k, v in problem.quantizers.items()},
        )
        out.append((plain, float(sum(dp.excess_offset.values()))))
    return out


@dataclass(frozen=True)
class SketchMC:
    """Monte Carlo estimate for a sketched problem from its reductions.

    ``risks[k]`` are the per-replica sketched excess risks of draw ``k`` (offset included); the estimate is the
    equal-weight mean over draws, its standard error :math:`\\sqrt{\\sum_k s_k^2/R_k}/K`.
    """

    estimate: Estimate
    risks: tuple[np.ndarray, ...]

    @property
    def mean(self) -> float:
        return self.estimate.mean

    @property
    def se(self) -> float:
        return self.estimate.se


def sketched_mc(
    ctx: Context, problems: list[Problem], reps_per_draw: int, seed: int, **sweep_kwargs: Any,
) -> list[SketchMC]:
    """Simulate sketched problems through :func:`reduced_problems` in one sweep.

    Reduced problem ``j`` of the flattened list uses child ``j`` of ``SeedSequence(seed)``, so two lists of
    problems with the same layout (same number of draws) are paired replica by replica.
    """
    flat: list[tuple[int, Problem, float]] = []
    for i, p in enumerate(problems):
        flat += [(i, rp, off) for rp, off in reduced_problems(p)]
    sims = ctx.sweep([rp for _, rp, _ in flat], reps_per_draw, seed, **sweep_kwargs)
    grouped: dict[int, list[np.ndarray]] = {i: [] for i in range(len(problems))}
    for (i, _, off), sim in zip(flat, sims, strict=True):
        grouped[i].append(np.asarray(sim.excess_risks) + off)
    out = []
    for i in range(len(problems)):
        parts = grouped[i]
        K = len(parts)
        mean = float(np.mean([p.mean() for p in parts]))
        se = math.sqrt(sum(float(p.var(ddof=1)) / p.size for p in parts)) / K
        out.append(SketchMC(Estimate(mean, se), tuple(parts)))
    return out


def paired_sketch_difference(a: SketchMC, b: SketchMC) -> Estimate:
    """Difference of two paired :class:`SketchMC` estimates (same draws, same seeds), draw by draw."""
    K = len(a.risks)
    diffs = [x - y for x, y in zip(a.risks, b.risks, strict=True)]
    mean = float(np.mean([d.mean() for d in diffs]))
    se = math.sqrt(sum(float(d.var(ddof=1)) / d.size for d in diffs)) / K
    return Estimate(mean, se)


def as_estimates(results: list[Any]) -> list[Estimate]:
    """:class:`Estimate` of each :class:`~scalinglaw.simulate.SimulationResult`."""
    return [Estimate(r.excess_risk_mean, r.excess_risk_sem) for r in results]
