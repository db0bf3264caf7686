"""A physics-shaped conductivity network and its multi-task, censored, uncertainty-weighted loss.

The network predicts the two parameters of the Arrhenius form ``sigma T = A exp(-Ea / k_B T)``: the
activation energy ``Ea`` (eV, kept positive by a softplus) and the conductivity at a reference
temperature ``T_ref`` (room temperature, where the measurements are), from which ``log10 A`` (A in
S K / cm) follows. The conductivity at any temperature is then::

    log10 sigma(T) = log10 A - log10 T - Ea / (k_B T ln 10)              (:func:`log10_sigma_arrhenius`)

so a prediction at 400 K is the same model's Arrhenius extrapolation, not a number it never saw. Why not
predict ``log10 A`` directly: at room temperature 0.1 eV of Ea is 1.7 decades of sigma, so a network that
outputs ``(Ea, log10 A)`` must learn two large, opposite contributions whose difference is the answer;
on held-out families the two miss independently and the error of log10 sigma explodes (measured: MAE 2.8
decades in grouped cross-validation, worse than the training mean). Anchored at ``T_ref``, the
room-temperature conductivity is one output and Ea only shapes the temperature dependence.

Loss (:func:`multitask_nll`): the Gaussian negative log-likelihood of two tasks, log10 sigma at the
measurement temperature (every entry) and Ea (the entries where it was measured), each with its own
variance ``s_t^2 = exp(log_var_t)``, a learned parameter of the network (Kendall, Gal & Cipolla 2018,
"Multi-task learning using uncertainty to weigh losses")::

    L = sum_i [ (y_i - mu_i)^2 / (2 s_sigma^2) + log s_sigma ] + sum_j [ (Ea_j - mu_j)^2 / (2 s_Ea^2) + log s_Ea ]

so neither task dominates by its scale (decades versus eV), and the learned variances are the model's
aleatoric noise of each task. A conductivity reported only as an upper bound ``b`` ("< 1e-10 S/cm") is
a censored observation: its term is ``-log P(y <= b) = -log Phi((b - mu) / s_sigma)``, which is small
whenever the prediction lies below the bound, instead of pulling the prediction onto the bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from screening.constants import BOLTZMANN_eV_PER_K

_LN10 = math.log(10.0)
_LOG_2PI = math.log(2.0 * math.pi)


def log10_sigma_arrhenius(
    ea_eV: torch.Tensor, log10_prefactor: torch.Tensor, temperature_K: float | torch.Tensor
) -> torch.Tensor:
    """log10 of sigma (S/cm) from ``sigma T = A exp(-Ea / k_B T)``, with ``A`` in S K / cm."""
    temperature = torch.as_tensor(temperature_K, dtype=ea_eV.dtype)
    return log10_prefactor - torch.log10(temperature) - ea_eV / (BOLTZMANN_eV_PER_K * temperature * _LN10)


class ConductivityNet(nn.Module):
    """Multi-layer perceptron from a structure's standardised features to ``(Ea, log10 A)``.

    Args:
        n_inputs: length of the feature vector.
        hidden: width of each hidden layer.
        n_hidden_layers: number of hidden layers (0: a linear model).
        dropout: dropout probability after each hidden layer (training only).
        ea_init_eV: the activation energy predicted at initialisation (the output bias).
        log10_sigma_init: log10 sigma at ``reference_temperature_K`` predicted at initialisation.
        log_var_init: initial log variance of both tasks.
        reference_temperature_K: the temperature whose conductivity is the network's second output.

    Shapes: ``forward(x)`` takes ``x`` of shape ``(N, n_inputs)`` and returns ``ea_eV`` and
    ``log10_prefactor`` (derived from the two outputs), each of shape ``(N,)``. The learned task log variances are the parameters
    ``log_var_log10_sigma`` and ``log_var_ea`` (scalars).
    """

    def __init__(
        self,
        n_inputs: int,
        hidden: int = 32,
        n_hidden_layers: int = 2,
        dropout: float = 0.1,
        ea_init_eV: float = 0.4,
        log10_sigma_init: float = -5.0,
        log_var_init: float = 0.0,
        reference_temperature_K: float = 298.15,
    ) -> None:
        super().__init__()
        self.n_inputs = n_inputs
        self.ea_init_eV = ea_init_eV
        self.log10_sigma_init = log10_sigma_init
        self.log_var_init = log_var_init
        self.reference_temperature_K = reference_temperature_K
        layers: list[nn.Module] = []
        width = n_inputs
        for _ in range(n_hidden_layers):
            layers += [nn.Linear(width, hidden), nn.SiLU(), nn.Dropout(dropout)]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 2)
        self.log_var_log10_sigma = nn.Parameter(torch.zeros(()))
        self.log_var_ea = nn.Parameter(torch.zeros(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Fresh weights; the outputs start at the initial Ea and log10 sigma(T_ref) for any input."""
        for module in self.body:
            if isinstance(module, nn.Linear):
                module.reset_parameters()
        nn.init.zeros_(self.head.weight)  # every member starts at the initial outputs
        with torch.no_grad():
            # softplus^-1(ea_init) so that softplus(bias) = ea_init
            self.head.bias[0] = self.ea_init_eV + math.log(-math.expm1(-self.ea_init_eV))
            self.head.bias[1] = self.log10_sigma_init
            self.log_var_log10_sigma.fill_(self.log_var_init)
            self.log_var_ea.fill_(self.log_var_init)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(self.body(x))
        ea_eV = nn.functional.softplus(out[:, 0])
        t_ref = self.reference_temperature_K
        log10_prefactor = out[:, 1] + math.log10(t_ref) + ea_eV / (BOLTZMANN_eV_PER_K * t_ref * _LN10)
        return ea_eV, log10_prefactor


