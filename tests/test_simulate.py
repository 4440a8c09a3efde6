"""The Monte Carlo simulator: reproducibility across executors, options, validation and real formats.

Statistical checks use fixed seeds and compare with the exact engine (or a sampled reference) within
``K_SE = 3`` standard errors (the SE of the Monte Carlo mean, combined in quadrature where two estimates
are compared).
"""

from __future__ import annotations

import concurrent.futures as cf
import math

import numpy as np
import pytest

from scalinglaw import _progress as progress_mod
from scalinglaw.errors import ParameterError, UnstableStepError
from scalinglaw.exact import exact_risk
from scalinglaw.problem import make_problem
from scalinglaw.simulate import SimulationResult, simulate, sweep
from scalinglaw.simulate.kernel import excess_risk_of
from scalinglaw.simulate.plan import build_plan

K_SE = 3.0


def small_problem(**kw):
    base = {"a": 1.5, "d": 12, "N": 64, "gamma": 0.2, "sigma2": 0.5, "average": "uniform"}
    base.update(kw)
    return make_problem(**base)


def quantized_problem(**kw):
    """Exercises every random stream: prior target, label noise and all five quantizers."""
    return small_problem(
        target="prior", B=4, N=96, data="multiplicative-coord:0.1", labels="additive:0.1",
        params="multiplicative:0.1", acts="additive:0.05", grads="multiplicative-coord:0.1", **kw,
    )


def agree_with_exact(res: SimulationResult, problem, k: float = K_SE) -> None:
    exact = exact_risk(problem).excess_risk
    z = (res.excess_risk_mean - exact) / res.excess_risk_sem
    mean, sem = res.excess_risk_mean, res.excess_risk_sem
    assert abs(z) < k, f"MC {mean:.6g} +- {sem:.3g} (SEM), exact {exact:.6g}, z={z:+.2f}"


# ------------------------------------------------------------------------------------------ reproducibility
def test_serial_process_pool_and_dask_are_bit_identical() -> None:
    distributed = pytest.importorskip("distributed")
    p = quantized_problem()
    serial = simulate(p, reps=40, seed=5, chunk_reps=8)
    with cf.ProcessPoolExecutor(2) as ex:
        pooled = simulate(p, reps=40, seed=5, chunk_reps=8, executor=ex)
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as client:
        dasked = simulate(p, reps=40, seed=5, chunk_reps=8, executor=client.get_executor())
    assert serial.excess_risks.shape == (40,)
    np.testing.assert_array_equal(serial.excess_risks, pooled.excess_risks)
    np.testing.assert_array_equal(serial.excess_risks, dasked.excess_risks)
    assert serial.excess_risk_mean == pooled.excess_risk_mean == dasked.excess_risk_mean


def test_chunking_does_not_depend_on_workers() -> None:
    p = quantized_problem()
    one = simulate(p, reps=24, seed=3, chunk_reps=5, workers=1)
    two = simulate(p, reps=24, seed=3, chunk_reps=5, workers=2)
    np.testing.assert_array_equal(one.excess_risks, two.excess_risks)


def test_chunk_k_uses_child_seed_k() -> None:
    """The first chunk of a long run equals a run of one chunk: chunk k draws from spawn(n_chunks)[k]."""
    p = quantized_problem()
    long = simulate(p, reps=20, seed=9, chunk_reps=8, block_steps=7)
    short = simulate(p, reps=8, seed=9, chunk_reps=8, block_steps=7)
    np.testing.assert_array_equal(long.excess_risks[:8], short.excess_risks)


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    p = quantized_problem()
    a = simulate(p, reps=16, seed=1)
    b = simulate(p, reps=16, seed=1)
    c = simulate(p, reps=16, seed=2)
    np.testing.assert_array_equal(a.excess_risks, b.excess_risks)
    assert not np.array_equal(a.excess_risks, c.excess_risks)
    seq = np.random.SeedSequence(1234)
    d1, d2 = simulate(p, reps=8, seed=seq), simulate(p, reps=8, seed=seq)
    np.testing.assert_array_equal(d1.excess_risks, d2.excess_risks)


def test_sweep_uses_child_seeds_per_problem() -> None:
    probs = [small_problem(), quantized_problem(), small_problem(M=4, sketch_draws=2)]
    res = sweep(probs, reps=12, seed=4, chunk_reps=5)
    children = np.random.SeedSequence(4).spawn(len(probs))
    for p, r, child in zip(probs, res, children, strict=True):
        alone = simulate(p, reps=12, seed=child, chunk_reps=5)
        np.testing.assert_array_equal(r.excess_risks, alone.excess_risks)
    with cf.ThreadPoolExecutor(2) as ex:
        threaded = sweep(probs, reps=12, seed=4, chunk_reps=5, executor=ex)
    for r, t in zip(res, threaded, strict=True):
        np.testing.assert_array_equal(r.excess_risks, t.excess_risks)


