"""Allocation: published optima, closed forms against brute force, exponents, precision trends, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scalinglaw.allocate import frontier, isoflop, isoloss, optimize_allocation
from scalinglaw.errors import BoundaryOptimumError, FlatOptimumError, ParameterError
from scalinglaw.laws.kumar import KumarLaw

C_CHINCHILLA = 5.76e23


@pytest.mark.parametrize("constants,expected", [("epoch", 18.0), ("hoffmann", 93.0)])
def test_chinchilla_tokens_per_parameter(constants, expected):
    """Besiroglu et al.: the optimal D/N at Chinchilla's compute moves from ~93 (Hoffmann) to ~18 (Epoch)."""
    a = optimize_allocation(f"chinchilla:{constants}", C_CHINCHILLA)
    assert a.data / a.size == pytest.approx(expected, rel=0.05)
    assert a.method == "closed" and a.check["rel_diff_size"] < 1e-5  # numeric optimum agrees


def test_kumar_joint_optimum_closed_vs_brute_force():
    """The closed form (P* = argmax f(P)/P, Chinchilla with A f^-alpha) against an independent brute-force grid."""
    law = KumarLaw()
    C = 1e22
    a = optimize_allocation("kumar", C)
    logN = np.linspace(8, 12, 401)
    P = np.linspace(4, 12, 161)
    LN, PP = np.meshgrid(logN, P, indexing="ij")
    N = 10**LN
    D = C / (6 / 16 * N * PP)
    loss = law(N=N, D=D, P=PP)
    i, j = np.unravel_index(np.argmin(loss), loss.shape)
    assert a.precision == pytest.approx(P[j], abs=0.06)  # grid spacing 0.05 bits
    assert math.log10(a.size) == pytest.approx(logN[i], abs=0.011)  # grid spacing 0.01 decades
    assert a.loss <= loss.min() + 1e-12


def test_kumar_precision_independent_of_compute():
    """N, D, P all free: P* does not depend on the compute budget (7-8 bits with the default convention)."""
    fr = frontier("kumar", np.logspace(18, 27, 40))
    assert np.ptp(fr.precision) < 1e-12
    assert 7.0 <= fr.precision[0] <= 8.0
    numeric = [optimize_allocation("kumar", c).check["numeric"]["P"] for c in (1e18, 1e22, 1e26)]
    assert np.ptp(numeric) < 1e-4 and numeric[0] == pytest.approx(fr.precision[0], abs=1e-4)


def test_sun_closed_precision_matches_numeric():
    a = optimize_allocation("sun", 1e23)
    assert a.check["rel_diff_precision"] < 1e-5 and a.check["rel_diff_loss"] < 1e-9
    assert 4 <= a.precision <= 8  # the paper: 4-8 bits over 1e21-1e31


@pytest.mark.parametrize("a", [1.5, 2.0, 3.0])
def test_regression_model_size_exponent(a):
    """M* ~ C^(1/(a+1)) (Lin et al.) from the numeric frontier of the sketched law, within 0.02, at compute
    1e16-1e30 (the log factor of (C/log C)^(1/(a+1)) bends the exponent by ~1/((a+1) ln N))."""
    fr = frontier("sketched", np.logspace(16, 30, 25), a=a, gamma=0.1)
    slope, se = fr.exponent("size")
    assert fr.method == "numeric"
    assert abs(slope - 1 / (a + 1)) < 0.02, (slope, se)


@pytest.mark.parametrize("a", [1.5, 2.0, 3.0])
def test_regression_closed_form_checks_numeric(a):
    """The Lambert-W first-order condition of the asymptotic law against the numeric optimum of the full law.

    The closed form drops the variance, 1-2.5% of the loss at these optima: its gradient moves the stationary
    point by a few percent in M (tolerance 10%). The loss is stationary there, so the closed form's loss differs
    at second order, about c delta^2 with c ~ 0.25 the relative curvature of the isoFLOP loss in ln M: < 1e-3.
    On top of that the law jumps where Zou's integer k* crosses an integer (the sketch leak moves by one
    direction's share, a relative (b-1)/k* of the bias at most), and the two points need not share k*."""
    from scalinglaw.allocate import allocation_model

    alloc = optimize_allocation("sketched", 1e14, a=a, gamma=0.1)
    assert alloc.method.startswith("numeric")
    assert alloc.terms["variance"] < 0.03 * alloc.loss
    assert alloc.check["rel_diff_size"] < 0.1
    n_eff = alloc.data / math.log2(alloc.data)
    k_star = math.floor(min(alloc.size, (math.e * 0.1 * n_eff) ** (1 / a)))  # B = 1, b = a
    assert alloc.check["rel_diff_loss"] < 1e-3 + (a - 1) / k_star
    # b > a: the variance sets the optimum, and the closed form says so instead of answering
    assert allocation_model("sketched", a=2.0, b=2.5, gamma=0.1).closed(1e14, "compute", {}) is None


