"""Pretrained universal GNN potentials: a registry, batched inference, disorder strategies, relaxation.

Public API::

    from screening.models import load_model, predict_energies

    model = load_model()                      # "sevennet-0" on CUDA if available, else CPU
    e = model.predict_energy_per_atom(ordered_structures)             # eV/atom, batched by atom count
    predictions = predict_energies(model, structures, disorder_strategy="sample")

Backend-specific code sits in private modules (``_sevennet.py``, ``_chgnet.py``) behind this one.
"""

from __future__ import annotations

from screening.models.base import EnergyModel
from screening.models.batching import batches_by_atom_count, default_max_atoms_per_batch
from screening.models.disorder import ConfigurationSample, choose_supercell, sample_configurations
from screening.models.predict import (
    DEFAULT_DISORDER_STRATEGY,
    DisorderStrategy,
    EnergyPrediction,
    predict_energies,
)
from screening.models.registry import DEFAULT_MODEL, available_models, load_model
from screening.models.relax import RelaxResult, relax_structure

__all__ = [
    "DEFAULT_DISORDER_STRATEGY",
    "DEFAULT_MODEL",
    "ConfigurationSample",
    "DisorderStrategy",
    "EnergyModel",
    "EnergyPrediction",
    "RelaxResult",
    "available_models",
    "batches_by_atom_count",
    "choose_supercell",
    "default_max_atoms_per_batch",
    "load_model",
    "predict_energies",
    "relax_structure",
    "sample_configurations",
]
