"""The pellet average of an anisotropic conductor (Bruggeman's effective medium for randomly oriented
grains): its limits by hand, its Arrhenius slope against a finite difference, its inputs checked."""

from __future__ import annotations

import math

import pytest

from screening.constants import BOLTZMANN_eV_PER_K
from screening.errors import InputError
from screening.transport.polycrystal import bruggeman_factor, polycrystal_average


def _residual(ratios, s):
    return sum((r - s) / (r + 2 * s) for r in ratios)


def test_isotropic_grains_conduct_like_the_crystal_and_a_layered_one_at_half_its_fast_value():
    assert bruggeman_factor([1.0, 1.0, 1.0]) == 1.0
    # two fast directions, one insulating: 2 (1 - s) / (1 + 2 s) = 1/2, so s = 1/2
    assert bruggeman_factor([1.0, 1.0, 0.0]) == pytest.approx(0.5, rel=1e-10)
    # one fast direction and two insulating ones: no connected path through the pellet
    assert bruggeman_factor([1.0, 0.0, 0.0]) == 0.0


def test_a_1d_conductor_conducts_at_the_geometric_mean_of_its_fast_and_slow_directions():
    r = 1e-8
    s = bruggeman_factor([1.0, r, r])
    assert _residual([1.0, r, r], s) == pytest.approx(0.0, abs=1e-9)
    assert s == pytest.approx(math.sqrt(r / 2), rel=1e-3)


def test_the_pellet_barrier_is_the_arrhenius_slope_of_its_conductivity():
    barriers = [0.25, 0.40, 0.55]

    def ln_sigma(temperature_K):
        average = polycrystal_average(barriers, temperature_K)
        return math.log(average.factor) - barriers[0] / (BOLTZMANN_eV_PER_K * temperature_K)

    t, dt = 300.0, 0.01
    beta = lambda temperature_K: 1 / (BOLTZMANN_eV_PER_K * temperature_K)  # noqa: E731
    slope = -(ln_sigma(t + dt) - ln_sigma(t - dt)) / (beta(t + dt) - beta(t - dt))
    assert polycrystal_average(barriers, t).ea_eV == pytest.approx(slope, rel=1e-5)
    # far apart: the pellet follows the mean of the two fastest barriers (the geometric-mean limit)
    assert polycrystal_average([0.2, 1.0, 1.0], 300.0).ea_eV == pytest.approx(0.6, abs=1e-3)
    # isotropic: the crystal's barrier and factor
    isotropic = polycrystal_average([0.3, 0.3, 0.3], 300.0)
    assert (isotropic.factor, isotropic.ea_eV) == pytest.approx((1.0, 0.3))


def test_the_order_of_the_principal_barriers_does_not_matter():
    a = polycrystal_average([0.2, 0.35, 0.5], 350.0)
    b = polycrystal_average([0.5, 0.2, 0.35], 350.0)
    assert (a.factor, a.ea_eV) == pytest.approx((b.factor, b.ea_eV), rel=1e-12)


@pytest.mark.parametrize(
    "ratios", [[], [0.5, 0.2, 0.1], [1.0, -0.1, 0.5], [1.0, math.nan, 1.0], [1.0, 2.0, 1.0]]
)
def test_ratios_must_be_relative_to_the_largest(ratios):
    with pytest.raises(InputError):
        bruggeman_factor(ratios)


def test_three_finite_barriers_and_a_positive_temperature_are_needed():
    with pytest.raises(InputError):
        polycrystal_average([0.2, 0.3], 300.0)
    with pytest.raises(InputError):
        polycrystal_average([0.2, 0.3, math.inf], 300.0)
    with pytest.raises(InputError):
        polycrystal_average([0.2, 0.3, 0.4], 0.0)
