"""Run settings (YAML, environment, overrides), partitioned IO, atomic writes and run.json pieces."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pydantic
import pytest
from pymatgen.core import Lattice, Structure

from pipelines.manifest import package_versions, read_manifest, write_manifest
from pipelines.partitions import (
    estimated_costs,
    ids_fingerprint,
    plan_partitions,
    read_partition,
    read_results,
    remove_stale_temporaries,
    results_table,
    structure_ids,
    write_atomic,
)
from pipelines.run import compute_run_id, run_screening
from pipelines.settings import RunSettings
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
    settings = RunSettings.from_yaml(config, partition_size=2, workers=None, slurm={"jobs": 3})
    assert settings.model == "chgnet-0.3.0"
    assert settings.partition_size == 2  # the command line wins over the file
    assert settings.temperature_K == 400.0  # from the environment
    assert settings.scheduler == "tcp://127.0.0.1:8786"
    assert settings.slurm.queue == "gpu" and settings.slurm.gpus_per_job == 2 and settings.slurm.jobs == 3
    assert settings.structures == Path("data/structures")


def test_unknown_keys_and_bad_values_are_refused(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("structures: s\nout: o\npartition_sise: 4\n")
    with pytest.raises(pydantic.ValidationError, match="partition_sise"):
        RunSettings.from_yaml(config)
    with pytest.raises(pydantic.ValidationError, match="temperature_K"):
        RunSettings(structures="s", out="o", temperature_K=-5)
    with pytest.raises(pydantic.ValidationError, match="cluster"):
        RunSettings(structures="s", out="o", cluster="kubernetes")
    config.write_text("- a list\n")
    with pytest.raises(ValueError, match="YAML mapping"):
        RunSettings.from_yaml(config)


def test_run_id_follows_result_defining_settings_only():
    a = RunSettings(structures="s", out="o")
    assert compute_run_id(a, "x") == compute_run_id(RunSettings(structures="s", out="o2", workers=2), "x")
    assert compute_run_id(a, "x") != compute_run_id(
        RunSettings(structures="s", out="o", mobile_ion="Na"), "x"
    )
    assert compute_run_id(a, "x") != compute_run_id(a, "y")


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
    assert len(ids_fingerprint(ids)) == 64 and ids_fingerprint(ids) != ids_fingerprint(ids[:-1])
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


def test_atomic_write_replaces_and_leaves_no_temporaries(tmp_path):
    frame = pd.DataFrame([{Col.ID: "a", Col.RUN_ID: "r", Col.STATUS: "ok"}], columns=RESULTS_SCHEMA.names)
    target = tmp_path / "results" / "part-00000.parquet"
    write_atomic(results_table(frame), target)
    write_atomic(results_table(frame), target)
    assert [p.name for p in target.parent.iterdir()] == [target.name]
    results = read_results(tmp_path)
    assert results[Col.ID].tolist() == ["a"]
    # a killed writer's temporary is cleaned up, and never read as results
    (target.parent / ".part-00001.parquet.tmp-deadbeef").write_bytes(b"half a file")
    assert read_results(tmp_path)[Col.ID].tolist() == ["a"]
    assert remove_stale_temporaries(target.parent) == 1
    bad = frame.assign(**{Col.NSITES: ["many"]})
    with pytest.raises(ValueError, match="nsites"):
        write_atomic(results_table(bad), target)
    assert read_results(tmp_path)[Col.ID].tolist() == ["a"]
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_manifest_round_trip(tmp_path):
    assert read_manifest(tmp_path) is None
    write_manifest(tmp_path, {"run_id": "abc", "counts": {"ok": 3}})
    assert read_manifest(tmp_path) == {"run_id": "abc", "counts": {"ok": 3}}
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


@pytest.mark.slow  # importing the model registry imports sevenn and chgnet
def test_unknown_model_is_refused_before_any_work(tmp_path):
    path = write_dataset(_rows(1), tmp_path / "structures")
    with pytest.raises(ValueError, match="unknown model 'megnet'.*sevennet-0"):
        run_screening(RunSettings(structures=path, out=tmp_path / "run", model="megnet"))
    assert not (tmp_path / "run").exists()
