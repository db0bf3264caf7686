"""The ranking: stability probability, score, Pareto front, filters, and ranked.parquet of a run dir."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from screening.funnel import (
    FunnelSettings,
    apply_funnel,
    near_misses,
    rank_candidates,
    set_aside_for_incomplete_hull,
)
from screening.ranking import (
    RankWeights,
    format_near_misses,
    format_top,
    pareto_front,
    probability_stable,
    score,
)
from screening.schema import RANKED_SCHEMA, RESULTS_SCHEMA, Col

#: Stability and conductivity only: the criteria filters off (the electrode preset).
PLAIN = FunnelSettings.from_preset("electrode")


def results_frame(rows: list[dict]) -> pd.DataFrame:
    base = {name: None for name in RESULTS_SCHEMA.names}
    base.update({Col.RUN_ID: "r", Col.STATUS: "ok", Col.MOBILE_ION: "Li"})
    return pd.DataFrame([{**base, **row} for row in rows], columns=RESULTS_SCHEMA.names)


def candidate(
    i: str, e: float, s: float, log10_sigma: float, elements=("Li", "O"), status="ok", **more
) -> dict:
    return {
        **more,
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


def rank(frame, settings=PLAIN, **overrides):
    settings = settings.model_copy(update=overrides) if overrides else settings
    return rank_candidates(frame, settings, mobile_ion="Li")


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
    ranked, funnel = rank(frame)
    assert list(ranked.columns) == RANKED_SCHEMA.names
    assert ranked[Col.ID].tolist() == ["b", "a", "g"]
    assert ranked[Col.RANK].tolist() == [1, 2, 3]
    assert ranked[Col.PARETO_FRONT].tolist() == [True, True, False]
    p_b = norm.cdf((0.05 - 0.04) / 0.02)
    assert ranked.loc[0, Col.SCORE] == pytest.approx(-2.0 + math.log10(p_b))
    assert ranked.loc[0, Col.STABILITY_MARGIN] == pytest.approx(0.5)  # (0.05 - 0.04) / 0.02
    table = funnel.table.set_index("stage")
    assert table.loc["screened", "removed"] == 3 and table.loc["stability", "removed"] == 1
    assert funnel.removed["stability"] == ["c"]
    # asking for more confidence drops b (p ~ 0.69)
    assert rank(frame, min_p_stable=0.9)[0][Col.ID].tolist() == ["a", "g"]
    # a heavy stability weight puts the certain candidate first
    assert rank(frame, weights=RankWeights(sigma=1, stability=10))[0][Col.ID].tolist()[0] == "a"
    assert "b" in format_top(ranked)


def test_candidates_on_an_incomplete_hull_are_set_aside_unless_allowed():
    frame = results_frame(
        [
            candidate("complete", 0.00, 0.01, -3.0),
            {**candidate("garnet", -2.0, 0.01, -2.0), Col.HULL_MISSING_SYSTEMS: "La-O, O-Zr"},
        ]
    )
    ranked, funnel = rank(frame)
    assert ranked[Col.ID].tolist() == ["complete"]
    aside = set_aside_for_incomplete_hull(frame, funnel)
    assert aside[Col.ID].tolist() == ["garnet"]
    assert aside[Col.HULL_MISSING_SYSTEMS].tolist() == ["La-O, O-Zr"]
    allowed, _ = rank(frame, allow_incomplete_hull=True)
    assert allowed[Col.ID].tolist() == ["garnet", "complete"]


def test_rank_candidates_empty_and_bad_settings():
    frame = results_frame([candidate("c", 0.5, 0.01, -1.0)])
    ranked, funnel = rank(frame)
    assert ranked.empty and list(ranked.columns) == RANKED_SCHEMA.names
    assert funnel.table["out"].iloc[-1] == 0
    assert format_top(ranked) == "no candidate passed the filters"
    with pytest.raises(ValueError, match="min_p_stable"):
        FunnelSettings(min_p_stable=0.0)
    with pytest.raises(ValueError, match="max_e_above_hull"):
        FunnelSettings(max_e_above_hull_eV=-0.1)
    with pytest.raises(ValueError, match="unknown ranking preset"):
        FunnelSettings.from_preset("anode")
    with pytest.raises(ValueError, match="extra"):
        FunnelSettings(min_band_gap=1.0)


def criteria(i, *, e=0.0, s=0.06, log10_sigma=-3.0, **more):
    base = {
        Col.ECW_LOW: 1.7,
        Col.ECW_HIGH: 2.3,
        Col.ELECTRONIC_CONDUCTOR: False,
        Col.COST: 10.0,
        Col.HHI_PRODUCTION: 1500.0,
    }
    return candidate(i, e, s, log10_sigma, **{**base, **more})


def funnel_frame():
    return results_frame(
        [
            criteria("electrolyte"),
            criteria("cathode", log10_sigma=-1.0, **{Col.ELECTRONIC_CONDUCTOR: True, Col.ECW_LOW: 2.8}),
            criteria("nitride", log10_sigma=-2.0, **{Col.ECW_LOW: 0.0, Col.ECW_HIGH: 0.44}),
            criteria("nasicon", log10_sigma=-2.5, **{Col.ECW_LOW: 2.2, Col.ECW_HIGH: 4.2}),
            criteria("no window", **{Col.ECW_LOW: None, Col.ECW_HIGH: None}),
            criteria("germanium", log10_sigma=-2.2, elements=("Li", "Ge", "S"), **{Col.COST: 250.0}),
            criteria("lead", elements=("Li", "Pb", "O")),
            criteria("unsure", e=0.02, **{Col.ELECTRONIC_CONDUCTOR: None}),
        ]
    )


def test_the_solid_electrolyte_funnel_counts_what_each_stage_removes():
    ranked, funnel = rank_candidates(
        funnel_frame(), FunnelSettings(exclude_elements=["Pb"], max_cost_USD_per_kg=100), mobile_ion="Li"
    )
    removed = dict(zip(funnel.table["stage"], funnel.table["removed"], strict=True))
    assert removed == {
        "screened": 0,
        "elements": 1,  # lead
        "complete hull": 0,
        "stability": 0,
        "conductivity": 0,  # no p_superionic anywhere, no log10 sigma threshold
        "model domain": 0,
        "electronic": 1,  # cathode
        "window": 3,  # nitride (oxidised at 0.44 V), nasicon (reduced at 2.2 V), no window
        "cost": 1,  # germanium
        "supply": 0,
    }
    assert funnel.removed["window"] == ["nitride", "nasicon", "no window"]
    assert list(funnel.table["out"]) == [8, 7, 7, 7, 7, 7, 6, 3, 2, 2]
    assert set(ranked[Col.ID]) == {"electrolyte", "unsure"}
    flags = dict(zip(ranked[Col.ID], ranked[Col.RANKING_FLAGS], strict=True))
    assert "electronic conduction unknown" in flags["unsure"]
    assert "sigma: physics estimate (no p_superionic)" in flags["electrolyte"]
    # the electrode preset turns the window and insulator filters off: the cathode comes back, first
    electrode, _ = rank_candidates(funnel_frame(), FunnelSettings.from_preset("electrode"), mobile_ion="Li")
    assert electrode[Col.ID].iloc[0] == "cathode" and len(electrode) == 8


def test_near_misses_are_the_candidates_the_last_filters_removed_latest_first():
    frame = funnel_frame()
    _, funnel = rank_candidates(
        frame, FunnelSettings(exclude_elements=["Pb"], max_cost_USD_per_kg=100), mobile_ion="Li"
    )
    misses = near_misses(funnel, 10)
    # cost removed germanium last; then the window (nitride at -2.0 before nasicon at -2.5, then the one
    # without a window), then the electronic filter; lead fell at the element filter, before the hull: no miss
    assert misses[Col.ID].tolist() == ["germanium", "nitride", "nasicon", "no window", "cathode"]
    assert misses["removed_by"].iloc[0].startswith("cost: ")
    assert near_misses(funnel, 2)[Col.ID].tolist() == ["germanium", "nitride"]
    # they passed the stability stage, and show by how much (the funnel's own p_stable)
    by_id = frame.set_index(Col.ID)
    expected = probability_stable(
        by_id.loc[misses[Col.ID], Col.E_ABOVE_HULL].to_numpy(float),
        by_id.loc[misses[Col.ID], Col.E_ABOVE_HULL_STD].to_numpy(float),
        FunnelSettings().max_e_above_hull_eV,
    )
    assert np.allclose(misses[Col.P_STABLE].to_numpy(float), expected) and (expected >= 0.5).all()
    text = format_near_misses(misses)
    assert "nearest misses (5" in text and "germanium" in text and "cost: " in text and "p_stable" in text
    # the command that ranks them (`screening demo` has no --preset)
    assert "screening rank RUN_DIR --preset electrode" in text


def test_p_superionic_where_known_else_the_log10_sigma_threshold():
    frame = results_frame(
        [
            criteria("learned-yes", log10_sigma=-5.0, **{Col.P_SUPERIONIC: 0.8}),
            criteria("learned-no", log10_sigma=-3.0, **{Col.P_SUPERIONIC: 0.2}),
            criteria("physics-fast", log10_sigma=-3.0),
            criteria("physics-slow", log10_sigma=-8.0),
        ]
    )
    kept = apply_funnel(frame, FunnelSettings(min_log10_sigma_S_per_cm=-4.0), mobile_ion="Li").kept
    assert sorted(kept[Col.ID]) == ["learned-yes", "physics-fast"]
    # without a log10 sigma threshold the physics rows all pass (the score orders them)
    kept = apply_funnel(frame, FunnelSettings(), mobile_ion="Li").kept
    assert sorted(kept[Col.ID]) == ["learned-yes", "physics-fast", "physics-slow"]


def test_out_of_domain_is_flagged_and_set_aside_on_request():
    frame = results_frame(
        [
            criteria("inside", **{Col.CONDUCTIVITY_OUT_OF_DOMAIN: False, Col.P_SUPERIONIC: 0.9}),
            criteria("outside", **{Col.CONDUCTIVITY_OUT_OF_DOMAIN: True, Col.P_SUPERIONIC: 0.9}),
        ]
    )
    ranked, _ = rank_candidates(frame, FunnelSettings(), mobile_ion="Li")
    flags = dict(zip(ranked[Col.ID], ranked[Col.RANKING_FLAGS], strict=True))
    assert flags["outside"] == ["conductivity out of the learned model's domain"] and flags["inside"] == []
    ranked, funnel = rank_candidates(frame, FunnelSettings(exclude_out_of_domain=True), mobile_ion="Li")
    assert ranked[Col.ID].tolist() == ["inside"] and funnel.removed["model domain"] == ["outside"]


def test_stability_margin_and_p_stable_with_the_model_error():
    # an ordered compound 20 meV/atom above the hull, sigma 60 meV/atom: p = Phi(0.5), margin 0.5
    frame = results_frame([criteria("near", e=0.02, s=0.06), criteria("deep", e=-0.2, s=0.06)])
    ranked, _ = rank_candidates(frame, FunnelSettings(), mobile_ion="Li")
    by_id = ranked.set_index(Col.ID)
    assert by_id.loc["near", Col.P_STABLE] == pytest.approx(norm.cdf(0.5))
    assert by_id.loc["near", Col.STABILITY_MARGIN] == pytest.approx(0.5)
    assert by_id.loc["deep", Col.STABILITY_MARGIN] == pytest.approx(0.25 / 0.06)
    assert by_id.loc["deep", Col.P_STABLE] > 0.9999


def test_funnel_settings_from_yaml_section_and_presets(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "model: sevennet-0\n"
        "ranking:\n"
        "  preset: electrode\n"
        "  min_p_stable: 0.8\n"
        "  exclude_elements: [pb, Cd]\n"
        "  weights: {sigma: 1, stability: 3}\n"
    )
    settings = FunnelSettings.load(path, max_e_above_hull_eV=0.1)
    assert settings.preset == "electrode" and settings.max_ecw_low_V is None
    assert settings.min_p_stable == 0.8 and settings.exclude_elements == ("Pb", "Cd")
    assert settings.weights == RankWeights(1, 3) and settings.max_e_above_hull_eV == 0.1
    assert settings.as_dict()["weights"] == {"sigma": 1.0, "stability": 3.0}
    path.write_text("ranking:\n  max_ecw_low_V: null\n  exclude_elements: null\n")
    off = FunnelSettings.load(path, min_ecw_high_V=None)  # null in the file: off; None option: not given
    assert off.max_ecw_low_V is None and off.min_ecw_high_V == 2.0 and off.exclude_elements == ()
    default = FunnelSettings.load(None)
    assert default.preset == "solid-electrolyte" and default.exclude_electronic_conductors
    with pytest.raises(ValueError):
        FunnelSettings.load(None, weights={"sigma": -1})
