r"""Sun et al. 2025, *Scaling Laws for Floating-Point Quantization Training* ("Capybara"), arXiv 2501.02423.

The law (Eq. 1 = Eq. 18 = Eq. 26; Table 2) [SRC]:

.. math::

    L(N, D, E, M, B) = \frac{n}{N^\alpha} + \frac{d}{D^\beta} + \epsilon
        + \frac{D^\beta}{N^\alpha}\,\frac{\log_2 B}{\gamma\,(E+0.5)^\delta\,(M+0.5)^\nu},

with E exponent bits, M mantissa bits, B the block size of the absmax scaling factor, total precision
:math:`P = E + M + 1` (sign bit). :math:`\gamma` is a multiplicative denominator constant (not an exponent of B,
as one secondary blog renders it). Raw parameters and raw tokens [RECON, verified by the critical data sizes].

Derived quantities (App. C-E) [SRC]: the optimal layout at fixed P (Eq. 19/31), :math:`\gamma_\rho` (Eq. 20/35),
the critical data size (Eq. 21), and the compute-optimal precision at fixed D (Eq. 47), fixed N (Eq. 52) and
jointly (Eq. 25/54), under the cost model :math:`C = k(P+b)ND` with :math:`b=0` and :math:`k=6/16`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import numpy as np
import sympy as sp

from .. import _checks
from ..errors import ParameterError
from .base import Law, Variable, refuse_options
from .constants import ConstantSet

__all__ = [
    "CHANNEL_LOG2_BLOCK",
    "Layout",
    "SunLaw",
    "critical_data_size",
    "gamma_rho",
    "optimal_layout",
]

SUN_SOURCE = (
    "Sun et al., Scaling Laws for Floating-Point Quantization Training, ICML 2025, arXiv 2501.02423v3, "
    "https://arxiv.org/abs/2501.02423"
)

#: log2 of the effective block size of channel-wise scaling (Sun et al. §7) [SRC].
CHANNEL_LOG2_BLOCK = 13.1567

#: Widest format the law is evaluated for (sign + exponent + mantissa bits); wider finite widths are refused.
MAX_FORMAT_BITS = 64.0
#: Finite stand-in for infinite E or M in the mpmath reference path.
_MP_INFINITY = 1e30

#: The cost-model constant k of C = k (P + b) N D used in the paper's figures [SRC, Eq. 42].
K_COMPUTE = 6.0 / 16.0

TABLE2 = ConstantSet(
    name="table2",
    values={
        "n": 69.2343,
        "alpha": 0.2368,
        "d": 68973.0621,
        "beta": 0.5162,
        "epsilon": 1.9061,
        "gamma": 11334.5197,
        "delta": 3.1926,
        "nu": 2.9543,
    },
    source=SUN_SOURCE,
    table="Table 2",
    confidence="high (the paper's critical data sizes are reproduced to 3 significant figures)",
    provenance="[SRC]",
    notes="Raw N (parameters) and raw D (tokens) [RECON, verified by the D_crit check].",
)

CONSTANT_DESCRIPTIONS: dict[str, str] = {
    "n": "coefficient of the parameter term n/N^alpha",
    "alpha": "exponent of N",
    "d": "coefficient of the data term d/D^beta",
    "beta": "exponent of D",
    "epsilon": "irreducible loss",
    "gamma": "denominator constant of the quantization term",
    "delta": "exponent of (E + 0.5)",
    "nu": "exponent of (M + 0.5)",
}


class Layout(NamedTuple):
    """An FP layout: integer exponent and mantissa bits, and the continuous optimum they round."""

    E: np.ndarray
    M: np.ndarray
    E_continuous: np.ndarray
    M_continuous: np.ndarray


class SunLaw(Law):
    r"""Sun et al. floating-point quantized-training law (Eq. 1, Table 2) [SRC].

    .. math::

        L = \frac{n}{N^\alpha} + \frac{d}{D^\beta} + \epsilon
            + \frac{D^\beta}{N^\alpha}\frac{\log_2 B}{\gamma(E+0.5)^\delta(M+0.5)^\nu}

    Source: Sun et al. 2025 (arXiv 2501.02423v3), Eq. 1 (= Eqs. 18, 26), constants Table 2 [SRC].

    Parameters
    ----------
    constants : str, ConstantSet or mapping, optional
        ``"table2"`` (default), a :class:`ConstantSet`, or a mapping of the eight constants.

    Notes
    -----
    Inputs: ``N``, ``D`` (raw counts, >= 1); ``E`` exponent bits (>= 1) and ``M`` mantissa bits (>= 0), with
    :math:`E+M+1\le64` (``inf`` = high precision, which removes the quantization term; the CLI spells ``M`` as
    ``--Mbits``); ``B`` block size of the
    scaling factor (>= 1; channel-wise scaling is ``2**CHANNEL_LOG2_BLOCK``). Terms: ``model`` :math:`n/N^\alpha`,
    ``data`` :math:`d/D^\beta`, ``irreducible`` :math:`\epsilon`, ``quantization`` (the last term).
    The domain is where the law is finite; the paper's runs used E1-E8 layouts and block sizes up to
    channel-wise, so extrapolation far outside that is the user's responsibility.
    """

    name: ClassVar[str] = "sun"
    title: ClassVar[str] = "Sun et al. 2025 floating-point quantized-training law in (N, D, E, M, B)"
    provenance: ClassVar[str] = "[SRC] Sun et al. Eq. 1 (= Eqs. 18, 26), Table 2"
    variables: ClassVar[tuple[Variable, ...]] = (
        Variable("N", "parameters (raw count)", lower=1.0, lower_inclusive=True, why="a count of parameters"),
        Variable("D", "training tokens (raw count)", lower=1.0, lower_inclusive=True, why="a count of tokens"),
        Variable("E", "exponent bits (inf = high precision)", lower=1.0, lower_inclusive=True,
                 why="a floating-point format has at least one exponent bit; E = 0 is an integer format, outside "
                     "the law", allow_inf=True),
        Variable("M", "mantissa bits (inf = high precision)", lower=0.0, lower_inclusive=True, why="a number of bits",
                 allow_inf=True),
        Variable(
            "B",
            "block size of the absmax scaling factor (elements per scale)",
            lower=1.0,
            lower_inclusive=True,
            why="a block of at least one element, so log2 B >= 0",
        ),
    )
    constant_sets: ClassVar[dict[str, ConstantSet]] = {"table2": TABLE2}
    default_constants: ClassVar[str] = "table2"
    constant_descriptions: ClassVar[dict[str, str]] = CONSTANT_DESCRIPTIONS

    def __init__(self, constants: str | ConstantSet | Mapping[str, float] | None = None, **options: Any) -> None:
        refuse_options(options, "law sun has no options")
        super().__init__(constants)

    def _validate(self, values: dict[str, np.ndarray]) -> None:
        width = values["E"] + values["M"] + 1.0
        bad = np.isfinite(width) & (width > MAX_FORMAT_BITS)
        if np.any(bad):
            raise ParameterError("E", float(np.broadcast_to(values["E"], bad.shape)[bad].ravel()[0]),
                                 f"make a format of at most {MAX_FORMAT_BITS:g} bits with M: E + M + 1 = "
                                 f"{float(width[bad].ravel()[0]):g} (inf, not a huge width, means high precision)")

    def _terms(self) -> dict[str, sp.Expr]:
        c = self.constant_symbol
        N, D, E, M, B = (v.symbol for v in self.variables)
        half = sp.Rational(1, 2)
        return {
            "model": c("n") * N ** (-c("alpha")),
            "data": c("d") * D ** (-c("beta")),
            "irreducible": c("epsilon"),
            "quantization": D ** c("beta")
            * N ** (-c("alpha"))
            * sp.log(B, 2)
            / (c("gamma") * (E + half) ** c("delta") * (M + half) ** c("nu")),
        }

    def evaluate_mpmath(self, term: str | None = None, *, dps: int = 50, **values: Any) -> Any:
        """Arbitrary-precision reference evaluation (scalars); infinite E or M count as 1e30 bits."""
        self._inputs(values)
        finite = {k: (_MP_INFINITY if k in ("E", "M") and math.isinf(float(v)) else v) for k, v in values.items()}
        return super().evaluate_mpmath(term, dps=dps, **finite)

    # ------------------------------------------------------------------------------------------ derived
    def gamma_rho(self) -> float:
        r""":math:`\gamma_\rho = \gamma\,\delta^\delta\nu^\nu/(\delta+\nu)^{\delta+\nu}` (Eq. 20/35) [SRC].

        With the optimal layout the quantization term is :math:`\frac{D^\beta}{N^\alpha}
        \frac{\log_2 B}{\gamma_\rho P^{\delta+\nu}}`. Table 2 gives 160.697 [COMPUTED].
        """
        k = self.constants
        d, v = k["delta"], k["nu"]
        return k["gamma"] * math.exp(d * math.log(d) + v * math.log(v) - (d + v) * math.log(d + v))

    def gamma_D(self) -> float:
        r""":math:`\gamma_D = (\delta+\nu-\alpha)/(n\,\alpha\,\gamma_\rho)` of the fixed-D optimum (Eq. 47) [SRC].

        Table 2 gives :math:`2.2433\times10^{-3}` [COMPUTED].
        """
        k = self.constants
        return (k["delta"] + k["nu"] - k["alpha"]) / (k["n"] * k["alpha"] * self.gamma_rho())

    def gamma_N(self) -> float:
        r""":math:`\gamma_N = (\beta+\delta+\nu)/(d\,\beta\,\gamma_\rho)` of the fixed-N optimum (Eq. 52) [SRC]."""
        k = self.constants
        return (k["beta"] + k["delta"] + k["nu"]) / (k["d"] * k["beta"] * self.gamma_rho())

    def optimal_layout(self, P: Any) -> Layout:
        r"""Loss-optimal FP layout at total precision :math:`P = E + M + 1` (Eq. 19/31) [SRC].

        .. math::

            M_{\rm opt} = \frac{\nu P}{\delta+\nu} - 0.5,\qquad E_{\rm opt} = P - 1 - M_{\rm opt}

        The integer layout is whichever of :math:`\lfloor M_{\rm opt}\rfloor`, :math:`\lceil M_{\rm opt}\rceil`
        (clipped to :math:`0 \le M \le P-1`) maximises :math:`(E+0.5)^\delta(M+0.5)^\nu`, i.e. minimises the
        quantization term. Table 2 gives FP4 -> E2M1, FP8 -> E4M3, FP16 -> E8M7 (:math:`M_{\rm opt}` = 1.42,
        3.35, 7.19 [COMPUTED]).

        Parameters
        ----------
        P : array_like
            Total bits including the sign bit (integers >= 2 for the integer layout).

        Returns
        -------
        Layout
            ``(E, M, E_continuous, M_continuous)``, arrays broadcast over ``P``.
        """
        P = _checks.as_array("P", P)
        if np.any(~(P >= 2)) or np.any(np.isinf(P)) or np.any(P != np.floor(P)):
            bad = P[~((P >= 2) & np.isfinite(P) & (P == np.floor(P)))].ravel()[0]
            raise ParameterError("P", float(bad), "be a whole number of bits >= 2 (sign + exponent + mantissa)")
        k = self.constants
        d, v = k["delta"], k["nu"]
        M_c = v * P / (d + v) - 0.5
        E_c = P - 1.0 - M_c
        lo = np.clip(np.floor(M_c), 0.0, P - 1.0)
        hi = np.clip(np.ceil(M_c), 0.0, P - 1.0)

        def score(M: np.ndarray) -> np.ndarray:
            return d * np.log(P - 1.0 - M + 0.5) + v * np.log(M + 0.5)

        M = np.where(score(hi) > score(lo), hi, lo)
        return Layout(E=P - 1.0 - M, M=M, E_continuous=E_c, M_continuous=M_c)

    def critical_data_size(self, N: Any, E: Any, M: Any, B: Any) -> np.ndarray:
        r"""Critical data size beyond which more data raises the loss (Eq. 21, App. D) [SRC].

        .. math::

            D_{\rm crit} = \Bigl[\frac{d\,\gamma\,N^\alpha (E+0.5)^\delta (M+0.5)^\nu}{\log_2 B}\Bigr]^{1/(2\beta)}

        For N = 1e9 and B = 128: BF16 (E8M7) 1729.5T, E4M3 27.3T, E2M1 0.393T tokens [COMPUTED]; the paper
        says 1730T, 27T and 0.4T.

        Parameters
        ----------
        N : array_like
            Parameters (> 0).
        E, M : array_like
            Exponent and mantissa bits (>= 0).
        B : array_like
            Block size (> 1; with B = 1 there is no quantization term and no critical size).

        Returns
        -------
        ndarray
            :math:`D_{\rm crit}` in tokens (``inf`` for infinite E or M).
        """
        N, _, E, M, _ = self._inputs({"N": N, "D": 1.0, "E": E, "M": M, "B": B})
        log2_block = self._log2_block(B)
        k = self.constants
        with np.errstate(divide="ignore"):
            log_inner = (
                math.log(k["d"] * k["gamma"])
                + k["alpha"] * np.log(N)
                + k["delta"] * np.log(E + 0.5)
                + k["nu"] * np.log(M + 0.5)
                - np.log(log2_block)
            )
        return np.exp(log_inner / (2.0 * k["beta"]))

    @staticmethod
    def training_compute(N: Any, D: Any, P: Any, k: float = K_COMPUTE, b: float = 0.0) -> np.ndarray:
        r"""Training compute :math:`C = k(P+b)ND` (Eq. 42) [SRC]; ``b`` is the scaling-factor overhead (0)."""
        out = []
        for name, val in (("N", N), ("D", D), ("P", P)):
            arr = _checks.as_array(name, val)
            if np.any(~(arr > 0)) or np.any(np.isinf(arr)):
                raise ParameterError(name, float(np.ravel(arr)[0]), "be > 0 and finite")
            out.append(arr)
        k = _checks.positive("k", k)
        b = _checks.nonnegative("b", b)
        return k * (out[2] + b) * out[0] * out[1]

    def _log2_block(self, B: Any) -> np.ndarray:
        B = self.variables[4].check(B)
        if np.any(B <= 1):
            raise ParameterError("B", float(B[B <= 1].ravel()[0]), "be > 1 (with B = 1 precision costs nothing)")
        return np.log2(B)

    def optimal_precision_fixed_D(self, D: Any, B: Any = 128) -> np.ndarray:
        r"""Compute-optimal precision at fixed data size (Eq. 47) [SRC].

        .. math:: P_{\rm opt}^{\delta+\nu} = \gamma_D\,D^\beta\log_2 B

        With B = 128: 3.52 bits at D = 1e10, 4.27 at 1e11, 5.18 at 1e12, 6.28 at 1e13, 7.62 at 1e14, 9.25 at
        1e15 [COMPUTED]; the paper says 4-8 bits for 0.1T-100T tokens.
        """
        D = self.variables[1].check(D)
        k = self.constants
        log_p = (math.log(self.gamma_D()) + k["beta"] * np.log(D) + np.log(self._log2_block(B))) / (
            k["delta"] + k["nu"]
        )
        return np.exp(log_p)

    def optimal_precision_fixed_N(self, C: Any, N: Any, B: Any = 128, k: float = K_COMPUTE) -> np.ndarray:
        r"""Compute-optimal precision at fixed model size under :math:`C = kPND` (Eq. 52) [SRC].

        .. math:: P^{\delta+\nu+2\beta} = \gamma_N\,(C/k)^{2\beta}\,N^{-(\alpha+2\beta)}\log_2 B
        """
        C = _checks.as_array("C", C)
        if np.any(~(C > 0)):
            raise ParameterError("C", float(np.ravel(C)[0]), "be > 0")
        N = self.variables[0].check(N)
        k = _checks.positive("k", k)
        c = self.constants
        a, b = c["alpha"], c["beta"]
        log_p = (
            math.log(self.gamma_N()) + 2 * b * np.log(C / k) - (a + 2 * b) * np.log(N) + np.log(self._log2_block(B))
        ) / (c["delta"] + c["nu"] + 2 * b)
        return np.exp(log_p)

    def optimal_precision(self, C: Any, B: Any = 128, k: float = K_COMPUTE) -> np.ndarray:
        r"""Joint compute-optimal precision over N, D and P under :math:`C = kPND` (Eq. 25/54) [SRC, DERIVED].

        .. math::

            P_{\rm opt}^{\alpha+(\delta+\nu)\frac{\alpha+\beta}{\beta}}
                = \lambda\,(\gamma_D\log_2 B)^{\frac{\alpha+\beta}{\beta}}\Bigl(\frac{C}{k}\Bigr)^\alpha,\qquad
            \lambda = \frac{d\beta}{n\alpha}\cdot\frac{\delta+\nu-\alpha}{\delta+\nu+\beta}

        The paper reports 4-8 bits over :math:`10^{21}`-:math:`10^{31}` FLOPs (Fig. 7).
        """
        C = _checks.as_array("C", C)
        if np.any(~(C > 0)):
            raise ParameterError("C", float(np.ravel(C)[0]), "be > 0")
        k = _checks.positive("k", k)
        c = self.constants
        a, b, s = c["alpha"], c["beta"], c["delta"] + c["nu"]
        lam = c["d"] * b / (c["n"] * a) * (s - a) / (s + b)
        r = (a + b) / b
        log_p = (math.log(lam) + r * (math.log(self.gamma_D()) + np.log(self._log2_block(B))) + a * np.log(C / k)) / (
            a + s * r
        )
        return np.exp(log_p)


# ---------------------------------------------------------------------------------------------- shortcuts
def gamma_rho(constants: Any = None) -> float:
    """Shortcut for :meth:`SunLaw.gamma_rho` (Eq. 20/35 [SRC])."""
    return SunLaw(constants).gamma_rho()


def optimal_layout(P: Any, constants: Any = None) -> Layout:
    """Shortcut for :meth:`SunLaw.optimal_layout` (Eq. 19/31 [SRC])."""
    return SunLaw(constants).optimal_layout(P)


def critical_data_size(N: Any, E: Any, M: Any, B: Any, constants: Any = None) -> np.ndarray:
    """Shortcut for :meth:`SunLaw.critical_data_size` (Eq. 21 [SRC])."""
    return SunLaw(constants).critical_data_size(N, E, M, B)
