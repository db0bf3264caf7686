"""Bond-valence site-energy (BVSE) landscape of a mobile cation on a periodic grid, disorder-aware.

The site energy of a test cation A (charge ``q_A``) at point r is the softBV energy of Chen & Adams
(IUCrJ 4 (2017) 614; Acta Cryst. B 75 (2019) 18):

* attraction to each framework anion X (Morse form of the bond-valence bond)
  ``E = d0/2 * ((exp(alpha (r_min - R)) - 1)^2 - 1)`` with the published (A, X) pair parameters of
  :mod:`screening.transport.bv_params`;
* screened repulsion from each framework cation M
  ``E = 14.40 eV A * q_A q_M / sqrt(n_A n_M) / R * erfc(R / (f (rc_A + rc_M)))``, ``f = 0.74``, with the
  softBV principal quantum numbers ``n`` and covalent radii ``rc``.

Cross-check: on ordered structures the energies above the minimum equal those of ``bvlain`` 0.25.1 run with
``use_softbv_covalent_radii=True`` to < 2 meV at the points the ion can reach (8 A cutoff here, 10 A there),
and the percolation barriers agree within the grid resolution (``tests/test_transport_bvlain.py``).
bvlain's default (ASE covalent radii instead of the softBV table) is not the published model.

The framework is every species except the mobile element, each weighted by its occupancy (the mean-field
landscape of the same occupancy vectors the featurisation uses; vacancies contribute nothing), with one
exception that implements "the mobile ion's own sites are where it can go, whatever their occupancy":
**co-occupants of mobile-ion sites are left out of the framework entirely**, whatever the mobile ion's share
of the site. A co-occupant of a mobile-ion site is

* any other species on a site that holds the mobile ion with any fraction (Al/Ga on the Li sites of
  garnets, Ti on the Li/Ti 16d site of Li4Ti5O12, Fe on the Li/Fe site of alpha-LiFeO2), and
* any cation on a partially occupied site whose distance to a mobile-ion site is shorter than the sum of
  their softBV covalent radii while the two occupancies sum to at most 1: two such positions cannot be
  filled at once, so they are split positions (alternatives) of one physical site (perovskite LLTO: Li in
  the windows of the A cage, 1.94 A from the La position of the same cage).

Reasoning. When the mobile ion sits on, or passes through, one of its sites, that site does not hold the
co-occupant; an occupancy-weighted co-occupant would instead sit on every copy of the site and block the
very positions the ion must use (LLTO: 0.56 La on every A cage repels Li at its own window site by
~1.7 eV). The alternative, keeping the co-occupant's contribution at grid points outside the site's own
region, is not better: a hop runs between two mobile-ion sites and its bottleneck lies between them, so the
co-occupants near the bottleneck are those of the hop's own end sites, which must be empty of them; only
co-occupants of third, farther mobile-ion sites are dropped by mistake, and their screened repulsion
``erfc(R / (f (rc_A + rc_M)))`` is small there (0.2 % of the bare Coulomb term for Li-La at 4.4 A).
Region-wise exclusion would also make the landscape discontinuous and need a region size. The choice costs
accuracy where the mobile ion is a small minority of a framework site (Li4Ti5O12 16d, cation-disordered
rock salts): the whole sublattice is opened and the barrier is underestimated, because percolation there
depends on local mobile-ion-rich configurations that no single occupancy-averaged landscape represents.
The co-occupants' effect on the number of carriers is in the carrier density, which counts only the mobile
ion's own share. The rule does not depend on any benchmark value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pymatgen.core import PeriodicSite, Species, Structure
from pymatgen.optimization.neighbors import find_points_in_spheres

from screening.errors import ScreeningError
from screening.structures import OCCUPANCY_TOLERANCE, is_partially_occupied
from screening.transport.bv_params import COVALENT_RADIUS_A, PRINCIPAL_QUANTUM_NUMBER, SOFTBV_PAIRS
from screening.transport.carriers import mobile_ion_occupancy
from screening.transport.pair_sums import GridJob, PairTerms, PointPairSum, grid_pair_sums

#: e^2 / (4 pi eps0) in eV * angstrom.
COULOMB_eV_A = 14.399645

#: softBV screening factor of the cation-cation repulsion.
SCREENING_FACTOR = 0.74

#: Interaction cutoff (angstrom): beyond 8 A the Morse terms are below 1e-5 eV and the screened Coulomb
#: terms below 1e-6 eV per pair.
DEFAULT_CUTOFF_A = 8.0

#: Target grid spacing (angstrom).
DEFAULT_GRID_SPACING_A = 0.2

#: Distances are clipped to this (angstrom) so that grid points on a nucleus stay finite.
MIN_DISTANCE_A = 0.3


class LandscapeError(ScreeningError, ValueError):
    """The landscape cannot be computed (missing parameters, no framework)."""


@dataclass(frozen=True)
class FrameworkTerms:
    """Framework point ions seen by the mobile ion, one entry per (site, species), occupancy-weighted.

    Attributes:
        anion_coords_A: (n_anions, 3) Cartesian positions of anion entries.
        anion_params: (n_anions, 4) columns weight, r_min_A, alpha_per_A, d0_eV.
        cation_coords_A: (n_cations, 3) Cartesian positions of cation entries.
        cation_params: (n_cations, 3) columns weight, Coulomb prefactor in eV*A
            (``14.4 q_A q_M / sqrt(n_A n_M)``) and screening length ``f (rc_A + rc_M)`` in A.
    """

    anion_coords_A: np.ndarray
    anion_params: np.ndarray
    cation_coords_A: np.ndarray
    cation_params: np.ndarray
    notes: tuple[str, ...] = ()


def pair_parameters(
    mobile_ion: str, mobile_charge: int, anion: str, anion_charge: int
) -> tuple[tuple[float, float, float, float], str | None]:
    """The softBV Morse parameters of a mobile cation-anion pair, or a documented substitute.

    Where Chen & Adams publish no parameters for the pair (Li+-H-, Li+-P3-, ...), the pair of the same
    cation with the anion of the same charge (else any charge) whose softBV covalent radius is closest is
    used, with its Morse equilibrium distance ``r_min`` shifted by the difference of the two anions'
    covalent radii; the softness ``alpha`` and well depth ``d0`` are kept. The substitution is returned as
    a note for the results row.

    Returns:
        ``(r0_A, r_min_A, alpha_per_A, d0_eV)`` and None, or the substitute and its note.

    Raises:
        LandscapeError: the cation has no published pair at all, or the anion has no covalent radius.
    """
    key = (mobile_ion, mobile_charge, anion, anion_charge)
    if key in SOFTBV_PAIRS:
        return SOFTBV_PAIRS[key], None
    known = [(a, q) for (c, qc, a, q) in SOFTBV_PAIRS if c == mobile_ion and qc == mobile_charge]
    same_element = [q for a, q in known if a == anion]
    if same_element:  # e.g. peroxide O-: the element's own pair at its usual charge
        usual = same_element[0]
        note = f"{anion}{anion_charge:+d} (e.g. peroxide) uses the {mobile_ion}{mobile_charge:+d}-{anion}{usual:+d} pair"
        return SOFTBV_PAIRS[(mobile_ion, mobile_charge, anion, usual)], note
    radii = {q: r for q, r in COVALENT_RADIUS_A.get(anion, {}).items() if q < 0}
    # the anion's radius at its charge, else at its nearest tabulated anionic charge (C-2 of acetylides)
    radius = radii[min(radii, key=lambda q: abs(q - anion_charge))] if radii else None
    if radius is None or not known:
        raise LandscapeError(
            f"no softBV parameters for the {mobile_ion}{mobile_charge:+d}-{anion}{anion_charge:+d} pair"
        )

    def distance(candidate: tuple[str, int]) -> tuple[bool, float]:
        a, q = candidate
        return (q != anion_charge, abs(COVALENT_RADIUS_A[a][q] - radius))

    substitute, charge = min(known, key=distance)
    r0, r_min, alpha, d0 = SOFTBV_PAIRS[(mobile_ion, mobile_charge, substitute, charge)]
    shift = radius - COVALENT_RADIUS_A[substitute][charge]
    note = (
        f"no softBV parameters for {mobile_ion}{mobile_charge:+d}-{anion}{anion_charge:+d}: "
        f"{mobile_ion}{mobile_charge:+d}-{substitute}{charge:+d} used with r_min shifted by {shift:+.2f} A"
    )
    return (r0 + shift, r_min + shift, alpha, d0), note


def _covalent_radius_A(symbol: str, charge: float) -> float:
    radii = COVALENT_RADIUS_A.get(symbol)
    if not radii:
        raise LandscapeError(f"no softBV covalent radius for {symbol}")
    nearest = min(radii, key=lambda q: (abs(q - charge), -q))
    return radii[nearest]


def _quantum_number(symbol: str) -> int:
    if symbol not in PRINCIPAL_QUANTUM_NUMBER:
        raise LandscapeError(f"no softBV principal quantum number for {symbol}")
    return PRINCIPAL_QUANTUM_NUMBER[symbol]


def _is_mobile_site(site: PeriodicSite, mobile_ion: str) -> bool:
    return any(sp.symbol == mobile_ion and occ > 0 for sp, occ in site.species.items())


def mobile_ion_site_co_occupants(structure: Structure, mobile_ion: str, rc_mobile_A: float) -> set[int]:
    """Indices of the sites whose cations are co-occupants of a mobile-ion site (see the module docstring).

    These are the sites that hold the mobile ion with any fraction, and the partially occupied cation sites
    closer to a mobile-ion site than the sum of the two softBV covalent radii whose occupancy, added to
    that mobile-ion site's, is at most 1 (split positions of one physical site).

    Args:
        structure: oxidation-state-decorated structure.
        mobile_ion: element symbol of the mobile ion.
        rc_mobile_A: softBV covalent radius of the mobile ion (angstrom).
    """
    mobile = [i for i, site in enumerate(structure) if _is_mobile_site(site, mobile_ion)]
    excluded = set(mobile)
    if not mobile:
        return excluded
    radius_of: dict[int, float] = {}
    for i, site in enumerate(structure):
        if i in excluded or not is_partially_occupied(site.species.num_atoms):
            continue
        cations = [sp for sp in site.species if isinstance(sp, Species) and (sp.oxi_state or 0) > 0]
        if cations:
            radius_of[i] = max(_covalent_radius_A(sp.symbol, sp.oxi_state) for sp in cations)
    if not radius_of:
        return excluded
    candidates = sorted(radius_of)
    lattice = np.ascontiguousarray(structure.lattice.matrix, dtype=float)
    idx_candidate, idx_mobile, _, dist = find_points_in_spheres(
        np.ascontiguousarray(structure.cart_coords[mobile]),
        np.ascontiguousarray(structure.cart_coords[candidates]),
        float(rc_mobile_A + max(radius_of.values())),
        np.array([1, 1, 1], dtype=np.int64),
        lattice,
        tol=1e-8,
    )
    for c, m, d in zip(idx_candidate, idx_mobile, dist, strict=True):
        i, j = candidates[c], mobile[m]
        total = structure[i].species.num_atoms + structure[j].species.num_atoms
        if d < rc_mobile_A + radius_of[i] and total <= 1.0 + OCCUPANCY_TOLERANCE:
            excluded.add(i)
    return excluded


def framework_terms(structure: Structure, mobile_ion: str, mobile_charge: int) -> FrameworkTerms:
    """Collect the occupancy-weighted framework interactions of a mobile cation.

    Cations that co-occupy a mobile-ion site (:func:`mobile_ion_site_co_occupants`) are left out; anions
    always count.

    Args:
        structure: structure whose species all carry oxidation states (ordered or disordered).
        mobile_ion: element symbol of the mobile ion (``"Li"``).
        mobile_charge: its (positive) oxidation state.

    Returns:
        The anion (Morse) and cation (Coulomb) terms.

    Raises:
        LandscapeError: when a pair has no published parameters or there is no anion in the framework.
    """
    n_mobile = _quantum_number(mobile_ion)
    rc_mobile = _covalent_radius_A(mobile_ion, mobile_charge)
    co_occupied = mobile_ion_site_co_occupants(structure, mobile_ion, rc_mobile)
    anion_xyz, anion_par, cation_xyz, cation_par = [], [], [], []
    notes: list[str] = []
    for index, site in enumerate(structure):
        for specie, occupancy in site.species.items():
            if specie.symbol == mobile_ion or occupancy <= 0:
                continue
            charge = specie.oxi_state if isinstance(specie, Species) else None
            if charge is None:
                raise LandscapeError(f"{specie} has no oxidation state")
            if charge > 0 and index in co_occupied:
                continue  # a co-occupant of a mobile-ion site: never blocks the mobile ion
            if charge < 0:
                if abs(charge - round(charge)) > 1e-6:
                    raise LandscapeError(
                        f"the anion {specie} has a fractional charge: no softBV pair applies"
                    )
                (_, r_min, alpha, d0), note = pair_parameters(
                    mobile_ion, mobile_charge, specie.symbol, round(charge)
                )
                if note is not None and note not in notes:
                    notes.append(note)
                anion_xyz.append(site.coords)
                anion_par.append((occupancy, r_min, alpha, d0))
            elif charge > 0:
                prefactor = (
                    COULOMB_eV_A
                    * mobile_charge
                    * charge
                    / math.sqrt(n_mobile * _quantum_number(specie.symbol))
                )
                screening = SCREENING_FACTOR * (rc_mobile + _covalent_radius_A(specie.symbol, charge))
                cation_xyz.append(site.coords)
                cation_par.append((occupancy, prefactor, screening))
    if not anion_xyz:
        raise LandscapeError(f"no anion in the framework around {mobile_ion}")
    return FrameworkTerms(
        np.array(anion_xyz, dtype=float).reshape(-1, 3),
        np.array(anion_par, dtype=float).reshape(-1, 4),
        np.array(cation_xyz, dtype=float).reshape(-1, 3),
        np.array(cation_par, dtype=float).reshape(-1, 3),
        tuple(notes),
    )


def grid_shape(structure: Structure, spacing_A: float = DEFAULT_GRID_SPACING_A) -> tuple[int, int, int]:
    """Number of grid points along each lattice vector for a target spacing (at least 4 per axis)."""
    return tuple(max(4, math.ceil(length / spacing_A)) for length in structure.lattice.abc)  # type: ignore[return-value]


def _morse_eV(distance_A: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Occupancy-weighted softBV Morse attraction; ``params`` columns weight, r_min_A, alpha_per_A, d0_eV."""
    weight, r_min, alpha, d0 = params.unbind(-1)
    x = torch.exp(alpha * (r_min - distance_A))
    return (0.5 * weight * d0) * x * (x - 2.0)  # = d0/2 ((x - 1)^2 - 1)


