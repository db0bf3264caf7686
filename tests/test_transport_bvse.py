"""BVSE landscape, percolation and the compute_transport entry point on hand-made structures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from screening.errors import InputError
from screening.schema import STATUS_NOT_APPLICABLE, STATUS_OK, Col
from screening.transport import TRANSPORT_COLUMNS, TransportError, compute_transport
from screening.transport.bvse import bvse_barriers, shortest_hop_A
from screening.transport.landscape import bvse_landscape, framework_terms
from screening.transport.oxidation import assign_oxidation_states, guess_element_states
from screening.transport.percolation import percolation_barriers, periodic_connectivity


def li3n() -> Structure:
    return Structure(
        Lattice.hexagonal(3.648, 3.875),
        ["N", "Li", "Li", "Li"],
        [[0, 0, 0], [0, 0, 0.5], [1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0]],
    )


def antifluorite(anion: str | dict, a_A: float) -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a_A), [anion, "Li"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    )


def lif() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.03), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])


# --- percolation on synthetic grids -----------------------------------------------------------------


def _grid(n: int = 10) -> np.ndarray:
    return np.zeros((n, n, n), dtype=bool)


def test_periodic_dimensionality_of_simple_shapes():
    channel, plane, blob, diagonal, broken = _grid(), _grid(), _grid(), _grid(), _grid()
    channel[:, 4, 4] = True
    plane[:, :, 3] = True
    blob[2:5, 2:5, 2:5] = True
    broken[0:9, 2, 2] = True  # one voxel short of wrapping
    for i in range(10):
        diagonal[i, (i + 3) % 10, 2] = True  # wraps x and y together: still one channel
    assert periodic_connectivity(channel).dimensionality == 1
    assert periodic_connectivity(plane).dimensionality == 2
    assert periodic_connectivity(np.ones((5, 6, 7), dtype=bool)).dimensionality == 3
    assert periodic_connectivity(blob).dimensionality == 0
    assert periodic_connectivity(broken).dimensionality == 0
    assert periodic_connectivity(diagonal).dimensionality == 1


def test_percolation_barriers_of_a_cosine_landscape():
    # E = a cos(2 pi x) + b cos(2 pi y) + c cos(2 pi z): saddles at 2a, 2b, 2c above the minimum
    x = np.arange(20) / 20
    gx, gy, gz = np.meshgrid(x, x, x, indexing="ij")
    energy = 0.1 * np.cos(2 * np.pi * gx) + 0.3 * np.cos(2 * np.pi * gy) + 0.5 * np.cos(2 * np.pi * gz)
    result = percolation_barriers(energy)
    assert result.barrier_eV == pytest.approx((0.2, 0.6, 1.0), abs=1e-9)
    assert result.minimum_eV == pytest.approx(-0.9)
    capped = percolation_barriers(energy, max_barrier_eV=0.7)
    assert capped.barrier_eV[2] is None and capped.barrier_eV[1] == pytest.approx(0.6)


def test_pockets_descend_to_their_floor_and_join_a_path_over_their_rim():
    """A channel along x (0.1 eV, one 0.3 eV saddle) percolates at 0.3; a pocket (0.0) next to it joins
    only over a 0.7 eV corridor, a sealed pocket only when everything (2.0) is accessible."""
    from screening.transport.percolation import descend, joining_energy_eV

    energy = np.full((12, 12, 12), 2.0)
    energy[:, 2, 2] = 0.1
    energy[0, 2, 2] = 0.3
    energy[6, 3:8, 2] = 0.7  # corridor from the channel to the pocket
    energy[6, 8, 2] = 0.0  # the pocket
    energy[0, 8, 8] = 0.0  # a sealed pocket
    assert percolation_barriers(energy).threshold_eV[0] == pytest.approx(0.3)
    assert descend(energy, np.array([6, 9, 3])).tolist() == [6, 8, 2]
    assert descend(energy, np.array([6, 8, 2])).tolist() == [6, 8, 2]
    voxels = np.array([[3, 2, 2], [6, 8, 2], [0, 8, 8]])
    assert joining_energy_eV(energy, voxels, from_eV=0.3, to_eV=2.5).tolist() == [0.3, 0.7, 2.0]
    capped = joining_energy_eV(energy, voxels, from_eV=0.3, to_eV=1.5)
    assert capped[:2].tolist() == [0.3, 0.7] and np.isinf(capped[2])


def test_ions_off_every_path_climb_over_their_pockets_rim(obelix_dir):
    """OBELiX dc8 (Li9Mg3(PO4)4F3, measured below 1e-10 S/cm): the lowest percolating Li path passes
    no Li site, whose pockets lie above its saddle. Clipped to the saddle, their barrier was zero; each
    ion has to climb out of its pocket onto the path first (the shallowest climb: 0.13 eV)."""
    from screening.sources.files import iter_file_rows
    from screening.structures import row_to_structure
    from screening.transport.percolation import descend

    structure = row_to_structure(next(iter_file_rows([obelix_dir / "cifs" / "dc8.cif"])))
    decorated = assign_oxidation_states(structure).structure
    energy = bvse_landscape(decorated, "Li", 1)
    path = periodic_connectivity(energy <= percolation_barriers(energy).threshold_eV[0])
    shape = np.array(energy.shape)
    lithium = [site.frac_coords for site in decorated if "Li" in {sp.symbol for sp in site.species}]
    pockets = [descend(energy, np.rint(np.array(f) % 1.0 * shape).astype(int) % shape) for f in lithium]
    assert not any(path.dimensionality_of_label[path.labels[tuple(p)]] for p in pockets)
    result = bvse_barriers(decorated, "Li", 1)
    assert result.ea_eV > 0.1


# --- oxidation states --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("Li6.4La3Zr1.4Ta0.6O12", {"Li": 1, "La": 3, "Zr": 4, "Ta": 5, "O": -2}),
        ("Li6PS5Cl", {"Li": 1, "P": 5, "S": -2, "Cl": -1}),
        ("Ag8GeS6", {"Ag": 1, "Ge": 4, "S": -2}),
        ("Cu2Se", {"Cu": 1, "Se": -2}),
    ],
)
def test_guess_element_states(formula, expected):
    from pymatgen.core import Composition

    assert guess_element_states(Composition(formula)).states == expected


def test_oxidation_states_kept_when_present_and_failure_is_explained():
    decorated = li3n()
    decorated.add_oxidation_state_by_element({"Li": 1, "N": -3})
    assert assign_oxidation_states(decorated)[:2] == (decorated, False)
    assert assign_oxidation_states(li3n())[1] is True
    metal = Structure(Lattice.cubic(3.0), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    row = compute_transport(metal)
    assert row[Col.STATUS] == "not applicable" and "metal or intermetallic" in row[Col.ERROR]
    with pytest.raises(TransportError, match="cannot assign oxidation states"):
        compute_transport(
            Structure(Lattice.cubic(4.0), ["Li", "Ne", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]])
        )


# --- landscape ---------------------------------------------------------------------------------------


def test_landscape_is_occupancy_weighted_for_mixed_sites():
    """A 50/50 S/Se site gives exactly the mean of the two end-member landscapes (same lattice)."""
    kwargs = {"grid_spacing_A": 0.5}
    ends = [assign_oxidation_states(antifluorite(x, 5.9))[0] for x in ("S", "Se")]
    mixed = assign_oxidation_states(antifluorite({"S": 0.5, "Se": 0.5}, 5.9))[0]
    e_s, e_se = (bvse_landscape(s, "Li", 1, **kwargs) for s in ends)
    assert np.allclose(bvse_landscape(mixed, "Li", 1, **kwargs), 0.5 * (e_s + e_se), atol=1e-10)
    assert not np.allclose(e_s, e_se)


def test_mobile_ion_sites_are_not_framework():
    full = assign_oxidation_states(antifluorite("S", 5.71))[0]
    half = full.copy().replace_species({"Li+": {"Li+": 0.5}})
    assert np.allclose(
        bvse_landscape(full, "Li", 1, grid_spacing_A=0.5), bvse_landscape(half, "Li", 1, grid_spacing_A=0.5)
    )
    terms = framework_terms(full, "Li", 1)
    assert len(terms.anion_coords_A) == 4 and len(terms.cation_coords_A) == 0


def test_landscape_minimum_near_li_site_and_repulsion_at_cation():
    s = assign_oxidation_states(li3n())[0]
    energy = bvse_landscape(s, "Li", 1, grid_spacing_A=0.25)
    shape = np.array(energy.shape)
    li_voxels = [
        tuple(np.rint(site.frac_coords * shape).astype(int) % shape)
        for site in s
        if site.specie.symbol == "Li"
    ]
    n_voxel = (0, 0, 0)
    assert min(energy[v] for v in li_voxels) - energy.min() < 0.1
    assert energy[n_voxel] > energy.min() + 5.0


def test_shortest_hop_includes_self_images_and_skips_split_sites():
    lattice = np.diag([3.0, 4.0, 5.0])
    assert shortest_hop_A(np.array([[0.0, 0.0, 0.0]]), lattice, 1.0) == pytest.approx(3.0)
    split = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.5, 0.0]])  # 0.3 A apart, then 2 A
    assert shortest_hop_A(split, lattice, 1.0) == pytest.approx(2.0)


def test_frenkel_interstitial_is_a_minimum_away_from_every_ion_not_a_slope_into_a_site():
    """A grid minimum of the migration landscape 2 A from the ion lies on the slope of the defect-energy
    landscape down to the ion's own site; refined, it would land on the site and make E_F = 0. The true
    interstitial is the well in the cell's centre: E_F is its depth below the site's, 2 - 1 eV."""
    from screening.transport.bvse import _periodic_distances_A, frenkel_energy_eV

    lattice = np.eye(3) * 10.0
    site, shoulder, centre = np.zeros(3), np.array([0.2, 0.0, 0.0]), np.full(3, 0.5)

    def distances_A(points_frac: np.ndarray, centre_frac: np.ndarray) -> np.ndarray:
        return _periodic_distances_A(np.atleast_2d(points_frac), centre_frac[None, :], lattice)[:, 0]

    def defect_energy(points_frac: np.ndarray) -> np.ndarray:
        return -2.0 * np.exp(-(distances_A(points_frac, site) ** 2) / 4.5) - np.exp(
            -(distances_A(points_frac, centre) ** 2) / 0.5
        )

    grid = np.stack(np.meshgrid(*[np.arange(20) / 20] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    migration = -np.exp(-(distances_A(grid, shoulder) ** 2) / 8) - np.exp(
        -(distances_A(grid, centre) ** 2) / 8
    )
    estimate = frenkel_energy_eV(
        migration.reshape(20, 20, 20),
        np.ones((20, 20, 20), dtype=bool),
        site[None, :],
        lattice,
        defect_energy=defect_energy,
        exclusion_A=1.0,
        saddle_eV=0.0,
    )
    assert estimate.energy_eV == pytest.approx(1.0, abs=0.01)
    assert distances_A(estimate.interstitial_frac, centre)[0] < 0.05


def _wells_around_a_site(site: np.ndarray, wells: dict, lattice: np.ndarray):
    """A Gaussian well of -3 eV at the ion's ``site`` and one of each depth at ``wells``' centres (frac)."""
    from screening.transport.bvse import _periodic_distances_A

    def energy(points_frac: np.ndarray) -> np.ndarray:
        points = np.atleast_2d(points_frac)
        total = -3.0 * np.exp(-(_periodic_distances_A(points, site[None, :], lattice)[:, 0] ** 2) / 0.5)
        for centre, depth in wells.items():
            d = _periodic_distances_A(points, np.array([centre]), lattice)[:, 0]
            total = total + depth * np.exp(-(d**2) / 0.5)
        return total

    return energy


def test_frenkel_interstitial_candidates_are_the_distinct_minima_lowest_first():
    """Three interstitial wells: the cell's centre (-1 eV) and two symmetry images at (0.5, 0.5, 0) and
    (0.5, 0, 0.5) (-0.5 eV each). The candidates are the centre, then one of the images: images count
    once, since relaxing the pair from both would give the same energy twice."""
    from screening.transport.bvse import _periodic_distances_A, frenkel_energy_eV

    lattice = np.eye(3) * 10.0
    site = np.zeros(3)
    wells = {(0.5, 0.5, 0.5): -1.0, (0.5, 0.5, 0.0): -0.5, (0.5, 0.0, 0.5): -0.5}

    energy = _wells_around_a_site(site, wells, lattice)
    grid = np.stack(np.meshgrid(*[np.arange(20) / 20] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    estimate = frenkel_energy_eV(
        energy(grid).reshape(20, 20, 20),
        np.ones((20, 20, 20), dtype=bool),
        site[None, :],
        lattice,
        defect_energy=energy,
        exclusion_A=1.0,
        saddle_eV=0.0,
    )
    candidates = estimate.interstitial_candidates_frac
    assert candidates.shape == (2, 3)
    # the estimate is the pair with the lowest candidate (its interstitial_frac) and the ion at its site
    assert estimate.energy_eV == pytest.approx(
        energy(estimate.interstitial_frac)[0] - energy(site)[0], abs=1e-6
    )
    np.testing.assert_allclose(candidates[0], [0.5, 0.5, 0.5], atol=0.01)
    assert (
        min(
            _periodic_distances_A(candidates[1:], np.array([image]), lattice)[0, 0]
            for image in [(0.5, 0.5, 0.0), (0.5, 0.0, 0.5)]
        )
        < 0.1
    )
    assert estimate.energy_eV == pytest.approx(2.0, abs=0.01)


def test_frenkel_interstitial_may_sit_in_a_pocket_off_the_conducting_network():
    """Frenkel pairs are an equilibrium population: the vacancy carries the current wherever the
    interstitial sits. By hand: the site at -3 eV, a well at -2 eV in a pocket off the network, one at
    -1 eV on it; the pocket's well is the interstitial, E_F = 1 eV, not the network's (2 eV)."""
    from screening.transport.bvse import frenkel_energy_eV

    lattice = np.eye(3) * 10.0
    site = np.zeros(3)
    wells = {(0.5, 0.5, 0.5): -2.0, (0.5, 0.0, 0.0): -1.0}  # pocket, network

    energy = _wells_around_a_site(site, wells, lattice)
    grid = np.stack(np.meshgrid(*[np.arange(20) / 20] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    landscape = energy(grid).reshape(20, 20, 20)
    network = np.zeros((20, 20, 20), dtype=bool)
    network[:, 0, 0] = True  # the line through the site and the network well, not the pocket
    estimate = frenkel_energy_eV(
        landscape, network, site[None, :], lattice, defect_energy=energy, exclusion_A=1.0, saddle_eV=0.0
    )
    assert estimate.energy_eV == pytest.approx(1.0, abs=0.01)
    np.testing.assert_allclose(estimate.interstitial_frac, [0.5, 0.5, 0.5], atol=0.01)
    # the network's well is the next candidate, for the potential's relaxation
    np.testing.assert_allclose(estimate.interstitial_candidates_frac[1], [0.5, 0.0, 0.0], atol=0.01)


def test_frenkel_site_is_the_least_bound_ion_at_its_lowest_split_position():
    """Two ions, one of them split over two positions 1.6 A apart (a chain of split positions, as in
    argyrodites). The split ion sits at its lower position (-3 eV, not the -2 eV one), so the least bound
    ion is the other (-2.5 eV); each ion's energy comes from ``site_energy``, the interstitial's (0 eV in
    the cell's centre) from ``defect_energy``."""
    from screening.transport.bvse import frenkel_energy_eV

    lattice = np.eye(3) * 10.0
    sites = np.array([[0.1, 0.1, 0.1], [0.26, 0.1, 0.1], [0.1, 0.5, 0.1]])
    own_minimum = {0: -3.0, 1: -2.0, 2: -2.5}

    def site_energy(k: int, points_frac: np.ndarray) -> np.ndarray:
        shift = np.linalg.norm((np.atleast_2d(points_frac) - sites[k]) @ lattice, axis=1)
        return own_minimum[k] + shift**2

    def defect_energy(points_frac: np.ndarray) -> np.ndarray:
        return np.linalg.norm((np.atleast_2d(points_frac) - 0.5) @ lattice, axis=1) ** 2

    grid = np.zeros((10, 10, 10))
    grid[5, 5, 5] = -1.0

    def estimate_with(ion_groups):
        return frenkel_energy_eV(
            grid,
            np.ones_like(grid, dtype=bool),
            sites,
            lattice,
            defect_energy=defect_energy,
            exclusion_A=1.0,
            saddle_eV=0.0,
            site_energy=site_energy,
            ion_groups=ion_groups,
        )

    estimate = estimate_with([[0, 1], [2]])
    assert estimate.energy_eV == pytest.approx(2.5, abs=1e-3)
    np.testing.assert_allclose(estimate.site_frac, sites[2])
    # every position its own ion: the split ion's upper position (-2 eV) would be the least bound
    alone = estimate_with(None)
    assert alone.energy_eV == pytest.approx(2.0, abs=1e-3)


def _bowl_landscape(minima: dict[tuple[float, float, float], float], lattice: np.ndarray):
    """A landscape of parabolic bowls (1 eV/A^2) at fractional centres with the given floor energies."""
    centres = np.array(list(minima))
    floors = np.array(list(minima.values()))

    def energy(points_frac: np.ndarray) -> np.ndarray:
        delta = np.atleast_2d(points_frac)[:, None, :] - centres[None, :, :]
        delta -= np.rint(delta)
        r2 = (np.linalg.norm(delta @ lattice, axis=-1)) ** 2
        return (floors[None, :] + r2).min(axis=1)

    return energy


def test_occupied_site_energy_by_hand_and_its_limits():
    """E_occ = kT ln(sum n_g exp(E_g/kT) / sum n_g) over the ions' sites (each at the landscape minimum
    next to its published position), clipped to [0, saddle]; an ion off the path starts below by its rim."""
    from screening.constants import BOLTZMANN_eV_PER_K
    from screening.transport.bvse import occupied_site_energy_eV

    lattice = np.eye(3) * 10.0
    deep, shallow = (0.1, 0.1, 0.1), (0.6, 0.6, 0.6)
    energy = _bowl_landscape({deep: 0.0, shallow: 0.3}, lattice)
    published = np.array([[0.11, 0.1, 0.1], [0.6, 0.62, 0.6]])  # off the minima, as published coordinates
    kT = BOLTZMANN_eV_PER_K * 300.0

    def reference(occupancies, groups=((0,), (1,)), saddle=0.5, rims=None):
        return occupied_site_energy_eV(
            energy,
            published,
            np.asarray(occupancies, float),
            groups,
            lattice,
            saddle_eV=saddle,
            temperature_K=300.0,
            rim_eV=None if rims is None else np.asarray(rims, float),
        )

    # deep site full, shallow site full: the mean escape rate is set by the shallow ion
    assert reference([1.0, 1.0]) == pytest.approx(kT * math.log((1 + math.exp(0.3 / kT)) / 2), abs=1e-4)
    # only the deep site holds ions: the barrier starts at the landscape minimum (the old reference)
    assert reference([1.0, 0.0]) == pytest.approx(0.0, abs=1e-4)
    # random-trap limit: populations in Boltzmann ratio give 1/<tau> of the trap model, kT ln(N / Z)
    boltzmann = np.array([1.0, math.exp(-0.3 / kT)])
    trap = kT * math.log(2 / boltzmann.sum())
    assert reference(boltzmann) == pytest.approx(trap, abs=1e-4)
    # a site above the saddle counts at the saddle: the barrier is never negative
    assert reference([0.0, 1.0], saddle=0.2) == pytest.approx(0.2)
    # split positions of one ion: it sits at the lower one, holding their summed occupancy (at most 1)
    assert reference([0.6, 0.6], groups=((0, 1),)) == pytest.approx(0.0, abs=1e-4)
    assert reference([0.0, 0.0]) == 0.0
    # an ion in a pocket off the path climbs its rim above the saddle too: its start is E_g - rim
    assert reference([1.0, 0.0], rims=[0.4, 0.0]) == pytest.approx(-0.4, abs=1e-4)
    # a pocket floor above the saddle (0.3 > 0.2) whose rim is 0.15 above the saddle: it climbs 0.05 eV
    assert reference([0.0, 1.0], saddle=0.2, rims=[0.0, 0.15]) == pytest.approx(0.2 - 0.05, abs=1e-4)


def test_barriers_start_where_the_ions_are():
    """Li2S: bond valence puts the empty octahedral hole below the occupied tetrahedral site, so the
    barrier above the landscape minimum counts a climb out of a site no ion occupies. The barriers the
    row reports start at the occupied sites; adding ``occupied_site_energy_eV`` gives the percolation
    energy above the minimum."""
    structure = assign_oxidation_states(antifluorite("S", 5.71))[0]
    result = bvse_barriers(structure, "Li", 1, grid_spacing_A=0.25)
    assert result.occupied_site_energy_eV > 0.05
    row = compute_transport(structure, grid_spacing_A=0.25)
    assert row[Col.OCCUPIED_SITE_ENERGY] == pytest.approx(result.occupied_site_energy_eV)
    assert row[Col.EA_MIGRATION] == pytest.approx(result.ea_eV)
    above_minimum = percolation_barriers(
        bvse_landscape(structure, "Li", 1, grid_spacing_A=0.25), max_barrier_eV=5.0
    ).barrier_eV[0]
    assert result.ea_eV + result.occupied_site_energy_eV == pytest.approx(above_minimum, abs=1e-9)


def _li2s_with_octahedral_li() -> Structure:
    """Li2S with 0.9 Li on the tetrahedral sites and 0.2 Li in the octahedral holes: two occupied levels."""
    structure = assign_oxidation_states(antifluorite("S", 5.71))[0].copy()
    structure.replace_species({"Li+": {"Li+": 0.9}})
    for frac in ([0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]):
        structure.append({"Li+": 0.2}, frac)
    return structure


@pytest.mark.parametrize("transform", ["supercell", "permutation", "rotation"])
def test_occupied_site_energy_is_invariant(transform):
    base = _li2s_with_octahedral_li()
    if transform == "supercell":
        other = base * (1, 1, 2)
    elif transform == "permutation":
        order = np.random.default_rng(0).permutation(len(base))
        other = Structure.from_sites([base[int(i)] for i in order])
    else:
        other = Structure(
            Lattice(base.lattice.matrix @ _rotation().T), base.species_and_occu, base.frac_coords
        )
    ours, theirs = (bvse_barriers(s, "Li", 1, grid_spacing_A=0.25) for s in (base, other))
    assert 0.0 < ours.occupied_site_energy_eV < ours.ea_eV + ours.occupied_site_energy_eV
    assert theirs.occupied_site_energy_eV == pytest.approx(ours.occupied_site_energy_eV, abs=0.01)
    assert theirs.ea_eV == pytest.approx(ours.ea_eV, abs=0.02)


def test_split_partners_are_the_chained_positions_of_one_site_at_their_nearest_images():
    """Positions 0.9 A apart chain into one site across the cell boundary (ends 1.8 A apart, beyond the
    1 A split distance): each position's partners are the other two, at the images next to it."""
    from screening.transport.bvse import _split_partners
    from screening.transport.carriers import split_site_groups

    lattice = np.eye(3) * 10.0
    frac = np.array([[0.99, 0.5, 0.5], [0.08, 0.5, 0.5], [0.17, 0.5, 0.5], [0.6, 0.5, 0.5]])
    partners = _split_partners(frac, split_site_groups(frac, lattice, 1.0))
    rows, images = partners[0]
    assert sorted(rows) == [1, 2]
    np.testing.assert_allclose(np.sort(images[:, 0]), [1.08, 1.17])
    rows, images = partners[2]
    np.testing.assert_allclose(images[list(rows).index(0)], [-0.01, 0.5, 0.5])
    assert len(partners[3][0]) == 0  # 4.3 A away: another site


# --- compute_transport -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "low", "high"),
    [(li3n, 0.05, 0.4), (lif, 0.3, 1.2), (lambda: antifluorite("S", 5.71), 0.15, 0.7)],
)
def test_bvse_barriers_are_physical(make, low, high):
    row = compute_transport(make())
    assert set(row) == set(TRANSPORT_COLUMNS)
    assert row[Col.STATUS] == STATUS_OK and row[Col.EA_METHOD] == "bvse"
    assert low < row[Col.EA_1D] < high
    assert row[Col.EA_1D] <= row[Col.EA_2D] <= row[Col.EA_3D]
    # the pellet's barrier lies between its grains' fastest and slowest directions
    assert row[Col.EA_1D] <= row[Col.EA_MIGRATION] <= row[Col.EA_3D]
    assert 0.0 < row[Col.POLYCRYSTAL_FACTOR] <= 1.0
    assert row[Col.EA] >= row[Col.EA_MIGRATION]  # plus half the Frenkel energy: a full sublattice
    assert row[Col.PERCOLATION_DIMENSIONALITY] in (1, 2, 3)
    assert row[Col.EA_STD] is None and row[Col.OXIDATION_STATES_GUESSED] is True
    assert math.log10(row[Col.SIGMA]) == pytest.approx(row[Col.LOG10_SIGMA])


