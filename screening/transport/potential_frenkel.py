"""The potential's Frenkel energies of one structure: one defect calculation
(:func:`screening.transport.defects.frenkel_energy_with_potential_eV`) per ordered configuration, each
kept in and reused from the cache where one is given (:mod:`screening.transport.defect_cache`).

An ordered structure has one configuration. A disordered one with a full mobile-ion sublattice (ions
spread over split positions, co-occupied anion or framework sites) is an ensemble of local arrangements,
and one drawn configuration is one sample of it: on OBELiX's eight Li6P(S1-xSex)5Br argyrodites (x from 0
to 0.2, one structure type) single draws gave E_F from 0.09 to 0.85 eV, in no order with x, and on one
of them every pair recombined. So ``configurations`` draws are computed (seeds ``configuration_seed``,
``configuration_seed + 1``, ...; the first is the single-configuration calculation of earlier versions,
and its cache entries stay valid) and the carriers take the mean of their Frenkel fractions
(:func:`screening.transport.carriers.mean_frenkel`). A draw whose calculation is refused is left out with
its reason in the notes; the energies of the others stand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pymatgen.core import Structure

from screening.transport.defect_cache import FrenkelCache, frenkel_key
from screening.transport.defects import DefectError, DefectOptions, frenkel_energy_with_potential_eV

#: Ordered configurations averaged for a disordered full sublattice unless the run says otherwise.
DEFAULT_FRENKEL_CONFIGURATIONS = 3
#: In the Frenkel note of a structure whose energy is a mean over several configurations.
MEAN_OF_CONFIGURATIONS = "mean Frenkel fraction of"


@dataclass(frozen=True)
class PotentialFrenkel:
    """The Frenkel energies the potential gave for one structure.

    Attributes:
        energies_eV: one per configuration whose calculation succeeded, in seed order (empty: none did).
        n_drawn: configurations attempted (1 for an ordered structure).
        ordered: the structure is ordered (its one configuration is itself).
        refusals: the reason of each configuration that gave no energy.
    """

    energies_eV: tuple[float, ...]
    n_drawn: int
    ordered: bool
    refusals: tuple[str, ...] = field(default=())

    def source(self, model_name: str) -> str:
        """What the row's ``Frenkel energy from ...`` note names."""
        if self.ordered:
            return model_name
        if self.n_drawn == 1:
            return f"{model_name} on one ordered configuration"
        values = ", ".join(f"{e:.2f}" for e in self.energies_eV)
        return (
            f"{model_name}, {MEAN_OF_CONFIGURATIONS} {len(self.energies_eV)} ordered configuration(s) "
            f"(E_F {values} eV)"
        )


def potential_frenkel_energies(
    structure: Structure,
    mobile_ion: str,
    site_frac: np.ndarray,
    interstitial_candidates_frac: np.ndarray,
    energy_model: Any,
    options: DefectOptions,
    configurations: int = DEFAULT_FRENKEL_CONFIGURATIONS,
    cache_dir: str | os.PathLike[str] | None = None,
) -> PotentialFrenkel:
    """Frenkel energies of ``structure`` from ``energy_model``: one configuration if it is ordered, else
    ``configurations`` (see the module docstring). Arguments as
    :func:`~screening.transport.defects.frenkel_energy_with_potential_eV`.

    Raises:
        ValueError: ``configurations`` below 1.
    """
    if configurations < 1:
        raise ValueError(f"frenkel_configurations must be at least 1, got {configurations}")
    cache = FrenkelCache(cache_dir) if cache_dir is not None else None
    n_drawn = 1 if structure.is_ordered else configurations
    energies: list[float] = []
    refusals: list[str] = []
    for offset in range(n_drawn):
        drawn = replace(options, configuration_seed=options.configuration_seed + offset)
        inputs = (structure, mobile_ion, site_frac, interstitial_candidates_frac, energy_model, drawn)
        try:
            if cache is None:
                energies.append(frenkel_energy_with_potential_eV(*inputs))
            else:
                energies.append(
                    cache.frenkel_energy_eV(
                        frenkel_key(*inputs), lambda inputs=inputs: frenkel_energy_with_potential_eV(*inputs)
                    )
                )
        except DefectError as exc:
            refusals.append(str(exc) if n_drawn == 1 else f"configuration {offset + 1}: {exc}")
    return PotentialFrenkel(tuple(energies), n_drawn, structure.is_ordered, tuple(refusals))
