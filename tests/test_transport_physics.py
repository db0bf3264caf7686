"""The transport physics of a real crystal: carriers with site blocking, Frenkel pairs of a full
sublattice, oxidation states for mixed valence, peroxides and off-stoichiometric compositions, documented
fallbacks, and metals set apart; each checked by hand or against a published value."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure

from screening.constants import BOLTZMANN_eV_PER_K
from screening.schema import Col
from screening.transport import compute_transport
from screening.transport.carriers import carrier_model, frenkel_fraction, mobile_sublattice
from screening.transport.defects import DefectOptions
from screening.transport.oxidation import (
    OxidationStateError,
    assign_oxidation_states,
    guess_element_states,
    oxidised_anions,
    peroxide_sites,
)

KT_300 = BOLTZMANN_eV_PER_K * 300.0

#: Li2O2-like: an O2 dumbbell of 1.55 A between Li, in a 5 A cube.
_DUMBBELL_COORDS = [[0, 0, 0], [0.5, 0.5, 0.0], [0.25, 0.25, 0.345], [0.25, 0.25, 0.655]]


# --- carriers ----------------------------------------------------------------------------------------


def test_full_sublattice_conducts_through_frenkel_pairs_with_half_their_energy():
    model = carrier_model(0.3, 1.2, vacancy_fraction=0.0, temperature_K=300.0)
    assert model.mechanism == "frenkel"
    assert model.carrier_factor == pytest.approx(math.exp(-1.2 / (2 * KT_300)), rel=1e-12)
    assert model.ea_eV == pytest.approx(0.3 + 0.6, abs=1e-12)


def test_vacancies_dominate_when_frenkel_pairs_are_rare_and_both_add_in_between():
    vacancy = carrier_model(0.3, 3.0, vacancy_fraction=0.25, temperature_K=300.0)
    assert vacancy.mechanism == "vacancy" and vacancy.ea_eV == pytest.approx(0.3, abs=1e-9)
    assert vacancy.carrier_factor == pytest.approx(0.25, rel=1e-9)
    # E_F chosen so that x_F equals the vacancy fraction: half the carriers each, Ea = Em + E_F/4
    e_f = -2 * KT_300 * math.log(0.01)
    both = carrier_model(0.3, e_f, vacancy_fraction=0.01, temperature_K=300.0)
    assert both.mechanism == "vacancy+frenkel" and both.carrier_factor == pytest.approx(0.02)
    assert both.ea_eV == pytest.approx(0.3 + e_f / 4)
    assert frenkel_fraction(-1.0, 300.0) == 1.0  # a negative estimate is clamped, never above one


def test_split_positions_are_one_site_and_filling_counts_every_species():
    lattice = Lattice.cubic(6.0)
    # two Li split positions 0.3 A apart (one site, half filled each), one La/Li/vacancy A-cage site
    structure = Structure(
        lattice,
        [{"Li": 0.5}, {"Li": 0.5}, {"La": 0.56, "Li": 0.33}, "O"],
        [[0, 0, 0], [0.05, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]],
    )
    sub = mobile_sublattice(structure, "Li", merge_within_A=1.0)
    assert sub.n_sites == 2 and sub.n_ions == pytest.approx(1.33)
    assert sub.vacancy_fraction == pytest.approx((0.0 + 0.11) / 2)


def test_ions_beyond_one_per_site_are_interstitials_unless_occupancies_only_round_above_one():
    lattice = Lattice.cubic(8.0)
    coords = [[0.1, 0.1, 0.1], [0.125, 0.1, 0.1], [0.15, 0.1, 0.1], [0.6, 0.6, 0.6], [0.5, 0, 0]]

    def sublattice(outer: float, middle: float):
        # one site of three split positions 0.2 A apart (an argyrodite's 48h-24g-48h), one full site
        species = [{"Li": outer}, {"Li": middle}, {"Li": outer}, "Li", "O"]
        return mobile_sublattice(Structure(lattice, species, coords), "Li", merge_within_A=1.0)

    # Li6PS5Br as published (OBELiX 6jf): 0.441 + 0.119 + 0.441 = 1.001 is one ion, rounded
    rounded = sublattice(0.441, 0.119)
    assert rounded.n_interstitials == 0.0 and rounded.interstitial_fraction == 0.0
    # Li6.025P0.975Si0.025S5Br (a8v): 1.00416 per site, beyond what three rounded values explain
    excess = sublattice(0.44104, 0.12208)
    assert excess.n_interstitials == pytest.approx(0.00416)
    assert excess.interstitial_fraction == pytest.approx(0.00416 / 2.00416)
    assert excess.vacancy_fraction == 0.0


def test_an_overfilled_site_of_a_neutral_file_conducts_through_its_interstitials():
    """Antifluorite Li2O with 4 % N on the O site (Li2.04O0.96N0.04, neutral): the extra Li sits on split
    positions 0.3 A apart whose occupancies add to 1.02 per site. Those 0.16 Li per cell are interstitials:
    the conductivity follows the migration barrier, not half the Frenkel energy."""
    a = 4.61
    sites = [[x, y, z] for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)]
    li = [c for x, y, z in sites for c in ([x - 0.0325, y, z], [x + 0.0325, y, z])]
    anions = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    structure = Structure(Lattice.cubic(a), [{"Li": 0.51}] * 16 + [{"O": 0.96, "N": 0.04}] * 4, li + anions)
    assert assign_oxidation_states(structure).net_charge_e == 0.0
    row = compute_transport(structure, temperature_K=300.0)
    assert row[Col.INTERSTITIAL_FRACTION] == pytest.approx(0.16 / 8.16)
    assert row[Col.VACANCY_FRACTION] == 0.0
    assert row[Col.CONDUCTION_MECHANISM] == "interstitial"
    assert row[Col.EA] == pytest.approx(row[Col.EA_MIGRATION], abs=1e-6)
    assert any("0.16 Li per cell beyond one per site" in note for note in row[Col.TRANSPORT_NOTES])


def test_ions_added_by_charge_balance_fill_empty_sites_first_and_removed_ones_leave_interstitials_first():
    from screening.transport.carriers import Sublattice

    sub = Sublattice(n_sites=10, n_ions=8.0, vacancy_fraction=0.2, n_interstitials=0.0)
    refilled = sub.with_ions_added(1.5)
    assert refilled.n_ions == 9.5 and refilled.vacancy_fraction == pytest.approx(0.05)
    assert refilled.n_interstitials == 0.0
    overfilled = sub.with_ions_added(3.0)
    assert overfilled.vacancy_fraction == 0.0 and overfilled.n_interstitials == pytest.approx(1.0)
    assert overfilled.interstitial_fraction == pytest.approx(1.0 / 11.0)
    back = overfilled.with_ions_added(-1.5)
    assert back.n_interstitials == 0.0 and back.vacancy_fraction == pytest.approx(0.05)
    assert sub.with_ions_added(-20.0).vacancy_fraction == 1.0  # never more vacancies than sites


def test_interstitials_carry_at_the_migration_barrier_next_to_frenkel_pairs():
    # the composition fixes the interstitials: no formation energy in their barrier
    model = carrier_model(0.3, 1.2, vacancy_fraction=0.0, temperature_K=300.0, interstitial_fraction=0.05)
    x_f = math.exp(-1.2 / (2 * KT_300))
    assert model.mechanism == "interstitial"
    assert model.carrier_factor == pytest.approx(0.05 + x_f, rel=1e-12)
    assert model.ea_eV == pytest.approx(0.3 + 0.6 * x_f / (0.05 + x_f), rel=1e-12)
    # x_F equal to the interstitials: half the carriers each
    e_f = -2 * KT_300 * math.log(0.05)
    both = carrier_model(0.3, e_f, vacancy_fraction=0.0, temperature_K=300.0, interstitial_fraction=0.05)
    assert both.mechanism == "interstitial+frenkel" and both.ea_eV == pytest.approx(0.3 + e_f / 4)
    every = carrier_model(0.3, e_f, vacancy_fraction=0.05, temperature_K=300.0, interstitial_fraction=0.05)
    assert every.mechanism == "vacancy+interstitial+frenkel"
    assert every.carrier_factor == pytest.approx(0.15)


def test_a_file_that_lacks_mobile_ions_for_neutrality_gets_them_back_on_its_empty_sites():
    """Antifluorite Li2S filed with Li 0.95 on every site: 0.4 Li per cell short of neutral. They are
    mobile ions the refinement did not locate, so the sublattice is full again and conducts through
    Frenkel pairs, not through the 5 % vacancies the file shows."""
    a = 5.71
    li = [[x, y, z] for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)]
    s = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    short = Structure(Lattice.cubic(a), [{"Li": 0.95}] * 8 + ["S"] * 4, li + s)
    assignment = assign_oxidation_states(short)
    assert assignment.net_charge_e == pytest.approx(-0.4)
    row = compute_transport(short, temperature_K=300.0)
    assert row[Col.VACANCY_FRACTION] == pytest.approx(0.0, abs=1e-12)
    assert row[Col.INTERSTITIAL_FRACTION] == pytest.approx(0.0, abs=1e-12)
    assert row[Col.MOBILE_ION_DENSITY] == pytest.approx(8 / (a**3 * 1e-24))
    assert row[Col.CONDUCTION_MECHANISM] == "frenkel"
    assert any("+0.4 Li per cell inferred from charge balance" in note for note in row[Col.TRANSPORT_NOTES])
    # neutral as given: no inference, no note
    neutral = assign_oxidation_states(Structure(Lattice.cubic(a), ["Li"] * 8 + ["S"] * 4, li + s))
    assert neutral.net_charge_e == 0.0


# --- oxidation states --------------------------------------------------------------------------------


def _li_half_coo2() -> Structure:
    return Structure(
        Lattice.hexagonal(2.82, 14.05),
        [{"Li": 0.5}, "Co", "O", "O"],
        [[0, 0, 0.5], [0, 0, 0], [1 / 3, 2 / 3, 0.26], [2 / 3, 1 / 3, 0.74]],
    )


def test_mixed_valence_is_an_occupancy_weighted_mixture_of_two_ions():
    assignment = assign_oxidation_states(_li_half_coo2())
    assert assignment.mean_states["Co"] == pytest.approx(3.5)
    cobalt = {str(sp): occ for sp, occ in assignment.structure[1].species.items()}
    assert cobalt == pytest.approx({"Co3+": 0.5, "Co4+": 0.5})
    assert any(note.startswith("mixed valence: Co") for note in assignment.notes)
    row = compute_transport(_li_half_coo2())
    assert row[Col.STATUS] == "ok" and json.loads(row[Col.OXIDATION_STATES])["Co"] == pytest.approx(3.5)
    assert guess_element_states(Composition("LiMn2O4")).mean_states()["Mn"] == pytest.approx(3.5)
    assert guess_element_states(Composition("Fe3O4")).mean_states()["Fe"] == pytest.approx(8 / 3)


def test_peroxide_bonds_make_o_minus():
    # Li2O2-like: an O2 dumbbell of 1.55 A in a box of Li
    structure = Structure(
        Lattice.cubic(5.0),
        ["Li", "Li", "O", "O"],
        _DUMBBELL_COORDS,
    )
    assert peroxide_sites(structure) == {2: -1.0, 3: -1.0}
    assignment = assign_oxidation_states(structure)
    assert assignment.mean_states == {"Li": 1.0, "O": -1.0}
    assert any("peroxide" in note for note in assignment.notes)


def test_a_peroxide_site_full_within_published_rounding_is_a_peroxide():
    # full means full to the project's one rounding tolerance (is_partially_occupied): an O refined to
    # 0.9995 is a full site of an O2 2- dumbbell; one refined to 0.995 is partly empty, as its refinement
    # says, and a bond to a partner that is absent in some cells is not taken as a peroxide (the same rule
    # as every other full-site test of the project)
    def dumbbell(o_occupancy: float) -> Structure:
        return Structure(
            Lattice.cubic(5.0),
            ["Li", "Li", {"O": o_occupancy}, {"O": o_occupancy}],
            _DUMBBELL_COORDS,
        )

    assert peroxide_sites(dumbbell(0.9995)) == {2: -1.0, 3: -1.0}
    assert peroxide_sites(dumbbell(0.995)) == {}


def test_an_o_o_pair_shortened_by_noise_next_to_its_cations_is_not_a_peroxide(obelix_dir):
    # two O of one phosphate 1.59 A apart (coordinate noise), each 1.50 A from its P: the P is each O's
    # nearest neighbour, so the pair is no O2 2- bond and the O stay O2-
    structure = Structure(
        Lattice.cubic(6.0),
        ["P", "O", "O", "Li"],
        [[0.0, 0.0, 0.0], [0.206, 0.1325, 0.0], [0.206, -0.1325, 0.0], [0.5, 0.5, 0.5]],
    )
    lengths = [structure.get_distance(0, 1), structure.get_distance(1, 2)]
    assert lengths == pytest.approx([1.47, 1.59], abs=0.01)
    assert peroxide_sites(structure) == {}
    # the NASICON of OBELiX (h7r) read 36 of its 72 O as peroxide before this rule
    nasicon = Structure.from_file(obelix_dir / "cifs" / "h7r.cif")
    assert peroxide_sites(nasicon) == {}
    assert assign_oxidation_states(nasicon).mean_states["O"] == -2.0


def test_bond_valence_sums_that_oxidise_an_anion_give_way_to_the_composition(obelix_dir):
    # OBELiX 4ba, LiGe2(PO4)3 with 0.1 A coordinate noise: BVAnalyzer's sums read O-1.5 and P3+
    nasicon = Structure.from_file(obelix_dir / "cifs" / "4ba.cif")
    assignment = assign_oxidation_states(nasicon)
    assert assignment.mean_states == {"Li": 1.0, "Ge": 4.0, "P": 5.0, "O": -2.0}
    assert any("bond-valence sums gave O" in note for note in assignment.notes)
    assert oxidised_anions(assignment.structure) == []
    # a peroxide keeps its O-: the anion-anion bond is found first, and the check is for BVAnalyzer only
    peroxide = Structure(Lattice.cubic(5.0), ["Li", "Li", "O", "O"], _DUMBBELL_COORDS)
    assert assign_oxidation_states(peroxide).mean_states["O"] == -1.0
    rock_salt = [[0, 0, 0], [0.5, 0.5, 0.5]]
    assert oxidised_anions(Structure(Lattice.cubic(4.0), ["Li+", "O2-"], rock_salt)) == []
    assert oxidised_anions(Structure(Lattice.cubic(4.0), ["Li+", "O-"], rock_salt)) == ["O-"]
    assert oxidised_anions(Structure(Lattice.cubic(4.0), ["Li+", "H-"], rock_salt)) == []


def test_a_composition_that_is_not_neutral_as_published_gets_the_closest_states_and_a_note():
    states = guess_element_states(Composition("Li6.4La3Zr2O12"))  # its Ta was lost from the CIF
    assert states.states == {"La": 3, "Li": 1, "O": -2, "Zr": 4}
    assert states.imbalance == pytest.approx((6.4 + 9 + 8 - 24) / 23.4)
    # Li-deficient Ta-doped garnet as published (OBELiX uwh): the nominal ions with the imbalance noted,
    # not a neutral combination of rare states (Ta-, O-, La2+) found by widening the search
    states = guess_element_states(Composition("Li5.08La3Ta1.51Zr0.39O12"))
    assert states.states == {"La": 3, "Li": 1, "O": -2, "Ta": 5, "Zr": 4}
    assert states.imbalance == pytest.approx((5.08 + 9 + 7.55 + 1.56 - 24) / 23.19)
    # more anion charge than the cations' states can balance (a third of its Li lost from the file, or
    # deeply delithiated): the holes go to the anion, O2-/O-, never to a metal turned anion
    states = guess_element_states(Composition("Li4.47La3Zr2O12"))
    assert states.states == {"La": 3, "Li": 1, "O": -2, "Zr": 4}
    assert states.mixed == ("O", -1, pytest.approx((24 - 4.47 - 9 - 8) / 12))
    # rock salt with half its cation sites empty, Li0.25Ti0.25O: Ti5+ would be needed, so O takes holes
    half_empty = Structure(Lattice.cubic(4.2), [{"Li": 0.25, "Ti": 0.25}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assignment = assign_oxidation_states(half_empty)
    assert assignment.mean_states["Ti"] == 4 and assignment.mean_states["O"] == pytest.approx(-1.25)
    assert any("holes on the anion" in note for note in assignment.notes)
    # more cation charge than anion charge can only mean atoms missing: a failure that says so
    with pytest.raises(OxidationStateError, match=r"the closest \(Li\+1 O-2\) leaves a net charge of \+50%"):
        guess_element_states(Composition("Li4O"))


def test_metals_and_intermetallics_are_not_applicable_and_li_p_takes_the_documented_substitute():
    feli = Structure(Lattice.cubic(2.9), ["Fe", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    row = compute_transport(feli)
    assert row[Col.STATUS] == "not applicable" and "intermetallic" in row[Col.ERROR]
    li3p = Structure.from_spacegroup(
        "P6_3/mmc",
        Lattice.hexagonal(4.27, 7.59),
        ["Li", "Li", "P"],
        [[0, 0, 0.25], [1 / 3, 2 / 3, 0.583], [1 / 3, 2 / 3, 0.25]],
    )
    row = compute_transport(li3p)
    assert row[Col.STATUS] == "ok"
    assert any("Li+1-N-3 used with r_min shifted" in note for note in row[Col.TRANSPORT_NOTES])


# --- the potential's Frenkel energies against published values ------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_frenkel_energies_from_the_potential_and_the_binaries_below_li3n(tmp_path):
    from screening.bundled_records import load_bundled_entries
    from screening.models import load_model

    model = load_model("sevennet-0", device="cpu")
    by_name = {e.name.split(" (")[0]: e.structure() for e in load_bundled_entries()}
    rows = {
        name: compute_transport(by_name[name], temperature_K=300.0, energy_model=model)
        for name in ("lithium oxide", "lithium nitride", "lithium sulfide")
    }
    for row in rows.values():
        assert any("Frenkel energy from sevennet-0" in note for note in row[Col.TRANSPORT_NOTES])
    # Li2O: the Frenkel energies usually quoted lie near 2 eV (a wide, physical window here); Li3N conducts far better
    assert 1.4 < rows["lithium oxide"][Col.DEFECT_FORMATION] < 2.6
    assert rows["lithium nitride"][Col.DEFECT_FORMATION] < rows["lithium oxide"][Col.DEFECT_FORMATION]
    li3n = rows["lithium nitride"][Col.LOG10_SIGMA]
    assert li3n > rows["lithium oxide"][Col.LOG10_SIGMA] and li3n > rows["lithium sulfide"][Col.LOG10_SIGMA]

    # Li2O refined with every Li split over two positions 0.6 A apart (a full sublattice of split sites):
    # each ordered configuration relaxes back to the crystal, and so does its Frenkel energy; two draws
    # here (the default is 3), the first reused from the cache by the single-draw row
    split = split_lithium_oxide()
    cached = {"temperature_K": 300.0, "energy_model": model, "defect_cache_dir": tmp_path}
    row = compute_transport(split, frenkel_configurations=2, **cached)
    assert any("mean Frenkel fraction of 2 ordered configuration(s)" in n for n in row[Col.TRANSPORT_NOTES])
    assert row[Col.DEFECT_FORMATION] == pytest.approx(rows["lithium oxide"][Col.DEFECT_FORMATION], abs=0.25)
    one = compute_transport(split, frenkel_configurations=1, **cached)
    assert "Frenkel energy from sevennet-0 on one ordered configuration" in one[Col.TRANSPORT_NOTES]
    assert one[Col.DEFECT_FORMATION] == pytest.approx(rows["lithium oxide"][Col.DEFECT_FORMATION], abs=0.25)
    opted_out = compute_transport(
        split, temperature_K=300.0, energy_model=model, defect_options=DefectOptions(include_disordered=False)
    )
    assert "Frenkel energy from bvse" in opted_out[Col.TRANSPORT_NOTES]


class _LennardJonesModel:
    """A cheap stand-in for the potential in the defect tests: only its ASE calculator is used."""

    name = "lennard-jones"

    def ase_calculator(self):
        from ase.calculators.lj import LennardJones

        return LennardJones(sigma=1.8, epsilon=0.01, rc=3.0)


def _bundled_lithium_oxide() -> Structure:
    from screening.bundled_records import load_bundled_entries

    return {e.name.split(" (")[0]: e.structure() for e in load_bundled_entries()}["lithium oxide"]


def split_lithium_oxide() -> Structure:
    """The bundled Li2O refined with every Li split over two positions 0.6 A apart: a full sublattice
    (each ion on one of its two positions), not an ordered structure."""
    oxide = _bundled_lithium_oxide()
    split = Structure(oxide.lattice, [], [])
    for site in oxide:
        if site.specie.symbol == "Li":
            for shift in (-0.3, 0.3):
                split.append({"Li": 0.5}, site.coords + [shift, 0, 0], coords_are_cartesian=True)
        else:
            split.append(site.species, site.frac_coords)
    return split


def test_the_frenkel_energy_is_the_lowest_pair_over_the_interstitial_candidates_above_its_host(monkeypatch):
    """Relaxed from each interstitial candidate the pair ends in its own minimum: here 1.2 eV above the
    crystal, back in the vacancy (recombined), 0.8 eV, 0.5 eV. The lowest of the first
    ``interstitial_candidates`` is kept, a recombined pair skipped, and with every pair recombined the
    calculation is refused. Where the pair's relaxation carried the host into a lower basin (the ion put
    back into the vacancy relaxes 0.3 eV below the crystal), E_F is counted from that basin, not from
    the crystal's, which would make it 0. (The relaxations themselves are the potential's, checked with
    SevenNet-0 above; the crystal here is relaxed with a Lennard-Jones calculator.)"""
    from pymatgen.io.ase import AseAtomsAdaptor

    from screening.transport import defects

    oxide = _bundled_lithium_oxide()
    calculator = _LennardJonesModel().ase_calculator()

    def energy_eV(structure) -> float:
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.calc = calculator
        return float(atoms.get_potential_energy())

    def frenkel_eV(outcomes_eV: list[float | str], candidates: int, host_shift_eV: float = 0.0) -> float:
        tried = iter(outcomes_eV)

        def relaxed_pair(supercell, vacated, interstitial, mobile_ion, relax):
            offset = next(tried)
            return offset if isinstance(offset, str) else (energy_eV(supercell) + offset, supercell)

        def refilled_host(pair, vacancy_frac, relax):
            return energy_eV(pair) + host_shift_eV

        monkeypatch.setattr(defects, "_relaxed_pair", relaxed_pair)
        monkeypatch.setattr(defects, "_refilled_host_eV", refilled_host)
        positions = np.array([[0.5, 0.5, 0.5], [0.5, 0.0, 0.0], [0.5, 0.25, 0.5], [0.0, 0.25, 0.5]])
        return defects.frenkel_energy_with_potential_eV(
            oxide,
            "Li",
            np.array([0.25, 0.25, 0.25]),
            positions,
            _LennardJonesModel(),
            DefectOptions(interstitial_candidates=candidates),
        )

    recombined, unconverged = defects.RECOMBINED, defects.NOT_CONVERGED
    assert frenkel_eV([1.2, recombined, 0.8, 0.5], candidates=3) == pytest.approx(0.8, abs=1e-9)
    assert frenkel_eV([1.2, recombined, 0.8, 0.5], candidates=4) == pytest.approx(0.5, abs=1e-9)
    assert frenkel_eV([1.2, recombined, 0.8, 0.5], candidates=1) == pytest.approx(1.2, abs=1e-9)
    assert frenkel_eV([0.9, unconverged, 0.6], candidates=3) == pytest.approx(0.6, abs=1e-9)
    assert frenkel_eV([0.8, 0.9, 1.0], candidates=3, host_shift_eV=0.2) == pytest.approx(0.8, abs=1e-9)
    assert frenkel_eV([-0.1, 0.3, 0.4], candidates=3, host_shift_eV=-0.3) == pytest.approx(0.2, abs=1e-9)
    with pytest.raises(defects.DefectError, match="from 2 interstitial position.*: 2 recombined"):
        frenkel_eV([recombined, recombined, 0.8], candidates=2)
    with pytest.raises(defects.DefectError, match="1 recombined, 1 not relaxed within the step cap"):
        frenkel_eV([unconverged, recombined, 0.8], candidates=2)
    with pytest.raises(ValueError, match="at least 1"):
        DefectOptions(interstitial_candidates=0)


def test_only_converged_minima_enter_the_frenkel_energy():
    """OBELiX fwz: after 60 relaxation steps its cell was still 0.38 eV above its minimum, and E_F came out
    as the difference of two unconverged relaxations. Now a perfect supercell that does not converge
    refuses the calculation, and an unconverged pair or refilled host is not used."""
    from screening.transport import defects

    oxide = _bundled_lithium_oxide()

    never = DefectOptions(fmax_eV_per_A=1e-9, max_steps=1)
    with pytest.raises(
        defects.DefectError, match=r"perfect \d+-atom supercell did not relax to 1e-09 eV/A within 1 steps"
    ):
        defects.frenkel_energy_with_potential_eV(
            oxide, "Li", np.array([0.25] * 3), np.array([[0.5, 0.5, 0.5]]), _LennardJonesModel(), never
        )

    def unconverged(structure):
        return -1.0, structure, False

    supercell = Structure(Lattice.cubic(8.0), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    pair = defects._relaxed_pair(supercell, 0, np.array([0.25, 0.25, 0.25]), "Li", unconverged)
    assert pair == defects.NOT_CONVERGED
    assert defects._refilled_host_eV(supercell, np.zeros(3), unconverged) == math.inf


def test_fixed_cell_relaxations_reach_the_same_minimum_with_either_optimizer():
    """One relaxation for the whole product: the defect supercells take BFGS (few steps near a minimum),
    the clean-up and hypothetical structures FIRE. From the same rattled crystal both reach the same
    minimum, and at fixed cell the lattice stays as it was."""
    from screening.errors import InputError
    from screening.models import relax_structure
    from screening.transport.defects import _rattled

    a_fcc = 2 ** (1 / 6) * 1.8 * 2**0.5  # nearest neighbours at the Lennard-Jones minimum
    fcc = Structure(
        Lattice.cubic(a_fcc), ["Li"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    )
    rattled = _rattled(fcc * 2, 0.05, seed=3)
    model = _LennardJonesModel()
    start = relax_structure(model, rattled, relax_cell=False, max_steps=0).energy_per_atom_eV
    results = {
        name: relax_structure(
            model, rattled, fmax_eV_per_A=1e-3, max_steps=500, relax_cell=False, optimizer=name
        )
        for name in ("FIRE", "BFGS")
    }
    for result in results.values():
        assert result.converged
        assert result.structure.lattice == rattled.lattice
        assert result.energy_per_atom_eV < start - 1e-4
    assert results["BFGS"].energy_per_atom_eV == pytest.approx(results["FIRE"].energy_per_atom_eV, abs=1e-5)
    assert results["BFGS"].n_steps < results["FIRE"].n_steps  # why the defect supercells take BFGS
    with pytest.raises(InputError, match="optimizer must be one of"):
        relax_structure(model, fcc, relax_cell=False, optimizer="LBFGS")


def test_the_perfect_supercell_is_rattled_the_same_way_for_the_same_seed():
    from screening.transport.defects import _rattled

    crystal = Structure(Lattice.cubic(6.0), ["Li"] * 500, np.random.default_rng(1).random((500, 3)))
    once, again, other = _rattled(crystal, 0.02, 0), _rattled(crystal, 0.02, 0), _rattled(crystal, 0.02, 1)
    displacements = once.cart_coords - crystal.cart_coords
    assert np.std(displacements) == pytest.approx(0.02, rel=0.05)
    np.testing.assert_allclose(again.cart_coords, once.cart_coords)
    assert not np.allclose(other.cart_coords, once.cart_coords)
    assert once.lattice == crystal.lattice and once.species == crystal.species


def test_an_ion_is_not_put_back_into_a_vacancy_another_atom_has_moved_into():
    """OBELiX mfs: after the pair relaxed, an O sat 0.12 A from the vacancy; putting the Li back there
    gave a 0.65 A contact, the potential's untrained short range, and an E_F above 38 eV. Such a host is
    not relaxed at all (inf: the crystal's own energy stays the reference)."""
    from screening.transport.defects import _refilled_host_eV

    pair = Structure(Lattice.cubic(5.0), ["O", "Li"], [[0.02, 0.0, 0.0], [0.5, 0.5, 0.5]])
    assert _refilled_host_eV(pair, np.zeros(3), relax=None) == math.inf


def test_a_frenkel_fraction_that_underflows_leaves_no_carriers_not_an_error():
    model = carrier_model(0.4, 60.0, 0.0, 300.0)  # exp(-60 / 2kT) is 0 in double precision
    assert model.carrier_factor == 0.0 and model.mechanism == "frenkel"
    assert model.ea_eV == pytest.approx(0.4 + 30.0)
