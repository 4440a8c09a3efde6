"""Fitting (Chinchilla approach 3 as refined by Besiroglu et al.): CSV input, recovery, bootstrap, errors.

The true constants of the recovery tests are typed in from empirical-laws.md (Epoch refit, §9; Kumar Table 2,
§2-§3); the simulated losses are computed with an independent implementation of each law written out here.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from scalinglaw.errors import ParameterError
from scalinglaw.laws import ConstantSet
from scalinglaw.laws.chen import ChenLaw
from scalinglaw.laws.fit import (
    EXAMPLE_COMMENTS,
    FitResult,
    example_path,
    example_runs,
    fit,
    format_runs,
    read_runs,
)
from scalinglaw.laws.kumar import KumarLaw

INF = math.inf

EPOCH = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
KUMAR = {
    "A": 4.299e3,
    "alpha": 0.4965,
    "B": 1.806e4,
    "E": 2.7648,
    "gamma_w": 2.6745,
    "n_w": 0.3037,
    "gamma_a": 2.2102,
    "n_a": 1.4072,
    "gamma_kv": 0.9578,
    "n_kv": 2.4185,
}


def chinchilla_loss(N, D, c=EPOCH):
    return c["E"] + c["A"] * N ** -c["alpha"] + c["B"] * D ** -c["beta"]


def kumar_loss(N, D, P_w, P_a, P_kv, c=KUMAR):
    f = np.ones_like(N)
    for x, P in (("w", P_w), ("a", P_a), ("kv", P_kv)):
        f = f * (1 - np.exp(-P / c[f"gamma_{x}"] + c[f"n_{x}"]))
    return c["A"] * (N * f) ** -c["alpha"] + c["B"] * D ** -c["alpha"] + c["E"]


# ================================================================================================ read_runs
GOOD = """# a comment
N,D,P,loss

