"""Throughput of periodic crystal-graph construction (issue 3).

Times :func:`screening.graphs.structure_to_graph` (neighbour list + occupancy vectors + tensors) on
generated cells of Materials-Project size (10-60 atoms at 12-22 A^3/atom, some with disordered sites) and,
when present, on the bundled data set, in one process. Prints a Markdown table for ``BENCHMARKS.md``.

Run from the repository root::

    python -m benchmarks.bench_graphs [--n-structures 1000] [--cutoff 5.0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Sequence

import numpy as np
import pymatgen.core
import torch
from pymatgen.core import Lattice, Structure

from benchmarks.timing import best_of
from screening.graphs import DEFAULT_CUTOFF_A, batch_graphs, neighbor_list, structure_to_graph
from screening.occupancy import site_occupancies

_ELEMENTS = ["Li", "Na", "K", "Mg", "Ca", "Al", "Ga", "B", "Si", "Ge", "P", "S", "Se", "O", "N", "F"]
_ELEMENTS += ["Cl", "Br", "I", "La", "Y", "Sc", "Zr", "Ti", "Nb", "Ta", "Mn", "Fe", "Co", "Ni", "Cu", "Zn"]

#: Closest approach allowed between generated sites, angstrom.
_MIN_DISTANCE_A = 1.6


def random_cell(rng: np.random.Generator, n_sites: int, disorder_fraction: float = 0.1) -> Structure:
    """A random cell of ``n_sites`` sites at a realistic density (12-22 A^3/atom), sites at least
    1.6 A apart; with probability ``disorder_fraction`` a quarter of its sites are partially occupied or
    mixed."""
    ratios = rng.uniform(0.7, 1.4, size=3)
    angles = rng.uniform(75, 105, size=3)
    lattice = Lattice.from_parameters(*ratios, *angles)
    volume_A3 = n_sites * rng.uniform(12, 22)
    lattice = lattice.scale(volume_A3)
    frac: list[np.ndarray] = []
    while len(frac) < n_sites:
        candidate = rng.random(3)
        if frac and lattice.get_all_distances(candidate, np.array(frac)).min() < _MIN_DISTANCE_A:
            continue
        frac.append(candidate)
    species: list[str | dict[str, float]] = [str(e) for e in rng.choice(_ELEMENTS, size=n_sites)]
    if rng.random() < disorder_fraction:
        for i in rng.choice(n_sites, size=max(1, n_sites // 4), replace=False):
            other = str(rng.choice(_ELEMENTS))
            species[i] = {species[i]: 0.5} if other == species[i] else {species[i]: 0.5, other: 0.3}
    return Structure(lattice, species, np.array(frac))


def generated_cells(n_structures: int, seed: int = 0) -> list[Structure]:
    """``n_structures`` random cells of 10-60 sites (uniformly drawn)."""
    rng = np.random.default_rng(seed)
    return [random_cell(rng, int(rng.integers(10, 61))) for _ in range(n_structures)]


def bundled_structures() -> list[Structure]:
    """The ok rows of the bundled set as structures (empty if the bundled source is not there)."""
    try:
        from screening.sources.bundled import iter_bundled_rows
    except ImportError:
        return []
    from screening.schema import STATUS_OK, Col
    from screening.structures import row_to_structure

    try:
        rows = list(iter_bundled_rows())
    except FileNotFoundError:  # the source is there but its data folder is not (yet)
        return []
    return [row_to_structure(row) for row in rows if row[Col.STATUS] == STATUS_OK]


def measure(structures: Sequence[Structure], cutoff_A: float, repeats: int, batch_size: int = 64) -> dict:
    """Timings (best of ``repeats``) of graph construction and its parts over ``structures``."""
    ok, graphs, failures = [], [], 0
    for s in structures:  # warm-up; keeps the structures that make a graph, and their graphs
        try:
            graphs.append(structure_to_graph(s, cutoff_A))
            ok.append(s)
        except ValueError:
            failures += 1
    n_atoms = sum(len(s) for s in ok)
    graph_s = best_of(lambda: [structure_to_graph(s, cutoff_A) for s in ok], repeats)[1]
    graph_cpu_s = best_of(lambda: [structure_to_graph(s, cutoff_A) for s in ok], repeats, cpu=True)[1]
    neighbors_s = best_of(lambda: [neighbor_list(s, cutoff_A) for s in ok], repeats)[1]
    occupancy_s = best_of(lambda: [site_occupancies(s) for s in ok], repeats)[1]
    chunks = [graphs[k : k + batch_size] for k in range(0, len(graphs), batch_size)]
    batch_s = best_of(lambda: [batch_graphs(c) for c in chunks], repeats)[1]
    n_edges = sum(g.edge_index.shape[1] for g in graphs)
    return {
        "structures": len(ok),
        "failed": failures,
        "atoms": n_atoms,
        "edges_per_atom": n_edges / n_atoms,
        "graph_s": graph_s,
        "structures_per_s": len(ok) / graph_s,
        "atoms_per_s": n_atoms / graph_s,
        "structures_per_cpu_s": len(ok) / graph_cpu_s,
        "neighbors_share": neighbors_s / graph_s,
        "occupancy_share": occupancy_s / graph_s,
        "batch_us_per_graph": 1e6 * batch_s / len(graphs),
    }


def _row(name: str, m: dict) -> str:
    return (
        f"| {name} | {m['structures']} ({m['failed']} failed) | {m['atoms'] / m['structures']:.1f} | "
        f"{m['edges_per_atom']:.1f} | {m['graph_s']:.3f} | {m['structures_per_s']:.0f} | "
        f"{m['atoms_per_s']:.0f} | {m['structures_per_cpu_s']:.0f} | {100 * m['neighbors_share']:.0f}% / {100 * m['occupancy_share']:.0f}% | "
        f"{m['batch_us_per_graph']:.0f} |"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-structures", type=int, default=1000)
    parser.add_argument("--cutoff", type=float, default=DEFAULT_CUTOFF_A, help="angstrom")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    sets = {f"generated, 10-60 atoms (seed {args.seed})": generated_cells(args.n_structures, args.seed)}
    bundled = bundled_structures()
    if bundled:
        sets["bundled set"] = bundled
    print(
        f"cutoff {args.cutoff:g} A, one process, torch threads 1, best of {args.repeats}; "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"torch {torch.__version__}, pymatgen {pymatgen.core.__version__}\n"
    )
    print(
        "| set | structures | atoms/structure | edges/atom | time (s) | structures/s | atoms/s | structures/CPU-s "
        "| neighbour list / occupancy share | batching (us/graph) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, structures in sets.items():
        print(_row(name, measure(structures, args.cutoff, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
