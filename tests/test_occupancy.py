"""Occupancy vocabulary, occupancy vectors and the mean-field expectation of a site + pair model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse
import torch
from pymatgen.core import DummySpecies, Element, Lattice, Species, Structure

from screening.graphs import neighbor_list
from screening.occupancy import (
    N_ELEMENTS,
    VACANCY_INDEX,
    VOCABULARY_SIZE,
    element_index,
    meanfield_expectation,
    occupancy_tensor,
    site_occupancies,
)
from screening.structures import row_to_structure, structure_to_row


def test_vocabulary_layout() -> None:
    assert (N_ELEMENTS, VACANCY_INDEX, VOCABULARY_SIZE) == (94, 94, 95)
    assert element_index("H") == 0
    assert element_index("Li") == 2
    assert element_index("Pu") == 93
    assert element_index(Element("O")) == 7
    assert element_index(Species("Fe", 3)) == element_index("Fe") == 25


@pytest.mark.parametrize("bad", ["Am", "Xx", DummySpecies("X"), 3])
def test_element_index_rejects_what_is_not_in_the_vocabulary(bad: object) -> None:
    with pytest.raises(ValueError, match="vocabulary"):
        element_index(bad)


def _llzo_like() -> Structure:
    """A small cell with an ordered site, a partially occupied site and a mixed site."""
    return Structure(
        Lattice.cubic(4.0),
        ["La", {"Li": 0.56}, {"S2-": 0.5, "Cl-": 0.5}, {Species("Fe", 2): 0.25, Species("Fe", 3): 0.5}],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0]],
    )


def test_site_occupancies_of_ordered_partial_and_mixed_sites() -> None:
    occ = site_occupancies(_llzo_like())
    assert scipy.sparse.issparse(occ) and occ.format == "csr"
    assert occ.shape == (4, VOCABULARY_SIZE)
    dense = occ.toarray()
    np.testing.assert_allclose(dense.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    # ordered site: one-hot on La
    assert dense[0, element_index("La")] == 1.0 and occ[0].nnz == 1
    # partial occupancy: the rest is vacancy
    assert dense[1, element_index("Li")] == pytest.approx(0.56)
    assert dense[1, VACANCY_INDEX] == pytest.approx(0.44)
    assert occ[1].nnz == 2
    # mixed anions, full site: no vacancy entry stored
    assert dense[2, element_index("S")] == dense[2, element_index("Cl")] == 0.5
    assert occ[2].nnz == 2
    # oxidation states share the element channel
    assert dense[3, element_index("Fe")] == pytest.approx(0.75)
    assert dense[3, VACANCY_INDEX] == pytest.approx(0.25)


def test_occupancies_survive_the_structures_table_round_trip() -> None:
    structure = _llzo_like()
    again = row_to_structure(structure_to_row(structure, "x-1", "files"))
    assert (site_occupancies(again) != site_occupancies(structure)).nnz == 0


def test_occupancy_tensor_is_the_dense_float32_form() -> None:
    structure = _llzo_like()
    x = occupancy_tensor(structure)
    assert x.dtype == torch.float32 and x.shape == (4, VOCABULARY_SIZE)
    np.testing.assert_allclose(x.numpy(), site_occupancies(structure).toarray(), rtol=1e-7)


def test_site_outside_the_vocabulary_is_a_clear_error() -> None:
    structure = Structure(Lattice.cubic(3.0), ["Li", DummySpecies("X")], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(ValueError, match=r"site 1 .*vocabulary"):
        site_occupancies(structure)


# ---------------------------------------------------------------- mean-field expectation


def _small_disordered_cell() -> Structure:
    """Three sites in a small cell: with a 4 angstrom cutoff each site sees its own periodic images."""
    return Structure(
        Lattice([[3.1, 0.0, 0.0], [0.4, 3.4, 0.0], [0.2, 0.3, 3.8]]),
        [{"Li": 0.6}, {"O": 0.5, "S": 0.3}, {"La": 0.5, "Zr": 0.5}],
        [[0.0, 0.0, 0.0], [0.5, 0.45, 0.55], [0.1, 0.6, 0.2]],
    )


def _model(rng: np.random.Generator, n_edges: int, distances_A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Random site terms per site and a random, distance-dependent, non-symmetric pair term per edge."""
    h = rng.normal(size=(3, VOCABULARY_SIZE))
    f0 = rng.normal(size=(VOCABULARY_SIZE, VOCABULARY_SIZE))
    f = f0[None] * np.exp(-distances_A)[:, None, None]
    assert f.shape == (n_edges, VOCABULARY_SIZE, VOCABULARY_SIZE)
    return h, f


