"""Transport benchmark: bvse against the published conductivities of the bundled set, and bvse speed.

Run with ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_transport.py`` (one core). Prints a
Markdown section for BENCHMARKS.md: Spearman rank correlation of predicted and published log10 sigma(RT),
the fraction of superionic conductors (published sigma >= 1e-4 S/cm) ranked in the top half, the MAE of
Ea where a published Ea exists, the bvse wall time of a ~100-atom cell and, when bvlain is installed (test
extra), the percolation barriers of five ordered structures next to bvlain's at the same 0.2 A resolution. Parameters are the published
softBV set; nothing is tuned to the bundled values.
"""

from __future__ import annotations

import math
import os
import statistics
import time

import numpy as np
from scipy.stats import spearmanr

from screening.schema import STATUS_OK, Col
from screening.sources.bundled import iter_bundled_rows
from screening.structures import row_to_structure
from screening.transport import TransportError, compute_transport

SUPERIONIC_S_PER_CM = 1e-4


def _compare() -> tuple[list[dict], dict[str, int]]:
    records, counts = [], {"ok": 0, "not applicable": 0, "failed": 0}
    for row in iter_bundled_rows():
        if row[Col.STATUS] != STATUS_OK:
            continue
        structure = row_to_structure(row)
        start = time.perf_counter()
        try:
            result = compute_transport(structure, temperature_K=298.15)
        except TransportError as exc:
            counts["failed"] += 1
            print(f"  failed: {row[Col.NAME]}: {exc}")
            continue
        counts[result[Col.STATUS]] += 1
        if result[Col.STATUS] != STATUS_OK:
            continue
        records.append(
            {
                "name": row[Col.NAME],
                "nsites": row[Col.NSITES],
                "seconds": time.perf_counter() - start,
                "ea": result[Col.EA],
                "log_sigma": result[Col.LOG10_SIGMA],
                "exp_sigma": row.get(Col.EXP_SIGMA_RT),
                "exp_ea": row.get(Col.EXP_EA),
            }
        )
    return records, counts


def _timing_100_atoms(repeats: int = 3) -> tuple[str, int, float]:
    """Median bvse wall time (s) of the bundled structure closest to 100 sites (a supercell if needed)."""
    rows = [r for r in iter_bundled_rows() if r[Col.STATUS] == STATUS_OK and "Li" in r[Col.ELEMENTS]]
    best = min(rows, key=lambda r: abs(r[Col.NSITES] - 100))
    structure = row_to_structure(best)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        compute_transport(structure)
        times.append(time.perf_counter() - start)
    return best[Col.NAME], len(structure), statistics.median(times)


BVLAIN_IDS = (
    "bundled-Li3N",
    "bundled-Li2S",
    "bundled-LiFePO4",
    "bundled-LiCoO2",
    "bundled-LiTi2(PO4)3",
)


def _fmt(ea: float | None) -> str:
    return "none" if ea is None or math.isinf(ea) else f"{ea:.3f}"


def _bvlain_table(resolution_A: float = 0.2) -> None:
    """Print our 1D/2D/3D barriers next to bvlain's (softBV covalent radii) for ordered structures."""
    import warnings

    try:
        from bvlain import Lain
    except ImportError:
        print("\n(bvlain not installed: cross-check table skipped)")
        return
    from screening.bundled_records import load_bundled_entries
    from screening.transport.bvse import bvse_barriers
    from screening.transport.oxidation import assign_oxidation_states

    entries = {e.id: e for e in load_bundled_entries()}
    print(f"\n| ordered structure ({resolution_A} A grid) | E_1D / E_2D / E_3D ours (eV) | bvlain (eV) |")
    print("|---|---|---|")
    for entry_id in BVLAIN_IDS:
        structure = assign_oxidation_states(entries[entry_id].structure())[0]
        ours = bvse_barriers(structure, "Li", 1, grid_spacing_A=resolution_A)
        lain = Lain(verbose=False)
        lain.read_structure(structure, oxi_check=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lain.bvse_distribution(
                mobile_ion="Li1+", resolution=resolution_A, r_cut=10.0, use_softbv_covalent_radii=True
            )
            theirs = lain.percolation_barriers(encut=5.0)
        mine = " / ".join(_fmt(e) for e in (ours.ea_1d_eV, ours.ea_2d_eV, ours.ea_3d_eV))
        other = " / ".join(_fmt(theirs[f"E_{d}D"]) for d in (1, 2, 3))
        print(f"| {entries[entry_id].name} | {mine} | {other} |")


def main() -> None:
    records, counts = _compare()
    with_sigma = [r for r in records if r["exp_sigma"] is not None and r["exp_sigma"] > 0]
    predicted = np.array([r["log_sigma"] for r in with_sigma])
    published = np.array([math.log10(r["exp_sigma"]) for r in with_sigma])
    rho = spearmanr(predicted, published).statistic if len(with_sigma) > 2 else float("nan")
    order = np.argsort(-predicted, kind="stable")
    top_half = set(order[: math.ceil(len(order) / 2)].tolist())
    superionic = [i for i, r in enumerate(with_sigma) if r["exp_sigma"] >= SUPERIONIC_S_PER_CM]
    frac_top = sum(i in top_half for i in superionic) / len(superionic) if superionic else float("nan")
    with_ea = [r for r in records if r["exp_ea"] is not None]
    mae = statistics.fmean(abs(r["ea"] - r["exp_ea"]) for r in with_ea) if with_ea else float("nan")
    name, natoms, seconds = _timing_100_atoms()

    print("\n## Conductivity (issue 4)\n")
    print(
        f"bvse (softBV parameters of Chen & Adams, nu0 = 1e13 Hz, H_R = 1, 0.2 A grid), T = 298.15 K, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}.\n"
    )
    print(
        f"- rows: {counts['ok']} ok, {counts['not applicable']} not applicable (no Li), {counts['failed']} failed"
    )
    print(f"- Spearman rho of predicted vs published log10 sigma(RT): {rho:.2f} (n = {len(with_sigma)})")
    print(
        f"- superionic (published >= 1e-4 S/cm) ranked in the top half: {frac_top:.2f} "
        f"({sum(i in top_half for i in superionic)}/{len(superionic)}; the most any ranking can reach with "
        f"{len(superionic)} of {len(with_sigma)} superionic and a top half of {len(top_half)} is "
        f"{min(len(superionic), len(top_half))}/{len(superionic)})"
    )
    print(f"- MAE of Ea vs published: {mae:.2f} eV (n = {len(with_ea)})")
    print(f"- bvse time for {name} ({natoms} sites), one core, median of 3: {seconds:.1f} s\n")
    print("| material | sites | Ea bvse (eV) | Ea exp (eV) | log10 sigma bvse | log10 sigma exp | s |")
    print("|---|---|---|---|---|---|---|")
    for r in with_sigma + [r for r in records if r not in with_sigma and r["exp_ea"] is not None]:
        exp_log = f"{math.log10(r['exp_sigma']):.2f}" if r["exp_sigma"] else ""
        exp_ea = f"{r['exp_ea']:.2f}" if r["exp_ea"] is not None else ""
        print(
            f"| {r['name']} | {r['nsites']} | {r['ea']:.2f} | {exp_ea} | {r['log_sigma']:.2f} | {exp_log} | {r['seconds']:.1f} |"
        )

    _bvlain_table()


if __name__ == "__main__":
    main()
