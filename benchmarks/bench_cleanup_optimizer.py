"""Which optimizer should the clean-up use? FIRE (the default) against BFGS on published structures:
a seeded random sample of the OBELiX CIFs that contain Li, each relaxed as the product's clean-up does
(``relaxed_framework``, SevenNet-0, fixed cell, fmax 0.05 eV/A, at most 100 steps), once per optimizer.

    nice .venv/bin/python benchmarks/bench_cleanup_optimizer.py --write

Reported per structure: whether the relaxation converged within the cap, the steps taken (one force call
each: the cost), the relaxed energy and the bvse migration barrier after each. The question is a priori:
the clean-up is meant to reach the potential's minimum, so the optimizer that gets there within the cap
more often, and in fewer steps, is the better default; the barriers show what an unconverged relaxation
costs. No conductivity is scored here.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO / "benchmarks"))

from bench_conductivity import DATA_DIR, load_obelix, obelix_id  # noqa: E402
from report import code_revision, publish  # noqa: E402

SECTION_TITLE = "## Clean-up optimizer: FIRE against BFGS (issue 9)"
OPTIMIZERS = ("FIRE", "BFGS")
SAMPLE_SEED = 0
#: Relaxed energies closer than this (eV/atom) are the same minimum.
SAME_MINIMUM_eV_PER_ATOM = 1e-3


def sample_rows(n: int, seed: int = SAMPLE_SEED) -> list[dict]:
    """``n`` ingested OBELiX rows that contain Li, drawn with ``seed``, in id order."""
    rows, _ = load_obelix(DATA_DIR, workers=1)
    usable = sorted(
        (r for r in rows if r.get("status") == "ok" and "Li" in list(r.get("elements") or ())),
        key=obelix_id,
    )
    chosen = np.random.default_rng(seed).choice(len(usable), size=min(n, len(usable)), replace=False)
    return [usable[i] for i in sorted(chosen)]


def measure(row: dict, model) -> dict:
    """Both optimizers' clean-up of one structure: convergence, steps, seconds, energy, barrier."""
    from screening.structures import row_to_structure
    from screening.transport.bvse import bvse_barriers
    from screening.transport.cleanup import CleanupOptions, relaxed_framework
    from screening.transport.oxidation import assign_oxidation_states

    structure = row_to_structure(row)
    result = {
        "id": obelix_id(row),
        "formula": structure.composition.reduced_formula,
        "nsites": len(structure),
    }
    for name in OPTIMIZERS:
        start = time.perf_counter()
        cleaned = relaxed_framework(structure, model, CleanupOptions(optimizer=name))
        seconds = time.perf_counter() - start
        barrier = bvse_barriers(assign_oxidation_states(cleaned.structure).structure, "Li", 1).ea_eV
        result[name] = {
            "converged": cleaned.converged,
            "steps": cleaned.n_steps,
            "seconds": seconds,
            "energy": cleaned.energy_per_atom_eV,
            "barrier": barrier,
        }
    print(result, file=sys.stderr, flush=True)
    return result


def render(results: list[dict], failures: list[tuple[str, str]]) -> str:
    fire, bfgs = ([r[name] for r in results] for name in OPTIMIZERS)
    lines = [
        SECTION_TITLE,
        "",
        f"`nice .venv/bin/python benchmarks/bench_cleanup_optimizer.py --write` ({datetime.date.today()}, code "
        f"{code_revision()}). {len(results) + len(failures)} OBELiX CIFs that contain Li, drawn at random (seed "
        f"{SAMPLE_SEED}), each cleaned up as the product does (`relaxed_framework`, SevenNet-0, fixed cell, fmax "
        "0.05 eV/A, at most 100 steps, displacements averaged over the space group) with each optimizer. "
        "Steps are force calls (the cost; seconds on 2 shared CPU cores, one thread). Energy: the relaxed "
        "configuration's, eV/atom; barrier: bvse migration barrier after the clean-up, eV.",
        "",
        "| id | formula | atoms | FIRE: converged, steps | BFGS: converged, steps | E(BFGS) - E(FIRE), meV/atom "
        "| barrier FIRE | barrier BFGS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        f, b = r["FIRE"], r["BFGS"]
        lines.append(
            f"| {r['id']} | {r['formula']} | {r['nsites']} | {'yes' if f['converged'] else 'no'}, {f['steps']} | "
            f"{'yes' if b['converged'] else 'no'}, {b['steps']} | {1000 * (b['energy'] - f['energy']):+.1f} | "
            f"{f['barrier']:.3f} | {b['barrier']:.3f} |"
        )
    both = [(f, b) for f, b in zip(fire, bfgs, strict=True) if f["converged"] and b["converged"]]
    lower = sum(b["energy"] < f["energy"] - SAME_MINIMUM_eV_PER_ATOM for f, b in zip(fire, bfgs, strict=True))
    higher = sum(
        b["energy"] > f["energy"] + SAME_MINIMUM_eV_PER_ATOM for f, b in zip(fire, bfgs, strict=True)
    )
    lines += [
        "",
        f"Converged within 100 steps: FIRE {sum(f['converged'] for f in fire)}/{len(fire)}, BFGS "
        f"{sum(b['converged'] for b in bfgs)}/{len(bfgs)}. Steps in all: FIRE {sum(f['steps'] for f in fire)}, "
        f"BFGS {sum(b['steps'] for b in bfgs)} (median {statistics.median(f['steps'] for f in fire):.0f} against "
        f"{statistics.median(b['steps'] for b in bfgs):.0f}); seconds in all: FIRE "
        f"{sum(f['seconds'] for f in fire):.0f}, BFGS {sum(b['seconds'] for b in bfgs):.0f}. BFGS ends more than "
        f"{1000 * SAME_MINIMUM_eV_PER_ATOM:g} meV/atom lower in {lower}, higher in {higher}. Where both converged "
        f"({len(both)}), the barriers differ by at most "
        f"{max((abs(f['barrier'] - b['barrier']) for f, b in both), default=float('nan')):.3f} eV.",
    ]
    if failures:
        lines.append("Failed: " + "; ".join(f"{i}: {reason}" for i, reason in failures) + ".")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=16, help="structures drawn")
    parser.add_argument("--write", action="store_true", help="replace the section in BENCHMARKS.md")
    args = parser.parse_args(argv)
    import torch

    from screening.models import load_model

    torch.set_num_threads(1)
    model = load_model("sevennet-0", device="cpu")
    results, failures = [], []
    for k, row in enumerate(sample_rows(args.n), start=1):
        print(f"[{k}/{args.n}] {obelix_id(row)}", file=sys.stderr, flush=True)
        try:
            results.append(measure(row, model))
        except Exception as exc:  # noqa: BLE001 - a structure that fails is reported, not fatal
            failures.append((obelix_id(row), f"{type(exc).__name__}: {exc}"))
    publish(SECTION_TITLE, render(results, failures), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
