"""End-to-end runs on a real LocalCluster (worker processes on loopback) with the real pretrained model.

A clean run equals calling ``screen_partition`` directly; a run killed part way and rerun ends with the
same tables; bad input rows become failed rows with their stage and reason, and the command exits 0.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from pipeline_inputs import assert_same_results, write_structures
from typer.testing import CliRunner

from pipelines.rank import rank_run
from pipelines.run import RunDirError, run_screening
from pipelines.rundir import RunDir
from pipelines.settings import RunSettings
from screening.io import read_structures
from screening.schema import RANKED_SCHEMA, Col, read_metadata

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

N_GOOD, N_BAD = 6, 2


def make_settings(structures: Path, out: Path, **kwargs) -> RunSettings:
    values = {"n_samples": 2, "partition_size": 2, "progress": False, "cluster": "local", "device": "cpu"}
    values.update(kwargs)
    return RunSettings(structures=structures, out=out, **values)


@pytest.fixture(scope="module")
def structures(tmp_path_factory) -> Path:
    return write_structures(tmp_path_factory.mktemp("input") / "structures")


@pytest.fixture(scope="module")
def clean_run(structures, tmp_path_factory):
    settings = make_settings(structures, tmp_path_factory.mktemp("clean") / "run", workers=2)
    return settings, run_screening(settings)


@pytest.fixture(scope="module")
def direct_results(structures, clean_run) -> pd.DataFrame:
    """The same work done by calling the screening functions in this process, without Dask."""
    import screening

    settings, summary = clean_run
    frame = screening.screen(read_structures(structures), config=settings.science)
    return frame.assign(**{Col.RUN_ID: summary.run_id})


def test_local_cluster_run_equals_direct_calls(clean_run, direct_results):
    settings, summary = clean_run
    assert summary.complete and summary.n_structures == N_GOOD + N_BAD
    assert summary.n_partitions == 4 and summary.n_partitions_skipped == 0
    results = RunDir(settings.out).read_results()
    assert len(results) == N_GOOD + N_BAD and results[Col.ID].is_unique
    assert_same_results(results, direct_results)
    # bad input: failed rows with the stage and the reason, the rest of their partition went on
    failed = results.set_index(Col.ID).loc[["t-bad-input", "t-broken-row"]]
    assert failed[Col.STATUS].tolist() == ["failed", "failed"]
    assert failed[Col.STAGE].tolist() == ["input", "structure"]
    assert "no _cell_length_a" in failed.loc["t-bad-input", Col.ERROR]
    assert summary.counts == {"ok": 5, "not applicable": 1, "failed:input": 1, "failed:structure": 1}
    assert "failed: 2 (input: 1, structure: 1)" in summary.format()
    # the criteria on the workers: LiF is an insulator with a wide window, priced; the model error counted
    lif = results.set_index(Col.ID).loc["t-lif"]
    assert lif[Col.ECW_LOW] == 0.0 and lif[Col.ECW_HIGH] > 5.5 and lif[Col.ECW_OXIDATION_PRODUCTS] == "F2"
    assert lif[Col.ELECTRONIC_CONDUCTOR] == False and lif[Col.COST] > 0  # noqa: E712 - numpy bool
    assert lif[Col.E_ABOVE_HULL_STD] >= lif[Col.E_ABOVE_HULL_MODEL_STD] == pytest.approx(0.0602, abs=1e-4)
    # the sampled solid solution says how far its configurations are from the published composition
    by_id = results.set_index(Col.ID)
    assert by_id.loc["t-li-na-f", Col.DISORDER_STRATEGY] == "sample"
    assert by_id.loc["t-li-na-f", Col.SAMPLED_COMPOSITION_ERROR] == 0.0  # Li0.5Na0.5F: exactly representable
    assert pd.isna(lif[Col.SAMPLED_COMPOSITION_ERROR])  # ordered: nothing sampled


def test_manifest_records_config_versions_model_and_one_load_per_worker(clean_run):
    settings, summary = clean_run
    manifest = RunDir(settings.out).read_manifest()
    assert manifest["run_id"] == summary.run_id and manifest["complete"] is True
    assert manifest["config"]["partition_size"] == 2 and manifest["science"]["model"] == "sevennet-0"
    assert manifest["versions"]["torch"].startswith("2.13")
    assert manifest["model"]["name"] == "sevennet-0" and len(manifest["model"]["weights_sha256"]) == 64
    assert manifest["hull_reference"] == ["pymatgen-calc_compounds"]
    assert manifest["e_above_hull_model_error"]["sigma_eV"] == pytest.approx(0.0602, abs=1e-4)
    assert manifest["counts"] == summary.counts
    (attempt,) = manifest["attempts"]
    seconds = attempt["cluster"].pop("seconds_to_workers")
    assert attempt["cluster"] == {"kind": "local", "n_workers": 2, "device": "cpu"} and seconds > 0
    assert attempt["structures_screened"] == N_GOOD + N_BAD and attempt["wall_time_s"] > 0
    # 4 partitions over 2 worker processes, and each process loaded the model exactly once
    assert set(attempt["model_loads_by_worker"].values()) == {1}


def test_rerun_skips_everything_and_another_config_is_refused(clean_run, structures):
    settings, summary = clean_run
    before = {p.name: p.stat().st_mtime_ns for p in (settings.out / "results").iterdir()}
    again = run_screening(settings)  # no cluster is even started: nothing to do
    assert again.n_partitions_skipped == 4 and again.n_screened == 0 and again.counts == summary.counts
    assert {p.name: p.stat().st_mtime_ns for p in (settings.out / "results").iterdir()} == before
    with pytest.raises(RunDirError, match="other settings"):
        run_screening(make_settings(structures, settings.out, mobile_ion="Na"))


def test_ranking_a_run(clean_run):
    settings, _ = clean_run
    # binary salts are not superionic: the funnel's conductivity filter is off to test the ranking itself
    ranked = rank_run(settings.out, max_e_above_hull_eV=0.1, min_p_superionic=0.0).ranked
    stored = RunDir(settings.out).read_ranked()
    assert stored[Col.ID].tolist() == ranked[Col.ID].tolist()
    np.testing.assert_allclose(stored[Col.SCORE], ranked[Col.SCORE])
    assert list(ranked.columns) == RANKED_SCHEMA.names
    results = RunDir(settings.out).read_results()
    expected = results[
        (results[Col.STATUS] == "ok")
        & results[Col.ELEMENTS].map(lambda els: els is not None and "Li" in list(els))
        & (results[Col.E_ABOVE_HULL] <= 0.1)  # p_stable >= 0.5 is the same cut, whatever the spread
        & np.isfinite(results[Col.LOG10_SIGMA])
        & results[Col.HULL_MISSING_SYSTEMS].isna()  # a lower-bound hull distance is set aside
    ]
    assert set(ranked[Col.ID]) <= set(expected[Col.ID]) and len(ranked) >= 1
    assert ranked[Col.PARETO_FRONT].any() and ranked[Col.RANK].tolist() == list(range(1, len(ranked) + 1))
    assert RunDir(settings.out).read_manifest()["ranking"]["max_e_above_hull_eV"] == 0.1
    # the funnel, stage by stage, in ranked.parquet's metadata and in run.json
    metadata = read_metadata(pq.read_schema(RunDir(settings.out).ranked_path))
    assert metadata["ranking"]["preset"] == "solid-electrolyte"
    assert metadata["funnel"][0]["stage"] == "screened" and metadata["funnel"][-1]["out"] == len(ranked)
    assert RunDir(settings.out).read_manifest()["ranking"]["funnel"] == metadata["funnel"]


def test_killed_run_resumes_to_the_same_tables(clean_run, structures, tmp_path):
    settings, _ = clean_run
    out = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from pipelines.run import run_screening
        from pipelines.settings import RunSettings
        run_screening(RunSettings(structures=Path({str(structures)!r}), out=Path({str(out)!r}), n_samples=2,
                                  partition_size=2, progress=False, cluster="local", workers=1, device="cpu"))
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], start_new_session=True, cwd=Path(__file__).parents[1]
    )
    results_dir = out / "results"
    deadline = time.monotonic() + 300
    try:
        while not (results_dir.exists() and any(results_dir.glob("part-*.parquet"))):
            assert process.poll() is None, "the run ended before it could be interrupted"
            assert time.monotonic() < deadline, "no partition written in time"
            time.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the driver, its scheduler and its worker processes
        process.wait(timeout=60)
    done = sorted(p.name for p in results_dir.glob("part-*.parquet"))
    assert 1 <= len(done) < 4, done
    manifest = RunDir(out).read_manifest()
    assert manifest["attempts"][-1]["status"] == "running"  # killed: it never got to write its end

    resumed = run_screening(make_settings(structures, out, workers=1))
    assert resumed.complete and resumed.n_partitions_skipped == len(done)
    assert_same_results(RunDir(out).read_results(), RunDir(settings.out).read_results())
    assert len(RunDir(out).read_manifest()["attempts"]) == 2


def test_command_line_reports_failed_rows_and_exits_zero(structures, tmp_path):
    from pipelines.cli import app

    config = tmp_path / "run.yaml"
    config.write_text(
        f"structures: {structures}\nn_samples: 2\npartition_size: 8\ncluster: local\ndevice: cpu\n"
    )
    runner = CliRunner()
    result = runner.invoke(
        app, ["run", str(config), "--out", str(tmp_path / "run"), "--workers", "1", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "failed: 2 (input: 1, structure: 1)" in result.output
    ranked = runner.invoke(
        app,
        [
            "rank",
            str(tmp_path / "run"),
            "--top",
            "3",
            "--weights",
            "sigma=1,stability=2",
            "--min-p-superionic",
            "0",
        ],
    )
    assert ranked.exit_code == 0, ranked.output
    assert "log10 sigma" in ranked.output and "funnel:" in ranked.output
    bad = runner.invoke(app, ["rank", str(tmp_path / "run"), "--weights", "speed=3"])
    assert bad.exit_code == 2 and "weights" in bad.output
