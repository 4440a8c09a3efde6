r"""The sketch's deterministic equivalent against drawn sketches: its gap to the average shrinks like 1/M.

Claim [derived; paper for the asymptotic statement: Paquette, Paquette, Xiao, Pennington 2024, arXiv 2405.15074;
Bach 2024; Atanasov, Zavatone-Veth, Pehlevan 2024]: the expected risk of quantized one-pass SGD on the sketched
model, averaged over Gaussian sketches, is the exact engine run on the deterministic-equivalent spectral measure
(:mod:`scalinglaw.deterministic`) up to a relative gap :math:`O(1/M)`.

Experiment. For :math:`a\in\{1.5,2\}`, :math:`d=8M` (:math:`4M` at :math:`M\ge512`), constant step
:math:`0.15/\operatorname{tr}H` (stable on every drawn sketch down to :math:`M=16`), last iterate,
:math:`N=1000`, :math:`\sigma^2=0.1`, target ``ones``, and data quantization none, ``additive:1e-3`` and
``multiplicative:0.1``: the exact engine on each of many sketches (200 up to :math:`M=256`, then 100 and 50;
the same sketches for the three schemes), its mean and standard error; the equivalent; and, for
:math:`M\le128` (quick: 32), the simulator over (sketch, data) with one sketch per replica.

Criterion (stated before the run):

* D.1 for :math:`M\ge50`: :math:`|\mathrm{DE}-\mathrm{mean}|\le\max(3\,\mathrm{SE},2\%)` of the mean; for
  :math:`M\ge200`: :math:`\le1\%` of the mean.
* D.2 the gap shrinks like :math:`1/M`: at every :math:`M`, :math:`|\mathrm{DE}/\mathrm{mean}-1|\le
  \max(3\,\mathrm{SE}/\mathrm{mean},\,2/M)`.
* D.3 the simulator agrees with the mean over sketches of the exact engine (Bonferroni threshold, family-wise 1%,
  at least 3 SE, on the combined standard error).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..deterministic import deterministic_risk
from ..exact.engine import measure_risk
from ..problem import Problem, make_problem
from ..reduction import reduce_problem
from .base import BaseExperiment, Check, Context
from .mc import as_estimates
from .stats import bonferroni_z

__all__ = ["DeterministicEquivalentExperiment", "sketch_chunk"]

SCHEMES = (None, "additive:1e-3", "multiplicative:0.1")


def _problem(a: float, M: int, ratio: int, N: int, sigma2: float, step: float, data: str | None, **kw: Any
             ) -> Problem:
    d = ratio * M
    trH = float(np.sum(np.arange(1, d + 1, dtype=float) ** (-a)))
    return make_problem(a=a, d=d, M=M, N=N, gamma=step / trH, sigma2=sigma2, schedule="constant", average="last",
                        target="ones", data=data, **kw)


def sketch_chunk(a: float, M: int, ratio: int, N: int, sigma2: float, step: float, draws: int, seed: int
                 ) -> np.ndarray:
    """Exact excess risk of ``draws`` sketches (``sketch_seed=seed``) for each data scheme: shape (draws, 3)."""
    base = _problem(a, M, ratio, N, sigma2, step, None, sketch_draws=draws, sketch_seed=seed)
    probs = [base.with_(data=s) for s in SCHEMES]
    out = np.empty((draws, len(SCHEMES)))
    for k, m in enumerate(reduce_problem(base)):  # the measure of a sketch does not depend on the data scheme
        for j, p in enumerate(probs):
            out[k, j] = sum(measure_risk(m, p, "spectral").terms.values())
    return out


@dataclass(frozen=True)
class Config:
    """Configuration (defaults: the full run)."""

    a_values: tuple[float, ...] = (1.5, 2.0)
    sizes_M: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024)
    N: int = 1000
    sigma2: float = 0.1
    step: float = 0.15
    sketches: int = 200
    mc_max_M: int = 128
    mc_reps: int = 256
    seed: int = 1212

    @classmethod
    def quick(cls) -> Config:
        return cls(sizes_M=(16, 32, 64, 128), sketches=64, mc_max_M=32, mc_reps=128)

    def draws(self, M: int) -> int:
        """Sketches at size M: all up to 256, half at 512, a quarter beyond (the risk self-averages)."""
        return self.sketches if M <= 256 else (self.sketches // 2 if M <= 512 else self.sketches // 4)

    @staticmethod
    def ratio(M: int) -> int:
        return 8 if M < 512 else 4


class DeterministicEquivalentExperiment(BaseExperiment):
    name = "de_sketch"
    title = "Deterministic equivalent of the sketch against drawn sketches"
    claim = ("The expected risk averaged over Gaussian sketches equals the exact engine on the deterministic-"
             "equivalent measure up to a relative gap O(1/M), with and without data quantization.")
    provenance = ("[paper: Paquette et al. 2024, arXiv 2405.15074; Bach 2024; Atanasov et al. 2024] for the "
                  "asymptotic equivalence; [derived] the measure, its computation and the engine")
    criterion = (
        "D.1 for M >= 50 |DE - mean| <= max(3 SE, 2%) of the mean over sketches of the exact engine, and <= 1% for "
        "M >= 200. D.2 at every M, |DE/mean - 1| <= max(3 SE/mean, 2/M). D.3 the simulator over (sketch, data) "
        "agrees with the mean over sketches (Bonferroni threshold, family-wise 1%, >= 3 SE)."
    )
    caption = ("Relative gap DE/mean - 1 between the deterministic equivalent and the exact engine averaged over "
               "drawn sketches (points, ±1 SE of the mean), against M, for each data scheme; grey band: ±2/M. "
               "Open markers: the simulator over (sketch, data) relative to the DE (±1 SE).")
    Config = Config

    def compute(self, cfg: Config, ctx: Context) -> tuple[list[Check], str, str, dict[str, Any]]:
        data: dict[str, Any] = {"M": cfg.sizes_M, "schemes": [s or "none" for s in SCHEMES], "a": {}}
        ok1 = ok2 = True
        parts1, parts2, zs = [], [], []
        worst: dict[str, float] = {}
        for ia, a in enumerate(cfg.a_values):
            tasks, index = [], []
            for iM, M in enumerate(cfg.sizes_M):
                n, per = cfg.draws(M), 8 if M <= 256 else 2
                for j, start in enumerate(range(0, n, per)):
                    tasks.append((a, M, cfg.ratio(M), cfg.N, cfg.sigma2, cfg.step, min(per, n - start),
                                  cfg.seed + 100_000 * ia + 1000 * iM + j))
                    index.append(iM)
            res = ctx.map(sketch_chunk, tasks, desc=f"sketches a={a:g}")
            entry: dict[str, Any] = {"mean": [], "se": [], "de": [], "gap": [], "gap_se": [], "draws": [],
                                     "mc": [], "mc_se": []}
            mc_probs = []
            for iM, M in enumerate(cfg.sizes_M):
                vals = np.concatenate([r for r, i in zip(res, index, strict=True) if i == iM])
                mean = vals.mean(axis=0)
                se = vals.std(axis=0, ddof=1) / math.sqrt(vals.shape[0])
                de = np.array([deterministic_risk(_problem(a, M, cfg.ratio(M), cfg.N, cfg.sigma2, cfg.step, s))
                               .excess_risk for s in SCHEMES])
                gap = de / mean - 1.0
                entry["mean"].append(mean)
                entry["se"].append(se)
                entry["de"].append(de)
                entry["gap"].append(gap)
                entry["gap_se"].append(se * de / mean**2)
                entry["draws"].append(vals.shape[0])
                tol2 = np.maximum(3 * se / mean, 2.0 / M)
                ok2 &= bool(np.all(np.abs(gap) <= tol2))
                if M >= 50:
                    tol1 = np.full(len(SCHEMES), 0.01) if M >= 200 else np.maximum(3 * se / mean, 0.02)
                    ok1 &= bool(np.all(np.abs(gap) <= tol1))
                for s, g in zip(data["schemes"], gap, strict=True):
                    key = f"a={a:g} {s}"
                    if M >= 50:
                        worst[key] = max(worst.get(key, 0.0), abs(g))
                parts2.append(f"a={a:g} M={M}: " + ", ".join(f"{g:+.2%}" for g in gap))
                if M <= cfg.mc_max_M:
                    mc_probs += [_problem(a, M, cfg.ratio(M), cfg.N, cfg.sigma2, cfg.step, s,
                                          sketch_draws=cfg.mc_reps, sketch_seed=cfg.seed + 7 * M) for s in SCHEMES]
            if mc_probs:
                sims = as_estimates(ctx.sweep(mc_probs, cfg.mc_reps, cfg.seed + 31 * ia))
                for iM, M in enumerate(cfg.sizes_M):
                    if M > cfg.mc_max_M:
                        entry["mc"].append([None] * len(SCHEMES))
                        entry["mc_se"].append([None] * len(SCHEMES))
                        continue
                    est = sims[:len(SCHEMES)]
                    sims = sims[len(SCHEMES):]
                    entry["mc"].append([e.mean for e in est])
                    entry["mc_se"].append([e.se for e in est])
                    for e, m, s in zip(est, entry["mean"][iM], entry["se"][iM], strict=True):
                        zs.append((e.mean - m) / math.hypot(e.se, s))
            data["a"][f"{a:g}"] = entry
        parts1 = [f"{k}: max |gap| {v:.2%}" for k, v in worst.items()]
        zarr = np.asarray(zs)
        zb = bonferroni_z(max(zarr.size, 1))
        ok3 = bool(zarr.size == 0 or np.max(np.abs(zarr)) < zb)
        checks = [
            Check("D.1", "M >= 50: |DE - mean| <= max(3 SE, 2%); M >= 200: <= 1%", ok1, "; ".join(parts1)),
            Check("D.2", "|DE/mean - 1| <= max(3 SE/mean, 2/M) at every M", ok2, "; ".join(parts2)),
            Check("D.3", "simulator over (sketch, data) agrees with the mean over sketches", ok3,
                  f"max|z| = {np.max(np.abs(zarr)) if zarr.size else 0:.2f} over {zarr.size} points "
                  f"(threshold {zb:.2f})"),
        ]
        data["z"] = zarr
        data["z_bonferroni"] = zb
        prediction = "relative gap O(1/M): within 2% for M >= 50, 1% for M >= 200"
        measurement = "max |gap| for M >= 50: " + ", ".join(f"{k} {v:.2%}" for k, v in worst.items())
        return checks, prediction, measurement, data

    def figure_size(self) -> tuple[float, float]:
        return (11.5, 4.4)

    def draw(self, record: dict[str, Any], fig: Any) -> None:
        from .plotting import finish

        d = record["data"]
        Ms = np.asarray(d["M"], dtype=float)
        axes = fig.subplots(1, len(d["a"]), squeeze=False)[0]
        band = 2.0 / Ms
        for ax, (a, e) in zip(axes, d["a"].items(), strict=True):
            ax.fill_between(Ms, -band, band, color="0.85", label="±2/M")
            gap = np.asarray(e["gap"], dtype=float)
            gse = np.asarray(e["gap_se"], dtype=float)
            for j, s in enumerate(d["schemes"]):
                shift = 1.0 + 0.04 * (j - 1)
                ax.errorbar(Ms * shift, gap[:, j], yerr=gse[:, j], fmt="o-", ms=4, color=f"C{j}", capsize=2,
                            label=f"data {s}: DE/mean - 1")
                mc = np.array([np.nan if v[j] is None else v[j] for v in e["mc"]], dtype=float)
                mse = np.array([np.nan if v[j] is None else v[j] for v in e["mc_se"]], dtype=float)
                de = np.asarray(e["de"], dtype=float)[:, j]
                ok = np.isfinite(mc)
                if np.any(ok):
                    ax.errorbar(Ms[ok] * shift, (de[ok] / mc[ok] - 1), yerr=mse[ok] * de[ok] / mc[ok] ** 2, fmt="s",
                                mfc="none", ms=5, color=f"C{j}", capsize=2, label=f"data {s}: DE/simulator - 1")
            ax.axhline(0.0, color="k", lw=0.6)
            finish(ax, xlabel="sketch size M", ylabel="relative gap", logx=True, xticks=Ms,
                   title=f"a = {a}: deterministic equivalent vs sketches", fontsize=6.5)
