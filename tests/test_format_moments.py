"""Exact moments of fixed-grid formats on a Gaussian coordinate (``scalinglaw.quantize.moments``).

References independent of the code under test: an mpmath sum over every grid cell at 40-60 digits, with the grid
enumerated by ``scalinglaw.validate.mc._grid`` (its own decoding of the formats, not ``FixedGrid``) and the
conditional moments written out per cell (linear interpolation for stochastic rounding, the nearest value for
round-to-nearest); and Monte Carlo of each format's own ``quantize`` (fixed seed, tolerance in standard errors,
Bonferroni over all comparisons at family-wise 1%).
The mpmath reference contains no Euler-Maclaurin expansion, so it checks the fine-run path as well.
"""

from __future__ import annotations

import itertools
import math

import mpmath as mp
import numpy as np
import pytest

from scalinglaw.errors import ParameterError
from scalinglaw.quantize import parse_quantizer
from scalinglaw.quantize.moments import (
    FINE,
    deep_second_moment,
    fixed_grid,
    grid_moments,
    second_moment_bound,
)
from scalinglaw.validate.mc import _grid
from scalinglaw.validate.stats import bonferroni_z

MOMENTS = ((2, 0), (1, 1), (4, 0), (3, 1), (2, 2))


def reference(spec: str, lam: float, dps: int = 40) -> list[float]:
    r""":math:`\mathbb E[Q^kx^j]` by summing every cell of the enumerated grid in mpmath (cells beyond
    :math:`41\sigma` and the saturated tail beyond :math:`60\sigma` carry no float64 mass)."""
    q = parse_quantizer(spec)
    points = [mp.mpf(float(g)) for g in _grid(q)]
    with mp.workdps(dps):
        s = mp.sqrt(mp.mpf(lam))
        norm = 1 / (s * mp.sqrt(2 * mp.pi))

        def phi(x: mp.mpf) -> mp.mpf:
            return norm * mp.exp(-x * x / (2 * s * s)) if x != mp.inf else mp.mpf(0)

        def partial(lo: mp.mpf, hi: mp.mpf, top: int) -> list[mp.mpf]:
            out = [mp.ncdf(hi / s) - mp.ncdf(lo / s) if lo < 0 else (mp.erfc(lo / s / mp.sqrt(2))
                                                                        - mp.erfc(hi / s / mp.sqrt(2))) / 2]
            out.append(s * s * (phi(lo) - phi(hi)))
            for p in range(2, top + 1):
                out.append(s * s * ((p - 1) * out[p - 2] + lo ** (p - 1) * phi(lo) - hi ** (p - 1) * phi(hi)))
            return out

        cells = [(-points[0], points[0], 1)] if points[0] > 0 else []
        for lo, hi in itertools.pairwise(points):
            if lo > 41 * s:
                break
            cells.append((lo, hi, 2))
        total = [mp.mpf(0)] * 5
        for lo, hi, factor in cells:
            if q.rounding == "stochastic":
                M = partial(lo, hi, 4)
                for i, (k, j) in enumerate(MOMENTS):
                    slope = (hi**k - lo**k) / (hi - lo)
                    total[i] += factor * ((lo**k - slope * lo) * M[j] + slope * M[j + 1])
            else:
                mid = (lo + hi) / 2
                Ml, Mh = partial(lo, mid, 2), partial(mid, hi, 2)
                for i, (k, j) in enumerate(MOMENTS):
                    total[i] += factor * (lo**k * Ml[j] + hi**k * Mh[j])
        G = points[-1]
        if G < 41 * s:
            U = partial(G, 60 * s, 2)
            for i, (k, j) in enumerate(MOMENTS):
                total[i] += 2 * G**k * U[j]
        return [float(t) for t in total]


def as_list(gm: object, i: int) -> list[float]:
    return [float(getattr(gm, name)[i]) for name in ("second", "cross", "fourth", "third_cross", "second_square")]


