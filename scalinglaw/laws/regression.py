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
"""

from __future__ import annotations

import json
import math
import os
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
from .special import Hyp2F1, PowerHead, PowerTail, power_head

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

    def _canonical(self, values: dict[str, Any]) -> dict[str, Any]:
        vals = dict(values)
        if vals.get("b") is None and "a" in vals:
            vals["b"] = vals["a"]
        return vals


# ---------------------------------------------------------------------------------------------------- sgd
class SGDLaw(_RegressionLaw):
    r"""Zou et al.'s bound for constant-step iterate-averaged SGD (SPEC §5.1) [paper, recalled].

    With :math:`k^*=\min\{d,(N\gamma)^{1/a}\}` (the real relaxation of :math:`\max\{k:\lambda_k\ge1/(N\gamma)\}`),
    :math:`w_0=0` and :math:`\gamma<1/(\alpha\operatorname{tr}H)`,

    .. math::

        \mathbb E\|\bar w_N-w^*\|_H^2\le 4\,\mathrm{EffBias}+4\,\mathrm{EffVar},\qquad
        \mathrm{EffBias}=\frac{\|w^*\|^2_{H^{-1}_{0:k^*}}}{\gamma^2N^2}+\|w^*\|^2_{H_{k^*:\infty}},

    .. math::

        \mathrm{EffVar}=\Big(\frac{2\alpha(\|w^*\|^2_{I_{0:k^*}}+N\gamma\|w^*\|^2_{H_{k^*:\infty}})}
        {N\gamma(1-\gamma\alpha\operatorname{tr}H)}+\frac{\sigma^2}{1-\gamma\alpha\operatorname{tr}H}\Big)
        \Big(\frac{k^*}N+N\gamma^2\sum_{i>k^*}\lambda_i^2\Big).

    The factor 4 is Zou's 2 times 2 for their ½ in the risk. Power-law sums: :math:`\sum_{i\le k}i^{2a-b}`,
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
            values={"c_bias": 1.0, "c_variance": 1.0, "alpha": 3.0},
            source="Zou, Wu, Braverman, Gu, Kakade, arXiv 2103.12692 (COLT 2021)",
            table="Theorem 2.1 (recalled); alpha = 3 for Gaussian data (fourth-moment assumption)",
            confidence="medium: recalled, checked against the exact engine",
            provenance="[paper, recalled]",
        )
    }
    constant_descriptions: ClassVar[dict[str, str]] = {
        "c_bias": "multiplier of the bias term (1 = Zou's constant)",
        "c_variance": "multiplier of the variance term (1 = Zou's constant)",
        "alpha": "fourth-moment constant: E[xx^T A xx^T] <= alpha tr(HA) H; 3 for Gaussian x",
    }

    def __init__(self, constants: Any = None, **options: Any) -> None:
        refuse_options(options, "this full-precision law has no options (use sgd-quantized)")
        super().__init__(constants)

    def _definitions(self) -> dict[sp.Symbol, sp.Expr]:
        return {k_star: sp.Min(d, (N * gamma) ** (1 / a)), tr_H: PowerHead(a, d)}

    def _terms(self) -> dict[str, sp.Expr]:
        alpha = self.constant_symbol("alpha")
        denom = 1 - gamma * alpha * tr_H
        bias = PowerHead(b - 2 * a, k_star) / (gamma**2 * N**2) + PowerTail(b, k_star, d)
        head = PowerHead(b - a, k_star) + N * gamma * PowerTail(b, k_star, d)
        var = (2 * alpha * head / (N * gamma * denom) + sigma2 / denom) * (
            k_star / N + N * gamma**2 * PowerTail(2 * a, k_star, d)
        )
        return {
            "bias": 4 * self.constant_symbol("c_bias") * bias,
            "variance": 4 * self.constant_symbol("c_variance") * var,
        }

    def _validate(self, values: dict[str, np.ndarray]) -> None:
        self._check_summable(values)
        tr = power_head(values["a"], values["d"])
        limit = 1.0 / (self.constants["alpha"] * tr)
        bad = ~(values["gamma"] < limit)
        if np.any(bad):
            raise ParameterError("gamma", float(np.broadcast_to(values["gamma"], bad.shape)[bad].ravel()[0]),
                                 f"be < 1/(alpha tr H) = {float(np.min(limit)):.6g} (the condition of Zou et "
                                 "al.'s bound)")


