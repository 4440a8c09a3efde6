r"""Closed-form effective data sizes (SPEC §5.5, §8 claim 6): the bound's and the operational one.

* :func:`effective_data_size_bound` — :math:`N^{\rm bound}_{\rm eff}=N\operatorname{tr}H/\operatorname{tr}H^{(q)}`, the
  parameter of the upper bound: the step must shrink with :math:`\operatorname{tr}H^{(q)}`, so the bound sees fewer
  effective samples under either scheme [recon of 2602.19241's statement].
* :func:`effective_data_size` — the operational :math:`N_{\rm eff}` of SPEC §5.5: the :math:`N'` at which the
  full-precision learner (same model, step and schedule, or a given reference) reaches the quantized learner's
  estimation error :math:`R(N)-R(\infty)`, both from :func:`estimation_error`, a per-direction model [derived].

The per-direction model. On the power-law spectrum :math:`\mu_i=i^{-a}` of the model's coordinates
(:math:`i\le M` in sketch space, :math:`i\le d` for plain regression), with signal :math:`\mu_iv_i^{*2}=i^{-b}`, data
quantization gives :math:`\tilde\mu_i=\mu_i+\epsilon_d` (additive) or :math:`(1+\epsilon_d)\mu_i` (multiplicative) and
the target :math:`w_{q,i}=s_iv^*_i`, :math:`s_i=\mu_i/\tilde\mu_i`. This is the ridge effect: the learner aims at the
shrunk target and relaxes at rate :math:`\gamma\tilde\mu_i=\gamma(\mu_i+\epsilon_d)`, so the slow directions (those
with :math:`\mu_i\lesssim\epsilon_d`) leave little to learn and are learned fast. Per direction the mean error
contracts by :math:`e_i=\prod_t(1-\gamma_t\tilde\mu_i)` and the noise variance follows
:math:`a\mapsto((1-\gamma\tilde\mu_i)^2+2\gamma^2\tilde\mu_i^2/B)\,a+\gamma^2\tilde\mu_i\sigma_q^2/B` phase by phase
(SPEC §4 without the rank-one feedback of the other directions); :math:`\sigma_q^2` is the noise at
:math:`w_q` of the ``sketched-quantized`` law (label noise, the sketch's approximation error, the data-quantization
residual, the other quantizers' noise). Then, on clean test inputs,

.. math::

    R_i(N)-R_i(\infty)=i^{-b}\big[2(1-s_i)s_ie_i+s_i^2e_i^2\big]+\mu_ia_i,

and :math:`i^{-b}s_ie_i^2+\tilde\mu_ia_i` on quantized ones. Averaged outputs (constant steps) average the mean
factor and the variance over the window exactly (geometric sums). Checked against the exact engine's
:func:`~scalinglaw.predict.exact_effective_data_size` in ``tests/test_effective.py``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from .errors import UnsupportedConfigurationError
from .problem import Problem

__all__ = ["effective_data_size", "effective_data_size_bound", "estimation_error", "solve_effective_size"]

#: coordinates modelled one by one; beyond, the signal is left unlearned (it is, at any N the engine reaches)
_MAX_COORDS = 1 << 16


def _setup(problem: Problem) -> dict[str, Any]:
    """Spectrum exponent, source exponent, size, schemes and epsilons of ``problem`` (closed-form conventions)."""
    from .predict import _schemes, power_law_exponents

    a, b = power_law_exponents(problem)
    schemes, eps, _ = _schemes(problem)
    size = float(problem.M if problem.M is not None else problem.spectrum.d)
    return {"a": float(a), "b": float(b), "d": float(problem.spectrum.d), "size": size,
            "schemes": schemes, "eps": eps}


def effective_data_size_bound(problem: Problem) -> float:
    r""":math:`N\operatorname{tr}H/\operatorname{tr}H^{(q)}` [recon]: :math:`\operatorname{tr}H^{(q)}=
    \operatorname{tr}H+n\epsilon_d` (additive, :math:`n=M` in sketch space or :math:`d`) or
    :math:`(1+\epsilon_d)\operatorname{tr}H` (multiplicative); :math:`N` without data quantization."""
    from .laws.special import power_head
    from .spectra import quantized_trace

    s = _setup(problem)
    tr = float(power_head(s["a"], s["d"]))
    trq, _ = quantized_trace(tr, s["size"], s["schemes"]["data"], s["eps"].get("eps_d", 0.0))
    return float(problem.N * tr / float(trq))


def _noise(s: dict[str, Any], sigma2: float) -> float:
    """:math:`\\sigma_q^2`, as in the ``sketched-quantized`` law [recon]."""
    from .laws.special import power_head, power_tail, sketch_approximation

    a, b, d, n = s["a"], s["b"], s["d"], s["size"]
    sch, eps = s["schemes"], s["eps"]
    signal = float(power_head(b, min(n, d)))
    out = sigma2 + (float(sketch_approximation(a, b, n, d)) if n < d else 0.0)
    ed = eps.get("eps_d", 0.0)
    if sch["data"] == "multiplicative":
        out += ed / (1 + ed) * signal
    elif sch["data"] == "additive" and ed > 0:
        ke = min(n, ed ** (-1 / a))
        out += ed * float(power_head(b - a, ke)) + float(power_tail(b, ke, n))
    for t, key in (("labels", "eps_l"), ("acts", "eps_a"), ("grads", "eps_o")):
        if sch[t] == "additive":
            out += eps[key]
    if sch["params"] == "additive":
        tr = float(power_head(a, d)) + (n * ed if sch["data"] == "additive" else 0.0)
        out += 3.0 * eps["eps_p"] * tr
    out += sum(eps[k] for t, k in (("params", "eps_p"), ("acts", "eps_a")) if sch[t] == "multiplicative") * signal
    if sch["labels"] == "multiplicative":
        out += eps["eps_l"] * (float(power_head(b, d)) + sigma2)
    if sch["grads"] == "multiplicative":
        out *= 1 + eps["eps_o"]
    return out


def _window_sums(r1: np.ndarray, s0: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean factor and variance factor of the average of iterates :math:`s_0..T-1` for one constant step.

    Mean: :math:`\frac1{T'}\sum_{s}r_1^s`. Variance, with :math:`a_s=A(1-r_1^{2s})` and SPEC §4's
    :math:`\mathbb E\bar u^2=T'^{-2}\sum_sa_s(1+2\sum_{k=1}^{T-1-s}r_1^k)`: returned divided by :math:`A`.
    """
    Tp = T - s0
    one = 1.0 - r1
    safe = np.where(one > 0, one, 1.0)

    def geo(x: np.ndarray, start: int, count: int) -> np.ndarray:  # sum_{s=start}^{start+count-1} x^s
        xm = np.where(x < 1, x, 0.5)
        val = xm**start * -np.expm1(count * np.log(xm)) / (1 - xm)
        return np.where(x < 1, val, float(count))

    mean = geo(r1, s0, Tp) / Tp
    c = 2 * r1 / safe
    # sum_s (1 - r1^{2s}) (1 + c - c r1^{T-1-s}) = (1+c) T' - c r1^{T-1} sum r1^{-s} - (1+c) sum r1^{2s}
    #                                              + c r1^{T-1} sum r1^{s}
    inv = np.where(r1 > 0, r1 ** (T - 1) * geo(np.where(r1 > 0, 1 / np.maximum(r1, 1e-300), 0.5), s0, Tp), 0.0)
    var = ((1 + c) * Tp - c * np.minimum(inv, Tp) - (1 + c) * geo(r1 * r1, s0, Tp)
           + c * r1 ** (T - 1) * geo(r1, s0, Tp)) / Tp**2
    return mean, np.maximum(var, 0.0)


