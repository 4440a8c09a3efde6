"""Figures (matplotlib is the optional ``plot`` extra): every function takes ``ax=None`` and returns the Axes.

Allocation figures the field expects (ENGINEERING.md): frontiers (analytic against brute force), isoFLOP
curves with the minimum marked, iso-loss contours in (size, bits) under a memory budget, optimal bits against
compute.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ScalingLawError

__all__ = ["distinct_format", "plot_bits_vs_compute", "plot_frontier", "plot_isoflop", "plot_isoloss", "pyplot",
           "save"]


def pyplot() -> Any:
    """Import matplotlib's pyplot with a non-interactive back end, or explain how to get it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ScalingLawError("figures need matplotlib: pip install 'scalinglaw[plot]'") from None
    return plt


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    plt = pyplot()
    _, ax = plt.subplots(figsize=(6.4, 4.4))
    return ax


def save(ax: Any, path: str) -> str:
    """Save the figure of ``ax`` to ``path`` (PNG, 150 dpi) and close it."""
    plt = pyplot()
    fig = ax.figure
    fig.tight_layout()
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path


def _band(ax: Any, x: Any, lo: Any, hi: Any, color: Any, label: str) -> None:
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.fill_between(np.asarray(x)[ok], np.asarray(lo)[ok], np.asarray(hi)[ok], color=color, alpha=0.2, lw=0,
                    label=label)


def plot_frontier(fr: Any, ax: Any = None) -> Any:
    """Optimal size and data against the budget (log-log), with the fitted exponents in the legend; the
    brute-force numeric optimum is overlaid when the frontier is analytic, and the bootstrap bands are shaded
    for a frontier with uncertainty (:func:`scalinglaw.uncertainty.frontier_with_uncertainty`)."""
    ax = _axes(ax)
    lab = fr.labels
    bands = getattr(fr, "lo", None)
    for which, style in (("size", "-"), ("data", "--")):
        y = getattr(fr, which)
        slope = float(np.polyfit(np.log(fr.budgets), np.log(y), 1)[0])
        line = ax.loglog(fr.budgets, y, style, label=f"{lab[which]}* ({fr.method.split(' (')[0]}), slope {slope:.3f}")
        if bands is not None:
            _band(ax, fr.budgets, fr.lo[which], fr.hi[which], line[0].get_color(),
                  f"{lab[which]}* {fr.level:.0%} band ({fr.n_draws} draws)")
    if getattr(fr, "numeric_size", None) is not None:
        ax.loglog(fr.budgets, fr.numeric_size, "o", mfc="none", ms=5, label=f"{lab['size']}* brute force")
    ax.set_xlabel(f"{fr.budget_kind} budget")
    ax.set_ylabel("optimal size / data")
    ax.set_title(f"{fr.law}: compute-optimal frontier")
    ax.legend(fontsize=8)
    return ax


def plot_isoflop(curves: dict[str, Any], ax: Any = None, bands: dict[str, Any] | None = None) -> Any:
    """Loss against size at fixed compute, one curve per budget, minima marked; with ``bands``
    (:func:`scalinglaw.uncertainty.isoflop_bands`) the bootstrap band of each curve is shaded and the interval of
    its optimal size drawn as a bar through the minimum."""
    ax = _axes(ax)
    lab = curves["labels"]
    for i, c in enumerate(curves["curves"]):
        ok = np.isfinite(c["loss"])
        line = ax.semilogx(c["size"][ok], c["loss"][ok], label=f"C = {c['budget']:.2g}")[0]
        color = line.get_color()
        ax.plot([c["min_size"]], [c["min_loss"]], "o", color=color)
        if bands is not None:
            _band(ax, c["size"], bands["loss_lo"][i], bands["loss_hi"][i], color, "")
            lo, hi = bands["size_interval"][i]
            if np.isfinite(lo) and np.isfinite(hi):
                ax.errorbar([c["min_size"]], [c["min_loss"]], xerr=[[c["min_size"] - lo], [hi - c["min_size"]]],
                            color=color, capsize=3, lw=1.2)
    ax.set_xlabel(f"{lab['size']} (model size)")
    ax.set_ylabel("loss")
    title = "isoFLOP curves (minimum marked)"
    if bands is not None:
        title = f"isoFLOP curves, {bands['level']:.0%} bootstrap bands, bars: optimal {lab['size']}"
    ax.set_title(f"{curves['law']}: {title}", fontsize=10)
    ax.legend(fontsize=8)
    return ax


