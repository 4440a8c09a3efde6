r"""The vectorised SGD kernel: one chunk of replicas, one Generator (SPEC §3).

Update [paper: 2510.18259 for the update, recon for the details]:

.. math::

    w_t=w_{t-1}-\frac{\gamma_t}{B}\tilde X_t^\top Q_o\big(Q_a(\tilde X_tQ_p(w_{t-1}))-Q_l(y_t)\big),\qquad
    \tilde X_t=Q_d(X_t),\quad w_0=0.

All replicas of a chunk advance together: arrays carry a leading replica axis ``R``; the loop over steps is
the only Python loop. Inputs, clean labels and the quantized data and labels (which do not depend on the
iterate) are drawn and quantized one block of steps at a time; the parameter, activation and output-gradient
quantizers act inside the step. Quantizers act with ``vector_axes=(-1,)``: a sample row of ``X_t`` (shape
``(R, B, d)``), the batch vector of labels, activations and gradients (``(R, B)``), the parameter vector
(``(R, d)``).

Blocks are laid out ``(steps, R, B, d)`` so that the inputs of one step are contiguous.
Order of the draws from the chunk's Generator (fixed, so that results are reproducible): the targets of a
random prior, then per block: the standard normal inputs, the label noise, the data quantizer, the label
quantizer, then per step the parameter, activation and output-gradient quantizers.
"""

from __future__ import annotations

import numpy as np

from ..problem import QUANTIZER_TARGETS
from .plan import GroupPlan, SimPlan

__all__ = ["excess_risk_of", "run_chunk"]


def run_chunk(plan: SimPlan, group: int, reps: int, seed: np.random.SeedSequence) -> np.ndarray:
    """Simulate ``reps`` replicas of sketch group ``group`` with the Generator of ``seed``.

    Parameters
    ----------
    plan : SimPlan
        The run's set-up.
    group : int
        Index into ``plan.groups`` (the sketch draw; 0 for plain regression).
    reps : int
        Number of replicas in this chunk.
    seed : numpy.random.SeedSequence
        The chunk's child seed; every random draw of the chunk comes from ``default_rng(seed)``.

    Returns
    -------
    ndarray
        Excess risk of the output iterate of each replica, float64, shape ``(reps,)``.
    """
    pb = plan.problem
    if pb.distributed:
        from .distributed import run_chunk_distributed

        return run_chunk_distributed(plan, group, reps, seed)
    grp = plan.groups[group]
    rng = np.random.default_rng(seed)
    dt = plan.dtype
    R, B, n, nd = int(reps), pb.B, plan.n, plan.n_draw
    m = plan.learner_dim
    Qd, Ql, Qp, Qa, Qo = (pb.quantizers[k] for k in QUANTIZER_TARGETS)
    sketched = grp.proj is not None
    wstar = pb.target.draw(pb.spectrum, n, rng, R).astype(np.float64, copy=False)
    wlab = np.zeros((R, nd), dtype=dt)
    wlab[:, :n] = wstar
    scale = plan.sqrt_scale.astype(dt)
    proj = grp.proj.astype(dt) if sketched else None
    rot = grp.rot.astype(dt) if grp.rot is not None else None
    gammas = plan.gammas
    T = gammas.size
    t0, t1 = plan.window
    averaging = pb.average != "last"

    w = np.zeros((R, m), dtype=dt)
    acc = np.zeros((R, m), dtype=np.float64) if averaging else None  # float64 even for float32 runs
    act = np.empty((R, B), dtype=dt)
    res = np.empty((R, B), dtype=dt)
    grad = np.empty((R, m), dtype=dt)
    buffers: dict[int, tuple[np.ndarray, ...]] = {}

    def block_buffers(nb: int) -> tuple[np.ndarray, ...]:
        if nb not in buffers:
            x = np.empty((nb, R, B, nd), dtype=dt)
            z = np.empty((nb, R, B, m), dtype=dt) if sketched else x
            noise = np.empty((nb, R, B), dtype=dt)
            buffers.clear()
            buffers[nb] = (x, z, noise)
        return buffers[nb]

    t = 0
    while t < T:
        nb = min(plan.block_steps, T - t)
        x, z, noise = block_buffers(nb)
        # clean inputs X ~ N(0, H) and labels y = X w* + xi
        rng.standard_normal(out=x, dtype=dt)
        x *= scale
        # (nb, R, B, nd) @ (R, nd, 1): many small products, much faster than one tall gemv here
        y = np.matmul(x, wlab[:, :, None])[..., 0]
        if plan.noise_sd > 0:
            rng.standard_normal(out=noise, dtype=dt)
            noise *= dt.type(plan.noise_sd)
            y += noise
        # what the learner sees: Q_d of the (sketched) features, Q_l of the labels
        if sketched:
            np.dot(x.reshape(-1, nd), proj, out=z.reshape(-1, m))
            zq = z
            if Qd is not None:
                zq = np.asarray(Qd.quantize(z, rng, vector_axes=(-1,)), dtype=dt)
            if rot is not None:
                zq = np.matmul(zq, rot)
        else:
            zq = x if Qd is None else np.asarray(Qd.quantize(x, rng, vector_axes=(-1,)), dtype=dt)
        yq = y if Ql is None else np.asarray(Ql.quantize(y, rng, vector_axes=(-1,)), dtype=dt)
        for j in range(nb):
            s = t + j  # w currently holds w_s
            if averaging and t0 <= s < t1:
                acc += w
            Xt = zq[j]
            p = w if Qp is None else np.asarray(Qp.quantize(w, rng, vector_axes=(-1,)), dtype=dt)
            np.einsum("rbm,rm->rb", Xt, p, out=act)
            a = act if Qa is None else np.asarray(Qa.quantize(act, rng, vector_axes=(-1,)), dtype=dt)
            np.subtract(a, yq[j], out=res)
            r = res if Qo is None else np.asarray(Qo.quantize(res, rng, vector_axes=(-1,)), dtype=dt)
            np.multiply(r, dt.type(gammas[s] / B), out=res)
            np.einsum("rbm,rb->rm", Xt, res, out=grad)
            w -= grad
            if plan.pseudo_tail:
                w[:, -1] = 0.0
        t += nb
    if averaging:
        out = acc / float(t1 - t0)
    else:
        out = w.astype(np.float64)
    return excess_risk_of(plan, grp, out, wstar)


