"""Frenkel carriers of a disordered full sublattice: the mean of the Frenkel fractions of several ordered
configurations (by hand, and its Arrhenius slope), drawn with consecutive seeds, cached one by one, with a
refused draw left out and named."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_transport_physics import _bundled_lithium_oxide, _LennardJonesModel, split_lithium_oxide

from screening.config import ScienceConfig
from screening.constants import BOLTZMANN_eV_PER_K
from screening.schema import Col
from screening.transport import compute_transport, potential_frenkel
from screening.transport.carriers import carrier_model, frenkel_fraction, mean_frenkel
from screening.transport.defects import DefectError, DefectOptions
from screening.transport.potential_frenkel import potential_frenkel_energies

KT_300 = BOLTZMANN_eV_PER_K * 300.0


def test_the_mean_frenkel_fraction_by_hand_and_its_arrhenius_slope():
    x1, x2 = math.exp(-0.2 / (2 * KT_300)), math.exp(-0.8 / (2 * KT_300))
    fraction, apparent_eV = mean_frenkel([0.2, 0.8], 300.0)
    assert fraction == pytest.approx((x1 + x2) / 2, rel=1e-12)
    assert apparent_eV == pytest.approx((0.2 * x1 + 0.8 * x2) / (x1 + x2), rel=1e-12)
    # the cheap configuration makes nearly all the pairs: the mean is far above the fraction of the mean
    assert fraction > 100 * frenkel_fraction(0.5, 300.0)
    assert 0.2 < apparent_eV < 0.21

    # the apparent energy is twice the Arrhenius slope of the mean: -2 d ln<x> / d(1/kT)
    def log_fraction(inverse_kT: float) -> float:
        return math.log(mean_frenkel([0.2, 0.8], 1.0 / (inverse_kT * BOLTZMANN_eV_PER_K))[0])

    h = 1e-4
    slope = (log_fraction(1 / KT_300 + h) - log_fraction(1 / KT_300 - h)) / (2 * h)
    assert -2 * slope == pytest.approx(apparent_eV, rel=1e-6)


def test_one_energy_is_the_single_configuration_formula_and_the_order_does_not_matter():
    assert mean_frenkel(0.7, 300.0) == pytest.approx((frenkel_fraction(0.7, 300.0), 0.7), rel=1e-12)
    assert mean_frenkel([0.7, 0.7, 0.7], 300.0) == pytest.approx(mean_frenkel(0.7, 300.0), rel=1e-12)
    assert mean_frenkel([-0.3], 300.0) == (1.0, 0.0)  # clamped as the single formula is
    assert mean_frenkel([1.0, 0.4, 0.7], 300.0) == pytest.approx(mean_frenkel([0.4, 0.7, 1.0], 300.0))
    # fractions that underflow leave no carriers and the lowest energy, not a NaN
    fraction, apparent_eV = mean_frenkel([60.0, 80.0], 300.0)
    assert fraction == 0.0 and apparent_eV == pytest.approx(60.0)
    with pytest.raises(ValueError, match="at least one"):
        mean_frenkel([], 300.0)


def test_the_carriers_of_several_configurations():
    energies = [1.0, 0.4, 0.7]
    x_mean, apparent_eV = mean_frenkel(energies, 300.0)
    model = carrier_model(0.3, energies, vacancy_fraction=0.0, temperature_K=300.0)
    assert model.carrier_factor == pytest.approx(x_mean, rel=1e-12)
    assert model.defect_formation_eV == pytest.approx(apparent_eV)
    assert model.ea_eV == pytest.approx(0.3 + apparent_eV / 2)
    assert model.mechanism == "frenkel"
    single = carrier_model(0.3, 0.4, vacancy_fraction=0.0, temperature_K=300.0)
    # the cheapest of the three makes nearly all the pairs, in a third of the crystal
    assert single.defect_formation_eV == 0.4
    assert model.carrier_factor == pytest.approx(single.carrier_factor / 3, rel=0.01)


@pytest.fixture
def seeded_energies(monkeypatch):
    """The defect calculation replaced by one that records its seeds and gives 1.0, 0.4, 0.7, 0.9 eV for
    seeds 0-3 and refuses seed 5."""
    seeds: list[int] = []

    def calculation(structure, mobile_ion, site_frac, candidates, model, options):
        seeds.append(options.configuration_seed)
        if options.configuration_seed == 5:
            raise DefectError("every pair recombined")
        return {0: 1.0, 1: 0.4, 2: 0.7, 3: 0.9, 4: 0.8}[options.configuration_seed]

    monkeypatch.setattr(potential_frenkel, "frenkel_energy_with_potential_eV", calculation)
    return seeds


def _energies(structure, **keywords):
    inputs = (structure, "Li", np.zeros(3), np.array([[0.5, 0.5, 0.5]]), _LennardJonesModel())
    return potential_frenkel_energies(*inputs, keywords.pop("options", DefectOptions()), **keywords)


def test_a_disordered_structure_draws_consecutive_seeds_and_an_ordered_one_draws_once(seeded_energies):
    assert _energies(_bundled_lithium_oxide()).energies_eV == (1.0,) and seeded_energies == [0]
    seeded_energies.clear()
    computed = _energies(split_lithium_oxide())
    assert computed.energies_eV == (1.0, 0.4, 0.7) and seeded_energies == [0, 1, 2]
    assert (
        computed.source("lj")
        == "lj, mean Frenkel fraction of 3 ordered configuration(s) (E_F 1.00, 0.40, 0.70 eV)"
    )
    seeded_energies.clear()
    shifted = _energies(split_lithium_oxide(), options=DefectOptions(configuration_seed=2), configurations=2)
    assert shifted.energies_eV == (0.7, 0.9) and seeded_energies == [2, 3]
    assert (
        _energies(split_lithium_oxide(), configurations=1).source("lj") == "lj on one ordered configuration"
    )
    with pytest.raises(ValueError, match="at least 1"):
        _energies(split_lithium_oxide(), configurations=0)


def test_each_configuration_is_cached_on_its_own(seeded_energies, tmp_path):
    _energies(split_lithium_oxide(), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 3
    seeded_energies.clear()
    more = _energies(split_lithium_oxide(), cache_dir=tmp_path, configurations=5)
    assert more.energies_eV == (1.0, 0.4, 0.7, 0.9, 0.8) and seeded_energies == [3, 4]  # 0-2 from the cache


def test_a_refused_configuration_is_left_out_and_named(seeded_energies):
    computed = _energies(split_lithium_oxide(), options=DefectOptions(configuration_seed=4), configurations=2)
    assert computed.energies_eV == (0.8,) and computed.n_drawn == 2
    assert computed.refusals == ("configuration 2: every pair recombined",)
    assert "1 ordered configuration(s) (E_F 0.80 eV)" in computed.source("lj")


def _split_oxide_row(first_seed: int = 0, **keywords):
    """The transport row of the split Li2O with the draws from ``first_seed`` on."""
    return compute_transport(
        split_lithium_oxide(),
        temperature_K=300.0,
        energy_model=_LennardJonesModel(),
        defect_options=DefectOptions(configuration_seed=first_seed),
        **keywords,
    )


def test_the_row_of_a_disordered_full_sublattice_carries_the_mean(seeded_energies):
    row = _split_oxide_row()
    x_mean, apparent_eV = mean_frenkel([1.0, 0.4, 0.7], 300.0)
    assert row[Col.DEFECT_FORMATION] == pytest.approx(apparent_eV)
    assert row[Col.EA] == pytest.approx(row[Col.EA_MIGRATION] + apparent_eV / 2)
    assert row[Col.CARRIER_DENSITY] == pytest.approx(row[Col.MOBILE_ION_DENSITY] * x_mean, rel=1e-9)
    assert any("mean Frenkel fraction of 3 ordered configuration(s)" in n for n in row[Col.TRANSPORT_NOTES])

    # the default (3) against one draw: the mean of the fractions is above the first draw's alone
    one = _split_oxide_row(frenkel_configurations=1)
    assert one[Col.DEFECT_FORMATION] == 1.0 and one[Col.LOG10_SIGMA] < row[Col.LOG10_SIGMA]

    # a refused draw is named in the row; every draw refused: the bond-valence estimate, with the reasons
    partly = _split_oxide_row(4, frenkel_configurations=2)
    assert partly[Col.DEFECT_FORMATION] == pytest.approx(0.8)
    notes = partly[Col.TRANSPORT_NOTES]
    assert "left out of the Frenkel mean: configuration 2: every pair recombined" in notes
    refused = _split_oxide_row(5, frenkel_configurations=1)
    assert refused[Col.TRANSPORT_NOTES][-1] == "Frenkel energy from bvse"
    assert "every pair recombined; the bond-valence Frenkel estimate is used" in refused[Col.TRANSPORT_NOTES]


def test_the_number_of_configurations_is_a_result_defining_run_setting():
    default = ScienceConfig(transport_method="bvse")
    assert default.frenkel_configurations == 3
    assert default.transport_options()["frenkel_configurations"] == 3
    assert ScienceConfig(transport_method="bvse", frenkel_configurations=1).sha256() != default.sha256()
    with pytest.raises(ValueError):
        ScienceConfig(frenkel_configurations=0)
