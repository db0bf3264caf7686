"""The ``md`` migration-barrier method: NVT molecular dynamics with a pretrained universal potential.

For each temperature in ``temperatures_K`` (default 600-1000 K) the (ordered) structure is repeated to a
supercell at least ``supercell_min_length_A`` wide in every direction, given Maxwell-Boltzmann velocities
and run in the NVT ensemble with the Bussi stochastic velocity-rescaling thermostat (which leaves the
dynamics, hence diffusion, nearly unperturbed). The mobile-ion tracer diffusivity D(T) comes from the mean
squared displacement via ``pymatgen-analysis-diffusion``'s ``DiffusionAnalyzer``; an Arrhenius fit
``D = D0 exp(-Ea / k_B T)`` of ln D against 1/T (``fit_arrhenius``) gives Ea, its standard error (with
three or more temperatures) and D extrapolated to the target temperature.

Production lengths are parameters: the defaults (20 ps per temperature) suit a GPU; tests run a few
hundred steps on a tiny cell. The potential comes from the project's model registry
(:func:`screening.models.load_model`; SevenNet-0 by default, weights inside the ``sevenn`` wheel), so a
worker that already loaded the model for the stability stage reuses it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.core import Structure

from screening.constants import BOLTZMANN_eV_PER_K
from screening.errors import ScreeningError
from screening.graphs import perpendicular_widths_A
from screening.models.registry import DEFAULT_MODEL

#: Default potential: the registry's default (SevenNet-0, shipped with ``sevenn``).
DEFAULT_MD_MODEL = DEFAULT_MODEL


@dataclass(frozen=True)
class MDOptions:
    """Simulation settings of the md method (the run settings nest this as ``md``).

    Attributes:
        temperatures_K: MD temperatures (K), at least two.
        n_steps: production steps per temperature.
        equilibration_steps: discarded steps per temperature.
        time_step_fs: MD time step (fs).
        step_skip: steps between snapshots.
        supercell_min_length_A: minimum perpendicular width of the simulation cell (angstrom).
    """

    temperatures_K: tuple[float, ...] = (600.0, 800.0, 1000.0)
    n_steps: int = 10_000
    equilibration_steps: int = 1_000
    time_step_fs: float = 2.0
    step_skip: int = 10
    supercell_min_length_A: float = 10.0


_DEFAULTS = MDOptions()


class MDError(ScreeningError, RuntimeError):
    """The MD method could not produce a diffusivity or a barrier."""


@dataclass(frozen=True)
class MDResult:
    """Outcome of the md method.

    Attributes:
        temperatures_K: simulated temperatures (K).
        diffusivities_cm2_per_s: mobile-ion tracer diffusivity at each temperature (cm^2/s).
        ea_eV: Arrhenius activation energy (eV).
        ea_std_eV: its standard error (eV); None with only two temperatures.
        prefactor_cm2_per_s: Arrhenius prefactor D0 (cm^2/s).
        diffusivity_cm2_per_s: D extrapolated to the target temperature (cm^2/s).
    """

    temperatures_K: tuple[float, ...]
    diffusivities_cm2_per_s: tuple[float, ...]
    ea_eV: float
    ea_std_eV: float | None
    prefactor_cm2_per_s: float
    diffusivity_cm2_per_s: float


@functools.cache
def md_calculator(model_name: str = DEFAULT_MD_MODEL, device: str | None = None) -> Any:
    """ASE calculator of a registered pretrained potential (the model itself is cached per process).

    Args:
        model_name: a name from :func:`screening.models.available_models` (``sevennet-0``, ...).
        device: torch device (``cpu``, ``cuda``; None: CUDA when available).
    """
    from screening.models import load_model

    return load_model(model_name, device=device).ase_calculator()


def supercell_multiples(structure: Structure, min_length_A: float) -> tuple[int, int, int]:
    """Smallest repeats so that every perpendicular width of the supercell is at least ``min_length_A``."""
    widths = perpendicular_widths_A(structure.lattice.matrix)
    return tuple(max(1, math.ceil(min_length_A / w - 1e-9)) for w in widths)  # type: ignore[return-value]


def run_nvt(
    structure: Structure,
    calculator: Any,
    temperature_K: float,
    *,
    n_steps: int,
    equilibration_steps: int,
    time_step_fs: float,
    step_skip: int,
    seed: int = 0,
) -> list[Structure]:
    """NVT (Bussi) trajectory; returns one snapshot every ``step_skip`` steps after equilibration."""
    from ase import units
    from ase.md.bussi import Bussi
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from pymatgen.io.ase import AseAtomsAdaptor

    plain = structure.copy()
    plain.remove_oxidation_states()
    atoms = AseAtomsAdaptor.get_atoms(plain)
    atoms.calc = calculator
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    Stationary(atoms)
    dynamics = Bussi(
        atoms, time_step_fs * units.fs, temperature_K=temperature_K, taut=100 * units.fs, rng=rng
    )
    dynamics.run(equilibration_steps)
    snapshots: list[Structure] = []

    def record() -> None:
        snapshots.append(
            Structure(plain.lattice, plain.species, atoms.get_positions(), coords_are_cartesian=True)
        )

    record()
    dynamics.attach(record, interval=step_skip)
    dynamics.run(n_steps)
    if not np.all(np.isfinite(atoms.get_positions())):
        raise MDError(f"MD at {temperature_K} K diverged")
    return snapshots


def tracer_diffusivity_cm2_per_s(
    snapshots: Sequence[Structure], mobile_ion: str, temperature_K: float, time_step_fs: float, step_skip: int
) -> float:
    """Mobile-ion tracer diffusivity (cm^2/s) from MD snapshots, via ``DiffusionAnalyzer``."""
    from pymatgen.analysis.diffusion.analyzer import DiffusionAnalyzer

    analyzer = DiffusionAnalyzer.from_structures(
        list(snapshots), mobile_ion, temperature_K, time_step_fs, step_skip, smoothed=False
    )
    return float(analyzer.diffusivity)


def md_transport(
    structure: Structure,
    mobile_ion: str,
    temperature_K: float,
    *,
    temperatures_K: Sequence[float] = _DEFAULTS.temperatures_K,
    n_steps: int = _DEFAULTS.n_steps,
    equilibration_steps: int = _DEFAULTS.equilibration_steps,
    time_step_fs: float = _DEFAULTS.time_step_fs,
    step_skip: int = _DEFAULTS.step_skip,
    supercell_min_length_A: float = _DEFAULTS.supercell_min_length_A,
    model_name: str = DEFAULT_MD_MODEL,
    device: str | None = None,
    calculator: Any = None,
    seed: int = 0,
) -> MDResult:
    """Arrhenius barrier and diffusivity of the mobile ion from MD at several temperatures.

    Args:
        structure: ordered structure containing the mobile ion.
        mobile_ion: element symbol of the mobile ion.
        temperature_K: target temperature for the extrapolated diffusivity (K).
        temperatures_K, n_steps, equilibration_steps, time_step_fs, step_skip, supercell_min_length_A: the
            simulation settings, as in :class:`MDOptions`.
        model_name: pretrained potential for :func:`md_calculator`.
        device: torch device.
        calculator: an ASE calculator to use instead of :func:`md_calculator` (e.g. one already loaded).
        seed: random seed of the velocities and thermostat.

    Returns:
        Diffusivities, Arrhenius Ea with its standard error, and D at ``temperature_K``.

    Raises:
        MDError: disordered input, too few temperatures, divergence, or no diffusion observed.
    """
    from pymatgen.analysis.diffusion.analyzer import fit_arrhenius

    if not structure.is_ordered:
        raise MDError("the md method needs an ordered structure (order the disordered sites first)")
    if len(set(temperatures_K)) < 2:
        raise MDError("the md method needs at least two distinct temperatures")
    if n_steps < 2 * step_skip:
        raise MDError("n_steps must cover at least two snapshots")
    supercell = structure * supercell_multiples(structure, supercell_min_length_A)
    calc = calculator if calculator is not None else md_calculator(model_name, device)
    diffusivities = []
    for i, temp in enumerate(temperatures_K):
        snapshots = run_nvt(
            supercell,
            calc,
            temp,
            n_steps=n_steps,
            equilibration_steps=equilibration_steps,
            time_step_fs=time_step_fs,
            step_skip=step_skip,
            seed=seed + i,
        )
        d = tracer_diffusivity_cm2_per_s(snapshots, mobile_ion, temp, time_step_fs, step_skip)
        if not d > 0:
            raise MDError(
                f"no {mobile_ion} diffusion seen at {temp} K in {n_steps * time_step_fs / 1000:g} ps"
            )
        diffusivities.append(d)
    ea, prefactor, ea_std = fit_arrhenius(list(temperatures_K), diffusivities)
    d_target = prefactor * math.exp(-ea / (BOLTZMANN_eV_PER_K * temperature_K))
    return MDResult(
        tuple(float(t) for t in temperatures_K),
        tuple(diffusivities),
        float(ea),
        None if ea_std is None else float(ea_std),
        float(prefactor),
        float(d_target),
    )
