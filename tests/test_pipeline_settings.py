"""Run settings (YAML, environment, overrides), partitioned IO, atomic writes and run.json pieces."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pydantic
import pytest
from pymatgen.core import Lattice, Structure

from pipelines.manifest import package_versions
from pipelines.partitions import (
    estimated_costs,
    partition_inputs_sha256,
    plan_partitions,
    read_partition,
    results_table,
    structure_ids,
)
from pipelines.run import config_sha256
from pipelines.rundir import PartitionIdentity, RunDir
from pipelines.settings import RunSettings
from screening.errors import InputError
from screening.io import write_dataset
from screening.schema import RESULTS_SCHEMA, Col
from screening.structures import failed_row, structure_to_row


def test_yaml_config_with_overrides_and_environment(tmp_path, monkeypatch):
    config = tmp_path / "run.yaml"
    config.write_text(
        "structures: data/structures\nout: runs/a\nmodel: chgnet-0.3.0\npartition_size: 4\n"
        "slurm:\n  queue: gpu\n  gpus_per_job: 2\n"
    )
    monkeypatch.setenv("SCREENING_TEMPERATURE_K", "400")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:8786")
    settings = RunSettings.load(config, partition_size=2, workers=None, slurm={"jobs": 3})
    assert settings.science.model == "chgnet-0.3.0"
    assert settings.partition_size == 2  # the command line wins over the file
    assert settings.science.temperature_K == 400.0  # from the environment
    assert settings.scheduler == "tcp://127.0.0.1:8786"
    assert settings.slurm.queue == "gpu" and settings.slurm.gpus_per_job == 2 and settings.slurm.jobs == 3
    assert settings.structures == Path("data/structures")


def test_unknown_keys_and_bad_values_are_refused(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("structures: s\nout: o\npartition_sise: 4\n")
    with pytest.raises(pydantic.ValidationError, match="partition_sise"):
        RunSettings.load(config)
    with pytest.raises(pydantic.ValidationError, match="temperature_K"):
        RunSettings(structures="s", out="o", temperature_K=-5)
    with pytest.raises(pydantic.ValidationError, match="cluster"):
        RunSettings(structures="s", out="o", cluster="kubernetes")
    config.write_text("- a list\n")
    with pytest.raises(InputError, match="YAML mapping"):
        RunSettings.load(config)
    config.write_text("structures: [s\nout: o\n")
    with pytest.raises(InputError, match="not valid YAML at line"):
        RunSettings.load(config)
    with pytest.raises(InputError, match="not found"):
        RunSettings.load(tmp_path / "missing.yaml")


def test_config_identity_follows_result_defining_settings_only():
    a = RunSettings(structures="s", out="o")
    same = RunSettings(structures="s", out="o2", workers=2, device="cpu", max_atoms_per_batch=64)
    assert config_sha256(a, "x") == config_sha256(same, "x")
    assert config_sha256(a, "x") != config_sha256(RunSettings(structures="s", out="o", mobile_ion="Na"), "x")
    assert config_sha256(a, "x") != config_sha256(
        RunSettings(structures="s", out="o", bvse={"cutoff_A": 7}), "x"
    )
    assert config_sha256(a, "x") != config_sha256(a, "other references")


def test_default_conductivity_is_learned_where_the_shipped_model_applies(monkeypatch):
    """Grouped CV says the learned model beats the physics for Li (BENCHMARKS.md): it is the default there,
    and bvse where the model has no say (other ions; meanfield gives it no node features)."""
    assert RunSettings(structures="s", out="o").science.transport_method == "learned"
    assert RunSettings(structures="s", out="o", mobile_ion="na").science.transport_method == "bvse"
    assert RunSettings(structures="s", out="o", disorder="meanfield").science.transport_method == "bvse"
    assert RunSettings(structures="s", out="o", transport_method="auto").science.transport_method == "learned"
    assert RunSettings(structures="s", out="o", transport_method="md").science.transport_method == "md"
    monkeypatch.setenv("SCREENING_MOBILE_ION", "Mg")
    assert RunSettings.load(structures="s", out="o").science.transport_method == "bvse"
    # what a run records is the resolved method: reading it back gives the same settings
    settings = RunSettings(structures="s", out="o")
    assert (
        RunSettings(structures="s", out="o", science=settings.science.as_dict()).science == settings.science
    )


def _rows(n: int) -> list[dict]:
    lattice = Lattice.cubic(4.0)
    rows = []
    for i in range(n):
        structure = Structure(lattice, ["Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5 + 0.01 * i]])
        rows.append(structure_to_row(structure, f"s-{i:03d}", "test"))
    rows.append(failed_row("bad-1", "test", "unreadable CIF"))
    return rows


def test_partitions_are_deterministic_and_read_back(tmp_path):
    path = write_dataset(_rows(11), tmp_path / "structures")
    ids = structure_ids(path)
    assert ids == sorted(ids) and len(ids) == 12
    parts = plan_partitions(ids, 5)
    assert [len(p.ids) for p in parts] == [5, 5, 2]
    assert [i for p in parts for i in p.ids] == ids
    assert plan_partitions(list(ids), 5) == parts
    frame = read_partition(path, parts[1].ids)
    assert frame[Col.ID].tolist() == list(parts[1].ids)
    hashes = partition_inputs_sha256(path, parts)
    assert len(set(hashes)) == 3 and partition_inputs_sha256(path, parts) == hashes
    with pytest.raises(ValueError, match="missing"):
        read_partition(path, ["nope"])
    with pytest.raises(ValueError, match="positive"):
        plan_partitions(ids, 0)


def test_structure_ids_refuses_missing_empty_and_duplicates(tmp_path):
    with pytest.raises(FileNotFoundError, match="screening ingest"):
        structure_ids(tmp_path / "nothing")
    rows = _rows(2)
    rows.append(dict(rows[0]))
    path = write_dataset(rows, tmp_path / "dup")
    with pytest.raises(ValueError, match="duplicate"):
        structure_ids(path)


def test_partition_files_are_atomic_stamped_and_foreign_files_ignored(tmp_path):
    run = RunDir(tmp_path)
    frame = pd.DataFrame([{Col.ID: "a", Col.RUN_ID: "r", Col.STATUS: "ok"}], columns=RESULTS_SCHEMA.names)
    identity = PartitionIdentity("c" * 64, "i" * 64)
    target = run.write_partition(0, results_table(frame), identity)
    run.write_partition(0, results_table(frame), identity)
    assert [p.name for p in target.parent.iterdir()] == [target.name]
    assert run.read_identity(target) == identity
    assert run.read_results()[Col.ID].tolist() == ["a"]
    # a killed writer's temporary is cleaned up and never read; a file of someone else's is ignored
    (target.parent / ".part-00001.parquet.tmp-deadbeef").write_bytes(b"half a file")
    results_table(frame.assign(**{Col.ID: "x"})).to_pandas().to_parquet(target.parent / "part-00007.parquet")
    (target.parent / "notes.txt").write_text("mine")
    ours, foreign = run.scan_results()
    assert ours == {0: identity} and sorted(p.name for p in foreign) == ["notes.txt", "part-00007.parquet"]
    assert run.read_results()[Col.ID].tolist() == ["a"]
    assert not (target.parent / ".part-00001.parquet.tmp-deadbeef").exists()
    bad = frame.assign(**{Col.NSITES: ["many"]})
    with pytest.raises(ValueError, match="nsites"):
        run.write_partition(0, results_table(bad), identity)
    assert run.read_results()[Col.ID].tolist() == ["a"]


def test_results_of_two_settings_are_never_read_as_one_table(tmp_path):
    from pipelines.rundir import RunDirError

    run = RunDir(tmp_path)
    frame = pd.DataFrame([{Col.ID: "a", Col.RUN_ID: "r", Col.STATUS: "ok"}], columns=RESULTS_SCHEMA.names)
    run.write_partition(0, results_table(frame), PartitionIdentity("c1", "i"))
    run.write_partition(1, results_table(frame.assign(id="b")), PartitionIdentity("c2", "i"))
    with pytest.raises(RunDirError, match="different settings"):
        run.read_results()


def test_manifest_round_trip(tmp_path):
    run = RunDir(tmp_path)
    assert run.read_manifest() is None
    run.write_manifest({"run_id": "abc", "counts": {"ok": 3}})
    assert run.read_manifest() == {"run_id": "abc", "counts": {"ok": 3}}
    assert json.loads((tmp_path / "run.json").read_text())["run_id"] == "abc"
    versions = package_versions()
    assert versions["torch"].startswith("2.") and versions["pyarrow"]
    assert not [p for p in os.listdir(tmp_path) if p != "run.json"]


def test_estimated_costs_weigh_sampled_disorder(tmp_path):
    path = write_dataset(_rows(2), tmp_path / "structures")
    parts = plan_partitions(structure_ids(path), 1)
    costs = dict(zip((p.ids[0] for p in parts), estimated_costs(path, parts, n_samples=8), strict=True))
    assert costs == {"bad-1": 0.0, "s-000": 2.0, "s-001": 2.0}
    disordered = Structure(Lattice.cubic(4.0), [{"Li": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    path = write_dataset([structure_to_row(disordered, "d", "test")], tmp_path / "d")
    assert estimated_costs(path, plan_partitions(["d"], 1), n_samples=8) == [16.0]


def test_unknown_science_values_are_refused_with_the_allowed_list():
    with pytest.raises(pydantic.ValidationError, match="'sevennet-0'"):
        RunSettings(structures="s", out="o", model="megnet")
    with pytest.raises(pydantic.ValidationError, match="'Li', 'Na'"):
        RunSettings(structures="s", out="o", mobile_ion="Zz")
    with pytest.raises(pydantic.ValidationError, match="'bvse', 'md' or 'learned'"):
        RunSettings(structures="s", out="o", transport_method="bvs")
    assert RunSettings(structures="s", out="o", mobile_ion="li").science.mobile_ion == "Li"


def test_environment_fills_the_same_object_and_typos_are_warned(monkeypatch):
    monkeypatch.setenv("SCREENING_MODEL", "chgnet-0.3.0")
    monkeypatch.setenv("SCREENING_BVSE__GRID_SPACING_A", "0.3")
    monkeypatch.setenv("SCREENING_MD__TEMPERATURES_K", "[700, 900]")
    monkeypatch.setenv("SCREENING_WORKERS", "3")
    monkeypatch.setenv("SCREENING_WORKRS", "2")
    with pytest.warns(UserWarning, match="SCREENING_WORKRS is not a screening setting"):
        settings = RunSettings.load(structures="s", out="o")
    assert settings.science.model == "chgnet-0.3.0" and settings.workers == 3
    assert settings.science.bvse.grid_spacing_A == 0.3 and settings.science.md.temperatures_K == (
        700.0,
        900.0,
    )
    assert RunSettings.load(structures="s", out="o", model="sevennet-0").science.model == "sevennet-0"


def test_variables_of_the_product_that_are_not_run_settings_are_not_warned_about(monkeypatch, recwarn):
    monkeypatch.setenv("SCREENING_CACHE_DIR", "/tmp/somewhere")  # where the batch calibration is kept
    monkeypatch.setenv("SCREENING_RUN_DIR", "runs/x")
    RunSettings.load(structures="s", out="o")
    assert not [w for w in recwarn if "not a screening setting" in str(w.message)]


def test_the_clean_up_optimizer_is_a_setting_checked_at_load():
    assert RunSettings(structures="s", out="o").science.cleanup.optimizer == "FIRE"
    assert (
        RunSettings(structures="s", out="o", cleanup={"optimizer": "BFGS"}).science.cleanup.optimizer
        == "BFGS"
    )
    with pytest.raises((InputError, pydantic.ValidationError), match="optimizer"):
        RunSettings(structures="s", out="o", cleanup={"optimizer": "LBFGS"})
