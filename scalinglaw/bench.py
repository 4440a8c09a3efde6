"""Benchmarks that print ratios (speed is measured here, never in timed tests).

Each function returns a dict of measured numbers; :func:`run` gathers them (the ``scalinglaw bench`` command).
Times are best-of-``repeat`` wall-clock seconds with ``time.perf_counter``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "bare_gaussian_draws",
    "compiled_over_numpy",
    "de_predict_time",
    "exact_d_ratio",
    "exact_engine_time",
    "exact_peak_memory",
    "exact_scale_grid",
    "frontier_time",
    "frontier_uncertainty_time",
    "help_time",
    "run",
    "simulator_over_rng",
]


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def exact_engine_time(d: int = 1000, N: int = 10**6, *, repeat: int = 3, method: str = "auto",
                      **problem: Any) -> dict[str, Any]:
    """Seconds for one exact-risk evaluation (default problem: power law a=2, constant step, uniform average)."""
    from .exact import exact_risk
    from .problem import make_problem

    kw = {"a": 2.0, "gamma": 0.1, **problem}
    p = make_problem(d=d, N=N, **kw)
    seconds, res = _best(lambda: exact_risk(p, method=method), repeat)
    return {"d": d, "N": N, "seconds": seconds, "engine": res.method, "excess_risk": res.excess_risk}


def bare_gaussian_draws(steps: int, reps: int, B: int, d: int, block_steps: int, seed: int = 0) -> float:
    """Seconds to draw the simulator's standard normal inputs, block by block, into a preallocated buffer."""
    rng = np.random.default_rng(seed)
    buf = np.empty((block_steps, reps, B, d))
    t0 = time.perf_counter()
    done = 0
    while done < steps:
        nb = min(block_steps, steps - done)
        rng.standard_normal(out=buf if nb == block_steps else np.empty((nb, reps, B, d)))
        done += nb
    return time.perf_counter() - t0


def simulator_over_rng(d: int = 256, reps: int = 64, steps: int = 10_000, *, repeat: int = 3,
                       dtype: Any = np.float64) -> dict[str, Any]:
    """Simulator time divided by the bare cost of drawing the same Gaussian inputs (no quantization, B=1)."""
    from .problem import make_problem
    from .simulate import simulate
    from .simulate.plan import default_block_steps

    problem = make_problem(a=2.0, d=d, N=steps, B=1, gamma=0.2, sigma2=1.0)
    block = default_block_steps(problem, d, reps, np.dtype(dtype).itemsize)
    t_draw = min(bare_gaussian_draws(steps, reps, 1, d, block, s) for s in range(repeat))
    t_sim, _ = _best(lambda: simulate(problem, reps=reps, seed=0, chunk_reps=reps, block_steps=block, dtype=dtype),
                     repeat)
    return {"d": d, "reps": reps, "steps": steps, "draw_seconds": t_draw, "sim_seconds": t_sim,
            "ratio": t_sim / t_draw}


