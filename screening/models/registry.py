"""Load pretrained energy models by name, lazily, once per process and device.

Weights come from inside the installed ``sevenn`` and ``chgnet`` wheels; nothing is downloaded. A model is
built on first use and cached, so every Dask task on a worker shares one copy. The names themselves need
no torch: :data:`MODEL_NAMES` is what the run settings validate against.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Literal, get_args

from screening.errors import InputError

if TYPE_CHECKING:
    import torch

    from screening.models.base import EnergyModel

#: The model used when none is named.
DEFAULT_MODEL = "sevennet-0"

#: How disordered structures are turned into energies (see :mod:`screening.models.predict`).
DisorderStrategy = Literal["sample", "meanfield", "native", "auto"]
DISORDER_STRATEGIES: tuple[str, ...] = get_args(DisorderStrategy)

#: Default strategy for disordered structures, chosen from the sample-vs-meanfield comparison in
#: BENCHMARKS.md ("Disorder strategies: sample vs meanfield").
DEFAULT_DISORDER_STRATEGY: DisorderStrategy = "sample"

#: The optimisers a relaxation can use (:data:`screening.models.relax.OPTIMIZERS` holds their ASE classes):
#: FIRE is robust far from a minimum (hypothetical structures, with the cell), BFGS takes fewer steps close
#: to one (point defects in a relaxed crystal).
OptimizerName = Literal["FIRE", "BFGS"]
OPTIMIZER_NAMES: tuple[str, ...] = get_args(OptimizerName)

#: The occupancy-native ensemble used by the ``native`` and ``auto`` strategies when none is named.
DEFAULT_NATIVE_MODEL = "native-sevennet-0"

#: Registered model name -> backend module (private, behind this registry).
_BACKENDS: dict[str, str] = {
    "sevennet-0": "sevennet",
    "sevennet-l3i5": "sevennet",
    "chgnet-0.3.0": "chgnet",
}

#: Every registered name, the default first.
MODEL_NAMES: tuple[str, ...] = (DEFAULT_MODEL, *sorted(name for name in _BACKENDS if name != DEFAULT_MODEL))


def available_models() -> list[str]:
    """Names accepted by :func:`load_model`, the default first."""
    return list(MODEL_NAMES)


@functools.cache
def _load(name: str, device: torch.device) -> EnergyModel:
    if _BACKENDS[name] == "sevennet":
        from screening.models._sevennet import SevenNetModel

        return SevenNetModel(name, device)
    from screening.models._chgnet import CHGNetModel

    return CHGNetModel(name, device)


def load_model(name: str = DEFAULT_MODEL, device: str | torch.device | None = None) -> EnergyModel:
    """The pretrained model ``name`` on ``device``, built on first call and cached per (name, device).

    Args:
        name: one of :func:`available_models`.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``, or None for CUDA when available,
            else CPU.

    Returns:
        The model, ready for :meth:`EnergyModel.predict_energy_per_atom`.

    Raises:
        InputError: for an unknown name or an unavailable device.
    """
    from screening.models.base import resolve_device

    if name not in _BACKENDS:
        raise InputError(f"unknown model {name!r}; available: {', '.join(MODEL_NAMES)}")
    return _load(name, resolve_device(device))
