"""Pretrained universal GNN potentials: a registry, batched inference, disorder strategies, relaxation.

Public API::

    from screening.models import load_model, predict_energies

    model = load_model()                      # "sevennet-0" on CUDA if available, else CPU
    e = model.predict_energy_per_atom(ordered_structures)             # eV/atom, batched by atom count
    predictions = predict_energies(model, structures, disorder_strategy="sample")

Backend-specific code sits in private modules (``_sevennet.py``, ``_chgnet.py``) behind this one. The
names below are imported on first use (PEP 562), so reading the registry's model names (what the run
settings validate against) does not import torch.
"""

from __future__ import annotations

from screening._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "EnergyModel": "screening.models.base",
    "batches_by_atom_count": "screening.models.batching",
    "ConfigurationSample": "screening.models.disorder",
    "choose_supercell": "screening.models.disorder",
    "one_configuration": "screening.models.disorder",
    "sample_configurations": "screening.models.disorder",
    "DEFAULT_DISORDER_STRATEGY": "screening.models.registry",
    "DISORDER_STRATEGIES": "screening.models.registry",
    "DisorderStrategy": "screening.models.registry",
    "EnergyPrediction": "screening.models.predict",
    "predict_energies": "screening.models.predict",
    "DEFAULT_MODEL": "screening.models.registry",
    "MODEL_NAMES": "screening.models.registry",
    "available_models": "screening.models.registry",
    "load_model": "screening.models.registry",
    "RelaxResult": "screening.models.relax",
    "relax_structure": "screening.models.relax",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
