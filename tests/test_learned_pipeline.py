"""The learned conductivity in the pipeline: the feature partition (invariances), the ``learned``
transport method on ordered and disordered rows, and ``screening train conductivity`` end to end."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter
from typer.testing import CliRunner

from screening.config import ScienceConfig
from screening.models import load_model
from screening.models.ensemble import EnsembleOptions
from screening.schema import STATUS_FAILED, STATUS_OK, Col
from screening.stages import conductivity_features_partition, screen_partition
from screening.structures import structure_to_row
from screening.thermo import load_reference_entries
from screening.transport.descriptors import DESCRIPTOR_NAMES
from screening.transport.learned import FeatureSet, LearnedConductivityModel
from screening.transport.learned_training import LabelledFeatures, TrainingOptions, fit_conductivity_model


@pytest.fixture(scope="module")
def sevennet():
    return load_model("sevennet-0", device="cpu")


def _li3n() -> Structure:
    return Structure.from_spacegroup(
        "P6/mmm",
        Lattice.hexagonal(3.648, 3.875),
        ["N", "Li", "Li"],
        [[0, 0, 0], [0, 0, 0.5], [1 / 3, 2 / 3, 0]],
    )


def _li2o() -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.61), ["Li", "O"], [[0.25, 0.25, 0.25], [0, 0, 0]]
    )


def _mixed_rocksalt() -> Structure:
    """Rock salt (Li0.5Na0.5)F: a neutral solid solution on the cation site."""
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.3), [{"Li": 0.5, "Na": 0.5}, "F"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def _rows(structures: dict[str, Structure]) -> pd.DataFrame:
    return pd.DataFrame([structure_to_row(s, key, "files") for key, s in structures.items()])


def _features(frame: pd.DataFrame) -> np.ndarray:
    return np.array([[row[name] for name in DESCRIPTOR_NAMES] for _, row in frame.iterrows()])


LEARNED = ScienceConfig(transport_method="learned", device="cpu", n_samples=2)


def test_features_are_invariant_under_rotation_translation_permutation_and_supercell(sevennet):
    base = _li2o()
    rotated = Structure(
        Lattice(base.lattice.matrix @ np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]])),
        base.species,
        base.frac_coords,
    )
    shifted = base.copy()
    shifted.translate_sites(list(range(len(shifted))), [0.13, 0.07, 0.31])
    permuted = Structure.from_sites(list(reversed(base.sites)))
    supercell = base * (2, 1, 1)
    frame = conductivity_features_partition(
        _rows({"base": base, "rot": rotated, "shift": shifted, "perm": permuted, "super": supercell}),
        LEARNED,
        sevennet,
    )
    assert (frame[Col.STATUS] == STATUS_OK).all(), frame[Col.ERROR].tolist()
    descriptors = _features(frame)
    assert np.all(np.isfinite(descriptors))
    # barriers come from a real-space grid whose points move with the cell: 0.02 eV, and the physics
    # log10 sigma (0.02 eV is 0.34 decades at room temperature) and carriers (E_F / 2) with them
    on_grid = {
        "ea_migration_eV": 0.02,
        "ea_1d_eV": 0.02,
        "ea_2d_eV": 0.02,
        "ea_3d_eV": 0.02,
        "ea_effective_eV": 0.02,
        "defect_formation_eV": 0.02,
        "log10_carrier_density_cm3": 0.2,
        "log10_sigma_physics_S_per_cm": 0.4,
    }
    grid = [DESCRIPTOR_NAMES.index(n) for n in on_grid]
    tolerance = np.array(list(on_grid.values()))
    others = [i for i in range(len(DESCRIPTOR_NAMES)) if i not in grid]
    for i in range(1, len(frame)):
        assert np.all(np.abs(descriptors[i, grid] - descriptors[0, grid]) <= tolerance), frame[Col.ID][i]
        assert np.allclose(descriptors[i, others], descriptors[0, others], rtol=1e-6, atol=1e-6), frame[
            Col.ID
        ][i]
        node = np.asarray(frame["node_features"][i])
        assert np.allclose(node, np.asarray(frame["node_features"][0]), atol=1e-4), frame[Col.ID][i]
    assert frame.attrs["node_feature_layers"] == list(sevennet.node_feature_layers)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, sevennet):
    """A small ensemble trained on random features of the potential's real layout."""
    rng = np.random.default_rng(0)
    n, layers = 30, list(sevennet.node_feature_layers)
    data = LabelledFeatures(
        ids=np.array([f"e{i}" for i in range(n)]),
        descriptors=rng.normal(size=(n, len(DESCRIPTOR_NAMES))),
        node_features=rng.normal(size=(n, len(layers) * 2 * 128)).astype(np.float32),
        table_layers=layers,
        log10_sigma=rng.uniform(-10, -2, n),
        upper_bound=np.zeros(n, dtype=bool),
        ea_eV=np.full(n, np.nan),
        temperature_K=np.full(n, 298.15),
        groups={},
    )
    options = TrainingOptions(
        features=FeatureSet(n_components=2), hidden=8, n_hidden_layers=1, ensemble=EnsembleOptions(3, 20)
    )
    path = tmp_path_factory.mktemp("model") / "tiny"
    fit_conductivity_model(data, options).save(path)
    return path


