"""The learned conductivity model: physics descriptors and the potential's node features in, the
Arrhenius parameters with their uncertainty out.

Inputs (one row of :func:`screening.stages.conductivity_features_partition`): the physical descriptors of
:mod:`screening.transport.descriptors` and the pretrained potential's invariant node features, pooled over
the mobile ion's sites and over the framework, from the forward passes the stability stage makes anyway
(averaged over the sampled configurations of a disordered structure). :class:`FeatureTransform` keeps the
chosen descriptors and layers, reduces the node features to a few principal components (fitted on the
training set) and standardises everything.

Outputs (:meth:`LearnedConductivityModel.predict`): a deep ensemble of
:class:`~screening.models.conductivity.ConductivityNet` gives ``Ea`` and ``log10 A`` per member;
log10 sigma at the run temperature follows from the Arrhenius form, so predictions at other temperatures
are the model's own extrapolation. Uncertainty is the ensemble mixture (:mod:`screening.models.ensemble`):
epistemic (members disagree) and aleatoric (the learned noise of each task). ``p_superionic`` is
``P(log10 sigma >= -4)`` under a normal with that mean and total standard deviation.

Calibration: both standard deviations of a task are multiplied by one factor per task, fitted when the
model is trained on out-of-fold predictions of a grouped cross-validation (:mod:`screening.models.calibration`;
``std_scale``, 1 for an uncalibrated model).

Out of domain: the mean Euclidean distance of a structure's standardised input to its
:data:`DOMAIN_NEIGHBOURS` nearest training entries, divided by the same quantity's 95th percentile over
the training entries (leave-one-out). Above 1 the structure is farther from the training data than 95 %
of the training entries are from each other: ``conductivity_out_of_domain`` is set and the ranking knows.

A model is saved as a folder (:mod:`screening.models.checkpoint`): constructor arguments, weights of every
member, the fitted transform, the domain reference and a training manifest; it loads by name
(:data:`SHIPPED_MODELS`, package data) or by path.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import ndtr

from screening.errors import InputError
from screening.models.checkpoint import load_checkpoint, save_checkpoint
from screening.models.conductivity import ConductivityNet, log10_sigma_arrhenius
from screening.models.ensemble import EnsemblePrediction, mixture
from screening.schema import Col
from screening.transport.descriptors import DESCRIPTOR_NAMES

#: Superionic means sigma >= 1e-4 S/cm (the usual threshold for a useful solid electrolyte).
SUPERIONIC_LOG10_SIGMA = -4.0
#: Training entries whose distances define the domain (see the module docstring).
DOMAIN_NEIGHBOURS = 5
#: Percentile of the training entries' own neighbour distances that bounds the domain.
DOMAIN_PERCENTILE = 95.0
#: Standardised inputs are clipped to this many standard deviations (see :meth:`FeatureTransform.transform`).
INPUT_CLIP = 3.0
#: Pools of node features, in the order of the feature table's ``node_features``.
POOLS: tuple[str, ...] = ("mobile_ion", "framework")
#: Learned models that ship with the package: name -> folder under ``screening/data/models``.
SHIPPED_MODELS: dict[str, str] = {"conductivity-obelix": "conductivity-obelix"}
#: The calibration factors of a model that has none.
UNCALIBRATED: dict[str, float] = {"log10_sigma": 1.0, "ea_eV": 1.0}
#: Checkpoint ``kind`` of a learned conductivity model.
CHECKPOINT_KIND = "learned-conductivity"


@dataclass(frozen=True)
class FeatureSet:
    """Which inputs the model uses.

    Attributes:
        descriptors: names from :data:`~screening.transport.descriptors.DESCRIPTOR_NAMES` (may be empty).
        layers: node-feature layers of the potential (``model.node_feature_layers``; may be empty).
        n_components: principal components kept of the selected node features.
        feature_model: the potential whose node features are used.
    """

    descriptors: tuple[str, ...] = DESCRIPTOR_NAMES
    # SevenNet-0's last (fifth) interaction block: among the half of the layers with the smallest shift
    # between Materials-Project-like structures and OBELiX (MMD), the best grouped-CV probe (BENCHMARKS.md,
    # benchmarks/bench_learned_conductivity.py's choose_layer; the second block was 0.02 behind it)
    layers: tuple[str, ...] = ("interaction_5",)
    n_components: int = 8
    feature_model: str = "sevennet-0"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.descriptors) - set(DESCRIPTOR_NAMES))
        if unknown:
            raise InputError(f"unknown descriptors {unknown}; known: {', '.join(DESCRIPTOR_NAMES)}")
        if not self.descriptors and not self.layers:
            raise InputError("a feature set needs descriptors, node-feature layers or both")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "descriptors": list(self.descriptors), "layers": list(self.layers)}


def node_feature_block(
    node_features: np.ndarray, table_layers: list[str] | tuple[str, ...], layers: tuple[str, ...]
) -> np.ndarray:
    """The columns of ``layers`` (both pools) out of a ``(N, n_layers * 2 * n_channels)`` matrix whose
    layers are ``table_layers``; a pool with no sites (NaN) becomes 0."""
    n = node_features.shape[0]
    n_channels = node_features.shape[1] // (2 * len(table_layers))
    cube = node_features.reshape(n, len(table_layers), 2, n_channels)
    missing = sorted(set(layers) - set(table_layers))
    if missing:
        raise InputError(f"node features of layers {missing} are not in the table ({table_layers})")
    picked = cube[:, [list(table_layers).index(layer) for layer in layers]].reshape(n, -1)
    return np.nan_to_num(picked.astype(np.float64), nan=0.0)


@dataclass
class FeatureTransform:
    """Descriptors and node features -> the standardised input matrix of the network.

    Fitted on the training entries only (:meth:`fit`); its arrays travel in the checkpoint.
    """

    features: FeatureSet
    table_layers: tuple[str, ...] = ()
    pca_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pca_components: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    input_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    input_std: np.ndarray = field(default_factory=lambda: np.ones(0))

    @property
    def n_inputs(self) -> int:
        return len(self.input_mean)

    @property
    def input_names(self) -> list[str]:
        """Names of the network's inputs, in order."""
        return [*self.features.descriptors, *(f"node_pc{k + 1}" for k in range(len(self.pca_components)))]

    def _raw(
        self, descriptors: np.ndarray, node_features: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        columns = [DESCRIPTOR_NAMES.index(name) for name in self.features.descriptors]
        chosen = np.asarray(descriptors, dtype=np.float64)[:, columns]
        if not self.features.layers:
            return chosen, np.zeros((len(chosen), 0))
        if node_features is None:
            raise InputError("this model needs the potential's node features")
        return chosen, node_feature_block(np.asarray(node_features), self.table_layers, self.features.layers)

    def fit(
        self, descriptors: np.ndarray, node_features: np.ndarray | None, table_layers: list[str]
    ) -> FeatureTransform:
        """Fit the principal components and the standardisation on training entries."""
        self.table_layers = tuple(table_layers)
        chosen, block = self._raw(descriptors, node_features)
        if block.shape[1]:
            self.pca_mean = block.mean(axis=0)
            _, _, vt = np.linalg.svd(block - self.pca_mean, full_matrices=False)
            k = min(self.features.n_components, vt.shape[0])
            # sign convention: the largest loading of each component is positive (deterministic output)
            signs = np.sign(vt[np.arange(k), np.abs(vt[:k]).argmax(axis=1)])
            self.pca_components = vt[:k] * signs[:, None]
        else:
            self.pca_mean, self.pca_components = np.zeros(0), np.zeros((0, 0))
        raw = self._project(chosen, block)
        self.input_mean = raw.mean(axis=0)
        self.input_std = np.where(raw.std(axis=0) > 1e-12, raw.std(axis=0), 1.0)
        return self

    def _project(self, chosen: np.ndarray, block: np.ndarray) -> np.ndarray:
        if len(self.pca_components):
            return np.hstack([chosen, (block - self.pca_mean) @ self.pca_components.T])
        return chosen

    def transform(self, descriptors: np.ndarray, node_features: np.ndarray | None) -> np.ndarray:
        """The standardised inputs, shape ``(N, n_inputs)``, clipped to +-:data:`INPUT_CLIP` standard
        deviations: a structure far outside the training range (a barrier at the cap, a physics sigma at
        its floor) then cannot drive a network's output arbitrarily far; the domain distance still sees
        the unclipped inputs."""
        return np.clip(self.standardised(descriptors, node_features), -INPUT_CLIP, INPUT_CLIP)

    def standardised(self, descriptors: np.ndarray, node_features: np.ndarray | None) -> np.ndarray:
        """The standardised, unclipped inputs."""
        chosen, block = self._raw(descriptors, node_features)
        return (self._project(chosen, block) - self.input_mean) / self.input_std

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "pca_mean": self.pca_mean,
            "pca_components": self.pca_components,
            "input_mean": self.input_mean,
            "input_std": self.input_std,
        }


