"""Oxidation states for bond-valence work, for ordered and disordered structures, mixed valence included.

A structure whose every species already carries an oxidation state is used as it is. Otherwise:

1. peroxide and superoxide anions are recognised by their O-O (S-S) bond: two fully occupied O sites
   closer than 1.6 A, each the other's nearest neighbour, are O- (peroxide, O2 2-) or, below 1.4 A,
   O-1/2 (superoxide, O2 -);
2. ordered structures without such bonds: pymatgen's ``BVAnalyzer`` (site-resolved, so mixed valence such
   as Fe2+/Fe3+ in magnetite is kept), unless it puts an anion above its usual state (O-), which only
   an anion-anion bond can justify (such sums come from distorted coordinates or hypothetical phases);
3. any structure, ordered or disordered: one state per element, chosen among the element's common (then
   ICSD) oxidation states so that the composition, possibly fractional, is charge neutral, the anions are
   more electronegative than the cations and the most common states win. Where no integer choice is
   neutral, one element may be of mixed valence: a mixture of two of its states in the proportion that
   makes the composition neutral (Co3+/Co4+ in Li0.5CoO2, Mn3+/Mn4+ in LiMn2O4), written on its sites as
   an occupancy-weighted mixture of the two ions, which is the average valence of equivalent sites.
   Hypothetical (delithiated) phases may then use any known positive state of a cation; rare anionic
   states (Ta-, P3- next to O2-) are never taken to make a composition neutral;
4. compositions that are not exactly neutral as published (Li-deficient garnets, doped argyrodites whose
   CIF lost a dopant) take the closest assignment within 10 % of the cation charge, with a note giving the
   imbalance;
5. compositions with more anion charge than that (deeply delithiated hypothetical phases, or files that
   lost cations): the anion takes the holes, mixing its usual state with the next one up (O2-/O-, anion
   redox) on its sites, with a note. The bond-valence landscape does not depend on the anion's charge (the
   O- ions use the Li-O2- Morse pair), so this only records the imbalance.

A structure for which none of these gives an answer raises :class:`OxidationStateError` with the reason.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pymatgen.core
from monty.serialization import loadfn
from pymatgen.analysis.bond_valence import BVAnalyzer
from pymatgen.core import Composition, Element, Species, Structure

from screening.errors import ScreeningError
from screening.structures import is_partially_occupied

#: Largest net charge left after the guess, as a fraction of the total cation charge (published CIFs of
#: disordered phases round occupancies, so exact neutrality is too strict).
CHARGE_BALANCE_TOLERANCE = 0.01

#: Largest imbalance accepted, with a note, when no assignment is neutral within the tolerance above.
MAX_CHARGE_IMBALANCE = 0.10

#: Elements that can be the anion of an ionic conductor (a structure with none is a metal or intermetallic).
ANION_ELEMENTS = frozenset({"H", "N", "P", "As", "O", "S", "Se", "Te", "F", "Cl", "Br", "I"})

#: Shortest ordinary anion-anion distance: closer O-O (S-S) pairs are peroxide/persulfide bonds, A.
PEROXIDE_BOND_A = {"O": 1.6, "S": 2.2}
#: Superoxide O-O bonds are shorter than this, A (O2- 1.28-1.35 A; peroxide O2 2- 1.45-1.55 A).
SUPEROXIDE_BOND_A = 1.4

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


def _usual_state(symbol: str) -> int | None:
    """The element's most negative common oxidation state (O -2, N -3, H -1; None without common states):
    the state of an anion that no anion-anion bond oxidises."""
    return min(Element(symbol).common_oxidation_states, default=None)


def _candidate_states(symbol: str) -> list[int]:
    """Common oxidation states first, then the other states seen in the ICSD (pymatgen's tables)."""
    element = Element(symbol)
    states = list(element.common_oxidation_states)
    states += [q for q in element.icsd_oxidation_states if q not in states]
    return [int(q) for q in states or element.oxidation_states]


@dataclass(frozen=True)
class ElementStates:
    """One oxidation state per element, one element possibly of mixed valence.

    Attributes:
        states: element -> integer state (for the mixed element: its lower state).
        mixed: ``(element, upper state, fraction in the upper state)``, or None.
        imbalance: net charge left, as a fraction of the total cation charge.
    """

    states: dict[str, int]
    mixed: tuple[str, int, float] | None = None
    imbalance: float = 0.0

    def mean_states(self) -> dict[str, float]:
        """Element -> mean oxidation state."""
        mean = {el: float(q) for el, q in self.states.items()}
        if self.mixed is not None:
            element, upper, fraction = self.mixed
            mean[element] += fraction * (upper - self.states[element])
        return mean


def guess_element_states(composition: Composition, *, fixed_charge: float = 0.0) -> ElementStates:
    """Oxidation states per element that make ``composition`` charge neutral (see the module docstring).

    Works for fractional (disordered) compositions. Candidates are each element's common oxidation states,
    then its other ICSD states; solutions where an anion is less electronegative than a cation are
    rejected; among the rest the one whose ions are most frequent in the ICSD (largest sum of log
    occurrence counts) wins. A mixed-valence solution is tried only when no integer one is neutral, and an
    imbalanced one only when neither is.

    Args:
        composition: any composition, amounts may be fractional.
        fixed_charge: charge already assigned elsewhere in the cell (peroxide anions), e.

    Raises:
        OxidationStateError: when no assignment exists within :data:`MAX_CHARGE_IMBALANCE`.
    """
    amounts = composition.get_el_amt_dict()
    symbols = sorted(amounts)
    candidates = [_candidate_states(s) for s in symbols]
    if any(not c for c in candidates):
        missing = [s for s, c in zip(symbols, candidates, strict=True) if not c]
        raise OxidationStateError(f"no known oxidation states for {', '.join(missing)}")
    x = np.array([amounts[s] for s in symbols])
    exact, closest = _solve(symbols, candidates, x, fixed_charge, composition)
    # hypothetical (e.g. delithiated) phases: any known cation state may take part
    extended = [
        sorted(set(c) | {int(q) for q in Element(sym).oxidation_states if q > 0})
        for sym, c in zip(symbols, candidates, strict=True)
    ]
    if exact is None and extended != candidates:
        exact, closest_extended = _solve(symbols, extended, x, fixed_charge, composition)
        if closest is None or abs(closest.imbalance) > MAX_CHARGE_IMBALANCE:
            closest = closest_extended or closest
    if exact is not None:
        return exact
    if closest is not None and abs(closest.imbalance) <= MAX_CHARGE_IMBALANCE:
        return closest
    holes = _anion_holes(symbols, extended, x, fixed_charge, composition)
    if holes is not None:
        return holes
    reason = f"no charge-neutral combination of common oxidation states for {composition.formula}"
    if closest is not None:
        ions = " ".join(f"{s}{q:+d}" for s, q in closest.states.items())
        reason += (
            f": the closest ({ions}) leaves a net charge of {closest.imbalance:+.0%} of the cation charge, "
            f"more than the {MAX_CHARGE_IMBALANCE:.0%} that rounded occupancies explain "
            "(atoms missing from the file?)"
        )
    raise OxidationStateError(reason)


class _Combinations(NamedTuple):
    """Every combination of candidate states (rows), with its ICSD score, sanity and net charge."""

    combos: np.ndarray  # (rows, elements) states
    log_counts: np.ndarray  # sum of log(1 + ICSD occurrences) of the row's ions
    sensible: np.ndarray  # anions more electronegative than cations, both present
    net: np.ndarray  # net charge of the composition, e


def _combinations(
    symbols: list[str],
    candidates: list[list[int]],
    x: np.ndarray,
    fixed_charge: float,
    composition: Composition,
) -> _Combinations:
    if math.prod(len(c) for c in candidates) > MAX_COMBINATIONS:
        raise OxidationStateError(f"too many oxidation-state combinations for {composition.reduced_formula}")
    chi = np.array([Element(s).X if not math.isnan(Element(s).X) else 0.0 for s in symbols])
    combos = np.array(list(itertools.product(*candidates)), dtype=float)
    log_counts = np.array(
        list(
            itertools.product(
                *[
                    [math.log1p(_occurrence(s, q)) for q in c]
                    for s, c in zip(symbols, candidates, strict=True)
                ]
            )
        )
    ).sum(axis=1)
    chi_anion = np.where(combos < 0, chi, np.inf).min(axis=1)
    chi_cation = np.where(combos > 0, chi, -np.inf).max(axis=1)
    sensible = chi_anion >= chi_cation
    if len(symbols) > 1:
        sensible &= (combos < 0).any(axis=1) & (combos > 0).any(axis=1)
    return _Combinations(combos, log_counts, sensible, combos @ x + fixed_charge)


def _solve(
    symbols: list[str],
    candidates: list[list[int]],
    x: np.ndarray,
    fixed_charge: float,
    composition: Composition,
) -> tuple[ElementStates | None, ElementStates | None]:
    """The best neutral assignment (integer, else one mixed-valence element) and the closest imbalanced
    one (None where no combination is sensible; the caller judges its imbalance)."""
    combos, log_counts, sensible, net = _combinations(symbols, candidates, x, fixed_charge, composition)
    positive = np.maximum(np.where(combos > 0, combos, 0.0) @ x, 1.0)

    def states_of(row: int) -> dict[str, int]:
        return {s: int(q) for s, q in zip(symbols, combos[row], strict=True)}

    neutral = sensible & (np.abs(net) <= CHARGE_BALANCE_TOLERANCE * positive)
    if neutral.any():
        best = np.flatnonzero(neutral)[np.argmax((log_counts - np.abs(net))[neutral])]
        return ElementStates(states_of(best)), None
    mixed = _mixed_valence(symbols, candidates, x, combos, net, log_counts, sensible)
    if mixed is not None:
        return mixed, None
    imbalance = np.abs(net) / positive
    if not sensible.any():
        return None, None
    best = np.flatnonzero(sensible)[np.argmin(imbalance[sensible] - 1e-6 * log_counts[sensible])]
    return None, ElementStates(states_of(best), imbalance=float(net[best] / positive[best]))


def _anion_holes(
    symbols: list[str],
    candidates: list[list[int]],
    x: np.ndarray,
    fixed_charge: float,
    composition: Composition,
) -> ElementStates | None:
    """Over-oxidised compositions (more anion charge than the cations' known states can balance, as in
    deeply delithiated hypothetical phases): the anion takes the holes, mixing its usual state ``q`` with
    ``q + 1`` (O2-/O-, anion redox), the cations keep integer states. None where that does not help."""
    combos, log_counts, sensible, net = _combinations(symbols, candidates, x, fixed_charge, composition)
    return _mixed_valence(symbols, candidates, x, combos, net, log_counts, sensible, anion_holes=True)


def _mixed_valence(
    symbols: list[str],
    candidates: list[list[int]],
    x: np.ndarray,
    combos: np.ndarray,
    net: np.ndarray,
    log_counts: np.ndarray,
    sensible: np.ndarray,
    *,
    anion_holes: bool = False,
) -> ElementStates | None:
    """The best neutral assignment with one element mixing two of its positive states, or None; with
    ``anion_holes`` instead an anion element mixing its most common negative state ``q`` with ``q + 1``."""
    best: tuple[float, ElementStates] | None = None
    for m, symbol in enumerate(symbols):
        if anion_holes:
            if symbol not in ANION_ELEMENTS:
                continue
            usual = _usual_state(symbol)
            pairs = [(usual, usual + 1)] if usual + 1 < 0 else []
        else:
            pairs = list(itertools.pairwise(sorted({q for q in candidates[m] if q > 0})))
        for lower, upper in pairs:
            rows = sensible & (combos[:, m] == lower)
            if not rows.any():
                continue
            # neutral when net + f (upper - lower) x_m == 0
            fraction = -net[rows] / ((upper - lower) * x[m])
            inside = (fraction > 1e-6) & (fraction < 1 - 1e-6)
            if not inside.any():
                continue
            index = np.flatnonzero(rows)[inside]
            upper_score = math.log1p(_occurrence(symbol, upper)) - math.log1p(_occurrence(symbol, lower))
            scores = log_counts[index] + fraction[inside] * upper_score
            pick = int(np.argmax(scores))
            if best is None or scores[pick] > best[0]:
                states = {s: int(q) for s, q in zip(symbols, combos[index[pick]], strict=True)}
                best = (
                    float(scores[pick]),
                    ElementStates(states, (symbol, upper, float(fraction[inside][pick]))),
                )
    return None if best is None else best[1]


class OxidationAssignment(NamedTuple):
    """A structure decorated with oxidation states, and how.

    Attributes:
        structure: the decorated structure (mixed-valence sites as occupancy-weighted ion mixtures).
        guessed: whether the states were guessed (False when the input carried them).
        mean_states: element -> mean oxidation state (occupancy-weighted).
        notes: fallbacks taken (mixed valence, peroxide anions, charge imbalance), for the results row.
        net_charge_e: the charge per cell that the assignment leaves where the composition is not neutral
            as given (beyond :data:`CHARGE_BALANCE_TOLERANCE`; negative: cation charge missing), e; 0
            where it is neutral.
    """

    structure: Structure
    guessed: bool
    mean_states: dict[str, float]
    notes: tuple[str, ...] = ()
    net_charge_e: float = 0.0


def _mean_states(structure: Structure) -> dict[str, float]:
    total: dict[str, float] = {}
    weight: dict[str, float] = {}
    for site in structure:
        for specie, occupancy in site.species.items():
            total[specie.symbol] = total.get(specie.symbol, 0.0) + occupancy * (
                getattr(specie, "oxi_state", 0) or 0
            )
            weight[specie.symbol] = weight.get(specie.symbol, 0.0) + occupancy
    return {el: round(total[el] / weight[el], 4) for el in total if weight[el] > 0}


def peroxide_sites(structure: Structure) -> dict[int, float]:
    """Site index -> charge of fully occupied O (S) sites bonded to another such site (O2 2-, O2 -, S2 2-).

    A bond is an X-X pair closer than :data:`PEROXIDE_BOND_A` that is the shortest contact of both anions:
    in a peroxide the partner is the anion's nearest neighbour (Li2O2: O-O 1.55 A, Li-O 1.96 A; pyrite:
    S-S 2.16 A, Fe-S 2.26 A). An O-O pair shortened by coordinate noise in an oxoanion framework (1.598 A
    between two O of a NASICON, each 1.5 A from its P) is not a bond: each O has a cation closer.
    """
    charges: dict[int, float] = {}
    all_frac = structure.frac_coords
    for element, bond_A in PEROXIDE_BOND_A.items():
        indices = [
            i
            for i, site in enumerate(structure)
            if not is_partially_occupied(site.species.num_atoms)
            and {sp.symbol for sp in site.species} == {element}
        ]
        if len(indices) < 2:
            continue
        distances = structure.lattice.get_all_distances(all_frac[indices], all_frac)
        distances[np.arange(len(indices)), indices] = np.inf
        partner_distances = distances[:, indices]
        for row, index in enumerate(indices):
            shortest = float(partner_distances[row].min())
            if shortest < bond_A and shortest <= float(distances[row].min()):
                charges[index] = -0.5 if element == "O" and shortest < SUPEROXIDE_BOND_A else -1.0
    return charges


def oxidised_anions(structure: Structure) -> list[str]:
    """Anion species of ``structure`` above their element's usual state (O-, S-, N2-), as strings.

    Without an anion-anion bond (:func:`peroxide_sites`) an anion of an ionic compound is at its most
    negative common state; bond-valence sums that say otherwise come from distorted coordinates (OBELiX
    ``4ba``, LiGe2(PO4)3 with 0.1 A noise: O-1.5 next to P3+ instead of O2- next to P5+) or from a
    hypothetical phase whose cations cannot balance the anions at their usual state.
    """
    odd = set()
    for site in structure:
        for specie in site.species:
            state = getattr(specie, "oxi_state", 0) or 0
            usual = _usual_state(specie.symbol)
            if state < 0 and usual is not None and state > usual:
                odd.add(str(specie))
    return sorted(odd)


def _decorate(structure: Structure, states: ElementStates, fixed: dict[int, float]) -> Structure:
    """``structure`` with the states on every species; the mixed element's sites split into its two ions."""
    species = []
    for index, site in enumerate(structure):
        entry: dict[Species, float] = {}
        for specie, occupancy in site.species.items():
            symbol = specie.symbol
            if index in fixed:
                entry[Species(symbol, fixed[index])] = occupancy
            elif states.mixed is not None and symbol == states.mixed[0]:
                _, upper, fraction = states.mixed
                lower = states.states[symbol]
                entry[Species(symbol, lower)] = entry.get(Species(symbol, lower), 0.0) + occupancy * (
                    1 - fraction
                )
                entry[Species(symbol, upper)] = entry.get(Species(symbol, upper), 0.0) + occupancy * fraction
            else:
                entry[Species(symbol, states.states[symbol])] = occupancy
        species.append(entry)
    return Structure(
        structure.lattice, species, structure.frac_coords, site_properties=structure.site_properties
    )


def assign_oxidation_states(structure: Structure) -> OxidationAssignment:
    """``structure`` with oxidation states on every species (see the module docstring for the order).

    Args:
        structure: ordered or disordered structure, with or without oxidation states.

    Returns:
        The decorated structure (the input is not modified), whether the states were guessed, the mean
        state per element and the notes.

    Raises:
        OxidationStateError: when no oxidation states can be assigned (the message says why).
    """
    if has_oxidation_states(structure):
        return OxidationAssignment(structure, False, _mean_states(structure))
    plain = structure.copy()
    plain.remove_oxidation_states()
    fixed = peroxide_sites(plain)
    notes = []
    if fixed:
        kinds = sorted({"superoxide O2-" if q == -0.5 else "peroxide/persulfide" for q in fixed.values()})
        notes.append(f"{len(fixed)} anion sites in {', '.join(kinds)} bonds")
    reasons = []
    if plain.is_ordered and not fixed:
        try:
            decorated = BVAnalyzer().get_oxi_state_decorated_structure(plain)
        except ValueError as exc:
            reasons.append(f"BVAnalyzer: {exc}")
        else:
            oxidised = oxidised_anions(decorated)
            if not oxidised:
                return OxidationAssignment(decorated, True, _mean_states(decorated))
            notes.append(
                f"bond-valence sums gave {', '.join(oxidised)} without an anion-anion bond: states from "
                "the composition instead"
            )
    rest = Composition(
        {
            el: sum(site.species.get(el, 0.0) for i, site in enumerate(plain) if i not in fixed)
            for el in plain.composition.elements
        }
    )
    fixed_charge = sum(q * plain[i].species.num_atoms for i, q in fixed.items())
    try:
        states = guess_element_states(rest, fixed_charge=fixed_charge)
    except OxidationStateError as exc:
        reasons.append(str(exc))
    else:
        if states.mixed is not None:
            element, upper, fraction = states.mixed
            note = (
                f"mixed valence: {element} {1 - fraction:.2f} x {states.states[element]:+d} + "
                f"{fraction:.2f} x {upper:+d} (mean {states.mean_states()[element]:+.2f})"
            )
            if upper < 0:
                note += ": holes on the anion (over-oxidised as given, or cations missing from the file)"
            notes.append(note)
        if states.imbalance:
            notes.append(
                f"composition not charge neutral as given: net charge {states.imbalance:+.1%} of the cation charge"
            )
        decorated = _decorate(plain, states, fixed)
        net_charge = float(decorated.charge) if states.imbalance else 0.0  # the formal sum: no set charge
        return OxidationAssignment(decorated, True, _mean_states(decorated), tuple(notes), net_charge)
    raise OxidationStateError(
        f"cannot assign oxidation states to {plain.composition.formula}: {'; '.join(reasons)}"
    )
