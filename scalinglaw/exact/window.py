"""Averaging windows and the output moments shared by the exact methods."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Moments", "averaging_window"]


def averaging_window(T: int, average: str) -> tuple[int, int]:
    """Iterate indices ``[t0, t1)`` averaged over: uniform ``[0, T)``, tail ``[T//2, T)``, last ``[T, T+1)``."""
    if average == "uniform":
        return 0, T
    if average == "tail":
        return T // 2, T
    return T, T + 1


@dataclass(frozen=True)
class Moments:
    r"""Output moments per coordinate.

    ``second`` is :math:`\mathbb E\bar u_i^2` and ``cross`` is :math:`\mathbb E[\bar u_iv^*_i]`.
    """

    second: np.ndarray
    cross: np.ndarray
