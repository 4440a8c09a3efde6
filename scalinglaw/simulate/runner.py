r"""Public entry points of the Monte Carlo simulator: :func:`simulate` and :func:`sweep`.

Reproducibility contract. The replicas of a problem are cut into chunks of ``chunk_reps`` replicas (within a
sketch group, so a chunk never mixes sketches). Chunk ``k`` gets child ``k`` of
``np.random.SeedSequence(seed).spawn(n_chunks)`` and draws everything (prior targets, inputs, label noise,
quantizer randomness) from ``np.random.default_rng`` of that child. The chunking depends only on ``reps``,
``chunk_reps`` and ``sketch_draws``, never on the executor or the number of workers, and results are
reassembled in chunk order, so serial runs, a :class:`~concurrent.futures.ProcessPoolExecutor` and a Dask
``Client.get_executor()`` give bit-identical ``excess_risks``.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _checks
from .._progress import progress as progress_bar
from ..errors import ParameterError
from ..problem import Problem
from .kernel import run_chunk
from .plan import SimPlan, build_plan, check_stable

__all__ = ["SimulationResult", "simulate", "sweep"]

@dataclass(frozen=True)
class SimulationResult:
    """Monte Carlo estimate of the expected excess risk of one problem.

    Attributes
    ----------
    excess_risks : ndarray
        Excess risk of each replica's output iterate, in replica order (sketch group by group).
    excess_risk_mean : float
        The estimate: mean over replicas (for several sketch draws, the equal-weight average of the
        per-draw means, which is what the exact engine averages).
    excess_risk_sem : float
        Its standard error (per-draw sample variances, combined as for the mean).
    reps : int
        Number of replicas.
    seed : int or SeedSequence
        The seed the run was drawn from.
    notes : tuple of str
        Conventions and approximations used (proxy dimension, estimated test forms, float32, ...).
    sigma2 : float
        Label-noise variance, so that ``risk_mean = excess_risk_mean + sigma2``.
    test_inputs : str
        ``"clean"`` or ``"quantized"``.
    """

    excess_risks: np.ndarray = field(repr=False)
    excess_risk_mean: float
    excess_risk_sem: float
    reps: int
    seed: int | np.random.SeedSequence
    notes: tuple[str, ...] = ()
    sigma2: float = 0.0
    test_inputs: str = "clean"

    @property
    def risk_mean(self) -> float:
        """Estimated risk :math:`\\mathbb E\\mathcal R=` excess risk + :math:`\\sigma^2`."""
        return self.excess_risk_mean + self.sigma2

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (the per-replica risks are omitted)."""
        seed: Any = self.seed
        if isinstance(seed, np.random.SeedSequence):
            seed = {"entropy": seed.entropy, "spawn_key": list(seed.spawn_key)}
        return {
            "method": "monte-carlo",
            "excess_risk_mean": self.excess_risk_mean,
            "excess_risk_sem": self.excess_risk_sem,
            "risk_mean": self.risk_mean,
            "reps": self.reps,
            "seed": seed,
            "test_inputs": self.test_inputs,
            "notes": list(self.notes),
        }


# ------------------------------------------------------------------------------------------------ validation
def _check_seed(seed: Any) -> int | np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ParameterError("seed", seed, "be a non-negative integer or a numpy SeedSequence")
    if seed < 0:
        raise ParameterError("seed", seed, "be a non-negative integer or a numpy SeedSequence")
    return int(seed)


def _check_options(
    reps: Any, chunk_reps: Any, block_steps: Any, dtype: Any, executor: Any, workers: Any
) -> tuple[int, int, int | None, np.dtype, int | None]:
    reps_i = int(_checks.integer("reps", reps, minimum=2))
    chunk_i = int(_checks.integer("chunk_reps", chunk_reps, minimum=1))
    block_i = None if block_steps is None else int(_checks.integer("block_steps", block_steps, minimum=1))
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ParameterError("dtype", dtype, "be numpy.float64 or numpy.float32") from None
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ParameterError("dtype", dtype, "be numpy.float64 or numpy.float32")
    if executor is not None and not isinstance(executor, cf.Executor):
        raise ParameterError("executor", type(executor).__name__, "be a concurrent.futures.Executor or None")
    workers_i = None if workers is None else int(_checks.integer("workers", workers, minimum=1))
    if executor is not None and workers_i is not None:
        raise ParameterError("workers", workers_i, "be omitted when an executor is given")
    return reps_i, chunk_i, block_i, dt, workers_i


