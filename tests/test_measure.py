"""The spectral measure: quadrature of power-law spectra, the lumped frozen remainder, d = inf without a proxy,
and the engine at N up to 1e30 against a 50-digit evaluation of the same recursion (issue 11)."""

from __future__ import annotations

import math
import os

import mpmath
import numpy as np
import pytest
from mp_reference import reference_moments

from scalinglaw.dynamics import StepMap, moment_coefficients
from scalinglaw.exact import exact_risk
from scalinglaw.exact.engine import measure_risk
from scalinglaw.exact.spectral import spectral_moments
from scalinglaw.measure import block_rule, discrete_gauss_rule, slow_rule, spectrum_measure
from scalinglaw.problem import make_problem
from scalinglaw.reduction import reduce_problem
from scalinglaw.spectra import LogPowerLaw, PowerLaw
from scalinglaw.targets import Ones, SourcePrior


@pytest.mark.parametrize("count", [6, 7, 13, 100, 12345, 10**15])
def test_discrete_gauss_rule_is_exact_for_degree_11(count):
    x, w = discrete_gauss_rule(count, 6)
    assert np.all(w > 0) and np.all((x >= 0) & (x <= count - 1))
    assert math.fsum(w) == pytest.approx(count, rel=1e-14)
    # sum_{i<N} (i/N)^k in closed form (Faulhaber via mpmath's Bernoulli polynomials)
    for k in (1, 5, 11):
        exact = (mpmath.bernpoly(k + 1, count) - mpmath.bernpoly(k + 1, 0)) / (k + 1) / mpmath.mpf(count) ** k
        got = math.fsum(w * (x / count) ** k)
        assert got == pytest.approx(float(exact), rel=1e-12)


def test_measure_sums_match_the_spectrum():
    """Node sums reproduce tr H, the signal and sum lambda^2 s of the whole (infinite) spectrum."""
    spec, target = PowerLaw(1.5, math.inf), SourcePrior(1.2)
    for level, tol in ((0, 1e-8), (1, 1e-12)):  # 6-point rules on blocks of index ratio 2, then sqrt(2)
        m = spectrum_measure(spec, target, sigma2=1.0, horizon=1e12, fast_gamma=0.1, level=level)
        assert m.frozen is not None and m.compressed
        w, mu, s = m.weight, m.mu, m.target_sq
        assert math.fsum(w * mu) == pytest.approx(float(mpmath.zeta(1.5)), rel=tol)
        assert math.fsum(w * mu * s) == pytest.approx(float(mpmath.zeta(1.2)), rel=tol)
        assert math.fsum(w * mu * mu * s) == pytest.approx(float(mpmath.zeta(2.7)), rel=tol)


def test_logpower_measure_sums():
    spec = LogPowerLaw(2.0, math.inf)
    m = spectrum_measure(spec, Ones(), sigma2=1.0, horizon=1e9, fast_gamma=0.1, level=1)
    assert math.fsum(m.weight * m.mu) == pytest.approx(spec.trace(), rel=1e-11)


def _random_problem(rng: np.random.Generator, d: int) -> dict:
    a = float(rng.uniform(1.1, 4.0))
    data = rng.choice([None, "additive", "multiplicative", "multiplicative-coord"])
    eps = float(10 ** rng.uniform(-3, -0.5))
    spec = f"{data}:{eps:.4g}" if data else None
    B = int(rng.choice([1, 4, 32]))
    fraction = float(rng.uniform(0.05, 0.9))
    N = B * int(10 ** rng.uniform(1, 7))
    sched = str(rng.choice(["constant", "geometric"]))
    avg = str(rng.choice(["last", "uniform", "tail"]))
    target = str(rng.choice(["ones", "prior"]))
    kw = dict(a=a, d=d, N=N, B=B, gamma=1e-6, schedule=sched, average=avg, data=spec, target=target,
              sigma2=float(rng.choice([0.0, 0.1, 1.0])))
    if target == "prior":
        kw["b"] = a + float(rng.uniform(-0.3, 0.3)) if rng.random() < 0.5 else None
    # a fraction of the exact stability limit (the mean-square limit is not a bound for shared multiplicative noise)
    kw["gamma"] = fraction * exact_risk(make_problem(**{**kw, "N": 2 * B})).max_stable_gamma
    return kw


