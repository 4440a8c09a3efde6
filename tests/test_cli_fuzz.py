"""Property-based fuzz test of the whole CLI: random flag sets for every subcommand, valid and invalid values.

The flag sets come from the argparse parser itself (:func:`scalinglaw.cli.build_parser`), so a subcommand or flag
added later is fuzzed without editing this file. Values are drawn from each flag's own choices, its default (and
neighbours of it) or the pool values its help text mentions, and from a shared pool of valid and invalid values
(numbers, NaN, infinities, overflowing literals, quantizer specs, law names, paths). Half the command lines lean
on plausible values (so that valid runs are common), half are adversarial. Sizes stay small and
``SCALINGLAW_MAX_SECONDS`` is lowered, so heavy combinations are refused by the resource estimates instead of
running.

The contract checked on every call (``scalinglaw.cli.main`` in-process, SystemExit captured):

* the exit code is 0 or 2;
* on 2: exactly one line on stderr, prefixed by ``scalinglaw``, no traceback, nothing on stdout;
* on 0: no traceback or warning on stderr; with ``--json`` the output is strict JSON (no NaN or Infinity);
* every call returns within :data:`MAX_SECONDS_PER_CALL`.

The three subcommands whose work takes minutes by design (``bench``, ``calibrate``, ``validate``) run their
real command-line shells over fast stand-ins of the library call (a cached real result, or a passing claim), so
their flags, checks, error mapping and output are fuzzed as well.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalinglaw import cli

#: Calls generated in total (the issue asks for at least 2000).
N_CALLS = 2000
#: Wall-time bound of one call; the drawn sizes keep a typical call under 50 ms.
MAX_SECONDS_PER_CALL = 15.0

#: Values every flag may receive: valid and invalid numbers, non-numbers, specs of the other flags.
POOL = [
    "0", "1", "2", "3", "4", "8", "16", "32", "64", "100", "128", "200", "1000", "1e4",
    "0.1", "0.05", "0.5", "1.5", "2.5", "1e-3", "1e-12", "-1", "-0.5", "-1e5", "-3",
    "nan", "inf", "-inf", "1e30", "1e308", "1e400", "1e-400", "abc", "", " ",
    "int8", "int4:range=4", "fp8_e4m3", "fp4_e2m1", "bf16", "additive:0.01", "multiplicative:0.1",
    "multiplicative-coord:0.01", "additive", "multiplicative", "none", "int99", "additive:-1",
    "kumar", "sun", "chen", "chinchilla", "chinchilla:epoch", "kumar:bogus", "sgd", "sgd-quantized", "sketched",
    "sketched-quantized", "bogus",
    "P=8", "N=1e9", "D=1e11", "P=8,N=1e9", "P=nan", "Z=3", "P",
    "int4,int8", "fp8_e4m3,bf16", ",", "int4,int99",
    "1e18:1e20:3", "1e8:1e12:4", "1e20:1e19:5", "1e20:1e24:1", "abc:1:2", "1e18:1e20:1e9",
    "bias=false", "ptq=false", "foo", "foo=1",
    "data", "data,params", "labels", "fp", "int",
    "calibrated", "unit", "paper", "table2", "epoch",
    "claim1", "claim7_kumar", "real_formats",
    "garbage",
]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the CLI has no subcommands")


PARSER = cli.build_parser()
SUBCOMMANDS = _subparsers(PARSER)


def _neighbours(default: object) -> list[str]:
    """The default and values around it (a numeric default scaled up and down; a string default as is)."""
    if not isinstance(default, str) or not default:
        return []
    try:
        x = float(default)
    except ValueError:
        return [default]
    if not math.isfinite(x):
        return [default]
    return [default, repr(x * 2), repr(x / 2), repr(-x), repr(x * 1e3), "0"]


def _hinted(action: argparse.Action) -> list[str]:
    """Pool values that the flag's help text mentions (e.g. the law names listed by ``--law``)."""
    words = {w.strip(",.'\"`") for w in re.split(r"[\s()\[\]|;]+", action.help or "")}
    return [v for v in POOL if v and v in words]


#: Plausible sizes for a flag without a default when a mostly valid command line is drawn.
SIZES = ["1", "2", "4", "8", "16", "128", "1e4", "1e9", "1e10", "1e12", "1e22", "P=8", "1e18:1e20:3"]


