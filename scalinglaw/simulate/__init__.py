r"""Monte Carlo simulator of quantized one-pass SGD (SPEC §3): the arbiter of the exact engine.

An independent implementation of the algorithm: it draws Gaussian inputs, applies the five quantizers and
runs SGD replica by replica (vectorised over replicas), then evaluates each output iterate's excess risk
exactly given the iterate. See ``theory/simulator.md`` for the conventions.

>>> from scalinglaw.problem import make_problem
>>> from scalinglaw.simulate import simulate
>>> res = simulate(make_problem(a=2.0, d=16, N=64, gamma=0.2), reps=8, seed=1)
>>> res.reps
8
"""

from .runner import SimulationResult, simulate, sweep

__all__ = ["SimulationResult", "simulate", "sweep"]
