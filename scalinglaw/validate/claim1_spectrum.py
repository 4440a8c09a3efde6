r"""Claim 1: multiplicative data quantization keeps :math:`H^{(q)}\propto H`; additive lifts and flattens it.

Claim [paper: 2510.18259, SPEC §8 item 1]. Features :math:`x\sim\mathcal N(0,H)`, :math:`\lambda_i=i^{-a}`; the
quantized spectrum is :math:`H^{(q)}_{ii}=\mathbb E[Q(x)_i^2]`, estimated by Monte Carlo per coordinate for the
idealised schemes (``multiplicative``, ``multiplicative-coord``, ``additive``, all with the same :math:`\epsilon`)
and for real formats with stochastic rounding (``int8`` and ``int4`` with per-sample absmax scaling,
``fp8_e4m3`` and ``fp4_e2m1`` unscaled). Predictions [derived, SPEC §2, §5.2]: :math:`(1+\epsilon)\lambda_i`
(both multiplicative schemes), :math:`\lambda_i+\epsilon` (additive), and for unscaled FP formats
:math:`\lambda_i+\mathbb E[e_i^2]` from the format's grid (:func:`~scalinglaw.validate.mc.grid_error_moment`).

Criterion (stated before the run; :math:`z` = difference in Monte Carlo standard errors, :math:`z_B` the
Bonferroni threshold for all :math:`3d` pointwise comparisons of C1.1-C1.2, family-wise level 1%, at least 3):

* C1.1 multiplicative (both variants): every coordinate within :math:`z_B` SE of :math:`(1+\epsilon)\lambda_i`, and
  the 95% CI of the slope of :math:`\log H^{(q)}_{ii}` against :math:`\log\lambda_i` (weighted fit over all
  coordinates) contains 1 (shape preserved).
* C1.2 additive: every coordinate within :math:`z_B` SE of :math:`\lambda_i+\epsilon`; over the coordinates with
  :math:`\lambda_i<\epsilon` the slope's 95% CI lies below 1/2 (flattened: the local slope
  :math:`\lambda/(\lambda+\epsilon)` is at most 1/2 there); the last coordinate is lifted by more than 3 SE.
* C1.3 real formats: ``fp8_e4m3`` keeps the shape over its normal range (coordinates with
  :math:`\sqrt{\lambda_i}\ge4\times` the smallest normal): slope CI contains 1. ``int8``, ``int4`` and
  ``fp4_e2m1`` behave additively: over the upper half of the coordinates the slope's 95% CI lies below 1, and
  the last coordinate is lifted by more than 3 SE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..quantize import parse_quantizer
from .base import BaseExperiment, Check, Context
from .mc import feature_moments, grid_error_moment
from .stats import bonferroni_z, interval_hits, power_fit

__all__ = ["SpectrumExperiment"]


@dataclass(frozen=True)
class Config:
    """Configuration of claim 1 (defaults: the full run)."""

    a: float = 2.0
    d: int = 200
    eps: float = 0.01
    samples: int = 200_000
    formats: tuple[str, ...] = ("int8", "fp8_e4m3", "fp4_e2m1", "int4")
    seed: int = 101

    @classmethod
    def quick(cls) -> Config:
        return cls(samples=40_000)


def _fmt_ci(fit: Any) -> str:
    lo, hi = fit.slope_ci()
    return f"{fit.slope:.3f} [{lo:.3f}, {hi:.3f}]"


def _format_slope(spec: str, entry: dict[str, Any]) -> str:
    if "normal_slope_fit" in entry:
        return f"{spec} normal-range slope {entry['normal_slope_fit']['slope']:.2f}"
    return f"{spec} tail slope {entry['upper_slope_fit']['slope']:.2f}"


class SpectrumExperiment(BaseExperiment):
    name = "claim1_spectrum"
    title = "Claim 1: quantized spectrum H^(q) = E[Q(x)Q(x)^T]"
    claim = ("Multiplicative data quantization preserves the spectrum's shape (H^(q) proportional to H); additive "
             "quantization lifts and flattens it.")
    provenance = "[paper: 2510.18259] claim; [derived] predictions (theory/quantizers.md, theory/sgd-quantized.md)"
    criterion = (
        "C1.1 multiplicative (shared and coordinate-wise): every coordinate within the Bonferroni threshold z_B "
        "(all 3d pointwise comparisons of C1.1-C1.2, family-wise 1%, >= 3 SE) of (1+eps)lambda_i, and the 95% CI "
        "of the log-log slope of H^(q) against "
        "lambda contains 1. C1.2 additive: every coordinate within z_B SE of lambda_i+eps; the slope over "
        "coordinates with lambda_i < eps has its 95% CI below 1/2; the last coordinate lifted by > 3 SE. "
        "C1.3 real formats: fp8_e4m3 slope CI over its normal range (sqrt(lambda_i) >= 4 x smallest normal) "
        "contains 1; int8, int4 (absmax) and fp4_e2m1: slope CI over the upper half of the coordinates below 1 "
        "and the last coordinate lifted by > 3 SE."
    )
    caption = ("Quantized spectrum E[Q(x)_i^2] against the index i (log-log), lambda_i = i^-a. Points: Monte Carlo "
               "means with ±1 SE error bars (mostly smaller than the markers); lines: predictions.")
    Config = Config

    def compute(self, cfg: Config, ctx: Context) -> tuple[list[Check], str, str, dict[str, Any]]:
        i = np.arange(1, cfg.d + 1, dtype=float)
        lam = i ** (-cfg.a)
        sigma = np.sqrt(lam)
        ideal = [f"multiplicative:{cfg.eps}", f"multiplicative-coord:{cfg.eps}", f"additive:{cfg.eps}"]
        specs = ideal + list(cfg.formats)
        mom = feature_moments(ctx, specs, sigma, cfg.samples, cfg.seed)
        zb = bonferroni_z(3 * cfg.d)
        checks: list[Check] = []
        data: dict[str, Any] = {"index": i, "lambda": lam, "z_bonferroni": zb, "schemes": {}}

        # C1.1 multiplicative
        ok11, parts = True, []
        for spec in ideal[:2]:
            m = mom[spec]
            pred = (1 + cfg.eps) * lam
            z = (m.hq - pred) / m.hq_se
            fit = power_fit(lam, m.hq, m.hq_se)
            good = bool(np.max(np.abs(z)) < zb) and interval_hits(fit.slope_ci(), 1.0)
            ok11 &= good
            parts.append(f"{spec}: max|z| = {np.max(np.abs(z)):.2f}, slope {_fmt_ci(fit)}")
            data["schemes"][spec] = {"hq": m.hq, "se": m.hq_se, "prediction": pred, "max_abs_z": np.max(np.abs(z)),
                                     "slope_fit": fit.to_dict()}
        checks.append(Check("C1.1", "multiplicative schemes keep the shape: H^(q) = (1+eps) H", ok11,
                            f"z_B = {zb:.2f}; " + "; ".join(parts)))

        # C1.2 additive
        spec = ideal[2]
        m = mom[spec]
        pred = lam + cfg.eps
        z = (m.hq - pred) / m.hq_se
        tail = lam < cfg.eps
        fit_tail = power_fit(lam[tail], m.hq[tail], m.hq_se[tail])
        lift = (m.hq[-1] - lam[-1]) / m.hq_se[-1]
        ok12 = bool(np.max(np.abs(z)) < zb) and fit_tail.slope_ci()[1] < 0.5 and lift > 3
        data["schemes"][spec] = {"hq": m.hq, "se": m.hq_se, "prediction": pred, "max_abs_z": np.max(np.abs(z)),
                                 "tail_slope_fit": fit_tail.to_dict(), "lift_z": lift}
        checks.append(Check("C1.2", "additive lifts (floor eps) and flattens the spectrum", ok12,
                            f"max|z| = {np.max(np.abs(z)):.2f} (z_B = {zb:.2f}); tail slope {_fmt_ci(fit_tail)} "
                            f"over {int(tail.sum())} coordinates (must be < 0.5); lift of the last coordinate "
                            f"{lift:.1f} SE"))

        # C1.3 real formats
        ok13, parts = True, []
        upper = i > cfg.d / 2
        for spec in cfg.formats:
            m = mom[spec]
            q = parse_quantizer(spec)
            entry: dict[str, Any] = {"hq": m.hq, "se": m.hq_se, "e2": m.e2, "e2_se": m.e2_se}
            try:
                entry["prediction"] = lam + grid_error_moment(spec, sigma)
            except ValueError:
                entry["prediction"] = None
            if q.kind == "fp" and q.man_bits >= 2:  # a format with a normal range on this spectrum
                normal = sigma >= 4 * q.min_normal
                fit = power_fit(lam[normal], m.hq[normal], m.hq_se[normal])
                good = int(normal.sum()) >= 3 and interval_hits(fit.slope_ci(), 1.0)
                parts.append(f"{spec}: normal-range slope {_fmt_ci(fit)} over {int(normal.sum())} coordinates")
                entry["normal_slope_fit"] = fit.to_dict()
            else:
                fit = power_fit(lam[upper], m.hq[upper], m.hq_se[upper])
                lift = (m.hq[-1] - lam[-1]) / m.hq_se[-1]
                good = fit.slope_ci()[1] < 1.0 and lift > 3
                parts.append(f"{spec}: upper-half slope {_fmt_ci(fit)}, lift {lift:.1f} SE")
                entry["upper_slope_fit"] = fit.to_dict()
                entry["lift_z"] = lift
            ok13 &= good
            data["schemes"][spec] = entry
        checks.append(Check("C1.3", "real formats: FP8 proportional in its normal range; INT and FP4 additive-like",
                            ok13, "; ".join(parts)))

        f_add = data["schemes"][ideal[2]]["tail_slope_fit"]
        prediction = (f"mult: H^(q)=(1+eps)H, slope 1; add: H+eps*I, tail slope <= 1/2 (eps={cfg.eps:g}); "
                      "INT/FP4: lifted tail; FP8: slope 1 in its normal range")
        measurement = (f"mult slope {data['schemes'][ideal[0]]['slope_fit']['slope']:.3f}, coord "
                       f"{data['schemes'][ideal[1]]['slope_fit']['slope']:.3f}; add tail slope {f_add['slope']:.3f}; "
                       + ", ".join(_format_slope(s, data["schemes"][s]) for s in cfg.formats))
        return checks, prediction, measurement, data

    def figure_size(self) -> tuple[float, float]:
        return (11.0, 4.4)

    def draw(self, record: dict[str, Any], fig: Any) -> None:
        from .plotting import curve, errorbars, finish, log_subsample

        d = record["data"]
        i = np.asarray(d["index"])
        lam = np.asarray(d["lambda"])
        ax1, ax2 = fig.subplots(1, 2)
        curve(i, lam, ax=ax1, label=r"$\lambda_i=i^{-a}$ (full precision)", color="k")
        colors = ["C0", "C2", "C3", "C1", "C4", "C5", "C6"]
        for k, (spec, s) in enumerate(d["schemes"].items()):
            ax = ax1 if spec.split(":")[0] in ("multiplicative", "multiplicative-coord", "additive") else ax2
            c = colors[k % len(colors)]
            sel = log_subsample(len(i), 45)
            errorbars(i[sel], np.asarray(s["hq"])[sel], np.asarray(s["se"])[sel], ax=ax, color=c,
                      label=f"{spec} (MC)", ms=3 if ax is ax2 else 4)
            if s.get("prediction") is not None:
                curve(i, s["prediction"], ax=ax, color=c, style="--", label=f"{spec} (predicted)")
        curve(i, lam, ax=ax2, label=r"$\lambda_i$", color="k")
        cfg = record["config"]
        finish(ax1, xlabel="coordinate i", ylabel=r"$H^{(q)}_{ii}=\mathbb{E}[Q(x)_i^2]$", logx=True, logy=True,
               title=f"idealised schemes, eps = {cfg['eps']:g}")
        finish(ax2, xlabel="coordinate i", ylabel=r"$\mathbb{E}[Q(x)_i^2]$", logx=True, logy=True,
               title="real formats, stochastic rounding (INT: absmax per sample)")