def excess_risk_of(plan: SimPlan, grp: GroupPlan, out: np.ndarray, wstar: np.ndarray) -> np.ndarray:
    r"""Excess risk of each replica's output iterate, given the iterate (no test sampling) [derived].

    Parameters
    ----------
    plan, grp : SimPlan, GroupPlan
        The set-up (spectrum, sketch maps, quantized-test form).
    out : ndarray
        Output iterates, ``(R, m)``: ``w`` (plain; a trailing pseudo-coordinate is ignored) or ``v``.
    wstar : ndarray
        Targets, ``(R, n)``.

    Returns
    -------
    ndarray
        ``(R,)``: :math:`\|w-w^*\|_H^2` (clean) or :math:`w^\top H^{(q)}w-2w^\top Cw^*+\|w^*\|_H^2`
        (quantized test inputs), plus the unlearned tail mass when ``d = inf``.
    """
    lam = plan.lam
    n = plan.n
    if grp.risk_map is None:
        w = out[:, :n]
        if grp.hq is None:
            e = w - wstar
            risk = (e * e) @ lam
        else:
            risk = (w * w) @ grp.hq - 2.0 * (w * wstar) @ (grp.cratio * lam) + (wstar * wstar) @ lam
    else:
        v = out
        if grp.hq is None:
            e = wstar - v @ grp.risk_map.T
            risk = (e * e) @ lam
        else:
            b = ((wstar * lam) @ grp.risk_map) * grp.cratio
            risk = np.einsum("ri,ij,rj->r", v, grp.hq, v) - 2.0 * np.einsum("ri,ri->r", v, b)
            risk = risk + (wstar * wstar) @ lam
    return np.asarray(risk, dtype=np.float64) + plan.tail
