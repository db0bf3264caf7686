"""The Python API: screen structures in one call, in this process, without a cluster.

Example (runs as written; the README carries the same lines)::

    from pymatgen.core import Lattice, Structure
    import screening

    lif = Structure(Lattice.cubic(4.03), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    results = screening.screen(lif)                      # a pandas DataFrame, one row per structure
    print(results[["chemical_formula_reduced", "e_above_hull_eV", "log10_sigma_S_per_cm"]])

The Dask workers of ``screening run`` call the same :func:`screening.stages.screen_partition` on each
partition of a structures table, so a table screened here and one screened on a cluster hold the same
rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from pymatgen.core import Structure

from screening.config import ScienceConfig
from screening.errors import InputError

#: ``source`` of the rows made from structures passed in memory.
PYTHON_SOURCE = "python"


def _as_config(config: ScienceConfig | Mapping[str, Any] | None) -> ScienceConfig:
    if config is None:
        return ScienceConfig()
    if isinstance(config, ScienceConfig):
        return config
    return ScienceConfig(**config)


def structures_table(structures: Structure | Sequence[Structure]) -> pd.DataFrame:
    """Rows of the structures table for in-memory structures (ids ``structure-0``, ``structure-1``...,
    or the ``id`` in a structure's ``properties``), checked as ingest checks them (unusable ones become
    failed rows, odd ones keep their ``warnings``).

    Raises:
        InputError: an item is not a pymatgen ``Structure``, or two structures share an id.
    """
    from screening.validation import checked_row

    items = [structures] if isinstance(structures, Structure) else list(structures)
    rows = []
    for index, structure in enumerate(items):
        if not isinstance(structure, Structure):
            raise InputError(f"item {index} is a {type(structure).__name__}, not a pymatgen Structure")
        structure_id = str(structure.properties.get("id", f"structure-{index}"))
        rows.append(checked_row(structure, structure_id, PYTHON_SOURCE))
    ids = [row["id"] for row in rows]
    if len(set(ids)) != len(ids):
        raise InputError(f"structure ids repeat: {sorted({i for i in ids if ids.count(i) > 1})[:5]}")
    return pd.DataFrame.from_records(rows)


def screen(
    structures: Structure | Sequence[Structure] | pd.DataFrame,
    *,
    config: ScienceConfig | Mapping[str, Any] | None = None,
    model: Any = None,
    references: Any = None,
) -> pd.DataFrame:
    """Screen structures: stability (formation energy, energy above hull) and ionic conductivity.

    Args:
        structures: a pymatgen ``Structure``, a sequence of them, or a structures table (a pandas
            DataFrame as read by :func:`screening.read_structures`).
        config: the science settings (a :class:`~screening.config.ScienceConfig` or its fields as a
            dict); None: the defaults.
        model: an ``EnergyModel`` already loaded (:func:`screening.load_model`), a registered model name,
            or None for ``config.model`` on ``config.device``. A model given here overrides
            ``config.model``.
        references: hull reference entries: a ``ReferenceSet``, the path of a references Parquet file
            written by ``screening ingest --source mp``, or None for the set that ships with pymatgen.

    Returns:
        The results table (columns of ``screening.schema.RESULTS_SCHEMA``), one row per input structure
        in input order; failed rows keep their ``stage`` and ``error``.
    """
    from screening.models import load_model
    from screening.stages import screen_partition
    from screening.thermo import ReferenceSet, load_reference_entries

    config = _as_config(config)
    if isinstance(model, str):
        config = config.model_copy(update={"model": ScienceConfig(model=model).model})
        model = None
    if model is None:
        model = load_model(config.model, device=config.device)
    elif model.name != config.model:
        config = config.model_copy(update={"model": model.name})
    if not isinstance(references, ReferenceSet):
        if references is not None and not isinstance(references, str | os.PathLike):
            raise InputError(f"references must be a ReferenceSet or a path, not {type(references).__name__}")
        references = load_reference_entries(references)
    table = structures if isinstance(structures, pd.DataFrame) else structures_table(structures)
    return screen_partition(table, config, model, references=references)
