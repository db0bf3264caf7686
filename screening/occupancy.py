"""Element vocabulary, per-site occupancy probability vectors and mean-field expectations.

Every site of a crystal is described by a probability vector over a fixed vocabulary of
:data:`VOCABULARY_SIZE` channels: one per element Z = 1..94 (channel ``Z - 1``) and a last channel,
:data:`VACANCY_INDEX`, for an empty site. An ordered site is one-hot; a disordered site spreads its
probability over its elements, and a partially occupied site puts ``1 - sum(occupancies)`` on the vacancy
channel, so every vector sums to one. Oxidation states are ignored: ``Fe2+`` and ``Fe3+`` share the Fe
channel.

:func:`meanfield_expectation` evaluates the expectation of a site + pair model over independent site
occupations from these vectors, which is how an occupancy-aware model treats a disordered structure in one
evaluation.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse
import torch
from pymatgen.core import Element, Species, Structure

from screening.errors import InputError, InputTypeError

#: Number of element channels (Z = 1..94, H to Pu).
N_ELEMENTS = 94
#: Channel of an empty site (the last one).
VACANCY_INDEX = 94
#: Channels of an occupancy vector: the elements plus the vacancy.
VOCABULARY_SIZE = 95

#: A site's occupancies may sum above 1 by this much (round-off) before the site counts as overfull.
_OVERFULL_TOLERANCE = 1e-6


def element_index(symbol: str | Element | Species) -> int:
    """Channel of an element in the occupancy vocabulary (``Z - 1``).

    Args:
        symbol: an element symbol (``"Li"``), a pymatgen ``Element``, or a ``Species`` (``Li+``), whose
            oxidation state is ignored.

    Returns:
        The channel index, 0 (H) to 93 (Pu).

    Raises:
        ValueError: for anything that is not an element with Z <= 94 (dummy species, Am and heavier).
    """
    try:
        if isinstance(symbol, Species):
            z = symbol.element.Z
        elif isinstance(symbol, Element):
            z = symbol.Z
        elif isinstance(symbol, str):
            z = Element(symbol).Z
        else:
            raise InputTypeError(type(symbol).__name__)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise InputError(f"{symbol!r} is not a chemical element of the occupancy vocabulary") from err
    if not 1 <= z <= N_ELEMENTS:
        raise InputError(f"element {symbol!s} (Z={z}) is outside the vocabulary Z = 1..{N_ELEMENTS}")
    return z - 1


def site_occupancies(structure: Structure) -> scipy.sparse.csr_matrix:
    """Occupancy probability vectors of every site, stored sparsely.

    Args:
        structure: an ordered or disordered pymatgen structure.

    Returns:
        A float64 CSR matrix of shape ``(n_sites, VOCABULARY_SIZE)``: row ``i`` holds the occupancy of
        each element on site ``i`` (species of one element with different oxidation states added
        together) and, in column :data:`VACANCY_INDEX`, ``1 - sum(occupancies)`` when that is positive.
        Every row sums to 1 (to floating-point round-off); ordered sites are one-hot.

    Raises:
        ValueError: for a site holding something outside the vocabulary, or whose occupancies sum to
            more than 1.
    """
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for i, site in enumerate(structure):
        by_channel: dict[int, float] = {}
        for specie, occupancy in site.species.items():
            try:
                channel = element_index(specie)
            except ValueError as err:
                raise InputError(f"site {i} ({site.species_string}): {err}") from err
            by_channel[channel] = by_channel.get(channel, 0.0) + float(occupancy)
        total = math.fsum(by_channel.values())
        if total > 1.0 + _OVERFULL_TOLERANCE:
            raise InputError(f"site {i} ({site.species_string}) has occupancies summing to {total:.6g} > 1")
        if total > 1.0:  # round-off above 1: renormalise, no vacancy
            by_channel = {c: occ / total for c, occ in by_channel.items()}
        elif total < 1.0:
            by_channel[VACANCY_INDEX] = 1.0 - total
        for channel in sorted(by_channel):
            indices.append(channel)
            data.append(by_channel[channel])
        indptr.append(len(indices))
    return scipy.sparse.csr_matrix(
        (np.asarray(data, dtype=np.float64), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
        shape=(len(structure), VOCABULARY_SIZE),
    )


def occupancy_tensor(structure: Structure) -> torch.Tensor:
    """Dense float32 occupancy vectors, shape ``(n_sites, VOCABULARY_SIZE)`` (see :func:`site_occupancies`)."""
    return torch.from_numpy(site_occupancies(structure).toarray().astype(np.float32))


def _dense(array: object) -> np.ndarray:
    if scipy.sparse.issparse(array):
        return array.toarray().astype(np.float64)
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().double().numpy()
    return np.asarray(array, dtype=np.float64)


def meanfield_expectation(
    p: object,
    site_terms: object,
    pair_terms: object,
    edge_index: object,
    self_image_mask: object | None = None,
) -> float:
    """Expectation of a site + pair model over independent site occupations.

    The model gives a configuration ``s`` (one channel per site) the value
    ``E(s) = sum_i h_i(s_i) + 1/2 sum_(i->j) F_ij(s_i, s_j)``, the pair sum running over the directed
    edges of a periodic graph (both ``i->j`` and ``j->i`` are listed, hence the 1/2). With site ``i``
    occupied by channel ``a`` with probability ``p[i, a]``, independently of the other sites:

    - a site term contributes ``p_i . h_i``;
    - an edge between two different sites contributes ``1/2 p_i^T F p_j``;
    - an edge from a site to its own periodic image contributes ``1/2 sum_a p_i[a] F[a, a]``: the site
      and its image hold the same species in every configuration, so only the diagonal of ``F`` counts
      (``p_i^T F p_i`` would wrongly treat the two as independent).

    Args:
        p: occupancy probabilities, shape ``(n_sites, K)`` (numpy, scipy sparse or torch; typically
            ``K = VOCABULARY_SIZE``).
        site_terms: ``h``, shape ``(K,)`` shared by all sites, or ``(n_sites, K)``.
        pair_terms: ``F``, shape ``(K, K)`` shared by all edges, or ``(n_edges, K, K)`` per edge
            (``F[e, a, b]``: centre of edge ``e`` in channel ``a``, neighbour in channel ``b``).
        edge_index: shape ``(2, n_edges)``, row 0 the centre site, row 1 the neighbour site.
        self_image_mask: shape ``(n_edges,)``, True for edges joining a site to its own periodic image.
            Default: the edges with centre == neighbour (in a periodic graph with the zero-offset self
            pairs removed, these are exactly the self-image edges).

    Returns:
        The expectation of ``E``, in the units of ``h`` and ``F``.

    Raises:
        ValueError: on inconsistent shapes.
    """
    p_arr = _dense(p)
    h = _dense(site_terms)
    f = _dense(pair_terms)
    edges = _dense(edge_index).astype(np.int64)
    if p_arr.ndim != 2:
        raise InputError(f"p must have shape (n_sites, K), got {p_arr.shape}")
    n_sites, k = p_arr.shape
    if h.shape not in {(k,), (n_sites, k)}:
        raise InputError(f"site_terms must have shape ({k},) or ({n_sites}, {k}), got {h.shape}")
    if edges.ndim != 2 or edges.shape[0] != 2:
        raise InputError(f"edge_index must have shape (2, n_edges), got {edges.shape}")
    n_edges = edges.shape[1]
    if f.shape not in {(k, k), (n_edges, k, k)}:
        raise InputError(f"pair_terms must have shape ({k}, {k}) or ({n_edges}, {k}, {k}), got {f.shape}")
    if n_edges and (edges.min() < 0 or edges.max() >= n_sites):
        raise InputError(f"edge_index refers to sites outside 0..{n_sites - 1}")
    if self_image_mask is None:
        self_image = edges[0] == edges[1]
    else:
        self_image = _dense(self_image_mask).astype(bool).reshape(-1)
        if self_image.shape != (n_edges,):
            raise InputError(f"self_image_mask must have shape ({n_edges},), got {self_image.shape}")
        if np.any(edges[0, self_image] != edges[1, self_image]):
            raise InputError("self_image_mask marks an edge between two different sites")

    site_part = float(np.sum(p_arr * h))
    p_center, p_neighbor = p_arr[edges[0]], p_arr[edges[1]]
    if f.ndim == 2:
        cross = np.einsum("ea,ab,eb->e", p_center, f, p_neighbor)
        diagonal = p_center @ np.diagonal(f)
    else:
        cross = np.einsum("ea,eab,eb->e", p_center, f, p_neighbor)
        diagonal = np.einsum("ea,ea->e", p_center, np.diagonal(f, axis1=1, axis2=2))
    pair_part = 0.5 * float(np.sum(np.where(self_image, diagonal, cross)))
    return site_part + pair_part
