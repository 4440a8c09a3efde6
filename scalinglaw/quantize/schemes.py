r"""The idealised Gaussian quantization schemes of the theory (SPEC §2) [paper: 2510.18259 for the classes].

* ``additive:EPS``: :math:`Q(u)=u+\sqrt\epsilon\,g`, :math:`g\sim\mathcal N(0,I)`; covariance :math:`\epsilon I`.
* ``multiplicative:EPS``: :math:`Q(u)=u(1+\sqrt\epsilon\,\eta)` with one scalar :math:`\eta` per vector;
  covariance :math:`\epsilon uu^\top` (the paper's definition).
* ``multiplicative-coord:EPS``: :math:`Q(u)=u\odot(1+\sqrt\epsilon\,g)`; covariance
  :math:`\epsilon\,\mathrm{diag}(u^2)` (closer to FP hardware).

All three are unbiased. ``multiplicative`` shares one Gaussian factor over the vector (``vector_axes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import _checks
from .base import IdealizedScheme, reduced_shape

__all__ = ["Additive", "Multiplicative", "MultiplicativeCoord", "idealized"]


@dataclass(frozen=True)
class Additive(IdealizedScheme):
    r"""Additive Gaussian noise of variance :math:`\epsilon` per coordinate (INT-like)."""

    kind = "additive"
    noise_class = "additive"

    def _noise(self, u: np.ndarray, rng: np.random.Generator, vector_axes: Sequence[int]) -> np.ndarray:
        return np.sqrt(self.eps) * rng.standard_normal(u.shape)


@dataclass(frozen=True)
class Multiplicative(IdealizedScheme):
    r"""Relative Gaussian noise with one factor shared by the vector: covariance :math:`\epsilon uu^\top`."""

    kind = "multiplicative"
    noise_class = "multiplicative"

    def _noise(self, u: np.ndarray, rng: np.random.Generator, vector_axes: Sequence[int]) -> np.ndarray:
        eta = rng.standard_normal(reduced_shape(u.shape, vector_axes))
        return u * (np.sqrt(self.eps) * eta)


@dataclass(frozen=True)
class MultiplicativeCoord(IdealizedScheme):
    r"""Coordinate-wise relative Gaussian noise: covariance :math:`\epsilon\,\mathrm{diag}(u^2)` (FP-like)."""

    kind = "multiplicative-coord"
    noise_class = "multiplicative"

    def _noise(self, u: np.ndarray, rng: np.random.Generator, vector_axes: Sequence[int]) -> np.ndarray:
        return u * (np.sqrt(self.eps) * rng.standard_normal(u.shape))


_IDEALIZED = {"additive": Additive, "multiplicative": Multiplicative, "multiplicative-coord": MultiplicativeCoord}


def idealized(kind: str, eps: float) -> IdealizedScheme:
    """Build an idealised scheme by kind name."""
    _checks.choice("scheme", kind, list(_IDEALIZED))
    return _IDEALIZED[kind](eps)
