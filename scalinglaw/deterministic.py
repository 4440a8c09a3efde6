r"""The sketched model's expected risk averaged over the sketch, by its deterministic equivalent.

:func:`deterministic_risk` evaluates a sketched :class:`~scalinglaw.problem.Problem` (``M`` set) on the
deterministic-equivalent spectral measure of :mod:`scalinglaw.sketch` with the exact engine's recursion
(:func:`~scalinglaw.exact.engine.measure_risk`): step sizes, schedule, batch, quantizers, output and test
convention are the engine's, only the measure differs. The result is an
:class:`~scalinglaw.exact.engine.ExactResult` with the same terms, so code that averages ``exact_risk`` over sketch
draws can use it instead.

What is exact and what is not:

* given the measure, the recursion is exact (SPEC §4) [derived];
* the measure is the deterministic equivalent of :math:`\mathbb E_S` over Gaussian sketches: exact as
  :math:`M,d\to\infty` [paper: Paquette et al. 2024, arXiv 2405.15074, for power-law random features; Bach 2024;
  Atanasov et al. 2024], with a relative gap :math:`O(1/M)` at finite :math:`M` (checked numerically against the
  per-sketch engine averaged over sketches: ``theory/deterministic-equivalent.md``);
* data quantization: additive noise on the sketched features and the shared multiplicative factor are
  rotation-invariant, so they act on the equivalent's nodes exactly as on a drawn sketch's eigenvalues
  [derived]; coordinate-wise schemes (``multiplicative-coord``, real FP formats through their surrogate) are
  applied per eigen-direction of :math:`SHS^\top` (the engine's idealisation, ``sketch_basis="eigen"``); on raw
  sketched coordinates they are not diagonal and are refused, as by the engine.

The numerical error (refined compression: half-width blocks and twice the path points) is reported in
``error``; the equivalent's identities (count :math:`M`, trace, second moment, signal) in the notes.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from . import _checks
from .dynamics import scheme_of
from .errors import ParameterError, UnsupportedConfigurationError
from .exact.engine import ExactResult, _max_stable, measure_risk, measure_risk_limit
from .measure import SpectralMeasure
from .problem import Problem
from .sketch import SketchEquivalent, sketch_equivalent

__all__ = [
    "deterministic_effective_model_size",
    "deterministic_risk",
    "deterministic_risk_limit",
    "equivalent_measure",
    "equivalent_of",
]

METHODS = ("auto", "spectral", "recursion")
_CACHE: OrderedDict[Any, SketchEquivalent] = OrderedDict()
_CACHE_SIZE = 64


def equivalent_of(problem: Problem) -> SketchEquivalent:
    """The deterministic equivalent of ``problem``'s sketch (cached by spectrum, target and ``M``)."""
    if problem.M is None:
        raise ParameterError("M", None, "be set: the deterministic equivalent is for the sketched model")
    if not problem.spectrum.d > problem.M:
        raise ParameterError("M", problem.M, f"be < d={problem.spectrum.d:g} for the deterministic equivalent")
    try:
        key: Any = (problem.spectrum, problem.target, problem.M)
        hash(key)
    except TypeError:  # array spectra or targets: no caching
        return sketch_equivalent(problem.spectrum, problem.target, problem.M)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    eq = sketch_equivalent(problem.spectrum, problem.target, problem.M)
    _CACHE[key] = eq
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return eq


def _fast_rate(problem: Problem) -> float:
    """Largest step times the data quantizer's rate scale (which nodes the compression keeps narrow)."""
    code, eps = scheme_of(problem.quantizers["data"], "data")
    return problem.gamma * ((1.0 + eps) if code in (2, 3) else 1.0)


def _check(problem: Problem) -> list[str]:
    notes: list[str] = []
    q = problem.quantizers["data"]
    if q is not None:
        code, _ = scheme_of(q, "data")
        if code == 3:
            if problem.sketch_basis == "raw":
                raise UnsupportedConfigurationError(
                    f"data={q.spec} on the raw sketched coordinates is not diagonal in the eigenbasis of S H S^T: "
                    "the deterministic equivalent (like the exact engine) needs sketch_basis='eigen', an additive or "
                    "shared multiplicative scheme, or simulate"
                )
            notes.append(
                f"data={q.spec} acts coordinate-wise in the eigenbasis of S H S^T (the engine's idealisation, "
                "averaged over S by the equivalent); on raw sketched coordinates it would be approximately additive "
                "with eps tr H / M, which is not modelled"
            )
    if problem.sketch_draws > 1:
        notes.append(f"sketch_draws={problem.sketch_draws} is ignored: the equivalent averages over every sketch")
    return notes


