"""The model's own error in the hull distance's uncertainty, and what it does to p_stable."""

from __future__ import annotations

import math

import pytest
from scipy.stats import norm

from screening.errors import InputError
from screening.models.registry import MODEL_NAMES
from screening.ranking import probability_stable
from screening.schema import Col
from screening.thermo import stability
from screening.thermo.model_error import MODEL_ERRORS, model_error


def test_every_registered_model_has_a_documented_error_scale():
    assert set(MODEL_ERRORS) == set(MODEL_NAMES)
    # sigma of a normal with the published MAE: MAE * sqrt(pi / 2)
    assert model_error("sevennet-0").sigma_eV == pytest.approx(0.048 * math.sqrt(math.pi / 2), abs=1e-4)
    assert model_error("chgnet-0.3.0").sigma_eV > model_error("sevennet-0").sigma_eV
    with pytest.raises(InputError, match="no error scale"):
        model_error("megnet")


def test_model_error_adds_in_quadrature_to_the_configurational_spread(shipped_references):
    common = {"references": shipped_references, "energies_corrected": True}
    ordered = stability("LiF", -4.9, **common, model_error_eV=0.06)
    assert ordered[Col.E_ABOVE_HULL_STD] == pytest.approx(0.06)  # ordered: the model error alone
    disordered = stability("LiF", -4.9, **common, energy_per_atom_std_eV=0.008, model_error_eV=0.06)
    assert disordered[Col.E_ABOVE_HULL_STD] == pytest.approx(math.sqrt(0.008**2 + 0.06**2))
    assert disordered[Col.E_ABOVE_HULL] == ordered[Col.E_ABOVE_HULL]  # the value itself does not move
    assert stability("LiF", -4.9, **common)[Col.E_ABOVE_HULL_STD] == 0.0  # default: no model error


def test_an_ordered_candidate_near_the_hull_is_no_longer_certain():
    sigma = model_error("sevennet-0").sigma_eV  # 0.060 eV/atom
    # 20 meV/atom above the hull, threshold 50 meV/atom: margin 0.5 sigma, p = Phi(0.5) = 0.69
    p = probability_stable([0.02], [sigma], 0.05)[0]
    assert p == pytest.approx(norm.cdf(0.03 / sigma)) and p == pytest.approx(0.69, abs=0.01)
    # without the model error it was a step: certain
    assert probability_stable([0.02], [0.0], 0.05)[0] == 1.0
    # certainty needs a margin of several error scales: 3 sigma below the threshold gives p > 0.998
    assert probability_stable([0.05 - 3 * sigma], [sigma], 0.05)[0] == pytest.approx(norm.cdf(3.0))
