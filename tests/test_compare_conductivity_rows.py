"""``benchmarks/compare_conductivity_rows.py`` on hand-made rows: a finished row's CSV against a journal."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd

_BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(_BENCHMARKS))
_spec = importlib.util.spec_from_file_location("compare_rows", _BENCHMARKS / "compare_conductivity_rows.py")
compare_rows = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_rows)

MEASURED = {"a": -2.0, "b": -3.0, "c": -6.0, "d": -8.0, "e": -9.0}


def _csv(tmp_path: Path) -> Path:
    rows = [
        {
            "set": "obelix",
            "id": key,
            "family": "NASICON" if key in "abc" else "oxides",
            "measured_log10_sigma": measured,
            "sigma_is_upper_bound": 0,
            "measured_ea_eV": 0.3 if key == "a" else "",
            "log10_sigma_S_per_cm": -5.0 - i,  # a, b, c, d, e: right order
            "ea_eV": 0.5,
            "ea_migration_eV": 0.5,
            "defect_formation_eV": 0.0,
            "status": "ok",
        }
        for i, (key, measured) in enumerate(MEASURED.items())
    ]
    rows.append({**rows[0], "set": "bundled"})  # not OBELiX: ignored
    path = tmp_path / "conductivity-a.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _journal(tmp_path: Path) -> Path:
    predicted = {"a": (-9.0, 0.9), "b": (-4.0, 0.3), "c": (-5.0, 0.5), "d": (float("-inf"), 0.5)}
    lines = [
        json.dumps(
            {
                "set": "obelix",
                "id": key,
                "result": {
                    "log10_sigma_S_per_cm": sigma,
                    "ea_eV": barrier,
                    "ea_migration_eV": barrier,
                    "defect_formation_eV": 0.0,
                    "status": "ok",
                },
            }
        )
        for key, (sigma, barrier) in predicted.items()
    ]
    path = tmp_path / "conductivity-b.journal.jsonl"
    path.write_text("\n".join(lines) + '\n{"set": "obelix", "id": "e", "res')  # the last line cut short
    return path


def test_compares_the_entries_both_rows_predicted(tmp_path):
    a = compare_rows.load_rows(_csv(tmp_path))
    b = compare_rows.load_rows(_journal(tmp_path), labels=a[compare_rows.LABEL_COLUMNS])
    assert sorted(b.index) == ["a", "b", "c", "d"]  # e's line was cut short
    report = compare_rows.compare(a, b, top=2)
    # d has no finite sigma in B, e is not in B: a, b, c remain, two of them superionic
    assert report.startswith("3 OBELiX entries predicted in both (2 superionic)")
    assert "A: Spearman 1.00 / 1.00 (bounds), AUC 1.00, Ea MAE 0.20 eV (1)" in report
    assert "B: Spearman -0.50 / -0.50 (bounds), AUC 0.50, Ea MAE 0.60 eV (1)" in report
    # the NASICON family (a, b, c): migration 0.5 -> 0.9, 0.3, 0.5: mean change (0.4 - 0.2 + 0) / 3
    family = next(line for line in report.splitlines() if line.startswith("NASICON"))
    assert family.split()[1:3] == ["3", "0.07"]
    assert "Migration barrier moved by more than 0.1 eV: 2 of 3" in report


def test_a_label_finds_its_csv_or_its_journal(tmp_path, monkeypatch):
    monkeypatch.setattr(compare_rows, "RESULTS_DIR", tmp_path)
    _csv(tmp_path)
    _journal(tmp_path)
    assert compare_rows.result_path("A").name == "conductivity-a.csv"
    assert compare_rows.result_path("b").name == "conductivity-b.journal.jsonl"
