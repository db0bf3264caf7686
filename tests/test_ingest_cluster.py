"""``screening ingest --source files`` on a Dask cluster: the same table as in one process, chunks that
resume, and a worker killed mid-ingest that loses no row."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.ingest import ingest_files_on_cluster, plan_file_chunks, staging_dir
from pipelines.settings import RunSettings
from screening.io import read_structures, write_dataset
from screening.schema import Col
from screening.sources.files import discover_files, iter_file_rows

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def cifs(tmp_path_factory, obelix_dir) -> Path:
    """24 published CIFs (disordered, noisy) plus an unreadable one."""
    folder = tmp_path_factory.mktemp("cifs")
    for path in sorted((obelix_dir / "cifs").glob("*.cif"))[:24]:
        shutil.copy(path, folder / path.name)
    (folder / "broken.cif").write_text("data_x\n_cell_length_a 5\n")
    return folder


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by id, nested arrays as tuples (comparable with ==)."""
    frame = frame.sort_values(Col.ID).reset_index(drop=True)
    return frame.map(lambda v: _nested_tuple(v) if hasattr(v, "__len__") and not isinstance(v, str) else v)


def _nested_tuple(value):
    return tuple(_nested_tuple(v) if hasattr(v, "__len__") and not isinstance(v, str) else v for v in value)


