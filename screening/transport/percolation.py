"""Percolation of a periodic energy landscape: the lowest energy at which the accessible region of a grid
connects a cell to its periodic images in 1, 2 and 3 independent directions.

The accessible region at threshold E is the set of grid points with energy <= E (26-neighbour
connectivity). Connected components inside the cell are found with ``scipy.ndimage.label``; the links that
cross the cell faces are then merged with a small union-find that carries, for every component, the
lattice translation of its copy. A link that closes a loop with a non-zero net translation t means the
component is connected to its own image shifted by t; the rank of the set of such translations is the
percolation dimensionality (0: isolated pockets, 1: channels, 2: layers, 3: a 3D network). Dimensionality
grows with E, so the threshold for each dimensionality is found by bisection over the sorted grid energies
(exact to the grid).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from screening.errors import InputError

#: The 13 neighbour offsets that, with their negatives, make up the 26-neighbourhood.
_HALF_NEIGHBOURS = [d for d in itertools.product((-1, 0, 1), repeat=3) if d > (0, 0, 0)]
#: All 26 neighbour offsets, as an array (steepest descent).
_NEIGHBOURS_26 = np.array([*_HALF_NEIGHBOURS, *(tuple(-x for x in d) for d in _HALF_NEIGHBOURS)])
_STRUCTURE_26 = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class Connectivity:
    """Periodic connectivity of an accessible region.

    Attributes:
        labels: component label of every grid point (0 = not accessible); a component that is split by the
            cell faces carries several labels.
        dimensionality_of_label: percolation dimensionality (0-3) of the periodic component of each label.
    """

    labels: np.ndarray
    dimensionality_of_label: np.ndarray

    @property
    def dimensionality(self) -> int:
        """Largest percolation dimensionality of any component."""
        return int(self.dimensionality_of_label.max(initial=0))


def _boundary_links(labels: np.ndarray) -> np.ndarray:
    """Unique rows (label_a, label_b, tx, ty, tz): a point of a is a neighbour of a point of b's copy
    translated by the lattice vector t (t != 0)."""
    shape = labels.shape
    rows = []
    for offset in _HALF_NEIGHBOURS:
        neighbour = np.roll(labels, shift=tuple(-d for d in offset), axis=(0, 1, 2))
        wraps = []
        for axis, d in enumerate(offset):
            index_shape = [1, 1, 1]
            index_shape[axis] = shape[axis]
            index = np.arange(shape[axis]).reshape(index_shape)
            wraps.append(
                (index == shape[axis] - 1).astype(np.int64)
                if d == 1
                else -(index == 0).astype(np.int64)
                if d == -1
                else np.zeros(index_shape, dtype=np.int64)
            )
        tx, ty, tz = np.broadcast_arrays(*wraps)
        crossing = (tx != 0) | (ty != 0) | (tz != 0)
        keep = crossing & (labels > 0) & (neighbour > 0)
        if keep.any():
            rows.append(np.stack([labels[keep], neighbour[keep], tx[keep], ty[keep], tz[keep]], axis=1))
    if not rows:
        return np.zeros((0, 5), dtype=np.int64)
    return np.unique(np.concatenate(rows).astype(np.int64), axis=0)


def _rank(vectors: list[np.ndarray]) -> int:
    return int(np.linalg.matrix_rank(np.array(vectors, dtype=float))) if vectors else 0


def periodic_connectivity(accessible: np.ndarray) -> Connectivity:
    """Periodic components of a boolean grid and the percolation dimensionality of each.

    Args:
        accessible: boolean array (nx, ny, nz) over one periodic cell.

    Returns:
        The labels and, per label, the dimensionality of its periodic component.
    """
    labels, n_labels = ndimage.label(accessible, structure=_STRUCTURE_26)
    parent = list(range(n_labels + 1))
    shift = [np.zeros(3, dtype=np.int64) for _ in range(n_labels + 1)]  # copy of x at 0 ~ root at shift[x]
    basis: dict[int, list[np.ndarray]] = {}

    def find(x: int) -> tuple[int, np.ndarray]:
        if parent[x] == x:
            return x, shift[x] * 0
        root, to_root = find(parent[x])
        shift[x] = shift[x] + to_root
        parent[x] = root
        return root, shift[x]

    for a, b, *t in _boundary_links(labels):
        root_a, shift_a = find(int(a))
        root_b, shift_b = find(int(b))
        translation = np.array(t, dtype=np.int64)
        if root_a == root_b:
            cycle = shift_b + translation - shift_a
            vectors = basis.setdefault(root_a, [])
            if cycle.any() and len(vectors) < 3 and _rank([*vectors, cycle]) > len(vectors):
                vectors.append(cycle)
        else:
            parent[root_b] = root_a
            shift[root_b] = shift_a - shift_b - translation
            merged = basis.setdefault(root_a, [])
            for vector in basis.pop(root_b, []):
                vector = vector.copy()  # translations are the same from any copy of the component
                if len(merged) < 3 and _rank([*merged, vector]) > len(merged):
                    merged.append(vector)
    dimensionality = np.zeros(n_labels + 1, dtype=np.int64)
    for label in range(1, n_labels + 1):
        dimensionality[label] = len(basis.get(find(label)[0], []))
    return Connectivity(labels, dimensionality)


@dataclass(frozen=True)
class PercolationBarriers:
    """Percolation energies of a landscape, relative to its minimum.

    Attributes:
        barrier_eV: (E_1D, E_2D, E_3D) in eV above the landscape minimum, None where no percolation of that
            dimensionality occurs below the cap.
        threshold_eV: the same thresholds as absolute grid energies (eV), None where none.
        minimum_eV: the landscape minimum (eV).
    """

    barrier_eV: tuple[float | None, float | None, float | None]
    threshold_eV: tuple[float | None, float | None, float | None]
    minimum_eV: float


def percolation_barriers(energy_eV: np.ndarray, max_barrier_eV: float = 5.0) -> PercolationBarriers:
    """Lowest thresholds at which the region ``energy <= threshold`` percolates in 1, 2 and 3 dimensions.

    Args:
        energy_eV: energy on a periodic grid (nx, ny, nz).
        max_barrier_eV: thresholds above ``min + max_barrier_eV`` are not considered.

    Returns:
        The three barriers (relative to the minimum, None above the cap) and the minimum.
    """
    if not np.all(np.isfinite(energy_eV)):
        raise InputError("energy landscape contains non-finite values")
    minimum = float(energy_eV.min())
    levels = np.unique(energy_eV[energy_eV <= minimum + max_barrier_eV])
    cache: dict[int, int] = {}

    def dimensionality(i: int) -> int:
        if i not in cache:
            cache[i] = periodic_connectivity(energy_eV <= levels[i]).dimensionality
        return cache[i]

    thresholds: list[float | None] = []
    lo = 0
    for dim in (1, 2, 3):
        hi = len(levels) - 1
        if dimensionality(hi) < dim:
            thresholds.append(None)
            continue
        while lo < hi:  # smallest index whose dimensionality reaches dim
            mid = (lo + hi) // 2
            if dimensionality(mid) >= dim:
                hi = mid
            else:
                lo = mid + 1
        thresholds.append(float(levels[lo]))
    barriers = [None if t is None else t - minimum for t in thresholds]
    return PercolationBarriers(
        (barriers[0], barriers[1], barriers[2]), (thresholds[0], thresholds[1], thresholds[2]), minimum
    )


def descend(energy_eV: np.ndarray, voxel: np.ndarray) -> np.ndarray:
    """The grid minimum that steepest descent over the 26 neighbours (periodic) reaches from ``voxel``:
    the bottom of the pocket a point lies in.

    Args:
        energy_eV: energy on a periodic grid (nx, ny, nz).
        voxel: grid index (3,) to start from.

    Returns:
        The grid index (3,) of the minimum.
    """
    shape = np.array(energy_eV.shape)
    here = np.asarray(voxel, dtype=int) % shape
    while True:
        neighbours = (here + _NEIGHBOURS_26) % shape
        values = energy_eV[neighbours[:, 0], neighbours[:, 1], neighbours[:, 2]]
        if values.min() >= energy_eV[tuple(here)]:
            return here
        here = neighbours[int(np.argmin(values))]


def joining_energy_eV(
    energy_eV: np.ndarray, voxels: np.ndarray, *, from_eV: float, to_eV: float
) -> np.ndarray:
    """For each voxel, the lowest grid energy at which it lies in a percolating component of
    ``energy <= E``: the rim its pocket has to be climbed over to reach a long-range path.

    Found by bisection over the sorted grid energies between ``from_eV`` and ``to_eV`` (exact to the grid),
    every labelling narrowing the bracket of every voxel at once.

    Args:
        energy_eV: energy on a periodic grid (nx, ny, nz).
        voxels: grid indices (n, 3).
        from_eV: the lowest energy to consider (the percolation threshold).
        to_eV: the highest energy to consider.

    Returns:
        The energies (n,), ``inf`` for a voxel that joins no percolating component up to ``to_eV``.
    """
    voxels = np.asarray(voxels, dtype=int).reshape(-1, 3)
    levels = np.unique(np.append(energy_eV[(energy_eV > from_eV) & (energy_eV <= to_eV)], from_eV))

    def joined(index: int) -> np.ndarray:
        network = periodic_connectivity(energy_eV <= levels[index])
        labels = network.labels[voxels[:, 0], voxels[:, 1], voxels[:, 2]]
        return network.dimensionality_of_label[labels] > 0

    lo = np.zeros(len(voxels), dtype=int)
    hi = np.full(len(voxels), len(levels) - 1)
    reachable = joined(len(levels) - 1)
    lo[~reachable] = hi[~reachable]
    while (open_ := np.flatnonzero(lo < hi)).size:
        mid = (lo[open_[0]] + hi[open_[0]]) // 2
        now = joined(mid)
        hi = np.where(now, np.minimum(hi, mid), hi)
        lo = np.where(now, lo, np.maximum(lo, mid + 1))
    return np.where(reachable, levels[hi], np.inf)
