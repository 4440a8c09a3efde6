r"""Set-up of a Monte Carlo run: everything that is fixed before the first replica is drawn.

A :class:`SimPlan` holds the problem, the per-step step sizes, the averaging window, the block size and one
:class:`GroupPlan` per sketch draw (one group for plain regression): the feature maps of the sketch and the
quadratic form that turns an output iterate into its excess risk. Nothing here uses the moment formulas of
:mod:`scalinglaw.dynamics`; only the stability check (:func:`check_stable`) goes through it, so that an
unstable step size is refused with the same message as the exact engine. On quantized test inputs the risk of an
iterate needs :math:`\mathrm{diag}\,\mathbb E[Q_d(x)^2]` and :math:`\mathbb E[Q_d(x)x]`: exact for the idealised
schemes and for fixed-grid formats (:func:`~scalinglaw.quantize.moments.grid_moments`, itself tested against
Monte Carlo of ``quantize``), estimated from seeded samples otherwise (absmax scaling).

Risk of an iterate [derived]. With test input :math:`x\sim\mathcal N(0,H)` and label
:math:`y=\langle x,w^*\rangle+\xi`:

* clean test inputs: :math:`\mathcal E(w)=\|w-w^*\|_H^2`;
* quantized test inputs: :math:`\mathbb E(\langle w,Q_d(x)\rangle-y)^2-\sigma^2
  =w^\top H^{(q)}w-2w^\top C w^*+w^{*\top}Hw^*` with :math:`H^{(q)}=\mathbb E[Q_d(x)Q_d(x)^\top]` and
  :math:`C=\mathbb E[Q_d(x)x^\top]` (:math:`=H` for an unbiased quantizer).

In the sketched model :math:`w=S^\top Vv` and the features are :math:`z=V^\top Sx` (eigenbasis of
:math:`H_S=SHS^\top`), so :math:`\mathcal E=\|H^{1/2}(w^*-S^\top Vv)\|^2` on clean inputs and
:math:`v^\top H^{(q)}_Vv-2v^\top V^\top SHw^*+\|w^*\|_H^2` on quantized ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..dynamics import check_stability, max_stable_step, moment_coefficients
from ..problem import Problem
from ..quantize import Additive, Multiplicative, MultiplicativeCoord, Quantizer
from ..quantize.moments import fixed_grid, grid_moments
from ..reduction import draw_sketch, engine_quantizers, exact_data_format, reduce_problem

__all__ = ["HQ_SAMPLES", "GroupPlan", "SimPlan", "build_plan", "check_stable", "default_block_steps"]

#: Number of seeded samples used to estimate :math:`\mathrm{diag}\,\mathbb E[Q_d(x)^2]` for real formats.
HQ_SAMPLES = 16384
#: Second entropy word of the seed of that estimate (``SeedSequence([seed, HQ_STREAM])``).
HQ_STREAM = 0x4851
#: Above this fraction of the largest stable step, the result carries a heavy-tail warning note.
HEAVY_TAIL_RATIO = 0.8
#: Target size of one block of drawn inputs, in bytes.
BLOCK_BYTES = 8 * 2**20


@dataclass(frozen=True)
class GroupPlan:
    """The replicas that share one sketch draw (or all replicas of a plain problem).

    Attributes
    ----------
    draw : int
        Sketch draw index (0 for plain regression).
    reps : int
        Number of replicas in the group.
    proj : ndarray or None
        ``(n, M)`` map from proxy features to the quantized coordinates: :math:`S^\\top V` (eigen basis) or
        :math:`S^\\top` (raw basis). ``None`` for plain regression.
    rot : ndarray or None
        ``(M, M)`` rotation :math:`V` applied after raw-basis quantization; ``None`` otherwise.
    risk_map : ndarray or None
        ``(n, M)`` map :math:`S^\\top V` from the learner's ``v`` to the parameter :math:`w` (sketch only).
    hq : ndarray or None
        Quantized-test second moment :math:`H^{(q)}`: a vector (its diagonal, plain) or an ``(M, M)``
        matrix (sketch). ``None`` on clean test inputs.
    cratio : ndarray or None
        Per coordinate :math:`\\mathbb E[Q(u)u]/\\mathbb E[u^2]` of the data quantizer (1 when unbiased);
        ``None`` on clean test inputs.
    """

    draw: int
    reps: int
    proj: np.ndarray | None = field(default=None, repr=False)
    rot: np.ndarray | None = field(default=None, repr=False)
    risk_map: np.ndarray | None = field(default=None, repr=False)
    hq: np.ndarray | None = field(default=None, repr=False)
    cratio: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SimPlan:
    """Everything a chunk task needs (picklable; shipped to the workers).

    Attributes
    ----------
    problem : Problem
        The configuration.
    n : int
        Proxy dimension (``d`` when finite).
    lam : ndarray
        :math:`\\lambda_{1..n}`.
    sqrt_scale : ndarray
        Standard deviations of the drawn feature coordinates: :math:`\\sqrt{\\lambda_{1..n}}`, plus
        :math:`\\sqrt{\\sum_{i>n}\\lambda_i}` for the tail pseudo-coordinate when present.
    tail : float
        Unlearned tail signal :math:`\\sum_{i>n}\\lambda_i\\mathbb E w_i^{*2}` (0 for finite ``d``).
    noise_sd : float
        Standard deviation of the label noise added to :math:`\\langle x_{1..n},w^*_{1..n}\\rangle`:
        :math:`\\sqrt{\\sigma^2+\\text{tail}}`.
    gammas : ndarray
        Step size of each of the :math:`T` steps (from ``problem.phases()``).
    window : tuple of int
        Iterates ``[t0, t1)`` averaged (``(T, T + 1)`` for the last iterate).
    block_steps : int
        Steps whose inputs are drawn in one block.
    dtype : numpy dtype
        Arithmetic precision of the draws and the iterate.
    pseudo_tail : bool
        Whether a frozen tail pseudo-coordinate carries the parameter-quantization noise of the unmodelled
        tail (d = inf with a parameter quantizer that moves zero, e.g. additive noise).
    groups : tuple of GroupPlan
        One per sketch draw.
    notes : tuple of str
        Statements about conventions and approximations (copied to the result).
    """

    problem: Problem
    n: int
    lam: np.ndarray = field(repr=False)
    sqrt_scale: np.ndarray = field(repr=False)
    tail: float
    noise_sd: float
    gammas: np.ndarray = field(repr=False)
    window: tuple[int, int]
    block_steps: int
    dtype: np.dtype
    pseudo_tail: bool
    groups: tuple[GroupPlan, ...]
    notes: tuple[str, ...] = ()

    @property
    def n_draw(self) -> int:
        """Number of drawn feature coordinates per sample (``n`` plus the pseudo-coordinate if any)."""
        return self.n + int(self.pseudo_tail)

    @property
    def learner_dim(self) -> int:
        """Dimension of the SGD iterate: ``M`` for a sketch, else :attr:`n_draw`."""
        M = self.problem.M
        return int(M) if M is not None else self.n_draw


# ------------------------------------------------------------------------------------------------ stability
def _stability_surrogate(q: Quantizer | None) -> Quantizer | None:
    """The idealised scheme used for the stability check; formats without one count as full precision."""
    if q is None or q.idealized:
        return q
    return q.idealized_scheme()


#: Feature vectors drawn (fixed seed) to measure the error of a data format that has no idealised scheme.
_SURROGATE_DRAWS = 512


def _measured_data_surrogate(q: Quantizer, mu: np.ndarray) -> Quantizer:
    """Additive surrogate for a data format without an idealised scheme (INT with absmax scaling), measured on
    ``_SURROGATE_DRAWS`` feature vectors of the diagonal problem (fixed seed). The error is signal-independent
    within a vector (additive), but its scale follows the vector's absmax. [derived, approximate: conservative
    in the one case measured, int2 at d = 20, where it states 0.17 and the Monte Carlo stays finite at 0.2]"""
    rng = np.random.default_rng(20240917)
    z = rng.standard_normal((_SURROGATE_DRAWS, mu.size)) * np.sqrt(mu)
    e2 = (q.quantize(z, rng, vector_axes=(-1,)) - z) ** 2
    # the absmax scale ties the error to the vector's size: weigh it by each coordinate's energy,
    # eps = max_ij E[e_i^2 z_j^2] / E[z_j^2], which the recursion's E[e_i^2] E[z_j^2] would understate
    coupled = (e2.T @ (z * z)) / _SURROGATE_DRAWS / np.maximum(np.mean(z * z, axis=0), np.finfo(float).tiny)
    return Additive(float(max(np.max(np.mean(e2, axis=0)), np.max(coupled))))


def check_stable(problem: Problem) -> float:
    """Refuse an unstable step size (:class:`~scalinglaw.errors.UnstableStepError`, stating the largest).

    The check runs :func:`scalinglaw.dynamics.check_stability` on each diagonal reduction of ``problem``, with
    the quantizers as the exact engine takes them: a data format with a fixed grid (INT with ``range=R``, FP
    without absmax scaling) through its exact per-coordinate moments, other real formats through
    ``q.idealized_scheme()``. A data format without one (INT with absmax scaling) enters as additive noise of its
    measured per-coordinate error (:func:`_measured_data_surrogate`); such formats on the other targets count as
    full precision for this check only. Raw-basis data noise is checked as if in the eigenbasis. Distributed runs
    check the round map (:class:`~scalinglaw.communication.RoundMap`), with QSGD and absmax INT messages through
    their norm-relative variance bounds.

    Returns
    -------
    float
        The largest stable step size (the smallest over the sketch draws).
    """
    quants = {k: _stability_surrogate(q) for k, q in engine_quantizers(problem).items()}
    if exact_data_format(problem) is not None:
        quants["data"] = problem.quantizers["data"]  # exact moments (scalinglaw.dynamics.data_moments)
    gmax = math.inf
    data = problem.quantizers.get("data")
    for dp in reduce_problem(problem):
        if data is not None and quants.get("data") is None:
            # the absmax scale is measured on the simulated coordinates themselves
            coords = dp.mu if problem.M is not None else problem.spectrum.head(problem.proxy_dimension())
            quants = {**quants, "data": _measured_data_surrogate(data, coords)}
        mc = moment_coefficients(dp, quants, problem.B)
        if problem.distributed:
            from ..communication import RoundMap, stability_comm_scheme

            rmap = RoundMap(mc, problem.K, problem.period, *stability_comm_scheme(problem.comm, float(dp.weight.sum())))
            rmap.check_stability(problem.gamma)
            gmax = min(gmax, rmap.max_stable_step(rtol=1e-3))
            continue
        check_stability(mc, problem.gamma)
        gmax = min(gmax, max_stable_step(mc))
    return gmax


# --------------------------------------------------------------------------------------- quantized test form
def _moves_zero(q: Quantizer | None) -> bool:
    """Whether ``q`` turns an exact zero coordinate into noise (next to a nonzero one), e.g. additive/INT."""
    if q is None:
        return False
    u = np.zeros((64, 8))
    u[:, 0] = 1.0
    out = q.quantize(u, np.random.default_rng(0), vector_axes=(-1,))
    return bool(np.any(out[:, 1:] != 0.0))


def _error_moments(
    q: Quantizer, sample: object, dim: int, rng: np.random.Generator, n_samples: int = HQ_SAMPLES
) -> tuple[np.ndarray, np.ndarray]:
    r"""Estimate :math:`\mathbb E[e_i^2]` and :math:`\mathbb E[e_iu_i]` of :math:`e=Q(u)-u` per coordinate.

    ``sample(rng, k)`` returns ``k`` rows of ``u`` (shape ``(k, dim)``); the vector is the row.
    """
    batch = max(1, min(n_samples, (2**22) // max(dim, 1)))
    e2 = np.zeros(dim)
    eu = np.zeros(dim)
    done = 0
    while done < n_samples:
        k = min(batch, n_samples - done)
        u = sample(rng, k)  # type: ignore[operator]
        e = q.quantize(u, rng, vector_axes=(-1,)) - u
        e2 += (e * e).sum(axis=0)
        eu += (e * u).sum(axis=0)
        done += k
    return e2 / n_samples, eu / n_samples


def _plain_test_form(
    problem: Problem, lam: np.ndarray, rng: np.random.Generator, notes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal :math:`H^{(q)}` and the cross ratio for plain regression on quantized test inputs."""
    q = problem.quantizers["data"]
    ones = np.ones_like(lam)
    if q is None:
        return lam.copy(), ones
    if isinstance(q, Additive):
        return lam + q.eps, ones
    if isinstance(q, Multiplicative | MultiplicativeCoord):
        return (1.0 + q.eps) * lam, ones
    if fixed_grid(q) is not None:
        gm = grid_moments(q, lam)
        notes.append(f"quantized test inputs with data={q.spec}: diag E[Q_d(x)^2] and E[Q_d(x) x] exact (fixed grid; "
                     "off-diagonal terms vanish: independent symmetric coordinates)")
        return gm.second, gm.cross / lam
    sd = np.sqrt(lam)
    e2, eu = _error_moments(q, lambda r, k: r.standard_normal((k, lam.size)) * sd, lam.size, rng)
    notes.append(
        f"quantized test inputs with data={q.spec}: diag E[Q_d(x)^2] estimated from {HQ_SAMPLES} seeded "
        "samples (off-diagonal terms vanish: independent symmetric coordinates)"
    )
    return lam + 2.0 * eu + e2, 1.0 + eu / lam


