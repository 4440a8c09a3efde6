"""Command-line interface: a thin shell over the library.

Every subcommand parses flags, builds library objects, calls one library function and prints a readable
table or JSON. Bad input gives one line on stderr and exit code 2 (never a traceback). Heavy modules are
imported inside the command handlers so that ``scalinglaw --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["main"]

PROG = "scalinglaw"
EXIT_USAGE = 2

#: Library parameter names that the CLI spells differently.
_FLAG_NAMES = {"test_inputs": "--test-inputs", "sketch_draws": "--sketch-draws", "sketch_seed": "--sketch-seed",
               "sketch_basis": "--sketch-basis", "d_proxy": "--d-proxy", "lambda1": "--lambda1",
               "runs": "the runs file", "n_boot": "--boot"}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    raise SystemExit(EXIT_USAGE)


def _flag(name: str) -> str:
    """The CLI spelling of a library parameter name (names of files, lines and columns stay as they are)."""
    if name in _FLAG_NAMES:
        return _FLAG_NAMES[name]
    if name.isupper() and len(name) > 2:  # an environment variable or a positional (NAME), not a flag like --N
        return name
    return f"--{name}" if name.isidentifier() else name


# ------------------------------------------------------------------------------------------------ problem flags
def _add_problem_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("problem (linear regression trained by quantized one-pass SGD)")
    g.add_argument("--spectrum", default="power", choices=["power", "logpower"],
                   help="eigenvalues lambda_i = lambda1 i^-a (power) or lambda1 i^-1 log^-a(i+1) (default: power)")
    g.add_argument("--a", default="2", help="spectrum exponent a (default 2; > 1 when d = inf)")
    g.add_argument("--d", default="200", help="dimension, an integer or 'inf' (default 200)")
    g.add_argument("--lambda1", default="1", help="scale of the spectrum (default 1)")
    g.add_argument("--M", default=None, help="sketch size; omit for plain regression in d dimensions")
    g.add_argument("--N", default=None, help="number of samples, a multiple of B (default 10000)")
    g.add_argument("--B", default="1", help="batch size (default 1)")
    g.add_argument("--gamma", default="0.1", help="(initial) step size (default 0.1)")
    g.add_argument("--schedule", default="constant", choices=["constant", "geometric"],
                   help="constant step, or halved every N/log2(N) samples (default constant)")
    g.add_argument("--average", default="uniform", choices=["last", "uniform", "tail"],
                   help="output: last iterate, uniform average of w_0..w_{T-1}, tail average (default uniform)")
    g.add_argument("--sigma2", default="1", help="label noise variance (default 1)")
    g.add_argument("--target", default="ones", choices=["ones", "prior"],
                   help="w* = all ones, or a Gaussian source-condition prior (default ones)")
    g.add_argument("--b", default=None, help="source exponent b of the prior (default b = a, isotropic)")
    for name, what in [("data", "features"), ("labels", "labels"), ("params", "parameters"),
                       ("acts", "activations"), ("grads", "output gradients")]:
        g.add_argument(f"--{name}", default=None, metavar="Q",
                       help=f"quantizer of the {what}: additive:EPS, multiplicative:EPS, multiplicative-coord:EPS,"
                            " or a format (int8, fp8_e4m3, e2m1, int4:range=3, ...)")
    g.add_argument("--test-inputs", default="clean", choices=["clean", "quantized"],
                   help="measure the risk on clean inputs (default) or on Q_d(x)")
    g.add_argument("--sketch-draws", default="1", help="number of sketches averaged over (default 1)")
    g.add_argument("--sketch-seed", default="0", help="seed of the sketches (default 0)")
    g.add_argument("--sketch-basis", default="eigen", choices=["eigen", "raw"],
                   help="data quantization in the eigenbasis of S H S^T (default) or on raw S x")
    g.add_argument("--d-proxy", default=None, help="finite proxy dimension when d = inf (default automatic)")
    w = p.add_argument_group("data-parallel SGD (theory/distributed.md)")
    w.add_argument("--K", "--workers-K", dest="K", default="1", metavar="K",
                   help="data-parallel SGD workers, each with batch B; N counts the samples of all workers (default 1;"
                        " not --workers, which sets the local processes that run a simulation)")
    w.add_argument("--period", default="1", metavar="TAU",
                   help="local steps per communication round (default 1: gradients averaged every step)")
    w.add_argument("--comm", default=None, metavar="Q",
                   help="quantizer of each worker's message: norm:Q, qsgd:s=S, additive:EPS, multiplicative:EPS, "
                        "int8:range=R, ... (default: full precision)")


def _problem_from_args(args: argparse.Namespace) -> Any:
    from .problem import make_problem

    opt = {k: v for k, v in {"M": args.M, "d_proxy": args.d_proxy}.items() if v is not None}
    b = None if args.b is None else args.b
    return make_problem(
        a=args.a, d=args.d, spectrum=args.spectrum, lambda1=args.lambda1, b=b, target=args.target,
        N=args.N if args.N is not None else "10000", B=args.B, gamma=args.gamma, schedule=args.schedule,
        average=args.average,
        sigma2=args.sigma2, data=args.data, labels=args.labels, params=args.params, acts=args.acts,
        grads=args.grads, test_inputs=args.test_inputs, sketch_draws=args.sketch_draws,
        sketch_seed=args.sketch_seed, sketch_basis=args.sketch_basis, K=args.K, period=args.period, comm=args.comm,
        **opt,
    )


# ------------------------------------------------------------------------------------------------ output
#: Keys under which an infinite value echoes an input (``P = inf`` is "high precision"); written as "inf".
_ECHO_KEYS = frozenset({"inputs", "problem", "fixed", "fix", "options"})


def _strict(obj: Any, path: str = "", echo: bool = False) -> Any:
    """``obj`` as strict-JSON-ready Python data (numpy scalars and arrays converted).

    A NaN or an infinity among the results is refused (:class:`~scalinglaw.errors.NonFiniteResultError`) rather
    than printed; an infinite *input* echoed back (under ``inputs``, ``problem``, ...) is written as ``"inf"``.
    """
    from .errors import NonFiniteResultError

    try:
        import numpy as np

        if isinstance(obj, np.ndarray):
            obj = obj.tolist()
        elif isinstance(obj, np.generic):
            obj = obj.item()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, dict):
        return {str(k): _strict(v, f"{path}.{k}" if path else str(k), echo or k in _ECHO_KEYS) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_strict(v, f"{path}[{i}]", echo) for i, v in enumerate(obj)]
    if isinstance(obj, float) and not math.isfinite(obj):
        if echo and math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        raise NonFiniteResultError(path or "result", obj)
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _print_json(data: Any) -> None:
    """Write ``data`` as strict JSON (no NaN or Infinity: see :func:`_strict`)."""
    sys.stdout.write(json.dumps(_strict(data), indent=2, allow_nan=False) + "\n")


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.6g}"
    return str(x)


def _table(rows: Sequence[tuple[str, Any]], title: str = "") -> str:
    width = max((len(k) for k, _ in rows), default=0)
    lines = [title] if title else []
    lines += [f"  {k:<{width}}  {_fmt(v)}" for k, v in rows]
    return "\n".join(lines)


def _printed_json(args: argparse.Namespace, out: dict[str, Any]) -> bool:
    """Check ``out`` for non-finite results (in either output form); print it as JSON when ``--json`` was given."""
    checked = _strict(out)
    if args.json:
        _print_json(checked)
    return bool(args.json)


def _risk_rows(result: Any) -> list[tuple[str, Any]]:
    """The terms, then the excess risk and the risk, as table rows."""
    return [*result.terms.items(), ("excess risk", result.excess_risk), ("risk", result.risk)]


def _describe_problem(problem: Any) -> str:
    desc = problem.describe()
    q = ", ".join(f"{k}={v}" for k, v in desc["quantizers"].items() if v) or "none (full precision)"
    model = f"sketch M={problem.M}" if problem.M else "plain regression"
    if problem.distributed:
        comm = problem.comm.spec if problem.comm is not None else "full precision"
        model += f"; K={problem.K} workers, period {problem.period}, messages {comm}"
    return (
        f"problem: {desc['spectrum']}, target {desc['target']}, sigma2={_fmt(desc['sigma2'])}, {model}\n"
        f"training: N={desc['N']}, B={desc['B']}, gamma={_fmt(desc['gamma'])} ({desc['schedule']}), "
        f"output {desc['average']}, test inputs {desc['test_inputs']}\n"
        f"quantizers: {q}"
    )


# ------------------------------------------------------------------------------------------------ commands
#: Flags of the regression problem (predict and simulate), refused with an empirical law.
_PROBLEM_DESTS = ("spectrum", "a", "d", "lambda1", "M", "B", "gamma", "schedule", "average", "sigma2", "target", "b",
                  "data", "labels", "params", "acts", "grads", "test_inputs", "sketch_draws", "sketch_seed",
                  "sketch_basis", "d_proxy")
#: Flags of the empirical LLM laws, and which law takes which.
_EMPIRICAL_DESTS = ("D", "P", "Pw", "Pa", "Pkv", "Ppost", "E", "Mbits", "block", "G", "law_options")
_LAW_DESTS = {"kumar": ("D", "P", "Pw", "Pa", "Pkv", "Ppost", "law_options"), "sun": ("D", "E", "Mbits", "block"),
              "chen": ("D", "G"), "chinchilla": ("D",)}
_SKETCH_DESTS = ("sketch_draws", "sketch_seed", "sketch_basis")


def _check_sketch_flags(args: argparse.Namespace) -> None:
    if args.M is None:
        _refuse_given(args, _SKETCH_DESTS, "without a sketch (they configure the sketch of --M)")


def _use_calibration(args: argparse.Namespace) -> None:
    """``--calibration FILE``: the closed forms read their calibrated constants from FILE."""
    if getattr(args, "calibration", None) is not None:
        from .laws.regression import use_calibration

        use_calibration(args.calibration, name="--calibration")


def _cmd_predict(args: argparse.Namespace) -> None:
    if args.law is not None and args.law.partition(":")[0] in _EMPIRICAL:
        return _predict_empirical(args)
    _refuse_given(args, _EMPIRICAL_DESTS, "without an empirical --law (kumar, sun, chen, chinchilla)")
    _check_sketch_flags(args)
    if args.method in ("exact", "de"):
        for dest in ("compare_exact", "constants", "calibration"):
            _refuse_given(args, (dest,), f"with --method {args.method} (it belongs to the closed-form laws)")
        if args.method == "de":
            _refuse_given(args, ("sketch_draws", "sketch_seed", "d_proxy"),
                          "with --method de (the deterministic equivalent averages over every sketch, at the true d)")
    elif not args.compare_exact:
        _refuse_given(args, ("engine",), "with the closed form (it picks the exact engine's algorithm: add --method "
                                         "exact or --compare-exact)")
    if args.law is not None:
        from .laws.registry import law_class

        name = args.law.partition(":")[0]
        law_class(name)  # validates the name
        if name not in ("sgd", "sgd-quantized", "sketched", "sketched-quantized"):
            _fail(f"--law must be one of {', '.join(_EMPIRICAL)} or a regression law, got {args.law!r}")
        if args.method in ("exact", "de"):
            _fail(f"--law must be omitted with --method {args.method} (the exact engine uses no law), got {args.law!r}")
        law_constants = args.law.partition(":")[2]
        if law_constants:
            if args.constants is not None and args.constants != law_constants:
                _fail(f"--constants must agree with --law {args.law}, got {args.constants!r}")
            args.constants = law_constants
    _use_calibration(args)
    problem = _problem_from_args(args)
    if args.method == "exact" or args.compare_exact:
        from .costs import require_sketches

        require_sketches(problem)
    if args.method in ("exact", "de"):
        return _predict_exact(args, problem)
    from .predict import closed_form_risk

    result = closed_form_risk(problem, constants=args.constants)
    if args.law is not None and result.law != args.law.partition(":")[0]:
        _fail(f"--law must be the regression law that covers this set-up ({result.law}; the set-up picks it), "
              f"got {args.law!r}")
    exact = None
    if args.compare_exact:
        from .exact import exact_risk
        from .predict import effective_sizes

        ex = exact_risk(problem, method=args.engine)
        exact = {"excess_risk": ex.excess_risk, "terms": ex.terms, "tightness": result.excess_risk / ex.excess_risk}
        if not problem.distributed:  # effective sizes are defined for one worker (SPEC §5.5)
            exact.update(effective_sizes(problem).to_dict())
    out = {**result.to_dict(), "method": "closed", "problem": problem.describe()}
    if exact is not None:
        out["exact"] = exact
    if _printed_json(args, out):
        return
    rows = _risk_rows(result)
    print(f"scalinglaw predict: closed form '{result.law}' ({result.constants} constants; {result.provenance})")
    print(_describe_problem(problem))
    kind = ("upper bound" if result.verified_bound
            else "NOT a verified bound: real formats enter as idealised surrogates")
    print(_table(rows, f"terms ({kind}; they sum to the excess risk):"))
    if result.effective_model_size is not None:
        print(_table([("effective model size", result.effective_model_size),
                      ("effective data size", result.effective_data_size),
                      ("effective data size of the bound (N tr H / tr H^(q))", result.effective_data_size_bound)]))
    if exact is not None:
        rows = [("exact excess risk", exact["excess_risk"]), ("closed / exact", exact["tightness"])]
        if "effective_model_size" in exact:
            rows += [("effective model size (exact)", exact["effective_model_size"]["exact"]),
                     ("effective data size (exact)", exact["effective_data_size"]["exact"])]
        print(_table(rows, "against the exact engine:"))
        for note in exact.get("notes", []):
            print(f"note: {note}")
    for note in result.notes:
        print(f"note: {note}")


def _predict_exact(args: argparse.Namespace, problem: Any) -> None:
    if args.method == "de":
        from .deterministic import deterministic_risk as risk
    else:
        from .exact import exact_risk as risk

    result = risk(problem, method=args.engine)
    out = {**result.to_dict(), "method": args.method, "engine": result.method, "problem": problem.describe()}
    if _printed_json(args, out):
        return
    rows = _risk_rows(result)
    if args.method == "de":
        print("scalinglaw predict: expected risk over Gaussian sketches by the deterministic equivalent "
              f"({result.method.partition(':')[2]} engine on its nodes; no 1/2 factor)")
    else:
        print(f"scalinglaw predict: exact expected risk ({result.method} engine; no 1/2 factor)")
    print(_describe_problem(problem))
    print(_table(rows, "terms (they sum to the excess risk):"))
    print(f"numerical error of the excess risk (estimate): {_fmt(result.error)}"
          + ("" if result.error else " (every coordinate explicit: rounding only)"))
    print(f"largest stable gamma: {_fmt(result.max_stable_gamma)}")
    for note in result.notes:
        print(f"note: {note}")


_EMPIRICAL = ("kumar", "sun", "chen", "chinchilla")


def _law_options(text: str | None) -> dict[str, Any]:
    """Parse ``--law-options key=value,...`` (booleans and numbers converted)."""
    out: dict[str, Any] = {}
    if not text:
        return out
    for item in text.split(","):
        key, eq, value = item.partition("=")
        if not eq:
            _fail(f"--law-options must be key=value pairs, got {item!r}")
        v: Any = value.strip()
        if v.lower() in ("true", "on", "yes"):
            v = True
        elif v.lower() in ("false", "off", "no"):
            v = False
        else:
            try:
                v = float(v)
            except ValueError:
                pass
        out[key.strip()] = v
    return out


def _predict_empirical(args: argparse.Namespace) -> None:
    """``predict --law kumar|sun|chen|chinchilla``: the loss of an LLM run, term by term."""
    from .errors import ParameterError
    from .laws.registry import get_law

    name, _, law_set = args.law.partition(":")
    why = f"with --law {name} (an empirical LLM law: the flag does not apply to it)"
    _refuse_given(args, _PROBLEM_DESTS, why)
    _refuse_given(args, [d for d in _EMPIRICAL_DESTS if d not in _LAW_DESTS[name]], why)
    _refuse_given(args, ("compare_exact", "engine", "calibration"), why)
    if args.method == "exact":
        _refuse_given(args, ("method",), f"with --law {name} (the exact engine computes the regression problem, not "
                                         "an empirical law)")
    spec = args.law
    if args.constants is not None:
        if law_set and law_set != args.constants:
            _fail(f"--constants must agree with --law {args.law}, got {args.constants!r}")
        spec = f"{name}:{args.constants}"
    law = get_law(spec, **_law_options(args.law_options))
    name = law.name
    if args.N is None or args.D is None:
        _fail(f"--law {name} needs --N (parameters) and --D (training tokens)")
    values: dict[str, Any] = {"N": args.N, "D": args.D}
    notes: list[str] = []
    if name == "kumar":
        if args.P is not None:
            values["P"] = args.P
        for flag, key in (("Pw", "P_w"), ("Pa", "P_a"), ("Pkv", "P_kv"), ("Ppost", "P_post")):
            if getattr(args, flag) is not None:
                values[key] = getattr(args, flag)
        if args.P is None and all(getattr(args, f) is None for f in ("Pw", "Pa", "Pkv")):
            notes.append("no training precision given (--P or --Pw/--Pa/--Pkv): high precision, P = inf")
    elif name == "sun":
        for flag, key in (("E", "E"), ("Mbits", "M"), ("block", "B")):
            if getattr(args, flag) is None:
                _fail(f"--law sun needs --E, --Mbits and --block, missing --{flag}")
            values[key] = getattr(args, flag)
    elif name == "chen":
        if args.G is None:
            _fail("--law chen needs --G (quantization group size)")
        values["G"] = args.G
    try:
        terms = {k: float(v) for k, v in law.breakdown(**values).items()}
    except ParameterError as exc:
        flags = {"P_w": "--Pw", "P_a": "--Pa", "P_kv": "--Pkv", "P_post": "--Ppost", "P": "--P", "G": "--G",
                 "N": "--N", "D": "--D", "E": "--E"}
        if name == "sun":
            flags.update(M="--Mbits", B="--block")
        raise ParameterError(flags.get(exc.name, exc.name), exc.value, exc.requirement) from None
    loss = float(sum(terms.values()))
    out = {"loss": loss, "terms": terms, "law": name, "constants": law.constants.name,
           "provenance": law.provenance, "inputs": {k: float(v) for k, v in values.items()}, "notes": notes}
    out = _strict(out)
    if args.json:
        _print_json(out)
        return
    print(f"scalinglaw predict: {law.title}")
    print(f"constants: {law.constants.name} ({law.constants.provenance}; {law.constants.source})")
    print(_table([(k, float(v)) for k, v in values.items()], "inputs:"))
    print(_table([*terms.items(), ("loss", loss)], "terms (they sum to the loss):"))
    for note in notes:
        print(f"note: {note}")


def _cmd_formula(args: argparse.Namespace) -> None:
    from .laws.registry import get_law

    if args.latex and args.markdown:
        _fail("--latex must be omitted with --markdown (choose one output form)")
    if args.markdown:
        _refuse_given(args, ("term",), "with --markdown (the generated block shows the whole law)")
    options = {}
    for t in ("data", "labels", "params", "acts", "grads"):
        v = getattr(args, t)
        if v is not None:
            if not v.strip():
                _fail(f"--{t} must be a scheme name (additive, multiplicative, multiplicative-coord or none), "
                      f"got {v!r}")
            if ":" in v:
                _fail(f"--{t} must be a scheme name (additive, multiplicative; formula shows the law, not a value), "
                      f"got {v!r}")
            options[t] = v
    law = get_law(args.law, **options) if options else get_law(args.law)
    if args.term is not None:
        law.expression(args.term)  # validates the name before anything is printed
    if args.markdown:
        from .laws.docs import render

        print(render(law))
        return
    if args.latex:
        print(law.latex(args.term))
        for sym, expr in law.latex_definitions().items():
            print(f"{sym} = {expr}")
        return
    import sympy as sp

    print(f"{law.name}: {law.title}")
    print(f"provenance: {law.provenance}")
    terms = law.terms()
    shown = {args.term: law.expression(args.term, expand=False)} if args.term else terms
    for name, expr in shown.items():
        print(f"  {name} = {sp.sstr(expr)}")
    for sym, expr in law.definitions().items():
        print(f"  where {sym} = {sp.sstr(expr)}")
    print("variables:")
    for v in law.variables:
        print(f"  {v.name}: {v.description}")
    print(f"constants ({law.constants.name}; {law.constants.provenance}):")
    for c in law.constant_names:
        desc = law.constant_descriptions.get(c, "")
        print(f"  {c} = {_fmt(law.constants[c])}" + (f"  ({desc})" if desc else ""))


def _cmd_fit(args: argparse.Namespace) -> None:
    from . import _checks
    from .laws.fit import fit, read_runs
    from .laws.registry import get_law

    if args.out is not None:
        _output_file("--out", args.out)
    law = get_law(args.law, **_law_options(args.law_options))
    runs = read_runs(args.csv, law)
    n_boot = _checks.integer("--boot", args.boot, minimum=0)
    if n_boot == 1:
        _fail("--boot must be 0 (no intervals) or >= 2 (one resample gives no interval), got 1")
    seed = _checks.integer("--seed", args.seed, minimum=0)
    free = None
    if args.free is not None:
        free = [c.strip() for c in args.free.split(",")]
        if not all(free):
            _fail(f"--free must list constants of law {law.name} separated by commas (omit it for the law's "
                  f"default set), got {args.free!r}")
    result = fit(law, runs, free=free, n_boot=n_boot, seed=seed)
    if args.out is not None:
        result.save(args.out)
    if args.json:
        from ._json import jsonable

        _print_json(jsonable({**result.to_dict(), **({"out": args.out} if args.out else {})}))
    else:
        print(result.report())
        if args.out is not None:
            print(f"wrote {args.out} (constants, options and {n_boot} bootstrap draws; use optimize --from-fit)")


def _fix_pairs(items: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items or []:
        for pair in item.split(","):
            key, eq, value = pair.partition("=")
            key = key.strip()
            if not eq:
                _fail(f"--fix must be NAME=VALUE (e.g. P=8), got {pair!r}")
            if key in out:
                _fail(f"--fix must fix each variable once, got {key} twice ({key}={_fmt(out[key])} and {key}={value})")
            try:
                out[key] = float(value)
            except ValueError:
                _fail(f"--fix {key} must be a number, got {value!r}")
    return out


def _frontier_budgets(text: str, model: Any) -> Any:
    import numpy as np

    from .allocate import require_frontier

    parts = text.split(":")
    if len(parts) != 3:
        _fail(f"--frontier must be C1:C2:K (e.g. 1e18:1e24:50), got {text!r}")
    from . import _checks

    c1 = _checks.positive("--frontier C1", parts[0])
    c2 = _checks.greater("--frontier C2", parts[1], c1)
    k = _checks.integer("--frontier K", parts[2], minimum=2)
    require_frontier(model, k)
    return np.logspace(np.log10(c1), np.log10(c2), k)


def _output_file(flag: str, path: str, *, figure: bool = False) -> str:
    """Refuse an output file path that cannot be written, before any computation.

    Checks that the folder exists, that the file can be opened for writing (a file created by the check is
    removed again), and for a figure that matplotlib knows its extension.
    """
    p = Path(path)
    if not path.strip():
        _fail(f"{flag} must be a file path, got {path!r}")
    if p.is_dir():
        _fail(f"{flag} must be a file path, not a directory, got {path!r}")
    if not p.parent.is_dir():
        _fail(f"{flag} must be in an existing folder, got {path!r}")
    if figure:
        try:
            from matplotlib.backend_bases import FigureCanvasBase
        except ImportError:
            _fail(f"{flag} needs matplotlib (pip install 'scalinglaw[plot]'), got {path!r}")
        kinds = FigureCanvasBase.get_supported_filetypes()
        ext = p.suffix.lower().lstrip(".")
        if ext not in kinds:
            _fail(f"{flag} must end in a figure format ({', '.join(sorted(kinds))}), got {path!r}")
    existed = p.exists()
    try:
        with open(p, "ab"):
            pass
    except OSError as exc:
        _fail(f"{flag} must be a file that can be written ({exc.strerror or exc}), got {path!r}")
    if not existed:
        p.unlink(missing_ok=True)
    return path


#: The optimize flags of the regression model (sketched, sketched-quantized).
_REGRESSION_OPT_DESTS = ("a", "b", "sigma2", "gamma", "B", "quantize", "scheme", "range", "calibration")


def _optimize_distributed(args: argparse.Namespace) -> None:
    """``optimize --law distributed``: workers, model size and message bits under a communication budget."""
    from . import _checks
    from .allocate import optimize_communication

    if args.budget is None:
        _fail("--law distributed needs --budget (bits per step with --budget-kind comm-step, total bits with "
              "comm-total)")
    if args.budget_kind not in ("comm-step", "comm-total"):
        _fail(f"--budget-kind must be comm-step or comm-total with --law distributed, got {args.budget_kind!r}")
    for flag in ("frontier", "plot", "bits_plot", "isoflop", "isoloss", "formats", "fix", "quantize"):
        if getattr(args, flag, None):
            _fail(f"--{flag.replace('_', '-')} must be omitted with --law distributed, got {getattr(args, flag)!r}")
    kind = args.budget_kind.removeprefix("comm-")
    steps = None if args.steps is None else _checks.positive("--steps", args.steps)
    if kind == "step" and steps is None:
        _fail("--budget-kind comm-step needs --steps T (the server steps, i.e. the wall clock)")
    if kind == "total" and steps is not None:
        _fail(f"--steps must be omitted with --budget-kind comm-total (T follows from the bits), got {args.steps}")
    compute = None if args.compute_cap is None else _checks.positive("--compute-cap", args.compute_cap)
    res = optimize_communication(
        _checks.positive("--budget", args.budget), kind=kind, steps=steps, a=_checks.as_float("--a", args.a),
        b=None if args.b is None else _checks.as_float("--b", args.b), sigma2=_checks.as_float("--sigma2", args.sigma2),
        gamma=_checks.as_float("--gamma", args.gamma), B=_checks.integer("--B", args.B, minimum=1),
        scheme=args.comm_scheme, range_=_checks.as_float("--range", args.range), compute=compute)
    if args.json:
        _print_json(res.to_dict())
        return
    print(f"scalinglaw optimize: distributed SGD, {kind} communication budget {res.budget:.4g} bits "
          f"({'QSGD' if res.scheme == 'qsgd' else 'fixed-range INT'} messages)")
    print(_table([("workers K", res.K), ("model size M", res.M), ("bits per coordinate b", res.bits),
                  ("samples N", res.N), ("server steps T", res.steps), ("loss (excess risk)", res.loss),
                  ("regime (dominant term)", res.regime)]))
    print(_table(list(res.terms.items()), "terms:"))
    for note in res.notes:
        print(f"note: {note}")


def _cmd_optimize(args: argparse.Namespace) -> None:
    from . import _checks, allocate
    from . import plot as plots

    if args.law == "distributed":
        return _optimize_distributed(args)
    if args.budget_kind.startswith("comm-"):
        _fail(f"--budget-kind {args.budget_kind} needs --law distributed, got --law {args.law}")
    for flag, value in (("--steps", args.steps), ("--compute-cap", args.compute_cap)):
        if value is not None:
            _fail(f"{flag} needs --law distributed, got {value}")

    for attr, needs, flag in (("plot", "frontier", "--frontier"), ("bits_plot", "frontier", "--frontier"),
                              ("isoflop", "budget", "--budget"), ("isoloss", "budget", "--budget")):
        value = getattr(args, attr)
        if value is not None:
            if getattr(args, needs) is None:
                _fail(f"--{attr.replace('_', '-')} must be used with {flag}, got {value!r} without it")
            _output_file("--" + attr.replace("_", "-"), value, figure=True)
    name = args.law.partition(":")[0]
    regression = name in ("sketched", "sketched-quantized")
    if not regression:
        _refuse_given(args, _REGRESSION_OPT_DESTS, f"with --law {name} (a flag of the regression model, --law "
                                                   "sketched or sketched-quantized)")
    if name != "sun":
        _refuse_given(args, ("block",), f"with --law {name} (Sun et al.'s block size)")
    if name != "chen":
        _refuse_given(args, ("G",), f"with --law {name} (Chen et al.'s group size)")
    if args.formats is not None and not [f for f in args.formats.split(",") if f.strip()]:
        _fail(f"--formats must list at least one format (e.g. int4,int8,bf16), got {args.formats!r}")
    _use_calibration(args)

    for attr in ("budget", "flat_rtol", "flat_factor", "a", "b", "gamma", "sigma2", "B", "range", "block", "G"):
        value = getattr(args, attr, None)
        if value is not None:
            setattr(args, attr, _checks.as_float("--" + attr.replace("_", "-"), value))
    args.B = _checks.integer("--B", args.B, minimum=1)
    options: dict[str, Any] = _law_options(args.law_options)
    if name in ("sketched", "sketched-quantized"):
        for key, flag in (("a", "--a"), ("b", "--b"), ("gamma", "--gamma"), ("sigma2", "--sigma2"), ("B", "--B"),
                          ("scheme", "--scheme"), ("range_", "--range"), ("quantize", "--quantize")):
            if key in options:
                _fail(f"--law-options must not set {key} (use {flag}), got {key}={options[key]}")
        options.update(a=float(args.a), gamma=float(args.gamma), sigma2=float(args.sigma2), B=float(args.B),
                       scheme=args.scheme, range_=float(args.range))
        if args.b is not None:
            options["b"] = float(args.b)
        quantize = [t for t in (args.quantize or "").split(",") if t]
        if name == "sketched-quantized" and not quantize:
            quantize = ["data"]
        if name == "sketched" and quantize:
            _fail("--quantize needs --law sketched-quantized")
        options["quantize"] = quantize
    elif name == "sun":
        if not args.block > 1:
            _fail("--block must be > 1 for optimize (with B = 1 Sun et al.'s law has no quantization term, so "
                  f"precision costs nothing and the allocation has no optimum; predict accepts B = 1), got "
                  f"{_fmt(args.block)}")
        options["block"] = float(args.block)
    elif name == "chen":
        options["G"] = float(args.G)
    flatness_tol, level, fitted = _uncertainty_flags(args, name, options)
    if fitted is not None:
        from .uncertainty import _model as fitted_model

        model = fitted_model(fitted, options)
    else:
        model = allocate.allocation_model(args.law, **options)
    fix = _fix_pairs(args.fix)
    if not model.precision_free:
        why = (f"with --law {args.law} (its loss has no free precision term, so a format or bit count would only "
               "change the budget's accounting)")
        _refuse_given(args, ("formats", "integer_bits", "bits_plot", "isoloss"), why)
        bits = model.labels["precision"]
        if bits in fix:
            _fail(f"--fix {bits} must be omitted {why}, got {_fmt(fix[bits])}")
    formats = [f.strip() for f in (args.formats or "").split(",") if f.strip()] or None
    out: dict[str, Any] = {}
    if args.frontier:
        budgets_fr = _frontier_budgets(args.frontier, model)
        if fitted is not None:
            from .uncertainty import frontier_with_uncertainty

            fr = frontier_with_uncertainty(fitted, budgets_fr, kind=args.budget_kind, fix=fix, level=level, **options)
        else:
            fr = allocate.frontier(model, budgets_fr, kind=args.budget_kind, fix=fix, check=True)
        out = fr.to_dict()
        if args.plot:
            plots.save(plots.plot_frontier(fr), args.plot)
            out["plot"] = args.plot
        if args.bits_plot:
            plots.save(plots.plot_bits_vs_compute(fr), args.bits_plot)
            out["bits_plot"] = args.bits_plot
    if args.budget is not None:
        if fitted is not None:
            from .uncertainty import optimize_with_uncertainty

            uncertain = optimize_with_uncertainty(
                fitted, float(args.budget), kind=args.budget_kind, fix=fix, level=level, flatness_tol=flatness_tol,
                flat_rtol=float(args.flat_rtol), flat_factor=float(args.flat_factor), **options)
            alloc, result = uncertain.allocation, uncertain.to_dict()
        else:
            alloc = allocate.optimize_allocation(model, float(args.budget), kind=args.budget_kind, formats=formats,
                                                 fix=fix, integer_bits=args.integer_bits,
                                                 flat_rtol=float(args.flat_rtol),
                                                 flat_factor=float(args.flat_factor), flatness_tol=flatness_tol)
            result = alloc.to_dict()
        if args.isoflop:
            import numpy as np

            budgets = float(args.budget) * np.logspace(-2, 2, 5)
            curves = allocate.isoflop(model, budgets)
            bands = None
            if fitted is not None:
                from .uncertainty import isoflop_bands

                bands = isoflop_bands(fitted, curves, level=level, **options)
            plots.save(plots.plot_isoflop(curves, bands=bands), args.isoflop)
            result["isoflop_plot"] = args.isoflop
        if args.isoloss:
            import numpy as np

            lo, hi = model.precision_bounds if model.precision_free else (2.0, 16.0)
            grid = allocate.isoloss(model, data=alloc.data, sizes=alloc.size * np.logspace(-2, 2, 120),
                                    precisions=np.linspace(max(lo, 1.01), hi, 90))
            mem = alloc.size * alloc.precision * np.array([0.25, 1.0, 4.0])
            plots.save(plots.plot_isoloss(grid, memory_budgets=mem, optimum=(alloc.size, alloc.precision)),
                       args.isoloss)
            result["isoloss_plot"] = args.isoloss
        if out:
            out = {"frontier": out, **result}
        else:
            out = result
    elif not args.frontier:
        _fail("optimize needs --budget C or --frontier C1:C2:K")
    out = _strict(out)
    if args.json:
        from ._json import jsonable

        _print_json(jsonable(out))
        return
    if args.budget is not None:
        lab = model.labels
        rows = [(lab["size"], out[lab["size"]]), (lab["data"], out[lab["data"]])]
        if "format" in out:
            rows.append(("format", out["format"]))
        rows += [(lab["precision"] + " (bits)", out[lab["precision"]]), ("loss", out["loss"]),
                 ("dominant term", out["dominant_term"]), ("method", out["method"])]
        print(f"scalinglaw optimize: {model.name}, {args.budget_kind} budget {float(args.budget):.4g}")
        print(_table(rows))
        flat = out.get(f"{lab['size']}_within_flat_rtol")
        if flat:
            print(f"{lab['size']} within {float(args.flat_rtol):.2%} of the optimal loss: "
                  f"[{flat[0]:.4g}, {flat[1]:.4g}]")
        _print_uncertainty(out, lab)
        for key, value in out.get("check", {}).items():
            if key.startswith("rel_diff"):
                print(f"check against the {'numeric optimum' if 'numeric' in out['check'] else 'closed form'}: "
                      f"{key} = {value:.2e}")
        for fmt, cand in out.get("candidates", {}).items():
            print(f"  candidate {fmt}: loss {cand['loss']:.6g}")
    if args.frontier:
        fr_out = out.get("frontier", out)
        print(f"frontier over {len(fr_out['budgets'])} budgets ({fr_out['method']}): exponent of "
              f"{model.labels['size']}* = {fr_out['exponent_' + model.labels['size']]:.4f}")


def _uncertainty_flags(args: argparse.Namespace, name: str, options: dict[str, Any]) -> tuple[float, Any, Any]:
    """Validate --flatness-tol, --level, --compute-bits and --from-fit; returns (tolerance, level, fit or None)."""
    from . import _checks
    from .errors import ParameterError

    tol = 0.005
    if args.flatness_tol is not None:
        if args.budget is None:
            _fail(f"--flatness-tol must be used with --budget (the flatness range of one optimum), "
                  f"got {args.flatness_tol!r} without it")
        if name == "exact":
            _fail(f"--flatness-tol must not be used with --law exact (its coarse search reports no flatness "
                  f"range), got {args.flatness_tol!r}")
        tol = _checks.positive("--flatness-tol", args.flatness_tol)
        if tol >= 1:
            _fail(f"--flatness-tol must be < 1 (a relative loss tolerance, e.g. 0.005 for 0.5%), "
                  f"got {args.flatness_tol}")
    if args.compute_bits is not None:
        if name != "chen":
            _fail(f"--compute-bits must be used with --law chen only (it prices Chen's QAT compute), "
                  f"got {args.compute_bits!r} with --law {args.law}")
        options["compute_bits"] = _checks.positive("--compute-bits", args.compute_bits)
    level = None
    if args.level is not None:
        if args.from_fit is None:
            _fail(f"--level must be used with --from-fit (intervals over the fit's bootstrap draws), got {args.level}")
        level = _checks.as_float("--level", args.level)
        if not 0 < level < 1:
            _fail(f"--level must be in (0, 1), e.g. 0.95, got {args.level}")
    if args.from_fit is None:
        return tol, level, None
    for flag, value in (("--formats", args.formats), ("--integer-bits", args.integer_bits or None),
                        ("--law-options", args.law_options)):
        if value is not None:
            why = ("the fit file records the law's options" if flag == "--law-options" else
                   "the optima of the draws are continuous")
            _fail(f"{flag} must not be combined with --from-fit ({why}), got {value!r}")
    from .laws.fit import load_fit

    try:
        fitted = load_fit(args.from_fit)
    except ParameterError as exc:
        where = "--from-fit" if exc.name == "fit file" else f"--from-fit {exc.name}"
        raise ParameterError(where, exc.value, exc.requirement) from None
    if fitted.law != name:
        _fail(f"--law must be the fitted law {fitted.law} (from --from-fit {args.from_fit}), got {args.law!r}")
    set_name = args.law.partition(":")[2]
    if set_name:
        from .laws.registry import get_law

        named = get_law(args.law).constants
        clash = [c for c in fitted.fixed if c in named and named[c] != fitted.constants[c]]
        if clash:
            _fail(f"--law must name the constant set the fit held fixed ({fitted.base_constants}: {clash[0]} = "
                  f"{fitted.constants[clash[0]]:g}), got {args.law!r}")
    if fitted.n_boot < 2:
        _fail(f"--from-fit must hold >= 2 bootstrap draws (fit with --boot 2 or more), got {fitted.n_boot}")
    return tol, level, fitted


def _print_uncertainty(out: dict[str, Any], lab: dict[str, str]) -> None:
    """The intervals, the flatness range and the law-specific details of an optimize result (text output)."""
    ratio = f"{lab['data']}_per_{lab['size']}"
    intervals = out.get("intervals")
    if intervals:
        unc = out["uncertainty"]
        print(f"{unc['level']:.0%} intervals over {unc['draws']} bootstrap draws of the fit "
              f"({unc['failed_draws']} without an interior optimum):")
        for key in (lab["size"], lab["data"], ratio, lab["precision"], "loss"):
            lo, hi = intervals[key]
            print(f"  {key:<8} [{_fmt(lo)}, {_fmt(hi)}]")
    flat = out.get("flatness")
    if flat:
        print(f"flatness: allocations within {flat['tolerance']:.2%} of the optimal loss span")
        for key in (lab["size"], ratio, lab["precision"]):
            lo, hi = flat[key]
            print(f"  {key:<8} [{_fmt(lo)}, {_fmt(hi)}]")
        if flat["open_ends"]:
            print(f"  (the set reaches the search bound at: {', '.join(flat['open_ends'])})")
    layout = out.get("layout")
    if layout:
        extra = ""
        if "integer" in layout:
            extra = f"; integer layout E{layout['integer']['E']:g}M{layout['integer']['M']:g}"
        print(f"layout: E = {_fmt(layout['E'])}, M = {_fmt(layout['M'])} ({layout['rule']}){extra}")
    pricing = out.get("pricing")
    if pricing:
        print(f"compute pricing: {pricing['formula']} ({pricing['note']}; --compute-bits to change)")


def _cmd_bench(args: argparse.Namespace) -> None:
    from .bench import run

    result = run(quick=args.quick)
    if args.json:
        _print_json(result)
        return
    ex, sim, comp = result["exact"], result["simulator"], result["compiled"]
    print("scalinglaw bench (best of repeated wall-clock runs on this machine)")
    print(_table([
        (f"exact_n_ratio  (d={ex['d']}: N={ex['N_large']:.0e} vs {ex['N_small']:.0e}; target <= 2)", ex["ratio"]),
        ("  seconds at the large N (target <= 1)", ex["seconds_large"]),
        ("  max relative difference against the recursion (target <= 1e-10)", ex["max_rel_diff_vs_recursion"]),
        (f"sim_over_rng  (d={sim['d']}, {sim['reps']} replicas, {sim['steps']} steps; target <= 2)", sim["ratio"]),
        (f"compiled_over_numpy  ({comp['points']} points; target <= 1.5)", comp["ratio"]),
        ("100-budget frontier, closed form (s)", result["frontier"]["closed"]["seconds"]),
        ("frontier, numeric search (s)", result["frontier"]["numeric"]["seconds"]),
        *((f"100-budget frontier with {u['draws']} bootstrap draws, {name} (s; target < 1; "
           f"{u['ratio_to_point_frontier']:.1f} x the frontier without bands)", u["seconds"])
          for name, u in result["frontier_uncertainty"].items()),
        ("scalinglaw --help (s)", result["help"]["seconds"]),
        *[(f"predict --method de --M {v['M']:g} --d inf --N {v['N']:g} (s; MB)", f"{v['seconds']:.3g}; "
           f"{v['max_rss_mb']:.0f}") for v in result["deterministic_equivalent"].values()],
    ]))


def _cmd_calibrate(args: argparse.Namespace) -> None:
    from .calibration import CALIBRATED_LAWS, SIZES, calibrate, read_records, write, write_records

    laws = CALIBRATED_LAWS if args.laws is None else tuple(args.laws.split(","))
    for name in laws:
        if name not in CALIBRATED_LAWS:
            _fail(f"--laws must list laws among {', '.join(CALIBRATED_LAWS)}, got {name!r}")
    for flag, path in (("--out", args.out), ("--write-records", args.write_records)):
        if path is not None:
            _output_file(flag, path)
    records = None
    if args.records is not None:
        try:
            records = read_records(args.records)
        except (OSError, ValueError, KeyError) as exc:
            _fail(f"--records must be a calibration records file written by --write-records, got {args.records!r} "
                  f"({type(exc).__name__})")
        missing = [n for n in laws if n not in records]
        if missing:
            _fail(f"--records must hold every law of --laws; {args.records!r} lacks {', '.join(missing)}")
    sizes = {"calibration": 16, "test": 8} if args.quick else SIZES
    from ._executors import make_executor

    executor, release = make_executor(args.workers, None)
    try:
        result, recs = calibrate(laws, sizes=sizes, executor=executor, records=records,
                                 progress=sys.stderr.isatty(), checkpoint=args.write_records)
    finally:
        release()
    if args.write_records:  # first: the engine's work is never lost to a later error
        write_records(recs, args.write_records)
    result = _strict(result)
    if args.out:
        write(result, args.out)
    if args.json or not args.out:
        _print_json(result)
    else:
        for name, entry in result.items():
            t = entry["test"]
            print(f"{name}: constants {entry['constants']['values']}; test design closed/exact "
                  f"min {t['min']:.3g}, median {t['median']:.3g}, 90th percentile {t['p90']:.3g}, max {t['max']:.3g} "
                  f"(n={t['n']})")
        print(f"wrote {args.out}")


def _cmd_simulate(args: argparse.Namespace) -> None:
    _check_sketch_flags(args)
    if args.workers is None:
        _refuse_given(args, ("force_workers",), "without --workers")
    problem = _problem_from_args(args)
    import numpy as np

    from . import _checks
    from ._executors import make_executor
    from .simulate import simulate

    reps = _checks.integer("--reps", args.reps, minimum=2)
    seed = _checks.integer("--seed", args.seed, minimum=0)
    workers = None if args.workers is None else _checks.integer("--workers", args.workers, minimum=1)
    from .costs import require_simulation

    require_simulation(problem, int(reps), itemsize=4 if args.float32 else 8, workers=int(workers or 1))
    executor, release = make_executor(args.workers, args.dask, force_workers=args.force_workers)
    try:
        result = simulate(problem, reps=reps, seed=seed, executor=executor,
                          dtype=np.float32 if args.float32 else np.float64,
                          progress=not args.json and sys.stderr.isatty())
    finally:
        release()
    d = result.to_dict()
    out = _strict({**d, "problem": problem.describe()})
    if args.json:
        _print_json(out)
        return
    print(f"scalinglaw simulate: Monte Carlo of quantized SGD ({d['reps']} replicas, seed {seed})")
    print(_describe_problem(problem))
    print(_table([("excess risk (mean)", d["excess_risk_mean"]), ("standard error", d["excess_risk_sem"]),
                  ("risk (mean)", d.get("risk_mean", float("nan")))]))
    for note in d.get("notes", []):
        print(f"note: {note}")


# ------------------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=(
        "scalinglaw: the reference calculator for how numerical precision changes scaling laws. "
        "Exact risk of quantized SGD, Monte Carlo, closed-form laws, empirical precision laws, allocation."))
    from . import __version__

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("predict", help="predicted risk of a configuration, every term broken out")
    p.add_argument("--method", default="closed", choices=["closed", "exact", "de"],
                   help="closed: the calibrated closed-form law (default); exact: the exact moment engine; de: the "
                        "sketched model averaged over sketches by its deterministic equivalent (needs --M)")
    p.add_argument("--law", default=None, help="an empirical law (kumar, sun, chen, chinchilla[:SET]) or a "
                                               "regression law (the default picks one from the set-up)")
    p.add_argument("--constants", default=None, help="constant set of the closed form (calibrated, unit, paper)")
    p.add_argument("--calibration", default=None, metavar="FILE",
                   help="calibrated constants from FILE (written by scalinglaw calibrate --out FILE) instead of the "
                        "shipped ones; the environment variable SCALINGLAW_CALIBRATION does the same")
    p.add_argument("--compare-exact", action="store_true",
                   help="with --method closed: also the exact risk and the effective sizes from the exact engine")
    p.add_argument("--engine", default="auto", choices=["auto", "spectral", "recursion"],
                   help="exact engine: closed form per phase (spectral), step by step (recursion), or auto")
    _add_problem_flags(p)
    e = p.add_argument_group("empirical LLM laws (--law kumar|sun|chen|chinchilla; --N is then parameters)")
    e.add_argument("--D", default=None, help="training tokens")
    e.add_argument("--P", default=None, help="Kumar: training precision (bits) of weights, activations and KV")
    e.add_argument("--Pw", default=None, help="Kumar: weight precision (bits; inf = high)")
    e.add_argument("--Pa", default=None, help="Kumar: activation precision (bits)")
    e.add_argument("--Pkv", default=None, help="Kumar: KV-cache precision (bits)")
    e.add_argument("--Ppost", default=None, help="Kumar: post-training quantization precision (bits)")
    e.add_argument("--E", default=None, help="Sun: exponent bits")
    e.add_argument("--Mbits", default=None, help="Sun: mantissa bits")
    e.add_argument("--block", default=None, help="Sun: block size of the scaling factor")
    e.add_argument("--G", default=None, help="Chen: quantization group size")
    e.add_argument("--law-options", default=None, metavar="K=V,...",
                   help="options of the law, e.g. bias=false,ptq=false (kumar)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_predict)

    f = sub.add_parser("formula", help="a law as a formula: terms, definitions, symbols, constants")
    f.add_argument("--law", required=True, help="sgd, sgd-quantized, sketched, sketched-quantized, kumar, sun, "
                                                "chen or chinchilla (optionally NAME:CONSTANTS)")
    f.add_argument("--term", default=None, help="one named term")
    f.add_argument("--latex", action="store_true", help="print LaTeX")
    f.add_argument("--markdown", action="store_true", help="print the generated theory/ formula block")
    for name in ("data", "labels", "params", "acts", "grads"):
        f.add_argument(f"--{name}", default=None, metavar="SCHEME",
                       help=f"scheme of the {name} quantizer for the quantized laws (additive, multiplicative)")
    f.set_defaults(func=_cmd_formula)

    o = sub.add_parser("optimize", help="optimal model size, data and precision under a budget")
    o.add_argument("--law", required=True, help="chinchilla[:hoffmann|:hoffmann-tex|:epoch|:epoch-paper], kumar, sun, "
                                                "chen, sketched, sketched-quantized or distributed (workers, model "
                                                "size and message bits under a communication budget)")
    o.add_argument("--budget", default=None, help="compute (FLOPs; M*N*P bit-operations for the regression model) "
                                                  "or memory (bits)")
    o.add_argument("--budget-kind", default="compute", choices=["compute", "memory", "comm-step", "comm-total"],
                   help="compute, memory, or (--law distributed) communicated bits per step or in total")
    o.add_argument("--formats", default=None, help="restrict precision to named formats, e.g. int4,int8,fp8_e4m3,bf16")
    o.add_argument("--fix", action="append", default=None, metavar="NAME=VALUE", help="fix N, D, M or P")
    o.add_argument("--integer-bits", action="store_true", help="restrict a continuous precision to integers")
    o.add_argument("--frontier", default=None, metavar="C1:C2:K", help="optimal allocation over K budgets")
    o.add_argument("--plot", default=None, metavar="PNG", help="with --frontier: figure of the frontier")
    o.add_argument("--bits-plot", default=None, metavar="PNG", help="with --frontier: optimal bits against compute")
    o.add_argument("--isoflop", default=None, metavar="PNG", help="with --budget: isoFLOP curves around it")
    o.add_argument("--isoloss", default=None, metavar="PNG", help="with --budget: iso-loss contours in (size, bits)")
    o.add_argument("--flat-rtol", default="1e-3", help="flatness tolerance on the loss (default 1e-3)")
    o.add_argument("--flat-factor", default="100", help="refuse when sizes over this factor are within tolerance")
    o.add_argument("--flatness-tol", default=None,
                   help="report the allocations within this relative loss of the optimum (default 0.005 = 0.5%%)")
    o.add_argument("--from-fit", default=None, metavar="JSON",
                   help="constants and bootstrap draws from scalinglaw fit --out: intervals on N*, D*, P*, loss")
    o.add_argument("--level", default=None, help="with --from-fit: level of the percentile intervals (default: "
                                                 "the fit's, 0.95)")
    o.add_argument("--compute-bits", default=None,
                   help="Chen: bits that price training compute C = (6/16) N D bits (default 16 = 6ND, fake-quantized "
                        "QAT at BF16 cost; 4 prices W4A4 as 4-bit compute)")
    o.add_argument("--law-options", default=None, metavar="K=V,...", help="options of the law, e.g. bias=false")
    o.add_argument("--block", default="128", help="Sun: block size (default 128)")
    o.add_argument("--G", default="128", help="Chen: group size (default 128)")
    r = o.add_argument_group("regression laws (sketched, sketched-quantized)")
    r.add_argument("--a", default="2", help="spectrum exponent (default 2)")
    r.add_argument("--b", default=None, help="source exponent (default a)")
    r.add_argument("--sigma2", default="1", help="label noise (default 1)")
    r.add_argument("--gamma", default="0.1", help="initial step size (default 0.1)")
    r.add_argument("--B", default="1", help="batch size (default 1)")
    r.add_argument("--quantize", default=None, help="targets quantized at precision P: data,labels,params,acts,grads")
    r.add_argument("--scheme", default="fp", choices=["fp", "int"], help="fp: eps = 4^-P/4; int: eps = R^2/(2^P-1)^2")
    r.add_argument("--range", default="4", help="INT range R (default 4)")
    r.add_argument("--calibration", default=None, metavar="FILE",
                   help="calibrated constants from FILE (see predict --calibration)")
    dl = o.add_argument_group("distributed SGD (--law distributed; theory/distributed.md)")
    dl.add_argument("--steps", default=None, help="server steps T (wall clock) for --budget-kind comm-step")
    dl.add_argument("--comm-scheme", default="int", choices=["int", "qsgd"],
                    help="message quantizer: fixed-range INT (additive) or QSGD (norm-relative) (default int)")
    dl.add_argument("--compute-cap", default=None, help="optional cap on M*N (forward multiply-adds)")
    o.add_argument("--json", action="store_true", help="print JSON")
    o.set_defaults(func=_cmd_optimize)

    ft = sub.add_parser("fit", help="fit a law's constants to your runs (CSV: N, D, precision columns, loss)")
    ft.add_argument("csv", help="CSV file with a header line")
    ft.add_argument("--law", required=True, help="kumar, sun, chen or chinchilla (NAME:SET for the fixed constants)")
    ft.add_argument("--free", default=None, help="comma-separated constants to fit (default: the law's own)")
    ft.add_argument("--boot", default="200", help="bootstrap resamples for the intervals (default 200)")
    ft.add_argument("--seed", default="0", help="seed of the bootstrap (default 0)")
    ft.add_argument("--law-options", default=None, metavar="K=V,...", help="options of the law, e.g. bias=false")
    ft.add_argument("--out", default=None, metavar="JSON",
                    help="write the fit with its bootstrap draws (strict JSON) for optimize --from-fit")
    ft.add_argument("--json", action="store_true", help="print JSON")
    ft.set_defaults(func=_cmd_fit)

    bn = sub.add_parser("bench", help="measure the speed ratios (exact_n_ratio, sim_over_rng, compiled_over_numpy)")
    bn.add_argument("--quick", action="store_true", help="small sizes (a smoke test, not the reference numbers)")
    bn.add_argument("--json", action="store_true", help="print JSON")
    bn.set_defaults(func=_cmd_bench)

    c = sub.add_parser("calibrate", help="refit the closed forms' constants against the exact engine")
    c.add_argument("--out", default=None, metavar="FILE",
                   help="write the calibration to FILE (without it, the JSON goes to stdout); use it with predict/"
                        "optimize --calibration FILE or SCALINGLAW_CALIBRATION=FILE")
    c.add_argument("--laws", default=None, help="comma-separated subset of the regression laws")
    c.add_argument("--records", default=None,
                   help="reuse the exact-engine results of a records file (refit the constants only)")
    c.add_argument("--write-records", default=None,
                   help="write the evaluated designs here (scalinglaw/data/calibration_records.json)")
    c.add_argument("--workers", default=None, help="processes for the exact engine (default: serial)")
    c.add_argument("--quick", action="store_true", help="tiny designs (16 + 8 problems per law): a smoke test")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(func=_cmd_calibrate)

    s = sub.add_parser("simulate", help="Monte Carlo simulation of the same quantized SGD")
    _add_problem_flags(s)
    s.add_argument("--reps", default="256", help="number of replicas (default 256)")
    s.add_argument("--seed", default="0", help="seed (default 0)")
    s.add_argument("--workers", default=None, help="local worker processes (default: serial; at most the CPUs this "
                                                   "process may use)")
    s.add_argument("--force-workers", action="store_true", help="start --workers processes even beyond the CPUs")
    s.add_argument("--dask", default=None, metavar="ADDRESS", help="run on a dask.distributed scheduler")
    s.add_argument("--float32", action="store_true",
                   help="draw and compute in float32 (faster, half the memory; float32 rounding)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=_cmd_simulate)

    from .validate.cli import add_parser as add_validate_parser

    add_validate_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scalinglaw`` console script.

    Exit codes: 0 success, 1 a validation claim failed (``validate``), 2 bad input or any failure, always as
    one line on stderr (:func:`failure_message`); numpy's floating-point warnings never reach the terminal
    (non-finite results are refused when they are written, see :func:`_strict`).
    """
    argv = _join_negative_values(list(sys.argv[1:] if argv is None else argv))
    parser = _cached_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    args.given = _given_flags(argv)
    handler: Callable[[argparse.Namespace], None] = args.func
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import numpy as np

            errstate: Any = np.errstate(all="ignore")
        except ImportError:  # pragma: no cover - numpy is a core dependency
            errstate = contextlib.nullcontext()
        try:
            with errstate:
                handler(args)
        except KeyboardInterrupt:
            _fail("interrupted")
        except SystemExit:
            raise
        except BrokenPipeError:  # the reader closed the pipe (e.g. | head): nothing left to say
            with contextlib.suppress(OSError):
                sys.stdout = open(os.devnull, "w")  # replaces the closed stream for the exit flush
            return 0
        except BaseException as exc:  # every failure: one line, no traceback
            _fail(failure_message(exc))
        finally:
            if getattr(args, "calibration", None) is not None:  # --calibration holds for this call only
                from .laws.regression import use_calibration

                use_calibration(None)
    return 0


