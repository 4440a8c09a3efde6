r"""Closed-form laws for quantized SGD in linear regression (SPEC §5): the symbolic layer.

Four laws, each a :class:`~scalinglaw.laws.base.Law` with named SymPy terms:

``sgd``
    Constant-step iterate-averaged SGD, Zou, Wu, Braverman, Gu, Kakade (arXiv 2103.12692) [paper, recalled].
``sgd-quantized``
    Its quantized version after 2510.18259 (Theorem 4.1 structure [paper]; the forms of the terms [recon]).
``sketched``
    The sketched model of Lin, Wu, Kakade, Bartlett, Lee (arXiv 2406.08466) with a source condition
    [paper for the orders; recalled details].
``sketched-quantized``
    The precision law of 2602.19241 for the sketched model [paper for the claims; recon for the forms].

Conventions, shared with the exact engine: power-law spectrum :math:`\lambda_i=i^{-a}`, target with
:math:`\lambda_i\mathbb Ew_i^{*2}=i^{-b}` (``b = a``: all-ones or isotropic target), :math:`w_0=0`, excess risk
:math:`\mathbb E\|w-w^*\|_H^2` with **no** factor ½ (Zou et al.'s bound is doubled at the boundary). Power-law
sums close through :class:`~scalinglaw.laws.special.PowerHead` / :class:`~scalinglaw.laws.special.PowerTail`
(Hurwitz zeta; Riemann zeta when :math:`d=\infty`), with the effective dimension relaxed to a real
:math:`k^*`. Every "≲" term carries a calibration constant ``c_<term>`` fitted against the exact engine
(:mod:`scalinglaw.laws.calibration`; constant set ``calibrated``); the ``unit`` (or Zou's ``paper``) set has them
at 1.

The quantizers of these laws are the idealised schemes (their epsilons); the calibration makes the laws bound the
exact risk *of the idealised schemes*. A real format enters only through its surrogate epsilon
(``Quantizer.idealized_scheme``) and no format has been checked against its law: the result is then not a verified
bound (FP4 E2M1 data on the 2510.18259 set-up: exact 0.147, law 0.0998), and
:func:`scalinglaw.predict.closed_form_risk` labels it so (``verified_bound=False``) [derived].
"""

from __future__ import annotations

import json
import math
import os
from abc import abstractmethod
from functools import cache
from importlib import resources
from typing import Any, ClassVar

import numpy as np
import sympy as sp

from ..dynamics import mean_square_step_limit
from ..errors import ParameterError
from ..spectra import quantized_trace
from .base import Law, Variable, refuse_options
from .constants import ConstantSet
from .special import Hyp2F1, PowerHead, PowerTail, SketchApproximation, power_head

__all__ = [
    "QuantizedSGDLaw",
    "QuantizedSketchedLaw",
    "SGDLaw",
    "SketchedLaw",
]

SCHEMES = (None, "additive", "multiplicative")
QUANT_TARGETS = ("data", "labels", "params", "acts", "grads")

# ---------------------------------------------------------------------------------------------------- variables
_N = Variable("N", "number of training samples (one pass)", why="a sample count")
_B = Variable("B", "batch size; T = N/B steps", lower=1.0, lower_inclusive=True, default=1.0, why="a batch size")
_GAMMA = Variable("gamma", "(initial) step size", why="a step size")
_SIGMA2 = Variable("sigma2", "label-noise variance sigma^2", lower_inclusive=True, default=1.0, positive=False,
                   why="a variance")
_A = Variable("a", "spectrum exponent: lambda_i = i^-a", why="a decay exponent")
_BSRC = Variable("b", "source exponent: lambda_i E w*_i^2 = i^-b (default b = a: all-ones/isotropic target)",
                 why="a decay exponent")
_D = Variable("d", "dimension (inf allowed)", lower=1.0, lower_inclusive=True, default=math.inf, allow_inf=True,
              why="a dimension")
_M = Variable("M", "sketch size (number of model parameters)", lower=1.0, lower_inclusive=True, why="a model size")
#: quantization target -> name of its epsilon variable
EPS_NAMES = {"data": "eps_d", "labels": "eps_l", "params": "eps_p", "acts": "eps_a", "grads": "eps_o"}
_EPS = {
    t: Variable(name, f"epsilon of the {t} quantizer (0 = full precision)", lower_inclusive=True, default=0.0,
                positive=False, why="a noise variance")
    for t, name in EPS_NAMES.items()
}


def _sym(v: Variable) -> sp.Symbol:
    return v.symbol


N, B, gamma, sigma2, a, b, d, M = (_sym(v) for v in (_N, _B, _GAMMA, _SIGMA2, _A, _BSRC, _D, _M))
eps_d, eps_l, eps_p, eps_a, eps_o = (_sym(_EPS[t]) for t in QUANT_TARGETS)
k_star = sp.Symbol("k_star", positive=True)
k_eps = sp.Symbol("k_eps", positive=True)
tr_H = sp.Symbol("trH", positive=True)
tr_Hq = sp.Symbol("trHq", positive=True)
N_eff = sp.Symbol("N_eff", positive=True)
N_effq = sp.Symbol("N_eff_q", positive=True)
M_eff = sp.Symbol("M_eff", positive=True)
sigma2_eff = sp.Symbol("sigma2_eff", positive=True)


#: Environment variable naming a calibration file (written by ``scalinglaw calibrate --out FILE``) that replaces
#: the one shipped in the package; ``use_calibration`` (the CLI's ``--calibration FILE``) takes precedence.
CALIBRATION_ENV = "SCALINGLAW_CALIBRATION"
_calibration_choice: dict[str, str | None] = {"path": None, "name": CALIBRATION_ENV}


def use_calibration(path: str | os.PathLike[str] | None, *, name: str = "calibration") -> None:
    """Read the calibrated constants of the regression laws from ``path`` from now on (``None``: back to
    ``$SCALINGLAW_CALIBRATION`` or the shipped file). The file is checked at once; ``name`` is the parameter
    named in errors (e.g. ``--calibration``)."""
    if path is None:
        _calibration_choice.update(path=None, name=CALIBRATION_ENV)
        return
    _load_calibration(os.fspath(path), name)
    _calibration_choice.update(path=os.fspath(path), name=name)


def _load_calibration(path: str, name: str) -> dict[str, Any]:
    """A calibration file's content, checked: every entry has constants that form a ConstantSet (read again when
    the file changes)."""
    try:
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = (0, -1)
    return _read_calibration(path, name, stamp)


