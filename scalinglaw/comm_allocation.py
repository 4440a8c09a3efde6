r"""Optimal workers :math:`K`, model size :math:`M` and message bits :math:`b` under a communication budget
[recon: the closed forms; derived: the budgets].

Model. Plain power-law regression (:math:`\lambda_i=i^{-a}`, :math:`\lambda_i\mathbb Ew_i^{*2}=i^{-b_s}`) with an
infinite true dimension, learned by a model of the first :math:`M` coordinates; :math:`K` workers with batch
:math:`B` each average their gradients every step (constant step :math:`\gamma`, uniform average). The risk is
the ``sgd-quantized`` law of batch :math:`KB` on the :math:`M` coordinates, plus the unlearnable tail
:math:`\sum_{i>M}i^{-b_s}` (``approximation``), plus the price of the quantized messages
(:class:`~scalinglaw.laws.communication.CommunicationLaw`), all with their calibrated constants. Messages have
:math:`b` bits per coordinate:

* ``scheme="int"`` — fixed-range INT on :math:`[-R,R]`: additive, :math:`\epsilon=R^2/(2^b-1)^2` (SPEC §2);
* ``scheme="qsgd"`` — QSGD with :math:`s=(2^b-1)/2` levels per sign (the :math:`2s+1` signed levels fill
  :math:`b` bits): norm-relative with :math:`q=\min(M/s^2,\sqrt M/s)` [paper: Alistarh et al. 2017];

:math:`b\ge32` is full-precision communication. Budgets (communicated bits; :math:`T` server steps):

* ``"step"`` — bits per step :math:`KMb\le W` at a fixed number of steps :math:`T` (wall clock): the data is
  :math:`N=TKB`, so workers buy data and cost bandwidth;
* ``"total"`` — total bits :math:`TKMb\le C_b` with :math:`T` free: :math:`N=C_bB/(Mb)` does not depend on
  :math:`K`; more workers mean fewer, larger steps and a lower communication floor.

An optional compute cap :math:`MN\le C` (multiply-adds of the forward passes) removes the points above it.
The search is a vectorised grid in :math:`(\log K,\log M,b)` refined by Nelder-Mead, then an integer search
[derived]: between integers the law is a sawtooth in :math:`M` (Zou's integer :math:`k^*=\lfloor M\rfloor` once every
coordinate is learned: the fractional coordinate counts as unlearned, so the loss drops at each integer), on which
Nelder-Mead stalls a few units off. From the best integer neighbour of its point, a descent over the integer
neighbours :math:`(K\pm1,M)`, :math:`(K,M\pm1)` at fixed bits, alternated (total budget) with a bounded 1-D
minimisation of the bits at that :math:`(K,M)`, ending on a descent: the result is an integer local optimum of
the budgeted loss. The regime is the dominant term at the optimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize

from . import _checks
from .errors import BoundaryOptimumError

__all__ = ["CommAllocation", "optimize_communication"]

#: Search box: log10 K, log10 M, bits.
LOG10_K = (0.0, 4.0)
LOG10_M = (0.3, 6.0)
BITS = (1.0, 32.0)
#: rounds of (integer descent in K, M; bits at that K, M) and the cap on the descent's unit moves
INTEGER_ROUNDS = 5
DESCENT_MOVES = 1000


@dataclass(frozen=True)
class CommAllocation:
    """The optimal (K, M, b) under a communication budget, with the loss, its terms and the regime."""

    K: int
    M: int
    bits: float
    N: float
    steps: float
    loss: float
    terms: dict[str, float]
    regime: str
    budget: float
    kind: str
    scheme: str
    epsilon: float
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"K": self.K, "M": self.M, "bits": self.bits, "N": self.N, "steps": self.steps, "loss": self.loss,
                "terms": dict(self.terms), "regime": self.regime, "budget": self.budget, "budget_kind": self.kind,
                "scheme": self.scheme, "epsilon": self.epsilon, "notes": list(self.notes)}


class _Model:
    def __init__(self, a: float, b: float, sigma2: float, gamma: float, B: int, scheme: str, range_: float) -> None:
        from .laws.communication import CommunicationLaw
        from .laws.registry import get_law

        self.a, self.b, self.sigma2, self.gamma, self.B = a, b, sigma2, gamma, B
        self.scheme, self.range = scheme, range_
        self.base = get_law("sgd-quantized")
        self.comm = CommunicationLaw()
        self._fb, self._cb = self.base.compile(), self.base._constant_args()
        self._fc, self._cc = self.comm.compile(), self.comm._constant_args()
        self._terms_b = {t: self.base.compile(t) for t in self.base.terms()}
        self._terms_c = {t: self.comm.compile(t) for t in self.comm.terms()}

    def noise(self, M: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(eps_add, q) of the messages at ``bits`` per coordinate (0 at or above 32 bits)."""
        full = bits >= BITS[1]
        with np.errstate(all="ignore"):
            if self.scheme == "int":
                eps = self.range**2 / np.expm1(bits * math.log(2.0)) ** 2
                return np.where(full, 0.0, eps), np.zeros_like(eps)
            s = np.expm1(bits * math.log(2.0)) / 2.0
            q = np.minimum(M / s**2, np.sqrt(M) / s)
            return np.zeros_like(q), np.where(full, 0.0, q)

    def parts(self, K: np.ndarray, M: np.ndarray, N: np.ndarray, bits: np.ndarray, terms: bool = False) -> Any:
        from .dynamics import mean_square_step_limit
        from .laws.communication import step_limit
        from .laws.special import power_head, power_tail

        K, M, N, bits = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (K, M, N, bits)))
        eps, q = self.noise(M, bits)
        KB = K * self.B
        z = np.zeros_like(M)
        base_args = [N, KB, self.gamma + z, self.sigma2 + z, self.a + z, self.b + z, M, z, z, z, z, z]
        comm_args = [self.gamma + z, K, 1.0 + z, self.B + z, self.sigma2 + z, self.a + z, self.b + z, M, eps, z, q]
        with np.errstate(all="ignore"):
            tail = np.asarray(power_tail(self.b, M, math.inf), dtype=np.float64)
            tr = np.asarray(power_head(self.a, M), dtype=np.float64)
            ok = (N / KB >= 1) & (self.gamma < mean_square_step_limit(1.0, tr, KB)) & (self.gamma < 1.0 / (3 * tr / KB))
            ok &= self.gamma < step_limit({"a": self.a, "d": M, "K": K, "B": self.B, "tau": 1.0, "q": q})
            if terms:
                out = {t: np.asarray(f(*base_args, *self._cb)) for t, f in self._terms_b.items()}
                out["approximation"] = out.get("approximation", 0.0) + tail
                out["communication"] = sum(np.asarray(f(*comm_args, *self._cc)) for f in self._terms_c.values())
                return out, ok
            total = np.asarray(self._fb(*base_args, *self._cb)) + tail + np.asarray(self._fc(*comm_args, *self._cc))
        return np.where(ok & np.isfinite(total), total, np.inf)


