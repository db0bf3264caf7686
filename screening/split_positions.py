"""Split positions: alternative positions of one atom, closer than two atoms could ever be.

Refinements of disordered conductors spread one atom over positions a fraction of an angstrom apart (the
96h pairs of garnets, 0.7 A; the Li pairs of LGPS and the argyrodites), each partially occupied. Two sites
are split positions of each other when both are partially occupied
(:func:`screening.structures.is_partially_occupied`: a mixed site refined to 0.999 is full) and closer than
:data:`SPLIT_POSITION_DISTANCE_A`; at most one of them holds an atom in any physical configuration.

This is the one definition used by every stage that meets them: ingest warns where published occupancies
ask for more atoms than split positions can hold (:mod:`screening.validation`), the configuration sampler
never fills two of them (:mod:`screening.models.disorder`), and the one-pass models of a disordered cell
(the alchemical potential, the occupancy-native network) pass no message between them. NumPy only, so
that ingest does not import torch.
"""

from __future__ import annotations

import numpy as np

from screening.structures import is_partially_occupied

#: Two partially occupied sites closer than this (angstrom) are split positions: at most one holds an
#: atom. Above the 0.2-0.7 A of published split positions, below the bonds of ionic crystals (P-O 1.5 A).
SPLIT_POSITION_DISTANCE_A = 1.0


def split_position_pairs(
    distances_A: np.ndarray,
    center: np.ndarray,
    neighbor: np.ndarray,
    total_occupancy: np.ndarray,
    max_distance_A: float = SPLIT_POSITION_DISTANCE_A,
) -> np.ndarray:
    """Which pairs of a neighbour list are split positions (see the module docstring).

    Args:
        distances_A: pair distances (angstrom).
        center, neighbor: site indices of each pair (a site paired with its own periodic image counts
            like any other pair).
        total_occupancy: each site's summed occupancy, shape ``(n_sites,)``.
        max_distance_A: split-position distance (0: no site pair is one).

    Returns:
        Boolean mask of the shape of ``distances_A``.
    """
    partial = is_partially_occupied(total_occupancy)
    return (np.asarray(distances_A) < max_distance_A) & partial[center] & partial[neighbor]
