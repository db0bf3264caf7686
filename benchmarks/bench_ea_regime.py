"""Which barrier does a measured Arrhenius slope follow? The measured activation energies of the OBELiX
training split against the two barriers every transport row reports, per carrier mechanism:
``ea_eV``, the effective barrier (``E_m + E_F / 2`` where thermally created Frenkel pairs carry the
current, the intrinsic regime), and ``ea_migration_eV``, the migration barrier alone (what a sample shows
in the extrinsic regime, where impurities or off-stoichiometry fix the number of carriers).

It reads the per-structure predictions of one ``bench_conductivity.py`` run (its CSV) and computes nothing
new, so it costs a second:

    .venv/bin/python benchmarks/bench_ea_regime.py --label "LABEL" --write
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO / "benchmarks"))

from bench_conductivity import RESULTS_DIR, _float, mae, predicted, read_csv, slugify  # noqa: E402
from report import publish  # noqa: E402

SECTION_TITLE = "## Measured Ea against the effective and the migration barrier (issue 9)"
ALL = "all"


def ea_errors_by_mechanism(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per ``conduction_mechanism`` (and ``all``) over the OBELiX records with a measured Ea and both
    predicted barriers: n, the mean measured Ea, and the MAE and mean signed error (predicted - measured)
    of ``ea_eV`` and of ``ea_migration_eV``, eV."""
    groups: dict[str, list[tuple[float, float, float]]] = {}
    for record in records:
        if record.get("set") != "obelix":
            continue
        measured = _float(record.get("measured_ea_eV"))
        effective, migration = predicted(record, "ea_eV"), predicted(record, "ea_migration_eV")
        if not all(math.isfinite(v) for v in (measured, effective, migration)):
            continue
        for key in (record.get("conduction_mechanism") or "unknown", ALL):
            groups.setdefault(key, []).append((measured, effective, migration))
    summary = {}
    for key, triples in groups.items():
        measured, effective, migration = np.array(triples).T
        summary[key] = {
            "n": float(len(triples)),
            "measured_mean_eV": float(measured.mean()),
            "effective_mae_eV": mae(effective, measured)[0],
            "effective_bias_eV": float((effective - measured).mean()),
            "migration_mae_eV": mae(migration, measured)[0],
            "migration_bias_eV": float((migration - measured).mean()),
        }
    return summary


def render(label: str, summary: Mapping[str, Mapping[str, float]]) -> str:
    order = sorted((k for k in summary if k != ALL), key=lambda k: -summary[k]["n"]) + [ALL]
    lines = [
        SECTION_TITLE,
        "",
        f'`.venv/bin/python benchmarks/bench_ea_regime.py --label "{label}" --write`: the per-structure '
        f"predictions of that `bench_conductivity.py` run (`benchmarks/results/conductivity-{slugify(label)}.csv`), "
        "OBELiX entries with a measured activation energy and both predicted barriers, grouped by the row's "
        "`conduction_mechanism`. Effective: `ea_eV` (`E_m + E_F / 2` weighted by the Frenkel share of the "
        "carriers, the intrinsic regime); migration: `ea_migration_eV` alone (the extrinsic regime). "
        "Bias: mean of predicted - measured. eV throughout.",
        "",
        "| mechanism | n | measured Ea, mean | effective: MAE | effective: bias | migration: MAE | migration: bias |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in order:
        s = summary[key]
        lines.append(
            f"| {key} | {s['n']:.0f} | {s['measured_mean_eV']:.2f} | {s['effective_mae_eV']:.2f} | "
            f"{s['effective_bias_eV']:+.2f} | {s['migration_mae_eV']:.2f} | {s['migration_bias_eV']:+.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--label", required=True, help="the bench_conductivity.py run to read")
    parser.add_argument("--write", action="store_true", help="update the section of BENCHMARKS.md")
    args = parser.parse_args(argv)
    path = RESULTS_DIR / f"conductivity-{slugify(args.label)}.csv"
    if not path.exists():
        raise SystemExit(f"no predictions at {path}: run bench_conductivity.py --label {args.label!r} first")
    summary = ea_errors_by_mechanism(read_csv(path))
    if not summary:
        raise SystemExit(f"{path} has no OBELiX entry with a measured Ea and both predicted barriers")
    publish(SECTION_TITLE, render(args.label, summary), args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
