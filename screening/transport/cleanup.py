"""Coordinates one can compute a barrier on: a short relaxation of the framework with the run's potential.

Published coordinates carry errors (OBELiX adds 0.01 fractional Gaussian noise to every CIF, about
0.1 A; refinements of light atoms next to heavy ones are no better), and a bond-valence barrier moves
with the anion positions. Symmetrising to the CIF's space group cannot remove such errors, which keep
the symmetry; relaxing with the potential can, because it restores the bond lengths the potential
learned. The cell is kept (it is measured far more precisely than the positions).

Ordered structures are relaxed as they are. A disordered one is represented by one ordered
configuration of the disorder sampler (:func:`screening.models.sample_configurations`); that
configuration is relaxed, and each fully occupied site of the parent takes the mean displacement of its
images (periodic images unwrapped), whatever its species mix: a solid-solution site such as S/Se in
Li6P(S,Se)5Br or Ge/P in LGPS always holds an atom, and its published position is the mean over the
disorder that the images' mean displacement corrects. (Until 2026-12-06 only single-species sites
moved, so the mixed anion sites of the Se-doped argyrodites kept their noise, a P-S bond of 2.29 A in
OBELiX ``96f``.) Partially occupied sites (split mobile-ion positions, sites with vacancies) keep their
published positions: an image is empty in some configurations and has no single relaxed position.
Only the framework enters the bond-valence landscape, so that is what needs cleaning.

One configuration breaks the parent's symmetry: each anion relaxes towards or away from the ions that
this configuration happens to put next to it (up to 0.6 A in a garnet, whose cell has a single image
of each site), and those local distortions narrow some bottlenecks of the landscape. The ensemble of
configurations is invariant under the parent's space group, so its mean displacement is symmetric; the
displacements are therefore averaged over the parent's symmetry operations (each operation maps the
configuration to an equally likely one), which keeps the symmetric part, the correction of the
coordinates, and removes the configuration's own distortion. Ordered structures relax symmetrically
anyway; the average only removes numerical noise there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.core import Structure

from screening.errors import ScreeningError
from screening.models.registry import OptimizerName
from screening.structures import is_partially_occupied


class CleanupError(ScreeningError, RuntimeError):
    """The framework could not be relaxed."""


@dataclass(frozen=True)
class CleanupOptions:
    """Settings of the framework relaxation (nested in the run settings as ``cleanup``).

    Attributes:
        fmax_eV_per_A: force threshold, eV/angstrom.
        max_steps: step cap.
        seed: seed of the configuration sampled for a disordered structure.
        symprec_A: tolerance of the parent's space group, by whose operations the displacements are
            averaged (published coordinates are good to about 0.1 A).
        optimizer: ``FIRE`` or ``BFGS`` (:data:`screening.models.registry.OPTIMIZER_NAMES`).
    """

    fmax_eV_per_A: float = 0.05
    max_steps: int = 100
    seed: int = 0
    symprec_A: float = 0.1
    optimizer: OptimizerName = "FIRE"


@dataclass(frozen=True)
class CleanedFramework:
    """The outcome of :func:`relaxed_framework`.

    Attributes:
        structure: the structure with its fully occupied sites at their relaxed positions.
        converged: whether the relaxation brought the forces below ``fmax_eV_per_A`` within
            ``max_steps``; if not, the positions are those of the last step (a partial clean-up, still
            closer to the potential's minimum than the published ones).
        n_steps: relaxation steps taken.
        energy_per_atom_eV: the potential's energy of the relaxed (configuration's) cell, eV/atom.
    """

    structure: Structure
    converged: bool
    n_steps: int
    energy_per_atom_eV: float


def _is_framework_site(site: Any) -> bool:
    """Whether the site always holds an atom (one species or a mix, occupancies summing to 1 within the
    rounding of published CIFs)."""
    return not is_partially_occupied(site.species.num_atoms)


def _species_key(site: Any) -> str:
    """The site's elements and their occupancies (``"Ge:0.500 P:0.500"``): the sites a symmetry operation
    may map onto each other."""
    occupancy = site.species.element_composition  # oxidation states merged per element
    return " ".join(f"{symbol}:{occupancy[symbol]:.3f}" for symbol in sorted(map(str, occupancy)))


def relaxed_framework(
    structure: Structure, energy_model: Any, options: CleanupOptions = CleanupOptions()
) -> CleanedFramework:
    """``structure`` with its fully occupied sites moved to their relaxed positions (cell fixed), and
    whether the relaxation converged.

    Args:
        structure: ordered or disordered structure (species and occupancies are kept as they are).
        energy_model: an ``EnergyModel`` of the registry.
        options: relaxation settings.

    Raises:
        CleanupError: the configuration cannot be sampled or relaxed.
    """
    from screening.models import one_configuration, relax_structure

    plain = structure.copy()
    plain.remove_oxidation_states()
    try:
        configuration, scaling = one_configuration(plain, options.seed)
        relaxation = relax_structure(
            energy_model,
            configuration,
            fmax_eV_per_A=options.fmax_eV_per_A,
            max_steps=options.max_steps,
            relax_cell=False,
            optimizer=options.optimizer,
        )
    except Exception as exc:  # noqa: BLE001 - any sampling or backend failure becomes the reason
        raise CleanupError(f"framework relaxation failed: {type(exc).__name__}: {exc}") from exc

    before = configuration.frac_coords * scaling  # in parent-cell fractions
    moved = relaxation.structure.frac_coords * scaling
    shift_frac = moved - before
    shift_frac -= np.rint(shift_frac)
    cleaned = structure.copy()
    framework = [i for i, site in enumerate(structure) if _is_framework_site(site)]
    if not framework:
        return CleanedFramework(
            cleaned, relaxation.converged, relaxation.n_steps, relaxation.energy_per_atom_eV
        )
    parent_frac = structure.frac_coords[framework]
    keys = np.array([_species_key(structure[i]) for i in framework])
    images = before % 1.0
    configuration_symbols = np.array([site.specie.symbol for site in configuration])
    framework_shift = np.zeros_like(parent_frac)
    for k, index in enumerate(framework):
        delta = images - parent_frac[k]
        delta -= np.rint(delta)
        distance = np.linalg.norm(delta @ structure.lattice.matrix, axis=1)
        elements = [element.symbol for element in structure[index].species.elements]
        mine = np.isin(configuration_symbols, elements) & (distance < 0.1)
        if mine.any():
            framework_shift[k] = shift_frac[mine].mean(axis=0)
    framework_shift = symmetrized_shifts(structure, parent_frac, keys, framework_shift, options.symprec_A)
    for k, index in enumerate(framework):
        cleaned.replace(
            index, cleaned[index].species, parent_frac[k] + framework_shift[k], coords_are_cartesian=False
        )
    return CleanedFramework(cleaned, relaxation.converged, relaxation.n_steps, relaxation.energy_per_atom_eV)


def symmetrized_shifts(
    structure: Structure, frac: np.ndarray, kinds: np.ndarray, shifts_frac: np.ndarray, symprec_A: float
) -> np.ndarray:
    """``shifts_frac`` of the sites at ``frac`` averaged over the space group of ``structure``.

    An operation x -> W x + t maps site i onto a site j of the same kind (``kinds``: element, or the
    elements of a mixed site); a symmetric displacement
    field has d_j = W d_i, so each operation gives the estimate W^-1 d_j of d_i, and the mean of the
    estimates is the projection of the field onto the symmetric ones. Without a space group (spglib
    finds none) the shifts are returned as they are.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        operations = SpacegroupAnalyzer(structure, symprec=symprec_A).get_symmetry_operations(cartesian=False)
    except Exception:  # noqa: BLE001 - spglib's failures have no common type; P1 is the safe answer
        return shifts_frac
    same_kind = kinds[:, None] == kinds[None, :]
    total, used = np.zeros_like(shifts_frac), 0
    for operation in operations:
        rotation = operation.rotation_matrix
        delta = (frac @ rotation.T + operation.translation_vector)[:, None, :] - frac[None, :, :]
        delta -= np.rint(delta)
        distance = np.linalg.norm(delta @ structure.lattice.matrix, axis=2)
        distance[~same_kind] = np.inf
        partner = distance.argmin(axis=1)
        if not (distance[np.arange(len(frac)), partner] < 3 * symprec_A).all():
            continue  # an operation of the tolerance that does not map every site: no estimate from it
        total += shifts_frac[partner] @ np.linalg.inv(rotation).T
        used += 1
    return total / used if used else shifts_frac
