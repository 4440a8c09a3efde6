"""Calibration designs and the calibrated laws on the independent test design (issue 15).

The full designs are evaluated by ``scalinglaw calibrate`` (minutes); its records ship in
``scalinglaw/data/calibration_records.json``. Here: the recorded test design against the calibrated closed forms
(cheap: closed forms only), a few recorded problems against fresh exact-engine evaluations, and the designs'
coverage of the documented domain.
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
    closed_terms,
    evaluate_point,
    read_records,
    region_table,
    tightness,
)
from scalinglaw.design import FINITE_DOMAIN, design

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
        out[law] = np.array([sum(closed_terms(r, None).values()) / r.exact_total for r in records[law]["test"]])
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
        assert CALIBRATION[law]["test"]["median"] == pytest.approx(float(np.median(test_ratios[law])), rel=1e-9)


def test_recorded_problems_match_fresh_engine_runs(records):
    """Two recorded test problems per law (random, seeded; d <= 400 to keep this quick) re-evaluated from scratch:
    same step and the same exact excess risk; and the design regenerates the recorded points."""
    rng = np.random.default_rng(15)
    for law in CALIBRATED_LAWS:
        recs = records[law]["test"]
        regenerated = design(law, "test", SIZES["test"], FINITE_DOMAIN)
        assert len(regenerated) == len(recs)
        small = [i for i, r in enumerate(recs) if r.point.kwargs["d"] != "inf" and r.point.kwargs["d"] <= 400]
        for i in rng.choice(small, size=2, replace=False):
            assert regenerated[i].to_dict() == recs[i].point.to_dict()
            fresh = evaluate_point(recs[i].point)
            assert fresh.gamma == pytest.approx(recs[i].gamma, rel=1e-9)
            assert fresh.exact_total == pytest.approx(recs[i].exact_total, rel=1e-7)
            assert sum(closed_terms(fresh, None).values()) >= fresh.exact_total


def test_design_covers_the_documented_domain(records):
    """Both averages, every scheme, eps up to ~0.3, step fractions down to ~0.01, both test conventions, b on both
    sides of a, batches above 1, plain regression under geometric decay, sketches of every size."""
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
    sketched = [k for k in kws if k.get("schedule") == "geometric"]
    assert any("M" not in k for k in sketched) and any(k.get("M", 0) >= 128 for k in sketched)
