r"""Reduction of a :class:`~scalinglaw.problem.Problem` to spectral measures (diagonal Gaussian problems).

Every problem the exact engine handles is, after a rotation, a *diagonal* problem: features
:math:`z\sim\mathcal N(0,\mathrm{diag}(\mu))`, a target whose coordinate second moments
:math:`\mathbb E v_i^{*2}` are known, and label noise independent of :math:`z`.

* Plain regression: the spectral measure of :func:`~scalinglaw.measure.spectrum_measure` (every coordinate for
  small or non-smooth spectra; an explicit head, quadrature blocks and a lumped frozen remainder otherwise, with
  no finite proxy for :math:`d=\infty`).
* Sketched model (Lin et al. 2024 [paper]; SPEC §1): draw :math:`S_{ij}\sim\mathcal N(0,1/M)`, rotate to the
  eigenbasis :math:`H_S=V\mathrm{diag}(\mu)V^\top`, :math:`v^*=H_S^{-1}SHw^*`. Because :math:`(Sx,y)` is jointly
  Gaussian, the residual :math:`y-\langle Sx,v^*\rangle` is independent of :math:`Sx`, so the sketched problem is
  exactly a well-specified :math:`M`-dimensional Gaussian regression with noise
  :math:`\sigma^2+\mathrm{Approx}` [derived], :math:`\mathrm{Approx}=\|H^{1/2}(w^*-S^\top v^*)\|^2`. A drawn sketch
  needs a finite matrix: for :math:`d=\infty` it is drawn on the proxy of
  :meth:`~scalinglaw.problem.Problem.proxy_dimension` coordinates, the rest being unlearned signal (the notes say so).

The risk is quadratic in the target and only the diagonal of :math:`\mathbb E v^*v^{*\top}` enters the
moment recursion, so a Gaussian prior is handled exactly by its diagonal [derived].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .measure import QuantizedVariance, SpectralMeasure, spectrum_measure
from .problem import Problem
from .quantize import Quantizer
from .quantize.moments import deep_second_moment, fixed_grid, grid_moments, second_moment_bound

__all__ = [
    "Sketch",
    "draw_sketch",
    "engine_quantizers",
    "exact_data_format",
    "quantizer_notes",
    "reduce_problem",
    "run_horizon",
]


@dataclass(frozen=True)
class Sketch:
    """One sketch draw: ``S`` (M x n), the eigenvalues ``mu`` (descending) and eigenvectors ``V`` of S H S^T.

    ``to_eigen`` maps raw sketched features to the eigenbasis: ``z_eig = z_raw @ V``.
    ``target_map`` (M x n) maps the first n coordinates of w* to v* in the eigenbasis.
    """

    S: np.ndarray = field(repr=False)
    mu: np.ndarray = field(repr=False)
    V: np.ndarray = field(repr=False)
    target_map: np.ndarray = field(repr=False)


def draw_sketch(problem: Problem, draw: int) -> Sketch:
    """Draw sketch number ``draw`` of ``problem`` (reproducible: ``SeedSequence(sketch_seed).spawn``)."""
    if problem.M is None:
        raise ValueError("problem is not sketched")
    n = problem.proxy_dimension()
    M = problem.M
    seeds = np.random.SeedSequence(problem.sketch_seed).spawn(problem.sketch_draws)
    rng = np.random.default_rng(seeds[draw])
    S = rng.standard_normal((M, n)) / np.sqrt(M)
    lam = problem.spectrum.head(n)
    SH = S * lam
    HS = SH @ S.T
    HS = 0.5 * (HS + HS.T)
    mu, V = np.linalg.eigh(HS)
    order = np.argsort(mu)[::-1]
    mu, V = mu[order], V[:, order]
    if not mu[-1] > 0:
        raise np.linalg.LinAlgError("sketched covariance is singular; increase d or lower M")
    # v*_eig = diag(1/mu) V^T S H  w*
    target_map = (V.T @ SH) / mu[:, None]
    return Sketch(S=S, mu=mu, V=V, target_map=target_map)


def run_horizon(problem: Problem) -> float:
    r"""The run's total step :math:`\sum_t\gamma_t` (how far the slowest coordinates can move)."""
    return float(sum(g * n for g, n in problem.phases()))


# ------------------------------------------------------------------------------------------ quantizers
def exact_data_format(problem: Problem) -> Quantizer | None:
    """The data format the exact engine treats exactly, or ``None``.

    A real format with a fixed grid (INT with ``range=R``, FP without absmax scaling) rounds each coordinate on
    its own: exact for plain regression and for a sketch quantized in its eigenbasis (independent coordinates).
    On raw sketched coordinates (correlated) it is not.
    """
    q = problem.quantizers["data"]
    if fixed_grid(q) is None or (problem.M is not None and problem.sketch_basis == "raw"):
        return None
    return q


