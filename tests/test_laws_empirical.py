"""Empirical precision laws: Kumar, Sun, Chen, Chinchilla (SPEC §6; shared/theory/empirical-laws.md).

Every expected number is typed in from empirical-laws.md (Table 1/Table 2 constants, the [COMPUTED] test
vectors, and the facts the papers report), never produced by the code under test. Where a test needs an
optimum, it computes it here with an independent implementation (scipy minimisation of a loss written out in
the test). Tolerances follow the number of digits printed in the document: half a unit in the last place.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize, minimize_scalar

from scalinglaw.errors import ParameterError
from scalinglaw.laws import ConstantSet
from scalinglaw.laws.chen import ChenLaw
from scalinglaw.laws.chinchilla import ChinchillaLaw, compute_optimal
from scalinglaw.laws.kumar import (
    KumarLaw,
    compute_optimal_precision,
    critical_data_size,
    effective_parameter_factor,
    factor_table,
    training_compute,
)
from scalinglaw.laws.registry import get_law
from scalinglaw.laws.sun import SunLaw, gamma_rho, optimal_layout
from scalinglaw.laws.sun import critical_data_size as sun_critical_data_size

INF = math.inf

# --------------------------------------------------------------------------------- constants from the document
KUMAR_TABLE2 = {  # empirical-laws.md §2-§3 (App. K, Table 2)
    "A": 4.299e3,
    "alpha": 0.4965,
    "beta": 0.4965,
    "B": 1.806e4,
    "E": 2.7648,
    "gamma_w": 2.6745,
    "n_w": 0.3037,
    "gamma_a": 2.2102,
    "n_a": 1.4072,
    "gamma_kv": 0.9578,
    "n_kv": 2.4185,
    "C_T": 0.0598,
    "gamma_D": 0.5068,
    "gamma_N": 0.3439,
    "gamma_post": 0.5907,
    "b": 1.1277,
}
SUN_TABLE2 = {  # §7, Table 2
    "n": 69.2343,
    "alpha": 0.2368,
    "d": 68973.0621,
    "beta": 0.5162,
    "epsilon": 1.9061,
    "gamma": 11334.5197,
    "delta": 3.1926,
    "nu": 2.9543,
}
CHEN_BASE = {"E": 1.9279, "A": 237.7042, "alpha": 0.3022, "B": 596.2490, "beta": 0.3022}  # §8, Table 1
CHEN_FITS = {
    "w4a4": {"k": 0.1582, "gamma_N": 0.2186, "gamma_D": 0.0745, "gamma_G": 0.7779},
    "w4a16": {"k": 0.2522, "gamma_N": 0.3589, "gamma_D": 0.1610, "gamma_G": 0.3533},
    "w16a4": {"k": 0.1004, "gamma_N": 0.1816, "gamma_D": 0.0331, "gamma_G": 0.9812},
}
CHINCHILLA = {  # §9
    "hoffmann": {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
    "hoffmann-tex": {"E": 1.69337368, "A": 406.401018, "B": 410.722827, "alpha": 0.33917084, "beta": 0.2849083},
    # Epoch AI notebook (epoch-research/analyzing-chinchilla data_analysis.ipynb @ d8197ca6, cell iwbRuhmvXjxF)
    "epoch": {"E": 1.8171618171492772, "A": 477.63763882160083, "B": 2142.581585308292,
              "alpha": 0.34728724776990627, "beta": 0.3671529052596251},
    # Besiroglu et al. 2024, the paper's table
    "epoch-paper": {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658},
}
EPOCH_SE = {"E": 0.03, "A": 124.58, "B": 1293.23, "alpha": 0.02, "beta": 0.02}

LABELS = ("[SRC]", "[SRC-garbled]", "[RECON]", "[DERIVED]", "[COMPUTED]", "[SRC via secondary")

ALL_LAWS = [KumarLaw, SunLaw, ChenLaw, ChinchillaLaw]

#: One valid input per law, for the generic checks.
SAMPLE_INPUTS = {
    "kumar": [
        {"N": 30e6, "D": 1.5e9},
        {"N": 110e6, "D": 6e9, "P": 6.0},
        {"N": 220e6, "D": 26e9, "P_w": 4.0, "P_a": 8.0, "P_kv": 5.0, "P_post": 4.0},
    ],
    "sun": [{"N": 679e6, "D": 100e9, "E": 4.0, "M": 3.0, "B": 128.0}, {"N": 7e9, "D": 1e12, "E": 2, "M": 1, "B": 32}],
    "chen": [{"N": 595e6, "D": 100e9, "G": 128.0}, {"N": 74e6, "D": 10e9, "G": 32.0}],
    "chinchilla": [{"N": 70e9, "D": 1.4e12}, {"N": 1e8, "D": 2e9}],
}


# ================================================================================================ Kumar
def test_kumar_table2_constants_are_the_documented_ones():
    law = KumarLaw()
    assert law.constants.name == "table2"
    assert dict(law.constants) == KUMAR_TABLE2
    assert law.constants["alpha"] == law.constants["beta"]
    assert "App. K, Table 2" in law.constants.table
    assert "[SRC-garbled]" in law.constants.provenance and "[RECON]" in law.constants.provenance


# §6b: L = A N^-alpha + B D^-beta + E at BF16 (P = inf), bias convention.
KUMAR_LOSSES = {
    30e6: (4.1005, 3.9543, 3.8507, 3.7703, 3.7202),
    60e6: (3.8578, 3.7116, 3.6080, 3.5276, 3.4775),
    110e6: (3.7042, 3.5580, 3.4544, 3.3740, 3.3239),
    220e6: (3.5769, 3.4307, 3.3271, 3.2466, 3.1966),
}
KUMAR_D = (1.5e9, 3e9, 6e9, 13e9, 26e9)


@pytest.mark.parametrize("N", list(KUMAR_LOSSES))
def test_kumar_bf16_loss_table(N):
    law = KumarLaw()
    got = law(N=N, D=np.array(KUMAR_D))
    np.testing.assert_allclose(got, KUMAR_LOSSES[N], atol=5.1e-5)
    # explicit BF16 precisions give the same (P = inf means N_eff = N exactly)
    got_inf = law(N=N, D=np.array(KUMAR_D), P=INF, P_post=INF)
    np.testing.assert_array_equal(got, got_inf)


def test_kumar_plausible_dolma_losses_units():
    # §1 Units: L(220M, 26B) ~ 3.20 and L(30M, 1.5B) ~ 4.10 in raw units
    law = KumarLaw()
    assert law(N=220e6, D=26e9) == pytest.approx(3.20, abs=0.005)
    assert law(N=30e6, D=1.5e9) == pytest.approx(4.10, abs=0.005)


# §3 [COMPUTED] factor table: P -> (w, a, kv, product) with bias, and without bias.
FACTORS_BIAS = {
    3: (0.5587, -0.0511, 0.5102, -0.0146),
    4: (0.6964, 0.3314, 0.8276, 0.1910),
    6: (0.8563, 0.7295, 0.9786, 0.6113),
    8: (0.9320, 0.8906, 0.9974, 0.8278),
    12: (0.9847, 0.9821, 1.0000, 0.9671),
    16: (0.9966, 0.9971, 1.0000, 0.9937),
}
FACTORS_NO_BIAS = {
    3: (0.6743, 0.7427, 0.9564, 0.4789),
    4: (0.7759, 0.8363, 0.9846, 0.6389),
    6: (0.8939, 0.9338, 0.9981, 0.8331),
    8: (0.9498, 0.9732, 0.9998, 0.9241),
    12: (0.9887, 0.9956, 1.0000, 0.9844),
    16: (0.9975, 0.9993, 1.0000, 0.9968),
}


@pytest.mark.parametrize(("bias", "table"), [(True, FACTORS_BIAS), (False, FACTORS_NO_BIAS)])
def test_kumar_factor_table(bias, table):
    P = list(table)
    got = factor_table(P, bias=bias)
    expected = np.array([table[p] for p in P])
    np.testing.assert_array_equal(got["P"], P)
    for j, key in enumerate(("w", "a", "kv", "product")):
        np.testing.assert_allclose(got[key], expected[:, j], atol=5.1e-5, err_msg=key)


def test_kumar_effective_parameter_factor_matches_table_and_validates():
    # tied precisions inside the domain
    for P in (4, 6, 8, 12, 16):
        assert effective_parameter_factor(P, P, P) == pytest.approx(FACTORS_BIAS[P][3], abs=5.1e-5)
        assert effective_parameter_factor(P, P, P, bias=False) == pytest.approx(FACTORS_NO_BIAS[P][3], abs=5.1e-5)
    # weights only (the others in high precision)
    assert effective_parameter_factor(3.0) == pytest.approx(0.5587, abs=5.1e-5)
    assert effective_parameter_factor(INF, INF, INF) == 1.0
    with pytest.raises(ParameterError, match="P_a must"):
        effective_parameter_factor(8, 3, 8)


def test_kumar_more_than_4x_and_footnote_3():
    # "below 4 bits ... more than 4x larger": N_eff/N = 0.191 at 4 bits, a 5.2x penalty vs 16-bit (bias);
    # without biases 0.639, only 1.56x.
    f4, f16 = effective_parameter_factor(4, 4, 4), effective_parameter_factor(16, 16, 16)
    assert f4 == pytest.approx(0.191, abs=5e-4)
    assert f16 / f4 == pytest.approx(5.2, abs=0.05)
    assert f16 / f4 > 4
    g4, g16 = (effective_parameter_factor(p, p, p, bias=False) for p in (4, 16))
    assert g16 / g4 == pytest.approx(1.56, abs=0.005)
    # footnote 3: 2 N0 parameters in 8-bit beat N0 in 16-bit at equal N P: 2 x 0.8278 = 1.656 vs 0.9937
    assert 2 * effective_parameter_factor(8, 8, 8) == pytest.approx(1.656, abs=5e-4)
    assert 2 * effective_parameter_factor(8, 8, 8) > effective_parameter_factor(16, 16, 16)


# §6c: delta_PTQ (Eq. 2) at N = 30M; value without bias / with b.
DELTA_30M = {
    1.5e9: {3: (0.0447, 0.1380), 4: (0.0082, 0.0254), 5: (0.0015, 0.0047), 6: (0.0003, 0.0009)},
    26e9: {3: (0.1897, 0.5858), 4: (0.0349, 0.1078), 5: (0.0064, 0.0198), 6: (0.0012, 0.0036)},
}


@pytest.mark.parametrize("D", list(DELTA_30M))
def test_kumar_delta_ptq_table(D):
    with_bias, no_bias = KumarLaw(), KumarLaw(bias=False)
    for P_post, (nb, wb) in DELTA_30M[D].items():
        assert no_bias.evaluate("ptq", N=30e6, D=D, P_post=P_post) == pytest.approx(nb, abs=5.1e-5)
        assert with_bias.evaluate("ptq", N=30e6, D=D, P_post=P_post) == pytest.approx(wb, abs=5.1e-5)
    # P_post = 8: "<1e-4" at 1.5B (both conventions) and "~1e-4" at 26B (the larger, with-bias value; the
    # no-bias value is below it)
    assert no_bias.evaluate("ptq", N=30e6, D=1.5e9, P_post=8) < 1e-4
    assert with_bias.evaluate("ptq", N=30e6, D=1.5e9, P_post=8) < 1e-4
    assert with_bias.evaluate("ptq", N=30e6, D=26e9, P_post=8) == pytest.approx(1e-4, abs=5e-5)
    assert no_bias.evaluate("ptq", N=30e6, D=26e9, P_post=8) < 1e-4


def test_kumar_delta_ptq_at_220m():
    with_bias, no_bias = KumarLaw(), KumarLaw(bias=False)
    for P_post, (nb, wb) in {4: (0.0176, 0.0543), 3: (0.0956, 0.2952)}.items():
        assert no_bias.evaluate("ptq", N=220e6, D=26e9, P_post=P_post) == pytest.approx(nb, abs=5.1e-5)
        assert with_bias.evaluate("ptq", N=220e6, D=26e9, P_post=P_post) == pytest.approx(wb, abs=5.1e-5)
    # the bias multiplies delta by e^1.1277 = 3.09
    ratio = with_bias.evaluate("ptq", N=220e6, D=26e9, P_post=4) / no_bias.evaluate("ptq", N=220e6, D=26e9, P_post=4)
    assert ratio == pytest.approx(3.09, abs=0.005)


# §6d: D_crit (Eq. 13), without bias / with bias; three significant figures.
DCRIT = {
    30e6: {
        3: (1.64e10, 5.32e9),
        4: (8.86e10, 2.88e10),
        5: (4.79e11, 1.56e11),
        6: (2.59e12, 8.41e11),
        8: (7.56e13, 2.46e13),
    },
    1e9: {
        3: (5.45e10, 1.77e10),
        4: (2.95e11, 9.57e10),
        5: (1.59e12, 5.17e11),
        6: (8.61e12, 2.80e12),
        8: (2.51e14, 8.17e13),
    },
}


@pytest.mark.parametrize("N", list(DCRIT))
def test_kumar_critical_data_size_table(N):
    P = np.array(list(DCRIT[N]))
    nb = np.array([v[0] for v in DCRIT[N].values()])
    wb = np.array([v[1] for v in DCRIT[N].values()])
    np.testing.assert_allclose(critical_data_size(N, P, bias=False), nb, rtol=4e-3)
    np.testing.assert_allclose(critical_data_size(N, P), wb, rtol=4e-3)
    np.testing.assert_allclose(KumarLaw().critical_data_size(N, P), wb, rtol=4e-3)


def test_kumar_critical_data_size_is_where_more_data_starts_to_hurt():
    # at D_crit the post-PTQ loss is minimal in D (independent check by numeric minimisation)
    law = KumarLaw()
    d_crit = float(critical_data_size(30e6, 4))
    res = minimize_scalar(
        lambda logd: float(law(N=30e6, D=math.exp(logd), P_post=4)), bounds=(18, 30), method="bounded"
    )
    assert math.exp(res.x) == pytest.approx(d_crit, rel=1e-3)


def test_kumar_joint_compute_optimal_precision_is_7_to_8_bits():
    p_star = compute_optimal_precision()
    assert 7.0 <= p_star <= 8.0  # the paper's "7-8 bits"
    assert p_star == pytest.approx(7.00, abs=0.005)  # §4 [COMPUTED]
    assert compute_optimal_precision(bias=False) == pytest.approx(3.47, abs=0.005)


def test_kumar_joint_optimum_matches_brute_force_and_is_independent_of_compute():
    """Minimise the Eq. 5 loss over (N, P) with D = C/(6/16 N P), written out here from Table 2."""
    k = KUMAR_TABLE2

    def loss(logn, P, C):
        f = 1.0
        for x in ("w", "a", "kv"):
            f *= 1 - math.exp(-P / k[f"gamma_{x}"] + k[f"n_{x}"])
        N = math.exp(logn)
        D = C / (6 / 16 * N * P)
        return k["A"] * (N * f) ** -k["alpha"] + k["B"] * D ** -k["beta"] + k["E"]

    law = KumarLaw()
    for C in (1e20, 1e23):
        res = minimize(
            lambda v, C=C: loss(v[0], v[1], C),
            x0=[math.log(1e9), 6.0],
            method="Nelder-Mead",
            options={"xatol": 1e-9, "fatol": 1e-14, "maxiter": 20000},
        )
        N, D, P = law.compute_optimal(C)
        assert P == pytest.approx(res.x[1], abs=2e-3)
        assert N == pytest.approx(math.exp(res.x[0]), rel=2e-3)
        assert training_compute(N, D, P) == pytest.approx(C, rel=1e-12)
    # fixed precision: closed form against a 1-D minimisation over N
    C, P = 1e21, 4.0
    N_cf, _, _ = law.compute_optimal(C, P=P)
    res = minimize_scalar(lambda v: loss(v, P, C), bounds=(10, 40), method="bounded", options={"xatol": 1e-10})
    assert N_cf == pytest.approx(math.exp(res.x), rel=1e-4)
    # vectorised over C
    N_v, D_v, P_v = law.compute_optimal(np.array([1e20, 1e22, 1e24]))
    assert N_v.shape == D_v.shape == P_v.shape == (3,)
    assert np.all(np.diff(N_v) > 0) and np.all(np.diff(D_v) > 0)


def test_kumar_compute_model():
    # C = 6/16 N D P, which is Chinchilla's 6 N D at P = 16
    assert training_compute(1e9, 2e10, 16) == pytest.approx(6 * 1e9 * 2e10)
    assert training_compute(1e9, 2e10, 8) == pytest.approx(6 / 16 * 1e9 * 2e10 * 8)


def test_kumar_tied_and_separate_precisions_agree():
    law = KumarLaw()
    assert law(N=1e8, D=5e9, P=6) == law(N=1e8, D=5e9, P_w=6, P_a=6, P_kv=6)
    # N_eff enters only the model (and PTQ) term: model term = A (N f)^-alpha
    f = FACTORS_BIAS[6][3]
    k = KUMAR_TABLE2
    assert law.evaluate("model", N=1e8, D=5e9, P=6) == pytest.approx(k["A"] * (1e8 * f) ** -k["alpha"], rel=5e-4)


def test_kumar_robustification_factor():
    """Eq. 9 with a user C_w: delta is multiplied by 1 - exp(-C_w (P_w - P_post)); robustness=none is Eq. 2."""
    base, robust = KumarLaw(robustness="none"), KumarLaw(C_w=0.7, robustness="none")
    d0 = base.evaluate("ptq", N=30e6, D=26e9, P_w=8, P_post=4)
    d1 = robust.evaluate("ptq", N=30e6, D=26e9, P_w=8, P_post=4)
    assert d1 == pytest.approx(d0 * (1 - math.exp(-0.7 * 4)), rel=1e-12)
    # high-precision training: factor 1, Eq. 2 exactly (the 6c value with bias, 0.1078)
    assert robust.evaluate("ptq", N=30e6, D=26e9, P_post=4) == pytest.approx(0.1078, abs=5.1e-5)
    # no PTQ: the term is exactly 0 (no inf - inf)
    assert robust.evaluate("ptq", N=30e6, D=26e9, P_w=8) == 0.0
    total = robust(N=30e6, D=26e9, P_w=8)
    assert np.isfinite(total) and total == pytest.approx(KumarLaw(ptq=False)(N=30e6, D=26e9, P_w=8), rel=1e-14)
    # P_train = P_post gives 0; P_post above the training precision is refused
    assert robust.evaluate("ptq", N=30e6, D=26e9, P_w=5, P_post=5) == 0.0
    with pytest.raises(ParameterError, match="P_post must"):
        robust(N=30e6, D=26e9, P_w=4, P_post=6)


def test_kumar_default_robustness_is_one_over_gamma_and_unit_is_one():
    """Default C_x = 1/gamma_x per part (written out from Table 2); robustness=unit is C_x = 1 (Eq. 10)."""
    k = KUMAR_TABLE2
    eq2 = KumarLaw(robustness="none").evaluate("ptq", N=60e6, D=6e9, P_w=7, P_a=6, P_kv=5, P_post=4)
    gaps = {"w": 3.0, "a": 2.0, "kv": 1.0}
    noise = math.prod(1 - math.exp(-gaps[x] / k[f"gamma_{x}"]) for x in gaps)
    unit = math.prod(1 - math.exp(-gaps[x]) for x in gaps)
    values = {"N": 60e6, "D": 6e9, "P_w": 7, "P_a": 6, "P_kv": 5, "P_post": 4}
    assert KumarLaw().evaluate("ptq", **values) == pytest.approx(eq2 * noise, rel=1e-12)
    assert KumarLaw(robustness="unit").evaluate("ptq", **values) == pytest.approx(eq2 * unit, rel=1e-12)
    # an explicit constant overrides the rule for its part only
    mixed = math.prod(1 - math.exp(-gaps[x] * (2.0 if x == "w" else 1 / k[f"gamma_{x}"])) for x in gaps)
    assert KumarLaw(C_w=2.0).evaluate("ptq", **values) == pytest.approx(eq2 * mixed, rel=1e-12)
    with pytest.raises(ParameterError, match="robustness must be one of"):
        KumarLaw(robustness="strong")


# Kumar et al. §5 / Fig. 7 (Finding 3): at the paper's sizes, models trained in lower precision lose *less* to
# post-training quantization than BF16-trained ones. Training precisions 3-12 bits (tied, and weights only),
# PTQ to 3, 4, 5, 6 and 8 bits (P_train > P_post); sizes N in {30, 60, 110, 220}M, D in {1.5, ..., 26}B.
@pytest.mark.parametrize("tied", [True, False], ids=["tied", "weights-only"])
def test_kumar_default_reproduces_ptq_robustness_of_low_precision_training(tied):
    law = KumarLaw()
    N = np.array([30e6, 60e6, 110e6, 220e6])[:, None]
    D = np.array([1.5e9, 3e9, 6e9, 13e9, 26e9])[None, :]
    for P_post in (3, 4, 5, 6, 8):
        bf16 = law.evaluate("ptq", N=N, D=D, P_post=P_post)
        for P in (4, 5, 6, 7, 8, 10, 12):
            if P <= P_post:
                continue
            low = law.evaluate("ptq", N=N, D=D, P_post=P_post, **({"P": P} if tied else {"P_w": P}))
            assert np.all(low < bf16), (P, P_post)
    # the paper's illustration C_x = 1 and the conservative Eq. 2 do not reproduce it (why neither is the default)
    unit = KumarLaw(robustness="unit")
    assert unit.evaluate("ptq", N=1e8, D=1e10, P=7, P_post=3) > unit.evaluate("ptq", N=1e8, D=1e10, P_post=3)
    none = KumarLaw(robustness="none")
    assert none.evaluate("ptq", N=1e8, D=1e10, P=5, P_post=4) > none.evaluate("ptq", N=1e8, D=1e10, P_post=4)


def test_kumar_options():
    assert "ptq" not in KumarLaw(ptq=False).terms()
    assert set(KumarLaw().terms()) == {"model", "data", "irreducible", "ptq"}
    no_bias = KumarLaw(bias=False)
    assert not {"n_w", "n_a", "n_kv", "b"} & set(no_bias.constant_names)
    with pytest.raises(ParameterError, match="bias must"):
        KumarLaw(bias="yes")
    with pytest.raises(ParameterError, match="C_w must"):
        KumarLaw(C_w=-1)
    with pytest.raises(ParameterError, match="must be one of the options"):
        KumarLaw(gamma=3)
    assert get_law("kumar:fp-weights").constants["gamma_w"] == 2.8111
    assert get_law("kumar:fp-weights").constants["n_w"] == 0.1240


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "name", "extra"),
    [
        ({"P_a": 3}, "P_a", "1-exp(-P_a/gamma_a+n_a)"),
        ({"P_a": 2.5}, "P_a", "1-exp"),
        ({"P_a": 3.1}, "P_a", "<= 0"),
        ({"P": 3}, "P", "1-exp"),
        ({"P_kv": 3}, "P_kv", "fitted domain"),
        ({"P_w": 2.5}, "P_w", "fitted domain"),
        ({"N": -1e6}, "N", ">= 1"),
        ({"D": 0.0}, "D", ">= 1"),
        ({"P_post": -2}, "P_post", "> 0"),
        ({"N": float("nan")}, "N", "NaN"),
    ],
)
def test_kumar_bad_input_one_line_error(kwargs, name, extra):
    values = {"N": 1e8, "D": 1e9, **kwargs}
    with pytest.raises(ParameterError) as info:
        KumarLaw()(**values)
    msg = str(info.value)
    assert msg.startswith(f"{name} must"), msg
    assert extra in msg
    assert "\n" not in msg


def test_kumar_none_means_high_precision_and_no_ptq():
    law = KumarLaw()
    assert law(N=1e8, D=1e9, P=None, P_post=None) == law(N=1e8, D=1e9)


@settings(max_examples=60, deadline=None)
@given(
    logn=st.floats(math.log(1e7), math.log(1e12)),
    logd=st.floats(math.log(1e9), math.log(1e13)),
    p=st.floats(3.2, 30.0),
    dp=st.floats(0.05, 4.0),
)
def test_kumar_loss_falls_with_precision_and_parameters(logn, logd, p, dp):
    """Qualitative shape (SPEC §8.7 context): more bits or more parameters never raise the pre-PTQ loss."""
    law = KumarLaw(ptq=False)
    N, D = math.exp(logn), math.exp(logd)
    assert law(N=N, D=D, P=p + dp) < law(N=N, D=D, P=p)
    assert law(N=N, D=D, P=INF) < law(N=N, D=D, P=p)
    assert law(N=2 * N, D=D, P=p) < law(N=N, D=D, P=p)


def test_kumar_no_bias_domain_is_the_fitted_domain():
    law = KumarLaw(bias=False)
    assert np.isfinite(law(N=1e8, D=1e9, P_a=3.05))
    with pytest.raises(ParameterError, match="P_a must be > 3"):
        law(N=1e8, D=1e9, P_a=3)
    with pytest.raises(ParameterError, match="P must not be combined"):
        law(N=1e8, D=1e9, P=4, P_w=4)


# ================================================================================================ Sun
def test_sun_constants_and_gammas():
    law = SunLaw()
    assert dict(law.constants) == SUN_TABLE2
    assert gamma_rho() == pytest.approx(160.697, abs=5e-4)
    assert law.gamma_D() == pytest.approx(2.2433e-3, abs=5e-8)


def test_sun_optimal_layouts():
    lay = optimal_layout([4, 8, 16])
    # printed to two decimals in §7 (3.3449 is printed as 3.35, so allow one unit in the last place)
    np.testing.assert_allclose(lay.M_continuous, [1.42, 3.35, 7.19], atol=1e-2)
    assert list(zip(lay.E.tolist(), lay.M.tolist(), strict=True)) == [(2, 1), (4, 3), (8, 7)]  # E2M1, E4M3, E8M7
    np.testing.assert_array_equal(lay.E + lay.M + 1, [4, 8, 16])
    with pytest.raises(ParameterError, match="P must"):
        optimal_layout(4.5)


@pytest.mark.parametrize(
    ("E", "M", "computed", "paper"),
    [(8, 7, 1729.5e12, 1730e12), (4, 3, 27.3e12, 27e12), (2, 1, 0.393e12, 0.4e12)],
)
def test_sun_critical_data_size(E, M, computed, paper):
    got = float(sun_critical_data_size(1e9, E, M, 128))
    digits = {8: 0.05e12, 4: 0.05e12, 2: 0.0005e12}[E]
    assert got == pytest.approx(computed, abs=digits)
    assert got == pytest.approx(paper, rel=0.03)  # "about 1730T, 27T, 0.4T"
    # it is the loss minimum over D at fixed N (independent numeric check)
    law = SunLaw()
    res = minimize_scalar(
        lambda logd: float(law(N=1e9, D=math.exp(logd), E=E, M=M, B=128)),
        bounds=(20, 40),
        method="bounded",
        options={"xatol": 1e-9},
    )
    assert math.exp(res.x) == pytest.approx(got, rel=1e-3)


SUN_LOSSES = {  # (N, D): BF16 base, E4M3 B128, E2M1 B128, E1M1 B128
    (679e6, 100e9): (2.6118, 2.6123, 2.6504, 2.8091),
    (7e9, 1e12): (2.2730, 2.2739, 2.3460, 2.6457),
}


@pytest.mark.parametrize("ND", list(SUN_LOSSES))
def test_sun_sample_losses(ND):
    N, D = ND
    law = SunLaw()
    base, e4m3, e2m1, e1m1 = SUN_LOSSES[ND]
    assert law(N=N, D=D, E=INF, M=INF, B=128) == pytest.approx(base, abs=5.1e-5)
    b = law.breakdown(N=N, D=D, E=8, M=7, B=128)
    assert b["model"] + b["data"] + b["irreducible"] == pytest.approx(base, abs=5.1e-5)
    got = law(N=N, D=D, E=np.array([4, 2, 1]), M=np.array([3, 1, 1]), B=128)
    np.testing.assert_allclose(got, [e4m3, e2m1, e1m1], atol=5.1e-5)


def test_sun_optimal_precision_fixed_D():
    D = np.array([1e10, 1e11, 1e12, 1e13, 1e14, 1e15])
    np.testing.assert_allclose(
        SunLaw().optimal_precision_fixed_D(D, 128), [3.52, 4.27, 5.18, 6.28, 7.62, 9.25], atol=5e-3
    )
    # "4-8 bits for 0.1T-100T tokens"
    p = SunLaw().optimal_precision_fixed_D(np.array([1e11, 1e14]), 128)
    assert 4 <= p[0] and p[1] <= 8


def _sun_optimal_layout_loss(N, D, P, B=128):
    """Sun's loss with the optimal layout (rho_opt form), written out from Table 2 (no code under test)."""
    c = SUN_TABLE2
    s = c["delta"] + c["nu"]
    g_rho = c["gamma"] * c["delta"] ** c["delta"] * c["nu"] ** c["nu"] / s**s
    return (
        c["n"] * N ** -c["alpha"]
        + c["d"] * D ** -c["beta"]
        + c["epsilon"]
        + D ** c["beta"] * N ** -c["alpha"] * math.log2(B) / (g_rho * P**s)
    )


