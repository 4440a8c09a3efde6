r"""Closed-form predictions for a :class:`~scalinglaw.problem.Problem`, and effective sizes both ways.

:func:`closed_form_risk` picks the regression law that covers the problem's set-up (SPEC §5):

* constant step, uniform or tail average: ``sgd`` (Zou et al.; full precision, :math:`B=1`) or
  ``sgd-quantized`` (2510.18259);
* geometric decay, last iterate: ``sketched`` (Lin et al.) or ``sketched-quantized`` (2602.19241), with
  :math:`M=d` for plain regression.

Other set-ups (constant step with the last iterate; geometric decay with averaging), non-power-law spectra,
:math:`\lambda_1\ne1` and array targets have no closed form here and are refused with a message pointing to
the exact engine.

:func:`effective_sizes` reports the effective model and data sizes of SPEC §5.5 from the closed forms and,
operationally, from the exact engine, side by side.

**Real formats.** A closed form knows only the idealised schemes; a real format (``int8:range=4``,
``fp8_e4m3``, ...) enters through its idealised surrogate (``Quantizer.idealized_scheme``). The calibrated
constants make the law an upper bound of the exact risk *of the surrogate*, not of the format: on the 2510.18259
set-up FP4 E2M1 on the data has exact risk 0.147 (Monte Carlo 0.147) against 0.0998 for the closed form of its
surrogate. No format has been checked against its closed form, so a result with a real format is evaluated but
labelled **not a verified bound** (``ClosedResult.verified_bound`` False, a note naming the format, the
``--method exact`` / ``simulate`` alternatives) rather than refused: the number is still the law's, and the label
says what it is not [derived; theory/calibration.md].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import _checks
from .effective import effective_data_size, effective_data_size_bound
from .errors import ParameterError, UnsupportedConfigurationError
from .laws.base import Law
from .problem import QUANTIZER_TARGETS, Problem
from .quantize.moments import fixed_grid as _fixed_grid
from .spectra import PowerLaw
from .targets import Ones, SourcePrior

__all__ = [
    "ClosedResult",
    "EffectiveSizes",
    "closed_form_risk",
    "effective_data_size",
    "effective_data_size_bound",
    "effective_sizes",
    "exact_effective_data_size",
    "law_for_problem",
    "law_spec",
    "power_law_exponents",
]

_EPS = {"data": "eps_d", "labels": "eps_l", "params": "eps_p", "acts": "eps_a", "grads": "eps_o"}


def _schemes(problem: Problem) -> tuple[dict[str, str | None], dict[str, float], list[str]]:
    schemes: dict[str, str | None] = {}
    eps: dict[str, float] = {}
    notes: list[str] = []
    for t in QUANTIZER_TARGETS:
        q = problem.quantizers[t]
        if q is None:
            schemes[t] = None
            continue
        ideal = q.idealized_scheme()
        if ideal is None:
            raise UnsupportedConfigurationError(
                f"{t}={q.spec} has a data-dependent epsilon (absmax scaling): no closed form and no exact risk; "
                f"give a fixed range (e.g. {q.spec}:range=4), an idealised scheme, or use simulate"
            )
        if not q.idealized:
            notes.append(
                f"{t}={q.spec} enters through its idealised surrogate {ideal.spec}: NOT a verified bound for the real "
                "format (closed forms are calibrated on the surrogate only; e.g. fp4_e2m1 data on the 2510.18259 "
                "set-up: exact 0.147, closed form 0.0998); use --method exact"
                + (" (exact for this data format)" if t == "data" and _fixed_grid(q) else "") + " or simulate"
            )
        schemes[t] = "multiplicative" if ideal.kind == "multiplicative-coord" else ideal.kind
        eps[_EPS[t]] = ideal.epsilon
    return schemes, eps, notes


def power_law_exponents(problem: Problem) -> tuple[float, float]:
    r"""``(a, b)`` of a problem the closed forms cover: :math:`\lambda_i=i^{-a}` and :math:`\lambda_i\mathbb Ew_i^{*2}
    =i^{-b}`; refuses other spectra and targets."""
    spec = problem.spectrum
    if not isinstance(spec, PowerLaw) or spec.lambda1 != 1.0:
        raise UnsupportedConfigurationError(
            f"closed forms need the power-law spectrum lambda_i = i^-a (lambda1 = 1), got {spec.label}; "
            "use --method exact"
        )
    if not spec.a > 0:
        raise ParameterError("a", spec.a, "be > 0 for the closed forms (a decaying spectrum; a flat spectrum, a = 0, "
                             "works with --method exact)")
    target = problem.target
    if isinstance(target, Ones):
        return spec.a, spec.a
    if isinstance(target, SourcePrior):
        return spec.a, (spec.a if target.b is None else target.b)
    raise UnsupportedConfigurationError("closed forms need the ones or prior target; use --method exact")


def law_for_problem(problem: Problem, constants: str | None = None) -> tuple[Law, dict[str, Any], list[str]]:
    """The regression law that covers ``problem``, its inputs, and notes; refuses uncovered set-ups."""
    from .laws.registry import get_law

    name, options, inputs, notes = law_spec(problem)
    return get_law(name + (f":{constants}" if constants else ""), **options), inputs, notes


def law_spec(problem: Problem) -> tuple[str, dict[str, Any], dict[str, Any], list[str]]:
    """:func:`law_for_problem` without building the law: its name, options, inputs and notes (problems with the
    same name and options share one law, evaluated on arrays of inputs)."""
    if problem.distributed:
        raise UnsupportedConfigurationError(
            "the regression laws describe one worker; distributed runs go through closed_form_risk (period 1) or "
            "--method exact")
    spec = problem.spectrum
    _, b = power_law_exponents(problem)
    schemes, eps, notes = _schemes(problem)
    quantized = any(schemes.values())
    common = {"N": problem.N, "gamma": problem.gamma, "sigma2": problem.sigma2, "a": spec.a, "b": b}
    if problem.schedule == "constant" and problem.average in ("uniform", "tail"):
        if problem.M is not None:
            raise UnsupportedConfigurationError(
                "the sketched closed forms are stated for geometric decay with the last iterate "
                "(--schedule geometric --average last); use --method exact"
            )
        inputs = {**common, "d": spec.d}
        if not quantized and problem.B == 1:
            return "sgd", {"average": problem.average}, inputs, notes
        options = {"test_inputs": problem.test_inputs, "average": problem.average, **schemes}
        return "sgd-quantized", options, {**inputs, "B": problem.B, **eps}, notes
    if problem.schedule == "geometric" and problem.average == "last":
        M = problem.M if problem.M is not None else spec.d
        if problem.M is not None and problem.M == spec.d:
            raise UnsupportedConfigurationError(
                f"a sketch of size M = d = {problem.M} is not plain regression (its eigenvalues reach far below "
                "the power law): the closed forms cover sketches with M <= d/4 and plain regression (no --M); "
                "use --method exact")
        if math.isinf(M):
            raise UnsupportedConfigurationError(
                "plain regression with d = inf under geometric decay needs a sketch size --M for the closed form")
        inputs = {**common, "M": M, "B": problem.B, "d": spec.d}
        if problem.M is not None and problem.sketch_basis == "raw":
            notes.append("raw-basis data quantization: the closed form assumes the eigenbasis")
        if not quantized:
            return "sketched", {}, inputs, notes
        return "sketched-quantized", {"test_inputs": problem.test_inputs, **schemes}, {**inputs, **eps}, notes
    raise UnsupportedConfigurationError(
        f"no closed form for schedule={problem.schedule} with average={problem.average}: the laws cover constant "
        "steps with averaging (Zou et al.) and geometric decay with the last iterate (Lin et al.); use --method exact"
    )


@dataclass(frozen=True)
class ClosedResult:
    """A closed-form prediction: the law's terms, the effective sizes, and which law and constants."""

    excess_risk: float
    risk: float
    terms: dict[str, float]
    effective_model_size: float | None
    effective_data_size: float | None
    law: str
    constants: str
    provenance: str
    notes: tuple[str, ...] = ()
    exact: dict[str, Any] | None = field(default=None)
    effective_data_size_bound: float | None = None
    #: False when a real format enters through its idealised surrogate: the law bounds the surrogate's exact
    #: risk, and no check says it bounds the format's (see the module docstring).
    verified_bound: bool = True

    def to_dict(self) -> dict[str, Any]:
        def num(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        out = {
            "excess_risk": self.excess_risk,
            "risk": self.risk,
            "terms": dict(self.terms),
            "effective_model_size": num(self.effective_model_size),
            "effective_data_size": num(self.effective_data_size),
            "effective_data_size_bound": num(self.effective_data_size_bound),
            "law": self.law,
            "constants": self.constants,
            "provenance": self.provenance,
            "verified_bound": self.verified_bound,
            "notes": list(self.notes),
        }
        if self.exact is not None:
            out["exact"] = self.exact
        return out


#: A negative closed-form term this small relative to the sum of the terms' magnitudes is float64 rounding.
ROUNDING_RTOL = 1e-12


def _nonnegative_terms(law: str, terms: dict[str, float], notes: list[str]) -> dict[str, float]:
    """Every term of an upper bound is >= 0: clip rounding-sized negatives to 0 (saying so), refuse larger ones
    (catastrophic cancellation in float64, e.g. the tail sums at a steep spectrum)."""
    scale = sum(abs(v) for v in terms.values())
    out = dict(terms)
    for name, value in terms.items():
        if value < 0:
            if -value <= ROUNDING_RTOL * scale:
                out[name] = 0.0
                notes.append(f"term {name} = {value:.3g} is float64 rounding (below {ROUNDING_RTOL:g} of the total): "
                             "shown as 0")
            else:
                raise UnsupportedConfigurationError(
                    f"the closed form '{law}' evaluates its {name} term to {value:.4g} < 0 here (cancellation in "
                    "float64 at these inputs, e.g. a steep spectrum): it is no bound here; use --method exact")
    return out


def closed_form_risk(problem: Problem, *, constants: str | None = None) -> ClosedResult:
    """Closed-form (calibrated upper-bound) excess risk of ``problem``, term by term.

    With a real format on any target the result is the law evaluated at the format's idealised surrogate and is
    labelled ``verified_bound=False`` (not a bound checked on that format; see the module docstring).

    Parameters
    ----------
    problem : Problem
        The configuration.
    constants : str, optional
        Constant set of the law (``calibrated`` by default; ``unit``, or ``paper`` for ``sgd``).
    """
    if problem.distributed:
        return _distributed_closed_form(problem, constants)
    law, inputs, notes = law_for_problem(problem, constants)
    terms = _nonnegative_terms(law.name, {k: float(v) for k, v in law.breakdown(**inputs).items()}, notes)
    sizes = _closed_sizes(problem)
    excess = float(sum(terms.values()))
    return ClosedResult(
        excess_risk=excess,
        risk=excess + problem.sigma2,
        terms=terms,
        effective_model_size=sizes[0],
        effective_data_size=sizes[1],
        effective_data_size_bound=sizes[2],
        law=law.name,
        constants=law.constants.name,
        provenance=law.provenance,
        notes=tuple(notes),
        verified_bound=all(q is None or q.idealized for q in problem.quantizers.values()),
    )


def _distributed_closed_form(problem: Problem, constants: str | None) -> ClosedResult:
    """K workers averaging every step: the batch-KB law of the same run plus the price of quantized messages
    (:class:`~scalinglaw.laws.communication.CommunicationLaw`) [recon; theory/distributed.md]."""
    from .laws.communication import CommunicationLaw, communication_inputs

    if problem.period > 1:
        raise UnsupportedConfigurationError(
            f"closed forms cover gradients averaged every step (--period 1), got --period {problem.period}; "
            "use --method exact")
    single = replace(problem, K=1, B=problem.K * problem.B, comm=None)
    law, inputs, notes = law_for_problem(single, constants)
    terms = {k: float(v) for k, v in law.breakdown(**inputs).items()}
    notes = [f"K={problem.K} workers with batch B={problem.B} averaging every step: the law of batch "
             f"K*B={problem.K * problem.B} (exact without communication noise and parameter quantization)", *notes]
    names = [law.name]
    if problem.comm is not None:
        comm = CommunicationLaw(constants if constants in (None, "unit") else None)
        terms.update({f"comm_{k}": float(v) for k, v in comm.breakdown(**communication_inputs(problem)).items()
                      if float(v) != 0.0})
        names.append(comm.name)
    excess = float(sum(terms.values()))
    return ClosedResult(
        excess_risk=excess, risk=excess + problem.sigma2, terms=terms, effective_model_size=None,
        effective_data_size=None, law="+".join(names), constants=law.constants.name,
        provenance=law.provenance + "; communication: [recon] (theory/distributed.md)", notes=tuple(notes))


# ---------------------------------------------------------------------------------------------- effective sizes
def _closed_sizes(problem: Problem) -> tuple[float, float, float]:
    """SPEC §5.5 closed forms: M_eff (integral form), the operational N_eff (:func:`scalinglaw.effective.
    effective_data_size`; NaN where its model does not apply) and the bound's N tr H / tr H^(q)."""
    from .effective import effective_data_size, effective_data_size_bound
    from .laws.special import hyp2f1

    schemes, eps, _ = _schemes(problem)
    a = problem.spectrum.a
    size = float(problem.M if problem.M is not None else problem.spectrum.d)
    ed = eps.get("eps_d", 0.0)
    if schemes["data"] == "additive" and ed > 0 and math.isfinite(size):
        m_eff = float(size * hyp2f1(1.0, 1.0 / a, 1.0 + 1.0 / a, -ed * size**a))
    else:
        m_eff = size
    try:
        n_op, _ = effective_data_size(problem)
    except UnsupportedConfigurationError:
        n_op = None
    return m_eff, (math.nan if n_op is None else n_op), effective_data_size_bound(problem)


#: What the effective data sizes are (printed by ``predict --compare-exact``).
EFFECTIVE_DATA_SIZE_NOTE = (
    "effective data size: the operational one (closed form and exact engine) is the sample size at which full "
    "precision reaches the same estimation error, and additive data noise can push it above N (a ridge effect); "
    "the bound's N tr H / tr H^(q) (divided by 1+eps for each multiplicative acts/grads/params quantizer) is a "
    "different quantity, a consequence of the step-size limit (theory/sketched-quantized.md; validation claim 6 "
    "in theory/validation.md)"
)


@dataclass(frozen=True)
class EffectiveSizes:
    """Effective model and data sizes (SPEC §5.5), from the closed forms and from the exact engine."""

    model_closed: float
    model_exact: float
    data_closed: float
    data_exact: float | None
    additive_error_exact: float
    notes: tuple[str, ...] = ()
    data_bound: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        def num(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        return {
            "effective_model_size": {"closed": num(self.model_closed), "exact": num(self.model_exact)},
            "effective_data_size": {"closed": num(self.data_closed), "exact": num(self.data_exact)},
            "effective_data_size_bound": num(self.data_bound),
            "additive_error_exact": self.additive_error_exact,
            "notes": list(self.notes),
        }


def exact_effective_model_size(problem: Problem, *, method: str = "exact") -> float:
    r""":math:`M_{\rm eff}=\sum_{i\le M}s_i/\max_is_i`, :math:`s_i=\chi_i/\tilde\mu_i` (SPEC §5.5; :math:`\chi=\mu`
    unless the data format is biased) [derived].

    ``method="exact"``: averaged over the sketch draws (for plain regression the sum runs over the :math:`d`
    (proxy) coordinates); ``"de"``: the sketch's deterministic equivalent
    (:func:`~scalinglaw.deterministic.deterministic_effective_model_size`).
    """
    from .dynamics import moment_coefficients
    from .reduction import engine_quantizers, reduce_problem

    if _checks.choice("method", method, SIZE_METHODS) == "de":
        from .deterministic import deterministic_effective_model_size

        return deterministic_effective_model_size(problem)
    vals = []
    for dp in reduce_problem(problem):
        sh = moment_coefficients(dp, engine_quantizers(problem), problem.B).shrink
        vals.append(float(sh.sum() / sh.max()))
    return float(np.mean(vals))


#: Sources of the operational effective sizes: the exact engine (over the problem's sketch draws) or the sketch's
#: deterministic equivalent (the average over sketches).
SIZE_METHODS = ("exact", "de")


def _estimation_error(problem: Problem, method: str = "exact") -> float:
    """R(N) - R(inf): the part of the excess risk that more data removes."""
    if method == "de":
        from .deterministic import deterministic_risk, deterministic_risk_limit

        return deterministic_risk(problem, error_estimate=False).excess_risk - deterministic_risk_limit(problem)
    from .exact import exact_risk
    from .exact.engine import exact_risk_limit

    return exact_risk(problem).excess_risk - exact_risk_limit(problem)


def exact_effective_data_size(
    problem: Problem, *, reference: Problem | None = None, rtol: float = 1e-6, method: str = "exact"
) -> tuple[float | None, str]:
    r"""The :math:`N'` at which full precision (same sketch, step and schedule) matches the estimation error.

    Solves :math:`R_{\rm fp}(N')-R_{\rm fp}(\infty)=R_q(N)-R_q(\infty)` (SPEC §5.5) [derived] by bisection in
    :math:`\log N'` over multiples of :math:`B`, interpolating log-linearly between the bracketing sizes. Both
    sides decrease in their sample size, so :math:`N'` is unique.

    Parameters
    ----------
    problem : Problem
        The (quantized) configuration whose effective data size is wanted.
    reference : Problem, optional
        The learner to match, at any ``N``. Default: ``problem`` with every quantizer removed, the definition
        of SPEC §5.5. Pass another one to compare against, e.g., full precision at its own step size.
    rtol : float
        Relative width at which the bisection in :math:`N'` stops.
    method : {"exact", "de"}
        Risks from the exact engine (over ``problem``'s sketch draws) or, for a sketched problem, from the
        deterministic equivalent of the average over sketches.

    Returns
    -------
    (float or None, str)
        :math:`N'` (``None`` if unbounded) and a note explaining any boundary case.
    """
    from .effective import solve_effective_size

    rtol = _checks.positive("rtol", rtol)
    _checks.choice("method", method, SIZE_METHODS)
    target = _estimation_error(problem, method)
    if reference is None:
        reference = problem
    fp = replace(reference, data=None, labels=None, params=None, acts=None, grads=None)
    lo = max(1, math.ceil(2 / fp.B)) if fp.schedule == "geometric" else 1
    return solve_effective_size(lambda k: _estimation_error(replace(fp, N=k * fp.B), method), target, fp.B,
                                problem.N // fp.B, lo, rtol)


def effective_sizes(problem: Problem, *, method: str = "exact") -> EffectiveSizes:
    r"""Effective model and data sizes from the closed forms and from the exact engine, side by side.

    ``method="de"`` computes the operational sizes of a sketched problem from the sketch's deterministic
    equivalent (the average over sketches; :math:`M_{\rm eff}=\mathrm{df}_1(\kappa_\epsilon)` normalised) instead of
    the exact engine over ``problem``'s sketch draws.
    """
    _checks.choice("method", method, SIZE_METHODS)
    if method == "de":
        from .deterministic import deterministic_risk_limit as limit
    else:
        from .exact.engine import exact_risk_limit as limit

    if problem.distributed:
        raise UnsupportedConfigurationError(
            "effective sizes (SPEC §5.5) are defined for one worker; for K workers averaging every step use the "
            "batch-K*B problem, and see theory/distributed.md §4 for the communication's effect")

    notes: list[str] = []
    try:
        m_closed, n_closed, n_bound = _closed_sizes(problem)
    except UnsupportedConfigurationError as exc:
        m_closed, n_closed, n_bound = math.nan, math.nan, math.nan
        notes.append(f"no closed form: {exc}")
    n_exact, note = exact_effective_data_size(problem, method=method)
    if note:
        notes.append(note)
    notes.append(EFFECTIVE_DATA_SIZE_NOTE)
    fp = replace(problem, data=None, labels=None, params=None, acts=None, grads=None)
    add_err = limit(problem) - limit(fp)
    return EffectiveSizes(
        model_closed=m_closed,
        model_exact=exact_effective_model_size(problem, method=method),
        data_closed=n_closed,
        data_exact=n_exact,
        additive_error_exact=add_err,
        notes=tuple(notes),
        data_bound=n_bound,
    )