def _sketch_test_form(
    problem: Problem, mu: np.ndarray, S: np.ndarray, V: np.ndarray, lam: np.ndarray,
    rng: np.random.Generator, notes: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """:math:`H^{(q)}` in the eigenbasis (``(M, M)``) and the cross ratio for a sketch on quantized inputs."""
    q = problem.quantizers["data"]
    M = mu.size
    ones = np.ones(M)
    if q is None:
        return np.diag(mu), ones
    raw = problem.sketch_basis == "raw"
    if isinstance(q, Additive):
        return np.diag(mu) + q.eps * np.eye(M), ones
    if isinstance(q, Multiplicative):
        return (1.0 + q.eps) * np.diag(mu), ones
    if isinstance(q, MultiplicativeCoord):
        if not raw:
            return (1.0 + q.eps) * np.diag(mu), ones
        diag_hs = (S * S) @ lam
        return np.diag(mu) + q.eps * (V.T * diag_hs) @ V, ones
    if not raw and fixed_grid(q) is not None:
        gm = grid_moments(q, mu)
        notes.append(f"quantized test inputs with data={q.spec}: diag E[Q_d(z)^2] and E[Q_d(z) z] in the sketch "
                     "eigenbasis exact (fixed grid)")
        return np.diag(gm.second), gm.cross / mu
    if not raw:
        sd = np.sqrt(mu)
        e2, eu = _error_moments(q, lambda r, k: r.standard_normal((k, M)) * sd, M, rng)
        notes.append(
            f"quantized test inputs with data={q.spec}: diag E[Q_d(z)^2] in the sketch eigenbasis estimated "
            f"from {HQ_SAMPLES} seeded samples"
        )
        return np.diag(mu + 2.0 * eu + e2), 1.0 + eu / mu
    sd = np.sqrt(lam)
    e2, eu = _error_moments(q, lambda r, k: (r.standard_normal((k, lam.size)) * sd) @ S.T, M, rng)
    notes.append(
        f"quantized test inputs with data={q.spec} on raw sketched coordinates: E[Q(Sx)Q(Sx)^T] taken as "
        f"S H S^T + diag(E[e^2] + 2 E[e Sx]) with the diagonal estimated from {HQ_SAMPLES} seeded samples "
        "(exact for stochastic rounding: conditionally independent unbiased errors)"
    )
    return np.diag(mu) + (V.T * (e2 + 2.0 * eu)) @ V, ones


# ------------------------------------------------------------------------------------------------- the plan
def default_block_steps(problem: Problem, n_draw: int, chunk_reps: int, itemsize: int) -> int:
    """Steps per block so that one block of drawn inputs is about :data:`BLOCK_BYTES` (at least 1)."""
    per_step = chunk_reps * problem.B * problem.K * (n_draw + (problem.M or 0)) * itemsize
    return int(max(1, min(problem.steps, BLOCK_BYTES // max(per_step, 1))))


def group_sizes(reps: int, draws: int) -> list[int]:
    """Split ``reps`` replicas evenly over ``draws`` sketches (sizes differ by at most one)."""
    base, extra = divmod(reps, draws)
    return [base + (1 if k < extra else 0) for k in range(draws)]


def _window(T: int, average: str) -> tuple[int, int]:
    if average == "uniform":
        return 0, T
    if average == "tail":
        return T // 2, T
    return T, T + 1


def build_plan(
    problem: Problem, reps: int, seed_entropy: object, *, chunk_reps: int, block_steps: int | None,
    dtype: np.dtype, max_stable: float | None = None,
) -> SimPlan:
    """Build the :class:`SimPlan` of ``problem`` for ``reps`` replicas (see the module docstring).

    ``max_stable`` (from :func:`check_stable`) adds a warning note when the step is close to it: the risks
    are then heavy-tailed and the standard error is unreliable.
    """
    spec, target = problem.spectrum, problem.target
    n = problem.proxy_dimension()
    lam = spec.head(n).astype(np.float64)
    notes: list[str] = []
    if max_stable is not None and problem.gamma > HEAVY_TAIL_RATIO * max_stable:
        notes.append(
            f"gamma = {problem.gamma / max_stable:.2f} x the largest stable step {max_stable:.4g}: the "
            "replica risks are heavy-tailed there, so the mean converges slowly and the SEM is unreliable"
        )
    tail = float(target.tail_mass(spec, n)) if spec.is_infinite else 0.0
    pseudo = bool(problem.M is None and spec.is_infinite and _moves_zero(problem.quantizers["params"]))
    scale = np.sqrt(lam)
    if spec.is_infinite:
        notes.append(
            f"d=inf: {n} explicit coordinates; the tail signal {tail:.6g} enters as extra Gaussian label "
            "noise and is added to the excess risk (unlearned tail, as in the exact engine)"
        )
    if pseudo:
        tail_trace = float(spec.tail_sum(n))
        scale = np.append(scale, math.sqrt(tail_trace))
        notes.append(
            "d=inf with a parameter quantizer that moves zero: one frozen pseudo-coordinate of variance "
            f"sum_{{i>n}} lambda_i = {tail_trace:.6g} carries the tail's parameter-quantization noise"
        )
    T = problem.steps
    gammas = np.concatenate([np.full(k, g, dtype=np.float64) for g, k in problem.phases()])
    n_draw = n + int(pseudo)
    if block_steps is None:
        block_steps = default_block_steps(problem, n_draw, chunk_reps, np.dtype(dtype).itemsize)
    block_steps = int(min(block_steps, T))
    hq_rng = np.random.default_rng(np.random.SeedSequence([*_entropy_words(seed_entropy), HQ_STREAM]))
    groups: list[GroupPlan] = []
    quantized_test = problem.test_inputs == "quantized"
    if problem.M is None:
        hq = cr = None
        if quantized_test:
            hq, cr = _plain_test_form(problem, lam, hq_rng, notes)
        groups.append(GroupPlan(draw=0, reps=reps, hq=hq, cratio=cr))
    else:
        sizes = group_sizes(reps, problem.sketch_draws)
        basis = problem.sketch_basis
        notes.append(
            f"sketch M={problem.M}: {problem.sketch_draws} draw(s) from seed {problem.sketch_seed}, replicas "
            f"split {sizes}; data quantized in the {basis} basis, the learner's v and its parameter "
            "quantization in the eigenbasis of S H S^T; mean = equal-weight average over the draws"
        )
        for k, size in enumerate(sizes):
            sk = draw_sketch(problem, k)
            P = sk.S.T @ sk.V
            hq = cr = None
            if quantized_test:
                hq, cr = _sketch_test_form(problem, sk.mu, sk.S, sk.V, lam, hq_rng, notes)
            if basis == "raw":
                groups.append(GroupPlan(k, size, proj=np.ascontiguousarray(sk.S.T), rot=sk.V, risk_map=P,
                                        hq=hq, cratio=cr))
            else:
                groups.append(GroupPlan(k, size, proj=np.ascontiguousarray(P), risk_map=P, hq=hq, cratio=cr))
    if np.dtype(dtype) == np.float32:
        notes.append("dtype=float32: draws and SGD arithmetic in single precision; risks computed in float64")
    return SimPlan(
        problem=problem, n=n, lam=lam, sqrt_scale=scale, tail=tail,
        noise_sd=math.sqrt(problem.sigma2 + tail), gammas=gammas, window=_window(T // problem.period, problem.average),
        block_steps=block_steps, dtype=np.dtype(dtype), pseudo_tail=pseudo, groups=tuple(groups),
        notes=tuple(dict.fromkeys(notes)),
    )


def _entropy_words(seed: object) -> list[int]:
    """Integer words identifying a seed (an int, or a SeedSequence's entropy and spawn key)."""
    if isinstance(seed, np.random.SeedSequence):
        ent = seed.entropy
        words = list(ent) if isinstance(ent, list | tuple) else [int(ent)]  # type: ignore[arg-type]
        return [*words, *seed.spawn_key]
    return [int(seed)]  # type: ignore[call-overload]
