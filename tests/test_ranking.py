"""The ranking: stability probability, score, Pareto front, filters, and ranked.parquet of a run dir."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from screening.ranking import (
    RankWeights,
    format_top,
    pareto_front,
    probability_stable,
    rank_candidates,
    score,
    set_aside_for_incomplete_hull,
)
from screening.schema import RANKED_SCHEMA, RESULTS_SCHEMA, Col


def results_frame(rows: list[dict]) -> pd.DataFrame:
    base = {name: None for name in RESULTS_SCHEMA.names}
    base.update({Col.RUN_ID: "r", Col.STATUS: "ok", Col.MOBILE_ION: "Li"})
    return pd.DataFrame([{**base, **row} for row in rows], columns=RESULTS_SCHEMA.names)


def candidate(i: str, e: float, s: float, log10_sigma: float, elements=("Li", "O"), status="ok") -> dict:
    return {
        Col.ID: i,
        Col.ELEMENTS: list(elements),
        Col.CHEMICAL_FORMULA_REDUCED: i,
        Col.E_ABOVE_HULL: e,
        Col.E_ABOVE_HULL_STD: s,
        Col.LOG10_SIGMA: log10_sigma,
        Col.SIGMA: 10.0**log10_sigma,
        Col.STATUS: status,
    }


def test_probability_stable_is_the_normal_cdf_and_a_step_without_spread():
    e = np.array([0.0, 0.05, 0.10, 0.02, 0.08, np.nan])
    s = np.array([0.02, 0.02, 0.025, 0.0, np.nan, 0.01])
    p = probability_stable(e, s, 0.05)
    assert p[0] == pytest.approx(norm.cdf(2.5))
    assert p[1] == pytest.approx(0.5)
    assert p[2] == pytest.approx(norm.cdf(-2.0))
    assert p[3] == 1.0 and p[4] == 0.0  # no spread: the point estimate decides
    assert math.isnan(p[5])


@given(
    e=st.floats(-0.2, 1.0),
    s=st.floats(1e-4, 0.3),
    t1=st.floats(0.0, 0.3),
    t2=st.floats(0.0, 0.3),
)
@settings(max_examples=100, deadline=None)
def test_probability_stable_grows_with_the_threshold(e, s, t1, t2):
    lo, hi = sorted((t1, t2))
    assert probability_stable([e], [s], lo)[0] <= probability_stable([e], [s], hi)[0]


def brute_force_front(e: np.ndarray, s: np.ndarray) -> np.ndarray:
    n = len(e)
    return np.array(
        [
            not any(
                (e[j] <= e[i] and s[j] >= s[i]) and (e[j] < e[i] or s[j] > s[i]) for j in range(n) if j != i
            )
            for i in range(n)
        ],
        dtype=bool,
    )


@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, 0.01, 0.02, 0.05, 0.1]), st.sampled_from([-6.0, -4.0, -3.0, -2.0])),
        min_size=1,
        max_size=25,
    )
)
@settings(max_examples=200, deadline=None)
def test_pareto_front_matches_brute_force_including_ties(points):
    e = np.array([p[0] for p in points])
    s = np.array([p[1] for p in points])
    np.testing.assert_array_equal(pareto_front(e, s), brute_force_front(e, s))


def test_pareto_front_known_case():
    e = np.array([0.0, 0.01, 0.02, 0.03, 0.0])
    s = np.array([-5.0, -3.0, -4.0, -2.0, -6.0])
    # (0.02,-4) is dominated by (0.01,-3); (0,-6) by (0,-5)
    assert pareto_front(e, s).tolist() == [True, True, False, True, False]


def test_score_is_log10_of_expected_conductivity_with_unit_weights():
    sigma = np.array([1e-3, 1e-2])
    p = np.array([0.5, 0.9])
    np.testing.assert_allclose(score(np.log10(sigma), p), np.log10(sigma * p))
    np.testing.assert_allclose(
        score(np.log10(sigma), p, RankWeights(sigma=1.0, stability=2.0)), np.log10(sigma * p**2)
    )


def test_weights_parse_and_reject_bad_text():
    assert RankWeights.parse("sigma=2, stability=0.5") == RankWeights(2.0, 0.5)
    assert RankWeights.parse("stability=3") == RankWeights(1.0, 3.0)
    assert RankWeights.parse(None) == RankWeights()
    for bad in ("sigma", "speed=1", "sigma=-1", "sigma=abc", "sigma=0,stability=0", "sigma=inf"):
        with pytest.raises(ValueError):
            RankWeights.parse(bad)


def test_rank_candidates_filters_scores_and_orders():
    frame = results_frame(
        [
            candidate("a", 0.00, 0.01, -3.0),
            candidate("b", 0.04, 0.02, -2.0),  # p ~ 0.69, more conductive: score -2.16 beats a's -3
            candidate("c", 0.20, 0.02, -1.0),  # far above the hull: dropped
            candidate("d", 0.00, 0.01, -1.0, elements=("Na", "O")),  # no Li: dropped
            candidate("e", 0.00, 0.01, -1.0, status="failed"),  # failed: dropped
            candidate("f", 0.01, 0.0, float("nan")),  # no conductivity: dropped
            candidate("g", 0.03, 0.01, -4.0),  # dominated by a
        ]
    )
    ranked = rank_candidates(frame, mobile_ion="Li", max_e_above_hull_eV=0.05)
    assert list(ranked.columns) == RANKED_SCHEMA.names
    assert ranked[Col.ID].tolist() == ["b", "a", "g"]
    assert ranked[Col.RANK].tolist() == [1, 2, 3]
    assert ranked[Col.PARETO_FRONT].tolist() == [True, True, False]
    p_b = norm.cdf((0.05 - 0.04) / 0.02)
    assert ranked.loc[0, Col.SCORE] == pytest.approx(-2.0 + math.log10(p_b))
    # asking for more confidence drops b (p ~ 0.69)
    strict = rank_candidates(frame, mobile_ion="Li", max_e_above_hull_eV=0.05, min_p_stable=0.9)
    assert strict[Col.ID].tolist() == ["a", "g"]
    # a heavy stability weight puts the certain candidate first
    heavy = rank_candidates(frame, mobile_ion="Li", weights=RankWeights(sigma=1, stability=10))
    assert heavy[Col.ID].tolist()[0] == "a"
    assert "b" in format_top(ranked)


def test_candidates_on_an_incomplete_hull_are_set_aside_unless_allowed():
    frame = results_frame(
        [
            candidate("complete", 0.00, 0.01, -3.0),
            {**candidate("garnet", -2.0, 0.01, -2.0), Col.HULL_MISSING_SYSTEMS: "La-O, O-Zr"},
        ]
    )
    ranked = rank_candidates(frame, mobile_ion="Li")
    assert ranked[Col.ID].tolist() == ["complete"]
    aside = set_aside_for_incomplete_hull(frame, mobile_ion="Li")
    assert aside[Col.ID].tolist() == ["garnet"]
    assert aside[Col.HULL_MISSING_SYSTEMS].tolist() == ["La-O, O-Zr"]
    allowed = rank_candidates(frame, mobile_ion="Li", allow_incomplete_hull=True)
    assert allowed[Col.ID].tolist() == ["garnet", "complete"]


def test_rank_candidates_empty_and_bad_arguments():
    frame = results_frame([candidate("c", 0.5, 0.01, -1.0)])
    ranked = rank_candidates(frame, mobile_ion="Li")
    assert ranked.empty and list(ranked.columns) == RANKED_SCHEMA.names
    assert format_top(ranked) == "no candidate passed the filters"
    with pytest.raises(ValueError, match="min_p_stable"):
        rank_candidates(frame, mobile_ion="Li", min_p_stable=0.0)
    with pytest.raises(ValueError, match="max_e_above_hull"):
        rank_candidates(frame, mobile_ion="Li", max_e_above_hull_eV=-0.1)
