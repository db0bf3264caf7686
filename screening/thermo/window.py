"""Electrochemical stability window of a candidate against the metal of its mobile ion.

The window is the range of electrode potential ``V`` (vs M/M+, M the mobile ion's metal) over which the
candidate is thermodynamically stable when it can exchange M with a reservoir at chemical potential
``mu_M = mu_M(metal) - z e V`` (``z`` the ion's charge): the open-system (grand-potential) phase diagram
of Ong et al., Chem. Mater. 20, 3197 (2008), as used for solid electrolytes by Zhu, He & Mo,
ACS Appl. Mater. Interfaces 7, 23685 (2015) and Richards et al., Chem. Mater. 28, 266 (2016).

Method (Zhu 2015 / Richards 2016): the hull is the one the stability stage uses (same reference entries,
same MP2020 scale). A candidate above that hull is first shifted down onto it ("treated as if on the
hull", so that it has a window at all: the published method for metastable phases), a candidate below it
keeps its predicted energy (it would be a new stable phase). It is then placed
:data:`BELOW_HULL_eV` below the hull so that it is a vertex of the diagram rather than degenerate with
its decomposition (this moves the limits by at most a few mV). The critical chemical potentials of M on
that diagram (``PhaseDiagram.get_transition_chempots``) cut the ``mu_M`` axis into intervals on which the
set of stable phases is constant; the candidate is stable on a contiguous run of them, tested at each
interval's midpoint with pymatgen's ``GrandPotentialPhaseDiagram``. Its ends are the window:

* ``low_V``, the reduction limit: below it the candidate takes up M (0 when it is stable against the
  metal itself);
* ``high_V``, the oxidation limit: above it the candidate gives up M (and its anion is oxidised).

The phases it decomposes to just outside each end are reported (the M taken up or released is not
listed: it is the reservoir).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pymatgen.analysis.phase_diagram import (
    GrandPotentialPhaseDiagram,
    GrandPotPDEntry,
    PDEntry,
    PhaseDiagram,
)
from pymatgen.core import Composition, Element

from screening.thermo.errors import ThermoError

#: The candidate is placed this far below the hull (eV/atom) to make it a vertex of the diagram.
BELOW_HULL_eV = 1e-4

#: ``reduction_products`` of a candidate that is stable against the metal itself (``low_V == 0``).
STABLE_AGAINST_METAL = "stable against {ion} metal"

#: How far beyond the last critical chemical potential the oxidation products are evaluated (eV).
_BEYOND_eV = 0.5


@dataclass(frozen=True)
class Window:
    """Electrochemical stability window of one candidate.

    Attributes:
        low_V: reduction limit, V vs M/M+ (0 when stable against the metal).
        high_V: oxidation limit, V vs M/M+.
        reduction_products: phases formed below ``low_V`` (``" + "``-joined reduced formulas), or
            ``"stable against M metal"``.
        oxidation_products: phases formed above ``high_V``.
        energy_shift_eV: how far the candidate was moved down to lie on the hull, eV/atom (its energy
            above the hull when positive, else 0; :data:`BELOW_HULL_eV` not included).
    """

    low_V: float
    high_V: float
    reduction_products: str
    oxidation_products: str
    energy_shift_eV: float


def _products(entries: list[PDEntry], open_el: Element, mu: float, candidate: PDEntry) -> str:
    """The phases ``candidate`` decomposes to at ``mu`` of ``open_el``."""
    diagram = GrandPotentialPhaseDiagram(entries, {open_el: mu})
    grand = GrandPotPDEntry(candidate, {open_el: mu})
    decomposition = diagram.get_decomposition(grand.composition)
    names = sorted({entry.original_entry.composition.reduced_formula for entry in decomposition})
    return " + ".join(names)


def _stable_at(entries: list[PDEntry], open_el: Element, mu: float, candidate: PDEntry) -> bool:
    diagram = GrandPotentialPhaseDiagram(entries, {open_el: mu})
    return any(entry.original_entry is candidate for entry in diagram.stable_entries)


def electrochemical_window(
    composition: Composition | str,
    e_above_hull_eV: float,
    diagram: PhaseDiagram,
    mobile_ion: str,
    *,
    charge: int = 1,
) -> Window:
    """The stability window of a candidate against the metal of ``mobile_ion`` (see the module docstring).

    Args:
        composition: the candidate's composition (integer or fractional amounts).
        e_above_hull_eV: its energy above ``diagram``'s hull, eV/atom (as the stability stage reports it).
        diagram: the phase diagram of the candidate's chemical system (MP2020 scale), the one its
            ``e_above_hull_eV`` was computed on.
        mobile_ion: the exchanged element (``"Li"``); the candidate must contain it.
        charge: the ion's charge ``z`` (V = -(mu - mu_metal) / z).

    Returns:
        The :class:`Window`.

    Raises:
        ThermoError: the candidate lacks the mobile ion, holds nothing else, or the diagram lacks one of
            its elements.
    """
    composition = Composition(composition).element_composition
    ion = Element(mobile_ion)
    if composition[ion] <= 0:
        raise ThermoError(f"{composition.reduced_formula} holds no {mobile_ion}: no window against its metal")
    if len(composition.elements) < 2:
        raise ThermoError(f"{composition.reduced_formula} is the metal itself: no window")
    missing = sorted(el.symbol for el in composition.elements if el not in diagram.elements)
    if missing:
        raise ThermoError(f"the phase diagram lacks {', '.join(missing)}")
    if not math.isfinite(e_above_hull_eV):
        raise ThermoError(f"e_above_hull_eV must be finite, got {e_above_hull_eV}")

    shift = max(float(e_above_hull_eV), 0.0)
    energy_per_atom = diagram.get_hull_energy_per_atom(composition) + min(float(e_above_hull_eV), 0.0)
    candidate = PDEntry(
        composition, (energy_per_atom - BELOW_HULL_eV) * composition.num_atoms, name="candidate"
    )
    entries = [*diagram.stable_entries, candidate]
    full = PhaseDiagram(entries)
    mu_metal = full.el_refs[ion].energy_per_atom
    critical = sorted(mu for mu in full.get_transition_chempots(ion) if mu <= mu_metal + 1e-9)
    if not critical or critical[-1] < mu_metal - 1e-9:
        critical.append(mu_metal)
    # interval midpoints, from the most reducing (at the metal) to the most oxidising
    bounds = critical[::-1]
    intervals = [(bounds[i + 1], bounds[i]) for i in range(len(bounds) - 1)]
    intervals.append((bounds[-1] - _BEYOND_eV, bounds[-1]))
    stable = [_stable_at(entries, ion, (lo + hi) / 2, candidate) for lo, hi in intervals]
    if not any(stable):
        raise ThermoError(f"{composition.reduced_formula} is stable at no {mobile_ion} chemical potential")
    first = stable.index(True)
    last = len(stable) - 1 - stable[::-1].index(True)
    mu_high, mu_low = intervals[first][1], intervals[last][0]
    if first == 0:
        reduction = STABLE_AGAINST_METAL.format(ion=mobile_ion)
    else:
        reduction = _products(entries, ion, sum(intervals[first - 1]) / 2, candidate)
    if last + 1 < len(intervals):
        oxidation = _products(entries, ion, sum(intervals[last + 1]) / 2, candidate)
    else:  # pragma: no cover - the last interval is unbounded below; a mobile-ion compound is never stable there
        oxidation = _products(entries, ion, mu_low - _BEYOND_eV, candidate)
    return Window(
        low_V=float(max(0.0, -(mu_high - mu_metal) / charge)),
        high_V=float(-(mu_low - mu_metal) / charge),
        reduction_products=reduction,
        oxidation_products=oxidation,
        energy_shift_eV=shift,
    )
