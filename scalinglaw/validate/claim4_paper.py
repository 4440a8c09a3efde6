r"""Claim 4: the experiment of 2510.18259 (risk against :math:`N` under data quantization).

Claim [paper: 2510.18259, SPEC §8 item 4]. Set-up, as SPEC §8 describes it: :math:`\lambda_i=i^{-2}`,
:math:`w^*=\mathbf 1`, :math:`\sigma^2=1`, constant step, uniform averaging, :math:`B=1`; (a) :math:`d=200` with
:math:`\epsilon\in\{0,10^{-3},5\cdot10^{-3},10^{-2}\}`, (b) :math:`\epsilon=10^{-2}` with
:math:`d\in\{50,100,200,400\}`. The quantizer acts on the data (additive or multiplicative, the paper's shared
factor). The step is the same for every curve, :math:`\gamma=0.05`: stable for the largest
:math:`\operatorname{tr}H^{(q)}` and within the closed form's condition :math:`\gamma<1/(3\operatorname{tr}H^{(q)})`.
The excess risk is measured on clean test inputs (the package default; on quantized test inputs multiplicative
noise adds the floor :math:`\frac{\epsilon}{1+\epsilon}\|w^*\|_H^2`, SPEC §5.2). Predictions: the exact engine at
every :math:`N` (lines) and the closed form (calibrated bound, dotted). Monte Carlo at a few :math:`N`, runs of
one :math:`d` and :math:`N` sharing their inputs.

Criterion (stated before the run):

* C4.1 every Monte Carlo point lies within the Bonferroni threshold (family-wise 1%, at least 3 SE) of the exact
  engine.
* C4.2 multiplicative curves overlap full precision: at every Monte Carlo :math:`N`, for every :math:`\epsilon`
  and every :math:`d`, the 95% CI of :math:`\mathcal E_{\rm mult}/\mathcal E_{\rm fp}-1` (paired, delta method)
  lies inside :math:`[-0.1,0.1]`.
* C4.3 additive curves degrade with :math:`\epsilon`: at the largest Monte Carlo :math:`N` the weighted linear
  trend of :math:`\mathcal E_{\rm add}` in :math:`\epsilon` (with :math:`\epsilon=0` the full-precision run) is
  positive by more than 3 SE, and :math:`\mathcal E_{\rm add}(\epsilon_{\max})/\mathcal E_{\rm fp}-1>0.1` at 95%
  confidence (outside the overlap band).
* C4.4 additive curves degrade with :math:`d`: at the largest Monte Carlo :math:`N` the weighted linear trend of
  :math:`\mathcal E_{\rm add}(\epsilon=10^{-2})` in :math:`\log_2d` is positive by more than 3 SE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exact import exact_risk
from ..predict import closed_form_risk
from ..problem import make_problem
from .base import BaseExperiment, Check, Context
from .mc import as_estimates
from .stats import Z95, bonferroni_z, linear_fit, ratio_estimate

__all__ = ["PaperExperiment"]


@dataclass(frozen=True)
class Config:
    """Configuration of claim 4 (defaults: the full run)."""

    a: float = 2.0
    d: int = 200
    epsilons: tuple[float, ...] = (1e-3, 5e-3, 1e-2)
    dims: tuple[int, ...] = (50, 100, 200, 400)
    eps_dims: float = 1e-2
    gamma: float = 0.05
    n_exact: tuple[int, ...] = tuple(2**k for k in range(6, 17))
    n_mc: tuple[int, ...] = (256, 1024, 4096, 16384)
    reps: int = 64
    overlap: float = 0.1
    seed: int = 404

    @classmethod
    def quick(cls) -> Config:
        return cls(n_mc=(256, 1024, 4096), reps=32)


def _key(kind: str | None, eps: float, d: int) -> str:
    return "fp" if kind is None else f"{kind}:{eps:g}:d={d}"


class PaperExperiment(BaseExperiment):
    name = "claim4_paper"
    title = "Claim 4: the 2510.18259 experiment, excess risk against N"
    claim = ("In the 2510.18259 experiment (lambda_i = i^-2, w* = 1, sigma^2 = 1, constant step, averaging, B = 1), "
             "multiplicative curves nearly overlap full precision and additive curves degrade with eps and with d.")
    provenance = "[paper: 2510.18259] set-up and claim; [derived] exact engine; [recon] closed form"
    criterion = (
        "C4.1 every MC point within the Bonferroni threshold (family-wise 1%, >= 3 SE) of the exact engine. "
        "C4.2 at every MC N, eps and d, the 95% CI of E_mult/E_fp - 1 (paired) lies inside [-0.1, 0.1]. "
        "C4.3 at the largest MC N, the weighted trend of E_add in eps is > 3 SE and E_add(eps_max)/E_fp - 1 > 0.1 "
        "at 95% confidence. C4.4 at the largest MC N, the weighted trend of E_add(eps = 1e-2) in log2 d > 3 SE."
    )
    caption = ("Excess risk against N (log-log), data quantized, clean test inputs. Solid: additive; dashed: "
               "multiplicative; black: full precision; lines: exact engine; dotted: closed form (d = 200 panel, "
               "additive and full precision); points: Monte Carlo, ±1 SE.")
    Config = Config

    def compute(self, cfg: Config, ctx: Context) -> tuple[list[Check], str, str, dict[str, Any]]:
        curves: list[tuple[str | None, float, int]] = [(None, 0.0, cfg.d)]
        curves += [(k, e, cfg.d) for k in ("additive", "multiplicative") for e in cfg.epsilons]
        for d in cfg.dims:
            if d != cfg.d:
                curves += [(None, 0.0, d)] + [(k, cfg.eps_dims, d) for k in ("additive", "multiplicative")]
        data: dict[str, Any] = {"n_exact": cfg.n_exact, "n_mc": cfg.n_mc, "curves": {}}

        def problem(kind: str | None, eps: float, d: int, N: int) -> Any:
            return make_problem(a=cfg.a, d=d, N=N, gamma=cfg.gamma, data=None if kind is None else f"{kind}:{eps}")

        sims: dict[tuple[str | None, float, int], list[Any]] = {}
        for kind, eps, d in curves:
            exact = [exact_risk(problem(kind, eps, d, N)).excess_risk for N in cfg.n_exact]
            closed = []
            for N in cfg.n_exact:
                try:
                    closed.append(closed_form_risk(problem(kind, eps, d, N)).excess_risk)
                except ValueError:
                    closed.append(math.nan)
            sims[(kind, eps, d)] = ctx.sweep([problem(kind, eps, d, N) for N in cfg.n_mc], cfg.reps,
                                             cfg.seed + d, block_steps=max(cfg.n_mc), chunk_reps=4)
            est = as_estimates(sims[(kind, eps, d)])
            exact_mc = np.array([exact_risk(problem(kind, eps, d, N)).excess_risk for N in cfg.n_mc])
            mc = np.array([e.mean for e in est])
            se = np.array([e.se for e in est])
            data["curves"][f"{'fp' if kind is None else kind}|{eps:g}|{d}"] = {
                "kind": kind or "full precision", "eps": eps, "d": d, "exact": exact, "closed_form": closed,
                "mc": mc, "se": se, "exact_at_mc": exact_mc, "z": (mc - exact_mc) / se,
            }
        cv = data["curves"]
        allz = np.concatenate([np.asarray(c["z"]) for c in cv.values()])
        zb = bonferroni_z(allz.size)
        c41 = bool(np.max(np.abs(allz)) < zb)

        # C4.2 overlap of multiplicative with full precision (paired ratios)
        worst, ok42, ratios = 0.0, True, {}
        for kind, eps, d in curves:
            if kind != "multiplicative":
                continue
            rs = [ratio_estimate(a.excess_risks, b.excess_risks)
                  for a, b in zip(sims[(kind, eps, d)], sims[(None, 0.0, d)], strict=True)]
            for r in rs:
                lo, hi = r.ci()
                worst = max(worst, abs(lo), abs(hi))
                ok42 &= -cfg.overlap <= lo and hi <= cfg.overlap
            ratios[f"{eps:g}|{d}"] = [r.to_dict() for r in rs]
        data["mult_over_fp_minus_1"] = ratios

        # C4.3 trend in eps at the largest MC N (d = cfg.d)
        eps_all = [0.0, *cfg.epsilons]
        last = -1
        m = [cv[f"fp|0|{cfg.d}"]["mc"][last]] + [cv[f"additive|{e:g}|{cfg.d}"]["mc"][last] for e in cfg.epsilons]
        s = [cv[f"fp|0|{cfg.d}"]["se"][last]] + [cv[f"additive|{e:g}|{cfg.d}"]["se"][last] for e in cfg.epsilons]
        tr_eps = linear_fit(eps_all, m, s)
        r_add = ratio_estimate(sims[("additive", cfg.epsilons[-1], cfg.d)][last].excess_risks,
                               sims[(None, 0.0, cfg.d)][last].excess_risks)
        c43 = tr_eps.slope > 3 * tr_eps.slope_se and r_add.mean - Z95 * r_add.se > cfg.overlap
        # C4.4 trend in log2 d
        dd = sorted(cfg.dims)
        md = [cv[f"additive|{cfg.eps_dims:g}|{d}"]["mc"][last] for d in dd]
        sd = [cv[f"additive|{cfg.eps_dims:g}|{d}"]["se"][last] for d in dd]
        tr_d = linear_fit(np.log2(dd), md, sd)
        c44 = tr_d.slope > 3 * tr_d.slope_se
        checks = [
            Check("C4.1", "MC agrees with the exact engine on every curve", c41,
                  f"max|z| = {np.max(np.abs(allz)):.2f} over {allz.size} points (threshold {zb:.2f})"),
            Check("C4.2", f"multiplicative within ±{cfg.overlap:g} (relative, 95% CI) of full precision", ok42,
                  f"largest |CI end| of E_mult/E_fp - 1 over all N, eps, d: {worst:.3f}"),
            Check("C4.3", "additive degrades with eps", c43,
                  f"trend dE/deps = {tr_eps.slope:.3g} ± {tr_eps.slope_se:.2g} ({tr_eps.slope / tr_eps.slope_se:.1f} "
                  f"SE) at N = {cfg.n_mc[last]}; E_add(eps={cfg.epsilons[-1]:g})/E_fp - 1 = {r_add.mean:.3f} ± "
                  f"{r_add.se:.3f}"),
            Check("C4.4", "additive degrades with d", c44,
                  f"trend dE/dlog2(d) = {tr_d.slope:.3g} ± {tr_d.slope_se:.2g} ({tr_d.slope / tr_d.slope_se:.1f} SE) "
                  f"at N = {cfg.n_mc[last]}"),
        ]
        data["z_bonferroni"] = zb
        data["trend_eps"] = tr_eps.to_dict()
        data["trend_log2d"] = tr_d.to_dict()
        ex = {k: c["exact_at_mc"][last] for k, c in cv.items()}
        prediction = (f"exact at N={cfg.n_mc[last]}: fp {ex[f'fp|0|{cfg.d}']:.4f}, mult(1e-2) "
                      f"{ex[f'multiplicative|{cfg.epsilons[-1]:g}|{cfg.d}']:.4f}, add(1e-3..1e-2) "
                      + "/".join(f"{ex[f'additive|{e:g}|{cfg.d}']:.4f}" for e in cfg.epsilons))
        measurement = (f"MC: |E_mult/E_fp - 1| <= {worst:.3f} (95% CI ends); add trend in eps "
                       f"{tr_eps.slope / tr_eps.slope_se:.0f} SE, in log2 d {tr_d.slope / tr_d.slope_se:.0f} SE")
        return checks, prediction, measurement, data

    def figure_size(self) -> tuple[float, float]:
        return (11.5, 4.6)

    def draw(self, record: dict[str, Any], fig: Any) -> None:
        from .plotting import curve, errorbars, finish

        d = record["data"]
        cfg = record["config"]
        n_ex = np.asarray(d["n_exact"], dtype=float)
        n_mc = np.asarray(d["n_mc"], dtype=float)
        ax1, ax2 = fig.subplots(1, 2)
        eps_colors = {e: f"C{k}" for k, e in enumerate(cfg["epsilons"])}
        dim_colors = {dd: f"C{k}" for k, dd in enumerate(cfg["dims"])}
        for c in d["curves"].values():
            kind, eps, dim = c["kind"], c["eps"], c["d"]
            style = "-" if kind == "additive" else "--"
            if dim == cfg["d"]:
                color = "k" if kind == "full precision" else eps_colors[eps]
                lab = "full precision" if kind == "full precision" else f"{kind} eps={eps:g}"
                curve(n_ex, c["exact"], ax=ax1, color=color, style="-" if kind == "full precision" else style,
                      label=lab)
                errorbars(n_mc, c["mc"], c["se"], ax=ax1, color=color, ms=3.5)
                if kind != "multiplicative":
                    curve(n_ex, c["closed_form"], ax=ax1, color=color, style=":", lw=0.9)
            if kind != "full precision" and (eps == cfg["eps_dims"]):
                color = dim_colors[dim]
                curve(n_ex, c["exact"], ax=ax2, color=color, style=style, label=f"{kind} d={dim}")
                errorbars(n_mc, c["mc"], c["se"], ax=ax2, color=color, ms=3.5)
        ax1.plot([], [], color="grey", ls=":", lw=0.9, label="closed form (calibrated bound)")
        ax1.errorbar([], [], yerr=[], color="grey", fmt="o", ms=3.5, label="Monte Carlo (±1 SE)")
        finish(ax1, xlabel="samples N", ylabel="excess risk", logx=True, logy=True,
               title=f"d = {cfg['d']}: exact engine, additive (solid) vs multiplicative (dashed)")
        finish(ax2, xlabel="samples N", ylabel="excess risk", logx=True, logy=True,
               title=f"eps = {cfg['eps_dims']:g}: dimension d")