def test_learned_transport_fills_its_columns_for_ordered_and_disordered_rows(sevennet, tiny_model_dir):
    rows = _rows({"li3n": _li3n(), "li-na-f": _mixed_rocksalt()})
    config = LEARNED.model_copy(update={"conductivity_model": str(tiny_model_dir)})
    references = load_reference_entries(None)
    learned = screen_partition(rows, config, sevennet, references=references)
    physics = screen_partition(
        rows,
        config.model_copy(update={"transport_method": "bvse", "frenkel_method": "bvse"}),
        sevennet,
        references=references,
    )
    assert (learned[Col.STATUS] == STATUS_OK).all(), learned[Col.ERROR].tolist()
    assert (learned[Col.EA_METHOD] == "learned").all()
    assert learned[Col.LOG10_SIGMA_PHYSICS].tolist() == pytest.approx(physics[Col.LOG10_SIGMA].tolist())
    assert learned[Col.EA_MIGRATION].tolist() == pytest.approx(physics[Col.EA_MIGRATION].tolist())
    assert learned[Col.P_SUPERIONIC].between(0, 1).all()
    assert (learned[Col.LOG10_SIGMA_STD] >= learned[Col.LOG10_SIGMA_EPISTEMIC_STD]).all()
    assert learned[Col.CONDUCTIVITY_OUT_OF_DOMAIN].isin([True, False]).all()
    assert all("learned model" in notes[-1] for notes in learned[Col.TRANSPORT_NOTES])
    assert physics[Col.P_SUPERIONIC].isna().all()


def test_learned_transport_needs_sampled_configurations(sevennet, tiny_model_dir):
    disordered = _mixed_rocksalt()
    config = LEARNED.model_copy(update={"conductivity_model": str(tiny_model_dir), "disorder": "meanfield"})
    out = screen_partition(
        _rows({"d": disordered}), config, sevennet, references=load_reference_entries(None)
    )
    assert out[Col.STATUS][0] == STATUS_FAILED
    assert "use 'sample'" in out[Col.ERROR][0]