3e7,1.5e9,inf,4.10
6e7,3e9,8,3.80
1.1e8,6e9,4,3.90
"""


def test_read_runs_parses_comments_blank_lines_and_inf(tmp_path):
    runs = read_runs(io.StringIO(GOOD))
    assert list(runs) == ["N", "D", "P", "loss"]
    np.testing.assert_array_equal(runs["P"], [INF, 8, 4])
    np.testing.assert_array_equal(runs["N"], [3e7, 6e7, 1.1e8])
    path = tmp_path / "runs.csv"
    path.write_text(GOOD)
    for source in (path, str(path)):
        again = read_runs(source, law="kumar")
        assert all(np.array_equal(again[k], runs[k]) for k in runs)


@pytest.mark.parametrize(
    ("text", "law", "fragments"),
    [
        ("N,D,loss\n1e8,abc,3.1\n", None, ["line 2", "column 'D'", "must", "abc"]),
        ("N,D,loss\n1e8,1e9,3.1\n1e8,,3.0\n", None, ["line 3", "column 'D'", "empty"]),
        ("N,D,loss\n-1e8,1e9,3.1\n", None, ["line 2", "column 'N'", "positive"]),
        ("N,D,loss\n1e8,1e9,0\n", None, ["line 2", "column 'loss'", "positive"]),
        ("N,D,loss\ninf,1e9,3\n", None, ["line 2", "column 'N'", "finite"]),
        ("N,D,loss\n1e8,1e9,nan\n", None, ["line 2", "column 'loss'"]),
        ("N,D,loss\n1e8,1e9\n", None, ["line 2", "3 comma-separated fields"]),
        ("# c\nN,D,Q,loss\n1,1,1,1\n", None, ["line 2", "column 'Q'", "must be a column"]),
        ("N,D\n1e8,1e9\n", None, ["line 1", "'loss'"]),
        ("N,N,D,loss\n1,1,1,1\n", None, ["line 1", "column 'N'", "only once"]),
        ("N,D,loss\n1e8,1e9,3.1\n", "kumar", ["line 1", "P or P_w, P_a, P_kv", "kumar"]),
        ("N,D,G,loss\n1e8,1e9,32,3.1\n", "kumar", ["line 1", "column 'G'", "law kumar"]),
        ("N,D,P,loss\n1e8,1e9,8,3.1\n1e8,1e9,3,3.5\n", "kumar", ["line 3", "'P'", "1-exp"]),
        ("N,D,P_w,P_a,P_kv,loss\n1e8,1e9,8,3,8,3.1\n", "kumar", ["line 2", "'P_a'", "must"]),
        ("N,D,E,M,B,loss\n1e8,1e9,4,-1,128,3.1\n", "sun", ["line 2", "column 'M'", "non-negative"]),
        ("N,D,G,loss\n1e8,1e9,0.5,3.1\n", "chen", ["line 2", "column 'G'", ">= 1"]),
        ("# only comments\n\n", None, ["line 1", "header"]),
        ("N,D,loss\n", None, ["at least one run"]),
    ],
)
def test_read_runs_errors_name_line_and_column(text, law, fragments):
    with pytest.raises(ParameterError) as info:
        read_runs(io.StringIO(text), law=law)
    msg = str(info.value)
    assert "must" in msg and "\n" not in msg
    for frag in fragments:
        assert frag in msg, msg


def test_read_runs_missing_file(tmp_path):
    with pytest.raises(ParameterError, match="runs file must be a readable file"):
        read_runs(tmp_path / "nope.csv")


# ================================================================================================ example
def test_shipped_example_equals_its_generator():
    """The shipped CSV is exactly the output of example_runs(), so it cannot drift from its documentation."""
    shipped = example_path().read_text(encoding="utf-8")
    assert shipped == format_runs(example_runs(), EXAMPLE_COMMENTS)
    runs = read_runs(io.StringIO(shipped), law="kumar")
    assert list(runs) == ["N", "D", "P_w", "P_a", "P_kv", "loss"]
    assert runs["loss"].size == 40
    # small noise around the Table 2 law (sigma = 0.005 in log space)
    clean = kumar_loss(runs["N"], runs["D"], runs["P_w"], runs["P_a"], runs["P_kv"])
    resid = np.log(runs["loss"] / clean)
    assert np.max(np.abs(resid)) < 5 * 0.005
    assert 0.5 * 0.005 < np.std(resid) < 2 * 0.005


def test_fit_runs_on_shipped_example_and_recovers_sensible_values():
    result = fit("kumar", read_runs(example_path(), law="kumar"), n_boot=40, seed=1)
    assert isinstance(result, FitResult)
    assert result.n_runs == 40 and result.converged
    c = result.constants
    assert c["alpha"] == pytest.approx(KUMAR["alpha"], abs=0.03)
    assert c["beta"] == c["alpha"]  # tied
    assert c["E"] == pytest.approx(KUMAR["E"], abs=0.06)
    for g in ("gamma_w", "gamma_a", "gamma_kv"):
        assert c[g] == pytest.approx(KUMAR[g], rel=0.1)
    for fixed in ("n_w", "n_a", "n_kv", "C_T", "gamma_post", "b"):
        assert c[fixed] == KumarLaw().constants[fixed]
    assert result.rms_log_residual < 0.01
    # report and dict
    report = result.report()
    assert "[[Fit Statistics]]" in report and "gamma_kv" in report and "(tied to alpha)" in report
    d = json.loads(json.dumps(result.to_dict()))
    assert d["constants"]["provenance"] == "[fit]" and d["n_runs"] == 40
    assert set(d["ci"]) == {"A", "B", "E", "alpha", "beta", "gamma_w", "gamma_a", "gamma_kv"}
    # the fitted set is a ConstantSet usable by the law, and round-trips through JSON
    assert c.name == "fit" and c.provenance == "[fit]"
    assert set(c.standard_errors) == set(result.ci)
    assert ConstantSet.from_json(c.to_json()) == c
    assert np.isfinite(KumarLaw(c)(N=1e9, D=2e10, P=6))
    # a path works as well
    again = fit("kumar", str(example_path()), n_boot=0)
    assert again.constants["alpha"] == pytest.approx(c["alpha"], rel=1e-6)


# ================================================================================================ recovery
def test_recovery_chinchilla_epoch():
    """Simulate from the Epoch refit, fit, and check the truth lies in the bootstrap intervals.

    Coverage logic: each 99% percentile interval covers its true value with probability about 0.99, so all five
    together do with probability at least 1 - 5 x 0.01 = 0.95 (Bonferroni), whatever their correlation. The
    seed is fixed, so the test is deterministic; a failure means a change in the fitter, not bad luck. The
    point estimates must also be close: the well-determined constants (E, alpha, beta) within 3 bootstrap SE
    and within absolute bounds, A and B within factors of 2 and 4, and the loss predicted at Chinchilla scale
    within 0.5%.
    """
    N = np.geomspace(5e7, 1.6e10, 10)
    D = np.geomspace(5e9, 5e11, 10)
    NN, DD = (a.ravel() for a in np.meshgrid(N, D))
    rng = np.random.default_rng(2024)
    loss = chinchilla_loss(NN, DD) * np.exp(0.005 * rng.standard_normal(NN.size))
    result = fit("chinchilla", {"N": NN, "D": DD, "loss": loss}, n_boot=100, seed=7, level=0.99)
    assert result.converged
    for name, true in EPOCH.items():
        lo, hi = result.ci[name]
        assert lo <= true <= hi, (name, true, lo, hi)
    est = result.constants
    for name, tol in (("E", 0.05), ("alpha", 0.03), ("beta", 0.05)):
        assert abs(est[name] - EPOCH[name]) < min(tol, 3 * est.standard_errors[name]), name
    assert abs(math.log(est["A"] / EPOCH["A"])) < math.log(2)
    assert abs(math.log(est["B"] / EPOCH["B"])) < math.log(4)
    pred = chinchilla_loss(7e10, 1.4e12, est)
    assert pred == pytest.approx(chinchilla_loss(7e10, 1.4e12), rel=5e-3)


def test_recovery_kumar_table2():
    """Simulate Kumar-style runs from Table 2 (bias convention), fit the seven default constants.

    Same coverage logic as the Chinchilla test: seven 99% intervals cover jointly with probability >= 0.93
    (Bonferroni); the seed is fixed. Point estimates: alpha within 0.02, E within 0.04, the gammas within 5%.
    """
    configs = [
        (INF, INF, INF),
        (4, 4, 4),
        (5, 5, 5),
        (6, 6, 6),
        (8, 8, 8),
        (3, INF, INF),
        (INF, 4, INF),
        (INF, INF, 4),
        (INF, 5, INF),
        (INF, INF, 5),
    ]
    rows = np.array(
        [(n, d, *cfg) for n in (30e6, 60e6, 110e6, 220e6) for d in (1.5e9, 3e9, 6e9, 13e9, 26e9) for cfg in configs]
    )
    runs = {"N": rows[:, 0], "D": rows[:, 1], "P_w": rows[:, 2], "P_a": rows[:, 3], "P_kv": rows[:, 4]}
    rng = np.random.default_rng(11)
    clean = kumar_loss(**runs)
    runs["loss"] = clean * np.exp(0.005 * rng.standard_normal(clean.size))
    result = fit("kumar", runs, n_boot=100, seed=3, level=0.99)
    truth = {k: KUMAR[k] for k in ("A", "B", "E", "alpha", "gamma_w", "gamma_a", "gamma_kv")}
    truth["beta"] = KUMAR["alpha"]
    for name, true in truth.items():
        lo, hi = result.ci[name]
        assert lo <= true <= hi, (name, true, lo, hi)
    est = result.constants
    assert est["alpha"] == pytest.approx(KUMAR["alpha"], abs=0.02)
    assert est["E"] == pytest.approx(KUMAR["E"], abs=0.04)
    for g in ("gamma_w", "gamma_a", "gamma_kv"):
        assert est[g] == pytest.approx(KUMAR[g], rel=0.05)


# ================================================================================================ options
def _small_chinchilla_runs(seed=0):
    N = np.geomspace(1e8, 1e10, 6)
    D = np.geomspace(1e10, 1e12, 6)
    NN, DD = (a.ravel() for a in np.meshgrid(N, D))
    rng = np.random.default_rng(seed)
    return {"N": NN, "D": DD, "loss": chinchilla_loss(NN, DD) * np.exp(0.003 * rng.standard_normal(NN.size))}


def test_fit_free_subset_tie_and_reproducible_bootstrap():
    runs = _small_chinchilla_runs()
    a = fit("chinchilla:epoch-paper", runs, free=["E", "alpha", "beta"], n_boot=20, seed=5)
    b = fit("chinchilla:epoch-paper", runs, free=["E", "alpha", "beta"], n_boot=20, seed=5)
    assert a.ci == b.ci and a.constants == b.constants
    assert a.constants["A"] == EPOCH["A"] and a.fixed == ("A", "B")
    tied = fit("chinchilla:epoch-paper", runs, free=["E", "alpha"], tie={"beta": "alpha"}, n_boot=0)
    assert tied.constants["beta"] == tied.constants["alpha"] and tied.tied == {"beta": "alpha"}
    assert math.isnan(tied.ci["alpha"][0])  # no bootstrap, no interval
    grid = fit("chinchilla:epoch-paper", runs, free=["E"], init_grid={"E": [1.0, 2.0, 3.0]}, n_boot=0, n_starts=1)
    assert grid.n_grid == 3 and grid.n_starts == 1


def test_fit_a_law_instance_with_options_and_chen():
    runs = _small_chinchilla_runs()
    law = ChenLaw("w4a4")
    G = np.where(np.arange(runs["N"].size) % 2 == 0, 32.0, 256.0)
    truth = law(N=runs["N"], D=runs["D"], G=G)
    result = fit(law, {"N": runs["N"], "D": runs["D"], "G": G, "loss": truth}, free=["k", "gamma_G"], n_boot=0)
    assert result.constants["k"] == pytest.approx(0.1582, rel=1e-3)
    assert result.constants["gamma_G"] == pytest.approx(0.7779, rel=1e-3)
    no_bias = KumarLaw(bias=False)
    runs_k = {"N": np.repeat([3e7, 1e8, 3e8], 4), "D": np.tile([1e9, 3e9, 1e10, 3e10], 3)}
    runs_k["P"] = np.tile([4.0, 6.0, 8.0, INF], 3)
    runs_k["loss"] = no_bias(**runs_k)
    fitted = fit(no_bias, runs_k, free=["gamma_w"], n_boot=0)
    assert fitted.constants["gamma_w"] == pytest.approx(2.6745, rel=1e-3)


def test_fit_sun_quantization_constants_from_noiseless_runs():
    """Sun's law (Table 2 constants typed in here), fitting gamma, delta, nu with the others fixed."""
    from scalinglaw.laws.sun import SunLaw

    c = {"n": 69.2343, "alpha": 0.2368, "d": 68973.0621, "beta": 0.5162, "epsilon": 1.9061}
    truth = {"gamma": 11334.5197, "delta": 3.1926, "nu": 2.9543}
    layouts = [(INF, INF), (4, 3), (2, 1), (1, 1), (3, 2), (5, 2)]
    rows = np.array([(n, d, e, m) for n in (41e6, 154e6, 679e6) for d in (10e9, 100e9) for e, m in layouts])
    N, D, E, M = rows.T
    quant = np.where(
        np.isinf(E),
        0.0,
        D ** c["beta"]
        / N ** c["alpha"]
        * np.log2(128)
        / (truth["gamma"] * (E + 0.5) ** truth["delta"] * (M + 0.5) ** truth["nu"]),
    )
    loss = c["n"] / N ** c["alpha"] + c["d"] / D ** c["beta"] + c["epsilon"] + quant
    law = SunLaw({**c, "gamma": 1e3, "delta": 1.0, "nu": 1.0})  # wrong values for the free constants
    result = fit(law, {"N": N, "D": D, "E": E, "M": M, "B": 128.0 + 0 * N, "loss": loss}, free=list(truth), n_boot=0)
    for name, value in truth.items():
        assert result.constants[name] == pytest.approx(value, rel=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"free": ["Q"]}, "free must name constants"),
        ({"free": ["E", "E"]}, "free must list each constant once"),
        ({"free": []}, "free must name at least one"),
        ({"tie": {"beta": "gamma"}}, "tie must map"),
        ({"init_grid": {"Q": [1.0]}}, "init_grid must name free constants"),
        ({"init_grid": {"A": [-1.0]}}, "init_grid['A'] must be > 0"),
        ({"n_boot": -1}, "n_boot must"),
        ({"level": 1.5}, "level must"),
        ({"huber_delta": 0}, "huber_delta must"),
    ],
)
def test_fit_bad_options(kwargs, fragment):
    with pytest.raises(ParameterError) as info:
        fit("chinchilla", _small_chinchilla_runs(), **{"n_boot": 0, **kwargs})
    assert fragment in str(info.value)


