"""``screening train conductivity``: labelled structures -> feature table on Dask -> grouped
cross-validation -> a model folder that loads by path (or, shipped, by name).

The model folder holds, besides the checkpoint (``model.json``, ``weights.pt``):

- ``structures/``: the structures table, when the structures were given as files (ingested here);
- ``features/``: one Parquet file per partition, named by the hash of the feature settings and of the
  partition's structures, and ``index.json`` naming those of the latest training, so a rerun computes only
  what changed (the expensive part: the potential's
  forward passes and the bond-valence landscape of every structure);
- ``training_report.json``: entries used and left out (with the reason), cross-validation scores per
  grouping (nested: each fold's model calibrates its spread on its own training folds), the calibration
  factors of the saved model, timings.

The folder must be new, empty, or one this command wrote before; anything else is refused untouched.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.cluster import open_client
from pipelines.partitions import Partition, partition_inputs_sha256, plan_partitions, structure_ids
from pipelines.settings import RunSettings
from pipelines.worker import feature_partition
from screening.errors import InputError
from screening.io import dataset_table_name, structures_dataset, write_table_atomic, write_text_atomic
from screening.schema import Col
from screening.transport.learned_training import (
    TrainingOptions,
    cross_validate,
    cv_scores,
    entry_id,
    fit_conductivity_model,
    grouped_folds,
    join_labels,
    read_labels,
)

#: What this command writes into a model folder (anything else there is the user's: refuse).
MODEL_FOLDER_ENTRIES = frozenset(
    {"model.json", "weights.pt", "structures", "features", "training_report.json"}
)
#: The feature files of the latest training, in ``features/`` (older partitions may lie beside them).
INDEX_FILE = "index.json"
#: Groupings of the cross-validation: a structure family, and separately a chemical system.
CV_GROUPINGS = ("family", "chemical_system")


@dataclass
class TrainSummary:
    """What a training run did (also written to ``training_report.json``)."""

    out: Path
    n_labels: int
    n_used: int
    left_out: dict[str, str]
    cv: dict[str, dict[str, float]]
    calibration: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)

    def format(self) -> str:
        lines = [
            f"model: {self.out}",
            f"  labelled entries: {self.n_labels}   used: {self.n_used}   left out: {len(self.left_out)}",
        ]
        for key, reason in list(self.left_out.items())[:10]:
            lines.append(f"  left out {key}: {reason}")
        for grouping, scores in self.cv.items():
            lines.append(
                f"  grouped 5-fold CV by {grouping}: Spearman {scores['spearman']:.2f}, MAE "
                f"{scores['mae_log10_sigma']:.2f}, AUC {scores['auc']:.2f}, +-1 sd covers "
                f"{scores['coverage_1sd']:.0%}, Ea MAE {scores['ea_mae_eV']:.2f} eV"
            )
        if "uncalibrated" in self.calibration:
            lines.append(f"  spread uncalibrated: {self.calibration['uncalibrated']}")
        else:
            lines.append(
                f"  spread calibrated on {self.calibration['folds']}-fold CV by {self.calibration['grouping']}: "
                f"log10 sigma sd x {self.calibration['log10_sigma']:.2f}, Ea sd x {self.calibration['ea_eV']:.2f}"
            )
        lines.append("  time: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items()))
        return "\n".join(lines)


def check_model_folder(
    out: Path, entries: frozenset[str] = MODEL_FOLDER_ENTRIES, command: str = "screening train conductivity"
) -> None:
    """Refuse a folder holding anything but ``entries``, what ``command`` writes (nothing of the user's
    is touched)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file: choose a new folder for the model")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in entries)
        if foreign:
            raise InputError(
                f"--out {out} holds other files ({', '.join(foreign[:3])}): nothing was written; choose a "
                f"new or empty folder, or one `{command}` wrote"
            )


