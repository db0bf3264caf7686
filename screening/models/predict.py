"""Energies of ordered and disordered structures, one :class:`EnergyPrediction` per input structure.

Ordered structures are evaluated as they are. Disordered ones follow a strategy:

- ``sample``: K ordered configurations in a supercell that represents the occupancies
  (:mod:`screening.models.disorder`); the result is the mean and standard deviation of their energies per
  atom. Vacancies are removed, so each configuration's energy per real atom is an energy per atom of the
  parent composition (to the reported composition error), directly comparable with a hull at that
  composition.
- ``meanfield``: one evaluation with occupancy vectors in place of one-hot species vectors (see the
  backends); the energy is per atom of the disordered composition. Measured against ``sample`` on the
  bundled disordered set (BENCHMARKS.md) it is within 1-100 meV/atom for purely substitutional disorder
  but off by 0.3-8 eV/atom when sites are partly empty (split sites, vacancy-rich sublattices), which is
  why ``sample`` is the default.
- ``native``: one evaluation of the occupancy-native ensemble distilled from the run's model
  (:mod:`screening.models.native_energy`); its members' spread is reported (``native_spread_eV``).
- ``auto``: ``native`` where the ensemble's spread is at most its calibrated threshold, else ``sample``
  (the teacher); each structure reports the path it took and the spread that decided it.

All configurations and structures of a call go through the model together, batched by atom count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pymatgen.core import Structure

from screening.errors import InputError, InputTypeError, InternalError
from screening.models.base import EnergyModel, describe_error
from screening.models.disorder import DEFAULT_MAX_SUPERCELL_SITES, sample_configurations
from screening.models.registry import (
    DEFAULT_DISORDER_STRATEGY,
    DEFAULT_NATIVE_MODEL,
    DISORDER_STRATEGIES,
    DisorderStrategy,
    load_model,
)
from screening.models.relax import DEFAULT_FMAX_EV_PER_A, DEFAULT_MAX_STEPS, relax_structure

if TYPE_CHECKING:
    from screening.models.native_energy import NativeEnergyEnsemble

#: ``disorder_strategy`` reported for a structure that was already ordered.
ORDERED = "ordered"


@dataclass(frozen=True)
class EnergyPrediction:
    """Model energy of one input structure.

    Attributes:
        energy_per_atom_eV: energy per atom (eV/atom); for ``sample``, the mean over configurations;
            NaN when ``error`` is set.
        energy_per_atom_std_eV: standard deviation (ddof=1) of the configuration energies per atom
            (``sample`` with K > 1), else 0.
        n_configurations: number of model evaluations behind the value (K for ``sample``, else 1; 0 on
            error).
        disorder_strategy: ``"ordered"`` for an ordered input, else the path taken (``sample``,
            ``meanfield`` or ``native``; ``auto`` takes one of ``native`` and ``sample``).
        error: why the structure could not be evaluated, else None.
        composition_error: largest atom-fraction difference between the sampled configurations and the
            parent composition (``sample`` only, else 0).
        relax_converged: whether every relaxation converged (None when not relaxed).
        pooled_node_features: with ``feature_ion``: the model's invariant node features pooled over the
            sites of that ion and over all other sites, averaged over the configurations, float32 array of
            shape ``(n_layers, 2, n_channels)`` (``[:, 0]`` the ion's sites, ``[:, 1]`` the framework's;
            NaN where a configuration has no such site); else None.
        native_spread_eV: the native ensemble's spread (eV/atom) where it evaluated the structure
            (``native``, and ``auto`` on either path); else None.
    """

    energy_per_atom_eV: float
    energy_per_atom_std_eV: float
    n_configurations: int
    disorder_strategy: str
    error: str | None = None
    composition_error: float = 0.0
    relax_converged: bool | None = None
    pooled_node_features: np.ndarray | None = None
    native_spread_eV: float | None = None


def pool_node_features(features: np.ndarray, symbols: Sequence[str], ion: str) -> np.ndarray:
    """Mean node features over the sites of ``ion`` and over the other sites.

    Args:
        features: ``(n_sites, n_layers, n_channels)`` from ``try_predict_with_node_features``.
        symbols: element symbol of each site (an ordered structure).
        ion: the element pooled on its own (the mobile ion).

    Returns:
        ``(n_layers, 2, n_channels)``: ``[:, 0]`` over the ion's sites, ``[:, 1]`` over the others (NaN
        where there are none).
    """
    is_ion = np.array([symbol == ion for symbol in symbols])
    pooled = np.full((features.shape[1], 2, features.shape[2]), np.nan, dtype=np.float32)
    for column, mask in enumerate((is_ion, ~is_ion)):
        if mask.any():
            pooled[:, column] = features[mask].mean(axis=0)
    return pooled


def _failed(strategy: str, error: str) -> EnergyPrediction:
    return EnergyPrediction(float("nan"), float("nan"), 0, strategy, error)


def _mean_over_configurations(pooled: list[np.ndarray] | None) -> np.ndarray | None:
    if not pooled:
        return None
    stacked = np.stack(pooled)
    with np.errstate(invalid="ignore"):  # a configuration without the ion's sites is NaN, left out
        counts = np.isfinite(stacked).sum(axis=0)
        return np.where(counts > 0, np.nansum(stacked, axis=0) / np.maximum(counts, 1), np.nan).astype(
            np.float32
        )


def _native_ensemble(native_model: str | NativeEnergyEnsemble, teacher: EnergyModel) -> NativeEnergyEnsemble:
    """The native ensemble to use, checked to imitate ``teacher`` (its energies are on that scale)."""
    from screening.models.native_energy import load_native_model

    ensemble = load_native_model(native_model) if isinstance(native_model, str) else native_model
    if ensemble.teacher != teacher.name:
        raise InputError(
            f"native model {ensemble.name or ''} was distilled from {ensemble.teacher}, not from the run's model "
            f"{teacher.name}: its energies are on another scale (train one with `screening train energy`)"
        )
    return ensemble


def predict_energies(
    model: EnergyModel | str,
    structures: Sequence[Structure],
    *,
    disorder_strategy: DisorderStrategy = DEFAULT_DISORDER_STRATEGY,
    n_samples: int = 8,
    seed: int = 0,
    max_atoms_per_batch: int | None = None,
    relax: bool = False,
    fmax_eV_per_A: float = DEFAULT_FMAX_EV_PER_A,
    max_relax_steps: int = DEFAULT_MAX_STEPS,
    max_supercell_sites: int = DEFAULT_MAX_SUPERCELL_SITES,
    feature_ion: str | None = None,
    native_model: str | NativeEnergyEnsemble = DEFAULT_NATIVE_MODEL,
) -> list[EnergyPrediction]:
    """Energy per atom of each structure; a structure's failure is its own ``error``, never the batch's.

    Args:
        model: an :class:`EnergyModel` or a registry name.
        structures: ordered and/or disordered pymatgen structures.
        disorder_strategy: ``"sample"``, ``"meanfield"``, ``"native"`` or ``"auto"`` for the disordered
            ones (see the module docstring).
        n_samples: configurations per disordered structure (``sample``).
        seed: sampling seed; each structure's configurations depend only on it and the structure.
        max_atoms_per_batch: cap on the total atoms per forward pass (None: the cap measured for the model
            on its device).
        relax: relax every ordered structure / sampled configuration first (FIRE + FrechetCellFilter);
            a disordered structure under ``meanfield`` then gets an error (nothing to relax).
        fmax_eV_per_A: relaxation force threshold.
        max_relax_steps: relaxation step cap.
        max_supercell_sites: largest sampling supercell, in sites.
        feature_ion: also keep the model's node features of the same forward passes, pooled over this
            ion's sites and over the rest (:func:`pool_node_features`; ``pooled_node_features``). Needs a
            model with node features; a ``meanfield`` or ``native`` structure gets none (no ordered
            sites to pool).
        native_model: the occupancy-native ensemble of ``native`` and ``auto`` (a shipped name, a folder,
            or the ensemble itself); it must have been distilled from ``model``.

    Returns:
        One prediction per input structure, in order.

    Raises:
        ValueError: for an unknown strategy, ``n_samples < 1``, or a native ensemble distilled from
            another model (settings, not data).
    """
    if disorder_strategy not in DISORDER_STRATEGIES:
        raise InputError(f"disorder_strategy must be one of {DISORDER_STRATEGIES}, got {disorder_strategy!r}")
    if n_samples < 1:
        raise InputError(f"n_samples must be >= 1, got {n_samples}")
    energy_model = load_model(model) if isinstance(model, str) else model

    results: list[EnergyPrediction | None] = [None] * len(structures)
    strategy_of: list[str] = [ORDERED] * len(structures)
    composition_error = np.zeros(len(structures))
    spread_of: dict[int, float] = {}
    ordered_jobs: list[tuple[int, Structure]] = []  # (input index, ordered structure to evaluate)
    meanfield_jobs: list[tuple[int, Structure]] = []
    native_jobs: list[tuple[int, Structure]] = []
    to_sample: list[tuple[int, Structure]] = []
    for index, structure in enumerate(structures):
        try:
            if not isinstance(structure, Structure):
                raise InputTypeError(f"expected a pymatgen Structure, got {type(structure).__name__}")
            if structure.is_ordered:
                ordered_jobs.append((index, structure))
            elif disorder_strategy in ("meanfield", "native"):
                strategy_of[index] = disorder_strategy
                if relax:
                    raise InputError("relax=True needs ordered structures; use disorder_strategy='sample'")
                (meanfield_jobs if disorder_strategy == "meanfield" else native_jobs).append(
                    (index, structure)
                )
            elif disorder_strategy == "auto" and not relax:
                native_jobs.append((index, structure))
            else:
                to_sample.append((index, structure))
        except Exception as err:
            results[index] = _failed(strategy_of[index], describe_error(err))

    if native_jobs:
        ensemble = _native_ensemble(native_model, energy_model)
        native = ensemble.predict([s for _, s in native_jobs], teacher_model=energy_model)
        for (index, structure), energy, spread, error in zip(
            native_jobs, native.energy_per_atom_eV, native.spread_eV, native.errors, strict=True
        ):
            if error is None:
                spread_of[index] = float(spread)
            trusted = error is None and spread <= ensemble.threshold_eV
            if disorder_strategy == "native" or trusted:
                strategy_of[index] = "native"
                results[index] = (
                    _failed("native", error)
                    if error is not None
                    else EnergyPrediction(
                        float(energy), float(spread), 1, "native", native_spread_eV=float(spread)
                    )
                )
            else:  # auto: the ensemble is unsure (or cannot evaluate it): ask the teacher
                to_sample.append((index, structure))

    for index, structure in to_sample:
        strategy_of[index] = "sample"
        try:
            sample = sample_configurations(
                structure, n_samples, seed=seed, max_supercell_sites=max_supercell_sites
            )
        except Exception as err:
            results[index] = _failed("sample", describe_error(err))
            continue
        composition_error[index] = sample.composition_error
        ordered_jobs.extend((index, configuration) for configuration in sample.structures)

    converged: dict[int, bool] = {}
    if relax:
        calculator = energy_model.ase_calculator() if ordered_jobs else None
        relaxed_jobs = []
        for index, structure in ordered_jobs:
            if results[index] is not None:
                continue
            try:
                outcome = relax_structure(
                    energy_model,
                    structure,
                    fmax_eV_per_A=fmax_eV_per_A,
                    max_steps=max_relax_steps,
                    calculator=calculator,
                )
            except Exception as err:
                results[index] = _failed(strategy_of[index], f"relaxation failed: {describe_error(err)}")
                continue
            converged[index] = converged.get(index, True) and outcome.converged
            relaxed_jobs.append((index, outcome.structure))
        ordered_jobs = [(i, s) for i, s in relaxed_jobs if results[i] is None]

    ordered_structures = [s for _, s in ordered_jobs]
    if feature_ion is None:
        energies, errors = energy_model.try_predict_energy_per_atom(
            ordered_structures, max_atoms_per_batch=max_atoms_per_batch
        )
        node_features: list[np.ndarray | None] = [None] * len(ordered_jobs)
    else:
        energies, errors, node_features = energy_model.try_predict_with_node_features(
            ordered_structures, max_atoms_per_batch=max_atoms_per_batch
        )
    per_structure: dict[int, list[float]] = {}
    pooled: dict[int, list[np.ndarray]] = {}
    for (index, structure), energy, error, features in zip(
        ordered_jobs, energies, errors, node_features, strict=True
    ):
        if results[index] is not None:
            continue
        if error is not None:
            what = "a sampled configuration: " if strategy_of[index] == "sample" else ""
            results[index] = _failed(strategy_of[index], what + error)
            continue
        per_structure.setdefault(index, []).append(float(energy))
        if features is not None and feature_ion is not None:
            symbols = [site.specie.symbol for site in structure]
            pooled.setdefault(index, []).append(pool_node_features(features, symbols, feature_ion))

    mf_energies, mf_errors = energy_model.try_predict_energy_per_atom(
        [s for _, s in meanfield_jobs], meanfield=True, max_atoms_per_batch=max_atoms_per_batch
    )
    for (index, _), energy, error in zip(meanfield_jobs, mf_energies, mf_errors, strict=True):
        results[index] = (
            _failed("meanfield", error)
            if error is not None
            else EnergyPrediction(float(energy), 0.0, 1, "meanfield")
        )

    for index, values in per_structure.items():
        if results[index] is not None:
            continue
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        results[index] = EnergyPrediction(
            float(np.mean(values)),
            std,
            len(values),
            strategy_of[index],
            composition_error=float(composition_error[index]),
            relax_converged=converged.get(index) if relax else None,
            pooled_node_features=_mean_over_configurations(pooled.get(index)),
            native_spread_eV=spread_of.get(index),
        )
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:  # every path above fills its structures; this guards the bookkeeping itself
        raise InternalError(f"no prediction was recorded for structures {missing}")
    return results  # type: ignore[return-value]
