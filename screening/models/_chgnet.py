"""CHGNet backend (``chgnet``; crystal graph + bond graph message passing, pure PyTorch).

How CHGNet sees species: ``AtomEmbedding`` looks up row ``Z - 1`` of an ``nn.Embedding(94, 64)`` (which is
the one-hot vector times the embedding matrix), and the composition model ``AtomRef`` adds a linear
per-element reference energy on the composition. The model is intensive: energy per atom = (sum of site
energies from the readout MLP) / n_atoms + AtomRef(atom fractions). The mean-field path multiplies the
site occupancy vector (94 element channels, vacancy dropped) into the embedding matrix instead of the
one-hot, weights each site energy by the site's total occupancy, feeds AtomRef the expected composition,
and divides by the summed occupancy, so the energy is per atom of the disordered composition. On an
ordered structure every occupancy vector is one-hot and the two paths agree to float32 round-off.

Training targets (``training_energies_corrected = True``): CHGNet's trainer reads the label
``energy_per_atom`` by default (``chgnet/data/dataset.py``, ``energy_key="energy_per_atom"``), and in
MPtrj ``energy_per_atom`` is ``corrected_total_energy / n_atoms``, i.e. it already includes the MP2020
anion and GGA/GGA+U mixing corrections (an MPtrj frame reads ``energy=-154.524`` (raw),
``corrected_total_energy=-160.560``, ``energy_per_atom=-8.028`` for 20 atoms). CHGNet's maintainers
accordingly ask fine-tuning users to pass their labels through ``MaterialsProject2020Compatibility`` to
match the pretraining labels (CederGroupHub/chgnet PR #46, issue #220). So CHGNet predictions are on the
MP2020-corrected scale and must not be corrected a second time.
"""

from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chgnet
import numpy as np
import torch
from chgnet.graph import CrystalGraph
from chgnet.model.model import BatchedGraph, CHGNet
from pymatgen.core import Element, Structure
from torch import nn

from screening.errors import InputError, MissingInputError
from screening.graphs import NeighborList
from screening.models.base import EnergyModel
from screening.occupancy import N_ELEMENTS, site_occupancies

#: Registry name -> (CHGNet version string, checkpoint file inside the chgnet wheel).
CHECKPOINTS = {
    "chgnet-0.3.0": (
        "0.3.0",
        Path(chgnet.__file__).parent / "pretrained/0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar",
    )
}

#: Atomic numbers with an embedding row but no training data: MPtrj has no Po, At, Rn, Fr or Ra (its 89
#: elements are H..Pu without these five, the type map of SevenNet-0, trained on the same set).
_ABSENT_FROM_MPTRJ = frozenset(range(84, 89))


@dataclass(frozen=True)
class _Prepared:
    graph: CrystalGraph
    occupancy: torch.Tensor | None  # (n_sites, 94) float32 over Z-1, mean-field only


class _OccupancyAtomEmbedding(nn.Module):
    """Stands in for ``AtomEmbedding``: index ``k`` is row ``k`` of the batch's occupancy matrix."""

    def __init__(self, embedding_weight: torch.Tensor, occupancy: torch.Tensor) -> None:
        super().__init__()
        self.weight = embedding_weight  # (94, atom_fea_dim), shared with the model
        self.occupancy = occupancy  # (n_batch_sites, 94)

    def forward(self, site_index: torch.Tensor) -> torch.Tensor:
        return self.occupancy[site_index.long()] @ self.weight


def _quiet(function, *args, **kwargs):
    """Call a chgnet function that prints progress chatter to stdout, without the chatter."""
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args, **kwargs)


class CHGNetModel(EnergyModel):
    """A CHGNet checkpoint from the installed ``chgnet`` wheel (see the module docstring)."""

    training_energies_corrected = True

    def __init__(self, name: str, device: torch.device) -> None:
        if name not in CHECKPOINTS:
            raise InputError(f"unknown CHGNet model {name!r}; known: {sorted(CHECKPOINTS)}")
        version, path = CHECKPOINTS[name]
        if not path.is_file():
            raise MissingInputError(f"{path} is not in the installed chgnet wheel")
        self.name = name
        self.device = device
        self.weights_path = path
        # as CHGNet.load does for 0.3.0: no bias on the MLP outputs (mlp_out_bias only for 0.2.0)
        self._model: CHGNet = _quiet(CHGNet.from_file, str(path), mlp_out_bias=False, version=version)
        self._model = self._model.to(device).eval()
        self._model.graph_converter.set_isolated_atom_response("error")
        self.cutoff_A = float(self._model.graph_converter.atom_graph_cutoff)
        self.supported_elements = frozenset(
            Element.from_Z(z).symbol for z in range(1, N_ELEMENTS + 1) if z not in _ABSENT_FROM_MPTRJ
        )

    def _prepare(self, structure: Structure, neighbors: NeighborList, *, meanfield: bool) -> _Prepared:
        if not meanfield:
            return _Prepared(self._model.graph_converter(structure), None)
        occupancy = torch.from_numpy(site_occupancies(structure).toarray()[:, :N_ELEMENTS]).float()
        # the graph depends on positions only; a placeholder species carries the sites
        placeholder = Structure(structure.lattice, ["H"] * len(structure), structure.frac_coords)
        return _Prepared(self._model.graph_converter(placeholder), occupancy)

    @torch.no_grad()
    def _forward(self, prepared: list[_Prepared], *, meanfield: bool) -> np.ndarray:
        graphs = [item.graph.to(self.device) for item in prepared]
        if not meanfield:
            return self._model(graphs, task="e")["e"].double().cpu().numpy()
        model = self._model
        batched = BatchedGraph.from_graphs(
            graphs,
            bond_basis_expansion=model.bond_basis_expansion,
            angle_basis_expansion=model.angle_basis_expansion,
        )
        occupancy = torch.cat([item.occupancy for item in prepared]).to(self.device)
        batched.atomic_numbers = torch.arange(1, len(occupancy) + 1, device=self.device)  # row k+1 -> site k
        variant = copy.copy(model)
        variant._modules = dict(model._modules)
        variant.atom_embedding = _OccupancyAtomEmbedding(model.atom_embedding.embedding.weight, occupancy)
        site_energies = torch.cat(variant._compute(batched, return_site_energies=True)["site_energies"])
        owners = batched.atom_owners.long()
        occupied = occupancy.double().sum(dim=1)
        n_structures = len(prepared)
        total = torch.zeros(n_structures, dtype=torch.float64, device=self.device)
        total.index_add_(0, owners, occupied * site_energies.double())
        composition = torch.zeros(n_structures, N_ELEMENTS, dtype=torch.float64, device=self.device)
        composition.index_add_(0, owners, occupancy.double())
        total += composition @ model.composition_model.fc.weight.double().view(-1)
        n_atoms = torch.zeros(n_structures, dtype=torch.float64, device=self.device).index_add_(
            0, owners, occupied
        )
        return (total / n_atoms).cpu().numpy()

    def ase_calculator(self) -> Any:
        """A ``CHGNetCalculator`` (energy, forces, stress) on the same weights and device."""
        from chgnet.model.dynamics import CHGNetCalculator

        return _quiet(
            CHGNetCalculator, model=self._model, use_device=str(self.device), on_isolated_atoms="error"
        )