def engine_quantizers(problem: Problem) -> dict[str, Quantizer | None]:
    """The quantizers as the exact engine takes them: a fixed-grid data format on raw sketched coordinates is
    replaced by its idealised surrogate (see :func:`quantizer_notes`); everything else is passed as is."""
    quants = problem.quantizers
    q = quants["data"]
    if q is not None and fixed_grid(q) is not None and exact_data_format(problem) is None:
        quants = {**quants, "data": q.idealized_scheme()}
    return quants


def quantizer_notes(problem: Problem) -> list[str]:
    """How each quantizer enters the exact engine: exactly, or through a surrogate (an approximation)."""
    notes = []
    for name, q in problem.quantizers.items():
        if q is None or q.idealized:
            continue
        if name == "data" and exact_data_format(problem) is not None:
            how = ("round-to-nearest: biased, w_q = (E[Qx]/E[Q^2]) w*" if q.rounding == "nearest"  # type: ignore[attr-defined]
                   else "stochastic rounding")
            notes.append(f"data={q.spec} is treated exactly: per-coordinate moments E Q^2, E Qx, E Q^4, E Q^3x, "
                         f"E Q^2x^2 of its fixed grid ({how}; theory/exact-risk.md §2)")
            continue
        ideal = q.idealized_scheme()
        if ideal is None:
            continue
        if name == "data":
            why = ("the raw sketched coordinates are correlated" if fixed_grid(q) is not None
                   else "absmax scaling couples the coordinates")
        else:
            why = f"no exact treatment of real formats on {name}"
        notes.append(f"{name}={q.spec} enters through its idealised surrogate {ideal.spec}: an approximation "
                     f"({why}); {_measured_gap(name, q)}")
    return notes


def _measured_gap(name: str, q: Quantizer) -> str:
    runs = MEASURED_GAPS.get((name, q.spec))
    if not runs:
        return "the size of the gap has not been measured for it (use simulate)"
    parts = [f"exact risk of the surrogate {sur:.5g} vs Monte Carlo of the format {mc:.5g} +- {se:.2g} "
             f"({(sur - mc) / mc:+.1%}, {(sur - mc) / se:+.1f} SE) at N={N}, gamma={g:g}"
             for N, g, sur, mc, se in runs]
    return "measured gap on the 2510.18259 set-up (theory/exact-risk.md §11): " + "; ".join(parts)


#: Surrogate gaps measured on the 2510.18259 set-up (lambda_i = i^-2, d = 200, w* = 1, sigma^2 = 1, B = 1, constant
#: step, uniform average) with ``simulate`` (N = 256: 4000 replicas, seed 2511; N = 10^4: 1000 replicas, seed 2512):
#: (target, spec) -> [(N, gamma, exact risk with the surrogate, Monte Carlo mean, its SE)].
MEASURED_GAPS: dict[tuple[str, str], list[tuple[int, float, float, float, float]]] = {
    ("data", "fp4_e2m1:scale=absmax"): [(256, 0.05, 0.29755, 0.28282, 0.00049),
                                        (10_000, 0.1, 0.035966, 0.037231, 0.000066)],
    ("data", "fp8_e4m3:scale=absmax"): [(256, 0.05, 0.28155, 0.28093, 0.00048),
                                        (10_000, 0.1, 0.028625, 0.028498, 0.000048)],
    ("params", "fp4_e2m1"): [(256, 0.05, 0.28157, 0.28163, 0.00050), (10_000, 0.1, 0.028743, 0.028652, 0.000050)],
    ("params", "fp8_e4m3"): [(256, 0.05, 0.28066, 0.28091, 0.00048)],
    ("params", "int8:range=4"): [(256, 0.05, 0.28061, 0.28085, 0.00048)],
    ("params", "int4:range=4"): [(256, 0.05, 0.28218, 0.28194, 0.00050)],
    ("acts", "fp4_e2m1"): [(256, 0.05, 0.28157, 0.28124, 0.00050), (10_000, 0.1, 0.028743, 0.028648, 0.000048)],
    ("acts", "fp8_e4m3"): [(256, 0.05, 0.28066, 0.28088, 0.00049)],
    ("acts", "int8:range=8"): [(256, 0.05, 0.28061, 0.28089, 0.00049)],
    ("grads", "fp4_e2m1"): [(256, 0.05, 0.28141, 0.28132, 0.00050), (10_000, 0.1, 0.028627, 0.028588, 0.000047)],
    ("grads", "fp8_e4m3"): [(256, 0.05, 0.28065, 0.28094, 0.00049)],
    ("labels", "fp4_e2m1"): [(256, 0.05, 0.28249, 0.28186, 0.00050), (10_000, 0.1, 0.028882, 0.028657, 0.000049)],
    ("labels", "fp8_e4m3"): [(256, 0.05, 0.28072, 0.28093, 0.00049)],
}


