r"""Real number formats with stochastic rounding: INT-:math:`b` and FP ``eXmY`` (SPEC §2).

Both classes are :class:`~scalinglaw.quantize.base.Quantizer` objects: ``q.quantize(u, rng)`` rounds every
coordinate of ``u`` to the format's grid, stochastically (the theory's unbiased quantizer) or to nearest
(ties to even, the hardware default; biased).

Stochastic rounding [derived]. Let :math:`g_-\le u<g_+` be the neighbouring grid points,
:math:`\Delta=g_+-g_-` and :math:`f=(u-g_-)/\Delta`. Then :math:`Q(u)=g_-+\Delta\,\mathrm{Bernoulli}(f)`, so
:math:`\mathbb E[Q(u)\mid u]=u` and :math:`\mathrm{Var}[Q(u)\mid u]=\Delta^2f(1-f)\le\Delta^2/4`, with mean
:math:`\Delta^2/6` when :math:`f` is uniform. The Bernoulli draw compares ``rng.random`` with :math:`f`.

Grids
-----
* INT-:math:`b` on :math:`[-R,R]`: :math:`2^b` levels :math:`R(2j-L)/L`, :math:`j=0..L`, :math:`L=2^b-1`, so
  :math:`\Delta=2R/L` (SPEC §2). :math:`R` is fixed (``range=R``, inputs outside saturate to :math:`\pm R`) or
  the absmax of each vector (``range=None``). Zero is not a level (the grid is symmetric with an even
  number of levels); stochastic rounding keeps it unbiased.
* FP with :math:`e` exponent and :math:`m` mantissa bits: bias :math:`2^{e-1}-1`, smallest normal
  :math:`2^{1-\text{bias}}`, spacing :math:`2^{\lfloor\log_2|u|\rfloor-m}` in the normal range and the fixed
  subnormal spacing :math:`2^{1-\text{bias}-m}` below it, where the error is additive. The largest finite
  value depends on the encoding: IEEE-style formats with inf/NaN (fp32, bf16, fp16, fp8_e5m2) reserve the top
  exponent code; OCP FP8 E4M3 ("e4m3fn") reserves only S.1111.111 (NaN), max 448; OCP MX FP6/FP4 and every
  generic ``eXmY`` that is not a named format have no inf/NaN codes (all exponent codes finite).

Sources: the grids are the IEEE 754 and OCP 8-bit floating point / OCP Microscaling (MX) v1.0 encodings
[paper: IEEE 754-2019, OCP OFP8 1.0, OCP MX 1.0]; the bits-to-:math:`\epsilon` maps are [derived] (SPEC §2).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import _checks
from ..errors import ParameterError
from .base import IdealizedScheme, Quantizer
from .schemes import Additive, MultiplicativeCoord

__all__ = ["FORMAT_NAMES", "FloatFormat", "IntFormat", "parse_format"]

#: (exponent bits, mantissa bits, encoding) of the named floating-point formats.
_NAMED_FP: dict[str, tuple[int, int, str]] = {
    "fp32": (8, 23, "ieee"),
    "bf16": (8, 7, "ieee"),
    "fp16": (5, 10, "ieee"),
    "fp8_e4m3": (4, 3, "fn"),
    "fp8_e5m2": (5, 2, "ieee"),
    "fp6_e3m2": (3, 2, "finite"),
    "fp6_e2m3": (2, 3, "finite"),
    "fp4_e2m1": (2, 1, "finite"),
}
_FP_BY_BITS = {(e, m): name for name, (e, m, _) in _NAMED_FP.items()}
_INT_BITS = (2, 16)
_EXP_BITS = (1, 11)
_MAN_BITS = (0, 52)

#: Canonical names of the named formats.
FORMAT_NAMES: tuple[str, ...] = (*_NAMED_FP, *(f"int{b}" for b in range(_INT_BITS[0], _INT_BITS[1] + 1)))

_ALIASES = {
    "e4m3": "fp8_e4m3",
    "e4m3fn": "fp8_e4m3",
    "fp8": "fp8_e4m3",
    "e5m2": "fp8_e5m2",
    "e3m2": "fp6_e3m2",
    "e2m3": "fp6_e2m3",
    "e2m1": "fp4_e2m1",
    "fp4": "fp4_e2m1",
    "e8m7": "bf16",
    "bfloat16": "bf16",
    "e5m10": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "e8m23": "fp32",
    "float32": "fp32",
    "single": "fp32",
}

_ROUNDINGS = ("stochastic", "nearest")
_SCALES = ("none", "absmax")
_ON = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


def _bool(name: str, value: object) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise ParameterError(name, value, "be True or False")


def _int_in(name: str, value: object, bounds: tuple[int, int]) -> int:
    n = _checks.integer(name, value)
    if not bounds[0] <= n <= bounds[1]:
        raise ParameterError(name, value, f"be an integer in {bounds[0]}..{bounds[1]}")
    return int(n)


def _fmt_float(x: float) -> str:
    """Shortest text that parses back to ``x`` exactly."""
    short = f"{x:g}"
    return short if float(short) == x else repr(x)


def _finite_absmax(x: np.ndarray, vector_axes: Sequence[int]) -> np.ndarray:
    """Max of ``|x|`` over the finite entries of each vector (keepdims); NaN and inf do not set the scale."""
    axes = tuple(sorted({ax % x.ndim for ax in vector_axes})) if x.ndim else None
    a = np.where(np.isfinite(x), np.abs(x), 0.0)
    return np.max(a, axis=axes, keepdims=True)


def _uniforms(rng: np.random.Generator | None, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(rng, np.random.Generator):
        raise ParameterError("rng", rng, "be a numpy.random.Generator for stochastic rounding")
    return rng.random(shape)


def _round_up(
    frac: np.ndarray, low_odd: np.ndarray, rounding: str, rng: np.random.Generator | None
) -> np.ndarray:
    """Take the upper neighbour? Bernoulli(frac), or nearest with ties to the even code (``low_odd``)."""
    if rounding == "stochastic":
        return _uniforms(rng, frac.shape) < frac
    return (frac > 0.5) | ((frac == 0.5) & low_odd)


@dataclass(frozen=True)
class IntFormat(Quantizer):
    r"""Signed INT-:math:`b`: :math:`2^b` evenly spaced levels on :math:`[-R,R]` (SPEC §2).

    Levels :math:`R(2j-L)/L`, :math:`j=0,\dots,L`, :math:`L=2^b-1`, spacing :math:`\Delta=2R/L`.

    Parameters
    ----------
    bits : int
        Bit width :math:`b`, 2..16.
    range : float or None
        Fixed range :math:`R>0` (inputs outside :math:`[-R,R]` saturate to :math:`\pm R`, a bias the theory
        does not model), or ``None`` (default) for absmax scaling: :math:`R=\max|u|` over the finite entries
        of each vector (``vector_axes``). An all-zero vector stays zero; ``±inf`` saturates to :math:`\pm R`.
    rounding : {"stochastic", "nearest"}
        Stochastic rounding (unbiased) or round to nearest, ties to the even level index (biased).

    Notes
    -----
    Error variance of stochastic rounding, :math:`\Delta^2f(1-f)` with :math:`f` the position inside the cell
    [derived]; hence the additive class with :math:`\epsilon\le\Delta^2/4=R^2/(2^b-1)^2` (:attr:`epsilon`) and
    mean :math:`\Delta^2/6` for uniform :math:`f` (:attr:`epsilon_mean`) [derived]. With absmax scaling the
    error is additive per vector but its size depends on the data, so the epsilons are quoted for :math:`R=1`
    (per unit absmax squared); use :meth:`epsilon_for_range`.
    """

    bits: int
    range: float | None = None
    rounding: str = "stochastic"
    kind = "int"
    noise_class = "additive"

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", _int_in("bits", self.bits, _INT_BITS))
        if self.range is not None:
            object.__setattr__(self, "range", _checks.positive("range", self.range))
        _checks.choice("rounding", self.rounding, _ROUNDINGS)

    @property
    def levels(self) -> int:
        """Number of grid levels, :math:`2^b`."""
        return 2**self.bits

    @property
    def spacing(self) -> float | None:
        r""":math:`\Delta=2R/(2^b-1)` for a fixed range; ``None`` with absmax scaling."""
        return None if self.range is None else 2.0 * self.range / (self.levels - 1)

    def epsilon_for_range(self, R: float, statistic: str = "bound") -> float:
        r"""Additive :math:`\epsilon` for range :math:`R` [derived, SPEC §2].

        ``"bound"``: :math:`\max_f\Delta^2f(1-f)=\Delta^2/4=R^2/(2^b-1)^2`; ``"mean"``: :math:`\Delta^2/6`
        (:math:`f` uniform on :math:`[0,1)`).
        """
        R = _checks.nonnegative("R", R)
        _checks.choice("statistic", statistic, ("bound", "mean"))
        delta = 2.0 * R / (self.levels - 1)
        return delta**2 / 4.0 if statistic == "bound" else delta**2 / 6.0

    @property
    def epsilon(self) -> float:
        r"""Upper bound :math:`R^2/(2^b-1)^2` of the error variance (:math:`R=1` under absmax) [derived]."""
        return self.epsilon_for_range(1.0 if self.range is None else self.range)

    @property
    def epsilon_mean(self) -> float:
        r"""Typical error variance :math:`\Delta^2/6` (uniform :math:`f`; :math:`R=1` if absmax) [derived]."""
        return self.epsilon_for_range(1.0 if self.range is None else self.range, "mean")

    @property
    def spec(self) -> str:
        opts = []
        if self.range is not None:
            opts.append(f"range={_fmt_float(self.range)}")
        if self.rounding != "stochastic":
            opts.append(f"rounding={self.rounding}")
        return f"int{self.bits}" + (":" + ",".join(opts) if opts else "")

    def idealized_scheme(self, statistic: str = "bound") -> IdealizedScheme | None:
        r"""``Additive(ε)`` for a fixed range (``statistic`` "bound" or "mean"); ``None`` for absmax."""
        _checks.choice("statistic", statistic, ("bound", "mean"))
        if self.range is None:
            return None
        return Additive(self.epsilon if statistic == "bound" else self.epsilon_mean)

    def describe(self) -> dict[str, object]:
        out = super().describe()
        out.update(
            bits=self.bits,
            levels=self.levels,
            range=self.range if self.range is not None else "absmax",
            spacing=self.spacing,
            rounding=self.rounding,
            epsilon_mean=self.epsilon_mean,
        )
        return out

    def quantize(
        self, u: np.ndarray, rng: np.random.Generator | None, *, vector_axes: Sequence[int] = (-1,)
    ) -> np.ndarray:
        """Round ``u`` to the INT grid; returns a new float64 array (see the class docstring)."""
        x = np.array(u, dtype=np.float64)
        if x.size == 0:
            return x
        L = float(self.levels - 1)
        if self.range is not None and not np.isnan(x).any():
            return self._quantize_fixed(x, rng)
        R = np.float64(self.range) if self.range is not None else _finite_absmax(x, vector_axes)
        R_safe = np.where(R > 0, R, 1.0)

        def grid(j: np.ndarray) -> np.ndarray:
            # Odd integer over L: exactly antisymmetric, and grid(0) = -R, grid(L) = R exactly.
            return R_safe * ((2.0 * j - L) / L)

        xc = np.clip(np.where(np.isnan(x), 0.0, x), -R_safe, R_safe)
        j = np.clip(np.floor((xc + R_safe) * (L / (2.0 * R_safe))), 0.0, L - 1.0)
        # One correction step absorbs the float rounding of the index estimate, so lo <= xc <= hi holds
        # exactly and grid points map to themselves.
        j = np.where(xc < grid(j), np.maximum(j - 1.0, 0.0), j)
        j = np.where((xc >= grid(j + 1.0)) & (j < L - 1.0), j + 1.0, j)
        lo, hi = grid(j), grid(j + 1.0)
        frac = np.clip((xc - lo) / (hi - lo), 0.0, 1.0)
        out = grid(j + _round_up(frac, np.mod(j, 2.0) == 1.0, self.rounding, rng))
        out = np.where(R > 0, out, np.copysign(0.0, x))
        return np.where(np.isnan(x), np.nan, out)

    def _quantize_fixed(self, x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """:meth:`quantize` for a fixed range and NaN-free input: the same arithmetic (bit for bit), fewer passes."""
        L = float(self.levels - 1)
        R = np.float64(self.range)
        xc = np.clip(x, -R, R)
        j = np.floor((xc + R) * (L / (2.0 * R)))
        np.clip(j, 0.0, L - 1.0, out=j)
        lo = R * ((2.0 * j - L) / L)
        hi = R * ((2.0 * (j + 1.0) - L) / L)
        # quantize's index corrections, applied only where they change anything (float rounding: rare)
        jf, lof, hif, xf = j.reshape(-1), lo.reshape(-1), hi.reshape(-1), xc.reshape(-1)
        for idx, step in ((np.nonzero(xf < lof)[0], -1.0), (None, 1.0)):
            if idx is None:
                idx = np.nonzero((xf >= hif) & (jf < L - 1.0))[0]
            if idx.size:
                jf[idx] = np.maximum(jf[idx] + step, 0.0)
                lof[idx] = R * ((2.0 * jf[idx] - L) / L)
                hif[idx] = R * ((2.0 * (jf[idx] + 1.0) - L) / L)
        frac = np.clip((xc - lo) / (hi - lo), 0.0, 1.0)
        odd = np.mod(j, 2.0) == 1.0 if self.rounding == "nearest" else frac
        return np.where(_round_up(frac, odd, self.rounding, rng), hi, lo)


@dataclass(frozen=True)
class FloatFormat(Quantizer):
    r"""Binary floating point with ``exp_bits`` exponent and ``man_bits`` mantissa bits (SPEC §2).

    Parameters
    ----------
    exp_bits : int
        Exponent bits :math:`e`, 1..11. Bias :math:`2^{e-1}-1`.
    man_bits : int
        Explicit mantissa bits :math:`m`, 0..52.
    rounding : {"stochastic", "nearest"}
        Stochastic rounding (unbiased) or round to nearest, ties to even (IEEE default; biased).
    subnormals : bool
        ``True`` (default): gradual underflow with spacing :math:`2^{1-\text{bias}-m}`. ``False``: flush, i.e.
        values below the smallest normal :math:`n` round to :math:`\{0,\pm n\}` (stochastically, so still
        unbiased, or to nearest with the tie :math:`n/2` going to zero).
    saturate : bool
        ``True`` (default): inputs above the max finite value (and ``±inf``) go to ``±max``. ``False``: they
        go to ``±inf`` (for formats without an inf code this stands for the overflow/NaN code). With nearest
        rounding the overflow test is IEEE's: a value overflows when it rounds, with unbounded exponent,
        above ``max``. Stochastic rounding overflows exactly when ``|u| > max``.
    scale : {"none", "absmax"}
        ``"absmax"`` scales each vector (``vector_axes``) so that its finite absmax maps to ``max``, rounds,
        and scales back (exact up to the float64 rounding of the scale).

    Attributes
    ----------
    name : str
        The canonical name: a named format (``"fp8_e4m3"``) or the generic ``"eXmY"``.

    Notes
    -----
    Encodings (max finite value :math:`2^{e_{\max}}\cdot c`) [paper: IEEE 754-2019; OCP OFP8 1.0; OCP MX 1.0]:

    * IEEE-style (fp32, bf16, fp16, fp8_e5m2): :math:`e_{\max}=2^e-2-\text{bias}`, :math:`c=2-2^{-m}`;
    * OCP E4M3 (fp8_e4m3): :math:`e_{\max}=2^e-1-\text{bias}`, :math:`c=2-2^{1-m}` (max 448);
    * all codes finite (fp6_e3m2 max 28, fp6_e2m3 max 7.5, fp4_e2m1 max 6, and every generic ``eXmY`` that is
      not a named format): :math:`e_{\max}=2^e-1-\text{bias}`, :math:`c=2-2^{-m}`. For ``e11`` generic formats
      :math:`e_{\max}=1024` exceeds float64; ``max`` is then capped at :math:`2^{1023}(2-2^{-m})`.

    In the normal range the stochastic-rounding error is relative: with :math:`\Delta=2^{k-m}` on the binade
    :math:`[2^k,2^{k+1})`, :math:`\mathrm{Var}[Q(u)\mid u]/u^2=\Delta^2f(1-f)/u^2\le4^{-m}/4` [derived]
    (:attr:`epsilon`; mean :attr:`epsilon_mean`). Below the smallest normal the spacing is fixed and the
    error is additive, :math:`\le 4^{1-\text{bias}-m}/4` [derived].
    """

    exp_bits: int
    man_bits: int
    rounding: str = "stochastic"
    subnormals: bool = True
    saturate: bool = True
    scale: str = "none"
    name: str = field(init=False, compare=False)
    kind = "fp"
    noise_class = "multiplicative"

    def __post_init__(self) -> None:
        e = _int_in("exp_bits", self.exp_bits, _EXP_BITS)
        m = _int_in("man_bits", self.man_bits, _MAN_BITS)
        object.__setattr__(self, "exp_bits", e)
        object.__setattr__(self, "man_bits", m)
        _checks.choice("rounding", self.rounding, _ROUNDINGS)
        _checks.choice("scale", self.scale, _SCALES)
        object.__setattr__(self, "subnormals", _bool("subnormals", self.subnormals))
        object.__setattr__(self, "saturate", _bool("saturate", self.saturate))
        object.__setattr__(self, "name", _FP_BY_BITS.get((e, m), f"e{e}m{m}"))

    @property
    def encoding(self) -> str:
        """``"ieee"`` (top exponent code is inf/NaN), ``"fn"`` (OCP E4M3) or ``"finite"`` (no inf/NaN)."""
        return _NAMED_FP[self.name][2] if self.name in _NAMED_FP else "finite"

    @property
    def bias(self) -> int:
        """Exponent bias :math:`2^{e-1}-1`."""
        return 2 ** (self.exp_bits - 1) - 1

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal, :math:`1-\\text{bias}`."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest finite binade (see the class Notes)."""
        top = 2**self.exp_bits - (2 if self.encoding == "ieee" else 1)
        return top - self.bias

    @property
    def max_value(self) -> float:
        """Largest finite value (capped to float64's range for ``e11`` generic formats)."""
        c = 2.0 - 2.0 ** (1 - self.man_bits if self.encoding == "fn" else -self.man_bits)
        return math.ldexp(c, min(self.emax, 1023))

    @property
    def min_normal(self) -> float:
        """Smallest positive normal value, :math:`2^{1-\\text{bias}}`."""
        return math.ldexp(1.0, self.emin)

    @property
    def subnormal_spacing(self) -> float:
        """Spacing below the smallest normal, :math:`2^{1-\\text{bias}-m}` (smallest normal if flushing)."""
        return math.ldexp(1.0, self.emin - (self.man_bits if self.subnormals else 0))

    @property
    def epsilon(self) -> float:
        r"""Bound on the relative error variance in the normal range, :math:`4^{-m}/4` [derived, SPEC §2].

        On :math:`[2^k,2^{k+1})` the spacing is :math:`\Delta=2^{k-m}` and :math:`|u|\ge2^k`, so
        :math:`\Delta^2f(1-f)/u^2\le\Delta^2/(4\cdot4^k)=4^{-m}/4`.
        """
        return 4.0**-self.man_bits / 4.0

    @property
    def epsilon_mean(self) -> float:
        r"""Typical relative error variance in the normal range, :math:`4^{-m}\cdot3/(48\ln2)` [derived].

        Assume :math:`|u|` log-uniform within a binade :math:`[2^k,2^{k+1})` (density :math:`1/(u\ln2)`) and
        the position :math:`f` inside a cell uniform and independent of it, so
        :math:`\mathbb E[f(1-f)]=1/6`. Then
        :math:`\mathbb E[u^{-2}]=\frac{1}{\ln2}\int_{2^k}^{2^{k+1}}u^{-3}\,du=\frac{3\cdot4^{-k}}{8\ln2}` and

        .. math:: \mathbb E\Big[\frac{\Delta^2f(1-f)}{u^2}\Big]
                  =\frac{4^{k-m}}{6}\cdot\frac{3\cdot4^{-k}}{8\ln2}=\frac{3\cdot4^{-m}}{48\ln2}=\frac{4^{-m}}{16\ln2}\approx0.0902\cdot4^{-m}.

        Independence of :math:`f` and :math:`u` is the approximation: the exact mean under log-uniform
        :math:`u` is lower by a relative :math:`\approx4^{-m}/8` (0.2% for :math:`m=3`, 9% for :math:`m=0`).
        """
        return 4.0**-self.man_bits * 3.0 / (48.0 * math.log(2.0))

    @property
    def spec(self) -> str:
        opts = []
        if self.rounding != "stochastic":
            opts.append(f"rounding={self.rounding}")
        if not self.subnormals:
            opts.append("subnormals=off")
        if not self.saturate:
            opts.append("saturate=off")
        if self.scale != "none":
            opts.append(f"scale={self.scale}")
        return self.name + (":" + ",".join(opts) if opts else "")

    def idealized_scheme(self, statistic: str = "bound") -> IdealizedScheme:
        """``MultiplicativeCoord(ε)``, ε = :attr:`epsilon` ("bound") or :attr:`epsilon_mean` ("mean")."""
        _checks.choice("statistic", statistic, ("bound", "mean"))
        return MultiplicativeCoord(self.epsilon if statistic == "bound" else self.epsilon_mean)

    def describe(self) -> dict[str, object]:
        out = super().describe()
        out.update(
            name=self.name,
            exp_bits=self.exp_bits,
            man_bits=self.man_bits,
            bias=self.bias,
            encoding=self.encoding,
            max=self.max_value,
            min_normal=self.min_normal,
            subnormal_spacing=self.subnormal_spacing,
            rounding=self.rounding,
            subnormals=self.subnormals,
            saturate=self.saturate,
            scale=self.scale,
            epsilon_mean=self.epsilon_mean,
        )
        return out

    def quantize(
        self, u: np.ndarray, rng: np.random.Generator | None, *, vector_axes: Sequence[int] = (-1,)
    ) -> np.ndarray:
        """Round ``u`` to the FP grid; returns a new float64 array (see the class docstring)."""
        x = np.array(u, dtype=np.float64)
        if x.size == 0:
            return x
        if self.scale == "absmax":
            amax = _finite_absmax(x, vector_axes)
            amax = np.where(amax > 0, amax, 1.0)
            # Divide first: max/amax can overflow for tiny amax, x/amax lies in [-1, 1].
            return self._round(x / amax * self.max_value, rng) / self.max_value * amax
        return self._round(x, rng)

    def _pow2_scaling(self) -> bool:
        """Whether every spacing :math:`2^t` of the grid and its inverse are normal float64 numbers."""
        t_lo = self.emin - (self.man_bits if self.subnormals else 0)
        t_hi = min(self.emax, 1023) - self.man_bits
        return -1022 <= t_lo and t_hi + self.man_bits + 1 <= 1023

    def _round_finite(self, x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """:meth:`_round` for finite input and :meth:`_pow2_scaling` grids: the same results bit for bit, with the
        binade read from the float64 exponent field and the power-of-two rescales done as exact products."""
        m, big = self.man_bits, self.max_value
        a = np.abs(x)
        k = (a.view(np.int64) >> 52) - 1023  # floor(log2 a) for normal a; clamped below like frexp's
        np.maximum(k, self.emin, out=k)
        t = k - m
        if not self.subnormals:
            t = np.where(a < self.min_normal, self.emin, t)
        scaled = a * ((1023 - t) << 52).view(np.float64)  # a * 2^-t, exact
        low = np.floor(scaled)
        odd = scaled
        if self.rounding == "nearest":
            odd = np.mod(low if m else k + self.bias, 2) == 1
            if not m:
                odd &= a >= self.min_normal
        r = low + _round_up(scaled - low, odd, self.rounding, rng)
        out = r * ((1023 + t) << 52).view(np.float64)  # r * 2^t, exact
        over = (a > big) if self.rounding == "stochastic" else (out > big)
        if over.any():
            out[over] = big if self.saturate else np.inf
        return np.copysign(out, x)

    def _round(self, x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        if self._pow2_scaling() and np.isfinite(x).all():
            return self._round_finite(x, rng)
        m, big = self.man_bits, self.max_value
        a = np.abs(np.where(np.isfinite(x), x, 0.0))
        # Exponent of the spacing: floor(log2 a) - m in the normal range, fixed below the smallest normal.
        k = np.maximum(np.frexp(a)[1] - 1, self.emin)
        t = k - m
        if not self.subnormals:
            t = np.where(a < self.min_normal, self.emin, t)
        scaled = np.ldexp(a, -t)  # exact: a power-of-two rescale into [0, 2^(m+1))
        low = np.floor(scaled)
        # Ties to even look at the last bit of the code: the mantissa's, or the exponent's when m = 0.
        odd = np.mod(low if m else k + self.bias, 2) == 1
        if not m:
            odd &= a >= self.min_normal
        r = low + _round_up(scaled - low, odd, self.rounding, rng)
        out = np.ldexp(r, t)
        over = (a > big) if self.rounding == "stochastic" else (out > big)
        over |= np.isinf(x)
        out = np.where(over, big if self.saturate else np.inf, out)
        out = np.copysign(out, x)
        return np.where(np.isnan(x), np.nan, out)


_INT_RE = re.compile(r"int(\d+)")
_EM_RE = re.compile(r"e(\d+)m(\d+)")


def parse_format(fmt: str, options: dict[str, str], *, name: str = "quantizer") -> Quantizer | None:
    """Build a format from its name and options; ``None`` if ``fmt`` is not a format name.

    Parameters
    ----------
    fmt : str
        A canonical name (:data:`FORMAT_NAMES`), ``int2``..``int16``, a generic ``eXmY`` (X in 1..11, Y in
        0..52) or an alias (``e4m3``, ``e5m2``, ``e3m2``, ``e2m3``, ``e2m1``, ``e8m7``/``bfloat16``,
        ``e5m10``/``float16``/``half``, ``e8m23``/``float32``/``single``, ``fp8``, ``fp4``).
    options : dict of str to str
        ``range=R`` (INT only; ``absmax`` for the default), ``rounding=stochastic|nearest``,
        ``scale=absmax|none`` (FP only), ``subnormals=on|off`` and ``saturate=on|off`` (FP only).
    name : str
        The parameter name used in error messages (e.g. ``"data"``).

    Raises
    ------
    ParameterError
        For INT bits outside 2..16, ``eXmY`` outside its range, an unknown option or a bad option value.
    """
    text = fmt + (":" + ",".join(f"{k}={v}" if v else k for k, v in options.items()) if options else "")
    fmt = _ALIASES.get(fmt, fmt)

    def bad(requirement: str) -> ParameterError:
        return ParameterError(name, text, requirement)

    def rounding() -> str:
        value = options.get("rounding", "stochastic")
        if value not in _ROUNDINGS:
            raise bad("have rounding=stochastic or rounding=nearest")
        return value

    def allowed(keys: tuple[str, ...]) -> None:
        unknown = sorted(set(options) - set(keys))
        if unknown:
            raise bad(f"use only the options {', '.join(keys)} for {fmt} (unknown: {', '.join(unknown)})")

    if match := _INT_RE.fullmatch(fmt):
        bits = int(match.group(1))
        if not _INT_BITS[0] <= bits <= _INT_BITS[1]:
            raise bad(f"have INT bits in {_INT_BITS[0]}..{_INT_BITS[1]} (int2..int16)")
        allowed(("range", "rounding"))
        R: float | None = None
        if options.get("range", "absmax") != "absmax":
            try:
                R = float(options["range"])
            except ValueError:
                R = math.nan
            if not (R > 0 and math.isfinite(R)):
                raise bad("have range=R with R > 0 and finite, or range=absmax")
        return IntFormat(bits, R, rounding())

    if fmt in _NAMED_FP:
        e, m, _ = _NAMED_FP[fmt]
    elif match := _EM_RE.fullmatch(fmt):
        e, m = int(match.group(1)), int(match.group(2))
        if not (_EXP_BITS[0] <= e <= _EXP_BITS[1] and _MAN_BITS[0] <= m <= _MAN_BITS[1]):
            (e0, e1), (m0, m1) = _EXP_BITS, _MAN_BITS
            raise bad(f"have eXmY with X in {e0}..{e1} and Y in {m0}..{m1}")
    else:
        return None
    allowed(("rounding", "scale", "subnormals", "saturate"))
    flags = {}
    for key in ("subnormals", "saturate"):
        value = options.get(key, "on")
        if value not in _ON:
            raise bad(f"have {key}=on or {key}=off")
        flags[key] = _ON[value]
    scale = options.get("scale", "none")
    if scale not in _SCALES:
        raise bad("have scale=absmax or scale=none")
    return FloatFormat(e, m, rounding(), flags["subnormals"], flags["saturate"], scale)
