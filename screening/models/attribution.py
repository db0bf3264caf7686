"""Which sites and substructures a native energy prediction comes from.

Two attributions of the total energy of a cell (eV) predicted by an occupancy-native model (or the mean
of an ensemble):

- **site energies**: the model's own decomposition, ``E = sum_s w_s (eps_s + pair_s)`` gathered per site;
- **integrated gradients** along the occupancy weights, from a reference occupancy ``w0`` (default: the
  empty lattice, whose energy is 0) to the structure's ``w``: ``IG_s = (w_s - w0_s) int_0^1 dE/dw_s
  (w0 + a (w - w0)) da``, by Gauss-Legendre quadrature. They are complete: they sum to
  ``E(w) - E(w0)`` (tested).

:func:`attribute_ensemble` adds the teacher's own alchemical site energies where the ensemble learns a
correction on top of them. :func:`substructure_sums` gathers either attribution into chemically meaningful parts: the mobile ion's
sites, and each other cation's polyhedron (the cation and a share of each anion bound to it; an anion
bound to several cations is split equally among them), so that the parts still sum to the total.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pymatgen.core import Structure

from screening.errors import InputError
from screening.models.occupancy_net import OccupancyEnergyNet

#: Elements treated as anions when polyhedra are formed.
ANIONS = frozenset({"N", "O", "F", "S", "Cl", "Se", "Br", "Te", "I"})
#: An anion belongs to a cation's polyhedron within this factor of the cation's shortest anion distance.
BOND_TOLERANCE = 1.25
#: and never beyond this distance (angstrom).
MAX_BOND_A = 3.3


@dataclass(frozen=True)
class Attribution:
    """Per-site attributions of one structure's total energy (eV), arrays of shape ``(n_sites,)``.

    Attributes:
        site_energy_eV: the model's own site energies; they sum to ``total_energy_eV``.
        integrated_gradients_eV: integrated gradients from the reference; they sum to
            ``total_energy_eV - reference_energy_eV`` (to quadrature accuracy).
        total_energy_eV: the predicted energy of the cell.
        reference_energy_eV: the energy of the reference occupancy (0 for the empty lattice).
    """

    site_energy_eV: np.ndarray
    integrated_gradients_eV: np.ndarray
    total_energy_eV: float
    reference_energy_eV: float


def _cell_energy(
    member: OccupancyEnergyNet, graph, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Total energy (eV) and per-slot contributions of one slot graph at slot ``weights``."""
    site, pair = member.slot_energies(graph, slot_weight=weights)
    contributions = weights * (site + pair)
    return contributions.sum(), contributions


def attribute(
    members: Sequence[OccupancyEnergyNet],
    structure: Structure,
    *,
    reference_weights: np.ndarray | None = None,
    n_points: int = 32,
) -> Attribution:
    """Site energies and integrated gradients of ``structure``, averaged over ``members``.

    Args:
        members: one model or an ensemble's members (the attribution of the ensemble mean).
        structure: ordered or disordered.
        reference_weights: occupancy of each slot of the structure's graph at the reference (default
            zeros: the empty lattice).
        n_points: Gauss-Legendre points of the path integral.
    """
    if not members:
        raise InputError("no model to attribute")
    graph = _as_double(members[0].graph(structure))
    weights = graph.slot_weight
    reference = (
        torch.zeros_like(weights)
        if reference_weights is None
        else torch.as_tensor(reference_weights, dtype=torch.float64)
    )
    if reference.shape != weights.shape:
        raise InputError(f"reference_weights must have one entry per slot ({weights.shape[0]})")
    nodes, quadrature = np.polynomial.legendre.leggauss(n_points)
    alphas, alpha_weights = (nodes + 1) / 2, quadrature / 2
    n_sites = len(structure)
    site_energy = np.zeros(n_sites)
    gradients = np.zeros(n_sites)
    total = reference_total = 0.0
    for member in members:
        model = copy.deepcopy(member).double().eval()  # float64: quadrature, not round-off, sets the error
        with torch.no_grad():
            energy, contributions = _cell_energy(model, graph, weights)
            reference_total += float(_cell_energy(model, graph, reference)[0])
        total += float(energy)
        site_energy += np.bincount(graph.slot_site.numpy(), contributions.numpy(), minlength=n_sites)
        path_gradient = torch.zeros_like(weights)
        for alpha, weight in zip(alphas, alpha_weights, strict=True):
            point = (reference + float(alpha) * (weights - reference)).requires_grad_(True)
            (gradient,) = torch.autograd.grad(_cell_energy(model, graph, point)[0], point)
            path_gradient += float(weight) * gradient
        slot_ig = ((weights - reference) * path_gradient).detach().numpy()
        gradients += np.bincount(graph.slot_site.numpy(), slot_ig, minlength=n_sites)
    n = len(members)
    return Attribution(site_energy / n, gradients / n, total / n, reference_total / n)


