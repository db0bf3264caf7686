"""Periodic neighbour lists and crystal graphs: exactness against brute force, invariances, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.core import Lattice, Structure

from screening.graphs import IsolatedAtomError, batch_graphs, neighbor_list, structure_to_graph
from screening.occupancy import VACANCY_INDEX, VOCABULARY_SIZE, element_index, site_occupancies
from screening.structures import row_to_structure, structure_to_row

_SPECIES = ["Li", "O", "S", "P", "La", "Zr", {"Li": 0.5}, {"O": 0.5, "F": 0.5}, {"Na": 0.3, "K": 0.2}]
_SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def random_structure(seed: int, max_sites: int = 8) -> tuple[Structure, float]:
    """A random, possibly disordered, sheared cell of 1..max_sites sites and a cutoff (angstrom) at which
    no site is isolated (the cutoff exceeds the shortest lattice vector, so every site sees an image)."""
    rng = np.random.default_rng(seed)
    n_sites = int(rng.integers(1, max_sites + 1))
    shear = 0.25 * rng.uniform(-1, 1, size=(3, 3))
    np.fill_diagonal(shear, 0.0)
    matrix = rng.uniform(2.5, 6.5, size=3)[:, None] * (np.eye(3) + shear)
    species = [_SPECIES[k] for k in rng.integers(len(_SPECIES), size=n_sites)]
    structure = Structure(Lattice(matrix), species, rng.uniform(-0.2, 1.2, size=(n_sites, 3)))
    shortest_A = float(np.linalg.norm(matrix, axis=1).min())
    return structure, max(3.5, shortest_A + 0.3)


def brute_force_pairs(structure: Structure, cutoff_A: float) -> dict[tuple[int, int, int, int, int], float]:
    """Every (centre, neighbour, image offset) within the cutoff, by looping over enough images."""
    matrix = structure.lattice.matrix
    volume = abs(np.linalg.det(matrix))
    heights = [volume / np.linalg.norm(np.cross(matrix[(k + 1) % 3], matrix[(k + 2) % 3])) for k in range(3)]
    # positions may lie outside the cell: add the spread of fractional coordinates to the image range
    spread = np.ptp(structure.frac_coords, axis=0)
    reach = [int(np.ceil(cutoff_A / heights[k] + spread[k])) + 1 for k in range(3)]
    coords = structure.cart_coords
    pairs = {}
    for offset in itertools.product(*(range(-r, r + 1) for r in reach)):
        shift = np.asarray(offset) @ matrix
        d = np.linalg.norm(coords[None, :, :] + shift - coords[:, None, :], axis=2)
        for i, j in zip(*np.nonzero(d <= cutoff_A), strict=True):
            if i != j or any(offset):
                pairs[(int(i), int(j), *offset)] = float(d[i, j])
    return pairs


def _pairs(structure: Structure, cutoff_A: float) -> dict[tuple[int, ...], float]:
    nl = neighbor_list(structure, cutoff_A)
    return {
        (int(i), int(j), *map(int, o)): float(d)
        for i, j, o, d in zip(nl.center, nl.neighbor, nl.image_offsets, nl.distances_A, strict=True)
    }


def test_simple_cubic_shells() -> None:
    """One atom per cell, cutoff beyond the cell: all edges are to its own images (6 at a, 12 at a*sqrt2)."""
    nl = neighbor_list(Structure(Lattice.cubic(2.5), ["Cu"], [[0, 0, 0]]), 3.6)
    assert len(nl) == 18
    assert np.all(nl.center == 0) and np.all(nl.neighbor == 0)
    lengths, counts = np.unique(nl.distances_A.round(8), return_counts=True)
    np.testing.assert_allclose(lengths, [2.5, 2.5 * np.sqrt(2)])
    assert counts.tolist() == [6, 12]


def test_rocksalt_first_shells() -> None:
    """NaCl, a = 5.64 A: 6 unlike neighbours at a/2, then 12 like neighbours at a/sqrt2."""
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    graph = structure_to_graph(nacl, cutoff_A=4.0)
    na, cl = element_index("Na"), element_index("Cl")
    for i in range(len(nacl)):
        mine = graph.edge_index[0] == i
        lengths = graph.edge_length[mine].double().numpy()
        neighbours = graph.x[graph.edge_index[1][mine]]
        first = np.isclose(lengths, 2.82, atol=1e-5)
        second = np.isclose(lengths, 5.64 / np.sqrt(2), atol=1e-5)
        assert first.sum() == 6 and second.sum() == 12 and (first | second).all()
        own = na if graph.x[i, na] == 1 else cl
        other = cl if own == na else na
        assert torch.all(neighbours[torch.from_numpy(first), other] == 1)
        assert torch.all(neighbours[torch.from_numpy(second), own] == 1)


@settings(max_examples=40, deadline=None)
@given(seed=_SEEDS)
def test_neighbor_list_matches_brute_force_over_images(seed: int) -> None:
    structure, cutoff_A = random_structure(seed)
    expected = brute_force_pairs(structure, cutoff_A)
    got = _pairs(structure, cutoff_A)
    assert got.keys() == expected.keys()
    for key, d in got.items():
        assert d == pytest.approx(expected[key], abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(seed=_SEEDS)
def test_graph_fields_are_consistent(seed: int) -> None:
    structure, cutoff_A = random_structure(seed)
    g = structure_to_graph(structure, cutoff_A)
    n = len(structure)
    assert g.num_nodes == n and g.x.shape == (n, VOCABULARY_SIZE) and g.cell.shape == (1, 3, 3)
    assert g.edge_index.dtype == torch.long and g.edge_index.shape[0] == 2
    assert torch.allclose(g.x.sum(dim=1), torch.ones(n))
    np.testing.assert_allclose(g.x.numpy(), site_occupancies(structure).toarray(), rtol=1e-6)
    src, dst = g.edge_index
    recomputed = g.pos[dst] - g.pos[src] + g.cell_offset @ g.cell[0]
    assert torch.allclose(recomputed, g.edge_vec, atol=1e-4)
    assert torch.allclose(g.edge_vec.norm(dim=1), g.edge_length, atol=1e-5)
    assert torch.all(g.edge_length > 0) and torch.all(g.edge_length <= cutoff_A + 1e-5)
    assert torch.equal(g.cell_offset, g.cell_offset.round())
    # every edge has its reverse, with the opposite offset
    forward = {(int(i), int(j), *map(int, o)) for i, j, o in zip(src, dst, g.cell_offset, strict=True)}
    assert forward == {(j, i, -a, -b, -c) for i, j, a, b, c in forward}


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@settings(max_examples=30, deadline=None)
@given(seed=_SEEDS)
def test_rotation_and_translation_leave_edge_lengths_unchanged(seed: int) -> None:
    structure, cutoff_A = random_structure(seed)
    rng = np.random.default_rng(seed)
    rot = _rotation(rng)
    shift_A = rng.uniform(-10, 10, size=3)
    base = structure_to_graph(structure, cutoff_A)

    moved = Structure(
        Lattice(structure.lattice.matrix @ rot.T),
        structure.species_and_occu,
        structure.cart_coords @ rot.T + shift_A,
        coords_are_cartesian=True,
    )
    g = structure_to_graph(moved, cutoff_A)
    assert torch.equal(g.edge_index, base.edge_index) and torch.equal(g.cell_offset, base.cell_offset)
    assert torch.allclose(g.edge_length, base.edge_length, atol=1e-4)
    # edge vectors rotate with the crystal (and ignore the translation)
    assert torch.allclose(g.edge_vec, base.edge_vec @ torch.from_numpy(rot.T).float(), atol=1e-4)
    assert torch.equal(g.x, base.x)

    # wrapping the sites back into the cell changes image offsets, not the (centre, neighbour, length) set
    wrapped = structure.copy()
    wrapped.translate_sites(list(range(len(structure))), shift_A, frac_coords=False, to_unit_cell=True)
    w = structure_to_graph(wrapped, cutoff_A)

    def edges(graph):
        rows = np.column_stack([graph.edge_index.T.numpy(), graph.edge_length.double().numpy()])
        return rows[np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0]))]

    a, b = edges(base), edges(w)
    assert a.shape == b.shape
    np.testing.assert_array_equal(a[:, :2], b[:, :2])
    np.testing.assert_allclose(a[:, 2], b[:, 2], atol=1e-4)


@settings(max_examples=30, deadline=None)
@given(seed=_SEEDS)
def test_permuting_sites_permutes_the_graph_and_nothing_else(seed: int) -> None:
    structure, cutoff_A = random_structure(seed)
    perm = np.random.default_rng(seed).permutation(len(structure))
    permuted = Structure.from_sites([structure[int(k)] for k in perm])
    base, g = structure_to_graph(structure, cutoff_A), structure_to_graph(permuted, cutoff_A)

    assert torch.equal(g.x, base.x[perm]) and torch.equal(g.pos, base.pos[perm])
    assert torch.equal(g.cell, base.cell)
    new_index = np.empty_like(perm)
    new_index[perm] = np.arange(len(perm))  # old site k is new site new_index[k]

    def table(edge_index, graph):
        return np.column_stack([edge_index.T, graph.cell_offset.numpy(), graph.edge_vec.numpy()])

    mapped = table(new_index[base.edge_index.numpy()], base)
    mine = table(g.edge_index.numpy(), g)
    order = lambda t: np.lexsort(t[:, 4::-1].T)  # noqa: E731  (centre, neighbour, offset)
    np.testing.assert_array_equal(mapped[order(mapped)], mine[order(mine)])


def _environments(graph, site: int) -> np.ndarray:
    """Rows (distance rounded to 1e-5 A, occupancy vector) of the site's neighbours, sorted."""
    mine = graph.edge_index[0] == site
    rows = np.column_stack(
        [graph.edge_length[mine].double().numpy().round(5), graph.x[graph.edge_index[1][mine]].numpy()]
    )
    return rows[np.lexsort(rows.T[::-1])]


