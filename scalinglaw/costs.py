r"""Cost models of the problem-level work: sketches and Monte Carlo simulation (see :mod:`scalinglaw.resources`).

Each function returns a :class:`~scalinglaw.resources.Estimate` (peak memory in bytes, wall time as an order of
magnitude) and the name of the input that drives it, so that a refusal names the flag to change. The constants
were measured on the 2-core development machine (``scalinglaw simulate`` with ``d`` from 200 to :math:`10^6`,
sketches up to :math:`M=256`); they are orders of magnitude, not benchmarks.
"""

from __future__ import annotations

from typing import Any

from .problem import Problem
from .resources import Estimate, require

__all__ = ["exact_estimate", "require_exact", "require_simulation", "require_sketches", "simulation_estimate",
           "sketch_estimate"]

#: Seconds per replica, sample and coordinate of the plain simulator (draw, quantize, two dot products, update).
SIM_SECONDS_PER_UNIT = 2e-8
#: Seconds per replica, sample, coordinate and sketch row (the projection S x of every sample).
SIM_SECONDS_PER_SKETCH_UNIT = 7e-10
#: Fixed cost of one chunk of replicas (task set-up, risk evaluation).
SIM_SECONDS_PER_CHUNK = 0.01
#: Bytes per modelled coordinate held by a simulation plan and the stability check (about twenty float64 arrays).
PLAN_BYTES_PER_COORDINATE = 160.0
#: Seconds per floating-point operation of dense linear algebra (BLAS on one core), for sketches.
SECONDS_PER_FLOP = 1e-9


#: The exact engine (closed form per phase): seconds per node^2 and phase (secular equation, couplings, divided
#: differences), per node^3 and phase for the resonant pairs of a coupled, averaged run (an upper bound: slow
#: nodes all resonate), and per node and step of the step-by-step recursion; bytes per node^2 (about sixteen
#: node x node arrays alive at once).
EXACT_SECONDS_PER_NODE2_PHASE = 5e-7
EXACT_SECONDS_PER_NODE3_PHASE = 1e-9
EXACT_SECONDS_PER_NODE_STEP = 4e-8
EXACT_BYTES_PER_NODE2 = 128.0


def _culprit(candidates: list[tuple[str, float, float]]) -> tuple[str, float]:
    """The input furthest above its usual value: ``(name, value)`` among ``(name, value, usual)``."""
    name, value, _ = max(candidates, key=lambda c: c[1] / c[2])
    return name, value


def sketch_estimate(problem: Problem) -> tuple[Estimate, str, Any]:
    r"""Drawing ``sketch_draws`` sketches of ``M`` rows over ``n`` coordinates: :math:`S`, :math:`SH`, the target
    map (each :math:`M\times n`) and the eigendecomposition of :math:`SHS^\top` (:math:`O(M^3)`), one draw at a
    time; returns the estimate, the input to blame and its value."""
    if problem.M is None:
        return Estimate("no sketch"), "M", None
    n, M, draws = problem.proxy_dimension(), int(problem.M), int(problem.sketch_draws)
    memory = 8.0 * (4.0 * M * n + 3.0 * M * M) + 8.0 * draws * 3.0 * M
    seconds = draws * SECONDS_PER_FLOP * (4.0 * M * M * n + 10.0 * M**3)
    name, value = _culprit([("M", M, 64), ("sketch_draws", draws, 1)])
    if 8.0 * 4.0 * M * n > 8.0 * draws * 3.0 * M and memory > 1e9:
        name, value = ("M", M) if M >= min(n, 64) else ("d", problem.spectrum.d)
    return Estimate(f"{draws:.3g} sketch(es) of {M:.3g} x {n:.3g}", memory, seconds), name, value


def require_sketches(problem: Problem) -> None:
    """Refuse sketches that exceed the machine's limits, naming ``M``, ``d`` or ``sketch_draws``."""
    est, name, value = sketch_estimate(problem)
    if value is not None:
        require(est, name, value)


