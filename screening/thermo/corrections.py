"""Materials Project 2020 energy corrections for predicted energies.

The hull references carry MaterialsProject2020Compatibility corrections (anion corrections and the
GGA/GGA+U mixing correction). A predicted energy must carry exactly the same scheme before it is
compared with them: once, never twice. Models trained on raw MPtrj energies (``uncorrected_total_energy``)
need the correction added here; models trained on MP2020-corrected energies must not get it again.

To correct a predicted energy the compatibility class needs what an MP calculation of that composition
would have recorded: the run type and Hubbard U values of pymatgen's ``MPRelaxSet`` (GGA+U for oxides and
fluorides of Co, Cr, Fe, Mn, Mo, Ni, V, W; U chosen by the most electronegative element), the POTCAR
symbols of that input set, and oxidation states for the anion corrections.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction
from functools import lru_cache
from typing import Any

from pymatgen.core import Composition
from pymatgen.entries.compatibility import CompatibilityError, MaterialsProject2020Compatibility
from pymatgen.entries.computed_entries import ComputedEntry
from pymatgen.io.vasp.sets import MPRelaxSet

from screening.thermo.errors import ThermoError

#: Largest reduced integer formula (atoms) for which oxidation states are guessed from the composition.
MAX_ATOMS_FOR_OXIDATION_GUESS = 40

#: Largest denominator used to turn a fractional (disordered) composition into an integer formula.
MAX_DENOMINATOR = 20


@lru_cache(maxsize=1)
def mp2020_compatibility() -> MaterialsProject2020Compatibility:
    """The correction scheme used on both sides of every hull (pymatgen's defaults, POTCARs checked)."""
    return MaterialsProject2020Compatibility()


def _most_electronegative(composition: Composition) -> str:
    elements = sorted((el for el in composition.elements if composition[el] > 0), key=lambda el: el.X)
    return elements[-1].symbol


def mp_calculation_parameters(composition: Composition) -> dict[str, Any]:
    """The ``ComputedEntry.parameters`` an MPRelaxSet calculation of ``composition`` would carry.

    Args:
        composition: any composition, integer or fractional.

    Returns:
        ``{"run_type": "GGA" | "GGA+U", "hubbards": {element: U_eV}, "potcar_symbols": [...]}``, with U
        only on the elements MPRelaxSet puts it on (its ``LDAUU`` table for the most electronegative
        element, i.e. oxides and fluorides of Co, Cr, Fe, Mn, Mo, Ni, V, W).
    """
    config = MPRelaxSet.CONFIG
    u_table = config["INCAR"]["LDAUU"].get(_most_electronegative(composition), {})
    symbols = sorted(el.symbol for el in composition.elements)
    hubbards = {sym: float(u_table[sym]) for sym in symbols if float(u_table.get(sym, 0.0)) != 0.0}
    potcars = config["POTCAR"]
    missing = [sym for sym in symbols if sym not in potcars]
    if missing:
        raise ThermoError(f"MPRelaxSet has no POTCAR for {', '.join(missing)}: no MP2020 correction possible")
    return {
        "run_type": "GGA+U" if hubbards else "GGA",
        "hubbards": hubbards,
        "potcar_symbols": [f"PBE {potcars[sym]}" for sym in symbols],
    }


def integer_formula(composition: Composition, max_denominator: int = MAX_DENOMINATOR) -> Composition:
    """The smallest integer formula with the proportions of ``composition`` (``Li0.5CoO2`` -> ``LiCo2O4``),
    each amount rounded to a fraction with denominator at most ``max_denominator``."""
    fractions = {
        el: Fraction(amount).limit_denominator(max_denominator) for el, amount in composition.items()
    }
    scale = math.lcm(*(f.denominator for f in fractions.values()))
    return Composition({el: int(f * scale) for el, f in fractions.items()}).reduced_composition


def oxidation_states(composition: Composition) -> dict[str, float]:
    """Per-element oxidation states for the MP2020 anion corrections.

    Oxidation states written on the composition's species (``Species("S", -2)``) are used as they are
    (averaged per element). Otherwise they are guessed with pymatgen's ``oxi_state_guesses`` on the
    smallest integer formula, which also works for fractional (disordered) compositions such as
    ``Li3PO3.5N0.5``; pymatgen's own guess refuses fractional amounts. Formulas above
    :data:`MAX_ATOMS_FOR_OXIDATION_GUESS` atoms are not guessed (combinatorial cost).

    Returns:
        ``{symbol: oxidation_state}``, or ``{}`` when no charge-balanced guess exists; the MP2020 scheme
        then corrects only the most electronegative element as an anion.
    """
    charged = [sp for sp in composition if getattr(sp, "oxi_state", None) is not None]
    if charged and len(charged) == len(composition):
        totals: dict[str, float] = {}
        amounts: dict[str, float] = {}
        for sp, amount in composition.items():
            totals[sp.symbol] = totals.get(sp.symbol, 0.0) + float(sp.oxi_state) * amount
            amounts[sp.symbol] = amounts.get(sp.symbol, 0.0) + amount
        return {sym: totals[sym] / amounts[sym] for sym in totals}
    formula = integer_formula(composition.element_composition)
    if formula.num_atoms > MAX_ATOMS_FOR_OXIDATION_GUESS:
        return {}
    try:
        guesses = formula.oxi_state_guesses(max_sites=-MAX_ATOMS_FOR_OXIDATION_GUESS)
    except ValueError:
        return {}
    return dict(guesses[0]) if guesses else {}


def mp2020_correction_per_atom_eV(composition: Composition) -> float:
    """The MP2020 correction (eV/atom) an MP GGA/GGA+U calculation of ``composition`` receives.

    Peroxide/superoxide detection works from the formula only (no structure here): the usual alkali and
    alkaline-earth peroxides and superoxides are recognised, every other oxygen compound is an oxide.

    Raises:
        ThermoError: if the compatibility scheme rejects the composition.
    """
    composition = Composition(composition)
    if len(composition.elements) == 0 or composition.num_atoms <= 0:
        raise ThermoError(f"empty composition {composition!r}")
    element_composition = composition.element_composition
    entry = ComputedEntry(
        element_composition,
        0.0,
        parameters=mp_calculation_parameters(element_composition),
        data={"oxidation_states": oxidation_states(composition)},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the scheme warns about formula-only oxide typing and failed guesses
        try:
            adjustments = mp2020_compatibility().get_adjustments(entry)
        except CompatibilityError as exc:
            raise ThermoError(f"MP2020 compatibility rejects {composition.formula}: {exc}") from exc
    return math.fsum(adj.value for adj in adjustments) / element_composition.num_atoms


def corrected_energy_per_atom_eV(
    composition: Composition, energy_per_atom_eV: float, *, energies_corrected: bool
) -> float:
    """The predicted energy on the MP2020-corrected scale of the hull references.

    Args:
        composition: composition the energy belongs to.
        energy_per_atom_eV: predicted total energy per atom (eV/atom).
        energies_corrected: True if the model was trained on MP2020-corrected energies (the prediction
            already includes the corrections and is returned unchanged: never corrected twice), False if
            it was trained on raw DFT energies (the MP2020 correction is added here).
    """
    if energies_corrected:
        return float(energy_per_atom_eV)
    return float(energy_per_atom_eV) + mp2020_correction_per_atom_eV(composition)
