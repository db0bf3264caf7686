"""Hand-computed checks of the transport formulas, with units."""

from __future__ import annotations

import math

import pytest
from pymatgen.core import Lattice, Structure

from screening.transport import (
    arrhenius_prefactor,
    arrhenius_sigma_S_per_cm,
    carrier_density_cm3,
    diffusivity_cm2_per_s,
    nernst_einstein_sigma_S_per_cm,
)


def test_carrier_density_counts_partial_occupancy():
    # 10 A cube = 1e-21 cm^3; 1.5 Li in it -> 1.5e21 cm^-3
    cell = Structure(
        Lattice.cubic(10.0), [{"Li": 1.0}, {"Li": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0, 0], [0.5, 0.5, 0.5]]
    )
    assert carrier_density_cm3(cell, "Li") == pytest.approx(1.5e21, rel=1e-12)
    assert carrier_density_cm3(cell, "Na") == 0.0


def test_diffusivity_by_hand():
    # a = 3 A = 3e-8 cm, nu0 = 1e13 Hz: a^2 nu0 / 6 = 9e-16 * 1e13 / 6 = 1.5e-3 cm^2/s
    assert diffusivity_cm2_per_s(0.0, 300.0, 3.0, 1e13) == pytest.approx(1.5e-3, rel=1e-12)
    # Ea = 0.3 eV at 300 K: exp(-0.3 / (8.617333262e-5 * 300)) = 9.1256e-6
    expected = 1.5e-3 * math.exp(-0.3 / (8.617333262e-5 * 300.0))
    assert diffusivity_cm2_per_s(0.3, 300.0, 3.0, 1e13) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(1.3688e-8, rel=1e-3)


def test_nernst_einstein_by_hand():
    # n = 1e22 cm^-3, D = 1e-8 cm^2/s, T = 300 K:
    # sigma = 1e22 * (1.602176634e-19)^2 * 1e-8 / (1.380649e-23 * 300) = 6.1975e-4 S/cm
    sigma = nernst_einstein_sigma_S_per_cm(1e22, 1e-8, 300.0)
    assert sigma == pytest.approx(6.1975e-4, rel=1e-4)
    assert nernst_einstein_sigma_S_per_cm(1e22, 1e-8, 300.0, haven_ratio=0.5) == pytest.approx(2 * sigma)
    assert nernst_einstein_sigma_S_per_cm(1e22, 1e-8, 300.0, charge=2) == pytest.approx(4 * sigma)


def test_arrhenius_form_matches_nernst_einstein():
    n, a, nu, ea, t = 2.3e22, 2.5, 1e13, 0.35, 450.0
    d = diffusivity_cm2_per_s(ea, t, a, nu)
    sigma = nernst_einstein_sigma_S_per_cm(n, d, t, charge=1, haven_ratio=0.7)
    prefactor = arrhenius_prefactor(n, a, nu, charge=1, haven_ratio=0.7)
    assert arrhenius_sigma_S_per_cm(prefactor, ea, t) == pytest.approx(sigma, rel=1e-12)
    # sigma * T at Ea = 0 is the prefactor itself (S K / cm)
    assert arrhenius_sigma_S_per_cm(prefactor, 0.0, t) * t == pytest.approx(prefactor, rel=1e-12)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan])
def test_formulas_reject_nonpositive_inputs(bad):
    with pytest.raises(ValueError, match="positive"):
        diffusivity_cm2_per_s(0.2, bad, 3.0)
    with pytest.raises(ValueError, match="positive"):
        nernst_einstein_sigma_S_per_cm(1e22, 1e-8, 300.0, haven_ratio=bad)


def test_a_room_temperature_conductivity_far_above_any_measured_is_flagged():
    from screening.transport.conductivity import implausible_sigma_note

    # Li: the record is 2.5e-2 S/cm (Kato et al. 2016); ten times that is flagged, four times is not
    note = implausible_sigma_note(0.5, "Li", 298.15)
    assert note is not None and "0.5 S/cm" in note and "any Li conductor (0.025 S/cm)" in note
    assert implausible_sigma_note(0.1, "Li", 298.15) is None
    # an ion without its own record is held to the best solid conductor, RbAg4I5 (about 0.25 S/cm)
    assert implausible_sigma_note(0.5, "Na", 300.0) is None
    assert "any solid (0.25 S/cm)" in implausible_sigma_note(5.0, "Na", 300.0)
    # the records are room-temperature values: at 600 K nothing is compared
    assert implausible_sigma_note(5.0, "Li", 600.0) is None


def test_the_transport_row_carries_the_implausibility_note():
    # the bundled Li1.3Al0.3Ti1.7(PO4)3 (measured 7e-4 S/cm) comes out at about 0.5 S/cm from the
    # bond-valence physics: flagged; LiTi2(PO4)3 far below any record: not
    from screening.sources.bundled import iter_bundled_rows
    from screening.structures import row_to_structure
    from screening.transport import compute_transport

    rows = {r["id"]: r for r in iter_bundled_rows()}
    latp = compute_transport(row_to_structure(rows["bundled-Li1.3Al0.3Ti1.7(PO4)3"]), temperature_K=298.15)
    assert latp["sigma_S_per_cm"] > 0.25
    assert "the barrier is probably too low" in latp["transport_notes"][-1]
    ltp = compute_transport(row_to_structure(rows["bundled-LiTi2(PO4)3"]), temperature_K=298.15)
    assert not any("probably too low" in note for note in ltp["transport_notes"])
