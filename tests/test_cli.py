"""The command-line contract: flags, JSON keys, readable tables, one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli_helpers import run


def test_predict_default_table(capsys):
    code, out, err = run(capsys, "predict")
    assert code == 0 and err == ""
    for word in ("closed form", "bias", "variance", "excess risk", "effective model size"):
        assert word in out
    code, out, err = run(capsys, "predict", "--method", "exact")
    assert code == 0 and err == ""
    for word in ("approximation", "bias", "variance", "cross", "excess risk", "largest stable gamma"):
        assert word in out


def test_predict_json_keys_and_terms_sum(capsys):
    code, out, _ = run(capsys, "predict", "--method", "exact", "--a", "1.5", "--d", "50", "--N", "800",
                       "--B", "8", "--gamma", "0.3", "--data", "multiplicative:0.1", "--acts", "additive:0.05",
                       "--json")
    assert code == 0
    data = json.loads(out)
    assert {"excess_risk", "risk", "terms"} <= set(data)
    assert sum(data["terms"].values()) == pytest.approx(data["excess_risk"], rel=1e-12)
    assert data["risk"] == pytest.approx(data["excess_risk"] + 1.0)


def test_simulate_json_agrees_with_predict(capsys):
    flags = ["--a", "2", "--d", "16", "--N", "200", "--gamma", "0.2", "--params", "additive:0.05"]
    _, out, _ = run(capsys, "predict", "--method", "exact", *flags, "--json")
    exact = json.loads(out)["excess_risk"]
    code, out, _ = run(capsys, "simulate", *flags, "--reps", "2000", "--seed", "3", "--json")
    assert code == 0
    sim = json.loads(out)
    assert {"excess_risk_mean", "excess_risk_sem", "reps"} <= set(sim) and sim["reps"] == 2000
    assert abs(sim["excess_risk_mean"] - exact) < 3 * sim["excess_risk_sem"]  # tolerance: 3 standard errors
    _, again, _ = run(capsys, "simulate", *flags, "--reps", "2000", "--seed", "3", "--workers", "2", "--json")
    assert json.loads(again)["excess_risk_mean"] == sim["excess_risk_mean"]  # parallel == serial


def test_simulate_on_a_dask_address_is_bit_identical(capsys):
    distributed = pytest.importorskip("distributed")
    flags = ["--d", "12", "--N", "120", "--gamma", "0.2", "--data", "int8", "--reps", "64", "--seed", "9", "--json"]
    _, serial, _ = run(capsys, "simulate", *flags)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://",
                                       dashboard_address=None)
    with cluster:
        code, dasked, _ = run(capsys, "simulate", *flags, "--dask", cluster.scheduler_address)
    assert code == 0
    for key in ("excess_risk_mean", "excess_risk_sem", "risk_mean"):
        assert json.loads(dasked)[key] == json.loads(serial)[key], key


def test_simulate_float32_agrees_with_exact(capsys):
    flags = ["--a", "1.5", "--d", "32", "--N", "400", "--gamma", "0.2", "--acts", "multiplicative:0.1"]
    _, out, _ = run(capsys, "predict", "--method", "exact", *flags, "--json")
    exact = json.loads(out)["excess_risk"]
    code, out, _ = run(capsys, "simulate", *flags, "--reps", "2000", "--seed", "4", "--float32", "--json")
    sim = json.loads(out)
    assert code == 0 and any("float32" in note for note in sim["notes"])
    assert abs(sim["excess_risk_mean"] - exact) < 3 * sim["excess_risk_sem"]  # tolerance: 3 standard errors


def test_bench_quick_json_has_the_headline_keys(capsys):
    """Smoke test of the benchmark command (its ratios are measurements, not asserted); the exact-engine
    agreement with the recursion is a correctness check and is asserted."""
    code, out, _ = run(capsys, "bench", "--quick", "--json")
    assert code == 0
    data = json.loads(out)
    for key in ("exact_n_ratio", "sim_over_rng", "compiled_over_numpy"):
        assert data[key] > 0
    assert data["exact"]["max_rel_diff_vs_recursion"] < 1e-10
    assert data["compiled"]["max_rel_diff"] < 1e-12
    assert data["de_M1e4_seconds"] > 0 and data["de_M1e4_max_rss_mb"] > 0
    assert data["deterministic_equivalent"]["M1e4"]["numerical_error"] < 1e-8
    assert data["frontier_uncertainty_seconds"] > 0
    assert data["exact_grid_max_seconds"] > 0 and data["exact_grid_max_peak_mb"] > 0  # Linux reports VmHWM
    assert all(u["failed_draws"] == 0 for u in data["frontier_uncertainty"].values())


def test_simulate_table(capsys):
    code, out, _ = run(capsys, "simulate", "--d", "8", "--N", "50", "--reps", "16")
    assert code == 0 and "standard error" in out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--a", "0.8", "--d", "inf"], "--a must be > 1"),
        (["--d", "0"], "--d must be >= 1"),
        (["--N", "4", "--B", "8"], "--N must be >= B=8"),
        (["--gamma", "5"], "--gamma must be < 0.611"),
        (["--data", "additive:-0.1"], "--data must have epsilon >= 0"),
        (["--params", "fp7"], "--params must be one of"),
        (["--data", "int8:range=-1"], "--data must"),
        (["--N", "1000", "--B", "3"], "--N must be a multiple of B=3"),
        (["--schedule", "cosine"], "invalid choice"),
        (["--sigma2", "-1"], "--sigma2 must be >= 0"),
        (["--M", "500"], "--M must be <= d=200"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, "predict", "--method", "exact", *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and needle in err, err
    assert "Traceback" not in err


def test_unstable_gamma_states_largest_stable_value(capsys):
    code, _, err = run(capsys, "simulate", "--gamma", "0.9", "--data", "additive:0.01")
    assert code == 2 and "largest stable step size" in err and "--gamma must be < 0.4" in err


def test_console_script_entry_point():
    proc = subprocess.run([sys.executable, "-m", "scalinglaw.cli", "predict", "--d", "-3"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1
    proc = subprocess.run([sys.executable, "-m", "scalinglaw.cli", "--help"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0 and "predict" in proc.stdout and "simulate" in proc.stdout


# ---------------------------------------------------------------------------------------------- symbolic layer
def test_predict_closed_is_default_with_effective_sizes(capsys):
    code, out, _ = run(capsys, "predict", "--data", "additive:0.01", "--gamma", "0.05", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["method"] == "closed" and data["law"] == "sgd-quantized"
    assert {"excess_risk", "risk", "terms", "effective_model_size", "effective_data_size"} <= set(data)
    assert sum(data["terms"].values()) == pytest.approx(data["excess_risk"], rel=1e-12)
    assert data["effective_model_size"] < 200


def test_predict_closed_compare_exact(capsys):
    code, out, _ = run(capsys, "predict", "--d", "50", "--N", "2000", "--gamma", "0.05", "--data",
                       "multiplicative:0.05", "--compare-exact", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["exact"]["tightness"] >= 1.0
    assert data["exact"]["effective_model_size"]["exact"] == pytest.approx(50, rel=1e-12)


def test_predict_closed_refuses_uncovered(capsys):
    code, _, err = run(capsys, "predict", "--average", "last")
    assert code == 2 and "no closed form" in err and err.count("\n") == 1


def test_formula_command(capsys):
    code, out, _ = run(capsys, "formula", "--law", "sgd", "--latex")
    assert code == 0 and "\\sum" in out and "k^*" in out
    code, out, _ = run(capsys, "formula", "--law", "sketched-quantized", "--data", "additive", "--term", "bias")
    assert code == 0 and "bias =" in out and "k_star" in out
    code, out, _ = run(capsys, "formula", "--law", "kumar")
    assert code == 0 and "gamma_w" in out
    code, _, err = run(capsys, "formula", "--law", "nope")
    assert code == 2 and "--law must be one of" in err


# ---------------------------------------------------------------------------------------------- empirical laws
def test_predict_kumar_reproduces_published_loss(capsys):
    """empirical-laws.md §6b: L(220M, 26B) = 3.1966 with BF16 (P = inf) and Table 2 constants."""
    code, out, _ = run(capsys, "predict", "--law", "kumar", "--N", "2.2e8", "--D", "2.6e10", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["loss"] == pytest.approx(3.1966, abs=6e-5)
    assert set(data["terms"]) == {"model", "data", "irreducible", "ptq"}
    code, out, _ = run(capsys, "predict", "--law", "kumar", "--N", "1.1e8", "--D", "1.3e10", "--P", "8",
                       "--Ppost", "4", "--json")
    assert code == 0 and json.loads(out)["terms"]["ptq"] > 0


def test_predict_sun_chen_chinchilla(capsys):
    code, out, _ = run(capsys, "predict", "--law", "sun", "--N", "6.79e8", "--D", "1e11", "--E", "4", "--Mbits",
                       "3", "--block", "128", "--json")
    assert code == 0 and json.loads(out)["loss"] == pytest.approx(2.6123, abs=6e-5)  # §7 sample losses
    code, out, _ = run(capsys, "predict", "--law", "chen", "--N", "5.95e8", "--D", "1e11", "--G", "128", "--json")
    assert code == 0 and json.loads(out)["terms"]["quantization"] == pytest.approx(0.0573, abs=6e-5)  # §8
    code, out, _ = run(capsys, "predict", "--law", "chinchilla:hoffmann", "--N", "7e10", "--D", "1.4e12", "--json")
    by_hand = 1.69 + 406.4 / 7e10**0.34 + 410.7 / 1.4e12**0.28
    assert code == 0 and json.loads(out)["loss"] == pytest.approx(by_hand, rel=1e-12)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--law", "kumar", "--N", "1e8", "--D", "1e10", "--Pa", "3"], "--Pa must be >"),
        (["--law", "kumar", "--N", "-1", "--D", "1e10"], "--N must be >= 1"),
        (["--law", "sun", "--N", "1e9", "--D", "1e10", "--E", "4", "--Mbits", "3", "--block", "0.5"],
         "--block must be >= 1"),
        (["--law", "chen", "--N", "1e9", "--D", "1e10"], "needs --G"),
        (["--law", "kumar", "--N", "1e8"], "needs --N (parameters) and --D"),
    ],
)
def test_empirical_bad_input(capsys, argv, needle):
    code, out, err = run(capsys, "predict", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and needle in err, err


def test_fit_command(capsys, tmp_path):
    from scalinglaw.laws.fit import example_path

    code, out, _ = run(capsys, "fit", str(example_path()), "--law", "kumar", "--boot", "20", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["n_runs"] == 40 and "constants" in data
    bad = tmp_path / "runs.csv"
    bad.write_text("N,D,P,loss\n1e8,1e10,8,3.1\n2e8,abc,8,3.0\n")
    code, _, err = run(capsys, "fit", str(bad), "--law", "kumar")
    assert code == 2 and "line 3" in err and "'D'" in err and err.count("\n") == 1


def test_calibrate_command_refits_from_the_shipped_records(capsys):
    from importlib import resources

    records = str(resources.files("scalinglaw.data").joinpath("calibration_records.json"))
    code, out, _ = run(capsys, "calibrate", "--laws", "sgd", "--records", records, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["sgd"]["test"]["min"] >= 1.0 and data["sgd"]["test"]["n"] >= 128
    assert "all" in data["sgd"]["regions"]


def test_calibrate_quick_runs_the_engine(capsys, tmp_path):
    from scalinglaw.calibration import read_records

    rec = tmp_path / "records.json"
    # sgd-quantized: the cheapest law with every option (a sketched law's quick run takes ~30 s; its references,
    # drawn sketches and the deterministic equivalent, are re-run in tests/test_calibration.py)
    code, out, _ = run(capsys, "calibrate", "--laws", "sgd-quantized", "--quick", "--json", "--write-records", str(rec))
    assert code == 0
    data = json.loads(out)
    assert data["sgd-quantized"]["calibration"]["n"] == 16 and data["sgd-quantized"]["calibration"]["min"] >= 1.0
    assert data["sgd-quantized"]["test"]["n"] == 8 and len(read_records(str(rec))["sgd-quantized"]["test"]) == 8


# ---------------------------------------------------------------------------------------------- allocation
def test_optimize_json_keys(capsys):
    code, out, _ = run(capsys, "optimize", "--law", "kumar", "--budget", "1e22", "--json")
    assert code == 0
    data = json.loads(out)
    assert {"N", "D", "P", "loss", "dominant_term", "method"} <= set(data) and data["method"] == "closed"
    code, out, _ = run(capsys, "optimize", "--law", "kumar", "--budget", "1e22", "--formats", "int4,int8,bf16",
                       "--json")
    assert code == 0 and json.loads(out)["format"] == "int8"
    code, out, _ = run(capsys, "optimize", "--law", "sketched-quantized", "--budget", "1e12", "--quantize", "data",
                       "--json")
    data = json.loads(out)
    assert code == 0 and {"M", "N", "P", "loss", "dominant_term", "method"} <= set(data)


def test_optimize_frontier_and_plots(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "frontier.png"
    code, out, _ = run(capsys, "optimize", "--law", "chinchilla:epoch", "--frontier", "1e18:1e24:20", "--plot",
                       str(png), "--json")
    assert code == 0 and png.stat().st_size > 1000
    data = json.loads(out)
    assert len(data["budgets"]) == 20 and "exponent_N" in data
    iso, il = tmp_path / "iso.png", tmp_path / "il.png"
    code, _, _ = run(capsys, "optimize", "--law", "kumar", "--budget", "1e21", "--isoflop", str(iso), "--isoloss",
                     str(il))
    assert code == 0 and iso.stat().st_size > 1000 and il.stat().st_size > 1000


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--law", "kumar", "--budget", "1e10", "--budget-kind", "memory"], "no interior minimum"),
        (["--law", "chinchilla:epoch", "--budget", "5.76e23", "--flat-factor", "1.2"], "too flat to pin"),
        (["--law", "kumar", "--budget", "-5"], "--budget must be > 0"),
        (["--law", "kumar", "--budget", "1e22", "--fix", "Q=3"], "--fix must name one of"),
        (["--law", "sun", "--budget", "1e22", "--formats", "int8"], "floating-point format"),
        (["--law", "sgd", "--budget", "1e10"], "no model-size variable"),
        (["--law", "kumar"], "needs --budget"),
        (["--law", "kumar", "--budget", "1e21", "--formats", "additive:0.1"], "--formats must name a number format"),
        (["--law", "sketched", "--budget", "1e12", "--law-options", "foo=3"], "option foo must be one of"),
        (["--law", "kumar", "--budget", "1e21", "--law-options", "foo=1"], "option foo must be one of"),
        (["--law", "sketched", "--budget", "1e12", "--law-options", "a=3"], "--law-options must not set a (use --a)"),
        (["--law", "kumar", "--budget", "1e21", "--fix", "N=1e9,D=1e10,P=8"], "--fix must leave one of N, D, P"),
        (["--law", "kumar", "--budget", "1e21", "--flat-rtol", "-1"], "--flat-rtol must be > 0"),
        (["--law", "kumar", "--budget", "1e21", "--flat-factor", "nan"], "--flat-factor must be a real number"),
        (["--law", "kumar", "--budget", "1e21", "--flat-factor", "0.5"], "--flat-factor must be > 1"),
        (["--law", "kumar", "--budget", "abc"], "--budget must be a real number, got 'abc'"),
        (["--law", "sketched", "--budget", "1e12", "--B", "2.5"], "--B must be an integer"),
        (["--law", "kumar", "--budget", "1e21", "--isoflop", "/"], "--isoflop must be a file path, not a directory"),
        (["--law", "kumar", "--budget", "1e21", "--isoloss", "/no/such/folder/x.png"], "in an existing folder"),
        (["--law", "kumar", "--budget", "1e21", "--plot", "x.png"], "--plot must be used with --frontier"),
    ],
)
def test_optimize_refusals(capsys, argv, needle):
    code, out, err = run(capsys, "optimize", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and needle in err, err


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--law", "sketched"], "--law must be the regression law that covers this set-up (sgd"),
        (["--law", "sgd", "--data", "additive:0.01", "--gamma", "0.05"], "covers this set-up (sgd-quantized"),
        (["--law", "sgd", "--method", "exact"], "--law must be omitted with --method exact"),
        (["--law", "sgd:paper", "--constants", "unit"], "--constants must agree with --law sgd:paper"),
    ],
)
def test_predict_regression_law_must_match_the_set_up(capsys, argv, needle):
    code, out, err = run(capsys, "predict", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and needle in err, err


def test_predict_regression_law_with_constants_suffix(capsys):
    code, out, _ = run(capsys, "predict", "--law", "sgd:paper", "--json")
    assert code == 0 and json.loads(out)["constants"] == "paper"


def test_dask_bad_address_is_one_line(capsys):
    pytest.importorskip("distributed")
    code, _, err = run(capsys, "simulate", "--N", "100", "--d", "10", "--reps", "4", "--dask", "foo")
    assert code == 2 and err.count("\n") == 1 and "--dask must be the address of a reachable dask scheduler" in err


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["predict", "--data", ""], "--data must be one of none"),
        (["predict", "--data", "additive:1e-400"], "underflows to 0"),
        (["formula", "--law", "sgd-quantized", "--data", "additive:-1"], "--data must be a scheme name"),
        (["formula", "--law", "sgd", "--data", "additive"], "option data must not be passed"),
        (["calibrate", "--laws", ""], "--laws must list laws among"),
        (["calibrate", "--laws", "sgd", "--records", "/nonexistent.json"], "--records must be a calibration records"),
        (["calibrate", "--laws", "sgd", "--out", "/"], "--out must be a file path, not a directory"),
    ],
)
def test_more_one_line_refusals(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and needle in err, err


def test_fit_input_refusals(capsys, tmp_path):
    from scalinglaw.laws.fit import example_path

    binary = tmp_path / "runs.csv"
    binary.write_bytes(b"\xff\xfe\x00abc")
    one = tmp_path / "one.csv"
    one.write_text("N,D,P,loss\n1e8,1e10,8,3.1\n")
    for argv, needle in (([str(binary)], "runs file must be a UTF-8 text CSV"),
                         ([str(one)], "the runs file must contain at least 2 runs"),
                         ([str(example_path()), "--boot", "1"], "--boot must be 0 (no intervals) or >= 2")):
        code, out, err = run(capsys, "fit", *argv, "--law", "kumar")
        assert code == 2 and out == "" and err.count("\n") == 1 and needle in err, err


def test_dimension_that_overflows_is_refused(capsys):
    code, _, err = run(capsys, "predict", "--d", "1e400")
    assert code == 2 and "--d must be an integer >= 1 or 'inf'" in err


@pytest.mark.parametrize("argv,needle", [
    (["--law", "chen", "--budget", "1e21", "--G", "0"], "--G must be >= 1 and finite"),
    (["--law", "kumar", "--budget", "1e21", "--fix", "N=0.5"], "--fix N must be >= 1"),
])
def test_optimize_names_the_bad_option_not_the_budget(capsys, argv, needle):
    code, out, err = run(capsys, "optimize", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and needle in err, err
