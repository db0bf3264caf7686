"""Split positions have one definition, and ingest and the configuration sampler follow it alike."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

from screening.models.disorder import sample_configurations
from screening.split_positions import SPLIT_POSITION_DISTANCE_A, split_position_pairs
from screening.structures import is_partially_occupied
from screening.validation import check_structure


def kinds(warnings: list[str]) -> list[str]:
    return [w.split(":")[0] for w in warnings]


def test_a_site_refined_to_0_999_is_full_and_one_below_is_partial() -> None:
    # CIFs round mixed sites (Y 0.075 + Zr 0.924): that is a full site, not a split position
    assert is_partially_occupied([1.0, 0.999, 0.9985, 0.5]).tolist() == [False, False, True, True]


def test_pairs_are_split_only_when_both_partial_and_closer_than_the_distance() -> None:
    distances_A = np.array([0.7, 0.7, 0.7, SPLIT_POSITION_DISTANCE_A + 0.01])
    center, neighbor = np.array([0, 0, 1, 0]), np.array([1, 2, 2, 1])
    occupancy = np.array([0.5, 0.5, 1.0])
    assert split_position_pairs(distances_A, center, neighbor, occupancy).tolist() == [
        True,
        False,
        False,
        False,
    ]
    assert not split_position_pairs(distances_A, center, neighbor, occupancy, max_distance_A=0.0).any()


def test_ingest_and_sampler_agree_on_a_rounded_mixed_site_beside_a_partial_li() -> None:
    # a Li/Na site refined to 0.999 (full) and a Li 0.5 site 0.9 A away: not split positions, so ingest
    # calls them a short contact (both sometimes occupied) and the sampler fills both, never cutting atoms
    structure = Structure(
        Lattice.cubic(6.0),
        [{"Li": 0.6, "Na": 0.399}, {"Li": 0.5}, "Cl"],
        [[0, 0, 0], [0.15, 0, 0], [0.5, 0.5, 0.5]],
    )
    check = check_structure(structure)
    assert check.problems == []
    assert "split positions overfilled" not in kinds(check.warnings)
    assert "short contacts" in kinds(check.warnings)
    sample = sample_configurations(structure, 3, seed=0)
    n_cells = int(np.prod(sample.supercell_scaling))
    assert n_cells % 2 == 0  # the Li 0.5 site is exactly representable
    for configuration in sample.structures:
        assert configuration.composition["Cl"] == n_cells
        assert configuration.composition["Li"] + configuration.composition["Na"] == n_cells + n_cells // 2


def test_split_li_pair_one_atom_between_them_in_every_configuration() -> None:
    structure = Structure(
        Lattice.cubic(6.0), [{"Li": 0.5}, {"Li": 0.5}, "Cl"], [[0, 0, 0], [0.1, 0, 0], [0.5, 0.5, 0.5]]
    )
    check = check_structure(structure)
    assert check.problems == [] and "split positions overfilled" not in kinds(check.warnings)
    for configuration in sample_configurations(structure, 3, seed=0).structures:
        li = [i for i, site in enumerate(configuration) if site.specie.symbol == "Li"]
        distances_A = configuration.distance_matrix[np.ix_(li, li)][np.triu_indices(len(li), 1)]
        assert len(li) == len(configuration) - len(li)  # one Li per pair of positions: one per Cl
        assert (distances_A > SPLIT_POSITION_DISTANCE_A).all()
