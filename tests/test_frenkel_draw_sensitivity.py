"""``benchmarks/frenkel_draw_sensitivity.py`` on hand-made rows: sigma rescaled by the carriers of a subset
of the draws, checked against the Frenkel fractions written out by hand."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pandas as pd
import pytest

from screening.constants import BOLTZMANN_eV_PER_K

_BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(_BENCHMARKS))
_spec = importlib.util.spec_from_file_location(
    "draw_sensitivity", _BENCHMARKS / "frenkel_draw_sensitivity.py"
)
draw_sensitivity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(draw_sensitivity)

KT_eV = BOLTZMANN_eV_PER_K * 298.15
AVERAGED = "Frenkel energy from sevennet-0, mean Frenkel fraction of 3 ordered configuration(s) (E_F {} eV)"


def x_frenkel(energy_eV: float) -> float:
    return math.exp(-energy_eV / (2 * KT_eV))


def _rows(entries: dict[str, tuple[str, float]]) -> pd.DataFrame:
    """One row per id: (energies in the note or "", vacancy fraction); superionic ids start with 's'."""
    records = {}
    for key, (energies, vacancies) in entries.items():
        records[key] = {
            "log10_sigma_S_per_cm": -3.0 if key.startswith("s") else -6.0,
            "measured_log10_sigma": -2.0 if key.startswith("s") else -8.0,
            "sigma_is_upper_bound": 0,
            "ea_migration_eV": 0.3,
            "vacancy_fraction": vacancies,
            "interstitial_fraction": 0.0,
            "transport_notes": str([AVERAGED.format(energies)])
            if energies
            else "['Frenkel energy from bvse']",
        }
    return pd.DataFrame.from_dict(records, orient="index")


def test_draw_energies_reads_the_note_and_nothing_else():
    note = str(["left out of the Frenkel mean: configuration 2: ...", AVERAGED.format("0.10, 1.25")])
    assert draw_sensitivity.draw_energies(note) == [0.10, 1.25]
    assert draw_sensitivity.draw_energies("['Frenkel energy from bvse']") == []


def test_a_subset_rescales_sigma_by_its_frenkel_fraction():
    rows = _rows({"s1": ("0.00, 1.00, 1.00", 0.0), "n1": ("0.40, 0.40, 0.40", 0.5), "n2": ("", 0.0)})
    draws = {"s1": [0.0, 1.0, 1.0], "n1": [0.4, 0.4, 0.4]}
    full = (1.0 + 2.0 * x_frenkel(1.0)) / 3.0
    first = draw_sensitivity.subset_sigma(rows, draws, (0,))
    assert first["s1"] == pytest.approx(-3.0 + math.log10(1.0 / full))  # about +log10 3
    last_two = draw_sensitivity.subset_sigma(rows, draws, (1, 2))
    assert last_two["s1"] == pytest.approx(-3.0 + math.log10(x_frenkel(1.0) / full))
    assert first["n1"] == pytest.approx(-6.0)  # equal draws: any subset gives the same mean
    assert first["n2"] == -6.0  # not averaged: untouched


def test_vacancies_dominate_the_carriers_so_the_draws_barely_matter():
    rows = _rows({"s1": ("0.80, 1.60, 1.60", 0.1)})
    moved = draw_sensitivity.subset_sigma(rows, {"s1": [0.8, 1.6, 1.6]}, (0,))["s1"] + 3.0
    expected = math.log10((0.1 + x_frenkel(0.8)) / (0.1 + (x_frenkel(0.8) + 2 * x_frenkel(1.6)) / 3))
    assert moved == pytest.approx(expected)
    assert 0.0 < moved < 1e-6


def test_the_script_scores_every_subset(tmp_path, capsys):
    rows = _rows({"s1": ("0.00, 1.00, 1.00", 0.0), "s2": ("0.20, 0.20, 0.20", 0.0), "n1": ("", 0.0)})
    rows["carrier_density_cm3"] = [1e22 * (1 + 2 * x_frenkel(1.0)) / 3, 1e22 * x_frenkel(0.2), 1e22]
    rows["mobile_ion_density_cm3"] = 1e22
    path = tmp_path / "conductivity-row.csv"
    rows.assign(set="obelix", id=rows.index).to_csv(path, index=False)
    assert draw_sensitivity.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 structures averaged over 3 draws (0 with fewer keep their value)" in out
    assert "at most 0.000" in out  # the carrier factors above are the notes' exactly
    auc_by_subset = {line.split()[0]: line.split()[-1] for line in out.splitlines()[2:9]}
    # without draw 1, s1's carriers fall by 8 decades, below the non-superionic n1: one of two pairs misordered
    assert auc_by_subset == {
        "1": "1.0000", "2": "0.5000", "3": "0.5000",
        "1+2": "1.0000", "1+3": "1.0000", "2+3": "0.5000", "1+2+3": "1.0000",
    }  # fmt: skip
    assert "means of 1 draw(s): AUC 0.5000 to 1.0000" in out
