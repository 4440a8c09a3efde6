"""Every case the new-user audit (shared/audits/new-user-audit-2026-12.md, section c) marked as off contract.

Each row: the audit's id, the command line, the exit code it must give and a fragment of the one-line message
(the flag it names and the reason). The contract: one line on stderr and exit 2 for a refusal (never a traceback,
never a warning), strict JSON and exit 0 otherwise, nothing nonsensical accepted.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re

import pytest

from scalinglaw.cli import failure_message, main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code: object = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue(), err.getvalue()


def strict_json(text: str) -> object:
    def refuse(constant: str) -> object:
        raise ValueError(constant)

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """The audit's CSV fixtures that the table needs, in a scratch folder (also the working directory)."""
    from scalinglaw.laws.fit import example_path

    monkeypatch.chdir(tmp_path)
    rows = [r for r in example_path().read_text().splitlines() if r.strip() and not r.startswith("#")]
    (tmp_path / "clean.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "identical.csv").write_text("\n".join([rows[0]] + [rows[1]] * 20) + "\n")
    return tmp_path


REFUSED = [
    # id, argv, fragment of the one-line message
    ("p03", "predict --gamma -inf", "--gamma must be > 0 and finite, got -inf"),
    ("q31", "predict --d -inf", "--d must be >= 1, got -inf"),
    ("p13", "predict --a 0", "--a must be > 0 for the closed forms"),
    ("p15", "predict --a 1e308", "--a must be <= 100 (a decay exponent"),
    ("p52", "predict --data multiplicative:1e308", "--data must have epsilon <= 1e+30"),
    ("p63", "predict --sketch-draws 5", "--sketch-draws must be omitted without a sketch"),
    ("p65", "predict --engine recursion", "--engine must be omitted with the closed form"),
    ("p66", "predict --compare-exact --method exact", "--compare-exact must be omitted with --method exact"),
    ("p67", "predict --constants bogus", "--constants must be one of paper, calibrated, unit for law sgd"),
    ("e06", "predict --data additive:0.01 --constants bogus", "one of calibrated, unit for law sgd-quantized"),
    ("p72", "predict --law kumar --N 1e8 --D 1e10 --P 0", "--P must be > 3.11 bits"),
    ("p73", "predict --law kumar --N 1e8 --D 1e10 --P -3", "--P must be > 3.11 bits"),
    ("e05", "predict --law kumar --N 1e8 --D 1e10 --P 1", "--P must be > 3.11 bits"),
    ("p76", "predict --law sun --N 1e9 --D 1e11 --E 0 --Mbits 0 --block 128", "--E must be >= 1"),
    ("p97", "predict --law sun --N 1e9 --D 1e11 --E 1e6 --Mbits 1e6 --block 128", "format of at most 64 bits"),
    ("p85", "predict --law chinchilla --N 1e9 --D 1e11 --P 8", "--P must be omitted with --law chinchilla"),
    ("p86", "predict --law chinchilla --N 1e9 --D 1e11 --data int8 --gamma 99",
     "must be omitted with --law chinchilla"),
    ("p88", "predict --method exact --law kumar --N 1e8 --D 1e10", "--method must be omitted with --law kumar"),
    ("p94", "predict --D 1e10 --P 8", "--D must be omitted without an empirical --law"),
    ("p96", "predict --law kumar --N 1e-5 --D 1e-5", "--N must be >= 1"),
    ("q17", "predict --law chen --N 1e9 --D 1e11 --G 1e300", "--G must be <= N"),
    ("q18", "predict --law chen --N 1e9 --D 1e11 --G 128 --P 4", "--P must be omitted with --law chen"),
    ("p101", "predict --method exact --data multiplicative:1e308", "--data must have epsilon <= 1e+30"),
    ("p103", "predict --method exact --a 1e308", "--a must be <= 100 (a decay exponent"),
    ("p104", "predict --method exact --lambda1 1e308", "--lambda1 must be in [1e-30, 1e+30]"),
    ("p107", "predict --method exact --lambda1 1e-308", "--lambda1 must be in [1e-30, 1e+30]"),
    ("p108", "predict --sigma2 1e308", "--sigma2 must be <= 1e+30"),
    ("p109", "predict --method exact --sigma2 1e308 --json", "--sigma2 must be <= 1e+30"),
    ("s22", "simulate --N 1000 --reps 8 --sigma2 1e308 --json", "--sigma2 must be <= 1e+30"),
    ("s23", "simulate --N 1e30 --reps 2", "--N must be smaller: simulating 2 replicas of 1e+30 steps"),
    ("s27", "simulate --N 1000 --reps 8 --lambda1 1e308", "--lambda1 must be in"),
    ("s28", "simulate --N 1000 --reps 8 --a 1e308", "--a must be <= 100 (a decay exponent"),
    ("s29", "simulate --N 1000 --reps 8 --data multiplicative:1e308", "--data must have epsilon <= 1e+30"),
    ("h06", "simulate --d 1e9 --reps 2 --N 2", "--d must be smaller: simulating"),
    ("h16", "simulate --reps 1e9 --N 2", "--reps must be smaller: simulating 1e+09 replicas"),
    ("h10", "simulate --workers 64 --reps 64 --N 100", "the CPUs this process may use"),
    ("h09", "predict --method exact --d 100000 --M 100000", "--M must be smaller: 1 sketch(es) of 1e+05 x 1e+05"),
    ("q29", "predict --M 64 --schedule geometric --average last --sketch-draws 1e9 --method exact",
     "--sketch-draws must be smaller"),
    ("o11", "optimize --law kumar --budget 1e22 --formats ,", "--formats must list at least one format"),
    ("o17", "optimize --law kumar --budget 1e22 --isoflop /proc/x.png", "--isoflop must be a file that can be written"),
    ("o23", "optimize --law kumar --budget 1e300", "--budget must be <= 6e+80: the search covers sizes up to"),
    ("o22", "optimize --law kumar --budget 1e-10", "--budget must be >= 1.166"),
    ("o25", "optimize --law sketched-quantized --budget 1e12 --gamma 100", "--gamma must be < 0.5487"),
    ("o27", "optimize --law kumar --budget 1e22 --isoflop iso.txt", "--isoflop must end in a figure format"),
    ("o28", "optimize --law chinchilla --budget 1e22 --formats int4,int8", "--formats must be omitted with --law "
                                                                            "chinchilla (its loss has no free "
                                                                            "precision term"),
    ("q10", "optimize --law chinchilla --budget 1e22 --formats int2,bf16", "--formats must be omitted"),
    ("o29", "optimize --law kumar --budget 1e22 --fix P=8 --fix P=4", "--fix must fix each variable once"),
    ("o35", "optimize --law sun --budget 1e22 --block 1", "predict accepts B = 1"),
    ("o38", "optimize --law chinchilla --budget 1e22 --a 5 --gamma 99 --quantize data",
     "--a must be omitted with --law chinchilla"),
    ("q08", "optimize --law kumar --budget 1e22 --fix N=1e10 --fix D=1e11",
     "--fix must leave N or D free under a compute budget"),
    ("o40", "optimize --law kumar --frontier 1e20:1e24:1e7", "--frontier must be smaller: a frontier over 1e+07"),
    ("f17", "fit identical.csv --law kumar --boot 0", "the runs file must vary the inputs that constant"),
    ("f27", "fit clean.csv --law kumar --free ''", "--free must list constants of law kumar"),
    ("f29", "fit clean.csv --law kumar --boot 1e9", "--boot must be smaller: the fit with 1000000000 bootstrap"),
    ("m05", "formula --law sgd --latex --markdown", "--latex must be omitted with --markdown"),
    ("m08", "formula --law sketched-quantized --data ''", "--data must be a scheme name"),
    ("m02", "formula --law sgd --term bogus", "--term must be one of bias, variance"),
    ("c04", "calibrate --out /proc/x.json --laws sgd", "--out must be a file that can be written"),
    ("v04", "validate claim1 --out /proc/x --quick", "--out must be a folder that can be created and written"),
    ("v11", "validate --all claim1 --quick --out v11 --list", "--list must be used alone"),
    ("v01", "validate bogus", "error: NAME must be one of claim1_spectrum"),
]


@pytest.mark.parametrize(("case", "line", "fragment"), REFUSED, ids=[r[0] for r in REFUSED])
def test_audit_case_is_refused_in_one_line(runs, case, line, fragment):
    import shlex

    code, out, err = run(*shlex.split(line))
    assert code == 2, (case, out, err)
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err and "Warning" not in err, (case, err)
    assert fragment in err, (case, err)


def test_strict_json_echoes_infinite_inputs_and_refuses_non_finite_results(capsys):
    code, out, err = run("predict", "--law", "kumar", "--N", "1e8", "--D", "1e10", "--P", "inf", "--json")
    assert code == 0 and err == ""
    data = strict_json(out)
    assert data["inputs"]["P"] == "inf" and math.isfinite(data["loss"])
    from scalinglaw.cli import _strict
    from scalinglaw.errors import NonFiniteResultError

    with pytest.raises(NonFiniteResultError, match=r"terms.variance = nan"):
        _strict({"terms": {"variance": math.nan}})
    with pytest.raises(NonFiniteResultError, match="excess_risk = inf"):
        _strict({"excess_risk": math.inf, "inputs": {"P": math.inf}})


def test_closed_form_with_a_negative_term_is_refused_not_printed():
    """At a steep spectrum the sgd bound's bias cancels to a negative number in float64 (-3.0 at a = 20): refused,
    pointing to the exact engine, which handles it."""
    code, out, err = run("predict", "--a", "20")
    assert code == 2 and out == "" and "evaluates its bias term to" in err and "use --method exact" in err
    code, out, err = run("predict", "--a", "20", "--method", "exact", "--json")
    assert code == 0 and strict_json(out)["excess_risk"] > 0


def test_kumar_without_precision_says_so(capsys):
    code, out, _ = run("predict", "--law", "kumar", "--N", "1e8", "--D", "1e10")
    assert code == 0 and "no training precision given" in out and "P = inf" in out


def test_sun_block_one_is_accepted_by_predict_and_explained_by_optimize():
    code, out, _ = run("predict", "--law", "sun", "--N", "1e9", "--D", "1e11", "--E", "4", "--Mbits", "3",
                       "--block", "1", "--json")
    assert code == 0 and strict_json(out)["terms"]["quantization"] == 0.0  # log2(1) = 0: precision costs nothing


def test_compare_exact_explains_the_two_effective_data_sizes():
    code, out, err = run("predict", "--d", "50", "--N", "2000", "--gamma", "0.05", "--data", "additive:0.01",
                         "--compare-exact")
    assert code == 0 and err == ""
    assert "N tr H / tr H^(q)" in out and "operational" in out


@pytest.mark.parametrize("exc,fragment", [
    (MemoryError("Unable to allocate 52.2 GiB"), "not enough memory for this run (Unable to allocate 52.2 GiB)"),
    (OverflowError("Python int too large to convert to C long"), "a number overflowed during the computation"),
    (FloatingPointError("overflow encountered in multiply"), "floating-point error during the computation"),
    (RecursionError("maximum recursion depth exceeded"), "the computation recursed too deeply"),
    (ZeroDivisionError("float division by zero"), "internal error (ZeroDivisionError: float division by zero)"),
    (FileNotFoundError(2, "No such file or directory", "/proc/x"), "cannot use the file '/proc/x'"),
])
def test_every_exception_maps_to_one_line(exc, fragment):
    msg = failure_message(exc)
    assert "\n" not in msg and fragment in msg


def test_library_failures_inside_a_command_are_one_line(monkeypatch):
    """Whatever the library raises (here a MemoryError from numpy), the command prints one line and exits 2."""
    import numpy as np

    from scalinglaw import predict as predict_module

    def boom(*args, **kwargs):
        return np.empty((2**50,))  # numpy's MemoryError ("Unable to allocate 8 PiB"), raised at once

    monkeypatch.setattr(predict_module, "closed_form_risk", boom)
    code, out, err = run("predict")
    assert code == 2 and out == "" and err.count("\n") == 1 and "not enough memory for this run" in err


def test_numpy_warnings_never_reach_the_terminal(monkeypatch):
    import numpy as np

    from scalinglaw import predict as predict_module

    real = predict_module.closed_form_risk

    def noisy(*args, **kwargs):
        np.float64(1e308) * 10.0  # overflow: a RuntimeWarning outside the CLI
        return real(*args, **kwargs)

    monkeypatch.setattr(predict_module, "closed_form_risk", noisy)
    code, _, err = run("predict")
    assert code == 0 and err == ""


def test_validate_writes_a_fresh_folder_by_default(tmp_path, monkeypatch):
    from scalinglaw.validate.cli import _out_folder
    from scalinglaw.validate.runner import fresh_folder

    monkeypatch.chdir(tmp_path)
    first = _out_folder(None)
    second = _out_folder(None)
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.startswith("scalinglaw-validate-") and "validation" not in str(first)
    assert fresh_folder(tmp_path) not in (first, second)
    assert _out_folder(str(tmp_path / "explicit")) == tmp_path / "explicit"  # an explicit --out is used as given


def test_resource_limits_come_from_the_environment(runs, monkeypatch):
    """The limits name their source and can be changed; a refusal names the flag that drives the cost."""
    from scalinglaw.resources import Estimate, ResourceError, machine_limits, require

    monkeypatch.setenv("SCALINGLAW_MAX_SECONDS", "2")
    monkeypatch.setenv("SCALINGLAW_MAX_MEMORY", "1G")
    lim = machine_limits()
    assert lim.seconds == 2 and lim.memory == 2**30 and lim.cpus >= 1
    with pytest.raises(ResourceError, match=r"would take about 10 s .limit about 2 s, set by SCALINGLAW_MAX_SECONDS"):
        require(Estimate("the work", seconds=10), "reps", 5)
    with pytest.raises(ResourceError, match=r"would need 2 GiB of memory .limit 1 GiB, set by SCALINGLAW_MAX_MEMORY"):
        require(Estimate("the work", memory=2 * 2**30), "reps", 5)
    require(Estimate("the work", memory=2**20, seconds=1), "reps", 5)  # within the limits: no refusal
    monkeypatch.setenv("SCALINGLAW_MAX_SECONDS", "abc")
    code, _, err = run("simulate", "--N", "100", "--d", "10", "--reps", "4")
    assert code == 2 and "SCALINGLAW_MAX_SECONDS must be a positive number" in err
    # a 2000-run fit is refused under a 0.05 s limit, naming the runs file (not --boot, which is 0)
    monkeypatch.setenv("SCALINGLAW_MAX_SECONDS", "0.05")
    big = runs / "big.csv"
    rows = (runs / "clean.csv").read_text().splitlines()
    big.write_text("\n".join([rows[0]] + rows[1:] * 50) + "\n")
    code, _, err = run("fit", str(big), "--law", "kumar", "--boot", "0")
    assert code == 2 and err.startswith("scalinglaw: error: the runs file must be smaller: the fit would take"), err


def test_workers_beyond_the_cpus_need_force(monkeypatch):
    from scalinglaw.resources import ResourceError, available_cpus, require_workers

    n = available_cpus()
    assert require_workers(n) == n
    with pytest.raises(ResourceError, match="--force-workers starts them anyway"):
        require_workers(n + 1, "--workers")
    assert require_workers(n + 1, "--workers", force=True) == n + 1
    code, _, err = run("simulate", "--N", "100", "--d", "10", "--reps", "4", "--force-workers")
    assert code == 2 and "--force-workers must be omitted without --workers" in err


def test_dask_scheduler_without_workers_is_refused_in_time(monkeypatch):
    distributed = pytest.importorskip("distributed")
    from scalinglaw import _executors

    monkeypatch.setattr(_executors, "_WORKER_TIMEOUT", 1.0)
    cluster = distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp://", dashboard_address=None)
    with cluster:
        import time

        start = time.perf_counter()
        code, out, err = run("simulate", "--N", "100", "--d", "10", "--reps", "4", "--dask", cluster.scheduler_address)
        elapsed = time.perf_counter() - start
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--dask must be a scheduler with at least one worker (none joined within 1 s" in err
    assert elapsed < 15


def test_calibration_file_is_selectable(tmp_path, monkeypatch):
    """A refreshed calibration reaches an installed package through --calibration or SCALINGLAW_CALIBRATION."""
    from importlib import resources

    from scalinglaw.laws.regression import use_calibration

    shipped = json.loads(resources.files("scalinglaw.data").joinpath("calibration.json").read_text())
    doubled = json.loads(json.dumps(shipped))
    for key in doubled["sgd"]["constants"]["values"]:
        if key.startswith("c_"):
            doubled["sgd"]["constants"]["values"][key] *= 2.0
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(doubled))
    base = strict_json(run("predict", "--json")[1])["excess_risk"]
    try:
        twice = strict_json(run("predict", "--json", "--calibration", str(path))[1])["excess_risk"]
        assert twice == pytest.approx(2.0 * base, rel=1e-12)  # every term carries one calibration constant
        assert strict_json(run("predict", "--json")[1])["excess_risk"] == base  # the flag held for one call only
        monkeypatch.setenv("SCALINGLAW_CALIBRATION", str(path))
        assert strict_json(run("predict", "--json")[1])["excess_risk"] == pytest.approx(twice, rel=1e-12)
        monkeypatch.setenv("SCALINGLAW_CALIBRATION", str(tmp_path / "missing.json"))
        code, _, err = run("predict")
        assert code == 2 and err.startswith("scalinglaw: error: SCALINGLAW_CALIBRATION must be a calibration JSON")
    finally:
        use_calibration(None)
    wrong = tmp_path / "wrong.json"  # the sgd entry filed under every law
    wrong.write_text(json.dumps({law: shipped["sgd"] for law in shipped}))
    code, _, err = run("predict", "--d", "inf", "--a", "1.5", "--M", "64", "--N", "100000", "--schedule", "geometric",
                       "--average", "last", "--calibration", str(wrong))
    assert code == 2 and "--calibration must define c_" in err and "for law sketched" in err, err
    code, _, err = run("predict", "--method", "exact", "--calibration", str(path))
    assert code == 2 and "--calibration must be omitted with --method exact" in err


def test_isoloss_contour_labels_are_distinct():
    from scalinglaw.plot import distinct_format

    levels = [2.8101, 2.8104, 2.8107, 2.811, 2.8152, 2.8201]
    fmt = distinct_format(levels)
    assert len({fmt % v for v in levels}) == len(levels) and fmt == "%.5g"
    assert distinct_format([1.0, 2.0, 3.0]) == "%.3g"


def test_help_and_outputs_cite_pages_that_ship():
    """The CLI's help and its provenance lines cite theory/ pages (in the repository), not an absent SPEC."""
    from pathlib import Path

    from scalinglaw.cli import build_parser

    theory = Path(__file__).resolve().parents[1] / "theory"
    assert (theory / "README.md").exists()
    texts = [build_parser().format_help()]
    parser = build_parser()
    for action in parser._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            texts += [sub.format_help() for sub in action.choices.values()]
    texts.append(run("predict")[1])
    texts.append(run("predict", "--data", "additive:0.01", "--gamma", "0.05")[1])
    texts.append(run("predict", "--d", "inf", "--a", "1.5", "--M", "64", "--N", "100000", "--schedule", "geometric",
                     "--average", "last")[1])
    for text in texts:
        assert "SPEC" not in text, text[:200]
        for page in set(re.findall(r"theory/([\w.-]+\.md)", text)):
            assert (theory / page).exists(), page


def test_api_refuses_a_boolean_size():
    """The audit's API table: ``make_problem(N=True)`` was accepted as N = 1."""
    from scalinglaw.errors import ParameterError
    from scalinglaw.problem import make_problem

    with pytest.raises(ParameterError, match="N must be a number, not a boolean, got True"):
        make_problem(N=True, gamma=0.1)


def test_audit_q12_huge_n_geometric_is_computed_not_refused():
    """q12 raised OverflowError; the spectral-measure engine computes it in log space (issue 11)."""
    code, out, err = run("predict", "--method", "exact", "--N", "1e30", "--schedule", "geometric", "--average",
                         "uniform", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert 0 < res["excess_risk"] < 1e-20 and res["terms"]["variance"] >= 0


def test_calibrate_refuses_a_records_file_of_another_kind(tmp_path):
    # found by the fuzz test: a constants file (calibrate --out) given as --records raised a TypeError
    from importlib import resources

    constants = tmp_path / "constants.json"
    constants.write_text(resources.files("scalinglaw.data").joinpath("calibration.json").read_text())
    code, out, err = run("calibrate", "--records", str(constants), "--quick")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--records" in err and "internal error" not in err