def failure_message(exc: BaseException) -> str:
    """The one-line message for any exception a command can raise (the one place that maps them).

    :class:`~scalinglaw.errors.ParameterError` names the flag, its requirement and the value; other
    :class:`~scalinglaw.errors.ScalingLawError` and ``ValueError``/``OSError`` give their first line; memory,
    overflow, floating-point and recursion errors say what ran out and what to change; anything else is
    reported as an internal error (a bug to report), still in one line.
    """
    from .errors import ParameterError, ScalingLawError

    text = " ".join(str(exc).split()) if str(exc) else ""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, ParameterError):
        return f"{_flag(exc.name)} must {exc.requirement}, got {_value(exc.value)}"
    if isinstance(exc, MemoryError):
        detail = f" ({text})" if text else ""
        return (f"not enough memory for this run{detail}; lower the sizes (--d, --M, --N, --reps, --sketch-draws, "
                "--boot) or set SCALINGLAW_MAX_MEMORY to be refused before the computation starts")
    if isinstance(exc, OverflowError):
        return (f"a number overflowed during the computation ({type(exc).__name__}: {text}); the sizes or values "
                "given are beyond float64/int64 range for this method")
    if isinstance(exc, FloatingPointError):
        return f"floating-point error during the computation ({text}); the inputs are beyond float64 range here"
    if isinstance(exc, RecursionError):
        return f"the computation recursed too deeply ({text}); use smaller sizes"
    if isinstance(exc, ValueError) and ("array is too big" in text or "Maximum allowed dimension" in text):
        return (f"not enough memory for this run (numpy: {text}); lower the sizes (--d, --M, --N, --reps, "
                "--sketch-draws, --boot)")
    if isinstance(exc, ScalingLawError | ValueError | OSError):
        if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
            return f"cannot use the file {exc.filename!r}: {exc.strerror}"
        return first
    return (f"internal error ({type(exc).__name__}: {text[:300]}); please report it with the command line "
            "that caused it")


