r"""The exact second-moment map of quantized SGD on a diagonal Gaussian problem (SPEC §4) [derived].

Notation (one coordinate per eigen-direction): clean variances :math:`\mu_i`, quantized variances
:math:`\tilde\mu_i=\mathbb E\tilde z_i^2`, target second moments :math:`s_i=\mathbb E v_i^{*2}`, quantized target
:math:`w_q=\tilde\mu^{-1}\mu\,v^*`, and the centred iterate :math:`u_t=w_t-w_q`. The state is

* :math:`\tilde m_{t,i}=\mathbb E[u_{t,i}v^*_i]`, which obeys :math:`\tilde m_{t+1}=D\,\tilde m_t`,
  :math:`D=1-\gamma\tilde\mu` (:math:`\mathbb E[g\mid w]=\tilde\mu\odot w-\chi\odot v^*=\tilde\mu\odot u`);
* :math:`a_{t,i}=\mathbb E u_{t,i}^2`, which obeys :math:`a_{t+1}=P a_t+R'\tilde m_t+c'` with

.. math::

    P=\mathrm{diag}(\pi)+\theta\gamma^2\tilde\mu\tilde\mu^\top,\qquad
    R'=\mathrm{diag}(r)+\gamma^2\tilde\mu\,\rho^\top,

  a diagonal-plus-rank-one matrix and a diagonal-plus-rank-one coupling; :math:`c'` is the gradient-noise
  variance at :math:`w_q`. The off-diagonal fourth moments vanish because the coordinates of :math:`\tilde z`
  are symmetric and (conditionally) independent, so :math:`(\tilde m,a)` is an exact state.

The derivation, for all five targets x three idealised schemes and any batch size, is in
``theory/exact-risk.md``; :func:`moment_coefficients` encodes it term by term. A real format with a fixed grid on
the data (INT with ``range=R``, FP without absmax scaling; stochastic or round-to-nearest) keeps the coordinates
of :math:`\tilde z` independent and symmetric, so the same closure holds with its exact per-coordinate moments
(:func:`scalinglaw.quantize.moments.grid_moments`); a biased format (saturation, round-to-nearest) replaces
:math:`\mu` by the cross moment :math:`\chi=\mathbb E[\tilde zz]` wherever it stands for
:math:`\mathbb E[\tilde z_iz_i]`, and :math:`w_q=\tilde\mu^{-1}\chi\,v^*`. For the jointly Gaussian case
(full precision or additive noise everywhere) :math:`R'=0` and the recursion reduces to SPEC §4's
:math:`a_{t+1}=(1-\gamma\tilde\mu)^2a_t+\frac{\gamma^2}{B}(\tilde\mu^2a_t+\tilde\mu\sum_j\tilde\mu_ja_{t,j}+s^2\tilde\mu)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .errors import UnstableStepError, UnsupportedConfigurationError
from .measure import SpectralMeasure
from .quantize import Quantizer
from .quantize.moments import fixed_grid, grid_moments

__all__ = [
    "MomentCoefficients",
    "StepMap",
    "check_stability",
    "data_moments",
    "max_stable_step",
    "mean_square_step_limit",
    "moment_coefficients",
    "scheme_of",
]

#: Scheme codes: 0 none, 1 additive, 2 multiplicative (shared factor), 3 multiplicative-coord.
_CODES = {None: 0, "additive": 1, "multiplicative": 2, "multiplicative-coord": 3}
#: Code of a real format with a fixed grid on the data, treated exactly (never jointly Gaussian).
_EXACT_FORMAT = 4
#: Quantized variance (relative to the largest clean one) given to features a format rounds to 0 surely.
DEAD_VARIANCE = 1e-250


def scheme_of(q: Quantizer | None, target: str) -> tuple[int, float]:
    """The ``(code, epsilon)`` of the idealised scheme of ``q``, or of the scheme it stands in for.

    Real formats map to their idealised surrogate (``Quantizer.idealized_scheme``); formats whose epsilon
    depends on the data (INT with absmax scaling) are refused with a message saying what works. (On the data,
    :func:`moment_coefficients` treats a format with a fixed grid exactly instead; see :func:`data_moments`.)
    """
    if q is None:
        return 0, 0.0
    ideal = q.idealized_scheme()
    if ideal is None:
        raise UnsupportedConfigurationError(
            f"{target}={q.spec}: its epsilon depends on the data (absmax scaling), so the exact engine has no "
            f"idealised equivalent; give a fixed range (e.g. {q.spec.split(':')[0]}:range=4), an idealised "
            "scheme, or use simulate"
        )
    if ideal.epsilon == 0:
        return 0, 0.0
    return _CODES[ideal.kind], float(ideal.epsilon)


@dataclass(frozen=True)
class MomentCoefficients:
    r"""Step-size-free coefficients of :math:`\mathbb E[g_i^2\mid w]` on a weighted diagonal problem.

    With :math:`q=\mathbb E w^2` (diagonal), :math:`\rho=\mathbb E[w\,v^*]`, batch size :math:`B` and node
    multiplicities :math:`n_k` (:class:`~scalinglaw.measure.SpectralMeasure`),

    .. math::

        \mathbb E g_i^2=A_{d,i}q_i+\theta\tilde\mu_i\sum_kn_k\tilde\mu_kq_k+G_{d,i}\rho_i
        +\tilde\mu_i\sum_kn_kg_k\rho_k+c_i .

    Attributes are the vectors and scalars above plus ``mu`` (clean), ``mut`` (quantized), ``target_sq``,
    ``weight`` (:math:`n_k`) and ``cross`` (:math:`\chi=\mathbb E[\tilde zz]`, equal to ``mu`` for an unbiased
    data quantizer; ``None`` means ``mu``).
    """

    mu: np.ndarray = field(repr=False)
    mut: np.ndarray = field(repr=False)
    target_sq: np.ndarray = field(repr=False)
    A_d: np.ndarray = field(repr=False)
    theta: float
    G_d: np.ndarray = field(repr=False)
    g: np.ndarray = field(repr=False)
    c: np.ndarray = field(repr=False)
    weight: np.ndarray = field(repr=False)
    #: True when every quantizer is additive or absent: the residual at w_q is then independent of the
    #: features and the centred second moments do not couple to the mean (R' = 0 exactly).
    jointly_gaussian: bool = False
    #: In the jointly Gaussian case without parameter noise, the gradient noise at w_q is exactly
    #: residual_var * mut / B (SPEC §4); None otherwise.
    residual_var: float | None = None
    #: the batch size B
    batch: int = 1
    #: chi = E[z~ z] per node (the data quantizer's cross moment); None: mu (unbiased data quantizer)
    cross: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.cross is None:
            object.__setattr__(self, "cross", self.mu)

    @property
    def rate_ratio(self) -> float:
        r""":math:`\min_i\tilde\mu_i/\mu_i`: below 1 only for a biased data format (round-to-nearest, saturation)."""
        return float(np.min(self.mut / self.mu)) if self.mu.size else 1.0

    @property
    def shrink(self) -> np.ndarray:
        r""":math:`\chi/\tilde\mu`, the fraction of each coordinate of :math:`v^*` kept by :math:`w_q`
        (:math:`\mu/\tilde\mu` for an unbiased data quantizer)."""
        return self.cross / self.mut


class DataMoments(NamedTuple):
    r"""Moments of the quantized features :math:`\tilde z=Q_d(z)` per node (``theory/exact-risk.md`` §2).

    :math:`F_{ik}=\mathbb E\tilde z_i^2\tilde z_k^2=\tilde\mu_if_k+\delta_{ik}F^d_i`,
    :math:`G_{ik}=\mathbb E\tilde z_i^2\tilde z_kz_k=\tilde\mu_ig_k+\delta_{ik}G^d_i`,
    :math:`K_{ik}=\mathbb E\tilde z_i^2z_k^2=\tilde\mu_i\kappa_k+\delta_{ik}K^d_i`, with
    :math:`\tilde\mu=\mathbb E\tilde z^2` (``mut``) and :math:`\chi=\mathbb E[\tilde zz]` (``cross``).
    """

    mut: np.ndarray
    cross: np.ndarray
    f: np.ndarray
    g: np.ndarray
    kappa: np.ndarray
    Fd: np.ndarray
    Gd: np.ndarray
    Kd: np.ndarray


def _data_moments(code: int, eps: float, mu: np.ndarray) -> DataMoments:
    r"""The moments of an idealised data scheme (the table of ``theory/exact-risk.md`` §2); :math:`\chi=\mu`."""
    c2, c3, c4 = 1 + eps, 1 + 3 * eps, 1 + 6 * eps + 3 * eps * eps
    mu2 = mu * mu
    if code == 0:
        return DataMoments(mu, mu, mu, mu, mu, 2 * mu2, 2 * mu2, 2 * mu2)
    if code == 1:
        mut = mu + eps
        return DataMoments(mut, mu, mut, mu, mu, 2 * mut * mut, 2 * mu * mut, 2 * mu2)
    mut = c2 * mu
    if code == 2:
        return DataMoments(mut, mu, (c4 / c2) * mu, (c3 / c2) * mu, mu, 2 * c4 * mu2, 2 * c3 * mu2, 2 * c2 * mu2)
    # coordinate-wise relative noise
    return DataMoments(mut, mu, c2 * mu, mu, mu, (3 * c4 - c2 * c2) * mu2, (3 * c3 - c2) * mu2, 2 * c2 * mu2)


def data_moments(q: Quantizer | None, mu: np.ndarray) -> tuple[int, DataMoments]:
    r"""``(code, moments)`` of the data quantizer ``q`` on clean variances ``mu`` [derived].

    A format with a fixed grid (INT with ``range=R``, FP without absmax scaling; either rounding) rounds each
    coordinate on its own, so the coordinates of :math:`\tilde z` stay independent and symmetric and
    :math:`F,G,K` are rank one plus diagonal with :math:`f=\tilde\mu`, :math:`g=\chi`, :math:`\kappa=\mu`,
    :math:`F^d=\mathbb EQ^4-\tilde\mu^2`, :math:`G^d=\mathbb E[Q^3z]-\tilde\mu\chi`,
    :math:`K^d=\mathbb E[Q^2z^2]-\tilde\mu\mu`, from the exact moments of
    :func:`~scalinglaw.quantize.moments.grid_moments` (``theory/exact-risk.md`` §2). Every other quantizer
    enters through :func:`scheme_of` (idealised scheme or surrogate).
    """
    if fixed_grid(q) is not None:
        gm = grid_moments(q, mu)  # type: ignore[arg-type]
        mut, chi = gm.second, gm.cross
        # round-to-nearest maps coordinates far below the first cell to 0 (mut = chi = 0 in float64): they never
        # learn. A tiny positive mut keeps them inert (w_q = 0, rate ~1e-250) without 0/0 in the recursion.
        dead = mut <= 0.0
        if np.any(dead):
            mut = np.where(dead, DEAD_VARIANCE * float(np.max(mu)), mut)
            chi = np.where(dead, 0.0, chi)
        return _EXACT_FORMAT, DataMoments(mut, chi, mut, chi, mu, gm.fourth - mut * mut,
                                          gm.third_cross - mut * chi, gm.second_square - mut * mu)
    code, eps = scheme_of(q, "data")
    return code, _data_moments(code, eps, mu)


def moment_coefficients(
    measure: SpectralMeasure, quantizers: dict[str, Quantizer | None], B: int
) -> MomentCoefficients:
    r"""Build :math:`\mathbb E[g_i^2\mid w]` for the quantized SGD update of SPEC §3 [derived].

    Parameters
    ----------
    measure : SpectralMeasure
        The weighted diagonal problem (nodes, multiplicities, target second moments, effective label noise).
    quantizers : dict
        ``{"data", "labels", "params", "acts", "grads"}`` to :class:`~scalinglaw.quantize.Quantizer` or None.
    B : int
        Batch size.

    Notes
    -----
    Per sample, :math:`r=Q_o(Q_a(\tilde z^\top p)-Q_l(y))` with :math:`p=Q_p(w)` shared by the batch. Write
    :math:`S_i=\mathbb E[\tilde z_i^2r^2]` (same sample) and :math:`C_i=\mathbb E[\tilde z_{1i}r_1\tilde z_{2i}r_2]`
    (two samples of one batch); then :math:`\mathbb E g_i^2=S_i/B+(1-1/B)C_i`. Shared (``multiplicative``)
    activation, label and output-gradient factors correlate the samples of a batch, which is why they do not
    average out with :math:`B` [derived]. Every sum over coordinates is weighted by the node multiplicities.
    """
    mu = np.asarray(measure.mu, dtype=np.float64)
    w = measure.weight
    s = np.asarray(measure.target_sq, dtype=np.float64)
    sigma2 = float(measure.sigma2)
    cd, dm = data_moments(quantizers.get("data"), mu)
    cl, el = scheme_of(quantizers.get("labels"), "labels")
    cp, ep = scheme_of(quantizers.get("params"), "params")
    ca, ea = scheme_of(quantizers.get("acts"), "acts")
    co, eo = scheme_of(quantizers.get("grads"), "grads")
    mut, chi, f, g, kappa, Fd, Gd, Kd = dm
    # E p_k^2 = pq * q_k + pc
    pq, pc = (1.0 + ep, 0.0) if cp in (2, 3) else (1.0, ep if cp == 1 else 0.0)
    mult = (2, 3)
    coS = 1.0 + eo * (co in mult)  # same-sample output-gradient factor
    coC = 1.0 + eo * (co == 2)  # cross-sample: only a shared factor correlates two samples
    alpha_S = coS * (1.0 + ea * (ca in mult))
    alpha_C = coC * (1.0 + ea * (ca == 2))
    lam_S = coS * (1.0 + el * (cl in mult))
    lam_C = coC * (1.0 + el * (cl == 2))
    add_noise_S = coS * (ea * (ca == 1) + el * (cl == 1)) + eo * (co == 1)
    wB, wC = 1.0 / B, 1.0 - 1.0 / B
    phi = float(f[0] / mut[0]) if mut.size else 1.0  # f = phi * mut in every case
    A_d = pq * (wB * alpha_S * Fd + wC * alpha_C * mut * mut)
    theta = wB * alpha_S * pq * phi
    G_d = -2.0 * (wB * coS * Gd + wC * coC * mut * chi)
    gvec = -2.0 * wB * coS * g
    sum_f = float(w @ f)
    c = wB * (
        alpha_S * pc * (mut * sum_f + Fd)
        + lam_S * (mut * float((w * kappa) @ s) + Kd * s + sigma2 * mut)
        + add_noise_S * mut
    ) + wC * (alpha_C * pc * mut * mut + lam_C * chi * chi * s)
    gaussian = all(code in (0, 1) for code in (cd, cl, cp, ca, co))
    residual = None
    if gaussian and cp == 0:
        # zeta = <z~, w_q> - y~ + e_a + e_o is independent of z~ with this variance (SPEC §4)
        residual = sigma2 + el * (cl == 1) + ea * (ca == 1) + eo * (co == 1) + float((w * mu * (1.0 - mu / mut)) @ s)
    return MomentCoefficients(
        mu=mu, mut=mut, target_sq=s, A_d=A_d, theta=theta, G_d=G_d, g=gvec, c=c, weight=w,
        jointly_gaussian=gaussian, residual_var=residual, batch=int(B), cross=chi,
    )


@dataclass(frozen=True)
class StepMap:
    r"""The affine map of one SGD step with step size :math:`\gamma`, in centred, symmetrised coordinates.

    The state is :math:`(\sqrt n\odot\tilde m,\ \sqrt n\odot a)` for node multiplicities :math:`n`: scaling
    by :math:`\sqrt n` makes the rank-one couplings symmetric,

    .. math::

        \tilde m' = D\tilde m,\qquad a' = \underbrace{(\mathrm{diag}(\pi)+\beta\,hh^\top)}_{P}a
        + \underbrace{(\mathrm{diag}(r)+h\,\rho^\top)}_{R'}\tilde m + c',\qquad h=\sqrt n\odot\tilde\mu .

    ``kappa = 1 - pi`` is kept separately because :math:`1-\pi_i` is tiny for slow coordinates and must not be
    recovered by cancellation. ``K = I - P = diag(kappa) - beta h h^T``. ``rate`` is :math:`\tilde\mu`
    (``D = 1 - gamma * rate``).
    """

    gamma: float
    D: np.ndarray = field(repr=False)
    kappa: np.ndarray = field(repr=False)
    beta: float
    r: np.ndarray = field(repr=False)
    rho: np.ndarray = field(repr=False)
    c: np.ndarray = field(repr=False)
    h: np.ndarray = field(repr=False)
    rate: np.ndarray = field(repr=False)

    @classmethod
    def build(cls, mc: MomentCoefficients, gamma: float) -> StepMap:
        r"""Centre the :math:`(\rho,q)` recursion at :math:`w_q` and symmetrise it (see the module docstring).

        With :math:`q=a+2\,\mathrm{shrink}\odot\tilde m+\mathrm{shrink}^2s` and
        :math:`\rho=\tilde m+\mathrm{shrink}\,s`, the uncentred map
        :math:`q'=(1-2\gamma\tilde\mu)q+2\gamma\chi\rho+\gamma^2(Aq+G\rho+c)` becomes the centred one, whose
        constant is :math:`c'=\gamma^2\mathbb E[g^2\mid w=w_q]` (the mean gradient vanishes at :math:`w_q`).
        """
        chi, mut, s, w = mc.cross, mc.mut, mc.target_sq, mc.weight
        sh = mc.shrink
        gg = gamma * gamma
        D = 1.0 - gamma * mut
        kappa = 2.0 * gamma * mut - gg * mc.A_d
        beta = gg * mc.theta
        # R' = 2 P diag(sh) + R - 2 diag(sh * D), with R = diag(2 gamma chi + gg G_d) + gg mut (n g)^T.
        # diag: 2 sh (1 - kappa - D) + 2 gamma chi + gg G_d, and sh (1 - D) = gamma chi; rank one: mut (n rho)^T.
        r = 4.0 * gamma * chi - 2.0 * sh * kappa + gg * mc.G_d
        rho = 2.0 * beta * mut * sh + gg * mc.g
        if mc.jointly_gaussian:  # exact zeros instead of rounding residue
            r, rho = np.zeros_like(r), np.zeros_like(rho)
        if mc.residual_var is not None:
            c = (gg * mc.residual_var / mc.batch) * mut
        else:
            # c' = gg E[g^2 | w_q] = gg (A q_q + G rho_q + c), q_q = sh^2 s, rho_q = sh s
            q_q, r_q = sh * sh * s, sh * s
            c = gg * (mc.A_d * q_q + mc.theta * mut * float((w * mut) @ q_q) + mc.G_d * r_q
                      + mut * float((w * mc.g) @ r_q) + mc.c)
        sq = np.sqrt(w)
        return cls(gamma=gamma, D=D, kappa=kappa, beta=beta, r=r, rho=sq * rho, c=sq * c, h=sq * mut, rate=mut)

    @property
    def coupled(self) -> bool:
        r"""Whether the second moments are driven by the mean (:math:`R'\ne0`; multiplicative noise)."""
        return bool(np.any(self.r != 0.0) or np.any(self.rho != 0.0))

    def K(self, v: np.ndarray) -> np.ndarray:
        r""":math:`Kv=\kappa\odot v-\beta h(h^\top v)` (leading axes broadcast)."""
        return self.kappa * v - self.beta * self.h * (v @ self.h)[..., None]

    def R(self, m: np.ndarray) -> np.ndarray:
        r""":math:`R'm=r\odot m+h(\rho^\top m)` (leading axes broadcast)."""
        return self.r * m + self.h * (m @ self.rho)[..., None]

    def apply(self, m: np.ndarray, a: np.ndarray, forcing: np.ndarray | float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """One step: ``(m, a) -> (D m, P a + R' m + forcing * c')`` with ``P = I - K``.

        ``forcing`` (per leading index) switches the constant on (1) or off (0): the bias is the response to the
        initial condition without it, the variance the response to it from zero.
        """
        f = np.asarray(forcing, dtype=np.float64)[..., None] if np.ndim(forcing) else forcing
        return self.D * m, a - self.K(a) + self.R(m) + f * self.c


# ---------------------------------------------------------------------------------------------------- stability
def mean_square_step_limit(top: Any, trace: Any, B: Any) -> Any:
    r""":math:`2/(\lambda_1(1+1/B)+\operatorname{tr}H/B)`, below which the second moments of minibatch SGD on
    Gaussian features contract [derived].

    With batch :math:`B` they contract iff :math:`\gamma\lambda_i(1+1/B)<2` for every :math:`i` and
    :math:`\frac\gamma B\sum_i\lambda_i/(2-\gamma\lambda_i(1+1/B))<1` (Sylvester's inertia of
    :math:`\mathrm{diag}(\kappa)-\beta\lambda\lambda^\top`, SPEC §4). Bounding every denominator by the largest
    eigenvalue's gives this sufficient condition: for :math:`B=1` it is :math:`2/(2\lambda_1+\operatorname{tr}H)`,
    as :math:`B\to\infty` gradient descent's :math:`2/\lambda_1`.
    """
    return 2.0 / (top * (1.0 + 1.0 / B) + trace / B)


def _is_stable(mc: MomentCoefficients, gamma: float) -> bool:
    """Spectral radius of the (m, a) map below 1: |D| < 1 and the eigenvalues of K = I - P in (0, 2)."""
    mut = mc.mut
    rate = gamma * mut
    # |1 - gamma mu| < 1 as 0 < gamma mu < 2: 1 - gamma mu rounds to 1 for rates below eps (a frozen mode, not an
    # unstable one)
    if not np.all((rate > 0.0) & (rate < 2.0)):
        return False
    kappa = 2.0 * gamma * mut - gamma * gamma * mc.A_d
    beta = gamma * gamma * mc.theta
    if not np.all(kappa > 0):
        return False
    h2 = mc.weight * mut * mut
    # Inertia of K - x I = diag(kappa - x) - beta h h^T (Sylvester + Schur complement):
    # #eig below x = #{kappa < x} + [beta * sum h^2/(kappa - x) > 1]  (for x not a pole).
    if beta * float(np.sum(h2 / kappa)) >= 1.0:
        return False
    below2 = int(np.sum(kappa < 2.0))
    with np.errstate(divide="ignore"):
        extra = beta * float(np.sum(h2 / (kappa - 2.0))) > 1.0
    return below2 + int(extra) == kappa.size


def max_stable_step(mc: MomentCoefficients, *, rtol: float = 1e-10) -> float:
    r"""The supremum of the step sizes for which the exact moment recursion is stable [derived].

    Stability of the affine map on :math:`(\tilde m,a)` means spectral radius below one: :math:`|1-\gamma\tilde\mu_i|<1`
    and every eigenvalue of :math:`K=I-P=\mathrm{diag}(\kappa)-\beta hh^\top` (:math:`h=\sqrt n\odot\tilde\mu`) in
    :math:`(0,2)`. The
    eigenvalue count below a level follows from Sylvester's law of inertia, so each test is :math:`O(d)`; the
    stable set is an interval :math:`(0,\gamma_{\max})`, found by bisection.
    """
    hi = 2.0 / float(np.max(mc.mut))
    lo = 0.0
    if _is_stable(mc, hi):
        return hi
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        if mid == lo or mid == hi:
            break
        if _is_stable(mc, mid):
            lo = mid
        else:
            hi = mid
    return lo


def check_stability(mc: MomentCoefficients, gamma: float) -> None:
    """Raise :class:`~scalinglaw.errors.UnstableStepError` (stating the largest stable step) if unstable."""
    if not math.isfinite(gamma) or not _is_stable(mc, gamma):
        raise UnstableStepError(gamma, max_stable_step(mc), "the second-moment recursion of SGD diverges")
