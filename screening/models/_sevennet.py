"""SevenNet backend (``sevenn``; NequIP-style E(3)-equivariant GNN on torch_geometric + e3nn).

How SevenNet sees species: ``AtomGraphSequential`` maps atomic numbers to indices of its own type map,
``OnehotEmbedding`` turns them into a one-hot vector that is both the node feature ``x`` (then a linear
embedding) and the node attribute of the self-connections, and ``SpeciesWiseRescale`` turns the scaled
atomic energy into ``e_i = y_i * scale[type_i] + shift[type_i]`` before the sum over atoms. The mean-field
path replaces exactly these two modules: the one-hot becomes the site's occupancy vector over the type map
and ``scale``/``shift`` become their occupancy-weighted averages ``p_i . scale`` and ``p_i . shift``. On an
ordered structure the occupancy vectors are one-hot, so both paths compute the same numbers.

Training targets (``training_energies_corrected = False``): the SevenNet-0 (11Jul2024) and SevenNet-l3i5
checkpoints shipped in the wheel record their training/validation sets in their config
(``chgnet_total_dataset_uncorrected.sevenn_data`` / ``chgnet_val_dataset_uncorrected.sevenn_data``), and
the MPtrj conversion script published with the model in Matbench Discovery
(``models/sevennet/train_sevennet/convert_mptrj_to_xyz.py``) labels each frame with MPtrj's
``uncorrected_total_energy``. So SevenNet predicts raw GGA/GGA+U energies; MP2020 corrections must be
applied to them before they meet MP2020-corrected reference entries.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import sevenn._const
import sevenn._keys as KEY
import sevenn.util
import torch
from pymatgen.core import Element, Structure
from sevenn.atom_graph_data import AtomGraphData
from torch import nn
from torch_geometric.data import Batch

from screening.errors import InputError, MissingInputError
from screening.graphs import NeighborList
from screening.models.base import EnergyModel
from screening.occupancy import N_ELEMENTS, site_occupancies
from screening.split_positions import SPLIT_POSITION_DISTANCE_A, split_position_pairs

#: Key of the per-site occupancy vectors (over the model's type map) in a SevenNet graph.
_OCCUPANCY_KEY = "site_occupancy"

#: Registry name -> checkpoint file shipped in the sevenn wheel (paths from ``sevenn._const``; we never call
#: ``sevenn.util.pretrained_name_to_path``, which downloads a missing file).
CHECKPOINTS = {"sevennet-0": sevenn._const.SEVENNET_0_11Jul2024, "sevennet-l3i5": sevenn._const.SEVENNET_l3i5}


#: Key of the per-site species distribution given that the site is occupied (alchemical route).
_SPECIES_KEY = "site_species"
#: Key of the per-edge message weight, the neighbour's occupancy (alchemical route).
_EDGE_WEIGHT_KEY = "edge_occupancy"


class _OccupancyEmbedding(nn.Module):
    """Stands in for ``OnehotEmbedding``: the site occupancy vector (or, alchemically, the species
    distribution of the occupied site) where the one-hot was."""

    def __init__(self, onehot: nn.Module, key: str = _OCCUPANCY_KEY) -> None:
        super().__init__()
        self.key_output = onehot.key_output
        self.key_additional_output = onehot.key_additional_output
        self.key = key

    def forward(self, data: Any) -> Any:
        occupancy = data[self.key]
        data[self.key_output] = occupancy
        if self.key_additional_output is not None:
            data[self.key_additional_output] = occupancy
        return data


class _OccupancyRescale(nn.Module):
    """Stands in for ``SpeciesWiseRescale``: occupancy-weighted per-species scale and shift."""

    def __init__(self, rescale: nn.Module) -> None:
        super().__init__()
        self.scale = rescale.scale  # shared parameters, shape (n_types,)
        self.shift = rescale.shift
        self.key_input = rescale.key_input
        self.key_output = rescale.key_output

    def forward(self, data: Any) -> Any:
        occupancy = data[_OCCUPANCY_KEY]
        scale = (occupancy @ self.scale).view(-1, 1)
        shift = (occupancy @ self.shift).view(-1, 1)
        data[self.key_output] = data[self.key_input] * scale + shift
        return data


class _WeightedConvolution(nn.Module):
    """Stands in for an e3nn ``IrrepsConvolution``: every edge's message scaled by its weight (the
    sending site's occupancy; 0 between split positions), as alchemical potentials do. The message is
    linear in the tensor-product weights, so scaling them scales the message."""

    def __init__(self, convolution: nn.Module) -> None:
        super().__init__()
        self.inner = convolution

    def forward(self, data: Any) -> Any:
        from sevenn.nn.convolution import message_gather

        conv = self.inner
        weight = conv.weight_nn(data[conv.key_weight_input]) * data[_EDGE_WEIGHT_KEY].unsqueeze(1)
        x = data[conv.key_x]
        receiver, sender = data[conv.key_edge_idx][0], data[conv.key_edge_idx][1]
        message = conv.convolution(x[sender], data[conv.key_filter], weight)
        data[conv.key_x] = message_gather(x, receiver, message).div(conv.denominator)
        return data


def _energy_only(model: nn.Module) -> nn.Module:
    """The model without its force/stress head (no autograd through edge vectors), batch mode, eval."""
    model.delete_module_by_key("force_output")
    model.key_grad = None
    model.set_is_batch_data(True)
    return model.eval()


def _meanfield_variant(model: nn.Module) -> nn.Module:
    """A shallow copy of ``model`` sharing its weights, with the species modules made occupancy-aware."""
    variant = copy.copy(model)
    variant._modules = OrderedDict(model._modules)
    variant._modules["onehot_idx_to_onehot"] = _OccupancyEmbedding(model._modules["onehot_idx_to_onehot"])
    variant._modules["rescale_atomic_energy"] = _OccupancyRescale(model._modules["rescale_atomic_energy"])
    variant.eval_type_map = False
    return variant


def _alchemical_variant(model: nn.Module) -> nn.Module:
    """A shallow copy of ``model`` sharing its weights: the embedding sees the occupied site's species
    distribution, every convolution weights its messages by the sender's occupancy, and the per-site
    energy is weighted by the site's occupancy (the mean-field rescale, fed unnormalised occupancies)."""
    variant = _meanfield_variant(model)
    variant._modules["onehot_idx_to_onehot"] = _OccupancyEmbedding(
        model._modules["onehot_idx_to_onehot"], key=_SPECIES_KEY
    )
    for name in [n for n in variant._modules if n.endswith("_convolution")]:
        convolution = model._modules[name]
        if not hasattr(convolution, "weight_nn") or not hasattr(convolution, "convolution"):
            raise InputError("alchemical messages need SevenNet's plain e3nn convolutions (accelerator e3nn)")
        variant._modules[name] = _WeightedConvolution(convolution)
    return variant