@pytest.mark.parametrize("scheme", ["fp", "int"])
def test_regression_optimal_bits_grow_logarithmically(scheme):
    """Optimal bits against log C: increasing and close to a straight line (logarithmic growth). Reports the
    slope; the reconstruction (a-1)/(a+1) log4 C predicts 0.55 bits/decade at a = 2 (SPEC §7)."""
    fr = frontier("sketched-quantized", np.logspace(8, 18, 21), a=2.0, gamma=0.1, quantize=["data"], scheme=scheme)
    x = np.log10(fr.budgets)
    slope, intercept = np.polyfit(x, fr.precision, 1)
    print(f"{scheme}: optimal bits grow by {slope:.3f} per decade of compute")
    assert np.all(np.diff(fr.precision) > 0)
    assert slope > 0.1
    assert np.max(np.abs(fr.precision - (slope * x + intercept))) < 0.1 * (fr.precision.max() - fr.precision.min())


def test_named_formats_and_integer_bits():
    a = optimize_allocation("kumar", 1e22, formats=["int4", "int8", "fp8_e4m3", "bf16"])
    assert a.format in ("int8", "fp8_e4m3") and set(a.candidates) == {"int4", "int8", "fp8_e4m3", "bf16"}
    assert a.loss == min(c["loss"] for c in a.candidates.values())
    b = optimize_allocation("kumar", 1e22, integer_bits=True)
    assert b.precision == 7.0
    with pytest.raises(ParameterError, match="floating-point format"):
        optimize_allocation("sun", 1e22, formats=["int8"])


def test_fixed_variables_and_memory_budget():
    a = optimize_allocation("kumar", 1e22, fix={"P": 4})
    assert a.precision == 4 and a.fixed == {"P": 4}
    assert 6 / 16 * a.size * a.data * 4 == pytest.approx(1e22, rel=1e-9)
    m = optimize_allocation("kumar", 1e10, kind="memory", fix={"D": 1e11})
    assert m.size * m.precision == pytest.approx(1e10, rel=1e-9) and m.data == 1e11
    with pytest.raises(BoundaryOptimumError, match="memory budget does not limit D"):
        optimize_allocation("kumar", 1e10, kind="memory")


def test_flat_optimum_is_refused_with_range():
    with pytest.raises(FlatOptimumError, match="too flat to pin") as err:
        optimize_allocation("chinchilla:epoch", C_CHINCHILLA, flat_factor=1.5)
    assert err.value.high / err.value.low > 1.5
    a = optimize_allocation("chinchilla:epoch", C_CHINCHILLA)
    lo, hi = a.flat_range
    assert lo < a.size < hi


def test_dominant_term_reported():
    a = optimize_allocation("chinchilla:hoffmann", C_CHINCHILLA)
    assert a.dominant_term in ("model", "data") and a.dominant_term != "irreducible"


def test_frontier_vectorised_and_checked():
    fr = frontier("chinchilla:epoch-paper", np.logspace(18, 26, 100), check=True)
    assert fr.method == "closed" and np.allclose(fr.numeric_size, fr.size, rtol=1e-4)
    slope, _ = fr.exponent("size")
    law = fr.law
    assert law == "chinchilla"
    beta, alpha = 0.3658, 0.3478
    assert slope == pytest.approx(beta / (alpha + beta), rel=1e-9)


def test_isoflop_and_isoloss():
    curves = isoflop("kumar", [1e20, 1e22])
    for c in curves["curves"]:
        i = int(np.nanargmin(c["loss"]))
        assert c["size"][i] == pytest.approx(c["min_size"], rel=0.05)
    grid = isoloss("kumar", data=1e11, sizes=np.logspace(8, 11, 20), precisions=np.linspace(4, 16, 13))
    assert grid["loss"].shape == (13, 20)


