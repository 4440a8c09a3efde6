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
from ..measure import SpectralMeasure
from ..problem import Problem
from ..reduction import engine_quantizers, quantizer_notes, reduce_problem, run_horizon
from .recursion import recursion_moments
from .window import Moments

__all__ = ["ExactResult", "MeasureRisk", "exact_risk", "exact_risk_limit", "measure_risk", "measure_risk_limit"]

METHODS = ("auto", "spectral", "recursion")
MEASURES = ("auto", "explicit", "compressed")
#: ``auto`` always steps runs this short; above it, it picks the cheaper method by a cost model.
RECURSION_STEPS = 256
#: ``auto`` steps averaged runs where a node learns this much slower than its clean variance (mut/mu below it,
#: e.g. round-to-nearest zeroing small coordinates): the closed form's window pair sum cancels there (error
#: about 1e-16 / ratio relative).
SPECTRAL_MIN_RATE = 1e-5


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
        :math:`H^{(q)}` diagonal (first sketch draw when sketched), per node of the spectral measure: per
        coordinate when every coordinate is explicit (:math:`d\\le` ``scalinglaw.measure.EXPLICIT_MAX``, or
        ``measure="explicit"``), per quadrature node otherwise.
    shrink : ndarray
        :math:`\\mu/\\tilde\\mu`, so that :math:`w_q=` ``shrink`` :math:`\\odot w^*` (first draw; same nodes).
    quantized_target : ndarray or None
        :math:`w_q=(H^{(q)})^{-1}Hw^*` for a deterministic target (in the sketch eigenbasis when sketched; first
        draw); ``None`` for a random prior, whose :math:`w_q` is random (use ``shrink``).
    method : str
        ``"spectral"``, ``"recursion"`` or ``"rounds"`` (local steps or norm-relative communication, stepped).
    notes : tuple of str
        Statements about approximations (quadrature, frozen remainder, surrogate epsilons of real formats).
    error : float
        Estimated absolute numerical error of ``excess_risk``: the quadrature error of a compressed spectral
        measure (by refinement) plus the bound on the frozen remainder; 0 for explicit coordinates (rounding
        only).
    term_errors : dict
        The same per term.
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
    error: float = 0.0
    term_errors: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (the CLI's ``predict --method exact --json``)."""
        return {
            "excess_risk": self.excess_risk,
            "risk": self.risk,
            "terms": dict(self.terms),
            "test_inputs": self.test_inputs,
            "max_stable_gamma": self.max_stable_gamma,
            "method": self.method,
            "numerical_error": self.error,
            "notes": list(self.notes),
        }


def _surrogate_notes(problem: Problem) -> list[str]:
    return quantizer_notes(problem)


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
    """Rough cost model (seconds): stepping costs per step and per node; the closed form per phase."""
    if problem.steps <= RECURSION_STEPS:
        return False
    recursion = problem.steps * (2e-5 + 4e-8 * d)
    spectral = len(problem.phases()) * (3e-3 + 6e-10 * d**3 + 6e-7 * d * d)
    return spectral < recursion


@dataclass(frozen=True)
class MeasureRisk:
    """The terms of the excess risk on one spectral measure, its moment coefficients and the method used."""

    terms: dict[str, float]
    mc: Any
    method: str


def measure_risk(measure: SpectralMeasure, problem: Problem, method: str = "auto") -> MeasureRisk:
    """The terms of the excess risk of ``problem``'s run (step sizes, schedule, batch, quantizers, output, test
    convention) on the spectral measure ``measure`` instead of ``problem``'s own spectrum.

    This is the engine's core: :func:`exact_risk` builds the measures of ``problem`` (plain or per sketch draw)
    and calls it; a deterministic equivalent or any other source of a measure calls it the same way. Raises
    :class:`~scalinglaw.errors.UnstableStepError` for an unstable step.
    """
    mc = moment_coefficients(measure, engine_quantizers(problem), problem.B)
    rounds = None
    if problem.distributed:  # K workers, local steps, quantized communication (theory/distributed.md)
        from .rounds import distributed_coefficients

        mc, rounds = distributed_coefficients(mc, problem)
    else:
        check_stability(mc, problem.gamma)
    maps = [(StepMap.build(mc, g), n) for g, n in problem.phases()]
    sh, s, mu, mut, w = mc.shrink, mc.target_sq, mc.mu, mc.mut, mc.weight
    sq = np.sqrt(w)
    # Two runs in the symmetrised frame (state sqrt(n) * moments), split by linearity: the bias is the response
    # to w0 - w_q with the constant off, the variance the response to the constant from w0 = w_q. No difference
    # of two runs is taken, so neither term cancels against the other.
    m0 = np.stack([-sq * sh * s, np.zeros_like(s)])
    a0 = np.stack([sq * sh * sh * s, np.zeros_like(s)])
    forcing = np.array([0.0, 1.0])
    use_spectral = method == "spectral" or (method == "auto" and _spectral_is_cheaper(problem, s.size)
                                            and (problem.average == "last" or mc.rate_ratio >= SPECTRAL_MIN_RATE))
    if rounds is not None:
        from .rounds import round_moments

        mom = round_moments(rounds, maps, m0, a0, forcing, problem.average)
        used = "rounds"
    elif use_spectral:
        from .spectral import spectral_moments

        mom: Moments = spectral_moments(maps, m0, a0, forcing, problem.average)
        used = "spectral"
    else:
        mom = recursion_moments(maps, m0, a0, forcing, problem.average)
        used = "recursion"
    weight = sq * (mu if problem.test_inputs == "clean" else mut)
    bias = float(weight @ mom.second[0])
    variance = float(weight @ mom.second[1])
    if problem.test_inputs == "clean":
        approx = float((w * mu) @ ((sh - 1.0) ** 2 * s))
        cross = float(2.0 * (sq * mu * (sh - 1.0)) @ mom.cross[0])  # 2 <w_q - w*, E(w_out - w_q)>_H
    else:
        approx = float(w @ ((mu - mc.cross * sh) * s))  # ||w*||_H^2 - ||w_q||_{H^(q)}^2 (chi = mu unless biased)
        cross = 0.0
    terms = {"approximation": approx, "bias": bias, "variance": variance, "cross": cross}
    terms.update(measure.excess_offset)
    return MeasureRisk(terms=terms, mc=mc, method=used)


def _frozen_error(measure: SpectralMeasure, problem: Problem, mc: Any) -> float:
    r"""A bound on what freezing the remainder neglects (``theory/exact-risk.md`` §9) [derived].

    Each frozen coordinate has :math:`\tilde\mu_i\sum_t\gamma_t\le\delta`, so its bias moves by at most
    :math:`2\delta` relative and the noise it would gather is at most
    :math:`\delta\gamma_{\max}\tilde\mu_i\,\mathbb E r^2/B` per unit of :math:`\lambda_i`; its feedback on the other
    coordinates changes their noise by the same relative amount.
    """
    fz = measure.frozen
    if fz is None:
        return 0.0
    if fz.quantized_top is not None:
        # a real data format: E Q^2 is not proportional to lambda (subnormals), so take the exact quantized variance
        # at the top of the remainder; noise: sum_i lambda_i gamma H E Q_i^2 E r^2 / B <= gamma delta trace E r^2 / B
        delta = run_horizon(problem) * fz.quantized_top
        initial = float((mc.weight * mc.mu) @ mc.target_sq) + measure.sigma2
        return 4.0 * delta * (fz.mass + problem.gamma * fz.trace * initial / problem.B)
    ratio = float(mc.mut[-1] / mc.mu[-1])
    delta = run_horizon(problem) * fz.top * ratio
    initial = float((mc.weight * mc.mu) @ mc.target_sq) + measure.sigma2
    return 4.0 * delta * (fz.mass + problem.gamma * ratio**2 * fz.trace * initial / problem.B)


def _require_resources(problem: Problem, compress: bool | None, method: str) -> SpectralMeasure | None:
    """Refuse, before any heavy work, a run this machine cannot do (memory or time), naming the input; returns the
    refined measure when it had to build it to count the nodes."""
    from ..costs import require_exact, require_sketches
    from ..measure import EXPLICIT_MAX, compressible

    compressed = False
    fine = None
    if problem.M is not None:
        require_sketches(problem)
        nodes = int(problem.M)
    elif compress is False or (compress is None and (problem.spectrum.d <= EXPLICIT_MAX
                                                     or not compressible(problem.spectrum, problem.target))):
        nodes = int(problem.spectrum.d)
    else:
        fine = reduce_problem(problem, compress=compress, level=1)[0]
        nodes, compressed = fine.size, fine.compressed
    used = "recursion" if method == "recursion" or (method == "auto" and not _spectral_is_cheaper(problem, nodes)) \
        else "spectral"
    require_exact(problem, nodes, used, compressed=compressed)
    return fine


def _terms_with_error(
    problem: Problem, method: str, compress: bool | None
) -> tuple[list[dict[str, float]], list[dict[str, float]], list[Any], str, list[str], SpectralMeasure]:
    """Terms per measure (sketch draw), their numerical error, the moment coefficients, method, notes and the first
    (unrefined) measure."""
    refined = _require_resources(problem, compress, method)
    measures = reduce_problem(problem, compress=compress)
    all_terms, all_errors, mcs, notes = [], [], [], []
    used = method
    for measure in measures:
        res = measure_risk(measure, problem, method)
        used = res.method
        errors = {k: 0.0 for k in res.terms}
        if measure.compressed:
            finer = refined if refined is not None else reduce_problem(problem, level=1, compress=compress)[0]
            fine = measure_risk(finer, problem, method)
            errors = {k: abs(fine.terms[k] - res.terms[k]) for k in res.terms}
            notes.append(
                f"quadrature error estimated by refinement ({measure.size} -> {finer.size} nodes): "
                f"{sum(errors.values()):.3g} absolute"
            )
            res = fine
            measure = finer
        frozen = _frozen_error(measure, problem, res.mc)
        if frozen:
            errors["tail"] = errors.get("tail", 0.0) + frozen
            notes.append(f"frozen remainder: neglected learning below {frozen:.3g} absolute")
        all_terms.append(res.terms)
        all_errors.append(errors)
        mcs.append(res.mc)
        notes.extend(measure.notes)
    return all_terms, all_errors, mcs, used, notes, measures[0]


def exact_risk(problem: Problem, *, method: str = "auto", measure: str = "auto") -> ExactResult:
    """Exact expected (excess) risk of the quantized SGD described by ``problem``.

    Parameters
    ----------
    problem : Problem
        The configuration (validated when built).
    method : {"auto", "spectral", "recursion"}
        ``spectral``: closed form per constant-step phase (cost independent of N); ``recursion``: the
        step-by-step reference; ``auto``: recursion for short runs, closed form otherwise.
    measure : {"auto", "explicit", "compressed"}
        How a plain problem's spectrum becomes the engine's spectral measure (:mod:`scalinglaw.measure`):
        ``explicit`` keeps every coordinate (finite ``d``; exact), ``compressed`` merges blocks of a smooth
        spectrum by quadrature (error estimated by refinement and reported), ``auto`` compresses above
        :data:`~scalinglaw.measure.EXPLICIT_MAX` coordinates and for ``d = inf``.

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
    _checks.choice("measure", measure, MEASURES)
    _check_supported(problem)
    compress = {"auto": None, "explicit": False, "compressed": True}[measure]
    all_terms, all_errors, mcs, used, notes, first = _terms_with_error(problem, method, compress)
    keys = list(all_terms[0])
    terms = {k: float(np.mean([t[k] for t in all_terms])) for k in keys}
    errors = {k: float(np.mean([e.get(k, 0.0) for e in all_errors])) for k in keys}
    excess = float(sum(terms.values()))
    notes = list(dict.fromkeys(notes)) + _surrogate_notes(problem)
    if problem.sketch_draws > 1:
        notes.append(f"averaged over {problem.sketch_draws} sketch draws (seed {problem.sketch_seed})")
    mc = mcs[0]
    target = first.target if problem.M is None else None
    w_q = None
    if problem.M is None and target is not None and not first.compressed:
        w_q = mc.shrink * target
    return ExactResult(
        excess_risk=excess,
        risk=excess + problem.sigma2,
        terms=terms,
        test_inputs=problem.test_inputs,
        max_stable_gamma=_max_stable(mc, problem),
        quantized_spectrum=mc.mut,
        shrink=mc.shrink,
        quantized_target=w_q,
        method=used,
        notes=tuple(notes),
        error=float(sum(errors.values())),
        term_errors=errors,
    )


def _max_stable(mc: Any, problem: Problem) -> float:
    if problem.distributed:
        from .rounds import distributed_max_stable_step

        return distributed_max_stable_step(mc, problem)
    return max_stable_step(mc)


def exact_risk_limit(problem: Problem) -> float:
    r"""The excess risk of ``problem``'s set-up in the limit :math:`N\to\infty` (same step, schedule, output).

    Averaged outputs and geometric decay remove bias and variance as :math:`N\to\infty`, leaving the
    approximation terms; constant steps with the last iterate keep the stationary variance
    :math:`\sum_i w_i a_{\infty,i}`, :math:`a_\infty=K^{-1}c'` (the fixed point of the centred map,
    theory/exact-risk.md §4) [derived]. A frozen remainder's lumped node is learned in the limit too; every
    quantity here is affine in its variance to first order, so the lumped node stays exact to that order.
    """
    _check_supported(problem)
    return float(np.mean([measure_risk_limit(m, problem) for m in reduce_problem(problem, level=1)]))


def measure_risk_limit(measure: SpectralMeasure, problem: Problem) -> float:
    """:func:`exact_risk_limit` on one spectral measure (a sketch draw, or a deterministic equivalent)."""
    mc = moment_coefficients(measure, engine_quantizers(problem), problem.B)
    if problem.distributed:
        from .rounds import distributed_coefficients

        mc, rounds = distributed_coefficients(mc, problem)
        if rounds is not None:
            raise UnsupportedConfigurationError(
                "the N -> infinity limit of local SGD or norm-relative communication is not available (the "
                "round map is stepped); evaluate exact_risk at a large N instead")
    sh, s, mu, mut, w = mc.shrink, mc.target_sq, mc.mu, mc.mut, mc.weight
    if problem.test_inputs == "clean":
        total = float((w * mu) @ ((sh - 1.0) ** 2 * s))
        weight = mu
    else:
        total = float(w @ ((mu - mc.cross * sh) * s))
        weight = mut
    if problem.schedule == "constant" and problem.average == "last":
        check_stability(mc, problem.gamma)
        step = StepMap.build(mc, problem.gamma)
        z1, z2 = step.c / step.kappa, step.h / step.kappa
        a_inf = z1 + step.beta * z2 * (step.h @ z1) / (1.0 - step.beta * (step.h @ z2))
        total += float((np.sqrt(w) * weight) @ a_inf)
    return total + sum(measure.excess_offset.values())
