r"""How certain is an optimal allocation: the fit's bootstrap draws propagated to :math:`N^*, D^*, P^*` and the loss.

A fit (:func:`scalinglaw.laws.fit.fit`, saved with ``scalinglaw fit --out fit.json``) keeps its nonparametric
bootstrap draws of the constants. Each draw is a plausible law; its optimal allocation at the same budget is a
draw of the optimum. The reported interval of each quantity is the percentile interval of those draws at the
fit's level (``level=`` to change it); the point estimate is the optimum of the fitted constants, with its
near-optimal set (:func:`scalinglaw.allocate.flatness_range`). Two different uncertainties are reported side by
side: the *statistical* one (where the optimum is, given the runs) and the *flatness* (how much the loss cares).

The per-draw optima are vectorised over draws and budgets [derived from the laws' closed forms]:

* Chinchilla: Hoffmann et al. Eq. 4, :math:`N^*=G(C/6)^{\beta/(\alpha+\beta)}` [SRC];
* Kumar: :math:`P^*=\arg\max_P f(P)/P` by a vectorised golden-section search per draw, then Eq. 4 with
  :math:`A\to Af(P^*)^{-\alpha}` and :math:`ND=16C/(6P^*)` [DERIVED, empirical-laws.md §4];
* Sun: the joint :math:`P_{\rm opt}` of Eq. 25/54 [SRC], then a golden-section search over :math:`\log N`;
* Chen: a golden-section search over :math:`\log N` at the priced precision (each isoFLOP loss is a sum of
  powers of :math:`N`, convex in :math:`\log N`, so the search brackets the unique minimum).

Other set-ups (fixed sizes, memory budgets, the regression laws) fall back to one numeric optimisation per
draw. A draw whose optimum leaves the law's domain or the search bounds is counted in ``failed_draws`` and left
out of the percentiles.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _checks
from .allocate import (
    Allocation,
    AllocationModel,
    ChenModel,
    ChinchillaModel,
    KumarModel,
    SunModel,
    allocation_model,
    frontier,
    optimize_allocation,
)
from .errors import ParameterError, ScalingLawError
from .laws.fit import FitResult, load_fit

__all__ = [
    "UncertainAllocation",
    "UncertainFrontier",
    "frontier_with_uncertainty",
    "isoflop_bands",
    "optimize_with_uncertainty",
    "optimum_draws",
]

ROLES = ("size", "data", "precision")
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


# ---------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class UncertainAllocation:
    """An optimal allocation with percentile intervals over the fit's bootstrap draws.

    Attributes
    ----------
    allocation : Allocation
        The optimum of the fitted constants (with its flatness range).
    intervals : dict
        ``size``, ``data``, ``precision``, ``loss``, ``data_per_size`` -> ``(lo, hi)`` at ``level``.
    level : float
        Level of the percentile intervals.
    n_draws, failed_draws : int
        Bootstrap draws used, and those without an interior optimum (left out of the intervals).
    method : str
        How the per-draw optima were computed.
    source : dict
        What the draws come from (law, runs, resamples, seed).
    """

    allocation: Allocation
    intervals: dict[str, tuple[float, float]]
    level: float
    n_draws: int
    failed_draws: int
    method: str
    source: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = self.allocation.to_dict()
        lab = self.allocation.labels
        names = {"size": lab["size"], "data": lab["data"], "precision": lab["precision"], "loss": "loss",
                 "data_per_size": f"{lab['data']}_per_{lab['size']}"}
        out["intervals"] = {names[k]: list(v) for k, v in self.intervals.items()}
        out["uncertainty"] = {"level": self.level, "draws": self.n_draws, "failed_draws": self.failed_draws,
                              "method": self.method, "interval": "percentiles of the per-draw optima",
                              "from_fit": dict(self.source)}
        return out


@dataclass(frozen=True)
class UncertainFrontier:
    """Optimal allocations over budgets with percentile bands over the bootstrap draws.

    ``estimate[role]`` is the frontier of the fitted constants; ``lo[role]``/``hi[role]`` the band; roles
    ``size``, ``data``, ``precision``, ``loss``.
    """

    law: str
    labels: dict[str, str]
    budgets: np.ndarray
    estimate: dict[str, np.ndarray]
    lo: dict[str, np.ndarray]
    hi: dict[str, np.ndarray]
    level: float
    n_draws: int
    failed_draws: np.ndarray
    method: str
    budget_kind: str = "compute"

    @property
    def size(self) -> np.ndarray:
        return self.estimate["size"]

    @property
    def data(self) -> np.ndarray:
        return self.estimate["data"]

    @property
    def precision(self) -> np.ndarray:
        return self.estimate["precision"]

    @property
    def loss(self) -> np.ndarray:
        return self.estimate["loss"]

    def to_dict(self) -> dict[str, Any]:
        lab = self.labels
        names = {"size": lab["size"], "data": lab["data"], "precision": lab["precision"], "loss": "loss"}
        out: dict[str, Any] = {"law": self.law, "budget_kind": self.budget_kind, "method": self.method,
                               "budgets": self.budgets.tolist()}
        for role, name in names.items():
            out[name] = self.estimate[role].tolist()
            out[f"{name}_interval"] = [self.lo[role].tolist(), self.hi[role].tolist()]
        ok = np.isfinite(self.size)
        out[f"exponent_{lab['size']}"] = float(np.polyfit(np.log(self.budgets[ok]), np.log(self.size[ok]), 1)[0])
        out["uncertainty"] = {"level": self.level, "draws": self.n_draws,
                              "failed_draws": self.failed_draws.tolist()}
        return out


# ---------------------------------------------------------------------------------------------- public API
def optimize_with_uncertainty(fit: FitResult | str | os.PathLike[str], budget: float, *, kind: str = "compute",
                              fix: dict[str, float] | None = None, level: float | None = None,
                              flatness_tol: float = 0.005, flat_rtol: float = 1e-3, flat_factor: float = math.inf,
                              **options: Any) -> UncertainAllocation:
    """The optimal allocation of a fitted law, with percentile intervals over the fit's bootstrap draws.

    Parameters
    ----------
    fit : FitResult or path
        A fit with bootstrap draws (``n_boot >= 2``), or the JSON file ``scalinglaw fit --out`` wrote.
    budget : float
        Compute (or memory) budget.
    kind, fix, flat_rtol, flat_factor, flatness_tol
        As in :func:`scalinglaw.allocate.optimize_allocation` (flat optima are not refused by default here:
        their flatness is part of the answer).
    level : float, optional
        Level of the percentile intervals (default: the fit's).
    **options
        Allocation-model options (``block`` for Sun, ``G`` and ``compute_bits`` for Chen).

    Returns
    -------
    UncertainAllocation
    """
    result = _as_fit(fit)
    level = result.level if level is None else _level(level)
    model = _model(result, options)
    point = optimize_allocation(model, budget, kind=kind, fix=fix, flat_rtol=flat_rtol, flat_factor=flat_factor,
                                flatness_tol=flatness_tol)
    fixed = _fixed(model, fix)
    draws = optimum_draws(result, np.array([float(budget)]), kind=kind, fixed=fixed, model=model)
    intervals = {role: _percentiles(draws[role][:, 0], level) for role in (*ROLES, "loss")}
    intervals["data_per_size"] = _percentiles(draws["data"][:, 0] / draws["size"][:, 0], level)
    failed = int(np.sum(~np.isfinite(draws["size"][:, 0])))
    return UncertainAllocation(point, intervals, level, result.n_boot, failed, draws["method"], _source(result))


def frontier_with_uncertainty(fit: FitResult | str | os.PathLike[str], budgets: Sequence[float] | np.ndarray, *,
                              kind: str = "compute", fix: dict[str, float] | None = None, level: float | None = None,
                              **options: Any) -> UncertainFrontier:
    """The frontier of a fitted law over ``budgets`` with percentile bands over the fit's bootstrap draws."""
    result = _as_fit(fit)
    level = result.level if level is None else _level(level)
    model = _model(result, options)
    C = _checks.as_array("--frontier", budgets).ravel()
    if C.size == 0 or np.any(~(C > 0)) or np.any(np.isinf(C)):
        raise ParameterError("--frontier", float(C[~((C > 0) & np.isfinite(C))][0]) if C.size else "nothing",
                             "contain only positive finite budgets")
    point = frontier(model, C, kind=kind, fix=fix)
    draws = optimum_draws(result, C, kind=kind, fixed=_fixed(model, fix), model=model)
    tail = (1.0 - level) / 2.0
    est = {"size": point.size, "data": point.data, "precision": point.precision, "loss": point.loss}
    lo, hi = {}, {}
    for role in (*ROLES, "loss"):
        q = _nanquantile(draws[role], [tail, 1.0 - tail])
        lo[role], hi[role] = q[0], q[1]
    failed = np.sum(~np.isfinite(draws["size"]), axis=0)
    return UncertainFrontier(model.name, dict(model.labels), C, est, lo, hi, level, result.n_boot, failed,
                             f"{point.method} (bands: {draws['method']})", kind)


def optimum_draws(fit: FitResult, budgets: np.ndarray, *, kind: str = "compute", fixed: dict[str, float] | None = None,
                  model: AllocationModel | None = None, **options: Any) -> dict[str, Any]:
    """The optimum of every bootstrap draw at every budget: arrays ``(n_draws, n_budgets)`` for ``size``,
    ``data``, ``precision`` and ``loss`` (NaN where a draw has no interior optimum), and ``method``."""
    model = _model(fit, options) if model is None else model
    fixed = dict(fixed or {})
    budgets = np.asarray(budgets, dtype=np.float64).ravel()
    consts = {k: v[:, None] for k, v in fit.draws().items()}
    C = budgets[None, :]
    out = None
    if kind == "compute":
        with np.errstate(all="ignore"):
            out = _vectorised(model, consts, C, fixed)
    if out is not None:
        out = {k: np.where(np.isfinite(out["size"]), np.asarray(v, dtype=np.float64), np.nan) for k, v in out.items()}
        out["method"] = "vectorised over draws (closed form or golden section)"
        return out
    return _per_draw(fit, model, budgets, kind, fixed)


def isoflop_bands(fit: FitResult | str | os.PathLike[str], curves: dict[str, Any], *, level: float | None = None,
                  **options: Any) -> dict[str, Any]:
    """Percentile bands over the bootstrap draws for :func:`scalinglaw.allocate.isoflop` curves: the loss along
    each curve (same sizes, same precision) and the interval of each budget's optimal size."""
    result = _as_fit(fit)
    level = result.level if level is None else _level(level)
    model = _model(result, options)
    consts = {k: v[:, None] for k, v in result.draws().items()}
    tail = (1.0 - level) / 2.0
    budgets = np.array([c["budget"] for c in curves["curves"]])
    optima = optimum_draws(result, budgets, model=model)
    out: dict[str, Any] = {"level": level, "loss_lo": [], "loss_hi": [], "size_interval": []}
    for j, c in enumerate(curves["curves"]):
        size = np.asarray(c["size"], dtype=np.float64)[None, :]
        data = c["budget"] / (model.compute_constant * size * c["precision"])
        with np.errstate(all="ignore"):
            loss = _loss_draws(model, consts, size, data, np.full(size.shape, c["precision"]))
        if loss is None:
            raise ParameterError("--isoflop", curves["law"], "be drawn with bands for the LLM laws only")
        q = _nanquantile(np.where(np.isfinite(loss), loss, np.nan), [tail, 1.0 - tail])
        out["loss_lo"].append(q[0])
        out["loss_hi"].append(q[1])
        out["size_interval"].append(_percentiles(optima["size"][:, j], level))
    return out


def _loss_draws(model: AllocationModel, c: dict[str, np.ndarray], size: np.ndarray, data: np.ndarray,
                P: np.ndarray) -> np.ndarray | None:
    """The loss of every draw (rows) at the given allocations (columns); ``None`` for the regression laws."""
    if isinstance(model, ChinchillaModel):
        return c["E"] + c["A"] * size ** (-c["alpha"]) + c["B"] * data ** (-c["beta"])
    if isinstance(model, KumarModel):
        bias = model.law.options["bias"]
        f = 1.0
        for x in ("w", "a", "kv"):
            f = f * (1.0 - np.exp(-P / c[f"gamma_{x}"] + (c[f"n_{x}"] if bias else 0.0)))
        return c["E"] + c["A"] * (size * f) ** (-c["alpha"]) + c["B"] * data ** (-c["beta"])
    if isinstance(model, SunModel):
        M = c["nu"] / (c["delta"] + c["nu"]) * P - 0.5
        return model.law.compile()(size, data, P - 1.0 - M, M, model.block, *_law_args(model, c))
    if isinstance(model, ChenModel):
        return model.law.compile()(size, data, model.G, *_law_args(model, c))
    return None


# ---------------------------------------------------------------------------------------------- helpers
def _as_fit(fit: FitResult | str | os.PathLike[str]) -> FitResult:
    result = fit if isinstance(fit, FitResult) else load_fit(fit)
    if result.n_boot < 2:
        raise ParameterError("--from-fit", f"a fit with {result.n_boot} bootstrap draws",
                             "hold >= 2 draws (run scalinglaw fit with --boot 2 or more)")
    return result


def _level(level: Any) -> float:
    value = _checks.as_float("--level", level)
    if not 0 < value < 1:
        raise ParameterError("--level", value, "be in (0, 1), e.g. 0.95")
    return value


def _model(fit: FitResult, options: Mapping[str, Any]) -> AllocationModel:
    return allocation_model(fit.law_object(), **options)


def _fixed(model: AllocationModel, fix: dict[str, float] | None) -> dict[str, float]:
    inv = {v: k for k, v in model.labels.items()}
    out = {}
    for name, value in (fix or {}).items():
        if name not in inv:
            raise ParameterError("--fix", name, "name one of " + ", ".join(model.labels.values()))
        out[inv[name]] = float(value)
    return out


def _source(fit: FitResult) -> dict[str, Any]:
    return {"law": fit.law, "n_runs": fit.n_runs, "n_boot": fit.n_boot, "seed": fit.seed,
            "free": list(fit.free), "fit_level": fit.level}


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    ok = values[np.isfinite(values)]
    if ok.size < 2:
        return (math.nan, math.nan)
    lo, hi = np.quantile(ok, [tail, 1.0 - tail])
    return (float(lo), float(hi))


def _nanquantile(values: np.ndarray, q: Sequence[float]) -> np.ndarray:
    ok = np.isfinite(values)
    enough = np.sum(ok, axis=0) >= 2
    filled = np.where(ok, values, np.nan)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = np.nanquantile(filled, q, axis=0)
    return np.where(enough[None, :], out, np.nan)


def _golden(f: Any, lo: np.ndarray, hi: np.ndarray, shape: tuple[int, ...], grid: int = 49,
            iters: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised minimum of a unimodal ``f`` on ``[lo, hi]`` for every element of ``shape``: a coarse grid
    brackets the minimum, then golden-section steps. The minimiser is NaN where it sits on the grid's edge (no
    interior minimum) or ``f`` is nowhere finite."""
    lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), shape)
    hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), shape)
    t = np.linspace(0.0, 1.0, grid).reshape((grid,) + (1,) * len(shape))
    xs = lo + t * (hi - lo)
    vals = np.asarray(f(xs), dtype=np.float64)
    vals = np.where(np.isfinite(vals), vals, np.inf)
    i = np.argmin(vals, axis=0)
    edge = (i == 0) | (i == grid - 1) | ~np.isfinite(np.min(vals, axis=0))
    step = (hi - lo) / (grid - 1)
    a = lo + np.maximum(i - 1, 0) * step
    b = lo + np.minimum(i + 1, grid - 1) * step
    c = b - _GOLDEN * (b - a)
    d = a + _GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        left = fc < fd
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        c_new = b - _GOLDEN * (b - a)
        d_new = a + _GOLDEN * (b - a)
        c, d = np.where(left, c_new, d), np.where(left, c, d_new)
        f_new = f(np.where(left, c, d))
        fc, fd = np.where(left, f_new, fd), np.where(left, fc, f_new)
    x = 0.5 * (a + b)
    return np.where(edge, np.nan, x), np.where(edge, np.nan, f(x))


def _vectorised(model: AllocationModel, consts: dict[str, np.ndarray], C: np.ndarray,
                fixed: dict[str, float]) -> dict[str, np.ndarray] | None:
    """Per-draw optima of the LLM laws under a compute budget, vectorised (``None``: not available)."""
    n = next(iter(consts.values())).shape[0]
    shape = (n, C.shape[1])
    if isinstance(model, ChinchillaModel) and set(fixed) <= {"precision"}:
        P = np.full(shape, fixed.get("precision", model.fixed_precision))
        return _chinchilla(consts, C, P)
    if isinstance(model, KumarModel) and set(fixed) <= {"precision"}:
        return _kumar(model, consts, C, shape, fixed.get("precision"))
    if isinstance(model, SunModel) and not fixed:
        return _sun(model, consts, C, shape)
    if isinstance(model, ChenModel) and not fixed:
        return _chen(model, consts, C, shape)
    return None


def _chinchilla_form(A: np.ndarray, alpha: np.ndarray, B: np.ndarray, beta: np.ndarray,
                     nd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hoffmann et al. Eq. 4 with the token-parameter product ``nd`` = C/6 [SRC]."""
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    return G * nd ** (beta / (alpha + beta)), nd ** (alpha / (alpha + beta)) / G


def _chinchilla(c: dict[str, np.ndarray], C: np.ndarray, P: np.ndarray) -> dict[str, np.ndarray]:
    N, D = _chinchilla_form(c["A"], c["alpha"], c["B"], c["beta"], C * 16.0 / (6.0 * P))
    loss = c["E"] + c["A"] * N ** (-c["alpha"]) + c["B"] * D ** (-c["beta"])
    return {"size": N, "data": D, "precision": P, "loss": loss}


def _kumar(model: KumarModel, c: dict[str, np.ndarray], C: np.ndarray, shape: tuple[int, int],
           fixed_P: float | None) -> dict[str, np.ndarray]:
    bias = model.law.options["bias"]
    parts = ("w", "a", "kv")

    def factor(P: np.ndarray) -> np.ndarray:
        f = 1.0
        for x in parts:
            f = f * (1.0 - np.exp(-P / c[f"gamma_{x}"] + (c[f"n_{x}"] if bias else 0.0)))
        return f

    lower = np.full_like(c["A"], 3.0)
    if bias:
        for x in parts:
            lower = np.maximum(lower, c[f"n_{x}"] * c[f"gamma_{x}"])
    upper = model.precision_bounds[1]
    if fixed_P is None:
        # P* = argmax f(P)/P, independent of the budget [DERIVED]; an optimum on a bound is no interior optimum
        P, _ = _golden(lambda p: -factor(p) / p, lower, np.full_like(lower, upper), lower.shape, grid=97)
    else:
        P = np.where(lower < fixed_P, float(fixed_P), np.nan)
    P = np.broadcast_to(P, shape)
    f = factor(P)
    A_eff = c["A"] * f ** (-c["alpha"])
    N, D = _chinchilla_form(A_eff, c["alpha"], c["B"], c["beta"], C * 16.0 / (6.0 * P))
    loss = c["E"] + A_eff * N ** (-c["alpha"]) + c["B"] * D ** (-c["beta"])
    return {"size": N, "data": D, "precision": P, "loss": loss}


def _law_args(model: AllocationModel, c: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The compiled law's constant arguments, one array (draws x 1) each."""
    return [c[k] for k in model.law.constant_names]


def _search_size(model: AllocationModel, c: dict[str, np.ndarray], C: np.ndarray, P: np.ndarray,
                 shape: tuple[int, int], loss_of: Any) -> dict[str, np.ndarray]:
    """Golden-section search over log10 N in [0, 40] (the allocation's size bounds) with D = C/(k N P)."""
    k = model.compute_constant
    lo, hi = model.size_bounds

    def f(logn: np.ndarray) -> np.ndarray:
        N = 10.0**logn
        D = C / (k * N * P)
        out = loss_of(N, D)
        return np.where((N >= 1) & (D >= 1), out, np.inf)

    logn, loss = _golden(f, np.full(shape, lo), np.full(shape, hi), shape, grid=81)
    N = 10.0**logn
    return {"size": N, "data": C / (k * N * P), "precision": np.broadcast_to(P, shape), "loss": loss}


def _sun(model: SunModel, c: dict[str, np.ndarray], C: np.ndarray, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    a, b, s = c["alpha"], c["beta"], c["delta"] + c["nu"]
    d_, v_ = c["delta"], c["nu"]
    gamma_rho = c["gamma"] * np.exp(d_ * np.log(d_) + v_ * np.log(v_) - s * np.log(s))
    gamma_D = (s - a) / (c["n"] * a * gamma_rho)
    lam = c["d"] * b / (c["n"] * a) * (s - a) / (s + b)
    r = (a + b) / b
    k = model.compute_constant
    # joint P_opt, Eq. 25/54 [SRC]
    P = np.exp((np.log(lam) + r * (np.log(gamma_D) + math.log(math.log2(model.block))) + a * np.log(C / k))
               / (a + s * r))
    plo, phi = model.precision_bounds
    P = np.where((P >= plo) & (P <= phi), P, np.nan)
    M = v_ / s * P - 0.5
    E = P - 1.0 - M
    fn, args = model.law.compile(), _law_args(model, c)

    def loss_of(N: np.ndarray, D: np.ndarray) -> np.ndarray:
        out = fn(N, D, E, M, model.block, *args)
        return np.where((E >= 0) & (M >= 0), out, np.inf)

    return _search_size(model, c, C, P, shape, loss_of)


def _chen(model: ChenModel, c: dict[str, np.ndarray], C: np.ndarray, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    fn, args = model.law.compile(), _law_args(model, c)
    P = np.full(shape, model.compute_bits)
    return _search_size(model, c, C, P, shape, lambda N, D: fn(N, D, model.G, *args))


def _per_draw(fit: FitResult, model: AllocationModel, budgets: np.ndarray, kind: str,
              fixed: dict[str, float]) -> dict[str, Any]:
    """One numeric optimisation per draw and budget (any law, any budget kind); failures are NaN."""
    from .allocate import _optimize
    from .allocate import allocation_model as make_model

    draws = fit.draws()
    n = fit.n_boot
    out = {r: np.full((n, budgets.size), np.nan) for r in (*ROLES, "loss")}
    fix = {model.labels[k]: v for k, v in fixed.items()}
    options = _model_options(model)
    for i in range(n):
        law = fit.law_object({k: float(v[i]) for k, v in draws.items()})
        m = make_model(law, **options)
        for j, budget in enumerate(budgets):
            try:
                a = _optimize(m, float(budget), kind, None, fix, False, 1e-3, math.inf)  # no flatness per draw
            except ScalingLawError:
                continue
            for r in ROLES:
                out[r][i, j] = getattr(a, r)
            out["loss"][i, j] = a.loss
    out_any: dict[str, Any] = dict(out)
    out_any["method"] = "numeric optimisation per draw"
    return out_any


def _model_options(model: AllocationModel) -> dict[str, Any]:
    if isinstance(model, SunModel):
        return {"block": model.block}
    if isinstance(model, ChenModel):
        return {"G": model.G, "compute_bits": model.compute_bits}
    return {}