def simulation_estimate(problem: Problem, reps: int, *, chunk_reps: int = 32, itemsize: int = 8,
                        workers: int = 1) -> tuple[Estimate, str, Any]:
    """The simulator's memory and time for ``reps`` replicas of ``problem`` (and the input to blame)."""
    from .simulate.plan import BLOCK_BYTES, HQ_SAMPLES

    n = problem.proxy_dimension()
    M = problem.M
    T = problem.steps
    learner = M if M is not None else n
    n_chunks = -(-reps // chunk_reps)
    memory = (PLAN_BYTES_PER_COORDINATE * n + 16.0 * T + 16.0 * reps + 3.0 * BLOCK_BYTES
              + 8.0 * itemsize * chunk_reps * learner)
    units = float(reps) * problem.N * (n + learner)
    seconds = SIM_SECONDS_PER_UNIT * units + SIM_SECONDS_PER_CHUNK * n_chunks
    if M is not None:
        memory += 8.0 * problem.sketch_draws * 2.0 * n * M + 8.0 * (4.0 * M * n + 3.0 * M * M)
        seconds += SIM_SECONDS_PER_SKETCH_UNIT * float(reps) * problem.N * n * M
        seconds += sketch_estimate(problem)[0].seconds
    if problem.test_inputs == "quantized" and problem.quantizers["data"] is not None:
        seconds += SIM_SECONDS_PER_UNIT * HQ_SAMPLES * n
        memory += 24.0 * learner * learner if M is not None else 0.0
    memory *= max(1, workers)
    candidates = [("reps", reps, 256), ("N", problem.N, 10_000), ("d", n, 200)]
    if M is not None:
        candidates += [("M", M, 64), ("sketch_draws", problem.sketch_draws, 1)]
    name, value = _culprit(candidates)
    if name == "d":
        value = problem.spectrum.d
    what = f"simulating {reps:.3g} replicas of {T:.3g} steps in {n:.3g} dimensions"
    return Estimate(what, memory, seconds), name, value


def require_simulation(problem: Problem, reps: int, **options: Any) -> None:
    """Refuse a simulation that exceeds the machine's limits, naming the input that drives its cost."""
    est, name, value = simulation_estimate(problem, reps, **options)
    require(est, name, value)


def exact_estimate(problem: Problem, nodes: int, method: str, *, compressed: bool = False
                   ) -> tuple[Estimate, str, Any]:
    """The exact engine's memory and time on a spectral measure of ``nodes`` nodes (per sketch draw), by
    ``method`` (``"spectral"`` or ``"recursion"``); and the input to blame. A ``compressed`` measure is evaluated
    at two refinement levels, ``nodes`` being the finer one's size."""
    Q = float(nodes)
    draws = problem.sketch_draws if problem.M is not None else 1
    refine = 1.5 if compressed else 1.0  # the coarse level has about half the nodes
    if method == "recursion":
        seconds = problem.steps * (EXACT_SECONDS_PER_NODE_STEP * Q + 2e-5)
        memory = 64.0 * Q
    else:
        phases = len(problem.phases())
        coupled = any(q is not None and (q.idealized_scheme() is None or q.idealized_scheme().kind != "additive")
                      for q in problem.quantizers.values())
        per_phase = EXACT_SECONDS_PER_NODE2_PHASE * Q * Q
        if coupled and problem.average != "last":
            per_phase += EXACT_SECONDS_PER_NODE3_PHASE * Q**3
        seconds = phases * per_phase
        memory = EXACT_BYTES_PER_NODE2 * Q * Q
    seconds *= refine * draws
    if problem.M is not None:
        name, value = "M", problem.M
    elif Q > 4096:
        name, value = "d", problem.spectrum.d
    else:
        name, value = "N", problem.N
    return Estimate(f"the exact risk on {nodes:.3g} nodes", memory, seconds), name, value


def require_exact(problem: Problem, nodes: int, method: str, *, compressed: bool = False) -> None:
    """Refuse an exact-engine run that exceeds the machine's limits, naming the input that drives its cost."""
    est, name, value = exact_estimate(problem, nodes, method, compressed=compressed)
    hint = ("a smooth spectrum (power or logpower) is compressed to a few hundred nodes whatever d"
            if name == "d" else "")
    require(est, name, value, hint=hint)