def test_the_reported_diffusivity_is_the_pellet_average_of_the_fastest_path():
    """Li3N conducts fastest in its Li2N layers: the row's D is the fast path's hopping D times the
    Bruggeman factor of its 1D, 2D and 3D barriers, and its migration barrier is the pellet's."""
    from screening.constants import BOLTZMANN_eV_PER_K
    from screening.transport.polycrystal import polycrystal_average

    row = compute_transport(li3n(), temperature_K=300.0)
    pellet = polycrystal_average([row[Col.EA_1D], row[Col.EA_2D], row[Col.EA_3D]], 300.0)
    assert row[Col.POLYCRYSTAL_FACTOR] == pytest.approx(pellet.factor, rel=1e-12)
    assert row[Col.EA_MIGRATION] == pytest.approx(pellet.ea_eV, rel=1e-12)
    a_cm = row[Col.JUMP_DISTANCE] * 1e-8
    fast = a_cm**2 * 1e13 / 6 * math.exp(-row[Col.EA_1D] / (BOLTZMANN_eV_PER_K * 300.0))
    assert row[Col.DIFFUSIVITY] == pytest.approx(pellet.factor * fast, rel=1e-12)
    assert row[Col.EA_2D] > row[Col.EA_1D] and pellet.factor < 1.0


