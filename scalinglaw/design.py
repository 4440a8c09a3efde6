r"""Space-filling designs over the documented domain of each regression law [derived].

A *design* is a list of problems drawn by a scrambled Sobol sequence (:class:`scipy.stats.qmc.Sobol`) over a
:class:`Domain`: spectrum and source exponents, dimension (finite, or :math:`d=\infty` when the domain allows
it), sample size, batch, step size as a fraction of the largest step the law admits, output average,
label noise, sketch size, quantized targets with their schemes and :math:`\epsilon`, and the test
convention. The calibration design and the test design of a law come from independent seeds over the same
domain (:func:`design`), so neither lies on the other's grid.

Every problem is described by a JSON-friendly :class:`DesignPoint` (the keyword arguments of
:func:`~scalinglaw.problem.make_problem` plus the step fraction); the step itself is fixed when the point is
evaluated (:func:`step_size`), because it depends on the law's step limit and on the exact engine's.

The domain is a parameter: :data:`DOMAIN` is the laws' documented domain (finite :math:`d` up to :math:`10^6` and
:math:`d=\infty` for a quarter of the problems, up to :math:`10^{12}` samples, sketches up to :math:`M=16384`);
:data:`FINITE_DOMAIN` is the earlier, smaller one (finite :math:`d\le1500`, :math:`N\le10^7`, :math:`M\le512`).

The reference of a problem (:func:`reference`) is the exact engine, averaged over ``sketch_draws`` sketches for a
sketched problem, except for sketches with :math:`M>` :data:`DRAWS_MAX_M` or :math:`d>` :data:`DRAWS_MAX_D`
(including :math:`d=\infty`), whose drawn sketches cost :math:`O(M^2d)` each: their reference is the deterministic
equivalent of the average over sketches (:func:`scalinglaw.deterministic.deterministic_risk`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.stats import qmc

from .errors import ParameterError
from .laws.regression import SKETCH_MIN, SKETCH_RATIO
from .problem import QUANTIZER_TARGETS, Problem, make_problem

__all__ = ["DESIGN_LAWS", "DOMAIN", "DRAWS_MAX_D", "DRAWS_MAX_M", "FINITE_DOMAIN", "DesignPoint", "Domain", "design",
           "problem_of", "reference", "step_size"]

DESIGN_LAWS = ("sgd", "sgd-quantized", "sketched", "sketched-quantized")
SCHEMES = ("additive", "multiplicative", "multiplicative-coord")
#: seeds of the two designs of a law (offset by the law's index): independent scrambles of the Sobol sequence
SEEDS = {"calibration": 20261, "test": 77003}
#: sketches with M and d at most these are averaged over drawn sketches by the exact engine; larger ones (and
#: d = inf) use the deterministic equivalent of the average over sketches
DRAWS_MAX_M, DRAWS_MAX_D = 64, 4096


@dataclass(frozen=True)
class Domain:
    """The box a design fills. Ranges are ``(low, high)``; "log" ranges are sampled log-uniformly.

    Attributes
    ----------
    a : spectrum exponent, :math:`\\lambda_i=i^{-a}`.
    b_offset : :math:`b-a` for the prior target (source condition), clipped to :math:`b>1` where needed.
    prior_fraction : share of problems with the prior target (the rest: all ones, :math:`b=a`).
    d : finite dimension (log).
    inf_fraction : share of problems with :math:`d=\\infty`.
    steps_constant, n_geometric : steps :math:`T=N/B` for constant steps, samples :math:`N` for geometric decay (log).
    batch : batch size (log, integer) for the laws with a batch.
    step_fraction : :math:`\\gamma` as a fraction of the largest step the law admits (log).
    sigma2 : label noise (log); ``sigma2_zero_fraction`` of the problems have :math:`\\sigma^2=0`.
    eps : quantization :math:`\\epsilon` (log).
    max_targets : at most this many quantized targets per problem (at least one for the quantized laws).
    M : sketch size (log, integer, at most d/4; points below 8 are dropped: the sketched laws' domain is
        ``8 <= M <= d/4`` or no sketch); ``plain_fraction`` of the sketched problems with finite :math:`d` are
        plain regression under geometric decay (the law's :math:`M=d`; at :math:`d=\\infty` the laws need a
        sketch).
    sketch_draws : sketches averaged per problem (at least ``32/M``).
    """

    a: tuple[float, float] = (1.2, 3.0)
    b_offset: tuple[float, float] = (-1.0, 1.5)
    prior_fraction: float = 0.6
    d: tuple[float, float] = (8.0, 1500.0)
    inf_fraction: float = 0.0
    steps_constant: tuple[float, float] = (10.0, 1e6)
    n_geometric: tuple[float, float] = (100.0, 1e7)
    batch: tuple[float, float] = (1.0, 64.0)
    step_fraction: tuple[float, float] = (0.01, 0.95)
    sigma2: tuple[float, float] = (1e-3, 2.0)
    sigma2_zero_fraction: float = 0.1
    eps: tuple[float, float] = (1e-4, 0.3)
    max_targets: int = 3
    M: tuple[float, float] = (2.0, 512.0)
    plain_fraction: float = 0.25
    sketch_draws: int = 4

    def describe(self) -> dict[str, Any]:
        return asdict(self)


#: The earlier designs' domain (the dense engine's reach): finite d <= 1500, N <= 1e7, M <= 512.
FINITE_DOMAIN = Domain()
#: The laws' documented domain: d up to 1e6 and d = inf (a quarter), T = N/B up to 1e12 steps (constant steps),
#: N up to 1e12 samples (geometric decay), sketches 8 <= M <= min(16384, d/4).
DOMAIN = Domain(d=(8.0, 1e6), inf_fraction=0.25, steps_constant=(10.0, 1e12), n_geometric=(100.0, 1e12),
                M=(8.0, 16384.0))


@dataclass(frozen=True)
class DesignPoint:
    """One problem of a design: ``make_problem`` keyword arguments (without ``gamma``) and the step fraction."""

    law: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    step_fraction: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.law, "kwargs": dict(self.kwargs), "step_fraction": self.step_fraction}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DesignPoint:
        return cls(law=d["law"], kwargs=dict(d["kwargs"]), step_fraction=float(d["step_fraction"]))

    @property
    def reference(self) -> str:
        """What the closed form is checked against: ``"exact"`` or ``"de"`` (:func:`reference`)."""
        return reference(self.kwargs)


def reference(kwargs: dict[str, Any]) -> str:
    """``"de"`` (the deterministic equivalent of the average over sketches) for a sketch with
    :math:`M>` :data:`DRAWS_MAX_M` or :math:`d>` :data:`DRAWS_MAX_D` (or :math:`d=\\infty`); ``"exact"`` (the
    exact engine, averaged over ``sketch_draws`` drawn sketches for a sketch) otherwise."""
    if "M" not in kwargs:
        return "exact"
    d = kwargs["d"]
    return "de" if kwargs["M"] > DRAWS_MAX_M or d == "inf" or d > DRAWS_MAX_D else "exact"


def _log(u: float, lo: float, hi: float) -> float:
    return float(math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))))


def _pick(u: float, options: tuple[Any, ...]) -> Any:
    return options[min(int(u * len(options)), len(options) - 1)]


#: unit coordinates of one point: 12 shared, then 3 per quantization target (priority, scheme, epsilon)
_SHARED_DIMS = 12
_DIMS = _SHARED_DIMS + 3 * len(QUANTIZER_TARGETS)


def _point(law: str, u: np.ndarray, domain: Domain, index: int) -> DesignPoint:
    sketched = law.startswith("sketched")
    quantized = law.endswith("quantized")
    a = domain.a[0] + u[0] * (domain.a[1] - domain.a[0])
    kw: dict[str, Any] = {"a": float(round(a, 4))}
    d_inf = u[3] < domain.inf_fraction
    if d_inf:
        kw["d"] = "inf"
    else:
        v = (u[3] - domain.inf_fraction) / (1.0 - domain.inf_fraction)
        kw["d"] = round(_log(v, *domain.d))
    if u[1] < domain.prior_fraction:
        b = a + domain.b_offset[0] + u[2] * (domain.b_offset[1] - domain.b_offset[0])
        kw.update(target="prior", b=float(round(max(b, 1.05), 4)))
    B = 1 if law == "sgd" else round(_log(u[5], *domain.batch))
    kw["B"] = B
    s2 = 0.0 if u[8] < domain.sigma2_zero_fraction else _log(
        (u[8] - domain.sigma2_zero_fraction) / (1.0 - domain.sigma2_zero_fraction), *domain.sigma2)
    kw["sigma2"] = float(f"{s2:.4g}")
    if sketched:
        kw.update(schedule="geometric", average="last")
        n = _log(u[4], *domain.n_geometric)
        kw["N"] = max(B * 2, round(n / B) * B)
        top = domain.M[1] if d_inf else min(domain.M[1], kw["d"] // SKETCH_RATIO)
        if d_inf or (u[9] >= domain.plain_fraction and top >= domain.M[0]):
            # d = inf: always a sketch (the laws need a finite M), the coordinate used in full
            v = u[9] if d_inf else (u[9] - domain.plain_fraction) / (1.0 - domain.plain_fraction)
            M = round(_log(v, domain.M[0], top))
            kw["M"] = M
            if reference(kw) == "exact":  # small sketches fluctuate most: more draws for them
                kw.update(sketch_draws=max(domain.sketch_draws, math.ceil(32 / M)), sketch_seed=index)
    else:
        kw.update(schedule="constant", average=_pick(u[7], ("uniform", "tail")))
        kw["N"] = round(_log(u[4], *domain.steps_constant)) * B
    if quantized:
        kw["test_inputs"] = _pick(u[10], ("clean", "quantized"))
        count = 1 + min(int(u[11] * domain.max_targets), domain.max_targets - 1)
        q = u[_SHARED_DIMS:].reshape(len(QUANTIZER_TARGETS), 3)
        order = np.argsort(q[:, 0])
        for t in order[:count]:
            target = QUANTIZER_TARGETS[int(t)]
            scheme = _pick(q[t, 1], SCHEMES)
            if target == "data" and d_inf and scheme == "additive" and "M" not in kw:
                scheme = "multiplicative"  # additive data noise needs a finite trace (d eps)
            kw[target] = f"{scheme}:{_log(q[t, 2], *domain.eps):.4g}"
    return DesignPoint(law=law, kwargs=kw, step_fraction=float(round(_log(u[6], *domain.step_fraction), 5)))


def design(law: str, which: str, size: int, domain: Domain = DOMAIN) -> list[DesignPoint]:
    """The ``which`` (``"calibration"`` or ``"test"``) design of ``law``: ``size`` points (a power of 2).

    Scrambled Sobol points (seeded per law and design, so the two designs are independent) mapped to the
    domain; deterministic. Sketches drawn below the sketched laws' smallest size (``SKETCH_MIN``), which the laws
    refuse, are dropped, so a sketched design holds fewer than ``size`` points.
    """
    if law not in DESIGN_LAWS:
        raise ParameterError("law", law, "be one of " + ", ".join(DESIGN_LAWS))
    if which not in SEEDS:
        raise ParameterError("which", which, "be calibration or test")
    if size < 1 or size & (size - 1):
        raise ParameterError("size", size, "be a power of 2 (Sobol balance)")
    sampler = qmc.Sobol(d=_DIMS, scramble=True, seed=SEEDS[which] + DESIGN_LAWS.index(law))
    units = sampler.random(size)
    points = [_point(law, u, domain, i) for i, u in enumerate(units)]
    return [p for p in points if p.kwargs.get("M", SKETCH_MIN) >= SKETCH_MIN]


def problem_of(point: DesignPoint, gamma: float) -> Problem:
    """The :class:`~scalinglaw.problem.Problem` of a design point at step ``gamma``."""
    return make_problem(**point.kwargs, gamma=gamma)


def step_size(point: DesignPoint) -> tuple[float, float, float]:
    """``(gamma, law_limit, exact_limit)``: the step is ``step_fraction`` times the smaller limit.

    ``law_limit`` is the largest step the closed form admits (its ``step_limit``), ``exact_limit`` the exact
    engine's largest stable step (smallest over the sketch draws; on the deterministic equivalent's spectrum for a
    point whose :func:`reference` is ``"de"``).
    """
    from .dynamics import max_stable_step, moment_coefficients
    from .predict import law_for_problem
    from .reduction import engine_quantizers, reduce_problem

    kw = point.kwargs
    probe = make_problem(**{**kw, "N": max(2, kw["B"]) * 2}, gamma=1e-9)
    if point.reference == "de":
        from .deterministic import equivalent_measure

        measures = [equivalent_measure(probe, 1)]
    else:
        measures = reduce_problem(probe)
    quantizers = engine_quantizers(probe)
    exact = min(max_stable_step(moment_coefficients(m, quantizers, probe.B)) for m in measures)
    law, inputs, _ = law_for_problem(probe, "unit")
    limit = float(law.step_limit(**inputs))
    gamma = point.step_fraction * min(limit, exact)
    if point.reference == "exact" and "M" not in kw:
        # a compressed measure depends on the horizon gamma N / B: the run's own measure may be slightly less stable
        for _ in range(3):
            run_problem = make_problem(**kw, gamma=gamma)  # both levels: the engine refines to estimate its error
            run = reduce_problem(run_problem) + reduce_problem(run_problem, level=1)
            own = min(max_stable_step(moment_coefficients(m, quantizers, probe.B)) for m in run)
            if own >= exact:
                break
            exact = own
            gamma = point.step_fraction * min(limit, exact)
    return gamma, limit, exact
