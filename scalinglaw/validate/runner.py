"""Run validation experiments and write their figures, JSON records and the Markdown report."""

from __future__ import annotations

import concurrent.futures as cf
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..errors import ParameterError
from .base import Experiment, ExperimentResult, jsonable
from .claim1_spectrum import SpectrumExperiment
from .claim2_batch import BatchExperiment
from .claim3_dimension import DimensionExperiment
from .claim4_paper import PaperExperiment
from .claim5_sketch import SketchExperiment
from .claim6_effective import EffectiveSizeExperiment
from .claim7_kumar import KumarExperiment
from .de_sketch import DeterministicEquivalentExperiment
from .distributed_comm import DistributedExperiment
from .plotting import require_matplotlib
from .real_formats import RealFormatsExperiment

__all__ = ["EXPERIMENTS", "experiment_names", "fresh_folder", "get_experiment", "run_experiments", "write_report"]

#: Every experiment, in report order: SPEC §8 claims 1-7, the real-format experiment, distributed SGD, the
#: sketch's deterministic equivalent.
EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (SpectrumExperiment(), BatchExperiment(), DimensionExperiment(), PaperExperiment(), SketchExperiment(),
              EffectiveSizeExperiment(), KumarExperiment(), RealFormatsExperiment(), DistributedExperiment(),
              DeterministicEquivalentExperiment())
}


def experiment_names() -> list[str]:
    """Names of the experiments, in report order."""
    return list(EXPERIMENTS)


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name`` (a unique prefix such as ``claim3`` is accepted)."""
    if name in EXPERIMENTS:
        return EXPERIMENTS[name]
    hits = [n for n in EXPERIMENTS if n.startswith(name)]
    if len(hits) == 1:
        return EXPERIMENTS[hits[0]]
    raise ParameterError("NAME", name, "be one of " + ", ".join(EXPERIMENTS) + " (or a unique prefix)")


def fresh_folder(base: str | Path = ".", prefix: str = "scalinglaw-validate") -> Path:
    """A folder name under ``base`` that does not exist yet: ``<prefix>-YYYYmmdd-HHMMSS`` (``-2``, ``-3``, ...
    appended if taken). The default output of ``validate``, so that no run replaces an earlier report."""
    import time

    stem = Path(base) / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, k = stem, 1
    while out.exists():
        k += 1
        out = stem.with_name(f"{stem.name}-{k}")
    return out


def run_experiments(
    names: Sequence[str] | None = None,
    *,
    quick: bool = False,
    executor: cf.Executor | None = None,
    progress: bool = False,
    out_dir: str | Path | None = None,
) -> list[ExperimentResult]:
    """Run experiments, write ``<out>/<name>.png``, ``<out>/<name>.json`` and ``<out>/report.md``.

    Parameters
    ----------
    names : sequence of str, optional
        Experiment names (or unique prefixes); ``None`` runs them all.
    quick : bool
        CI-sized configurations.
    executor : concurrent.futures.Executor, optional
        Where the Monte Carlo runs (a process pool, ``distributed.Client(...).get_executor()``).
    progress : bool
        Progress bars (tqdm, when installed) and one status line per experiment on stderr.
    out_dir : str or Path, optional
        Output folder (created). Default: a new folder ``./scalinglaw-validate-<date>-<time>``
        (:func:`fresh_folder`), so that no run replaces an earlier report unless it is named.

    Returns
    -------
    list of ExperimentResult
        In the order run; each has ``figure`` set.

    Raises
    ------
    ParameterError
        For an unknown experiment name.
    MatplotlibMissingError
        When matplotlib (the ``plot`` extra) is not installed; raised before anything runs.
    """
    require_matplotlib()
    exps = [get_experiment(n) for n in (names if names else experiment_names())]
    seen: set[str] = set()
    exps = [e for e in exps if not (e.name in seen or seen.add(e.name))]
    out = Path(out_dir) if out_dir is not None else fresh_folder()
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for k, exp in enumerate(exps, 1):
        if progress:
            sys.stderr.write(f"[{k}/{len(exps)}] {exp.name}: {exp.title}\n")
        res = exp.run(quick=quick, executor=executor, progress=progress)
        fig = exp.plot(res.record, out / f"{exp.name}.png")
        res = replace(res, figure=fig)
        res.record["figure"] = fig.name
        (out / f"{exp.name}.json").write_text(json.dumps(jsonable(res.record), indent=1, allow_nan=False) + "\n")
        if progress:
            sys.stderr.write(f"[{k}/{len(exps)}] {exp.name}: {'PASS' if res.passed else 'FAIL'} "
                             f"({res.elapsed:.1f} s)\n")
        results.append(res)
    write_report(results, out, quick=quick)
    return results


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_report(results: Sequence[ExperimentResult], out_dir: str | Path, *, quick: bool = False) -> Path:
    """Write ``report.md``: summary table (claim | prediction | measurement | verdict), then one section each."""
    out = Path(out_dir)
    n_pass = sum(r.passed for r in results)
    lines = [
        "# scalinglaw validation report",
        "",
        f"Generated by `scalinglaw validate{' --quick' if quick else ''}` on {time.strftime('%Y-%m-%d %H:%M')}; "
        f"{n_pass}/{len(results)} claims pass; total {sum(r.elapsed for r in results):.0f} s of computation.",
        "",
        "Every criterion below was fixed before the run (it is part of each experiment's code and docstring) and is "
        "a statistical statement: a number of Monte Carlo standard errors, or a confidence interval of a fitted "
        "slope. Error bars in the figures are ±1 standard error of the Monte Carlo mean. Theory: "
        "`theory/validation.md`.",
        "",
        "## Summary",
        "",
        "| claim | prediction | measurement | verdict |",
        "|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| [{r.name}](#{r.name}): {_cell(r.claim)} | {_cell(r.prediction)} | "
                     f"{_cell(r.measurement)} | **{'pass' if r.passed else 'FAIL'}** |")
    for r in results:
        lines += [
            "",
            f"## {r.name}",
            "",
            f"**{r.title}.** {r.claim}",
            "",
            f"Provenance: {r.provenance}.",
            "",
            f"Criterion (stated before the run): {r.criterion}",
            "",
            "| check | statement | result | detail |",
            "|---|---|---|---|",
        ]
        for c in r.checks:
            lines.append(f"| {c.id} | {_cell(c.statement)} | {'pass' if c.passed else 'FAIL'} | {_cell(c.detail)} |")
        lines += [
            "",
            f"Verdict: **{'pass' if r.passed else 'FAIL'}** ({r.elapsed:.1f} s). Prediction: {r.prediction}. "
            f"Measurement: {r.measurement}.",
            "",
        ]
        for note in r.record.get("notes", []):
            lines.append(f"Note: {note}.")
        if r.figure is not None:
            lines += [f"![{r.name}]({Path(r.figure).name})", "", f"*Figure: {r.caption}*", ""]
        lines.append(f"Record: [{r.name}.json]({r.name}.json)")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
