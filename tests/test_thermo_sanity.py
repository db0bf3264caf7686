"""Sanity check of the whole stability chain on textbook compounds, with real pretrained models.

Each compound is built in its textbook structure at its experimental (room-temperature) lattice
parameters, its energy is predicted, and it is compared with the Materials Project entry of the same
formula shipped in pymatgen (``calc_compounds.json.gz``, raw GGA energies):

* like with like: a model trained on raw energies (SevenNet-0) is compared with the entry's raw energy per
  atom, a model trained on MP2020-corrected energies (CHGNet) with the entry's corrected energy per atom;
* the predicted structure placed on the bundled hull (both sides MP2020-corrected) must be within
  30 meV/atom of it.

Only entries MP lists on its hull (``e_above_hull == 0``) and that are the textbook polymorph are used.
Left out, with the reason: CsCl, CsBr, CsI (the MP entries are the rocksalt polymorphs, which PBE places
below the CsCl-type structure: SevenNet-0 relaxations give B1 CsCl 53 meV/atom below B2), LiI (the MP entry
is wurtzite LiI, 31 meV/atom below rocksalt after relaxation), LiCl and LiBr (rocksalt entries are 20-26
meV/atom above MP's hull, where wurtzite polymorphs lie in PBE).

Run as a script (``python tests/test_thermo_sanity.py``) to print the per-compound table of BENCHMARKS.md.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from screening.schema import Col
from screening.thermo import load_reference_entries, stability
from screening.thermo.references import CALC_COMPOUNDS_PATH

ENERGY_TOLERANCE_eV = 0.050
HULL_TOLERANCE_eV = 0.030


def _rocksalt(cation: str, anion: str, a: float) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _antifluorite(cation: str, anion: str, a: float) -> Structure:
    """Anion on 4a (fcc), cation on 8c (tetrahedral holes)."""
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [anion, cation], [[0, 0, 0], [0.25] * 3])


def _fluorite(cation: str, anion: str, a: float) -> Structure:
    return _antifluorite(anion, cation, a)


def _wurtzite(cation: str, anion: str, a: float, c: float, u: float) -> Structure:
    return Structure.from_spacegroup(
        "P6_3mc", Lattice.hexagonal(a, c), [cation, anion], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, u]]
    )


#: Textbook structures at experimental room-temperature lattice parameters (angstrom; Wyckoff u, x).
TEXTBOOK: dict[str, Structure] = {
    "LiF": _rocksalt("Li", "F", 4.0263),
    "NaF": _rocksalt("Na", "F", 4.634),
    "NaCl": _rocksalt("Na", "Cl", 5.6402),
    "NaBr": _rocksalt("Na", "Br", 5.9772),
    "NaI": _rocksalt("Na", "I", 6.4728),
    "KF": _rocksalt("K", "F", 5.347),
    "KCl": _rocksalt("K", "Cl", 6.2929),
    "KBr": _rocksalt("K", "Br", 6.600),
    "KI": _rocksalt("K", "I", 7.0655),
    "RbCl": _rocksalt("Rb", "Cl", 6.581),
    "MgO": _rocksalt("Mg", "O", 4.2112),
    "CaO": _rocksalt("Ca", "O", 4.8105),
    "SrO": _rocksalt("Sr", "O", 5.1615),
    "BaO": _rocksalt("Ba", "O", 5.5234),
    "LiH": _rocksalt("Li", "H", 4.0834),
    "NaH": _rocksalt("Na", "H", 4.880),
    "MgS": _rocksalt("Mg", "S", 5.2033),
    "CaS": _rocksalt("Ca", "S", 5.6948),
    "SrS": _rocksalt("Sr", "S", 6.0198),
    "BaS": _rocksalt("Ba", "S", 6.3875),
    "Li2O": _antifluorite("Li", "O", 4.6114),
    "Li2S": _antifluorite("Li", "S", 5.7158),
    "Li2Se": _antifluorite("Li", "Se", 6.017),
    "Li2Te": _antifluorite("Li", "Te", 6.517),
    "Na2O": _antifluorite("Na", "O", 5.55),
    "Na2S": _antifluorite("Na", "S", 6.526),
    "K2O": _antifluorite("K", "O", 6.436),
    "K2S": _antifluorite("K", "S", 7.406),
    "CaF2": _fluorite("Ca", "F", 5.4626),
    "SrF2": _fluorite("Sr", "F", 5.7996),
    "BaF2": _fluorite("Ba", "F", 6.2001),
    # Li3N (P6/mmm): N on 1a, Li on 1b (between the Li2N layers) and 2c (in them)
    "Li3N": Structure(
        Lattice.hexagonal(3.648, 3.875),
        ["N", "Li", "Li", "Li"],
        [[0, 0, 0], [0, 0, 0.5], [1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0]],
    ),
    "BeO": _wurtzite("Be", "O", 2.6979, 4.3772, 0.378),
    "AlN": _wurtzite("Al", "N", 3.1114, 4.9792, 0.3821),
    "GaN": _wurtzite("Ga", "N", 3.189, 5.185, 0.377),
    # rutile MgF2 (P4_2/mnm): Mg on 2a, F on 4f (x, x, 0)
    "MgF2": Structure.from_spacegroup(
        "P4_2/mnm", Lattice.tetragonal(4.623, 3.052), ["Mg", "F"], [[0, 0, 0], [0.3029, 0.3029, 0]]
    ),
}


def _mp_entries() -> dict[str, dict]:
    with gzip.open(CALC_COMPOUNDS_PATH, "rt") as handle:
        return json.load(handle)


def sanity_table(model_name: str) -> list[dict]:
    """Per compound: predicted and MP energies per atom (eV/atom, like with like) and the hull distance."""
    from screening.models import load_model

    model = load_model(model_name, device="cpu")
    references = load_reference_entries()
    corrected_by_formula = {e.composition.reduced_formula: e.energy_per_atom for e in references.entries}
    raw = _mp_entries()
    structures = [TEXTBOOK[formula].get_primitive_structure() for formula in TEXTBOOK]
    predicted = model.predict_energy_per_atom(structures)
    rows = []
    for formula, structure, energy in zip(TEXTBOOK, structures, predicted, strict=True):
        entry = raw[formula]
        mp_raw = entry["energy"] / sum(entry["composition"].values())
        mp = corrected_by_formula[formula] if model.training_energies_corrected else mp_raw
        result = stability(
            structure.composition,
            float(energy),
            references=references,
            energies_corrected=model.training_energies_corrected,
        )
        rows.append(
            {
                "formula": formula,
                "mp_id": entry["entry_id"],
                "mp_e_above_hull": entry["data"]["e_above_hull"],
                "predicted_eV": float(energy),
                "mp_eV": mp,
                "e_above_hull_eV": result[Col.E_ABOVE_HULL],
            }
        )
    return rows


def test_textbook_structures_match_their_mp_entries() -> None:
    raw = _mp_entries()
    assert len(TEXTBOOK) >= 15
    for formula, structure in TEXTBOOK.items():
        assert structure.composition.reduced_formula == formula
        assert raw[formula]["data"]["e_above_hull"] == 0, formula
        assert structure.is_valid(tol=1.5), formula  # no two atoms closer than 1.5 angstrom


@pytest.mark.slow
def test_predicted_energies_and_hull_distances_of_textbook_compounds() -> None:
    """SevenNet-0, the default model. (CHGNet 0.3.0 misses the 50 meV/atom bar on 7 of the 36 compounds,
    relaxed or not; its table is in BENCHMARKS.md.)"""
    model_name = "sevennet-0"
    rows = sanity_table(model_name)
    errors = {row["formula"]: row["predicted_eV"] - row["mp_eV"] for row in rows}
    misses = {f: round(1000 * e, 1) for f, e in errors.items() if abs(e) >= ENERGY_TOLERANCE_eV}
    assert not misses, f"{model_name}: |E_pred - E_MP| >= 50 meV/atom (meV/atom): {misses}"
    above = {
        r["formula"]: round(1000 * r["e_above_hull_eV"], 1)
        for r in rows
        if r["e_above_hull_eV"] >= HULL_TOLERANCE_eV
    }
    assert not above, f"{model_name}: e_above_hull >= 30 meV/atom (meV/atom): {above}"
    assert np.mean(np.abs(list(errors.values()))) < 0.025


if __name__ == "__main__":
    for name in ("sevennet-0", "chgnet-0.3.0"):
        table = sanity_table(name)
        print(f"\n{name}")
        print(
            "| compound | MP id | E_pred (eV/atom) | E_MP (eV/atom) | diff (meV/atom) | E_above_hull (meV/atom) |"
        )
        print("|---|---|---|---|---|---|")
        for r in table:
            diff_meV = 1000 * (r["predicted_eV"] - r["mp_eV"])
            print(
                f"| {r['formula']} | {r['mp_id']} | {r['predicted_eV']:.4f} | {r['mp_eV']:.4f} | {diff_meV:+.1f} "
                f"| {1000 * r['e_above_hull_eV']:+.1f} |"
            )
        diffs = np.array([r["predicted_eV"] - r["mp_eV"] for r in table])
        print(
            f"MAE {1000 * np.mean(np.abs(diffs)):.1f} meV/atom, mean signed {1000 * diffs.mean():+.1f}, "
            f"max |diff| {1000 * np.abs(diffs).max():.1f}, n = {len(table)}"
        )
