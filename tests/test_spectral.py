"""The closed-form phase propagation: divided differences of x^n, and the Taylor, spectral and stepping paths."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import scalinglaw.exact.spectral as spectral
from scalinglaw.dynamics import StepMap, moment_coefficients
from scalinglaw.exact.divdiff import divdiff1, divdiff2, divdiff_opitz, powc
from scalinglaw.problem import make_problem
from scalinglaw.reduction import reduce_problem


def _mp_divdiff(n: int, nodes: list[float]) -> float:
    """f[x_0..x_k] of x^n at 60 digits from the complements, by the recursive definition (distinct nodes)."""
    with mpmath.workdps(60):
        xs = [1 - mpmath.mpf(c) for c in nodes]
        table = [x**n for x in xs]
        for level in range(1, len(xs)):
            table = [(table[i + 1] - table[i]) / (xs[i + level] - xs[i]) for i in range(len(table) - 1)]
        return float(table[0])


def _mp_opitz(n: int, nodes: list[float]) -> float:
    """f[x_0..x_k] of x^n at 60 digits by the Opitz formula (J^n)_{0k}, J bidiagonal (confluent nodes allowed)."""
    with mpmath.workdps(60):
        size = len(nodes)
        J = mpmath.matrix(size, size)
        for i, c in enumerate(nodes):
            J[i, i] = 1 - mpmath.mpf(c)
            if i + 1 < size:
                J[i, i + 1] = 1
        return float((J**n)[0, size - 1])


@pytest.mark.parametrize("n", [7, 30, 10**4, 10**9])
@pytest.mark.parametrize("xa,xb", [(0.3, 0.31), (1e-9, 2e-9), (1e-12, 1.0000001e-12), (0.5, 1e-7), (1e-3, 1.5)])
def test_divdiff1_against_mpmath(n, xa, xb):
    ref = _mp_divdiff(n, [xa, xb])
    got = float(divdiff1(n, np.array(xa), np.array(xb)))
    assert got == pytest.approx(ref, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("n", [5, 30, 10**5, 10**9])
@pytest.mark.parametrize(
    "nodes", [(0.3, 0.2, 0.1), (1e-9, 1.3e-9, 2e-9), (1e-11, 1.000001e-11, 1.000002e-11), (0.5, 1e-8, 2e-8),
              (1e-4, 0.7, 1.2)],
)
def test_divdiff2_against_mpmath(n, nodes):
    ref = _mp_divdiff(n, list(nodes))
    got = float(divdiff2(n, *(np.array(v) for v in nodes)))
    assert got == pytest.approx(ref, rel=1e-11, abs=1e-300)


def test_divdiff_confluent_limits_and_opitz():
    n = 1000
    # f[a, a] = n a^(n-1); f[a, a, a] = C(n, 2) a^(n-2)
    assert float(divdiff1(n, np.array(1e-4), np.array(1e-4))) == pytest.approx(n * (1 - 1e-4) ** (n - 1), rel=1e-13)
    assert float(divdiff2(n, *(np.array(1e-4),) * 3)) == pytest.approx(n * (n - 1) / 2 * (1 - 1e-4) ** (n - 2),
                                                                       rel=1e-12)
    nodes = np.array([[0.02, 0.021, 0.5], [0.1, 0.1, 0.1], [1e-3, 0.3, 0.9]])
    ref = divdiff_opitz(n, nodes)
    got = divdiff2(n, nodes[:, 0], nodes[:, 1], nodes[:, 2])
    np.testing.assert_allclose(got, ref, rtol=1e-11)
    assert float(powc(np.array(2.5), 3)) == pytest.approx(-3.375, rel=1e-15)


def _step_map(gamma: float, d: int = 40, **quant: str) -> StepMap:
    p = make_problem(a=1.5, d=d, N=10, gamma=gamma, **quant)
    (dp,) = reduce_problem(p)
    mc = moment_coefficients(dp, p.quantizers, p.B)
    return StepMap.build(mc, gamma)


COUPLED = {"data": "multiplicative:0.1", "params": "multiplicative:0.05", "acts": "additive:0.01"}


@pytest.mark.parametrize("quant", [{}, COUPLED, {"data": "multiplicative-coord:0.2", "grads": "multiplicative:0.1"}])
@pytest.mark.parametrize("n", [3, 40, 150, 500, 4000])
def test_taylor_spectral_and_stepping_agree(monkeypatch, quant, n):
    """n * (largest rate) spans 0.05..60: the Taylor path (slow phases), the eigen path and plain stepping."""
    step = _step_map(0.01, **quant)
    rng = np.random.default_rng(n)
    d = step.kappa.size
    m0 = rng.normal(size=(2, d)) * 0.1
    a0 = m0**2 + rng.uniform(0, 0.1, size=(2, d))
    forcing = np.array([1.0, 0.0])  # with and without the constant
    ref = spectral._step_segment(step, m0, a0, n, forcing, True)
    nu = n * spectral.PhaseSolver(step).max_rate
    paths = {"spectral": 0.0}
    if nu <= 8.0:
        paths["taylor"] = np.inf
    for name, threshold in paths.items():
        monkeypatch.setattr(spectral, "SLOW_PHASE", threshold)
        got = spectral.PhaseSolver(step).segment(m0, a0, n, forcing)
        for key in ("a", "Sa", "Ea"):
            np.testing.assert_allclose(got[key], ref[key], rtol=1e-10, atol=1e-15 * np.max(np.abs(ref[key])),
                                       err_msg=f"{name} {key} nu={nu:.3g}")
        np.testing.assert_allclose(got["m"], ref["m"], rtol=1e-12)


def test_taylor_order_reaches_the_tolerance():
    for nu in (0.1, 1.0, 4.0, 8.0):
        q = spectral._taylor_order(nu)
        assert float(mpmath.mpf(nu) ** q / mpmath.factorial(q)) < 1e-20


def test_large_n_exact_risk_is_consistent_across_splits():
    """The closed form at N = 1e9 equals the composition of two half runs (semigroup property of the phase map)."""
    step = _step_map(0.05, **COUPLED)
    d = step.kappa.size
    m0 = np.full((1, d), -0.1)
    a0 = np.full((1, d), 0.01)
    solver = spectral.PhaseSolver(step)
    f = np.ones(1)
    whole = solver.segment(m0, a0, 10**9, f, sums=False)
    half = solver.segment(m0, a0, 5 * 10**8, f, sums=False)
    again = solver.segment(half["m"], half["a"], 5 * 10**8, f, sums=False)
    np.testing.assert_allclose(again["a"], whole["a"], rtol=1e-11)
    np.testing.assert_allclose(again["m"], whole["m"], rtol=1e-11, atol=1e-300)


@pytest.mark.parametrize("n", [10**3, 10**9, 10**20])
def test_resonant_pairs_sum_separable_paths_match_entrywise(n):
    """The separable series for slow pairs (slow rows by the binomial series, fast rows by the geometric one) against
    the entry-by-entry sum of second divided differences (each checked against mpmath above), on a spectrum that
    spans fast, borderline (n e near SLOW_PAIR + 1) and deep-slow modes."""
    rng = np.random.default_rng(11)
    e = np.concatenate([rng.uniform(0.01, 1.5, 8), rng.uniform(1.2, 2.5, 6) / n, 10.0 ** rng.uniform(-7, -0.4, 14) / n])
    k = e * (1.0 + rng.uniform(-1e-6, 1e-6, e.size))
    size = e.size
    U = rng.standard_normal((size, size))
    M1 = divdiff1(n, e[:, None], k[None, :])
    slow = np.flatnonzero(n * e <= spectral.SLOW_PAIR)
    jr = np.concatenate([np.repeat(slow, slow.size), np.arange(8)])
    mr = np.concatenate([np.tile(slow, slow.size), np.arange(8)])
    om = rng.standard_normal(jr.size)
    got = spectral._resonant_pairs_sum(n, U, e, k, M1, jr, mr, om)
    entries = divdiff2(n, np.repeat(e, jr.size), np.tile(k[jr], size), np.tile(e[mr], size)).reshape(size, jr.size)
    ref = (U[:, jr] * entries) @ om
    scale = np.abs(U[:, jr] * entries) @ np.abs(om)
    assert np.all(np.abs(got - ref) <= 1e-12 * scale)
    # one slow row and one fast row against 60-digit arithmetic (Opitz: repeated nodes allowed)
    for i in (slow[0], 3):
        mp_ref = sum(U[i, j] * _mp_opitz(n, [e[i], k[j], e[m]]) * o for j, m, o in zip(jr, mr, om, strict=True))
        assert got[i] == pytest.approx(mp_ref, abs=1e-12 * scale[i])