@dataclass(frozen=True)
class DomainReference:
    """The standardised training inputs and the distance scale that bounds the domain."""

    training_inputs: np.ndarray
    scale: float

    @classmethod
    def fit(cls, inputs: np.ndarray) -> DomainReference:
        """From the training inputs: the :data:`DOMAIN_PERCENTILE` of leave-one-out neighbour distances."""
        own = _mean_neighbour_distance(inputs, inputs, exclude_self=True)
        scale = float(np.percentile(own, DOMAIN_PERCENTILE)) if len(own) else 1.0
        return cls(inputs, scale if scale > 0 else 1.0)

    def distance(self, inputs: np.ndarray) -> np.ndarray:
        """Distance of each row of ``inputs`` to the training set, in units of :attr:`scale`."""
        return _mean_neighbour_distance(inputs, self.training_inputs, exclude_self=False) / self.scale


def _mean_neighbour_distance(queries: np.ndarray, reference: np.ndarray, *, exclude_self: bool) -> np.ndarray:
    if len(queries) == 0 or len(reference) == 0:
        return np.zeros(len(queries))
    squared = ((queries[:, None, :] - reference[None, :, :]) ** 2).sum(axis=2)
    distances = np.sqrt(np.maximum(squared, 0.0))
    if exclude_self:
        np.fill_diagonal(distances, np.inf)
    k = min(DOMAIN_NEIGHBOURS, reference.shape[0] - int(exclude_self))
    nearest = np.sort(distances, axis=1)[:, : max(k, 1)]
    return nearest.mean(axis=1)


