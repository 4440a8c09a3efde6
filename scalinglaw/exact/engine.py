r"""Exact expected risk of quantized one-pass SGD (SPEC §4): the project's ground truth [derived].

:func:`exact_risk` validates a :class:`~scalinglaw.problem.Problem`, reduces it to diagonal Gaussian problems
(:mod:`scalinglaw.reduction`), builds the exact second-moment map (:mod:`scalinglaw.dynamics`) and evaluates it
either step by step (:mod:`~scalinglaw.exact.recursion`, the reference) or in closed form per constant-step
phase (:mod:`~scalinglaw.exact.spectral`, cost independent of :math:`N`).

Convention: the excess risk is :math:`\mathbb E\|w-w^*\|_H^2` with **no** factor :math:`\tfrac12`, measured on clean
test inputs by default; ``test_inputs="quantized"`` measures :math:`\mathbb E(\langle w,Q_d(x)\rangle-y)^2-\sigma^2`
instead (SPEC §5.2). The terms, which sum to the excess risk:

``approximation``
    :math:`\|w_q-w^*\|_H^2` (clean) or :math:`\|w^*\|_H^2-\|w_q\|_{H^{(q)}}^2` (quantized test): the price of
    quantized data at infinite data, :math:`w_q=(H^{(q)})^{-1}Hw^*`.
``bias``
    What the initial error :math:`w_0-w_q` leaves after training: :math:`\mathbb E\|w-w_q\|^2` of the run
    minus ``variance``.
``variance``
    What gradient noise adds: :math:`\mathbb E\|w-w_q\|^2` of the same run started at :math:`w_0=w_q`.
``cross``
    :math:`2\langle w_q-w^*,\mathbb E(w-w_q)\rangle_H` (clean test inputs only; zero without data
    quantization). By Cauchy-Schwarz
    :math:`|\mathrm{cross}|\le2\sqrt{\mathrm{approximation}\,(\mathrm{bias}+\mathrm{variance})}`.
``sketch_approximation``, ``tail``
    The sketched model's :math:`\mathrm{Approx}` (Lin et al.) and the unmodelled tail of :math:`d=\infty`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _checks
from ..dynamics import StepMap, check_stability, max_stable_step, moment_coefficients
from ..errors import UnsupportedConfigurationError
from ..problem import Problem
from ..reduction import DiagonalProblem, reduce_problem
from .recursion import recursion_moments
from .window import Moments

__all__ = ["ExactResult", "exact_risk", "exact_risk_limit"]

METHODS = ("auto", "spectral", "recursion")
#: ``auto`` always steps runs this short; above it, it picks the cheaper method by a cost model.
RECURSION_STEPS = 256


@dataclass(frozen=True)
class ExactResult:
    """The exact expected risk of one problem, with its terms.

    Attributes
    ----------
    excess_risk, risk : float
        Expected excess risk and risk (``risk = excess_risk + sigma2``).
    terms : dict
        ``approximation``, ``bias``, ``variance``, ``cross`` and, where present, ``sketch_approximation``
        and ``tail``. They sum to ``excess_risk``.
    test_inputs : str
        ``"clean"`` or ``"quantized"``.
    max_stable_gamma : float
        The largest stable step size of the (first) diagonal problem.
    quantized_spectrum : ndarray
        :math:`H^{(q)}` diagonal (first sketch draw when sketched).
    shrink : ndarray
        :math:`\\mu/\\tilde\\mu`, so that :math:`w_q=` ``shrink`` :math:`\\odot w^*` (first draw).
    quantized_target : ndarray or None
        :math:`w_q=(H^{(q)})^{-1}Hw^*` for a deterministic target (in the sketch eigenbasis when sketched; first
        draw); ``None`` for a random prior, whose :math:`w_q` is random (use ``shrink``).
    method : str
        ``"spectral"`` or ``"recursion"``.
    notes : tuple of str
        Statements about approximations (finite proxy for d = inf, surrogate epsilons of real formats).
    """

    excess_risk: float
    risk: float
    terms: dict[str, float]
    test_inputs: str
    max_stable_gamma: float
    quantized_spectrum: np.ndarray = field(repr=False)
    shrink: np.ndarray = field(repr=False)
    quantized_target: np.ndarray | None = field(default=None, repr=False)
    method: str = "spectral"
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (the CLI's ``predict --method exact --json``)."""
        return {
            "excess_risk": self.excess_risk,
            "risk": self.risk,
            "terms": dict(self.terms),
            "test_inputs": self.test_inputs,
            "max_stable_gamma": self.max_stable_gamma,
            "method": self.method,
            "notes": list(self.notes),
        }


