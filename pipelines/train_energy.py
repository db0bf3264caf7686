"""``screening train energy``: structures -> teacher labels on Dask -> a distilled occupancy-native ensemble.

The model folder holds the checkpoint (``model.json``, ``weights.pt``: constructor arguments, members'
weights, teacher, spread threshold, held-out gaps), ``structures/`` (the parents, ingested from files
and/or the bundled set), ``labels/`` (one Parquet file per chunk of parents, named by the hash of the
teacher settings and of the chunk's structures, so a rerun labels only what changed) and
``training_report.json``. The folder must be new, empty, or one this command wrote before.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from pymatgen.core import Structure

from pipelines.cluster import open_client
from pipelines.train import check_model_folder, cluster_run_settings
from pipelines.worker import label_parents
from screening.errors import InputError
from screening.io import (
    check_output_directory,
    structures_dataset,
    write_dataset,
    write_table_atomic,
    write_text_atomic,
)
from screening.models.distillation import LABEL_COLUMNS, substitutional_variants
from screening.models.native_energy import (
    Example,
    NativeEnergyEnsemble,
    NativeTrainingOptions,
    distill,
    distillation_examples,
    held_out_split,
)
from screening.schema import Col
from screening.structures import row_to_structure
from screening.transport.learned_training import entry_id

#: What this command writes into a model folder (anything else there is the user's: refuse).
MODEL_FOLDER_ENTRIES = frozenset({"model.json", "weights.pt", "structures", "labels", "training_report.json"})
#: Ordered prototypes up to this many sites get substitutional variants (``--variants``).
MAX_VARIANT_PROTOTYPE_SITES = 64


@dataclass(frozen=True)
class LabelSettings:
    """How the teacher labels: the teacher model, configurations per disordered parent, their seed."""

    teacher: str = "sevennet-0"
    n_samples: int = 8
    seed: int = 0
    max_sites: int = 400
    chunk_size: int = 6

    def sha256(self) -> str:
        payload = json.dumps([self.teacher, self.n_samples, self.seed], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def gather_parents(
    files: list[Path], bundled: bool, out: Path, echo: Callable[[str], None]
) -> tuple[list[dict[str, Any]], Path]:
    """Ingest the files and/or the bundled set into ``out/structures``; the ok rows are the parents."""
    from screening.sources.bundled import iter_bundled_rows
    from screening.sources.files import iter_file_rows

    table = out / "structures"
    check_output_directory(table)  # refused before any file is parsed
    rows = list(iter_file_rows(files, progress=True)) if files else []
    if bundled:
        rows.extend(iter_bundled_rows())
    if not rows:
        raise InputError("no structures: give --structures files or folders, and/or --bundled")
    write_dataset(rows, table, source="training")
    ok = [row for row in rows if row[Col.STATUS] == "ok"]
    echo(f"parents: {len(ok)} of {len(rows)} structures ingested ok -> {table}")
    return ok, table


def _structure_sha256(structure: Structure) -> str:
    return hashlib.sha256(json.dumps(structure.as_dict(), sort_keys=True, default=str).encode()).hexdigest()


def plan_label_chunks(
    parents: list[tuple[str, Structure]], settings: LabelSettings, labels_dir: Path
) -> list[tuple[list[tuple[str, Structure]], Path]]:
    """Chunks of parents and the file of each one's labels, named by the teacher settings and the chunk's
    structures (a changed structure or setting is a new name)."""
    planned = []
    for start in range(0, len(parents), settings.chunk_size):
        chunk = parents[start : start + settings.chunk_size]
        digest = hashlib.sha256(
            (settings.sha256() + "".join(i + _structure_sha256(s) for i, s in chunk)).encode()
        ).hexdigest()
        planned.append((chunk, labels_dir / f"{digest[:24]}.parquet"))
    return planned


@contextmanager
def teacher_cluster(
    settings: LabelSettings, cluster: dict[str, Any], structures_table: Path, scratch: Path
) -> Iterator[Callable[[list[tuple[str, Structure]], Path], list[dict[str, Any]]]]:
    """A Dask cluster for labelling, as a function ``label(parents, labels_dir) -> label rows`` that labels
    the chunks not yet in ``labels_dir`` on the workers (one task per chunk, retried) and reads back all."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    run_settings = cluster_run_settings(structures_table, scratch, {"model": settings.teacher}, cluster)
    with open_client(run_settings) as (client, info):

        def label(parents: list[tuple[str, Structure]], labels_dir: Path) -> list[dict[str, Any]]:
            labels_dir.mkdir(parents=True, exist_ok=True)
            planned = plan_label_chunks(parents, settings, labels_dir)
            todo = [(chunk, path) for chunk, path in planned if not path.is_file()]
            futures = {
                client.submit(
                    label_parents,
                    [s for _, s in chunk],
                    [i for i, _ in chunk],
                    settings.teacher,
                    info.device,
                    settings.n_samples,
                    settings.seed,
                    retries=run_settings.retries,
                    resources=info.resources,
                    pure=False,
                ): (chunk, path)
                for chunk, path in todo
            }
            with tqdm(total=sum(len(c) for c, _ in todo), unit="structure", desc="teacher labels") as bar:
                for future in as_completed(futures):
                    chunk, path = futures[future]
                    frame = pd.DataFrame(future.result(), columns=list(LABEL_COLUMNS))
                    write_table_atomic(pa.Table.from_pandas(frame, preserve_index=False), path)
                    bar.update(len(chunk))
            return read_labels(path for _, path in planned)

        yield label


