r"""Exact risk of data-parallel SGD with quantized communication, round by round [derived].

The map of one communication round (:class:`~scalinglaw.communication.RoundMap`: ``period`` local steps of each
worker, then quantized averaging) is stepped here. For :math:`\tau=1` with additive or multiplicative
communication noise the engine does not come here: the server's map is then diagonal plus rank one
(:func:`~scalinglaw.communication.server_coefficients`) and the closed form per phase applies, at a cost
independent of :math:`N`. Local steps (:math:`\tau>1`) and norm-relative noise are stepped, at a cost
proportional to :math:`T\times` nodes, guarded by :data:`STEP_LIMIT`.

Outputs are built from the server's iterates at the round boundaries :math:`r=0..R`, :math:`R=T/\tau`: the last,
the uniform average of :math:`0..R-1` or the tail average of :math:`\lfloor R/2\rfloor..R-1`. Because every
quantizer is unbiased, :math:`\mathbb E[u_{r'}\mid\mathcal F_r]=\Pi_{r\to r'}u_r` with :math:`\Pi` the product of
:math:`1-\gamma_t\tilde\mu` over the steps in between, so the window sums close as in
:mod:`scalinglaw.exact.recursion`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..communication import RoundMap, comm_scheme, needs_rounds, server_coefficients
from ..dynamics import MomentCoefficients, StepMap, max_stable_step
from ..errors import UnsupportedConfigurationError
from .window import Moments, averaging_window

__all__ = ["STEP_LIMIT", "distributed_coefficients", "distributed_max_stable_step", "round_moments"]

#: Largest (local steps) x (nodes) the stepped round map accepts.
STEP_LIMIT = 2e8


def distributed_coefficients(mc: MomentCoefficients, problem: Any) -> tuple[MomentCoefficients, RoundMap | None]:
    """The coefficients the engine steps with, and the round map when it must be stepped.

    Checks stability. For :math:`\\tau=1` with additive or multiplicative communication returns the server's
    coefficients (:func:`~scalinglaw.communication.server_coefficients`) and ``None``; otherwise the worker's
    coefficients and the :class:`~scalinglaw.communication.RoundMap`.
    """
    kind, eps = comm_scheme(problem.comm)
    rmap = RoundMap(mc, problem.K, problem.period, kind, eps)
    rmap.check_stability(problem.gamma)
    if not needs_rounds(problem.K, problem.period, kind):
        return server_coefficients(mc, problem.K, kind, eps), None
    cost = problem.steps * mc.mu.size
    if cost > STEP_LIMIT:
        why = "local steps (period > 1)" if problem.period > 1 else "norm-relative communication"
        raise UnsupportedConfigurationError(
            f"{why}: the exact engine steps the round map, T x nodes = {problem.steps} x {mc.mu.size} = {cost:.3g} "
            f"above its limit {STEP_LIMIT:.0e}; lower N, use a smaller d or sketch M, or simulate")
    return mc, rmap


def distributed_max_stable_step(mc: MomentCoefficients, problem: Any) -> float:
    """The largest stable step of a distributed problem, from the coefficients :func:`distributed_coefficients`
    returned (server coefficients on the closed-form path, the worker's on the stepped one)."""
    kind, eps = comm_scheme(problem.comm)
    if not needs_rounds(problem.K, problem.period, kind):
        return max_stable_step(mc)
    return RoundMap(mc, problem.K, problem.period, kind, eps).max_stable_step()


def round_moments(
    rmap: RoundMap, maps: list[tuple[StepMap, int]], m0: np.ndarray, x0: np.ndarray, forcing: np.ndarray,
    average: str,
) -> Moments:
    """Step the rounds through the phases ``maps`` (the worker's step maps); same contract as
    :func:`~scalinglaw.exact.recursion.recursion_moments`, with the server's iterates at round boundaries as the
    averaged sequence."""
    tau = rmap.period
    T = sum(n for _, n in maps)
    R = T // tau
    t0, t1 = averaging_window(R, average)
    m = np.array(m0, dtype=np.float64)
    x = np.array(x0, dtype=np.float64)
    sum_x, sum_m = np.zeros_like(x), np.zeros_like(m)
    pair, Z = np.zeros_like(x), np.zeros_like(x)
    r = 0
    in_w = t0 <= r < t1
    if in_w:
        sum_x += x
        sum_m += m
    a, b, c = x, x, x
    Dr = np.ones(x.shape[-1])
    pos = 0
    for step, n_steps in maps:
        D = step.D
        D2 = D * D
        for _ in range(n_steps):
            m, a = step.apply(m, a, forcing)
            b = D2 * b
            c = D * c
            Dr = Dr * D
            pos += 1
            if pos < tau:
                continue
            x_prev, prev_in = x, in_w
            x = rmap.average(a, b, c, x, forcing, step.gamma)
            r += 1
            Z = Dr * (Z + x_prev) if prev_in else Dr * Z
            in_w = t0 <= r < t1
            if in_w:
                sum_x += x
                sum_m += m
                pair += Z
            a, b, c = x, x, x
            Dr = np.ones_like(Dr)
            pos = 0
    if average == "last":
        return Moments(second=x, cross=m)
    nw = t1 - t0
    return Moments(second=(sum_x + 2.0 * pair) / (nw * nw), cross=sum_m / nw)