def _surrogate_notes(problem: Problem) -> list[str]:
    notes = []
    for name, q in problem.quantizers.items():
        if q is not None and not q.idealized:
            ideal = q.idealized_scheme()
            if ideal is not None:
                notes.append(f"{name}={q.spec} enters through its idealised surrogate {ideal.spec}")
    return notes


def _check_supported(problem: Problem) -> None:
    q = problem.quantizers["data"]
    if problem.M is not None and problem.sketch_basis == "raw" and q is not None:
        kind = q.idealized_scheme().kind if q.idealized_scheme() is not None else q.kind
        if kind not in ("additive", "multiplicative"):
            raise UnsupportedConfigurationError(
                f"data={q.spec} on the raw sketched coordinates breaks the diagonal closure of the exact "
                "engine; use sketch_basis='eigen', an additive or shared multiplicative scheme, or simulate"
            )


def _spectral_is_cheaper(problem: Problem, d: int) -> bool:
    """Rough cost model (seconds): stepping costs per step and per coordinate; the closed form per phase."""
    if problem.steps <= RECURSION_STEPS:
        return False
    recursion = problem.steps * (2e-5 + 4e-8 * d)
    spectral = len(problem.phases()) * (3e-3 + 6e-10 * d**3 + 6e-7 * d * d)
    return spectral < recursion


def _diagonal_terms(
    dp: DiagonalProblem, problem: Problem, method: str, tail_trace: float
) -> tuple[dict[str, float], float, Any, str]:
    mc = moment_coefficients(dp, problem.quantizers, problem.B, tail_trace=tail_trace)
    check_stability(mc, problem.gamma)
    maps = [(StepMap.build(mc, g), n) for g, n in problem.phases()]
    sh, s, mu, mut = mc.shrink, mc.target_sq, mc.mu, mc.mut
    # Two initial conditions: w0 = 0 (the run) and w0 = w_q (noise only, for the variance term).
    m0 = np.stack([-sh * s, np.zeros_like(s)])
    a0 = np.stack([sh * sh * s, np.zeros_like(s)])
    use_spectral = method == "spectral" or (method == "auto" and _spectral_is_cheaper(problem, s.size))
    if use_spectral:
        from .spectral import spectral_moments

        mom: Moments = spectral_moments(maps, m0, a0, problem.average)
        used = "spectral"
    else:
        mom = recursion_moments(maps, m0, a0, problem.average)
        used = "recursion"
    weight = mu if problem.test_inputs == "clean" else mut
    centred = float(weight @ mom.second[0])  # E||w_out - w_q||^2 from w0 = 0
    variance = float(weight @ mom.second[1])  # the same from w0 = w_q: noise only
    if problem.test_inputs == "clean":
        approx = float(mu @ ((sh - 1.0) ** 2 * s))
        cross = float(2.0 * (mu * (sh - 1.0)) @ mom.cross[0])  # 2 <w_q - w*, E(w_out - w_q)>_H
    else:
        approx = float(mu @ ((1.0 - sh) * s))
        cross = 0.0
    terms = {"approximation": approx, "bias": centred - variance, "variance": variance, "cross": cross}
    terms.update(dp.excess_offset)
    return terms, max_stable_step(mc), mc, used


