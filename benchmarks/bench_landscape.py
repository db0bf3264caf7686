"""BVSE landscape: the torch array code against the neighbour-list code it replaced, in one run.

For the bundled Li structure closest to 100 sites (NASICON LiTi2(PO4)3, 108 sites, a 43 x 43 x 105 grid at
0.2 A) this measures, on one CPU thread, the CPU time of the landscape by the old neighbour-list sum
(``tests/bvse_oracle.py``) and by :mod:`screening.transport.pair_sums` (best of three each), their ratio, the
largest difference over every grid point of every bundled Li structure at the default 0.2 A spacing, and the
time of the whole barrier (landscape, percolation, jump distance, Frenkel estimate). With a CUDA device the
landscape and the barrier are also timed there.

Usage: ``OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/bench_landscape.py [--publish]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO / "tests"))
sys.path.insert(0, str(_REPO / "benchmarks"))
from bvse_oracle import bundled_li_structures, grid_frac_coords, oracle_site_energy_eV  # noqa: E402
from report import code_revision, publish  # noqa: E402
from timing import best_of  # noqa: E402

from screening.transport.bvse import bvse_barriers  # noqa: E402
from screening.transport.landscape import (  # noqa: E402
    LandscapeError,
    bvse_landscape,
    framework_terms,
    grid_shape,
)

TITLE = "## BVSE landscape as array code (issue 13)"


def _oracle_grid(structure) -> np.ndarray:
    terms = framework_terms(structure, "Li", 1)
    shape = grid_shape(structure)
    points = structure.lattice.get_cartesian_coords(grid_frac_coords(shape))
    return oracle_site_energy_eV(terms, structure.lattice.matrix, points).reshape(shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publish", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    structures = dict(bundled_li_structures())
    name, cell = min(structures.items(), key=lambda item: abs(len(item[1]) - 100))
    old = best_of(lambda: _oracle_grid(cell), cpu=True)[1]
    new = best_of(lambda: bvse_landscape(cell, "Li", 1), cpu=True)[1]
    barrier = best_of(lambda: bvse_barriers(cell, "Li", 1), cpu=True)[1]
    worst, points = 0.0, 0
    for structure in structures.values():
        try:
            expected = _oracle_grid(structure)
        except LandscapeError:
            continue
        worst = max(worst, float(np.abs(bvse_landscape(structure, "Li", 1) - expected).max()))
        points += expected.size
    lines = [
        TITLE,
        "",
        f"`OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/bench_landscape.py --publish` at "
        f"{code_revision()}; one CPU thread of the 2-core machine, best of three.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| cell | {name}, {len(cell)} sites, grid {'x'.join(map(str, grid_shape(cell)))} at 0.2 A |",
        f"| landscape, neighbour list (before) | {old:.2f} s CPU |",
        f"| landscape, torch array code (now) | {new:.2f} s CPU |",
        f"| ratio | {old / new:.1f}x less CPU time (target 10x) |",
        f"| whole barrier now (landscape, percolation, jump, Frenkel estimate) | {barrier:.2f} s CPU |",
        f"| largest difference, every grid point of {len(structures)} bundled Li structures "
        f"({points} points) | {worst:.1e} eV (target 1e-3) |",
    ]
    if torch.cuda.is_available():
        gpu_landscape = best_of(lambda: bvse_landscape(cell, "Li", 1, device="cuda"), cuda=True)[1]
        gpu_barrier = best_of(lambda: bvse_barriers(cell, "Li", 1, device="cuda"), cuda=True)[1]
        lines += [
            f"| landscape on {torch.cuda.get_device_name()} | {gpu_landscape:.3f} s |",
            f"| whole barrier, landscape on the GPU | {gpu_barrier:.3f} s (target well under 0.1 s) |",
        ]
    else:
        lines.append(
            "| on a GPU | measured by `benchmarks/bench_gpu.py` on a GPU machine: section On a GPU |"
        )
    lines += [
        "",
        "- What it does: the grid is cut into blocks of 6x6x6 points; each block gets the periodic images within",
        "  the cutoff plus its radius of its centre, padded to a common length; a chunk of blocks is one dense",
        "  float64 tensor (blocks x points x candidates) of distances and pair energies, summed over candidates",
        "  (`screening/transport/pair_sums.py`). The same code runs on the worker's GPU.",
        "- Why not 10x on this CPU: the work is ~3.3e7 pairs within 8 A (4.7-6.6e7 with the block padding),",
        "  and per element this machine's torch kernels cost (float64, measured) 2.3 ns for exp, 7 ns for erfc,",
        "  5 ns for cdist and 2.5 ns for the cutoff mask; the neighbour list cost 65-80 ns per pair. Tried and",
        "  rejected: float32 (1.3x faster, but 1.6e-3 eV off on grid points near nuclei, over the 1 meV bar),",
        "  torch.compile of the pair kernel (50 ns per pair, slower than eager), blocks of 4 or 8 points",
        "  (no faster than 6). The next step would be a fused kernel (Triton on the GPU, C++ on the CPU).",
        "- The Frenkel search reuses one set of image tables per structure (it used to rebuild them for each",
        "  of ~160 evaluations). The percolation search is unchanged and is now about half of the barrier.",
    ]
    publish(TITLE, "\n".join(lines) + "\n", args.publish)


if __name__ == "__main__":
    main()