def read_labels(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Label rows of several label files."""
    frames = [pd.read_parquet(path) for path in paths]
    return pd.concat(frames, ignore_index=True).to_dict("records") if frames else []


def label_chunks(
    parents: list[tuple[str, Structure]],
    settings: LabelSettings,
    labels_dir: Path,
    cluster: dict[str, Any],
    structures_table: Path,
    echo: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Label rows of every parent; chunks already labelled are read back without starting a cluster."""
    planned = plan_label_chunks(parents, settings, labels_dir)
    done = sum(path.is_file() for _, path in planned)
    echo(f"labels: {done} of {len(planned)} chunks already labelled")
    if done == len(planned):
        return read_labels(path for _, path in planned)
    with teacher_cluster(settings, cluster, structures_table, labels_dir) as label:
        return label(parents, labels_dir)


def read_groups(path: Path | None) -> dict[str, str]:
    """Parent id -> group from a CSV with an ``id`` column and a ``family`` or ``group`` column."""
    if path is None:
        return {}
    table = pd.read_csv(path, dtype=str)
    column = "family" if "family" in table else "group"
    if "id" not in table or column not in table:
        raise InputError(f"{path}: expected columns id and family (or group)")
    return dict(zip(table["id"], table[column].fillna("unknown"), strict=True))


@dataclass(frozen=True)
class TrainingPool:
    """Parents to label (id, structure), each one's group, what was left out and why, and the table
    the given structures were ingested into."""

    parents: list[tuple[str, Structure]]
    group_of: dict[str, str]
    left_out: dict[str, str]
    table: Path


def pool_from_rows(
    rows: list[dict[str, Any]], variants: bool, known_groups: dict[str, str], max_sites: int
) -> tuple[list[tuple[str, Structure]], dict[str, str], dict[str, str]]:
    """(parents, group of each, left out with the reason) of ok structure rows (see :func:`training_pool`)."""
    parents = [(row[Col.ID], row_to_structure(row)) for row in rows]
    group_of = {
        row[Col.ID]: known_groups.get(entry_id(row[Col.ID]), row[Col.CHEMICAL_SYSTEM]) for row in rows
    }
    if variants:
        for pid, structure in list(parents):
            if structure.is_ordered and len(structure) <= MAX_VARIANT_PROTOTYPE_SITES:
                for vid, variant in substitutional_variants(pid, structure):
                    parents.append((vid, variant))
                    group_of[vid] = group_of[pid]
    left_out = {pid: f"more than {max_sites} sites" for pid, s in parents if len(s) > max_sites}
    return [(pid, s) for pid, s in parents if pid not in left_out], group_of, left_out


def training_pool(
    files: list[Path],
    bundled: bool,
    variants: bool,
    groups_csv: Path | None,
    max_sites: int,
    out: Path,
    echo: Callable[[str], None],
) -> TrainingPool:
    """The parents of a training: the given files and/or the bundled set, ingested into ``out/structures``,
    plus (``variants``) the substitutional variants of their ordered prototypes. Groups: the ``family``
    of ``groups_csv`` where it names the parent (by file stem), else the parent's chemical system; a variant belongs to
    its prototype's group. Parents above ``max_sites`` sites are left out (with the reason)."""
    rows, table = gather_parents(files, bundled, out, echo)
    parents, group_of, left_out = pool_from_rows(rows, variants, read_groups(groups_csv), max_sites)
    echo(
        f"to label: {len(parents)} parents ({sum(not s.is_ordered for _, s in parents)} disordered); "
        f"{len(left_out)} larger than {max_sites} sites left out"
    )
    return TrainingPool(parents, group_of, left_out, table)


def train_energy(
    files: list[Path],
    out: Path,
    options: NativeTrainingOptions,
    *,
    bundled: bool = False,
    variants: bool = True,
    labels: LabelSettings | None = None,
    groups_csv: Path | None = None,
    holdout_fraction: float = 0.3,
    cluster: dict[str, Any] | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Build the training data with the pipeline, label it with the teacher on Dask, distill the ensemble,
    calibrate its spread threshold on held-out groups and save it into ``out`` (see the module docstring).

    Groups (for the held-out split): see :func:`training_pool`.

    Returns:
        The training report (also written to ``training_report.json``).
    """
    labels = labels or LabelSettings()
    check_model_folder(out, MODEL_FOLDER_ENTRIES, "screening train energy")
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    start = time.perf_counter()
    pool = training_pool(files, bundled, variants, groups_csv, labels.max_sites, out, echo)
    parents = pool.parents
    label_rows = label_chunks(parents, labels, out / "labels", dict(cluster or {}), pool.table, echo)
    times["labels"] = time.perf_counter() - start
    failed = {r["parent_id"]: r["error"] for r in label_rows if r["error"]}
    examples = distillation_examples(label_rows, dict(parents), base=options.base)
    start = time.perf_counter()
    ensemble, held_out = distill(
        examples,
        pool.group_of,
        options,
        teacher=labels.teacher,
        holdout_fraction=holdout_fraction,
        progress=echo,
    )
    times["training"] = time.perf_counter() - start
    ensemble.metadata["labels"] = {
        "teacher": labels.teacher,
        "n_samples": labels.n_samples,
        "seed": labels.seed,
        "n_parents": len(parents),
        "n_examples": len(examples),
        "variants": variants,
        "max_sites": labels.max_sites,
        "groups": None if groups_csv is None else str(groups_csv),
    }
    ensemble.save(out)
    report = {
        "held_out": held_out,
        "left_out": {**pool.left_out, **failed},
        "seconds": times,
        "options": options.as_dict(),
    }
    write_text_atomic(
        json.dumps(report, indent=1, sort_keys=True, default=str) + "\n", out / "training_report.json"
    )
    return report


@dataclass(frozen=True)
class TrainingFolder:
    """What a ``screening train energy`` folder holds, rebuilt: the ensemble, its parents and their
    groups, the label rows, the examples, and the training / calibration / test split it was trained on."""

    ensemble: NativeEnergyEnsemble
    parents: dict[str, Structure]
    group_of: dict[str, str]
    label_rows: list[dict[str, Any]]
    examples: list[Example]
    train: set[str]
    calibration: set[str]
    test: set[str]


def read_training_folder(out: Path, groups_csv: Path | None = None) -> TrainingFolder:
    """Rebuild a training folder (see :class:`TrainingFolder`) with the groups it was trained with
    (``groups_csv``, else the CSV its training recorded)."""
    ensemble = NativeEnergyEnsemble.load(out)
    meta = ensemble.metadata
    recorded = meta["labels"].get("groups")
    groups_csv = groups_csv or (Path(recorded) if recorded else None)
    rows = [
        row
        for row in structures_dataset(out / "structures").to_table().to_pylist()
        if row[Col.STATUS] == "ok"
    ]
    max_sites = meta["labels"].get("max_sites", LabelSettings.max_sites)
    parents, group_of, _ = pool_from_rows(
        rows, meta["labels"]["variants"], read_groups(groups_csv), max_sites
    )
    label_rows = read_labels(sorted((out / "labels").glob("*.parquet")))
    examples = distillation_examples(label_rows, dict(parents), base=ensemble.base)
    used = {e.parent_id: group_of[e.parent_id] for e in examples}
    split = held_out_split(used, meta["held_out"]["holdout_fraction"], meta["training"]["seed"])
    return TrainingFolder(ensemble, dict(parents), group_of, label_rows, examples, *split)
