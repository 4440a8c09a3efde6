"""Real-data check: scalinglaw's fit and allocation on Epoch AI's digitised Chinchilla data.

Epoch AI's replication (Besiroglu, Erdil, Barnett, You 2024, arXiv 2404.10102) extracted 245 training runs of
Hoffmann et al. from the SVG of their Figure 4: https://github.com/epoch-research/analyzing-chinchilla, file
``data/svg_extracted_data.csv``. That repository has no licence, so the data are not shipped and nothing derived
from them run by run is written here; download the file yourself and pass its path::

    python validation/epoch_replication.py PATH/svg_extracted_data.csv --out validation/report

Conversion (as Epoch's notebook does): ``N`` = column ``Model Size``, ``D = Training FLOP / (6 N)``, ``loss`` =
column ``loss``; drop the 5 runs with the highest loss, leaving 240. ``--runs-out FILE`` writes that ``N,D,loss``
CSV for ``scalinglaw fit`` (keep it outside the repository).

Criteria, fixed before the run:

* E1: every constant (A, B, E, alpha, beta) of the fit within 1 % of Epoch's estimates (their notebook's
  full-precision output, scalinglaw's constant set ``epoch``);
* E2: every bootstrap standard error within a factor 1.5 of the paper's printed one (theirs: 4000 resamples,
  ours: ``--boot``, 1000 by default; the standard error of a heavy-tailed constant such as B moves by tens of
  per cent with the resamples, so only agreement in size is asked);
* E3: at Chinchilla's budget C = 5.76e23 FLOP, the optimum implied by Epoch's published constants (paper table,
  set ``epoch-paper``, and notebook, set ``epoch``) lies inside the 95 % bootstrap intervals of N* and D* from
  :func:`scalinglaw.uncertainty.optimize_with_uncertainty`;
* E4: the flatness range (0.5 % of the optimal loss) is reported and contains the optimum.

Writes ``epoch_replication.json`` (summary numbers only) and ``epoch_replication.md`` (the table) to ``--out``.
Exit code 0 when every criterion holds, 1 otherwise, 2 for bad input.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from scalinglaw._json import dumps
from scalinglaw.errors import ParameterError
from scalinglaw.laws.chinchilla import EPOCH, EPOCH_PAPER, ChinchillaLaw
from scalinglaw.laws.fit import fit
from scalinglaw.uncertainty import optimize_with_uncertainty

CONSTANTS = ("A", "B", "E", "alpha", "beta")
CHINCHILLA_BUDGET = 5.76e23
COLUMNS = ("Model Size", "Training FLOP", "loss")


def read_epoch_csv(path: str | Path, drop_highest: int = 5) -> dict[str, np.ndarray]:
    """Epoch's CSV -> runs ``N, D, loss``: D = FLOP / (6 N), the ``drop_highest`` highest losses dropped."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise ParameterError("csv", str(path), f"be a readable file ({exc.strerror})") from None
    if not rows or any(c not in rows[0] for c in COLUMNS):
        raise ParameterError("csv", str(path), "have the columns " + ", ".join(repr(c) for c in COLUMNS))
    try:
        N = np.array([float(r["Model Size"]) for r in rows])
        C = np.array([float(r["Training FLOP"]) for r in rows])
        loss = np.array([float(r["loss"]) for r in rows])
    except ValueError as exc:
        raise ParameterError("csv", str(path), f"hold numbers in {', '.join(COLUMNS)} ({exc})") from None
    keep = np.sort(np.argsort(loss, kind="stable")[: loss.size - drop_highest])
    return {"N": N[keep], "D": C[keep] / (6.0 * N[keep]), "loss": loss[keep]}