def test_unknown_conductivity_model_is_a_clear_error(sevennet):
    config = LEARNED.model_copy(update={"conductivity_model": "/nonexistent/model"})
    with pytest.raises(Exception, match="screening train conductivity"):
        screen_partition(_rows({"a": _li3n()}), config, sevennet, references=load_reference_entries(None))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_train_command_writes_a_model_that_a_run_uses(tmp_path):
    from pipelines.cli import app
    from screening.sources.bundled import iter_bundled_rows
    from screening.structures import row_to_structure

    cifs = tmp_path / "cifs"
    cifs.mkdir()
    rows = [r for r in iter_bundled_rows() if r[Col.STATUS] == STATUS_OK and "Li" in r[Col.ELEMENTS]]
    rows = sorted(rows, key=lambda r: r[Col.NSITES])[:10]
    lines = ["id,log10_sigma,sigma_is_upper_bound,activation_energy_eV,family"]
    for k, row in enumerate(rows):
        key = f"s{k:02d}"
        CifWriter(row_to_structure(row)).write_file(cifs / f"{key}.cif")
        lines.append(f"{key},{-3 - k * 0.7:.2f},{int(k == 9)},{0.3 + 0.02 * k if k % 2 else ''},fam{k % 5}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "labels.csv").with_name("notes.txt").write_text("mine")
    out = tmp_path / "model"
    args = ["train", "conductivity", "--labels", str(tmp_path / "labels.csv"), "--structures", str(cifs)]
    args += ["--out", str(out), "--members", "2", "--epochs", "20", "--workers", "2", "--partition-size", "4"]
    runner = CliRunner()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "grouped 5-fold CV by family" in result.output
    report = json.loads((out / "training_report.json").read_text())
    assert report["n_used"] + len(report["left_out"]) == 10
    assert "spread calibrated on 5-fold CV by family" in result.output
    assert report["calibration"]["grouping"] == "family" and report["calibration"]["log10_sigma"] > 0
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["constructor"]["n_inputs"] == len(DESCRIPTOR_NAMES) + 8
    assert set(manifest["metadata"]["manifest"]["cross_validation"]) == {"family", "chemical_system"}
    n_feature_files = len(list((out / "features").iterdir()))
    # a rerun reuses every feature partition
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "3 of 3 partitions already computed" in again.output
    assert len(list((out / "features").iterdir())) == n_feature_files
    # a folder holding the user's files is refused untouched
    refused = runner.invoke(app, [*args[:-8], "--out", str(tmp_path)])
    assert refused.exit_code == 2 and "holds other files" in refused.output
    # the run uses the trained model
    run_dir = tmp_path / "run"
    run = runner.invoke(
        app,
        [
            "run",
            "--structures",
            str(out / "structures"),
            "--out",
            str(run_dir),
            "--transport-method",
            "learned",
            "--conductivity-model",
            str(out),
            "--workers",
            "1",
            "--no-progress",
        ],
    )
    assert run.exit_code == 0, run.output
    results = pd.read_parquet(run_dir / "results")
    ok = results[results[Col.STATUS] == STATUS_OK]
    assert len(ok) >= 8 and (ok[Col.EA_METHOD] == "learned").all()
    assert ok[Col.P_SUPERIONIC].notna().all()


def test_run_identity_includes_the_learned_model_weights(tmp_path, tiny_model_dir):
    from pipelines.run import conductivity_model, config_sha256
    from pipelines.settings import RunSettings

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    settings = RunSettings(
        structures=tmp_path / "s",
        out=tmp_path / "r",
        transport_method="learned",
        conductivity_model=str(copy),
    )
    identity = conductivity_model(settings)
    assert identity["weights_sha256"] and identity["path"] == str(copy.resolve())
    before = config_sha256(settings, "refs")
    model = LearnedConductivityModel.load(copy)
    with torch.no_grad():
        model.members[0].head.bias.add_(0.1)
    model.save(copy)
    assert config_sha256(settings, "refs") != before  # retrained in place: another run
    physics = RunSettings(structures=tmp_path / "s", out=tmp_path / "r", transport_method="bvse")
    assert conductivity_model(physics) is None


def test_the_shipped_model_loads_by_name_and_ranks_li3n_above_lif(sevennet):
    """The model shipped as package data rebuilds from its folder and predicts through the pipeline; a
    fast ion conductor (Li3N, measured ~1e-3 S/cm) comes out above rock-salt LiF (~1e-9 S/cm or less)."""
    from screening.transport.learned import conductivity_model_identity, load_conductivity_model

    model = load_conductivity_model("conductivity-obelix")
    assert len(model.members) >= 5 and model.features.feature_model == "sevennet-0"
    assert conductivity_model_identity("conductivity-obelix")["cross_validation"]
    assert model.std_scale["log10_sigma"] > 1.0  # calibrated: the raw ensemble is over-confident
    lif = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.03), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    out = screen_partition(
        _rows({"li3n": _li3n(), "lif": lif}), LEARNED, sevennet, references=load_reference_entries(None)
    )
    assert (out[Col.STATUS] == STATUS_OK).all(), out[Col.ERROR].tolist()
    li3n, lif_row = out.iloc[0], out.iloc[1]
    assert li3n[Col.LOG10_SIGMA] > lif_row[Col.LOG10_SIGMA]
    assert li3n[Col.P_SUPERIONIC] > lif_row[Col.P_SUPERIONIC]