@dataclass(frozen=True)
class ConductivityTargets:
    """Training targets of :func:`multitask_nll` (tensors of shape ``(N,)``).

    Attributes:
        log10_sigma: measured log10 sigma (S/cm), or the bound for a censored entry.
        upper_bound: True where ``log10_sigma`` is only an upper bound.
        ea_eV: measured activation energy, NaN where unknown.
        temperature_K: temperature of each conductivity measurement.
    """

    log10_sigma: torch.Tensor
    upper_bound: torch.Tensor
    ea_eV: torch.Tensor
    temperature_K: torch.Tensor

    def subset(self, index: torch.Tensor) -> ConductivityTargets:
        """The targets of the entries ``index`` (a bootstrap resample or a fold)."""
        return ConductivityTargets(
            self.log10_sigma[index], self.upper_bound[index], self.ea_eV[index], self.temperature_K[index]
        )


def gaussian_nll(y: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Per-entry ``-log N(y; mean, exp(log_var))``."""
    return 0.5 * (log_var + (y - mean) ** 2 / torch.exp(log_var) + _LOG_2PI)


def censored_nll(bound: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Per-entry ``-log P(y <= bound)`` for ``y ~ N(mean, exp(log_var))``."""
    return -torch.special.log_ndtr((bound - mean) / torch.exp(0.5 * log_var))


def multitask_nll(
    ea_eV: torch.Tensor, log10_prefactor: torch.Tensor, model: ConductivityNet, targets: ConductivityTargets
) -> torch.Tensor:
    """Mean negative log-likelihood per entry of both tasks (see the module docstring)."""
    mean_sigma = log10_sigma_arrhenius(ea_eV, log10_prefactor, targets.temperature_K)
    log_var_sigma = model.log_var_log10_sigma.expand_as(mean_sigma)
    sigma_terms = torch.where(
        targets.upper_bound,
        censored_nll(targets.log10_sigma, mean_sigma, log_var_sigma),
        gaussian_nll(targets.log10_sigma, mean_sigma, log_var_sigma),
    )
    has_ea = torch.isfinite(targets.ea_eV)
    ea_terms = gaussian_nll(targets.ea_eV[has_ea], ea_eV[has_ea], model.log_var_ea.expand(int(has_ea.sum())))
    return (sigma_terms.sum() + ea_terms.sum()) / len(mean_sigma)