def cluster_run_settings(
    structures: Path, out: Path, science: dict[str, Any], cluster: dict[str, Any] | None
) -> RunSettings:
    """Run settings of a training's cluster work: the cluster options (``workers``, ``scheduler``,
    ``cluster``, ``partition_size``...) as they are, ``device`` moved into the science settings."""
    extra = dict(cluster or {})
    if "device" in extra:
        science = {**science, "device": extra.pop("device")}
    return RunSettings(structures=structures, out=out, science=science, **extra)


def structures_table(structures: list[Path], out: Path, echo: Callable[[str], None]) -> Path:
    """A structures table: the one given, or the given files ingested into ``out/structures``."""
    if len(structures) == 1 and dataset_table_name(structures[0]) == "structures":
        return structures[0]
    from screening.io import check_output_directory, write_dataset
    from screening.sources.files import iter_file_rows

    table = out / "structures"
    check_output_directory(table)
    rows = list(iter_file_rows(structures, progress=True))
    write_dataset(rows, table, source="files")
    failed = [r for r in rows if r[Col.STATUS] != "ok"]
    echo(f"ingested {len(rows)} structures ({len(failed)} failed) -> {table}")
    return table


def _feature_settings_sha256(settings: RunSettings) -> str:
    from screening.stages import FEATURES_VERSION

    payload = json.dumps(
        {
            "science": settings.science.result_defining(),
            "max_sites": settings.max_sites_per_structure,
            "features_version": FEATURES_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def write_features_file(frame: pd.DataFrame, path: Path) -> None:
    """Write a feature table (its layer names in the file metadata), atomically."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    layers = json.dumps(frame.attrs.get("node_feature_layers", []))
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"node_feature_layers": layers})
    write_table_atomic(table, path)


def read_features_file(path: Path) -> pd.DataFrame:
    """A feature table written by :func:`write_features_file`."""
    table = pq.read_table(path)
    frame = table.to_pandas()
    frame.attrs["node_feature_layers"] = json.loads(table.schema.metadata[b"node_feature_layers"])
    return frame


def feature_files(settings: RunSettings, features_dir: Path) -> list[tuple[Partition, Path]]:
    """The partitions of ``settings.structures`` and the file of each one's features: named by the hash
    of the feature settings and of the partition's structures, so any change makes a new name."""
    partitions = plan_partitions(structure_ids(settings.structures), settings.partition_size)
    settings_sha = _feature_settings_sha256(settings)[:12]
    inputs = partition_inputs_sha256(settings.structures, partitions)
    return [
        (part, features_dir / f"{settings_sha}-{digest[:16]}.parquet")
        for part, digest in zip(partitions, inputs, strict=True)
    ]


def compute_features(settings: RunSettings, features_dir: Path, echo: Callable[[str], None]) -> pd.DataFrame:
    """The feature table of ``settings.structures``, partition by partition on the cluster; partitions
    already in ``features_dir`` under the same settings and inputs are reused."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    planned = feature_files(settings, features_dir)
    names = [path for _, path in planned]
    todo = [(part, path) for part, path in planned if not path.is_file()]
    echo(f"features: {len(planned) - len(todo)} of {len(planned)} partitions already computed")
    if todo:
        with open_client(settings) as (client, info):
            config = settings.science.model_copy(update={"device": info.device})
            structures = str(settings.structures.resolve())
            futures = {
                client.submit(
                    feature_partition,
                    structures,
                    part.ids,
                    config,
                    settings.max_sites_per_structure,
                    retries=settings.retries,
                    resources=info.resources,
                    pure=False,
                ): (part, path)
                for part, path in todo
            }
            with tqdm(total=sum(len(p.ids) for p, _ in todo), unit="structure", desc="features") as bar:
                for future in as_completed(futures):
                    part, path = futures[future]
                    write_features_file(future.result(), path)
                    bar.update(len(part.ids))
    write_text_atomic(json.dumps([path.name for path in names], indent=0) + "\n", features_dir / INDEX_FILE)
    return concat_features([read_features_file(path) for path in names])


def concat_features(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One feature table of several (their layers must agree)."""
    layers = {tuple(frame.attrs["node_feature_layers"]) for frame in frames}
    if len(layers) != 1:
        raise InputError(f"feature tables of different node-feature layers: {sorted(layers)}")
    table = pd.concat(frames, ignore_index=True)
    table.attrs["node_feature_layers"] = list(layers.pop())
    return table


def read_feature_dir(features_dir: Path) -> pd.DataFrame:
    """Every feature partition of a model folder's ``features/`` (one settings hash only).

    Raises:
        InputError: no feature files, or files of several feature settings (train again to choose).
    """
    paths = sorted(Path(features_dir).glob("*.parquet"))
    settings = {path.name.split("-", 1)[0] for path in paths}
    if not paths or len(settings) != 1:
        raise InputError(
            f"{features_dir}: expected the feature files of one training, found {len(settings)} settings"
        )
    return concat_features([read_features_file(path) for path in paths])


def structures_chemical_systems(structures: Path) -> dict[str, str]:
    """Label id -> chemical system of a structures table (the second grouping of the cross-validation)."""
    table = structures_dataset(structures).to_table(columns=[Col.ID, Col.CHEMICAL_SYSTEM]).to_pylist()
    return {entry_id(row[Col.ID]): row[Col.CHEMICAL_SYSTEM] or "" for row in table}


def train_conductivity(
    labels: Path,
    structures: list[Path],
    out: Path,
    options: TrainingOptions,
    *,
    cv_folds: int = 5,
    cluster: dict[str, Any] | None = None,
    echo: Callable[[str], None] = print,
) -> TrainSummary:
    """Train a learned conductivity model (see the module docstring).

    Args:
        labels: labels CSV (:func:`screening.transport.learned_training.read_labels`).
        structures: a structures table, or CIF/POSCAR files and folders whose file stems are the label ids.
        out: the model folder.
        options: features, network and ensemble settings (the seed is in ``options.ensemble``).
        cv_folds: folds of each grouped cross-validation (0: none).
        cluster: run settings for the feature computation (``workers``, ``scheduler``, ``cluster``,
            ``partition_size``, ``device``...).
        echo: where progress lines go.
    """
    times: dict[str, float] = {}
    check_model_folder(out)
    label_table = read_labels(labels)
    out.mkdir(parents=True, exist_ok=True)
    table_path = structures_table(structures, out, echo)
    science = {"transport_method": "learned", "model": options.features.feature_model}
    settings = cluster_run_settings(table_path, out, science, cluster)
    start = time.perf_counter()
    features = compute_features(settings, out / "features", echo)
    times["features"] = time.perf_counter() - start
    data, left_out = join_labels(features, label_table, structures_chemical_systems(table_path))
    cv: dict[str, dict[str, float]] = {}
    start = time.perf_counter()
    for grouping in CV_GROUPINGS if cv_folds >= 2 else ():
        if grouping not in data.groups or len(set(data.groups[grouping])) < cv_folds:
            continue
        folds = grouped_folds(data.groups[grouping], cv_folds, seed=options.ensemble.seed)
        cv[grouping] = cv_scores(data, cross_validate(data, options, folds))
    times["cross_validation"] = time.perf_counter() - start
    start = time.perf_counter()
    manifest = {
        "labels": str(labels),
        "labels_sha256": hashlib.sha256(Path(labels).read_bytes()).hexdigest(),
        "feature_settings": settings.science.result_defining(),
        "cross_validation": cv,
        "cv_folds": cv_folds,
    }
    model = fit_conductivity_model(data, options, manifest)
    model.save(out)
    times["fit"] = time.perf_counter() - start
    calibration = model.manifest["calibration"]
    summary = TrainSummary(out, len(label_table), len(data), left_out, cv, calibration, times)
    report = {
        "n_labels": summary.n_labels,
        "n_used": summary.n_used,
        "left_out": left_out,
        "cross_validation": cv,
        "calibration": calibration,
        "seconds": times,
    }
    write_text_atomic(json.dumps(report, indent=1, sort_keys=True) + "\n", out / "training_report.json")
    return summary