def test_progress_bar_and_no_tqdm_fallback(monkeypatch) -> None:
    p = small_problem()
    with_bar = simulate(p, reps=8, seed=0, chunk_reps=4, progress=True)
    monkeypatch.setattr(progress_mod, "_tqdm", None)
    without = simulate(p, reps=8, seed=0, chunk_reps=4, progress=True)
    np.testing.assert_array_equal(with_bar.excess_risks, without.excess_risks)


# ------------------------------------------------------------------------------------------------ options
def test_float32_agrees_with_exact() -> None:
    p = small_problem(data="additive:0.1", B=2, N=128, average="tail")
    r32 = simulate(p, reps=2000, seed=8, dtype=np.float32)
    r64 = simulate(p, reps=2000, seed=8)
    agree_with_exact(r32, p)
    agree_with_exact(r64, p)
    assert any("float32" in n for n in r32.notes)
    z = (r32.excess_risk_mean - r64.excess_risk_mean) / math.hypot(r32.excess_risk_sem, r64.excess_risk_sem)
    assert abs(z) < K_SE


def test_result_fields_and_to_dict() -> None:
    p = small_problem(sigma2=0.7)
    r = simulate(p, reps=10, seed=0, chunk_reps=3)
    assert r.reps == 10 and r.seed == 0 and r.excess_risks.shape == (10,)
    assert r.excess_risk_mean == pytest.approx(r.excess_risks.mean(), rel=1e-12)
    assert r.excess_risk_sem == pytest.approx(r.excess_risks.std(ddof=1) / math.sqrt(10), rel=1e-12)
    d = r.to_dict()
    assert {"excess_risk_mean", "excess_risk_sem", "reps", "risk_mean"} <= set(d)
    assert d["risk_mean"] == pytest.approx(r.excess_risk_mean + 0.7)
    with pytest.raises(AttributeError):
        r.reps = 3  # type: ignore[misc]


def test_block_steps_changes_streams_not_statistics() -> None:
    p = small_problem(N=128, average="uniform")
    a = simulate(p, reps=1500, seed=2, block_steps=1)
    b = simulate(p, reps=1500, seed=2, block_steps=50)
    agree_with_exact(a, p)
    agree_with_exact(b, p)


# ------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"reps": 1}, "reps"),
        ({"reps": 2.5}, "reps"),
        ({"chunk_reps": 0}, "chunk_reps"),
        ({"block_steps": 0}, "block_steps"),
        ({"dtype": np.int32}, "dtype"),
        ({"seed": -1}, "seed"),
        ({"seed": "x"}, "seed"),
        ({"workers": 0}, "workers"),
        ({"executor": "pool"}, "executor"),
    ],
    ids=["reps<2", "reps-fraction", "chunk_reps=0", "block_steps=0", "dtype-int", "seed<0", "seed-str",
         "workers=0", "executor-str"],
)
def test_bad_options_raise_parameter_error(kwargs, name) -> None:
    with pytest.raises(ParameterError) as info:
        simulate(small_problem(), **kwargs)
    assert info.value.name == name


def test_workers_with_executor_and_too_few_reps_for_sketches() -> None:
    with cf.ThreadPoolExecutor(1) as ex, pytest.raises(ParameterError, match="workers"):
        simulate(small_problem(), reps=4, executor=ex, workers=2)
    with pytest.raises(ParameterError, match="sketch_draws=3"):
        simulate(small_problem(M=4, sketch_draws=3), reps=2)
    with pytest.raises(ParameterError, match="Problem"):
        simulate("problem", reps=4)  # type: ignore[arg-type]


def test_unstable_step_is_refused_with_largest_stable_step() -> None:
    stable = small_problem(data="multiplicative:0.2")
    gmax = exact_risk(stable).max_stable_gamma
    with pytest.raises(UnstableStepError) as info:
        simulate(stable.with_(gamma=1.5 * gmax), reps=4)
    assert info.value.max_stable == pytest.approx(gmax, rel=1e-6)
    assert f"{gmax:.6g}" in str(info.value)


def test_unstable_check_uses_exact_moments_of_fixed_grid_data() -> None:
    # fp4 data enters the check with its exact moments (as in the exact engine); int8 absmax on the parameters
    # counts as full precision for the check
    p = small_problem(data="fp4_e2m1", params="int8")
    gmax = exact_risk(small_problem(data="fp4_e2m1")).max_stable_gamma
    assert gmax != pytest.approx(exact_risk(small_problem(data=p.data.idealized_scheme())).max_stable_gamma)
    with pytest.raises(UnstableStepError) as info:
        simulate(p.with_(gamma=1.01 * gmax), reps=4)
    assert info.value.max_stable == pytest.approx(gmax, rel=1e-6)


