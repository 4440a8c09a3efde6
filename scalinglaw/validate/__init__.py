"""Validation suite: one experiment per qualitative claim of SPEC §8, plus real formats.

Each experiment states its claim, provenance and pass/fail criterion before it runs, computes the predictions
(closed form and exact engine) and Monte Carlo estimates with standard errors, and returns a verdict, a JSON
record and a figure. :func:`run_experiments` writes them with a Markdown report; the ``scalinglaw validate``
subcommand (:mod:`scalinglaw.validate.cli`) runs them from the shell. See ``theory/validation.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "EXPERIMENTS",
    "Check",
    "Experiment",
    "ExperimentResult",
    "experiment_names",
    "get_experiment",
    "run_experiments",
    "write_report",
]

_HOME = {"Check": ".base", "Experiment": ".base", "ExperimentResult": ".base"}


def __getattr__(name: str) -> Any:
    # lazy, so that ``scalinglaw --help`` (which registers the subcommand) does not import the experiments
    if name in __all__:
        return getattr(importlib.import_module(_HOME.get(name, ".runner"), __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
