"""The ``screening`` command: ``ingest``, ``run``, ``rank``, ``demo``, ``train conductivity``, ``train energy`` and ``learn``.

The one module of the command line, above both packages: it parses options into the settings objects
and calls the Python API of :mod:`pipelines` and :mod:`screening`; nothing imports it (``pyproject.toml``
points the console script at :data:`app`). Every error that reaches the user is one line saying what to
do. Exit status: 0 when the work is complete (failed rows included: they are reported), 1 when a run is
incomplete (partitions not done, the cluster failed), 2 for bad input or settings.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="High-throughput screening of crystalline battery materials: stability and ionic conductivity.",
)

EXIT_INCOMPLETE = 1
EXIT_BAD_INPUT = 2


class SourceName(StrEnum):
    bundled = "bundled"
    files = "files"
    mp = "mp"


def one_line(exc: BaseException) -> str:
    """An exception as one readable line (pydantic's multi-line validation errors folded)."""
    import pydantic

    if isinstance(exc, pydantic.ValidationError):
        parts = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "settings"
            got = f" (got {error['input']!r})" if error["type"] != "missing" and "input" in error else ""
            parts.append(f"{where}: {error['msg']}{got}")
        return "invalid settings: " + "; ".join(parts)
    return " ".join(str(exc).split()) or type(exc).__name__


@contextmanager
def user_errors(what: str) -> Iterator[None]:
    """Turn the errors a user can fix into one line on stderr and exit status 2; a cluster that failed
    exits 1 (the run is incomplete, its finished partitions are kept)."""
    import pydantic

    from pipelines.cluster import ClusterError
    from screening.errors import ScreeningError

    try:
        yield
    except typer.Exit:
        raise
    except ClusterError as exc:
        typer.echo(f"{what}: {one_line(exc)}", err=True)
        raise typer.Exit(EXIT_INCOMPLETE) from exc
    except (
        ScreeningError,
        pydantic.ValidationError,
        FileNotFoundError,
        NotADirectoryError,
        ValueError,
    ) as exc:
        typer.echo(f"{what}: {one_line(exc)}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from exc


def _split(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def ingest_summary(rows: list[dict[str, Any]], out_dir: Path) -> str:
    """One screen of text about an ingested structures table."""
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] != "ok"]
    disordered = sum(1 for r in ok if not r["is_ordered"])
    with_warnings = sum(1 for r in ok if r.get("warnings"))
    elements = Counter(el for r in ok for el in r["elements"])
    lines = [
        f"structures table: {out_dir}",
        f"  rows: {len(rows)}   ok: {len(ok)} ({with_warnings} with warnings)   failed: {len(failed)}   "
        f"disordered: {disordered}",
        f"  sites per structure: {min((r['nsites'] for r in ok), default=0)}"
        f"-{max((r['nsites'] for r in ok), default=0)}",
        f"  elements ({len(elements)}): "
        + " ".join(f"{el}:{n}" for el, n in sorted(elements.items(), key=lambda kv: (-kv[1], kv[0]))),
    ]
    for row in failed[:10]:
        lines.append(f"  failed {row['id']}: {row['error']}")
    if len(failed) > 10:
        lines.append(f"  ... and {len(failed) - 10} more failed rows (column 'error')")
    return "\n".join(lines)


@app.command()
def ingest(
    out: Annotated[
        Path, typer.Option("--out", help="Directory of the structures dataset to write (new or empty).")
    ],
    source: Annotated[SourceName, typer.Option(help="Where the structures come from.")] = SourceName.bundled,
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or directories (--source files).")] = None,
    elements: Annotated[str | None, typer.Option(help="mp: must contain all of these, e.g. Li,O")] = None,
    exclude_elements: Annotated[str | None, typer.Option(help="mp: must contain none of these")] = None,
    chemsys: Annotated[str | None, typer.Option(help="mp: chemical system(s), e.g. Li-P-S")] = None,
    max_e_above_hull_eV: Annotated[float | None, typer.Option("--max-e-above-hull-eV")] = None,
    max_nsites: Annotated[int | None, typer.Option(help="mp: at most this many sites")] = None,
    theoretical: Annotated[bool | None, typer.Option("--theoretical/--experimental", help="mp")] = None,
    limit: Annotated[int | None, typer.Option(help="mp: at most this many structures")] = None,
    mp_connect_timeout_s: Annotated[
        float | None,
        typer.Option("--mp-connect-timeout-s", help="mp: give up connecting after this long, s [10]"),
    ] = None,
    mp_read_timeout_s: Annotated[
        float | None,
        typer.Option("--mp-read-timeout-s", help="mp: give up waiting for a reply after, s [60]"),
    ] = None,
    mp_retries: Annotated[
        int | None, typer.Option("--mp-retries", help="mp: retries of a failed request [3]")
    ] = None,
    workers: Annotated[int, typer.Option(help="files: parse in this many processes")] = os.cpu_count() or 1,
    cluster: Annotated[
        str | None,
        typer.Option(help="files, mp: read on a Dask cluster (local, slurm, ...) in chunks, resumable"),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="files, mp: read on this existing Dask scheduler, tcp://host:8786")
    ] = None,
    chunk_files: Annotated[int, typer.Option(help="files on a cluster: files per task")] = 16,
    chunk_ids: Annotated[int, typer.Option(help="mp on a cluster: materials per task")] = 200,
    mp_budget: Annotated[
        int, typer.Option(help="mp on a cluster: API requests in flight at once, all workers together")
    ] = 2,
) -> None:
    """Read structures from a source into a Parquet structures table (partitioned by a hash bucket).

    The output folder must be new, empty, or a structures table written before (it is then replaced).
    With --cluster or --scheduler the structures are read on Dask workers in chunks; an interrupted
    ingest rerun with the same arguments reads only the chunks it had not finished.
    """
    from screening.io import check_output_directory, write_dataset

    with user_errors("ingest failed"):
        check_output_directory(out)
        on_cluster = None
        if cluster is not None or scheduler is not None:
            from pipelines.settings import RunSettings

            given = {"cluster": cluster, "scheduler": scheduler, "workers": workers}
            on_cluster = RunSettings(structures=out, out=out, **{k: v for k, v in given.items() if v})
        if source is SourceName.bundled:
            from screening.sources.bundled import iter_bundled_rows

            rows = list(iter_bundled_rows())
        elif source is SourceName.files:
            from screening.sources.files import iter_file_rows

            if not paths:
                raise typer.BadParameter(
                    "--source files needs at least one file or directory", param_hint="PATHS"
                )
            if on_cluster is None:
                rows = list(iter_file_rows(paths, workers=workers, progress=True))
            else:
                from pipelines.ingest import ingest_files_on_cluster

                rows = ingest_files_on_cluster(
                    paths, out, on_cluster, chunk_files=chunk_files, echo=typer.echo
                )
        else:
            from screening.sources.mp import MPClientOptions

            given = {
                "connect_timeout_s": mp_connect_timeout_s,
                "read_timeout_s": mp_read_timeout_s,
                "max_retries": mp_retries,
            }
            options = MPClientOptions(**{key: value for key, value in given.items() if value is not None})
            rows = _ingest_mp(
                out,
                options,
                on_cluster,
                {"chunk_ids": chunk_ids, "budget": mp_budget},
                elements=_split(elements),
                exclude_elements=_split(exclude_elements),
                chemsys=_split(chemsys),
                max_energy_above_hull_eV=max_e_above_hull_eV,
                max_nsites=max_nsites,
                theoretical=theoretical,
                limit=limit,
            )
        if not rows:
            typer.echo("no structures matched; nothing written", err=True)
            raise typer.Exit(EXIT_INCOMPLETE)
        write_dataset(rows, out, source=source.value)
        if on_cluster is not None:
            from pipelines.ingest import remove_staging

            remove_staging(out)
    typer.echo(ingest_summary(rows, out))