def test_plots(tmp_path):
    pytest.importorskip("matplotlib")
    from scalinglaw import plot

    fr = frontier("chinchilla:epoch", np.logspace(18, 24, 20), check=True)
    out = plot.save(plot.plot_frontier(fr), str(tmp_path / "frontier.png"))
    curves = isoflop("kumar", [1e20, 1e22])
    plot.save(plot.plot_isoflop(curves), str(tmp_path / "isoflop.png"))
    grid = isoloss("kumar", data=1e11, sizes=np.logspace(8, 11, 30), precisions=np.linspace(4, 16, 20))
    plot.save(plot.plot_isoloss(grid, memory_budgets=[1e10]), str(tmp_path / "isoloss.png"))
    bits = frontier("sketched-quantized", np.logspace(8, 14, 8), quantize=["data"])
    plot.save(plot.plot_bits_vs_compute(bits), str(tmp_path / "bits.png"))
    for name in ("frontier", "isoflop", "isoloss", "bits"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    assert out.endswith("frontier.png")


def test_laws_without_allocation_are_refused():
    from scalinglaw.errors import UnsupportedConfigurationError

    with pytest.raises(UnsupportedConfigurationError, match="no model-size variable"):
        optimize_allocation("sgd", 1e10)
    with pytest.raises(ParameterError, match="--budget must be > 0"):
        optimize_allocation("kumar", -1)


def test_exact_engine_allocation_agrees_with_law_in_order_of_magnitude():
    """The exact engine as the objective (coarse grid) against the calibrated law's numeric optimum."""
    exact = optimize_allocation("exact", 1e6, a=2.0, gamma=0.1, quantize=["data"], scheme="int", flat_factor=1e9)
    law = optimize_allocation("sketched-quantized", 1e6, a=2.0, gamma=0.1, quantize=["data"], scheme="int",
                              flat_factor=1e9)
    assert exact.law == "exact" and exact.method.startswith("numeric")
    assert 1 / 3 < exact.size / law.size < 3
    assert abs(exact.precision - law.precision) <= 3
    assert exact.loss <= law.loss  # the law is a calibrated upper bound


@pytest.mark.parametrize("law,budget", [("sketched", 1e26), ("sketched", 1e30), ("kumar", 1e24)])
def test_optimum_beats_feasible_neighbours_at_small_losses(law, budget):
    """Every +-1% move of the size along the compute constraint (data rescaled, precision kept) loses.

    Losses of order 1e-7 once stopped L-BFGS-B at its first iterate (its ftol test is absolute below 1)."""
    from scalinglaw.allocate import allocation_model

    model = allocation_model(law)
    opt = optimize_allocation(model, budget)
    for f in (0.99, 1.01):
        size, data = opt.size * f, opt.data / f  # C = c * size * data * P stays fixed
        neighbour = model.terms(size, data, opt.precision)
        assert sum(neighbour.values()) > opt.loss, (f, opt.size, opt.loss)


def test_allocation_search_excludes_steps_the_law_refuses():
    """raw_loss (the vectorised search) and the law's own validation agree on the unstable region: with INT data
    at 2 bits and M = 1e6, M eps adds 1.8e6 to tr H^(q), and gamma = 0.5 cannot train it."""
    from scalinglaw.allocate import allocation_model

    model = allocation_model("sketched-quantized", quantize=["data"], scheme="int", gamma=0.5)
    assert np.isinf(model.raw_loss(np.array([1e6]), np.array([1e8]), np.array([2.0])))[0]
    with pytest.raises(ParameterError, match="gamma must be <"):
        model.terms(1e6, 1e8, 2.0)
    assert np.isfinite(model.raw_loss(np.array([100.0]), np.array([1e8]), np.array([12.0])))[0]
    assert np.isfinite(sum(model.terms(100.0, 1e8, 12.0).values()))


def test_named_formats_in_a_regression_law_are_labelled_surrogates():
    """A named format enters the sketched laws as its idealised epsilon: the result says so; Kumar's law takes the
    format's bits as its paper does, with no such label."""
    reg = optimize_allocation("sketched-quantized", 1e14, quantize=["data"], scheme="fp",
                              formats=["fp8_e4m3", "bf16"])
    assert reg.method.startswith("grid (named formats)") and "surrogate" in reg.method
    kumar = optimize_allocation("kumar", 1e22, formats=["int4", "int8", "bf16"])
    assert kumar.method == "grid (named formats)"
