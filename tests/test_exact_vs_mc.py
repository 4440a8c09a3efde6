"""The key test of the project: the exact risk engine against the independent Monte Carlo simulator.

For every case, ``|MC mean - exact| < 3 * MC SEM`` (the SEM is the standard error of the Monte Carlo mean;
seeds are fixed). Each case also checks that the test has power: the exact risk with quantization differs
from the exact full-precision risk by more than 3 SEM, so a wrong quantization formula would be caught.

Covering design (not the full cross product):

* every quantization target (data, labels, params, acts, grads) x every idealised scheme (additive,
  multiplicative, multiplicative-coord) at least once;
* every (B, schedule, average) combination, B in {1, 8}, constant / geometric, last / uniform / tail, at
  least once;
* clean and quantized test inputs, the all-ones target and the Gaussian source prior;
* the sketched model (eigenbasis data quantization, two sketch draws; raw-basis additive data noise);
* d = inf: the engine's spectral measure against the simulator's finite proxy plus unlearned tail (including
  additive parameter noise on the tail), the proxy large enough that its truncation is far below the SE.

Runs take T <= 256 steps so that the engine's ``auto`` method is its step-by-step reference recursion;
one extra case checks the closed-form (spectral) method on a longer run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from scalinglaw.exact import exact_risk
from scalinglaw.problem import QUANTIZER_TARGETS, Problem, make_problem
from scalinglaw.simulate import simulate

K_SE = 3.0


@dataclass(frozen=True)
class Case:
    """One configuration: problem keywords, replicas and seed of the Monte Carlo run."""

    id: str
    kwargs: dict[str, Any] = field(hash=False)
    reps: int = 2000
    seed: int = 0
    powered: bool = True  # False where theory says the quantization effect is negligible

    def problem(self) -> Problem:
        base: dict[str, Any] = {"a": 1.5, "d": 12, "sigma2": 0.5}
        base.update(self.kwargs)
        return make_problem(**base)


def _q(target: str, scheme: str, eps: float) -> dict[str, str]:
    return {target: f"{scheme}:{eps}"}


C, G = "constant", "geometric"
CASES = [
    # ---- every target x scheme; (B, schedule, average) cycles through all 12 combinations
    Case("data-additive-B1-const-last-clean-ones",
         {**_q("data", "additive", 0.1), "N": 128, "gamma": 0.3, "B": 1, "schedule": C, "average": "last"},
         reps=3000, seed=11),
    Case("data-mult-B8-const-uniform-quantized-prior",
         {**_q("data", "multiplicative", 0.2), "N": 1024, "gamma": 0.5, "B": 8, "schedule": C,
          "average": "uniform", "test_inputs": "quantized", "target": "prior"}, seed=12),
    Case("data-multcoord-B1-geom-tail-quantized-ones",
         {**_q("data", "multiplicative-coord", 0.2), "N": 256, "gamma": 0.2, "B": 1, "schedule": G,
          "average": "tail", "test_inputs": "quantized"}, seed=13),
    Case("labels-additive-B8-geom-last-clean-prior",
         {**_q("labels", "additive", 0.3), "N": 1024, "gamma": 0.6, "B": 8, "schedule": G,
          "average": "last", "target": "prior", "sigma2": 0.1}, reps=3000, seed=14),
    Case("labels-mult-B1-const-uniform-clean-ones",
         {**_q("labels", "multiplicative", 0.3), "N": 256, "gamma": 0.3, "B": 1, "schedule": C,
          "average": "uniform"}, seed=15),
    Case("labels-multcoord-B8-const-tail-clean-ones",
         {**_q("labels", "multiplicative-coord", 0.3), "N": 1024, "gamma": 0.6, "B": 8, "schedule": C,
          "average": "tail", "sigma2": 0.1}, seed=16),
    Case("params-additive-B1-geom-uniform-clean-prior",
         {**_q("params", "additive", 0.05), "N": 256, "gamma": 0.3, "B": 1, "schedule": G,
          "average": "uniform", "target": "prior"}, seed=17),
    Case("params-mult-B8-geom-tail-clean-ones",
         {**_q("params", "multiplicative", 0.2), "N": 1024, "gamma": 0.6, "B": 8, "schedule": G,
          "average": "tail", "sigma2": 0.1}, seed=18),
    Case("params-multcoord-B1-const-tail-clean-prior",
         {**_q("params", "multiplicative-coord", 0.2), "N": 256, "gamma": 0.3, "B": 1, "schedule": C,
          "average": "tail", "target": "prior", "sigma2": 0.1}, seed=19),
    Case("acts-additive-B8-const-last-clean-ones",
         {**_q("acts", "additive", 0.3), "N": 1024, "gamma": 0.6, "B": 8, "schedule": C, "average": "last",
          "sigma2": 0.1}, reps=3000, seed=20),
    Case("acts-mult-B1-geom-last-clean-prior",
         {**_q("acts", "multiplicative", 0.2), "N": 256, "gamma": 0.3, "B": 1, "schedule": G,
          "average": "last", "target": "prior", "sigma2": 0.1}, reps=3000, seed=21),
    Case("acts-multcoord-B8-geom-uniform-clean-ones",
         {**_q("acts", "multiplicative-coord", 0.2), "N": 1024, "gamma": 0.6, "B": 8, "schedule": G,
          "average": "uniform", "sigma2": 0.1}, seed=22),
    Case("grads-additive-B1-const-last-clean-prior",
         {**_q("grads", "additive", 0.3), "N": 256, "gamma": 0.3, "B": 1, "schedule": C, "average": "last",
          "target": "prior", "sigma2": 0.1}, reps=3000, seed=23),
    Case("grads-mult-B8-const-uniform-clean-ones",
         {**_q("grads", "multiplicative", 0.3), "N": 1024, "gamma": 0.6, "B": 8, "schedule": C,
          "average": "uniform", "sigma2": 0.1}, seed=24),
    Case("grads-multcoord-B1-geom-tail-clean-ones",
         {**_q("grads", "multiplicative-coord", 0.3), "N": 256, "gamma": 0.3, "B": 1, "schedule": G,
          "average": "tail", "sigma2": 0.1}, seed=25),
    # ---- all five quantizers at once
    Case("all-five-mixed-B8-const-uniform-quantized-ones",
         {"data": "multiplicative-coord:0.1", "labels": "additive:0.1", "params": "multiplicative:0.1",
          "acts": "additive:0.1", "grads": "multiplicative-coord:0.1", "N": 1024, "gamma": 0.5, "B": 8,
          "average": "uniform", "test_inputs": "quantized"}, seed=26),
    # ---- sketched model
    Case("sketch-eigen-data-mult-B1-const-uniform-clean-prior-2draws",
         {**_q("data", "multiplicative", 0.3), "d": 32, "M": 8, "sketch_draws": 2, "N": 256, "gamma": 0.07,
          "B": 1, "average": "uniform", "target": "prior"}, seed=27),
    Case("sketch-eigen-data-multcoord-B8-geom-last-quantized-ones",
         {**_q("data", "multiplicative-coord", 0.3), "d": 32, "M": 8, "N": 1024, "gamma": 0.3, "B": 8,
          "schedule": G, "average": "last", "test_inputs": "quantized"}, reps=3000, seed=28),
    Case("sketch-raw-data-additive-B1-const-tail-quantized-ones",
         {**_q("data", "additive", 0.1), "d": 32, "M": 8, "sketch_basis": "raw", "N": 256, "gamma": 0.18,
          "B": 1, "average": "tail", "test_inputs": "quantized"}, seed=29),
    Case("sketch-raw-data-additive-B8-const-uniform-clean-prior",
         {**_q("data", "additive", 0.1), **_q("grads", "additive", 0.2), "d": 32, "M": 8,
          "sketch_basis": "raw", "N": 1024, "gamma": 0.45, "B": 8, "average": "uniform", "target": "prior"},
         seed=30),
    # ---- d = inf: the engine's spectral measure (no proxy) against the simulator's proxy, chosen so that its
    # truncation (gamma * T * lambda_n <= 2e-3 on an unlearned tail) is far below the standard error
    Case("dinf-params-additive-B1-const-uniform-clean-ones",
         {**_q("params", "additive", 0.05), "a": 2.0, "d": "inf", "d_proxy": 256, "N": 256, "gamma": 0.4,
          "B": 1, "average": "uniform"}, seed=31),
    Case("dinf-data-multcoord-B8-geom-tail-quantized-prior",
         {**_q("data", "multiplicative-coord", 0.3), "a": 2.0, "d": "inf", "d_proxy": 256, "N": 1024,
          "gamma": 0.6, "B": 8, "schedule": G, "average": "tail", "test_inputs": "quantized",
          "target": "prior"}, seed=32),
]


def _full_precision(problem: Problem) -> Problem:
    return problem.with_(**dict.fromkeys(QUANTIZER_TARGETS))


def _check(problem: Problem, case: Case, method: str = "auto") -> None:
    exact = exact_risk(problem, method=method).excess_risk
    mc = simulate(problem, reps=case.reps, seed=case.seed)
    mean, sem = mc.excess_risk_mean, mc.excess_risk_sem
    z = (mean - exact) / sem
    detail = f"{case.id}: MC {mean:.6g} +- {sem:.3g} (SEM), exact {exact:.6g}, z = {z:+.2f}"
    assert abs(mean - exact) < K_SE * sem, detail
    if case.powered:
        fp = exact_risk(_full_precision(problem), method=method).excess_risk
        assert abs(exact - fp) > K_SE * sem, f"no power: {detail}, full precision {fp:.6g}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_exact_matches_monte_carlo(case: Case) -> None:
    problem = case.problem()
    assert problem.steps <= 256  # the engine's reference recursion
    _check(problem, case)


def test_design_covers_every_target_scheme_and_training_setup() -> None:
    """The grid above is a covering design: check it, so that an edit cannot silently drop a combination."""
    target_scheme, setups, tests, targets = set(), set(), set(), set()
    sketch_bases = set()
    for case in CASES:
        p = case.problem()
        for name, q in p.quantizers.items():
            if q is not None:
                target_scheme.add((name, q.kind))
        setups.add((p.B, p.schedule, p.average))
        tests.add(p.test_inputs)
        targets.add(p.target.label.split("(")[0])
        if p.M is not None:
            sketch_bases.add(p.sketch_basis)
    schemes = ("additive", "multiplicative", "multiplicative-coord")
    assert {(t, s) for t in QUANTIZER_TARGETS for s in schemes} <= target_scheme
    assert {(b, s, a) for b in (1, 8) for s in (C, G) for a in ("last", "uniform", "tail")} <= setups
    assert tests == {"clean", "quantized"}
    assert targets == {"ones", "prior"}
    assert sketch_bases == {"eigen", "raw"}


def test_exact_spectral_engine_matches_monte_carlo() -> None:
    """A longer run (T > 256) through the engine's closed-form (spectral) phases."""
    case = Case("spectral-data-additive-params-mult-B1-geom-uniform",
                {"data": "additive:0.05", "params": "multiplicative:0.2", "N": 1024, "gamma": 0.3, "B": 1,
                 "schedule": G, "average": "uniform", "target": "prior"}, reps=1000, seed=33)
    _check(case.problem(), case, method="spectral")