# ---------------------------------------------------------------------------------------------------- sgd-quantized
def _quant_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - {*QUANT_TARGETS, "test_inputs"}
    if unknown:
        k = sorted(unknown)[0]
        raise ParameterError(f"option {k}", options[k], "be one of the options " + ", ".join(
            [*QUANT_TARGETS, "test_inputs"]))
    out: dict[str, Any] = {t: _scheme(t, options.get(t)) for t in QUANT_TARGETS}
    ti = options.get("test_inputs", "clean")
    if ti not in ("clean", "quantized"):
        raise ParameterError("test_inputs", ti, "be clean or quantized")
    out["test_inputs"] = ti
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
    calibrated_terms: ClassVar[tuple[str, ...]] = ("approximation", "bias", "variance", "parameter_noise")
    constant_sets: ClassVar[dict[str, ConstantSet]] = {}
    constant_descriptions: ClassVar[dict[str, str]] = {
        "c_approximation": "calibration multiplier of the approximation term",
        "c_bias": "calibration multiplier of the bias term",
        "c_variance": "calibration multiplier of the variance term",
        "c_parameter_noise": "calibration multiplier of the additive parameter-noise term",
        "alpha": "fourth-moment constant (3 for Gaussian data)",
    }

    def __init__(self, constants: Any = None, **options: Any) -> None:
        super().__init__(constants, **_quant_options(options))


    # -- pieces
    def _data(self) -> str | None:
        return self.options["data"]

    def _definitions(self) -> dict[sp.Symbol, sp.Expr]:
        tau = B / (N * gamma)
        if self._data() == "additive":
            # every direction is learned once lambda_d + eps_d >= B/(N gamma); an explicit branch, because
            # (d^-a)^(-1/a) rounds below d and leaves a spurious tail that N gamma^2 then amplifies
            k = sp.Piecewise((d, tau - eps_d <= d ** (-a)), ((tau - eps_d) ** (-1 / a), True))
            trq = PowerHead(a, d) + eps_d * d
        elif self._data() == "multiplicative":
            k = sp.Min(d, ((1 + eps_d) / tau) ** (1 / a))
            trq = (1 + eps_d) * PowerHead(a, d)
        else:
            k = sp.Min(d, (1 / tau) ** (1 / a))
            trq = PowerHead(a, d)
        defs: dict[sp.Symbol, sp.Expr] = {k_star: k, tr_Hq: trq}
        if self._data() == "additive":
            defs[k_eps] = sp.Min(d, eps_d ** (-1 / a))
        defs[sigma2_eff] = self._sigma2_eff()
        return defs

    def _signal(self) -> sp.Expr:
        return PowerHead(b, d)  # ||w*||_H^2 = sum_i i^-b

    def _wq_norm_q(self) -> sp.Expr:
        """||w_q||^2_{H^(q)} (upper bound for additive: sum lambda^2 s/(lambda+eps) <= ||w*||_H^2)."""
        if self._data() == "multiplicative":
            return self._signal() / (1 + eps_d)
        return self._signal()

    def _data_residual(self) -> sp.Expr:
        """||w*||_H^2 - ||w_q||^2_{H^(q)}: the data-quantization part of the residual at w_q."""
        if self._data() == "multiplicative":
            return eps_d / (1 + eps_d) * self._signal()
        if self._data() == "additive":
            return eps_d * PowerHead(b - a, k_eps) + PowerTail(b, k_eps, d)
        return sp.Integer(0)

    def _sigma2_eff(self) -> sp.Expr:
        alpha = self.constant_symbol("alpha")
        o = self.options
        s2: sp.Expr = sigma2 + self._data_residual()
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
        s2 += mult * self._wq_norm_q()
        if o["grads"] == "multiplicative":
            s2 *= 1 + eps_o
        return s2

    def _tail_q(self, power: int) -> sp.Expr:
        """sum_{k* < i <= d} (lambda^(q)_i)^power."""
        if self._data() == "multiplicative":
            return (1 + eps_d) ** power * PowerTail(power * a, k_star, d)
        if self._data() == "additive":
            return sum(
                (sp.binomial(power, j) * eps_d ** (power - j) * (PowerTail(j * a, k_star, d) if j else d - k_star))
                for j in range(power + 1)
            )
        return PowerTail(power * a, k_star, d)

    def _head_q(self, power: int) -> sp.Expr:
        r""":math:`\sum_{i\le k^*}\lambda_i^2s_i/(\lambda^{(q)}_i)^{power}`: ``power=3`` gives
        :math:`\sum w_{q,i}^2/\lambda^{(q)}_i` (bias), ``power=2`` gives :math:`\sum w_{q,i}^2` (variance).

        Multiplicative data: exact, :math:`(1+\epsilon_d)^{-power}` times the clean sum. Additive: split at
        :math:`k_\epsilon=\epsilon_d^{-1/a}` where :math:`\lambda_i=\epsilon_d`; each piece is within a factor
        :math:`2^{power}` of the exact sum [derived].
        """
        data = self._data()
        clean = PowerHead(b - (power - 1) * a, k_star)  # sum_{i<=k} lambda^{2-power} s
        if data == "multiplicative":
            return (1 + eps_d) ** (-power) * clean
        if data == "additive":
            split = sp.Min(k_star, k_eps)
            return PowerHead(b - (power - 1) * a, split) + eps_d ** (-power) * PowerTail(a + b, split, k_star)
        return clean

    def _tail_signal_q(self) -> sp.Expr:
        r""":math:`\sum_{i>k^*}\lambda^{(q)}_iw_{q,i}^2=\sum_{i>k^*}\lambda_i^2s_i/\lambda^{(q)}_i` (split as in
        :meth:`_head_q`; within a factor 2 for additive data [derived])."""
        data = self._data()
        if data == "multiplicative":
            return PowerTail(b, k_star, d) / (1 + eps_d)
        if data == "additive":
            split = sp.Max(k_star, k_eps)
            return PowerTail(b, k_star, split) + PowerTail(a + b, split, d) / eps_d
        return PowerTail(b, k_star, d)

    def _terms(self) -> dict[str, sp.Expr]:
        c = self.constant_symbol
        alpha = c("alpha")
        data = self._data()
        clean = self.options["test_inputs"] == "clean"
        # approximation
        if data == "multiplicative":
            r = eps_d / (1 + eps_d)
            approx = (r**2 if clean else r) * self._signal()
        elif data == "additive":
            approx = (eps_d**2 * PowerHead(b - 2 * a, k_eps) if clean else eps_d * PowerHead(b - a, k_eps)) + \
                PowerTail(b, k_eps, d)
        else:
            approx = sp.Integer(0)
        # Zou's bias and variance of the quantized problem (w_q, H^(q), T = N/B steps)
        T = N / B
        bias = self._head_q(3) / (gamma * T) ** 2 + self._tail_signal_q()
        denom = 1 - gamma * alpha * tr_Hq / B
        head = self._head_q(2) + T * gamma * self._tail_signal_q()
        variance = (2 * alpha / B * head / (T * gamma * denom) + sigma2_eff / (B * denom)) * (
            k_star / T + T * gamma**2 * self._tail_q(2)
        )
        terms = {
            "approximation": c("c_approximation") * approx,
            "bias": c("c_bias") * bias,
            "variance": c("c_variance") * variance,
        }
        if self.options["params"] == "additive":
            if data == "multiplicative":
                head_tr = (1 + eps_d) * PowerHead(a, k_star)
            elif data == "additive":
                head_tr = PowerHead(a, k_star) + eps_d * k_star
            else:
                head_tr = PowerHead(a, k_star)
            terms["parameter_noise"] = c("c_parameter_noise") * eps_p * (
                B * head_tr / N + N * gamma**2 / B * self._tail_q(3)
            )
        return terms

    def _validate(self, values: dict[str, np.ndarray]) -> None:
        self._check_summable(values)
        if self._data() == "additive" and np.any(np.isinf(values["d"]) & (values["eps_d"] > 0)):
            raise ParameterError("d", math.inf, "be finite with additive data quantization (tr H^(q) = d eps_d)")
        tr, top = quantized_trace(power_head(values["a"], values["d"]), values["d"], self._data(),
                                  values.get("eps_d", 0.0))
        B = values["B"]
        limit = np.minimum(B / (self.constants["alpha"] * tr), mean_square_step_limit(top, tr, B))
        _refuse_unstable(values["gamma"], limit, "min(B/(alpha tr H^(q)), 2/(lambda_1^(q) (1+1/B) + tr H^(q)/B))",
                         "the condition of the bound and mean-square stability, which binds for large batches")


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
        return {N_eff: effective_samples(N), k_star: sp.Min(M, (N_eff * gamma / B) ** (1 / a))}

    def _terms(self) -> dict[str, sp.Expr]:
        c = self.constant_symbol
        approx = PowerTail(b, M, d)
        return {
            "approximation": c("c_approximation") * approx,
            "bias": c("c_bias") * PowerTail(b, k_star, d),
            "variance": c("c_variance") * (sigma2 + approx) * k_star / N_eff,
        }

    def _validate(self, values: dict[str, np.ndarray]) -> None:
        self._check_summable(values)
        if np.any(values["N"] < 2):
            raise ParameterError("N", float(np.min(values["N"])), "be >= 2 (N_eff = N/log2 N)")
        _refuse_unstable_sketched(values, None)


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
    calibrated_terms: ClassVar[tuple[str, ...]] = ("approximation", "bias", "variance", "additive_error")
    constant_sets: ClassVar[dict[str, ConstantSet]] = {}
    constant_descriptions: ClassVar[dict[str, str]] = {
        "c_approximation": "calibration multiplier of the approximation term",
        "c_bias": "calibration multiplier of the bias term",
        "c_variance": "calibration multiplier of the variance term",
        "c_additive_error": "calibration multiplier of the additive error",
        "alpha": "fourth-moment constant (3 for Gaussian data)",
    }

    def __init__(self, constants: Any = None, **options: Any) -> None:
        super().__init__(constants, **_quant_options(options))


    def _definitions(self) -> dict[sp.Symbol, sp.Expr]:
        o = self.options
        factor: sp.Expr = sp.Integer(1)
        if o["data"] == "additive":
            factor *= 1 + M * eps_d / tr_H
        for t, e in (("acts", eps_a), ("grads", eps_o), ("params", eps_p)):
            if o[t] == "multiplicative":
                factor *= 1 + e
        m_eff = M * Hyp2F1(1, 1 / a, 1 + 1 / a, -eps_d * M**a) if o["data"] == "additive" else M
        defs: dict[sp.Symbol, sp.Expr] = {
            tr_H: PowerHead(a, d),
            N_eff: effective_samples(N),
            M_eff: m_eff,
            N_effq: N_eff / factor,
            k_star: sp.Min(M_eff, (N_effq * gamma / B) ** (1 / a)),
        }
        if o["data"] == "additive":
            defs[k_eps] = sp.Min(M, eps_d ** (-1 / a))
        return defs

    def _terms(self) -> dict[str, sp.Expr]:
        c = self.constant_symbol
        o = self.options
        alpha = c("alpha")
        approx = PowerTail(b, M_eff, d)
        signal = PowerHead(b, M)
        s2: sp.Expr = sigma2 + PowerTail(b, M, d)
        s2 += sum((e for t, e in (("labels", eps_l), ("acts", eps_a), ("grads", eps_o)) if o[t] == "additive"),
                  sp.Integer(0))
        trq = tr_H * (1 + eps_d) if o["data"] == "multiplicative" else tr_H + (M * eps_d if o["data"] else 0)
        if o["params"] == "additive":
            s2 += alpha * eps_p * trq
        s2 += sum((e for t, e in (("params", eps_p), ("acts", eps_a)) if o[t] == "multiplicative"),
                  sp.Integer(0)) * signal
        if o["labels"] == "multiplicative":
            s2 += eps_l * (PowerHead(b, d) + sigma2)
        clean = o["test_inputs"] == "clean"
        if o["data"] == "multiplicative":
            r = eps_d / (1 + eps_d)
            add_err = (r**2 if clean else r) * signal
        elif o["data"] == "additive":
            head = eps_d**2 * PowerHead(b - 2 * a, k_eps) if clean else eps_d * PowerHead(b - a, k_eps)
            add_err = head + PowerTail(b, k_eps, M)
        else:
            add_err = sp.Integer(0)
        return {
            "approximation": c("c_approximation") * approx,
            "bias": c("c_bias") * PowerTail(b, k_star, d),
            "variance": c("c_variance") * s2 * k_star / N_effq,
            "additive_error": c("c_additive_error") * add_err,
        }

    def _validate(self, values: dict[str, np.ndarray]) -> None:
        self._check_summable(values)
        if np.any(values["N"] < 2):
            raise ParameterError("N", float(np.min(values["N"])), "be >= 2 (N_eff = N/log2 N)")
        _refuse_unstable_sketched(values, self.options["data"])
