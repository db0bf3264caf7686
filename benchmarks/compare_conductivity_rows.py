"""What moved between two rows of ``bench_conductivity.py``, on the OBELiX entries both predicted.

    .venv/bin/python benchmarks/compare_conductivity_rows.py RESULT_A RESULT_B [--top 10]

RESULT is a row's per-structure file in ``benchmarks/results/``: its CSV, or the journal of a run still
in progress (``.journal.jsonl``), or just the row's label. Prints, for the common entries: both rows'
scores (Spearman uncensored and with bounds, AUC for sigma >= 1e-4 S/cm, Ea MAE; the same definitions as
the table), the mean change per family of the migration barrier, the Frenkel energy and log10 sigma, and
the largest changes of the migration barrier with the measured Ea beside them. It reads what the runs
wrote and computes nothing new; the paragraphs of BENCHMARKS.md that compare rows quote it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO / "benchmarks"))

from bench_conductivity import (  # noqa: E402
    RESULTS_DIR,
    auc,
    censored_spearman,
    journal_entries,
    mae,
    slugify,
    superionic_labels,
)

LABEL_COLUMNS = ["family", "measured_log10_sigma", "sigma_is_upper_bound", "measured_ea_eV"]
#: Families with fewer entries are left out of the per-family table (their means say little).
MIN_FAMILY_SIZE = 3
PREDICTED_COLUMNS = ["log10_sigma_S_per_cm", "ea_eV", "ea_migration_eV", "defect_formation_eV", "status"]


def result_path(name: str) -> Path:
    """The file a command-line argument names: a path, or a label's CSV (its journal while it runs)."""
    path = Path(name)
    if path.is_file():
        return path
    for suffix in (".csv", ".journal.jsonl"):
        candidate = RESULTS_DIR / f"conductivity-{slugify(name)}{suffix}"
        if candidate.is_file():
            return candidate
    raise SystemExit(f"no result file for {name!r} (neither a path nor a label in {RESULTS_DIR})")


def _journal_frame(path: Path, labels: pd.DataFrame) -> pd.DataFrame:
    """A run's journal (one JSON entry per structure) as its CSV would hold it: predictions by id."""
    rows = {}
    for entry in journal_entries(path):
        if entry.get("set") == "obelix":
            rows[entry["id"]] = entry["result"]
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return labels.join(frame.reindex(columns=PREDICTED_COLUMNS), how="inner")


def load_rows(path: Path, labels: pd.DataFrame | None = None) -> pd.DataFrame:
    """OBELiX rows of one result file, indexed by id."""
    if path.suffix == ".jsonl":
        assert labels is not None, "a journal holds no labels: pass those of a finished row"
        return _journal_frame(path, labels)
    frame = pd.read_csv(path)
    return frame[frame["set"] == "obelix"].set_index("id")


def finite(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.where(np.isfinite(numbers))


def ranking_scores(rows: pd.DataFrame, prediction: pd.Series) -> tuple[float, float, float]:
    """Spearman rho uncensored and with bounds, and the AUC, of predicted log10 sigma against the rows'
    measurements (entries without a finite prediction are left out, as in the table)."""
    measured = rows["measured_log10_sigma"].to_numpy(float)
    bound = rows["sigma_is_upper_bound"].fillna(0).astype(bool).to_numpy()
    rho = censored_spearman(prediction.to_numpy(float), measured, bound)
    area, _ = auc(prediction.to_numpy(float), superionic_labels(measured, bound))
    return rho["uncensored"][0], rho["bounds"][0], area


def scores(rows: pd.DataFrame, prediction: pd.Series, ea: pd.Series) -> str:
    rho, rho_bounds, area = ranking_scores(rows, prediction)
    error, n_ea = mae(ea.to_numpy(float), rows["measured_ea_eV"].to_numpy(float))
    return f"Spearman {rho:.2f} / {rho_bounds:.2f} (bounds), AUC {area:.2f}, Ea MAE {error:.2f} eV ({n_ea})"


def compare(a: pd.DataFrame, b: pd.DataFrame, top: int) -> str:
    both = a[LABEL_COLUMNS + PREDICTED_COLUMNS].merge(
        b[PREDICTED_COLUMNS], left_index=True, right_index=True, suffixes=("", "_b")
    )
    sigma_a, sigma_b = finite(both["log10_sigma_S_per_cm"]), finite(both["log10_sigma_S_per_cm_b"])
    both = both[sigma_a.notna() & sigma_b.notna()]
    n_super = int(np.nansum(superionic_labels(both["measured_log10_sigma"], both["sigma_is_upper_bound"])))
    lines = [
        f"{len(both)} OBELiX entries predicted in both ({n_super} superionic)",
        f"A: {scores(both, finite(both['log10_sigma_S_per_cm']), finite(both['ea_eV']))}",
        f"B: {scores(both, finite(both['log10_sigma_S_per_cm_b']), finite(both['ea_eV_b']))}",
        "",
    ]
    change = pd.DataFrame(
        {
            "family": both["family"].fillna("-"),
            "d_migration_eV": finite(both["ea_migration_eV_b"]) - finite(both["ea_migration_eV"]),
            "d_frenkel_eV": finite(both["defect_formation_eV_b"]) - finite(both["defect_formation_eV"]),
            "d_log10_sigma": finite(both["log10_sigma_S_per_cm_b"]) - finite(both["log10_sigma_S_per_cm"]),
            "migration_A_eV": finite(both["ea_migration_eV"]),
            "migration_B_eV": finite(both["ea_migration_eV_b"]),
            "measured_ea_eV": finite(both["measured_ea_eV"]),
            "measured_log10_sigma": both["measured_log10_sigma"],
        }
    )
    per_family = change.groupby("family").agg(
        n=("d_migration_eV", "size"),
        d_migration_eV=("d_migration_eV", "mean"),
        d_frenkel_eV=("d_frenkel_eV", "mean"),
        d_log10_sigma=("d_log10_sigma", "mean"),
    )
    large = per_family[per_family["n"] >= MIN_FAMILY_SIZE].sort_values("n", ascending=False)
    lines += [
        f"Mean change B - A per family of at least {MIN_FAMILY_SIZE} entries "
        f"({len(per_family) - len(large)} smaller families, {int(per_family['n'].sum() - large['n'].sum())} "
        "entries, not shown):",
        large.round(2).to_string(),
        "",
    ]
    ordered = change.sort_values("d_migration_eV")
    shown = ["family", "migration_A_eV", "migration_B_eV", "measured_ea_eV", "measured_log10_sigma"]
    lines += [
        f"Largest falls of the migration barrier (eV):\n{ordered.head(top)[shown].round(2).to_string()}",
        "",
        f"Largest rises:\n{ordered.dropna(subset=['d_migration_eV']).tail(top)[shown].round(2).to_string()}",
    ]
    moved = change["d_migration_eV"].abs() > 0.1
    lines += ["", f"Migration barrier moved by more than 0.1 eV: {int(moved.sum())} of {len(change)}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="result file or label of the reference row")
    parser.add_argument("b", help="result file or label of the row compared with it")
    parser.add_argument("--top", type=int, default=10, help="largest changes listed each way")
    args = parser.parse_args(argv)
    path_a, path_b = result_path(args.a), result_path(args.b)
    a = load_rows(path_a)
    b = load_rows(path_b, labels=a[LABEL_COLUMNS])
    print(f"A: {path_a.name}\nB: {path_b.name}")
    print(compare(a, b, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
