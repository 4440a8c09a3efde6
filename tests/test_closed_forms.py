"""The symbolic layer against the exact engine: bounds, bands, slopes, effective sizes, precision."""

from __future__ import annotations

import itertools
import re
from importlib import resources

import mpmath as mp
import numpy as np
import pytest

from scalinglaw.calibration import CALIBRATED_LAWS, closed_terms, read_records
from scalinglaw.errors import ParameterError
from scalinglaw.exact import exact_risk
from scalinglaw.exact.engine import exact_risk_limit
from scalinglaw.laws.numeric import compile_expression
from scalinglaw.laws.registry import get_law
from scalinglaw.laws.regression import QuantizedSGDLaw, QuantizedSketchedLaw, SGDLaw, SketchedLaw
from scalinglaw.laws.special import power_head, sketch_approximation
from scalinglaw.predict import (
    closed_form_risk,
    effective_sizes,
    exact_effective_data_size,
    exact_effective_model_size,
    law_for_problem,
)
from scalinglaw.problem import make_problem
from scalinglaw.reduction import reduce_problem

RECORDS = read_records(str(resources.files("scalinglaw.data").joinpath("calibration_records.json")))


def test_zou_bound_with_paper_constants_holds():
    """Zou et al.'s recalled theorem with its own constants (no calibration) on every uniform-average problem of
    both designs (recorded exact risks; tests/test_calibration.py checks records against fresh engine runs)."""
    for which in ("calibration", "test"):
        for r in RECORDS["sgd"][which]:
            if r.point.kwargs["average"] == "uniform":
                assert sum(closed_terms(r, "paper").values()) >= r.exact_total, r.point.kwargs


def test_sketch_approximation_is_the_average_over_sketches():
    """The deterministic equivalent against the exact approximation error averaged over 32 sketches, including
    b > a + 1 (where sum_{i>M} i^-b, the old form, is far below) and M close to d."""
    for a, b, M, d in ((2.0, 2.0, 16, 400), (1.5, 3.0, 8, 300), (2.5, 4.0, 30, 200), (2.0, 1.4, 150, 200)):
        p = make_problem(a=a, d=d, M=M, N=100, gamma=1e-3, target="prior", b=b, sketch_draws=32,
                         schedule="geometric", average="last", sketch_seed=3)
        exact = np.mean([dp.excess_offset["sketch_approximation"] for dp in reduce_problem(p)])
        de = float(sketch_approximation(a, b, M, d))
        assert 0.85 <= exact / de <= 1.3, (a, b, M, d, exact / de)
    assert float(sketch_approximation(2.0, 2.0, 50, 50)) == 0.0


def test_bias_never_below_the_signal_not_yet_learned():
    """Horizon N gamma << 1: nothing is learned, and the calibrated bias is at least the whole signal (the real
    relaxation of k* dropped part of the top direction)."""
    signal = float(power_head(2.5, 300.0))
    assert float(get_law("sgd").evaluate("bias", N=10, gamma=0.01, a=2.0, b=2.5, d=300)) >= signal
    bias = get_law("sketched").evaluate("bias", M=300, N=16, gamma=0.01, a=2.0, b=2.5, d=300)
    assert float(bias) >= signal
    for name in CALIBRATED_LAWS:
        law = get_law(name, data="additive") if "quantized" in name else get_law(name)
        for c in ("c_bias", "c_approximation", "c_additive_error"):
            if c in law.constants:
                assert law.constants[c] >= 1.0, (name, c)


def test_tail_average_doubles_the_variance():
    kw = dict(N=1000, gamma=0.05, a=2.0, d=100)
    uni, tail = SGDLaw(average="uniform"), SGDLaw(average="tail")
    assert float(tail.evaluate("variance", **kw)) == pytest.approx(2 * float(uni.evaluate("variance", **kw)))
    # the tail window starts after T/2 steps: the learned directions' bias falls as (gamma lambda N)^-4, not ^-2
    assert float(tail.evaluate("bias", **kw)) < float(uni.evaluate("bias", **kw))
    with pytest.raises(ParameterError, match="average"):
        SGDLaw(average="last")


@pytest.mark.parametrize("test_inputs,lo", [("clean", 0.25), ("quantized", 0.5)])
def test_additive_approximation_band(test_inputs, lo):
    """[derived]: the split-at-k_eps form brackets the exact approximation error within [lo, 1]."""
    for a in (1.3, 2.0, 3.0):
        for d in (10, 300):
            for eps in (1e-4, 1e-2, 0.3):
                for target, b in (("ones", None), ("prior", a - 0.2)):
                    p = make_problem(a=a, d=d, N=10, gamma=1e-3, data=f"additive:{eps}", target=target, b=b,
                                     test_inputs=test_inputs)
                    law, inputs, _ = law_for_problem(p, "unit")
                    closed = float(law.evaluate("approximation", **inputs))
                    exact = exact_risk(p).terms["approximation"]
                    assert lo * closed <= exact * (1 + 1e-12) and exact <= closed * (1 + 1e-12), (a, d, eps, b)