def test_li3n_li2s_lif_order():
    """Li3N (fast 2D conductor) < Li2S < LiF (insulator) in migration barrier; LiF conducts least."""
    rows = [compute_transport(s) for s in (li3n(), antifluorite("S", 5.71), lif())]
    eas = [r[Col.EA_MIGRATION] for r in rows]
    assert eas == sorted(eas)
    assert rows[2][Col.SIGMA] == min(r[Col.SIGMA] for r in rows)
    assert rows[0][Col.PERCOLATION_DIMENSIONALITY] >= 2


def test_invariance_under_supercell_and_rotation():
    base = compute_transport(li3n(), grid_spacing_A=0.2)
    supercell = compute_transport(li3n() * (2, 1, 2), grid_spacing_A=0.2)
    rotated_lattice = Lattice(li3n().lattice.matrix @ _rotation().T)
    rotated = compute_transport(
        Structure(rotated_lattice, li3n().species, li3n().frac_coords), grid_spacing_A=0.2
    )
    for other in (supercell, rotated):
        assert other[Col.EA_MIGRATION] == pytest.approx(base[Col.EA_MIGRATION], abs=0.02)
        assert other[Col.MOBILE_ION_DENSITY] == pytest.approx(base[Col.MOBILE_ION_DENSITY], rel=1e-9)
        assert other[Col.DEFECT_FORMATION] == pytest.approx(base[Col.DEFECT_FORMATION], abs=0.02)
        assert other[Col.JUMP_DISTANCE] == pytest.approx(base[Col.JUMP_DISTANCE], abs=1e-6)
        assert other[Col.LOG10_SIGMA] == pytest.approx(base[Col.LOG10_SIGMA], abs=0.4)
    assert rotated[Col.EA] == pytest.approx(base[Col.EA], abs=1e-3)  # off-grid refinement: Cartesian steps
    assert rotated[Col.DEFECT_FORMATION] == pytest.approx(base[Col.DEFECT_FORMATION], abs=2e-3)


