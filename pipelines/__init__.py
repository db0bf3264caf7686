"""Orchestration of screening runs on Dask: clusters, partitioned Parquet, per-worker models, resumability.

Entry points (the ``screening run / rank / demo`` commands wrap them)::

    from pipelines.settings import RunSettings
    from pipelines.run import run_screening
    from pipelines.rank import rank_run
    from pipelines.demo import run_demo

    summary = run_screening(RunSettings.load("run.yaml", workers=2))
    ranking = rank_run(summary.run_dir, config="run.yaml")  # its ranking: section (screening.funnel)

The science lives in :mod:`screening`; this package only calls :func:`screening.stages.screen_partition`
partition by partition.
"""