# -------------------------------------------------------------------------------------------------- planning
def _root(seed: int | np.random.SeedSequence) -> np.random.SeedSequence:
    """A fresh SeedSequence for ``seed`` (a copy of a SeedSequence: spawning must not depend on history)."""
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size)
    return np.random.SeedSequence(seed)


@dataclass(frozen=True)
class _Job:
    """One problem's plan and its chunk tasks ``(group, reps, seed)`` in chunk order."""

    plan: SimPlan
    tasks: tuple[tuple[int, int, np.random.SeedSequence], ...]
    seed: int | np.random.SeedSequence
    reps: int


def _prepare(
    problem: Problem, reps: int, seed: int | np.random.SeedSequence, chunk_reps: int,
    block_steps: int | None, dtype: np.dtype,
) -> _Job:
    if not isinstance(problem, Problem):
        raise ParameterError("problem", type(problem).__name__, "be a scalinglaw Problem")
    if problem.M is not None and reps < problem.sketch_draws:
        raise ParameterError(
            "reps", reps, f"be >= sketch_draws={problem.sketch_draws} (at least one replica per sketch)"
        )
    from ..costs import require_simulation

    require_simulation(problem, reps, chunk_reps=chunk_reps, itemsize=np.dtype(dtype).itemsize)
    gmax = check_stable(problem)
    plan = build_plan(problem, reps, seed, chunk_reps=chunk_reps, block_steps=block_steps, dtype=dtype,
                      max_stable=gmax)
    layout = [(g, min(chunk_reps, grp.reps - start))
              for g, grp in enumerate(plan.groups) for start in range(0, grp.reps, chunk_reps)]
    children = _root(seed).spawn(len(layout))
    tasks = tuple((g, k, child) for (g, k), child in zip(layout, children, strict=True))
    return _Job(plan=plan, tasks=tasks, seed=seed, reps=reps)


def _execute(
    jobs: Sequence[_Job], executor: cf.Executor | None, workers: int | None, progress: bool
) -> list[list[np.ndarray]]:
    """Run every chunk of every job; return the chunk results per job, in chunk order."""
    flat = [(j, i, job.plan, *task) for j, job in enumerate(jobs) for i, task in enumerate(job.tasks)]
    out: list[list[np.ndarray | None]] = [[None] * len(job.tasks) for job in jobs]
    own = None
    if executor is None and workers is not None and workers > 1:
        own = cf.ProcessPoolExecutor(max_workers=workers)
        executor = own
    try:
        if executor is None:
            for j, i, plan, g, k, child in progress_bar(flat, len(flat), progress, "simulate"):
                out[j][i] = run_chunk(plan, g, k, child)
        else:
            futures: dict[cf.Future[np.ndarray], tuple[int, int]] = {
                executor.submit(run_chunk, plan, g, k, child): (j, i) for j, i, plan, g, k, child in flat
            }
            done: Iterator[cf.Future[np.ndarray]] = cf.as_completed(futures)
            for fut in progress_bar(done, len(futures), progress, "simulate"):
                j, i = futures[fut]
                out[j][i] = fut.result()
    finally:
        if own is not None:
            own.shutdown()
    return out  # type: ignore[return-value]


def _assemble(job: _Job, chunks: list[np.ndarray]) -> SimulationResult:
    risks = np.concatenate(chunks).astype(np.float64)
    sizes = [grp.reps for grp in job.plan.groups]
    bounds = np.cumsum([0, *sizes])
    means, variances = [], []
    for lo, hi in itertools.pairwise(bounds):
        part = risks[lo:hi]
        means.append(float(part.mean()))
        variances.append(float(part.var(ddof=1)) / part.size if part.size > 1 else math.nan)
    D = len(sizes)
    mean = float(np.mean(means))
    if D == 1:
        sem = math.sqrt(variances[0])
    elif all(math.isfinite(v) for v in variances):
        sem = math.sqrt(sum(variances)) / D
    else:  # some draw has a single replica: fall back to the pooled standard error
        sem = float(risks.std(ddof=1)) / math.sqrt(risks.size)
    pb = job.plan.problem
    return SimulationResult(
        excess_risks=risks, excess_risk_mean=mean, excess_risk_sem=sem, reps=job.reps, seed=job.seed,
        notes=job.plan.notes, sigma2=pb.sigma2, test_inputs=pb.test_inputs,
    )