def _rotation() -> np.ndarray:
    angle = 0.7
    c, s = math.cos(angle), math.sin(angle)
    rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    return rz @ rx


def test_disordered_framework_barrier_between_end_members():
    ends = [compute_transport(antifluorite(x, 5.9), grid_spacing_A=0.25) for x in ("S", "Se")]
    mixed = compute_transport(antifluorite({"S": 0.5, "Se": 0.5}, 5.9), grid_spacing_A=0.25)
    assert mixed[Col.STATUS] == STATUS_OK and mixed[Col.OXIDATION_STATES_GUESSED] is True
    lo, hi = sorted(r[Col.EA_MIGRATION] for r in ends)
    assert lo - 1e-9 <= mixed[Col.EA_MIGRATION] <= hi + 1e-9


def test_partial_mobile_occupancy_gives_vacancy_carriers_not_another_barrier():
    from screening.transport.carriers import frenkel_fraction

    full = assign_oxidation_states(antifluorite("S", 5.71))[0]
    partial = full.copy().replace_species({"Li+": {"Li+": 0.9}})
    row_full, row_partial = compute_transport(full), compute_transport(partial)
    assert row_partial[Col.OXIDATION_STATES_GUESSED] is False
    assert row_partial[Col.EA_MIGRATION] == pytest.approx(row_full[Col.EA_MIGRATION], abs=1e-12)
    assert row_full[Col.VACANCY_FRACTION] == 0.0 and row_full[Col.CONDUCTION_MECHANISM] == "frenkel"
    assert row_partial[Col.VACANCY_FRACTION] == pytest.approx(0.1)
    assert row_partial[Col.SITE_FILLING] == pytest.approx(0.9)
    # carriers: n (1 - c) + n x_F, by hand
    x_f = frenkel_fraction(row_partial[Col.DEFECT_FORMATION], 300.0)
    expected = row_partial[Col.MOBILE_ION_DENSITY] * (0.1 + x_f)
    assert row_partial[Col.CARRIER_DENSITY] == pytest.approx(expected, rel=1e-12)
    assert row_partial[Col.MOBILE_ION_DENSITY] == pytest.approx(0.9 * row_full[Col.MOBILE_ION_DENSITY])
    assert row_partial[Col.SIGMA] > 1e3 * row_full[Col.SIGMA]  # vacancies outnumber Frenkel pairs


