r"""Quantizers of the communicated messages of data-parallel SGD (``Problem.comm``) [paper/derived per item].

The message of worker :math:`k` is a vector :math:`v\in\mathbb R^m` (its gradient, or its pseudo-gradient
:math:`-\Delta_k/\gamma` after a period of local steps); the server receives :math:`Q(v)=v+\xi` with fresh
randomness per worker and per round. Besides every quantizer of :func:`~scalinglaw.quantize.parse_quantizer`
(additive, shared and coordinate-wise multiplicative, INT/FP formats) the message can use two *norm-relative*
quantizers, whose error scales with the message's Euclidean norm:

``norm:Q`` -- :class:`NormRelative`, idealised and isotropic [derived]
    :math:`\xi=\sqrt{q/m}\,\|v\|\,g`, :math:`g\sim\mathcal N(0,I_m)`, so
    :math:`\mathbb E[\xi\xi^\top\mid v]=(q/m)\|v\|^2I` and :math:`\mathbb E\|\xi\|^2=q\|v\|^2`. It is
    rotation-invariant: the idealised model of a norm-relative quantizer applied after a random rotation (a real
    rotated QSGD is only approximately isotropic). The exact engine treats this scheme exactly.
``qsgd:s=S`` -- :class:`QSGD`, the real stochastic quantizer of Alistarh et al. (QSGD, NeurIPS 2017) [paper]
    :math:`Q(v)_i=\|v\|\operatorname{sign}(v_i)\,\ell_i/s` with :math:`\ell_i\in\{l,l+1\}`,
    :math:`l=\lfloor s|v_i|/\|v\|\rfloor`, :math:`\Pr(\ell_i=l+1)=s|v_i|/\|v\|-l`: unbiased, with
    :math:`\mathbb E\|Q(v)-v\|^2\le\min(m/s^2,\sqrt m/s)\|v\|^2` (their Lemma 3.1) [paper]. It acts coordinate by
    coordinate and is **not** rotation-invariant: its error variance :math:`\|v\|^2f_i(1-f_i)/s^2` (:math:`f_i`
    the fractional part of :math:`s|v_i|/\|v\|`) is not a polynomial in :math:`v`, so the moment closure of the
    exact engine does not hold for it; it is simulated, and the engine refuses it (use ``norm:q`` with
    :func:`qsgd_variance_bound` for its variance bound).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import _checks
from ..errors import ParameterError
from .base import Quantizer
from .parse import parse_quantizer

__all__ = ["QSGD", "NormRelative", "comm_bits_per_coordinate", "parse_comm_quantizer", "qsgd_variance_bound"]

#: Bits of the norm sent with each QSGD message (one float32).
NORM_BITS = 32


def qsgd_variance_bound(m: float, s: float) -> float:
    r""":math:`q=\min(m/s^2,\sqrt m/s)`: QSGD's bound :math:`\mathbb E\|Q(v)-v\|^2\le q\|v\|^2` for :math:`m`
    coordinates and :math:`s` levels (Alistarh et al. 2017, Lemma 3.1) [paper]."""
    m = _checks.positive("m", m)
    s = _checks.positive("s", s)
    return min(m / (s * s), math.sqrt(m) / s)


def _axes(u: np.ndarray, vector_axes: Sequence[int]) -> tuple[int, ...]:
    return tuple(sorted({ax % u.ndim for ax in vector_axes}))


@dataclass(frozen=True)
class NormRelative(Quantizer):
    r"""Isotropic norm-relative Gaussian noise: :math:`\mathbb E[\xi\xi^\top\mid v]=(q/m)\|v\|^2I` [derived].

    Parameters
    ----------
    q : float
        Relative error energy :math:`\mathbb E\|\xi\|^2/\|v\|^2\ge0`.
    """

    q: float
    kind = "norm-relative"
    noise_class = "norm-relative"
    idealized = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "q", _checks.nonnegative("q", self.q))

    @property
    def epsilon(self) -> float:
        return self.q

    @property
    def spec(self) -> str:
        return f"norm:{self.q:.17g}"

    def quantize(self, u: np.ndarray, rng: np.random.Generator, *, vector_axes: Sequence[int] = (-1,)) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        if self.q == 0.0 or u.size == 0:
            return u.copy()
        axes = _axes(u, vector_axes)
        m = math.prod(u.shape[a] for a in axes)
        norm = np.sqrt(np.sum(u * u, axis=axes, keepdims=True))
        return u + math.sqrt(self.q / m) * norm * rng.standard_normal(u.shape)


@dataclass(frozen=True)
class QSGD(Quantizer):
    r"""QSGD stochastic quantization with ``s`` levels per sign (Alistarh et al. 2017) [paper].

    See the module docstring. ``epsilon`` is not defined without the message length; use
    :meth:`variance_bound`.
    """

    s: int
    kind = "qsgd"
    noise_class = "norm-relative"

    def __post_init__(self) -> None:
        object.__setattr__(self, "s", int(_checks.integer("s", self.s, minimum=1)))

    @property
    def epsilon(self) -> float:
        return math.nan

    def variance_bound(self, m: float) -> float:
        """:func:`qsgd_variance_bound` for messages of ``m`` coordinates."""
        return qsgd_variance_bound(m, self.s)

    @property
    def spec(self) -> str:
        return f"qsgd:s={self.s}"

    @property
    def bits(self) -> float:
        r"""Bits per coordinate of a fixed-length code of the :math:`2s+1` signed levels: :math:`\log_2(2s+1)`
        [derived] (the norm adds :data:`NORM_BITS` per message)."""
        return math.log2(2 * self.s + 1)

    def quantize(self, u: np.ndarray, rng: np.random.Generator, *, vector_axes: Sequence[int] = (-1,)) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        if u.size == 0:
            return u.copy()
        axes = _axes(u, vector_axes)
        norm = np.sqrt(np.sum(u * u, axis=axes, keepdims=True))
        safe = np.where(norm > 0, norm, 1.0)
        r = np.abs(u) / safe * self.s
        low = np.floor(r)
        level = low + (rng.random(u.shape) < (r - low))
        return np.where(norm > 0, np.sign(u) * level * (safe / self.s), 0.0)


def parse_comm_quantizer(spec: str | Quantizer | None, *, name: str = "comm") -> Quantizer | None:
    """Parse the quantizer of the communicated messages: ``norm:Q``, ``qsgd:s=S`` (or ``qsgd:S``), or any spec
    of :func:`~scalinglaw.quantize.parse_quantizer`. ``None`` (or ``none``) is full-precision communication."""
    if spec is None or isinstance(spec, Quantizer):
        return spec
    if not isinstance(spec, str):
        raise ParameterError(name, spec, "be a quantizer spec (norm:Q, qsgd:s=S, additive:EPS, int8:range=R, ...)")
    head, _, rest = spec.strip().lower().partition(":")
    if head == "norm":
        try:
            q = float(rest)
        except ValueError:
            raise ParameterError(name, spec, "give a number after 'norm:' (e.g. norm:0.5)") from None
        if not (q >= 0 and math.isfinite(q)):
            raise ParameterError(name, spec, "have q >= 0 and finite")
        return None if q == 0 else NormRelative(q)
    if head == "qsgd":
        value = rest[2:] if rest.startswith("s=") else rest
        try:
            s = float(value)
        except ValueError:
            raise ParameterError(name, spec, "be qsgd:s=S with an integer number of levels S >= 1") from None
        if not (s >= 1 and s == math.floor(s) and s < 2**31):
            raise ParameterError(name, spec, "be qsgd:s=S with an integer number of levels S >= 1")
        return QSGD(int(s))
    try:
        return parse_quantizer(spec, name=name)
    except ParameterError as exc:
        if not exc.requirement.startswith("be one of "):
            raise
        raise ParameterError(name, spec, "be norm:Q, qsgd:s=S, or one of " + exc.requirement.removeprefix(
            "be one of ")) from None


def comm_bits_per_coordinate(q: Quantizer | None, full: float = 32.0) -> float:
    """Bits sent per message coordinate: ``full`` (float32) without quantization, the format's width, QSGD's
    :math:`\\log_2(2s+1)`; idealised schemes have no bit width (``nan``)."""
    if q is None:
        return float(full)
    if isinstance(q, QSGD):
        return q.bits
    bits = getattr(q, "bits", None)
    if bits is not None:
        return float(bits)
    if q.kind == "fp":
        return float(q.exp_bits + q.man_bits + 1)  # type: ignore[attr-defined]
    return math.nan
