"""Data-parallel SGD with quantized communication (theory/distributed.md): quantizers, problem validation,
exact identities of the engine, and the exact engine against the independent simulator.

Exact vs Monte Carlo: for every case ``|MC mean - exact| < 3 * MC SEM`` with fixed seeds; cases with
communication noise also check power (the exact risk differs from the same run with full-precision
communication by more than 3 SEM). Covering design: tau = 1 and tau > 1; communication additive, shared and
coordinate-wise multiplicative, norm-relative (isotropic) and none (real formats enter the engine through
their idealised surrogates, a bound, and QSGD is refused: neither is claimed exact);
K in {2, 3, 4}, B in {1, 2, 3}; uniform, tail and last outputs; constant and geometric schedules; data,
parameter and activation quantization inside the workers; a sketched model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from cli_helpers import run

from scalinglaw.communication import RoundMap, comm_scheme, server_coefficients
from scalinglaw.dynamics import moment_coefficients
from scalinglaw.errors import ParameterError, UnsupportedConfigurationError
from scalinglaw.exact import exact_risk
from scalinglaw.problem import make_problem
from scalinglaw.quantize.comm import QSGD, NormRelative, parse_comm_quantizer, qsgd_variance_bound
from scalinglaw.reduction import reduce_problem
from scalinglaw.simulate import simulate

K_SE = 3.0


# ------------------------------------------------------------------------------------------- quantizers
def test_qsgd_is_unbiased_with_the_papers_variance_bound() -> None:
    rng = np.random.default_rng(0)
    m, s = 50, 3
    v = rng.standard_normal(m) * np.linspace(0.1, 2.0, m)
    q = QSGD(s)
    draws = q.quantize(np.tile(v, (40000, 1)), rng)
    err = draws - v
    mean_se = err.std(axis=0) / math.sqrt(len(draws))
    assert np.all(np.abs(err.mean(axis=0)) < 4.5 * mean_se + 1e-12)  # unbiased, coordinate by coordinate
    energy = float(np.mean(np.sum(err * err, axis=1)))
    assert energy <= qsgd_variance_bound(m, s) * float(v @ v)
    # levels: every output is |v| sign(v_i) l / s with an integer l
    lv = np.abs(draws) * s / np.linalg.norm(v)
    assert np.allclose(lv, np.round(lv), atol=1e-9)
    assert q.bits == pytest.approx(math.log2(7))
    assert qsgd_variance_bound(100, 2) == pytest.approx(5.0)  # min(100/4, 10/2)


def test_norm_relative_has_isotropic_covariance() -> None:
    rng = np.random.default_rng(1)
    v = np.array([3.0, 0.0, -1.0, 0.5])
    q = NormRelative(0.4)
    err = q.quantize(np.tile(v, (200000, 1)), rng) - v
    cov = err.T @ err / len(err)
    expect = 0.4 / 4 * float(v @ v)
    assert np.allclose(np.diag(cov), expect, rtol=0.02)
    assert np.max(np.abs(cov - np.diag(np.diag(cov)))) < 0.02 * expect


@pytest.mark.parametrize("spec, message", [
    ("norm:x", "give a number after 'norm:'"), ("norm:-1", "q >= 0"), ("qsgd:s=0", "S >= 1"),
    ("qsgd:s=2.5", "S >= 1"), ("bogus", "norm:Q, qsgd:s=S, or one of"),
])
def test_comm_specs_are_validated(spec: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        parse_comm_quantizer(spec)


@pytest.mark.parametrize("kwargs, name", [
    ({"K": 0}, "K"), ({"period": 0}, "period"), ({"K": 3, "N": 100}, "N"), ({"K": 2, "N": 200, "period": 3}, "period"),
    ({"d": "inf", "comm": "norm:1"}, "comm"),
])
def test_problem_refuses_bad_distributed_settings(kwargs: dict, name: str) -> None:
    with pytest.raises(ParameterError) as info:
        make_problem(**{"d": 10, "N": 200, "gamma": 0.1, **kwargs})
    assert info.value.name == name


def test_engine_refuses_what_it_does_not_treat_exactly() -> None:
    for comm in ("qsgd:s=4", "int8"):
        p = make_problem(d=10, N=200, gamma=0.1, K=2, comm=comm)
        with pytest.raises(UnsupportedConfigurationError, match="comm="):
            exact_risk(p)


# ------------------------------------------------------------------------------------------- identities
def test_workers_without_communication_noise_are_the_batch_KB_map() -> None:
    base = {"d": 30, "gamma": 0.2, "sigma2": 0.5, "data": "multiplicative:0.1", "params": "additive:0.01"}
    for avg in ("uniform", "last"):
        one = exact_risk(make_problem(**base, N=4800, B=8, average=avg, acts="additive:0.1"))
        four = exact_risk(make_problem(**base, N=4800, B=2, K=4, average=avg, acts="additive:0.1"))
        # independent per-worker parameter draws: the cross-worker term has no parameter noise, so compare
        # without it as well
        assert one.excess_risk != four.excess_risk
        a = exact_risk(make_problem(**{**base, "params": None}, N=4800, B=8, average=avg))
        b = exact_risk(make_problem(**{**base, "params": None}, N=4800, B=2, K=4, average=avg))
        assert b.excess_risk == pytest.approx(a.excess_risk, rel=1e-12)


@pytest.mark.parametrize("comm", [None, "additive:0.02", "multiplicative:0.4", "multiplicative-coord:0.4"])
def test_stepped_round_map_equals_the_server_map_at_period_one(comm: str | None) -> None:
    """The general round map (stepped) and the diagonal-plus-rank-one server map (closed form) agree."""
    from scalinglaw.dynamics import StepMap
    from scalinglaw.exact.rounds import round_moments

    p = make_problem(d=25, N=3000, B=2, K=3, gamma=0.2, comm=comm, data="multiplicative:0.1", average="uniform")
    mc = moment_coefficients(reduce_problem(p)[0], p.quantizers, p.B)
    kind, eps = comm_scheme(p.comm)
    rmap = RoundMap(mc, p.K, 1, kind, eps)
    maps = [(StepMap.build(mc, g), n) for g, n in p.phases()]
    sq, sh, s = np.sqrt(mc.weight), mc.shrink, mc.target_sq
    m0 = np.stack([-sq * sh * s, np.zeros_like(s)])
    a0 = np.stack([sq * sh * sh * s, np.zeros_like(s)])
    mom = round_moments(rmap, maps, m0, a0, np.array([0.0, 1.0]), p.average)
    stepped = float((sq * mc.mu) @ mom.second.sum(axis=0)) + float(2 * (sq * mc.mu * (sh - 1)) @ mom.cross[0])
    ex = exact_risk(p, method="spectral")
    assert ex.method == "spectral"
    closed = ex.terms["bias"] + ex.terms["variance"] + ex.terms["cross"]
    assert stepped == pytest.approx(closed, rel=1e-10)
    # and the stability limits agree (Sylvester test on the server map vs dense round matrix)
    dense = RoundMap(mc, p.K, 1, kind, eps)
    g_fast = dense.max_stable_step()
    assert dense.is_stable(0.99 * g_fast)
    F = dense.round_matrix(1.01 * g_fast)
    assert np.max(np.abs(np.linalg.eigvals(F))) > 1.0


def test_server_map_adds_the_derived_injections() -> None:
    """tau = 1: additive adds eps/K to E g_i^2; multiplicative scales the per-worker term by (1 + eps)."""
    p = make_problem(d=8, N=80, gamma=0.1)
    mc = moment_coefficients(reduce_problem(p)[0], p.quantizers, p.B)
    plain = server_coefficients(mc, 4, None, 0.0)
    add = server_coefficients(mc, 4, "additive", 0.3)
    mul = server_coefficients(mc, 4, "multiplicative", 0.3)
    assert np.allclose(add.c - plain.c, 0.3 / 4)
    assert np.allclose(mul.A_d - plain.A_d, 0.3 / 4 * mc.A_d)
    assert np.allclose(mul.c - plain.c, 0.3 / 4 * mc.c)
    assert mul.theta == pytest.approx(1.3 / 4 * mc.theta)


def test_stepped_engine_cost_is_guarded() -> None:
    from scalinglaw.exact import rounds

    p = make_problem(d=50, N=2_000_000, gamma=0.1, K=2, period=2)
    old = rounds.STEP_LIMIT
    try:
        rounds.STEP_LIMIT = 1e6
        with pytest.raises(UnsupportedConfigurationError, match="period > 1"):
            exact_risk(p)
    finally:
        rounds.STEP_LIMIT = old


def test_unstable_distributed_step_is_refused_with_the_limit() -> None:
    from scalinglaw.errors import UnstableStepError

    p = make_problem(d=20, N=400, gamma=0.1, K=2, period=4, comm="norm:3")
    g = exact_risk(p).max_stable_gamma
    with pytest.raises(UnstableStepError) as info:
        exact_risk(p.with_(gamma=1.05 * g))
    assert info.value.max_stable == pytest.approx(g, rel=2e-3)
    with pytest.raises(UnstableStepError):
        simulate(p.with_(gamma=1.05 * g), reps=4)


# ------------------------------------------------------------------------------------------- exact vs MC
_BASE = {"a": 1.5, "d": 16, "sigma2": 0.5}
CASES = [
    # tau = 1: closed form per phase on the server map
    ("t1-add-K4-B2-uniform", {"K": 4, "B": 2, "N": 1600, "gamma": 0.3, "comm": "additive:0.05"}, 11),
    ("t1-mult-K2-B1-last-geom", {"K": 2, "B": 1, "N": 400, "gamma": 0.3, "comm": "multiplicative:1.0",
                                 "average": "last", "schedule": "geometric"}, 12),
    ("t1-multcoord-K3-B1-tail-data", {"K": 3, "B": 1, "N": 600, "gamma": 0.25, "comm": "multiplicative-coord:1.0",
                                      "average": "tail", "data": "multiplicative:0.2"}, 13),
    ("t1-norm-K4-B2-last", {"K": 4, "B": 2, "N": 1600, "gamma": 0.3, "comm": "norm:3", "average": "last"}, 15),
    ("t1-norm-K2-B1-uniform-params", {"K": 2, "B": 1, "N": 400, "gamma": 0.25, "comm": "norm:2",
                                      "params": "additive:0.02"}, 16),
    # tau > 1: the stepped round map
    ("t4-none-K4-B2-last", {"K": 4, "B": 2, "N": 1600, "gamma": 0.3, "period": 4, "average": "last"}, 21),
    ("t2-add-K2-B1-uniform", {"K": 2, "B": 1, "N": 400, "gamma": 0.3, "period": 2, "comm": "additive:0.2"}, 22),
    ("t4-mult-K4-B1-last", {"K": 4, "B": 1, "N": 800, "gamma": 0.3, "period": 4, "comm": "multiplicative:1.0",
                            "average": "last"}, 23),
    ("t5-norm-K3-B1-tail-data-acts", {"K": 3, "B": 1, "N": 600, "gamma": 0.2, "period": 5, "comm": "norm:3",
                                      "average": "tail", "data": "additive:0.05", "acts": "multiplicative:0.3"}, 24),
    ("t4-norm-K2-B3-geom-last", {"K": 2, "B": 3, "N": 1200, "gamma": 0.3, "period": 4, "comm": "norm:4",
                                 "schedule": "geometric", "average": "last"}, 25),
    ("t2-mult-K2-sketch", {"a": 2.0, "d": 64, "M": 12, "K": 2, "B": 1, "N": 400, "gamma": 0.2, "period": 2,
                           "comm": "multiplicative:1.0", "average": "last"}, 26),
]


def _fp_comm(problem):  # the same run with full-precision communication
    return problem.with_(comm=None)


@pytest.mark.slow
@pytest.mark.parametrize("cid, kwargs, seed", CASES, ids=[c[0] for c in CASES])
def test_exact_matches_monte_carlo_distributed(cid: str, kwargs: dict, seed: int) -> None:
    p = make_problem(**{**_BASE, **kwargs})
    ex = exact_risk(p)
    assert p.gamma <= 0.7 * ex.max_stable_gamma  # away from the heavy-tailed edge (theory/simulator.md §6)
    sim = simulate(p, reps=1500, seed=seed)
    z = (sim.excess_risk_mean - ex.excess_risk) / sim.excess_risk_sem
    assert abs(z) < K_SE, f"{cid}: exact {ex.excess_risk:.6g}, MC {sim.excess_risk_mean:.6g} ± {sim.excess_risk_sem:.2g}"  # noqa: E501
    if p.comm is not None:
        fp = exact_risk(_fp_comm(p)).excess_risk
        assert abs(ex.excess_risk - fp) > K_SE * sim.excess_risk_sem, f"{cid}: no power"


# ------------------------------------------------------------------------------------------- closed form
@pytest.mark.slow
def test_communication_law_bounds_the_exact_price_on_its_test_design() -> None:
    """closed (calibrated) >= exact Delta_comm on the test design (other values of every parameter), and the
    noise-driven constants stay near 1, the derived stationary leading orders (theory/distributed.md §4)."""
    from scalinglaw.laws.communication import CommunicationLaw, communication_inputs, design, evaluate

    law = CommunicationLaw()
    problems = design("test")
    assert len(problems) >= 15
    rows = evaluate(problems)
    for p, r in zip(problems, rows, strict=True):
        closed = float(law(**communication_inputs(p)))
        assert closed >= r["exact"] > 0, (p.describe(), closed, r["exact"])
    assert 0.8 <= law.constants["c_additive"] <= 1.25
    assert 0.8 <= law.constants["c_norm_variance"] <= 1.25


def test_communication_law_refuses_outside_its_domain() -> None:
    from scalinglaw.laws.communication import CommunicationLaw, communication_inputs, step_limit

    for kw in ({"schedule": "geometric"}, {"data": "additive:0.1"}, {"spectrum": "logpower"}):
        with pytest.raises(UnsupportedConfigurationError):
            communication_inputs(make_problem(d=10, N=200, gamma=0.05, K=2, comm="norm:1", **kw))
    inputs = communication_inputs(make_problem(d=10, N=200, gamma=0.05, K=2, comm="norm:1"))
    limit = float(step_limit(inputs))
    with pytest.raises(ParameterError, match="mean-square step limit"):
        CommunicationLaw()(**{**inputs, "gamma": 1.01 * limit})


def test_closed_form_predict_for_distributed_runs() -> None:
    from scalinglaw.predict import closed_form_risk

    p = make_problem(d=40, N=8000, K=4, B=2, gamma=0.1, comm="additive:0.05")
    res = closed_form_risk(p)
    assert res.law == "sgd-quantized+communication" and "comm_additive_floor" in res.terms
    assert res.excess_risk >= exact_risk(p).excess_risk
    with pytest.raises(UnsupportedConfigurationError, match="--period 1"):
        closed_form_risk(p.with_(period=2))


# ------------------------------------------------------------------------------------------- allocation
@pytest.mark.parametrize("kw", [{"kind": "step", "steps": 1e4, "scheme": "int"},
                                {"kind": "total", "scheme": "qsgd"}])
def test_communication_allocation_is_a_budgeted_local_optimum(kw: dict) -> None:
    from scalinglaw.allocate import optimize_communication
    from scalinglaw.comm_allocation import _Model

    budget = 1e5 if kw["kind"] == "step" else 1e9
    res = optimize_communication(budget, gamma=0.05, **kw)
    assert res.K >= 1 and res.M >= 1 and 1.0 <= res.bits <= 32.0
    used = res.K * res.M * res.bits * (1.0 if kw["kind"] == "step" else res.steps)
    assert used == pytest.approx(budget, rel=1e-6) or res.bits == 32.0
    assert res.regime in res.terms and sum(res.terms.values()) == pytest.approx(res.loss, rel=1e-9)
    model = _Model(2.0, 2.0, 1.0, 0.05, 1, kw["scheme"], 4.0)

    def loss(K: int, M: int) -> float:
        if kw["kind"] == "step":
            bits = min(budget / (K * M), 32.0)
            return float(model.parts(K, M, 1e4 * K, bits)) if bits >= 1 else math.inf
        return float(model.parts(K, M, budget / (M * res.bits), res.bits))

    best = loss(res.K, res.M)
    for dK, dM in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        if res.K + dK >= 1 and res.M + dM >= 1:
            assert loss(res.K + dK, res.M + dM) >= best * (1 - 1e-6)  # flat in K when communication is cheap


def test_communication_allocation_refuses_bad_budgets() -> None:
    from scalinglaw.allocate import optimize_communication

    with pytest.raises(ParameterError, match="steps"):
        optimize_communication(1e5, kind="step")
    with pytest.raises(ParameterError, match="steps"):
        optimize_communication(1e9, kind="total", steps=10)
    with pytest.raises(ParameterError, match="budget"):
        optimize_communication(-1.0, kind="total")


# ------------------------------------------------------------------------------------------- CLI
def test_cli_distributed_flags(capsys) -> None:
    import json

    code, out, err = run(capsys, "predict", "--method", "exact", "--K", "4", "--period", "2", "--comm", "norm:1",
                          "--d", "20", "--N", "4000", "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["engine"] == "rounds" and data["problem"]["K"] == 4 and data["problem"]["comm"] == "norm:1"
    code, out, err = run(capsys, "predict", "--workers-K", "2", "--comm", "additive:0.01", "--d", "20", "--N", "400")
    assert code == 0 and "comm_additive_floor" in out and "K=2 workers" in out
    code, out, err = run(capsys, "simulate", "--K", "2", "--comm", "qsgd:s=4", "--d", "10", "--N", "200",
                          "--reps", "8", "--json")
    assert code == 0 and json.loads(out)["problem"]["comm"] == "qsgd:s=4"
    code, out, err = run(capsys, "optimize", "--law", "distributed", "--budget", "1e9", "--budget-kind",
                          "comm-total", "--gamma", "0.05", "--json")
    assert code == 0 and {"K", "M", "bits", "regime"} <= set(json.loads(out))


@pytest.mark.parametrize("argv, flag", [
    (("predict", "--K", "0"), "--K"),
    (("predict", "--K", "3", "--N", "100"), "--N"),
    (("predict", "--period", "7", "--N", "100"), "--period"),
    (("predict", "--comm", "norm:"), "--comm"),
    (("predict", "--method", "exact", "--K", "2", "--comm", "qsgd:s=2"), "qsgd"),
    (("predict", "--K", "2", "--period", "2", "--N", "400"), "--period 1"),
    (("simulate", "--K", "2", "--gamma", "5", "--N", "40", "--reps", "4"), "--gamma"),
    (("optimize", "--law", "distributed", "--budget", "1e5", "--budget-kind", "comm-step"), "--steps"),
    (("optimize", "--law", "distributed", "--budget", "1e5", "--budget-kind", "compute"), "--budget-kind"),
    (("optimize", "--law", "kumar", "--budget", "1e20", "--steps", "10"), "--steps"),
])
def test_cli_distributed_errors_are_one_line(capsys, argv: tuple, flag: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and flag in err, err


def test_round_map_stability_ignores_the_rounding_of_frozen_modes() -> None:
    """d = inf: the frozen remainder's mode sits at 1 - O(1e-16) in the dense round matrix; it must not be read as
    unstable (it was, before ROUND_TOL), and the limit must bracket the step."""
    p = make_problem(a=2, d="inf", N=800, K=2, period=4, gamma=0.2, average="last", params="additive:0.01")
    res = exact_risk(p)
    assert res.max_stable_gamma > 0.2 and res.method == "rounds"
