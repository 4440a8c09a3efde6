"""Plotting helpers of the validation suite (matplotlib is the optional ``plot`` extra).

matplotlib is imported lazily, with the non-interactive "Agg" backend. Every helper takes ``ax=None`` (a new
figure is made) and returns the Axes. Error bars are ±1 standard error of the Monte Carlo mean unless a caption
says otherwise.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ScalingLawError

__all__ = [
    "MatplotlibMissingError",
    "curve",
    "errorbars",
    "finish",
    "new_figure",
    "require_matplotlib",
    "save",
]


class MatplotlibMissingError(ScalingLawError):
    """matplotlib, needed for the validation figures, is not installed."""


def require_matplotlib() -> None:
    """Raise :class:`MatplotlibMissingError` (one line) when matplotlib cannot be imported."""
    if importlib.util.find_spec("matplotlib") is None:
        raise MatplotlibMissingError(
            "validate draws figures with matplotlib, which is not installed: pip install 'scalinglaw[plot]'"
        )


def _plt() -> Any:
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def new_figure(size: tuple[float, float] = (6.0, 4.5)) -> Any:
    """A new matplotlib Figure (Agg backend, constrained layout)."""
    plt = _plt()
    return plt.figure(figsize=size, layout="constrained")


def _ax(ax: Any) -> Any:
    if ax is None:
        return new_figure().add_subplot(1, 1, 1)
    return ax


def errorbars(
    x: Sequence[float], y: Sequence[float], se: Sequence[float] | None, *, ax: Any = None, label: str | None = None,
    color: Any = None, marker: str = "o", ms: float = 4.0, **kwargs: Any,
) -> Any:
    """Monte Carlo points with ±1 SE error bars (``se=None``: markers only). Returns the Axes."""
    ax = _ax(ax)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    yerr = None if se is None else np.asarray(se, dtype=float)
    ax.errorbar(x, y, yerr=yerr, fmt=marker, ms=ms, capsize=2.5, lw=1, color=color, label=label,
                linestyle="none", **kwargs)
    return ax


def curve(
    x: Sequence[float], y: Sequence[float], *, ax: Any = None, label: str | None = None, color: Any = None,
    style: str = "-", lw: float = 1.4, **kwargs: Any,
) -> Any:
    """A prediction line (missing values are skipped). Returns the Axes."""
    ax = _ax(ax)
    ax.plot(np.asarray(x, dtype=float), np.asarray(y, dtype=float), style, color=color, label=label, lw=lw,
            **kwargs)
    return ax


def finish(
    ax: Any, *, xlabel: str, ylabel: str, title: str | None = None, logx: bool = False, logy: bool = False,
    legend: bool = True, fontsize: float = 7.5, xticks: Sequence[float] | None = None,
) -> Any:
    """Label the axes, set log scales, add a legend and a light grid. Returns the Axes.

    ``xticks`` puts plain labels at the given abscissae (useful on log axes with few points).
    """
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if xticks is not None:
        ax.set_xticks(list(xticks), [f"{v:g}" for v in xticks])
        ax.xaxis.set_minor_locator(_plt().NullLocator())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9.5)
    ax.grid(True, which="major", alpha=0.3)
    if legend:
        ax.legend(fontsize=fontsize, frameon=False)
    return ax


def save(fig: Any, path: str | Path) -> Path:
    """Save ``fig`` as a PNG (dpi 130) and close it."""
    plt = _plt()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def log_subsample(n: int, k: int = 40) -> np.ndarray:
    """About ``k`` log-spaced indices into ``range(n)`` (for markers on long log-scale curves)."""
    idx = np.unique(np.round(np.logspace(0, np.log10(max(n, 1)), k)).astype(int) - 1)
    return idx[(idx >= 0) & (idx < n)]
