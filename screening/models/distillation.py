"""Training data for the occupancy-native energy model, made by the pipeline itself and labelled by a teacher.

A teacher is a registered pretrained potential. Each structure becomes one or more labelled ordered
configurations:

- an ordered structure is its own single configuration;
- a disordered one gives the ``n_samples`` ordered configurations of the ``sample`` disorder strategy
  (:func:`screening.models.disorder.sample_configurations`, same seed and supercell rules), each labelled
  with the teacher's energy per atom; their mean is the configurational mean the native model must match
  on the disordered parent in one evaluation.

Labels are plain rows (one per configuration, :data:`LABEL_COLUMNS`), so a Dask task can return them and a
Parquet file can keep them. :func:`substitutional_variants` widens the chemistry of a training set with
solid solutions and partly emptied sublattices made from ordered prototypes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure

from screening.models.base import EnergyModel, describe_error
from screening.models.disorder import DEFAULT_MAX_SUPERCELL_SITES, sample_configurations

#: Columns of a label row.
LABEL_COLUMNS = (
    "parent_id",  # the structure the configuration comes from
    "configuration",  # 0..K-1 (0 for an ordered parent)
    "parent_is_ordered",
    "lattice_A",  # 9 floats, lattice vectors as rows (angstrom)
    "atomic_numbers",  # one per site
    "frac_coords",  # 3 floats per site
    "energy_per_atom_eV",  # the teacher's energy per atom (NaN where ``error``)
    "teacher_cpu_s",  # CPU seconds of the teacher's forward passes, shared out by atom count
    "base_energy_per_atom_eV",  # a disordered parent's alchemical energy from the teacher (NaN: none)
    "teacher",
    "error",  # why the parent could not be labelled, else None
)


def configuration_structure(row: dict[str, Any]) -> Structure:
    """The ordered configuration of a label row."""
    lattice = Lattice(np.asarray(row["lattice_A"], dtype=float).reshape(3, 3))
    coords = np.asarray(row["frac_coords"], dtype=float).reshape(-1, 3)
    return Structure(lattice, [int(z) for z in row["atomic_numbers"]], coords)


def _row(
    parent_id: str,
    ordered: bool,
    teacher: str,
    *,
    configuration: int = -1,
    structure: Structure | None = None,
    energy: float = float("nan"),
    cpu_s: float = 0.0,
    error: str | None = None,
) -> dict[str, Any]:
    """One label row (:data:`LABEL_COLUMNS`): a labelled configuration, or (no structure) a parent that
    failed with ``error``."""
    return {
        "parent_id": parent_id,
        "configuration": configuration,
        "parent_is_ordered": ordered,
        "lattice_A": [] if structure is None else structure.lattice.matrix.reshape(-1).tolist(),
        "atomic_numbers": [] if structure is None else [int(z) for z in structure.atomic_numbers],
        "frac_coords": [] if structure is None else structure.frac_coords.reshape(-1).tolist(),
        "energy_per_atom_eV": float(energy),
        "teacher_cpu_s": float(cpu_s),
        "base_energy_per_atom_eV": float("nan"),
        "teacher": teacher,
        "error": error,
    }


def teacher_labels(
    teacher: EnergyModel,
    structures: Sequence[Structure],
    ids: Sequence[str],
    *,
    n_samples: int = 8,
    seed: int = 0,
    max_supercell_sites: int = DEFAULT_MAX_SUPERCELL_SITES,
) -> list[dict[str, Any]]:
    """Label rows (:data:`LABEL_COLUMNS`) of every configuration of ``structures``, all configurations
    going through the teacher together (batched by atom count).

    A parent that cannot be sampled or evaluated (any configuration failing) gives one row with its
    ``error`` and no configurations; the others are unaffected. Where the teacher has an alchemical mode,
    each disordered parent's one-pass alchemical energy is recorded on its rows
    (``base_energy_per_atom_eV``, the base of the default native model).
    """
    jobs: list[tuple[int, int, Structure]] = []  # (parent index, configuration index, structure)
    errors: dict[int, str] = {}
    for index, structure in enumerate(structures):
        if structure.is_ordered:
            jobs.append((index, 0, structure))
            continue
        try:
            sample = sample_configurations(
                structure, n_samples, seed=seed, max_supercell_sites=max_supercell_sites
            )
        except Exception as err:  # one parent's failure is its own row
            errors[index] = describe_error(err)
            continue
        jobs.extend((index, k, configuration) for k, configuration in enumerate(sample.structures))
    clock = time.process_time()
    energies, job_errors = teacher.try_predict_energy_per_atom([s for _, _, s in jobs])
    cpu_per_atom_s = (time.process_time() - clock) / max(1, sum(len(s) for _, _, s in jobs))
    for (index, _, _), error in zip(jobs, job_errors, strict=True):
        if error is not None and index not in errors:
            errors[index] = f"a configuration: {error}"
    rows = []
    for (index, k, structure), energy in zip(jobs, energies, strict=True):
        if index not in errors:
            rows.append(
                _row(
                    ids[index],
                    structures[index].is_ordered,
                    teacher.name,
                    configuration=k,
                    structure=structure,
                    energy=energy,
                    cpu_s=cpu_per_atom_s * len(structure),
                )
            )
    rows.extend(
        _row(ids[index], structures[index].is_ordered, teacher.name, error=error)
        for index, error in sorted(errors.items())
    )
    _add_alchemical_energies(teacher, structures, ids, rows)
    return rows


def _add_alchemical_energies(
    teacher: EnergyModel, structures: Sequence[Structure], ids: Sequence[str], rows: list[dict[str, Any]]
) -> None:
    """Record each labelled disordered parent's one-pass alchemical energy (the base of the default native
    model) on its rows, where the teacher has that mode."""
    if not hasattr(teacher, "alchemical_energy_per_atom"):
        return
    labelled = {row["parent_id"] for row in rows if row["error"] is None}
    chosen = [i for i, s in enumerate(structures) if not s.is_ordered and ids[i] in labelled]
    energies, _ = teacher.alchemical_energy_per_atom([structures[i] for i in chosen])
    base = {ids[i]: float(e) for i, e in zip(chosen, energies, strict=True)}
    for row in rows:
        row["base_energy_per_atom_eV"] = base.get(row["parent_id"], float("nan"))


#: Isovalent substitutions used to make solid solutions (element -> partner), both directions.
ISOVALENT_PARTNERS: dict[str, str] = {
    "Cl": "Br",
    "Br": "I",
    "S": "Se",
    "Se": "Te",
    "Si": "Ge",
    "Ge": "Sn",
    "Ti": "Zr",
    "Al": "Ga",
    "La": "Y",
    "Mg": "Zn",
    "Na": "Li",
    "P": "As",
    "Nb": "Ta",
    "Mn": "Fe",
    "Co": "Ni",
    "Ca": "Sr",
}


def substitutional_variants(
    structure_id: str, structure: Structure, *, mobile_ion: str = "Li", fractions: Sequence[float] = (0.5,)
) -> Iterator[tuple[str, Structure]]:
    """Disordered variants of an ordered prototype: each element that has an isovalent partner
    (:data:`ISOVALENT_PARTNERS`) mixed with it on all its sites at each of ``fractions``, and the mobile
    ion's sublattice partly emptied (occupancy 0.75: vacancies, as in Li-deficient conductors). Ids are
    ``<structure_id>:<element>-<partner><fraction>`` and ``<structure_id>:<ion>0.75``."""
    plain = structure.copy()
    plain.remove_oxidation_states()
    symbols = sorted({el.symbol for el in plain.composition.elements})
    for symbol in symbols:
        partner = ISOVALENT_PARTNERS.get(symbol) or {v: k for k, v in ISOVALENT_PARTNERS.items()}.get(symbol)
        if partner is None or partner in symbols:
            continue
        for fraction in fractions:
            mixed = plain.copy()
            mixed.replace_species({symbol: {symbol: 1.0 - fraction, partner: fraction}})
            yield f"{structure_id}:{symbol}-{partner}{fraction:g}", mixed
    if mobile_ion in symbols:
        emptied = plain.copy()
        emptied.replace_species({mobile_ion: {mobile_ion: 0.75}})
        yield f"{structure_id}:{mobile_ion}0.75", emptied
