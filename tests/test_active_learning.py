"""Cost-aware active learning: acquisition, stopping, and ``screening learn`` end to end (tiny models, the
real teacher on tiny structures)."""

from __future__ import annotations

import json

import pytest
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from pipelines.cli import app
from screening.models import load_model
from screening.models.active_learning import ActiveLearningOptions, active_learning, teacher_cost_atoms
from screening.models.distillation import teacher_labels
from screening.models.native_energy import NativeTrainingOptions

TINY = NativeTrainingOptions(hidden=16, n_interactions=1, n_members=2, epochs=2, batch_size=4, base="none")


def _rock_salt(cation, anion: str = "Cl", a: float = 5.14) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture(scope="module")
def pool() -> dict[str, Structure]:
    return {
        "LiCl": _rock_salt("Li"),
        "LiBr": _rock_salt("Li", "Br", 5.5),
        "NaCl": _rock_salt("Na", a=5.64),
        "LiNaCl": _rock_salt({"Li": 0.5, "Na": 0.5}, a=5.3),
        "Li0.75Cl": _rock_salt({"Li": 0.75}),
        "LiClBr": _rock_salt("Li", {"Cl": 0.5, "Br": 0.5}, a=5.3),
    }


@pytest.fixture(scope="module")
def teacher_rows(pool) -> dict[str, list[dict]]:
    rows = teacher_labels(load_model("sevennet-0", "cpu"), list(pool.values()), list(pool), n_samples=2)
    by_parent: dict[str, list[dict]] = {}
    for row in rows:
        by_parent.setdefault(row["parent_id"], []).append(row)
    return by_parent


def _labeller(teacher_rows, asked: list[list[str]]):
    """The teacher's real labels, computed once above, served per request (the loop's label function)."""

    def label(ids):
        asked.append(list(ids))
        rows = [row for i in ids for row in teacher_rows[i]]
        return rows, sum(row["teacher_cpu_s"] for row in rows)

    return label


def test_teacher_cost_counts_supercell_atoms_times_configurations(pool):
    assert teacher_cost_atoms(pool["LiCl"], 8) == 8
    disordered = teacher_cost_atoms(pool["Li0.75Cl"], 8)
    assert disordered % 8 == 0 and disordered >= 8 * 7  # a supercell: more atoms than the cell, 8 times


def test_rounds_label_what_was_acquired_and_never_twice(pool, teacher_rows):
    asked: list[list[str]] = []
    options = ActiveLearningOptions(
        initial=2, batch=2, max_rounds=3, min_gain_meV_per_cpu_s=0, n_samples=2, training=TINY
    )
    ensemble, history, reason = active_learning(
        pool, _labeller(teacher_rows, asked), options, teacher="sevennet-0"
    )
    flat = [i for batch in asked for i in batch]
    assert len(flat) == len(set(flat)) == 6 and reason == "pool exhausted"
    assert [r.n_labelled for r in history] == [2, 4, 6]
    assert [r.acquired for r in history[:2]] == asked[1:]
    assert history[-1].teacher_cpu_s >= history[0].teacher_cpu_s > 0
    assert len(ensemble.members) == 2


def test_spread_per_cost_takes_the_highest_ratio_and_the_stopping_rule_stops(pool, teacher_rows):
    asked: list[list[str]] = []
    options = ActiveLearningOptions(
        initial=2, batch=1, max_rounds=5, min_gain_meV_per_cpu_s=1e9, n_samples=2, training=TINY
    )
    _, history, reason = active_learning(pool, _labeller(teacher_rows, asked), options, teacher="sevennet-0")
    assert len(history) == 1 and reason.startswith("expected gain")
    assert history[0].expected_gain_meV_per_cpu_s < 1e9


def test_random_acquisition_is_seeded(pool, teacher_rows):
    runs = []
    for _ in range(2):
        asked: list[list[str]] = []
        options = ActiveLearningOptions(
            acquisition="random", initial=2, batch=2, max_rounds=2, n_samples=2, training=TINY
        )
        active_learning(pool, _labeller(teacher_rows, asked), options, teacher="sevennet-0")
        runs.append(asked)
    assert runs[0] == runs[1]


def test_a_correction_ensemble_learns_only_from_disordered_parents(pool, teacher_rows):
    asked: list[list[str]] = []
    training = NativeTrainingOptions(hidden=16, n_interactions=1, n_members=2, epochs=2, batch_size=4)
    options = ActiveLearningOptions(initial=2, batch=2, max_rounds=3, n_samples=2, training=training)
    _, history, reason = active_learning(pool, _labeller(teacher_rows, asked), options, teacher="sevennet-0")
    assert sorted(i for batch in asked for i in batch) == ["Li0.75Cl", "LiClBr", "LiNaCl"]
    assert reason == "pool exhausted" and history[-1].n_labelled == 3


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="acquisition"):
        ActiveLearningOptions(acquisition="greedy")  # type: ignore[arg-type]


def test_learn_command_end_to_end(tmp_path, pool):
    folder = tmp_path / "pool"
    folder.mkdir()
    for name, structure in pool.items():
        structure.to(filename=str(folder / f"{name}.cif"))
    out = tmp_path / "learned"
    args = [
        "learn",
        "--structures",
        str(folder),
        "--out",
        str(out),
        "--no-variants",
        "--initial",
        "2",
        "--batch",
        "2",
        "--max-rounds",
        "2",
        "--n-samples",
        "2",
        "--members",
        "2",
        "--epochs",
        "2",
        "--hidden",
        "16",
        "--workers",
        "1",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    curve = json.loads((out / "learning_curve.json").read_text())
    assert [r["n_labelled"] for r in curve["rounds"]] == [2, 3]  # the three disordered parents
    assert curve["rounds"][-1]["teacher_cpu_s"] > 0
    assert json.loads((out / "model.json").read_text())["n_members"] == 2
    assert "2 rounds, 3 parents labelled" in result.output
