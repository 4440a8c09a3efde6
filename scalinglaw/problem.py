r"""The problem description: spectrum, target, noise, training set-up, quantizers and test convention.

A :class:`Problem` is validated when it is built; every error names the parameter, its value and the valid
range. The algorithm it describes is the quantized one-pass SGD of SPEC §3 [paper: 2510.18259 for the update,
recon for the details]:

.. math::

    w_t = w_{t-1}-\frac{\gamma_t}{B}\tilde X_t^\top Q_o\big(Q_a(\tilde X_t Q_p(w_{t-1}))-Q_l(y_t)\big),
    \qquad \tilde X_t=Q_d(X_t),

with :math:`w_0=0`, :math:`T=N/B` steps, and the output the last iterate, the uniform average of
:math:`w_0..w_{T-1}`, or the tail average of :math:`w_{\lfloor T/2\rfloor}..w_{T-1}`.

With ``M`` set, the model is the sketched model of Lin et al. 2024 [paper]: :math:`f_v(x)=\langle v,Sx\rangle`,
:math:`S_{ij}\sim\mathcal N(0,1/M)`; data quantization acts on the sketched features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import _checks
from .errors import ParameterError
from .quantize import Quantizer, parse_quantizer
from .quantize.moments import deep_second_moment, fixed_grid
from .spectra import ArraySpectrum, LogPowerLaw, PowerLaw, Spectrum, parse_dimension
from .targets import Target, make_target

__all__ = ["QUANTIZER_TARGETS", "Problem", "make_problem"]

#: The five quantization targets of 2510.18259, in the order of the update rule.
QUANTIZER_TARGETS = ("data", "labels", "params", "acts", "grads")

SCHEDULES = ("constant", "geometric")
AVERAGES = ("last", "uniform", "tail")
TEST_INPUTS = ("clean", "quantized")
SKETCH_BASES = ("eigen", "raw")

#: Proxy dimension limits for d = inf (see :meth:`Problem.proxy_dimension`).
PROXY_MIN, PROXY_MAX, PROXY_TAIL_LEARNING = 1000, 16384, 1e-3


@dataclass(frozen=True)
class Problem:
    r"""A fully specified quantized-SGD linear-regression problem.

    Parameters
    ----------
    spectrum : Spectrum
        Eigenvalues :math:`\lambda_i` of the feature covariance :math:`H` (:mod:`scalinglaw.spectra`).
    N : int
        Number of samples; must be a multiple of ``B``. One pass: :math:`T=N/B` steps.
    gamma : float
        Initial step size :math:`\gamma>0`; must be below the stability limit (checked by the engines, which
        state the largest stable value).
    target : Target or str
        :math:`w^*`: ``"ones"``, ``"prior"`` or a :class:`~scalinglaw.targets.Target`.
    sigma2 : float
        Label-noise variance :math:`\sigma^2\ge0`.
    B : int
        Batch size, ``1 <= B <= N``.
    schedule : {"constant", "geometric"}
        Constant :math:`\gamma`, or Lin et al.'s geometric decay: constant for :math:`N/\log_2N` samples, then
        halved every :math:`N/\log_2N` samples.
    average : {"last", "uniform", "tail"}
        Output iterate.
    data, labels, params, acts, grads : Quantizer, str or None
        Quantizers of the five targets (``None`` is full precision). Strings are parsed by
        :func:`~scalinglaw.quantize.parse_quantizer`.
    M : int or None
        Sketch size. ``None``: plain regression in ``d`` dimensions.
    test_inputs : {"clean", "quantized"}
        Whether the risk is measured on clean test inputs (default) or on :math:`Q_d(x)` (SPEC §5.2).
    sketch_draws, sketch_seed : int
        Number of independent sketches averaged over, and the seed they are drawn from.
    sketch_basis : {"eigen", "raw"}
        Where data quantization acts in the sketched model: in the eigenbasis of :math:`SHS^\top` (default;
        the idealised schemes of the theory) or on the raw sketched coordinates :math:`Sx` (SPEC §5.4).
    d_proxy : int or None
        Finite proxy dimension when ``d = inf`` (default: automatic, see :meth:`proxy_dimension`).
    K : int
        Data-parallel workers (default 1). Each takes a batch of ``B`` fresh samples per local step, so ``N``
        counts the samples of all workers and each runs :math:`T=N/(KB)` steps (``theory/distributed.md``).
    period : int
        Local steps per communication round :math:`\tau` (default 1: the workers' gradients are averaged at
        every step; :math:`\tau>1` is local SGD, averaging the workers' differences). ``T`` must be a multiple.
    comm : Quantizer, str or None
        Quantizer of each worker's message (its gradient, or pseudo-gradient :math:`(w-w_k)/\gamma` after
        :math:`\tau` local steps): any spec of ``data``, plus ``norm:Q`` and ``qsgd:s=S``
        (:mod:`scalinglaw.quantize.comm`). ``None``: full-precision communication.
    """

    spectrum: Spectrum
    N: int
    gamma: float
    target: Target | str = "ones"
    sigma2: float = 1.0
    B: int = 1
    schedule: str = "constant"
    average: str = "uniform"
    data: Quantizer | str | None = None
    labels: Quantizer | str | None = None
    params: Quantizer | str | None = None
    acts: Quantizer | str | None = None
    grads: Quantizer | str | None = None
    M: int | None = None
    test_inputs: str = "clean"
    sketch_draws: int = 1
    sketch_seed: int = 0
    sketch_basis: str = "eigen"
    d_proxy: int | None = None
    K: int = 1
    period: int = 1
    comm: Quantizer | str | None = None
    _quant: dict[str, Quantizer | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.spectrum, Spectrum):
            raise ParameterError("spectrum", type(self.spectrum).__name__, "be a scalinglaw Spectrum")
        target = make_target(self.target)
        target.check(self.spectrum)
        set_(self, "target", target)
        set_(self, "sigma2", _checks.nonnegative("sigma2", self.sigma2))
        B = _checks.integer("B", self.B, minimum=1)
        N = _checks.integer("N", self.N, minimum=1)
        K = _checks.integer("K", self.K, minimum=1)
        period = _checks.integer("period", self.period, minimum=1)
        if K == 1:
            if N < B:
                raise ParameterError("N", N, f"be >= B={B} (one pass needs at least one full batch)")
            if N % B:
                raise ParameterError("N", N, f"be a multiple of B={B} (T = N/B steps)")
        elif N < K * B or N % (K * B):
            raise ParameterError("N", N, f"be a multiple of K*B={K * B} (each of the K={K} workers takes B samples "
                                         "per step: T = N/(K B) steps)")
        if (N // (K * B)) % period:
            raise ParameterError("period", period, f"divide the number of steps T = N/(K B) = {N // (K * B)} "
                                                   "(whole communication rounds)")
        set_(self, "B", B)
        set_(self, "N", N)
        set_(self, "K", K)
        set_(self, "period", period)
        from .quantize.comm import parse_comm_quantizer

        set_(self, "comm", parse_comm_quantizer(self.comm, name="comm"))
        set_(self, "gamma", _checks.positive("gamma", self.gamma))
        set_(self, "schedule", _checks.choice("schedule", self.schedule, SCHEDULES))
        if self.schedule == "geometric" and N < 2:
            raise ParameterError("N", N, "be >= 2 for the geometric schedule")
        set_(self, "average", _checks.choice("average", self.average, AVERAGES))
        set_(self, "test_inputs", _checks.choice("test_inputs", self.test_inputs, TEST_INPUTS))
        set_(self, "sketch_basis", _checks.choice("sketch_basis", self.sketch_basis, SKETCH_BASES))
        quant = {name: parse_quantizer(getattr(self, name), name=name) for name in QUANTIZER_TARGETS}
        for name, q in quant.items():
            set_(self, name, q)
        set_(self, "_quant", quant)
        if self.M is not None:
            M = _checks.integer("M", self.M, minimum=1)
            if not self.spectrum.is_infinite and M > self.spectrum.d:
                raise ParameterError("M", M, f"be <= d={self.spectrum.d} (a sketch of rank above d is singular)")
            set_(self, "M", M)
        set_(self, "sketch_draws", _checks.integer("sketch_draws", self.sketch_draws, minimum=1))
        set_(self, "sketch_seed", _checks.integer("sketch_seed", self.sketch_seed, minimum=0))
        if self.d_proxy is not None:
            dp = _checks.integer("d_proxy", self.d_proxy, minimum=1)
            if not self.spectrum.is_infinite:
                raise ParameterError("d_proxy", dp, "be omitted when d is finite")
            if self.M is not None and dp < self.M:
                raise ParameterError("d_proxy", dp, f"be >= M={self.M}")
            set_(self, "d_proxy", dp)
        if self.comm is not None and self.M is None and self.spectrum.is_infinite:
            raise ParameterError(
                "comm", self.comm.spec,
                "be omitted when d=inf without a sketch: quantized messages would need every coordinate of an "
                "infinite gradient (use a finite d or a sketch M)")
        dq = quant["data"]
        if (
            self.M is None
            and self.spectrum.is_infinite
            and dq is not None
            and dq.noise_class == "additive"
            and dq.epsilon > 0
        ):
            raise ParameterError(
                "data",
                dq.spec,
                "not be additive when d=inf: additive data noise makes tr H^(q) = d*eps infinite "
                "(use a finite d, a sketch M, or a multiplicative scheme)",
            )
        _check_float_range(self)
        if self.M is None and self.spectrum.is_infinite and dq is not None:
            _check_quantized_trace(dq, self.spectrum)

    # ------------------------------------------------------------------ derived quantities
    @property
    def quantizers(self) -> dict[str, Quantizer | None]:
        """The five quantizers by target name (``None`` = full precision)."""
        return dict(self._quant)

    @property
    def steps(self) -> int:
        """Number of SGD steps :math:`T=N/(KB)` (of each worker; :math:`N/B` for one worker)."""
        return self.N // (self.B * self.K)

    @property
    def distributed(self) -> bool:
        """Whether the run uses several workers, local steps or quantized communication."""
        return self.K > 1 or self.period > 1 or self.comm is not None

    @property
    def sketched(self) -> bool:
        return self.M is not None

    def phases(self) -> list[tuple[float, int]]:
        """Step-size phases as ``(gamma, steps)`` pairs, in order.

        Constant: one phase. Geometric (Lin et al. 2024, [paper] for the schedule, base 2 of the log our
        choice): phase length :math:`L=\\lceil T/\\log_2 N\\rceil` steps, step halved after each phase.
        """
        T = self.steps
        if self.schedule == "constant":
            return [(self.gamma, T)]
        L = max(1, math.ceil(T / math.log2(self.N)))
        out = []
        start, ell = 0, 0
        while start < T:
            n = min(L, T - start)
            out.append((self.gamma / 2.0**ell, n))
            start += n
            ell += 1
        return out

    def proxy_dimension(self) -> int:
        r"""Number of coordinates modelled explicitly: ``d`` when finite.

        For ``d = inf``: ``d_proxy`` if given; otherwise the smallest power of two :math:`n\ge1000` (and
        :math:`\ge 8M` for a sketch) with :math:`\gamma T\lambda_n\le10^{-3}` (the tail is then essentially
        unlearned), capped at 16384. The tail beyond it enters analytically (see the engine's notes).
        """
        if not self.spectrum.is_infinite:
            return int(self.spectrum.d)
        if self.d_proxy is not None:
            return int(self.d_proxy)
        lo = PROXY_MIN if self.M is None else max(PROXY_MIN, 8 * self.M)
        n = 1 << max(0, math.ceil(math.log2(lo)))
        horizon = self.gamma * self.steps
        cap = max(PROXY_MAX, n)
        while n < cap and horizon * float(self.spectrum.head(n)[-1]) > PROXY_TAIL_LEARNING:
            n *= 2
        return min(n, cap)

    def with_(self, **changes: Any) -> Problem:
        """A copy with some fields changed (re-validated)."""
        return replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description of the problem."""
        return {
            "spectrum": self.spectrum.label,
            "target": self.target.label,
            "sigma2": self.sigma2,
            "N": self.N,
            "B": self.B,
            "gamma": self.gamma,
            "schedule": self.schedule,
            "average": self.average,
            "M": self.M,
            "test_inputs": self.test_inputs,
            "quantizers": {k: (q.spec if q is not None else None) for k, q in self._quant.items()},
            **({"K": self.K, "period": self.period, "comm": self.comm.spec if self.comm is not None else None}
               if self.distributed else {}),
        }


#: Magnitudes of the inputs for which the moments of the risk (up to fourth powers of lambda (1+eps)) and the
#: squared replica risks of the simulator stay within float64's range.
FLOAT_SCALE_MAX = 1e30
#: Smallest eigenvalue of an array spectrum: below it gamma * lambda_i and the moments underflow to zero.
EIGENVALUE_MIN = 1e-300
#: Largest decay exponent of the power-law spectra.
DECAY_EXPONENT_MAX = 100.0


def _check_float_range(problem: Problem) -> None:
    """Refuse inputs whose moments leave float64's range, naming the input (not the step size it would break)."""
    spec = problem.spectrum
    why = f"<= {FLOAT_SCALE_MAX:g} (the moments of the risk, up to fourth powers, must stay within float64's range)"
    if problem.sigma2 > FLOAT_SCALE_MAX:
        raise ParameterError("sigma2", problem.sigma2, "be " + why)
    for name, q in problem.quantizers.items():
        ideal = q.idealized_scheme() if q is not None else None
        if ideal is not None and ideal.epsilon > FLOAT_SCALE_MAX:
            raise ParameterError(name, q.spec, "have epsilon " + why)
    scale_name, scale = ("lambda1", spec.lambda1) if isinstance(spec, PowerLaw) else (
        ("scale", spec.scale) if isinstance(spec, LogPowerLaw) else ("spectrum", None))
    if scale is not None and not 1.0 / FLOAT_SCALE_MAX <= scale <= FLOAT_SCALE_MAX:
        raise ParameterError(scale_name, scale, f"be in [{1 / FLOAT_SCALE_MAX:g}, {FLOAT_SCALE_MAX:g}] (the moments "
                             "of the features and the stable step sizes must stay within float64's range)")
    if isinstance(spec, ArraySpectrum):
        top, low = float(spec.values.max()), float(spec.values.min())
        if top > FLOAT_SCALE_MAX or low < EIGENVALUE_MIN:
            raise ParameterError("spectrum", f"eigenvalues in [{low:g}, {top:g}]",
                                 f"lie in [{EIGENVALUE_MIN:g}, {FLOAT_SCALE_MAX:g}] (float64's range for the moments)")
        return
    if isinstance(spec, PowerLaw | LogPowerLaw) and spec.a > DECAY_EXPONENT_MAX:
        raise ParameterError("a", spec.a, f"be <= {DECAY_EXPONENT_MAX:g} (a decay exponent; steeper spectra underflow "
                             "float64 within the first thousand eigenvalues, 1000^-100 = 1e-300)")


def _check_quantized_trace(q: Quantizer, spectrum: Spectrum) -> None:
    r"""Refuse a fixed-grid data format whose :math:`\operatorname{tr}H^{(q)}=\sum_i\mathbb EQ(x_i)^2` diverges at
    :math:`d=\infty` [derived]: stochastic FP rounds :math:`x_i\ll c` (first cell :math:`c`, the subnormal spacing) to
    :math:`\{0,\pm c\}`, so :math:`\mathbb EQ(x_i)^2=c\sqrt{2\lambda_i/\pi}`, and :math:`\sum_i\sqrt{\lambda_i}` is
    finite only for a power law with :math:`a>2` (never for the log-power law)."""
    if fixed_grid(q) is None:
        return
    _, root, _ = deep_second_moment(q)
    if root > 0 and not (isinstance(spectrum, PowerLaw) and spectrum.a > 2):
        a = getattr(spectrum, "a", math.nan)
        c = fixed_grid(q).first_cell  # type: ignore[union-attr]
        raise ParameterError(
            "data", q.spec,
            f"have a finite tr H^(q) when d=inf: below its first cell {c:g} it rounds x_i to 0 or +-{c:g}, "
            f"E Q(x_i)^2 ~ sqrt(lambda_i), and sum_i sqrt(lambda_i) diverges for {spectrum.label.split('(')[0]} "
            f"a={a:g} (needs a power law with a > 2; or use a finite d or a sketch M)",
        )


def make_problem(
    *,
    a: float = 2.0,
    d: int | float | str = 200,
    spectrum: str | Spectrum | np.ndarray = "power",
    lambda1: float = 1.0,
    b: float | None = None,
    target: str | Target | np.ndarray = "ones",
    **kwargs: Any,
) -> Problem:
    """Build a :class:`Problem` from the CLI's flat flags (``a``, ``d``, ``spectrum`` kind, ...).

    ``spectrum`` is ``"power"`` (:math:`\\lambda_1 i^{-a}`), ``"logpower"`` (:math:`\\lambda_1 i^{-1}\\log^{-a}(i+1)`),
    an array, or a :class:`~scalinglaw.spectra.Spectrum`. Other keyword arguments go to :class:`Problem`.
    """
    if isinstance(spectrum, Spectrum):
        spec = spectrum
    elif isinstance(spectrum, str):
        _checks.choice("spectrum", spectrum, ["power", "logpower"])
        dim = parse_dimension(d)
        spec = PowerLaw(a, dim, lambda1) if spectrum == "power" else LogPowerLaw(a, dim, lambda1)
    else:
        spec = ArraySpectrum(np.asarray(spectrum))
    if isinstance(target, str):
        target = make_target(target, b)
    elif b is not None:
        raise ParameterError("b", b, "be omitted unless target is 'prior'")
    return Problem(spectrum=spec, target=target, **kwargs)