def _feature_layer_name(module_name: str) -> str:
    if module_name == "onehot_to_feature_x":
        return "embedding"
    return f"interaction_{int(module_name.split('_')[0]) + 1}"


def _scalar_channels(module: nn.Module, width: int) -> int:
    """Number of leading ``0e`` channels of a module's node-feature output (all of them when the module
    declares no irreps)."""
    gate = getattr(module, "gate", None)
    irreps = getattr(gate, "irreps_out", None) or getattr(module, "irreps_out", None)
    if irreps is None:
        return width
    return sum(mul for mul, ir in irreps if ir.l == 0 and ir.p == 1)


#: Tensor-product kernels SevenNet can build its model with, fastest first; ``e3nn`` is the plain path.
ACCELERATORS = ("cueq", "flash", "e3nn")


def available_accelerator(device: torch.device) -> str:
    """The fastest tensor-product kernel the installed ``sevenn`` can use on ``device``: cuEquivariance,
    then FlashTP (each needs its package and a GPU), else plain e3nn."""
    if device.type != "cuda":
        return "e3nn"
    from sevenn.nn.cue_helper import is_cue_available
    from sevenn.nn.flash_helper import is_flash_available

    if is_cue_available():
        return "cueq"
    if is_flash_available():
        return "flash"
    return "e3nn"


