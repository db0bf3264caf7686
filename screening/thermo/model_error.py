"""The energy model's own error on the energy above the hull, per registered model.

A hull distance predicted by a universal potential carries the model's error, which no configurational
spread shows (an ordered structure has none). Each registered model gets an error scale ``sigma_model``
(eV/atom), the standard deviation of a normal error on ``e_above_hull_eV``, from the model's published
benchmark on *new* compounds: Matbench Discovery (Riebesell et al., Nat. Mach. Intell. 7, 836 (2025)),
WBM test set, unique prototypes, energy above the MP hull from relaxed structures (the models' yml files
in github.com/janosh/matbench-discovery, ``metrics.discovery.unique_prototypes``):

=============== ============= ============== =================================
model            MAE (eV/atom)  RMSE (eV/atom)  sigma_model = MAE * sqrt(pi/2)
=============== ============= ============== =================================
sevennet-0       0.048          0.092          0.060
sevennet-l3i5    0.044          0.087          0.055
chgnet-0.3.0     0.063          0.103          0.079
=============== ============= ============== =================================

Why the published figure and not this project's own check: on the 36 textbook compounds of BENCHMARKS.md
("Stability sanity check") SevenNet-0 misses the MP energy by 10.4 meV/atom (MAE), CHGNet by 35.3, but
those compounds are in the models' training data (MPtrj); a screening candidate is a new compound, which
is what WBM measures. ``sigma = MAE * sqrt(pi/2)`` is the standard deviation of a normal distribution
with that mean absolute error; the real errors have heavier tails (RMSE about 1.9 x MAE), so a large miss
is more likely than the normal says: ``p_stable`` near 0 or 1 should be read with that in mind.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from screening.errors import InputError


@dataclass(frozen=True)
class ModelError:
    """Error scale of one model on the energy above the hull.

    Attributes:
        sigma_eV: standard deviation of the model error on ``e_above_hull_eV``, eV/atom.
        mae_eV: the published mean absolute error it comes from, eV/atom.
        rmse_eV: the published root-mean-square error, eV/atom.
        source: where the numbers come from.
    """

    sigma_eV: float
    mae_eV: float
    rmse_eV: float
    source: str

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


_MATBENCH = "Matbench Discovery, WBM unique prototypes, E_above_hull MAE; sigma = MAE * sqrt(pi/2)"


def _from_mae(mae_eV: float, rmse_eV: float) -> ModelError:
    return ModelError(round(mae_eV * math.sqrt(math.pi / 2), 4), mae_eV, rmse_eV, _MATBENCH)


#: Registered model name -> its error scale (see the module docstring).
MODEL_ERRORS: dict[str, ModelError] = {
    "sevennet-0": _from_mae(0.048, 0.092),
    "sevennet-l3i5": _from_mae(0.044, 0.087),
    "chgnet-0.3.0": _from_mae(0.063, 0.103),
}


def model_error(name: str) -> ModelError:
    """The error scale of the registered model ``name``.

    Raises:
        InputError: for a model without a documented error scale.
    """
    try:
        return MODEL_ERRORS[name]
    except KeyError:
        raise InputError(
            f"no error scale documented for model {name!r} (screening/thermo/model_error.py); "
            f"known: {', '.join(MODEL_ERRORS)}"
        ) from None
