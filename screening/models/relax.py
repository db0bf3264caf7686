"""Relaxation with a model's ASE calculator (FIRE or BFGS, optionally with the cell).

Structures that come relaxed (Materials Project) are evaluated as they are; hypothetical ones (substituted
prototypes, user CIFs) can first be relaxed in positions and cell with the same potential that scores
them, so that an unrelaxed geometry does not masquerade as instability. The transport stage relaxes with
it too, at fixed cell: the framework's clean-up and the defect supercells of the Frenkel energy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ase.optimize
import numpy as np
from ase.filters import FrechetCellFilter
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from screening.errors import InputError
from screening.models.base import EnergyModel
from screening.models.registry import OPTIMIZER_NAMES, OptimizerName

#: Force convergence criterion (eV/angstrom; the cell filter turns stress into the same units).
DEFAULT_FMAX_EV_PER_A = 0.05
#: Cap on optimiser steps.
DEFAULT_MAX_STEPS = 500
#: The ASE optimiser class of each name in :data:`screening.models.registry.OPTIMIZER_NAMES`.
OPTIMIZERS = {name: getattr(ase.optimize, name) for name in OPTIMIZER_NAMES}


@dataclass(frozen=True)
class RelaxResult:
    """Outcome of one relaxation.

    Attributes:
        structure: the relaxed structure (the last one reached when not converged).
        energy_eV: the model energy of ``structure`` (eV, the whole cell).
        n_steps: optimiser steps taken.
        converged: whether the largest force (and stress) fell below ``fmax`` within the step cap.
    """

    structure: Structure
    energy_eV: float
    n_steps: int
    converged: bool

    @property
    def energy_per_atom_eV(self) -> float:
        """The model energy of ``structure`` in eV/atom."""
        return self.energy_eV / len(self.structure)


def relax_structure(
    model: EnergyModel,
    structure: Structure,
    *,
    fmax_eV_per_A: float = DEFAULT_FMAX_EV_PER_A,
    max_steps: int = DEFAULT_MAX_STEPS,
    relax_cell: bool = True,
    calculator: Any | None = None,
    optimizer: OptimizerName = "FIRE",
) -> RelaxResult:
    """Relax an ordered structure, positions and (through ``FrechetCellFilter``) the cell.

    Args:
        model: the potential; its :meth:`EnergyModel.ase_calculator` computes energies and forces.
        structure: an ordered structure.
        fmax_eV_per_A: convergence threshold on the largest force component norm.
        max_steps: cap on optimiser steps (0 evaluates without moving anything).
        relax_cell: also relax the lattice (at zero external pressure).
        calculator: an ASE calculator to reuse across calls (default: a new one from ``model``).
        optimizer: a key of :data:`OPTIMIZERS`.

    Returns:
        The relaxed structure with its energy.

    Raises:
        ValueError: for a disordered structure or bad settings; optimiser failures propagate.
    """
    if not structure.is_ordered:
        raise InputError("only ordered structures can be relaxed; sample ordered configurations first")
    if fmax_eV_per_A <= 0 or max_steps < 0:
        raise InputError(f"need fmax > 0 and max_steps >= 0, got {fmax_eV_per_A}, {max_steps}")
    if optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = calculator if calculator is not None else model.ase_calculator()
    target = FrechetCellFilter(atoms) if relax_cell else atoms
    dynamics = OPTIMIZERS[optimizer](target, logfile=None)
    converged = bool(dynamics.run(fmax=fmax_eV_per_A, steps=max_steps))
    energy_eV = float(atoms.get_potential_energy())
    if not np.isfinite(energy_eV):
        raise InputError("relaxation reached a non-finite energy")
    relaxed = AseAtomsAdaptor.get_structure(atoms)
    return RelaxResult(relaxed, energy_eV, int(dynamics.nsteps), converged)
