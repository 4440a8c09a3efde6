"""Symbolic-layer benchmark: the compiled law on a 10^6-point grid against the same formula hand-written in
NumPy (target: ratio <= 1.5), and the cost of a first compilation against a cached one. Not a test."""

from scalinglaw.bench import compiled_over_numpy

if __name__ == "__main__":
    r = compiled_over_numpy()
    print(f"{r['points']} points: compiled {r['compiled_seconds']*1e3:.1f} ms, NumPy by hand "
          f"{r['numpy_seconds']*1e3:.1f} ms, ratio {r['ratio']:.2f} (target <= 1.5)")
    print(f"max relative difference {r['max_rel_diff']:.1e}")
    print(f"compile: first {r['first_compile_seconds']*1e3:.0f} ms, cached {r['cached_compile_seconds']*1e6:.0f} us")
