"""Li-M-O structures of Materials Project's kind, generated from the bundled cathode prototypes: each
transition metal substituted by Ti, V, Cr, Mn, Fe, Co, Ni and Cu, fully lithiated and half delithiated
(Li sites at occupancy 0.5), so that mixed valence is the rule. Used to measure the transport stage's
coverage (the share of Li-containing structures that get a conductivity)."""

from __future__ import annotations

from collections.abc import Iterator

from pymatgen.core import Structure

from screening.bundled_records import load_bundled_entries

METALS = ("Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu")
TRANSITION = {"Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Nb"}


def prototypes() -> list[tuple[str, Structure]]:
    """Bundled Li-M-O(-P) structures with one or more 3d/4d transition metals."""
    chosen = []
    for entry in load_bundled_entries():
        structure = entry.structure()
        symbols = {el.symbol for el in structure.composition.elements}
        if "Li" in symbols and "O" in symbols and symbols & TRANSITION:
            chosen.append((entry.id, structure))
    return chosen


def li_m_o_structures() -> Iterator[tuple[str, Structure]]:
    """(id, structure) of every substituted and delithiated variant."""
    for prototype_id, structure in prototypes():
        plain = structure.copy()
        plain.remove_oxidation_states()
        for metal in METALS:
            swapped = plain.copy()
            swapped.replace_species(
                {el: metal for el in {e.symbol for e in plain.composition.elements} & TRANSITION}
            )
            yield f"{prototype_id}:{metal}", swapped
            half = swapped.copy()
            half.replace_species({"Li": {"Li": 0.5}})
            yield f"{prototype_id}:{metal}:Li0.5", half
