"""Command-line interface: a thin shell over the library.

Every subcommand parses flags, builds library objects, calls one library function and prints a readable
table or JSON. Bad input gives one line on stderr and exit code 2 (never a traceback). Heavy modules are
imported inside the command handlers so that ``scalinglaw --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

__all__ = ["main"]

PROG = "scalinglaw"
EXIT_USAGE = 2

#: Library parameter names that the CLI spells differently.
_FLAG_NAMES = {"test_inputs": "--test-inputs", "sketch_draws": "--sketch-draws", "sketch_seed": "--sketch-seed",
               "sketch_basis": "--sketch-basis", "d_proxy": "--d-proxy", "lambda1": "--lambda1"}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    raise SystemExit(EXIT_USAGE)


def _flag(name: str) -> str:
    return _FLAG_NAMES.get(name, f"--{name}" if not name.startswith("-") else name)


# ------------------------------------------------------------------------------------------------ problem flags
def _add_problem_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("problem (linear regression trained by quantized one-pass SGD)")
    g.add_argument("--spectrum", default="power", choices=["power", "logpower"],
                   help="eigenvalues lambda_i = lambda1 i^-a (power) or lambda1 i^-1 log^-a(i+1) (default: power)")
    g.add_argument("--a", default="2", help="spectrum exponent a (default 2; > 1 when d = inf)")
    g.add_argument("--d", default="200", help="dimension, an integer or 'inf' (default 200)")
    g.add_argument("--lambda1", default="1", help="scale of the spectrum (default 1)")
    g.add_argument("--M", default=None, help="sketch size; omit for plain regression in d dimensions")
    g.add_argument("--N", default="10000", help="number of samples, a multiple of B (default 10000)")
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


def _problem_from_args(args: argparse.Namespace) -> Any:
    from .problem import make_problem

    opt = {k: v for k, v in {"M": args.M, "d_proxy": args.d_proxy}.items() if v is not None}
    b = None if args.b is None else args.b
    return make_problem(
        a=args.a, d=args.d, spectrum=args.spectrum, lambda1=args.lambda1, b=b, target=args.target,
        N=args.N, B=args.B, gamma=args.gamma, schedule=args.schedule, average=args.average,
        sigma2=args.sigma2, data=args.data, labels=args.labels, params=args.params, acts=args.acts,
        grads=args.grads, test_inputs=args.test_inputs, sketch_draws=args.sketch_draws,
        sketch_seed=args.sketch_seed, sketch_basis=args.sketch_basis, **opt,
    )


# ------------------------------------------------------------------------------------------------ output
def _print_json(data: Any) -> None:
    def default(o: Any) -> Any:
        try:
            import numpy as np

            if isinstance(o, np.ndarray):
                return o.tolist()
            if isinstance(o, np.generic):
                return o.item()
        except ImportError:  # pragma: no cover
            pass
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    sys.stdout.write(json.dumps(data, indent=2, default=default, allow_nan=True) + "\n")


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.6g}"
    return str(x)


def _table(rows: Sequence[tuple[str, Any]], title: str = "") -> str:
    width = max((len(k) for k, _ in rows), default=0)
    lines = [title] if title else []
    lines += [f"  {k:<{width}}  {_fmt(v)}" for k, v in rows]
    return "\n".join(lines)


def _describe_problem(problem: Any) -> str:
    desc = problem.describe()
    q = ", ".join(f"{k}={v}" for k, v in desc["quantizers"].items() if v) or "none (full precision)"
    model = f"sketch M={problem.M}" if problem.M else "plain regression"
    return (
        f"problem: {desc['spectrum']}, target {desc['target']}, sigma2={_fmt(desc['sigma2'])}, {model}\n"
        f"training: N={desc['N']}, B={desc['B']}, gamma={_fmt(desc['gamma'])} ({desc['schedule']}), "
        f"output {desc['average']}, test inputs {desc['test_inputs']}\n"
        f"quantizers: {q}"
    )


# ------------------------------------------------------------------------------------------------ commands
def _cmd_predict(args: argparse.Namespace) -> None:
    problem = _problem_from_args(args)
    from .exact import exact_risk

    result = exact_risk(problem, method=args.engine)
    if args.json:
        out = result.to_dict()
        out["method"] = "exact"
        out["engine"] = result.method
        out["problem"] = problem.describe()
        _print_json(out)
        return
    rows = [(k, v) for k, v in result.terms.items()]
    rows += [("excess risk", result.excess_risk), ("risk", result.risk)]
    print(f"scalinglaw predict: exact expected risk ({result.method} engine; no 1/2 factor)")
    print(_describe_problem(problem))
    print(_table(rows, "terms (they sum to the excess risk):"))
    print(f"largest stable gamma: {_fmt(result.max_stable_gamma)}")
    for note in result.notes:
        print(f"note: {note}")


def _cmd_simulate(args: argparse.Namespace) -> None:
    problem = _problem_from_args(args)
    from . import _checks
    from .simulate import simulate

    reps = _checks.integer("--reps", args.reps, minimum=2)
    seed = _checks.integer("--seed", args.seed, minimum=0)
    workers = None if args.workers is None else _checks.integer("--workers", args.workers, minimum=1)
    executor = None
    client = None
    if args.dask:
        try:
            from distributed import Client
        except ImportError:
            _fail("--dask needs the 'dask' extra: pip install 'scalinglaw[dask]'")
        client = Client(args.dask)
        executor = client.get_executor()
    try:
        result = simulate(problem, reps=reps, seed=seed, workers=workers, executor=executor,
                          progress=not args.json and sys.stderr.isatty())
    finally:
        if client is not None:
            client.close()
    if args.json:
        out = result.to_dict()
        out["problem"] = problem.describe()
        _print_json(out)
        return
    d = result.to_dict()
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
    p.add_argument("--method", default="exact", choices=["exact"],
                   help="exact: the exact moment engine (ground truth)")
    p.add_argument("--engine", default="auto", choices=["auto", "spectral", "recursion"],
                   help="exact engine: closed form per phase (spectral), step by step (recursion), or auto")
    _add_problem_flags(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_predict)

    s = sub.add_parser("simulate", help="Monte Carlo simulation of the same quantized SGD")
    _add_problem_flags(s)
    s.add_argument("--reps", default="256", help="number of replicas (default 256)")
    s.add_argument("--seed", default="0", help="seed (default 0)")
    s.add_argument("--workers", default=None, help="local worker processes (default: serial)")
    s.add_argument("--dask", default=None, metavar="ADDRESS", help="run on a dask.distributed scheduler")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=_cmd_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scalinglaw`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    handler: Callable[[argparse.Namespace], None] = args.func
    try:
        handler(args)
    except KeyboardInterrupt:
        _fail("interrupted")
    except Exception as exc:  # one line, no traceback, for every error we raise on purpose
        from .errors import ParameterError, ScalingLawError

        if isinstance(exc, ParameterError):
            _fail(f"{_flag(exc.name)} must {exc.requirement}, got {_value(exc.value)}")
        if isinstance(exc, ScalingLawError | ValueError | OSError):
            _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    return 0


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
