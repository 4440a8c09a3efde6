"""Effective data sizes (SPEC §5.5, claim 6): the bound's N tr H/tr H^(q) and the operational one, closed form
against the exact engine."""

from __future__ import annotations

import numpy as np
import pytest

from scalinglaw.effective import effective_data_size, effective_data_size_bound, estimation_error
from scalinglaw.exact import exact_risk
from scalinglaw.exact.engine import exact_risk_limit
from scalinglaw.predict import closed_form_risk, effective_sizes, exact_effective_data_size
from scalinglaw.problem import make_problem
from scalinglaw.reduction import reduce_problem
from scalinglaw.spectra import quantized_trace


def _pair(kind, eps, M, d=256, N=2048, a=2.0, c=0.2):
    """Claim 6's convention: each precision at its prescribed step c/tr H^(q); the reference at c/tr H."""
    base = make_problem(a=a, d=d, M=M, N=N, gamma=0.1, schedule="geometric", average="last", sketch_draws=2,
                        sketch_seed=606)
    tr = float(np.mean([dp.mu.sum() for dp in reduce_problem(base)]))
    q = base.with_(gamma=c / float(quantized_trace(tr, M, kind, eps)[0]), data=f"{kind}:{eps}")
    return q, base.with_(gamma=c / tr)


@pytest.mark.parametrize("kind", ["additive", "multiplicative"])
def test_closed_form_effective_data_size_within_1_5_of_the_exact_engine(kind):
    """The ends of the judged range (claim 6 checks the whole map at every M)."""
    M = 16
    for eps in (1e-3, 0.3):
        q, ref = _pair(kind, eps, M)
        exact, _ = exact_effective_data_size(q, reference=ref, rtol=1e-3)
        closed, _ = effective_data_size(q, reference=ref)
        assert 1 / 1.5 <= closed / exact <= 1.5, (kind, M, eps, closed / q.N, exact / q.N)


def test_ridge_effect_and_multiplicative_reduction():
    """Additive eps = 0.1 raises the operational N_eff (both ways), multiplicative lowers it to about N/(1+eps);
    the bound's N tr H/tr H^(q) is below N for both."""
    qa, ref = _pair("additive", 0.1, 32)
    qm, _ = _pair("multiplicative", 0.1, 32)
    for q in (qa, qm):
        assert effective_data_size_bound(q) < q.N
    assert effective_data_size(qa, reference=ref)[0] > 1.5 * qa.N
    assert exact_effective_data_size(qa, reference=ref, rtol=1e-3)[0] > 1.5 * qa.N
    n_m = exact_effective_data_size(qm, reference=ref, rtol=1e-3)[0]
    assert n_m < qm.N and 0.8 <= n_m * 1.1 / qm.N <= 1.25


def test_bound_is_N_tr_H_over_tr_Hq():
    p = make_problem(a=2.0, d=100, M=20, N=1000, gamma=0.05, schedule="geometric", average="last",
                     data="additive:0.05")
    tr = float(np.sum(np.arange(1, 101, dtype=float) ** -2.0))
    assert effective_data_size_bound(p) == pytest.approx(1000 * tr / (tr + 20 * 0.05), rel=1e-12)
    pm = p.with_(data="multiplicative:0.05")
    assert effective_data_size_bound(pm) == pytest.approx(1000 / 1.05, rel=1e-12)
    assert effective_data_size_bound(p.with_(data=None)) == pytest.approx(1000, rel=1e-12)


@pytest.mark.parametrize("average", ["last", "uniform", "tail"])
def test_estimation_error_model_tracks_the_exact_engine_at_full_precision(average):
    """Plain regression, the model's own spectrum: the per-direction model within 25% of the exact R(N) - R(inf)
    (it drops only the rank-one feedback of the other directions' error on the noise)."""
    for N in (200, 5000):
        p = make_problem(a=2.0, d=64, N=N, gamma=0.1, average=average, schedule="constant")
        if average == "last":
            continue  # constant step, last iterate: R(inf) keeps the stationary variance; covered by geometric
        exact = exact_risk(p).excess_risk - exact_risk_limit(p)
        assert estimation_error(p) == pytest.approx(exact, rel=0.25)
    g = make_problem(a=2.0, d=64, N=5000, gamma=0.1, schedule="geometric", average="last")
    assert estimation_error(g) == pytest.approx(exact_risk(g).excess_risk - exact_risk_limit(g), rel=0.25)


def test_reports_name_both_effective_data_sizes():
    q, _ = _pair("additive", 0.1, 16)
    res = closed_form_risk(q).to_dict()
    assert res["effective_data_size_bound"] < q.N < res["effective_data_size"]
    sizes = effective_sizes(q).to_dict()
    assert sizes["effective_data_size_bound"] == pytest.approx(res["effective_data_size_bound"])
    assert sizes["effective_data_size"]["closed"] == pytest.approx(res["effective_data_size"])