def _ingest_mp(
    out: Path, options: Any, on_cluster: Any, chunking: dict[str, int], **filters: Any
) -> list[dict[str, Any]]:
    """Query Materials Project (in this process, or in chunks on the cluster of ``on_cluster``), and
    write the reference entries of the systems found beside the table (each system once)."""
    import pyarrow.parquet as pq

    from screening.sources.mp import MPQuery, fetch_reference_entries, iter_mp_rows, references_to_table

    query = MPQuery(**filters)
    if on_cluster is None:
        rows = list(iter_mp_rows(query, client_options=options))
    else:
        from pipelines.ingest import ingest_mp_on_cluster

        rows = ingest_mp_on_cluster(query, out, on_cluster, options, echo=typer.echo, **chunking)
    systems = sorted({r["chemical_system"] for r in rows if r["status"] == "ok"})
    entries = fetch_reference_entries(systems, client_options=options) if systems else []
    out.parent.mkdir(parents=True, exist_ok=True)
    references_path = out.parent / f"{out.name}_references.parquet"
    pq.write_table(references_to_table(entries), references_path)
    typer.echo(f"reference entries for the hull: {len(entries)} -> {references_path}")
    return rows


def _mobile_ions_help() -> str:
    from screening.transport.registry import MOBILE_IONS

    return f"Mobile ion: {', '.join(MOBILE_IONS)} (case-insensitive)."


