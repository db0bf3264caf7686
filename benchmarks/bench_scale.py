"""Scale benchmark: screen a generated pool of Materials-Project-like Li structures end to end.

The pool (default 10,000 structures) is generated from the ordered Li compounds of the bundled set and of
the OBELiX training CIFs (``data/obelix-train``, 60 prototypes of at most 60 sites): each draw takes a prototype,
swaps every non-Li element with probability 1/2 for another of its substitution group (O/S/Se, F/Cl/Br/I,
Ti/Zr/Sn/Ge, ...), scales the cell by the largest ratio of swapped ionic radii (never below 1) and a random
+-2 % strain, and repeats the cell until it has at least 10 sites; prototypes whose cell would exceed 60 sites
are not used. A tenth of the pool is made disordered (one non-Li element becomes a 50/50 solid solution with another
of its group, charge neutral), so it goes through ``sample`` like published solid solutions. The pool is written as CIF files
and screened with the product's own commands: ``screening ingest --source files``, ``screening run``
(LocalCluster, default settings), ``screening rank``.

Reported: structures/s end to end and per command, busy seconds per stage (summed over workers, from
run.json), atoms/s through the potential (atoms of every forward pass, configurations included, over the
energy stage's busy time, which includes graph building), and a projection to 150,000 structures on N GPUs
from the measured per-structure CPU stage times and an assumed GPU rate for the potential (an input, not a
measurement, unless a GPU run replaces it).

Usage: ``python benchmarks/bench_scale.py [--n 10000] [--out DIR] [--gpu-atoms-per-s 5000] [--publish]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pymatgen.core import Element, Structure
from pymatgen.io.cif import CifWriter

from screening.bundled_records import load_bundled_entries

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO / "benchmarks"))
from report import code_revision, publish  # noqa: E402

TITLE = "## Scale: a generated pool of Materials-Project-like Li structures (issue 13)"

SUBSTITUTION_GROUPS = (
    ("O", "S", "Se"),
    ("F", "Cl", "Br", "I"),
    ("N", "P"),
    ("Mg", "Zn", "Ca"),
    ("Al", "Ga", "In", "Sc", "Y"),
    ("La", "Y", "Sc"),
    ("Ti", "Zr", "Sn", "Ge", "Si"),
    ("Nb", "Ta", "Sb"),
    ("Mn", "Fe", "Co", "Ni", "Cr", "V"),
)
OBELIX_CIFS = _REPO / "data" / "obelix-train" / "cifs"
MIN_SITES, MAX_SITES = 10, 60
DISORDERED_FRACTION = 0.1


def _group_of(symbol: str) -> tuple[str, ...] | None:
    return next((group for group in SUBSTITUTION_GROUPS if symbol in group), None)


def _radius_A(symbol: str) -> float:
    element = Element(symbol)
    return float(element.average_ionic_radius or element.atomic_radius or 1.0)


def _candidates() -> Iterator[Structure]:
    for entry in load_bundled_entries():
        yield entry.structure()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the CIFs' own parser notes
        for path in sorted(OBELIX_CIFS.glob("*.cif")):
            try:
                yield Structure.from_file(path)
            except Exception:  # noqa: BLE001 - a CIF pymatgen cannot read is not a prototype
                continue


def prototypes() -> list[Structure]:
    """Ordered Li compounds (bundled set and OBELiX training CIFs) that fit MAX_SITES once repeated to
    MIN_SITES."""
    chosen = []
    for structure in _candidates():
        structure.remove_oxidation_states()
        if "Li" not in {e.symbol for e in structure.composition.elements} or not structure.is_ordered:
            continue
        repeats = math.ceil(MIN_SITES / len(structure))
        if len(structure) * repeats <= MAX_SITES:
            chosen.append(structure)
    return chosen


def _make_solid_solution(structure: Structure, rng: np.random.Generator) -> None:
    """One non-Li element becomes a 50/50 mixture with another of its group on the same sites (isovalent,
    so the composition stays charge neutral), in place; a structure without such an element stays ordered."""
    present = sorted({e.symbol for e in structure.composition.elements} - {"Li"})
    choices = [s for s in present if _group_of(s) and len(_group_of(s)) > 1]
    if not choices:
        return
    symbol = str(rng.choice(choices))
    partner = str(rng.choice([s for s in _group_of(symbol) if s != symbol]))
    structure.replace_species({symbol: {symbol: 0.5, partner: 0.5}})


def generate_pool(n: int, seed: int = 0) -> list[tuple[str, Structure]]:
    """``n`` (id, structure) pairs, deterministic under ``seed`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    bases = prototypes()
    pool = []
    for index in range(n):
        base = bases[int(rng.integers(len(bases)))]
        symbols = sorted({e.symbol for e in base.composition.elements} - {"Li"})
        mapping = {}
        for symbol in symbols:
            group = _group_of(symbol)
            if group and rng.random() < 0.5:
                mapping[symbol] = str(rng.choice(group))
        structure = base.copy()
        if mapping:
            structure.replace_species(mapping)
        # the cell grows with the largest swapped radius, so that no bond comes out shorter than a plausible one
        ratio = max([1.0, *(_radius_A(mapping[s]) / _radius_A(s) for s in mapping)])
        structure.scale_lattice(structure.volume * ratio**3 * (1 + rng.uniform(-0.02, 0.02)) ** 3)
        repeats = math.ceil(MIN_SITES / len(structure))
        if repeats > 1:
            structure.make_supercell([repeats, 1, 1])
        if rng.random() < DISORDERED_FRACTION:
            _make_solid_solution(structure, rng)
        structure.relabel_sites()  # unique CIF labels after the supercell
        pool.append((f"scale-{index:05d}", structure))
    return pool


def _run(command: list[str], log: Path) -> float:
    start = time.perf_counter()
    with open(log, "a") as handle:
        subprocess.run(command, check=True, stdout=handle, stderr=subprocess.STDOUT)
    return time.perf_counter() - start


def measure(n: int, out: Path, seed: int) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    cifs = out / "cifs"
    start = time.perf_counter()
    pool = generate_pool(n, seed)
    cifs.mkdir(exist_ok=True)
    for name, structure in pool:
        CifWriter(structure).write_file(cifs / f"{name}.cif")
    generate_s = time.perf_counter() - start
    screening = str(Path(sys.executable).with_name("screening"))
    log = out / "commands.log"
    ingest_s = _run(
        [screening, "ingest", "--source", "files", str(cifs), "--out", str(out / "structures")], log
    )
    run_s = _run(
        [
            screening,
            "run",
            "--structures",
            str(out / "structures"),
            "--out",
            str(out / "run"),
            "--no-progress",
        ],
        log,
    )
    rank_s = _run([screening, "rank", str(out / "run")], log)
    manifest = json.loads((out / "run" / "run.json").read_text())
    attempt = manifest["attempts"][-1]
    return {
        "n_structures": n,
        "n_disordered": sum(not s.is_ordered for _, s in pool),
        "sites_mean": float(np.mean([len(s) for _, s in pool])),
        "cores": os.cpu_count(),
        "workers": attempt["cluster"]["n_workers"],
        "generate_s": generate_s,
        "ingest_s": ingest_s,
        "run_s": run_s,
        "rank_s": rank_s,
        "counts": manifest["counts"],
        "stage_seconds": attempt["stage_seconds"],
        "atoms_evaluated": attempt["atoms_evaluated"],
        "run_wall_s": attempt["wall_time_s"],
        "batch_calibrations": _calibrations(),
    }


def _calibrations() -> dict:
    """The batch measurements the run used (model, device, threads -> sizes, memory, throughput, cap)."""
    import torch

    from screening.models.batch_calibration import memory_limit_bytes, remembered_calibrations

    limit = memory_limit_bytes(torch.device("cpu"))
    return {
        key: {
            "sizes_atoms": calibration.sizes_atoms,
            "MiB": [round(p / 2**20) for p in calibration.peak_bytes],
            "atoms_per_s": [round(r) for r in calibration.atoms_per_s],
            "MiB_per_atom": round(calibration.bytes_per_atom / 2**20, 2),
            "cap_atoms_here": calibration.max_atoms_per_batch(limit),
        }
        for key, calibration in remembered_calibrations().items()
    }


def project(result: dict, structures: int, gpus: int, gpu_atoms_per_s: float) -> float:
    """Hours for ``structures`` on ``gpus`` GPUs, one worker each: the potential at ``gpu_atoms_per_s``, every
    other stage at its measured per-structure busy time on one CPU core (not accelerated)."""
    stages = result["stage_seconds"]
    other = sum(seconds for stage, seconds in stages.items() if stage != "energy") / result["n_structures"]
    potential = result["atoms_evaluated"] / result["n_structures"] / gpu_atoms_per_s
    return structures * (other + potential) / gpus / 3600


def markdown(result: dict, gpu_atoms_per_s: float) -> str:
    n = result["n_structures"]
    total = result["ingest_s"] + result["run_s"] + result["rank_s"]
    stages = result["stage_seconds"]
    busy = sum(stages.values())
    lines = [
        f"Pool: {n} generated structures ({result['n_disordered']} disordered, {result['sites_mean']:.1f} sites "
        f"on average), {result['cores']} CPU cores, {result['workers']} workers, SevenNet-0 on CPU, default "
        "settings (learned conductivity, sample).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| end to end (ingest + run + rank) | {total:.0f} s, {n / total:.2f} structures/s |",
        f"| ingest (CIF files) | {result['ingest_s']:.0f} s, {n / result['ingest_s']:.1f} structures/s |",
        f"| run | {result['run_s']:.0f} s, {n / result['run_s']:.2f} structures/s |",
        f"| rank | {result['rank_s']:.0f} s |",
        f"| atoms through the potential | {result['atoms_evaluated']} "
        f"({result['atoms_evaluated'] / stages.get('energy', math.nan):.0f} atoms/s of energy-stage busy time) |",
        f"| outcomes | {', '.join(f'{k}: {v}' for k, v in result['counts'].items())} |",
        "",
        "| stage | busy s (all workers) | share | ms per structure |",
        "|---|---|---|---|",
    ]
    for stage, seconds in stages.items():
        lines.append(f"| {stage} | {seconds:.1f} | {seconds / busy:.0%} | {1000 * seconds / n:.1f} |")
    lines += [
        "",
        f"Projection to 150,000 structures (potential at an assumed {gpu_atoms_per_s:.0f} atoms/s per GPU, "
        "the other stages at their measured CPU time per structure, one worker per GPU):",
        "",
        "| GPUs | hours |",
        "|---|---|",
    ]
    lines += [f"| {g} | {project(result, 150_000, g, gpu_atoms_per_s):.1f} |" for g in (1, 4, 8, 32)]
    lines += ["", "Batch sizes measured on this machine (`~/.cache/screening/batch-calibration.json`):", ""]
    lines += [
        "| model, device | sizes (atoms) | peak MiB | atoms/s | MiB/atom | cap here |",
        "|---|---|---|---|---|---|",
    ]
    for key, c in result["batch_calibrations"].items():
        lines.append(
            f"| {key.replace('|', ', ')} | {c['sizes_atoms']} | {c['MiB']} | {c['atoms_per_s']} | {c['MiB_per_atom']} | {c['cap_atoms_here']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=_REPO / "runs" / "bench-scale")
    parser.add_argument("--gpu-atoms-per-s", type=float, default=5000.0)
    parser.add_argument("--publish", action="store_true", help="write the section into BENCHMARKS.md")
    args = parser.parse_args()
    result = measure(args.n, args.out, args.seed)
    print(json.dumps(result, indent=1))
    command = f"`PYTHONPATH=. .venv/bin/python benchmarks/bench_scale.py --n {args.n} --publish`"
    section = f"{TITLE}\n\n{command} at {code_revision()}.\n\n{markdown(result, args.gpu_atoms_per_s)}\n"
    publish(TITLE, section, args.publish)


if __name__ == "__main__":
    main()
