"""Calibration designs and the calibrated laws on the independent test design (issue 15).

The full designs are evaluated by ``scalinglaw calibrate`` (minutes); its records ship in
``scalinglaw/data/calibration_records.json``. Here: the recorded test design against the calibrated closed forms
(closed forms only, one law per option set evaluated on arrays), a few recorded problems against fresh
exact-engine (and deterministic-equivalent) evaluations, and the designs' coverage of the documented domain.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from scalinglaw.calibration import (
    CALIBRATED_LAWS,
    SIZES,
    Record,
    closed_over_exact,
    closed_terms,
    closed_terms_all,
    evaluate_point,
    read_records,
    region_table,
    tightness,
)
from scalinglaw.design import DOMAIN, design

RECORDS_PATH = resources.files("scalinglaw.data").joinpath("calibration_records.json")
CALIBRATION = json.loads(resources.files("scalinglaw.data").joinpath("calibration.json").read_text())


@pytest.fixture(scope="module")
def records() -> dict[str, dict[str, list[Record]]]:
    return read_records(str(RECORDS_PATH))


@pytest.fixture(scope="module")
def test_ratios(records) -> dict[str, np.ndarray]:
    """closed (calibrated constants) / recorded exact excess risk on each law's test design."""
    out = {}
    for law in CALIBRATED_LAWS:
        recs = records[law]["test"]
        closed = np.array([sum(t.values()) for t in closed_terms_all(recs, None)])
        out[law] = closed_over_exact(closed, np.array([r.exact_total for r in recs]))  # inf where exact is 0
    return out


def test_test_design_is_large_and_independent(records):
    total = sum(len(records[law]["test"]) for law in CALIBRATED_LAWS)
    assert total >= 500
    for law in CALIBRATED_LAWS:
        cal = {json.dumps(r.point.to_dict(), sort_keys=True) for r in records[law]["calibration"]}
        assert len(records[law]["calibration"]) >= 256
        assert not any(json.dumps(r.point.to_dict(), sort_keys=True) in cal for r in records[law]["test"]), law


@pytest.mark.parametrize("law", CALIBRATED_LAWS)
def test_calibrated_law_bounds_every_problem_of_the_test_design(law, test_ratios):
    r = test_ratios[law]
    worst = int(np.argmin(r))
    assert r.min() >= 1.0, f"{law}: closed/exact = {r.min():.4f} at test problem {worst}"


@pytest.mark.parametrize("law", CALIBRATED_LAWS)
def test_tightness_on_the_test_design(law, records, test_ratios):
    """Median closed/exact <= 2.5, 90th percentile <= 5, and no region of the table with a median above 4."""
    t = tightness(test_ratios[law])
    assert t["median"] <= 2.5 and t["p90"] <= 5.0, t
    table = region_table(records[law]["test"], test_ratios[law])
    loose = {name: round(v["median"], 2) for name, v in table.items() if v["median"] > 4.0}
    assert not loose, loose


def test_shipped_tightness_matches_the_records(test_ratios):
    """calibration.json (and so theory/calibration.md) reports what the records give with the shipped constants."""
    for law in CALIBRATED_LAWS:
        shipped, fresh = CALIBRATION[law]["test"], tightness(test_ratios[law])
        for key in ("n", "median", "p90", "fraction_bounded", "exact_zero"):
            assert shipped[key] == pytest.approx(fresh[key], rel=1e-9), (law, key)


def test_recorded_problems_match_fresh_engine_runs(records):
    """Two recorded test problems per law (random, seeded; exact engine, finite d <= 400 to keep this quick), one
    at d = inf and one whose reference is the deterministic equivalent, re-evaluated from scratch: same step and
    the same reference excess risk; and the design regenerates the recorded points."""
    rng = np.random.default_rng(15)
    picks = []
    for law in CALIBRATED_LAWS:
        recs = records[law]["test"]
        regenerated = design(law, "test", SIZES[law]["test"], DOMAIN)
        assert [p.to_dict() for p in regenerated] == [r.point.to_dict() for r in recs], law
        small = [i for i, r in enumerate(recs) if r.point.reference == "exact" and r.point.kwargs["d"] != "inf"
                 and r.point.kwargs["d"] <= 400]
        picks += [recs[i] for i in rng.choice(small, size=2, replace=False)]
    sgd_inf = [r for r in records["sgd"]["test"] if r.point.kwargs["d"] == "inf"]
    de = [r for r in records["sketched"]["test"] if r.point.reference == "de" and r.point.kwargs["N"] < 1e5]
    picks += [sgd_inf[int(rng.integers(len(sgd_inf)))], de[int(rng.integers(len(de)))]]
    for rec in picks:
        fresh = evaluate_point(rec.point)
        assert fresh.gamma == pytest.approx(rec.gamma, rel=1e-9)
        assert fresh.exact_total == pytest.approx(rec.exact_total, rel=1e-7)
        assert sum(closed_terms(fresh, None).values()) >= fresh.exact_total


def test_design_covers_the_documented_domain(records):
    """Both averages, every scheme, eps up to ~0.3, step fractions down to ~0.01, both test conventions, b on both
    sides of a, batches above 1, plain regression under geometric decay, d = inf for about a quarter of the
    problems and finite d up to ~1e6, N up to ~1e12 under both schedules, sketches up to M ~ 1e4 (references:
    drawn sketches and the deterministic equivalent)."""
    pts = [r.point for law in CALIBRATED_LAWS for r in records[law]["test"]]
    kws = [p.kwargs for p in pts]
    fracs = np.array([p.step_fraction for p in pts])
    assert fracs.min() < 0.015 and fracs.max() > 0.8
    assert {k.get("average") for k in kws} >= {"uniform", "tail", "last"}
    assert {k.get("test_inputs") for k in kws} >= {"clean", "quantized"}
    specs = [v for k in kws for t, v in k.items() if t in ("data", "labels", "params", "acts", "grads")]
    assert {s.split(":")[0] for s in specs} == {"additive", "multiplicative", "multiplicative-coord"}
    assert max(float(s.split(":")[1]) for s in specs) > 0.25
    b_minus_a = [k["b"] - k["a"] for k in kws if k.get("target") == "prior"]
    assert min(b_minus_a) < -0.5 and max(b_minus_a) > 1.0
    assert max(k["B"] for k in kws) > 32
    assert 0.2 < np.mean([k["d"] == "inf" for k in kws]) < 0.3
    assert max(k["d"] for k in kws if k["d"] != "inf") > 5e5
    for schedule in ("constant", "geometric"):
        assert max(k["N"] for k in kws if k["schedule"] == schedule) > 3e11, schedule
    sketched = [p for p in pts if p.kwargs.get("schedule") == "geometric"]
    assert any("M" not in p.kwargs for p in sketched) and max(p.kwargs.get("M", 0) for p in sketched) >= 8192
    assert {p.reference for p in sketched} == {"exact", "de"}