def compiled_over_numpy(points: int = 10**6, *, repeat: int = 5) -> dict[str, Any]:
    """The compiled ``sketched`` law on a ``points``-point (M, N) grid against the same formula in NumPy.

    Both use the same special function for the Hurwitz-zeta tails, so the ratio measures what compilation
    costs or saves. Also times the first compilation against a cached one.
    """
    from .laws import numeric
    from .laws.regression import SketchedLaw
    from .laws.special import power_head, power_tail, sketch_approximation

    side = round(points**0.5)
    M = np.logspace(1, 4, side)[:, None] * np.ones((1, side))
    N = np.logspace(3, 9, side)[None, :] * np.ones((side, 1))
    law = SketchedLaw()
    c = law.constants
    numeric.clear_cache()
    t_first, _ = _best(law.compile, 1)
    t_cached, fn = _best(law.compile, 1)
    args = [M, N, 1.0, 0.1, 1.0, 2.0, 2.0, np.inf]  # M, N, B, gamma, sigma2, a, b, d
    consts = [c[k] for k in law.constant_names]

    def by_hand() -> np.ndarray:
        neff = N / np.log2(N)
        x = np.e * neff * 0.1 / 1.0
        k = np.floor(np.minimum(M, x ** (1 / 2.0)))
        approx = sketch_approximation(2.0, 2.0, M, np.inf)
        head = power_head(-6.0, k) / x**4
        unlearned = np.maximum(power_tail(2.0, k, M), sketch_approximation(2.0, 2.0, k, np.inf) - approx)
        count = k + x**2 * power_tail(4.0, k, M)
        return (c["c_approximation"] * approx + c["c_bias"] * (head + unlearned)
                + c["c_variance"] * (1.0 + approx) * count / neff)

    t_hand, ref = _best(by_hand, repeat)
    t_comp, out = _best(lambda: fn(*args, *consts), repeat)
    return {"points": int(M.size), "compiled_seconds": t_comp, "numpy_seconds": t_hand,
            "ratio": t_comp / t_hand, "max_rel_diff": float(np.max(np.abs(out / ref - 1))),
            "first_compile_seconds": t_first, "cached_compile_seconds": t_cached}


def frontier_time(law: str = "kumar", budgets: int = 100, *, repeat: int = 5, **options: Any) -> dict[str, Any]:
    """Seconds for an optimal-allocation frontier over ``budgets`` compute budgets (1e18-1e26)."""
    from .allocate import frontier

    C = np.logspace(18, 26, budgets)
    seconds, fr = _best(lambda: frontier(law, C, **options), repeat)
    return {"law": law, "budgets": budgets, "seconds": seconds, "method": fr.method}


def _synthetic_fit(law: str, draws: int, seed: int = 0) -> Any:
    """A fit result whose bootstrap draws jitter the law's default constants (lognormal, 2%): what the
    propagation costs does not depend on where the draws come from, so no fit is run."""
    from .laws.fit import DEFAULT_FREE, DEFAULT_TIES, FitResult
    from .laws.registry import get_law

    law_obj = get_law(law)
    rng = np.random.default_rng(seed)
    free = DEFAULT_FREE[law_obj.name]
    ties = DEFAULT_TIES.get(law_obj.name, {})
    boot = {c: law_obj.constants[c] * np.exp(0.02 * rng.standard_normal(draws)) for c in free}
    boot.update({f: boot[lead] for f, lead in ties.items()})
    return FitResult(law=law_obj.name, constants=law_obj.constants, ci={}, loss=0.0, n_runs=0, free=tuple(free),
                     tied=dict(ties), fixed=(), huber_delta=1e-3, level=0.95, n_boot=draws, seed=seed, converged=True,
                     n_grid=0, n_starts=0, rms_log_residual=0.0, max_abs_log_residual=0.0, bootstrap=boot,
                     options=dict(law_obj.options), base_constants=law_obj.constants.name)


def frontier_uncertainty_time(law: str = "chinchilla", budgets: int = 100, draws: int = 1000, *,
                              repeat: int = 5) -> dict[str, Any]:
    """Seconds for a frontier over ``budgets`` compute budgets (1e18-1e26) with percentile bands over ``draws``
    bootstrap draws (:func:`scalinglaw.uncertainty.frontier_with_uncertainty`), and its ratio to the same
    frontier without bands."""
    from .allocate import frontier
    from .uncertainty import frontier_with_uncertainty

    fit = _synthetic_fit(law, draws)
    C = np.logspace(18, 26, budgets)
    seconds, fr = _best(lambda: frontier_with_uncertainty(fit, C), repeat)
    point, _ = _best(lambda: frontier(fit.law_object(), C), repeat)
    return {"law": law, "budgets": budgets, "draws": draws, "seconds": seconds, "point_seconds": point,
            "ratio_to_point_frontier": seconds / point, "failed_draws": int(fr.failed_draws.sum()),
            "method": fr.method}


