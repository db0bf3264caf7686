"""Small structures tables for the pipeline tests (textbook crystals, a disordered one, and bad rows), and
how the results of two runs are compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pymatgen.core import Lattice, Species, Structure

from pipelines.partitions import results_table
from screening.io import write_dataset
from screening.schema import RESULTS_SCHEMA, Col
from screening.structures import failed_row, structure_to_row


def _rocksalt(cation: str | dict, anion: str, a_A: float) -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a_A), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def good_structures() -> dict[str, Structure]:
    """Ordered and disordered crystals with and without Li (experimental lattice parameters)."""
    return {
        "lif": _rocksalt("Li", "F", 4.03),
        "licl": _rocksalt("Li", "Cl", 5.13),
        "nacl": _rocksalt("Na", "Cl", 5.64),  # no Li: transport not applicable
        "li2o": Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(4.61), ["O", "Li"], [[0, 0, 0], [0.25, 0.25, 0.25]]
        ),
        "libr": _rocksalt("Li", "Br", 5.50),
        "li-na-f": _rocksalt({Species("Li", 1): 0.5, Species("Na", 1): 0.5}, Species("F", -1), 4.35),
    }


def structure_rows(n_copies: int = 1) -> list[dict[str, Any]]:
    """Rows of the good structures (``n_copies`` of each, distinct ids) plus two bad rows."""
    rows = []
    for copy in range(n_copies):
        suffix = "" if copy == 0 else f"-{copy}"
        for name, structure in good_structures().items():
            rows.append(structure_to_row(structure, f"t-{name}{suffix}", "test", **{Col.NAME: name}))
    rows.append(failed_row("t-bad-input", "test", "could not parse CIF: no _cell_length_a"))
    # a row that passed ingestion but cannot be rebuilt: a site names a species entry that does not exist
    broken = structure_to_row(good_structures()["lif"], "t-broken-row", "test")
    broken[Col.SPECIES_AT_SITES] = ["nonexistent"] + broken[Col.SPECIES_AT_SITES][1:]
    rows.append(broken)
    return rows


def write_structures(path: Path, n_copies: int = 1) -> Path:
    """Write the test structures table to ``path``."""
    return write_dataset(structure_rows(n_copies), path, source="test")


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Results as plain comparable values: schema types, list columns as tuples, rows by id."""
    frame = results_table(frame).to_pandas().sort_values(Col.ID).reset_index(drop=True)
    for field in RESULTS_SCHEMA:
        if pa.types.is_list(field.type):
            frame[field.name] = frame[field.name].map(lambda v: tuple(v) if v is not None else None)
    return frame


# per-atom energies taken as differences of two potential energies: their noise is the energies' noise
ENERGY_DIFFERENCE_COLUMNS = (
    Col.ENERGY_PER_ATOM_STD,
    Col.E_FORM_PER_ATOM,
    Col.E_ABOVE_HULL,
    Col.E_ABOVE_HULL_STD,
    Col.NATIVE_SPREAD,
    Col.E_ABOVE_HULL_MODEL_STD,
    Col.ECW_ENERGY_SHIFT,  # the window's candidate moved onto the hull: its energy above the hull
)


def assert_same_results(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    actual, expected = comparable(actual), comparable(expected)
    assert actual[Col.ID].tolist() == expected[Col.ID].tolist()
    # float32 potentials: a worker process and this one may take other CPU kernels, and the relaxations
    # carry that 1e-7 noise up to ~3e-5 relative (seen in CI). A difference of energies (a spread over
    # configurations, a distance to the hull) takes the absolute tolerance of the energies it is taken
    # from: 0.26 meV/atom came out 0.24 once, and a hull distance of 1.01 meV/atom came out 0.98
    largest_energy = float(expected[Col.ENERGY_PER_ATOM].abs().max())  # NaN if there is none
    energy_atol = 1e-4 * largest_energy if largest_energy > 0 else 1e-9
    for column in RESULTS_SCHEMA.names:
        a, e = actual[column], expected[column]
        if pd.api.types.is_float_dtype(e):
            atol = energy_atol if column in ENERGY_DIFFERENCE_COLUMNS else 1e-9
            np.testing.assert_allclose(
                a.to_numpy(float), e.to_numpy(float), rtol=1e-4, atol=atol, err_msg=column
            )
        else:
            assert a.tolist() == e.tolist(), column
