"""Periodic crystal graphs: a neighbour list over every periodic image within a cutoff, as PyG ``Data``.

An edge ``i -> j`` joins site ``i`` to the image of site ``j`` shifted by an integer number of lattice
vectors (its cell offset). Every image closer than the cutoff is an edge, not only the nearest one
(minimum image), so small cells get several edges to the same neighbour and edges from a site to its own
images. The only pairs left out are a site with itself at zero offset.

Node features are the occupancy probability vectors of :mod:`screening.occupancy`, so disordered sites
enter as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pymatgen.core import Structure
from pymatgen.optimization.neighbors import find_points_in_spheres
from torch_geometric.data import Batch, Data

from screening.errors import InputError, ScreeningError
from screening.occupancy import occupancy_tensor

#: Default neighbour cutoff in angstrom.
DEFAULT_CUTOFF_A = 5.0

#: Two sites closer than this (angstrom) are the same point: an edge between them has no direction.
_COINCIDENT_A = 1e-6


class IsolatedAtomError(ScreeningError, ValueError):
    """A site has no neighbour within the cutoff, so a graph model cannot see it."""

    def __init__(self, site_index: int, species: str, cutoff_A: float) -> None:
        self.site_index = site_index
        self.species = species
        self.cutoff_A = cutoff_A
        super().__init__(
            f"site {site_index} ({species}) has no neighbour within the cutoff of {cutoff_A:g} angstrom; "
            "use a larger cutoff or check the structure (vacuum, wrong lattice)"
        )


@dataclass(frozen=True)
class NeighborList:
    """Directed periodic neighbour pairs, sorted by centre, neighbour, then image offset.

    Attributes:
        center: int64, shape ``(n_edges,)``: index of the centre site.
        neighbor: int64, shape ``(n_edges,)``: index of the neighbour site.
        image_offsets: int64, shape ``(n_edges, 3)``: integer lattice shift of the neighbour's image.
        distances_A: float64, shape ``(n_edges,)``: edge lengths in angstrom.
        vectors_A: float64, shape ``(n_edges, 3)``: ``r_neighbor + image_offsets @ lattice - r_center``,
            in angstrom (Cartesian).
    """

    center: np.ndarray
    neighbor: np.ndarray
    image_offsets: np.ndarray
    distances_A: np.ndarray
    vectors_A: np.ndarray

    def __len__(self) -> int:
        return len(self.center)


def perpendicular_widths_A(lattice_matrix_A: np.ndarray) -> np.ndarray:
    """Perpendicular widths of a cell (distances between opposite faces), angstrom, shape ``(3,)``."""
    matrix = np.asarray(lattice_matrix_A, dtype=float)
    volume = abs(np.linalg.det(matrix))
    return np.array(
        [volume / np.linalg.norm(np.cross(matrix[(i + 1) % 3], matrix[(i + 2) % 3])) for i in range(3)]
    )


def _check_cutoff(cutoff_A: float) -> float:
    cutoff = float(cutoff_A)
    if not math.isfinite(cutoff) or cutoff <= 0:
        raise InputError(f"cutoff must be a positive number of angstrom, got {cutoff_A!r}")
    return cutoff


def neighbor_list(structure: Structure, cutoff_A: float) -> NeighborList:
    """Every directed pair of sites (over all periodic images) closer than ``cutoff_A``.

    Args:
        structure: a periodic pymatgen structure (ordered or not; species play no part here).
        cutoff_A: cutoff radius in angstrom.

    Returns:
        The neighbour list, each pair listed in both directions.

    Raises:
        ValueError: for an empty structure, a degenerate lattice, a bad cutoff or two coincident sites.
        IsolatedAtomError: when a site has no neighbour within the cutoff.
    """
    cutoff = _check_cutoff(cutoff_A)
    if len(structure) == 0:
        raise InputError("the structure has no sites")
    matrix = np.ascontiguousarray(structure.lattice.matrix, dtype=np.float64)
    volume_A3 = abs(float(np.linalg.det(matrix)))
    if not math.isfinite(volume_A3) or volume_A3 < 1e-6:
        raise InputError(f"degenerate lattice (cell volume {volume_A3:.3g} A^3)")
    coords = np.ascontiguousarray(structure.cart_coords, dtype=np.float64)
    center, neighbor, images, _ = find_points_in_spheres(
        coords,
        coords,
        r=cutoff,
        pbc=np.ascontiguousarray(structure.lattice.pbc, dtype=np.int64),
        lattice=matrix,
        tol=1e-8,
    )
    center = np.asarray(center, dtype=np.int64)
    neighbor = np.asarray(neighbor, dtype=np.int64)
    offsets = np.rint(np.asarray(images, dtype=np.float64)).astype(np.int64).reshape(-1, 3)
    keep = (center != neighbor) | np.any(offsets != 0, axis=1)
    center, neighbor, offsets = center[keep], neighbor[keep], offsets[keep]
    order = np.lexsort((offsets[:, 2], offsets[:, 1], offsets[:, 0], neighbor, center))
    center, neighbor, offsets = center[order], neighbor[order], offsets[order]

    vectors = coords[neighbor] + offsets @ matrix - coords[center]
    distances = np.linalg.norm(vectors, axis=1)
    if len(distances) and distances.min() < _COINCIDENT_A:
        e = int(np.argmin(distances))
        raise InputError(
            f"sites {center[e]} and {neighbor[e]} (cell offset {offsets[e].tolist()}) coincide "
            f"({distances[e]:.2g} angstrom apart)"
        )
    has_neighbor = np.zeros(len(structure), dtype=bool)
    has_neighbor[center] = True
    if not has_neighbor.all():
        i = int(np.flatnonzero(~has_neighbor)[0])
        raise IsolatedAtomError(i, structure[i].species_string, cutoff)
    return NeighborList(center, neighbor, offsets, distances, vectors)


def structure_to_graph(structure: Structure, cutoff_A: float = DEFAULT_CUTOFF_A) -> Data:
    """The periodic crystal graph of a structure.

    Args:
        structure: an ordered or disordered pymatgen structure.
        cutoff_A: neighbour cutoff in angstrom.

    Returns:
        A ``torch_geometric.data.Data`` with (``n`` sites, ``E`` directed edges):

        - ``x``: float32 ``(n, VOCABULARY_SIZE)``, occupancy probability vectors;
        - ``pos``: float32 ``(n, 3)``, Cartesian positions in angstrom;
        - ``cell``: float32 ``(1, 3, 3)``, lattice vectors as rows, in angstrom;
        - ``edge_index``: int64 ``(2, E)``, row 0 the centre site, row 1 the neighbour;
        - ``cell_offset``: float32 ``(E, 3)``, the integer lattice shift of each neighbour image, so that
          ``edge_vec == pos[edge_index[1]] - pos[edge_index[0]] + cell_offset @ cell[0]``;
        - ``edge_vec``: float32 ``(E, 3)`` and ``edge_length``: float32 ``(E,)``, in angstrom;
        - ``num_nodes``: ``n``.

    Raises:
        ValueError: as :func:`neighbor_list` and :func:`screening.occupancy.site_occupancies`
            (``IsolatedAtomError`` for a site without neighbours).
    """
    neighbors = neighbor_list(structure, cutoff_A)
    return Data(
        x=occupancy_tensor(structure),
        pos=torch.from_numpy(structure.cart_coords.astype(np.float32)),
        cell=torch.from_numpy(structure.lattice.matrix.astype(np.float32)).unsqueeze(0),
        edge_index=torch.from_numpy(np.stack([neighbors.center, neighbors.neighbor])),
        cell_offset=torch.from_numpy(neighbors.image_offsets.astype(np.float32)),
        edge_vec=torch.from_numpy(neighbors.vectors_A.astype(np.float32)),
        edge_length=torch.from_numpy(neighbors.distances_A.astype(np.float32)),
        num_nodes=len(structure),
    )


def batch_graphs(graphs: Sequence[Data]) -> Batch:
    """Join graphs into one ``torch_geometric`` batch.

    Node and edge tensors are concatenated (``edge_index`` shifted to the batch's node numbering),
    ``cell`` becomes ``(n_graphs, 3, 3)``, and ``batch`` maps each node to its graph, so the cell of an edge
    is ``cell[batch[edge_index[0]]]``.

    Raises:
        ValueError: for an empty sequence.
    """
    graphs = list(graphs)
    if not graphs:
        raise InputError("no graphs to batch")
    return Batch.from_data_list(graphs)