def _energy(config: np.ndarray, h: np.ndarray, f: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The model on definite configurations ``config`` (n_configs, n_sites) of channels: a direct sum."""
    sites = np.arange(config.shape[1])
    site_part = h[sites, config].sum(axis=1)
    pair_part = f[np.arange(edges.shape[1]), config[:, edges[0]], config[:, edges[1]]].sum(axis=1)
    return site_part + 0.5 * pair_part


def test_meanfield_equals_exact_enumeration_with_vacancies_and_self_images() -> None:
    structure = _small_disordered_cell()
    neighbors = neighbor_list(structure, 4.0)
    edges = np.stack([neighbors.center, neighbors.neighbor])
    self_image = neighbors.center == neighbors.neighbor
    assert self_image.any(), "the test needs edges from a site to its own image"
    p = site_occupancies(structure).toarray()
    assert (p[:, VACANCY_INDEX] > 0).sum() == 2, "the test needs vacancies"
    h, f = _model(np.random.default_rng(0), edges.shape[1], neighbors.distances_A)

    supports = [np.flatnonzero(row) for row in p]
    configs = np.array(list(itertools.product(*supports)))
    weights = np.prod(p[np.arange(3), configs], axis=1)
    assert weights.sum() == pytest.approx(1.0)
    exact = float(weights @ _energy(configs, h, f, edges))

    assert meanfield_expectation(p, h, f, edges) == pytest.approx(exact, rel=1e-12)
    # the explicit mask, sparse and torch inputs give the same
    assert meanfield_expectation(
        site_occupancies(structure), h, torch.from_numpy(f), torch.from_numpy(edges), self_image
    ) == pytest.approx(exact, rel=1e-12)
    # treating a site and its own image as independent (p^T F p) is wrong, and measurably so
    naive = meanfield_expectation(p, h, f, edges, np.zeros_like(self_image))
    assert abs(naive - exact) > 1e-3 * abs(exact)


def test_meanfield_with_shared_terms_equals_enumeration() -> None:
    structure = _small_disordered_cell()
    neighbors = neighbor_list(structure, 4.0)
    edges = np.stack([neighbors.center, neighbors.neighbor])
    p = site_occupancies(structure).toarray()
    rng = np.random.default_rng(1)
    h = rng.normal(size=VOCABULARY_SIZE)
    f = rng.normal(size=(VOCABULARY_SIZE, VOCABULARY_SIZE))
    configs = np.array(list(itertools.product(*[np.flatnonzero(row) for row in p])))
    weights = np.prod(p[np.arange(3), configs], axis=1)
    energies = _energy(configs, np.tile(h, (3, 1)), np.broadcast_to(f, (edges.shape[1], *f.shape)), edges)
    assert meanfield_expectation(p, h, f, edges) == pytest.approx(float(weights @ energies), rel=1e-12)


def test_meanfield_of_an_ordered_structure_is_its_energy() -> None:
    structure = Structure(Lattice.cubic(3.0), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    neighbors = neighbor_list(structure, 4.0)
    edges = np.stack([neighbors.center, neighbors.neighbor])
    rng = np.random.default_rng(2)
    h = rng.normal(size=(2, VOCABULARY_SIZE))
    f = rng.normal(size=(len(neighbors), VOCABULARY_SIZE, VOCABULARY_SIZE))
    config = np.array([[element_index("Li"), element_index("O")]])
    expected = float(_energy(config, h, f, edges)[0])
    assert meanfield_expectation(occupancy_tensor(structure), h, f, edges) == pytest.approx(expected)


def test_meanfield_agrees_with_monte_carlo_sampling_of_configurations() -> None:
    structure = _small_disordered_cell() * (2, 1, 1)
    structure.replace(0, {"Li": 0.3, "Na": 0.3})
    neighbors = neighbor_list(structure, 4.0)
    edges = np.stack([neighbors.center, neighbors.neighbor])
    assert (neighbors.center == neighbors.neighbor).any()
    p = site_occupancies(structure).toarray()
    n_sites = len(structure)
    rng = np.random.default_rng(3)
    h = rng.normal(size=(n_sites, VOCABULARY_SIZE))
    f = (
        rng.normal(size=(VOCABULARY_SIZE, VOCABULARY_SIZE))[None]
        * np.exp(-neighbors.distances_A)[:, None, None]
    )

    n_samples = 40_000
    cumulative = np.cumsum(p, axis=1)
    draws = rng.random((n_samples, n_sites, 1))
    configs = np.minimum((draws > cumulative[None]).sum(axis=2), VOCABULARY_SIZE - 1)
    energies = _energy(configs, h, f, edges)
    standard_error = energies.std(ddof=1) / np.sqrt(n_samples)

    expected = meanfield_expectation(p, h, f, edges)
    assert abs(energies.mean() - expected) < 4 * standard_error
    # the sampling is sharp enough to reject the naive treatment of the self-image edges
    naive = meanfield_expectation(p, h, f, edges, np.zeros(len(neighbors), dtype=bool))
    assert abs(energies.mean() - naive) > 4 * standard_error


def test_meanfield_rejects_inconsistent_shapes() -> None:
    p = np.full((2, 3), 1 / 3)
    edges = np.array([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="site_terms"):
        meanfield_expectation(p, np.zeros(4), np.zeros((3, 3)), edges)
    with pytest.raises(ValueError, match="pair_terms"):
        meanfield_expectation(p, np.zeros(3), np.zeros((3, 3, 3)), edges)
    with pytest.raises(ValueError, match="edge_index"):
        meanfield_expectation(p, np.zeros(3), np.zeros((3, 3)), np.array([[0, 2], [1, 0]]))
    with pytest.raises(ValueError, match="self_image_mask"):
        meanfield_expectation(p, np.zeros(3), np.zeros((3, 3)), edges, np.array([True, False]))
