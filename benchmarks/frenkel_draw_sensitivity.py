"""How much a row's scores owe to which ordered configurations its Frenkel means were drawn over.

    .venv/bin/python benchmarks/frenkel_draw_sensitivity.py [RESULT]

RESULT is a finished ``bench_conductivity.py`` row averaged over several configurations (default: the
three-configuration potential row). Each averaged structure's note lists its draws' Frenkel energies
("mean Frenkel fraction of 3 ordered configuration(s) (E_F a, b, c eV)"). For every non-empty subset of
the draws, the script recomputes that structure's carriers with the product's ``carrier_model`` on the
subset's energies, everything else of the row held fixed, and rescales its sigma: in the bvse stage the
diffusivity takes the migration barrier alone, so sigma is proportional to the carrier factor. Single
draws show what one configuration would have given, pairs what another sample of the same size nearly
would; the spread of the scores over them is the draw noise of the row's figures. Rows with fewer draws
listed (some were refused) keep their value. The notes round energies to 0.01 eV; the check line says how
far the carrier factor recomputed from them lies from the row's own.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO / "benchmarks"))
sys.path.insert(0, str(_REPO))

from bench_conductivity import TEMPERATURE_K  # noqa: E402
from compare_conductivity_rows import finite, load_rows, ranking_scores, result_path  # noqa: E402

from screening.transport.carriers import carrier_model  # noqa: E402
from screening.transport.potential_frenkel import MEAN_OF_CONFIGURATIONS  # noqa: E402

DEFAULT_ROW = "Frenkel energy from SevenNet-0 (converged), mean of three ordered configurations"
DRAWS = re.compile(
    re.escape(MEAN_OF_CONFIGURATIONS) + r" (\d+) ordered configuration\(s\) \(E_F ([^)]*) eV\)"
)


def draw_energies(notes: str) -> list[float]:
    """The Frenkel energies of a row's draws, from its note; empty where the row was not averaged."""
    found = DRAWS.search(notes)
    return [float(value) for value in found.group(2).split(",")] if found else []


def carrier_factor(row: pd.Series, energies: list[float]) -> float:
    return carrier_model(
        float(row["ea_migration_eV"]),
        energies,
        float(row["vacancy_fraction"]),
        TEMPERATURE_K,
        interstitial_fraction=float(row["interstitial_fraction"]),
    ).carrier_factor


def subset_sigma(rows: pd.DataFrame, draws: dict[str, list[float]], subset: tuple[int, ...]) -> pd.Series:
    """log10 sigma of every row with its Frenkel mean taken over the draws in ``subset`` only."""
    sigma = finite(rows["log10_sigma_S_per_cm"]).copy()
    for entry_id, energies in draws.items():
        full = carrier_factor(rows.loc[entry_id], energies)
        part = carrier_factor(rows.loc[entry_id], [energies[i] for i in subset])
        sigma[entry_id] += np.log10(part / full)
    return sigma


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result", nargs="?", default=DEFAULT_ROW, help="a row's CSV or label")
    args = parser.parse_args(argv)
    rows = load_rows(result_path(args.result))
    all_draws = {i: draw_energies(str(n)) for i, n in rows["transport_notes"].fillna("").items()}
    size = max((len(e) for e in all_draws.values()), default=0)
    if size < 2:
        raise SystemExit(f"{args.result!r}: no structure averaged over several configurations")
    draws = {i: e for i, e in all_draws.items() if len(e) == size}
    kept = sum(1 for e in all_draws.values() if 0 < len(e) < size)

    row_factor = finite(rows["carrier_density_cm3"]) / finite(rows["mobile_ion_density_cm3"])
    rounding = max(abs(np.log10(carrier_factor(rows.loc[i], e) / row_factor[i])) for i, e in draws.items())
    print(
        f"{len(draws)} structures averaged over {size} draws ({kept} with fewer keep their value); "
        f"energies as rounded in the notes move the full mean's log10 sigma by at most {rounding:.3f}"
    )
    print(f"{'draws':<10} {'Spearman':>9} {'bounds':>7} {'AUC':>7}")
    results = []
    for k in range(1, size + 1):
        for subset in itertools.combinations(range(size), k):
            rho, rho_bounds, area = ranking_scores(rows, subset_sigma(rows, draws, subset))
            results.append((k, area))
            name = "+".join(str(i + 1) for i in subset)
            print(f"{name:<10} {rho:>9.3f} {rho_bounds:>7.3f} {area:>7.4f}")
    for k in range(1, size):
        areas = [a for n, a in results if n == k]
        print(f"means of {k} draw(s): AUC {min(areas):.4f} to {max(areas):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
