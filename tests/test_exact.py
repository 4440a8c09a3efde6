"""The exact engine against independent formulas (no Monte Carlo here; see test_exact_vs_mc.py)."""

from __future__ import annotations

import itertools
import zlib

import mpmath
import numpy as np
import pytest

from scalinglaw.dynamics import max_stable_step, moment_coefficients
from scalinglaw.errors import UnstableStepError, UnsupportedConfigurationError
from scalinglaw.exact import exact_risk
from scalinglaw.problem import make_problem
from scalinglaw.reduction import draw_sketch, reduce_problem
from scalinglaw.spectra import PowerLaw
from scalinglaw.targets import ArrayTarget


def spec_gaussian_risk(mu, wstar, sigma2, gamma, B, T, average, eps_data=0.0):
    """SPEC §4's jointly Gaussian recursion, written out independently (additive data noise allowed)."""
    mut = mu + eps_data
    wq = mu * wstar / mut
    s2 = sigma2 + mu @ wstar**2 - wq @ (mut * wq)  # residual variance at w_q
    a = wq**2  # E u_0^2 with w_0 = 0
    m = -wq
    D = 1 - gamma * mut
    iters_a, iters_m = [a], [m]
    for _ in range(T):
        a = (1 - gamma * mut) ** 2 * a + gamma**2 / B * (mut**2 * a + mut * (mut @ a) + s2 * mut)
        m = D * m
        iters_a.append(a)
        iters_m.append(m)
    if average == "last":
        ubar2, ubar = iters_a[T], iters_m[T]
    else:
        t0 = 0 if average == "uniform" else T // 2
        n = T - t0
        A = np.array(iters_a[t0:T])
        ubar = np.mean(iters_m[t0:T], axis=0)
        tot = A.sum(0)
        for s in range(n):  # E[u_t u_s] = D^(t-s) a_s
            k = np.arange(1, n - s)
            tot += 2 * A[s] * (D[None, :] ** k[:, None]).sum(0)
        ubar2 = tot / n**2
    e = wq - wstar
    return float(mu @ ubar2 + 2 * (mu * e) @ ubar + mu @ e**2)


