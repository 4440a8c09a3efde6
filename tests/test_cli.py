"""The command-line contract: flags, JSON keys, readable tables, one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scalinglaw.cli import main


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exc.value.code or 0, out, err


def test_predict_default_table(capsys):
    code, out, err = run(capsys, "predict")
    assert code == 0 and err == ""
    for word in ("approximation", "bias", "variance", "excess risk", "largest stable gamma"):
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
    _, out, _ = run(capsys, "predict", *flags, "--json")
    exact = json.loads(out)["excess_risk"]
    code, out, _ = run(capsys, "simulate", *flags, "--reps", "2000", "--seed", "3", "--json")
    assert code == 0
    sim = json.loads(out)
    assert {"excess_risk_mean", "excess_risk_sem", "reps"} <= set(sim) and sim["reps"] == 2000
    assert abs(sim["excess_risk_mean"] - exact) < 3 * sim["excess_risk_sem"]  # tolerance: 3 standard errors
    _, again, _ = run(capsys, "simulate", *flags, "--reps", "2000", "--seed", "3", "--workers", "2", "--json")
    assert json.loads(again)["excess_risk_mean"] == sim["excess_risk_mean"]  # parallel == serial


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
    code, out, err = run(capsys, "predict", *argv)
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