@dataclass(frozen=True)
class ConductivityPrediction:
    """Learned conductivity of N structures at one temperature (arrays of shape ``(N,)``)."""

    temperature_K: float
    log10_sigma: EnsemblePrediction
    ea_eV: EnsemblePrediction
    log10_prefactor: np.ndarray
    domain_distance: np.ndarray

    @property
    def p_superionic(self) -> np.ndarray:
        """``P(log10 sigma >= -4)`` under the predictive normal."""
        std = np.maximum(self.log10_sigma.std, 1e-12)
        return ndtr((self.log10_sigma.mean - SUPERIONIC_LOG10_SIGMA) / std)

    @property
    def out_of_domain(self) -> np.ndarray:
        return self.domain_distance > 1.0

    def columns(self, index: int) -> dict[str, Any]:
        """Results-table columns of structure ``index``."""
        log10_sigma = float(self.log10_sigma.mean[index])
        return {
            Col.EA: float(self.ea_eV.mean[index]),
            Col.EA_STD: float(self.ea_eV.std[index]),
            Col.EA_METHOD: "learned",
            Col.LOG10_SIGMA: log10_sigma,
            Col.SIGMA: 10.0**log10_sigma,
            Col.LOG10_SIGMA_STD: float(self.log10_sigma.std[index]),
            Col.LOG10_SIGMA_EPISTEMIC_STD: float(self.log10_sigma.epistemic_std[index]),
            Col.P_SUPERIONIC: float(self.p_superionic[index]),
            Col.CONDUCTIVITY_OUT_OF_DOMAIN: bool(self.out_of_domain[index]),
            Col.CONDUCTIVITY_DOMAIN_DISTANCE: float(self.domain_distance[index]),
        }


