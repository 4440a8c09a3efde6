"""Benchmark: Monte Carlo simulator time against the time of drawing its Gaussian inputs alone.

Power-law spectrum (a = 2), B = 1, no quantization; the baseline draws the same standard normal inputs with
the same block structure and does nothing else. Target: ratio <= 2. Not a test; run

    python benchmarks/bench_simulator.py [--steps 10000] [--reps 64] [--d 256] [--repeat 3] [--float32]
"""

from __future__ import annotations

import argparse

import numpy as np

from scalinglaw.bench import simulator_over_rng

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=64)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--float32", action="store_true")
    args = parser.parse_args()
    r = simulator_over_rng(args.d, args.reps, args.steps, repeat=args.repeat,
                           dtype=np.float32 if args.float32 else np.float64)
    print(f"d={r['d']} reps={r['reps']} steps={r['steps']}")
    print(f"bare Gaussian draws : {r['draw_seconds']:.3f} s")
    print(f"simulator           : {r['sim_seconds']:.3f} s")
    print(f"ratio simulator / draws = {r['ratio']:.2f}  (target <= 2)")
