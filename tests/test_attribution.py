"""Attribution of native energies to sites and substructures: completeness and the decomposition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from screening.models.attribution import attribute, substructure_sums
from screening.models.occupancy_net import OccupancyEnergyNet


def _members(n: int = 2) -> list[OccupancyEnergyNet]:
    members = []
    for seed in range(n):
        torch.manual_seed(seed)
        member = OccupancyEnergyNet(hidden=16, n_interactions=2)
        with torch.no_grad():  # the zero-initialised output layers made non-trivial
            for parameter in (
                member.element_energy.weight,
                member.readout[-1].weight,
                member.pair_radial.weight,
            ):
                parameter.normal_(std=0.3)
        members.append(member.eval())
    return members


def _zirconate() -> Structure:
    """Li partly on a split pair, a Zr/Hf site, O around: every kind of slot."""
    lattice = Lattice.cubic(6.0)
    species = [{"Li": 0.5}, {"Li": 0.5}, {"Zr": 0.75, "Hf": 0.25}, "O", "O", "O", "Li"]
    coords = [
        [0, 0, 0],
        [0.08, 0, 0],
        [0.5, 0.5, 0.5],
        [0.5, 0.5, 0.15],
        [0.5, 0.15, 0.5],
        [0.15, 0.5, 0.5],
        [0.5, 0, 0],
    ]
    return Structure(lattice, species, coords)


def test_integrated_gradients_are_complete_and_site_energies_sum_to_the_prediction():
    members = _members()
    structure = _zirconate()
    result = attribute(members, structure)
    graph = members[0].graph(structure)
    with torch.no_grad():
        per_atom = np.mean([float(m(graph)[0]) for m in members])
    assert result.total_energy_eV == pytest.approx(per_atom * float(graph.slot_weight.sum()), rel=1e-5)
    assert result.reference_energy_eV == 0.0  # the empty lattice
    assert result.site_energy_eV.sum() == pytest.approx(result.total_energy_eV, rel=1e-10)
    assert result.integrated_gradients_eV.sum() == pytest.approx(result.total_energy_eV, rel=1e-6)
    assert members[0].element_energy.weight.dtype == torch.float32  # the caller's models are untouched


def test_completeness_holds_from_any_reference():
    members = _members(1)
    structure = _zirconate()
    weights = members[0].graph(structure).slot_weight.numpy().copy()
    reference = weights.copy()
    reference[:2] = 0.0  # the split Li pair emptied
    result = attribute(members, structure, reference_weights=reference)
    assert result.integrated_gradients_eV.sum() == pytest.approx(
        result.total_energy_eV - result.reference_energy_eV, rel=1e-6
    )
    assert np.all(result.integrated_gradients_eV[2:] == 0.0)  # only what changed is credited


def test_substructures_sum_to_the_whole_and_share_anions():
    structure = _zirconate()
    values = np.arange(1.0, len(structure) + 1)
    parts = substructure_sums(structure, values, mobile_ion="Li")
    assert sum(parts.values()) == pytest.approx(values.sum())
    assert parts["Li sites"] == 1 + 2 + 7
    assert parts["Zr2 polyhedron"] == 3 + 4 + 5 + 6  # the three O bind only to Zr
    assert parts["unassigned"] == 0.0
    merged = substructure_sums(structure, values, mobile_ion="Li", per_element=True)
    assert merged == {"Li sites": 10.0, "Zr polyhedra": 18.0, "unassigned": 0.0}


def test_an_ensemble_on_the_alchemical_base_is_attributed_whole():
    from screening.models import load_model
    from screening.models.attribution import attribute_ensemble
    from screening.models.native_energy import NativeEnergyEnsemble

    members = []
    for seed in range(2):
        torch.manual_seed(seed)
        member = OccupancyEnergyNet(hidden=16, n_interactions=1, correction=True)
        with torch.no_grad():
            member.readout[-1].weight.normal_(std=0.3)
        members.append(member.eval())
    ensemble = NativeEnergyEnsemble(members, teacher="sevennet-0", threshold_eV=0.0, base="alchemical")
    structure = _zirconate()
    teacher = load_model("sevennet-0", "cpu")
    result = attribute_ensemble(ensemble, structure, teacher_model=teacher)
    predicted = ensemble.predict([structure], teacher_model=teacher).energy_per_atom_eV[0]
    assert result.total_energy_eV == pytest.approx(predicted * structure.composition.num_atoms, rel=1e-5)
    assert result.integrated_gradients_eV.sum() == pytest.approx(result.total_energy_eV, rel=1e-5)
    assert result.site_energy_eV.sum() == pytest.approx(result.total_energy_eV, rel=1e-5)
