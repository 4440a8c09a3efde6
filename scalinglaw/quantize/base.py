r"""The quantizer interface (SPEC §2).

A quantizer maps an array ``u`` to ``Q(u) = u + e`` with fresh randomness at every call. The theory assumes
:math:`\mathbb E[Q(u)\mid u]=u` (unbiased). Two noise classes [paper: 2510.18259, 2602.19241]:

* additive: :math:`\mathbb E[ee^\top\mid u]=\epsilon I`, independent of the signal (INT / fixed point);
* multiplicative: :math:`\mathbb E[ee^\top\mid u]=\epsilon\,uu^\top` (the paper's definition, one relative factor
  shared by the vector) or :math:`\epsilon\,\mathrm{diag}(u^2)` (coordinate-wise, closer to FP hardware).

**What "the vector" is.** ``vector_axes`` names the axes that form one vector: a sample's feature vector for
data, the parameter vector for parameters, and the batch vector in :math:`\mathbb R^B` for labels, activations
and output gradients. A shared multiplicative factor and an absmax scale are taken over those axes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import _checks

__all__ = ["IdealizedScheme", "Quantizer", "reduced_shape"]

#: The kinds of idealised scheme the exact engine understands.
IDEALIZED_KINDS = ("additive", "multiplicative", "multiplicative-coord")


def reduced_shape(shape: Sequence[int], vector_axes: Sequence[int]) -> tuple[int, ...]:
    """``shape`` with every axis in ``vector_axes`` set to 1 (the shape of one factor per vector)."""
    nd = len(shape)
    axes = {ax % nd for ax in vector_axes}
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Quantizer(ABC):
    """Base class of all quantizers.

    Attributes
    ----------
    kind : str
        ``"additive"``, ``"multiplicative"``, ``"multiplicative-coord"``, ``"int"`` or ``"fp"``.
    noise_class : str
        ``"additive"`` or ``"multiplicative"`` (SPEC §2).
    idealized : bool
        Whether this is one of the three idealised Gaussian schemes of the theory.
    """

    kind: str
    noise_class: str
    idealized: bool = False

    @property
    @abstractmethod
    def epsilon(self) -> float:
        """The class parameter :math:`\\epsilon` (SPEC §2)."""

    @property
    @abstractmethod
    def spec(self) -> str:
        """Canonical spec string; ``parse_quantizer(q.spec)`` rebuilds an equal quantizer."""

    @abstractmethod
    def quantize(
        self, u: np.ndarray, rng: np.random.Generator, *, vector_axes: Sequence[int] = (-1,)
    ) -> np.ndarray:
        """Return ``Q(u)`` as a new float64 array (``u`` is not modified)."""

    def __call__(
        self, u: np.ndarray, rng: np.random.Generator, *, vector_axes: Sequence[int] = (-1,)
    ) -> np.ndarray:
        return self.quantize(u, rng, vector_axes=vector_axes)

    def idealized_scheme(self) -> IdealizedScheme | None:
        """The idealised scheme this quantizer is, or stands in for in the theory; ``None`` if unknown."""
        return None

    def describe(self) -> dict[str, object]:
        """A JSON-friendly summary: spec, kind, class and epsilon."""
        return {"spec": self.spec, "kind": self.kind, "class": self.noise_class, "epsilon": self.epsilon}

    def __str__(self) -> str:
        return self.spec


@dataclass(frozen=True)
class IdealizedScheme(Quantizer):
    """Common base of the three idealised Gaussian schemes (see :mod:`scalinglaw.quantize.schemes`).

    Parameters
    ----------
    eps : float
        The noise level :math:`\\epsilon\\ge0` of the scheme (SPEC §2).
    """

    eps: float
    idealized = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps", _checks.nonnegative("epsilon", self.eps))

    @property
    def epsilon(self) -> float:
        return self.eps

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.eps:.17g}"

    def idealized_scheme(self) -> IdealizedScheme:
        return self

    @abstractmethod
    def _noise(self, u: np.ndarray, rng: np.random.Generator, vector_axes: Sequence[int]) -> np.ndarray: ...

    def quantize(
        self, u: np.ndarray, rng: np.random.Generator, *, vector_axes: Sequence[int] = (-1,)
    ) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        if self.epsilon == 0.0:
            return u.copy()
        return u + self._noise(u, rng, vector_axes)
