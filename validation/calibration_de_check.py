"""The calibration's deterministic-equivalent reference against drawn sketches (theory/calibration.md).

For test-design problems of the sketched laws whose reference is the deterministic equivalent (``M > 64`` or
``d > 4096``), restricted to sizes where drawing is affordable (finite ``d <= 8192``, ``M <= 256``), the exact
engine is averaged over ``--draws`` drawn sketches and compared with the recorded reference. Writes one JSON row
per problem (``rel`` = equivalent / mean - 1, ``z`` = difference in standard errors of the mean, and the calibrated
closed form over each; or
``unstable_draws``, the draws on which the problem's step exceeds that sketch's stable limit).

    python validation/calibration_de_check.py --out validation/report/calibration_de_check.json
"""

from __future__ import annotations

import argparse
import json
import math
from importlib import resources

import numpy as np

from scalinglaw.calibration import closed_terms, read_records
from scalinglaw.errors import UnstableStepError
from scalinglaw.exact import exact_risk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=16)
    ap.add_argument("--per-law", type=int, default=3)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    records = read_records(str(resources.files("scalinglaw.data").joinpath("calibration_records.json")))
    rng = np.random.default_rng(args.seed)
    rows = []
    for law in ("sketched", "sketched-quantized"):
        cand = [r for r in records[law]["test"] if r.point.reference == "de" and r.point.kwargs["d"] != "inf"
                and r.point.kwargs["d"] <= 8192 and r.point.kwargs["M"] <= 256]
        for i in rng.choice(len(cand), size=min(args.per_law, len(cand)), replace=False):
            rec = cand[int(i)]
            p = rec.problem()
            vals, unstable = [], 0
            for k in range(args.draws):
                try:
                    vals.append(exact_risk(p.with_(sketch_draws=1, sketch_seed=1000 + k)).excess_risk)
                except UnstableStepError:  # the step is a fraction of the equivalent's limit; a draw's may be lower
                    unstable += 1
            kw = rec.point.kwargs
            row = {"law": law, **{k: kw.get(k) for k in ("a", "b", "d", "M", "N", "B", "data")},
                   "step_fraction": rec.point.step_fraction, "reference": rec.exact_total, "draws": args.draws,
                   "unstable_draws": unstable}
            if not unstable:
                mean, se = float(np.mean(vals)), float(np.std(vals, ddof=1) / math.sqrt(args.draws))
                closed = sum(closed_terms(rec, None).values())  # the calibrated law
                row.update(mean=mean, se=se, rel=rec.exact_total / mean - 1.0, z=(rec.exact_total - mean) / se,
                           closed_over_reference=closed / rec.exact_total, closed_over_mean=closed / mean)
            rows.append(row)
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=1)
            fh.write("\n")


if __name__ == "__main__":
    main()
