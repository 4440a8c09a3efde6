"""Idealised schemes (unbiasedness, conditional covariance) and spec-string parsing (SPEC §2).

Statistical checks use fixed seeds; each moment is compared with its target within 4 standard errors, the SE
taken from the sample standard deviation of the per-draw quantity.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from scalinglaw.errors import ParameterError
from scalinglaw.quantize import (
    FORMAT_NAMES,
    Additive,
    FloatFormat,
    IntFormat,
    Multiplicative,
    MultiplicativeCoord,
    parse_quantizer,
)

K_SE = 4.0
U = np.array([1.5, -0.4, 0.02])


def assert_moment(samples: np.ndarray, target: np.ndarray) -> None:
    """Mean over axis 0 of ``samples`` equals ``target`` within K_SE standard errors, entry by entry."""
    n = samples.shape[0]
    se = samples.std(axis=0, ddof=1) / math.sqrt(n)
    assert np.all(np.abs(samples.mean(axis=0) - target) <= K_SE * se + 1e-15), (samples.mean(axis=0), target)


def errors(q, u: np.ndarray, n: int, seed: int, vector_axes=(-1,)) -> np.ndarray:
    x = np.broadcast_to(u, (n, *u.shape)).copy()
    return q.quantize(x, np.random.default_rng(seed), vector_axes=vector_axes) - x


def outer(e: np.ndarray) -> np.ndarray:
    return e[:, :, None] * e[:, None, :]


# ---------------------------------------------------------------------------------------- idealised schemes
def test_additive_unbiased_covariance_eps_identity() -> None:
    eps = 0.01
    e = errors(Additive(eps), U, 200_000, 1)
    assert_moment(e, np.zeros(3))
    assert_moment(outer(e), eps * np.eye(3))


def test_multiplicative_shared_factor_covariance_eps_uu() -> None:
    eps = 0.04
    e = errors(Multiplicative(eps), U, 200_000, 2)
    ratio = e / U
    # one factor per vector (atol: (u + u*s) - u cancels to ulp level)
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones(3), rtol=0, atol=1e-14)
    assert np.std(ratio[:, 0]) > 0.1  # and it differs between vectors
    assert_moment(e, np.zeros(3))
    assert_moment(outer(e), eps * np.outer(U, U))


def test_multiplicative_factor_shared_over_two_axes() -> None:
    eps = 0.09
    u = np.arange(1.0, 7.0).reshape(2, 3)
    e = errors(Multiplicative(eps), u, 50_000, 3, vector_axes=(-2, -1))
    ratio = (e / u).reshape(e.shape[0], -1)
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones(6), rtol=0, atol=1e-14)
    assert_moment(ratio[:, :1] ** 2, np.array([eps]))
    # with the last axis only, the two rows get different factors
    e1 = errors(Multiplicative(eps), u, 10, 3, vector_axes=(-1,))
    r1 = e1 / u
    assert not np.allclose(r1[:, 0, 0], r1[:, 1, 0])


def test_multiplicative_coord_covariance_eps_diag() -> None:
    eps = 0.02
    e = errors(MultiplicativeCoord(eps), U, 200_000, 4)
    assert_moment(e, np.zeros(3))
    assert_moment(outer(e), eps * np.diag(U**2))


@pytest.mark.parametrize("scheme", [Additive, Multiplicative, MultiplicativeCoord])
def test_scheme_basics(scheme) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 5))
    keep = x.copy()
    out = scheme(0.1).quantize(x, rng)
    np.testing.assert_array_equal(x, keep)
    assert out.dtype == np.float64 and out.shape == x.shape
    zero = scheme(0.0).quantize(x, rng)
    np.testing.assert_array_equal(zero, x)
    assert zero is not x
    with pytest.raises(ParameterError, match="epsilon must"):
        scheme(-1.0)


# -------------------------------------------------------------------------------------- formats vs schemes
def test_format_classes() -> None:
    assert IntFormat(8, 1.0).noise_class == "additive" and IntFormat(8).kind == "int"
    assert FloatFormat(4, 3).noise_class == "multiplicative" and FloatFormat(4, 3).kind == "fp"
    assert not IntFormat(8).idealized and Additive(0.1).idealized


def test_fp_normal_range_error_is_coordinatewise_relative() -> None:
    """Stochastic FP rounding: errors uncorrelated across coordinates, variance at most epsilon u^2."""
    q = FloatFormat(4, 3)
    u = np.array([1.3, -0.41, 37.0])
    e = errors(q, u, 200_000, 6)
    assert_moment(e, np.zeros(3))
    off = outer(e)[:, [0, 0, 1], [1, 2, 2]]
    assert_moment(off, np.zeros(3))
    assert np.all((e**2).mean(axis=0) <= q.epsilon * u**2)


# ------------------------------------------------------------------------------------------------- parsing
ROUND_TRIP = [
    *FORMAT_NAMES,
    "int4:range=3",
    "int3:range=0.1",
    "int8:rounding=nearest",
    "int6:range=2.5,rounding=nearest",
    "fp8_e4m3:rounding=nearest",
    "e3m4",
    "e1m0",
    "e11m52",
    "e3m4:rounding=nearest,subnormals=off,saturate=off,scale=absmax",
    "fp16:scale=absmax",
    "bf16:subnormals=off",
    "additive:0.01",
    "multiplicative:0.001",
    "multiplicative-coord:0.25",
]


@pytest.mark.parametrize("spec", ROUND_TRIP)
def test_spec_round_trip(spec: str) -> None:
    q = parse_quantizer(spec)
    assert parse_quantizer(q.spec) == q
    assert parse_quantizer(q.spec).spec == q.spec


def test_canonical_specs() -> None:
    assert parse_quantizer("int8").spec == "int8"
    assert parse_quantizer("int4:range=3").spec == "int4:range=3"
    assert parse_quantizer("fp8_e4m3:rounding=nearest").spec == "fp8_e4m3:rounding=nearest"
    assert parse_quantizer("e3m4").spec == "e3m4"
    assert IntFormat(4, 0.1).spec == "int4:range=0.1"
    assert parse_quantizer("int4:range=absmax") == IntFormat(4)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("e4m3", "fp8_e4m3"),
        ("fp8", "fp8_e4m3"),
        ("e5m2", "fp8_e5m2"),
        ("e3m2", "fp6_e3m2"),
        ("e2m3", "fp6_e2m3"),
        ("e2m1", "fp4_e2m1"),
        ("fp4", "fp4_e2m1"),
        ("e8m7", "bf16"),
        ("bfloat16", "bf16"),
        ("e5m10", "fp16"),
        ("float16", "fp16"),
        ("half", "fp16"),
        ("e8m23", "fp32"),
        ("float32", "fp32"),
        ("single", "fp32"),
        ("FP8_E4M3", "fp8_e4m3"),
    ],
)
def test_aliases(alias: str, canonical: str) -> None:
    q = parse_quantizer(alias)
    assert q == parse_quantizer(canonical)
    assert q.spec == canonical


def test_format_names() -> None:
    fp = ("fp32", "bf16", "fp16", "fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1")
    assert FORMAT_NAMES[:8] == fp
    assert FORMAT_NAMES[8:] == tuple(f"int{b}" for b in range(2, 17))


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("fp7", "must"),
        ("foo", "must"),
        ("int1", "2..16"),
        ("int17", "2..16"),
        ("additive:-1", "epsilon >= 0"),
        ("additive:abc", "must"),
        ("int8:range=-1", "R > 0"),
        ("int8:range=inf", "R > 0"),
        ("int8:range=abc", "R > 0"),
        ("int8:scale=absmax", "range, rounding"),
        ("fp8:range=3", "rounding, scale"),
        ("fp16:rounding=up", "rounding=nearest"),
        ("fp16:subnormals=maybe", "subnormals=off"),
        ("fp16:saturate=2", "saturate=off"),
        ("fp16:scale=max", "scale=absmax"),
        ("e0m3", "1..11"),
        ("e12m3", "1..11"),
        ("e3m53", "0..52"),
    ],
)
def test_parse_errors(spec: str, fragment: str) -> None:
    with pytest.raises(ParameterError) as info:
        parse_quantizer(spec, name="data")
    msg = str(info.value)
    assert msg.startswith("data must"), msg
    assert fragment in msg, msg


def test_parse_error_quotes_the_spec() -> None:
    with pytest.raises(ParameterError, match=r"got 'int8:range=-1'"):
        parse_quantizer("int8:range=-1", name="data")
