"""An occupancy-native energy model: a disordered crystal in one evaluation, vacancies included.

The graph (:func:`occupancy_graph`) is built over *slots*: one per (site, element) pair with non-zero
occupancy ``w`` (a vacancy is no slot, so it sends and receives nothing). A slot's hidden state describes
the site *given that it holds that element*; messages from a neighbouring slot are weighted by that
slot's occupancy, which is the expectation over the neighbour's independent occupation. Periodic images
count as independent sites (a site's own image included), as they are in the ``sample`` strategy's
supercells, which are wider than the cutoff; so the energy per atom of a cell and of its supercells is
the same. Two partially occupied sites closer than ``exclusion_A`` (split positions,
:mod:`screening.split_positions`) are never occupied together in a sampled configuration, so their slots
exchange nothing.

The energy of a cell is ``E = sum_s w_s eps_s + 1/2 sum_(s<-t) w_s w_t F(a_s, a_t, r_st)``: occupancy-
weighted site energies of the final hidden states plus an explicit pair term. With no interaction layer
the site energies depend on the element only, and ``E`` is then exactly the expectation of a site + pair
model over independent site occupations (tested against enumerated configurations); the interaction
layers are its mean-field extension. Energies are per atom of the disordered composition:
``E / sum_s w_s``.

With ``correction=True`` the same network predicts a disorder correction to another energy (the shipped
ensemble adds it to the teacher's alchemical pass, :mod:`screening.models.native_energy`): each slot's
term is multiplied by its site's impurity ``1 - sum p^2`` and there is no per-element or pair term, so
the correction of an ordered structure is exactly 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pymatgen.core import Structure
from torch import nn
from torch_geometric.data import Batch, Data

from screening.graphs import neighbor_list
from screening.occupancy import N_ELEMENTS, VACANCY_INDEX, site_occupancies
from screening.split_positions import SPLIT_POSITION_DISTANCE_A, split_position_pairs

#: Default neighbour cutoff (angstrom) of the native model.
DEFAULT_NATIVE_CUTOFF_A = 5.0


def occupancy_graph(
    structure: Structure,
    cutoff_A: float = DEFAULT_NATIVE_CUTOFF_A,
    exclusion_A: float = SPLIT_POSITION_DISTANCE_A,
) -> Data:
    """The slot graph of a structure (see the module docstring).

    Returns:
        ``Data`` with ``S`` slots and ``E`` directed slot edges:

        - ``element``: int64 ``(S,)``, the slot's channel (``Z - 1``);
        - ``slot_weight``: float32 ``(S,)``, its occupancy ``w``;
        - ``slot_site``: int64 ``(S,)``, its site in ``structure``;
        - ``slot_impurity``: float32 ``(S,)``, ``1 - sum_a p_a^2`` of its site over the elements and the
          vacancy (0 on an ordered site);
        - ``edge_index``: int64 ``(2, E)``, row 0 the receiving slot, row 1 the sending slot;
        - ``edge_length``: float32 ``(E,)``, angstrom;
        - ``edge_open``: float32 ``(E,)``, 0 between split positions, else 1;
        - ``n_sites``: number of sites; ``num_nodes``: ``S``.
    """
    full = site_occupancies(structure)
    impurity = 1.0 - np.asarray(full.multiply(full).sum(axis=1)).reshape(-1)  # 0 on an ordered site
    occupancy = full[:, :VACANCY_INDEX].tocsr()  # vacancies are no slots
    occupancy.eliminate_zeros()
    n_slots = np.diff(occupancy.indptr)
    slot_site = np.repeat(np.arange(len(structure)), n_slots)
    element = occupancy.indices.astype(np.int64)
    weight = occupancy.data.astype(np.float64)
    first_slot = occupancy.indptr[:-1]

    neighbors = neighbor_list(structure, cutoff_A)
    occupied = np.asarray(occupancy.sum(axis=1)).reshape(-1)
    excluded = split_position_pairs(
        neighbors.distances_A, neighbors.center, neighbors.neighbor, occupied, exclusion_A
    )
    # every slot of the centre site receives from every slot of the neighbour site
    pairs = n_slots[neighbors.center] * n_slots[neighbors.neighbor]
    edge = np.repeat(np.arange(len(neighbors)), pairs)
    rank = np.arange(len(edge)) - np.repeat(np.cumsum(pairs) - pairs, pairs)
    per_sender = n_slots[neighbors.neighbor][edge]
    receivers = first_slot[neighbors.center][edge] + rank // per_sender
    senders = first_slot[neighbors.neighbor][edge] + rank % per_sender
    return Data(
        element=torch.from_numpy(element),
        slot_weight=torch.from_numpy(weight.astype(np.float32)),
        slot_site=torch.from_numpy(slot_site.astype(np.int64)),
        slot_impurity=torch.from_numpy(np.clip(impurity[slot_site], 0.0, 1.0).astype(np.float32)),
        edge_index=torch.from_numpy(np.stack([receivers, senders]).astype(np.int64)),
        edge_length=torch.from_numpy(neighbors.distances_A[edge].astype(np.float32)),
        edge_open=torch.from_numpy((~excluded[edge]).astype(np.float32)),
        n_sites=len(structure),
        num_nodes=len(element),
    )


def _scatter_sum(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    out = values.new_zeros((size, *values.shape[1:]))
    return out.index_add_(0, index, values)


class _Interaction(nn.Module):
    """One continuous-filter message pass (SchNet-style) with occupancy-weighted messages."""

    def __init__(self, hidden: int, n_radial: int) -> None:
        super().__init__()
        self.filter = nn.Sequential(nn.Linear(n_radial, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.source = nn.Linear(hidden, hidden, bias=False)
        self.update = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(
        self, h: torch.Tensor, edge_index: torch.Tensor, radial: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        message = self.filter(radial) * self.source(h)[edge_index[1]] * weight.unsqueeze(1)
        return h + self.update(_scatter_sum(message, edge_index[0], h.shape[0]))


class OccupancyEnergyNet(nn.Module):
    """Occupancy-native energy model (see the module docstring).

    Args:
        hidden: width of the slot states and filters.
        n_interactions: message-passing layers (0: a pure site + pair model, exact in expectation).
        n_radial: Gaussian radial basis functions on ``[0, cutoff_A]``.
        cutoff_A: neighbour cutoff (angstrom); the graphs must be built with it.
        exclusion_A: split-position distance of :func:`occupancy_graph`, kept here so that a checkpoint
            rebuilds its own graphs.
        n_elements: element channels (Z = 1..n_elements).
        correction: predict a disorder correction instead of an energy: each slot's term is multiplied by
            its site's impurity (so it vanishes on every ordered site, and on an ordered structure the
            correction is exactly 0), with no per-element energies and no pair term.
    """

    def __init__(
        self,
        hidden: int = 32,
        n_interactions: int = 2,
        n_radial: int = 16,
        cutoff_A: float = DEFAULT_NATIVE_CUTOFF_A,
        exclusion_A: float = SPLIT_POSITION_DISTANCE_A,
        n_elements: int = N_ELEMENTS,
        correction: bool = False,
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.n_interactions = n_interactions
        self.n_radial = n_radial
        self.cutoff_A = float(cutoff_A)
        self.exclusion_A = float(exclusion_A)
        self.n_elements = n_elements
        self.correction = bool(correction)
        self.embedding = nn.Embedding(n_elements, hidden)
        self.element_energy = nn.Embedding(n_elements, 1)
        self.register_buffer("centers", torch.linspace(0.0, self.cutoff_A, n_radial))
        self.interactions = nn.ModuleList(_Interaction(hidden, n_radial) for _ in range(n_interactions))
        self.readout = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.pair_embedding = nn.Embedding(n_elements, hidden)
        self.pair_radial = nn.Linear(n_radial, hidden)
        self.reset_parameters()

    def constructor(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this network (saved in checkpoints)."""
        return {
            "hidden": self.hidden,
            "n_interactions": self.n_interactions,
            "n_radial": self.n_radial,
            "cutoff_A": self.cutoff_A,
            "exclusion_A": self.exclusion_A,
            "n_elements": self.n_elements,
            "correction": self.correction,
        }

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding) and module is not self:
                module.reset_parameters()
        nn.init.zeros_(self.element_energy.weight)
        # the output layers start at zero: an untrained model is its per-element energies exactly, and
        # training learns what composition does not explain
        for last in (self.readout[-1], self.pair_radial):
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def graph(self, structure: Structure) -> Data:
        """The slot graph of ``structure`` at this model's cutoff and exclusion distance."""
        return occupancy_graph(structure, self.cutoff_A, self.exclusion_A)

    def _radial(self, length: torch.Tensor) -> torch.Tensor:
        """Gaussians times a cosine envelope that goes smoothly to 0 at the cutoff, ``(E, n_radial)``."""
        width = self.cutoff_A / self.n_radial
        gauss = torch.exp(-(((length.unsqueeze(1) - self.centers) / width) ** 2))
        envelope = 0.5 * (torch.cos(math.pi * length / self.cutoff_A) + 1.0) * (length < self.cutoff_A)
        return gauss * envelope.unsqueeze(1)

    def slot_energies(
        self, data: Data | Batch, slot_weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Energy contributions per slot (eV), before weighting: ``(site_term (S,), pair_term (S,))``,
        where a slot's pair term is half its edges' pair energies, each weighted by the sender's weight
        (``w_t``). ``E = sum_s w_s (site_term_s + pair_term_s)``.

        Args:
            data: a slot graph or a batch of them.
            slot_weight: occupancies to use instead of ``data.slot_weight`` (integrated gradients move
                along them); message weights follow them.
        """
        weight = data.slot_weight if slot_weight is None else slot_weight
        receiver, sender = data.edge_index
        message_weight = weight[sender] * data.edge_open  # the sender's weight in the expectation
        radial = self._radial(data.edge_length)
        h = self.embedding(data.element)
        for interaction in self.interactions:
            h = interaction(h, data.edge_index, radial, message_weight)
        if self.correction:
            return self.readout(h).squeeze(1) * data.slot_impurity, torch.zeros_like(weight)
        site_term = self.readout(h).squeeze(1) + self.element_energy(data.element).squeeze(1)
        pair_strength = self.pair_radial(radial)
        pair = (
            (self.pair_embedding(data.element[receiver]) * self.pair_embedding(data.element[sender]))
            .mul(pair_strength)
            .sum(dim=1)
        )
        pair_term = 0.5 * _scatter_sum(pair * message_weight, receiver, h.shape[0])
        return site_term, pair_term

    def forward(self, data: Data | Batch) -> torch.Tensor:
        """Energy per atom (eV/atom) of each graph of ``data``, shape ``(n_graphs,)``."""
        site_term, pair_term = self.slot_energies(data)
        batch = data.batch if isinstance(data, Batch) else torch.zeros_like(data.element)
        n_graphs = int(data.num_graphs) if isinstance(data, Batch) else 1
        total = _scatter_sum(data.slot_weight * (site_term + pair_term), batch, n_graphs)
        atoms = _scatter_sum(data.slot_weight, batch, n_graphs)
        return total / atoms


def batch_slot_graphs(graphs: Sequence[Data]) -> Batch:
    """Join slot graphs into one batch (slot and edge indices renumbered)."""
    return Batch.from_data_list(list(graphs))
