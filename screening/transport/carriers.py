"""Who carries the current: the filling of the mobile-ion sublattice, its extrinsic interstitials and its
intrinsic defects.

Lattice-gas hopping with site blocking. An ion hops only into an empty site of its own sublattice, so the
ionic conductivity of a sublattice of ``N`` sites holding ``n = c N`` ions carries the factor
``c (1 - c)`` (the classic lattice-gas result; e.g. Murch, *Solid State Ionics* 7 (1982) 177): in
Nernst-Einstein form the carrier density is ``n (1 - c)``, the ions next to a vacancy.

Ions beyond one per site are interstitials: they have no site of their own to stay in and move without
first being created. The composition fixes their number (the extrinsic regime of every textbook on
ionic crystals), so they carry the current at the migration barrier alone. They come from the file
(split positions whose combined occupancy exceeds one, as in the Li-rich argyrodites Li6+xP1-xSixS5Br)
or from charge balance: where a composition lacks cation charge, the mobile ions the refinement did not
locate (the aliovalently doped NASICON Li1+xAlxTi2-x(PO4)3 filed with the parent's Li1) are added to the
sublattice (:meth:`Sublattice.with_ions_added`), filling its empty sites first.

A fully occupied, ordered sublattice (``c = 1``) without interstitials has no such carriers: it conducts
only through thermally created Frenkel pairs (a vacancy plus an interstitial). By mass action their
fraction is ``x_F = exp(-E_F / 2 k_B T)`` for a Frenkel formation energy ``E_F`` (Lidiard, *Handbuch der
Physik* 20 (1957); the intrinsic regime), so the conductivity follows an effective barrier
``E_m + E_F / 2``.

A disordered crystal whose sublattice is nevertheless full (each ion spread over split positions) has
no single formation energy: each local arrangement of its ions and co-occupants creates pairs at its own
cost. Mass action holds in each, so the crystal's Frenkel fraction is the mean over its configurations,
``x_F = <exp(-E_F,i / 2 k_B T)>`` (the mean of the fractions, not the fraction of the mean energy: the
cheapest arrangements make most of the pairs), and its Arrhenius slope is that of the mean, the
``x``-weighted mean of the ``E_F,i`` (:func:`mean_frenkel`).

The channels add: ``n_eff = n [(1 - c) + x_i + x_F]`` with ``x_i`` the interstitials per mobile ion.
The Arrhenius slope of ``n_eff D`` at ``T`` is ``E_m + (E_F / 2) w`` with ``w`` the Frenkel share of the
carriers; that is the ``ea_eV`` the row reports, next to ``ea_migration_eV`` and ``defect_formation_eV``.
No parameter here is fitted to measured conductivities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import PeriodicSite, Structure

from screening.constants import BOLTZMANN_eV_PER_K
from screening.structures import OCCUPANCY_TOLERANCE

#: Carrier channels, named in ``conduction_mechanism`` (joined by ``+`` where several carry).
VACANCY, INTERSTITIAL, FRENKEL = "vacancy", "interstitial", "frenkel"

#: A channel carrying less than this share of the carriers is not named in the mechanism.
_MINOR_SHARE = 0.01


@dataclass(frozen=True)
class Sublattice:
    """The sites the mobile ion occupies, split positions merged.

    Attributes:
        n_sites: sites per cell (positions closer than the merge distance count as one site).
        n_ions: mobile ions per cell (partial occupancies counted as fractions).
        vacancy_fraction: mean empty share of the sites, ``1 - filling`` of each site averaged (a site's
            filling counts every species on it, so a co-occupant such as La in LLTO's A cage fills it too).
        n_interstitials: mobile ions beyond one per site, per cell.
    """

    n_sites: int
    n_ions: float
    vacancy_fraction: float
    n_interstitials: float = 0.0

    @property
    def site_filling(self) -> float:
        """``c = 1 - vacancy_fraction``."""
        return 1.0 - self.vacancy_fraction

    @property
    def interstitial_fraction(self) -> float:
        """Interstitials per mobile ion, ``x_i``."""
        return self.n_interstitials / self.n_ions if self.n_ions > 0 else 0.0

    def with_ions_added(self, n_added: float) -> Sublattice:
        """The sublattice with ``n_added`` more mobile ions per cell (fewer where negative) than the file
        locates: added ions fill the empty sites first and sit beyond them as interstitials; removed ions
        leave the interstitials first, then sites."""
        vacancies = self.vacancy_fraction * self.n_sites
        interstitials = self.n_interstitials
        if n_added >= 0:
            filled = min(vacancies, n_added)
            vacancies, interstitials = vacancies - filled, interstitials + n_added - filled
        else:
            emptied = min(interstitials, -n_added)
            interstitials = interstitials - emptied
            vacancies = min(float(self.n_sites), vacancies - n_added - emptied)
        return Sublattice(
            n_sites=self.n_sites,
            n_ions=max(self.n_ions + n_added, 0.0),
            vacancy_fraction=vacancies / self.n_sites if self.n_sites else 0.0,
            n_interstitials=interstitials,
        )


def mobile_ion_occupancy(site: PeriodicSite, mobile_ion: str) -> float:
    """The mobile ion's share of a site (whatever its oxidation state), not its co-occupants'."""
    return float(sum(occ for sp, occ in site.species.items() if sp.symbol == mobile_ion))


def split_site_groups(
    frac: np.ndarray, lattice_matrix_A: np.ndarray, merge_within_A: float
) -> list[list[int]]:
    """The physical sites of a set of positions: groups linked by chains of periodic distances below
    ``merge_within_A`` (union-find), so that one group holds the split positions of one ion."""
    parent = list(range(len(frac)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(frac)):
        delta = frac[i + 1 :] - frac[i]
        delta -= np.rint(delta)
        distances = np.linalg.norm(delta @ lattice_matrix_A, axis=1)
        for offset in np.flatnonzero(distances < merge_within_A):
            parent[root(i + 1 + int(offset))] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(frac)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def mobile_sublattice(structure: Structure, mobile_ion: str, merge_within_A: float) -> Sublattice:
    """The sites of the mobile ion in ``structure``, its ions and its vacancy fraction.

    Args:
        structure: ordered or disordered structure containing the mobile ion.
        mobile_ion: element symbol.
        merge_within_A: positions closer than this are split positions of one site (never both occupied).
    """
    indices = [i for i, site in enumerate(structure) if mobile_ion in {sp.symbol for sp in site.species}]
    if not indices:
        return Sublattice(n_sites=0, n_ions=0.0, vacancy_fraction=0.0)
    frac = structure.frac_coords[indices] % 1.0
    filling = np.array([min(1.0, structure[i].species.num_atoms) for i in indices])
    ions = np.array([mobile_ion_occupancy(structure[i], mobile_ion) for i in indices])
    groups = split_site_groups(frac, structure.lattice.matrix, merge_within_A)
    group_filling = np.array([float(filling[g].sum()) for g in groups])
    # a group's excess over one counts where it is more than its positions' published occupancies can
    # round to (Li6PS5Br's 0.441 + 0.441 + 0.119 per site is one ion)
    rounding = OCCUPANCY_TOLERANCE * np.array([len(g) for g in groups])
    excess = np.where(group_filling - 1.0 > rounding, group_filling - 1.0, 0.0)
    group_ions = np.array([float(ions[g].sum()) for g in groups])
    return Sublattice(
        n_sites=len(groups),
        n_ions=float(ions.sum()),
        vacancy_fraction=float(np.clip(1.0 - group_filling, 0.0, 1.0).mean()),
        n_interstitials=float(np.minimum(excess, group_ions).sum()),
    )


def frenkel_fraction(defect_formation_eV: float, temperature_K: float) -> float:
    """Equilibrium fraction of Frenkel defects, ``exp(-E_F / 2 k_B T)``."""
    return math.exp(-max(defect_formation_eV, 0.0) / (2.0 * BOLTZMANN_eV_PER_K * temperature_K))


def mean_frenkel(defect_formation_eV: float | Sequence[float], temperature_K: float) -> tuple[float, float]:
    """Frenkel fraction and apparent formation energy of one or more configurations (eV, each clamped at
    0): ``(<x_F,i>, sum_i w_i E_F,i)`` with ``w_i = x_F,i / sum_j x_F,j``, the formation energy whose half
    is the Arrhenius slope of the mean fraction (see the module docstring). One energy gives
    ``(exp(-E_F / 2kT), E_F)``."""
    energies = np.maximum(np.atleast_1d(np.asarray(defect_formation_eV, dtype=float)), 0.0)
    if energies.size == 0:
        raise ValueError("mean_frenkel needs at least one formation energy")
    exponents = -energies / (2.0 * BOLTZMANN_eV_PER_K * temperature_K)
    weights = np.exp(exponents - exponents.max())  # the x-weights, scaled so that none underflows
    weights /= weights.sum()
    return float(np.mean(np.exp(exponents))), float(weights @ energies)


@dataclass(frozen=True)
class CarrierModel:
    """Carriers and effective barrier of a sublattice at one temperature.

    Attributes:
        carrier_factor: ``(1 - c) + x_i + x_F``: carriers per mobile ion.
        defect_formation_eV: the Frenkel formation energy ``E_F`` of ``ea_eV`` (the apparent one of
            :func:`mean_frenkel` where several configurations were given), eV.
        ea_eV: effective Arrhenius barrier ``E_m + (E_F / 2) w``, eV.
        mechanism: the channels carrying at least 1 % of the carriers, in the order ``vacancy``,
            ``interstitial``, ``frenkel``, joined by ``+`` (``vacancy+frenkel``).
    """

    carrier_factor: float
    defect_formation_eV: float
    ea_eV: float
    mechanism: str


def carrier_model(
    ea_migration_eV: float,
    defect_formation_eV: float | Sequence[float],
    vacancy_fraction: float,
    temperature_K: float,
    interstitial_fraction: float = 0.0,
) -> CarrierModel:
    """Combine the vacancy, interstitial and Frenkel channels (see the module docstring); several Frenkel
    energies are those of the configurations of a disordered crystal (:func:`mean_frenkel`)."""
    x_frenkel, formation_eV = mean_frenkel(defect_formation_eV, temperature_K)
    channels = {VACANCY: vacancy_fraction, INTERSTITIAL: interstitial_fraction, FRENKEL: x_frenkel}
    factor = sum(channels.values())
    if factor > 0.0:
        shares = {name: x / factor for name, x in channels.items()}
    else:  # x_F underflows to 0 for E_F above ~38 eV: the Frenkel channel is all there is
        shares = {VACANCY: 0.0, INTERSTITIAL: 0.0, FRENKEL: 1.0}
    return CarrierModel(
        carrier_factor=factor,
        defect_formation_eV=formation_eV,
        ea_eV=ea_migration_eV + 0.5 * formation_eV * shares[FRENKEL],
        mechanism="+".join(name for name, share in shares.items() if share >= _MINOR_SHARE),
    )
