"""Nothing lost, nothing stale, nothing mixed: the output folder of ingest, the run directory's lock, and
real runs whose input or settings changed, on a real LocalCluster."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pipeline_inputs import good_structures, structure_rows, write_structures
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.rundir import RunDir, RunDirError, RunDirLocked
from screening.io import write_dataset
from screening.schema import Col
from screening.structures import structure_to_row

# --- ingest never overwrites what is not its own -----------------------------------------------------


def test_ingest_refuses_a_folder_of_user_files_and_leaves_them(tmp_path):
    cifs = tmp_path / "mycifs"
    cifs.mkdir()
    good_structures()["lif"].to(filename=str(cifs / "LiF.cif"))
    before = sorted(p.name for p in cifs.iterdir())
    result = CliRunner().invoke(
        app, ["ingest", "--source", "files", str(cifs), "--out", str(cifs), "--workers", "1"]
    )
    assert result.exit_code == 2
    assert "holds other files" in result.output and "nothing was written" in result.output
    assert sorted(p.name for p in cifs.iterdir()) == before


def test_ingest_refuses_a_file_as_output(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    result = CliRunner().invoke(app, ["ingest", "--source", "bundled", "--out", str(target)])
    assert result.exit_code == 2 and "is a file" in result.output
    assert target.read_text() == "mine"


def test_ingest_replaces_its_own_table_and_fills_an_empty_folder(tmp_path):
    out = tmp_path / "structures"
    out.mkdir()
    assert CliRunner().invoke(app, ["ingest", "--source", "bundled", "--out", str(out)]).exit_code == 0
    again = CliRunner().invoke(app, ["ingest", "--source", "bundled", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["structures"]  # no temporaries left


# --- the lock ----------------------------------------------------------------------------------------


def test_a_second_holder_is_refused_with_the_holder_named(tmp_path):
    run = RunDir(tmp_path / "run")
    with run.lock():
        with pytest.raises(RunDirLocked, match=f"pid {os.getpid()}"), run.lock():
            pass
        assert run.lock_path.exists()
    assert not run.lock_path.exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    run = RunDir(tmp_path / "run")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run.path.mkdir(parents=True)
    import json
    import socket

    run.lock_path.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "since": 0}))
    with run.lock():
        assert json.loads(run.lock_path.read_text())["pid"] == os.getpid()


def test_the_lock_waits_for_its_holder(tmp_path):
    run = RunDir(tmp_path / "run")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import time; from pipelines.rundir import RunDir\nwith RunDir({str(run.path)!r}).lock(): time.sleep(2)",
        ]
    )
    deadline = time.monotonic() + 30
    while not run.lock_path.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    start = time.monotonic()
    with run.lock(wait_s=30, poll_s=0.1):
        waited = time.monotonic() - start
    holder.wait(timeout=30)
    assert waited > 0.5


# --- real runs ---------------------------------------------------------------------------------------


def _settings(structures: Path, out: Path, **kwargs):
    from pipelines.settings import RunSettings

    values = {"n_samples": 2, "partition_size": 2, "progress": False, "cluster": "local", "workers": 1}
    values.update(kwargs)
    return RunSettings(structures=structures, out=out, device="cpu", **values)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_changed_input_is_recomputed_other_settings_refused_foreign_files_ignored(tmp_path):
    from pipelines.run import run_screening

    structures = write_structures(tmp_path / "structures")
    run_dir = tmp_path / "run"
    first = run_screening(_settings(structures, run_dir))
    assert first.complete and first.n_partitions == 4

    # the user edits LiF into NaCl and re-ingests: exactly that partition is recomputed
    rows = structure_rows()
    index = next(i for i, row in enumerate(rows) if row[Col.ID] == "t-lif")
    rows[index] = structure_to_row(good_structures()["nacl"], "t-lif", "test")
    write_dataset(rows, structures, source="test")
    second = run_screening(_settings(structures, run_dir))
    assert second.complete and second.n_partitions_stale == 1 and second.n_partitions_skipped == 3
    results = RunDir(run_dir).read_results().set_index(Col.ID)
    assert results.loc["t-lif", Col.CHEMICAL_FORMULA_REDUCED] == "ClNa"
    assert results.loc["t-lif", Col.STATUS] == "not applicable"  # no Li any more

    # a file of someone else's in results/ is reported and ignored, never read
    stray = RunDir(run_dir).results_dir / "part-00042.parquet"
    stray.write_bytes((RunDir(run_dir).results_file(0)).read_bytes()[:100])
    third = run_screening(_settings(structures, run_dir))
    assert third.n_screened == 0 and str(stray) in third.ignored_files and stray.exists()
    assert len(RunDir(run_dir).read_results()) == 8

    # other settings are refused, with or without run.json, and nothing is mixed
    with pytest.raises(RunDirError, match="other settings"):
        run_screening(_settings(structures, run_dir, temperature_K=600))
    RunDir(run_dir).manifest_path.unlink()
    with pytest.raises(RunDirError, match="other settings"):
        run_screening(_settings(structures, run_dir, temperature_K=600))
    assert set(RunDir(run_dir).read_results()[Col.TEMPERATURE]) == {300.0}
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--structures",
            str(structures),
            "--out",
            str(run_dir),
            "--temperature-K",
            "600",
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 2 and "other settings" in result.output


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_concurrent_runs_on_one_directory(tmp_path):
    from pipelines.run import run_screening

    structures = write_structures(tmp_path / "structures")
    run_dir = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from pipelines.run import run_screening
        from pipelines.settings import RunSettings
        run_screening(RunSettings(structures=Path({str(structures)!r}), out=Path({str(run_dir)!r}), n_samples=2,
                                  partition_size=2, progress=False, cluster="local", workers=1, device="cpu"))
        """
    )
    first = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[1])
    try:
        deadline = time.monotonic() + 120
        while not RunDir(run_dir).lock_path.exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(RunDirLocked, match="in use by pid"):
            run_screening(_settings(structures, run_dir))
        assert first.wait(timeout=600) == 0
    finally:
        if first.poll() is None:
            first.kill()
    waited = run_screening(_settings(structures, run_dir, lock_wait_s=5))
    assert waited.complete and waited.n_screened == 0
    attempts = RunDir(run_dir).read_manifest()["attempts"]
    assert [a["status"] for a in attempts] == ["complete", "complete"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_cell_above_the_size_cap_fails_with_the_reason_and_workers_have_a_memory_limit(tmp_path):
    from distributed import Client

    from pipelines.cluster import open_client, worker_memory_limit_bytes
    from pipelines.run import run_screening

    big = good_structures()["lif"] * (3, 3, 3)  # 216 sites
    rows = [structure_to_row(big, "big", "test"), structure_to_row(good_structures()["lif"], "small", "test")]
    structures = write_dataset(rows, tmp_path / "structures", source="test")
    summary = run_screening(_settings(structures, tmp_path / "run", max_sites_per_structure=64))
    results = RunDir(tmp_path / "run").read_results().set_index(Col.ID)
    assert results.loc["big", Col.STATUS] == "failed" and results.loc["big", Col.STAGE] == "input"
    assert f"{len(big)} sites exceed the cap of 64" in results.loc["big", Col.ERROR]
    assert results.loc["small", Col.STATUS] == "ok" and summary.complete

    settings = _settings(structures, tmp_path / "other", workers=2)
    with open_client(settings) as (client, _):
        assert isinstance(client, Client)
        limits = {w["memory_limit"] for w in client.scheduler_info(n_workers=-1)["workers"].values()}
    assert limits == {worker_memory_limit_bytes(2, settings.memory_limit_fraction)} and 0 not in limits