def test_cli_ingest_on_a_local_cluster_equals_one_process(cifs, tmp_path):
    from pipelines.cli import app

    out = tmp_path / "structures"
    args = ["ingest", "--source", "files", str(cifs), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--cluster", "local", "--workers", "2", "--chunk-files", "4"])
    assert result.exit_code == 0, result.output
    assert "25 inputs in 7 chunks, 0 already done" in result.output
    assert not staging_dir(out).exists()  # the chunk files are gone once the table is written
    in_process = write_dataset(list(iter_file_rows([cifs])), tmp_path / "in-process", source="files")
    table = read_structures(out)
    assert len(table) == 25 and table[Col.ID].is_unique
    failed = table.set_index(Col.ID).loc["broken.cif"]
    assert failed[Col.STATUS] == "failed" and failed[Col.ERROR]
    pd.testing.assert_frame_equal(comparable(table), comparable(read_structures(in_process)))


def test_a_rerun_parses_only_the_chunks_not_written(cifs, tmp_path):
    out = tmp_path / "structures"
    settings = RunSettings(structures=out, out=out, cluster="local", workers=1, progress=False)
    lines: list[str] = []
    first = ingest_files_on_cluster([cifs], out, settings, chunk_files=5, echo=lines.append)
    chunks = sorted(staging_dir(out).glob("*.parquet"))
    assert len(chunks) == 5
    chunks[2].unlink()  # as if the ingest had been killed before that chunk was written
    written = {p.name: p.stat().st_mtime_ns for p in chunks if p.exists()}
    again = ingest_files_on_cluster([cifs], out, settings, chunk_files=5, echo=lines.append)
    assert lines[-1].endswith("5 chunks, 4 already done")
    assert {
        p.name: p.stat().st_mtime_ns for p in staging_dir(out).glob("*.parquet") if p.name in written
    } == written
    assert [r[Col.ID] for r in again] == [r[Col.ID] for r in first]
    # a changed file makes its chunk new
    target = sorted(cifs.glob("*.cif"))[0]
    keys_before = [chunk.key for chunk in plan_file_chunks(discover_files([cifs]), 5)]
    os.utime(target, ns=(time.time_ns(), time.time_ns()))
    keys_after = [chunk.key for chunk in plan_file_chunks(discover_files([cifs]), 5)]
    assert keys_before[0] != keys_after[0] and keys_before[1:] == keys_after[1:]


def ingest_killing_a_worker(out: Path, ingest) -> list[dict]:
    """Run ``ingest(settings)`` on a 2-worker LocalCluster and SIGKILL one worker as soon as the first
    chunk file is staged; the rows it returned."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        settings = RunSettings(structures=out, out=out, scheduler=cluster.scheduler_address, progress=False)
        outcome: dict = {}
        thread = threading.Thread(target=lambda: outcome.update(rows=ingest(settings)))
        thread.start()
        killed = None
        deadline = time.monotonic() + 300
        while thread.is_alive() and time.monotonic() < deadline:
            if staging_dir(out).is_dir() and any(staging_dir(out).glob("*.parquet")):
                killed = next(iter(cluster.workers.values())).process.process.pid
                os.kill(killed, signal.SIGKILL)
                break
            time.sleep(0.05)
        thread.join(timeout=300)
    assert killed is not None, "the ingest ended before a worker could be killed"
    return outcome["rows"]


def test_a_worker_killed_mid_ingest_loses_no_row(cifs, tmp_path):
    out = tmp_path / "structures"
    rows = ingest_killing_a_worker(
        out,
        lambda settings: ingest_files_on_cluster([cifs], out, settings, chunk_files=1, echo=lambda _: None),
    )
    assert len(rows) == 25 and len({r[Col.ID] for r in rows}) == 25
    assert sum(r[Col.STATUS] == "ok" for r in rows) == 24


# --- Materials Project, against the fake API on loopback ------------------------------------------------


@pytest.fixture
def mp_env(monkeypatch):
    from mp_server import TEST_API_KEY, FakeMPServer, default_state

    with FakeMPServer(default_state()) as server:
        monkeypatch.setenv("MP_API_KEY", TEST_API_KEY)
        monkeypatch.setenv("MP_API_ENDPOINT", server.endpoint)
        yield server


@pytest.mark.network
def test_mp_ingest_on_a_cluster_equals_one_process_within_one_request_budget(mp_env, tmp_path):
    from mp_server import SUMMARY_PATH

    from pipelines.cli import app

    mp_env.state.delay_s = 0.3  # requests overlap unless the budget keeps them apart
    args = ["ingest", "--source", "mp", "--elements", "Li", "--max-e-above-hull-eV", "0.1"]
    clustered = CliRunner().invoke(
        app,
        [*args, "--out", str(tmp_path / "c" / "structures"), "--cluster", "local", "--workers", "2"]
        + ["--chunk-ids", "1", "--mp-budget", "1"],
    )
    assert clustered.exit_code == 0, clustered.output
    assert "Materials Project: 5 materials match" in clustered.output
    assert mp_env.state.max_in_flight == 1  # 2 workers, 5 chunks, one request at a time
    summary = mp_env.state.data_requests(SUMMARY_PATH)
    assert "material_id" in summary[0].params.get("_fields", "")  # the cheap pass first
    assert {r.params.get("material_ids") for r in summary[1:]} >= {"mp-1138", "mp-2251"}  # one id a chunk
    one_process = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "p" / "structures")])
    assert one_process.exit_code == 0, one_process.output
    a, b = read_structures(tmp_path / "c" / "structures"), read_structures(tmp_path / "p" / "structures")
    pd.testing.assert_frame_equal(comparable(a), comparable(b))
    assert (tmp_path / "c" / "structures_references.parquet").is_file()
    assert not staging_dir(tmp_path / "c" / "structures").exists()


@pytest.mark.network
def test_mp_ingest_survives_a_worker_killed_mid_ingest(mp_env, tmp_path):
    from pipelines.ingest import ingest_mp_on_cluster
    from screening.sources.mp import MPClientOptions, MPQuery

    mp_env.state.delay_s = 0.5
    out = tmp_path / "structures"
    rows = ingest_killing_a_worker(
        out,
        lambda settings: ingest_mp_on_cluster(
            MPQuery(elements=["Li"]), out, settings, MPClientOptions(), chunk_ids=1, echo=lambda _: None
        ),
    )
    ids = sorted(r[Col.ID] for r in rows)
    assert ids == sorted(["mp-1138", "mp-135", "mp-1960", "mp-2251", "mp-22526"])
    assert all(r[Col.STATUS] == "ok" for r in rows)