@cache
def _read_calibration(path: str, name: str, stamp: tuple[int, int]) -> dict[str, Any]:
    want = "be a calibration JSON file written by scalinglaw calibrate --out FILE"
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ParameterError(name, path, f"{want} ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ParameterError(name, path, f"{want} (not valid JSON: {exc})") from None
    if not isinstance(data, dict) or not data:
        raise ParameterError(name, path, f"{want} (an object with one entry per law)")
    for key, entry in data.items():
        try:
            ConstantSet.from_dict(entry["constants"])
        except (KeyError, TypeError, ParameterError):
            raise ParameterError(name, path, f"{want} (entry {key!r} has no valid 'constants')") from None
    return data


@cache
def _shipped_calibration() -> dict[str, Any]:
    try:
        text = resources.files("scalinglaw.data").joinpath("calibration.json").read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        return {}
    return json.loads(text)


def _calibration_source() -> tuple[str, str] | None:
    """``(path, parameter name)`` of a user-chosen calibration file, or ``None`` for the shipped one."""
    if _calibration_choice["path"]:
        return str(_calibration_choice["path"]), str(_calibration_choice["name"])
    env = os.environ.get(CALIBRATION_ENV)
    return (env, CALIBRATION_ENV) if env else None


def _calibration_file() -> dict[str, Any]:
    """The calibration in use: ``use_calibration``'s file, else ``$SCALINGLAW_CALIBRATION``, else the shipped one."""
    source = _calibration_source()
    return _load_calibration(*source) if source else _shipped_calibration()


def _scheme(name: str, value: Any) -> str | None:
    if value in (None, "none", ""):
        return None
    if value == "multiplicative-coord":
        return "multiplicative"
    if value not in SCHEMES:
        raise ParameterError(name, value, "be additive, multiplicative, multiplicative-coord or none")
    return value


def _refuse_unstable(gamma: np.ndarray, limit: np.ndarray, condition: str, why: str) -> None:
    bad = ~(gamma < limit)
    if np.any(bad):
        raise ParameterError("gamma", float(np.broadcast_to(gamma, bad.shape)[bad].ravel()[0]),
                             f"be < {condition} = {float(np.min(limit)):.6g} ({why})")


def sketched_step_limit(values: dict[str, Any], data: str | None) -> Any:
    r""":func:`~scalinglaw.dynamics.mean_square_step_limit` of the sketched spectrum [derived].

    :math:`\lambda_1=1` for :math:`\lambda_i=i^{-a}`; data quantization as in :math:`H_S^{(q)}`
    (:func:`~scalinglaw.spectra.quantized_trace`, SPEC §5.4)."""
    tr, top = quantized_trace(power_head(values["a"], values.get("d", np.inf)), values["M"], data,
                              values.get("eps_d", 0.0) if data else 0.0)
    return mean_square_step_limit(top, tr, values.get("B", 1.0))


AVERAGES = ("uniform", "tail")


def _average_option(options: dict[str, Any]) -> str:
    avg = options.pop("average", "uniform")
    if avg not in AVERAGES:
        raise ParameterError("average", avg, "be uniform or tail (the output of constant-step SGD)")
    return avg


def _tail_average_factor(average: str) -> int:
    r"""Variance multiplier of the tail average over :math:`w_{\lfloor T/2\rfloor}..w_{T-1}` [derived].

    Learned directions: :math:`T/(T-\lfloor T/2\rfloor)\le2` times fewer averaged iterates. Unlearned ones: the
    iterate is a random walk, and the variance of its average over :math:`[s,T)` is
    :math:`(s+(T-s)/3)/(T/3)=1+2s/T\le2` times that of the uniform average. Either way at most 2."""
    return 2 if average == "tail" else 1


def _learned(k: sp.Expr) -> sp.Expr:
    r"""Zou et al.'s integer effective dimension :math:`\max\{k:\lambda_k\ge\tau\}=\lfloor k\rfloor` of a real
    cut-off :math:`k` (:math:`\lambda_k=\tau`). With it the split sums
    :math:`\sum_{i\le k^*}i^{-b}(i^a/x)^2+\sum_{i>k^*}i^{-b}=\sum_i i^{-b}\min\{1,(i^a/x)^2\}` exactly, a continuous
    function of :math:`x` that never drops part of a direction not yet learned (the real relaxation did, for
    :math:`k^*<1`)."""
    return sp.floor(k)


def sketch_approximation_form(dim: sp.Expr) -> sp.Expr:
    r"""The approximation error of a Gaussian sketch of size ``dim`` [derived: deterministic equivalent]:
    :math:`\mathbb E_S\,\mathrm{Approx}\asymp\sum_{i\le d}i^{-b}\frac{\kappa}{i^{-a}+\kappa}` with the renormalised
    ridge :math:`\kappa` solving :math:`\sum_{i\le d}\frac{i^{-a}}{i^{-a}+\kappa}=M`
    (:class:`~scalinglaw.laws.special.SketchApproximation`). For :math:`d=\infty`, :math:`\kappa\approx
    (\pi/(a\sin(\pi/a))/M)^a`, so the error decays like :math:`M^{1-b}` for :math:`b<a+1` but only like
    :math:`M^{-a}` for :math:`b>a+1`: the sketch mixes the strong top directions with the rest, and the tail
    form :math:`\sum_{i>M}i^{-b}` (which the old law used) falls below the exact error for :math:`b>a`. Against the
    exact average over sketches: within [0.89, 1.5] on 150 random :math:`(a,b,M,d)` (24 sketches each)."""
    return SketchApproximation(a, b, dim, d)


def _bias_power(average: str) -> int:
    r"""Power of the learned directions' bias, :math:`\lambda_iw_i^{*2}(\gamma\lambda_iN/B)^{-p}` [derived]: 2 for the
    uniform average (Zou et al.), 4 for the tail average, whose window starts after :math:`s=\lfloor T/2\rfloor`
    steps that leave :math:`(1-\gamma\lambda_i)^{2s}\le e^{-\gamma\lambda_iT}\le(2/(e\gamma\lambda_iT))^2` of the
    error (the constant goes into :math:`c_{\rm bias}`)."""
    return 4 if average == "tail" else 2


def _decay_horizon() -> sp.Expr:
    r""":math:`x=e\gamma N_{\rm eff}/B`, the learning horizon of the geometric schedule's last iterate [derived]: the
    steps sum to :math:`\sum_t\gamma_t\approx2\gamma N_{\rm eff}/B` (halved every :math:`N_{\rm eff}/B` steps), so a
    direction keeps :math:`e^{-y}`, :math:`y=4\gamma N_{\rm eff}\lambda_i/B`, of its squared error, and
    :math:`e^{-y}\le(4/(ey))^4=(x\lambda_i)^{-4}`: with :math:`k^*=\lfloor x^{1/a}\rfloor` the bias
    :math:`\sum_ii^{-b}\min\{1,(x\lambda_i)^{-4}\}` bounds this with constant 1."""
    return sp.E * N_eff * gamma / B


#: Power p of the learned part of the last iterate's bias, sum_{i<=k*} lambda_i w_i^2 (lambda_i x)^-p [derived]:
#: geometric decay leaves exp(-c x lambda_i) of a learned direction, and e^{-y} <= (p/(e y))^p for every p; p = 4
#: keeps the sum dominated by i ~ k* for every b < 4a + 1 (p = 2, the averaged iterate's rate, lets the top
#: direction dominate once b > 2a + 1 and overstates the bias by orders of magnitude there)
_BIAS_POWER = 4


def _cross_bound(price: sp.Expr, bias: sp.Expr) -> sp.Expr:
    r"""Clean test inputs with quantized data: the exact risk has the cross term
    :math:`2\langle w_q-w^*,\mathbb E(w-w_q)\rangle_H\le2\sqrt{\|w_q-w^*\|_H^2\,\|\mathbb E(w-w_q)\|_H^2}`
    (Cauchy-Schwarz), bounded with the closed price and bias [derived]."""
    return 2 * sp.sqrt(price * bias)


def sketch_leak(dim: sp.Expr) -> sp.Expr:
    r"""Signal in the sketch directions beyond :math:`k^*` [derived from the deterministic equivalent]: what a sketch
    of size :math:`k^*` misses minus what one of size :math:`M` misses,
    :math:`\mathrm{Approx}(k^*)-\mathrm{Approx}(M)`. A Gaussian sketch mixes the strong top directions into the
    slow ones, so for :math:`b>a+1` this exceeds :math:`\sum_{k^*<i\le M}i^{-b}`. No sketch (:math:`M=d`): the tail
    sum itself."""
    return sp.Piecewise((PowerTail(b, k_star, dim), dim >= d),
                        (SketchApproximation(a, b, k_star, d) - SketchApproximation(a, b, dim, d), True))


class _QuantizedSpectrum:
    r"""Sums over the quantized spectrum :math:`\lambda^{(q)}_i` up to ``dim`` (``d`` for plain regression,
    ``M`` in sketch space), split at :math:`k^*` and, for additive data, at :math:`k_\epsilon=\epsilon_d^{-1/a}`
    (each piece within a factor :math:`2^{\rm power}` of the exact sum) [derived]."""

    def __init__(self, data: str | None, dim: sp.Expr, sketched: bool = False) -> None:
        self.data, self.dim, self.sketched = data, dim, sketched

    def head(self, power: int) -> sp.Expr:
        r""":math:`\sum_{i\le k^*}\lambda_i^2s_i/(\lambda^{(q)}_i)^{power}`."""
        clean = PowerHead(b - (power - 1) * a, k_star)
        if self.data == "multiplicative":
            return (1 + eps_d) ** (-power) * clean
        if self.data == "additive":
            split = sp.Min(k_star, k_eps)
            return PowerHead(b - (power - 1) * a, split) + eps_d ** (-power) * PowerTail(a + b, split, k_star)
        return clean

    def tail_signal(self) -> sp.Expr:
        r""":math:`\sum_{k^*<i\le{\rm dim}}\lambda_i^2s_i/\lambda^{(q)}_i`; in sketch space at least
        :func:`sketch_leak`."""
        if self.data == "multiplicative":
            out = PowerTail(b, k_star, self.dim) / (1 + eps_d)
        elif self.data == "additive":
            split = sp.Max(k_star, k_eps)
            out = PowerTail(b, k_star, split) + PowerTail(a + b, split, self.dim) / eps_d
        else:
            out = PowerTail(b, k_star, self.dim)
        if self.sketched:
            leak = sketch_leak(self.dim)
            out = sp.Max(out, leak / (1 + eps_d) if self.data == "multiplicative" else leak)
        return out

    def tail(self, power: int) -> sp.Expr:
        r""":math:`\sum_{k^*<i\le{\rm dim}}(\lambda^{(q)}_i)^{power}`."""
        if self.data == "multiplicative":
            return (1 + eps_d) ** power * PowerTail(power * a, k_star, self.dim)
        if self.data == "additive":
            return sum(
                (sp.binomial(power, j) * eps_d ** (power - j)
                 * (PowerTail(j * a, k_star, self.dim) if j else self.dim - k_star))
                for j in range(power + 1)
            )
        return PowerTail(power * a, k_star, self.dim)

    def residual(self) -> sp.Expr:
        r""":math:`\|w^*\|_H^2-\|w_q\|^2_{H^{(q)}}` over ``dim``: the data-quantization part of the noise at
        :math:`w_q`."""
        if self.data == "multiplicative":
            return eps_d / (1 + eps_d) * PowerHead(b, self.dim)
        if self.data == "additive":
            return eps_d * PowerHead(b - a, k_eps) + PowerTail(b, k_eps, self.dim)
        return sp.Integer(0)

    def price(self, clean: bool) -> sp.Expr:
        r""":math:`\|w_q-w^*\|_H^2` (clean test inputs) or :math:`\|w^*\|_H^2-\|w_q\|^2_{H^{(q)}}` (quantized),
        over ``dim``: additive split at :math:`k_\epsilon` within :math:`[\tfrac14,1]` (clean) or
        :math:`[\tfrac12,1]` (quantized) of the exact sum [derived]."""
        if self.data == "multiplicative":
            r = eps_d / (1 + eps_d)
            return (r**2 if clean else r) * PowerHead(b, self.dim)
        if self.data == "additive":
            head = eps_d**2 * PowerHead(b - 2 * a, k_eps) if clean else eps_d * PowerHead(b - a, k_eps)
            return head + PowerTail(b, k_eps, self.dim)
        return sp.Integer(0)

    def cutoff(self, horizon: sp.Expr) -> sp.Expr:
        r"""Real :math:`k` with :math:`\lambda^{(q)}_k=1/{\rm horizon}`, capped at ``dim``."""
        tau = 1 / horizon
        if self.data == "additive":
            # every direction is learned once lambda_dim + eps_d >= tau; an explicit branch, because
            # (dim^-a)^(-1/a) rounds below dim and leaves a spurious tail that N gamma^2 then amplifies
            return sp.Piecewise((self.dim, tau - eps_d <= self.dim ** (-a)), ((tau - eps_d) ** (-1 / a), True))
        if self.data == "multiplicative":
            return sp.Min(self.dim, ((1 + eps_d) * horizon) ** (1 / a))
        return sp.Min(self.dim, horizon ** (1 / a))

    def learned_weight(self, clean: bool) -> sp.Expr:
        r""":math:`\sum_{i\le k^*}\mu_i/\tilde\mu_i` on clean test inputs (a learned direction's variance
        :math:`\propto1/\tilde\mu_i`, weighed by :math:`\mu_i`), :math:`k^*` on quantized ones. Additive:
        :math:`\int_0^{k^*}dx/(1+\epsilon_dx^a)=k^*{}_2F_1(1,\tfrac1a;1+\tfrac1a;-\epsilon_dk^{*a})`
        :math:`\ge\sum_{i\le k^*}s_i`
        [derived]."""
        if not clean or self.data is None:
            return k_star
        if self.data == "multiplicative":
            return k_star / (1 + eps_d)
        return k_star * Hyp2F1(1, 1 / a, 1 + 1 / a, -eps_d * k_star**a)


#: a sketch of size M on a finite d must have M <= d / SKETCH_RATIO (or be no sketch, M = d)
SKETCH_RATIO = 4
#: smallest sketch the closed forms cover: below it the deterministic equivalent of the sketch's approximation
#: error underestimates the exact average by up to 2.7x (b > a + 1, M = 4)
SKETCH_MIN = 8


def _refuse_sketch_size(values: dict[str, np.ndarray]) -> None:
    """The sketched laws' domain in M: plain regression (M = d), or a sketch with 8 <= M <= d/4. A Gaussian sketch
    with d/4 < M < d has eigenvalues far below the power law (the hard edge of a nearly square random projection),
    and below 8 its approximation error is not yet its deterministic equivalent."""
    M, dim = np.broadcast_arrays(values["M"], values["d"])
    sketch = M < dim
    small = sketch & (M < SKETCH_MIN)
    if np.any(small):
        raise ParameterError("M", float(M[small].ravel()[0]), f"be >= {SKETCH_MIN} for a sketch (M < d): the "
                             "closed form's sketch approximation error is asymptotic in M")
    large = sketch & np.isfinite(dim) & (M * SKETCH_RATIO > dim)
    if np.any(large):
        raise ParameterError("M", float(M[large].ravel()[0]), f"be <= d/{SKETCH_RATIO} or = d (no sketch), with d = "
                             f"{float(dim[large].ravel()[0]):g}: a sketch close to d has eigenvalues the closed form "
                             "does not model")


def _refuse_unstable_sketched(values: dict[str, np.ndarray], data: str | None) -> None:
    _refuse_unstable(values["gamma"], sketched_step_limit(values, data), "2/(lambda_1^(q) (1+1/B) + tr H^(q)/B)",
                     "mean-square stability of one-pass SGD on Gaussian data")


class _RegressionLaw(Law):
    """Shared machinery: calibration constants, scheme options, domain checks."""

    latex_names: ClassVar[dict[str, str]] = {
        "sigma2": r"\sigma^2", "eps_d": r"\epsilon_d", "eps_l": r"\epsilon_l", "eps_p": r"\epsilon_p",
        "eps_a": r"\epsilon_a", "eps_o": r"\epsilon_o", "k_star": "k^*", "k_eps": r"k_\epsilon",
        "trH": r"\operatorname{tr}H", "trHq": r"\operatorname{tr}H^{(q)}", "N_eff": r"N_{\mathrm{eff}}",
        "N_eff_q": r"N^{(q)}_{\mathrm{eff}}", "M_eff": r"M_{\mathrm{eff}}", "sigma2_eff": r"\sigma^2_{\mathrm{eff}}",
        "c_bias": r"c_{\mathrm{bias}}", "c_variance": r"c_{\mathrm{var}}", "c_approximation": r"c_{\mathrm{approx}}",
        "c_parameter_noise": r"c_{\mathrm{param}}", "c_additive_error": r"c_{\mathrm{add}}",
        "c_cross": r"c_{\mathrm{cross}}",
    }

    #: names of the calibration constants (one per "≲" term)
    calibrated_terms: ClassVar[tuple[str, ...]] = ()
    default_constants: ClassVar[str] = "calibrated"

    def _extra_constant_sets(self) -> dict[str, ConstantSet]:
        entry = _calibration_file().get(self.law_key())
        source = _calibration_source()
        if entry is None:
            if source is not None:  # a user's file without this law: say so, not "unknown constant set"
                raise ParameterError(source[1], source[0], f"have an entry for law {self.law_key()} (a calibration "
                                     "written by scalinglaw calibrate --out FILE for this law)")
            return {}
        cs = ConstantSet.from_dict(entry["constants"])
        missing = [c for c in self.calibrated_constant_names() if c not in cs]
        if missing and source is not None:
            raise ParameterError(source[1], source[0], f"define {', '.join(missing)} for law {self.law_key()} (its "
                                 "entry does not belong to this law)")
        return {"calibrated": cs}

    @classmethod
    def calibrated_constant_names(cls) -> list[str]:
        """The constants a calibration entry of this law must define (one multiplier per term, and alpha)."""
        return list(cls.unit_constants().values)

    def law_key(self) -> str:
        """Key of this law in the calibration file (one constant set per law, fitted on a grid mixing schemes)."""
        return self.name

    #: whether the law uses the fourth-moment constant alpha
    uses_alpha: ClassVar[bool] = True

    @classmethod
    def unit_constants(cls) -> ConstantSet:
        """Every calibration constant at 1 (and alpha = 3 for Gaussian data): the bare form."""
        extra = {"alpha": 3.0} if cls.uses_alpha else {}
        return ConstantSet(
            name="unit",
            values={**{f"c_{t}": 1.0 for t in cls.calibrated_terms}, **extra},
            provenance="[recon]",
            notes="every calibration constant at 1: the bare reconstructed form",
        )

    def constant_set_names(self) -> list[str]:
        return list(dict.fromkeys([*super().constant_set_names(), "unit"]))

    def _resolve_constants(self, constants: Any) -> ConstantSet:
        if constants == "unit":
            return self.unit_constants()
        return super()._resolve_constants(constants)

    def _check_summable(self, values: dict[str, np.ndarray]) -> None:
        if "d" in values:
            inf_d = np.isinf(values["d"])
            if np.any(inf_d & ~(values["a"] > 1)):
                raise ParameterError("a", float(np.min(values["a"])), "be > 1 for a summable spectrum with d=inf")
            if np.any(inf_d & ~(values["b"] > 1)):
                raise ParameterError("b", float(np.min(values["b"])),
                                     "be > 1 so that the signal of an infinite-dimensional target is finite")
        elif np.any(~(values["b"] > 1)):
            raise ParameterError("b", float(np.min(values["b"])), "be > 1 (infinite-dimensional sketched model)")

    def step_limit(self, **values: Any) -> np.ndarray:
        """The largest step size the law admits at these inputs (it refuses ``gamma >=`` this)."""
        vals = {v.name: v.check(values[v.name]) if v.name in values else
                (None if v.default is None else np.asarray(v.default, dtype=float)) for v in self.variables}
        vals = self._canonical({k: v for k, v in vals.items() if v is not None})
        return self._step_limit(vals)

    @abstractmethod
    def _step_limit(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """The step limit at validated, canonical inputs."""

    def _canonical(self, values: dict[str, Any]) -> dict[str, Any]:
        vals = dict(values)
        if vals.get("b") is None and "a" in vals:
            vals["b"] = vals["a"]
        return vals


# ---------------------------------------------------------------------------------------------------- sgd
class SGDLaw(_RegressionLaw):
    r"""Zou et al.'s bound for constant-step iterate-averaged SGD (SPEC §5.1) [paper, recalled].

    With :math:`k^*=\lfloor\min\{d,(N\gamma)^{1/a}\}\rfloor=\max\{k:\lambda_k\ge1/(N\gamma)\}`, :math:`w_0=0` and
    :math:`\gamma<1/(\alpha\operatorname{tr}H)`,

    .. math::

        \mathbb E\|\bar w_N-w^*\|_H^2\le c_{\rm bias}\,\mathrm{EffBias}+c_{\rm var}\,\mathrm{EffVar},\qquad
        \mathrm{EffBias}=\frac{\|w^*\|^2_{H^{-1}_{0:k^*}}}{\gamma^2N^2}+\|w^*\|^2_{H_{k^*:\infty}},

    .. math::

        \mathrm{EffVar}=\Big(\frac{2\alpha(\|w^*\|^2_{I_{0:k^*}}+N\gamma\|w^*\|^2_{H_{k^*:\infty}})}
        {N\gamma(1-\gamma\alpha\operatorname{tr}H)}+\frac{\sigma^2}{1-\gamma\alpha\operatorname{tr}H}\Big)
        \Big(\frac{k^*}N+N\gamma^2\sum_{i>k^*}\lambda_i^2\Big).

    Zou's constants are :math:`c_{\rm bias}=c_{\rm var}=4`: their 2, doubled for their ½ in the risk. Option
    ``average="tail"`` (the average of :math:`w_{\lfloor T/2\rfloor}..w_{T-1}`) doubles the variance [derived,
    :func:`_tail_average_factor`]; the uniform average's bias bounds the tail average's. Power-law sums:
    :math:`\sum_{i\le k}i^{2a-b}`,
    :math:`\sum_{i>k}i^{-b}`, :math:`\sum_{i\le k}i^{a-b}`, :math:`\sum_{i>k}i^{-2a}` (Hurwitz zeta). Constant sets:
    ``paper`` (Zou's constants, :math:`\alpha=3` for Gaussian data) and ``calibrated``.
    """

    name: ClassVar[str] = "sgd"
    title: ClassVar[str] = "Zou et al.: excess risk of constant-step iterate-averaged SGD (upper bound)"
    provenance: ClassVar[str] = "[paper, recalled] Zou et al. arXiv 2103.12692 Thm 2.1 (theory/sgd.md)"
    variables: ClassVar[tuple[Variable, ...]] = (_N, _GAMMA, _SIGMA2, _A, _BSRC, _D)
    calibrated_terms: ClassVar[tuple[str, ...]] = ("bias", "variance")
    constant_sets: ClassVar[dict[str, ConstantSet]] = {
        "paper": ConstantSet(
            name="paper",
            values={"c_bias": 4.0, "c_variance": 4.0, "alpha": 3.0},
            source="Zou, Wu, Braverman, Gu, Kakade, arXiv 2103.12692 (COLT 2021)",
            table="Theorem 2.1 (recalled); alpha = 3 for Gaussian data (fourth-moment assumption)",
            confidence="medium: recalled, checked against the exact engine",
            provenance="[paper, recalled]",
        )
    }
    constant_descriptions: ClassVar[dict[str, str]] = {
        "c_bias": "multiplier of the bias term (4 = Zou's 2, doubled for the risk without 1/2)",
        "c_variance": "multiplier of the variance term (4 = Zou's 2, doubled for the risk without 1/2)",
        "alpha": "fourth-moment constant: E[xx^T A xx^T] <= alpha tr(HA) H; 3 for Gaussian x",
    }

    def __init__(self, constants: Any = None, **options: Any) -> None:
        options = dict(options)
        average = _average_option(options)
        refuse_options(options, "this full-precision law has only the option average (use sgd-quantized)")
        super().__init__(constants, average=average)

    def _definitions(self) -> dict[sp.Symbol, sp.Expr]:
        return {k_star: _learned(sp.Min(d, (N * gamma) ** (1 / a))), tr_H: PowerHead(a, d)}

    def _terms(self) -> dict[str, sp.Expr]:
        alpha = self.constant_symbol("alpha")
        denom = 1 - gamma * alpha * tr_H
        p = _bias_power(self.options["average"])
        bias = PowerHead(b - p * a, k_star) / (gamma * N) ** p + PowerTail(b, k_star, d)
        head = PowerHead(b - a, k_star) + N * gamma * PowerTail(b, k_star, d)
        var = (2 * alpha * head / (N * gamma * denom) + sigma2 / denom) * (
            k_star / N + N * gamma**2 * PowerTail(2 * a, k_star, d)
        )
        return {
            "bias": self.constant_symbol("c_bias") * bias,
            "variance": _tail_average_factor(self.options["average"]) * self.constant_symbol("c_variance") * var,
        }

    def _step_limit(self, values: dict[str, np.ndarray]) -> np.ndarray:
        return 1.0 / (self.constants["alpha"] * power_head(values["a"], values["d"]))

    def _validate(self, values: dict[str, np.ndarray]) -> None:
        self._check_summable(values)
        _refuse_unstable(values["gamma"], self._step_limit(values), "1/(alpha tr H)",
                         "the condition of Zou et al.'s bound")


# ---------------------------------------------------------------------------------------------------- sgd-quantized
def _quant_options(options: dict[str, Any], *, average: bool = False) -> dict[str, Any]:
    allowed = [*QUANT_TARGETS, "test_inputs", *(["average"] if average else [])]
    unknown = set(options) - set(allowed)
    if unknown:
        k = sorted(unknown)[0]
        raise ParameterError(f"option {k}", options[k], "be one of the options " + ", ".join(allowed))
    out: dict[str, Any] = {t: _scheme(t, options.get(t)) for t in QUANT_TARGETS}
    ti = options.get("test_inputs", "clean")
    if ti not in ("clean", "quantized"):
        raise ParameterError("test_inputs", ti, "be clean or quantized")
    out["test_inputs"] = ti
    if average:
        out["average"] = _average_option(dict(options))
    return out


class QuantizedSGDLaw(_RegressionLaw):
    r"""Quantized averaged SGD (SPEC §5.2): 2510.18259 Theorem 4.1 structure [paper], forms [recon].

    Options ``data``, ``labels``, ``params``, ``acts``, ``grads`` each ``None``, ``"additive"`` or
    ``"multiplicative"`` (``"multiplicative-coord"`` has the same :math:`H^{(q)}` and maps to it), and
    ``test_inputs`` (``"clean"`` or ``"quantized"``).

    Replace :math:`H\to H^{(q)}` (:math:`\lambda_i+\epsilon_d` additive, :math:`(1+\epsilon_d)\lambda_i`
    multiplicative), :math:`w^*\to w_q=(H^{(q)})^{-1}Hw^*`, :math:`N\to T=N/B` in :math:`k^*` and the bias, and
    :math:`\sigma^2\to\sigma^2_{\rm eff}/B`; add the approximation error :math:`\|w_q-w^*\|_H^2` and, for additive
    parameter noise, a term that does not shrink with :math:`B`. Terms:

    * ``approximation`` — multiplicative: :math:`(\frac{\epsilon_d}{1+\epsilon_d})^2\|w^*\|_H^2` (clean) or
      :math:`\frac{\epsilon_d}{1+\epsilon_d}\|w^*\|_H^2` (quantized test) [paper, via SPEC §5.2]; additive:
      :math:`\epsilon_d^2\sum_{i\le k_\epsilon}i^{2a-b}+\sum_{i>k_\epsilon}i^{-b}`,
      :math:`k_\epsilon=\epsilon_d^{-1/a}`, which brackets
      :math:`\sum_i\lambda_i(\frac{\epsilon_d}{\lambda_i+\epsilon_d})^2\mathbb Ew_i^{*2}` within
      :math:`[\tfrac14,1]` [derived] (quantized test:
      :math:`\epsilon_d\sum_{i\le k_\epsilon}i^{a-b}+\sum_{i>k_\epsilon}i^{-b}`, band :math:`[\tfrac12,1]`);
    * ``bias`` — Zou's bias of the quantized problem with :math:`k^*=\max\{k:\lambda^{(q)}_k\ge B/(N\gamma)\}`
      (additive: :math:`k^*=d` once :math:`N\gamma\epsilon_d\ge B`) [recon];
    * ``variance`` — Zou's variance with :math:`T=N/B` steps and effective noise :math:`\sigma^2_{\rm eff}` [recon];
    * ``parameter_noise`` — additive :math:`Q_p`:
      :math:`\epsilon_p[B\operatorname{tr}H^{(q)}_{0:k^*}/N+(N\gamma^2/B)\sum_{i>k^*}(\lambda^{(q)}_i)^3]` [recon].

    :math:`\sigma^2_{\rm eff}` [recon, SPEC §5.2]: :math:`\sigma^2` plus the noise each quantizer adds at
    :math:`w_q` — additive labels, activations and output gradients :math:`\epsilon_l+\epsilon_a+\epsilon_o`;
    additive parameters :math:`\alpha\epsilon_p\operatorname{tr}H^{(q)}`; multiplicative labels
    :math:`\epsilon_l(\|w^*\|_H^2+\sigma^2)`; multiplicative parameters and activations
    :math:`(\epsilon_p+\epsilon_a+\epsilon_a\epsilon_p)\|w_q\|^2_{H^{(q)}}`; data quantization's residual
    :math:`\|w^*\|_H^2-\|w_q\|^2_{H^{(q)}}`; multiplicative output gradients multiply the whole by
    :math:`1+\epsilon_o`.
    """

    name: ClassVar[str] = "sgd-quantized"
    title: ClassVar[str] = "2510.18259: quantized averaged SGD (structure [paper], forms [recon], calibrated)"
    provenance: ClassVar[str] = "[paper] 2510.18259 Thm 4.1 structure; [recon] forms (theory/sgd-quantized.md)"
    variables: ClassVar[tuple[Variable, ...]] = (
        _N, _B, _GAMMA, _SIGMA2, _A, _BSRC, _D, *(_EPS[t] for t in QUANT_TARGETS)
    )
    calibrated_terms: ClassVar[tuple[str, ...]] = ("approximation", "bias", "variance", "parameter_noise", "cross")
    constant_sets: ClassVar[dict[str, ConstantSet]] = {}
    constant_descriptions: ClassVar[dict[str, str]] = {
        "c_approximation": "calibration multiplier of the approximation term",
        "c_bias": "calibration multiplier of the bias term",
        "c_variance": "calibration multiplier of the variance term",
        "c_parameter_noise": "calibration multiplier of the additive parameter-noise term",
        "c_cross": "calibration multiplier of the Cauchy-Schwarz bound of the cross term (clean test, quantized data)",
        "alpha": "fourth-moment constant (3 for Gaussian data)",
    }

    def __init__(self, constants: Any = None, **options: Any) -> None:
        super().__init__(constants, **_quant_options(options, average=True))

    # -- pieces
    def _data(self) -> str | None:
        return self.options["data"]

    def _spectrum(self) -> _QuantizedSpectrum:
        return _QuantizedSpectrum(self._data(), d)

    def _definitions(self) -> dict[sp.Symbol, sp.Expr]:
        data = self._data()
        trq = PowerHead(a, d) + (eps_d * d if data == "additive" else 0)
        if data == "multiplicative":
            trq = (1 + eps_d) * PowerHead(a, d)
        defs: dict[sp.Symbol, sp.Expr] = {}
        if data == "additive":
            defs[k_eps] = sp.Min(d, eps_d ** (-1 / a))
        defs[k_star] = _learned(self._spectrum().cutoff(N * gamma / B))
        defs[tr_Hq] = trq
        defs[sigma2_eff] = self._sigma2_eff()
        return defs

    def _signal(self) -> sp.Expr:
        return PowerHead(b, d)  # ||w*||_H^2 = sum_i i^-b

    def _wq_norm_q(self) -> sp.Expr:
        """||w_q||^2_{H^(q)} (upper bound for additive: sum lambda^2 s/(lambda+eps) <= ||w*||_H^2)."""
        if self._data() == "multiplicative":
            return self._signal() / (1 + eps_d)
        return self._signal()

    def _sigma2_eff(self) -> sp.Expr:
        alpha = self.constant_symbol("alpha")
        o = self.options
        s2: sp.Expr = sigma2 + self._spectrum().residual()
        if o["labels"] == "additive":
            s2 += eps_l
        elif o["labels"] == "multiplicative":
            s2 += eps_l * (self._signal() + sigma2)
        if o["acts"] == "additive":
            s2 += eps_a
        if o["grads"] == "additive":
            s2 += eps_o
        if o["params"] == "additive":
            s2 += alpha * eps_p * tr_Hq
        mult = (eps_p if o["params"] == "multiplicative" else 0) + (eps_a if o["acts"] == "multiplicative" else 0)
        if o["params"] == "multiplicative" and o["acts"] == "multiplicative":
            mult += eps_a * eps_p
        # one relative factor shared by the batch: this noise does not shrink with B (SPEC §2, §4) [derived]
        s2 += B * mult * self._wq_norm_q()
        if o["grads"] == "multiplicative":
            s2 *= 1 + eps_o
        return s2

    def _terms(self) -> dict[str, sp.Expr]:
        c = self.constant_symbol
        alpha = c("alpha")
        data = self._data()
        q = self._spectrum()
        approx = q.price(self.options["test_inputs"] == "clean")
        # Zou's bias and variance of the quantized problem (w_q, H^(q), T = N/B steps)
        T = N / B
        p = _bias_power(self.options["average"])
        bias = q.head(p + 1) / (gamma * T) ** p + q.tail_signal()
        # Zou's 1 - gamma alpha tr H^(q)/B, and the mean-square margin 1 - gamma/gamma_ms, which binds for large
        # batches (the noise amplification of the exact recursion is at most 1/(1 - gamma/gamma_ms)) [derived]
        top = 1 + eps_d if self._data() else sp.Integer(1)
        gamma_ms = 2 / (top * (1 + 1 / B) + tr_Hq / B)
        denom = sp.Min(1 - gamma * alpha * tr_Hq / B, 1 - gamma / gamma_ms)
        head = q.head(2) + T * gamma * q.tail_signal()
        avg = _tail_average_factor(self.options["average"])
        variance = avg * (2 * alpha / B * head / (T * gamma * denom) + sigma2_eff / (B * denom)) * (
            k_star / T + T * gamma**2 * q.tail(2)
        )
        terms = {
            "approximation": c("c_approximation") * approx,
            "bias": c("c_bias") * bias,
            "variance": c("c_variance") * variance,
        }
        if self.options["test_inputs"] == "clean" and data:
            terms["cross"] = c("c_cross") * _cross_bound(approx, bias)
        if self.options["params"] == "additive":
            if data == "multiplicative":
                head_tr = (1 + eps_d) * PowerHead(a, k_star)
            elif data == "additive":
                head_tr = PowerHead(a, k_star) + eps_d * k_star
            else:
                head_tr = PowerHead(a, k_star)
            terms["parameter_noise"] = c("c_parameter_noise") * avg * eps_p * (
                B * head_tr / N + N * gamma**2 / B * q.tail(3)
            )
        return terms

    def _validate(self, values: dict[str, np.ndarray]) -> None:
        self._check_summable(values)
        if self._data() == "additive" and np.any(np.isinf(values["d"]) & (values["eps_d"] > 0)):
            raise ParameterError("d", math.inf, "be finite with additive data quantization (tr H^(q) = d eps_d)")
        _refuse_unstable(values["gamma"], self._step_limit(values),
                         "min(B/(alpha tr H^(q)), 2/(lambda_1^(q) (1+1/B) + tr H^(q)/B))",
                         "the condition of the bound and mean-square stability, which binds for large batches")

    def _step_limit(self, values: dict[str, np.ndarray]) -> np.ndarray:
        tr, top = quantized_trace(power_head(values["a"], values["d"]), values["d"], self._data(),
                                  values.get("eps_d", 0.0))
        B = values["B"]
        return np.minimum(B / (self.constants["alpha"] * tr), mean_square_step_limit(top, tr, B))


# ---------------------------------------------------------------------------------------------------- sketched
def effective_samples(n: sp.Expr) -> sp.Expr:
    r""":math:`N_{\rm eff}=N/\log_2N`: the length of the first constant-step phase of the geometric schedule."""
    return n / sp.log(n, 2)


class SketchedLaw(_RegressionLaw):
    r"""Lin et al.'s sketched-model law with a source condition (SPEC §5.3) [paper for orders; recalled].

    Geometric step decay (:math:`N_{\rm eff}=N/\log_2N` samples per phase), last iterate,
    :math:`\lambda_i=i^{-a}` up to :math:`d` (default :math:`\infty`), :math:`\lambda_i\mathbb Ew_i^{*2}=i^{-b}`, batch
    :math:`B` (steps :math:`N/B`; the batch version of the variance as in Chen & Zhou, SPEC notes). With
    :math:`k^*=\min\{M,(N_{\rm eff}\gamma/B)^{1/a}\}` (sums run to :math:`d`):

    .. math::

        \mathbb E\mathcal R-\sigma^2\eqsim
        \underbrace{\sum_{i>M}i^{-b}}_{\eqsim M^{1-b}}
        +\underbrace{\sum_{i>k^*}i^{-b}}_{\eqsim\max\{M,(N_{\rm eff}\gamma)^{1/a}\}^{\ldots}}
        +\underbrace{(\sigma^2+\mathrm{Approx})\frac{k^*}{N_{\rm eff}}}_{\rm variance},

    i.e. :math:`\Theta(M^{1-b})+\Theta((N_{\rm eff}\gamma)^{(1-b)/a})`. Lin et al. state a two-sided
    :math:`\Theta`; the calibrated constants give an upper bound, and the calibration reports the lower
    constant of the band. The variance uses :math:`\sigma^2+\mathrm{Approx}`, the noise the sketched learner
    sees (SPEC §1).
    """

    name: ClassVar[str] = "sketched"
    title: ClassVar[str] = "Lin et al.: sketched linear regression, M^(1-b) + (N_eff gamma)^((1-b)/a) (Theta)"
    provenance: ClassVar[str] = ("[paper] Lin et al. arXiv 2406.08466 for the orders; recalled details "
                                 "(theory/sketched.md)")
    variables: ClassVar[tuple[Variable, ...]] = (_M, _N, _B, _GAMMA, _SIGMA2, _A, _BSRC, _D)
    calibrated_terms: ClassVar[tuple[str, ...]] = ("approximation", "bias", "variance")
    uses_alpha: ClassVar[bool] = False
    constant_sets: ClassVar[dict[str, ConstantSet]] = {}
    constant_descriptions: ClassVar[dict[str, str]] = {
        "c_approximation": "calibration multiplier of the approximation term",
        "c_bias": "calibration multiplier of the bias term",
        "c_variance": "calibration multiplier of the variance term",
    }


    def __init__(self, constants: Any = None, **options: Any) -> None:
        refuse_options(options, "this full-precision law has no options (use sketched-quantized)")
        super().__init__(constants)

    def _definitions(self) -> dict[sp.Symbol, sp.Expr]:
        return {N_eff: effective_samples(N), k_star: _learned(sp.Min(M, _decay_horizon() ** (1 / a)))}

    def _terms(self) -> dict[str, sp.Expr]:
        c = self.constant_symbol
        approx = sketch_approximation_form(M)
        horizon = _decay_horizon()
        bias = PowerHead(b - _BIAS_POWER * a, k_star) / horizon**_BIAS_POWER + sp.Max(PowerTail(b, k_star, M),
                                                                                      sketch_leak(M))
        count = k_star + horizon**2 * PowerTail(2 * a, k_star, M)
        return {
            "approximation": c("c_approximation") * approx,
            "bias": c("c_bias") * bias,
            "variance": c("c_variance") * (sigma2 + approx) * count / N_eff,
        }

    def _validate(self, values: dict[str, np.ndarray]) -> None:
        self._check_summable(values)
        if np.any(values["N"] < 2):
            raise ParameterError("N", float(np.min(values["N"])), "be >= 2 (N_eff = N/log2 N)")
        _refuse_sketch_size(values)
        _refuse_unstable_sketched(values, None)

    def _step_limit(self, values: dict[str, np.ndarray]) -> np.ndarray:
        return sketched_step_limit(values, None)


class QuantizedSketchedLaw(_RegressionLaw):
    r"""Precision law for the sketched model (SPEC §5.4): 2602.19241 claims [paper], forms [recon].

    .. math::

        \mathbb E\mathcal R-\sigma^2\lesssim\sum_{i>M_{\rm eff}}i^{-b}+\sum_{i>k^*}i^{-b}
        +\sigma_q^2\frac{k^*}{N^{(q)}_{\rm eff}}+\mathcal E_{\rm add},\qquad
        k^*=\min\{M_{\rm eff},(N^{(q)}_{\rm eff}\gamma)^{1/a}\}.

    * :math:`M_{\rm eff}=M` (none, multiplicative data) or
      :math:`\int_0^M\frac{dx}{1+\epsilon_dx^a}=M\,{}_2F_1(1,\tfrac1a;1+\tfrac1a;-\epsilon_dM^a)` (additive), the
      integral form of :math:`\sum_{i\le M}\mu_i/(\mu_i+\epsilon_d)` (SPEC §5.5) [derived], which saturates at
      :math:`\frac{\pi}{a\sin(\pi/a)}\epsilon_d^{-1/a}`.
    * :math:`N^{(q)}_{\rm eff}=N_{\rm eff}/\big((1+M\epsilon_d/\operatorname{tr}H)
      \prod_{x\in\{a,o,p\},\ \text{mult.}}(1+\epsilon_x)\big)`, with the data factor for additive data only
      [recon, SPEC §5.4].
    * :math:`\sigma_q^2=\sigma^2+\mathrm{Approx}+\epsilon_l+\epsilon_a+\epsilon_o
      +\alpha\epsilon_p\operatorname{tr}H^{(q)}` (additive parts) :math:`+(\epsilon_p+\epsilon_a)\|v\|^2`
      (multiplicative parts) [recon].
    * :math:`\mathcal E_{\rm add}`: the infinite-data price of data quantization at this model size
      (SPEC §5.5): multiplicative :math:`(\frac{\epsilon_d}{1+\epsilon_d})^2\sum_{i\le M}i^{-b}`; additive
      :math:`\epsilon_d^2\sum_{i\le\min(M,k_\epsilon)}i^{2a-b}+\sum_{k_\epsilon<i\le M}i^{-b}`
      (band :math:`[\tfrac14,1]`) [derived].
    """

    name: ClassVar[str] = "sketched-quantized"
    title: ClassVar[str] = "2602.19241: precision law of the sketched model (claims [paper], forms [recon])"
    provenance: ClassVar[str] = "[paper] 2602.19241 claims; [recon] forms (theory/sketched-quantized.md)"
    variables: ClassVar[tuple[Variable, ...]] = (
        _M, _N, _B, _GAMMA, _SIGMA2, _A, _BSRC, _D, *(_EPS[t] for t in QUANT_TARGETS)
    )
    calibrated_terms: ClassVar[tuple[str, ...]] = ("approximation", "bias", "variance", "additive_error", "cross")
    constant_sets: ClassVar[dict[str, ConstantSet]] = {}
    constant_descriptions: ClassVar[dict[str, str]] = {
        "c_approximation": "calibration multiplier of the approximation term",
        "c_bias": "calibration multiplier of the bias term",
        "c_variance": "calibration multiplier of the variance term",
        "c_additive_error": "calibration multiplier of the additive error",
        "c_cross": "calibration multiplier of the Cauchy-Schwarz bound of the cross term (clean test, quantized data)",
        "alpha": "fourth-moment constant (3 for Gaussian data)",
    }

    def __init__(self, constants: Any = None, **options: Any) -> None:
        super().__init__(constants, **_quant_options(options))


    def _spectrum(self) -> _QuantizedSpectrum:
        return _QuantizedSpectrum(self.options["data"], M, sketched=True)

    def _definitions(self) -> dict[sp.Symbol, sp.Expr]:
        defs: dict[sp.Symbol, sp.Expr] = {N_eff: effective_samples(N)}
        if self.options["data"] == "additive":
            defs[k_eps] = sp.Min(M, eps_d ** (-1 / a))
        defs[k_star] = _learned(self._spectrum().cutoff(_decay_horizon()))
        return defs

    def _terms(self) -> dict[str, sp.Expr]:
        c = self.constant_symbol
        o = self.options
        alpha = c("alpha")
        q = self._spectrum()
        clean = o["test_inputs"] == "clean"
        approx = sketch_approximation_form(M)
        signal = PowerHead(b, M)
        # the noise the quantized learner sees at w_q [recon]: label noise, the sketch's approximation error,
        # the data-quantization residual, and each quantizer's own noise
        s2: sp.Expr = sigma2 + approx + q.residual()
        s2 += sum((e for t, e in (("labels", eps_l), ("acts", eps_a), ("grads", eps_o)) if o[t] == "additive"),
                  sp.Integer(0))
        data = o["data"]
        trq = PowerHead(a, d) * (1 + eps_d) if data == "multiplicative" else \
            PowerHead(a, d) + (M * eps_d if data else 0)
        if o["params"] == "additive":
            s2 += alpha * eps_p * trq
        s2 += B * sum((e for t, e in (("params", eps_p), ("acts", eps_a)) if o[t] == "multiplicative"),
                      sp.Integer(0)) * signal  # shared by the batch: does not shrink with B
        if o["labels"] == "multiplicative":
            s2 += eps_l * (PowerHead(b, d) + sigma2)
        if o["grads"] == "multiplicative":
            s2 *= 1 + eps_o
        horizon = _decay_horizon()
        bias = q.head(_BIAS_POWER + 1) / horizon**_BIAS_POWER + q.tail_signal()
        count = q.learned_weight(clean) + horizon**2 * q.tail(2)
        terms = {
            "approximation": c("c_approximation") * approx,
            "bias": c("c_bias") * bias,
            "variance": c("c_variance") * s2 * count / N_eff,
            "additive_error": c("c_additive_error") * q.price(clean),
        }
        if clean and data:
            terms["cross"] = c("c_cross") * _cross_bound(q.price(clean), bias)
        return terms

    def _validate(self, values: dict[str, np.ndarray]) -> None:
        self._check_summable(values)
        if np.any(values["N"] < 2):
            raise ParameterError("N", float(np.min(values["N"])), "be >= 2 (N_eff = N/log2 N)")
        _refuse_sketch_size(values)
        _refuse_unstable_sketched(values, self.options["data"])

    def _step_limit(self, values: dict[str, np.ndarray]) -> np.ndarray:
        return sketched_step_limit(values, self.options["data"])