def run(path: str | Path, *, n_boot: int = 1000, seed: int = 0, runs_out: str | None = None) -> dict[str, Any]:
    """Fit, compare with Epoch's numbers, propagate to the optimum; returns the record (summary numbers)."""
    t0 = time.perf_counter()
    runs = read_epoch_csv(path)
    if runs_out:  # full precision (repr), so that scalinglaw fit on the file gives the same estimates
        lines = ["# Epoch AI data converted: D = FLOP/(6N), 5 highest losses dropped (no licence: do not share)",
                 "N,D,loss"]
        lines += [f"{float(n)!r},{float(d)!r},{float(v)!r}" for n, d, v in zip(runs["N"], runs["D"], runs["loss"],
                                                                                 strict=True)]
        Path(runs_out).write_text("\n".join(lines) + "\n")
    result = fit("chinchilla:epoch", runs, n_boot=n_boot, seed=seed)
    est = result.constants
    rel = {c: est[c] / EPOCH[c] - 1.0 for c in CONSTANTS}
    rel_paper = {c: est[c] / EPOCH_PAPER[c] - 1.0 for c in CONSTANTS}
    se = {c: float(est.standard_errors[c]) for c in CONSTANTS}
    se_ratio = {c: se[c] / EPOCH_PAPER.standard_errors[c] for c in CONSTANTS}
    unc = optimize_with_uncertainty(result, CHINCHILLA_BUDGET)
    published = {}
    for name, cs in (("epoch-paper", EPOCH_PAPER), ("epoch", EPOCH)):
        N, D = ChinchillaLaw(cs).compute_optimal(CHINCHILLA_BUDGET)
        published[name] = {"N": float(N), "D": float(D)}
    (n_lo, n_hi), (d_lo, d_hi) = unc.intervals["size"], unc.intervals["data"]
    flat = unc.allocation.flatness
    checks = {
        "E1": all(abs(r) <= 0.01 for r in rel.values()),
        "E2": all(1 / 1.5 <= r <= 1.5 for r in se_ratio.values()),
        "E3": all(n_lo <= p["N"] <= n_hi and d_lo <= p["D"] <= d_hi for p in published.values()),
        "E4": flat is not None and flat.size[0] <= unc.allocation.size <= flat.size[1],
    }
    return {
        "source": "https://github.com/epoch-research/analyzing-chinchilla data/svg_extracted_data.csv",
        "runs": int(runs["N"].size), "n_boot": n_boot, "seed": seed,
        "estimates": {c: float(est[c]) for c in CONSTANTS},
        "ci95": {c: list(result.ci[c]) for c in CONSTANTS},
        "standard_errors": se,
        "epoch_notebook": dict(EPOCH.values), "epoch_paper": dict(EPOCH_PAPER.values),
        "epoch_paper_standard_errors": dict(EPOCH_PAPER.standard_errors),
        "rel_diff_notebook": rel, "rel_diff_paper": rel_paper, "se_ratio_to_paper": se_ratio,
        "optimum": {"N": unc.allocation.size, "D": unc.allocation.data, "loss": unc.allocation.loss,
                    "intervals": {k: list(v) for k, v in unc.intervals.items()},
                    "failed_draws": unc.failed_draws,
                    "flatness": flat.to_dict(unc.allocation.labels) if flat else None},
        "published_optimum": published,
        "checks": checks, "verdict": all(checks.values()),
        "seconds": time.perf_counter() - t0,
    }


def markdown(rec: dict[str, Any]) -> str:
    """The README/report table of a record."""
    lines = [
        "| constant | scalinglaw fit | 95% bootstrap CI | Epoch notebook | diff | Epoch paper | diff "
        "| SE (ours / paper) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in CONSTANTS:
        lo, hi = rec["ci95"][c]
        lines.append(
            f"| {c} | {rec['estimates'][c]:.6g} | [{lo:.4g}, {hi:.4g}] | {rec['epoch_notebook'][c]:.6g} | "
            f"{100 * rec['rel_diff_notebook'][c]:+.3f}% | {rec['epoch_paper'][c]:g} | "
            f"{100 * rec['rel_diff_paper'][c]:+.2f}% | {rec['standard_errors'][c]:.3g} / "
            f"{rec['epoch_paper_standard_errors'][c]:g} |")
    opt = rec["optimum"]
    iv = opt["intervals"]
    flat = opt["flatness"]
    pub = rec["published_optimum"]
    lines += [
        "",
        f"At C = 5.76e23 FLOP: N* = {opt['N']:.3g} (95% [{iv['size'][0]:.3g}, {iv['size'][1]:.3g}]), "
        f"D* = {opt['D']:.3g} ([{iv['data'][0]:.3g}, {iv['data'][1]:.3g}]), D/N = {opt['D'] / opt['N']:.1f} "
        f"([{iv['data_per_size'][0]:.1f}, {iv['data_per_size'][1]:.1f}]); Epoch's published constants give "
        f"N* = {pub['epoch-paper']['N']:.3g}, D* = {pub['epoch-paper']['D']:.3g} (paper) and "
        f"{pub['epoch']['N']:.3g}, {pub['epoch']['D']:.3g} (notebook). Within 0.5% of the optimal loss: "
        f"N in [{flat['N'][0]:.3g}, {flat['N'][1]:.3g}], D/N in [{flat['D_per_N'][0]:.3g}, "
        f"{flat['D_per_N'][1]:.3g}].",
        "",
        "Checks: " + ", ".join(f"{k} {'pass' if v else 'FAIL'}" for k, v in rec["checks"].items())
        + f" ({rec['runs']} runs, {rec['n_boot']} bootstrap resamples, seed {rec['seed']}, "
        f"{rec['seconds']:.0f} s).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", help="Epoch AI's data/svg_extracted_data.csv (downloaded by you)")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--out", default=None, help="folder for epoch_replication.json and .md")
    parser.add_argument("--runs-out", default=None, help="also write the converted N,D,loss CSV here")
    args = parser.parse_args(argv)
    if args.boot < 2:
        print(f"epoch_replication: error: --boot must be >= 2, got {args.boot}", file=sys.stderr)
        return 2
    try:
        rec = run(args.csv, n_boot=args.boot, seed=args.seed, runs_out=args.runs_out)
    except ParameterError as exc:
        print(f"epoch_replication: error: {exc}", file=sys.stderr)
        return 2
    table = markdown(rec)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "epoch_replication.json").write_text(dumps(rec, indent=1) + "\n")
        (out / "epoch_replication.md").write_text("# Epoch AI replication data: fit and optimum\n\n" + table)
    return 0 if rec["verdict"] and math.isfinite(rec["seconds"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
