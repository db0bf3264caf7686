"""Model inference throughput and the sample-vs-meanfield disorder comparison (issue 3).

Two measurements, each printing a Markdown table for ``BENCHMARKS.md``:

- ``throughput``: for each registered model, energies of the same ordered cells (generated, MP-sized,
  10-60 atoms) with atom-count batching at several caps versus a naive loop of one structure per forward
  pass, in one run; reports wall and CPU time per structure, the speed-up over the naive loop, and the
  largest energy difference from it (they must agree to 1e-5 eV/atom).
- ``disorder``: every disordered structure of the bundled set under ``sample`` (K configurations) and
  ``meanfield``; reports the gap meanfield - sample in meV/atom next to the sample's own spread.

Run from the repository root::

    python -m benchmarks.bench_inference throughput [--models sevennet-0 ...] [--n-structures 48] [--caps 64 1024]
    python -m benchmarks.bench_inference disorder [--models sevennet-0 chgnet-0.3.0] [--n-samples 8]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from pymatgen.core import Structure

from benchmarks.bench_graphs import random_cell
from screening.models import (
    available_models,
    load_model,
    predict_energies,
    sample_configurations,
)
from screening.models.disorder import DEFAULT_MAX_SUPERCELL_SITES


def _timed(function: Callable[[], object]) -> tuple[object, float, float]:
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def ordered_cells(n_structures: int, seed: int = 0) -> list[Structure]:
    """Ordered generated cells of 10-60 sites (the graph benchmark's generator, no disorder)."""
    rng = np.random.default_rng(seed)
    return [random_cell(rng, int(rng.integers(10, 61)), disorder_fraction=0.0) for _ in range(n_structures)]


def throughput(models: list[str], n_structures: int, caps: list[int], repeats: int) -> None:
    """Atom-count batching at each cap versus one structure per forward pass, for each model (best of
    ``repeats``, interleaved), printed as a Markdown table."""
    structures = ordered_cells(n_structures)
    n_atoms = sum(len(s) for s in structures)
    print(f"{n_structures} ordered generated cells, {n_atoms / n_structures:.1f} atoms/structure, ", end="")
    print(f"torch threads {torch.get_num_threads()}, best of {repeats}")
    print("| model | load (s) | strategy | ms/structure wall | ms/structure CPU | atoms/CPU-s |", end="")
    print(" speed-up vs naive (CPU) | max abs diff vs naive (eV/atom) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in models:
        model, load_s, _ = _timed(lambda name=name: load_model(name, device="cpu"))
        model.predict_energy_per_atom(structures[:2])  # warm-up (lazy initialisation, allocator)
        runs: dict[str, Callable[[], object]] = {
            "naive loop": lambda m=model: np.array([m.predict_energy_per_atom([s])[0] for s in structures])
        }
        for cap in caps:
            runs[f"batched, cap {cap}"] = lambda m=model, c=cap: m.predict_energy_per_atom(
                structures, max_atoms_per_batch=c
            )
        best: dict[str, tuple[np.ndarray, float, float]] = {}
        for _ in range(repeats):
            for label, run in runs.items():
                energies, wall_s, cpu_s = _timed(run)
                if label not in best or cpu_s < best[label][2]:
                    best[label] = (np.asarray(energies), wall_s, cpu_s)
        naive_energies, _, naive_cpu = best["naive loop"]
        for label, (energies, wall_s, cpu_s) in best.items():
            diff = float(np.max(np.abs(energies - naive_energies)))
            print(
                f"| {name} | {load_s:.1f} | {label} | {1000 * wall_s / n_structures:.1f} | "
                f"{1000 * cpu_s / n_structures:.1f} | {n_atoms / cpu_s:,.0f} | {naive_cpu / cpu_s:.2f} | {diff:.1e} |",
                flush=True,
            )


def _bundled_disordered() -> list[tuple[str, Structure]]:
    from screening.sources.bundled import iter_bundled_rows
    from screening.structures import row_to_structure

    found = []
    for row in iter_bundled_rows():
        if row.get("status") != "ok":
            continue
        structure = row_to_structure(row)
        if not structure.is_ordered:
            found.append((str(row["id"]).removeprefix("bundled-"), structure))
    return found


def disorder(models: list[str], n_samples: int, seed: int, max_supercell_sites: int) -> None:
    """Sample versus meanfield on the bundled disordered structures, printed as Markdown tables."""
    named = _bundled_disordered()
    structures = [s for _, s in named]
    supercell_atoms = [len(sample_configurations(s, 1, seed=seed).structures[0]) for s in structures]
    for name in models:
        model = load_model(name, device="cpu")
        sample, sample_s, sample_cpu = _timed(
            lambda m=model: predict_energies(
                m, structures, disorder_strategy="sample", n_samples=n_samples, seed=seed,
                max_supercell_sites=max_supercell_sites,
            )
        )  # fmt: skip
        meanfield, meanfield_s, meanfield_cpu = _timed(
            lambda m=model: predict_energies(m, structures, disorder_strategy="meanfield")
        )
        print(
            f"\n{name}: K = {n_samples}, seed {seed}; sample {sample_s:.0f} s wall ({sample_cpu:.0f} s CPU), ",
            end="",
        )
        print(f"meanfield {meanfield_s:.1f} s wall ({meanfield_cpu:.1f} s CPU)")
        print(
            "| structure | sites | atoms/config | composition error | sample (eV/atom) | sample std (meV/atom) |",
            end="",
        )
        print(" meanfield (eV/atom) | gap mf - sample (meV/atom) |")
        print("|---|---|---|---|---|---|---|---|")
        gaps = []
        for (label, structure), atoms, s, m in zip(named, supercell_atoms, sample, meanfield, strict=True):
            if s.error or m.error:
                print(f"| {label} | {len(structure)} | {atoms} | - | {s.error or ''} | | {m.error or ''} | |")
                continue
            gap_meV = 1000 * (m.energy_per_atom_eV - s.energy_per_atom_eV)
            gaps.append(gap_meV)
            print(
                f"| {label} | {len(structure)} | {atoms} | {s.composition_error:.1e} | {s.energy_per_atom_eV:.4f} | "
                f"{1000 * s.energy_per_atom_std_eV:.1f} | {m.energy_per_atom_eV:.4f} | {gap_meV:+.0f} |"
            )
        stds = [1000 * s.energy_per_atom_std_eV for s in sample if not s.error]
        abs_gaps = [abs(g) for g in gaps]
        print(
            f"\n{name}: |gap| mean {statistics.mean(abs_gaps):.0f}, median {statistics.median(abs_gaps):.0f}, "
            f"max {max(abs_gaps):.0f} meV/atom over {len(gaps)} structures; sample std median "
            f"{statistics.median(stds):.1f} meV/atom; signed gap mean {statistics.mean(gaps):+.0f} meV/atom",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    commands = parser.add_subparsers(dest="command", required=True)
    tp = commands.add_parser("throughput")
    tp.add_argument("--models", nargs="+", default=available_models())
    tp.add_argument("--n-structures", type=int, default=48)
    tp.add_argument("--caps", type=int, nargs="+", default=[64, 256, 1024])
    tp.add_argument("--repeats", type=int, default=2)
    dis = commands.add_parser("disorder")
    dis.add_argument("--models", nargs="+", default=["sevennet-0", "chgnet-0.3.0"])
    dis.add_argument("--n-samples", type=int, default=8)
    dis.add_argument("--seed", type=int, default=0)
    dis.add_argument("--max-supercell-sites", type=int, default=DEFAULT_MAX_SUPERCELL_SITES)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}"
    )
    if args.command == "throughput":
        throughput(args.models, args.n_structures, args.caps, args.repeats)
    else:
        disorder(args.models, args.n_samples, args.seed, args.max_supercell_sites)


if __name__ == "__main__":
    main()