def help_time(*, repeat: int = 3) -> dict[str, Any]:
    """Wall-clock seconds of ``scalinglaw --help`` in a fresh interpreter (import cost included)."""
    import subprocess
    import sys

    def call() -> None:
        subprocess.run([sys.executable, "-m", "scalinglaw.cli", "--help"], check=True, capture_output=True)

    seconds, _ = _best(call, repeat)
    return {"seconds": seconds}


#: Peak resident set (KB) of the running interpreter, as a statement binding ``kb``. Linux: the address space's
#: high-water mark (VmHWM), which starts afresh at exec; ``ru_maxrss`` does not (Linux carries the parent's peak
#: across fork and exec, so a benchmark run after a large one would report the parent's memory).
_PEAK_KB = ("\nimport resource\ntry:\n    kb = next(int(l.split()[1]) for l in open('/proc/self/status') "
            "if l.startswith('VmHWM:'))\nexcept (OSError, StopIteration):\n    kb = resource.getrusage("
            "resource.RUSAGE_SELF).ru_maxrss\n")


def de_predict_time(M: float, *, N: float = 1e9, repeat: int = 1) -> dict[str, Any]:
    """Wall-clock seconds and peak memory (MB, the process's max resident set) of
    ``scalinglaw predict --method de --M M --d inf --N N --json`` in a fresh interpreter (imports included)."""
    import json
    import subprocess
    import sys

    code = (f"import sys; from scalinglaw.cli import main; c = main(sys.argv[1:]){_PEAK_KB}"
            "sys.stderr.write('\\nMAXRSS %d\\n' % kb); sys.exit(c)")
    argv = [sys.executable, "-c", code, "predict", "--method", "de", "--M", f"{M:g}", "--d", "inf", "--N", f"{N:g}",
            "--json"]
    best, rss, out = math.inf, 0.0, ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if proc.returncode:
            raise RuntimeError(f"predict --method de --M {M:g} failed: {proc.stderr.strip()}")
        best = min(best, seconds)
        out = proc.stdout
        kb = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("MAXRSS ")]
        rss = max(rss, float(kb[-1]) / 1024.0) if kb else rss  # Linux reports KB
    res = json.loads(out)
    return {"M": M, "N": N, "seconds": best, "max_rss_mb": rss, "excess_risk": res["excess_risk"],
            "numerical_error": res["numerical_error"]}


def exact_n_ratio(d: int = 1000, n_small: int = 10**3, n_large: int = 10**9, *, repeat: int = 3,
                  check: tuple[int, ...] = (10**3, 10**4)) -> dict[str, Any]:
    """Closed-form (spectral) exact risk at ``n_large`` against ``n_small`` samples, same d: the cost should
    not grow with N. Also the relative agreement with the step-by-step recursion at the sizes in ``check``."""
    small = exact_engine_time(d, n_small, repeat=repeat, method="spectral")
    large = exact_engine_time(d, n_large, repeat=repeat, method="spectral")
    diffs = [abs(exact_engine_time(d, N, repeat=1, method="spectral")["excess_risk"]
                 / exact_engine_time(d, N, repeat=1, method="recursion")["excess_risk"] - 1) for N in check]
    return {"d": d, "N_small": n_small, "N_large": n_large, "seconds_small": small["seconds"],
            "seconds_large": large["seconds"], "ratio": large["seconds"] / small["seconds"],
            "max_rel_diff_vs_recursion": max(diffs), "checked_N": list(check)}


def _grid_problem(d: Any, N: float, schedule: str, data: str) -> Any:
    """One problem of the scale grid: a = 2, w* = 1, half the mean-square step limit of the quantized spectrum,
    uniform average for a constant step (Zou et al.), last iterate for geometric decay (Lin et al.)."""
    from .dynamics import mean_square_step_limit
    from .problem import make_problem
    from .spectra import PowerLaw

    kind, eps = data.split(":")
    e = float(eps)
    trace = PowerLaw(2.0, d).trace()
    trace = trace + float(d) * e if kind == "additive" else trace * (1 + e)
    gamma = 0.5 * mean_square_step_limit(1 + e, trace, 1)
    return make_problem(a=2.0, d=d, N=int(N), gamma=gamma, data=data, schedule=schedule,
                        average="uniform" if schedule == "constant" else "last")