#: The issue's target. Since the within-phase pair sum of averaged outputs is taken from divided differences with the
#: node 1 for slow coordinates (it had been a quotient that kept only n e of the digits, the "rounding floor" of up to
#: 5e-10 once blamed on rotating the tail moments) and blocks are limited to an eigenvalue ratio of 4, the last full
#: run of the 100 problems (2026-12-01) gave worst 3.7e-12, all 100 below 1e-10.
AGREEMENT = 1e-10


#: The explicit path is the slow reference (about 300 s of CPU for the 100 problems, most of it in a handful of
#: coupled averaged runs), so CI checks the first 25 problems of the seeded sequence (about 30 s);
#: ``SCALINGLAW_FULL_CHECKS=1`` runs all 100 (about 270 s; last full run: worst relative difference 3.7e-12).
RANDOM_PROBLEMS = 100 if os.environ.get("SCALINGLAW_FULL_CHECKS") == "1" else 25


@pytest.mark.slow
def test_compressed_measure_agrees_with_explicit_coordinates_on_random_problems():
    """d in [300, 2000]: the compressed measure (quadrature blocks, slow nodes, frozen node) against every coordinate
    explicit, within 1e-10 relative; the refinement estimate bounds the actual difference."""
    rng = np.random.default_rng(2026)
    done = 0
    worst = 0.0
    while done < RANDOM_PROBLEMS:
        kw = _random_problem(rng, int(rng.integers(300, 2001)))
        p = make_problem(**kw)
        explicit = exact_risk(p, measure="explicit")
        comp = exact_risk(p, measure="compressed")
        err = abs(comp.excess_risk - explicit.excess_risk)
        worst = max(worst, err / explicit.excess_risk)
        assert err <= AGREEMENT * explicit.excess_risk, kw
        assert err <= comp.error + 1e-9 * explicit.excess_risk, kw
        done += 1
    assert worst < AGREEMENT


def test_infinite_d_result_has_small_reported_error_and_no_proxy():
    p = make_problem(a=1.5, d="inf", N=10**8, gamma=0.3, data="multiplicative:0.01")
    r = exact_risk(p)
    assert 0 < r.error < 1e-6 * r.excess_risk
    assert not any("proxy" in n for n in r.notes)
    # the d = inf risk does not depend on the simulator's proxy setting
    assert exact_risk(p.with_(d_proxy=1024)).excess_risk == r.excess_risk
    # and is the limit of finite d: the gap to d = 1e12 is the unlearned signal beyond it (+ its noise effect)
    big = exact_risk(make_problem(a=1.5, d=10**12, N=10**8, gamma=0.3, data="multiplicative:0.01"))
    # an unlearned coordinate adds lambda s to the clean excess risk whatever the data noise (w = 0 there), and
    # its signal is label noise for the rest (the variance grows by beyond / sigma^2 of itself, sigma^2 = 1)
    beyond = float(mpmath.zeta(1.5, 10**12 + 1))
    assert r.excess_risk - big.excess_risk == pytest.approx(beyond * (1 + r.terms["variance"]), rel=2e-4)


@pytest.mark.parametrize("N", [10**12, 10**20, 10**30])
def test_huge_n_runs_in_log_space(N):
    for sched in ("constant", "geometric"):
        r = exact_risk(make_problem(a=2, d="inf", N=N, gamma=0.3, schedule=sched, average="last",
                                    data="multiplicative:0.01"))
        assert np.isfinite(r.excess_risk) and r.terms["variance"] >= 0 and r.terms["bias"] >= 0