def _integer_descent(loss: Any, K: int, M: int, bits: float, val: float) -> tuple[float, int, int]:
    """Move to the best of the four integer neighbours (K +- 1, M +- 1) while one has a lower loss: an integer local
    optimum at these bits."""
    moves = ((1, 0), (-1, 0), (0, 1), (0, -1))
    for _ in range(DESCENT_MOVES):
        nb = [(K + dk, M + dm) for dk, dm in moves if K + dk >= 1 and M + dm >= 1]
        vals = loss(np.array([k for k, _ in nb], dtype=np.float64), np.array([m for _, m in nb], dtype=np.float64),
                    np.float64(bits))
        j = int(np.argmin(vals))
        if not vals[j] < val:
            return val, K, M
        val, (K, M) = float(vals[j]), nb[j]
    from .errors import AllocationError

    raise AllocationError(f"the integer search over (K, M) did not settle within {DESCENT_MOVES} unit moves "
                          f"(at K = {K}, M = {M}): the continuous optimum is far from an integer one")


def optimize_communication(
    budget: float, *, kind: str = "step", steps: float | None = None, a: float = 2.0, b: float | None = None,
    sigma2: float = 1.0, gamma: float = 0.05, B: int = 1, scheme: str = "int", range_: float = 4.0,
    compute: float | None = None,
) -> CommAllocation:
    """The optimal workers, model size and message bits under a communication budget (module docstring).

    Parameters
    ----------
    budget : float
        Bits per step :math:`W` (``kind="step"``) or total bits :math:`C_b` (``kind="total"``).
    kind : {"step", "total"}
        Which budget.
    steps : float
        Server steps :math:`T` (required for ``"step"``, must be omitted for ``"total"``).
    a, b, sigma2, gamma, B : float
        Spectrum and source exponents, label noise, constant step, batch per worker.
    scheme : {"int", "qsgd"}
        Message quantizer; ``range_`` is the INT range :math:`R` (gradient units).
    compute : float, optional
        Cap on :math:`MN`.

    Raises
    ------
    BoundaryOptimumError
        When the optimum sits on the search box (no interior optimum; the message names the variable).
    """
    W = _checks.positive("budget", budget)
    _checks.choice("kind", kind, ("step", "total"))
    _checks.choice("scheme", scheme, ("int", "qsgd"))
    a = _checks.greater("a", a, 1.0)
    b_src = a if b is None else _checks.greater("b", b, 1.0)
    model = _Model(a, b_src, _checks.nonnegative("sigma2", sigma2), _checks.positive("gamma", gamma),
                   int(_checks.integer("B", B, minimum=1)), scheme, _checks.positive("range", range_))
    cap = None if compute is None else _checks.positive("compute", compute)
    if kind == "step":
        if steps is None:
            from .errors import ParameterError

            raise ParameterError("steps", None, "be given for a bits-per-step budget (the wall-clock steps T)")
        T = _checks.positive("steps", steps)
    elif steps is not None:
        from .errors import ParameterError

        raise ParameterError("steps", steps, "be omitted for a total-bits budget (T = C_b/(K M b) follows)")

    def sizes(K: np.ndarray, M: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if kind == "step":
            bits = np.minimum(W / (K * M), BITS[1])
            N = T * K * model.B
        else:
            N = W * model.B / (M * bits)
        return bits, N, N / (K * model.B)

    def loss(K: np.ndarray, M: np.ndarray, bits: np.ndarray) -> np.ndarray:
        bits, N, _ = sizes(K, M, bits)
        out = model.parts(K, M, N, bits)
        out = np.where(bits >= BITS[0], out, np.inf)
        if cap is not None:
            out = np.where(M * N <= cap, out, np.inf)
        return out

    lk = np.linspace(*LOG10_K, 41)
    lm = np.linspace(*LOG10_M, 58)
    bs = np.linspace(*BITS, 32) if kind == "total" else np.array([BITS[1]])
    Kg, Mg, Bg = np.meshgrid(10**lk, 10**lm, bs, indexing="ij")
    grid = loss(Kg, Mg, Bg)
    if not np.isfinite(grid).any():
        from .errors import AllocationError

        raise AllocationError("no feasible (K, M, b) under this budget: every point is unstable at this gamma, "
                              "below 1 bit per coordinate, or above the compute cap")
    i = np.unravel_index(int(np.argmin(grid)), grid.shape)
    x0 = np.array([lk[i[0]], lm[i[1]], bs[i[2]]])

    def f(x: np.ndarray) -> float:
        if not (LOG10_K[0] <= x[0] <= LOG10_K[1] and LOG10_M[0] <= x[1] <= LOG10_M[1] and BITS[0] <= x[2] <= BITS[1]):
            return math.inf
        return float(loss(10 ** x[0], 10 ** x[1], x[2]))

    res = optimize.minimize(f, x0, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-12, "maxiter": 2000})
    x = res.x if res.fun <= grid[i] else x0
    # integers: from the best of the neighbouring (K, M), a descent over integer neighbours (Nelder-Mead's
    # continuous point can be a few units of M off the best integer at its bits), then for a total budget the
    # bits again at that (K, M), until the integers settle
    Kc, Mc = 10 ** x[0], 10 ** x[1]
    cands = [(k, m) for k in {max(1, math.floor(Kc)), max(1, math.ceil(Kc))}
             for m in {max(1, math.floor(Mc)), max(1, math.ceil(Mc))}]
    vals = [float(loss(k, m, x[2])) for k, m in cands]
    j = int(np.argmin(vals))
    val, (Ki, Mi), bits_x = vals[j], cands[j], float(x[2])
    if not math.isfinite(val):
        val, Ki, Mi = float(grid[i]), round(10 ** lk[i[0]]), round(10 ** lm[i[1]])
        bits_x = float(bs[i[2]])
    for rnd in range(INTEGER_ROUNDS):
        val, Ki, Mi = _integer_descent(loss, Ki, Mi, bits_x, val)
        if kind != "total" or rnd == INTEGER_ROUNDS - 1:
            break  # ends on a descent: (K, M) is an integer local optimum at the returned bits
        lo_b, hi_b = max(BITS[0], bits_x - 1.0), min(BITS[1], bits_x + 1.0)  # one grid step of bits either side
        r = optimize.minimize_scalar(lambda v, k=Ki, m=Mi: float(loss(k, m, v)), bounds=(lo_b, hi_b),
                                     method="bounded", options={"xatol": 1e-8})
        if not r.fun < val:
            break
        val, bits_x = float(r.fun), float(r.x)
    x = np.array([x[0], x[1], bits_x])
    for name, v, (lo, hi) in (("K", math.log10(Ki), LOG10_K), ("M", math.log10(Mi), LOG10_M)):
        if name == "K" and Ki == 1:
            continue  # one worker is a legitimate optimum
        if v <= lo + 1e-9 or v >= hi - 0.05:
            raise BoundaryOptimumError(name, 10**v, "upper bound" if v >= hi - 0.05 else "lower bound")
    bits, N, T_out = sizes(np.float64(Ki), np.float64(Mi), np.float64(x[2]))
    parts, _ = model.parts(Ki, Mi, N, bits, terms=True)
    terms = {k: float(np.asarray(v)) for k, v in parts.items()}
    eps, q = model.noise(np.float64(Mi), np.float64(bits))
    regime = max(terms, key=lambda t: terms[t])
    what = "fixed-range INT, eps = R^2/(2^b-1)^2" if scheme == "int" else "QSGD, q = min(M/s^2, sqrt(M)/s)"
    notes = [f"messages: {what} [closed forms: sgd-quantized (batch K B) + approximation tail + communication "
             "law, calibrated]"]
    if float(bits) >= BITS[1]:
        notes.append("the budget allows full-precision (32-bit) messages at the optimum")
    return CommAllocation(K=int(Ki), M=int(Mi), bits=float(bits), N=float(N), steps=float(T_out), loss=float(val),
                          terms=terms, regime=regime, budget=W, kind=kind, scheme=scheme,
                          epsilon=float(eps if scheme == "int" else q), notes=tuple(notes))