def plot_isoloss(grid: dict[str, Any], ax: Any = None, memory_budgets: Any = None, levels: int = 12,
                 optimum: tuple[float, float] | None = None) -> Any:
    """Iso-loss contours in (size, bits) at fixed data, with memory budgets size x bits as dashed lines (their
    values in the legend) and the optimal allocation marked; every contour has its own label."""
    ax = _axes(ax)
    lab = grid["labels"]
    S, P, L = grid["size"], grid["precision"], grid["loss"]
    finite = np.isfinite(L)
    Lm = np.where(finite, L, np.nan)
    # levels spread over the reducible loss (geometric above the minimum), so the interesting valley is resolved
    lo = float(np.nanmin(Lm))
    excess = np.nanquantile(Lm - lo, [0.02, 0.9])
    lv = np.unique(lo + np.geomspace(max(excess[0], 1e-12), max(excess[1], 2e-12), levels))
    cs = ax.contour(S, P, Lm, levels=lv)
    fmt = distinct_format(cs.levels)
    ax.clabel(cs, fontsize=7, fmt=fmt)
    ax.set_xscale("log")
    if optimum is not None:
        ax.plot([optimum[0]], [optimum[1]], "k*", ms=10,
                label=f"optimal allocation ({lab['size']}*, {lab['precision']}*)")
    if memory_budgets is not None:
        s = np.unique(S)
        budgets = np.atleast_1d(memory_budgets)
        for m in budgets:
            ax.plot(s, m / s, "k--", lw=0.8)
        values = ", ".join(f"{m:.2g}" for m in budgets)
        ax.plot([], [], "k--", lw=0.8, label=f"memory budgets size x bits: {values}")
    if optimum is not None or memory_budgets is not None:
        # below the axes, where it hides no contour label
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    ax.set_ylim(np.nanmin(P), np.nanmax(P))
    ax.set_xlabel(f"{lab['size']} (model size)")
    ax.set_ylabel(f"{lab['precision']} (bits)")
    ax.set_title(f"{grid['law']}: iso-loss contours at {lab['data']} = {grid['data']:.3g}")
    return ax


def distinct_format(levels: Any, max_digits: int = 12) -> str:
    """The shortest ``%.Kg`` format (K >= 3) that gives every contour level its own label."""
    vals = np.asarray(levels, dtype=np.float64)
    for k in range(3, max_digits + 1):
        if len({f"{v:.{k}g}" for v in vals}) == vals.size:
            return f"%.{k}g"
    return f"%.{max_digits}g"


def plot_bits_vs_compute(fr: Any, ax: Any = None, reference: Any = None) -> Any:
    """Optimal precision against compute (log x), with the fitted slope in bits per decade (and the bootstrap
    band for a frontier with uncertainty)."""
    ax = _axes(ax)
    slope = float(np.polyfit(np.log10(fr.budgets), fr.precision, 1)[0])
    line = ax.semilogx(fr.budgets, fr.precision, "-", label=f"optimal bits, {slope:.3f} bits/decade")
    if getattr(fr, "lo", None) is not None:
        _band(ax, fr.budgets, fr.lo["precision"], fr.hi["precision"], line[0].get_color(),
              f"{fr.level:.0%} band ({fr.n_draws} draws)")
    if reference is not None:
        ax.semilogx(fr.budgets, reference, ":", label="reconstructed (a-1)/(a+1) log4 C")
    ax.set_xlabel("compute budget")
    ax.set_ylabel(f"optimal {fr.labels['precision']} (bits)")
    ax.set_title(f"{fr.law}: optimal precision against compute")
    ax.legend(fontsize=8)
    return ax
