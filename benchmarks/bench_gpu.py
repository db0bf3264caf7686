"""GPU figures in one run: the potentials' throughput, their measured batch cap, and the BVSE landscape.

On a machine with a CUDA device this measures, in one process:

- **potential throughput**: energies of the same ordered generated cells as ``bench_inference throughput``
  (10-60 atoms, MP-sized) on the GPU, one structure per forward pass and batched by atom count at several
  caps and at the cap the product measures for the device (``default_max_atoms_per_batch``, the batch
  calibration); wall time with the device synchronised, atoms per second, peak GPU memory, and the largest
  energy difference from the same model on the CPU (first 32 cells);
- the **batch calibration** the product records for each model on this device (sizes, peak memory,
  atoms/s, the cap it chooses);
- the **BVSE landscape** of the bench_landscape cell (NASICON LiTi2(PO4)3, 108 sites) on the GPU against
  one CPU thread, best of three each, the largest difference between them on every grid point, and the
  whole barrier (landscape, percolation, jump distance, Frenkel estimate) with the landscape on the GPU.

Usage (on the GPU machine, from the repository root)::

    PYTHONPATH=. python benchmarks/bench_gpu.py [--publish] [--code-rev REV]

``--publish`` writes the section ``## On a GPU`` into BENCHMARKS.md. Without a CUDA device it stops with
a message.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO / "tests"))
sys.path.insert(0, str(_REPO / "benchmarks"))
from bench_inference import ordered_cells  # noqa: E402
from bvse_oracle import bundled_li_structures  # noqa: E402
from report import code_revision, publish  # noqa: E402
from timing import best_of  # noqa: E402

from screening.models import load_model  # noqa: E402
from screening.models.batch_calibration import calibration_for, memory_limit_bytes  # noqa: E402
from screening.transport.bvse import bvse_barriers  # noqa: E402
from screening.transport.landscape import bvse_landscape  # noqa: E402

TITLE = "## On a GPU"
CPU_REFERENCE_CELLS = 32


def potential_rows(models: list[str], n_structures: int, caps: list[int], repeats: int) -> list[str]:
    """Throughput table rows of each model on the GPU, and its batch calibration rows."""
    structures = ordered_cells(n_structures)
    n_atoms = sum(len(s) for s in structures)
    rows, calibrations = [], []
    for name in models:
        model = load_model(name, device="cuda")
        measured_cap = model.default_max_atoms_per_batch()  # runs (or reads) the batch calibration
        reference = np.asarray(
            load_model(name, device="cpu").predict_energy_per_atom(structures[:CPU_REFERENCE_CELLS])
        )
        model.predict_energy_per_atom(structures[:8])  # warm-up: lazy initialisation, kernels, allocator
        runs: dict[str, Callable[[], object]] = {
            "naive loop": lambda m=model: [m.predict_energy_per_atom([s])[0] for s in structures]
        }
        for cap in [*caps, measured_cap]:
            label = f"batched, cap {cap}" + (" (measured default)" if cap == measured_cap else "")
            runs[label] = lambda m=model, c=cap: m.predict_energy_per_atom(structures, max_atoms_per_batch=c)
        for label, run in runs.items():
            torch.cuda.reset_peak_memory_stats()
            energies, wall_s = best_of(run, repeats, cuda=True)
            peak_MiB = torch.cuda.max_memory_allocated() / 2**20
            diff = float(np.max(np.abs(np.asarray(energies)[:CPU_REFERENCE_CELLS] - reference)))
            rows.append(
                f"| {name} | {label} | {1000 * wall_s / n_structures:.2f} | {n_atoms / wall_s:,.0f} | "
                f"{peak_MiB:,.0f} | {diff:.1e} |"
            )
        calibration = calibration_for(model, memory_limit_bytes(model.device))
        calibrations.append(
            f"| {name} | {', '.join(map(str, calibration.sizes_atoms))} | "
            f"{', '.join(f'{p / 2**20:,.0f}' for p in calibration.peak_bytes)} | "
            f"{', '.join(f'{r:,.0f}' for r in calibration.atoms_per_s)} | "
            f"{calibration.bytes_per_atom / 2**20:.2f} | {measured_cap} |"
        )
    header = [
        f"{n_structures} ordered generated cells ({n_atoms / n_structures:.1f} atoms each; "
        f"`bench_inference`'s generator), best of {repeats}; energy difference against the same model on "
        f"the CPU over the first {CPU_REFERENCE_CELLS}.",
        "",
        "| model | strategy | ms/structure | atoms/s | peak GPU MiB | max abs diff vs CPU (eV/atom) |",
        "|---|---|---|---|---|---|",
    ]
    calibration_header = [
        "",
        "Batch calibration on this GPU (what a run measures once and then uses as its cap):",
        "",
        "| model | sizes (atoms) | peak MiB | atoms/s | MiB/atom | cap chosen |",
        "|---|---|---|---|---|---|",
    ]
    return header + rows + calibration_header + calibrations


def landscape_rows(repeats: int) -> list[str]:
    """The bench_landscape cell's landscape on the GPU against one CPU thread, and the whole barrier."""
    torch.set_num_threads(1)
    name, cell = min(dict(bundled_li_structures()).items(), key=lambda item: abs(len(item[1]) - 100))
    cpu_energy, cpu_s = best_of(lambda: bvse_landscape(cell, "Li", 1), repeats, cpu=True)
    bvse_landscape(cell, "Li", 1, device="cuda")  # warm-up
    gpu_energy, gpu_s = best_of(lambda: bvse_landscape(cell, "Li", 1, device="cuda"), repeats, cuda=True)
    _, cpu_barrier_s = best_of(lambda: bvse_barriers(cell, "Li", 1), repeats, cpu=True)
    _, gpu_barrier_s = best_of(lambda: bvse_barriers(cell, "Li", 1, device="cuda"), repeats, cuda=True)
    worst = float(np.abs(np.asarray(gpu_energy) - np.asarray(cpu_energy)).max())
    return [
        "",
        f"BVSE landscape of {name} ({len(cell)} sites, grid {'x'.join(map(str, np.shape(cpu_energy)))}), "
        f"best of {repeats}:",
        "",
        "| measure | one CPU thread | GPU | ratio |",
        "|---|---|---|---|",
        f"| landscape | {cpu_s:.3f} s | {gpu_s:.4f} s | {cpu_s / gpu_s:.0f}x |",
        f"| whole barrier (landscape, percolation, jump, Frenkel estimate) | {cpu_barrier_s:.3f} s | "
        f"{gpu_barrier_s:.3f} s | {cpu_barrier_s / gpu_barrier_s:.1f}x |",
        f"| largest difference GPU - CPU, every grid point | - | {worst:.1e} eV | - |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["sevennet-0", "chgnet-0.3.0"])
    parser.add_argument("--n-structures", type=int, default=256)
    parser.add_argument("--caps", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--code-rev", default=None, help="revision measured (default: git HEAD)")
    parser.add_argument("--publish", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_gpu: no CUDA device is visible")
    started = time.strftime("%Y-%m-%d")
    lines = [
        TITLE,
        "",
        f"`PYTHONPATH=. python benchmarks/bench_gpu.py --publish` at {args.code_rev or code_revision()}, "
        f"{started}: {torch.cuda.get_device_name()}, {platform.machine()} host with "
        f"{torch.get_num_threads()} CPU threads, Python {platform.python_version()}, torch {torch.__version__} "
        f"(the GPU machine's own build; the project pins 2.13.0).",
        "",
    ]
    lines += potential_rows(args.models, args.n_structures, args.caps, args.repeats)
    lines += landscape_rows(args.repeats)
    lines += [
        "",
        "- One structure per forward pass leaves the GPU waiting on kernel launches; the cap the product",
        "  measures for the device (the batch calibration) packs a pool of MP-sized cells into few passes,",
        "  which is what a run uses by default.",
        "- CHGNet's rate here includes its own graph converter, which runs on the CPU (as in",
        "  `bench_inference`): on a GPU that converter, not the network, sets its pace.",
        "- The landscape's pair sums are the GPU's to win; the whole barrier gains far less because the",
        "  percolation search and the Frenkel refinement (many pair sums of 27 points each, bound by latency)",
        "  stay on the CPU.",
        "- The energies agree with the CPU's to float32 rounding; the landscape to float64 rounding.",
    ]
    publish(TITLE, "\n".join(lines) + "\n", args.publish)


if __name__ == "__main__":
    main()