#: Values that argparse would take for flags: ``-inf``, ``-nan``, ``-1e5``, ``-.5`` (it only knows ``-1``).
_NEGATIVE_VALUE = re.compile(r"-(inf|infinity|nan|\d+\.?\d*(e[+-]?\d+)?|\.\d+(e[+-]?\d+)?)", re.IGNORECASE)


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--gamma -inf`` -> ``--gamma=-inf``, so that the flag's own check reports the value (not argparse's
    "expected one argument")."""
    out: list[str] = []
    for tok in argv:
        prev = out[-1] if out else ""
        if (_NEGATIVE_VALUE.fullmatch(tok) and prev.startswith("--") and "=" not in prev and len(prev) > 2):
            out[-1] = f"{prev}={tok}"
        else:
            out.append(tok)
    return out


@functools.cache
def _cached_parser() -> argparse.ArgumentParser:
    """The parser of :func:`main` (parsing does not change it, so one serves every call in a process)."""
    return build_parser()


def _given_flags(argv: list[str]) -> dict[str, str]:
    """The flags given explicitly on the command line: ``{dest: option string}`` (defaults do not count)."""
    parser, names = _explicit_parser()
    ns = parser.parse_args(argv)
    return {dest: names.get(dest, dest) for dest in vars(ns) if dest not in ("command", "func")}


@functools.cache
def _explicit_parser() -> tuple[argparse.ArgumentParser, dict[str, str]]:
    """The parser with every default suppressed (so only given flags appear), and each dest's option string."""
    parser = build_parser()
    names: dict[str, str] = {}
    stack: list[argparse.ArgumentParser] = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
                continue
            if action.dest not in ("help", "version"):
                action.default = argparse.SUPPRESS
                if action.option_strings:
                    names.setdefault(action.dest, max(action.option_strings, key=len))
                else:
                    names.setdefault(action.dest, action.metavar or action.dest)
    return parser, names


def _refuse_given(args: argparse.Namespace, dests: Sequence[str], why: str) -> None:
    """Refuse flags that do not apply (``--X must be omitted <why>, got V``)."""
    given: dict[str, str] = getattr(args, "given", {})
    for dest in dests:
        if dest in given:
            value = getattr(args, dest)
            if isinstance(value, bool):  # a switch has no value to show
                _fail(f"{given[dest]} must be omitted {why}")
            shown = ",".join(value) if isinstance(value, list) else value
            _fail(f"{given[dest]} must be omitted {why}, got {_value(shown)}")


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, str):
        try:
            float(v)
            return v  # a number the user typed: show it as typed
        except ValueError:
            return repr(v)
    return str(v)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