def _value_strategy(action: argparse.Action, paths: list[str], valid: bool = False) -> st.SearchStrategy[str]:
    """Values for ``action``: its choices, else its default's neighbours or the values its help names, else the
    pool; ``valid`` leans on the plausible ones (a mostly valid command line), otherwise half are adversarial."""
    if action.choices:
        choices = list(map(str, action.choices))
        return st.sampled_from(choices if valid else [*choices, "bogus"])
    own = _neighbours(action.default) or _hinted(action) or (SIZES if valid else [])
    pool = POOL + paths
    if own:  # mostly values around the flag's own default, so that valid runs are common too
        return st.integers(0, 7 if valid else 3).flatmap(lambda k: st.sampled_from(own if k else pool))
    return st.sampled_from(pool)


@st.composite
def command_lines(draw: st.DrawFn, paths: list[str], csvs: list[str]) -> list[str]:
    name = draw(st.sampled_from(sorted(SUBCOMMANDS)))
    valid = draw(st.booleans())  # a mostly valid command line, or an adversarial one
    sub = SUBCOMMANDS[name]
    argv = [name]
    optional = [a for a in sub._actions if a.option_strings and a.dest != "help"]
    for action in sub._actions:
        if action.option_strings or action.dest == "help":
            continue
        # positionals: a runs file, or experiment names
        if action.nargs in ("*", "+"):
            argv += draw(st.lists(st.sampled_from(["claim1", "claim7_kumar", "real_formats", "bogus", "claim"]),
                                  max_size=2))
        else:
            argv.append(draw(st.sampled_from(csvs if valid else csvs + paths + ["", "bogus.csv"])))
    chosen = draw(st.lists(st.sampled_from(optional), max_size=3 if valid else 5,
                           unique_by=lambda a: a.dest)) if optional else []
    chosen += [a for a in optional if a.required and a not in chosen and (valid or draw(st.integers(0, 9)) > 0)]
    for action in chosen:
        flag = max(action.option_strings, key=len)
        if action.nargs == 0:
            argv.append(flag)
            continue
        value = draw(_value_strategy(action, paths, valid))
        if draw(st.booleans()) or value.startswith("-"):
            argv.append(f"{flag}={value}")
        else:
            argv += [flag, value]
    if not valid and draw(st.integers(0, 3)) == 0:  # a repeated flag, or an unknown one
        argv.append(draw(st.sampled_from(["--json", "--bogus", "extra"])))
    return argv


def _strict_json(text: str) -> object:
    def refuse(constant: str) -> object:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def call(argv: list[str]) -> tuple[int, str, str, float]:
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    code: object = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = exc.code
    return code if isinstance(code, int) else (0 if code is None else 1), out.getvalue(), err.getvalue(), \
        time.perf_counter() - start


@pytest.fixture
def fast_heavy_commands(monkeypatch, tmp_path):
    """Lower the time limit, keep executors in-process and stand in for the minutes-long library calls."""
    import concurrent.futures as cf

    from scalinglaw import _executors, bench, calibration
    from scalinglaw.validate import runner
    from scalinglaw.validate.base import ExperimentResult

    monkeypatch.delenv("SCALINGLAW_MAX_MEMORY", raising=False)
    monkeypatch.delenv("SCALINGLAW_CALIBRATION", raising=False)
    bench_result = bench.run(quick=True)
    from importlib import resources

    shipped = json.loads(resources.files("scalinglaw.data").joinpath("calibration.json").read_text())
    monkeypatch.setenv("SCALINGLAW_MAX_SECONDS", "1")
    monkeypatch.setattr(cf, "ProcessPoolExecutor", cf.ThreadPoolExecutor)
    monkeypatch.setattr(_executors, "_CONNECT_TIMEOUT", 0.5)
    monkeypatch.setattr(_executors, "_WORKER_TIMEOUT", 0.5)
    monkeypatch.setattr(bench, "run", lambda *, quick=False: bench_result)

    def calibrate(laws=calibration.CALIBRATED_LAWS, **_options):
        # same signature and return shape as calibration.calibrate: (constants per law, records per law)
        return {law: shipped[law] for law in laws}, {law: {"calibration": [], "test": []} for law in laws}

    monkeypatch.setattr(calibration, "calibrate", calibrate)

    def experiments(names=None, *, quick=False, executor=None, progress=False, out_dir="."):
        chosen = [runner.get_experiment(n).name for n in names] if names else runner.experiment_names()
        return [ExperimentResult(name=n, title=n, claim="", provenance="", criterion="", passed=True,
                                 prediction="", measurement="stand-in", checks=[], record={}, figure=None)
                for n in chosen]

    monkeypatch.setattr(runner, "run_experiments", experiments)
    monkeypatch.chdir(tmp_path)  # validate's default output folder is created in the working directory
    return tmp_path


