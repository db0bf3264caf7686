"""The Frenkel-energy cache: a second call with the same inputs reads the energy instead of relaxing the
defect supercell again, and any change to the inputs or to the code that computes it is a new key."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from test_transport_physics import _bundled_lithium_oxide, _LennardJonesModel

from screening.config import ScienceConfig
from screening.schema import Col
from screening.transport import compute_transport, defect_cache
from screening.transport.defect_cache import FrenkelCache, frenkel_key
from screening.transport.defects import DefectOptions


class _BrokenPotential(_LennardJonesModel):
    """The same potential by name, but any calculation with it fails: what a cached energy never needs."""

    def ase_calculator(self):
        calculator = super().ase_calculator()

        def refuse(*args, **kwargs):
            raise RuntimeError("the potential was asked to compute")

        calculator.calculate = refuse
        return calculator


def test_a_second_call_with_the_same_inputs_reads_the_frenkel_energy_from_the_cache(tmp_path):
    oxide = _bundled_lithium_oxide()
    computed = compute_transport(oxide, energy_model=_LennardJonesModel(), defect_cache_dir=tmp_path)
    assert computed[Col.TRANSPORT_NOTES] == ["Frenkel energy from lennard-jones"]
    assert len(list(tmp_path.glob("*.json"))) == 1

    reused = compute_transport(oxide, energy_model=_BrokenPotential(), defect_cache_dir=tmp_path)
    assert reused == computed  # every column, the Frenkel energy and the conductivity built on it

    # without the cache the broken potential is asked, fails, and the bond-valence estimate stands
    uncached = compute_transport(oxide, energy_model=_BrokenPotential())
    assert uncached[Col.DEFECT_FORMATION] != computed[Col.DEFECT_FORMATION]
    assert uncached[Col.TRANSPORT_NOTES][-1] == "Frenkel energy from bvse"
    assert "the potential was asked to compute" in uncached[Col.TRANSPORT_NOTES][0]

    # other settings of the calculation are another question: computed again (and failing here)
    other = compute_transport(
        oxide,
        energy_model=_BrokenPotential(),
        defect_cache_dir=tmp_path,
        defect_options=DefectOptions(max_steps=300),
    )
    assert other[Col.TRANSPORT_NOTES][-1] == "Frenkel energy from bvse"


def _key(structure, **changes):
    inputs = {
        "structure": structure,
        "mobile_ion": "Li",
        "site_frac": np.array([0.0, 0.0, 0.0]),
        "interstitial_candidates_frac": np.array([[0.5, 0.5, 0.5], [0.25, 0.25, 0.25]]),
        "energy_model": _LennardJonesModel(),
        "options": DefectOptions(interstitial_candidates=1),
    }
    return frenkel_key(**(inputs | changes))


def test_the_key_follows_every_input_and_the_code(monkeypatch):
    crystal = Structure(Lattice.cubic(4.0), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    base = _key(crystal)
    assert _key(crystal.copy()) == base
    with_states = crystal.copy()
    with_states.add_oxidation_state_by_element({"Li": 1, "O": -2})
    assert _key(with_states) == base  # the calculation ignores oxidation states
    # a candidate the calculation does not use (interstitial_candidates=1) is no part of the question
    assert _key(crystal, interstitial_candidates_frac=np.array([[0.5, 0.5, 0.5], [0.1, 0.2, 0.3]])) == base

    moved = crystal.copy()
    moved.translate_sites([1], [1e-6, 0, 0])
    disordered = Structure(crystal.lattice, [{"Li": 0.5}, "O"], crystal.frac_coords)
    reordered = Structure(crystal.lattice, ["O", "Li"], crystal.frac_coords[::-1])

    class Reweighted(_LennardJonesModel):
        weights_sha256 = "0" * 64

    different = {
        _key(moved),
        _key(disordered),
        _key(reordered),  # the configuration sampler draws in site order
        _key(crystal, mobile_ion="Na"),
        _key(crystal, site_frac=np.array([0.5, 0.0, 0.0])),
        _key(crystal, interstitial_candidates_frac=np.array([[0.5, 0.5, 0.4]])),
        _key(crystal, energy_model=Reweighted()),
        _key(crystal, options=DefectOptions(interstitial_candidates=1, supercell_min_length_A=9.0)),
        _key(crystal, options=DefectOptions(interstitial_candidates=1, configuration_seed=1)),
    }
    assert base not in different and len(different) == 9

    monkeypatch.setattr(defect_cache, "_code_sha256", lambda: "a change to the defect code")
    assert _key(crystal) != base


def test_the_code_hash_follows_the_code_not_its_documentation():
    from screening.transport.defect_cache import code_sha256

    source = '''"""Module docstring."""

def energy(x):
    """Its docstring."""
    return 2.0 * x  # a comment
'''
    documented = source.replace("Its docstring.", "Another docstring.").replace("# a comment", "# other")
    assert code_sha256([documented]) == code_sha256([source])
    assert code_sha256([source.replace("2.0 * x", "2.1 * x")]) != code_sha256([source])
    assert code_sha256([source, source]) != code_sha256([source])  # each module counts


def test_unreadable_entries_are_misses_and_writes_leave_no_partial_file(tmp_path):
    cache = FrenkelCache(tmp_path / "cache")
    assert cache.get("k") is None  # no directory yet
    calls = []

    def compute() -> float:
        calls.append(1)
        return 0.75

    assert cache.frenkel_energy_eV("k", compute) == 0.75
    assert cache.frenkel_energy_eV("k", compute) == 0.75 and len(calls) == 1
    assert json.loads((tmp_path / "cache" / "k.json").read_text()) == {"frenkel_eV": 0.75}
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["k.json"]

    for broken in ('{"frenkel_eV": ', "[]", '{"frenkel_eV": "x"}', '{"frenkel_eV": NaN}', "{}"):
        (tmp_path / "cache" / "k.json").write_text(broken)
        assert cache.get("k") is None
    assert cache.frenkel_energy_eV("k", compute) == 0.75 and len(calls) == 2  # computed again, rewritten
    assert cache.get("k") == 0.75


def test_a_refused_calculation_is_not_stored(tmp_path):
    from screening.transport.defects import DefectError

    cache = FrenkelCache(tmp_path)

    def refuse() -> float:
        raise DefectError("every pair recombined")

    with pytest.raises(DefectError, match="recombined"):
        cache.frenkel_energy_eV("k", refuse)
    assert list(tmp_path.iterdir()) == []


def test_the_cache_directory_is_an_execution_setting_not_part_of_the_results_identity(tmp_path):
    plain = ScienceConfig(transport_method="bvse")
    cached = ScienceConfig(transport_method="bvse", defect_cache_dir=str(tmp_path))
    assert cached.sha256() == plain.sha256()
    assert cached.transport_options()["defect_cache_dir"] == str(tmp_path)
    assert plain.transport_options()["defect_cache_dir"] is None


def _seeding_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "seed_defect_cache.py"
    spec = importlib.util.spec_from_file_location("seed_defect_cache", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_finished_row_seeds_the_cache_only_where_its_replay_reproduces_the_row(tmp_path, monkeypatch):
    """``benchmarks/seed_defect_cache.py``: the recorded Frenkel energy of a row, stored under the key the
    transport stage builds, answers the next calculation; a record whose energy does not give its own
    conductivity (another calculation than the key describes) is not stored."""
    import csv

    from screening.sources.bundled import iter_bundled_rows
    from screening.structures import row_to_structure

    seeding = _seeding_module()
    monkeypatch.setattr(seeding, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(seeding, "_changed_code", lambda revision: [])
    oxide = row_to_structure(next(r for r in iter_bundled_rows() if r["id"] == "bundled-Li2O"))
    settings = {"mobile_ion": "Li", "temperature_K": seeding.TEMPERATURE_K, "frenkel_method": "potential"}
    row = compute_transport(oxide, energy_model=_LennardJonesModel(), **settings)

    def write_row(label: str, frenkel_eV: float, notes: list[str] | None = None) -> None:
        record = {
            "set": "bundled",
            "id": "bundled-Li2O",
            "status": "ok",
            "code": "abc1234",
            "transport_notes": str(row[Col.TRANSPORT_NOTES] if notes is None else notes),
            "defect_formation_eV": repr(frenkel_eV),
            "log10_sigma_S_per_cm": repr(row[Col.LOG10_SIGMA]),
        }
        with (tmp_path / f"conductivity-{label}.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(record))
            writer.writeheader()
            writer.writerow(record)

    cache = tmp_path / "cache"
    write_row("tampered", row[Col.DEFECT_FORMATION] + 0.3)
    stored, skipped = seeding.seed("tampered", cache, energy_model=_LennardJonesModel())
    assert stored == 0 and "the replay gives log10 sigma" in skipped[0]
    assert not list(cache.glob("*.json"))

    write_row("finished", row[Col.DEFECT_FORMATION])
    stored, skipped = seeding.seed("finished", cache, energy_model=_LennardJonesModel())
    assert (stored, skipped) == (1, [])
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".json")) == []  # no staging left
    reused = compute_transport(oxide, energy_model=_BrokenPotential(), defect_cache_dir=cache, **settings)
    assert reused == row

    # a row whose disordered structures averaged several configurations records only the mean: not seeded
    mean = "Frenkel energy from lennard-jones, mean Frenkel fraction of 3 ordered configuration(s) (E_F 1.00)"
    write_row("averaged", row[Col.DEFECT_FORMATION], notes=[mean])
    with pytest.raises(SystemExit, match="no Frenkel energy from lennard-jones"):
        seeding.seed("averaged", tmp_path / "other", energy_model=_LennardJonesModel())

    monkeypatch.setattr(seeding, "_changed_code", lambda revision: ["screening/transport/defects.py"])
    with pytest.raises(SystemExit, match="defect code changed since the row was computed"):
        seeding.seed("finished", cache, energy_model=_LennardJonesModel())