def _as_double(graph):
    """The slot graph with its real-valued tensors in float64 (the models are evaluated in float64)."""
    for key in ("edge_length", "edge_open", "slot_weight"):
        graph[key] = graph[key].double()
    return graph


def _main_element(site) -> str:
    return max(site.species.element_composition.items(), key=lambda item: item[1])[0].symbol


def substructure_sums(
    structure: Structure, per_site_eV: np.ndarray, mobile_ion: str = "Li", *, per_element: bool = False
) -> dict[str, float]:
    """Per-site attributions summed over substructures (see the module docstring); with
    ``per_element`` the polyhedra of each cation element are summed (``"Zr polyhedra"``).

    Returns:
        ``{"<ion> sites": ..., "<Element><site index> polyhedron": ..., "unassigned": ...}``, summing to
        ``per_site_eV.sum()``. A site counts as the element it mostly holds.
    """
    values = np.asarray(per_site_eV, dtype=float)
    if values.shape != (len(structure),):
        raise InputError(f"per_site_eV must have one value per site ({len(structure)})")
    main = [_main_element(site) for site in structure]
    anions = [i for i, element in enumerate(main) if element in ANIONS]
    cations = [i for i, element in enumerate(main) if element not in ANIONS and element != mobile_ion]
    parts: dict[str, float] = {
        f"{mobile_ion} sites": float(sum(v for v, e in zip(values, main, strict=True) if e == mobile_ion))
    }
    bound: dict[int, list[int]] = {}
    for cation in cations:
        neighbours = [
            (n.index, n.nn_distance)
            for n in structure.get_neighbors(structure[cation], MAX_BOND_A)
            if n.index in set(anions)
        ]
        if neighbours:
            shortest = min(d for _, d in neighbours)
            for anion in {i for i, d in neighbours if d <= BOND_TOLERANCE * shortest}:
                bound.setdefault(anion, []).append(cation)
        parts[f"{main[cation]}{cation} polyhedron"] = float(values[cation])
    unassigned = 0.0
    for anion in anions:
        owners = bound.get(anion, [])
        for cation in owners:
            parts[f"{main[cation]}{cation} polyhedron"] += float(values[anion]) / len(owners)
        if not owners:
            unassigned += float(values[anion])
    parts["unassigned"] = unassigned
    if not per_element:
        return parts
    merged: dict[str, float] = {}
    for cation in cations:
        name = f"{main[cation]} polyhedra"
        merged[name] = merged.get(name, 0.0) + parts[f"{main[cation]}{cation} polyhedron"]
    return {f"{mobile_ion} sites": parts[f"{mobile_ion} sites"], **merged, "unassigned": unassigned}


def attribute_ensemble(ensemble: Any, structure: Structure, *, teacher_model: Any = None) -> Attribution:
    """:func:`attribute` of a native ensemble's prediction, base included: with the ``alchemical`` base
    the teacher's own alchemical site energies are added to both attributions of the learned correction
    (the base is split exactly by its site energies; integrated gradients attribute the correction), so
    both still sum to the predicted energy of the cell (minus the reference's, for the gradients)."""
    learned = attribute(ensemble.members, structure)
    if ensemble.base == "none":
        return learned
    if teacher_model is None:
        from screening.models.registry import load_model

        teacher_model = load_model(ensemble.teacher, "cpu")
    base = teacher_model.alchemical_site_energies_eV(structure)
    return Attribution(
        learned.site_energy_eV + base,
        learned.integrated_gradients_eV + base,
        learned.total_energy_eV + float(base.sum()),
        learned.reference_energy_eV,
    )
