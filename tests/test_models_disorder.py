"""Batching and configuration sampling (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Species, Structure

from screening.graphs import perpendicular_widths_A
from screening.models import batches_by_atom_count, choose_supercell, one_configuration, sample_configurations


def test_batches_respect_cap_and_order() -> None:
    counts = [3, 4, 2, 10, 1, 1, 5]
    batches = batches_by_atom_count(counts, max_atoms_per_batch=8)
    assert [i for batch in batches for i in batch] == list(range(len(counts)))
    assert batches == [[0, 1], [2], [3], [4, 5, 6]]
    for batch in batches:
        assert len(batch) == 1 or sum(counts[i] for i in batch) <= 8


def test_batches_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="max_atoms_per_batch"):
        batches_by_atom_count([1, 2], max_atoms_per_batch=0)
    with pytest.raises(ValueError, match="item 1"):
        batches_by_atom_count([1, 0], max_atoms_per_batch=4)
    assert batches_by_atom_count([], max_atoms_per_batch=4) == []


def _mixed_vacancy_primitive() -> Structure:
    """Primitive rock salt with a cation site Li0.5 Na0.3 vacancy0.2."""
    return Structure.from_spacegroup(
        "Fm-3m",
        Lattice.cubic(4.3),
        [{Species("Li", 1): 0.5, Species("Na", 1): 0.3}, Species("F", -1)],
        [[0, 0, 0], [0.5, 0.5, 0.5]],
    ).get_primitive_structure()


def test_supercell_represents_occupancies_exactly() -> None:
    parent = _mixed_vacancy_primitive()
    scaling, error = choose_supercell(parent)
    multiplier = int(np.prod(scaling))
    assert multiplier % 10 == 0  # 0.5 / 0.3 / 0.2 of one cation site needs 10 cells
    assert error == 0.0
    assert (perpendicular_widths_A(parent.lattice.matrix) * np.array(scaling)).min() >= 8.0


def test_configurations_have_parent_composition_without_vacancies() -> None:
    parent = _mixed_vacancy_primitive()
    sample = sample_configurations(parent, 4, seed=3)
    multiplier = int(np.prod(sample.supercell_scaling))
    expected = Composition({"Li": 0.5 * multiplier, "Na": 0.3 * multiplier, "F": multiplier})
    assert len(sample.structures) == 4
    for configuration in sample.structures:
        assert configuration.is_ordered
        assert configuration.composition == expected  # vacancies removed, exact counts
        # every atom sits on a site of the supercell of the parent
        assert len(configuration) == int(1.8 * multiplier)
    assert sample.composition_error == 0.0


def test_sampling_is_seeded_and_reproducible() -> None:
    parent = _mixed_vacancy_primitive()

    def species(seed: int) -> list[list[str]]:
        sample = sample_configurations(parent, 3, seed=seed)
        return [[site.species_string for site in s] for s in sample.structures]

    assert species(7) == species(7)
    assert species(7) != species(8)
    first = species(7)
    assert first[0] != first[1]  # the K draws differ from one another


def test_composition_error_reported_when_cell_limit_forbids_exactness() -> None:
    parent = Structure(Lattice.cubic(4.0), [{"Li": 1 / 7, "Na": 6 / 7}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    scaling, error = choose_supercell(parent, max_supercell_sites=8)  # at most 4 cells, 7 would be exact
    assert int(np.prod(scaling)) <= 4
    assert 0.0 < error < 1 / 7
    sample = sample_configurations(parent, 2, seed=0, max_supercell_sites=8)
    configuration = sample.structures[0]
    fraction_li = configuration.composition.get_atomic_fraction("Li")
    assert abs(fraction_li - 0.5 / 7) == pytest.approx(sample.composition_error)
    scaling, error = choose_supercell(parent, max_supercell_sites=14)
    assert int(np.prod(scaling)) == 7 and error == 0.0


def test_ordered_structure_is_its_own_only_configuration_up_to_supercell(rocksalt_lif: Structure) -> None:
    sample = sample_configurations(rocksalt_lif, 2, seed=0)
    for configuration in sample.structures:
        assert configuration.composition.reduced_formula == "LiF"
        assert len(configuration) == len(rocksalt_lif) * int(np.prod(sample.supercell_scaling))


def test_sampling_rejects_bad_settings(rocksalt_lif: Structure) -> None:
    with pytest.raises(ValueError, match="n_samples"):
        sample_configurations(rocksalt_lif, 0)
    empty = Structure(Lattice.cubic(4.0), [{"Li": 0.0}], [[0, 0, 0]])
    with pytest.raises(ValueError, match="single atom"):
        choose_supercell(empty)


def _split_site_cell(occupancy: float) -> Structure:
    """A cubic cell with one anion and a pair of Li split sites 0.7 A apart, each ``occupancy`` full."""
    lattice = Lattice.cubic(5.0)
    return Structure(
        lattice,
        [{"Li": occupancy}, {"Li": occupancy}, "Cl"],
        [[0.0, 0.0, 0.0], [0.14, 0.0, 0.0], [0.5, 0.5, 0.5]],
    )


def test_split_sites_never_hold_two_atoms_at_once() -> None:
    parent = _split_site_cell(0.5)
    sample = sample_configurations(parent, 6, seed=0, min_width_A=10.0)
    multiplier = int(np.prod(sample.supercell_scaling))
    for configuration in sample.structures:
        assert configuration.composition == Composition({"Li": multiplier, "Cl": multiplier})
        li = [site for site in configuration if site.specie.symbol == "Li"]
        distances = np.array([[a.distance(b) for b in li] for a in li]) + 100 * np.eye(len(li))
        assert distances.min() > 1.0  # one Li per pair: the 0.7 A partner is always empty
    # without exclusion, random permutations do put two Li 0.7 A apart
    free = sample_configurations(parent, 6, seed=0, min_width_A=10.0, min_distance_A=0.0)
    assert min(np.min(c.distance_matrix + 100 * np.eye(len(c))) for c in free.structures) < 0.8


def test_impossible_exclusion_is_a_clear_error() -> None:
    # 1.5 Li per pair of split sites: a third of the Li (a fifth of the atoms) cannot be placed
    with pytest.raises(
        ValueError, match=r"closer than 1 angstrom .* 3 atoms on 4 positions of Li0.75 but no more than 2 fit"
    ):
        sample_configurations(_split_site_cell(0.75), 1, seed=0, max_supercell_sites=12)


def test_slightly_overfilled_split_positions_lose_only_the_atoms_that_cannot_fit() -> None:
    """Published LGPS-like refinements put Li 0.54 on both positions of a pair 0.4 A apart (1.08 atoms per
    pair): the sampler places one Li per pair, keeps everything else, and reports the difference."""
    lattice = Lattice.cubic(8.0)
    grid = [[x, y, z] for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)]
    parent = Structure(lattice, [{"Li": 0.55}, {"Li": 0.55}] + ["Cl"] * 8, [[0, 0, 0], [0.05, 0, 0], *grid])
    sample = sample_configurations(parent, 3, seed=0)
    multiplier = int(np.prod(sample.supercell_scaling))
    assert multiplier == 20  # 0.55 x 20 = 11 Li per position group: 22 asked for on 20 pairs
    for configuration in sample.structures:
        assert configuration.composition == Composition({"Li": multiplier, "Cl": 8 * multiplier})
        li = [site for site in configuration if site.specie.symbol == "Li"]
        distances = np.array([[a.distance(b) for b in li] for a in li]) + 100 * np.eye(len(li))
        assert distances.min() > 1.0
    li_fraction_parent = 1.1 / 9.1
    li_fraction_sampled = 20 / 180
    assert sample.composition_error == pytest.approx(li_fraction_parent - li_fraction_sampled)


def test_one_configuration_is_an_ordered_supercell_of_the_parent_or_the_ordered_structure_itself() -> None:
    """What the defect calculation and the clean-up compute on: a diagonal supercell of the parent (so
    parent-cell positions keep their meaning) that keeps the composition and never fills both halves of a
    split pair; the same seed gives the same configuration; an ordered structure is used as it is."""
    parent = Structure(
        Lattice.cubic(4.2),
        [{"Li": 1.0}, {"Li": 0.5}, {"Li": 0.5}, "Cl"],
        [[0, 0, 0], [0.5, 0.5, 0.4], [0.5, 0.5, 0.6], [0.5, 0, 0]],  # split pair 0.84 A apart
    )
    configuration, parent_cells = one_configuration(parent, seed=0)
    np.testing.assert_allclose(configuration.lattice.matrix, parent.lattice.matrix * parent_cells[:, None])
    assert configuration.is_ordered
    assert configuration.composition.reduced_formula == "Li2Cl"
    li = configuration.cart_coords[[s.specie.symbol == "Li" for s in configuration]]
    distances = np.linalg.norm(li[:, None] - li[None], axis=-1)[np.triu_indices(len(li), 1)]
    assert distances.min() > 1.0  # never both halves of a split pair
    again, _ = one_configuration(parent, seed=0)
    np.testing.assert_allclose(again.cart_coords, configuration.cart_coords)
    ordered = Structure(Lattice.cubic(4.2), ["Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    same, cells = one_configuration(ordered, seed=3)
    assert same is ordered and cells.tolist() == [1, 1, 1]
