r"""Kumar et al., *Scaling Laws for Precision* (ICLR 2025, arXiv 2411.04330): the unified precision law.

The law (Eq. 11, with Eq. 4 for :math:`N_{\rm eff}` and Eq. 9 for :math:`\delta_{\rm PTQ}`) [SRC]:

.. math::

    L(N, D, P_w, P_a, P_{kv}, P_{\rm post}) = A\,N_{\rm eff}^{-\alpha} + B\,D^{-\beta} + E
        + \delta_{\rm PTQ}(N, D, P_w, P_a, P_{kv}, P_{\rm post}),

    N_{\rm eff} = N\prod_{x\in\{w,a,kv\}}\bigl(1 - e^{-P_x/\gamma_x + n_x}\bigr),

    \delta_{\rm PTQ} = C_T\,e^{-P_{\rm post}/\gamma_{\rm post} + b}\,\frac{D^{\gamma_D}}{N_{\rm eff}^{\gamma_N}}
        \prod_{x}\bigl[1 - e^{-C_x(P_x - P_{\rm post})}\bigr].

Conventions (empirical-laws.md §2-§5; theory/kumar.md):

* **Bias convention** [RECON, medium-high confidence]: App. K says every exponent fit :math:`e^{x/\gamma_x}` is
  really computed with an offset, :math:`e^{x/\gamma_x + n}`. ``bias=True`` (the default) uses the biases
  :math:`n_w, n_a, n_{kv}` of Table 2 and the PTQ bias :math:`b`; it reproduces the paper's 7-8-bit
  compute-optimal precision. ``bias=False`` drops all four (the printed main-text form).
* **Robustification** (Eq. 9): the constants :math:`C_w, C_a, C_{kv}` are not published. By default
  :math:`C_x = 1/\gamma_x` (``robustness="noise"``) [RECON]: Eq. 10 writes :math:`\delta_{\rm PTQ}\propto
  \sigma^2_{\rm PTQ}-\sigma^2_{\rm tr}` with training noise :math:`\sigma^2_{\rm tr}=e^{-P_x/\gamma_x}`; putting the
  PTQ noise on the same bit scale gives the factor :math:`1-e^{-(P_x-P_{\rm post})/\gamma_x}`. With it the law
  reproduces the paper's finding that lower-precision training makes PTQ *less* harmful at every training
  precision of the paper above ``P_post`` (theory/kumar.md §2). ``robustness="unit"`` (:math:`C_x=1`, the
  paper's illustration) reverses that for large gaps; ``robustness="none"`` drops the factors (Eq. 2, the
  conservative upper bound). ``C_w=...`` etc. set a constant explicitly.
* **High precision**: BF16/FP32 training is :math:`P=\infty` (pass ``math.inf``/``np.inf``), so its factor is
  exactly 1 and :math:`N_{\rm eff}=N` (App. M uses BF16 as the infinite-precision reference). Omitted precisions
  default to :math:`\infty`; omitted ``P_post`` means no post-training quantization (:math:`\delta_{\rm PTQ}=0`).
* **Domain** (the fitted domain, App. K and §3): :math:`P_w \ge 3`; :math:`P_a > 3` and :math:`P_{kv} > 3`
  (runs at 3 bits or less diverged and were excluded); and, with the bias convention, every factor must stay
  positive, :math:`P_x > n_x\gamma_x` (3.11 bits for activations with Table 2: at :math:`P_a = 3` the factor
  is -0.051).
* **Units**: raw parameters and raw tokens [RECON, high confidence].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import mpmath
import numpy as np
import sympy as sp
from scipy.optimize import minimize_scalar

from .. import _checks
from ..errors import ParameterError, UnsupportedConfigurationError
from .base import Law, Variable
from .constants import ConstantSet

__all__ = [
    "KumarLaw",
    "compute_optimal_precision",
    "critical_data_size",
    "effective_parameter_factor",
    "factor_table",
    "training_compute",
]

KUMAR_SOURCE = "Kumar et al., Scaling Laws for Precision, ICLR 2025, arXiv 2411.04330, https://arxiv.org/abs/2411.04330"

#: The precision parts of the model, in the order of the law's variables.
PARTS: tuple[str, ...] = ("w", "a", "kv")

#: Finite stand-in for an infinite precision in the mpmath reference path (every factor is 1 to > 10^28 digits).
_MP_INFINITY = 1e30

TABLE2 = ConstantSet(
    name="table2",
    values={
        "A": 4.299e3,
        "alpha": 0.4965,
        "B": 1.806e4,
        "beta": 0.4965,
        "E": 2.7648,
        "gamma_w": 2.6745,
        "n_w": 0.3037,
        "gamma_a": 2.2102,
        "n_a": 1.4072,
        "gamma_kv": 0.9578,
        "n_kv": 2.4185,
        "C_T": 0.0598,
        "gamma_D": 0.5068,
        "gamma_N": 0.3439,
        "gamma_post": 0.5907,
        "b": 1.1277,
    },
    source=KUMAR_SOURCE,
    table="App. K, Table 2 (integer-type fit; PTQ by GPTQ)",
    confidence=(
        "high for A, alpha, B, E, gamma_w, gamma_a, gamma_kv, n_w, n_a, n_kv, C_T, gamma_D, gamma_N; "
        "medium for gamma_post and b (subscripts lost); low-medium for the role and sign of b"
    ),
    provenance="[SRC] (gamma_post, b: [SRC-garbled]; bias convention 1-exp(-P/gamma+n): [RECON])",
    notes=(
        "beta is tied to alpha (the table lists only alpha, following Muennighoff et al.). gamma_a is printed "
        "'gamma_i' and n_a 'n_i'. 'gamma 0.5907' and 'b 1.1277' are read as the PTQ constants gamma_post and b. "
        "Units: raw parameters and raw tokens [RECON, high confidence]."
    ),
)

FP_WEIGHTS = ConstantSet(
    name="fp-weights",
    values={**TABLE2.values, "gamma_w": 2.8111, "n_w": 0.1240},
    source=KUMAR_SOURCE,
    table="App. N (floating-point weight-only fit) with the remaining constants of App. K, Table 2",
    confidence="gamma_w, n_w: high (read from App. N); the combination with Table 2's other constants: medium",
    provenance="[SRC] (gamma_w, n_w from App. N; other constants from Table 2: [RECON] hybrid)",
    notes=(
        "Weight-only fit (Eq. 3) with FP layouts E2M0, E3M0, E4M1, E3M2, E4M2, E5M2, E5M6 for 3-12 bits plus "
        "sign; App. N says A, B, E, alpha=beta are the same. Use with P_a = P_kv = inf. The 'exponent bias "
        "b = 0.1240' is read as the weight bias n_w [RECON]."
    ),
)

CONSTANT_DESCRIPTIONS: dict[str, str] = {
    "A": "coefficient of the parameter term A*N_eff^-alpha",
    "alpha": "exponent of N_eff",
    "B": "coefficient of the data term B*D^-beta",
    "beta": "exponent of D (tied to alpha in Table 2)",
    "E": "irreducible loss",
    "gamma_w": "bits scale of the weight-precision factor 1-exp(-P_w/gamma_w+n_w)",
    "n_w": "bias of the weight-precision exponent [RECON convention]",
    "gamma_a": "bits scale of the activation-precision factor",
    "n_a": "bias of the activation-precision exponent [RECON convention]",
    "gamma_kv": "bits scale of the KV-cache-precision factor",
    "n_kv": "bias of the KV-cache-precision exponent [RECON convention]",
    "C_T": "coefficient of the PTQ degradation delta_PTQ",
    "gamma_D": "exponent of D in delta_PTQ",
    "gamma_N": "exponent of N (N_eff) in delta_PTQ",
    "gamma_post": "bits scale of the PTQ precision in delta_PTQ",
    "b": "bias of the PTQ exponent [SRC-garbled, RECON convention]",
}

_FIT_DOMAIN_WHY = {
    "w": "the fitted domain of Kumar et al. is 3-12 bits plus BF16; P_w = 3 was stable",
    "a": (
        "outside the fitted domain: runs with P_a <= 3 diverged and were excluded from the fit, and with the "
        "bias convention the factor 1-exp(-P_a/gamma_a+n_a) is <= 0 for P_a <= n_a*gamma_a = 3.11 bits"
    ),
    "kv": "outside the fitted domain: runs with P_kv <= 3 diverged and were excluded from the fit",
}


#: How the robustification constants C_x of Eq. 9 are set when not given (the paper does not publish them).
ROBUSTNESS = {
    "noise": "C_x = 1/gamma_x: Eq. 10 with the training and PTQ noise on one bit scale [RECON] (default)",
    "unit": "C_x = 1: the value of the paper's Eq. 10 illustration [SRC]",
    "none": "no factor: Eq. 2, an upper bound on delta_PTQ (option (i) of empirical-laws.md §5)",
}


def _options(bias: Any = True, ptq: Any = True, robustness: Any = "noise", C_w: Any = None, C_a: Any = None,
             C_kv: Any = None) -> dict:
    if not isinstance(bias, bool | np.bool_):
        raise ParameterError("bias", bias, "be True (the [RECON] bias convention) or False (no biases)")
    if not isinstance(ptq, bool | np.bool_):
        raise ParameterError("ptq", ptq, "be True or False")
    out: dict[str, Any] = {"bias": bool(bias), "ptq": bool(ptq),
                           "robustness": _checks.choice("robustness", robustness, list(ROBUSTNESS))}
    for name, value in (("C_w", C_w), ("C_a", C_a), ("C_kv", C_kv)):
        out[name] = None if value is None else _checks.positive(name, value)
    return out


class KumarLaw(Law):
    r"""Kumar et al. unified precision law (Eq. 11) with :math:`N_{\rm eff}` (Eq. 4) and :math:`\delta_{\rm PTQ}`.

    .. math::

        L = A\,N_{\rm eff}^{-\alpha} + B\,D^{-\beta} + E + \delta_{\rm PTQ},\qquad
        N_{\rm eff} = N\prod_{x\in\{w,a,kv\}}\bigl(1-e^{-P_x/\gamma_x+n_x}\bigr),

        \delta_{\rm PTQ} = C_T\,e^{-P_{\rm post}/\gamma_{\rm post}+b}\,D^{\gamma_D} N_{\rm eff}^{-\gamma_N}
            \prod_{x}\bigl[1-e^{-C_x(P_x-P_{\rm post})}\bigr],\qquad C_x = 1/\gamma_x\ \text{by default [RECON]}.

    Source: Kumar et al. 2025 (arXiv 2411.04330), Eqs. 2, 4, 9, 11; constants App. K, Table 2 [SRC]. The bias
    convention (:math:`+n_x` and :math:`+b`) is [RECON] (empirical-laws.md §2-§3).

    Parameters
    ----------
    constants : str, ConstantSet or mapping, optional
        ``"table2"`` (default) or ``"fp-weights"``, a :class:`ConstantSet`, or a plain mapping of values.
    bias : bool, default True
        Use the exponent biases (the [RECON] convention that reproduces the paper's 7-8-bit optimum).
        ``False`` gives the printed no-bias form (biases ``n_x`` and ``b`` are then unused).
    ptq : bool, default True
        Include the post-training-quantization term ``ptq``; ``False`` gives Eq. 4 alone.
    robustness : {"noise", "unit", "none"}, default "noise"
        How the robustification constants :math:`C_x` of Eq. 9 (unpublished) are set when not given:
        ``"noise"`` :math:`C_x = 1/\gamma_x` [RECON] (Eq. 10 with training and PTQ noise on one bit scale; the
        default, which reproduces the paper's finding that low-precision training makes PTQ less harmful),
        ``"unit"`` :math:`C_x = 1` (the paper's Eq. 10 illustration), ``"none"`` no factor (Eq. 2, an upper
        bound on :math:`\delta_{\rm PTQ}`). With a factor, ``P_post`` must not exceed the corresponding
        training precision (Eq. 9 assumes :math:`P_{\rm train} \ge P_{\rm post}`).
    C_w, C_a, C_kv : float, optional
        Explicit robustification constants of Eq. 9; they override ``robustness`` for their part.

    Notes
    -----
    Inputs: ``N`` and ``D`` (raw parameters and tokens, >= 1); either a tied ``P`` or separate ``P_w``, ``P_a``,
    ``P_kv`` (bits; ``inf`` = BF16/FP32 high precision, the default); ``P_post`` (bits; ``inf``, the default,
    means no PTQ). Terms: ``model`` :math:`A N_{\rm eff}^{-\alpha}`, ``data`` :math:`B D^{-\beta}`,
    ``irreducible`` :math:`E`, ``ptq`` :math:`\delta_{\rm PTQ}`.
    """

    name: ClassVar[str] = "kumar"
    title: ClassVar[str] = "Kumar et al. 2025 unified precision law: A N_eff^-alpha + B D^-beta + E + delta_PTQ"
    provenance: ClassVar[str] = "[SRC] Kumar et al. Eqs. 4, 9, 11 (App. K, Table 2); bias convention [RECON]"
    variables: ClassVar[tuple[Variable, ...]] = (
        Variable("N", "non-embedding parameters (raw count)", lower=1.0, lower_inclusive=True,
                 why="a count of parameters"),
        Variable("D", "training tokens (raw count)", lower=1.0, lower_inclusive=True, why="a count of tokens"),
        Variable(
            "P_w",
            "training precision of the weights, bits (inf = BF16/FP32)",
            lower=3.0,
            lower_inclusive=True,
            why=_FIT_DOMAIN_WHY["w"],
            allow_inf=True,
        ),
        Variable(
            "P_a", "training precision of the activations, bits (inf = high)", lower=3.0, why=_FIT_DOMAIN_WHY["a"],
            allow_inf=True,
        ),
        Variable(
            "P_kv", "training precision of the KV cache, bits (inf = high)", lower=3.0, why=_FIT_DOMAIN_WHY["kv"],
            allow_inf=True,
        ),
        Variable(
            "P_post",
            "post-training quantization precision of the weights, bits (inf = no PTQ)",
            why="a bit width (use inf for no post-training quantization)",
            allow_inf=True,
        ),
    )
    constant_sets: ClassVar[dict[str, ConstantSet]] = {"table2": TABLE2, "fp-weights": FP_WEIGHTS}
    default_constants: ClassVar[str] = "table2"
    constant_descriptions: ClassVar[dict[str, str]] = CONSTANT_DESCRIPTIONS

    def __init__(self, constants: str | ConstantSet | Mapping[str, float] | None = None, **options: Any) -> None:
        unknown = set(options) - {"bias", "ptq", "robustness", "C_w", "C_a", "C_kv"}
        if unknown:
            k = sorted(unknown)[0]
            raise ParameterError(f"option {k}", options[k],
                                 "be one of the options bias, ptq, robustness, C_w, C_a, C_kv")
        super().__init__(constants, **_options(**options))

    # ------------------------------------------------------------------------------------------ symbolic
    def _c(self, name: str) -> sp.Symbol:
        return self.constant_symbol(name)

    def _precision_factor(self, part: str) -> sp.Expr:
        P = sp.Symbol(f"P_{part}", positive=True)
        arg = -P / self._c(f"gamma_{part}")
        if self.options["bias"]:
            arg = arg + self._c(f"n_{part}")
        return 1 - sp.exp(arg)

    def effective_parameters_expr(self) -> sp.Expr:
        r"""SymPy expression of :math:`N_{\rm eff} = N\prod_x(1-e^{-P_x/\gamma_x+n_x})` (Eq. 4)."""
        out: sp.Expr = sp.Symbol("N", positive=True)
        for part in PARTS:
            out = out * self._precision_factor(part)
        return out

    def _terms(self) -> dict[str, sp.Expr]:
        c = self._c
        D = sp.Symbol("D", positive=True)
        n_eff = self.effective_parameters_expr()
        terms: dict[str, sp.Expr] = {
            "model": c("A") * n_eff ** (-c("alpha")),
            "data": c("B") * D ** (-c("beta")),
            "irreducible": c("E"),
        }
        if self.options["ptq"]:
            P_post = sp.Symbol("P_post", positive=True)
            arg = -P_post / c("gamma_post")
            if self.options["bias"]:
                arg = arg + c("b")
            ptq = c("C_T") * sp.exp(arg) * D ** c("gamma_D") * n_eff ** (-c("gamma_N"))
            for part in PARTS:
                rate = self.robustification_rate(part)
                if rate is not None:
                    ptq = ptq * (1 - sp.exp(-rate * (sp.Symbol(f"P_{part}", positive=True) - P_post)))
            terms["ptq"] = ptq
        return terms

    def robustification_rate(self, part: str) -> sp.Expr | None:
        r"""The constant :math:`C_x` of Eq. 9 for ``part`` (a SymPy expression), or ``None`` for no factor.

        An explicit ``C_w``/``C_a``/``C_kv`` wins; otherwise ``robustness`` decides: ``"noise"`` gives
        :math:`1/\gamma_x` [RECON], ``"unit"`` 1 (the paper's Eq. 10 illustration [SRC]), ``"none"`` no factor.
        """
        explicit = self.options[f"C_{part}"]
        if explicit is not None:
            return sp.Float(explicit)
        rule = self.options["robustness"]
        if rule == "noise":
            return 1 / self._c(f"gamma_{part}")
        return sp.Integer(1) if rule == "unit" else None

    # ------------------------------------------------------------------------------------------ validation
    def _canonical(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Map a tied ``P`` onto ``P_w, P_a, P_kv``; omitted (or ``None``) precisions become ``inf``."""
        vals = {
            k: (math.inf if v is None and k in ("P", "P_w", "P_a", "P_kv", "P_post") else v) for k, v in values.items()
        }
        if "P" in vals:
            clash = [k for k in ("P_w", "P_a", "P_kv") if k in vals]
            if clash:
                raise ParameterError("P", "given with " + clash[0], "not be combined with P_w, P_a or P_kv")
            P = vals.pop("P")
            vals.update(P_w=P, P_a=P, P_kv=P)
        for key in ("P_w", "P_a", "P_kv", "P_post"):
            vals.setdefault(key, math.inf)
        return vals

    def _check_factors(self, vals: Mapping[str, Any]) -> None:
        """Refuse precisions where a factor of N_eff is <= 0 (bias convention) or where Eq. 9 does not apply."""
        if self.options["bias"]:
            for part in PARTS:
                arr = _checks.as_array(f"P_{part}", vals[f"P_{part}"])
                bound = self.constants[f"n_{part}"] * self.constants[f"gamma_{part}"]
                bad = arr <= bound
                if np.any(bad):
                    raise ParameterError(
                        f"P_{part}",
                        float(arr[bad].ravel()[0]) if arr.ndim else float(arr),
                        f"be > n_{part}*gamma_{part} = {bound:.3g} bits: the factor 1-exp(-P_{part}/gamma_{part}"
                        f"+n_{part}) of N_eff is <= 0 there (bias convention; outside the fitted domain)",
                    )
        if self.options["ptq"]:
            post = _checks.as_array("P_post", vals["P_post"])
            for part in PARTS:
                if self.robustification_rate(part) is None:
                    continue
                px = _checks.as_array(f"P_{part}", vals[f"P_{part}"])
                bad = np.isfinite(post) & (post > px)
                if np.any(bad):
                    raise ParameterError(
                        "P_post",
                        float(np.broadcast_to(post, bad.shape)[bad].ravel()[0]),
                        f"be <= P_{part} while its robustification factor is on (Eq. 9 assumes training "
                        "precision >= P_post; robustness=none drops the factors)",
                    )

    def _inputs(self, values: Mapping[str, Any]) -> list[np.ndarray]:
        tied = "P" in values
        vals = self._canonical(values)
        try:
            self._check_factors(vals)
            return super()._inputs(vals)
        except ParameterError as exc:
            if tied and exc.name in ("P_w", "P_a", "P_kv"):
                # a tied P must clear every part's bound at once: state the largest, not the first that failed
                bound = self._tied_lower_bound()
                why = ("the largest of n_x*gamma_x over weights, activations and KV: below it a factor "
                       "1-exp(-P_x/gamma_x+n_x) of N_eff is <= 0 (bias convention; outside the fitted domain)"
                       if self.options["bias"] and bound > 3.0 else "the fitted domain of every part")
                raise ParameterError("P", exc.value, f"be > {bound:.3g} bits, {why}; P sets P_w, P_a and P_kv") \
                    from None
            raise

    # ------------------------------------------------------------------------------------------ numeric
    def _zero_masks(self, args: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Terms that are identically 0 at some inputs: ``ptq`` where ``P_post`` is infinite (no PTQ).

        There the compiled expression can be ``0 * inf`` once robustification factors are included, so the
        public methods (and the fitter) set the term to 0 explicitly.
        """
        if "ptq" not in self.terms():
            return {}
        no_ptq = np.isinf(args[5])
        return {"ptq": no_ptq} if np.any(no_ptq) else {}

    def evaluate_mpmath(self, term: str | None = None, *, dps: int = 50, **values: Any) -> Any:
        """Arbitrary-precision reference evaluation (scalars); infinite precisions count as 1e30 bits."""
        vals = self._canonical(values)
        self._inputs(vals)
        if term is None:
            with mpmath.workdps(dps):
                parts = [self.evaluate_mpmath(t, dps=dps, **vals) for t in self.terms()]
                return mpmath.fsum(parts)
        if term == "ptq" and math.isinf(float(vals["P_post"])):
            return mpmath.mpf(0)
        finite = {k: (_MP_INFINITY if k.startswith("P") and math.isinf(float(v)) else v) for k, v in vals.items()}
        if math.isinf(float(vals["P_post"])):
            # no PTQ: P_post enters only the ptq term (0 above); keep it within the P_post <= P_x check
            finite["P_post"] = min(finite["P_w"], finite["P_a"], finite["P_kv"])
        return super().evaluate_mpmath(term, dps=dps, **finite)

    # ------------------------------------------------------------------------------------------ derived
    def _factor(self, part: str, P: np.ndarray) -> np.ndarray:
        arg = -P / self.constants[f"gamma_{part}"]
        if self.options["bias"]:
            arg = arg + self.constants[f"n_{part}"]
        with np.errstate(over="ignore"):
            return 1.0 - np.exp(arg)

    def effective_parameter_factor(self, P_w: Any, P_a: Any = math.inf, P_kv: Any = math.inf) -> np.ndarray:
        r"""The factor :math:`N_{\rm eff}/N=\prod_x(1-e^{-P_x/\gamma_x+n_x})` (Eq. 4; bias convention [RECON]).

        Parameters
        ----------
        P_w, P_a, P_kv : array_like
            Training precisions in bits; ``inf`` (the default for ``P_a`` and ``P_kv``) is high precision, whose
            factor is exactly 1. Validated against the law's domain.

        Returns
        -------
        ndarray
            The factor, broadcast over the inputs.
        """
        args = self._inputs({"N": 1.0, "D": 1.0, "P_w": P_w, "P_a": P_a, "P_kv": P_kv})
        shape = np.broadcast(*args).shape
        out = np.ones(shape)
        for part, P in zip(PARTS, args[2:5], strict=True):
            out = out * self._factor(part, P)
        return out

    def factor_table(self, P: Sequence[float] = (3, 4, 6, 8, 12, 16)) -> dict[str, np.ndarray]:
        r"""Per-part factors :math:`1-e^{-P/\gamma_x+n_x}` and their product at tied precisions.

        This is the [COMPUTED] table of empirical-laws.md §3. It is diagnostic and deliberately *not*
        restricted to the fitted domain: at :math:`P=3` the activation factor is negative under the bias
        convention, which is why :meth:`evaluate` refuses :math:`P_a \le 3`.

        Parameters
        ----------
        P : sequence of float
            Tied precisions in bits (> 0; ``inf`` allowed).

        Returns
        -------
        dict
            ``{"P", "w", "a", "kv", "product"}`` -> arrays of the same length as ``P``.
        """
        arr = _checks.as_array("P", P)
        if np.any(arr <= 0):
            raise ParameterError("P", float(arr[arr <= 0].ravel()[0]), "be > 0 bits")
        out: dict[str, np.ndarray] = {"P": arr}
        prod = np.ones_like(arr)
        for part in PARTS:
            out[part] = self._factor(part, arr)
            prod = prod * out[part]
        out["product"] = prod
        return out

    def critical_data_size(self, N: Any, P_post: Any) -> np.ndarray:
        r"""Token count beyond which more pretraining *raises* the post-PTQ loss (App. E.1, Eq. 13) [SRC].

        .. math::

            D_{\rm crit} = \Bigl(\frac{\beta B N^{\gamma_N} e^{P_{\rm post}/\gamma_{\rm post} - b}}
                {\gamma_D C_T}\Bigr)^{1/(\gamma_D+\beta)}

        The :math:`-b` is the [RECON] bias convention (``bias=True``); without it the exponent is
        :math:`P_{\rm post}/\gamma_{\rm post}`. It solves :math:`\partial_D(BD^{-\beta}+\delta_{\rm PTQ})=0` for a
        model trained in high precision (Eq. 2).

        Parameters
        ----------
        N : array_like
            Parameters (> 0).
        P_post : array_like
            Post-training quantization precision in bits (> 0, finite).

        Returns
        -------
        ndarray
            :math:`D_{\rm crit}` in tokens.
        """
        N = self.variables[0].check(N)
        P_post = self.variables[5].check(P_post)
        if np.any(np.isinf(P_post)):
            raise ParameterError("P_post", math.inf, "be finite (without PTQ there is no critical data size)")
        k = self.constants
        expo = P_post / k["gamma_post"] - (k["b"] if self.options["bias"] else 0.0)
        log_d = (math.log(k["beta"] * k["B"] / (k["gamma_D"] * k["C_T"])) + k["gamma_N"] * np.log(N) + expo) / (
            k["gamma_D"] + k["beta"]
        )
        return np.exp(log_d)

    @staticmethod
    def training_compute(N: Any, D: Any, P: Any) -> np.ndarray:
        r"""Training compute :math:`C = \tfrac{6}{16} N D P` in FLOP-equivalents (§4.3) [SRC].

        Reduces to Chinchilla's :math:`6ND` at :math:`P=16`. Use ``P=16`` for BF16 training (not ``inf``).
        """
        N = _checks.as_array("N", N)
        D = _checks.as_array("D", D)
        P = _checks.as_array("P", P)
        for name, arr in (("N", N), ("D", D), ("P", P)):
            if np.any(~(arr > 0)) or np.any(np.isinf(arr)):
                raise ParameterError(name, float(np.ravel(arr)[0]), "be > 0 and finite")
        return 6.0 / 16.0 * N * D * P

    def _tied_lower_bound(self) -> float:
        lows = [3.0]
        if self.options["bias"]:
            lows += [self.constants[f"n_{p}"] * self.constants[f"gamma_{p}"] for p in PARTS]
        return max(lows)

    def compute_optimal_precision(self, upper: float = 16.0) -> float:
        r"""Joint compute-optimal tied precision :math:`P^* = \arg\max_P f(P)/P` (§4.3, App. E) [DERIVED].

        With :math:`C=\tfrac{6}{16}NDP` and N, D, P all free, the first-order conditions give
        :math:`d\ln f/d\ln P = 1`, i.e. :math:`P^*` maximises :math:`f(P)/P` with
        :math:`f = N_{\rm eff}/N`; it does not depend on the compute budget (nor on :math:`\alpha,\beta`).
        Table 2 with the bias convention gives 7.00 bits [COMPUTED] (the paper: "7-8 bits"); without the biases
        3.47 bits. Solved by bounded scalar minimisation over (domain minimum, ``upper``].

        Raises
        ------
        UnsupportedConfigurationError
            If the optimum sits on a boundary of the search interval.
        """
        upper = _checks.greater("upper", upper, self._tied_lower_bound())
        lo = self._tied_lower_bound()

        def neg(P: float) -> float:
            f = 1.0
            for part in PARTS:
                f *= float(self._factor(part, np.float64(P)))
            return -f / P

        res = minimize_scalar(neg, bounds=(lo, upper), method="bounded", options={"xatol": 1e-10})
        x = float(res.x)
        if x - lo < 1e-6 or upper - x < 1e-6:
            raise UnsupportedConfigurationError(
                f"f(P)/P has no interior maximum in ({lo:.4g}, {upper:.4g}] bits (optimum at the boundary {x:.4g})"
            )
        return x

    def compute_optimal(self, C: Any, P: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""Compute-optimal :math:`(N^*, D^*, P)` under :math:`C=\tfrac{6}{16}NDP`, ignoring PTQ (Eq. 5).

        At a precision P (default: the joint optimum :meth:`compute_optimal_precision`) the problem is
        Chinchilla's with :math:`A \to A f(P)^{-\alpha}` and the token-parameter budget :math:`ND = C'/P`,
        :math:`C' = 16C/6` (empirical-laws.md §4a, [DERIVED]):

        .. math::

            N^* = G_P\Bigl(\frac{C'}{P}\Bigr)^{\beta/(\alpha+\beta)},\quad
            D^* = G_P^{-1}\Bigl(\frac{C'}{P}\Bigr)^{\alpha/(\alpha+\beta)},\quad
            G_P = \Bigl(\frac{\alpha A f(P)^{-\alpha}}{\beta B}\Bigr)^{1/(\alpha+\beta)}.

        Parameters
        ----------
        C : array_like
            Training compute in FLOP-equivalents (> 0).
        P : array_like, optional
            Tied training precision in bits; ``None`` uses :math:`P^*`.

        Returns
        -------
        tuple of ndarray
            ``(N, D, P)`` broadcast over ``C`` (and ``P``).
        """
        C = _checks.as_array("C", C)
        if np.any(~(C > 0)) or np.any(np.isinf(C)):
            raise ParameterError("C", float(np.ravel(C)[0]), "be > 0 and finite")
        if P is None:
            P_arr = np.asarray(self.compute_optimal_precision(), dtype=np.float64)
        else:
            P_arr = self._inputs({"N": 1.0, "D": 1.0, "P": P})[2]
            if np.any(np.isinf(P_arr)):
                raise ParameterError("P", math.inf, "be finite (use 16 for BF16 training)")
        f = np.ones(P_arr.shape)
        for part in PARTS:
            f = f * self._factor(part, P_arr)
        k = self.constants
        a, b = k["alpha"], k["beta"]
        G = (a * k["A"] * f ** (-a) / (b * k["B"])) ** (1.0 / (a + b))
        nd = 16.0 * C / (6.0 * P_arr)
        N = G * nd ** (b / (a + b))
        D = nd ** (a / (a + b)) / G
        return N, D, np.broadcast_to(P_arr, N.shape).copy()


# ---------------------------------------------------------------------------------------------- shortcuts
def effective_parameter_factor(
    P_w: Any, P_a: Any = math.inf, P_kv: Any = math.inf, *, bias: bool = True, constants: Any = None
) -> np.ndarray:
    """Shortcut for :meth:`KumarLaw.effective_parameter_factor` (Eq. 4; bias convention [RECON])."""
    return KumarLaw(constants, bias=bias).effective_parameter_factor(P_w, P_a, P_kv)


def factor_table(
    P: Sequence[float] = (3, 4, 6, 8, 12, 16), *, bias: bool = True, constants: Any = None
) -> dict[str, np.ndarray]:
    """Shortcut for :meth:`KumarLaw.factor_table` (the [COMPUTED] table of empirical-laws.md §3)."""
    return KumarLaw(constants, bias=bias).factor_table(P)


def critical_data_size(N: Any, P_post: Any, *, bias: bool = True, constants: Any = None) -> np.ndarray:
    """Shortcut for :meth:`KumarLaw.critical_data_size` (App. E.1, Eq. 13 [SRC]; bias [RECON])."""
    return KumarLaw(constants, bias=bias).critical_data_size(N, P_post)


def compute_optimal_precision(*, bias: bool = True, constants: Any = None, upper: float = 16.0) -> float:
    """Shortcut for :meth:`KumarLaw.compute_optimal_precision` (argmax f(P)/P, [DERIVED])."""
    return KumarLaw(constants, bias=bias).compute_optimal_precision(upper)


def training_compute(N: Any, D: Any, P: Any) -> np.ndarray:
    """Shortcut for :meth:`KumarLaw.training_compute`: C = (6/16) N D P [SRC]."""
    return KumarLaw.training_compute(N, D, P)