# ------------------------------------------------------------------------------------------------ public API
def simulate(
    problem: Problem,
    reps: int = 256,
    seed: int | np.random.SeedSequence = 0,
    *,
    executor: cf.Executor | None = None,
    workers: int | None = None,
    progress: bool = False,
    chunk_reps: int = 32,
    block_steps: int | None = None,
    dtype: type | np.dtype = np.float64,
) -> SimulationResult:
    r"""Monte Carlo estimate of the expected excess risk of the quantized SGD of ``problem``.

    Runs ``reps`` independent replicas of the algorithm of SPEC §3 [paper: 2510.18259 for the update]
    and evaluates each output iterate's excess risk exactly given the iterate [derived] (no test
    sampling). It shares no moment formula with the exact engine; only the stability check is common.

    Parameters
    ----------
    problem : Problem
        The configuration.
    reps : int
        Number of replicas, ``>= 2`` (and ``>= sketch_draws``).
    seed : int or numpy.random.SeedSequence
        Root seed; chunk ``k`` uses child ``k`` of ``SeedSequence(seed).spawn(n_chunks)``.
    executor : concurrent.futures.Executor, optional
        Where to run the chunks (a process pool, ``distributed.Client.get_executor()``, ...). The tasks are
        picklable top-level functions. ``None``: serial, or a private process pool when ``workers > 1``.
    workers : int, optional
        Number of local worker processes when no executor is given (``None`` or 1: serial).
    progress : bool
        Show a tqdm bar over the chunks (no-op if tqdm is not installed).
    chunk_reps : int
        Replicas per chunk; fixes the random streams, so it must stay the same to reproduce a result. It
        does not depend on the executor or the number of workers.
    block_steps : int, optional
        Steps whose inputs are drawn in one block (default: about 8 MB of inputs per block). Part of the
        random stream layout too.
    dtype : numpy.float64 or numpy.float32
        Precision of the draws and of the SGD arithmetic. ``float32`` is faster and halves the memory;
        the results differ from float64 by float32 rounding (far below the Monte Carlo error for stable
        steps) and are not bit-identical to them. Risks are always computed in float64.

    Returns
    -------
    SimulationResult

    Raises
    ------
    ParameterError
        For bad options (``reps < 2``, unknown dtype, ``workers`` together with ``executor``, ...).
    UnstableStepError
        If the step size makes SGD diverge; the message states the largest stable step. Real formats are
        checked through their idealised surrogates; INT with absmax scaling counts as full precision here.
    """
    seed_v = _check_seed(seed)
    reps_i, chunk_i, block_i, dt, workers_i = _check_options(reps, chunk_reps, block_steps, dtype,
                                                               executor, workers)
    job = _prepare(problem, reps_i, seed_v, chunk_i, block_i, dt)
    (chunks,) = _execute([job], executor, workers_i, progress)
    return _assemble(job, chunks)


def sweep(
    problems: Iterable[Problem],
    reps: int,
    seed: int | np.random.SeedSequence,
    *,
    executor: cf.Executor | None = None,
    workers: int | None = None,
    progress: bool = False,
    chunk_reps: int = 32,
    block_steps: int | None = None,
    dtype: type | np.dtype = np.float64,
) -> list[SimulationResult]:
    """Simulate many problems; problem ``i`` uses child ``i`` of ``SeedSequence(seed).spawn(len(problems))``.

    All chunks of all problems are submitted together, so an executor stays busy across problems. Result
    ``i`` equals ``simulate(problems[i], reps, child_i, chunk_reps=..., ...)`` bit for bit.

    Parameters
    ----------
    problems : iterable of Problem
        The configurations.
    reps, seed, executor, workers, progress, chunk_reps, block_steps, dtype
        As in :func:`simulate` (``reps`` is the same for every problem).

    Returns
    -------
    list of SimulationResult
        In the order of ``problems``.
    """
    probs = list(problems)
    seed_v = _check_seed(seed)
    reps_i, chunk_i, block_i, dt, workers_i = _check_options(reps, chunk_reps, block_steps, dtype,
                                                               executor, workers)
    children = _root(seed_v).spawn(len(probs))
    jobs = [_prepare(p, reps_i, c, chunk_i, block_i, dt) for p, c in zip(probs, children, strict=True)]
    results = _execute(jobs, executor, workers_i, progress)
    return [_assemble(job, chunks) for job, chunks in zip(jobs, results, strict=True)]

