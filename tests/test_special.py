"""Power-law sums (Hurwitz zeta with analytic continuation) against mpmath at high precision."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from scalinglaw.laws.special import Hyp2F1, PowerHead, PowerTail, hyp2f1, power_head, power_tail

mp.mp.dps = 40


def _em_reference(p: float, k: float) -> mp.mpf:
    """Euler-Maclaurin for zeta(p) - zeta(p, k+1) in mpmath, 40 digits, 30 shifted terms, 20 Bernoulli terms."""
    s = mp.mpf(p)

    def hurwitz(q: mp.mpf) -> mp.mpf:
        K = 30
        tot = mp.fsum((q + n) ** (-s) for n in range(K))
        x = q + K
        tot += x ** (1 - s) / (s - 1) + x ** (-s) / 2
        for j in range(1, 21):
            tot += mp.bernoulli(2 * j) / mp.factorial(2 * j) * mp.rf(s, 2 * j - 1) * x ** (-s - 2 * j + 1)
        return tot

    return hurwitz(mp.mpf(1)) - hurwitz(mp.mpf(k) + 1)


def ref_head(p: float, k: float) -> float:
    """References: mpmath's zeta where it is fast (p > 0, or moderate k), else an mpmath Euler-Maclaurin."""
    if p == 1:
        return float(mp.digamma(k + 1) + mp.euler)
    if p > 0 or k <= 1e4:
        return float(mp.zeta(p) - mp.zeta(p, k + 1))
    return float(_em_reference(p, k))


@pytest.mark.parametrize("p", [-3.7, -2.0, -1.0, -0.5, 0.0, 0.3, 0.999999, 1.0, 1.000001, 1.5, 2.0, 4.0, 9.5])
@pytest.mark.parametrize("k", [0.25, 1.0, 2.5, 17.0, 1000.0, 123456.0, 1e9, 1e15])
def test_power_head_matches_mpmath(p, k):
    """1e-12 relative; for growing terms (p < 0) summed over fewer than 10 indices, 1e-15 * 11^(1-p) absolute,
    the size of the Euler-Maclaurin intermediates (documented in power_head)."""
    got = power_head(p, k)
    abs_tol = 0.0 if (p >= 0 or k >= 10) else 1e-15 * 11 ** (1 - p)
    assert got == pytest.approx(ref_head(p, k), rel=1e-12, abs=abs_tol)


def test_power_head_faulhaber_negative_integers():
    """sum_{i<=k} i^2 = k(k+1)(2k+1)/6 exactly (independent closed form), up to k = 1e30."""
    for k in [3.0, 10.0, 1e6, 1e12, 1e30]:
        assert power_head(-2.0, k) == pytest.approx(k * (k + 1) * (2 * k + 1) / 6, rel=1e-13)
        assert power_head(-1.0, k) == pytest.approx(k * (k + 1) / 2, rel=1e-13)


@pytest.mark.parametrize("p", [1.1, 1.5, 2.0, 3.5])
@pytest.mark.parametrize("k", [0.0, 3.0, 1e4, 1e12, 1e30])
def test_power_tail_matches_mpmath(p, k):
    assert power_tail(p, k, np.inf) == pytest.approx(float(mp.zeta(p, k + 1)), rel=1e-12)
    d = 10 * k + 5
    assert power_tail(p, k, d) == pytest.approx(float(mp.zeta(p, k + 1) - mp.zeta(p, d + 1)), rel=1e-10)


def test_power_tail_finite_for_slow_decay_and_edges():
    assert power_tail(0.5, 10.0, 1000.0) == pytest.approx(sum(i**-0.5 for i in range(11, 1001)), rel=1e-12)
    assert power_tail(2.0, 50.0, 20.0) == 0.0
    assert np.isinf(power_tail(0.5, 10.0, np.inf))


def test_broadcasting_and_symbolic_evalf_agree():
    p = np.array([[-1.5], [0.5], [2.5]])
    k = np.array([1.0, 10.0, 1e6])
    got = power_head(p, k)
    assert got.shape == (3, 3)
    for i in range(3):
        for j in range(3):
            sym = PowerHead(sp.Float(p[i, 0]), sp.Float(k[j])).evalf(30)
            assert got[i, j] == pytest.approx(float(sym), rel=1e-12)
    assert float(PowerTail(2, 3, sp.oo).evalf(30)) == pytest.approx(math.pi**2 / 6 - 1 - 1 / 4 - 1 / 9, rel=1e-14)


