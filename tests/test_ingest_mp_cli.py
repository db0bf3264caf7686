"""`screening ingest --source mp` end to end: the real mp-api client against the fake MP API on loopback."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from mp_server import TEST_API_KEY, FakeMPServer, default_state
from typer.testing import CliRunner

from pipelines.cli import app
from screening.io import read_structures
from screening.schema import Col

pytestmark = pytest.mark.network


def test_ingest_mp_writes_structures_and_hull_references(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "structures"
    with FakeMPServer(default_state()) as server:
        monkeypatch.setenv("MP_API_KEY", TEST_API_KEY)
        monkeypatch.setenv("MP_API_ENDPOINT", server.endpoint)
        result = CliRunner().invoke(
            app,
            [
                "ingest",
                "--source",
                "mp",
                "--elements",
                "Li",
                "--max-e-above-hull-eV",
                "0.1",
                "--out",
                str(out),
            ],
        )
    assert result.exit_code == 0, result.output
    table = read_structures(out)
    assert len(table) > 0 and set(table[Col.SOURCE]) == {"mp"}
    assert table[Col.MP_ID].notna().all()
    references = pq.read_table(tmp_path / "structures_references.parquet")
    assert references.num_rows > 0
    assert "reference entries for the hull" in result.output


def test_ingest_mp_without_filters_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MP_API_KEY", TEST_API_KEY)
    result = CliRunner().invoke(app, ["ingest", "--source", "mp", "--out", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "ingest failed" in result.output and "filter" in result.output