def _models_help() -> str:
    from screening.models.registry import MODEL_NAMES

    return f"Energy model: {', '.join(MODEL_NAMES)}."


@app.command()
def run(
    config: Annotated[
        Path | None, typer.Argument(help="YAML file of run settings (options override it).")
    ] = None,
    structures: Annotated[
        Path | None, typer.Option(help="Structures dataset (from `screening ingest`).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (results/, run.json).")] = None,
    model: Annotated[str | None, typer.Option(help=_models_help())] = None,
    disorder: Annotated[
        str | None,
        typer.Option(
            help="Disordered structures: sample (the potential on ordered configurations), meanfield, native "
            "(occupancy-native ensemble, one pass) or auto (native unless its spread asks for sample)."
        ),
    ] = None,
    n_samples: Annotated[int | None, typer.Option(help="Configurations per disordered structure.")] = None,
    native_model: Annotated[
        str | None, typer.Option(help="native/auto: a shipped ensemble name or a folder from `train energy`.")
    ] = None,
    relax: Annotated[bool | None, typer.Option("--relax/--no-relax", help="Relax before the energy.")] = None,
    mobile_ion: Annotated[str | None, typer.Option(help=_mobile_ions_help())] = None,
    temperature_K: Annotated[
        float | None, typer.Option("--temperature-K", help="Temperature of sigma, K.")
    ] = None,
    transport_method: Annotated[
        str | None,
        typer.Option(
            help="Conductivity: bvse or md (physics), learned (trained on experiment) [auto: learned for Li "
            "with sampled disorder, else bvse]."
        ),
    ] = None,
    conductivity_model: Annotated[
        str | None, typer.Option(help="learned: a shipped model name or a folder from `screening train`.")
    ] = None,
    scheduler: Annotated[str | None, typer.Option(help="Existing scheduler, tcp://host:8786.")] = None,
    cluster: Annotated[str | None, typer.Option(help="auto, local, cuda or slurm.")] = None,
    workers: Annotated[int | None, typer.Option(help="Workers (default: one per core / GPU).")] = None,
    partition_size: Annotated[int | None, typer.Option(help="Structures per partition.")] = None,
    max_sites_per_structure: Annotated[
        int | None, typer.Option(help="Larger cells fail with the reason (a worker memory guard).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="torch device of the model (cpu, cuda).")] = None,
    retries: Annotated[int | None, typer.Option(help="Retries of a partition whose worker died.")] = None,
    references: Annotated[Path | None, typer.Option(help="Hull reference entries (Parquet).")] = None,
    lock_wait_s: Annotated[
        float | None, typer.Option("--lock-wait-s", help="Wait this long for another run on --out.")
    ] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress")] = None,
) -> None:
    """Screen a structures table on Dask: stability, conductivity, results per partition (resumable)."""
    overrides = {key: value for key, value in locals().items() if key != "config"}  # the options, first
    from pipelines.run import run_screening
    from pipelines.settings import RunSettings

    with user_errors("run failed"):
        settings = RunSettings.load(config, **overrides)
        summary = run_screening(settings)
    typer.echo(summary.format())
    if not summary.complete:
        raise typer.Exit(EXIT_INCOMPLETE)


@app.command()
def rank(
    run_dir: Annotated[Path, typer.Argument(help="Run directory written by `screening run`.")],
    config: Annotated[
        Path | None,
        typer.Option(help="YAML of ranking settings (its `ranking:` section, or the whole file)."),
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="solid-electrolyte (default) or electrode (window, insulator off).")
    ] = None,
    max_e_above_hull_eV: Annotated[
        float | None, typer.Option("--max-e-above-hull-eV", help="eV/atom [0.05]")
    ] = None,
    min_p_stable: Annotated[
        float | None, typer.Option(help="Least probability of being within the threshold [0.5].")
    ] = None,
    min_p_superionic: Annotated[
        float | None, typer.Option(help="Least p(sigma >= 1e-4 S/cm), where the model gives it [0.5].")
    ] = None,
    min_log10_sigma: Annotated[
        float | None,
        typer.Option("--min-log10-sigma", help="log10 S/cm, where p_superionic is unknown [off]."),
    ] = None,
    exclude_elements: Annotated[str | None, typer.Option(help="Comma-separated, e.g. Pb,Cd,Hg.")] = None,
    exclude_out_of_domain: Annotated[
        bool | None,
        typer.Option("--exclude-out-of-domain/--flag-out-of-domain", help="Conductivity out of domain."),
    ] = None,
    top: Annotated[int, typer.Option(help="Candidates to print.")] = 20,
    weights: Annotated[str | None, typer.Option(help="Score weights, e.g. sigma=1,stability=2.")] = None,
    mobile_ion: Annotated[str | None, typer.Option(help="Default: the run's mobile ion.")] = None,
    allow_incomplete_hull: Annotated[
        bool | None,
        typer.Option(
            "--allow-incomplete-hull",
            help="Also rank candidates whose hull lacks metal-anion phases (E_hull a lower bound).",
        ),
    ] = None,
) -> None:
    """Run a run's results through the screening funnel, score and rank them; write ranked.parquet and
    print the funnel table and the top candidates."""
    from pipelines.rank import format_ranking, rank_run
    from pipelines.rundir import RunDir

    with user_errors("rank failed"):
        ranking = rank_run(
            run_dir,
            config=config,
            preset=preset,
            max_e_above_hull_eV=max_e_above_hull_eV,
            min_p_stable=min_p_stable,
            min_p_superionic=min_p_superionic,
            min_log10_sigma_S_per_cm=min_log10_sigma,
            exclude_elements=exclude_elements,
            exclude_out_of_domain=exclude_out_of_domain,
            weights=weights,
            mobile_ion=mobile_ion,
            allow_incomplete_hull=allow_incomplete_hull,
        )
    typer.echo(format_ranking(ranking, top))
    typer.echo(f"{len(ranking.ranked)} candidates -> {RunDir(run_dir).ranked_path}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the structures and the run.")] = Path(
        "screening-demo"
    ),
    workers: Annotated[int | None, typer.Option(help="Local workers (default: one per core).")] = None,
    model: Annotated[str | None, typer.Option(help=_models_help())] = None,
    notebook: Annotated[bool, typer.Option("--notebook/--no-notebook", help="Execute the notebook.")] = True,
) -> None:
    """The bundled structures, screened on a local cluster and ranked; shows where the tables are."""
    from pipelines.demo import run_demo

    echo: Callable[[str], None] = typer.echo
    with user_errors("demo failed"):
        result = run_demo(out, workers=workers, model=model, execute_notebook=notebook, echo=echo)
    if not result.summary.complete:
        raise typer.Exit(EXIT_INCOMPLETE)