def _slope(x, y):
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


@pytest.mark.parametrize("a", [1.5, 2.0])
def test_sketched_slope_in_model_size(a):
    """d log(R - sigma^2)/d log M -> -(a-1) at large N, for the closed form and the exact engine.

    Exact: the N -> inf limit of the excess risk (geometric decay removes bias and variance), averaged over 40
    sketches because a single sketch's approximation error fluctuates; tolerance 0.1 on the slope fitted over
    M in {16..128}. A spot check confirms that at N = 1e12 the exact risk is within 1% of that limit.
    """
    Ms = np.array([16, 32, 64, 128])
    exact, closed = [], []
    for M in Ms:
        p = make_problem(a=a, d="inf", M=int(M), N=10**12, gamma=0.1, schedule="geometric", average="last",
                         sketch_draws=40, d_proxy=16 * int(M), sigma2=1.0)
        exact.append(exact_risk_limit(p))
        closed.append(closed_form_risk(p).excess_risk)
    assert _slope(Ms, exact) == pytest.approx(-(a - 1), abs=0.1)
    assert _slope(Ms, closed) == pytest.approx(-(a - 1), abs=0.1)
    spot = make_problem(a=a, d="inf", M=32, N=10**12, gamma=0.1, schedule="geometric", average="last",
                        sketch_draws=4, d_proxy=512, sigma2=1.0)
    assert exact_risk(spot).excess_risk == pytest.approx(exact_risk_limit(spot), rel=0.01)


@pytest.mark.parametrize("a", [1.5, 2.0])
def test_sketched_slope_in_data_size(a):
    """d log(R - sigma^2)/d log N -> -(a-1)/a at large M (the M -> inf limit: plain regression, d = inf).

    The N-dependent part R(N) - R(inf) is fitted over N in {1e3, 1e4, 1e5}; N_eff = N/log2 N bends the slope
    by a factor (1 - 1/ln N), so the tolerance is 0.1.
    """
    Ns = np.array([1_000, 10_000, 100_000])
    exact, closed = [], []
    law = SketchedLaw()
    for N in Ns:
        p = make_problem(a=a, d="inf", N=int(N), gamma=0.1, schedule="geometric", average="last", d_proxy=4096,
                         sigma2=1.0)
        exact.append(exact_risk(p).excess_risk - exact_risk_limit(p))
        bd = law.breakdown(M=1e12, N=N, gamma=0.1, sigma2=1.0, a=a)
        closed.append(float(bd["bias"] + bd["variance"]))
    assert _slope(Ns, exact) == pytest.approx(-(a - 1) / a, abs=0.1)
    assert _slope(Ns, closed) == pytest.approx(-(a - 1) / a, abs=0.1)


def test_effective_model_size_multiplicative_is_M():
    p = make_problem(a=2, d="inf", M=64, N=1000, gamma=0.1, schedule="geometric", average="last",
                     data="multiplicative:0.05", d_proxy=512)
    assert exact_effective_model_size(p) == pytest.approx(64.0, rel=1e-12)
    assert closed_form_risk(p).effective_model_size == 64.0


def test_effective_model_size_additive_saturates():
    """Additive data noise: M_eff < M, and it saturates near eps^(-1/a) (pi/(a sin(pi/a)) eps^(-1/a))."""
    a, eps = 2.0, 1e-3
    plateau = np.pi / (a * np.sin(np.pi / a)) * eps ** (-1 / a)  # 49.7
    sizes_exact, sizes_closed = [], []
    for M in (32, 256, 1024):
        p = make_problem(a=a, d="inf", M=M, N=1000, gamma=0.05, schedule="geometric", average="last",
                         data=f"additive:{eps}", d_proxy=4 * M)
        sizes_exact.append(exact_effective_model_size(p))
        sizes_closed.append(closed_form_risk(p).effective_model_size)
    assert all(s < M for s, M in zip(sizes_exact, (32, 256, 1024), strict=True))
    assert sizes_closed[-1] == pytest.approx(plateau, rel=0.05)
    assert sizes_exact[-1] == pytest.approx(plateau, rel=0.2)  # sketch spectrum ~ i^-a up to constants
    assert sizes_exact[2] / sizes_exact[1] < 1.1  # saturated: 4x the model, < 10% more effective size