def _rate_bounds(problem: Problem) -> tuple[float, float, float]:
    r"""``(scale, floor, root)`` with :math:`\tilde\mu\le` ``scale`` :math:`\lambda+` ``floor`` :math:`+`
    ``root`` :math:`\sqrt\lambda` for the data quantizer (for a real format treated exactly:
    :func:`~scalinglaw.quantize.moments.second_moment_bound`)."""
    exact = exact_data_format(problem)
    if exact is not None:
        return second_moment_bound(exact)
    q = engine_quantizers(problem)["data"]
    ideal = None if q is None else q.idealized_scheme()
    if ideal is None or ideal.epsilon == 0:
        return 1.0, 0.0, 0.0
    if ideal.kind == "additive":
        return 1.0, float(ideal.epsilon), 0.0
    return 1.0 + float(ideal.epsilon), 0.0, 0.0


def _data_variance(problem: Problem) -> QuantizedVariance | None:
    r""":math:`\mathbb EQ_d(x)^2` against the variance, for a data format treated exactly (else ``None``)."""
    q = exact_data_format(problem)
    if q is None:
        return None
    floor, root, deep = deep_second_moment(q)
    return QuantizedVariance(second=lambda lam: grid_moments(q, lam).second, floor=floor, root=root, deep=deep)


def reduce_problem(problem: Problem, *, level: int = 0, compress: bool | None = None) -> list[SpectralMeasure]:
    """Reduce ``problem`` to one :class:`~scalinglaw.measure.SpectralMeasure` per sketch draw (one for plain
    regression).

    Plain regression goes through :func:`~scalinglaw.measure.spectrum_measure` (explicit head, quadrature
    blocks at refinement ``level``, frozen remainder; ``compress`` as there).
    A sketch is drawn on the finite proxy of :meth:`~scalinglaw.problem.Problem.proxy_dimension` coordinates.
    """
    spec, target = problem.spectrum, problem.target
    if problem.M is None:
        scale, floor, root = _rate_bounds(problem)
        return [
            spectrum_measure(
                spec, target, sigma2=problem.sigma2, horizon=run_horizon(problem), fast_gamma=problem.gamma,
                rate_scale=scale, rate_floor=floor, rate_root=root, data_variance=_data_variance(problem),
                level=level, compress=compress,
            )
        ]
    n = problem.proxy_dimension()
    tail = target.tail_mass(spec, n) if spec.is_infinite else 0.0
    notes: list[str] = []
    if spec.is_infinite:
        head = spec.head(n)
        lam_n = float(head[-1])
        notes.append(
            f"d=inf: the sketch is drawn on a finite proxy of {n} coordinates; the tail mass {tail:.6g} is "
            f"treated as unlearned signal (gamma*T*lambda_n = {problem.gamma * problem.steps * lam_n:.3g})"
        )
        from .dynamics import mean_square_step_limit  # dynamics builds on this module

        head_trace = float(np.sum(head))
        tail_trace = spec.tail_sum(n)
        if tail_trace > 1e-3 * head_trace:
            # the tail's feedback on the noise builds up only over ~1/(gamma lambda_n) steps
            notes.append(
                f"the tail holds {tail_trace / (head_trace + tail_trace):.1%} of tr H: the stated largest stable "
                f"gamma is the proxy's over this horizon; over an unbounded one the full spectrum needs gamma < "
                f"{mean_square_step_limit(float(head[0]), head_trace + tail_trace, problem.B):.3g}"
            )
    s_head = target.second_moments(spec, n)
    lam = spec.head(n)
    out = []
    for k in range(problem.sketch_draws):
        sk = draw_sketch(problem, k)
        A = sk.target_map
        v = None
        if target.is_random:
            # diagonal prior: E v_j^2 = sum_i A_ji^2 c_i; E Approx = sum_i lam_i c_i - sum_j mu_j E v_j^2
            v_sq = (A * A) @ s_head
            approx = float(lam @ s_head - sk.mu @ v_sq)
        else:
            w = target.draw(spec, n, np.random.default_rng(0), 1)[0]
            v = A @ w
            resid = w - sk.S.T @ (sk.V @ v)
            v_sq = v * v
            approx = float(lam @ (resid * resid))
        approx = max(approx, 0.0)
        offset = {"sketch_approximation": approx}
        if spec.is_infinite:
            offset["tail"] = tail
        out.append(
            SpectralMeasure(
                mu=sk.mu, target_sq=v_sq, sigma2=problem.sigma2 + approx + tail, target=v,
                excess_offset=offset, notes=tuple(notes),
            )
        )
    return out
