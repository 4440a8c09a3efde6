r"""Claim 7: Kumar et al.'s precision law: compute-optimal precision 7-8 bits; PTQ degradation grows with
:math:`D/N` and can make more data harmful.

Claim [paper: Kumar et al. 2024, arXiv 2411.04330; SPEC §8 item 7]. There is no SGD here: the experiment checks
that the claims follow from the law and its Table 2 constants *as the package implements and fits them*, with
the uncertainty a real study would have. Training runs are simulated from the law (Table 2, bias convention
[recon]) on Kumar et al.'s sweep design (:func:`scalinglaw.laws.fit.example_runs`'s grid), with lognormal
evaluation noise; the law is refitted (:func:`scalinglaw.laws.fit.fit`: Huber loss in log space, bootstrap over
runs) and :math:`P^*=\arg\max_Pf(P)/P` is recomputed for every bootstrap refit. For post-training quantization,
a model of :math:`N` parameters is "trained" on :math:`D` tokens over a grid around the predicted critical size
:math:`D_{\rm crit}` (App. E.1) and its loss measured before and after PTQ, with replicated noisy evaluations;
the standard errors use the relative evaluation noise pooled over all points (the noise is homoscedastic in log
space by construction; a handful of evaluations per point would give unreliable per-point SDs).

Criterion (stated before the run):

* C7.1 the 95% bootstrap interval of :math:`P^*` lies inside :math:`[6.5,8.5]`, i.e. rounds to 7 or 8 bits.
* C7.2 :math:`\delta_{\rm PTQ}=L_{\rm post}-L_{\rm pre}` grows with :math:`D/N`: its fitted exponent in :math:`D`
  (weighted, at fixed :math:`N`) is positive by more than 3 SE, and its 95% CI contains the law's
  :math:`\gamma_D`.
* C7.3 more data becomes harmful: the post-PTQ loss's weighted slope in :math:`\log D` is negative by more than
  3 SE below :math:`D_{\rm crit}/3` and positive by more than 3 SE above :math:`3D_{\rm crit}`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..laws.fit import fit
from ..laws.kumar import TABLE2, KumarLaw
from .base import BaseExperiment, Check, Context
from .stats import interval_hits, linear_fit, power_fit

__all__ = ["KumarExperiment"]

_CONFIGS = [
    (math.inf, math.inf, math.inf), (4.0, 4.0, 4.0), (6.0, 6.0, 6.0), (8.0, 8.0, 8.0),
    (3.0, math.inf, math.inf), (math.inf, 4.0, math.inf), (math.inf, math.inf, 4.0), (5.0, 5.0, 5.0),
]


@dataclass(frozen=True)
class Config:
    """Configuration of claim 7 (defaults: the full run)."""

    noise: float = 0.005
    replicates: int = 3
    n_boot: int = 400
    N_ptq: float = 1e8
    P_post: float = 4.0
    d_points: int = 15
    d_span: float = 30.0
    evaluations: int = 8
    seed: int = 707

    @classmethod
    def quick(cls) -> Config:
        return cls(replicates=1, n_boot=100, d_points=11, evaluations=4)


def _runs(cfg: Config, rng: np.random.Generator) -> dict[str, np.ndarray]:
    law = KumarLaw("table2")
    rows = []
    pairs = list(itertools.product((30e6, 60e6, 110e6, 220e6), (1.5e9, 3e9, 6e9, 13e9, 26e9)))
    for r in range(cfg.replicates):
        for i, (N, D) in enumerate(pairs):
            for j in range(2):
                rows.append((N, D, *_CONFIGS[(2 * i + j + r) % len(_CONFIGS)]))
    arr = np.array(rows)
    clean = law(N=arr[:, 0], D=arr[:, 1], P_w=arr[:, 2], P_a=arr[:, 3], P_kv=arr[:, 4])
    loss = clean * np.exp(cfg.noise * rng.standard_normal(clean.shape))
    return {"N": arr[:, 0], "D": arr[:, 1], "P_w": arr[:, 2], "P_a": arr[:, 3], "P_kv": arr[:, 4], "loss": loss}


class KumarExperiment(BaseExperiment):
    name = "claim7_kumar"
    title = "Claim 7: Kumar et al. precision law: compute-optimal precision and PTQ"
    claim = ("Kumar et al.: the joint compute-optimal precision is 7-8 bits; post-training-quantization degradation "
             "grows with D/N and can make more pretraining data harmful (D_crit).")
    provenance = "[paper: Kumar et al. 2024, arXiv 2411.04330] claims and Table 2 constants; bias convention [recon]"
    criterion = (
        "C7.1 the 95% bootstrap interval of P* (refit of the law on noisy runs simulated from Table 2) lies inside "
        "[6.5, 8.5] (rounds to 7 or 8 bits). C7.2 delta_PTQ = L_post - L_pre has a fitted exponent in D (fixed N) "
        "> 0 by more than 3 SE whose 95% CI contains gamma_D. C7.3 the post-PTQ loss's weighted slope in log D is "
        "< 0 by more than 3 SE below D_crit/3 and > 0 by more than 3 SE above 3 D_crit."
    )
    caption = ("Left: f(P)/P (f = N_eff/N) for the Table 2 law and the bootstrap refits (band: 95% pointwise), P* "
               "and its 95% interval. Middle: PTQ degradation against D/N (points: mean of noisy evaluations, ±1 SE; "
               "line: the law). Right: loss before and after PTQ against D, D_crit marked.")
    Config = Config

    def compute(self, cfg: Config, ctx: Context) -> tuple[list[Check], str, str, dict[str, Any]]:
        rng = np.random.default_rng(cfg.seed)
        law = KumarLaw("table2")
        p_star = law.compute_optimal_precision()
        runs = _runs(cfg, rng)
        res = fit("kumar", runs, n_boot=cfg.n_boot, seed=cfg.seed)
        P = np.linspace(3.5, 16.0, 126)
        boots, curves = [], []
        for b in range(res.n_boot):
            vals = dict(TABLE2.values)
            for c in res.free:
                vals[c] = float(res.bootstrap[c][b])
            lb = KumarLaw(vals)
            try:
                boots.append(lb.compute_optimal_precision())
            except ValueError:
                boots.append(math.nan)
            curves.append(np.where((f := lb.factor_table(P)["product"]) > 0, f / P, np.nan))
        boots_a = np.asarray(boots)
        finite = boots_a[np.isfinite(boots_a)]
        lo, hi = (float(v) for v in np.percentile(finite, [2.5, 97.5]))
        fitted = KumarLaw(res.constants).compute_optimal_precision()
        c71 = len(finite) == len(boots_a) and 6.5 <= lo and hi <= 8.5

        # PTQ: fixed N, D around D_crit, replicated noisy evaluations before/after PTQ
        dcrit = float(law.critical_data_size(cfg.N_ptq, cfg.P_post))
        Ds = dcrit * np.logspace(-math.log10(cfg.d_span), math.log10(cfg.d_span), cfg.d_points)
        pre = law(N=cfg.N_ptq, D=Ds)
        post = law(N=cfg.N_ptq, D=Ds, P_post=cfg.P_post)
        e_pre = pre[:, None] * np.exp(cfg.noise * rng.standard_normal((Ds.size, cfg.evaluations)))
        e_post = post[:, None] * np.exp(cfg.noise * rng.standard_normal((Ds.size, cfg.evaluations)))
        delta = e_post - e_pre
        dm = delta.mean(1)
        pm = e_post.mean(1)
        # relative evaluation noise, pooled over every point (few evaluations per point: per-point SDs are poor)
        logs = np.concatenate([np.log(e_pre), np.log(e_post)])
        s_rel = float(np.sqrt(np.sum((logs - logs.mean(1, keepdims=True)) ** 2) / (logs.size - logs.shape[0])))
        dse = s_rel * np.sqrt(e_pre.mean(1) ** 2 + pm**2) / math.sqrt(cfg.evaluations)
        pse = s_rel * pm / math.sqrt(cfg.evaluations)
        fd = power_fit(Ds, dm, dse)
        gD = TABLE2["gamma_D"]
        c72 = fd.slope > 3 * fd.slope_se and interval_hits(fd.slope_ci(), gD)
        low, high = Ds < dcrit / 3, Ds > 3 * dcrit
        fl = linear_fit(np.log(Ds[low]), pm[low], pse[low])
        fh = linear_fit(np.log(Ds[high]), pm[high], pse[high])
        c73 = fl.slope < -3 * fl.slope_se and fh.slope > 3 * fh.slope_se
        flo, fhi = fd.slope_ci()
        checks = [
            Check("C7.1", "compute-optimal precision 7-8 bits (bootstrap 95% interval in [6.5, 8.5])", c71,
                  f"P* = {p_star:.3f} (Table 2), {fitted:.3f} (refit); bootstrap 95% [{lo:.3f}, {hi:.3f}] over "
                  f"{len(finite)}/{len(boots_a)} refits of {res.n_runs} runs"),
            Check("C7.2", "PTQ degradation grows with D/N", c72,
                  f"exponent {fd.slope:.3f} ± {fd.slope_se:.3f} ({fd.slope / fd.slope_se:.1f} SE), 95% CI "
                  f"[{flo:.3f}, {fhi:.3f}], law gamma_D = {gD:.4f}"),
            Check("C7.3", "more data harmful beyond D_crit", c73,
                  f"slope below D_crit/3: {fl.slope:.4f} ± {fl.slope_se:.4f} ({fl.slope / fl.slope_se:.1f} SE); above "
                  f"3 D_crit: {fh.slope:.4f} ± {fh.slope_se:.4f} ({fh.slope / fh.slope_se:.1f} SE); D_crit = "
                  f"{dcrit:.3g} tokens (N = {cfg.N_ptq:.2g}, P_post = {cfg.P_post:g})"),
        ]
        band = np.nanpercentile(np.asarray(curves), [2.5, 97.5], axis=0)
        data = {
            "P": P, "f_over_P": law.factor_table(P)["product"] / P, "band": band,
            "p_star_table2": p_star, "p_star_refit": fitted, "p_star_ci95": [lo, hi], "p_star_boot": boots_a,
            "fit": res.to_dict(), "D": Ds, "D_over_N": Ds / cfg.N_ptq, "D_crit": dcrit,
            "delta_mc": dm, "delta_se": dse, "delta_law": post - pre, "post_mc": pm, "post_se": pse,
            "pre_law": pre, "post_law": post, "delta_fit": fd.to_dict(), "slope_low": fl.to_dict(),
            "slope_high": fh.to_dict(), "relative_noise_pooled": s_rel,
        }
        ctx.notes.append("no SGD in this experiment: the executor is not used")
        prediction = f"P* = {p_star:.2f} bits; delta_PTQ ~ D^{gD:.3f}; D_crit = {dcrit:.3g} at N = {cfg.N_ptq:.2g}"
        measurement = (f"refit P* 95% [{lo:.2f}, {hi:.2f}]; delta exponent {fd.slope:.3f} ± {fd.slope_se:.3f}; "
                       f"post-PTQ slope {fl.slope / fl.slope_se:.0f} SE below, {fh.slope / fh.slope_se:.0f} SE above")
        return checks, prediction, measurement, data

    def figure_size(self) -> tuple[float, float]:
        return (14.0, 4.3)

    def draw(self, record: dict[str, Any], fig: Any) -> None:
        from .plotting import curve, errorbars, finish

        d = record["data"]
        cfg = record["config"]
        ax1, ax2, ax3 = fig.subplots(1, 3)
        P = np.asarray(d["P"])
        band = np.asarray(d["band"], dtype=float)
        ax1.fill_between(P, band[0], band[1], color="C0", alpha=0.25, label="bootstrap refits (95%)")
        curve(P, d["f_over_P"], ax=ax1, color="C0", label="Table 2 law: f(P)/P")
        lo, hi = d["p_star_ci95"]
        ax1.axvspan(lo, hi, color="C3", alpha=0.25, label=f"P* 95% [{lo:.2f}, {hi:.2f}]")
        ax1.axvline(d["p_star_table2"], color="C3", lw=1, label=f"P* = {d['p_star_table2']:.2f} (Table 2)")
        finish(ax1, xlabel="training precision P (bits)", ylabel=r"$f(P)/P$, $f=N_{\rm eff}/N$",
               title="joint compute-optimal precision")
        x = np.asarray(d["D_over_N"])
        f = d["delta_fit"]
        errorbars(x, d["delta_mc"], d["delta_se"], ax=ax2, color="C1",
                  label=f"simulated runs, exponent {f['slope']:.3f} ± {1.96 * f['slope_se']:.3f}")
        curve(x, d["delta_law"], ax=ax2, color="C1", label="law (Table 2)")
        finish(ax2, xlabel="D/N (tokens per parameter)", ylabel=r"$\delta_{\rm PTQ}=L_{\rm post}-L_{\rm pre}$",
               logx=True, logy=True, title=f"PTQ to {cfg['P_post']:g} bits, N = {cfg['N_ptq']:.2g}")
        D = np.asarray(d["D"])
        curve(D, d["pre_law"], ax=ax3, color="k", label="before PTQ (law)")
        curve(D, d["post_law"], ax=ax3, color="C3", label="after PTQ (law)")
        errorbars(D, d["post_mc"], d["post_se"], ax=ax3, color="C3", label="after PTQ (simulated)")
        ax3.axvline(d["D_crit"], color="gray", ls="--", lw=1, label=f"D_crit = {d['D_crit']:.2g}")
        finish(ax3, xlabel="pretraining tokens D", ylabel="loss", logx=True, title="more data can hurt after PTQ")