#: The scale grid of issue 11: d x N x schedule x data noise (additive data noise needs a finite d).
GRID_D = (10**3, 10**5, 10**7, 10**9, "inf")
GRID_N = (1e3, 1e9, 1e20, 1e30)


def exact_scale_grid(ds: Any = GRID_D, Ns: Any = GRID_N, *, repeat: int = 1) -> dict[str, Any]:
    """Seconds of the exact engine over d x N x {constant, geometric} x {additive, multiplicative} (the issue-11
    grid); returns every case and the slowest."""
    from .exact import exact_risk

    cases = []
    for d in ds:
        for N in Ns:
            for schedule in ("constant", "geometric"):
                for data in ("additive:0.01", "multiplicative:0.01"):
                    if d == "inf" and data.startswith("additive"):
                        continue  # tr H^(q) = d eps is infinite: refused by the problem
                    p = _grid_problem(d, N, schedule, data)
                    _reset_peak()
                    seconds, res = _best(lambda p=p: exact_risk(p), repeat)
                    cases.append({"d": str(d), "N": N, "schedule": schedule, "average": p.average, "data": data,
                                  "seconds": seconds, "peak_mb": _peak_mb(), "excess_risk": res.excess_risk,
                                  "numerical_error": res.error})
    worst = max(cases, key=lambda c: c["seconds"])
    peaks = [c["peak_mb"] for c in cases if c["peak_mb"] is not None]
    return {"cases": cases, "max_seconds": worst["seconds"], "slowest": worst,
            "max_peak_mb": max(peaks) if peaks else None}


def _reset_peak() -> None:
    """Reset this process's resident-set high-water mark (Linux ``clear_refs``; elsewhere a no-op)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _peak_mb() -> float | None:
    """This process's resident-set high-water mark since :func:`_reset_peak` (MB; imports included), or ``None``
    where the platform does not report it."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024.0
    except (OSError, StopIteration):
        return None


def exact_d_ratio(d_small: int = 10**3, d_large: int = 10**7, N: int = 10**9, *, repeat: int = 10) -> dict[str, Any]:
    """Exact risk at ``d_large`` over ``d_small`` (same N, multiplicative data noise): with the spectral measure
    the cost should not grow with d. Best of ``repeat`` runs each (the times are a few ms, so fewer repeats
    mostly measure the machine's noise)."""
    from .exact import exact_risk

    small_p = _grid_problem(d_small, N, "constant", "multiplicative:0.01")
    large_p = _grid_problem(d_large, N, "constant", "multiplicative:0.01")
    small = _best(lambda: exact_risk(small_p), repeat)[0]
    large = _best(lambda: exact_risk(large_p), repeat)[0]
    return {"d_small": d_small, "d_large": d_large, "N": N, "seconds_small": small, "seconds_large": large,
            "ratio": large / small}


def exact_peak_memory(d: Any = "inf", N: float = 1e20) -> dict[str, Any]:
    """Peak resident memory (MB) of a fresh interpreter computing one exact risk at ``d``, ``N`` (geometric decay,
    multiplicative data noise), and of the same interpreter doing nothing but the imports."""
    import subprocess
    import sys

    code = ("from scalinglaw.bench import _grid_problem; from scalinglaw.exact import exact_risk; {call}"
            + _PEAK_KB + "print(kb / 1024)")
    call = f"exact_risk(_grid_problem({d!r}, {N!r}, 'geometric', 'multiplicative:0.01'))"
    peak = float(subprocess.run([sys.executable, "-c", code.format(call=call)], check=True, capture_output=True,
                                text=True).stdout.split()[-1])
    base = float(subprocess.run([sys.executable, "-c", code.format(call="pass")], check=True, capture_output=True,
                                text=True).stdout.split()[-1])
    return {"d": str(d), "N": N, "peak_mb": peak, "imports_mb": base}


