"""The backend-independent part of a pretrained energy model: validation, atom-count batching, errors.

A backend (``_sevennet.py``, ``_chgnet.py``) only says how to turn one structure into its model input
(:meth:`EnergyModel._prepare`) and how to evaluate a list of prepared inputs in one forward pass
(:meth:`EnergyModel._forward`). Everything else lives here, once: checking that a structure can be
evaluated at all, grouping structures into batches capped by total atom count, and isolating failures so
that one bad structure yields its own error message and never loses the rest of its batch.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pymatgen.core import Structure

from screening.errors import InputError, InputTypeError
from screening.graphs import NeighborList, neighbor_list
from screening.models.batching import batches_by_atom_count


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The torch device to run on: ``device`` if given, else CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!s} requested but CUDA is not available; use --device cpu")
    return resolved


def sha256_of_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (streamed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _prefetched(
    prepare: Callable[[list[int]], dict[int, Any]], batches: list[list[int]], prefetch: bool
) -> Iterator[dict[int, Any]]:
    """``prepare(batch)`` for each batch in order; with ``prefetch`` a thread prepares the next batch while
    the caller works on the current one (at most one batch ahead, so memory holds two batches)."""
    if not prefetch or len(batches) < 2:
        yield from (prepare(batch) for batch in batches)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphs") as pool:
        pending = pool.submit(prepare, batches[0])
        for following in [*batches[1:], None]:
            ready = pending.result()
            if following is not None:
                pending = pool.submit(prepare, following)
            yield ready


def describe_error(err: BaseException) -> str:
    """One-line description of an exception for a failed row (``ValueError: ...``)."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class EnergyModel(ABC):
    """A pretrained universal interatomic potential that predicts total energies of crystals.

    Attributes:
        name: registry name (``sevennet-0``).
        device: the torch device the weights live on.
        weights_path: the weight file inside the installed wheel.
        cutoff_A: the model's neighbour cutoff in angstrom.
        supported_elements: chemical symbols the model was trained on.
        training_energies_corrected: whether the model's training energies already include the
            MP2020 anion / GGA+U corrections (then predictions must not be corrected again before
            comparison with MP2020-corrected reference entries); see each backend's docstring for the
            evidence.
    """

    name: str
    device: torch.device
    weights_path: Path
    cutoff_A: float
    supported_elements: frozenset[str]
    training_energies_corrected: bool

    @cached_property
    def weights_sha256(self) -> str:
        """SHA-256 of the weight file, for the run manifest."""
        return sha256_of_file(self.weights_path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, device={str(self.device)!r})"

    # --- backend hooks -------------------------------------------------------------------------------

    @abstractmethod
    def _prepare(self, structure: Structure, neighbors: NeighborList, *, meanfield: bool) -> Any:
        """Model input of one validated structure (ordered unless ``meanfield``)."""

    @abstractmethod
    def _forward(self, prepared: list[Any], *, meanfield: bool) -> np.ndarray:
        """Energies per atom (eV/atom) of several prepared structures in one forward pass."""

    @abstractmethod
    def ase_calculator(self) -> Any:
        """An ASE calculator (energy, forces, stress) backed by the same weights, for relaxation."""

    # --- public API ------------------------------------------------------------------------------------

    def predict_energy_per_atom(
        self, structures: Sequence[Structure], *, max_atoms_per_batch: int | None = None
    ) -> np.ndarray:
        """Energies of ordered structures, batched by total atom count.

        Args:
            structures: ordered pymatgen structures.
            max_atoms_per_batch: cap on the total number of atoms per forward pass; a structure larger
                than the cap is evaluated alone. None: the cap measured for this model and device
                (:meth:`default_max_atoms_per_batch`).

        Returns:
            float64 array of shape ``(len(structures),)``: total energy per atom in eV/atom, on the
            raw (uncorrected or corrected, see ``training_energies_corrected``) MPtrj scale.

        Raises:
            ValueError: naming the first structure that cannot be evaluated and why (use
                :meth:`try_predict_energy_per_atom` to get per-structure errors instead).
        """
        energies, errors = self.try_predict_energy_per_atom(
            structures, max_atoms_per_batch=max_atoms_per_batch
        )
        for index, error in enumerate(errors):
            if error is not None:
                raise InputError(f"structure {index}: {error}")
        return energies

    def try_predict_energy_per_atom(
        self,
        structures: Sequence[Structure],
        *,
        meanfield: bool = False,
        max_atoms_per_batch: int | None = None,
    ) -> tuple[np.ndarray, list[str | None]]:
        """Energies per atom with one error message per structure instead of an exception.

        Args:
            structures: pymatgen structures; ordered unless ``meanfield``.
            meanfield: feed site occupancy vectors where the model expects a one-hot species encoding
                (per-species energy shift/scale weighted by occupancy); the energy is then per atom of
                the disordered composition (total energy / summed site occupancy).
            max_atoms_per_batch: cap on the total number of sites per forward pass (None: device default).

        Returns:
            ``(energies_eV_per_atom, errors)``: NaN and a message where a structure failed, the energy
            and ``None`` elsewhere.
        """
        energies, errors, _ = self._evaluate(structures, meanfield, max_atoms_per_batch, node_features=False)
        return energies, errors

    def try_predict_with_node_features(
        self, structures: Sequence[Structure], *, max_atoms_per_batch: int | None = None
    ) -> tuple[np.ndarray, list[str | None], list[np.ndarray | None]]:
        """Energies per atom of ordered structures and the invariant node features of the same forward
        pass (what a model trained on top of the potential uses: :attr:`node_feature_layers`).

        Returns:
            ``(energies_eV_per_atom, errors, node_features)``; ``node_features[i]`` is a float32 array of
            shape ``(n_sites_i, n_layers, n_channels)`` (None where structure ``i`` failed).

        Raises:
            InputError: the backend exposes no node features.
        """
        if not self.node_feature_layers:
            raise InputError(f"model {self.name} does not expose node features")
        return self._evaluate(structures, False, max_atoms_per_batch, node_features=True)

    #: Names of the layers whose invariant (scalar) node features
    #: :meth:`try_predict_with_node_features` returns, input side first; empty when the backend has none.
    node_feature_layers: tuple[str, ...] = ()

    def _forward_with_node_features(self, prepared: list[Any]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Energies per atom and per-structure node features ``(n_sites, n_layers, n_channels)``."""
        raise InputError(f"model {self.name} does not expose node features")

    def _evaluate(
        self,
        structures: Sequence[Structure],
        meanfield: bool,
        max_atoms_per_batch: int | None,
        *,
        node_features: bool,
    ) -> tuple[np.ndarray, list[str | None], list[np.ndarray | None]]:
        """Validate, prepare and evaluate ``structures`` batch by batch (the next batch's graphs built on a
        thread meanwhile where :attr:`prefetch_graphs`); one structure's failure is its own error (a failing
        batch is re-run structure by structure to find the culprit)."""
        if max_atoms_per_batch is None:
            max_atoms_per_batch = self.default_max_atoms_per_batch()
        n = len(structures)
        energies = np.full(n, np.nan)
        errors: list[str | None] = [None] * n
        features: list[np.ndarray | None] = [None] * n

        def prepare(indices: list[int]) -> dict[int, Any]:
            """Validated model inputs of a batch's structures; a failure is that structure's error."""
            ready = {}
            for index in indices:
                try:
                    neighbors = self._validate(structures[index], meanfield=meanfield)
                    ready[index] = self._prepare(structures[index], neighbors, meanfield=meanfield)
                except Exception as err:  # one structure's failure is its own row's error
                    errors[index] = describe_error(err)
            return ready

        def run(ready: dict[int, Any], indices: list[int]) -> None:
            inputs = [ready[i] for i in indices]
            if node_features:
                values, per_structure = self._forward_with_node_features(inputs)
                for i, array in zip(indices, per_structure, strict=True):
                    features[i] = array
            else:
                values = self._forward(inputs, meanfield=meanfield)
            energies[indices] = values
            self.atoms_evaluated += sum(sizes[i] for i in indices)

        sizes = [max(1, len(s)) if isinstance(s, Structure) else 1 for s in structures]
        batches = batches_by_atom_count(sizes, max_atoms_per_batch)
        for ready in _prefetched(prepare, batches, self.prefetch_graphs):
            indices = sorted(ready)
            if not indices:
                continue
            try:
                run(ready, indices)
            except Exception as err:
                if len(indices) == 1:
                    errors[indices[0]] = describe_error(err)
                    continue
                for i in indices:  # find the culprit: evaluate the batch's structures one by one
                    try:
                        run(ready, [i])
                    except Exception as single_err:
                        errors[i] = describe_error(single_err)
        for index in range(n):
            if errors[index] is None and not np.isfinite(energies[index]):
                errors[index] = "ValueError: the model returned a non-finite energy"
                energies[index] = np.nan
            if errors[index] is not None:
                features[index] = None
        return energies, errors, features

    def default_max_atoms_per_batch(self) -> int:
        """The atom cap per forward pass measured for this model on its device under the memory this process
        may use (:mod:`screening.models.batch_calibration`; measured once per machine, then remembered)."""
        if self._max_atoms_per_batch is None:
            from screening.models.batch_calibration import calibration_for, memory_limit_bytes

            limit = memory_limit_bytes(self.device)
            self._max_atoms_per_batch = calibration_for(self, limit).max_atoms_per_batch(limit)
        return self._max_atoms_per_batch

    _max_atoms_per_batch: int | None = None

    #: Atoms this instance has put through successful forward passes (a throughput counter for profiles).
    atoms_evaluated: int = 0

    @property
    def prefetch_graphs(self) -> bool:
        """Whether the next batch's graphs are built on a CPU thread while the model evaluates the current
        one: on a GPU (the CPU is otherwise idle then); on a CPU the two would only compete for cores."""
        if self._prefetch_graphs is None:
            return self.device.type == "cuda"
        return self._prefetch_graphs

    @prefetch_graphs.setter
    def prefetch_graphs(self, value: bool | None) -> None:
        self._prefetch_graphs = value

    _prefetch_graphs: bool | None = None

    # --- helpers ---------------------------------------------------------------------------------------

    def _validate(self, structure: Structure, *, meanfield: bool) -> NeighborList:
        """Check that ``structure`` can be evaluated; return its neighbour list at the model cutoff."""
        if not isinstance(structure, Structure):
            raise InputTypeError(f"expected a pymatgen Structure, got {type(structure).__name__}")
        if len(structure) == 0:
            raise InputError("the structure has no sites")
        if not meanfield and not structure.is_ordered:
            raise InputError(
                f"{structure.composition.reduced_formula} is disordered; evaluate it with a disorder "
                "strategy (predict_energies) instead"
            )
        symbols = {el.symbol for el in structure.composition.elements}
        unsupported = sorted(symbols - self.supported_elements)
        if unsupported:
            raise InputError(f"model {self.name} has no parameters for element(s) {', '.join(unsupported)}")
        return neighbor_list(structure, self.cutoff_A)
