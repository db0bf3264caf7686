"""Deep ensembles of :class:`~screening.models.conductivity.ConductivityNet`: training and statistics.

Each member is trained from its own seed on its own bootstrap resample of the training entries
(Lakshminarayanan et al. 2017, with bagging), full batch with Adam and weight decay. At prediction the
members' means and variances combine as a uniform mixture::

    mean       = (1/M) sum_m mu_m
    epistemic  = std_m(mu_m)                       what more data would reduce (the members disagree)
    aleatoric  = sqrt((1/M) sum_m s_m^2)           the noise each member attributes to the data
    total      = sqrt(epistemic^2 + aleatoric^2)   the mixture's standard deviation

Everything is deterministic under the seed (``torch.manual_seed`` per member, CPU arithmetic).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from screening.models.conductivity import ConductivityNet, ConductivityTargets, multitask_nll


@dataclass(frozen=True)
class EnsembleOptions:
    """How an ensemble is trained.

    Attributes:
        n_members: number of members (at least 5 for usable spreads).
        epochs: full-batch optimisation steps per member.
        learning_rate: Adam learning rate.
        weight_decay: L2 penalty on the weights (AdamW).
        bootstrap: train each member on a bootstrap resample (else on all entries).
        seed: seed of member ``m`` is ``seed + m``.
    """

    n_members: int = 8
    epochs: int = 300
    learning_rate: float = 3e-3
    weight_decay: float = 1e-1
    bootstrap: bool = True
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_member(
    model: ConductivityNet, x: torch.Tensor, targets: ConductivityTargets, options: EnsembleOptions, seed: int
) -> ConductivityNet:
    """Train one member in place on ``(x, targets)`` (its bootstrap resample is drawn here from ``seed``)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model.reset_parameters()
    if options.bootstrap:
        index = torch.randint(len(x), (len(x),), generator=generator)
        x, targets = x[index], targets.subset(index)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=options.learning_rate, weight_decay=options.weight_decay
    )
    model.train()
    for _ in range(options.epochs):
        optimiser.zero_grad()
        loss = multitask_nll(*model(x), model, targets)
        loss.backward()
        optimiser.step()
    return model.eval()


def fit_ensemble(
    constructor: dict[str, Any], x: np.ndarray, targets: ConductivityTargets, options: EnsembleOptions
) -> list[ConductivityNet]:
    """Train ``options.n_members`` networks built from ``constructor`` (keyword arguments of
    :class:`ConductivityNet`) on standardised features ``x`` of shape ``(N, n_inputs)``."""
    inputs = torch.as_tensor(x, dtype=torch.float32)
    members = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # matrices of a few hundred rows: threads only add synchronisation
    try:
        for m in range(options.n_members):
            torch.manual_seed(options.seed + m)
            member = ConductivityNet(**constructor)
            members.append(train_member(member, inputs, targets, options, options.seed + m))
    finally:
        torch.set_num_threads(threads)
    return members


@dataclass(frozen=True)
class EnsemblePrediction:
    """Mixture statistics over the members, arrays of shape ``(N,)`` (see the module docstring).

    Attributes:
        mean: ensemble mean.
        epistemic_std: spread of the members' means.
        aleatoric_std: root mean of the members' predicted variances.
    """

    mean: np.ndarray
    epistemic_std: np.ndarray
    aleatoric_std: np.ndarray

    @property
    def std(self) -> np.ndarray:
        """Total standard deviation of the mixture."""
        return np.sqrt(self.epistemic_std**2 + self.aleatoric_std**2)

    def scaled(self, factor: float) -> EnsemblePrediction:
        """The same mixture with both standard deviations multiplied by ``factor`` (a calibration,
        :mod:`screening.models.calibration`)."""
        return EnsemblePrediction(self.mean, self.epistemic_std * factor, self.aleatoric_std * factor)


def mixture(means: np.ndarray, variances: np.ndarray) -> EnsemblePrediction:
    """Combine per-member ``means`` and ``variances`` of shape ``(M, N)`` into mixture statistics."""
    means = np.asarray(means, dtype=np.float64)
    variances = np.asarray(variances, dtype=np.float64)
    return EnsemblePrediction(
        mean=means.mean(axis=0),
        epistemic_std=means.std(axis=0),
        aleatoric_std=np.sqrt(variances.mean(axis=0)),
    )
