r"""Calibration of the "≲" closed forms against the exact engine [derived].

The reconstructed laws (SPEC §5.2-5.4) are upper bounds up to unknown constants; even Zou et al.'s explicit
bound is loose. Each law carries one multiplier per term. The calibrated constants are fitted on a
*calibration design* and judged on an independent *test design* (:mod:`scalinglaw.design`: scrambled Sobol
points over the law's whole documented domain, two seeds).

Fit (a linear programme, :func:`fit_constants`): with :math:`C_{pt}` the closed term :math:`t` at constants 1 and
:math:`E_p` the exact excess risk of problem :math:`p`,

.. math::

    \min_c\ \sum_p\frac{\sum_tc_tC_{pt}}{E_p}\quad\text{s.t.}\quad\sum_tc_tC_{pt}\ge(1+m)E_p\ \ \forall p,
    \qquad c_t\ge c_t^{\min},

i.e. the smallest mean tightness at which the law bounds the exact risk on every calibration problem with a
margin :math:`m`. Terms that count signal not yet learned or not representable (``bias``, ``approximation``,
``additive_error``) keep :math:`c_t\ge1`: the closed term is the signal itself, never scaled below it.

Evaluating a design costs one exact-engine run per problem; the records (problem, step, exact terms) are
kept (``scalinglaw/data/calibration_records.json``) so that the constants can be refitted after a change of
the closed forms without rerunning the engine (``scalinglaw calibrate --records``). The tightness of each law
on the test design, overall and per region (:func:`regions`), goes into ``calibration.json`` and the table of
``theory/calibration.md``.
``scalinglaw calibrate --out FILE`` writes a new calibration; the laws read it with ``--calibration FILE`` or
``SCALINGLAW_CALIBRATION=FILE`` (:func:`scalinglaw.laws.regression.use_calibration`), else the shipped
``scalinglaw/data/calibration.json``.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as _dt
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._progress import progress as progress_bar
from .design import DESIGN_LAWS, DOMAIN, DesignPoint, Domain, design, problem_of, step_size
from .exact import exact_risk
from .laws.registry import law_class
from .predict import law_for_problem

__all__ = [
    "CALIBRATED_LAWS",
    "SIZES",
    "Record",
    "calibrate",
    "closed_over_exact",
    "closed_terms",
    "closed_terms_all",
    "design_summary",
    "evaluate_design",
    "evaluate_point",
    "fit_constants",
    "regions",
    "tightness",
]

CALIBRATED_LAWS = DESIGN_LAWS
#: points per law in each design (powers of 2); the sketched laws' problems cost about ten times more (geometric
#: decay has log2 N phases, and sketches), so their calibration design is smaller
SIZES = {law: {"calibration": 256 if law.startswith("sketched") else 512, "test": 256} for law in DESIGN_LAWS}
#: margin m of the fit: closed >= (1 + m) exact on every calibration problem
MARGIN = 0.15
#: terms whose constant never goes below 1 (the signal left to learn, or that the model cannot represent)
SIGNAL_TERMS = ("bias", "approximation", "additive_error")


@dataclass(frozen=True)
class Record:
    """One evaluated design point: the problem, its step, and the reference's terms (the exact engine, or the
    deterministic equivalent for large sketches: ``point.reference``) with their estimated numerical error."""

    point: DesignPoint
    gamma: float
    law_limit: float
    exact_limit: float
    exact: dict[str, float]
    exact_total: float
    error: float = 0.0

    @property
    def law(self) -> str:
        return self.point.law

    def to_dict(self) -> dict[str, Any]:
        return {**self.point.to_dict(), "gamma": self.gamma, "law_limit": self.law_limit,
                "exact_limit": self.exact_limit, "exact": dict(self.exact), "exact_total": self.exact_total,
                "reference": self.point.reference, "error": self.error}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        return cls(point=DesignPoint.from_dict(d), gamma=float(d["gamma"]), law_limit=float(d["law_limit"]),
                   exact_limit=float(d["exact_limit"]), exact={k: float(v) for k, v in d["exact"].items()},
                   exact_total=float(d["exact_total"]), error=float(d.get("error", 0.0)))

    def problem(self) -> Any:
        return problem_of(self.point, self.gamma)


def evaluate_point(point: DesignPoint) -> Record:
    """Step size and reference terms of one design point (the expensive part; picklable for executors): the exact
    engine, or the deterministic equivalent where ``point.reference`` is ``"de"``."""
    gamma, law_limit, exact_limit = step_size(point)
    p = problem_of(point, gamma)
    method = "spectral" if p.steps > 256 else "recursion"
    if point.reference == "de":
        from .deterministic import deterministic_risk

        ex = deterministic_risk(p, method=method)
    else:
        ex = exact_risk(p, method=method)
    return Record(point=point, gamma=gamma, law_limit=law_limit, exact_limit=exact_limit,
                  exact={k: float(v) for k, v in ex.terms.items()}, exact_total=float(ex.excess_risk),
                  error=float(ex.error))


def evaluate_design(points: Sequence[DesignPoint], *, executor: cf.Executor | None = None,
                    progress: bool = False, desc: str = "") -> list[Record]:
    """:func:`evaluate_point` over a design, serially or on ``executor`` (results in design order)."""
    if executor is None:
        return [evaluate_point(p) for p in progress_bar(points, len(points), progress, desc)]
    futures = [executor.submit(evaluate_point, p) for p in points]
    return [f.result() for f in progress_bar(futures, len(futures), progress, desc)]


def closed_terms(record: Record, constants: Any = "unit") -> dict[str, float]:
    """The closed form's terms at ``record``'s problem (constants ``unit`` by default)."""
    law, inputs, _ = law_for_problem(record.problem(), constants)
    return {k: float(v) for k, v in law.breakdown(**inputs).items()}


def closed_terms_all(records: Sequence[Record], constants: Any = "unit") -> list[dict[str, float]]:
    """:func:`closed_terms` of every record: one law per name and options, evaluated on arrays of inputs (building
    and compiling a law costs far more than evaluating it)."""
    from .laws.registry import get_law
    from .predict import law_spec

    groups: dict[Any, list[tuple[int, dict[str, Any]]]] = {}
    for i, r in enumerate(records):
        name, options, inputs, _ = law_spec(r.problem())
        groups.setdefault((name, tuple(sorted(options.items()))), []).append((i, inputs))
    out: list[dict[str, float]] = [{} for _ in records]
    for (name, options), items in groups.items():
        law = get_law(name + (f":{constants}" if constants else ""), **dict(options))
        keys = list(items[0][1])
        terms = law.breakdown(**{k: np.array([float(inp[k]) for _, inp in items]) for k in keys})
        for j, (i, _) in enumerate(items):
            out[i] = {t: float(np.asarray(v).ravel()[j] if np.ndim(v) else v) for t, v in terms.items()}
    return out


def _closed_all(records: Sequence[Record], executor: cf.Executor | None) -> list[dict[str, float]]:
    """:func:`closed_terms_all` (unit constants) of every record; on ``executor`` in chunks of whole groups."""
    if executor is None:
        return closed_terms_all(records)
    from .predict import law_spec

    def key(r: Record) -> str:
        name, options, _, _ = law_spec(r.problem())
        return name + repr(sorted(options.items()))

    order = sorted(range(len(records)), key=lambda i: key(records[i]))
    size = -(-len(order) // 4)  # contiguous chunks: each law built about once
    chunks = [order[k:k + size] for k in range(0, len(order), size)]
    results = executor.map(closed_terms_all, [[records[i] for i in c] for c in chunks])
    out: list[dict[str, float]] = [{} for _ in records]
    for c, res in zip(chunks, results, strict=True):
        for i, terms in zip(c, res, strict=True):
            out[i] = terms
    return out


# ------------------------------------------------------------------------------------------------- regions
def regions(record: Record) -> list[str]:
    """Labels of the regions of the domain ``record`` lies in (rows of the tightness table)."""
    kw = record.point.kwargs
    law = record.law
    a = float(kw["a"])
    b = float(kw.get("b", a)) if kw.get("target") == "prior" else a
    out = ["all"]
    if law in ("sgd", "sgd-quantized"):
        out.append(f"average {kw['average']}")
        horizon = record.gamma * kw["N"] / kw["B"]
    else:
        out.append("plain regression (M = d)" if "M" not in kw else "sketch M < d")
        if "M" in kw:
            M = kw["M"]
            out.append("M < 64" if M < 64 else ("M >= 1024" if M >= 1024 else "64 <= M < 1024"))
            out.append("reference: deterministic equivalent" if record.point.reference == "de"
                       else "reference: sketch draws")
        horizon = record.gamma * kw["N"] / math.log2(kw["N"]) / kw["B"]
    if law != "sgd":
        out.append("B = 1" if kw["B"] == 1 else "B > 1")
    out.append("b < a" if b < a - 1e-9 else ("b > a" if b > a + 1e-9 else "b = a"))
    if b > a + 1:
        out.append("b > a + 1")
    f = record.point.step_fraction
    out.append("step fraction < 0.05" if f < 0.05 else ("step fraction > 0.3" if f > 0.3 else "step fraction 0.05-0.3"))
    out.append("little learned (gamma N_eff/B < 1)" if horizon < 1 else "gamma N_eff/B >= 1")
    if kw["sigma2"] < 0.01:
        out.append("sigma2 < 0.01")
    d = kw["d"]
    out.append("d = inf" if d == "inf" else ("d <= 64" if d <= 64 else ("d > 4096" if d > 4096 else "64 < d <= 4096")))
    n = kw["N"]
    out.append("N <= 1e4" if n <= 1e4 else ("N > 1e8" if n > 1e8 else "1e4 < N <= 1e8"))
    if law.endswith("quantized"):
        data = kw.get("data")
        out.append("data full precision" if data is None else f"data {data.split(':')[0]}")
        eps = [float(v.split(":")[1]) for k, v in kw.items() if k in ("data", "labels", "params", "acts", "grads")]
        if max(eps) > 0.1:
            out.append("some eps > 0.1")
        out.append(f"test inputs {kw['test_inputs']}")
        for t in ("params", "acts", "grads", "labels"):
            if kw.get(t, "").startswith("additive"):
                out.append(f"{t} additive")
    return out


def design_summary(records: Sequence[Record]) -> dict[str, Any]:
    """What an evaluated design covers (the designs table of ``theory/calibration.md``)."""
    kws = [r.point.kwargs for r in records]
    finite = [k["d"] for k in kws if k["d"] != "inf"]
    sketches = [k["M"] for k in kws if "M" in k]
    eps = [float(v.split(":")[1]) for k in kws for t, v in k.items() if t in ("data", "labels", "params", "acts",
                                                                             "grads")]
    fracs = [r.point.step_fraction for r in records]
    rel_err = [r.error / r.exact_total for r in records if r.exact_total > 0]
    out: dict[str, Any] = {
        "n": len(records),
        "d_inf": sum(k["d"] == "inf" for k in kws),
        "d_finite_range": [min(finite), max(finite)] if finite else None,
        "N_range": [min(k["N"] for k in kws), max(k["N"] for k in kws)],
        "B_max": max(k["B"] for k in kws),
        "step_fraction_range": [min(fracs), max(fracs)],
        "sketches": len(sketches),
        "M_range": [min(sketches), max(sketches)] if sketches else None,
        "reference_de": sum(r.point.reference == "de" for r in records),
        "averages": sorted({k["average"] for k in kws}),
        "max_relative_numerical_error": max(rel_err) if rel_err else 0.0,
    }
    if eps:
        out["eps_max"] = max(eps)
        out["test_inputs"] = sorted({k["test_inputs"] for k in kws})
    return out


# ------------------------------------------------------------------------------------------------- fit
def _terms_matrix(law: str, closed: list[dict[str, float]]) -> tuple[list[str], np.ndarray]:
    names = list(law_class(law).calibrated_terms)
    return names, np.array([[c.get(t, 0.0) for t in names] for c in closed])


def _region_weights(records: Sequence[Record]) -> np.ndarray:
    """Weight of each problem: the sum over its regions of 1/(problems in the region), so that every region of
    the table counts alike in the fit, however few problems it holds."""
    labels = [regions(r) for r in records]
    counts: dict[str, int] = {}
    for ls in labels:
        for name in ls:
            counts[name] = counts.get(name, 0) + 1
    return np.array([sum(1.0 / counts[n] for n in ls) for ls in labels])


def fit_constants(law: str, records: Sequence[Record], closed: Sequence[dict[str, float]],
                  margin: float = MARGIN, iterations: int = 6) -> dict[str, float]:
    r"""Constants of ``law``: the bound on every calibration problem with margin ``margin`` at the smallest
    (region-weighted) geometric mean of closed/exact.

    The geometric mean is reached by iteratively reweighted linear programmes (``scipy.optimize.linprog``):
    :math:`\log r\le\log r_0+r/r_0-1`, so each step minimises :math:`\sum_pw_pr_p(c)/r_p(c_{\rm prev})` under
    the linear constraints :math:`r_p(c)\ge1+m`.
    """
    from scipy.optimize import linprog

    names, C = _terms_matrix(law, list(closed))
    E = np.array([r.exact_total for r in records])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = C / E[:, None]  # per-problem ratios at c = 1
    # an exact risk that underflows to 0 bounds nothing; a closed term that overflows bounds everything
    keep = (E > 0) & np.all(np.isfinite(scale), axis=1)
    weights = _region_weights([r for r, k in zip(records, keep, strict=True) if k])
    scale = scale[keep]
    # each constraint scale_p . c >= 1 + m divided by its largest coefficient (same feasible set, better conditioned)
    norm = np.maximum(scale.max(axis=1), 1e-300)
    rows, rhs = scale / norm[:, None], (1.0 + margin) / norm
    lower = [1.0 if t in SIGNAL_TERMS else 0.0 for t in names]
    c = np.maximum(np.ones(len(names)), lower)
    for _ in range(iterations):
        previous = np.maximum(scale @ c, 1e-300)
        objective = (weights / previous) @ scale
        res = linprog(c=objective / objective.max(), A_ub=-rows, b_ub=-rhs,
                      bounds=list(zip(lower, [None] * len(names), strict=True)), method="highs")
        if not res.success:
            raise RuntimeError(f"{law}: no constants make the law a bound on the calibration design ({res.message})")
        c = res.x
    consts = {f"c_{t}": float(v) for t, v in zip(names, c, strict=True)}
    unit = law_class(law).unit_constants()
    if "alpha" in unit:
        consts["alpha"] = unit["alpha"]
    return consts


def _ratios(law: str, consts: dict[str, float], records: Sequence[Record],
            closed: Sequence[dict[str, float]]) -> np.ndarray:
    names, C = _terms_matrix(law, list(closed))
    c = np.array([consts.get(f"c_{t}", 1.0) for t in names])
    return closed_over_exact(C @ c, np.array([r.exact_total for r in records]))


def closed_over_exact(closed: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """closed / exact, infinite where the exact excess risk is 0 up to rounding (``exact <= 0``: no label noise,
    every direction learned exponentially; it underflows, or rounds to about -1e-25)."""
    closed, exact = np.asarray(closed, dtype=float), np.asarray(exact, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(exact > 0, closed / np.where(exact > 0, exact, 1.0), np.inf)


def tightness(ratios: np.ndarray) -> dict[str, Any]:
    """n, min, median, 90th percentile, max and fraction bounded (ratio >= 1) of closed/exact.

    An exact risk that underflows to 0 (no label noise, every direction learned exponentially) has no finite
    ratio: it counts as bounded (the closed form is positive) but not in the quantiles; ``exact_zero`` counts
    such problems."""
    r = np.asarray(ratios, dtype=float)
    finite = r[np.isfinite(r)]
    if not finite.size:
        return {"n": int(r.size), "exact_zero": int(r.size), "fraction_bounded": 1.0}
    return {"n": int(r.size), "min": float(finite.min()), "median": float(np.median(finite)),
            "p90": float(np.quantile(finite, 0.9)), "max": float(finite.max()),
            "fraction_bounded": float(np.mean(r >= 1.0)), "exact_zero": int(r.size - finite.size)}


def region_table(records: Sequence[Record], ratios: np.ndarray) -> dict[str, dict[str, float]]:
    """Tightness per region (:func:`regions`)."""
    groups: dict[str, list[float]] = {}
    for rec, r in zip(records, ratios, strict=True):
        for name in regions(rec):
            groups.setdefault(name, []).append(float(r))
    return {name: tightness(np.array(v)) for name, v in groups.items()}


# ------------------------------------------------------------------------------------------------- driver
def calibrate(laws: Iterable[str] = CALIBRATED_LAWS, *, sizes: dict[str, int] | None = None,
              domain: Domain = DOMAIN, executor: cf.Executor | None = None,
              records: dict[str, dict[str, list[Record]]] | None = None,
              progress: bool = False, checkpoint: str | None = None
              ) -> tuple[dict[str, Any], dict[str, dict[str, list[Record]]]]:
    """Fit every law's constants on its calibration design and measure tightness on its test design.

    Parameters
    ----------
    laws : iterable of str
        Laws to calibrate (default: all four regression laws).
    sizes : dict, optional
        Points in the ``calibration`` and ``test`` designs, for every law (``{"calibration": n, "test": m}``) or
        per law (``{law: {...}}``; default :data:`SIZES`).
    domain : Domain
        The domain the designs fill (default: the laws' documented domain, :data:`~scalinglaw.design.DOMAIN`).
    executor : concurrent.futures.Executor, optional
        Runs the exact engine over the design points.
    records : dict, optional
        Previously evaluated designs (``law -> which -> records``); reused instead of rerunning the engine.
    checkpoint : str, optional
        Write the records evaluated so far to this file after each design (:func:`write_records`).

    Returns
    -------
    (dict, dict)
        The calibration result (constants, tightness overall and per region) and the records.
    """
    from .laws.constants import ConstantSet

    sizes = SIZES if sizes is None else sizes
    laws = list(laws)
    result: dict[str, Any] = {}
    all_records: dict[str, dict[str, list[Record]]] = {}
    for name in laws:  # every design first: the engine's work is saved (checkpoint) before any fit
        recs: dict[str, list[Record]] = {}
        for which in ("calibration", "test"):
            if records is not None and name in records and which in records[name]:
                recs[which] = records[name][which]
            else:
                size = sizes[which] if which in sizes else sizes[name][which]
                recs[which] = evaluate_design(design(name, which, size, domain), executor=executor,
                                              progress=progress, desc=f"{which} design of {name}")
            all_records[name] = recs
            if checkpoint is not None:
                write_records(all_records, checkpoint)
    for name in laws:
        recs = all_records[name]
        closed = {w: _closed_all(recs[w], executor) for w in recs}
        consts = fit_constants(name, recs["calibration"], closed["calibration"])
        ratios = {w: _ratios(name, consts, recs[w], closed[w]) for w in recs}
        cs = ConstantSet(
            name="calibrated",
            values=consts,
            source="scalinglaw calibration against the exact engine (scalinglaw.calibration)",
            table=f"calibration design of {len(recs['calibration'])} problems; test design of {len(recs['test'])}",
            confidence="upper bound on the calibration design by construction (margin "
                       f"{MARGIN:g}); see 'test' for the independent test design",
            provenance="[derived: calibrated]",
            notes=f"generated {_dt.date.today().isoformat()} by `scalinglaw calibrate`",
        )
        result[name] = {
            "constants": cs.to_dict(),
            "calibration": tightness(ratios["calibration"]),
            "test": tightness(ratios["test"]),
            "regions": region_table(recs["test"], ratios["test"]),
            "designs": {w: design_summary(recs[w]) for w in recs},
            "domain": domain.describe(),
        }
    return result, all_records


def write(result: dict[str, Any], path: str) -> None:
    with open(path, "w") as fh:
        json.dump(result, fh, indent=2, sort_keys=True)
        fh.write("\n")


def write_records(records: dict[str, dict[str, list[Record]]], path: str) -> None:
    data = {law: {w: [r.to_dict() for r in recs] for w, recs in by.items()} for law, by in records.items()}
    with open(path, "w") as fh:
        json.dump(data, fh, separators=(",", ":"))
        fh.write("\n")


def read_records(path: str) -> dict[str, dict[str, list[Record]]]:
    """Read a file written by :func:`write_records`; ``ValueError`` if it has another structure."""
    with open(path) as fh:
        data = json.load(fh)
    try:
        return {law: {w: [Record.from_dict(r) for r in recs] for w, recs in by.items()}
                for law, by in data.items()}
    except (AttributeError, TypeError, KeyError) as exc:
        raise ValueError(f"{path!r} is not a calibration records file ({type(exc).__name__}: {exc})") from None