train_app = typer.Typer(no_args_is_help=True, help="Train the project's own models on your data.")
app.add_typer(train_app, name="train")


@train_app.command("conductivity")
def train_conductivity(
    labels: Annotated[Path, typer.Option(help="Labels CSV: id, log10_sigma or sigma_rt_S_per_cm, ...")],
    structures: Annotated[
        list[Path], typer.Option(help="A structures table, or CIF/POSCAR files or folders (file stem = id).")
    ],
    out: Annotated[Path, typer.Option(help="Model folder to write (new, empty, or written before).")],
    seed: Annotated[int, typer.Option(help="Seed of the ensemble and the folds.")] = 0,
    members: Annotated[int | None, typer.Option(help="Ensemble members [8].")] = None,
    epochs: Annotated[int | None, typer.Option(help="Full-batch training steps per member [300].")] = None,
    layers: Annotated[
        str | None,
        typer.Option(
            help="Node-feature layers of the potential, comma-separated; '' for none [measured choice]."
        ),
    ] = None,
    components: Annotated[
        int | None, typer.Option(help="Principal components kept of the node features [8].")
    ] = None,
    descriptors: Annotated[
        bool, typer.Option("--descriptors/--no-descriptors", help="Use the physical descriptors.")
    ] = True,
    cv_folds: Annotated[int, typer.Option(help="Folds of each grouped cross-validation (0: none).")] = 5,
    calibration_folds: Annotated[
        int,
        typer.Option(help="Folds (by family) whose held-out errors calibrate the spread (0: uncalibrated)."),
    ] = 5,
    scheduler: Annotated[str | None, typer.Option(help="Existing scheduler, tcp://host:8786.")] = None,
    cluster: Annotated[str | None, typer.Option(help="auto, local, cuda or slurm.")] = None,
    workers: Annotated[int | None, typer.Option(help="Workers (default: one per core / GPU).")] = None,
    partition_size: Annotated[int | None, typer.Option(help="Structures per feature task.")] = None,
    device: Annotated[str | None, typer.Option(help="torch device of the potential (cpu, cuda).")] = None,
) -> None:
    """Train the learned conductivity model: features on Dask, grouped CV, a model folder."""
    from pipelines.train import train_conductivity as train
    from screening.models.ensemble import EnsembleOptions
    from screening.transport.descriptors import DESCRIPTOR_NAMES
    from screening.transport.learned import FeatureSet
    from screening.transport.learned_training import TrainingOptions

    given = {"scheduler": scheduler, "cluster": cluster, "workers": workers, "partition_size": partition_size}
    cluster_options = {k: v for k, v in given.items() if v is not None}
    if device is not None:
        cluster_options["device"] = device
    with user_errors("training failed"):
        chosen: dict[str, Any] = {"descriptors": DESCRIPTOR_NAMES if descriptors else ()}
        if layers is not None:
            chosen["layers"] = tuple(_split(layers) or ())
        if components is not None:
            chosen["n_components"] = components
        options = TrainingOptions(
            features=FeatureSet(**chosen),
            ensemble=EnsembleOptions(
                seed=seed,
                **{k: v for k, v in {"n_members": members, "epochs": epochs}.items() if v is not None},
            ),
            calibration_folds=calibration_folds,
        )
        summary = train(
            labels, structures, out, options, cv_folds=cv_folds, cluster=cluster_options, echo=typer.echo
        )
    typer.echo(summary.format())