def test_no_mobile_ion_is_not_applicable():
    row = compute_transport(Structure(Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    assert row[Col.STATUS] == STATUS_NOT_APPLICABLE
    assert row[Col.CARRIER_DENSITY] is None and row[Col.SIGMA] is None and row[Col.EA] is None
    assert "no Li" in row[Col.ERROR]


def test_sodium_as_mobile_ion():
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    row = compute_transport(nacl, mobile_ion="Na")
    assert row[Col.STATUS] == STATUS_OK and row[Col.MOBILE_ION] == "Na" and row[Col.EA] > 0.3


def test_missing_pair_parameters_take_the_documented_substitute():
    # no published Li+-H- softBV pair: Li+-F- (same charge, closest covalent radius), r_min shifted
    lih = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.08), ["Li", "H"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    row = compute_transport(lih)
    assert row[Col.STATUS] == STATUS_OK
    assert any("Li+1-F-1 used with r_min shifted by -0.12 A" in note for note in row[Col.TRANSPORT_NOTES])


def test_bad_arguments():
    with pytest.raises(InputError, match="method"):
        compute_transport(li3n(), method="dft")  # type: ignore[arg-type]
    with pytest.raises(TransportError, match="positive"):
        compute_transport(li3n(), temperature_K=0.0)


def test_co_occupants_of_mobile_ion_sites_never_block_whatever_the_share():
    """The mobile ion's own sites are where it can go, whatever their occupancy: a 50/50 Li/La site (and a
    5 % dopant, and a La-majority site) gives the landscape and barrier of the ordered Li2S framework."""
    full = assign_oxidation_states(antifluorite("S", 5.71))[0]
    reference = bvse_landscape(full, "Li", 1, grid_spacing_A=0.5)
    for shares in ({"Li+": 0.5, "La3+": 0.5}, {"Li+": 0.85, "Al3+": 0.05}, {"Li+": 0.2, "La3+": 0.6}):
        shared = full.copy().replace_species({"Li+": shares})
        assert len(framework_terms(shared, "Li", 1).cation_coords_A) == 0
        assert np.allclose(bvse_landscape(shared, "Li", 1, grid_spacing_A=0.5), reference)
    half_la = full.copy().replace_species({"Li+": {"Li+": 0.5, "La3+": 0.5}})
    assert compute_transport(half_la)[Col.EA_MIGRATION] == pytest.approx(
        compute_transport(full)[Col.EA_MIGRATION], abs=1e-12
    )


def _llto_like(la_occupancy: float, li_occupancy: float) -> Structure:
    """Cubic perovskite with La on the A-cage centre and Li split over the three A-cage windows."""
    species = [{"La3+": la_occupancy}, {"Li+": li_occupancy}, {"Li+": li_occupancy}, {"Li+": li_occupancy}]
    species += ["Ti4+", "O2-", "O2-", "O2-"]
    coords = [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5] * 3, [0, 0.5, 0.5], [0.5, 0, 0.5]]
    return Structure(Lattice.cubic(3.871), species, [*coords, [0.5, 0.5, 0]])


def test_split_position_co_occupant_is_left_out_like_the_ordered_cell():
    """La on the A-cage centre 1.94 A from the Li window sites (closer than rc_Li + rc_La, occupancies
    summing to <= 1) is an alternative of the same cage: the landscape equals that of the cell without La."""
    llto = _llto_like(0.56, 0.11)
    without_la = llto.copy()
    without_la.remove_sites([0])
    assert np.allclose(
        bvse_landscape(llto, "Li", 1, grid_spacing_A=0.4),
        bvse_landscape(without_la, "Li", 1, grid_spacing_A=0.4),
    )
    assert len(framework_terms(llto, "Li", 1).cation_coords_A) == 1  # Ti only
    # a fully occupied La (0.56 + 1 > 1 with the Li) cannot alternate with the Li: it stays and blocks
    full_la = _llto_like(1.0, 0.11)
    assert len(framework_terms(full_la, "Li", 1).cation_coords_A) == 2
    blocked, open_ = (bvse_barriers(s, "Li", 1, grid_spacing_A=0.25).ea_eV for s in (full_la, llto))
    assert open_ < 0.6 < blocked