# ------------------------------------------------------------------------------------------- real formats
@pytest.mark.parametrize(
    "quant",
    [{"data": "int8"}, {"params": "int8", "grads": "int8"}, {"data": "fp8_e4m3"},
     {"acts": "fp8_e4m3", "labels": "fp8_e4m3"}, {"data": "int4:range=4", "params": "fp8_e5m2"}],
    ids=["data-int8-absmax", "params-grads-int8", "data-fp8e4m3", "acts-labels-fp8e4m3", "int4-range-e5m2"],
)
def test_real_formats_run(quant) -> None:
    p = small_problem(B=2, N=64, **quant)
    r = simulate(p, reps=16, seed=0)
    assert np.all(np.isfinite(r.excess_risks)) and np.all(r.excess_risks >= 0)


@pytest.mark.parametrize(("data", "how"), [("fp4_e2m1", "exact"), ("fp8_e4m3:scale=absmax", "estimated")])
def test_real_format_quantized_test_inputs_hq_matches_sampling(data: str, how: str) -> None:
    """Quantized-test risk of a fixed iterate: the [derived] formula against direct test sampling (H^(q) exact for a
    fixed grid, estimated from seeded samples with absmax scaling)."""
    p = small_problem(data=data, test_inputs="quantized", target="prior")
    r = simulate(p, reps=4, seed=0)
    assert any(how in n for n in r.notes if "quantized test inputs" in n)
    plan = build_plan(p, 4, 0, chunk_reps=4, block_steps=None, dtype=np.dtype(np.float64))
    rng = np.random.default_rng(1)
    wstar = rng.standard_normal((1, p.spectrum.d))
    w = wstar + 0.5 * rng.standard_normal(wstar.shape)
    formula = excess_risk_of(plan, plan.groups[0], w, wstar)[0]
    lam = plan.lam
    x = rng.standard_normal((400_000, lam.size)) * np.sqrt(lam)
    y = x @ wstar[0] + math.sqrt(p.sigma2) * rng.standard_normal(x.shape[0])
    sq = (p.data.quantize(x, rng) @ w[0] - y) ** 2 - p.sigma2
    assert abs(sq.mean() - formula) < K_SE * sq.std(ddof=1) / math.sqrt(sq.size)


def test_high_precision_formats_match_full_precision() -> None:
    p = small_problem(N=128, B=2)
    q = p.with_(data="int16", params="bf16", grads="fp16")
    rq = simulate(q, reps=1000, seed=6)
    agree_with_exact(rq, p)


# --------------------------------------------------------------------------------------- d = inf, sketches
def test_infinite_dimension_proxy_runs_and_matches_exact() -> None:
    p = make_problem(
        a=2.0, d="inf", N=64, gamma=0.15, sigma2=0.5, average="uniform", data="multiplicative:0.2"
    )
    assert p.proxy_dimension() >= 1000
    r = simulate(p, reps=512, seed=0)
    assert any("d=inf" in n for n in r.notes)
    tail = p.target.tail_mass(p.spectrum, p.proxy_dimension())
    assert np.all(r.excess_risks >= tail)
    agree_with_exact(r, p)


def test_infinite_dimension_additive_params_uses_tail_pseudo_coordinate() -> None:
    p = make_problem(a=2.0, d="inf", d_proxy=256, N=128, gamma=0.4, sigma2=0.2, params="additive:0.2")
    r = simulate(p, reps=3000, seed=4)
    assert any("pseudo-coordinate" in n for n in r.notes)
    agree_with_exact(r, p)


def test_sketch_groups_split_replicas_and_weight_draws_equally() -> None:
    p = small_problem(d=24, M=6, sketch_draws=3, data="additive:0.05")
    r = simulate(p, reps=11, seed=0, chunk_reps=2)
    assert r.excess_risks.shape == (11,)
    parts = np.split(r.excess_risks, [4, 8])  # sizes 4, 4, 3
    assert r.excess_risk_mean == pytest.approx(np.mean([q.mean() for q in parts]), rel=1e-12)
    # sketch draws are the engine's: different draws give different fixed-target risks on average
    big = simulate(p.with_(sketch_draws=2), reps=2000, seed=1)
    agree_with_exact(big, p.with_(sketch_draws=2))


def test_sketch_raw_basis_coordinate_noise_runs_where_engine_refuses() -> None:
    p = small_problem(d=24, M=6, sketch_basis="raw", data="multiplicative-coord:0.2", test_inputs="quantized")
    r = simulate(p, reps=8, seed=0)
    assert np.all(np.isfinite(r.excess_risks))


def test_absmax_int_data_enters_the_stability_check():
    """int2 with absmax scaling has no idealised scheme: it is checked through a measured additive surrogate
    (it was treated as full precision, and gamma = 0.5 ran to an excess risk of 1e36)."""
    from scalinglaw.simulate.plan import check_stable

    p = make_problem(a=2, d=20, N=1000, gamma=0.5, data="int2")
    with pytest.raises(UnstableStepError) as exc:
        check_stable(p)
    limit = exc.value.max_stable
    full_precision = check_stable(p.with_(data=None, gamma=0.1))
    assert limit < 0.5 * full_precision
    check_stable(p.with_(gamma=0.9 * limit))  # accepted below the stated limit