# Coarse grids (cell sums), saturation (variance beyond the range), the INT zero cell, nearest rounding,
# flushed subnormals, and fine runs (Euler-Maclaurin): int12 and e4m5 with spacing <= sigma/4, bf16 in its
# subnormal range.
CASES = [
    ("fp4_e2m1", [36.0, 1.0, 0.3, 1e-2, 1e-6, 1e-30]),
    ("fp8_e4m3", [1.0, 1e-3, 1e-6, 1e-12]),
    ("int8:range=6", [1.0, 0.1, 1e-3, 1e-8]),
    ("int4:range=6", [36.0, 1.0, 1e-3]),
    ("fp4_e2m1:rounding=nearest", [1.0, 0.05, 3e-3, 8e-4]),
    ("int4:range=2,rounding=nearest", [1.0, 1e-3]),
    ("e3m2:subnormals=off", [1.0, 1e-3]),
    ("int12:range=1", [1e-5, 3.85e-6, 3e-6, 1e-7]),
    ("int12:range=1,rounding=nearest", [1e-5, 1e-7]),
    ("e4m5", [1e-2, 1e-3]),
    ("e4m5:rounding=nearest", [1e-2]),
    ("bf16", [1e-78]),
]


@pytest.mark.parametrize(("spec", "lams"), CASES, ids=[c[0] for c in CASES])
def test_moments_match_mpmath_cell_sum(spec: str, lams: list[float]) -> None:
    got = grid_moments(parse_quantizer(spec), np.array(lams))
    for i, lam in enumerate(lams):
        ref = reference(spec, lam)
        for name, g, r in zip(("Q2", "Qx", "Q4", "Q3x", "Q2x2"), as_list(got, i), ref, strict=True):
            assert abs(g - r) <= 2e-14 * abs(r), (spec, lam, name, g, r)


@pytest.mark.parametrize("spec", ["int12:range=1", "e4m5", "e4m5:rounding=nearest"])
def test_fine_run_expansion_beyond_float_resolution(spec: str) -> None:
    """The excess over the clean moments (what quantization adds) to 1e-10 relative on both sides of the switch
    between the cell sum and the Euler-Maclaurin expansion (spacing sigma/4)."""
    q = parse_quantizer(spec)
    grid = fixed_grid(q)
    assert grid is not None
    delta = float(grid.spacing[-1] if grid.kind == "int" else grid.spacing[2])
    lams = [(delta / (FINE * f)) ** 2 for f in (0.98, 1.02, 0.5)]
    got = grid_moments(q, np.array(lams))
    for i, lam in enumerate(lams):
        ref = reference(spec, lam, dps=60)
        clean = [lam, lam, 3 * lam * lam, 3 * lam * lam, 3 * lam * lam]
        for g, r, c in zip(as_list(got, i), ref, clean, strict=True):
            if abs(r - c) > 1e-6 * abs(r):  # a visible excess
                assert abs((g - c) - (r - c)) <= 1e-10 * abs(r - c), (spec, lam, g, r)


MC_SPECS = ["fp8_e4m3", "fp4_e2m1", "int8:range=6", "int4:range=6", "fp4_e2m1:rounding=nearest",
            "int4:range=2,rounding=nearest", "e3m2:subnormals=off", "fp16", "bf16"]
MC_LAMS = np.array([4.0, 1.0, 0.1, 1e-3, 1e-6])


