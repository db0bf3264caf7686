"""``screening learn``: cost-aware active learning of a native energy ensemble over a pool of structures.

The pool is gathered as for ``screening train energy`` (files and/or the bundled set, plus variants);
one Dask cluster labels each round's acquisitions with the teacher (label files in ``labels/``, so an
interrupted loop relabels nothing it already has); the loop is :func:`screening.models.active_learning.
active_learning`. The model folder receives the last ensemble (loadable with ``--native-model``) and
``learning_curve.json`` (one record per round: labelled parents, teacher CPU-seconds, pool spread,
expected gain, and why it stopped).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipelines.train import check_model_folder
from pipelines.train_energy import LabelSettings, teacher_cluster, training_pool
from screening.io import write_text_atomic
from screening.models.active_learning import ActiveLearningOptions, active_learning

#: What this command writes into a model folder (anything else there is the user's: refuse).
LEARN_FOLDER_ENTRIES = frozenset({"model.json", "weights.pt", "structures", "labels", "learning_curve.json"})

CURVE_FILE = "learning_curve.json"


def learn(
    files: list[Path],
    out: Path,
    options: ActiveLearningOptions,
    *,
    bundled: bool = False,
    variants: bool = True,
    teacher: str = "sevennet-0",
    cluster: dict[str, Any] | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run active learning over the pool and save the ensemble and its learning curve into ``out``.

    The saved ensemble's spread threshold is 0 (``auto`` then always asks the teacher): a threshold needs
    held-out structures the loop never chose; ``screening train energy`` calibrates one.
    """
    check_model_folder(out, LEARN_FOLDER_ENTRIES, "screening learn")
    out.mkdir(parents=True, exist_ok=True)
    labels = LabelSettings(teacher=teacher, n_samples=options.n_samples, seed=options.seed)
    pool = training_pool(files, bundled, variants, None, labels.max_sites, out, echo)
    structures = dict(pool.parents)
    with teacher_cluster(labels, dict(cluster or {}), pool.table, out / "labels") as label_on_cluster:

        def label(ids: list[str]) -> tuple[list[dict[str, Any]], float]:
            rows = label_on_cluster([(i, structures[i]) for i in ids], out / "labels")
            return rows, float(sum(row["teacher_cpu_s"] for row in rows))

        ensemble, history, reason = active_learning(
            structures, label, options, teacher=teacher, progress=echo
        )
    ensemble.metadata["active_learning"] = {"stopped": reason, "rounds": len(history)}
    ensemble.save(out)
    curve = {
        "stopped": reason,
        "options": {**asdict(options), "training": options.training.as_dict()},
        "rounds": [asdict(record) for record in history],
        "left_out": pool.left_out,
    }
    write_text_atomic(json.dumps(curve, indent=1, default=str) + "\n", out / CURVE_FILE)
    return curve
