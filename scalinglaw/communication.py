r"""The second-moment map of data-parallel SGD with quantized communication [derived].

:math:`K` workers share the server's iterate :math:`w`. Each runs ``period`` :math:`=\tau` local steps of the
quantized SGD of SPEC §3 with its own batch of :math:`B` fresh samples per step and its own draws of every
quantizer (parameters included), reaching :math:`w_k`; it sends the message :math:`v_k=(w-w_k)/\gamma_r`
(:math:`\gamma_r` the step size of the round's last local step; for :math:`\tau=1` this is its gradient
:math:`g_k`), quantized as :math:`Q(v_k)=v_k+\xi_k` with independent draws; the server sets
:math:`w\leftarrow w-\gamma_r\frac1K\sum_kQ(v_k)` and every worker restarts from it. Derivation and checks:
``theory/distributed.md``.

Centred at :math:`w_q`, with per-coordinate states (:math:`u_k=w_k-w_q`, :math:`u=w-w_q` at the round's start)

* :math:`a_i=\mathbb Eu_{k,i}^2` (same worker): the single-worker map of batch :math:`B`
  (:class:`~scalinglaw.dynamics.StepMap`);
* :math:`b_i=\mathbb E[u_{1,i}u_{2,i}]` (two workers): :math:`b'=(1-\gamma\tilde\mu)^2b`, because two workers' gradients
  are conditionally independent given their iterates, with means :math:`\tilde\mu\odot u_k`;
* :math:`c_i=\mathbb E[u_{k,i}u_i]` (worker against the round's start): :math:`c'=(1-\gamma\tilde\mu)c`;
* the mean :math:`\tilde m_i=\mathbb E[u_iv^*_i]`, the same for every worker:
  :math:`\tilde m'=(1-\gamma\tilde\mu)\tilde m`;

all starting the round at :math:`a=b=c=x`, :math:`x_i=\mathbb Eu_i^2`. At the round's end

.. math::

    x'=\frac1Ka+\Big(1-\frac1K\Big)b+\frac{\gamma_r^2}{K}\,\mathbb E\xi_{k}^2,\qquad
    \gamma_r^2\mathbb E\xi_{k,i}^2=\begin{cases}\gamma_r^2\epsilon&\text{additive}\\
    \epsilon\,(a-2c+x)_i&\text{multiplicative (shared or coordinate-wise)}\\
    \frac qm\sum_jn_j(a-2c+x)_j&\text{norm-relative (isotropic)}\end{cases}

since :math:`\gamma_r^2\mathbb Ev_{k,i}^2=\mathbb E(u_{k,i}-u_i)^2=a_i-2c_i+x_i`; :math:`m=\sum_jn_j` is the message
length. For :math:`\tau=1` and additive or multiplicative :math:`Q` this is one step of the diagonal-plus-rank-one
map of :func:`server_coefficients`, so the closed form per phase (cost independent of :math:`N`) applies; the
other cases are stepped (:mod:`scalinglaw.exact.rounds`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .dynamics import MomentCoefficients, StepMap, _is_stable, max_stable_step
from .errors import UnstableStepError, UnsupportedConfigurationError
from .quantize import Quantizer
from .quantize.comm import QSGD, NormRelative

__all__ = [
    "RoundMap",
    "comm_scheme",
    "needs_rounds",
    "server_coefficients",
    "stability_comm_scheme",
]

#: Communication noise kinds the moment map knows.
COMM_KINDS = (None, "additive", "multiplicative", "norm-relative")
#: Largest node count for the dense round matrix of the stability test.
DENSE_LIMIT = 3000
#: Spectral radius tolerance of the dense test (rounding of modes at 1 - O(eps)).
ROUND_TOL = 1e-9


def comm_scheme(q: Quantizer | None) -> tuple[str | None, float]:
    """The ``(kind, epsilon)`` of a communication quantizer for the moment map (``kind`` in :data:`COMM_KINDS`).

    Real formats enter through their idealised surrogate (fixed-range INT: additive; FP: coordinate-wise
    multiplicative, whose diagonal injection equals the shared scheme's). QSGD and absmax-scaled INT are
    refused: their error variance is not a polynomial in the message.
    """
    if q is None:
        return None, 0.0
    if isinstance(q, NormRelative):
        return ("norm-relative", q.q) if q.q > 0 else (None, 0.0)
    if isinstance(q, QSGD):
        raise UnsupportedConfigurationError(
            f"comm={q.spec} is coordinate-wise (not rotation-invariant): its error variance |v|^2 f(1-f)/s^2 "
            "breaks the moment closure, so the exact engine does not treat it; use simulate, or the isotropic "
            f"norm-relative scheme comm=norm:q with q = min(m/s^2, sqrt(m)/s) (its variance bound)")
    ideal = q.idealized_scheme()
    if ideal is None:
        raise UnsupportedConfigurationError(
            f"comm={q.spec}: absmax scaling ties the error to the message's largest coordinate, so the exact "
            "engine has no idealised equivalent; give a fixed range (e.g. int8:range=4), norm:Q, or use simulate")
    if ideal.epsilon == 0:
        return None, 0.0
    return ("additive" if ideal.kind == "additive" else "multiplicative"), float(ideal.epsilon)


def stability_comm_scheme(q: Quantizer | None, m: float) -> tuple[str | None, float]:
    r""":func:`comm_scheme` for the simulator's stability check: QSGD and absmax INT messages enter as
    norm-relative noise of their variance bounds, :math:`q=\min(m/s^2,\sqrt m/s)` [paper: Alistarh et al.] and
    :math:`q=m/(2^b-1)^2` (error :math:`\le\Delta^2/4` per coordinate, :math:`\Delta=2\max_i|v_i|/(2^b-1)`)
    [derived]."""
    if isinstance(q, QSGD):
        return "norm-relative", q.variance_bound(m)
    if q is not None and not isinstance(q, NormRelative) and q.idealized_scheme() is None:
        return "norm-relative", m / (2.0 ** q.bits - 1.0) ** 2  # type: ignore[attr-defined]
    return comm_scheme(q)


def needs_rounds(K: int, period: int, kind: str | None) -> bool:
    """Whether the round map must be stepped (local steps, or norm-relative communication)."""
    return period > 1 or kind == "norm-relative"


def server_coefficients(mc: MomentCoefficients, K: int, kind: str | None, eps: float) -> MomentCoefficients:
    r""":math:`\mathbb E[\bar g_i^2\mid w]` of the server's update for :math:`\tau=1` [derived].

    With :math:`\bar g=\frac1K\sum_k(g_k+\xi_k)`, conditionally independent workers and
    :math:`\mathbb E[g_k\mid w]=\tilde\mu\odot w-\mu\odot v^*`,

    .. math::

        \mathbb E\bar g_i^2=\frac{1+\epsilon_\times}{K}\mathbb Eg_{k,i}^2
        +\Big(1-\frac1K\Big)\big(\tilde\mu_i^2q_i-2\tilde\mu_i\mu_i\rho_i+\mu_i^2s_i\big)+\frac{\epsilon_+}{K},

    where :math:`\mathbb Eg_{k,i}^2` is ``mc`` (one worker, batch :math:`B`), :math:`\epsilon_\times` the
    multiplicative and :math:`\epsilon_+` the additive communication noise. The result has the structure of
    :class:`~scalinglaw.dynamics.MomentCoefficients` (diagonal plus rank one along :math:`\tilde\mu`); without
    communication noise it is the map of batch :math:`KB`.
    """
    if kind not in (None, "additive", "multiplicative"):
        raise ValueError(f"server_coefficients: {kind} communication needs the round map")
    if K == 1 and kind is None:
        return mc
    e_mul = eps if kind == "multiplicative" else 0.0
    e_add = eps if kind == "additive" else 0.0
    f = (1.0 + e_mul) / K
    x = 1.0 - 1.0 / K
    mu, mut, s = mc.mu, mc.mut, mc.target_sq
    residual = mc.residual_var if kind is None else None
    return replace(
        mc,
        A_d=f * mc.A_d + x * mut * mut,
        theta=f * mc.theta,
        G_d=f * mc.G_d - 2.0 * x * mut * mu,
        g=f * mc.g,
        c=f * mc.c + x * mu * mu * s + e_add / K,
        residual_var=residual,
        batch=mc.batch * K,
    )


@dataclass(frozen=True)
class RoundMap:
    r"""The exact map of one communication round (``period`` local steps, then quantized averaging).

    ``worker`` are the moment coefficients of one worker (batch :math:`B`); ``kind``/``eps`` the communication
    noise (:func:`comm_scheme`). States are in the symmetrised frame of :class:`~scalinglaw.dynamics.StepMap`
    (:math:`\sqrt n\odot` moments). See the module docstring for the equations.
    """

    worker: MomentCoefficients
    K: int
    period: int
    kind: str | None
    eps: float

    @property
    def sqrt_n(self) -> np.ndarray:
        return np.sqrt(self.worker.weight)

    @property
    def message_size(self) -> float:
        """The message length :math:`m=\\sum_jn_j` (the number of coordinates)."""
        return float(np.sum(self.worker.weight))

    def average(self, a: np.ndarray, b: np.ndarray, c: np.ndarray, x: np.ndarray, forcing: Any,
                gamma_r: float) -> np.ndarray:
        """The server's second moment after averaging (leading axes broadcast; ``forcing`` per leading index)."""
        K = self.K
        out = a / K + (1.0 - 1.0 / K) * b
        if self.kind is None:
            return out
        sq = self.sqrt_n
        if self.kind == "additive":
            f = np.asarray(forcing, dtype=np.float64)[..., None] if np.ndim(forcing) else forcing
            return out + (f * gamma_r * gamma_r * self.eps / K) * sq
        delta = a - 2.0 * c + x  # gamma_r^2 E v_k^2, symmetrised
        if self.kind == "multiplicative":
            return out + (self.eps / K) * delta
        total = delta @ sq  # sum_j n_j (gamma_r^2 E v_j^2)
        return out + (self.eps / (K * self.message_size)) * total[..., None] * sq

    def apply_round(self, step: StepMap, m: np.ndarray, x: np.ndarray, forcing: Any, steps: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """One round at a constant step (``steps`` local steps, default ``period``): ``(m, x) -> (m', x')``."""
        a, b, c = x, x, x
        D = step.D
        for _ in range(self.period if steps is None else steps):
            m, a = step.apply(m, a, forcing)
            b = D * D * b
            c = D * c
            # m first: apply() used the pre-step m, as the recursion does
        return m, self.average(a, b, c, x, forcing, step.gamma)

    def round_matrix(self, gamma: float) -> np.ndarray:
        """The linear part of the round map on ``x`` at step ``gamma`` as a dense matrix (rows: images)."""
        n = self.worker.mu.size
        if n > DENSE_LIMIT:
            raise UnsupportedConfigurationError(
                f"the stability test of local SGD builds a dense {n} x {n} round matrix (limit {DENSE_LIMIT} nodes); "
                "use a smaller d or a sketch")
        step = StepMap.build(self.worker, gamma)
        eye = np.eye(n)
        _, F = self.apply_round(step, np.zeros((n, n)), eye, np.zeros(n))
        return F

    def is_stable(self, gamma: float) -> bool:
        """Spectral radius of the round map below one (and :math:`|1-\\gamma\\tilde\\mu|<1`)."""
        rate = gamma * self.worker.mut
        if not (math.isfinite(gamma) and np.all((rate > 0.0) & (rate < 2.0))):
            return False
        if not self._fast_path_applies():
            F = self.round_matrix(gamma)
            if not np.all(np.isfinite(F)):
                return False
            # modes with a negligible rate (a frozen remainder) sit at 1 - O(1e-16): rounding can put them a hair
            # above 1; a growth below ROUND_TOL per round is harmless over any run the engine accepts
            if self.kind == "norm-relative":  # its rank-one term along sqrt(n) makes F non-symmetric
                return bool(np.max(np.abs(np.linalg.eigvals(F))) < 1.0 + ROUND_TOL)
            # symmetric in the sqrt(n) frame: -(1 + tol) I < F < (1 + tol) I, two Cholesky factorisations
            S = 0.5 * (F + F.T)
            eye = (1.0 + ROUND_TOL) * np.eye(S.shape[0])
            try:
                np.linalg.cholesky(eye - S)
                np.linalg.cholesky(eye + S)
            except np.linalg.LinAlgError:
                return False
            return True
        return _is_stable(server_coefficients(self.worker, self.K, self.kind, self.eps), gamma)

    def _fast_path_applies(self) -> bool:
        return not needs_rounds(self.K, self.period, self.kind)

    def max_stable_step(self, rtol: float = 1e-3) -> float:
        """Supremum of the stable step sizes, by bisection (``rtol`` relative for the stepped round map)."""
        if self._fast_path_applies():
            return max_stable_step(server_coefficients(self.worker, self.K, self.kind, self.eps))
        hi = 2.0 / float(np.max(self.worker.mut))
        lo = 0.0
        if self.is_stable(hi * (1 - 1e-12)):
            return hi
        while hi - lo > rtol * hi:
            mid = 0.5 * (lo + hi)
            if self.is_stable(mid):
                lo = mid
            else:
                hi = mid
        return lo

    def check_stability(self, gamma: float) -> None:
        """Raise :class:`~scalinglaw.errors.UnstableStepError` (stating the largest stable step) if unstable."""
        if not self.is_stable(gamma):
            raise UnstableStepError(gamma, self.max_stable_step(),
                                    "the second-moment recursion of distributed SGD diverges")
