"""Ranking benchmark: electrochemical windows against published values, and the demo's funnel, the
candidates that lost "certain" stability once the model error is included, and the top of the ranking.

Run: ``.venv/bin/python benchmarks/bench_ranking.py [RUN_DIR]`` (RUN_DIR: a finished run of the bundled
set, e.g. ``runs/demo/run`` from ``screening demo --out runs/demo``; without it only the windows are
printed). Prints Markdown for BENCHMARKS.md; ranks RUN_DIR with the default funnel (writes its
``ranked.parquet``).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from pipelines.rank import CERTAIN_P as CERTAIN
from screening.ranking import probability_stable
from screening.schema import Col
from screening.thermo import bundled_reference_set
from screening.thermo.window import electrochemical_window

#: Published windows, V vs Li/Li+ (Zhu, He & Mo, ACS Appl. Mater. Interfaces 7, 23685 (2015), Table 1;
#: Richards et al., Chem. Mater. 28, 266 (2016)), all on the Materials Project hull of that time.
PUBLISHED_V: dict[str, tuple[float, float]] = {
    "Li3N": (0.0, 0.44),
    "Li2O": (0.0, 2.91),
    "LiF": (0.0, 6.37),
    "Li3PS4": (1.71, 2.31),
    "Li10GeP2S12": (1.71, 2.14),
    "Li6PS5Cl": (1.71, 2.01),
    "Li7La3Zr2O12": (0.05, 2.91),
}


def windows_on_the_shipped_hull() -> str:
    """Windows of the textbook binaries (on the hull as MP entries), against the published values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        references = bundled_reference_set()
    lines = [
        "| compound | window here (V) | published (V) | reduced to | oxidised to |",
        "|---|---|---|---|---|",
    ]
    for formula in ("Li3N", "Li2O", "LiF"):
        composition = Composition(formula)
        diagram = references.phase_diagram(el.symbol for el in composition.elements)
        w = electrochemical_window(composition, 0.0, diagram, "Li")
        low, high = PUBLISHED_V[formula]
        lines.append(
            f"| {formula} | {w.low_V:.2f}-{w.high_V:.2f} | {low:.2f}-{high:.2f} | {w.reduction_products} | "
            f"{w.oxidation_products} |"
        )
    return "\n".join(lines)


def demo_windows(results: pd.DataFrame) -> str:
    """The demo's windows (predicted energies) for the compounds with a published window."""
    lines = [
        "| compound | E_hull (eV/atom) | window in the demo (V) | published (V) | reduced to | oxidised to |",
        "|---|---|---|---|---|---|",
    ]
    formulas = results[Col.CHEMICAL_FORMULA_REDUCED].map(lambda f: Composition(f).reduced_formula)
    for formula, (low, high) in PUBLISHED_V.items():
        rows = results[(formulas == Composition(formula).reduced_formula) & results[Col.ECW_LOW].notna()]
        if rows.empty:
            continue
        row = rows.iloc[0]
        lines.append(
            f"| {formula} | {row[Col.E_ABOVE_HULL]:+.3f} | {row[Col.ECW_LOW]:.2f}-{row[Col.ECW_HIGH]:.2f} | "
            f"{low:.2f}-{high:.2f} | {row[Col.ECW_REDUCTION_PRODUCTS]} | {row[Col.ECW_OXIDATION_PRODUCTS]} |"
        )
    return "\n".join(lines)


def lost_certainty(results: pd.DataFrame, threshold_eV: float, mobile_ion: str) -> tuple[int, int, list[str]]:
    """Of the stable-looking candidates (complete hull, both stages ok), how many were "certain" with the
    configurational spread alone and how many still are with the model error; the ones that lost it."""
    usable = results[
        (results[Col.STATUS] == "ok")
        & results[Col.ELEMENTS].map(lambda els: mobile_ion in list(els))
        & results[Col.HULL_MISSING_SYSTEMS].isna()
        & results[Col.E_ABOVE_HULL].notna()
    ]
    e = usable[Col.E_ABOVE_HULL].to_numpy(float)
    before = probability_stable(e, usable[Col.ENERGY_PER_ATOM_STD].fillna(0.0).to_numpy(float), threshold_eV)
    after = probability_stable(e, usable[Col.E_ABOVE_HULL_STD].to_numpy(float), threshold_eV)
    lost = usable.loc[(before >= CERTAIN) & (after < CERTAIN), Col.ID].str.removeprefix("bundled-").tolist()
    return int((before >= CERTAIN).sum()), int((after >= CERTAIN).sum()), lost