@dataclass
class LearnedConductivityModel:
    """A trained ensemble with its feature transform, domain reference and manifest.

    Attributes:
        constructor: keyword arguments of every member's :class:`ConductivityNet`.
        members: the trained networks (eval mode).
        transform: the fitted :class:`FeatureTransform`.
        domain: the :class:`DomainReference` of the training inputs.
        manifest: how it was trained (data hash, feature set, seeds, options, cross-validation scores).
        name: registry name or folder it was loaded from.
        std_scale: calibration factor on the standard deviations of each task (``log10_sigma``,
            ``ea_eV``); 1 where uncalibrated.
    """

    constructor: dict[str, Any]
    members: list[ConductivityNet]
    transform: FeatureTransform
    domain: DomainReference
    manifest: dict[str, Any] = field(default_factory=dict)
    name: str = "unsaved"
    std_scale: dict[str, float] = field(default_factory=lambda: dict(UNCALIBRATED))

    @property
    def features(self) -> FeatureSet:
        return self.transform.features

    @property
    def mobile_ion(self) -> str:
        """The ion whose measured conductivities trained the model (its feature settings'; Li when a
        model predates that record)."""
        return self.manifest.get("feature_settings", {}).get("mobile_ion", "Li")

    def check_mobile_ion(self, mobile_ion: str) -> None:
        """Raise :class:`InputError` unless the model was trained on ``mobile_ion`` conductors."""
        if mobile_ion != self.mobile_ion:
            raise InputError(
                f"the conductivity model {self.name} was trained on {self.mobile_ion} conductors and cannot "
                f"predict {mobile_ion} conduction: use transport_method bvse, or train a model on "
                f"{mobile_ion} data (`screening train conductivity`)"
            )

    @torch.no_grad()
    def predict(
        self, descriptors: np.ndarray, node_features: np.ndarray | None, temperature_K: float
    ) -> ConductivityPrediction:
        """Predict N structures at ``temperature_K`` from their descriptor matrix ``(N, n_descriptors)``
        (all of :data:`DESCRIPTOR_NAMES`, in order) and node-feature matrix ``(N, n_layers*2*n_channels)``
        of the feature table's layers."""
        if not temperature_K > 0 or not math.isfinite(temperature_K):
            raise InputError(f"temperature_K must be positive, got {temperature_K}")
        x = torch.as_tensor(self.transform.transform(descriptors, node_features), dtype=torch.float32)
        ea, log10_a, log10_sigma, var_sigma, var_ea = [], [], [], [], []
        for member in self.members:
            ea_m, log10_a_m = member(x)
            ea.append(ea_m.double().numpy())
            log10_a.append(log10_a_m.double().numpy())
            log10_sigma.append(
                log10_sigma_arrhenius(ea_m.double(), log10_a_m.double(), temperature_K).numpy()
            )
            var_sigma.append(np.full(len(x), math.exp(float(member.log_var_log10_sigma))))
            var_ea.append(np.full(len(x), math.exp(float(member.log_var_ea))))
        return ConductivityPrediction(
            temperature_K=float(temperature_K),
            log10_sigma=mixture(np.array(log10_sigma), np.array(var_sigma)).scaled(
                self.std_scale["log10_sigma"]
            ),
            ea_eV=mixture(np.array(ea), np.array(var_ea)).scaled(self.std_scale["ea_eV"]),
            log10_prefactor=np.mean(log10_a, axis=0),
            domain_distance=self.domain.distance(self.transform.standardised(descriptors, node_features)),
        )

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the model to ``directory`` (created; an existing checkpoint there is replaced)."""
        arrays = {**self.transform.arrays(), "domain_training_inputs": self.domain.training_inputs}
        metadata = {
            "features": self.features.as_dict(),
            "table_layers": list(self.transform.table_layers),
            "input_names": self.transform.input_names,
            "domain_scale": self.domain.scale,
            "std_scale": self.std_scale,
            "manifest": self.manifest,
        }
        return save_checkpoint(
            directory,
            kind=CHECKPOINT_KIND,
            constructor=self.constructor,
            state_dicts=[member.state_dict() for member in self.members],
            arrays=arrays,
            metadata=metadata,
        )

    @classmethod
    def load(cls, directory: str | os.PathLike, name: str | None = None) -> LearnedConductivityModel:
        """Rebuild a saved model from its folder (no training code needed)."""
        checkpoint = load_checkpoint(directory, kind=CHECKPOINT_KIND)
        members = []
        for state in checkpoint.state_dicts:
            member = ConductivityNet(**checkpoint.constructor)
            member.load_state_dict(state)
            members.append(member.eval())
        meta = checkpoint.metadata
        features = meta["features"]
        feature_set = FeatureSet(
            descriptors=tuple(features["descriptors"]),
            layers=tuple(features["layers"]),
            n_components=int(features["n_components"]),
            feature_model=features["feature_model"],
        )
        arrays = checkpoint.arrays
        transform = FeatureTransform(
            feature_set,
            tuple(meta["table_layers"]),
            arrays["pca_mean"],
            arrays["pca_components"],
            arrays["input_mean"],
            arrays["input_std"],
        )
        domain = DomainReference(arrays["domain_training_inputs"], float(meta["domain_scale"]))
        return cls(
            checkpoint.constructor,
            members,
            transform,
            domain,
            meta.get("manifest", {}),
            name or str(directory),
            {**UNCALIBRATED, **meta.get("std_scale", {})},
        )


def conductivity_model_path(name_or_path: str) -> Path:
    """The folder of a shipped model name or a model folder path.

    Raises:
        MissingInputError: no model there.
    """
    from screening.resources import model_folder

    return model_folder(
        name_or_path, SHIPPED_MODELS, what="conductivity model", command="screening train conductivity"
    )


def conductivity_model_identity(name_or_path: str) -> dict[str, Any]:
    """What a run records of its learned model (read from ``model.json`` alone, no torch): the name, the
    folder, the SHA-256 of the weights, the feature set and the cross-validation scores it was trained
    with. The weights' hash is part of a run's identity, so retraining a model in place is a new run."""
    import json

    path = conductivity_model_path(name_or_path)
    manifest = json.loads((path / "model.json").read_text())
    metadata = manifest.get("metadata", {})
    return {
        "name": name_or_path,
        "path": str(path.resolve()),
        "weights_sha256": manifest.get("weights_sha256"),
        "features": metadata.get("features"),
        "cross_validation": metadata.get("manifest", {}).get("cross_validation"),
    }


@functools.cache
def load_conductivity_model(name_or_path: str) -> LearnedConductivityModel:
    """A shipped model by name, or a saved model folder; built once per process."""
    return LearnedConductivityModel.load(conductivity_model_path(name_or_path), name=name_or_path)