@settings(max_examples=15, deadline=None)
@given(seed=_SEEDS)
def test_supercell_sites_keep_their_primitive_environment(seed: int) -> None:
    structure, cutoff_A = random_structure(seed, max_sites=5)
    supercell = structure * (2, 2, 2)
    primitive_graph = structure_to_graph(structure, cutoff_A)
    super_graph = structure_to_graph(supercell, cutoff_A)
    assert super_graph.edge_index.shape[1] == 8 * primitive_graph.edge_index.shape[1]

    # map every supercell site to its primitive parent by fractional position in the primitive cell
    frac = structure.lattice.get_fractional_coords(supercell.cart_coords)
    delta = frac[:, None, :] - structure.frac_coords[None, :, :]
    parent = np.argmin(np.abs(delta - np.rint(delta)).sum(axis=2), axis=1)
    assert np.bincount(parent, minlength=len(structure)).tolist() == [8] * len(structure)
    for site in range(len(supercell)):
        got = _environments(super_graph, site)
        expected = _environments(primitive_graph, int(parent[site]))
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=2e-5)


def test_disordered_site_enters_as_its_occupancy_vector() -> None:
    structure = Structure(Lattice.cubic(3.0), [{"Li": 0.25}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    g = structure_to_graph(row_to_structure(structure_to_row(structure, "x", "files")), 3.0)
    assert g.x[0, element_index("Li")] == pytest.approx(0.25)
    assert g.x[0, VACANCY_INDEX] == pytest.approx(0.75)
    assert g.x[1, element_index("O")] == 1.0


def test_isolated_atom_is_a_clear_error() -> None:
    structure = Structure(
        Lattice.cubic(20.0),
        ["Li", "O", "Cl"],
        [[0, 0, 0], [1.8, 0, 0], [10, 10, 10]],
        coords_are_cartesian=True,
    )
    with pytest.raises(IsolatedAtomError, match=r"site 2 \(Cl\).*3 angstrom") as info:
        structure_to_graph(structure, cutoff_A=3.0)
    assert isinstance(info.value, ValueError)
    assert (info.value.site_index, info.value.species, info.value.cutoff_A) == (2, "Cl", 3.0)


def test_bad_inputs_are_clear_errors() -> None:
    structure = Structure(Lattice.cubic(3.0), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    for cutoff in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="cutoff"):
            neighbor_list(structure, cutoff)
    coincident = Structure(Lattice.cubic(3.0), ["Li", "Na"], [[0, 0, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="coincide"):
        neighbor_list(coincident, 3.5)
    with pytest.raises(ValueError, match="no sites"):
        neighbor_list(Structure(Lattice.cubic(3.0), [], []), 3.5)


def test_batching_keeps_each_graph_intact() -> None:
    structures = [random_structure(seed)[0] for seed in range(3)]
    graphs = [structure_to_graph(s, 6.0) for s in structures]
    batch = batch_graphs(graphs)
    assert batch.num_graphs == 3 and batch.cell.shape == (3, 3, 3)
    assert batch.num_nodes == sum(len(s) for s in structures)
    assert batch.edge_index.shape[1] == sum(g.edge_index.shape[1] for g in graphs)
    src, dst = batch.edge_index
    assert torch.equal(batch.batch[src], batch.batch[dst])  # no edge crosses graphs
    cell_of_edge = batch.cell[batch.batch[src]]
    recomputed = batch.pos[dst] - batch.pos[src] + torch.einsum("ek,ekl->el", batch.cell_offset, cell_of_edge)
    assert torch.allclose(recomputed, batch.edge_vec, atol=1e-4)
    for k, g in enumerate(graphs):
        assert torch.equal(batch.get_example(k).edge_index, g.edge_index)
    with pytest.raises(ValueError, match="no graphs"):
        batch_graphs([])
