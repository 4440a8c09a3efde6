"""Foundation benchmark (issue: foundation): prints two numbers.

1. The exact engine at d = 1000 and N = 10^6 (target: under 2 s).
2. The simulator at d = 256, 64 replicas, 10^4 steps, divided by the bare cost of drawing its Gaussian
   inputs (target: at most 3).

Run ``python benchmarks/bench_foundation.py``. Not a test.
"""

from scalinglaw.bench import exact_engine_time, simulator_over_rng

if __name__ == "__main__":
    ex = exact_engine_time()
    print(f"exact engine, d={ex['d']}, N={ex['N']:.0e} ({ex['engine']}): {ex['seconds']:.3f} s  (target < 2 s)")
    sim = simulator_over_rng()
    print(f"simulator / bare Gaussian draws, d={sim['d']}, reps={sim['reps']}, steps={sim['steps']}: "
          f"{sim['ratio']:.2f}  ({sim['sim_seconds']:.2f} s / {sim['draw_seconds']:.2f} s; target <= 3)")