class SevenNetModel(EnergyModel):
    """A SevenNet checkpoint from the installed ``sevenn`` wheel (see the module docstring).

    ``accelerator`` (None: :func:`available_accelerator`) picks the tensor-product kernels of the energy
    model; the mean-field variant and the relaxation calculator share them. The energies agree with the plain
    e3nn path within 1e-5 eV/atom (``tests/test_gpu.py``, run where a GPU is present).
    """

    training_energies_corrected = False

    def __init__(self, name: str, device: torch.device, accelerator: str | None = None) -> None:
        if name not in CHECKPOINTS:
            raise InputError(f"unknown SevenNet model {name!r}; known: {sorted(CHECKPOINTS)}")
        self.name = name
        self.device = device
        self.weights_path = Path(CHECKPOINTS[name])
        if not self.weights_path.is_file():
            raise MissingInputError(f"{self.weights_path} is not in the installed sevenn wheel")
        self.accelerator = accelerator or available_accelerator(device)
        if self.accelerator not in ACCELERATORS:
            raise InputError(
                f"unknown accelerator {self.accelerator!r}; use one of {', '.join(ACCELERATORS)}"
            )
        checkpoint = sevenn.util.load_checkpoint(str(self.weights_path))
        model = checkpoint.build_model(
            enable_cueq=self.accelerator == "cueq", enable_flash=self.accelerator == "flash"
        )
        self.cutoff_A = float(model.cutoff)
        self._type_map: dict[int, int] = dict(model.type_map)
        self.supported_elements = frozenset(Element.from_Z(z).symbol for z in self._type_map)
        # columns of the 95-channel occupancy vocabulary (index Z-1) that feed each type-map slot
        self._channel_of_type = torch.tensor(
            [z - 1 for z, _ in sorted(self._type_map.items(), key=lambda item: item[1])], dtype=torch.long
        )
        self._model = _energy_only(model).to(device)
        self._meanfield_model = _meanfield_variant(self._model)
        self._alchemical_model: nn.Module | None = None

    def _prepare(self, structure: Structure, neighbors: NeighborList, *, meanfield: bool) -> Any:
        n = len(structure)
        data: dict[str, Any] = {
            KEY.POS: torch.tensor(structure.cart_coords, dtype=torch.float32),
            KEY.EDGE_IDX: torch.tensor(np.stack([neighbors.center, neighbors.neighbor]), dtype=torch.long),
            KEY.EDGE_VEC: torch.tensor(neighbors.vectors_A, dtype=torch.float32),
            KEY.NUM_ATOMS: torch.tensor(n, dtype=torch.long),
            KEY.CELL_VOLUME: torch.tensor(structure.volume, dtype=torch.float32),
        }
        if meanfield:
            occupancy = torch.from_numpy(site_occupancies(structure).toarray())
            data[_OCCUPANCY_KEY] = occupancy[:, self._channel_of_type].float()
            data["occupied"] = occupancy[:, :N_ELEMENTS].sum(dim=1)
            data[KEY.ATOMIC_NUMBERS] = torch.zeros(n, dtype=torch.long)
        else:
            data[KEY.ATOMIC_NUMBERS] = torch.tensor(structure.atomic_numbers, dtype=torch.long)
        data[KEY.NODE_FEATURE] = data[KEY.ATOMIC_NUMBERS]
        return AtomGraphData(**data)

    @torch.no_grad()
    def _forward(self, prepared: list[Any], *, meanfield: bool) -> np.ndarray:
        batch = Batch.from_data_list(prepared).to(self.device)
        model = self._meanfield_model if meanfield else self._model
        total_eV = model(batch)[KEY.PRED_TOTAL_ENERGY].double()
        if meanfield:  # per atom of the disordered composition: divide by the summed site occupancy
            occupied = torch.zeros_like(total_eV).index_add_(0, batch[KEY.BATCH], batch["occupied"].double())
        else:
            occupied = batch[KEY.NUM_ATOMS].double()
        return (total_eV / occupied).cpu().numpy()

    @torch.no_grad()
    def alchemical_site_energies_eV(
        self, structure: Structure, *, exclusion_A: float = SPLIT_POSITION_DISTANCE_A
    ) -> np.ndarray:
        """The alchemical pass of :meth:`alchemical_energy_per_atom` split per site: each site's energy,
        already weighted by its occupancy (eV, shape ``(n_sites,)``); they sum to the cell's energy."""
        if self._alchemical_model is None:
            self._alchemical_model = _alchemical_variant(self._model)
        neighbors = self._validate(structure, meanfield=True)
        data = self._prepare(structure, neighbors, meanfield=True)
        occupancy = data[_OCCUPANCY_KEY].double()
        occupied = occupancy.sum(dim=1)
        data[_SPECIES_KEY] = (occupancy / occupied.clamp_min(1e-12).unsqueeze(1)).float()
        split = torch.from_numpy(
            split_position_pairs(
                neighbors.distances_A, neighbors.center, neighbors.neighbor, occupied.numpy(), exclusion_A
            )
        )
        data[_EDGE_WEIGHT_KEY] = torch.where(split, 0.0, occupied[neighbors.neighbor]).float()
        batch = Batch.from_data_list([data]).to(self.device)
        return self._alchemical_model(batch)[KEY.ATOMIC_ENERGY].double().reshape(-1).cpu().numpy()

    def alchemical_energy_per_atom(
        self, structures: list[Structure], *, exclusion_A: float = SPLIT_POSITION_DISTANCE_A
    ) -> tuple[np.ndarray, list[str | None]]:
        """Route (a) of the occupancy-native comparison: one pass of the potential with alchemical
        weighting (the species embedding of an occupied site, messages scaled by the sender's occupancy,
        none between partially occupied sites closer than ``exclusion_A``, site energies weighted by
        occupancy); energy per atom of the disordered composition. The base of the default native
        ensemble (:mod:`screening.models.native_energy`)."""
        from screening.models.base import describe_error

        energies = np.full(len(structures), np.nan)
        errors: list[str | None] = [None] * len(structures)
        for index, structure in enumerate(structures):
            try:
                sites_eV = self.alchemical_site_energies_eV(structure, exclusion_A=exclusion_A)
                energies[index] = sites_eV.sum() / structure.composition.num_atoms
            except Exception as err:  # one structure's failure is its own error
                errors[index] = describe_error(err)
        return energies, errors

    @property
    def node_feature_layers(self) -> tuple[str, ...]:  # type: ignore[override]
        """The species embedding, then the output of each interaction block (its gate)."""
        return tuple(_feature_layer_name(module) for module in self._feature_modules())

    def _feature_modules(self) -> list[str]:
        modules = self._model._modules
        gates = [name for name in modules if name.endswith("_equivariant_gate")]
        return ["onehot_to_feature_x", *gates]

    @torch.no_grad()
    def _forward_with_node_features(self, prepared: list[Any]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One forward pass that also keeps the scalar (0e) channels of the node features after the
        embedding and after each interaction block; the ``l > 0`` channels are left out, so every feature
        is invariant under rotation."""
        captured: list[torch.Tensor] = []

        def keep_scalars(module: nn.Module, inputs: Any, output: Any) -> None:
            features = output[KEY.NODE_FEATURE]
            captured.append(features[:, : _scalar_channels(module, features.shape[1])].float())

        modules = self._model._modules
        hooks = [modules[name].register_forward_hook(keep_scalars) for name in self._feature_modules()]
        try:
            batch = Batch.from_data_list(prepared).to(self.device)
            total_eV = self._model(batch)[KEY.PRED_TOTAL_ENERGY].double()
        finally:
            for hook in hooks:
                hook.remove()
        width = min(t.shape[1] for t in captured)
        stacked = torch.stack([t[:, :width] for t in captured], dim=1).cpu().numpy()  # (atoms, layers, ch)
        counts = batch[KEY.NUM_ATOMS].cpu().numpy()
        per_structure = np.split(stacked, np.cumsum(counts)[:-1])
        return (total_eV / batch[KEY.NUM_ATOMS].double()).cpu().numpy(), per_structure

    def ase_calculator(self) -> Any:
        """A fresh ``SevenNetCalculator`` (energy, forces, stress) on the same checkpoint and device."""
        from sevenn.calculator import SevenNetCalculator

        return SevenNetCalculator(
            model=str(self.weights_path),
            device=self.device,
            enable_cueq=self.accelerator == "cueq",
            enable_flash=self.accelerator == "flash",
        )