def _n_dependent(N: int, sched: str, avg: str, data: str | None, lam: list[float]) -> tuple[float, float]:
    """bias + variance + cross (the part of the excess risk that depends on N): engine and 50-digit reference."""
    p = make_problem(spectrum=np.array(lam), N=N, gamma=0.5, schedule=sched, average=avg, data=data, sigma2=0.5)
    (meas,) = reduce_problem(p)
    mc = moment_coefficients(meas, p.quantizers, p.B)
    maps = [(StepMap.build(mc, g), n) for g, n in p.phases()]
    sh, s, mu = mc.shrink, mc.target_sq, mc.mu
    m0 = np.stack([-sh * s, np.zeros_like(s)])
    a0 = np.stack([sh * sh * s, np.zeros_like(s)])
    mom = spectral_moments(maps, m0, a0, np.array([0.0, 1.0]), avg)
    engine = float(mu @ (mom.second[0] + mom.second[1]) + 2 * (mu * (sh - 1)) @ mom.cross[0])
    with mpmath.workdps(50):
        sb, cb = reference_moments(maps, m0[0], a0[0], 0.0, avg)
        sv, _ = reference_moments(maps, m0[1], a0[1], 1.0, avg)
        ref = mpmath.fsum(mpmath.mpf(float(mu[i])) * (sb[i] + sv[i] + 2 * mpmath.mpf(float(sh[i] - 1)) * cb[i])
                          for i in range(len(mu)))
    return engine, float(ref)


@pytest.mark.slow
@pytest.mark.parametrize("data", [None, "multiplicative:0.05"])
@pytest.mark.parametrize("N", [10**12, 10**20, 10**30])
def test_geometric_schedule_matches_50_digit_recursion(N, data):
    """Lin et al.'s schedule (last iterate) up to N = 1e30: modes from fast to barely moved, 1e-8 relative."""
    lam = [1.0, float(N) ** -0.5, 3.0 / N] if N < 10**30 else [1.0, 3.0 / N]
    engine, ref = _n_dependent(N, "geometric", "last", data, lam)
    assert engine == pytest.approx(ref, rel=1e-8)


@pytest.mark.parametrize("data", [None, "multiplicative:0.05"])
@pytest.mark.parametrize("N", [10**12, 10**20, 10**30])
def test_constant_schedule_average_matches_50_digit_recursion(N, data):
    engine, ref = _n_dependent(N, "constant", "uniform", data, [1.0, float(N) ** -0.5, 3.0 / N])
    assert engine == pytest.approx(ref, rel=1e-8)


@pytest.mark.slow
def test_tiny_close_poles_keep_their_relative_accuracy():
    """Nodes far below eps * max rate (here 1e-14, 1.3e-14 next to 1): an absolute deflation tolerance would merge
    them (it did, and moved the d = inf risk at N = 1e20 by 2e-6); relative deflation keeps the 50-digit result."""
    engine, ref = _n_dependent(10**20, "geometric", "last", "multiplicative:0.05", [1.0, 1e-8, 1e-14, 1.3e-14, 3e-20])
    assert engine == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("target", [Ones(), SourcePrior(1.9), SourcePrior(3.2)])
def test_slow_rule_reproduces_count_and_signal_moments(target):
    """The merged slow nodes integrate count-weighted polynomials of degree <= 2p-1 and signal-weighted ones of degree
    <= p-1 in the eigenvalue exactly (against the fine rule they replace), with positive weights."""
    spec = PowerLaw(1.7, math.inf)
    x, w = block_rule(spec, 2e6, 9e8, 2.0, 10.0, 6, 1)
    lam = spec.lambda1 * x**-1.7
    s = np.ones_like(x) if isinstance(target, Ones) else x ** target.exponent(spec)
    mu, W, S = slow_rule(lam, w, s, 6, 2)
    assert mu.size == 12 and np.all(W > 0) and np.all(S > 0) and np.all(np.diff(mu) < 0)
    top = lam.max()
    for k in range(12):
        assert math.fsum(W * (mu / top) ** k) == pytest.approx(math.fsum(w * (lam / top) ** k), rel=1e-12)
    for k in range(6):
        assert math.fsum(W * S * (mu / top) ** (k + 1)) == pytest.approx(math.fsum(w * s * (lam / top) ** (k + 1)),
                                                                         rel=1e-12)


