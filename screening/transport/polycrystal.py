"""The conductivity of a dense polycrystal of randomly oriented grains, from the principal conductivities
of one grain.

Measured room-temperature conductivities are almost always those of sintered or cold-pressed pellets:
grains in every orientation. A grain of a 1D conductor carries current along its channels only, so
the pellet conducts far less than the grain does along its fast axis; a 2D or 3D conductor loses
little. Bruggeman's self-consistent effective medium for randomly oriented anisotropic grains (Stroud,
*Phys. Rev. B* 12, 3368 (1975)) gives the pellet's conductivity ``s`` from the grain's principal
values ``sigma_k`` as the root of

    sum_k (sigma_k - s) / (sigma_k + 2 s) = 0.

Isotropic grains give ``s = sigma``; two equal fast directions over an insulating one give
``sigma_fast / 2``; a 1D conductor gives ``sqrt(sigma_fast sigma_slow / 2)`` when its transverse
conductivity is much smaller. Grain boundaries are taken to conduct like the grains (their own
resistance is not modelled).

For hopping, the principal conductivities follow the barriers of the paths that percolate in one, two
and three dimensions, ``sigma_k ~ exp(-E_k / k_B T)`` with one prefactor, so the pellet's conductivity
is the fast axis's times :attr:`PolycrystalAverage.factor`, and its Arrhenius slope is a weighted mean
of the ``E_k`` (:attr:`PolycrystalAverage.ea_eV`, implicit differentiation of the equation above).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from screening.constants import BOLTZMANN_eV_PER_K
from screening.errors import InputError


@dataclass(frozen=True)
class PolycrystalAverage:
    """A polycrystal's conductivity relative to its grains' fastest direction.

    Attributes:
        factor: ``s / sigma_fast``, in (0, 1].
        ea_eV: the polycrystal's Arrhenius barrier, ``-d ln s / d(1 / k_B T)``, eV.
    """

    factor: float
    ea_eV: float


def bruggeman_factor(principal_ratios: Sequence[float]) -> float:
    """The root ``s`` of ``sum_k (r_k - s) / (r_k + 2 s) = 0`` for principal conductivities ``r_k``
    relative to the largest (so ``max r_k = 1`` and the root lies in ``(0, 1]``).

    Raises:
        InputError: for ratios outside ``[0, 1]``, or no positive one equal to 1.
    """
    r = np.asarray(principal_ratios, dtype=float)
    if r.size == 0 or np.any(~np.isfinite(r)) or np.any(r < 0) or not math.isclose(r.max(), 1.0):
        raise InputError(f"principal conductivity ratios must lie in [0, 1] with a largest of 1, got {r}")

    def residual(log_s: float) -> float:
        s = math.exp(log_s)
        return float(np.sum((r - s) / (r + 2.0 * s)))

    if residual(0.0) >= 0.0:  # isotropic: s = 1 exactly
        return 1.0
    smallest_positive = float(r[r > 0].min())
    # at s = 1e-3 of the smallest positive ratio each positive term is above 0.99 and each zero one is
    # -1/2; with the largest ratio positive the sum is positive there whenever a root exists below it
    low = math.log(smallest_positive * 1e-3)
    if residual(low) <= 0.0:  # one conducting direction, two insulating ones: the pellet does not conduct
        return 0.0
    return math.exp(brentq(residual, low, 0.0, xtol=1e-12, rtol=1e-12))


def polycrystal_average(barriers_eV: Sequence[float], temperature_K: float) -> PolycrystalAverage:
    """Randomly oriented grains whose principal conductivities follow ``exp(-E_k / k_B T)``.

    Args:
        barriers_eV: the three principal barriers (the 1D, 2D and 3D percolation barriers), eV.
        temperature_K: temperature, K.
    """
    if not temperature_K > 0:
        raise InputError(f"temperature_K must be positive, got {temperature_K!r}")
    barriers = np.asarray(barriers_eV, dtype=float)
    if barriers.shape != (3,) or np.any(~np.isfinite(barriers)):
        raise InputError(f"three finite principal barriers are needed, got {barriers_eV!r}")
    fastest = float(barriers.min())
    excess = barriers - fastest
    ratios = np.exp(-excess / (BOLTZMANN_eV_PER_K * temperature_K))
    factor = bruggeman_factor(ratios)
    if factor == 0.0:
        return PolycrystalAverage(factor=0.0, ea_eV=math.inf)
    weights = ratios / (ratios + 2.0 * factor) ** 2
    return PolycrystalAverage(factor=factor, ea_eV=fastest + float(weights @ excess / weights.sum()))