def test_sun_joint_and_fixed_N_optimal_precision_match_numeric_optimum():
    law = SunLaw()
    k = 6 / 16
    N = 1e9
    for C in (1e21, 1e25):
        # joint: minimise over (log N, P) with D = C / (k P N)
        def obj(v, C=C):
            N, P = math.exp(v[0]), v[1]
            return _sun_optimal_layout_loss(N, C / (k * P * N), P)

        res = minimize(
            obj,
            x0=[math.log(1e10), 6.0],
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-15, "maxiter": 40000},
        )
        assert float(law.optimal_precision(C)) == pytest.approx(res.x[1], rel=2e-3)
        # fixed N: minimise over P
        r1 = minimize_scalar(
            lambda P, C=C, N=N: _sun_optimal_layout_loss(N, C / (k * P * N), P),
            bounds=(1, 40),
            method="bounded",
            options={"xatol": 1e-10},
        )
        assert float(law.optimal_precision_fixed_N(C, N)) == pytest.approx(r1.x, rel=1e-4)
    # fixed D: minimise over P with N = C / (k P D)
    D, C = 1e12, 1e23
    r2 = minimize_scalar(
        lambda P: _sun_optimal_layout_loss(C / (k * P * D), D, P),
        bounds=(1, 40),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert float(law.optimal_precision_fixed_D(D)) == pytest.approx(r2.x, rel=1e-4)
    # the paper: 4-8 bits over 1e21-1e31 FLOPs
    p = law.optimal_precision(np.array([1e21, 1e26, 1e31]))
    assert 4 <= p[0] < p[1] < p[2] <= 8


def test_sun_domain_errors():
    law = SunLaw()
    for kwargs, name in [({"E": -1}, "E"), ({"M": -0.5}, "M"), ({"B": 0.5}, "B"), ({"N": 0}, "N")]:
        values = {"N": 1e9, "D": 1e11, "E": 4, "M": 3, "B": 128, **kwargs}
        with pytest.raises(ParameterError, match=f"^{name} must"):
            law(**values)
    with pytest.raises(ParameterError, match="B must"):
        law.critical_data_size(1e9, 4, 3, 1)
    assert law.evaluate("quantization", N=1e9, D=1e11, E=4, M=3, B=1) == 0.0


# ================================================================================================ Chen
def test_chen_constants():
    for name, fit in CHEN_FITS.items():
        assert dict(ChenLaw(name).constants) == {**CHEN_BASE, **fit}
    assert ChenLaw().constants.name == "w4a4"
    for name in ("w4a4-fc2-8bit", "w16a4-fc2-8bit"):
        cs = ChenLaw.constant_sets[name]
        assert cs.confidence.startswith("low") and "[SRC-garbled]" in cs.provenance


def test_chen_w4a4_delta_and_bf16_loss():
    law = ChenLaw("w4a4")
    b = law.breakdown(N=595e6, D=100e9, G=128)
    assert b["quantization"] == pytest.approx(0.0573, abs=5.1e-5)
    assert 0.04 <= b["quantization"] <= 0.12  # inside the plotted range
    assert b["model"] + b["data"] + b["irreducible"] == pytest.approx(2.7407, abs=5.1e-5)
    assert ChenLaw("bf16")(N=595e6, D=100e9, G=128) == pytest.approx(2.7407, abs=5.1e-5)
    assert law.evaluate("quantization", N=595e6, D=100e9, G=1) == 0.0  # log2 1 = 0


@pytest.mark.parametrize(
    ("d_over_n", "G", "computed", "paper"), [(100, 32, 1.65, 1.67), (1000, 32, 1.23, 1.20), (1000, 256, 1.65, 1.62)]
)
def test_chen_ratio_w16a4_over_w4a16(d_over_n, G, computed, paper):
    N = 595e6
    r = ChenLaw("w16a4").evaluate("quantization", N=N, D=d_over_n * N, G=G) / ChenLaw("w4a16").evaluate(
        "quantization", N=N, D=d_over_n * N, G=G
    )
    assert r == pytest.approx(computed, abs=5.1e-3)
    assert r == pytest.approx(paper, abs=0.05)


def test_chen_domain():
    with pytest.raises(ParameterError, match=r"^G must"):
        ChenLaw()(N=1e8, D=1e9, G=0.5)


# ================================================================================================ Chinchilla
def test_chinchilla_constant_sets():
    for name, values in CHINCHILLA.items():
        assert dict(ChinchillaLaw(name).constants) == values
    assert ChinchillaLaw().constants.name == "hoffmann"
    assert dict(ChinchillaLaw("epoch").constants.standard_errors) == EPOCH_SE
    assert dict(ChinchillaLaw("epoch-paper").constants.standard_errors) == EPOCH_SE


@pytest.mark.parametrize(("name", "ratio"), [("hoffmann", 93), ("epoch", 18), ("epoch-paper", 18)])
def test_chinchilla_optimal_tokens_per_parameter(name, ratio):
    N, D = compute_optimal(5.76e23, name)
    assert D / N == pytest.approx(ratio, abs=0.7)
    assert 6 * N * D == pytest.approx(5.76e23, rel=1e-12)


def test_chinchilla_compute_optimal_matches_numeric_and_is_vectorised():
    law = ChinchillaLaw("epoch")
    c = CHINCHILLA["epoch"]
    C = np.array([1e21, 5.76e23, 1e26])
    N, D = law.compute_optimal(C)
    assert N.shape == D.shape == (3,)
    for Ci, Ni in zip(C, N, strict=True):
        res = minimize_scalar(
            lambda v, Ci=Ci: c["A"] * math.exp(-c["alpha"] * v) + c["B"] * (Ci / (6 * math.exp(v))) ** -c["beta"],
            bounds=(10, 40),
            method="bounded",
            options={"xatol": 1e-11},
        )
        assert Ni == pytest.approx(math.exp(res.x), rel=1e-5)
    with pytest.raises(ParameterError, match="C must"):
        law.compute_optimal(-1.0)


# ================================================================================================ generic
def _laws_with_sets():
    for cls in ALL_LAWS:
        for name in cls.constant_sets:
            yield pytest.param(cls, name, id=f"{cls.name}:{name}")


@pytest.mark.parametrize(("cls", "set_name"), list(_laws_with_sets()))
def test_constant_sets_json_round_trip_and_provenance(cls, set_name):
    cs = cls.constant_sets[set_name]
    again = ConstantSet.from_json(cs.to_json())
    assert again == cs and again.to_dict() == cs.to_dict()
    assert json.loads(cs.to_json())["name"] == set_name
    assert "https://" in cs.source and cs.table and cs.confidence
    assert any(label in cs.provenance for label in LABELS), cs.provenance
    law = cls(again)
    for values in SAMPLE_INPUTS[cls.name][:1]:
        assert law(**values) == cls(set_name)(**values)
    with pytest.raises(TypeError):
        cs.values["x"] = 1.0  # immutable


@pytest.mark.parametrize("cls", ALL_LAWS, ids=lambda c: c.name)
def test_law_interface(cls):
    law = cls()
    assert law.name and law.title and law.provenance and law.variables and law.constant_descriptions
    assert set(law.constant_names) <= set(law.constant_descriptions)
    assert law.default_constants in law.constant_sets
    assert "Source" in cls.__doc__ and "[SRC]" in cls.__doc__
    tex = law.latex()
    assert isinstance(tex, str) and len(tex) > 20
    assert "alpha" in tex
    assert law.latex(substitute=True)
    assert law.compile() is law.compile()
    assert cls().compile() is law.compile()  # cached across instances with the same options
    assert set(law.describe()["terms"]) == set(law.terms())
    assert get_law(law.name).constants == law.constants


@pytest.mark.parametrize("cls", ALL_LAWS, ids=lambda c: c.name)
def test_breakdown_sums_to_total_and_mpmath_agrees(cls):
    law = cls()
    for values in SAMPLE_INPUTS[cls.name]:
        total = float(law(**values))
        parts = law.breakdown(**values)
        assert sum(float(v) for v in parts.values()) == pytest.approx(total, rel=1e-13)
        ref = law.evaluate_mpmath(dps=40, **values)
        assert abs(float(ref) - total) <= 1e-12 * abs(total)
        for term in parts:
            ref_t = float(law.evaluate_mpmath(term, dps=40, **values))
            assert abs(ref_t - float(parts[term])) <= 1e-12 * max(abs(ref_t), 1e-300)


def test_kumar_mpmath_with_robustification():
    law = KumarLaw(C_w=0.5, C_kv=1.5)
    values = {"N": 60e6, "D": 13e9, "P_w": 8, "P_a": 6, "P_kv": 7, "P_post": 4}
    assert abs(float(law.evaluate_mpmath(**values)) / float(law(**values)) - 1) < 1e-12


@pytest.mark.parametrize("cls", ALL_LAWS, ids=lambda c: c.name)
def test_broadcasting(cls):
    law = cls()
    values = dict(SAMPLE_INPUTS[cls.name][0])
    values["N"] = np.array([[1e8], [1e9]])
    values["D"] = np.array([1e10, 1e11, 1e12])
    out = law(**values)
    assert out.shape == (2, 3) and out.dtype == np.float64
    assert np.all(np.diff(out, axis=0) < 0)  # more parameters, lower loss


@pytest.mark.parametrize("cls", ALL_LAWS, ids=lambda c: c.name)
def test_user_supplied_constants(cls):
    default = cls()
    custom = {k: v * 1.01 for k, v in default.constants.items()}
    law = cls(custom)
    assert law.constants.provenance == "[user]"
    assert dict(law.constants) == custom
    values = SAMPLE_INPUTS[cls.name][0]
    assert law(**values) != default(**values)
    # an edited published set is flagged as user-modified
    edited = default.constants.with_values(E=2.0) if "E" in default.constants else None
    if edited is not None:
        assert edited.provenance == "[user]"
        assert cls(edited).constants["E"] == 2.0
    missing = dict(custom)
    missing.pop(next(iter(missing)))
    with pytest.raises(ParameterError, match="constants must define"):
        cls(missing)
    with pytest.raises(ParameterError, match="constants must be one of"):
        cls("no-such-set")


@pytest.mark.parametrize("cls", ALL_LAWS, ids=lambda c: c.name)
def test_negative_sizes_and_unknown_inputs(cls):
    law = cls()
    values = dict(SAMPLE_INPUTS[cls.name][0])
    for size in ("N", "D"):
        with pytest.raises(ParameterError) as info:
            law(**{**values, size: -5.0})
        assert str(info.value).startswith(f"{size} must")
    with pytest.raises(ParameterError, match="must be one of the law's inputs"):
        law(**values, Q=1.0)
    with pytest.raises(ParameterError, match="N must be given"):
        law(**{k: v for k, v in values.items() if k != "N"})


def test_kumar_mpmath_with_robustification_and_no_ptq():
    """C_x set and P_post omitted (no PTQ): the reference evaluates (it once tripped the P_post <= P_x check)."""
    law = KumarLaw(C_w=1.0)
    values = {"N": 1e9, "D": 1e11, "P": 8}
    assert abs(float(law.evaluate_mpmath(**values)) / float(law(**values)) - 1) < 1e-12
    for term, value in law.breakdown(**values).items():
        assert float(law.evaluate_mpmath(term, **values)) == pytest.approx(float(value), rel=1e-12, abs=1e-300)
