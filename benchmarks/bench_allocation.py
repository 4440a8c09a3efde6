"""Allocation benchmark: 100-budget frontiers (closed-form law under 10 ms; numeric search under 1 s) and the
time of `scalinglaw --help` (under 0.5 s). For comparison, the `chinchilla` package takes about 0.2 ms for its
own, precision-free, closed form and 3.5 s to import. Not a test."""

from scalinglaw.bench import frontier_time, help_time

if __name__ == "__main__":
    for law in ("chinchilla:epoch", "kumar"):
        r = frontier_time(law)
        print(f"{law}: 100-budget frontier ({r['method']}) {r['seconds'] * 1e3:.2f} ms  (target < 10 ms)")
    for law, opts in (("sun", {}), ("sketched-quantized", {"quantize": ["data"]})):
        r = frontier_time(law, repeat=1, **opts)
        print(f"{law}: 100-budget frontier ({r['method']}) {r['seconds']:.3f} s  (target < 1 s)")
    print(f"scalinglaw --help: {help_time()['seconds']:.3f} s  (target < 0.5 s)")