@pytest.mark.parametrize("schedule,average", [("geometric", "uniform"), ("constant", "tail"), ("geometric", "last")])
def test_slow_nodes_match_the_fine_measure_in_the_step_recursion(monkeypatch, schedule, average):
    """The merged slow range against the blocks it replaces, both run by the step-by-step recursion (no closed-form
    rounding in either): the risks agree to 1e-12 relative."""
    import scalinglaw.measure as measure_module

    p = make_problem(a=1.69, d="inf", N=10**5, gamma=0.19, schedule=schedule, average=average, sigma2=0.1,
                     data="multiplicative:0.02")
    merged = reduce_problem(p, level=1)[0]
    assert any("Gauss nodes in the eigenvalue" in n for n in merged.notes)
    monkeypatch.setattr(measure_module, "SLOW_RATE", 1e-12)
    fine = reduce_problem(p, level=1)[0]
    assert fine.size > merged.size + 20
    got = sum(measure_risk(merged, p, "recursion").terms.values())
    ref = sum(measure_risk(fine, p, "recursion").terms.values())
    assert got == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("N", [10**5, 10**6])
def test_averaged_geometric_run_matches_the_step_recursion(N):
    """Averaged output over many phases: the closed form's within-phase pair sum for slow rows (n e << 1, where
    (D Sa - Ea) / e kept only n e of the digits and had put the d = inf risk off by 3e-5 relative at N = 1.2e11)
    against the step-by-step recursion on the same measure: 1e-12 relative."""
    for average in ("uniform", "tail"):
        p = make_problem(a=1.69, d="inf", N=N, gamma=0.19, schedule="geometric", average=average, sigma2=0.0)
        m = reduce_problem(p, level=1)[0]
        got = sum(measure_risk(m, p, "spectral").terms.values())
        ref = sum(measure_risk(m, p, "recursion").terms.values())
        assert got == pytest.approx(ref, rel=1e-12)


def test_infinite_d_refinement_error_is_small_on_random_problems():
    """d = inf over the issue's range (N up to 1e12, both schedules, every output, data noise or none, both
    targets): the reported refinement error stays below 1e-6 relative. Measured worst on these 10: 2.7e-8; the
    engine before the within-phase and slow-node changes of 2026-12-01 reported 1.4e-6 on them and fails this test."""
    rng = np.random.default_rng(7)
    for _ in range(10):
        a = float(rng.uniform(1.2, 3.5))
        kw = dict(a=a, d="inf", N=int(10 ** rng.uniform(3, 12)), schedule=str(rng.choice(["constant", "geometric"])),
                  average=str(rng.choice(["last", "uniform", "tail"])), target=str(rng.choice(["ones", "prior"])),
                  sigma2=float(rng.choice([0.0, 0.1, 1.0])))
        data = str(rng.choice(["none", "multiplicative", "multiplicative-coord"]))
        if data != "none":
            kw["data"] = f"{data}:{10 ** rng.uniform(-3, -1):.3g}"
        if kw["target"] == "prior":
            kw["b"] = a + float(rng.uniform(-0.3, 0.5))
        kw["gamma"] = 0.5 * exact_risk(make_problem(**{**kw, "N": 2, "gamma": 1e-9})).max_stable_gamma
        r = exact_risk(make_problem(**kw))
        assert 0 <= r.error < 1e-6 * r.excess_risk, kw
