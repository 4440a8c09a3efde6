"""The validation suite: ``scalinglaw validate --all --quick`` end to end, and its statistical helpers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scalinglaw.validate import experiment_names
from scalinglaw.validate.cli import build_parser, main
from scalinglaw.validate.stats import (
    bonferroni_z,
    interval_hits,
    linear_fit,
    paired,
    power_fit,
    ratio_estimate,
    z_score,
)


def _command(out: Path) -> list[str]:
    """``scalinglaw validate --all --quick`` through the main CLI, in a subprocess."""
    args = ["--all", "--quick", "--workers", "2", "--out", str(out), "--no-progress"]
    return [sys.executable, "-c", "import sys; from scalinglaw.cli import main; sys.exit(main())", "validate", *args]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("validation")
    proc = subprocess.run(_command(out), capture_output=True, text=True, timeout=900)
    return proc, out


def _records(out: Path) -> dict[str, dict]:
    return {name: json.loads((out / f"{name}.json").read_text()) for name in experiment_names()}


@pytest.mark.slow
def test_quick_run_writes_every_figure_record_and_the_report(quick_run):
    proc, out = quick_run
    assert proc.returncode in (0, 1), proc.stderr
    report = (out / "report.md").read_text()
    for name in experiment_names():
        png = out / f"{name}.png"
        assert png.exists() and png.stat().st_size > 10_000, name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"## {name}" in report and f"]({name}.png)" in report and f"]({name}.json)" in report
        rec = json.loads((out / f"{name}.json").read_text())
        assert rec["criterion"] and rec["verdict"] in ("pass", "fail")
        assert rec["checks"] and all("statement" in c and "passed" in c for c in rec["checks"])
        assert rec["figure"] == f"{name}.png" and rec["quick"] is True
    assert "| claim | prediction | measurement | verdict |" in report


@pytest.mark.slow
def test_exit_code_matches_the_verdicts(quick_run):
    proc, out = quick_run
    verdicts = [r["passed"] for r in _records(out).values()]
    assert proc.returncode == (0 if all(verdicts) else 1), proc.stdout + proc.stderr
    assert proc.returncode == 0, "validate --all --quick must exit 0: every claim passes"


@pytest.mark.slow
@pytest.mark.parametrize("name", experiment_names())
def test_claim_passes(quick_run, name):
    _, out = quick_run
    rec = json.loads((out / f"{name}.json").read_text())
    failed = [c["id"] + ": " + c["detail"] for c in rec["checks"] if not c["passed"]]
    assert rec["passed"], failed


# ------------------------------------------------------------------------------------------- CLI input errors
@pytest.mark.parametrize("argv, needle", [
    (["nonsense"], "NAME must be one of"),
    (["claim1", "--all"], "not both"),
    ([], "--all"),
    (["claim1", "--workers", "0"], "--workers must be >= 1"),
])
def test_bad_input_is_one_line_and_exit_2(argv, needle, capsys, tmp_path):
    code = main([*argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err and err.count("\n") == 1


@pytest.mark.slow
def test_dask_address_gives_the_serial_numbers(tmp_path):
    """``validate --dask ADDRESS`` on a LocalCluster: the same JSON record as a serial run (SeedSequence.spawn)."""
    distributed = pytest.importorskip("distributed")
    serial, dasked = tmp_path / "serial", tmp_path / "dask"
    assert main(["claim2_batch", "--quick", "--no-progress", "--out", str(serial)]) in (0, 1)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster:
        assert main(["claim2_batch", "--quick", "--no-progress", "--out", str(dasked),
                     "--dask", cluster.scheduler_address]) in (0, 1)
    a, b = (json.loads((d / "claim2_batch.json").read_text()) for d in (serial, dasked))
    for key in ("data", "measurement", "checks", "verdict"):
        assert a[key] == b[key], key


def test_workers_and_dask_are_exclusive(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--all", "--workers", "2", "--dask", "tcp://x:1"])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_missing_matplotlib_asks_for_the_plot_extra(monkeypatch, capsys, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "matplotlib" else real(n, *a))
    code = main(["claim7_kumar", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "scalinglaw[plot]" in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_list_names_every_experiment(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in experiment_names())
    assert len(experiment_names()) == 10


# ------------------------------------------------------------------------------------------- statistics
def test_power_fit_recovers_a_known_exponent_with_honest_coverage():
    rng = np.random.default_rng(0)
    x = np.logspace(0, 3, 8)
    hits = 0
    for _ in range(400):
        y0 = 2.0 * x**-0.7
        se = 0.03 * y0
        fit = power_fit(x, y0 + se * rng.standard_normal(x.size), se)
        hits += interval_hits(fit.slope_ci(), -0.7)
    assert 0.92 <= hits / 400 <= 0.98  # nominal 95%


def test_power_fit_is_exact_without_noise_and_keeps_nonpositive_points():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    fit = power_fit(x, 3.0 * x**-1.0, np.full(4, 1e-3))
    assert fit.slope == pytest.approx(-1.0, abs=1e-9) and math.exp(fit.intercept) == pytest.approx(3.0)
    noisy = power_fit(x, np.array([3.0, 1.5, 0.75, -0.01]), np.array([0.1, 0.1, 0.1, 0.5]))
    assert math.isfinite(noisy.slope)


def test_linear_fit_birge_inflation():
    x = np.arange(6.0)
    good = linear_fit(x, 1.0 + 2.0 * x, np.ones(6))
    assert good.slope == pytest.approx(2.0) and good.birge == 1.0
    bad = linear_fit(x, 1.0 + 2.0 * x + 5.0 * (-1.0) ** x, np.ones(6))
    assert bad.birge > 1.0 and bad.slope_se > good.slope_se


def test_bonferroni_threshold_and_z():
    assert bonferroni_z(1) == 3.0
    assert bonferroni_z(200) == pytest.approx(4.0556, abs=1e-3)  # Phi^-1(1 - 0.01/400)
    assert z_score(3.0, 1.0, 0.5) == 4.0 and z_score(1.0, 1.0, 0.0) == 0.0


def test_paired_and_ratio_estimates():
    rng = np.random.default_rng(1)
    base = rng.exponential(size=4000)
    est = paired(base * 1.1, base)
    assert est.mean == pytest.approx(0.1 * base.mean()) and est.se > 0
    r = ratio_estimate(base * 1.1, base)
    assert r.mean == pytest.approx(0.1) and r.se < 1e-6
    r2 = ratio_estimate(base + rng.normal(0, 0.1, base.size), base)
    assert abs(r2.mean) < 4 * r2.se


def test_grid_error_moment_matches_sampling():
    from scalinglaw.quantize import parse_quantizer
    from scalinglaw.validate.mc import grid_error_moment

    rng = np.random.default_rng(2)
    sigma = np.array([1.0, 0.1, 0.01])
    for spec in ("fp8_e4m3", "fp4_e2m1", "int4:range=2"):
        x = rng.standard_normal((200_000, 3)) * sigma
        e = parse_quantizer(spec).quantize(x, rng) - x
        mc, se = (e * e).mean(0), (e * e).std(0) / math.sqrt(len(x))
        assert np.all(np.abs(mc - grid_error_moment(spec, sigma)) < 4 * se), spec


def test_records_are_strict_json():
    from scalinglaw.validate.base import jsonable

    out = jsonable({"a": np.array([1.0, np.nan]), "b": np.float64(np.inf), "c": (np.int64(2),)})
    assert json.loads(json.dumps(out, allow_nan=False)) == {"a": [1.0, None], "b": None, "c": [2]}
