"""Benchmark of the screening pipeline on this machine (CPU; ``--cuda`` adds a LocalCUDACluster run).

Measures, on the ordered bundled structures replicated under distinct ids (real materials, a workload
whose cost does not hinge on a few huge disordered cells):

1. overhead: wall time of ``run_screening`` on a 1-worker LocalCluster against the same work in this
   process without Dask (model load, read each partition, ``screen_partition``, write it), as a ratio;
2. scaling: structures per second with 1 and 2 local workers;
3. memory: peak RSS per worker process with tables of 2x and 10x the partition size (flat if the driver
   and the workers only ever hold one partition).

Usage: ``python benchmarks/bench_pipeline.py [--copies 4] [--partition-size 8] [--out DIR] [--cuda]``.
Prints a JSON summary and a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from pipelines.cluster import available_cores
from pipelines.partitions import plan_partitions, read_partition, results_table, structure_ids
from pipelines.run import run_screening
from pipelines.rundir import PartitionIdentity, RunDir
from pipelines.settings import RunSettings
from screening.io import write_dataset
from screening.schema import Col
from screening.sources.bundled import iter_bundled_rows
from screening.structures import bucket_of

MAX_SITES = 16


def benchmark_rows(copies: int) -> list[dict[str, Any]]:
    """The ordered bundled structures of at most MAX_SITES sites, ``copies`` times under distinct ids."""
    base = [
        r
        for r in iter_bundled_rows()
        if r[Col.STATUS] == "ok" and r[Col.IS_ORDERED] and r[Col.NSITES] <= MAX_SITES
    ]
    rows = []
    for copy in range(copies):
        for row in base:
            new_id = f"{row[Col.ID]}#{copy}"
            rows.append({**row, Col.ID: new_id, Col.BUCKET: bucket_of(new_id)})
    return rows


def in_process(settings: RunSettings, out: Path, stage_seconds: dict[str, float]) -> float:
    """The same work without Dask, in this process; returns the wall time in s and adds each stage's
    seconds to ``stage_seconds``."""
    from screening.models import load_model
    from screening.stages import screen_partition
    from screening.thermo import load_reference_entries

    start = time.perf_counter()
    ids = structure_ids(settings.structures)
    config = settings.science.model_copy(update={"device": "cpu"})
    model = load_model(config.model, device="cpu")
    references = load_reference_entries()
    run = RunDir(out)
    for part in plan_partitions(ids, settings.partition_size):
        frame = screen_partition(
            read_partition(settings.structures, part.ids),
            config,
            model,
            references=references,
            run_id="in-process",
            stage_seconds=stage_seconds,
        )
        run.write_partition(part.index, results_table(frame), PartitionIdentity("in-process", "-"))
    return time.perf_counter() - start


def pipeline(structures: Path, out: Path, workers: int, partition_size: int, cluster: str = "local") -> dict:
    settings = RunSettings(
        structures=structures,
        out=out,
        cluster=cluster,
        workers=workers,
        partition_size=partition_size,
        progress=False,
        device="cuda" if cluster == "cuda" else "cpu",
    )
    summary = run_screening(settings)
    attempt = RunDir(out).read_manifest()["attempts"][-1]
    return {
        "workers": workers,
        "cluster": cluster,
        "n_structures": summary.n_structures,
        "wall_s": round(summary.wall_time_s, 2),
        "structures_per_s": round(summary.structures_per_s, 3),
        "peak_rss_MB_per_worker": sorted(attempt["peak_rss_MB_by_worker"].values()),
        # time the workers spent in partition tasks (model load on first use, read, screen, write)
        "worker_busy_s": round(sum(attempt["partition_seconds"].values()), 2),
        "stage_seconds": attempt["stage_seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--partition-size", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--cuda", action="store_true")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    rows = benchmark_rows(args.copies)
    structures = write_dataset(rows, root / "structures")
    n = len(rows)
    report: dict[str, Any] = {"n_structures": n, "partition_size": args.partition_size}

    # memory first: 1 worker, tables of 4x, 10x and 20x the partition size (each holding every structure
    # kind at least once, so the largest cell is the same and only the table size changes)
    report["memory"] = {}
    for factor in (4, 10, 20):
        count = factor * args.partition_size
        cycled = (rows * (count // len(rows) + 1))[:count]
        table = [
            {**r, Col.ID: f"{r[Col.ID]}@{i}", Col.BUCKET: bucket_of(f"{r[Col.ID]}@{i}")}
            for i, r in enumerate(cycled)
        ]
        path = write_dataset(table, root / f"s-{factor}x")
        report["memory"][f"table_{factor}x_partition"] = pipeline(
            path, root / f"run-{factor}x", 1, args.partition_size
        )

    one = pipeline(structures, root / "run-1", 1, args.partition_size)
    two = pipeline(structures, root / "run-2", 2, args.partition_size)
    # the driver never loads a model or a whole table: its peak before the in-process comparison below
    report["driver_peak_rss_MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    # in process last (warm file caches, like the pipeline runs), torch threads as the 1-worker run
    torch.set_num_threads(available_cores())
    settings = RunSettings(structures=structures, out=root / "unused", partition_size=args.partition_size)
    direct_stages: dict[str, float] = {}
    direct_s = in_process(settings, root / "direct", direct_stages)
    report["overhead"] = {
        "in_process_s": round(direct_s, 2),
        "in_process_structures_per_s": round(n / direct_s, 3),
        "pipeline_1_worker": one,
        "ratio_wall_pipeline_over_in_process": round(one["wall_s"] / direct_s, 3),
        "ratio_worker_busy_over_in_process": round(one["worker_busy_s"] / direct_s, 3),
        "fixed_startup_s": round(one["wall_s"] - one["worker_busy_s"], 2),
        "stage_seconds_in_process": {k: round(v, 3) for k, v in direct_stages.items()},
    }
    report["scaling"] = {
        "1_worker": one,
        "2_workers": two,
        "speedup": round(one["wall_s"] / two["wall_s"], 3),
    }
    if args.cuda:
        report["cuda"] = pipeline(structures, root / "run-cuda", 1, args.partition_size, cluster="cuda")
    print(json.dumps(report, indent=2))
    o = report["overhead"]
    print(
        "\n| measure | value |\n|---|---|\n"
        f"| structures | {n} (partition size {args.partition_size}) |\n"
        f"| in process, no Dask | {o['in_process_s']} s ({o['in_process_structures_per_s']} structures/s) |\n"
        f"| pipeline, 1 worker | {one['wall_s']} s ({one['structures_per_s']} structures/s) |\n"
        f"| overhead ratio (wall, pipeline / in process) | {o['ratio_wall_pipeline_over_in_process']} |\n"
        f"| pipeline, 2 workers | {two['wall_s']} s ({two['structures_per_s']} structures/s) |\n"
        f"| speedup 1 -> 2 workers | {report['scaling']['speedup']} |\n"
        + "".join(
            f"| peak RSS per worker, table {k.split('_')[1]} ({v['n_structures']} structures) | "
            f"{v['peak_rss_MB_per_worker']} MB |\n"
            for k, v in report["memory"].items()
        )
        + f"| overhead ratio (worker busy time, 1 worker / in process) | {o['ratio_worker_busy_over_in_process']} |\n"
        f"| fixed start-up (cluster, worker imports) | {o['fixed_startup_s']} s |\n"
        f"| driver peak RSS | {report['driver_peak_rss_MB']} MB |"
    )
    stages = sorted(set(o["stage_seconds_in_process"]) | set(one["stage_seconds"]))
    print("\n| stage | in process (s) | 1 worker (s) | ratio |\n|---|---|---|---|")
    for stage in stages:
        here, there = o["stage_seconds_in_process"].get(stage, 0.0), one["stage_seconds"].get(stage, 0.0)
        print(f"| {stage} | {here:.2f} | {there:.2f} | {there / here if here else float('nan'):.2f} |")


if __name__ == "__main__":
    main()