def test_hyp2f1_integral_form():
    """int_0^M dx/(1+eps x^a) = M 2F1(1, 1/a; 1+1/a; -eps M^a) (the effective-model-size integral)."""
    a, eps, M = 2.0, 0.01, 300.0
    integral = float(mp.quad(lambda x: 1 / (1 + eps * x**a), [0, M]))
    assert M * hyp2f1(1, 1 / a, 1 + 1 / a, -eps * M**a) == pytest.approx(integral, rel=1e-12)
    assert float(Hyp2F1(1, sp.Rational(1, 2), sp.Rational(3, 2), -eps * M**a).evalf(30)) * M == pytest.approx(
        integral, rel=1e-12)


@pytest.mark.parametrize("a", [1.5, 2.0, 3.0])
@pytest.mark.parametrize("k", [0, 10, 1000, 10**6])
def test_logpower_tail_sum_infinite_d(a, k):
    """sum_{i>k} 1/(i log^a(1+i)): exact fsum to 1e7, then the mpmath integral in t = log x plus Euler-Maclaurin."""
    from scalinglaw.spectra import LogPowerLaw

    cut = 10**7
    i = np.arange(k + 1, cut + 1, dtype=np.float64)
    head = math.fsum(1.0 / (i * np.log1p(i) ** a))
    with mp.workdps(30):
        F = lambda x: 1 / (x * mp.log1p(x) ** a)  # noqa: E731
        tail = mp.quad(lambda t: 1 / mp.log1p(mp.exp(t)) ** a, [mp.log(cut + 1), mp.inf]) + F(cut + 1) / 2
        tail -= mp.diff(F, cut + 1) / 12
    assert LogPowerLaw(a=a, d=math.inf).tail_sum(k) == pytest.approx(head + float(tail), rel=1e-12)


def test_logpower_tail_sum_large_finite_d_matches_direct_sum():
    from scalinglaw.spectra import LogPowerLaw

    d = 3 * 10**6
    i = np.arange(1, d + 1, dtype=np.float64)
    f = 1.0 / (i * np.log1p(i) ** 2.0)
    for k in (10, 1000):
        assert LogPowerLaw(a=2.0, d=d).tail_sum(k) == pytest.approx(math.fsum(f[k:]), rel=1e-12)


@pytest.mark.parametrize("p", [0.0, 0.5, 0.999, 1.0, 1.001, 1.5, 2.0, 3.0, 10.0])
def test_power_head_small_k_full_relative_accuracy(p):
    """Real k down to 1e-10: zeta(p, 1) - zeta(p, 1 + k) (digamma at p = 1) at 40 digits, to 1e-13 relative."""
    for k in (1e-10, 1e-6, 1e-3, 0.5, 2.5, 7.0, 100.0, 1e6):
        with mp.workdps(40):
            ref = mp.digamma(1 + k) + mp.euler if p == 1.0 else mp.zeta(p, 1) - mp.zeta(p, 1 + mp.mpf(k))
        assert float(power_head(p, k)) == pytest.approx(float(ref), rel=1e-13), (p, k)


def test_power_head_overflow_is_inf():
    assert float(power_head(-20.0, 1e30)) == math.inf


@pytest.mark.parametrize("p", [0.5, 1.0001, 1.5, 2.0, 10.0])
@pytest.mark.parametrize("k,d", [(1e15, 1e15 + 1), (1e12, 1e12 + 1e6), (1e6, 2e6), (3.0, 1e6), (10.0, 1e15)])
def test_power_tail_finite_d_no_cancellation(p, k, d):
    """zeta(p, k+1) - zeta(p, d+1) at 50 digits, to 1e-13, including d - k << k (the zeta difference cancels)."""
    with mp.workdps(50):
        ref = mp.zeta(p, mp.mpf(k) + 1) - mp.zeta(p, mp.mpf(d) + 1)
    assert float(power_tail(p, k, d)) == pytest.approx(float(ref), rel=1e-13)


def test_quantized_trace_of_each_scheme():
    from scalinglaw.spectra import quantized_trace

    assert quantized_trace(2.0, 10, None, 0.3) == (2.0, 1.0)
    tr, top = quantized_trace(2.0, 10, "additive", 0.3)
    assert float(tr) == pytest.approx(2.0 + 10 * 0.3) and top == pytest.approx(1.3)
    assert quantized_trace(2.0, 10, "multiplicative", 0.3) == (pytest.approx(2.6), pytest.approx(1.3))
    assert float(quantized_trace(2.0, math.inf, "additive", 0.0)[0]) == 2.0  # d = inf at full precision
