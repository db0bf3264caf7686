"""Oxidation states for bond-valence work, for ordered and disordered structures.

A structure whose every species already carries an oxidation state is used as it is. Otherwise the states
are guessed, in this order:

1. ordered structures: pymatgen's ``BVAnalyzer`` (site-resolved, so mixed valence such as Fe2+/Fe3+ in
   magnetite is kept);
2. any structure, ordered or disordered: one integer state per element, chosen among the element's
   common oxidation states so that the (possibly fractional) composition is charge neutral, the states
   respect electronegativity (every anion more electronegative than every cation) and, among the
   solutions left, the most common states win;
3. ordered structures with integer compositions: ``Composition.oxi_state_guesses`` (may give averaged,
   fractional states for mixed-valence elements).

A structure for which none of these gives an answer raises :class:`OxidationStateError` with the reason.
"""

from __future__ import annotations

import functools
import itertools
import math
from pathlib import Path

import numpy as np
import pymatgen.core
from monty.serialization import loadfn
from pymatgen.analysis.bond_valence import BVAnalyzer
from pymatgen.core import Composition, Element, Species, Structure

from screening.errors import ScreeningError

#: Largest net charge left after the guess, as a fraction of the total cation charge (published CIFs of
#: disordered phases round occupancies, so exact neutrality is too strict).
CHARGE_BALANCE_TOLERANCE = 0.01

#: More candidate combinations than this are not enumerated.
MAX_COMBINATIONS = 200_000


class OxidationStateError(ScreeningError, ValueError):
    """No oxidation states could be assigned to a structure."""


def has_oxidation_states(structure: Structure) -> bool:
    """True when every species on every site carries an oxidation state."""
    return all(
        isinstance(sp, Species) and sp.oxi_state is not None for site in structure for sp in site.species
    )


@functools.cache
def _icsd_occurrence() -> dict[str, int]:
    """How often each ion occurs in the ICSD (the bond-valence statistics table shipped with pymatgen)."""
    path = Path(pymatgen.core.__file__).parent / "icsd_bv.yaml"
    return dict(loadfn(path)["occurrence"]) if path.exists() else {}


def _occurrence(symbol: str, state: int) -> int:
    return _icsd_occurrence().get(str(Species(symbol, state)), 0)


def _candidate_states(symbol: str) -> list[int]:
    """Common oxidation states first, then the other states seen in the ICSD (pymatgen's tables)."""
    element = Element(symbol)
    states = list(element.common_oxidation_states)
    states += [q for q in element.icsd_oxidation_states if q not in states]
    return [int(q) for q in states or element.oxidation_states]


def guess_element_states(composition: Composition) -> dict[str, int]:
    """One integer oxidation state per element that makes ``composition`` charge neutral.

    Works for fractional (disordered) compositions. Candidates are each element's common oxidation states, then its other ICSD states;
    solutions where an anion is less electronegative than a cation are rejected; among the rest the one
    whose ions are most frequent in the ICSD (largest sum of log occurrence counts) wins.

    Args:
        composition: any composition, amounts may be fractional.

    Returns:
        Element symbol -> oxidation state.

    Raises:
        OxidationStateError: when no charge-neutral assignment exists.
    """
    amounts = composition.get_el_amt_dict()
    symbols = sorted(amounts)
    candidates = [_candidate_states(s) for s in symbols]
    if any(not c for c in candidates):
        missing = [s for s, c in zip(symbols, candidates, strict=True) if not c]
        raise OxidationStateError(f"no known oxidation states for {', '.join(missing)}")
    if math.prod(len(c) for c in candidates) > MAX_COMBINATIONS:
        raise OxidationStateError(f"too many oxidation-state combinations for {composition.reduced_formula}")
    x = np.array([amounts[s] for s in symbols])
    chi = np.array([Element(s).X if not math.isnan(Element(s).X) else 0.0 for s in symbols])
    combos = np.array(list(itertools.product(*candidates)), dtype=float)
    log_counts = [
        [math.log1p(_occurrence(s, q)) for q in c] for s, c in zip(symbols, candidates, strict=True)
    ]
    score = np.array(list(itertools.product(*log_counts))).sum(axis=1) - np.abs(combos @ x)
    net = combos @ x
    positive = np.where(combos > 0, combos, 0.0) @ x
    ok = np.abs(net) <= CHARGE_BALANCE_TOLERANCE * np.maximum(positive, 1.0)
    # electronegativity order: min chi of anions must exceed max chi of cations
    chi_anion = np.where(combos < 0, chi, np.inf).min(axis=1)
    chi_cation = np.where(combos > 0, chi, -np.inf).max(axis=1)
    ok &= chi_anion >= chi_cation
    if len(symbols) > 1:
        ok &= (combos < 0).any(axis=1) & (combos > 0).any(axis=1)
    if not ok.any():
        raise OxidationStateError(
            f"no charge-neutral combination of common oxidation states for {composition.formula}"
        )
    best = np.flatnonzero(ok)[np.argmax(score[ok])]
    return {s: int(q) for s, q in zip(symbols, combos[best], strict=True)}


def assign_oxidation_states(structure: Structure) -> tuple[Structure, bool]:
    """Return ``structure`` with oxidation states on every species and whether they were guessed.

    Args:
        structure: ordered or disordered structure, with or without oxidation states.

    Returns:
        ``(decorated_structure, guessed)``; the input is not modified.

    Raises:
        OxidationStateError: when no oxidation states can be assigned (the message says why).
    """
    if has_oxidation_states(structure):
        return structure, False
    plain = structure.copy()
    plain.remove_oxidation_states()
    reasons = []
    if plain.is_ordered:
        try:
            return BVAnalyzer().get_oxi_state_decorated_structure(plain), True
        except ValueError as exc:
            reasons.append(f"BVAnalyzer: {exc}")
    try:
        states = guess_element_states(plain.composition)
        decorated = plain.copy()
        decorated.add_oxidation_state_by_element(states)
        return decorated, True
    except OxidationStateError as exc:
        reasons.append(str(exc))
    composition = plain.composition
    if plain.is_ordered and all(abs(a - round(a)) < 1e-8 for a in composition.values()):
        guesses = composition.oxi_state_guesses(max_sites=-20)
        if guesses:
            decorated = plain.copy()
            decorated.add_oxidation_state_by_element(dict(guesses[0]))
            return decorated, True
        reasons.append("Composition.oxi_state_guesses found none")
    raise OxidationStateError(
        f"cannot assign oxidation states to {composition.formula}: {'; '.join(reasons)}"
    )
