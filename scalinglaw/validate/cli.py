"""The ``scalinglaw validate`` subcommand.

:func:`add_parser` registers it in the main parser (:func:`scalinglaw.cli.build_parser`). The handler exits 0
when every selected claim passes and 1 when any fails; bad input gives one line on stderr and exit code 2, as in
the rest of the CLI. It also runs on its own: ``python -m scalinglaw.validate ...``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["add_arguments", "add_parser", "build_parser", "main"]

PROG = "scalinglaw"
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2), for the standalone entry point."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``validate`` flags to ``p``."""
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="experiments to run (claim1_spectrum ... claim7_kumar, real_formats; unique prefixes work)")
    p.add_argument("--all", action="store_true", help="run every experiment")
    p.add_argument("--quick", action="store_true", help="CI-sized runs (a few minutes on 2 cores)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", default=None, metavar="W", help="local worker processes for the Monte Carlo")
    g.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="run the Monte Carlo on a dask.distributed scheduler")
    p.add_argument("--force-workers", action="store_true", help="start --workers processes even beyond the CPUs")
    p.add_argument("--out", default=None,
                   help="output folder, created if missing (default: a new folder ./scalinglaw-validate-<date-time>; "
                        "an existing report is only replaced when named here)")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _handler(args: argparse.Namespace) -> None:
    code = main(args)
    if code:
        raise SystemExit(code)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``validate`` subcommand to an ``argparse`` subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "validate", help="reproduce the papers' claims (theory/validation.md): figures, JSON records and a report",
        description="Run the validation experiments (one per claim of theory/validation.md plus real formats) and "
                    "write <out>/<name>.png, <out>/<name>.json and <out>/report.md into a new folder (or --out). "
                    "Exit code 0 if every selected claim passes, 1 if any fails.")
    add_arguments(p)
    p.set_defaults(func=_handler)
    return p


def build_parser() -> argparse.ArgumentParser:
    """A standalone parser (``python -m scalinglaw.validate``)."""
    return add_arguments(_Parser(prog=f"{PROG} validate", description="Run the scalinglaw validation experiments."))


def _fail(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return EXIT_USAGE


def _out_folder(text: str | None) -> Path | str:
    """The output folder: created now (so an unusable path is refused before any experiment runs)."""
    if text is None:
        from .runner import fresh_folder

        out = fresh_folder()
    else:
        out = Path(text)
        if not text.strip() or (out.exists() and not out.is_dir()):
            return f"--out must be a folder (it is created if missing), got {text!r}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".scalinglaw-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return f"--out must be a folder that can be created and written ({exc.strerror or exc}), got {str(out)!r}"
    return out


def main(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    """Run ``validate``; returns 0 if every selected claim passes, 1 if any fails, 2 for bad input."""
    if not isinstance(args, argparse.Namespace):
        args = build_parser().parse_args(list(args) if args is not None else None)
    try:
        from .runner import experiment_names, get_experiment, run_experiments

        if args.list:
            others = [flag for flag, on in (("NAME", bool(args.names)), ("--all", args.all), ("--quick", args.quick),
                                            ("--workers", args.workers is not None), ("--dask", args.dask is not None),
                                            ("--out", args.out is not None)) if on]
            if others:
                return _fail(f"--list must be used alone (it lists the experiments and runs none), got it with "
                             f"{', '.join(others)}")
            for name in experiment_names():
                sys.stdout.write(f"{name}: {get_experiment(name).claim}\n")
            return 0
        if args.all and args.names:
            return _fail("give experiment names or --all, not both")
        if not args.all and not args.names:
            return _fail("give experiment names (see --list) or --all")
        if args.force_workers and args.workers is None:
            return _fail("--force-workers must be omitted without --workers")
        names = None if args.all else list(args.names)
        for n in names or []:
            get_experiment(n)
        from .plotting import require_matplotlib

        require_matplotlib()
        from .._executors import make_executor

        executor, closer = make_executor(args.workers, args.dask, force_workers=args.force_workers)
        try:
            out = _out_folder(args.out)
            if isinstance(out, str):
                return _fail(out)
            results = run_experiments(names, quick=args.quick, executor=executor, progress=not args.no_progress,
                                      out_dir=out)
        finally:
            closer()
    except KeyboardInterrupt:
        return _fail("interrupted")
    except BrokenPipeError:  # the reader closed the pipe (e.g. | head): nothing left to say
        return 0
    except Exception as exc:  # one line for every failure (the same mapping as the main CLI)
        from ..cli import failure_message

        return _fail(failure_message(exc))
    width = max(len(r.name) for r in results)
    for r in results:
        sys.stdout.write(f"{r.name:<{width}}  {'PASS' if r.passed else 'FAIL'}  {r.measurement}\n")
    sys.stdout.write(f"report: {out}/report.md\n")
    return 0 if all(r.passed for r in results) else 1
