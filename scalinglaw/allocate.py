r"""Optimal allocation of model size, data and precision under a budget (SPEC §7).

Budgets: training compute :math:`C=k\cdot\mathrm{size}\cdot\mathrm{data}\cdot P` (:math:`k=6/16` for the LLM laws,
so that :math:`P=16` gives Chinchilla's :math:`6ND`; :math:`C=MNP` bit-operations for the regression model) or
memory :math:`\mathrm{size}\cdot P` bits; any of size, data or precision can be fixed. Precision is continuous or
restricted to named formats (``int4``, ``int8``, ``fp8_e4m3``, ``bf16``, ...).

Every law is optimised numerically in log-sizes (a coarse vectorised grid, then L-BFGS-B; for the regression
models, whose optimum can sit on a kink, a derivative-free profile search of zoomed grids), which is the check for
the closed forms where they exist:

* Chinchilla: :math:`N_{\rm opt}=G(C/6)^{\beta/(\alpha+\beta)}` (Hoffmann Eq. 4) [paper];
* Kumar: :math:`P^*=\arg\max_Pf(P)/P`, then Chinchilla's form with :math:`A\to Af(P^*)^{-\alpha}` [derived in
  empirical-laws.md §4];
* Sun: the joint :math:`P_{\rm opt}` (Eq. 25/54) [paper], with :math:`N,D` numeric at that precision;
* sketched model (Lin et al.): the balance :math:`M=\rho k^*` between approximation and bias of the asymptotic law,
  :math:`k^{*a}=e\gamma N_{\rm eff}/B`, :math:`N=C/(MP)`, solved with the Lambert W function [derived]
  (:meth:`RegressionModel.closed`).

Refusals are typed: :class:`~scalinglaw.errors.BoundaryOptimumError` when the optimum sits on a bound of the
search, :class:`~scalinglaw.errors.FlatOptimumError` when every size within a factor ``flat_factor`` gives a
loss within ``flat_rtol`` of the optimum (the range is stated).
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy import optimize, special

from . import _checks
from .errors import BoundaryOptimumError, FlatOptimumError, ParameterError, UnsupportedConfigurationError
from .laws.base import Law

__all__ = [
    "Allocation",
    "AllocationModel",
    "Frontier",
    "allocation_model",
    "frontier",
    "isoflop",
    "isoloss",
    "optimize_allocation",
    "optimize_communication",
    "require_frontier",
]

ROLES = ("size", "data", "precision")
LOG10_SIZE_BOUNDS = (0.0, 40.0)  # 1 .. 1e40, wide enough that a bound hit means "no interior optimum"


@dataclass(frozen=True)
class Format:
    """A named number format as the allocation sees it: law inputs for its precision, and its width in bits."""

    name: str
    bits: float
    law_precision: float  # the precision the law is evaluated at (inf for "high precision")
    extra: dict[str, float] = field(default_factory=dict)  # e.g. Sun's E, M; a regression epsilon


class AllocationModel(ABC):
    """How a law maps (size, data, precision) to a loss, and what budget units it uses."""

    labels: ClassVar[dict[str, str]] = {"size": "N", "data": "D", "precision": "P"}
    compute_constant: ClassVar[float] = 6.0 / 16.0
    precision_free: bool = True
    precision_bounds: tuple[float, float] = (1.0, 32.0)
    fixed_precision: float = 16.0
    constant_terms: ClassVar[tuple[str, ...]] = ("irreducible",)
    #: whether :meth:`closed` is the exact optimum of the law (else an asymptotic form, reported as a check)
    closed_is_exact: ClassVar[bool] = True
    #: search: log10 bounds of size and data, grid resolution, and whether to polish with L-BFGS-B
    size_bounds: tuple[float, float] = LOG10_SIZE_BOUNDS
    grid_1d: int = 400
    grid_2d: tuple[int, int] = (160, 64)
    refine: bool = True
    #: how the grid optimum is refined: ``"gradient"`` (L-BFGS-B; smooth losses) or ``"profile"`` (nested zoomed
    #: grids, derivative-free: for losses with kinks along a ridge, see :func:`_profile_search`)
    search: ClassVar[str] = "gradient"
    #: how a named format enters the loss, where that is an approximation the result must carry
    format_note: ClassVar[str | None] = None
    #: order of the wall time of one optimum (grid + L-BFGS-B; 2-90 ms measured on the development machine), for
    #: the resource estimate of a frontier
    seconds_per_solve: ClassVar[float] = 0.1

    def __init__(self, law: Law) -> None:
        self.law = law

    @property
    def name(self) -> str:
        """Name reported in results (the law's)."""
        return self.law.name

    @abstractmethod
    def raw_loss(self, size: np.ndarray, data: np.ndarray, P: np.ndarray, extra: dict[str, float] | None = None
                 ) -> np.ndarray:
        """Vectorised loss; ``inf`` outside the law's domain (never raises)."""

    @abstractmethod
    def terms(self, size: float, data: float, P: float, extra: dict[str, float] | None = None) -> dict[str, float]:
        """The law's terms at one point (validated)."""

    def format(self, name: str) -> Format:
        """Map a named format onto this law's precision (raises for formats the law does not cover)."""
        from .quantize import parse_quantizer

        q = parse_quantizer(name, name="--formats")
        if q is None or q.idealized:
            raise ParameterError("--formats", name, "name a number format (int4, int8, fp8_e4m3, bf16, ...)")
        bits = float(getattr(q, "bits", 0) or (q.exp_bits + q.man_bits + 1))
        return Format(name=name, bits=bits, law_precision=bits)

    def infeasibility(self, budget: float, kind: str, fixed: dict[str, float],
                      extra: dict[str, float] | None) -> ParameterError | None:
        """Hook: a model-specific reason why no allocation is feasible (``None``: the generic message)."""
        return None

    def closed(self, budget: np.ndarray, kind: str, fixed: dict[str, float]) -> dict[str, np.ndarray] | None:
        """Closed-form optimum (vectorised over budgets) or ``None`` where there is none."""
        return None

    def reference(self, budget: float, kind: str) -> dict[str, Any]:
        """Extra published/reconstructed predictions to report beside the optimum (none by default)."""
        return {}

    def details(self, size: Any, data: Any, P: Any, extra: dict[str, float] | None = None) -> dict[str, Any]:
        """Law-specific facts every result reports (Sun's layout, Chen's compute pricing); none by default.
        Vectorised over ``P`` (frontiers pass arrays)."""
        return {}


# ------------------------------------------------------------------------------------------- LLM laws
class ChinchillaModel(AllocationModel):
    """Chinchilla (no precision): compute :math:`6ND`, i.e. :math:`P=16` in :math:`\\tfrac{6}{16}NDP`."""

    precision_free = False
    fixed_precision = 16.0

    def raw_loss(self, size, data, P, extra=None):
        c = self.law.constants
        with np.errstate(all="ignore"):
            out = c["E"] + c["A"] * size ** (-c["alpha"]) + c["B"] * data ** (-c["beta"])
        return np.where(np.isfinite(out), out, np.inf)

    def terms(self, size, data, P, extra=None):
        return {k: float(v) for k, v in self.law.breakdown(N=size, D=data).items()}

    def closed(self, budget, kind, fixed):
        if kind != "compute" or set(fixed) - {"P"}:
            return None
        P = fixed.get("P", self.fixed_precision)
        N, D = self.law.compute_optimal(budget * 16.0 / P)  # C = 6/16 N D P  <=>  6 N D = 16 C / P
        return {"size": N, "data": D, "precision": np.full_like(N, P)}


class KumarModel(AllocationModel):
    """Kumar et al. with tied precision :math:`P_w=P_a=P_{kv}=P`, no post-training quantization."""

    def __init__(self, law: Law) -> None:
        super().__init__(law)
        self.precision_bounds = (law._tied_lower_bound(), 16.0)
        self.fixed_precision = 16.0
        # no post-training quantization (Eq. 5): the ptq term is left out, not evaluated at P_post = inf (0 * inf)
        self._fns = [law.compile(t) for t in law.terms() if t != "ptq"]
        self._consts = law._constant_args()

    def raw_loss(self, size, data, P, extra=None):
        P = np.asarray(extra["law_precision"] if extra else P, dtype=np.float64)
        with np.errstate(all="ignore"):
            out = sum(fn(size, data, P, P, P, np.inf, *self._consts) for fn in self._fns)
        ok = (P > self.precision_bounds[0]) | np.isinf(P)
        return np.where(ok & np.isfinite(out), out, np.inf)

    def terms(self, size, data, P, extra=None):
        P = extra["law_precision"] if extra else P
        return {k: float(v) for k, v in self.law.breakdown(N=size, D=data, P=P).items()}

    def format(self, name: str) -> Format:
        f = super().format(name)
        if name.lower() in ("bf16", "fp16", "fp32", "bfloat16", "float16", "float32"):
            # high precision: N_eff = N (empirical-laws.md §3), but it costs its bits
            return Format(name=name, bits=f.bits, law_precision=math.inf)
        return f

    def closed(self, budget, kind, fixed):
        if kind != "compute" or set(fixed) - {"P"}:
            return None
        N, D, P = self.law.compute_optimal(budget, P=fixed.get("P"))
        return {"size": N, "data": D, "precision": P}


class SunModel(AllocationModel):
    """Sun et al.'s FP law with the loss-optimal layout at each precision (continuous :math:`E,M`)."""

    precision_bounds = (2.0, 32.0)

    def __init__(self, law: Law, block: float = 128.0) -> None:
        super().__init__(law)
        self.block = _checks.greater("block", block, 1.0)
        self._fn = law.compile()
        self._consts = law._constant_args()
        c = law.constants
        self._share = c["nu"] / (c["delta"] + c["nu"])

    def layout(self, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Continuous optimal layout (Eq. 19/31): :math:`M=\\nu P/(\\delta+\\nu)-0.5`, :math:`E=P-1-M`."""
        M = self._share * P - 0.5
        return P - 1.0 - M, M

    def raw_loss(self, size, data, P, extra=None):
        if extra and "E" in extra:
            E, M = extra["E"], extra["M"]
        else:
            E, M = self.layout(np.asarray(P, dtype=np.float64))
        with np.errstate(all="ignore"):
            out = self._fn(size, data, E, M, self.block, *self._consts)
        ok = (np.asarray(E) >= 1) & (np.asarray(M) >= 0)  # the law's domain: E >= 1 exponent bit
        return np.where(ok & np.isfinite(out), out, np.inf)

    def terms(self, size, data, P, extra=None):
        if extra and "E" in extra:
            E, M = extra["E"], extra["M"]
        else:
            E, M = (float(x) for x in self.layout(np.float64(P)))
        return {k: float(v) for k, v in self.law.breakdown(N=size, D=data, E=E, M=M, B=self.block).items()}

    def format(self, name: str) -> Format:
        from .quantize import FloatFormat, parse_quantizer

        q = parse_quantizer(name, name="--formats")
        if not isinstance(q, FloatFormat):
            raise ParameterError("--formats", name, "be a floating-point format for Sun et al.'s law (e.g. fp8_e4m3)")
        bits = float(q.exp_bits + q.man_bits + 1)
        return Format(name=name, bits=bits, law_precision=bits, extra={"E": float(q.exp_bits), "M": float(q.man_bits)})

    def closed(self, budget, kind, fixed):
        if kind != "compute" or fixed:
            return None
        return {"precision": self.law.optimal_precision(budget, self.block)}

    def details(self, size, data, P, extra=None):
        """The layout (E, M) the loss used: the format's, or the continuous optimum of Eq. 19/31 [SRC]; with a
        whole number of bits also the best integer layout (:meth:`SunLaw.optimal_layout`)."""
        if extra and "E" in extra:
            return {"layout": {"E": float(extra["E"]), "M": float(extra["M"]), "block": self.block,
                               "rule": "the named format's exponent and mantissa bits"}}
        P = np.asarray(P, dtype=np.float64)
        E, M = self.layout(P)
        out: dict[str, Any] = {"E": E if E.ndim else float(E), "M": M if M.ndim else float(M), "block": self.block,
                               "rule": "continuous optimum M = nu P/(delta+nu) - 0.5, E = P - 1 - M (Eq. 19/31)"}
        if P.ndim == 0 and float(P) == round(float(P)) and P >= 2:
            lay = self.law.optimal_layout(P)
            out["integer"] = {"E": float(lay.E), "M": float(lay.M)}
        return {"layout": out}


class ChenModel(AllocationModel):
    r"""Chen et al.'s QAT law (W4A4 by default) at group size ``G``; the precision is not a decision variable.

    The compute budget is priced as :math:`C=\tfrac{6}{16}ND\,P_{\rm compute}` with ``compute_bits``
    :math:`=P_{\rm compute}`. Chen et al. train with fake quantization, so their runs cost BF16 compute: the
    default 16 gives Chinchilla's :math:`6ND` [RECON: the paper states no cost model]. ``compute_bits=4`` prices
    W4A4 training as 4-bit compute (Kumar et al.'s convention, which assumes hardware running at that precision).
    """

    precision_free = False
    fixed_precision = 16.0

    def __init__(self, law: Law, G: float = 128.0, compute_bits: float = 16.0) -> None:
        super().__init__(law)
        self.G = _checks.as_float("G", G)
        if not 1.0 <= self.G < math.inf:  # the law's domain: a group of at least one element
            raise ParameterError("G", G, "be >= 1 and finite (elements per quantization scale)")
        self.compute_bits = _checks.positive("compute_bits", compute_bits)
        self.fixed_precision = self.compute_bits
        self._fn = law.compile()
        self._consts = law._constant_args()

    def details(self, size, data, P, extra=None):
        bits = float(np.max(P)) if np.ndim(P) else float(P)
        note = ("QAT with fake quantization at BF16 cost (default) [RECON]" if bits == 16.0 else
                "training priced at this many bits (e.g. 4: W4A4 hardware)")
        return {"pricing": {"compute_bits": bits, "formula": f"C = (6/16) N D x {bits:g} = {6 * bits / 16:g} N D",
                            "note": note}}

    def raw_loss(self, size, data, P, extra=None):
        with np.errstate(all="ignore"):
            out = self._fn(size, data, self.G, *self._consts)
        return np.where(np.isfinite(out), out, np.inf)

    def terms(self, size, data, P, extra=None):
        return {k: float(v) for k, v in self.law.breakdown(N=size, D=data, G=self.G).items()}


# ------------------------------------------------------------------------------------------- regression
class RegressionModel(AllocationModel):
    r"""The sketched model: size :math:`M`, data :math:`N` samples, precision :math:`P` bits, :math:`C=MNP`.

    Quantized targets (``quantize``) share the precision :math:`P` through the bits-to-:math:`\epsilon` map of
    SPEC §2 [derived]: ``scheme="fp"`` (multiplicative, :math:`P` mantissa bits) :math:`\epsilon=4^{-P}/4`;
    ``scheme="int"`` (additive, :math:`P` bits on :math:`[-R,R]`) :math:`\epsilon=R^2/(2^P-1)^2`. Named formats use
    their own class and :math:`\epsilon` (INT at range :math:`R`) and their width for the budget.
    """

    labels: ClassVar[dict[str, str]] = {"size": "M", "data": "N", "precision": "P"}
    compute_constant: ClassVar[float] = 1.0
    constant_terms: ClassVar[tuple[str, ...]] = ()
    closed_is_exact: ClassVar[bool] = False
    # the optimum often sits on the kink k* = M (all directions learned) when data is quantized: a ridge
    search: ClassVar[str] = "profile"
    precision_bounds = (1.0, 32.0)
    fixed_precision = 32.0
    format_note = ("each format enters the law as its idealised epsilon, a surrogate of the real format that is not "
                   "verified as a bound (theory/exact-risk.md §11)")

    def __init__(self, *, a: float = 2.0, b: float | None = None, sigma2: float = 1.0, gamma: float = 0.1,
                 B: float = 1.0, quantize: Sequence[str] = (), scheme: str = "fp", range_: float = 4.0,
                 constants: str | None = None) -> None:
        from .laws.registry import get_law
        from .laws.regression import EPS_NAMES, QUANT_TARGETS

        self.quantize = tuple(quantize)
        for t in self.quantize:
            _checks.choice("--quantize", t, QUANT_TARGETS)
        self.scheme = _checks.choice("--scheme", scheme, ["fp", "int"])
        self.range = _checks.positive("--range", range_)
        self.precision_free = bool(self.quantize)
        kind = "multiplicative" if self.scheme == "fp" else "additive"
        if self.quantize:
            law = get_law("sketched-quantized" + (f":{constants}" if constants else ""),
                          **{t: kind for t in self.quantize})
        else:
            law = get_law("sketched" + (f":{constants}" if constants else ""))
        super().__init__(law)
        self.inputs = {"a": _checks.greater("--a", a, 1.0), "b": a if b is None else _checks.greater("--b", b, 1.0),
                       "sigma2": _checks.nonnegative("--sigma2", sigma2), "gamma": _checks.positive("--gamma", gamma),
                       "B": _checks.as_float("--B", B), "d": math.inf}
        self._eps_names = [EPS_NAMES[t] for t in self.quantize]
        self._fn = law.compile()
        self._consts = law._constant_args()
        self._order = [v.name for v in law.variables]

    def epsilon(self, P: np.ndarray) -> np.ndarray:
        """:math:`\\epsilon(P)` of the continuous precision (see the class docstring)."""
        P = np.asarray(P, dtype=np.float64)
        if self.scheme == "fp":
            return 0.25 * np.exp(-P * math.log(4.0))
        return self.range**2 / np.expm1(P * math.log(2.0)) ** 2

    def _args(self, size, data, P, extra):
        eps = extra["eps"] if extra and "eps" in extra else self.epsilon(P)
        vals = {**self.inputs, "M": size, "N": data}
        for v in self.law.variables:
            if v.name.startswith("eps_"):
                vals[v.name] = eps if v.name in self._eps_names else 0.0
        return [vals[n] for n in self._order]

    def raw_loss(self, size, data, P, extra=None):
        args = self._args(size, data, P, extra)
        with np.errstate(all="ignore"):
            out = self._fn(*args, *self._consts)
        ok = (np.asarray(data) >= 2) & (np.asarray(size) >= 1) & self._stable(dict(zip(self._order, args, strict=True)))
        return np.where(ok & np.isfinite(out), out, np.inf)

    def _stable(self, vals: dict[str, Any]) -> np.ndarray:
        """Where ``gamma`` is below the law's step limit (additive data noise adds M eps to tr H^(q)): the
        allocation must not pick a size that the fixed step cannot train."""
        from .laws.regression import sketched_step_limit

        data = ("additive" if self.scheme == "int" else "multiplicative") if "data" in self.quantize else None
        return np.asarray(vals["gamma"] < sketched_step_limit(vals, data))

    def terms(self, size, data, P, extra=None):
        args = self._args(size, data, P, extra)
        return {k: float(v) for k, v in self.law.breakdown(**dict(zip(self._order, args, strict=True))).items()}

    def infeasibility(self, budget, kind, fixed, extra):
        """An unstable step for every size: the step limit is largest at the smallest model (M = 1) and the
        highest precision, so state that one."""
        size = float(fixed.get("size", 1.0))
        P = float(fixed.get("precision", self.precision_bounds[1]))
        vals = dict(zip(self._order, self._args(np.float64(size), np.float64(2.0), np.float64(P), extra),
                        strict=True))
        if not np.all(self._stable(vals)):
            from .laws.regression import sketched_step_limit

            data = ("additive" if self.scheme == "int" else "multiplicative") if "data" in self.quantize else None
            limit = float(sketched_step_limit(vals, data))
            smallest = f"{self.labels['size']} = {size:g}, {P:g} bits"
            return ParameterError("--gamma", self.inputs["gamma"], f"be < {limit:.6g}, the mean-square step limit of "
                                  f"the smallest model ({smallest}): no allocation trains at this step")
        return None

    def format(self, name: str) -> Format:
        from .quantize import parse_quantizer

        q = parse_quantizer(name, name="--formats")
        if q is None:
            raise ParameterError("--formats", name, "name a number format")
        if q.kind == "int" and getattr(q, "range", None) is None:
            q = parse_quantizer(f"{name}:range={self.range}", name="--formats")
        ideal = q.idealized_scheme()
        want = "multiplicative" if self.scheme == "fp" else "additive"
        got = "multiplicative" if ideal.kind.startswith("multiplicative") else "additive"
        if got != want:
            raise ParameterError("--formats", name,
                                 f"be a {self.scheme.upper()} format to match --scheme {self.scheme}")
        bits = float(getattr(q, "bits", 0) or (q.exp_bits + q.man_bits + 1))
        return Format(name=name, bits=bits, law_precision=bits, extra={"eps": float(ideal.epsilon)})

    def closed(self, budget, kind, fixed):
        r"""First-order condition of the asymptotic law [derived] (theory/allocation.md).

        At :math:`d=\infty` and :math:`1<b<a+1`: the sketch's approximation error
        :math:`\mathrm{Approx}(M)\approx D\,M^{1-b}`, :math:`D=c_a^{b-1}\frac{\pi}{a\sin(\pi(b-1)/a)}`,
        :math:`c_a=\frac{\pi}{a\sin(\pi/a)}` (the deterministic equivalent with :math:`\kappa\approx(c_a/M)^a`);
        the bias :math:`\frac{k^{1-b}}{4a-b+1}+D'(k^{1-b}-M^{1-b})`, :math:`D'=\max\{D,\tfrac1{b-1}\}` (learned
        directions, then the larger of tail and sketch leak); the variance dropped. So
        :math:`L\approx\alpha M^{1-b}+\beta k^{1-b}` with :math:`\alpha=c_AD-c_BD'`,
        :math:`\beta=c_B(\tfrac1{4a-b+1}+D')`, :math:`k^a=e\gamma N/(B\log_2N)`, :math:`N=C/(MP)`, and
        :math:`\partial_ML=0` gives :math:`M=\rho k`,
        :math:`\rho=\max\{1,(a\alpha/(\beta(1-1/\ln N)))^{1/(b-1)}\}`, i.e.
        :math:`M^{a+1}\log_2\frac{C}{MP}=\rho^ae\frac{\gamma C}{BP}`, solved with the Lambert W function (three
        passes update the slow :math:`1-1/\ln N`). Lin et al.'s :math:`M^*\eqsim(C/\log C)^{1/(a+1)}` [paper] is
        its leading order. ``None`` for :math:`b>a`: there the variance :math:`\propto k/N_{\rm eff}` falls more slowly
        than bias and approximation and sets the optimum (and for :math:`b\ge a+1` the approximation error falls
        like :math:`M^{-a}`)."""
        if self.quantize or kind != "compute" or set(fixed) - {"P"}:
            return None
        P = fixed.get("P", self.fixed_precision)
        a, b, g, B = self.inputs["a"], self.inputs["b"], self.inputs["gamma"], self.inputs["B"]
        if not 1.0 < b <= a:
            return None
        c = self.law.constants
        ca = math.pi / (a * math.sin(math.pi / a))
        D = ca ** (b - 1.0) * math.pi / (a * math.sin(math.pi * (b - 1.0) / a))
        Dp = max(D, 1.0 / (b - 1.0))
        alpha = c["c_approximation"] * D - c["c_bias"] * Dp
        beta = c["c_bias"] * (1.0 / (4.0 * a - b + 1.0) + Dp)
        budget = np.asarray(budget, dtype=np.float64)
        log_n = np.full_like(budget, np.inf)
        for _ in range(3):
            ratio = a * alpha / (beta * (1.0 - 1.0 / log_n)) if alpha > 0 else 0.0
            rho = np.maximum(1.0, np.maximum(ratio, 0.0) ** (1.0 / (b - 1.0)))
            # v = ln N solves v e^{-(a+1) v} = K (Lambert W, branch -1)
            K = rho**a * math.e * (budget * g / (P * B)) * math.log(2.0) * (P / budget) ** (a + 1)
            z = -(a + 1) * K
            with np.errstate(all="ignore"):
                log_n = -np.real(special.lambertw(z, k=-1)) / (a + 1)
        N = np.exp(log_n)
        M = budget / (P * N)
        ok = (z > -1 / math.e) & np.isfinite(M)
        return {"size": np.where(ok, M, np.nan), "data": np.where(ok, N, np.nan), "precision": np.full_like(N, P)}

    def reference(self, budget: float, kind: str) -> dict[str, Any]:
        if not self.quantize or kind != "compute":
            return {}
        a = self.inputs["a"]
        return {"recon_precision": (a - 1) / (a + 1) * math.log(budget, 4),
                "recon_precision_note": "theory/allocation.md [recon]: P* ~ (a-1)/(a+1) log_4 C (up to O(log log C))"}


class ExactModel(RegressionModel):
    r"""The sketched model optimised with the *exact engine* as the objective (no closed form).

    Each point is the expected risk averaged over Gaussian sketches, by the deterministic equivalent of the sketch
    (:func:`~scalinglaw.deterministic.deterministic_risk`: geometric decay, last iterate, :math:`d=\infty`, the
    exact recursion on the equivalent's measure; no sketch draws, no finite proxy). The search is a coarse grid:
    log-spaced model sizes :math:`M\le10^{2.5}`, integer precisions, :math:`N=C/(MP)` rounded to a multiple of
    :math:`B`. Meant to check the laws.
    """

    size_bounds = (0.3, 2.5)
    grid_1d = 12
    grid_2d = (10, 10)
    refine = False
    seconds_per_solve = 30.0  # about a hundred exact risks per optimum
    format_note = ("each format enters the exact engine as its idealised epsilon, a surrogate of the real format "
                   "(theory/exact-risk.md §11)")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._cache: dict[tuple[int, int, float], float] = {}

    @property
    def name(self) -> str:
        return "exact"

    def _point(self, M: float, N: float, P: float, extra: dict[str, float] | None) -> float:
        from .deterministic import deterministic_risk
        from .errors import UnstableStepError
        from .problem import make_problem

        if not (M >= 1 and N >= 2 and math.isfinite(M) and math.isfinite(N)):
            return math.inf
        B = int(self.inputs["B"])
        m = max(1, round(M))
        n = max(2, round(N / B)) * B
        eps = float(extra["eps"]) if extra and "eps" in extra else float(self.epsilon(np.float64(P)))
        key = (m, n, round(eps, 15))
        if key not in self._cache:
            scheme = "multiplicative" if self.scheme == "fp" else "additive"
            quant = {t: f"{scheme}:{eps!r}" for t in self.quantize}
            b = self.inputs["b"]
            try:
                p = make_problem(a=self.inputs["a"], d="inf", M=m, N=n, B=B, gamma=self.inputs["gamma"],
                                 sigma2=self.inputs["sigma2"], schedule="geometric", average="last", target="prior",
                                 b=None if b == self.inputs["a"] else b, **quant)
                self._cache[key] = deterministic_risk(p, error_estimate=False).excess_risk
            except (UnstableStepError, ParameterError):
                self._cache[key] = math.inf
        return self._cache[key]

    def raw_loss(self, size, data, P, extra=None):
        size, data, P = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (size, data, P)))
        out = np.empty(size.shape)
        for idx in np.ndindex(size.shape):
            out[idx] = self._point(float(size[idx]), float(data[idx]), float(P[idx]), extra)
        return out

    def terms(self, size, data, P, extra=None):
        return {"excess_risk": self._point(size, data, P, extra)}

    def closed(self, budget, kind, fixed):
        return None


def _model_options(cls: type, options: dict[str, Any], *, strict: bool) -> dict[str, Any]:
    """The options that ``cls``'s constructor takes; with ``strict``, refuse any other."""
    params: list[str] = []
    for klass in cls.__mro__:  # follow **options up to the class that names them
        sig = inspect.signature(klass.__init__).parameters
        params += [p for p, v in sig.items() if v.kind is v.KEYWORD_ONLY or v.kind is v.POSITIONAL_OR_KEYWORD]
        if not any(v.kind is v.VAR_KEYWORD for v in sig.values()):
            break
    params = [p for p in dict.fromkeys(params) if p not in ("self", "law", "constants")]
    if strict:
        for k in options:
            if k not in params:
                raise ParameterError(f"option {k}", options[k], "be one of the options " + ", ".join(params))
    return {k: v for k, v in options.items() if k in params}


def allocation_model(law: str | Law, **options: Any) -> AllocationModel:
    """The allocation model of a law name (``chinchilla[:set]``, ``kumar``, ``sun``, ``chen``, ``sketched``,
    ``sketched-quantized``) or law instance. ``options`` go to the model (e.g. ``block`` for Sun, ``G`` for Chen,
    ``a``, ``gamma``, ``quantize``, ``scheme`` for the regression laws)."""
    from .laws.registry import get_law

    if isinstance(law, str):
        name = law.partition(":")[0]
        if name == "exact":
            return ExactModel(**_model_options(ExactModel, options, strict=True))
        if name in ("sketched", "sketched-quantized"):
            constants = law.partition(":")[2] or None
            return RegressionModel(constants=constants, **_model_options(RegressionModel, options, strict=True))
        if name in ("sgd", "sgd-quantized"):
            raise UnsupportedConfigurationError(
                f"--law {name} has no model-size variable to allocate (its size is the dimension d); use sketched "
                "or sketched-quantized")
        model_cls = {"sun": SunModel, "chen": ChenModel}.get(name)
        model_opts = _model_options(model_cls, options, strict=False) if model_cls else {}
        # the rest are the law's own options; get_law refuses unknown ones
        law = get_law(law, **{k: v for k, v in options.items() if k not in model_opts})
        options = model_opts
    name = law.name
    if name == "chinchilla":
        return ChinchillaModel(law)
    if name == "kumar":
        return KumarModel(law)
    if name == "sun":
        return SunModel(law, **options)
    if name == "chen":
        return ChenModel(law, **options)
    raise UnsupportedConfigurationError(f"no allocation model for law {name}")


# ------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Allocation:
    """An optimal allocation (sizes in raw units, precision in bits)."""

    law: str
    labels: dict[str, str]
    size: float
    data: float
    precision: float
    format: str | None
    loss: float
    terms: dict[str, float]
    dominant_term: str
    method: str
    budget: float
    budget_kind: str
    fixed: dict[str, float]
    flat_range: tuple[float, float]
    check: dict[str, Any] = field(default_factory=dict)
    candidates: dict[str, dict[str, float]] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    search_point: np.ndarray | None = field(default=None, repr=False, compare=False)
    flatness: Flatness | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        lab = self.labels
        out: dict[str, Any] = {lab["size"]: self.size, lab["data"]: self.data}
        if self.format is not None:
            out["format"] = self.format
        out[lab["precision"]] = self.precision
        out.update({"loss": self.loss, "terms": dict(self.terms), "dominant_term": self.dominant_term,
                    "method": self.method, "budget": self.budget, "budget_kind": self.budget_kind,
                    "fixed": dict(self.fixed), "law": self.law,
                    f"{lab['size']}_within_flat_rtol": list(self.flat_range)})
        if lab["data"] != "N" or lab["size"] != "M":
            out["data_per_size"] = self.data / self.size
        if self.check:
            out["check"] = self.check
        if self.candidates:
            out["candidates"] = self.candidates
        if self.reference:
            out["reference"] = self.reference
        if self.flatness is not None:
            out["flatness"] = self.flatness.to_dict(self.labels)
        out.update(self.details)
        return out


@dataclass(frozen=True)
class Flatness:
    """The allocations on the budget whose loss is within ``tolerance`` (relative) of the optimal loss.

    Each interval is the range of that quantity over the set (the connected part that contains the optimum):
    ``size``, ``data_per_size`` and ``precision``. ``open_ends`` names the ends where the set reaches a bound of
    the search (the law's precision domain, a fixed variable's value), so the true range may extend further.
    """

    tolerance: float
    size: tuple[float, float]
    data_per_size: tuple[float, float]
    precision: tuple[float, float]
    open_ends: tuple[str, ...] = ()

    def to_dict(self, labels: dict[str, str]) -> dict[str, Any]:
        return {"tolerance": self.tolerance, labels["size"]: list(self.size),
                f"{labels['data']}_per_{labels['size']}": list(self.data_per_size),
                labels["precision"]: list(self.precision), "open_ends": list(self.open_ends)}


# ------------------------------------------------------------------------------------------- numeric core
@dataclass
class _Var:
    role: str
    log: bool
    lo: float
    hi: float


def _assemble(model: AllocationModel, kind: str, budget: float, fixed: dict[str, float], free: list[_Var],
              x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(size, data, P) from the free variables (arrays along the last axis of ``x``)."""
    vals: dict[str, Any] = dict(fixed)
    for i, v in enumerate(free):
        vals[v.role] = 10.0 ** x[..., i] if v.log else x[..., i]
    k = model.compute_constant
    if "precision" not in vals:
        if kind == "memory" and "size" in vals:
            vals["precision"] = budget / vals["size"]
        else:
            vals["precision"] = np.full(np.shape(x)[:-1], model.fixed_precision)
    P = np.asarray(vals["precision"], dtype=np.float64)
    if kind == "compute":
        if "data" not in vals:
            vals["data"] = budget / (k * vals["size"] * P)
        elif "size" not in vals:
            vals["size"] = budget / (k * vals["data"] * P)
    elif "size" not in vals:
        vals["size"] = budget / P
    shape = np.shape(x)[:-1]
    return tuple(np.broadcast_to(np.asarray(vals[r], dtype=np.float64), shape).copy()  # type: ignore[return-value]
                 for r in ("size", "data", "precision"))


def _free_variables(model: AllocationModel, kind: str, fixed: dict[str, float]) -> tuple[list[_Var], str | None]:
    """Free variables after fixing and eliminating one by the budget; returns (vars, eliminated role)."""
    lo, hi = model.size_bounds
    roles = [r for r in ROLES if r not in fixed]
    if not model.precision_free and "precision" in roles:
        roles.remove("precision")
    if kind == "compute":
        eliminated = next((r for r in ("data", "size", "precision") if r in roles), None)
    else:  # memory: size * P = budget
        eliminated = next((r for r in ("size", "precision") if r in roles), None)
        if eliminated is None:
            raise ParameterError("--fix", "size and precision", "leave size or precision free under a memory budget")
    if eliminated is not None:
        roles.remove(eliminated)
    plo, phi = model.precision_bounds
    out = [_Var(r, r != "precision", *((lo, hi) if r != "precision" else (plo, phi))) for r in roles]
    return out, eliminated


def _integer_bits(v: _Var) -> np.ndarray:
    """About ten integer precisions, log-spaced over the bounds (for costly objectives)."""
    return np.unique(np.round(np.geomspace(max(v.lo, 1.0), v.hi, 10)))


def _grid(model: AllocationModel, free: list[_Var]) -> np.ndarray:
    if not free:
        return np.zeros((1, 0))
    if len(free) == 1:
        v = free[0]
        if v.role == "precision" and not model.refine:
            return _integer_bits(v)[:, None]
        return np.linspace(v.lo, v.hi, model.grid_1d)[:, None]
    axes = []
    for v, m in zip(free, model.grid_2d, strict=False):
        if v.role == "precision" and not model.refine:
            axes.append(_integer_bits(v))
        else:
            axes.append(np.linspace(v.lo, v.hi, m))
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=-1)


def _infeasible(model: AllocationModel, kind: str, budget: float, fixed: dict[str, float],
                extra: dict[str, float] | None) -> ParameterError:
    """Why no allocation is feasible, blaming the input responsible (the budget's range, or the model's own)."""
    lo, hi = (10.0**b for b in model.size_bounds)
    if model.precision_free:
        p_lo, p_hi = model.precision_bounds
    else:
        p_lo = p_hi = model.fixed_precision
    p_lo, p_hi = fixed.get("precision", p_lo), fixed.get("precision", p_hi)
    s_lo, s_hi = fixed.get("size", lo), fixed.get("size", hi)
    d_lo, d_hi = fixed.get("data", lo), fixed.get("data", hi)
    if kind == "compute":
        k = model.compute_constant
        c_lo, c_hi = k * s_lo * d_lo * p_lo, k * s_hi * d_hi * p_hi
        what = "size x data x precision"
    else:
        c_lo, c_hi = s_lo * p_lo, s_hi * p_hi
        what = "size x precision"
    if budget < c_lo:
        return ParameterError("--budget", budget, f"be >= {c_lo:.4g}, the {kind} of the smallest allocation "
                              f"({what} with sizes >= 1 and the law's lowest precision)")
    if budget > c_hi:
        return ParameterError("--budget", budget, f"be <= {c_hi:.4g}: the search covers sizes up to {hi:.0e} "
                              "(beyond that every law here is extrapolated by dozens of orders of magnitude)")
    reason = model.infeasibility(budget, kind, fixed, extra)
    if reason is not None:
        return reason
    return ParameterError("--budget", budget, "leave at least one feasible allocation (sizes >= 1 within the law's "
                                              "domain)")


def _loss_function(model: AllocationModel, kind: str, budget: float, fixed: dict[str, float],
                   extra: dict[str, float] | None) -> tuple[list[_Var], Any]:
    """The free search variables and the loss over them (``inf`` outside the feasible set), vectorised."""
    free, _ = _free_variables(model, kind, fixed)

    def loss(x: np.ndarray) -> np.ndarray:
        s, d, p = _assemble(model, kind, budget, fixed, free, x)
        bad = ~((s >= 1) & (d >= 1) & (p > 0)) | (s > 10 ** LOG10_SIZE_BOUNDS[1]) | (d > 10 ** LOG10_SIZE_BOUNDS[1])
        if "precision" not in fixed and not any(v.role == "precision" for v in free) and model.precision_free:
            lo, hi = model.precision_bounds
            bad |= (p < lo) | (p > hi)
        val = model.raw_loss(s, d, p, extra)
        return np.where(bad, np.inf, val)

    return free, loss


#: zoomed grids of the profile search: points per level (each level shrinks the window fourfold), and the levels
#: of the first and second variable: from two grid steps either side of the grid optimum to a resolution of
#: ~1e-6 decades of size and ~1e-4 bits of precision
ZOOM_POINTS = 17
ZOOM_LEVELS = (8, 5)


def _zoom(f: Any, centre: np.ndarray, half: np.ndarray, lo: float, hi: float, levels: int) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """Minimise ``f`` (batch, points) -> values over a window ``centre +- half`` per batch row by zoomed grids:
    ``ZOOM_POINTS`` points, then a window of two steps around the best, ``levels`` times. Derivative-free: kinks
    and jumps cost only the resolution at which they occur."""
    offsets = np.linspace(-1.0, 1.0, ZOOM_POINTS)
    rows = np.arange(centre.size)
    best = np.full(centre.shape, np.inf)
    for _ in range(levels):
        xs = np.clip(centre[:, None] + half[:, None] * offsets, lo, hi)
        vals = f(xs)
        i = np.argmin(vals, axis=1)
        better = vals[rows, i] <= best
        centre = np.where(better, xs[rows, i], centre)
        best = np.where(better, vals[rows, i], best)
        half = half * 4.0 / (ZOOM_POINTS - 1)
    return centre, best


def _profile_search(loss: Any, free: list[_Var], start: np.ndarray, steps: np.ndarray) -> np.ndarray:
    r"""Refine the grid optimum ``start`` (grid spacing ``steps``) by nested zoomed grids [derived].

    One variable: :func:`_zoom` on it. Two: the profile :math:`L^*(y)=\min_xL(x,y)` of the second variable,
    each profile value a zoom over the first (vectorised over the second's points). Along a ridge (the loss has a
    kink on a curve, e.g. the sketched law's optimum at :math:`k^*=M` with quantized data) a gradient search or an
    axis-aligned zoom stalls; the profile follows the ridge, and each zoom is exact up to its resolution."""
    x0 = free[0]

    def inner(ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        def f(xs: np.ndarray) -> np.ndarray:
            pts = np.stack([xs, np.broadcast_to(ys[:, None], xs.shape)], axis=-1) if ys.size else xs[..., None]
            return loss(pts.reshape(-1, pts.shape[-1])).reshape(xs.shape)

        n = max(ys.size, 1)
        return _zoom(f, np.full(n, start[0]), np.full(n, 2.0 * steps[0]), x0.lo, x0.hi, ZOOM_LEVELS[0])

    if len(free) == 1:
        return inner(np.empty(0))[0][:1]
    y0 = free[1]

    def profile(ys: np.ndarray) -> np.ndarray:
        shape = ys.shape
        return inner(ys.ravel())[1].reshape(shape)

    y, _ = _zoom(profile, np.array([start[1]]), np.array([2.0 * steps[1]]), y0.lo, y0.hi, ZOOM_LEVELS[1])
    x, _ = inner(y)
    return np.array([x[0], y[0]])


def _solve(model: AllocationModel, kind: str, budget: float, fixed: dict[str, float], extra: dict[str, float] | None,
           x0: np.ndarray | None = None) -> tuple[np.ndarray, float, list[_Var], Any]:
    """Grid then L-BFGS-B (or the profile search); with a warm start ``x0`` (a neighbouring budget's optimum) a
    local grid around it."""
    free, loss = _loss_function(model, kind, budget, fixed, extra)

    axes: list[np.ndarray] = []
    if x0 is not None and model.refine and free and len(x0) == len(free):
        half = [1.0 if v.log else 1.5 for v in free]
        counts = [41 if v.log else 21 for v in free]
        steps = np.array([2.0 * h / (n - 1) for h, n in zip(half, counts, strict=True)])  # before clipping
        axes = [np.clip(np.linspace(c - h, c + h, n), v.lo, v.hi)
                for c, h, n, v in zip(x0, half, counts, free, strict=True)]
        mesh = np.meshgrid(*axes, indexing="ij")
        grid = np.stack([m.ravel() for m in mesh], axis=-1)
    else:
        x0 = None
        grid = _grid(model, free)
    vals = loss(grid)
    if not np.any(np.isfinite(vals)):
        raise _infeasible(model, kind, budget, fixed, extra)
    best = grid[int(np.argmin(vals))]
    if free and model.refine and model.search == "profile" and len(free) <= 2:
        if not axes:
            sizes = [model.grid_1d] if len(free) == 1 else list(model.grid_2d)
            steps = np.array([(v.hi - v.lo) / (m - 1) for v, m in zip(free, sizes, strict=False)])
        x = _profile_search(loss, free, best, steps)
        if not float(loss(x[None, :])[0]) <= float(np.min(vals)):
            x = best
    elif free and model.refine and x0 is not None:
        # frontier mode: successive zoomed grids, one vectorised call each (L-BFGS-B's many scalar calls cost more)
        step = steps
        for _ in range(8):
            step = step / 4.0
            local = [np.clip(c + np.arange(-8, 9) * h, v.lo, v.hi) for c, h, v in zip(best, step, free, strict=True)]
            mesh = np.meshgrid(*local, indexing="ij")
            zgrid = np.stack([m.ravel() for m in mesh], axis=-1)
            zvals = loss(zgrid)
            best = zgrid[int(np.argmin(zvals))]
        x = best
    elif free and model.refine:
        bounds = [(v.lo, v.hi) for v in free]
        # finite differences that step outside the law's domain see inf (inf - inf warns); the grid start is
        # inside, and a refined point is kept only if it is better
        # L-BFGS-B's ftol test is absolute for |f| < 1 and would stop at once on small losses: scale those to 1
        f0 = float(loss(best[None, :])[0])
        scale = min(f0, 1.0)
        with np.errstate(invalid="ignore"):
            res = optimize.minimize(lambda z: float(loss(z[None, :])[0]) / scale, best, method="L-BFGS-B",
                                    bounds=bounds, options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 500})
        x = res.x if res.fun * scale <= f0 else best
    else:
        x = best
    return x, float(loss(x[None, :])[0]), free, loss


def _check_interior(model: AllocationModel, x: np.ndarray, free: list[_Var], kind: str, loss_fn: Any,
                    best: float) -> None:
    """Refuse an optimum on a bound, or one the loss does not rise from toward a bound (it keeps decreasing or is
    flat to rounding there, as with an unlimited data size)."""
    for i, v in enumerate(free):
        span = v.hi - v.lo
        name = model.labels[v.role]
        hint = ""
        if v.role == "data" and kind == "memory":
            hint = f"a memory budget does not limit {name}; fix it with --fix {name}=... or use a compute budget"
        tol = 0.5 if (not model.refine and v.role == "precision") else 1e-4 * span
        for bound, label in ((v.lo, "lower bound"), (v.hi, "upper bound")):
            at_bound = abs(x[i] - bound) < tol
            if not at_bound and model.refine:
                probe = x.copy()
                probe[i] = bound
                at_bound = float(loss_fn(probe[None, :])[0]) <= best * (1 + 1e-12)
            if at_bound:
                raise BoundaryOptimumError(name, 10 ** x[i] if v.log else x[i], label, hint)


def _flat_range(model: AllocationModel, kind: str, budget: float, fixed: dict[str, float], extra: dict | None,
                size: float, data: float, P: float, loss: float, rtol: float) -> tuple[float, float]:
    """Range of the size (other variables re-derived from the budget, precision held) within ``rtol``."""
    if "size" in fixed:
        return (size, size)
    span, points = (6.0, 2401) if model.refine else (1.0, 9)  # costly objectives: a coarse profile
    logs = np.log10(size) + np.linspace(-span, span, points)
    s = 10**logs
    if kind == "compute" and "data" not in fixed:
        d = budget / (model.compute_constant * s * P)
    else:
        d = np.full_like(s, data)
    p = np.full_like(s, P)
    if kind == "memory" and "precision" not in fixed:
        p = budget / s
    vals = model.raw_loss(s, d, p, extra)
    ok = vals <= loss * (1 + rtol) + 1e-300
    idx = np.nonzero(ok)[0]
    if idx.size == 0:
        return (size, size)
    centre = int(np.argmin(np.abs(logs - np.log10(size))))
    lo = hi = centre
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    while hi < len(ok) - 1 and ok[hi + 1]:
        hi += 1
    return (float(s[lo]), float(s[hi]))


def flatness_range(model: AllocationModel, alloc: Allocation, tol: float = 0.005) -> Flatness | None:
    r"""The near-optimal set of an allocation: every allocation on the same budget whose loss is at most
    :math:`(1+\mathrm{tol})\,L^*`, as intervals on size, data per size and precision.

    The variables the budget leaves free (size, and precision unless it is fixed or a named format) are
    searched on a grid around the optimum that widens until the set is enclosed (or a bound of the law's domain
    is reached, reported in ``open_ends``) and then zooms twice onto the set's bounding box; with one free
    variable the two ends are then bisected to full precision. Costly objectives (``refine = False``) get
    ``None``.
    """
    tol = _checks.positive("--flatness-tol", tol)
    if not model.refine:
        return None
    fixed = {model_role: v for model_role, v in _roles_of(model, alloc.fixed).items()}
    extra = None
    if alloc.format is not None:
        fmt = model.format(alloc.format)
        fixed["precision"] = fmt.bits
        extra = {**fmt.extra, "law_precision": fmt.law_precision}
    elif alloc.method.startswith("grid"):  # integer bits: the precision is a choice among whole numbers
        fixed["precision"] = alloc.precision
    free, loss = _loss_function(model, alloc.budget_kind, alloc.budget, fixed, extra)
    point = {"size": alloc.size, "data": alloc.data, "precision": alloc.precision}
    x0 = np.array([math.log10(point[v.role]) if v.log else point[v.role] for v in free])
    best = float(loss(x0[None, :])[0]) if free else alloc.loss
    if not math.isfinite(best):
        return None
    thresh = best * (1.0 + tol) if best > 0 else best + tol * abs(best)
    if not free:
        return Flatness(tol, (alloc.size, alloc.size), (alloc.data / alloc.size,) * 2, (alloc.precision,) * 2)
    n = 2001 if len(free) == 1 else 241
    half = [2.0 if v.log else (v.hi - v.lo) for v in free]
    lo_ax = [max(v.lo, c - h) if v.log else v.lo for v, c, h in zip(free, x0, half, strict=True)]
    hi_ax = [min(v.hi, c + h) if v.log else v.hi for v, c, h in zip(free, x0, half, strict=True)]
    comp = None
    for _ in range(12):  # widen until the set is enclosed (or the domain's bound is reached)
        axes, comp = _flat_component(loss, x0, lo_ax, hi_ax, n, thresh)
        grow = False
        for i, v in enumerate(free):
            idx = np.nonzero(np.any(comp, axis=tuple(j for j in range(len(free)) if j != i)))[0]
            if idx[0] == 0 and lo_ax[i] > v.lo:
                lo_ax[i], grow = max(v.lo, lo_ax[i] - 2 * (x0[i] - lo_ax[i]) - 1.0), True
            if idx[-1] == len(axes[i]) - 1 and hi_ax[i] < v.hi:
                hi_ax[i], grow = min(v.hi, hi_ax[i] + 2 * (hi_ax[i] - x0[i]) + 1.0), True
        if not grow:
            break
    for _ in range(2):  # zoom onto the bounding box of the set
        new_lo, new_hi = [], []
        for i, ax in enumerate(axes):
            idx = np.nonzero(np.any(comp, axis=tuple(j for j in range(len(free)) if j != i)))[0]
            step = (ax[-1] - ax[0]) / max(len(ax) - 1, 1)
            new_lo.append(max(free[i].lo, ax[idx[0]] - 2 * step))
            new_hi.append(min(free[i].hi, ax[idx[-1]] + 2 * step))
        lo_ax, hi_ax = new_lo, new_hi
        axes, comp = _flat_component(loss, x0, lo_ax, hi_ax, n, thresh)
    mesh = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([m[comp] for m in mesh], axis=-1)
    if len(free) == 1:  # bisect both ends of the interval
        f1 = lambda z: float(loss(np.array([[z]]))[0])  # noqa: E731
        ax = axes[0]
        idx = np.nonzero(comp)[0]
        ends = []
        for inside, outside in ((idx[0], idx[0] - 1), (idx[-1], idx[-1] + 1)):
            a = ax[inside]
            if 0 <= outside < len(ax):
                b = ax[outside]
                for _ in range(60):
                    m = 0.5 * (a + b)
                    a, b = (m, b) if f1(m) <= thresh else (a, m)
            ends.append(a)
        pts = np.array([[ends[0]], [ends[1]]])
    s_, d_, p_ = _assemble(model, alloc.budget_kind, alloc.budget, fixed, free, pts)
    open_ends = []
    for i, v in enumerate(free):
        name = model.labels[v.role]
        if pts[:, i].min() <= v.lo + 1e-12 * max(1.0, abs(v.lo)):
            open_ends.append(f"{name} lower")
        if pts[:, i].max() >= v.hi - 1e-12 * max(1.0, abs(v.hi)):
            open_ends.append(f"{name} upper")
    ratio = d_ / s_
    return Flatness(tol, (float(s_.min()), float(s_.max())), (float(ratio.min()), float(ratio.max())),
                    (float(p_.min()), float(p_.max())), tuple(open_ends))


def _flat_component(loss: Any, x0: np.ndarray, lo: list[float], hi: list[float], n: int,
                    thresh: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Grid axes (each containing the optimum's coordinate) and the connected set within ``thresh`` that
    contains the optimum."""
    from scipy import ndimage

    axes = [np.union1d(np.linspace(a, b, n), [c]) for a, b, c in zip(lo, hi, x0, strict=True)]
    mesh = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([m.ravel() for m in mesh], axis=-1)
    ok = (loss(pts) <= thresh).reshape(mesh[0].shape)
    centre = tuple(int(np.searchsorted(ax, c)) for ax, c in zip(axes, x0, strict=True))
    ok[centre] = True  # the optimum itself (its loss defines the threshold)
    labels, _ = ndimage.label(ok)
    return axes, labels == labels[centre]


def _roles_of(model: AllocationModel, fixed_by_label: dict[str, float]) -> dict[str, float]:
    inv = {v: k for k, v in model.labels.items()}
    return {inv[k]: v for k, v in fixed_by_label.items() if k in inv}


def _dominant(model: AllocationModel, terms: dict[str, float]) -> str:
    reducible = {k: v for k, v in terms.items() if k not in model.constant_terms}
    return max(reducible, key=lambda k: reducible[k]) if reducible else max(terms, key=lambda k: terms[k])


def _fixed_roles(model: AllocationModel, fix: dict[str, float] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    inv = {v: k for k, v in model.labels.items()}
    for name, value in (fix or {}).items():
        if name not in inv:
            raise ParameterError("--fix", name, "name one of " + ", ".join(model.labels.values()))
        role = inv[name]
        if role == "precision":
            val = _checks.positive(f"--fix {name}", value)
            lo, hi = model.precision_bounds
            if model.precision_free and not lo <= val <= hi:
                raise ParameterError(f"--fix {name}", value,
                                     f"be within the law's precision domain [{lo:.4g}, {hi:.4g}]")
        else:
            val = _checks.positive(f"--fix {name}", value)
            if val < 1.0:  # the search, like the laws' sizes, starts at one
                raise ParameterError(f"--fix {name}", value, "be >= 1 (a count of parameters or samples)")
        out[role] = val
    return out


def _one(model: AllocationModel, kind: str, budget: float, fixed: dict[str, float], fmt: Format | None,
         flat_rtol: float, flat_factor: float, check_flat: bool = True, x0: np.ndarray | None = None) -> Allocation:
    """Numeric optimum at fixed roles; a format fixes the budget's bits and the law's precision inputs."""
    extra = None
    fixed = dict(fixed)
    if fmt is not None:
        fixed["precision"] = fmt.bits
        extra = {**fmt.extra, "law_precision": fmt.law_precision}
    x, loss, free, loss_fn = _solve(model, kind, budget, fixed, extra, x0)
    if not math.isfinite(loss):
        raise ParameterError("--budget", budget, "leave a feasible allocation")
    _check_interior(model, x, free, kind, loss_fn, loss)
    s, d, p = _assemble(model, kind, budget, fixed, free, x[None, :])
    size, data, P = float(s[0]), float(d[0]), float(p[0])
    terms = model.terms(size, data, P, extra)
    flat = (size, size)
    if check_flat:
        flat = _flat_range(model, kind, budget, fixed, extra, size, data, P, loss, flat_rtol)
        if flat[1] / flat[0] > flat_factor:
            raise FlatOptimumError(model.labels["size"], flat[0], flat[1], flat_rtol)
    user_fixed = {model.labels[k]: v for k, v in fixed.items() if fmt is None or k != "precision"}
    return Allocation(
        law=model.name, labels=dict(model.labels), size=size, data=data, precision=P,
        format=fmt.name if fmt is not None else None, loss=loss, terms=terms, dominant_term=_dominant(model, terms),
        method="numeric", budget=budget, budget_kind=kind, fixed=user_fixed, flat_range=flat, search_point=x,
    )


def optimize_allocation(
    law: str | Law | AllocationModel,
    budget: float,
    *,
    kind: str = "compute",
    formats: Sequence[str] | None = None,
    fix: dict[str, float] | None = None,
    integer_bits: bool = False,
    flat_rtol: float = 1e-3,
    flat_factor: float = 100.0,
    flatness_tol: float = 0.005,
    **options: Any,
) -> Allocation:
    """Minimise a law's loss (or risk) under a budget.

    Parameters
    ----------
    law : str, Law or AllocationModel
        ``chinchilla[:set]``, ``kumar``, ``sun``, ``chen``, ``sketched``, ``sketched-quantized`` (or an instance).
    budget : float
        Compute (FLOP-equivalents; bit-operations :math:`MNP` for the regression model) or memory (bits).
    kind : {"compute", "memory"}
        Budget kind.
    formats : sequence of str, optional
        Restrict the precision to these named formats (the best one is reported, every one in ``candidates``).
    fix : dict, optional
        Fix variables by their label, e.g. ``{"P": 8}`` or ``{"N": 7e10}``.
    integer_bits : bool
        Restrict a continuous precision to integers (grid search over bits).
    flat_rtol, flat_factor : float
        Refuse (:class:`FlatOptimumError`) when sizes over a factor ``flat_factor`` are within ``flat_rtol`` of
        the optimal loss.
    flatness_tol : float
        Relative loss tolerance of the reported near-optimal set (:func:`flatness_range`; default 0.5%).
    **options
        Passed to :func:`allocation_model` when ``law`` is a name.

    Returns
    -------
    Allocation
    """
    model = law if isinstance(law, AllocationModel) else allocation_model(law, **options)
    flatness_tol = _checks.positive("--flatness-tol", flatness_tol)
    alloc = _optimize(model, budget, kind, formats, fix, integer_bits, flat_rtol, flat_factor)
    extra = None
    if alloc.format is not None:
        fmt = model.format(alloc.format)
        extra = {**fmt.extra, "law_precision": fmt.law_precision}
    return _replace(alloc, flatness=flatness_range(model, alloc, flatness_tol),
                    details=model.details(alloc.size, alloc.data, alloc.precision, extra))


def _optimize(model: AllocationModel, budget: float, kind: str, formats: Sequence[str] | None,
              fix: dict[str, float] | None, integer_bits: bool, flat_rtol: float, flat_factor: float) -> Allocation:
    kind = _checks.choice("--budget-kind", kind, ["compute", "memory"])
    budget = _checks.positive("--budget", budget)
    flat_rtol = _checks.positive("--flat-rtol", flat_rtol)
    flat_factor = float(flat_factor)
    if not flat_factor > 1:  # inf is allowed: never refuse a flat optimum
        raise ParameterError("--flat-factor", flat_factor, "be > 1 (inf: never refuse a flat optimum)")
    fixed = _fixed_roles(model, fix)
    if kind == "compute" and "size" in fixed and "data" in fixed and "precision" not in fixed and model.precision_free:
        lab = model.labels
        bits = budget / (model.compute_constant * fixed["size"] * fixed["data"])
        raise ParameterError("--fix", f"{lab['size']}={fixed['size']:g},{lab['data']}={fixed['data']:g}",
                             f"leave {lab['size']} or {lab['data']} free under a compute budget: with both fixed the "
                             f"budget only sets the precision, {lab['precision']} = C/(k {lab['size']} {lab['data']}) "
                             f"= {bits:.4g} bits (evaluate that configuration with predict)")
    roles = [r for r in model.labels if r != "precision" or model.precision_free]
    if all(r in fixed for r in roles):
        raise ParameterError("--fix", ",".join(f"{model.labels[k]}={v:g}" for k, v in fixed.items()),
                             "leave one of " + ", ".join(model.labels[r] for r in roles)
                             + " free for the budget to allocate")
    if formats and integer_bits:
        raise ParameterError("--formats", ",".join(formats), "not be combined with integer bits")
    if formats:
        if "precision" in fixed:
            raise ParameterError("--fix", model.labels["precision"], "not be combined with --formats")
        candidates = {}
        best: Allocation | None = None
        for name in formats:
            fmt = model.format(name)
            alloc = _one(model, kind, budget, fixed, fmt, flat_rtol, flat_factor)
            candidates[name] = {model.labels["size"]: alloc.size, model.labels["data"]: alloc.data, "loss": alloc.loss}
            if best is None or alloc.loss < best.loss:
                best = alloc
        assert best is not None
        method = "grid (named formats)" + (f"; {model.format_note}" if model.format_note else "")
        return _replace(best, method=method, candidates=candidates,
                        reference=model.reference(budget, kind))
    if integer_bits and model.precision_free and "precision" not in fixed:
        lo, hi = model.precision_bounds
        candidates = {}
        best = None
        for bits in range(math.ceil(lo + 1e-9), math.floor(hi) + 1):
            try:
                alloc = _one(model, kind, budget, {**fixed, "precision": float(bits)}, None, flat_rtol, flat_factor)
            except ParameterError:
                continue
            candidates[str(bits)] = {model.labels["size"]: alloc.size, model.labels["data"]: alloc.data,
                                     "loss": alloc.loss}
            if best is None or alloc.loss < best.loss:
                best = alloc
        if best is None:
            raise ParameterError("--budget", budget, "leave a feasible integer precision")
        best = _replace(best, fixed={k: v for k, v in best.fixed.items() if k != model.labels["precision"]})
        return _replace(best, method="grid (integer bits)", candidates=candidates,
                        reference=model.reference(budget, kind))
    alloc = _one(model, kind, budget, fixed, None, flat_rtol, flat_factor)
    closed = model.closed(np.asarray([budget]), kind, fixed)
    reference = model.reference(budget, kind)
    if closed is None:
        return _replace(alloc, reference=reference)
    return _with_closed(model, alloc, closed, kind, budget, fixed, reference)


def _with_closed(model: AllocationModel, alloc: Allocation, closed: dict[str, np.ndarray], kind: str, budget: float,
                 fixed: dict[str, float], reference: dict[str, Any]) -> Allocation:
    """Report the closed form as the answer when it has size and data; numeric optimum as the check."""
    numeric = {model.labels["size"]: alloc.size, model.labels["data"]: alloc.data,
               model.labels["precision"]: alloc.precision, "loss": alloc.loss}
    if "size" not in closed:  # closed precision only (Sun): optimise size/data at that precision
        P = float(closed["precision"][0])
        at = _one(model, kind, budget, {**fixed, "precision": P}, None, 1e-3, math.inf, check_flat=False)
        check = {"numeric": numeric, "rel_diff_precision": abs(P / alloc.precision - 1),
                 "rel_diff_loss": abs(at.loss / alloc.loss - 1)}
        return _replace(at, method="closed (precision) + numeric (size, data)", check=check, reference=reference,
                        flat_range=alloc.flat_range, fixed=alloc.fixed)
    size, data, P = (float(closed[r][0]) for r in ROLES)
    if not math.isfinite(size):
        return _replace(alloc, reference=reference, check={"closed": "no solution of the balance equation"})
    loss = float(model.raw_loss(np.array([size]), np.array([data]), np.array([P]))[0])
    if not model.closed_is_exact:
        # an asymptotic closed form: the numeric optimum of the full law is the answer, the closed form the check
        closed_d = {model.labels["size"]: size, model.labels["data"]: data, model.labels["precision"]: P,
                    "loss": loss}
        check = {"closed": closed_d, "rel_diff_size": abs(size / alloc.size - 1),
                 "rel_diff_loss": abs(loss / alloc.loss - 1)}
        return _replace(alloc, method="numeric (closed form as check)", check=check, reference=reference)
    terms = model.terms(size, data, P)
    check = {"numeric": numeric, "rel_diff_size": abs(size / alloc.size - 1),
             "rel_diff_data": abs(data / alloc.data - 1), "rel_diff_loss": abs(loss / alloc.loss - 1)}
    return _replace(alloc, size=size, data=data, precision=P, loss=loss, terms=terms,
                    dominant_term=_dominant(model, terms), method="closed", check=check, reference=reference)


def _replace(a: Allocation, **changes: Any) -> Allocation:
    from dataclasses import replace

    return replace(a, **changes)


# ------------------------------------------------------------------------------------------- frontiers
@dataclass(frozen=True)
class Frontier:
    """Optimal allocations over a range of budgets (arrays aligned with ``budgets``)."""

    law: str
    labels: dict[str, str]
    budgets: np.ndarray
    size: np.ndarray
    data: np.ndarray
    precision: np.ndarray
    loss: np.ndarray
    method: str
    budget_kind: str
    numeric_size: np.ndarray | None = None  # brute-force check when the frontier is analytic
    details: dict[str, Any] = field(default_factory=dict)  # e.g. Sun's layout along the frontier

    def exponent(self, which: str = "size") -> tuple[float, float]:
        """Least-squares slope of log(which) against log(budget), and its standard error."""
        y = np.log(getattr(self, which))
        x = np.log(self.budgets)
        ok = np.isfinite(y)
        (slope, _), cov = np.polyfit(x[ok], y[ok], 1, cov=True)
        return float(slope), float(math.sqrt(cov[0, 0]))

    def to_dict(self) -> dict[str, Any]:
        lab = self.labels
        out = {"law": self.law, "budget_kind": self.budget_kind, "method": self.method,
               "budgets": self.budgets.tolist(), lab["size"]: self.size.tolist(), lab["data"]: self.data.tolist(),
               lab["precision"]: self.precision.tolist(), "loss": self.loss.tolist(),
               f"exponent_{lab['size']}": self.exponent("size")[0]}
        if self.numeric_size is not None:
            out[f"numeric_{lab['size']}"] = self.numeric_size.tolist()
        out.update(self.details)
        return out


def require_frontier(model: AllocationModel, n_budgets: int, *, numeric: bool = True) -> None:
    """Refuse a frontier whose estimated time or memory exceeds the machine's limits (:mod:`scalinglaw.resources`).

    ``numeric``: whether every budget needs a numeric optimum (a closed-form frontier without the check costs
    microseconds per budget)."""
    from .resources import Estimate, require

    per = model.seconds_per_solve if numeric else 1e-5
    require(Estimate(f"a frontier over {n_budgets:g} budgets", memory=n_budgets * 8.0 * 64, seconds=n_budgets * per),
            "--frontier", f"{n_budgets:g} budgets", hint=f"about {per:g} s per budget")


def frontier(law: str | Law | AllocationModel, budgets: Sequence[float] | np.ndarray, *, kind: str = "compute",
             fix: dict[str, float] | None = None, check: bool = False, **options: Any) -> Frontier:
    """The optimal allocation as a function of the budget.

    Vectorised closed form where the law has one (``check=True`` adds the brute-force numeric optimum at every
    budget); numeric optimisation otherwise.
    """
    model = law if isinstance(law, AllocationModel) else allocation_model(law, **options)
    kind = _checks.choice("--budget-kind", kind, ["compute", "memory"])
    C = _checks.as_array("--frontier", budgets).ravel()
    if np.any(~(C > 0)):
        raise ParameterError("--frontier", float(C[~(C > 0)][0]), "contain only positive budgets")
    fixed = _fixed_roles(model, fix)
    closed = model.closed(C, kind, fixed) if model.closed_is_exact else None
    require_frontier(model, C.size, numeric=check or closed is None or "size" not in closed)
    if closed is not None and "size" in closed:
        s, d, p = (np.asarray(closed[r], dtype=np.float64) for r in ROLES)
        loss = model.raw_loss(s, d, p)
        numeric = None
        if check:
            numeric = np.array([_one(model, kind, float(c), fixed, None, 1e-3, math.inf, check_flat=False).size
                                for c in C])
        return Frontier(model.name, dict(model.labels), C, s, d, p, loss, "closed", kind, numeric,
                        model.details(s, d, p))
    allocs: list[Allocation] = []
    for c in C:  # warm start from the previous budget's optimum
        x0 = allocs[-1].search_point if allocs else None
        allocs.append(_one(model, kind, float(c), fixed, None, 1e-3, math.inf, check_flat=False, x0=x0))
    s, d, p = (np.array([getattr(a, r) for a in allocs]) for r in ("size", "data", "precision"))
    return Frontier(model.name, dict(model.labels), C, s, d, p, np.array([a.loss for a in allocs]), "numeric", kind,
                    details=model.details(s, d, p))


def isoflop(law: str | Law | AllocationModel, budgets: Sequence[float], *, precision: float | None = None,
            points: int = 200, span: float = 3.0, **options: Any) -> dict[str, Any]:
    """isoFLOP curves: loss against size at fixed compute (data from the budget), precision held fixed.

    ``precision`` defaults to the optimal precision at each budget. Returns the size grids, the losses and the
    minimum of each curve.
    """
    model = law if isinstance(law, AllocationModel) else allocation_model(law, **options)
    curves = []
    for c in budgets:
        opt = optimize_allocation(model, float(c), fix=None if precision is None else
                                  {model.labels["precision"]: precision}, flat_factor=math.inf)
        P = precision if precision is not None else opt.precision
        sizes = opt.size * np.logspace(-span, span, points)
        data = float(c) / (model.compute_constant * sizes * P)
        loss = model.raw_loss(sizes, data, np.full_like(sizes, P))
        curves.append({"budget": float(c), "precision": float(P), "size": sizes, "loss": loss,
                       "min_size": opt.size, "min_loss": opt.loss})
    return {"law": model.name, "labels": dict(model.labels), "curves": curves}


def isoloss(law: str | Law | AllocationModel, *, data: float, sizes: np.ndarray, precisions: np.ndarray,
            **options: Any) -> dict[str, Any]:
    """Loss over a (size, precision) grid at fixed data: the iso-loss contours of a memory budget
    :math:`\\mathrm{size}\\cdot P`."""
    model = law if isinstance(law, AllocationModel) else allocation_model(law, **options)
    S, P = np.meshgrid(np.asarray(sizes, dtype=float), np.asarray(precisions, dtype=float), indexing="xy")
    loss = model.raw_loss(S, np.full_like(S, _checks.positive("data", data)), P)
    return {"law": model.name, "labels": dict(model.labels), "size": S, "precision": P, "loss": loss,
            "data": data}


def optimize_communication(budget: float, **options: Any) -> Any:
    """Optimal workers :math:`K`, model size :math:`M` and message bits :math:`b` under a communication budget
    (bits per step :math:`KMb` at fixed steps, or total bits), beside an optional compute cap: see
    :func:`scalinglaw.comm_allocation.optimize_communication` [recon: closed forms; derived: budgets]."""
    from .comm_allocation import optimize_communication as _opt

    return _opt(budget, **options)