def test_effective_sizes_side_by_side():
    p = make_problem(a=2, d=100, N=2000, gamma=0.05, data="multiplicative:0.1", acts="multiplicative:0.2")
    sizes = effective_sizes(p).to_dict()
    assert sizes["effective_model_size"]["closed"] == 100
    assert sizes["effective_model_size"]["exact"] == pytest.approx(100, rel=1e-12)
    n_eff = sizes["effective_data_size"]
    assert 0 < n_eff["closed"] < 2000 and 0 < n_eff["exact"] < 2000  # multiplicative lowers N (SPEC §8 claim 6)
    assert 0 < sizes["effective_data_size_bound"] < 2000


def _estimation_error(p):
    return exact_risk(p).excess_risk - exact_risk_limit(p)


def test_effective_data_size_is_N_at_full_precision():
    p = make_problem(a=2, d=64, N=3000, gamma=0.05, schedule="geometric", average="last")
    n, note = exact_effective_data_size(p)
    assert note == "" and n == pytest.approx(3000, rel=1e-3)


@pytest.mark.parametrize("data", ["additive:0.05", "multiplicative:0.2"])
@pytest.mark.parametrize("other_step", [False, True])
def test_effective_data_size_solves_its_defining_equation(data, other_step):
    """SPEC 5.5: the full-precision estimation error at N' equals the quantized one at N (bracketed at N' +- 1%)."""
    q = make_problem(a=2, d=64, N=3000, gamma=0.04, data=data, schedule="geometric", average="last")
    ref = q.with_(data=None, gamma=0.07) if other_step else None
    n, note = exact_effective_data_size(q, reference=ref, rtol=1e-6)
    assert note == ""
    fp = (ref or q.with_(data=None))
    target = _estimation_error(q)
    assert _estimation_error(fp.with_(N=round(0.99 * n))) > target > _estimation_error(fp.with_(N=round(1.01 * n)))


def test_effective_data_size_validates_rtol():
    p = make_problem(a=2, d=16, N=100, gamma=0.05)
    with pytest.raises(ParameterError, match="rtol must be > 0"):
        exact_effective_data_size(p, rtol=0)


def test_extreme_sizes_agree_with_mpmath():
    """N = 1e30 and M = 1e15: finite, and 1e-10 relative to mpmath at 50 digits."""
    cases = [
        (SketchedLaw(), dict(M=1e15, N=1e30, gamma=0.1, sigma2=1.0, a=1.5)),
        (QuantizedSketchedLaw(data="additive", params="multiplicative"),
         dict(M=1e15, N=1e30, gamma=1e-10, a=2.0, eps_d=1e-6, eps_p=0.01)),  # tr H^(q) = 1e9: gamma < 2e-9
        (SGDLaw(), dict(N=1e30, gamma=0.1, a=2.0, d=1e15)),
        (QuantizedSGDLaw(data="multiplicative", acts="additive"), dict(N=1e30, gamma=0.05, a=2.0, eps_d=0.01,
                                                                        eps_a=0.1)),
    ]
    for law, inputs in cases:
        for term, value in law.breakdown(**inputs).items():
            assert np.isfinite(value), (law.name, term)
            ref = law.evaluate_mpmath(term, dps=50, **inputs)
            if ref == 0:
                assert value == 0
            else:
                assert float(value) == pytest.approx(float(ref), rel=1e-10), (law.name, term)


def test_compile_is_cached_and_broadcasts():
    law = get_law("sketched-quantized", data="additive")
    f1, f2 = law.compile(), law.compile()
    assert f1 is f2
    M = np.logspace(1, 4, 7)[:, None]
    N = np.logspace(3, 8, 5)[None, :]
    out = law(M=M, N=N, gamma=0.1, a=2.0, eps_d=1e-3)
    assert out.shape == (7, 5) and np.all(np.isfinite(out))
    with pytest.raises(ValueError, match="Sum"):
        import sympy as sp

        i, n = sp.symbols("i n", integer=True, positive=True)
        compile_expression("x", sp.Sum(i**-2, (i, 1, n)), [n])


def test_latex_and_symbols_documented():
    for name in CALIBRATED_LAWS:
        law = get_law(name, data="additive") if "quantized" in name else get_law(name)
        tex = law.latex()
        assert "\\sum" in tex and "k^*" in tex
        for v in law.variables:
            assert v.description
        for c in law.constant_names:
            assert c in law.constant_descriptions, (name, c)


def test_law_refuses_bad_input():
    with pytest.raises(ValueError, match="gamma must be <"):
        SGDLaw()(N=100, gamma=0.5, a=2.0)
    with pytest.raises(ValueError, match="a must be > 1"):
        SketchedLaw()(M=10, N=100, gamma=0.1, a=0.9, d=float("inf"))
    with pytest.raises(ValueError, match="N must be > 0"):
        SGDLaw()(N=-1, gamma=0.1, a=2.0)
    with pytest.raises(ValueError, match="must be finite"):
        SGDLaw()(N=float("inf"), gamma=0.1, a=2.0)


