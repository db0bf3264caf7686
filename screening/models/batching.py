"""Split work into batches by total atom count rather than by a fixed number of structures.

GNN memory and time grow with the number of atoms (and edges) in a batch, not with the number of
structures, so a cap on atoms lets many small cells share one forward pass while one large cell never
blows the memory budget: it simply goes alone. The cap itself is measured per model and device
(:mod:`screening.models.batch_calibration`).
"""

from __future__ import annotations

from collections.abc import Sequence

from screening.errors import InputError


def batches_by_atom_count(n_atoms: Sequence[int], max_atoms_per_batch: int) -> list[list[int]]:
    """Greedy, order-preserving batching of items by their atom counts.

    Items are taken in order and appended to the current batch until adding the next one would exceed
    ``max_atoms_per_batch``; an item larger than the cap forms a batch of its own.

    Args:
        n_atoms: number of atoms of each item (>= 1).
        max_atoms_per_batch: cap on the summed atom count of a batch (>= 1).

    Returns:
        Lists of item indices, in input order; every index appears exactly once.

    Raises:
        ValueError: on a non-positive cap or atom count.
    """
    if max_atoms_per_batch < 1:
        raise InputError(f"max_atoms_per_batch must be >= 1, got {max_atoms_per_batch}")
    batches: list[list[int]] = []
    current: list[int] = []
    current_atoms = 0
    for index, count in enumerate(n_atoms):
        if count < 1:
            raise InputError(f"item {index} has {count} atoms; every item needs at least one")
        if current and current_atoms + count > max_atoms_per_batch:
            batches.append(current)
            current, current_atoms = [], 0
        current.append(index)
        current_atoms += count
    if current:
        batches.append(current)
    return batches