@pytest.mark.parametrize("average", ["last", "uniform", "tail"])
@pytest.mark.parametrize("B", [1, 4])
@pytest.mark.parametrize("eps", [0.0, 0.05])
def test_gaussian_case_matches_spec_formula(average, B, eps):
    d, N, gamma = 12, 240, 0.15
    p = make_problem(a=1.5, d=d, N=N, B=B, gamma=gamma, average=average, sigma2=0.7,
                     data=f"additive:{eps}" if eps else None)
    mu = p.spectrum.eigenvalues()
    ref = spec_gaussian_risk(mu, np.ones(d), 0.7, gamma, B, N // B, average, eps)
    for method in ("recursion", "spectral"):
        got = exact_risk(p, method=method).excess_risk
        assert got == pytest.approx(ref, rel=1e-11)


SCHEMES = ["additive", "multiplicative", "multiplicative-coord"]
TARGETS = ["data", "labels", "params", "acts", "grads"]


@pytest.mark.parametrize("target,scheme", list(itertools.product(TARGETS, SCHEMES)))
def test_closed_form_matches_recursion(target, scheme):
    """Closed form (cost independent of N) against the step-by-step reference, 1e-10 relative."""
    rng = np.random.default_rng(zlib.crc32(f"{target}-{scheme}".encode()))
    for average, schedule, B in itertools.product(["last", "uniform", "tail"], ["constant", "geometric"], [1, 8]):
        p = make_problem(
            a=float(rng.uniform(1.2, 2.5)), d=int(rng.integers(5, 40)), N=8 * int(rng.integers(60, 400)),
            B=B, gamma=1e-3, average=average, schedule=schedule,
            target=str(rng.choice(["ones", "prior"])), sigma2=float(rng.uniform(0, 2)),
            test_inputs=str(rng.choice(["clean", "quantized"])), **{target: f"{scheme}:{rng.uniform(0.01, 0.3)}"},
        )
        p = p.with_(gamma=0.5 * exact_risk(p.with_(N=p.B, schedule="constant")).max_stable_gamma)
        rec = exact_risk(p, method="recursion")
        clo = exact_risk(p, method="spectral")
        for key in rec.terms:
            assert clo.terms[key] == pytest.approx(rec.terms[key], rel=1e-10, abs=1e-14), key
        assert clo.excess_risk == pytest.approx(rec.excess_risk, rel=1e-10)


def test_terms_sum_and_risk():
    p = make_problem(a=2, d=50, N=1000, gamma=0.1, data="additive:0.01", sigma2=0.5)
    r = exact_risk(p)
    assert sum(r.terms.values()) == pytest.approx(r.excess_risk, rel=1e-14)
    assert r.risk == pytest.approx(r.excess_risk + 0.5)
    assert set(r.terms) == {"approximation", "bias", "variance", "cross"}
    # Cauchy-Schwarz bound of the cross term (independent of how it is computed)
    assert abs(r.terms["cross"]) <= 2 * np.sqrt(r.terms["approximation"] * (r.terms["bias"] + r.terms["variance"]))


@pytest.mark.parametrize("eps", [0.01, 0.2])
def test_approximation_multiplicative_both_conventions(eps):
    """SPEC §5.2: (eps/(1+eps))^2 ||w*||_H^2 on clean inputs, eps/(1+eps) ||w*||_H^2 on quantized ones."""
    lam = PowerLaw(2, 100).eigenvalues()
    norm = lam.sum()
    for scheme in ("multiplicative", "multiplicative-coord"):
        clean = exact_risk(make_problem(a=2, d=100, N=100, gamma=0.1, data=f"{scheme}:{eps}"))
        quant = exact_risk(make_problem(a=2, d=100, N=100, gamma=0.1, data=f"{scheme}:{eps}",
                                        test_inputs="quantized"))
        assert clean.terms["approximation"] == pytest.approx((eps / (1 + eps)) ** 2 * norm, rel=1e-12)
        assert quant.terms["approximation"] == pytest.approx(eps / (1 + eps) * norm, rel=1e-12)


def test_approximation_additive_is_ridge_bias():
    eps = 0.003
    lam = PowerLaw(2, 100).eigenvalues()
    r = exact_risk(make_problem(a=2, d=100, N=100, gamma=0.1, data=f"additive:{eps}"))
    assert r.terms["approximation"] == pytest.approx(np.sum(lam * (eps / (lam + eps)) ** 2), rel=1e-12)
    assert np.allclose(r.quantized_spectrum, lam + eps)
    assert np.allclose(r.shrink, lam / (lam + eps))
    assert np.allclose(r.quantized_target, np.linalg.solve(np.diag(lam + eps), lam * np.ones(100)))
    assert exact_risk(make_problem(a=2, d=10, N=10, gamma=0.1, target="prior")).quantized_target is None


def test_prior_equals_sum_of_coordinate_targets():
    """Only the diagonal of E w* w*^T enters: E_prior R = R(0) + sum_i [R(sqrt(c_i) e_i) - R(0)]."""
    d = 10
    common = dict(a=2.0, d=d, N=400, B=2, gamma=0.2, average="uniform", data="multiplicative:0.1",
                  params="multiplicative:0.05", acts="additive:0.02")
    prior = make_problem(target="prior", b=1.5, **common)
    c = prior.target.second_moments(prior.spectrum, d)
    base = exact_risk(make_problem(target=np.zeros(d), **common)).excess_risk
    total = base
    for i in range(d):
        w = np.zeros(d)
        w[i] = np.sqrt(c[i])
        total += exact_risk(make_problem(target=ArrayTarget(w), **common)).excess_risk - base
    assert exact_risk(prior).excess_risk == pytest.approx(total, rel=1e-11)


def test_sketch_approximation_matches_trace_formula():
    """E_w* Approx = tr(H - H S^T (S H S^T)^{-1} S H) for the isotropic prior (SPEC §1)."""
    p = make_problem(a=1.5, d=60, M=12, N=64, gamma=0.1, target="prior")
    sk = draw_sketch(p, 0)
    H = np.diag(p.spectrum.eigenvalues())
    S = sk.S
    ref = np.trace(H - H @ S.T @ np.linalg.solve(S @ H @ S.T, S @ H))
    dp = reduce_problem(p)[0]
    assert dp.excess_offset["sketch_approximation"] == pytest.approx(ref, rel=1e-10)
    assert exact_risk(p).terms["sketch_approximation"] == pytest.approx(ref, rel=1e-10)
    assert np.allclose(np.sort(dp.mu), np.sort(np.linalg.eigvalsh(S @ H @ S.T)))


def test_stability_limit_is_sharp():
    """Below the stated limit the recursion stays bounded; above it, it diverges."""
    p = make_problem(a=1.5, d=20, N=20000, gamma=0.1, B=1, data="multiplicative:0.1")
    dp = reduce_problem(p)[0]
    gmax = max_stable_step(moment_coefficients(dp, p.quantizers, p.B))
    below = exact_risk(p.with_(gamma=0.98 * gmax, average="last"), method="spectral").excess_risk
    assert np.isfinite(below) and below < 100
    with pytest.raises(UnstableStepError) as err:
        exact_risk(p.with_(gamma=1.02 * gmax))
    assert f"{gmax:.6g}" in str(err.value) and "gamma must be <" in str(err.value)
    # the divergence is real: step the map just above the limit
    from scalinglaw.dynamics import StepMap
    step = StepMap.build(moment_coefficients(dp, p.quantizers, p.B), 1.02 * gmax)
    m, a = np.zeros(20), np.ones(20)
    for _ in range(20000):
        m, a = step.apply(m, a)
    assert a.max() > 1e3


def test_real_format_with_fixed_range_exact_on_data_surrogate_elsewhere():
    r = exact_risk(make_problem(a=2, d=30, N=300, gamma=0.1, data="int8:range=4"))
    assert any("data=int8:range=4 is treated exactly" in n for n in r.notes)
    r = exact_risk(make_problem(a=2, d=30, N=300, gamma=0.1, params="int8:range=4"))
    assert any("params=int8:range=4 enters through its idealised surrogate" in n for n in r.notes)
    with pytest.raises(UnsupportedConfigurationError, match="absmax"):
        exact_risk(make_problem(a=2, d=30, N=300, gamma=0.1, params="int8"))


def test_infinite_d_has_no_proxy_and_matches_large_finite_d():
    """d = inf: no finite proxy (d_proxy is the simulator's only); d = 1e9 differs by the signal beyond 1e9."""
    inf = exact_risk(make_problem(a=2, d="inf", N=2000, gamma=0.1))
    assert "tail" not in inf.terms
    assert inf.excess_risk == exact_risk(make_problem(a=2, d="inf", N=2000, gamma=0.1, d_proxy=2000)).excess_risk
    big = exact_risk(make_problem(a=2, d=10**9, N=2000, gamma=0.1))
    # beyond 1e9 nothing is learned (gamma * T * lambda ~ 2e-16), and that signal acts as label noise on the
    # rest: the risk grows by it times 1 + dR/dsigma^2, and the variance is linear in sigma^2 (= 1 here)
    beyond = float(mpmath.zeta(2, 10**9 + 1))
    assert inf.excess_risk - big.excess_risk == pytest.approx(beyond * (1 + inf.terms["variance"]), rel=1e-3)
    finite = exact_risk(make_problem(a=2, d=8000, N=2000, gamma=0.1), method="recursion")
    assert inf.excess_risk == pytest.approx(finite.excess_risk + float(mpmath.zeta(2, 8001)), rel=1e-5)
    assert 0 < inf.error < 1e-6 * inf.excess_risk


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(spectrum=1 + 1e-13 * np.arange(30), N=1000, gamma=0.02),  # nearly degenerate eigenvalues
        dict(a=10, d=30, N=1000, gamma=0.3, data="additive:0.01"),  # mu + eps clusters at eps
        dict(a=10, d=19, N=370, gamma=0.5, data="additive:0.01", average="uniform"),
    ],
)
def test_spectral_engine_on_clustered_spectra(kwargs):
    p = make_problem(**kwargs)
    ref = exact_risk(p, method="recursion").excess_risk
    assert exact_risk(p, method="spectral").excess_risk == pytest.approx(ref, rel=1e-9)


def test_modes_slower_than_rounding_are_frozen_not_unstable():
    """a = 10: rates gamma mu ~ 1e-16 round 1 - gamma mu to 1; the step is still stable (it was refused)."""
    p = make_problem(a=10.0, d=27, N=400, B=2, gamma=0.01, data="multiplicative:0.1")
    r = exact_risk(p)
    assert np.isfinite(r.excess_risk) and r.max_stable_gamma > 0.01
    assert r.excess_risk == pytest.approx(exact_risk(p, method="recursion").excess_risk, rel=1e-10)