def test_cli_fuzz_contract(fast_heavy_commands):
    tmp = fast_heavy_commands
    from scalinglaw.laws.fit import example_path

    (tmp / "dir").mkdir()
    ident = tmp / "identical.csv"
    ident.write_text("N,D,P,loss\n" + "1e8,1e10,8,3.1\n" * 5)
    paths = [str(tmp / "a.png"), str(tmp / "b.json"), str(tmp / "c.txt"), str(tmp / "dir"), "/proc/x.png",
             "/nonexistent/x.png", str(tmp / "report")]
    csvs = [str(example_path()), str(ident)]
    stats = {"calls": 0, "seconds": 0.0, "codes": {0: 0, 2: 0}}

    @settings(max_examples=N_CALLS, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(command_lines(paths, csvs))
    def one_call(argv: list[str]) -> None:
        code, out, err, seconds = call(argv)
        stats["calls"] += 1
        stats["seconds"] += seconds
        stats["codes"][code] = stats["codes"].get(code, 0) + 1
        assert code in (0, 2), (argv, code, err)
        assert "Traceback" not in err and "internal error" not in err, (argv, err)
        assert seconds < MAX_SECONDS_PER_CALL, (argv, seconds)
        if code == 2:
            assert err.count("\n") == 1 and err.endswith("\n"), (argv, err)
            assert err.startswith("scalinglaw"), (argv, err)
            assert out == "", (argv, out)
        else:
            assert "Warning" not in err and "error" not in err, (argv, err)
            if "--json" in argv and argv[0] not in ("formula",) and out.strip():
                _strict_json(out)

    one_call()
    print(f"fuzz: {stats['calls']} calls in {stats['seconds']:.1f} s, exit codes {stats['codes']}")
    assert stats["calls"] >= N_CALLS
    # both sides of the contract were exercised
    assert stats["codes"][0] > 0.03 * N_CALLS and stats["codes"][2] > 0.3 * N_CALLS, stats


def test_the_fuzzer_covers_every_subcommand_and_flag():
    """Every subcommand and every flag of the parser is reachable by the generator (no hand-written list)."""
    assert {"predict", "simulate", "optimize", "fit", "formula", "calibrate", "validate", "bench"} <= set(SUBCOMMANDS)
    for name, sub in SUBCOMMANDS.items():
        flags = [a for a in sub._actions if a.option_strings and a.dest != "help"]
        assert flags, name
        for action in flags:
            if action.nargs != 0:
                assert isinstance(_value_strategy(action, []), st.SearchStrategy), (name, action.dest)


def test_the_entry_point_keeps_the_contract(tmp_path):
    """The installed ``scalinglaw`` entry point (a real process): one line and exit 2, strict JSON on 0."""
    import subprocess
    import sys

    for argv, code in ((["predict", "--gamma", "-inf"], 2), (["simulate", "--reps", "1e9"], 2),
                       (["predict", "--law", "kumar", "--N", "1e8", "--D", "1e10", "--P", "inf", "--json"], 0)):
        proc = subprocess.run([sys.executable, "-m", "scalinglaw.cli", *argv], capture_output=True, text=True,
                              check=False, cwd=tmp_path, timeout=120)
        assert proc.returncode == code, (argv, proc.stderr)
        if code == 2:
            assert proc.stdout == "" and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        else:
            assert proc.stderr == ""
            data = _strict_json(proc.stdout)
            assert data["inputs"]["P"] == "inf"  # an infinite input is echoed as "inf", never as Infinity
