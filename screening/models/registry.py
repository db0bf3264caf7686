"""Load pretrained energy models by name, lazily, once per process and device.

Weights come from inside the installed ``sevenn`` and ``chgnet`` wheels; nothing is downloaded. A model is
built on first use and cached, so every Dask task on a worker shares one copy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from screening.models.base import EnergyModel, resolve_device

#: The model used when none is named.
DEFAULT_MODEL = "sevennet-0"


def _sevennet(name: str, device: torch.device) -> EnergyModel:
    from screening.models._sevennet import SevenNetModel

    return SevenNetModel(name, device)


def _chgnet(name: str, device: torch.device) -> EnergyModel:
    from screening.models._chgnet import CHGNetModel

    return CHGNetModel(name, device)


_FACTORIES: dict[str, Callable[[str, torch.device], EnergyModel]] = {
    "sevennet-0": _sevennet,
    "sevennet-l3i5": _sevennet,
    "chgnet-0.3.0": _chgnet,
}


def available_models() -> list[str]:
    """Names accepted by :func:`load_model`, the default first."""
    return [DEFAULT_MODEL, *sorted(name for name in _FACTORIES if name != DEFAULT_MODEL)]


@functools.cache
def _load(name: str, device: torch.device) -> EnergyModel:
    return _FACTORIES[name](name, device)


def load_model(name: str = DEFAULT_MODEL, device: str | torch.device | None = None) -> EnergyModel:
    """The pretrained model ``name`` on ``device``, built on first call and cached per (name, device).

    Args:
        name: one of :func:`available_models`.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``, or None for CUDA when available,
            else CPU.

    Returns:
        The model, ready for :meth:`EnergyModel.predict_energy_per_atom`.

    Raises:
        ValueError: for an unknown name or an unavailable device.
    """
    if name not in _FACTORIES:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    return _load(name, resolve_device(device))