def candidate_table(frame: pd.DataFrame, first_column: str, title: str) -> list[str]:
    """Markdown rows of ranked candidates or near misses, ``first_column`` (the rank, or the filter that
    removed a near miss) shown first under ``title``."""

    def number(row: pd.Series, column: str, spec: str) -> str:
        value = row.get(column)
        return "-" if value is None or pd.isna(value) else format(value, spec)

    lines = [
        f"| {title} | formula | E_hull ± std (eV/atom) | p_stable | margin | log10 σ | window (V) | USD/kg | HHI |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in frame.iterrows():
        lines.append(
            f"| {row[first_column]} | {row[Col.ID].removeprefix('bundled-')} | {number(row, Col.E_ABOVE_HULL, '+.3f')} ± "
            f"{number(row, Col.E_ABOVE_HULL_STD, '.3f')} | {number(row, Col.P_STABLE, '.3f')} | "
            f"{number(row, Col.STABILITY_MARGIN, '.1f')} | {number(row, Col.LOG10_SIGMA, '.1f')} | "
            f"{number(row, Col.ECW_LOW, '.2f')}-{number(row, Col.ECW_HIGH, '.2f')} | "
            f"{number(row, Col.COST, '.0f')} | {number(row, Col.HHI_PRODUCTION, '.0f')} |"
        )
    return lines


def demo_report(run_dir: str) -> str:
    from pipelines.rank import rank_run
    from pipelines.rundir import RunDir

    ranking = rank_run(run_dir)
    results = RunDir(run_dir).read_results()
    ion = ranking.ranked[Col.MOBILE_ION].iloc[0] if len(ranking.ranked) else "Li"
    n_before, n_after, lost = lost_certainty(results, ranking.settings.max_e_above_hull_eV, ion)
    funnel = ranking.funnel.table
    parts = [
        "Funnel (default `solid-electrolyte` preset):\n",
        "| stage | criterion | in | removed | out | removed ids |",
        "|---|---|---|---|---|---|",
    ]
    for record in ranking.funnel.records():
        ids = ", ".join(i.removeprefix("bundled-") for i in record["removed_ids"])
        parts.append(
            f"| {record['stage']} | {record['criterion']} | {record['in']} | {record['removed']} | "
            f"{record['out']} | {ids} |"
        )
    parts.append(
        f'\n"Certain" stability (p_stable >= {CERTAIN}, complete hull, both stages ok): {n_before} candidates '
        f"with the configurational spread alone, {n_after} with the model error; lost: {', '.join(lost)}."
    )
    ranked = ranking.ranked
    margins = ranked[Col.STABILITY_MARGIN].to_numpy(float)
    margin_range = f"{np.nanmin(margins):.1f}-{np.nanmax(margins):.1f}" if np.isfinite(margins).any() else "-"
    parts.append(
        f"Ranked: {len(ranked)} of {int(funnel['in'].iloc[0])}; stability margins {margin_range} error scales; "
        f"electronic conductors in the ranking: {int(ranked[Col.ELECTRONIC_CONDUCTOR].fillna(False).sum())}; "
        f"without a window: {int(ranked[Col.ECW_LOW].isna().sum())}.\n"
    )
    if len(ranked):
        parts += candidate_table(ranked.head(10), Col.RANK, "rank")
    elif ranking.near_misses is not None and len(ranking.near_misses):
        parts.append("Nearest misses (what the demo prints when no candidate passes; not candidates):\n")
        parts += candidate_table(ranking.near_misses, "removed_by", "removed by")
    flagged = results[results[Col.ELECTRONIC_CONDUCTOR].fillna(False).astype(bool)]
    parts.append(
        "\nFlagged electronic conductors (bundled set): "
        + "; ".join(
            f"{r[Col.ID].removeprefix('bundled-')} ({r[Col.ELECTRONIC_CONDUCTOR_REASON].removeprefix('redox-active cation: ')})"
            for _, r in flagged.iterrows()
        )
    )
    parts.append("\nWindows in the demo (predicted energies on the pymatgen-shipped hull):\n")
    parts.append(demo_windows(results))
    return "\n".join(parts)


def main() -> None:
    print("Windows on the pymatgen-shipped hull (the compound at its MP energy):\n")
    print(windows_on_the_shipped_hull())
    if len(sys.argv) > 1:
        print()
        print(demo_report(sys.argv[1]))


if __name__ == "__main__":
    main()
