"""Ionic conductivity of one structure: mobile ion, carrier density, migration barrier and sigma(T).

Convention: :func:`compute_transport` returns a dict of results-table columns with status ``ok`` (all
columns filled) or ``not applicable`` (the structure holds no mobile ion: nothing is computed and the
numeric columns are None, not zero); any failure (no assignable oxidation states, no published bond-valence
parameters for a pair, no percolating path, an MD problem) raises :class:`TransportError` whose message is
the reason, which the caller records in a failed row.

Methods (``ea_method``):

* ``bvse`` (default): bond-valence site-energy landscape with the softBV parameters of Chen & Adams
  (see :mod:`screening.transport.bv_params`), occupancy-weighted for disordered frameworks, and its
  percolation barriers (:mod:`screening.transport.bvse`); ``D = a^2 nu0 / 6 exp(-Ea / k_B T)`` along the
  fastest path, averaged over a pellet of randomly oriented grains with the 2D and 3D barriers
  (:mod:`screening.transport.polycrystal`); carriers from the sublattice's vacancies, interstitials and
  Frenkel pairs (:mod:`screening.transport.carriers`), their formation energy from the landscape or from
  the run's potential on a defect supercell of each of a few ordered configurations
  (:mod:`screening.transport.potential_frenkel`).
* ``md``: NVT molecular dynamics with a pretrained potential at several temperatures, mean squared
  displacement -> D(T) -> Arrhenius fit (:mod:`screening.transport.md`).

Both end in Nernst-Einstein, ``sigma = n (z e)^2 D / (H_R k_B T)`` (:mod:`screening.transport.conductivity`).
The names below are imported on first use (PEP 562): the registry of methods and ions is light.
"""

from __future__ import annotations

from screening._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "DEFAULT_TRANSPORT_METHOD": "screening.transport.registry",
    "MOBILE_IONS": "screening.transport.registry",
    "TRANSPORT_METHODS": "screening.transport.registry",
    "TransportMethod": "screening.transport.registry",
    "TRANSPORT_COLUMNS": "screening.transport.compute",
    "TransportError": "screening.transport.compute",
    "compute_transport": "screening.transport.compute",
    "mobile_ion_charge": "screening.transport.compute",
    "arrhenius_prefactor": "screening.transport.conductivity",
    "arrhenius_sigma_S_per_cm": "screening.transport.conductivity",
    "carrier_density_cm3": "screening.transport.conductivity",
    "diffusivity_cm2_per_s": "screening.transport.conductivity",
    "nernst_einstein_sigma_S_per_cm": "screening.transport.conductivity",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