def test_closed_form_refuses_uncovered_setups():
    from scalinglaw.errors import UnsupportedConfigurationError

    with pytest.raises(UnsupportedConfigurationError, match="no closed form"):
        closed_form_risk(make_problem(a=2, d=50, N=100, gamma=0.1, average="last"))
    with pytest.raises(UnsupportedConfigurationError, match="power-law"):
        closed_form_risk(make_problem(a=2, d=50, N=100, gamma=0.1, spectrum="logpower"))


def test_mpmath_reference_matches_compiled_broadly():
    """Compiled NumPy against mpmath (30 digits) at random moderate inputs for every regression law."""
    rng = np.random.default_rng(5)
    for _ in range(5):
        a = float(rng.uniform(1.3, 3))
        inputs = dict(N=float(10 ** rng.uniform(2, 8)), gamma=0.01, a=a, d=float(rng.integers(10, 10**4)))
        for law in (SGDLaw(), QuantizedSGDLaw(data="additive", params="additive")):
            kw = inputs if law.name == "sgd" else {**inputs, "eps_d": 1e-5, "eps_p": 1e-3}
            mp.mp.dps = 30
            assert float(law(**kw)) == pytest.approx(float(law.evaluate_mpmath(dps=30, **kw)), rel=1e-10)


def test_additive_sgd_learns_every_direction_once_eps_covers_the_spectrum():
    """N gamma eps_d >= B makes k* = d exactly (no spurious tail from rounding (d^-a)^(-1/a) below d): the variance
    falls like 1/N and matches mpmath at 60 digits up to N = 1e30."""
    law = get_law("sgd-quantized", data="additive")
    kw = dict(gamma=0.06, a=1.5, d=1e4, eps_d=1e-12)
    values = [law.evaluate("variance", N=N, **kw) for N in (1e15, 1e20, 1e25, 1e30)]
    for v, N in zip(values, (1e15, 1e20, 1e25, 1e30), strict=True):
        assert v == pytest.approx(float(law.evaluate_mpmath("variance", dps=60, N=N, **kw)), rel=1e-10)
    assert all(v1 / v0 == pytest.approx(1e-5, rel=1e-3) for v0, v1 in itertools.pairwise(values))


@pytest.mark.parametrize("name,options,extra", [
    ("sgd-quantized", {"data": "additive"}, {"eps_d": 0.1, "B": 8, "d": 100.0}),
    ("sgd-quantized", {"data": "multiplicative"}, {"eps_d": 0.1, "B": 8, "d": 100.0}),
    ("sketched-quantized", {"data": "additive"}, {"eps_d": 1e-3, "M": 64.0}),
    ("sgd", {}, {"d": 1e6}),
])
def test_grid_evaluation_equals_scalar_calls_exactly(name, options, extra):
    """Broadcasting changes no summation order: a grid gives bit-identical values to scalar calls."""
    law = get_law(name, **options)
    rng = np.random.default_rng(7)
    N, gamma = np.logspace(1, 8, 25), rng.uniform(1e-4, 2e-3, 25)
    grid = law(N=N, gamma=gamma, a=2.0, **extra)
    scalar = np.array([law(N=N[i], gamma=gamma[i], a=2.0, **extra) for i in range(N.size)])
    assert np.array_equal(grid, scalar)


@pytest.mark.parametrize("d,B", [(20, 1), (20, 10), (200, 4), (1000, 64), (5, 1)])
def test_mean_square_step_limit_is_sufficient_and_not_far_below_the_exact_one(d, B):
    """The closed forms' step limit 2/(lambda_1 (1+1/B) + tr H/B) against the exact engine's: below, within 2x."""
    from scalinglaw.dynamics import mean_square_step_limit

    p = make_problem(a=2.0, d=d, N=100 * B, B=B, gamma=1e-3)
    exact = exact_risk(p).max_stable_gamma
    tr = float(np.sum(np.arange(1, d + 1, dtype=float) ** -2.0))
    limit = mean_square_step_limit(1.0, tr, B)
    assert 0.5 * exact < limit < exact


@pytest.mark.parametrize("argv,largest", [
    (dict(a=2, d=40, M=10, N=128, gamma=5.0, schedule="geometric", average="last"), "2/(lambda_1^(q) (1+1/B)"),
    (dict(a=2, d=20, N=100, B=10, gamma=2.0), "min(B/(alpha tr H^(q)), 2/(lambda_1^(q)"),
])
def test_closed_forms_refuse_unstable_steps(argv, largest):
    with pytest.raises(ParameterError, match=r"gamma must be < " + re.escape(largest)):
        closed_form_risk(make_problem(**argv))
