"""Common structure of the validation experiments: the :class:`Experiment` protocol and its result.

An experiment reproduces one qualitative claim of SPEC §8. It declares, **before** computing anything, the
claim, its provenance and its pass/fail criterion (class attributes, copied into the JSON record and the
report). :meth:`BaseExperiment.run` then computes the predictions (closed form and exact engine), the Monte
Carlo estimates, and the individual :class:`Check` objects whose conjunction is the verdict. Figures are drawn
from the JSON record alone (:meth:`BaseExperiment.plot`), so a record can be re-plotted without re-running.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from .._json import jsonable
from .._progress import progress as progress_bar

__all__ = [
    "BaseExperiment",
    "Check",
    "Context",
    "Experiment",
    "ExperimentResult",
    "jsonable",
]


@dataclass(frozen=True)
class Check:
    """One statistical test of an experiment; the verdict is the conjunction of its checks.

    Attributes
    ----------
    id : str
        Short identifier (``"C2.1"``).
    statement : str
        What is tested, stated before the computation.
    passed : bool
        The outcome.
    detail : str
        The numbers behind the outcome (estimates, standard errors, intervals).
    """

    id: str
    statement: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "statement": self.statement, "passed": self.passed, "detail": self.detail}


@dataclass
class ExperimentResult:
    """Outcome of one experiment.

    Attributes
    ----------
    name, title, claim, provenance, criterion : str
        As declared by the experiment (the criterion is fixed before the run).
    passed : bool
        The verdict: every check passed.
    prediction, measurement : str
        One-line summaries for the report's table.
    checks : list of Check
        The individual tests.
    record : dict
        The full JSON record (configuration, predictions, Monte Carlo estimates, checks, verdict).
    figure : Path or None
        Where the figure was written (set by the runner).
    caption : str
        Figure caption (says what the error bars are).
    elapsed : float
        Wall time in seconds.
    """

    name: str
    title: str
    claim: str
    provenance: str
    criterion: str
    passed: bool
    prediction: str
    measurement: str
    checks: list[Check]
    record: dict[str, Any]
    figure: Path | None = None
    caption: str = ""
    elapsed: float = 0.0


@dataclass
class Context:
    """Where and how an experiment runs: executor, progress bars, quick mode.

    Parameters
    ----------
    executor : concurrent.futures.Executor, optional
        Passed to :func:`scalinglaw.simulate.sweep` and used by :meth:`map` (``None``: serial).
    progress : bool
        Show progress bars (tqdm, if installed).
    quick : bool
        The CI-sized configuration.
    """

    executor: cf.Executor | None = None
    progress: bool = False
    quick: bool = False
    notes: list[str] = field(default_factory=list)

    def sweep(self, problems: Sequence[Any], reps: int, seed: int, **kwargs: Any) -> list[Any]:
        """:func:`scalinglaw.simulate.sweep` with this context's executor and progress setting."""
        from ..simulate import sweep

        return sweep(list(problems), reps, seed, executor=self.executor, progress=self.progress, **kwargs)

    def map(self, fn: Callable[..., Any], tasks: Iterable[tuple[Any, ...]], desc: str = "tasks") -> list[Any]:
        """``[fn(*t) for t in tasks]``, on the executor when there is one (results in task order)."""
        tasks = list(tasks)
        if self.executor is None:
            return [fn(*t) for t in progress_bar(tasks, len(tasks), self.progress, desc)]
        futures = {self.executor.submit(fn, *t): i for i, t in enumerate(tasks)}
        out: list[Any] = [None] * len(tasks)
        for fut in progress_bar(cf.as_completed(futures), len(futures), self.progress, desc):
            out[futures[fut]] = fut.result()
        return out


@runtime_checkable
class Experiment(Protocol):
    """What the runner needs from an experiment."""

    name: str
    title: str
    claim: str
    provenance: str
    criterion: str

    def run(
        self, config: Any = None, *, quick: bool = False, executor: cf.Executor | None = None,
        progress: bool = False,
    ) -> ExperimentResult: ...

    def plot(self, record: dict[str, Any], path: Path) -> Path: ...


class BaseExperiment(ABC):
    """Shared machinery: configuration choice, timing, record assembly.

    Subclasses set the class attributes and implement :meth:`compute` (returning checks, summaries and data)
    and :meth:`draw` (the figure from the record).
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    claim: ClassVar[str] = ""
    provenance: ClassVar[str] = ""
    criterion: ClassVar[str] = ""
    caption: ClassVar[str] = ""
    Config: ClassVar[type]

    def default_config(self, quick: bool) -> Any:
        """The configuration used when none is given: ``Config.quick()`` in quick mode, else ``Config()``."""
        return self.Config.quick() if quick else self.Config()

    @abstractmethod
    def compute(self, config: Any, ctx: Context) -> tuple[list[Check], str, str, dict[str, Any]]:
        """Run the experiment; return ``(checks, prediction, measurement, data)``."""

    @abstractmethod
    def draw(self, record: dict[str, Any], fig: Any) -> None:
        """Draw the figure of ``record`` into the matplotlib Figure ``fig``."""

    def figure_size(self) -> tuple[float, float]:
        return (12.0, 4.2)

    def run(
        self, config: Any = None, *, quick: bool = False, executor: cf.Executor | None = None,
        progress: bool = False,
    ) -> ExperimentResult:
        """Run the experiment (see the module docstring); the figure is drawn by :meth:`plot`."""
        cfg = self.default_config(quick) if config is None else config
        ctx = Context(executor=executor, progress=progress, quick=quick)
        start = time.perf_counter()
        checks, prediction, measurement, data = self.compute(cfg, ctx)
        elapsed = time.perf_counter() - start
        passed = all(c.passed for c in checks)
        record = {
            "name": self.name,
            "title": self.title,
            "claim": self.claim,
            "provenance": self.provenance,
            "criterion": self.criterion,
            "quick": quick,
            "config": jsonable(dataclasses.asdict(cfg)),
            "prediction": prediction,
            "measurement": measurement,
            "checks": [c.to_dict() for c in checks],
            "verdict": "pass" if passed else "fail",
            "passed": passed,
            "caption": self.caption,
            "elapsed_seconds": elapsed,
            "notes": list(ctx.notes),
            "data": jsonable(data),
        }
        return ExperimentResult(
            name=self.name, title=self.title, claim=self.claim, provenance=self.provenance,
            criterion=self.criterion, passed=passed, prediction=prediction, measurement=measurement,
            checks=checks, record=record, caption=self.caption, elapsed=elapsed,
        )

    def plot(self, record: dict[str, Any], path: Path) -> Path:
        """Draw the figure of ``record`` and save it as a PNG at ``path``."""
        from .plotting import new_figure, save

        fig = new_figure(self.figure_size())
        self.draw(record, fig)
        save(fig, path)
        return Path(path)
