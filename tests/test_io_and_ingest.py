"""Parquet datasets: explicit schema with units and version, hash-bucket partitions, pandas and dask readers;
and the `screening ingest` command end to end."""

from __future__ import annotations

import json
from pathlib import Path

import dask.dataframe as dd
import pandas as pd
from pymatgen.core import Structure
from typer.testing import CliRunner

from pipelines.cli import app
from screening.io import read_structures, table_metadata, write_dataset
from screening.schema import SCHEMA_VERSION, Col
from screening.structures import failed_row, row_to_structure, structure_to_row


def test_dataset_is_partitioned_by_bucket_and_reads_back(
    tmp_path: Path, disordered_rocksalt: Structure
) -> None:
    rows = [structure_to_row(disordered_rocksalt, f"s{i}", "test") for i in range(40)]
    rows.append(failed_row("broken", "test", "unparsable CIF"))
    out = write_dataset(rows, tmp_path / "structures")
    buckets = {p.name for p in out.iterdir() if p.is_dir()}
    assert len(buckets) > 4 and all(name.startswith("bucket=") for name in buckets)
    assert not any(p.name.startswith("chemical_system") for p in out.iterdir())

    table = read_structures(out)
    assert list(table[Col.ID]) == sorted(r[Col.ID] for r in rows)
    assert (table[Col.STATUS] == "failed").sum() == 1
    ok = table[table[Col.STATUS] == "ok"].iloc[0].to_dict()
    assert row_to_structure(ok) == disordered_rocksalt

    assert len(pd.read_parquet(out)) == 41
    assert len(dd.read_parquet(out).compute()) == 41

    meta = table_metadata(out)
    assert meta["schema_version"] == SCHEMA_VERSION
    assert meta["units"][Col.CARTESIAN_SITE_POSITIONS] == "angstrom"


def test_rewriting_replaces_the_dataset(tmp_path: Path, rocksalt_lif: Structure) -> None:
    write_dataset([structure_to_row(rocksalt_lif, f"a{i}", "test") for i in range(10)], tmp_path / "t")
    write_dataset([structure_to_row(rocksalt_lif, "only", "test")], tmp_path / "t")
    assert list(read_structures(tmp_path / "t")[Col.ID]) == ["only"]


def test_ingest_files_command(
    tmp_path: Path, rocksalt_lif: Structure, disordered_rocksalt: Structure
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "lif.json").write_text(json.dumps(rocksalt_lif.as_dict()))
    (inputs / "mixed.json").write_text(json.dumps(disordered_rocksalt.as_dict()))
    (inputs / "bad.cif").write_text("not a cif")
    out = tmp_path / "structures"
    result = CliRunner().invoke(
        app, ["ingest", "--source", "files", str(inputs), "--out", str(out), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "ok: 2" in result.output and "failed: 1" in result.output and "disordered: 1" in result.output
    assert "bad.cif" in result.output
    assert len(read_structures(out)) == 3


def test_ingest_files_without_paths_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ingest", "--source", "files", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0
    assert "needs at least one file" in result.output