def estimation_error(problem: Problem) -> float:
    r""":math:`R(N)-R(\infty)` of ``problem`` from the per-direction model of the module docstring [derived]."""
    s = _setup(problem)
    a, b = s["a"], s["b"]
    n = int(min(s["size"], _MAX_COORDS))
    i = np.arange(1, n + 1, dtype=np.float64)
    mu = i ** (-a)
    signal = i ** (-b)
    ed = s["eps"].get("eps_d", 0.0)
    data = s["schemes"]["data"]
    mut = mu + ed if data == "additive" else (mu * (1 + ed) if data == "multiplicative" else mu)
    shrink = mu / mut
    noise = _noise(s, problem.sigma2)
    B = problem.B
    if problem.average == "last":
        e = np.ones(n)
        var = np.zeros(n)
        for g, steps in problem.phases():
            r1 = 1.0 - g * mut
            r = r1 * r1 + 2 * g * g * mut * mut / B
            rL = np.exp(steps * np.log(np.maximum(r, 1e-300)))
            e = e * np.sign(r1) ** steps * np.exp(steps * np.log(np.maximum(np.abs(r1), 1e-300)))
            var = rL * var + (g * g * mut * noise / B) * (1 - rL) / np.maximum(1 - r, 1e-300)
    else:
        if problem.schedule != "constant":
            raise UnsupportedConfigurationError("the effective-data-size model covers the last iterate, or an "
                                                "average of constant-step iterates")
        T = problem.steps
        s0 = T // 2 if problem.average == "tail" else 0
        g = problem.gamma
        r1 = 1.0 - g * mut
        e, vfac = _window_sums(r1, s0, T)
        var = vfac * (g * g * mut * noise / B) / np.maximum(1 - r1 * r1, 1e-300)
    if problem.test_inputs == "clean":
        out = signal * (2 * (1 - shrink) * shrink * e + shrink**2 * e**2) + mu * var
    else:
        out = signal * shrink * e**2 + mut * var
    total = float(np.sum(out))
    if s["size"] > n:  # coordinates beyond the modelled ones: unlearned signal
        from .laws.special import power_tail

        total += float(power_tail(b, n, s["size"]))
    return total