def test_moments_match_monte_carlo_of_quantize() -> None:
    """Every moment of every format at every variance within the Bonferroni threshold (family-wise 1%) of the
    Monte Carlo mean of ``q.quantize`` (fixed seed); where every sample is equal (the mass outside one cell too
    small for n draws), within what n draws without an event allow."""
    rng = np.random.default_rng(20261201)
    n = 200_000
    zs = []
    for spec in MC_SPECS:
        q = parse_quantizer(spec)
        gm = grid_moments(q, MC_LAMS)
        x = rng.standard_normal((n, MC_LAMS.size)) * np.sqrt(MC_LAMS)
        Q = q.quantize(x, rng)
        for k, (kk, j) in enumerate(MOMENTS):
            sample = Q**kk * x**j
            mean, se = sample.mean(axis=0), sample.std(axis=0) / math.sqrt(n)
            exact = getattr(gm, ("second", "cross", "fourth", "third_cross", "second_square")[k])
            for col, (m, s, e) in enumerate(zip(mean, se, exact, strict=True)):
                if np.all(sample[:, col] == sample[0, col]):
                    # no sample left the cell holding the mass: with no event in n draws, the events' share of
                    # the moment is below 3/n times the largest jump an event can make (|x| < 10 sigma)
                    sd = math.sqrt(MC_LAMS[col])
                    grid = _grid(q)
                    g_max = float(grid[np.searchsorted(grid, min(10 * sd, grid[-1]))])
                    jump = g_max**kk * (10 * sd) ** j + abs(sample[0, col])
                    assert abs(sample[0, col] - e) <= 3.0 / n * jump + 1e-13 * abs(e), (spec, kk, j, sample[0, col], e)
                else:
                    zs.append((m - e) / s)
    z = np.abs(np.array(zs))
    assert z.max() < bonferroni_z(z.size), (z.max(), z.size)


@pytest.mark.parametrize("spec", ["fp8_e4m3", "fp4_e2m1", "fp16", "int8:range=6", "fp4_e2m1:rounding=nearest",
                                  "int4:range=6,rounding=nearest", "e3m2:subnormals=off"])
def test_deep_regime_is_exact(spec: str) -> None:
    """Below the first cell: E Q^2 = A + B sqrt(lambda) (FP stochastic: B = subnormal spacing * sqrt(2/pi))."""
    q = parse_quantizer(spec)
    A, B, deep = deep_second_moment(q)
    lam = deep * np.logspace(-20, 0, 9)
    np.testing.assert_allclose(grid_moments(q, lam).second, A + B * np.sqrt(lam), rtol=1e-13, atol=0)
    if q.kind == "fp" and q.rounding == "stochastic":
        assert B == pytest.approx(fixed_grid(q).first_cell * math.sqrt(2 / math.pi), rel=1e-15)


@pytest.mark.parametrize("spec", ["fp8_e4m3", "fp4_e2m1", "bf16", "int8:range=6", "int4:range=1",
                                  "fp4_e2m1:rounding=nearest", "fp8_e5m2:rounding=nearest",
                                  "int4:range=2,rounding=nearest", "e3m2:subnormals=off"])
def test_second_moment_bound_holds(spec: str) -> None:
    q = parse_quantizer(spec)
    scale, floor, root = second_moment_bound(q)
    lam = np.logspace(-40, 3, 400)
    got = grid_moments(q, lam).second
    assert np.all(got <= (scale * lam + floor + root * np.sqrt(lam)) * (1 + 1e-13))


def test_saturation_biases_the_cross_moment() -> None:
    """Beyond the range the format clips: E[Qx] < lambda, by the clipped part 2 E[(|x| - R) |x|; |x| > R]."""
    q = parse_quantizer("int4:range=1")
    lam = 4.0
    s = math.sqrt(lam)
    clipped = 2 * mp.quad(lambda x: (x - 1) * x * mp.npdf(x, 0, s), [1, mp.inf])
    assert grid_moments(q, [lam]).cross[0] == pytest.approx(lam - float(clipped), rel=1e-13)


def test_refusals() -> None:
    with pytest.raises(ParameterError, match="fixed grid"):
        grid_moments(parse_quantizer("int8"), [1.0])
    with pytest.raises(ParameterError, match="fixed grid"):
        grid_moments(parse_quantizer("fp8_e4m3:scale=absmax"), [1.0])
    with pytest.raises(ParameterError, match="overflows to inf"):
        grid_moments(parse_quantizer("fp4_e2m1:saturate=off"), [1.0])
    with pytest.raises(ParameterError, match="variances"):
        grid_moments(parse_quantizer("fp4_e2m1"), [1.0, -1.0])
    # overflow with probability zero in float64 is not an overflow
    assert np.isfinite(grid_moments(parse_quantizer("fp8_e4m3:saturate=off"), [1.0]).fourth[0])