def exact_risk(problem: Problem, *, method: str = "auto") -> ExactResult:
    """Exact expected (excess) risk of the quantized SGD described by ``problem``.

    Parameters
    ----------
    problem : Problem
        The configuration (validated when built).
    method : {"auto", "spectral", "recursion"}
        ``spectral``: closed form per constant-step phase (cost independent of N); ``recursion``: the
        step-by-step reference; ``auto``: recursion for short runs, closed form otherwise.

    Returns
    -------
    ExactResult

    Raises
    ------
    UnstableStepError
        If ``problem.gamma`` makes the second-moment recursion diverge (the message states the largest stable
        step).
    UnsupportedConfigurationError
        For quantizers without an idealised equivalent, or raw-coordinate coordinate-wise data noise in a
        sketch.
    """
    _checks.choice("method", method, METHODS)
    _check_supported(problem)
    dps = reduce_problem(problem)
    tail_trace = (
        problem.spectrum.tail_sum(problem.proxy_dimension())
        if problem.M is None and problem.spectrum.is_infinite
        else 0.0
    )
    all_terms: list[dict[str, float]] = []
    first = None
    used = method
    for dp in dps:
        terms, gmax, mc, used = _diagonal_terms(dp, problem, method, tail_trace)
        all_terms.append(terms)
        if first is None:
            first = (gmax, mc)
    assert first is not None
    keys = list(all_terms[0])
    terms = {k: float(np.mean([t[k] for t in all_terms])) for k in keys}
    excess = float(sum(terms.values()))
    notes = list(dps[0].notes) + _surrogate_notes(problem)
    if problem.sketch_draws > 1:
        notes.append(f"averaged over {problem.sketch_draws} sketch draws (seed {problem.sketch_seed})")
    gmax, mc = first
    w_q = None if dps[0].target is None else mc.shrink * dps[0].target
    return ExactResult(
        excess_risk=excess,
        risk=excess + problem.sigma2,
        terms=terms,
        test_inputs=problem.test_inputs,
        max_stable_gamma=gmax,
        quantized_spectrum=mc.mut,
        shrink=mc.shrink,
        quantized_target=w_q,
        method=used,
        notes=tuple(notes),
    )


def exact_risk_limit(problem: Problem) -> float:
    r"""The excess risk of ``problem``'s set-up in the limit :math:`N\to\infty` (same step, schedule, output).

    Averaged outputs and geometric decay remove bias and variance as :math:`N\to\infty`, leaving the
    approximation terms; constant steps with the last iterate keep the stationary variance
    :math:`\sum_i w_i a_{\infty,i}`, :math:`a_\infty=K^{-1}c'` (the fixed point of the centred map,
    theory/exact-risk.md §4) [derived]. The finite proxy of :math:`d=\infty` is that of ``problem``.
    """
    _check_supported(problem)
    tail_trace = (
        problem.spectrum.tail_sum(problem.proxy_dimension())
        if problem.M is None and problem.spectrum.is_infinite
        else 0.0
    )
    values = []
    for dp in reduce_problem(problem):
        mc = moment_coefficients(dp, problem.quantizers, problem.B, tail_trace=tail_trace)
        sh, s, mu, mut = mc.shrink, mc.target_sq, mc.mu, mc.mut
        if problem.test_inputs == "clean":
            total = float(mu @ ((sh - 1.0) ** 2 * s))
            weight = mu
        else:
            total = float(mu @ ((1.0 - sh) * s))
            weight = mut
        if problem.schedule == "constant" and problem.average == "last":
            check_stability(mc, problem.gamma)
            step = StepMap.build(mc, problem.gamma)
            z1, z2 = step.c / step.kappa, step.mut / step.kappa
            a_inf = z1 + step.beta * z2 * (step.mut @ z1) / (1.0 - step.beta * (step.mut @ z2))
            total += float(weight @ a_inf)
        values.append(total + sum(dp.excess_offset.values()))
    return float(np.mean(values))
