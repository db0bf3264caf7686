"""The scoring functions of ``benchmarks/bench_conductivity.py`` on hand-made arrays (fast; nothing is run)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_conductivity.py"
_spec = importlib.util.spec_from_file_location("bench_conductivity", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

NAN = math.nan


def test_auc_perfect_reversed_and_tied():
    labels = [0, 0, 1, 1]
    assert bench.auc([1, 2, 3, 4], labels) == (1.0, 4)
    assert bench.auc([4, 3, 2, 1], labels) == (0.0, 4)
    assert bench.auc([5, 5, 5, 5], labels) == (0.5, 4)


def test_auc_counts_a_tie_between_classes_as_one_half():
    # pairs (pos, neg): (3 vs 1) win, (3 vs 3) tie, (2 vs 1) win, (2 vs 3) loss -> (2 + 0.5) / 4
    assert bench.auc([1, 3, 3, 2], [0, 0, 1, 1])[0] == pytest.approx(0.625)


def test_auc_matches_sklearn_on_random_scores():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 10, 200).astype(float)  # many ties
    labels = rng.integers(0, 2, 200)
    assert bench.auc(scores, labels)[0] == pytest.approx(metrics.roc_auc_score(labels, scores))


def test_auc_leaves_out_missing_scores_and_labels_and_needs_both_classes():
    assert bench.auc([1, NAN, 3, 2], [0, 1, 1, NAN]) == (1.0, 2)
    value, n = bench.auc([1, 2], [1, 1])
    assert math.isnan(value) and n == 2


def test_missing_as_lowest_puts_unpredicted_below_every_prediction():
    filled = bench.missing_as_lowest([-3.0, NAN, -7.0, -math.inf])
    assert filled[0] == -3.0 and filled[2] == -7.0
    assert filled[1] == filled[3] < -7.0
    # an unpredicted superionic entry then counts as a ranking error
    assert bench.auc(filled, [1, 1, 0, 0])[0] == pytest.approx(0.625)


def test_superionic_labels_censored_bound_below_threshold_is_negative():
    measured = [-3.0, -5.0, -10.0, -3.5, NAN]
    bound = [False, False, True, True, False]
    labels = bench.superionic_labels(measured, bound)
    assert labels[:3].tolist() == [1.0, 0.0, 0.0]
    assert math.isnan(labels[3])  # "< 10^-3.5" could be superionic: unknown
    assert math.isnan(labels[4])
    assert bench.superionic_labels([-4.0], [False])[0] == 1.0  # the threshold itself is superionic


def test_censored_spearman_uncensored_only_and_with_bounds_as_values():
    predicted = [1.0, 2.0, 3.0, 4.0, 5.0]
    measured = [1.0, 2.0, 3.0, 4.0, 0.0]  # the last entry is "< 1e0": out of order only as a bound
    bound = [False, False, False, False, True]
    result = bench.censored_spearman(predicted, measured, bound)
    assert result["uncensored"] == (pytest.approx(1.0), 4)
    assert result["bounds"][1] == 5
    assert result["bounds"][0] == pytest.approx(0.0)


def test_spearman_leaves_out_non_finite_pairs_and_small_sets():
    assert bench.spearman([1, 2, NAN, 3, -math.inf], [3, 2, 1, 1, 0]) == (pytest.approx(-1.0), 3)
    value, n = bench.spearman([1, 2], [1, 2])
    assert math.isnan(value) and n == 2
    assert math.isnan(bench.spearman([1, 1, 1], [1, 2, 3])[0])


def test_coverage_mae_and_percentile():
    assert bench.fraction(3, 4) == 0.75
    assert math.isnan(bench.fraction(0, 0))
    assert bench.mae([0.3, NAN, 0.5], [0.2, 0.4, NAN]) == (pytest.approx(0.1), 1)
    assert math.isnan(bench.mae([NAN], [0.1])[0])
    assert bench.percentile([1, 2, 3, NAN], 50) == 2.0


def test_failure_reasons_group_messages_that_differ_only_in_numbers():
    errors = [
        "TransportError: cannot assign oxidation states to Li7.222 Si1.5 O8: no combination",
        "TransportError: cannot assign oxidation states to Li6 Si2 O7: no combination",
        "TransportError: no softBV parameters for the Li+1-P3- pair",
        "TransportError: no published softBV pair for Li+-H-; details",
        "",
    ]
    top = bench.top_failures(errors)
    assert top[0] == ("TransportError: cannot assign oxidation states to <formula>: no combination", 2)
    assert ("TransportError: no published softBV pair for Li+-H-", 1) in top
    assert ("TransportError: no softBV parameters for the Li+#-P#- pair", 1) in top
    assert len(top) == 3


def test_slugify_and_row_merging():
    assert bench.slugify("after oxidation states") == "after-oxidation-states"
    with pytest.raises(ValueError):
        bench.slugify("--")
    old = ["| before | a |", f"| {bench.BVLAIN_LABEL} | b |", "| after | c |"]
    merged = bench.merge_rows(old, {"before": "| before | A |", "new": "| new | D |"})
    assert merged == ["| before | A |", "| after | c |", "| new | D |", f"| {bench.BVLAIN_LABEL} | b |"]


def test_section_is_appended_then_replaced_and_keeps_other_sections():
    text = "# Benchmarks\n\n## Other\n\nbody\n"
    once = bench.write_section(text, bench.SECTION_TITLE + "\n\none\n")
    assert once.startswith(text) and once.endswith("one\n")
    twice = bench.write_section(once + "\n## Later\n\nkept\n", bench.SECTION_TITLE + "\n\ntwo\n")
    assert "one" not in twice and "two" in twice and twice.endswith("## Later\n\nkept\n")
    assert twice.startswith(text)


def test_cleanup_steps_relax_the_framework_before_the_barrier(monkeypatch):
    from screening.sources.bundled import iter_bundled_rows

    row = next(r for r in iter_bundled_rows() if r["id"] == "bundled-Li2O")
    plain = bench._transport_job(row)
    assert bench.transport_keywords() is None  # the plain rows call the product without a potential
    monkeypatch.setattr(bench, "TRANSPORT_KEYWORDS", bench.transport_keywords(cleanup_steps=2))
    cleaned = bench._transport_job(row)
    assert not any("relaxed" in note for note in plain["transport_notes"])
    assert any("framework relaxed with sevennet-0" in note for note in cleaned["transport_notes"])
    assert "Frenkel energy from bvse" in cleaned["transport_notes"]  # the clean-up is the only change
    assert cleaned["status"] == plain["status"] == "ok"


def test_frenkel_method_potential_passes_the_potential_without_a_clean_up():
    keywords = bench.transport_keywords(frenkel_method="potential")
    assert keywords is not None and keywords["frenkel_method"] == "potential"
    assert keywords["energy_model"].name == "sevennet-0"
    assert "coordinate_cleanup" not in keywords  # the Frenkel source is the only change


def test_include_disordered_asks_the_potential_for_disordered_structures_too():
    keywords = bench.transport_keywords(frenkel_method="potential", include_disordered=True)
    assert keywords is not None and keywords["defect_options"].include_disordered
    # explicit either way: a row keeps its meaning when the product's default changes
    assert not bench.transport_keywords(frenkel_method="potential")["defect_options"].include_disordered
    with pytest.raises(SystemExit):  # the bond-valence estimate has no disordered variant to switch on
        bench.main(["--label", "x", "--include-disordered"])


def test_frenkel_configurations_are_passed_only_when_asked():
    asked = bench.transport_keywords(
        frenkel_method="potential", include_disordered=True, frenkel_configurations=2
    )
    assert asked["frenkel_configurations"] == 2
    # not asked: the measured code's own default (a revision before the setting does not know the keyword)
    assert "frenkel_configurations" not in bench.transport_keywords(frenkel_method="potential")
    with pytest.raises(SystemExit):  # only disordered structures draw configurations
        bench.main(["--label", "x", "--frenkel-method", "potential", "--frenkel-configurations", "2"])


def _records(n: int) -> list[dict]:
    return [{"set": "obelix", "id": f"e{k}", "status": "ok"} for k in range(n)]


def _predict_two(journal) -> list[dict]:
    """Two records through ``bench._predict`` (one worker, 60 s) with ``journal``."""
    records = _records(2)
    bench._predict(records, [{"x": 1.0}, {"x": 2.0}], 1, 60.0, 0.0, "t", journal)
    return records


def test_a_run_cut_short_resumes_from_its_journal_for_the_same_code_and_settings(tmp_path, monkeypatch):
    path = tmp_path / "conductivity-x.journal.jsonl"
    monkeypatch.setattr(bench, "_transport_job", lambda row: {"status": "ok", "sigma": np.float64(row["x"])})
    _predict_two(bench.Journal(path, "rev a", resume=False, timeout_s=60.0))
    assert len(path.read_text().splitlines()) == 2  # written as each structure finished

    def must_not_run(row):
        raise AssertionError("a journalled structure was computed again")

    monkeypatch.setattr(bench, "_transport_job", must_not_run)
    with path.open("a") as handle:
        handle.write('{"run": "rev a", "set": "obel')  # the line being written when the run was killed
    resumed = _predict_two(bench.Journal(path, "rev a", resume=True, timeout_s=60.0))
    assert [r["sigma"] for r in resumed] == [1.0, 2.0] and all(r["status"] == "ok" for r in resumed)

    # other code or settings: nothing reused
    assert bench.Journal(path, "rev b", resume=True, timeout_s=60.0).done == {}
    # a new run of the label starts afresh
    journal = bench.Journal(path, "rev a", resume=False, timeout_s=60.0)
    assert journal.done == {} and not path.exists()
    journal.record("obelix", "e0", {"status": "ok"})
    journal.close()  # the CSV holds the run now
    assert not path.exists()


def test_a_resumed_run_with_a_larger_time_limit_retries_only_what_timed_out(tmp_path):
    path = tmp_path / "conductivity-x.journal.jsonl"
    journal = bench.Journal(path, "rev a", resume=False, timeout_s=900.0)
    journal.record("obelix", "e0", {"status": "ok"})
    journal.record("obelix", "e1", {"status": bench.STATUS_TIMED_OUT})
    assert set(bench.Journal(path, "rev a", resume=True, timeout_s=900.0).done) == {
        ("obelix", "e0"),
        ("obelix", "e1"),
    }
    assert set(bench.Journal(path, "rev a", resume=True, timeout_s=2400.0).done) == {("obelix", "e0")}


def test_a_journal_with_timeouts_outlives_the_csv_so_they_can_be_retried(tmp_path):
    path = tmp_path / "conductivity-x.journal.jsonl"
    journal = bench.Journal(path, "rev a", resume=False, timeout_s=900.0)
    journal.record("obelix", "e0", {"status": "ok"})
    journal.record("obelix", "e1", {"status": bench.STATUS_TIMED_OUT})
    journal.close()
    assert path.exists()
    # resumed under the same limit the timeout stands, and the journal stays with it
    resumed = bench.Journal(path, "rev a", resume=True, timeout_s=900.0)
    assert resumed.timed_out == {("obelix", "e1")}
    resumed.close()
    assert path.exists()
    # a larger limit retries it; once it finishes, the journal goes
    retried = bench.Journal(path, "rev a", resume=True, timeout_s=2400.0)
    retried.record("obelix", "e1", {"status": "ok"})
    retried.close()
    assert not path.exists()
