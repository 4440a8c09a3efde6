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

from .measure import SpectralMeasure, spectrum_measure
from .problem import Problem

__all__ = ["Sketch", "draw_sketch", "reduce_problem", "run_horizon"]


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


def _rate_bounds(problem: Problem) -> tuple[float, float]:
    r"""``(scale, floor)`` with :math:`\tilde\mu\le` ``scale`` :math:`\lambda+` ``floor`` for the data quantizer."""
    q = problem.quantizers["data"]
    ideal = None if q is None else q.idealized_scheme()
    if ideal is None or ideal.epsilon == 0:
        return 1.0, 0.0
    if ideal.kind == "additive":
        return 1.0, float(ideal.epsilon)
    return 1.0 + float(ideal.epsilon), 0.0


def reduce_problem(problem: Problem, *, level: int = 0, compress: bool | None = None) -> list[SpectralMeasure]:
    """Reduce ``problem`` to one :class:`~scalinglaw.measure.SpectralMeasure` per sketch draw (one for plain
    regression).

    Plain regression goes through :func:`~scalinglaw.measure.spectrum_measure` (explicit head, quadrature
    blocks at refinement ``level``, frozen remainder; ``compress`` as there).
    A sketch is drawn on the finite proxy of :meth:`~scalinglaw.problem.Problem.proxy_dimension` coordinates.
    """
    spec, target = problem.spectrum, problem.target
    if problem.M is None:
        scale, floor = _rate_bounds(problem)
        return [
            spectrum_measure(
                spec, target, sigma2=problem.sigma2, horizon=run_horizon(problem), fast_gamma=problem.gamma,
                rate_scale=scale, rate_floor=floor, level=level, compress=compress,
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