def solve_effective_size(error: Any, target: float, B: int, start_steps: int, lo_steps: int,
                         rtol: float = 1e-6) -> tuple[float | None, str]:
    """The sample size at which the decreasing ``error(steps)`` reaches ``target``: bisection in log steps, then
    log-linear interpolation (shared by the closed-form and the exact effective data sizes)."""
    if target <= 0:
        return None, "the quantized run has no estimation error left (R(N) = R(inf)); N_eff is unbounded"
    lo = lo_steps
    hi = max(lo + 1, start_steps)
    e_lo = error(lo)
    if e_lo < target:
        return float(lo * B), "the quantized estimation error exceeds the full-precision one at the smallest size"
    e_hi = error(hi)
    while e_hi > target:
        lo, e_lo = hi, e_hi
        hi *= 4
        if hi > 1e15 / B:
            return None, "full precision needs more than 1e15 samples to match"
        e_hi = error(hi)
    while hi - lo > max(1, rtol * lo):
        mid = round(math.sqrt(lo * hi))
        mid = min(max(mid, lo + 1), hi - 1)
        e_mid = error(mid)
        if e_mid > target:
            lo, e_lo = mid, e_mid
        else:
            hi, e_hi = mid, e_mid
    if e_lo == e_hi:
        return float(lo * B), ""
    t = (math.log(e_lo) - math.log(target)) / (math.log(e_lo) - math.log(e_hi))
    return float(B * math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo)))), ""


def effective_data_size(problem: Problem, *, reference: Problem | None = None,
                        rtol: float = 1e-4) -> tuple[float | None, str]:
    r"""The operational :math:`N_{\rm eff}` (SPEC §5.5) from the closed-form model [derived]: the :math:`N'` with
    :func:`estimation_error` of the full-precision ``reference`` (default: ``problem`` without quantizers) at
    :math:`N'` equal to that of ``problem`` at :math:`N`. Returns ``(N', note)`` as
    :func:`~scalinglaw.predict.exact_effective_data_size` does."""
    target = estimation_error(problem)
    ref = problem if reference is None else reference
    fp = replace(ref, data=None, labels=None, params=None, acts=None, grads=None)
    lo = max(1, math.ceil(2 / fp.B)) if fp.schedule == "geometric" else 1
    return solve_effective_size(lambda k: estimation_error(replace(fp, N=k * fp.B)), target, fp.B,
                                problem.N // fp.B, lo, rtol)
