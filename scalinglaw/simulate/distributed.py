r"""The vectorised kernel of data-parallel SGD with quantized communication (``theory/distributed.md``).

:math:`K` workers hold local iterates :math:`w_k` (a worker axis next to the replica axis). At the start of a
round every :math:`w_k` is the server's :math:`w`; each worker takes ``period`` :math:`=\tau` local steps of the
quantized SGD of SPEC §3 on its own fresh batch of :math:`B` samples, with its own draws of every quantizer (its
parameter quantizer included); it accumulates its displacement :math:`\Delta_k=\sum_t\gamma_tg_{k,t}` and sends
:math:`v_k=\Delta_k/\gamma_r` (:math:`\gamma_r` the step of the round's last step; for :math:`\tau=1`,
:math:`v_k=g_k`). The server receives :math:`Q_c(v_k)`, drawn independently per worker, and sets
:math:`w\leftarrow w-\gamma_r\frac1K\sum_kQ_c(v_k)` [paper: PQASGD's periodic quantized averaging, as summarised
in the seed notes; details recon].

The output is built from the server's iterates at round boundaries (``plan.window`` counts rounds). Draw order
from the chunk's Generator (fixed, so that results are reproducible): the targets of a random prior; per block
the standard normal inputs ``(steps, R, K, B, d)``, the label noise, the data and label quantizers; per step the
parameter, activation and output-gradient quantizers (all workers at once). The communication quantizer draws
from a second Generator, ``SeedSequence(entropy, spawn_key + (COMM_STREAM,))`` of the chunk's seed, so that runs
that differ only in the message quantizer or the period share every other draw (paired comparisons).
"""

from __future__ import annotations

import numpy as np

from ..problem import QUANTIZER_TARGETS
from .plan import SimPlan

__all__ = ["COMM_STREAM", "run_chunk_distributed"]

#: Last spawn-key word of the stream of the communication quantizer (``SeedSequence(entropy, key + (it,))``).
COMM_STREAM = 0x636F6D6D


def run_chunk_distributed(plan: SimPlan, group: int, reps: int, seed: np.random.SeedSequence) -> np.ndarray:
    """Simulate ``reps`` replicas of the distributed run of ``plan`` (same contract as
    :func:`~scalinglaw.simulate.kernel.run_chunk`)."""
    from .kernel import excess_risk_of

    pb = plan.problem
    grp = plan.groups[group]
    rng = np.random.default_rng(seed)
    # the messages' quantizer draws from its own stream, so that runs differing only in ``comm`` (or in the
    # period) share every other draw and can be compared replica by replica
    comm_rng = np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, COMM_STREAM)))
    dt = plan.dtype
    R, B, K, tau, n, nd = int(reps), pb.B, pb.K, pb.period, plan.n, plan.n_draw
    m = plan.learner_dim
    Qd, Ql, Qp, Qa, Qo = (pb.quantizers[k] for k in QUANTIZER_TARGETS)
    Qc = pb.comm
    sketched = grp.proj is not None
    wstar = pb.target.draw(pb.spectrum, n, rng, R).astype(np.float64, copy=False)
    wlab = np.zeros((R, 1, nd, 1), dtype=dt)
    wlab[:, 0, :n, 0] = wstar
    scale = plan.sqrt_scale.astype(dt)
    proj = grp.proj.astype(dt) if sketched else None
    rot = grp.rot.astype(dt) if grp.rot is not None else None
    gammas = plan.gammas
    T = gammas.size
    t0, t1 = plan.window
    averaging = pb.average != "last"

    w = np.zeros((R, m), dtype=dt)
    wk = np.zeros((R, K, m), dtype=dt)
    disp = np.zeros((R, K, m), dtype=np.float64)
    acc = np.zeros((R, m), dtype=np.float64) if averaging else None
    grad = np.empty((R, K, m), dtype=dt)
    buffers: dict[int, tuple[np.ndarray, ...]] = {}

    def block_buffers(nb: int) -> tuple[np.ndarray, ...]:
        if nb not in buffers:
            x = np.empty((nb, R, K, B, nd), dtype=dt)
            z = np.empty((nb, R, K, B, m), dtype=dt) if sketched else x
            noise = np.empty((nb, R, K, B), dtype=dt)
            buffers.clear()
            buffers[nb] = (x, z, noise)
        return buffers[nb]

    t = 0
    pos = 0  # local step within the round
    rnd = 0  # rounds completed
    while t < T:
        nb = min(plan.block_steps, T - t)
        x, z, noise = block_buffers(nb)
        rng.standard_normal(out=x, dtype=dt)
        x *= scale
        y = np.matmul(x, wlab)[..., 0]  # (nb, R, K, B)
        if plan.noise_sd > 0:
            rng.standard_normal(out=noise, dtype=dt)
            noise *= dt.type(plan.noise_sd)
            y += noise
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
            s = t + j
            if pos == 0:
                if averaging and t0 <= rnd < t1:
                    acc += w
                wk[...] = w[:, None, :]
            Xt = zq[j]  # (R, K, B, m)
            p = wk if Qp is None else np.asarray(Qp.quantize(wk, rng, vector_axes=(-1,)), dtype=dt)
            act = np.einsum("rkbm,rkm->rkb", Xt, p)
            a = act if Qa is None else np.asarray(Qa.quantize(act, rng, vector_axes=(-1,)), dtype=dt)
            res = a - yq[j]
            r = res if Qo is None else np.asarray(Qo.quantize(res, rng, vector_axes=(-1,)), dtype=dt)
            r = r * dt.type(gammas[s] / B)
            np.einsum("rkbm,rkb->rkm", Xt, r, out=grad)
            wk -= grad
            disp += grad
            if plan.pseudo_tail:
                wk[..., -1] = 0.0
            pos += 1
            if pos == tau:
                g_r = float(gammas[s])
                msg = disp / g_r
                if Qc is not None:
                    msg = Qc.quantize(msg, comm_rng, vector_axes=(-1,))
                w -= (g_r * msg.mean(axis=1)).astype(dt)
                if plan.pseudo_tail:
                    w[:, -1] = 0.0
                disp[...] = 0.0
                pos = 0
                rnd += 1
        t += nb
    out = acc / float(t1 - t0) if averaging else w.astype(np.float64)
    return excess_risk_of(plan, grp, out, wstar)
