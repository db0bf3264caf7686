"""``benchmarks/bench_ea_regime.py`` on hand-made records (fast; reads no file)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(_BENCHMARKS))
_spec = importlib.util.spec_from_file_location("bench_ea_regime", _BENCHMARKS / "bench_ea_regime.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _record(mechanism, measured, effective, migration, *, status="ok", dataset="obelix"):
    return {
        "set": dataset,
        "status": status,
        "conduction_mechanism": mechanism,
        "measured_ea_eV": "" if measured is None else str(measured),
        "ea_eV": str(effective),
        "ea_migration_eV": str(migration),
    }


def test_errors_by_mechanism_by_hand():
    records = [
        _record("frenkel", 0.4, 1.0, 0.5),  # effective +0.6, migration +0.1
        _record("frenkel", 0.6, 0.8, 0.4),  # effective +0.2, migration -0.2
        _record("vacancy", 0.3, 0.35, 0.35),  # both +0.05
    ]
    summary = bench.ea_errors_by_mechanism(records)
    frenkel = summary["frenkel"]
    assert frenkel["n"] == 2
    assert frenkel["measured_mean_eV"] == pytest.approx(0.5)
    assert frenkel["effective_mae_eV"] == pytest.approx(0.4)
    assert frenkel["effective_bias_eV"] == pytest.approx(0.4)
    assert frenkel["migration_mae_eV"] == pytest.approx(0.15)
    assert frenkel["migration_bias_eV"] == pytest.approx(-0.05)
    assert summary["vacancy"]["effective_bias_eV"] == pytest.approx(0.05)
    assert summary["all"]["n"] == 3
    assert summary["all"]["effective_mae_eV"] == pytest.approx((0.6 + 0.2 + 0.05) / 3)


def test_leaves_out_unmeasured_failed_and_bundled_entries():
    records = [
        _record("frenkel", 0.4, 1.0, 0.5),
        _record("frenkel", None, 1.0, 0.5),  # no measured Ea
        _record("frenkel", 0.4, 1.0, 0.5, status="TransportError"),
        _record("frenkel", 0.4, 1.0, 0.5, dataset="bundled"),
        _record("frenkel", 0.4, "", 0.5),  # no effective barrier
    ]
    summary = bench.ea_errors_by_mechanism(records)
    assert summary["frenkel"]["n"] == 1
    assert summary["all"]["n"] == 1


def test_render_lists_every_mechanism_then_all():
    summary = bench.ea_errors_by_mechanism(
        [
            _record("vacancy", 0.3, 0.35, 0.35),
            _record("frenkel", 0.4, 1.0, 0.5),
            _record("frenkel", 0.5, 1.0, 0.5),
        ]
    )
    table = [line for line in bench.render("x", summary).splitlines() if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in table[1:]] == ["frenkel", "vacancy", "all"]
    assert "+0.55" in table[1]  # frenkel effective bias: (0.6 + 0.5) / 2
