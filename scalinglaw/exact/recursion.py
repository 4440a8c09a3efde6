r"""Step-by-step moment recursion: the reference implementation of the exact risk [derived].

It iterates the exact affine map of :class:`~scalinglaw.dynamics.StepMap` once per SGD step (cost
:math:`O(Td)`), and accumulates what the averaged outputs need. For a window :math:`W` of :math:`n` iterates,

.. math::

    \mathbb E\bar u_i^2=\frac1{n^2}\Big(\sum_{t\in W}a_{t,i}+2\sum_{s<t\in W}\Pi_{s\to t,i}\,a_{s,i}\Big),\qquad
    \Pi_{s\to t,i}=\prod_{r=s+1}^{t}(1-\gamma_r\tilde\mu_i),

because :math:`\mathbb E[u_t\mid\mathcal F_s]=\Pi_{s\to t}u_s` exactly (all quantizers are unbiased); and
:math:`\mathbb E[\bar u_iv^*_i]=\frac1n\sum_{t\in W}\tilde m_{t,i}`. The closed-form engine
(:mod:`scalinglaw.exact.spectral`) is checked against this.
"""

from __future__ import annotations

import numpy as np

from ..dynamics import StepMap
from .window import Moments, averaging_window

__all__ = ["recursion_moments"]


def recursion_moments(
    maps: list[tuple[StepMap, int]], m0: np.ndarray, a0: np.ndarray, forcing: np.ndarray, average: str
) -> Moments:
    """Run the recursion through the phases ``maps`` = [(step map, number of steps), ...].

    ``m0`` and ``a0`` carry a leading axis of independent initial conditions, each with its ``forcing``
    multiplier (0 or 1) of the map's constant.
    Returns the second moment :math:`\\mathbb E u_i^2` and cross moment :math:`\\mathbb E[u_iv^*_i]` of the output.
    """
    T = sum(n for _, n in maps)
    t0, t1 = averaging_window(T, average)
    m = np.array(m0, dtype=np.float64)
    a = np.array(a0, dtype=np.float64)
    sum_a = np.zeros_like(a)
    sum_m = np.zeros_like(m)
    pair = np.zeros_like(a)
    Z = np.zeros_like(a)
    t = 0
    in_w = t0 <= t < t1
    if in_w:
        sum_a += a
        sum_m += m
    for step, n_steps in maps:
        D = step.D
        for _ in range(n_steps):
            a_prev, prev_in = a, in_w
            m, a = step.apply(m, a, forcing)
            t += 1
            Z = D * (Z + a_prev) if prev_in else D * Z
            in_w = t0 <= t < t1
            if in_w:
                sum_a += a
                sum_m += m
                pair += Z
    if average == "last":
        return Moments(second=a, cross=m)
    n = t1 - t0
    return Moments(second=(sum_a + 2.0 * pair) / (n * n), cross=sum_m / n)