def _screened_coulomb_eV(distance_A: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Occupancy-weighted softBV cation repulsion; ``params`` columns weight, prefactor_eV_A, screening_A."""
    weight, prefactor, screening = params.unbind(-1)
    return (weight * prefactor) * torch.special.erfc(distance_A / screening) / distance_A


def framework_pair_terms(terms: FrameworkTerms) -> list[PairTerms]:
    """The anion (Morse) and cation (screened Coulomb) pair sums of the framework."""
    return [
        PairTerms(terms.anion_coords_A, terms.anion_params, _morse_eV, (0.0, 0.0, 1.0, 0.0)),
        PairTerms(terms.cation_coords_A, terms.cation_params, _screened_coulomb_eV, (0.0, 0.0, 1.0)),
    ]


def site_energy_eV(
    terms: FrameworkTerms,
    lattice_matrix_A: np.ndarray,
    points_A: np.ndarray,
    cutoff_A: float = DEFAULT_CUTOFF_A,
    *,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """BVSE site energy (eV) of the mobile ion at Cartesian points (n, 3)."""
    evaluate = PointPairSum(
        framework_pair_terms(terms),
        lattice_matrix_A,
        cutoff_A=cutoff_A,
        min_distance_A=MIN_DISTANCE_A,
        device=torch.device(device),
    )
    return evaluate(points_A)


def mobile_ion_repulsion_terms(
    structure: Structure, mobile_ion: str, mobile_charge: int, *, exclude_within_A: float
) -> PairTerms:
    """Screened Coulomb repulsion of a mobile ion from the other mobile ions, as a pair sum.

    The same softBV Coulomb term as the framework cations (:func:`framework_terms`), for the mobile ions
    themselves, occupancy-weighted; positions closer than ``exclude_within_A`` to a point are the ion's
    own site (or its split partner) and are left out. The migration landscape omits this term because the
    other ions move too; a defect formation energy needs it.
    """
    n_mobile = _quantum_number(mobile_ion)
    rc_mobile = _covalent_radius_A(mobile_ion, mobile_charge)
    coords, weights = [], []
    for site in structure:
        occupancy = mobile_ion_occupancy(site, mobile_ion)
        if occupancy > 0:
            coords.append(site.coords)
            weights.append(occupancy)
    prefactor = COULOMB_eV_A * mobile_charge**2 / n_mobile
    screening = SCREENING_FACTOR * 2.0 * rc_mobile
    params = np.array([(w, prefactor, screening) for w in weights], dtype=float).reshape(-1, 3)

    def beyond_own_site(distance_A: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        energy = _screened_coulomb_eV(distance_A, params)
        return torch.where(distance_A < exclude_within_A, torch.zeros_like(energy), energy)

    return PairTerms(np.array(coords, dtype=float).reshape(-1, 3), params, beyond_own_site, (0.0, 0.0, 1.0))


def bvse_landscape(
    structure: Structure,
    mobile_ion: str,
    mobile_charge: int,
    *,
    grid_spacing_A: float = DEFAULT_GRID_SPACING_A,
    cutoff_A: float = DEFAULT_CUTOFF_A,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """BVSE energy (eV) of the mobile ion on a periodic grid over the cell.

    Args:
        structure: oxidation-state-decorated structure, ordered or disordered.
        mobile_ion: element symbol of the mobile cation.
        mobile_charge: its oxidation state.
        grid_spacing_A: target grid spacing in angstrom.
        cutoff_A: interaction cutoff in angstrom.
        device: torch device of the array code (:mod:`screening.transport.pair_sums`).

    Returns:
        Array of shape :func:`grid_shape`; ``[i, j, k]`` is the energy at fractional (i/nx, j/ny, k/nz).
    """
    terms = framework_terms(structure, mobile_ion, mobile_charge)
    return landscape_from_terms(
        terms, structure, grid_spacing_A=grid_spacing_A, cutoff_A=cutoff_A, device=device
    )


def landscape_from_terms(
    terms: FrameworkTerms,
    structure: Structure,
    *,
    grid_spacing_A: float = DEFAULT_GRID_SPACING_A,
    cutoff_A: float = DEFAULT_CUTOFF_A,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """The landscape of :func:`bvse_landscape` from framework terms already collected."""
    (landscape,) = landscapes_from_terms(
        [(terms, structure)], grid_spacing_A=grid_spacing_A, cutoff_A=cutoff_A, device=device
    )
    return landscape


def landscapes_from_terms(
    items: Sequence[tuple[FrameworkTerms, Structure]],
    *,
    grid_spacing_A: float = DEFAULT_GRID_SPACING_A,
    cutoff_A: float = DEFAULT_CUTOFF_A,
    device: torch.device | str = "cpu",
) -> list[np.ndarray]:
    """The landscapes of several structures in shared dense chunks (:func:`grid_pair_sums`): on a GPU, many
    small cells in one launch; the values equal one structure at a time."""
    jobs = [
        GridJob(framework_pair_terms(terms), structure.lattice.matrix, grid_shape(structure, grid_spacing_A))
        for terms, structure in items
    ]
    return grid_pair_sums(jobs, cutoff_A=cutoff_A, min_distance_A=MIN_DISTANCE_A, device=torch.device(device))
