r"""Eigen-decomposition of a diagonal-minus-rank-one matrix in :math:`O(d^2)` (the secular equation) [derived].

Within a constant-step phase the second-moment map is :math:`P=I-K` with
:math:`K=\mathrm{diag}(\kappa)-\beta hh^\top` (:mod:`scalinglaw.dynamics`). Its eigenvalues solve the secular
equation :math:`1-\sum_i\beta h_i^2/(\kappa_i-\lambda)=0`, one root between consecutive poles. For a stable step
:math:`K` is positive definite, and its inverse is the *positive* diagonal-plus-rank-one matrix
:math:`K^{-1}=\mathrm{diag}(1/\kappa)+\rho ww^\top`, :math:`w=\sqrt\beta h/\kappa`,
:math:`\rho=1/(1-\beta\sum_i h_i^2/\kappa_i)` (Sherman-Morrison). LAPACK's ``dlasd4`` solves that form
:math:`\mathrm{diag}(d^2)+ww^\top` stably and returns the differences :math:`d_i^2-\sigma_j^2` to full relative
accuracy, so the small eigenvalues of :math:`K` (the slow modes, raised to powers :math:`n\sim10^9`) come out as
reciprocals of large, accurately computed roots, with full relative accuracy — which a dense ``eigh`` of :math:`K`
does not guarantee (its error is relative to :math:`\|K\|`). Eigenvectors follow from the Gu-Eisenstat recomputed
weights :math:`\hat w_i^2=\prod_j(\sigma_j^2-d_i^2)/\prod_{j\ne i}(d_j^2-d_i^2)`, which keeps them orthogonal.

Deflation handles components with negligible weight and (nearly) equal poles, as LAPACK's ``dlaed2`` does.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.linalg import lapack

__all__ = ["eig_diag_minus_rank_one"]


def _deflate(kap: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, float, float]]]:
    """Zero the weights that deflate: exact zeros, and one of each pair of poles equal to rounding *relative to
    themselves* (Givens), as LAPACK's ``dlaed2`` does with an absolute tolerance. The slow modes need relative
    accuracy, so poles that are merely tiny are not merged; small weights are left to :func:`_deflate_relative`.

    Returns the new weights, a mask of the deflated indices and the rotations applied ``(i, j, c, s)``.
    """
    z = z.copy()
    deflated = z == 0.0
    rotations = []
    idx = np.nonzero(~deflated)[0]
    tol = 8 * np.finfo(float).eps
    for a, b in itertools.pairwise(idx):
        if kap[b] - kap[a] <= tol * abs(kap[b]) and z[a] != 0.0:
            r = np.hypot(z[a], z[b])
            c, s = z[b] / r, z[a] / r
            z[a], z[b] = 0.0, r
            rotations.append((int(a), int(b), float(c), float(s)))
            deflated[a] = True
    return z, deflated, rotations


def _deflate_relative(kap: np.ndarray, z: np.ndarray, deflated: np.ndarray, threshold: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    r"""Also deflate the components whose coupling is negligible *relative to their own pole*.

    Dropping :math:`z_i` moves the eigenvalue near :math:`\kappa_i` by at most :math:`z_i^2`, i.e. by
    :math:`z_i^2/\kappa_i` relative, and every other root by at most :math:`\sum z_i^2/\kappa_i` relative. The slow
    modes are raised to powers :math:`n\sim10^{28}`, so they need *relative* accuracy, which the absolute test
    (relative to :math:`\max\kappa`) does not give; and ``dlasd4`` fails to converge on a root that sits within
    rounding of its pole. So the smallest ratios :math:`z_i^2/\kappa_i` are deflated while their sum stays
    below ``threshold`` (:math:`\epsilon_{\rm mach}/8`).
    """
    live = np.nonzero(~deflated)[0]
    if not live.size or not np.all(kap[live] > 0):
        return z, deflated
    ratio = z[live] ** 2 / kap[live]
    order = np.argsort(ratio)
    drop = live[order[np.cumsum(ratio[order]) <= threshold]]
    if drop.size:
        z = z.copy()
        deflated = deflated.copy()
        z[drop] = 0.0
        deflated[drop] = True
    return z, deflated


def _bisect_root(j: int, d: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    r"""Root ``j`` of :math:`1+\sum_iw_i^2/(d_i^2-\sigma^2)=0` by bisection, where ``dlasd4`` does not converge
    (enormous dynamic ranges of :math:`w`); same outputs (``d - sigma``, ``sigma``, ``d + sigma``).

    The unknown is the offset :math:`\tau` of :math:`\sigma^2` from the nearer pole, with the pole differences
    formed as :math:`(d_i-d_o)(d_i+d_o)`, so the root keeps full relative accuracy however close it is to its pole;
    the bisection is geometric while the bracket spans orders of magnitude.
    """
    m = d.size
    w2 = w * w
    last = j == m - 1
    gap = float(w2.sum()) if last else float((d[j + 1] - d[j]) * (d[j + 1] + d[j]))

    def g(o: int, tau: float) -> float:
        return 1.0 + float(np.sum(w2 / ((d - d[o]) * (d + d[o]) - tau)))

    # the root is right of pole j (g rises from -inf there) and, unless last, left of pole j + 1
    o = j if last or g(j, 0.5 * gap) > 0 else j + 1
    sign = 1.0 if o == j else -1.0
    # bracket in |tau| between tiny and half the gap
    a_, b_ = 0.5 * gap * 2.0**-1000, 0.5 * gap
    for _ in range(2000):
        mid = math.sqrt(a_ * b_) if b_ > 4.0 * a_ else 0.5 * (a_ + b_)
        if mid <= a_ or mid >= b_:
            break
        if (g(o, sign * mid) > 0) == (o == j):
            b_ = mid
        else:
            a_ = mid
    tau = sign * 0.5 * (a_ + b_)
    delta2 = (d - d[o]) * (d + d[o]) - tau  # d_i^2 - sigma^2
    sigma = math.sqrt(d[o] * d[o] + tau)
    work = d + sigma
    return delta2 / work, sigma, work


def _solve(kap: np.ndarray, z: np.ndarray, deflated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and vectors of ``diag(kap) - z z^T`` (``kap`` ascending) in the sorted basis, deflated components
    kept as unit vectors with their pole as eigenvalue."""
    n = kap.size
    live = np.nonzero(~deflated)[0]
    k = np.empty(n)
    V = np.zeros((n, n))  # eigenvectors in the sorted (and rotated) basis, column j for eigenvalue k[j]
    k[: deflated.sum()] = kap[deflated]
    V[np.nonzero(deflated)[0], np.arange(deflated.sum())] = 1.0
    m = live.size
    if m:
        kl, zl = kap[live], z[live]
        if not np.all(kl > 0) or float(np.sum(zl * zl / kl)) >= 1.0:
            raise np.linalg.LinAlgError("diag(kappa) - beta h h^T is not positive definite (an unstable step)")
        # K^{-1} = diag(1/kappa) + rho w w^T, w = z/kappa, rho = 1/(1 - sum z^2/kappa) > 0: dlasd4's positive
        # form with d = kappa^{-1/2} ascending (kappa descending). No shift, so small gaps keep their accuracy.
        rev = np.arange(m)[::-1]
        kr = kl[rev]
        rho = 1.0 / (1.0 - float(np.sum(zl * zl / kl)))
        d = 1.0 / np.sqrt(kr)
        w = np.sqrt(rho) * zl[rev] / kr
        diff = np.empty((m, m))  # diff[i, j] = d_i^2 - sigma_j^2 = 1/kappa_i - 1/k_j
        sig2 = np.empty(m)
        for j in range(m):
            delta, sigma, work, info = lapack.dlasd4(j, d, w, 1.0)
            if info != 0:
                delta, sigma, work = _bisect_root(j, d, w)
            diff[:, j] = delta * work
            sig2[j] = sigma * sigma
        kj = 1.0 / sig2
        # Gu-Eisenstat weights: what_i^2 = prod_j (sigma_j^2 - d_i^2) / prod_{j != i} (d_j^2 - d_i^2), from the
        # same rounded d that dlasd4 solved for. The vectors are then orthogonal (to rounding) eigenvectors of K with
        # each kappa_i perturbed by O(eps) relative; mixing in the exact kappa instead breaks orthogonality by
        # eps / (relative gap) for clustered poles.
        dd = (d[None, :] - d[:, None]) * (d[None, :] + d[:, None])
        np.fill_diagonal(dd, 1.0)
        logw = np.sum(np.log(np.abs(diff)), axis=1) - np.sum(np.log(np.abs(dd)), axis=1)
        what = np.exp(0.5 * logw) * np.sign(w)
        vec = what[:, None] / diff  # w_i / (d_i^2 - sigma_j^2)
        vec /= np.linalg.norm(vec, axis=0, keepdims=True)
        cols = np.arange(deflated.sum(), n)
        k[cols] = kj
        V[live[rev][:, None], cols[None, :]] = vec
    return k, V


