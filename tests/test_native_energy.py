"""Distillation, the native ensemble, ``--disorder native|auto`` and ``screening train energy``, on tiny
models (hidden size 16) and tiny data labelled by the real teacher (SevenNet-0)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.train_energy import read_training_folder
from screening.models.distillation import configuration_structure, substitutional_variants, teacher_labels
from screening.models.native_energy import (
    NativeEnergyEnsemble,
    NativeTrainingOptions,
    calibrate_spread_threshold,
    distillation_examples,
    fit_native_ensemble,
    held_out_split,
)
from screening.models.predict import predict_energies
from screening.schema import Col

TINY = NativeTrainingOptions(hidden=16, n_interactions=1, n_members=2, epochs=3, batch_size=4)


def _rock_salt(cation: dict | str, anion: str = "Cl", a: float = 5.14) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture(scope="module")
def parents() -> dict[str, Structure]:
    return {
        "LiCl": _rock_salt("Li"),
        "LiBr": _rock_salt("Li", "Br", 5.50),
        "LiNaCl": _rock_salt({"Li": 0.5, "Na": 0.5}, a=5.3),
        "Li0.75Cl": _rock_salt({"Li": 0.75}),
    }


@pytest.fixture(scope="module")
def label_rows(parents) -> list[dict]:
    from screening.models import load_model

    return teacher_labels(load_model("sevennet-0", "cpu"), list(parents.values()), list(parents), n_samples=2)


@pytest.fixture(scope="module")
def ensemble(label_rows, parents) -> NativeEnergyEnsemble:
    examples = distillation_examples(label_rows, parents, base=TINY.base)
    return fit_native_ensemble(examples, TINY, teacher="sevennet-0")


def test_labels_hold_each_configuration_and_rebuild_it(label_rows, parents):
    by_parent: dict[str, list[dict]] = {}
    for row in label_rows:
        assert row["error"] is None and math.isfinite(row["energy_per_atom_eV"])
        by_parent.setdefault(row["parent_id"], []).append(row)
    assert {k: len(v) for k, v in by_parent.items()} == {"LiCl": 1, "LiBr": 1, "LiNaCl": 2, "Li0.75Cl": 2}
    rebuilt = configuration_structure(by_parent["LiCl"][0])
    assert rebuilt.composition.reduced_formula == "LiCl" and len(rebuilt) == len(parents["LiCl"])
    emptied = configuration_structure(by_parent["Li0.75Cl"][0])
    assert emptied.composition["Li"] / emptied.composition["Cl"] == pytest.approx(0.75)


def test_a_parent_that_cannot_be_sampled_is_its_own_failed_row(parents):
    from screening.models import load_model

    isolated = Structure(Lattice.cubic(20.0), [{"Li": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    rows = teacher_labels(load_model("sevennet-0", "cpu"), [isolated, parents["LiCl"]], ["bad", "good"])
    errors = {row["parent_id"]: row["error"] for row in rows}
    assert errors["good"] is None and "no neighbour" in errors["bad"]


def test_examples_add_each_disordered_parent_with_its_configurational_mean(label_rows, parents):
    examples = distillation_examples(label_rows, parents, base="none")
    means = {e.parent_id: e.target_eV_per_atom for e in examples if e.is_parent_mean}
    assert set(means) == {"LiNaCl", "Li0.75Cl"}
    energies = [r["energy_per_atom_eV"] for r in label_rows if r["parent_id"] == "LiNaCl"]
    assert means["LiNaCl"] == pytest.approx(np.mean(energies))


def test_training_is_deterministic_and_the_checkpoint_rebuilds_it(ensemble, label_rows, parents, tmp_path):
    again = fit_native_ensemble(
        distillation_examples(label_rows, parents, base=TINY.base), TINY, teacher="sevennet-0"
    )
    for first, second in zip(ensemble.members, again.members, strict=True):
        for key, value in first.state_dict().items():
            assert torch.equal(value, second.state_dict()[key]), key
    ensemble.threshold_eV = 0.01
    ensemble.save(tmp_path / "model")
    loaded = NativeEnergyEnsemble.load(tmp_path / "model")
    assert loaded.teacher == "sevennet-0" and loaded.threshold_eV == 0.01
    assert loaded.members[0].constructor() == ensemble.members[0].constructor()
    structures = list(parents.values())
    np.testing.assert_array_equal(
        loaded.predict(structures).energy_per_atom_eV, ensemble.predict(structures).energy_per_atom_eV
    )


def test_ordered_structures_are_the_teacher_exactly_and_disordered_ones_get_a_spread(
    ensemble, label_rows, parents
):
    from screening.models import load_model

    teacher = load_model("sevennet-0", "cpu")
    prediction = ensemble.predict(list(parents.values()), teacher_model=teacher)
    assert all(error is None for error in prediction.errors)
    ordered = [parents["LiCl"], parents["LiBr"]]
    np.testing.assert_allclose(
        prediction.energy_per_atom_eV[:2], teacher.predict_energy_per_atom(ordered), atol=1e-6
    )
    assert (prediction.spread_eV[:2] == 0).all() and (prediction.spread_eV[2:] > 0).all()
    for name, energy in zip(parents, prediction.energy_per_atom_eV, strict=True):
        mean = np.mean([r["energy_per_atom_eV"] for r in label_rows if r["parent_id"] == name])
        assert abs(energy - mean) < 0.3


def test_alchemical_examples_are_the_disordered_parents_on_top_of_the_teacher_pass(label_rows, parents):
    examples = distillation_examples(label_rows, parents, base="alchemical")
    assert {e.parent_id for e in examples} == {"LiNaCl", "Li0.75Cl"}
    for example in examples:
        mean = np.mean([r["energy_per_atom_eV"] for r in label_rows if r["parent_id"] == example.parent_id])
        assert example.teacher_eV_per_atom == pytest.approx(mean)
        assert example.target_eV_per_atom == pytest.approx(mean - example.base_eV_per_atom)
        assert example.base_eV_per_atom != 0


def test_a_network_predicting_energies_alone_trains_and_predicts(label_rows, parents):
    options = NativeTrainingOptions(
        hidden=16, n_interactions=1, n_members=2, epochs=3, batch_size=4, base="none"
    )
    alone = fit_native_ensemble(
        distillation_examples(label_rows, parents, base="none"), options, teacher="sevennet-0"
    )
    prediction = alone.predict(list(parents.values()))
    assert alone.base == "none" and all(error is None for error in prediction.errors)
    for name, energy in zip(parents, prediction.energy_per_atom_eV, strict=True):
        mean = np.mean([r["energy_per_atom_eV"] for r in label_rows if r["parent_id"] == name])
        assert abs(energy - mean) < 0.3  # three epochs from the per-element energies


def test_spread_threshold_keeps_every_trusted_gap_within_the_limit():
    spread = np.array([0.001, 0.002, 0.003, 0.004])
    assert calibrate_spread_threshold(spread, np.array([0.01, 0.03, 0.05, 0.01]), 0.04) == 0.002
    assert calibrate_spread_threshold(spread, np.array([0.05, 0.0, 0.0, 0.0]), 0.04) == 0.0
    assert calibrate_spread_threshold(spread, np.zeros(4), 0.04) == 0.004  # never beyond what was checked


def test_held_out_split_keeps_each_group_on_one_side():
    groups = {f"p{i}": f"g{i % 7}" for i in range(70)}
    train, calibration, test = held_out_split(groups, 0.3, seed=1)
    assert train | calibration | test == set(groups) and calibration and test
    side = {}
    for name, members in (("train", train), ("calibration", calibration), ("test", test)):
        for parent in members:
            assert side.setdefault(groups[parent], name) == name


def test_auto_takes_the_native_path_under_the_threshold_and_asks_the_teacher_above(ensemble, parents):
    structures = list(parents.values())
    ensemble.threshold_eV = math.inf
    trusted = predict_energies(
        "sevennet-0", structures, disorder_strategy="auto", native_model=ensemble, n_samples=2
    )
    ensemble.threshold_eV = 0.0
    asked = predict_energies(
        "sevennet-0", structures, disorder_strategy="auto", native_model=ensemble, n_samples=2
    )
    assert [p.disorder_strategy for p in trusted] == ["ordered", "ordered", "native", "native"]
    assert [p.disorder_strategy for p in asked] == ["ordered", "ordered", "sample", "sample"]
    for native, teacher in zip(trusted[2:], asked[2:], strict=True):
        assert native.native_spread_eV == teacher.native_spread_eV > 0  # the spread that decided
        assert native.n_configurations == 1 and teacher.n_configurations == 2
    assert trusted[0].native_spread_eV is None


def test_a_native_model_of_another_teacher_is_refused(ensemble, parents):
    ensemble.teacher = "chgnet-0.3.0"
    try:
        with pytest.raises(ValueError, match="distilled from chgnet"):
            predict_energies(
                "sevennet-0", [parents["LiNaCl"]], disorder_strategy="native", native_model=ensemble
            )
    finally:
        ensemble.teacher = "sevennet-0"


def test_variants_mix_isovalent_partners_and_empty_the_mobile_ion():
    ids = dict(substitutional_variants("x", _rock_salt("Li")))
    assert set(ids) == {"x:Cl-Br0.5", "x:Li-Na0.5", "x:Li0.75"}
    assert not any(structure.is_ordered for structure in ids.values())


def test_train_energy_command_end_to_end_then_a_run_with_auto(tmp_path, parents):
    folder = tmp_path / "cifs"
    folder.mkdir()
    for name, structure in parents.items():
        structure.to(filename=str(folder / f"{name}.cif"))
    out = tmp_path / "model"
    args = [
        "train",
        "energy",
        "--structures",
        str(folder),
        "--out",
        str(out),
        "--no-variants",
        "--n-samples",
        "2",
        "--members",
        "2",
        "--epochs",
        "2",
        "--hidden",
        "16",
        "--holdout-fraction",
        "0.5",
        "--workers",
        "1",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "gap to the teacher" in result.output
    report = json.loads((out / "training_report.json").read_text())
    assert report["held_out"]["parents"]["train"] >= 1
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["n_members"] == 2 and manifest["metadata"]["teacher"] == "sevennet-0"
    folder = read_training_folder(out)  # what the benchmarks rebuild: the same split as the report
    assert len(folder.train) == report["held_out"]["parents"]["train"]
    assert len(folder.test) == report["held_out"]["parents"]["test"]
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "already labelled" in again.output
    assert "1 of 1 chunks already labelled" in again.output
    # the run: ordered rows through the teacher, disordered ones through the ensemble or, above its
    # threshold, the teacher; each says which and with what spread
    run_dir = tmp_path / "run"
    config = tmp_path / "run.yaml"
    config.write_text("transport_method: bvse\nfrenkel_method: bvse\n")
    run = CliRunner().invoke(
        app,
        [
            "run",
            str(config),
            "--structures",
            str(out / "structures"),
            "--out",
            str(run_dir),
            "--disorder",
            "auto",
            "--native-model",
            str(out),
            "--workers",
            "1",
            "--no-progress",
        ],
    )
    assert run.exit_code == 0, run.output
    results = pd.read_parquet(run_dir / "results").set_index(Col.ID)
    disordered = results.loc[["LiNaCl.cif", "Li0.75Cl.cif"]]
    assert set(disordered[Col.DISORDER_STRATEGY]) <= {"native", "sample"}
    assert disordered[Col.NATIVE_SPREAD].gt(0).all() and disordered[Col.ENERGY_PER_ATOM].notna().all()
    assert results.loc["LiCl.cif", Col.DISORDER_STRATEGY] == "ordered"
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["native_model"]["teacher"] == "sevennet-0"


def test_a_run_refuses_a_native_model_of_another_teacher_before_it_starts(tmp_path):
    from pipelines.run import native_model
    from pipelines.settings import RunSettings

    settings = RunSettings(
        structures=tmp_path / "s", out=tmp_path / "r", model="chgnet-0.3.0", disorder="auto"
    )
    with pytest.raises(ValueError, match="distilled from sevennet-0"):
        native_model(settings)
    assert native_model(RunSettings(structures=tmp_path / "s", out=tmp_path / "r")) is None  # sample