@train_app.command("energy")
def train_energy(
    out: Annotated[Path, typer.Option(help="Model folder to write (new, empty, or written before).")],
    structures: Annotated[
        list[Path] | None, typer.Option(help="CIF/POSCAR files or folders of parent structures.")
    ] = None,
    bundled: Annotated[bool, typer.Option("--bundled/--no-bundled", help="Add the bundled set.")] = False,
    variants: Annotated[
        bool,
        typer.Option("--variants/--no-variants", help="Add solid-solution and Li-deficient variants."),
    ] = True,
    groups: Annotated[
        Path | None, typer.Option(help="CSV of id,family: held-out split by family [chemical system].")
    ] = None,
    teacher: Annotated[str, typer.Option(help="The potential to distill.")] = "sevennet-0",
    n_samples: Annotated[int, typer.Option(help="Labelled configurations per disordered parent.")] = 8,
    holdout_fraction: Annotated[
        float, typer.Option(help="Parents held out (half calibrate the spread threshold, half test it).")
    ] = 0.3,
    seed: Annotated[int, typer.Option(help="Seed of the configurations, split and members.")] = 0,
    members: Annotated[int, typer.Option(help="Ensemble members.")] = 5,
    epochs: Annotated[int, typer.Option(help="Passes over the training examples per member.")] = 60,
    hidden: Annotated[int, typer.Option(help="Width of the network.")] = 32,
    scheduler: Annotated[str | None, typer.Option(help="Existing scheduler, tcp://host:8786.")] = None,
    cluster: Annotated[str | None, typer.Option(help="auto, local, cuda or slurm.")] = None,
    workers: Annotated[int | None, typer.Option(help="Workers (default: one per core / GPU).")] = None,
    device: Annotated[str | None, typer.Option(help="torch device of the teacher (cpu, cuda).")] = None,
) -> None:
    """Distill an occupancy-native energy ensemble from a potential: labels on Dask, a model folder."""
    from pipelines.train_energy import LabelSettings
    from pipelines.train_energy import train_energy as train
    from screening.models.native_energy import NativeTrainingOptions

    given = {"scheduler": scheduler, "cluster": cluster, "workers": workers, "device": device}
    with user_errors("training failed"):
        options = NativeTrainingOptions(hidden=hidden, n_members=members, epochs=epochs, seed=seed)
        report = train(
            list(structures or []),
            out,
            options,
            bundled=bundled,
            variants=variants,
            labels=LabelSettings(teacher=teacher, n_samples=n_samples, seed=seed),
            groups_csv=groups,
            holdout_fraction=holdout_fraction,
            cluster={k: v for k, v in given.items() if v is not None},
            echo=typer.echo,
        )
    typer.echo(format_energy_report(out, report))