def eig_diag_minus_rank_one(kappa: np.ndarray, beta: float, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Eigenvalues (ascending) and orthonormal eigenvectors of :math:`\mathrm{diag}(\kappa)-\beta hh^\top`.

    Parameters
    ----------
    kappa : ndarray
        The diagonal, any order.
    beta : float
        The weight :math:`\beta\ge0` of the rank-one term.
    h : ndarray
        The rank-one vector.

    Returns
    -------
    k, U : ndarray
        ``K @ U = U * k``; ``k`` ascending.
    """
    kappa = np.asarray(kappa, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    order = np.argsort(kappa)
    kap = kappa[order]
    z0 = np.sqrt(max(beta, 0.0)) * h[order]
    z, deflated = _deflate_relative(kap, z0, z0 == 0.0, np.finfo(float).eps / 8)
    z, deflated_pairs, rotations = _deflate(kap, z)
    deflated |= deflated_pairs
    k, V = _solve(kap, z, deflated)
    # undo the rotations (in reverse) and the sort
    for a, b, cth, sth in reversed(rotations):
        va, vb = V[a].copy(), V[b].copy()
        V[a] = cth * va + sth * vb
        V[b] = -sth * va + cth * vb
    srt = np.argsort(k)
    k, V = k[srt], V[:, srt]
    U = np.empty_like(V)
    U[order] = V
    return k, U
