"""The occupancy-native energy model: expectation identity, invariances, vacancies, split positions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.core.operations import SymmOp

from screening.models.occupancy_net import OccupancyEnergyNet, batch_slot_graphs, occupancy_graph


def _disordered() -> Structure:
    """A rock-salt-like cell with a mixed cation site, a partly empty one and a mixed anion site, wider
    than the 5 A cutoff, so that no site sees its own image (the enumeration below treats the cell's
    sites, not its images, as the independent ones)."""
    lattice = Lattice.orthorhombic(5.1, 5.2, 5.3)
    # occupancies exact in float32, so that the graph's float32 weights equal the enumeration's
    species = [{"Li": 0.5, "Na": 0.25}, {"Li": 1.0}, {"Cl": 0.625, "Br": 0.375}, {"Cl": 1.0}]
    coords = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(lattice, species, coords)


def _double(graph):
    graph.slot_weight = graph.slot_weight.double()
    graph.edge_length = graph.edge_length.double()
    graph.edge_open = graph.edge_open.double()
    return graph


def _total_eV(model: OccupancyEnergyNet, structure: Structure) -> float:
    """Total energy (eV) of the cell, in float64 (the model's parameters are float64 here)."""
    graph = _double(model.graph(structure))
    with torch.no_grad():
        return float(model(graph)[0] * graph.slot_weight.sum())


def _net(n_interactions: int, exclusion_A: float = 1.0) -> OccupancyEnergyNet:
    torch.manual_seed(0)
    model = OccupancyEnergyNet(hidden=16, n_interactions=n_interactions, exclusion_A=exclusion_A).double()
    with torch.no_grad():  # the zero-initialised output layers made non-trivial: every term exercised
        for parameter in (
            model.element_energy.weight,
            model.readout[-1].weight,
            model.pair_radial.weight,
            model.pair_radial.bias,
        ):
            parameter.normal_(std=0.3)
    return model.eval()


def test_site_and_pair_model_is_the_exact_expectation_over_independent_occupations():
    """With no interaction layer one evaluation equals the probability-weighted mean of the total energy
    over every ordered configuration (vacancies removed), enumerated by brute force."""
    model = _net(0, exclusion_A=0.0)
    parent = _disordered()
    choices = []
    for site in parent:
        options = [(el.symbol, float(occ)) for el, occ in site.species.items()]
        empty = 1.0 - sum(p for _, p in options)
        if empty > 1e-12:
            options.append((None, empty))
        choices.append(options)
    expected = 0.0
    for combination in itertools.product(*choices):
        probability = float(np.prod([p for _, p in combination]))
        kept = [
            (symbol, site.frac_coords)
            for (symbol, _), site in zip(combination, parent, strict=True)
            if symbol
        ]
        ordered = Structure(parent.lattice, [s for s, _ in kept], [c for _, c in kept])
        expected += probability * _total_eV(model, ordered)
    graph = _double(model.graph(parent))
    with torch.no_grad():
        one_pass = float(model(graph)[0] * graph.slot_weight.sum())
    assert one_pass == pytest.approx(expected, rel=1e-10, abs=1e-10)


def test_energy_is_invariant_under_rotation_translation_permutation_and_supercell():
    model = _net(2)
    structure = _disordered()
    reference = _total_eV(model, structure) / structure.composition.num_atoms
    rotated = structure.copy()
    rotated.apply_operation(SymmOp.from_axis_angle_and_translation([1, 2, 3], 37.0))
    translated = structure.copy()
    translated.translate_sites(list(range(len(structure))), [0.13, 0.27, 0.41])
    permuted = Structure.from_sites([structure[i] for i in (2, 0, 3, 1)])
    supercell = structure * (2, 1, 2)
    for variant in (rotated, translated, permuted, supercell):
        per_atom = _total_eV(model, variant) / variant.composition.num_atoms
        assert per_atom == pytest.approx(reference, abs=2e-6)


def test_a_vacancy_sends_no_message_and_an_empty_site_is_no_site():
    """Driving a partly occupied Li site to zero occupancy gives the structure without that site."""
    model = _net(2, exclusion_A=0.0)
    structure = _disordered()
    graph = _double(model.graph(structure))
    weights = graph.slot_weight.clone()
    weights[graph.slot_site == 0] = 0.0
    with torch.no_grad():
        site, pair = model.slot_energies(graph, slot_weight=weights)
        emptied = float((weights * (site + pair)).sum())
    without = structure.copy()
    without.remove_sites([0])
    assert emptied == pytest.approx(_total_eV(model, without), abs=1e-5)


def test_split_positions_exchange_nothing_but_full_atoms_do():
    lattice = Lattice.cubic(5.0)
    split = Structure(lattice, [{"Li": 0.5}, {"Li": 0.5}, "Cl"], [[0, 0, 0], [0.1, 0, 0], [0.5, 0.5, 0.5]])
    graph = occupancy_graph(split, cutoff_A=5.0, exclusion_A=1.0)
    between = (graph.slot_site[graph.edge_index[0]] != graph.slot_site[graph.edge_index[1]]) & (
        graph.edge_length < 1.0
    )
    assert between.any() and (graph.edge_open[between] == 0).all()
    far = graph.edge_length > 1.0
    assert (graph.edge_open[far] == 1).all()


def test_batch_equals_one_at_a_time_and_ordered_structures_work():
    model = _net(2)
    ordered = Structure(Lattice.cubic(4.2), ["Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    structures = [_disordered(), ordered, _disordered() * (1, 1, 2)]
    with torch.no_grad():
        batched = model(batch_slot_graphs([model.graph(s) for s in structures]))
        single = [float(model(model.graph(s))[0]) for s in structures]
    np.testing.assert_allclose(batched.numpy(), single, rtol=1e-6)


def test_constructor_rebuilds_the_same_network():
    model = _net(1)
    rebuilt = OccupancyEnergyNet(**model.constructor()).double()
    rebuilt.load_state_dict(model.state_dict())
    assert _total_eV(rebuilt, _disordered()) == _total_eV(model, _disordered())