def test_fit_bad_runs():
    runs = _small_chinchilla_runs()
    with pytest.raises(ParameterError, match="runs must have a 'loss' column"):
        fit("chinchilla", {"N": runs["N"], "D": runs["D"]})
    with pytest.raises(ParameterError, match="loss must be > 0"):
        fit("chinchilla", {**runs, "loss": -runs["loss"]})
    with pytest.raises(ParameterError, match="runs column 'N' must be >= 1"):
        fit("chinchilla", {**runs, "N": -runs["N"]})
    with pytest.raises(ParameterError, match="law must be one of"):
        fit("nope", runs)
    # gamma_a (and gamma_kv) cannot be fitted when no run quantizes the activations (KV cache)
    k_runs = {"N": np.repeat([3e7, 1e8, 3e8], 4), "D": np.tile([1e9, 3e9, 1e10, 3e10], 3)}
    k_runs["P_w"] = np.tile([4.0, 6.0, 8.0, INF], 3)
    k_runs["loss"] = KumarLaw()(**k_runs)
    # the default free set: the runs are blamed (no --free was given), naming the constant they cannot pin
    with pytest.raises(ParameterError, match="runs must vary the inputs that constant gamma_a multiplies"):
        fit("kumar", k_runs, n_boot=0)
    # an explicit free set: the free constant is blamed
    with pytest.raises(ParameterError, match="free must be a constant the runs constrain") as info:
        fit("kumar", k_runs, n_boot=0, free=["A", "gamma_a"])
    assert str(info.value).endswith("got 'gamma_a'")
