"""A 50-digit reference for the exact engine: the same moment recursion, evaluated by binary powering.

The engine's step maps (float64 coefficients, taken as exact) are assembled into the affine map of the augmented
state and raised to the phase lengths by repeated squaring in mpmath, so the result depends on the recursion
only, not on the engine's closed forms (eigendecomposition, divided differences, Taylor series). Small problems
only: the cost is (state size)^3 per squaring.
"""

from __future__ import annotations

import mpmath
import numpy as np


def _one_step(step, forcing: float, Q: int, accumulate: bool, compact: bool = False) -> mpmath.matrix:
    """Matrix of one step on x = [m, a, Z, Sa, Sm, Pair, 1] (6Q+1), or on [m, a, 1] when ``compact``."""
    if compact:
        n = 2 * Q + 1
        m_, a_, one = 0, Q, 2 * Q
    else:
        n = 6 * Q + 1
        m_, a_, z_, sa_, sm_, p_, one = 0, Q, 2 * Q, 3 * Q, 4 * Q, 5 * Q, 6 * Q
    A = mpmath.zeros(n, n)
    # D = 1 - gamma * rate from its complement, as the engine does (a float64 D rounds slow modes to 1)
    D = [1 - mpmath.mpf(float(v)) for v in step.gamma * step.rate]
    kap = [mpmath.mpf(float(v)) for v in step.kappa]
    beta = mpmath.mpf(float(step.beta))
    h = [mpmath.mpf(float(v)) for v in step.h]
    r = [mpmath.mpf(float(v)) for v in step.r]
    rho = [mpmath.mpf(float(v)) for v in step.rho]
    c = [mpmath.mpf(float(v)) for v in step.c]
    f = mpmath.mpf(forcing)
    # rows of the new (m, a) in terms of the old state
    M_new = [[mpmath.mpf(0)] * n for _ in range(Q)]
    A_new = [[mpmath.mpf(0)] * n for _ in range(Q)]
    for i in range(Q):
        M_new[i][m_ + i] = D[i]
        A_new[i][a_ + i] += 1 - kap[i]
        for j in range(Q):
            A_new[i][a_ + j] += beta * h[i] * h[j]
            A_new[i][m_ + j] += h[i] * rho[j]
        A_new[i][m_ + i] += r[i]
        A_new[i][one] += f * c[i]
    for i in range(Q):
        for col in range(n):
            A[m_ + i, col] = M_new[i][col]
            A[a_ + i, col] = A_new[i][col]
            if compact:
                continue
            if accumulate:
                A[sa_ + i, col] = A_new[i][col] + (1 if col == sa_ + i else 0)
                A[sm_ + i, col] = M_new[i][col] + (1 if col == sm_ + i else 0)
            else:
                A[sa_ + i, col] = 1 if col == sa_ + i else 0
                A[sm_ + i, col] = 1 if col == sm_ + i else 0
        if compact:
            continue
        # Z' = D (Z + a_old); Pair' = Pair + Z'
        A[z_ + i, z_ + i] = D[i]
        A[z_ + i, a_ + i] = D[i]
        A[p_ + i, p_ + i] = 1
        if accumulate:
            A[p_ + i, z_ + i] += D[i]
            A[p_ + i, a_ + i] += D[i]
    A[one, one] = 1
    return A


def _power(A: mpmath.matrix, n: int) -> mpmath.matrix:
    result = mpmath.eye(A.rows)
    base = A
    while n:
        if n & 1:
            result = base * result
        n >>= 1
        if n:
            base = base * base
    return result


def reference_moments(maps, m0: np.ndarray, a0: np.ndarray, forcing: float, average: str, dps: int = 50):
    """Output ``(second, cross)`` of one initial condition, as the engine's ``Moments`` rows, in mpmath.

    ``average``: ``"last"`` or ``"uniform"`` (window [0, T)).
    """
    Q = m0.size
    last = average == "last"
    with mpmath.workdps(dps):
        n = 2 * Q + 1 if last else 6 * Q + 1
        x = mpmath.zeros(n, 1)
        for i in range(Q):
            x[i] = mpmath.mpf(float(m0[i]))
            x[Q + i] = mpmath.mpf(float(a0[i]))
            if average == "uniform":
                x[3 * Q + i] = x[Q + i]  # t = 0 is in the window
                x[4 * Q + i] = x[i]
        x[n - 1] = 1
        T = sum(k for _, k in maps)
        done = 0
        for step, k in maps:
            if last:
                x = _power(_one_step(step, forcing, Q, False, compact=True), k) * x
            else:
                # steps t = done+1 .. done+k; the window [0, T) takes every step but the last (t = T)
                inside = k if done + k < T else k - 1
                x = _power(_one_step(step, forcing, Q, True), inside) * x
                if inside < k:
                    x = _one_step(step, forcing, Q, False) * x
            done += k
        if last:
            return [x[Q + i] for i in range(Q)], [x[i] for i in range(Q)]
        second = [(x[3 * Q + i] + 2 * x[5 * Q + i]) / (T * T) for i in range(Q)]
        cross = [x[4 * Q + i] / T for i in range(Q)]
        return second, cross