def run(*, quick: bool = False) -> dict[str, Any]:
    """Every benchmark; ``quick`` uses smaller sizes (for smoke tests, not for the numbers).

    Top-level keys ``exact_n_ratio``, ``exact_d_ratio``, ``sim_over_rng`` and ``compiled_over_numpy`` are the
    headline ratios, ``exact_peak_mb`` the exact engine's peak memory at d = inf, N = 1e20,
    ``exact_grid_max_seconds`` and ``exact_grid_max_peak_mb`` the slowest case and the largest peak memory of the
    issue-11 scale grid (each case from a reset high-water mark, imports included), and
    ``frontier_uncertainty_seconds`` the slowest closed-form law's 100-budget frontier with 1000 bootstrap draws
    (target < 1 s); the other entries hold the measurements behind them.
    ``de_M1e4_seconds``, ``de_M1e4_max_rss_mb`` and ``de_M1e6_seconds`` time ``predict --method de --d inf
    --N 1e9`` (targets 5 s and 500 MB at M = 1e4, 60 s at M = 1e6; quick mode runs M = 1e3, N = 1e6 under the
    first two keys).
    """
    if quick:
        nratio = exact_n_ratio(d=50, n_large=10**6, repeat=1, check=(10**3,))
        dratio = exact_d_ratio(d_large=10**5, N=10**6, repeat=1)
        peak = exact_peak_memory(10**5, 1e6)
        grid = exact_scale_grid((10**3, "inf"), (1e3, 1e9))
        sim = simulator_over_rng(d=32, reps=8, steps=200, repeat=1)
        comp = compiled_over_numpy(points=10**4, repeat=1)
        fr = {"closed": frontier_time("kumar", repeat=1), "numeric": frontier_time("sun", budgets=10, repeat=1)}
        de = {"M1e4": de_predict_time(1e3, N=1e6)}
        unc = {name: frontier_uncertainty_time(name, draws=100, repeat=1) for name in ("chinchilla", "kumar")}
    else:
        nratio = exact_n_ratio()
        dratio = exact_d_ratio()
        peak = exact_peak_memory()
        grid = exact_scale_grid()
        sim = simulator_over_rng(steps=10_000)
        comp = compiled_over_numpy()
        fr = {"closed": frontier_time("kumar"), "numeric": frontier_time("sun", repeat=1)}
        de = {"M1e4": de_predict_time(1e4), "M1e6": de_predict_time(1e6)}
        unc = {name: frontier_uncertainty_time(name) for name in ("chinchilla", "kumar")}
    return {
        "de_M1e4_seconds": de["M1e4"]["seconds"],
        "de_M1e4_max_rss_mb": de["M1e4"]["max_rss_mb"],
        **({"de_M1e6_seconds": de["M1e6"]["seconds"]} if "M1e6" in de else {}),
        "deterministic_equivalent": de,
        "exact_n_ratio": nratio["ratio"],
        "exact_d_ratio": dratio["ratio"],
        "exact_peak_mb": peak["peak_mb"],
        "exact_grid_max_seconds": grid["max_seconds"],
        "exact_grid_max_peak_mb": grid["max_peak_mb"],
        "sim_over_rng": sim["ratio"],
        "compiled_over_numpy": comp["ratio"],
        "exact": nratio,
        "exact_d": dratio,
        "exact_peak": peak,
        "exact_grid": grid,
        "simulator": sim,
        "compiled": comp,
        "frontier_uncertainty_seconds": max(u["seconds"] for u in unc.values()),
        "frontier": fr,
        "frontier_uncertainty": unc,
        "help": help_time(repeat=1),
    }