@app.command()
def learn(
    out: Annotated[Path, typer.Option(help="Model folder to write (new, empty, or written before).")],
    structures: Annotated[
        list[Path] | None, typer.Option(help="CIF/POSCAR files or folders: the pool.")
    ] = None,
    bundled: Annotated[bool, typer.Option("--bundled/--no-bundled", help="Add the bundled set.")] = False,
    variants: Annotated[
        bool,
        typer.Option("--variants/--no-variants", help="Add solid-solution and Li-deficient variants."),
    ] = True,
    acquisition: Annotated[str, typer.Option(help="spread_per_cost or random.")] = "spread_per_cost",
    initial: Annotated[int, typer.Option(help="Parents labelled at random first.")] = 16,
    batch: Annotated[int, typer.Option(help="Parents acquired per round.")] = 16,
    max_rounds: Annotated[int, typer.Option(help="Rounds at most.")] = 20,
    budget_cpu_s: Annotated[
        float, typer.Option("--budget-cpu-s", help="Teacher CPU-seconds at most [no limit].")
    ] = float("inf"),
    min_gain: Annotated[
        float,
        typer.Option(help="Stop below this expected error reduction, meV/atom per teacher CPU-second."),
    ] = 1e-3,
    teacher: Annotated[str, typer.Option(help="The potential to distill.")] = "sevennet-0",
    n_samples: Annotated[int, typer.Option(help="Labelled configurations per disordered parent.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the draws, configurations and members.")] = 0,
    members: Annotated[int, typer.Option(help="Ensemble members.")] = 5,
    epochs: Annotated[
        int, typer.Option(help="Epochs per round (later rounds continue from the previous weights).")
    ] = 60,
    hidden: Annotated[int, typer.Option(help="Width of the network.")] = 32,
    scheduler: Annotated[str | None, typer.Option(help="Existing scheduler, tcp://host:8786.")] = None,
    cluster: Annotated[str | None, typer.Option(help="auto, local, cuda or slurm.")] = None,
    workers: Annotated[int | None, typer.Option(help="Workers (default: one per core / GPU).")] = None,
    device: Annotated[str | None, typer.Option(help="torch device of the teacher (cpu, cuda).")] = None,
) -> None:
    """Active learning: label the most informative structures per teacher second, retrain, repeat."""
    from pipelines.learn import learn as run_learning
    from screening.models.active_learning import ActiveLearningOptions
    from screening.models.native_energy import NativeTrainingOptions

    given = {"scheduler": scheduler, "cluster": cluster, "workers": workers, "device": device}
    with user_errors("active learning failed"):
        options = ActiveLearningOptions(
            acquisition=acquisition,  # type: ignore[arg-type]
            initial=initial,
            batch=batch,
            max_rounds=max_rounds,
            budget_cpu_s=budget_cpu_s,
            min_gain_meV_per_cpu_s=min_gain,
            n_samples=n_samples,
            seed=seed,
            training=NativeTrainingOptions(hidden=hidden, n_members=members, epochs=epochs, seed=seed),
        )
        curve = run_learning(
            list(structures or []),
            out,
            options,
            bundled=bundled,
            variants=variants,
            teacher=teacher,
            cluster={k: v for k, v in given.items() if v is not None},
            echo=typer.echo,
        )
    last = curve["rounds"][-1]
    typer.echo(
        f"model: {out}\n  {len(curve['rounds'])} rounds, {last['n_labelled']} parents labelled, teacher "
        f"{last['teacher_cpu_s']:.0f} CPU-s; stopped: {curve['stopped']}"
    )


def format_energy_report(out: Path, report: dict[str, Any]) -> str:
    """The lines ``screening train energy`` prints."""
    held = report["held_out"]
    lines = [f"model: {out}", f"  parents: {held['parents']}"]
    for part in ("calibration", "test"):
        gaps = held[part]["native"]
        lines.append(
            f"  {part}: {gaps['n']} disordered parents, gap to the teacher median {gaps['median_meV']:.1f}, "
            f"p90 {gaps['p90_meV']:.1f}, max {gaps['max_meV']:.1f} meV/atom"
        )
    auto = held["test"]["auto"]
    lines.append(
        f"  auto (spread threshold {held['threshold_eV'] * 1000:.1f} meV/atom): teacher for "
        f"{auto['teacher_share']:.0%} of the test parents, worst gap of the rest {auto['max_meV']:.1f} meV/atom"
    )
    lines.append("  time: " + ", ".join(f"{k} {v:.0f} s" for k, v in report["seconds"].items()))
    return "\n".join(lines)


def main() -> None:  # pragma: no cover - the console script
    app()