def equivalent_measure(problem: Problem, level: int = 0, equivalent: SketchEquivalent | None = None
                       ) -> SpectralMeasure:
    """The deterministic-equivalent spectral measure of ``problem``'s sketched problem (compression ``level``)."""
    eq = equivalent_of(problem) if equivalent is None else equivalent
    return eq.measure(problem.sigma2, fast_rate=_fast_rate(problem), level=level)


def deterministic_risk(problem: Problem, *, method: str = "auto", error_estimate: bool = True) -> ExactResult:
    r"""Expected excess risk of the sketched ``problem`` averaged over Gaussian sketches, by the deterministic
    equivalent (module docstring).

    Parameters
    ----------
    problem : Problem
        A sketched problem (``M`` set, :math:`M<d`, any :math:`d` including ``inf``).
    method : {"auto", "spectral", "recursion"}
        The exact engine's evaluation of the recursion on the equivalent's nodes.
    error_estimate : bool
        Estimate the numerical error by refinement (half-width blocks, twice the path points; about three times
        the cost). Without it ``error`` is NaN and a note says so (for objectives evaluated many times).

    Returns
    -------
    ExactResult
        Terms as the exact engine's (``approximation``, ``bias``, ``variance``, ``cross``,
        ``sketch_approximation``), ``method`` ``"de:<engine method>"``, ``error`` the change under refinement.

    Raises
    ------
    UnstableStepError
        If ``problem.gamma`` is unstable on the equivalent's spectrum (the message states the largest stable step).
    """
    _checks.choice("method", method, METHODS)
    notes = _check(problem)
    eq = equivalent_of(problem)
    coarse = measure_risk(equivalent_measure(problem, 0, eq), problem, method)
    level = 1 if error_estimate else 0
    fine_measure = equivalent_measure(problem, level, eq)
    fine = measure_risk(fine_measure, problem, method) if error_estimate else coarse
    errors = {k: abs(fine.terms[k] - coarse.terms[k]) if error_estimate else math.nan for k in fine.terms}
    terms = dict(fine.terms)
    excess = float(sum(terms.values()))
    ident = eq.identities(eq.block_rules(fast_rate=_fast_rate(problem), level=level))
    error_note = (f"numerical error estimated by refinement (half-width blocks, twice the path points): "
                  f"{sum(errors.values()):.3g} absolute" if error_estimate else "numerical error not estimated")
    notes = [
        f"deterministic equivalent of the average over Gaussian sketches (M={problem.M}): exact as M, d -> inf; "
        "relative gap O(1/M) at finite M (theory/deterministic-equivalent.md)",
        *fine_measure.notes,
        "identities of the equivalent (relative residuals): " + ", ".join(f"{k} {v:.1e}" for k, v in ident.items()),
        error_note,
        *notes,
    ]
    mc = fine.mc
    return ExactResult(
        excess_risk=excess,
        risk=excess + problem.sigma2,
        terms=terms,
        test_inputs=problem.test_inputs,
        max_stable_gamma=_max_stable(mc, problem),
        quantized_spectrum=mc.mut,
        shrink=mc.shrink,
        quantized_target=None,
        method=f"de:{fine.method}",
        notes=tuple(notes),
        error=float(sum(errors.values())) if error_estimate else math.nan,
        term_errors=errors,
    )


def deterministic_risk_limit(problem: Problem) -> float:
    r"""The excess risk of ``problem``'s set-up as :math:`N\to\infty`, on the equivalent's measure
    (:func:`~scalinglaw.exact.engine.measure_risk_limit`)."""
    _check(problem)
    return measure_risk_limit(equivalent_measure(problem, 1), problem)


def deterministic_effective_model_size(problem: Problem) -> float:
    r"""SPEC §5.5's :math:`M_{\rm eff}` from the equivalent: :math:`M` at full precision and for multiplicative
    data noise; :math:`\mathrm{df}_1(\kappa_\epsilon)(\bar\mu_1+\epsilon)/\bar\mu_1` for additive data noise
    :math:`\epsilon` (:meth:`~scalinglaw.sketch.SketchEquivalent.effective_model_size`) [derived]."""
    _check(problem)
    code, eps = scheme_of(problem.quantizers["data"], "data")
    eq = equivalent_of(problem)
    if code == 1 and eps > 0:
        return eq.effective_model_size(eps)
    return float(problem.M)
