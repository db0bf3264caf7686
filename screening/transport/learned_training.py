"""Training and cross-validation of the learned conductivity model on a labelled feature table.

The feature table comes from :func:`screening.stages.conductivity_features_partition` (the same function
the ``learned`` transport method runs at prediction time); the labels from a CSV such as OBELiX's
``conductivity_train.csv`` (:func:`read_labels`). :func:`fit_conductivity_model` fits the feature
transform, the deep ensemble and the domain reference on all entries; :func:`cross_validate` gives
out-of-fold predictions for grouped folds (:func:`grouped_folds`: a whole group, e.g. a structure
family or a chemical system, is always on one side), which :func:`cv_scores` scores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import ndtr

from screening import metrics
from screening.errors import InputError
from screening.models.calibration import fit_std_scale
from screening.models.conductivity import ConductivityTargets
from screening.models.ensemble import EnsembleOptions, EnsemblePrediction, fit_ensemble
from screening.schema import STATUS_OK, Col
from screening.transport.descriptors import DESCRIPTOR_NAMES
from screening.transport.learned import (
    SUPERIONIC_LOG10_SIGMA,
    DomainReference,
    FeatureSet,
    FeatureTransform,
    LearnedConductivityModel,
)

#: Temperature of a "room temperature" measurement when the labels give none, K.
ROOM_TEMPERATURE_K = 298.15
#: Groupings a calibration may fold by, in order of preference.
CALIBRATION_GROUPINGS = ("family", "chemical_system")


@dataclass(frozen=True)
class TrainingOptions:
    """Everything that decides a trained model besides the data.

    Attributes:
        features: the inputs (descriptors, node-feature layers, principal components).
        hidden: hidden-layer width of each member.
        n_hidden_layers: hidden layers of each member.
        dropout: dropout probability.
        ensemble: members, epochs, optimiser, bootstrap and seed.
        calibration_folds: folds of the grouped cross-validation whose out-of-fold predictions fit the
            standard-deviation factors (:mod:`screening.models.calibration`); 0 or 1: uncalibrated.
        calibration_grouping: the grouping of those folds (the first of :data:`CALIBRATION_GROUPINGS`
            the data has if this one is missing).
    """

    features: FeatureSet = field(default_factory=FeatureSet)
    # chosen by grouped CV on OBELiX among 32x2 / 16x1 / linear (BENCHMARKS.md, issue 10 section)
    hidden: int = 16
    n_hidden_layers: int = 1
    dropout: float = 0.2
    ensemble: EnsembleOptions = field(default_factory=EnsembleOptions)
    calibration_folds: int = 5
    # the stricter grouping: a new family is the case a screen meets, and its spread is the wider one
    calibration_grouping: str = "family"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "features": self.features.as_dict(), "ensemble": self.ensemble.as_dict()}


@dataclass(frozen=True)
class LabelledFeatures:
    """Feature rows joined with their labels (arrays aligned, shape ``(N, ...)``).

    Attributes:
        ids: entry ids.
        descriptors: ``(N, len(DESCRIPTOR_NAMES))``.
        node_features: ``(N, n_layers * 2 * n_channels)``.
        table_layers: the layers of ``node_features``.
        log10_sigma: measured log10 sigma (S/cm), or the bound where ``upper_bound``.
        upper_bound: the measurement is only an upper bound.
        ea_eV: measured activation energy, NaN where unknown.
        temperature_K: temperature of each measurement.
        groups: named group labels for grouped cross-validation (``family``, ``chemical_system``).
    """

    ids: np.ndarray
    descriptors: np.ndarray
    node_features: np.ndarray
    table_layers: list[str]
    log10_sigma: np.ndarray
    upper_bound: np.ndarray
    ea_eV: np.ndarray
    temperature_K: np.ndarray
    groups: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray) -> LabelledFeatures:
        return LabelledFeatures(
            self.ids[index],
            self.descriptors[index],
            self.node_features[index],
            self.table_layers,
            self.log10_sigma[index],
            self.upper_bound[index],
            self.ea_eV[index],
            self.temperature_K[index],
            {name: values[index] for name, values in self.groups.items()},
        )

    def targets(self) -> ConductivityTargets:
        return ConductivityTargets(
            torch.tensor(self.log10_sigma, dtype=torch.float32),
            torch.tensor(self.upper_bound, dtype=torch.bool),
            torch.tensor(self.ea_eV, dtype=torch.float32),
            torch.tensor(self.temperature_K, dtype=torch.float32),
        )

    def sha256(self) -> str:
        """Hash of the inputs and labels (the training manifest's data identity)."""
        digest = hashlib.sha256()
        for array in (self.descriptors, self.node_features, self.log10_sigma, self.upper_bound, self.ea_eV):
            digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
        digest.update("\n".join(map(str, self.ids)).encode())
        return digest.hexdigest()


def read_labels(path: str | Path) -> pd.DataFrame:
    """A labels CSV as a table indexed by ``id``.

    Required: ``id`` and ``log10_sigma`` or ``sigma_rt_S_per_cm``. Optional: ``sigma_is_upper_bound``
    (1/0), ``activation_energy_eV``, ``temperature_K`` (default 298.15 K), ``family``, ``cif_file``.

    Raises:
        InputError: a required column is missing, ids repeat, or a conductivity is not positive.
    """
    labels = pd.read_csv(path, dtype={"id": str})
    if "id" not in labels:
        raise InputError(f"{path}: the labels need an 'id' column")
    if "log10_sigma" not in labels:
        if "sigma_rt_S_per_cm" not in labels:
            raise InputError(f"{path}: the labels need 'log10_sigma' or 'sigma_rt_S_per_cm'")
        sigma = pd.to_numeric(labels["sigma_rt_S_per_cm"], errors="coerce")
        if (sigma <= 0).any():
            raise InputError(f"{path}: conductivities must be positive (S/cm)")
        labels["log10_sigma"] = np.log10(sigma)
    repeated = labels["id"][labels["id"].duplicated()].tolist()
    if repeated:
        raise InputError(f"{path}: ids repeat: {', '.join(repeated[:5])}")
    labels["sigma_is_upper_bound"] = labels.get("sigma_is_upper_bound", 0)
    labels["sigma_is_upper_bound"] = labels["sigma_is_upper_bound"].fillna(0).astype(int).astype(bool)
    labels["activation_energy_eV"] = pd.to_numeric(
        labels.get("activation_energy_eV", np.nan), errors="coerce"
    )
    labels["temperature_K"] = pd.to_numeric(labels.get("temperature_K", ROOM_TEMPERATURE_K), errors="coerce")
    return labels.set_index("id")


def entry_id(structure_id: str) -> str:
    """The label id of a files-source row id: the file stem (``cifs/jqc.cif`` -> ``jqc``; a CIF block
    suffix ``#2`` is dropped)."""
    return Path(str(structure_id).split("#", 1)[0]).stem


def join_labels(
    features: pd.DataFrame, labels: pd.DataFrame, chemical_systems: Mapping[str, str] | None = None
) -> tuple[LabelledFeatures, dict[str, str]]:
    """The ``ok`` feature rows that have a label, as :class:`LabelledFeatures`, and, for every other
    labelled entry or feature row, the reason it was left out (nothing is dropped silently).

    Args:
        features: a feature table (``features.attrs["node_feature_layers"]`` names its layers).
        labels: from :func:`read_labels`.
        chemical_systems: entry id -> chemical system, the second grouping (optional).
    """
    layers = list(features.attrs.get("node_feature_layers", []))
    left_out: dict[str, str] = {}
    rows = []
    seen = set()
    for record in features.to_dict("records"):
        key = entry_id(record[Col.ID])
        if key not in labels.index:
            left_out[key] = "no label"
            continue
        seen.add(key)
        if record[Col.STATUS] != STATUS_OK:
            left_out[key] = f"{record[Col.STATUS]}: {record.get(Col.ERROR)}"
            continue
        rows.append((key, record))
    for key in labels.index.difference(sorted(seen)):
        left_out[key] = "no structure"
    if not rows:
        raise InputError("no labelled structure has usable features")
    # one order whatever the order of the feature files: bootstrap resamples index rows, so the model
    # depends on the data alone
    rows.sort(key=lambda row: row[0])
    ids = np.array([key for key, _ in rows])
    label_rows = labels.loc[ids]
    groups = (
        {"family": label_rows["family"].fillna("unknown").astype(str).to_numpy()}
        if "family" in labels
        else {}
    )
    if chemical_systems is not None:
        groups["chemical_system"] = np.array([chemical_systems.get(key, key) for key in ids])
    data = LabelledFeatures(
        ids=ids,
        descriptors=np.array([[r[name] for name in DESCRIPTOR_NAMES] for _, r in rows], dtype=np.float64),
        node_features=np.array([np.asarray(r["node_features"], dtype=np.float32) for _, r in rows]),
        table_layers=layers,
        log10_sigma=label_rows["log10_sigma"].to_numpy(dtype=np.float64),
        upper_bound=label_rows["sigma_is_upper_bound"].to_numpy(dtype=bool),
        ea_eV=label_rows["activation_energy_eV"].to_numpy(dtype=np.float64),
        temperature_K=label_rows["temperature_K"].to_numpy(dtype=np.float64),
        groups=groups,
    )
    return data, left_out


def _initial_outputs(data: LabelledFeatures) -> dict[str, float]:
    """Output biases that start every member at the training set's typical Ea and log10 sigma, anchored
    at the training set's typical measurement temperature."""
    ea = data.ea_eV[np.isfinite(data.ea_eV)]
    return {
        "ea_init_eV": float(np.median(ea)) if len(ea) else 0.4,
        "log10_sigma_init": float(np.median(data.log10_sigma)),
        "reference_temperature_K": float(np.median(data.temperature_K)),
    }


def fit_conductivity_model(
    data: LabelledFeatures, options: TrainingOptions, manifest: Mapping[str, Any] | None = None
) -> LearnedConductivityModel:
    """Fit the transform, the ensemble and the domain reference on every entry of ``data``, and the
    calibration factors on a grouped cross-validation of the same entries (:func:`fit_calibration`)."""
    calibration = fit_calibration(data, options)
    model = fit_uncalibrated_model(data, options, {**(manifest or {}), "calibration": calibration})
    model.std_scale = {"log10_sigma": calibration["log10_sigma"], "ea_eV": calibration["ea_eV"]}
    return model


def fit_calibration(data: LabelledFeatures, options: TrainingOptions) -> dict[str, Any]:
    """Standard-deviation factors of log10 sigma and Ea with which +-1 sd covers 68 % of the held-out
    truths of a grouped ``options.calibration_folds``-fold cross-validation of ``data`` (uncalibrated
    members; upper bounds left out; :func:`~screening.models.calibration.fit_std_scale`). Returns the
    factors and how they were fitted, or factors of 1 and the reason when the data cannot be folded."""
    grouping = next(
        (g for g in (options.calibration_grouping, *CALIBRATION_GROUPINGS) if g in data.groups), None
    )
    n_folds = options.calibration_folds
    if n_folds < 2 or grouping is None or len(set(data.groups[grouping])) < n_folds:
        reason = (
            "calibration_folds < 2"
            if n_folds < 2
            else f"no grouping with {n_folds} groups ({', '.join(CALIBRATION_GROUPINGS)})"
        )
        return {"log10_sigma": 1.0, "ea_eV": 1.0, "uncalibrated": reason}
    folds = grouped_folds(data.groups[grouping], n_folds, seed=options.ensemble.seed)
    cv = cross_validate(data, options, folds, calibrated=False)
    return {
        "log10_sigma": fit_std_scale(
            cv.log10_sigma.mean, cv.log10_sigma.std, data.log10_sigma, data.upper_bound
        ),
        "ea_eV": fit_std_scale(cv.ea_eV.mean, cv.ea_eV.std, data.ea_eV),
        "grouping": grouping,
        "folds": n_folds,
    }


def fit_uncalibrated_model(
    data: LabelledFeatures, options: TrainingOptions, manifest: Mapping[str, Any] | None = None
) -> LearnedConductivityModel:
    """The transform, ensemble and domain reference fitted on every entry of ``data``, with calibration
    factors of 1."""
    transform = FeatureTransform(options.features).fit(
        data.descriptors, data.node_features, data.table_layers
    )
    inputs = transform.transform(data.descriptors, data.node_features)
    domain = DomainReference.fit(transform.standardised(data.descriptors, data.node_features))
    constructor = {
        "n_inputs": transform.n_inputs,
        "hidden": options.hidden,
        "n_hidden_layers": options.n_hidden_layers,
        "dropout": options.dropout,
        **_initial_outputs(data),
    }
    members = fit_ensemble(constructor, inputs, data.targets(), options.ensemble)
    full_manifest = {
        "data_sha256": data.sha256(),
        "n_entries": len(data),
        "n_upper_bounds": int(data.upper_bound.sum()),
        "n_with_ea": int(np.isfinite(data.ea_eV).sum()),
        "options": options.as_dict(),
        **(manifest or {}),
    }
    return LearnedConductivityModel(constructor, members, transform, domain, full_manifest)


def grouped_folds(groups: Sequence[str], n_folds: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Test indices of ``n_folds`` folds in which every group lies in exactly one fold.

    Groups are shuffled with ``seed`` and then placed largest first into the fold with the fewest
    entries so far, so folds are of similar size and the split is deterministic.
    """
    groups = np.asarray(groups)
    names, counts = np.unique(groups, return_counts=True)
    if len(names) < n_folds:
        raise InputError(f"{len(names)} groups cannot fill {n_folds} folds")
    order = np.random.default_rng(seed).permutation(len(names))
    order = sorted(order, key=lambda i: -counts[i])  # stable: ties keep the shuffled order
    sizes = np.zeros(n_folds, dtype=int)
    fold_of_group: dict[str, int] = {}
    for i in order:
        fold = int(np.argmin(sizes))
        fold_of_group[names[i]] = fold
        sizes[fold] += counts[i]
    fold_of = np.array([fold_of_group[g] for g in groups])
    return [np.flatnonzero(fold_of == f) for f in range(n_folds)]


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold predictions of every entry (arrays aligned with the data)."""

    log10_sigma: EnsemblePrediction
    ea_eV: EnsemblePrediction
    domain_distance: np.ndarray
    fold: np.ndarray


def cross_validate(
    data: LabelledFeatures, options: TrainingOptions, folds: list[np.ndarray], *, calibrated: bool = True
) -> CrossValidation:
    """Train on all folds but one and predict the one left out, for each fold. With ``calibrated`` each
    training calibrates on its own folds (a nested cross-validation: the held-out fold never sees it)."""
    fit = fit_conductivity_model if calibrated else fit_uncalibrated_model
    n = len(data)
    out = {k: np.full(n, np.nan) for k in ("s_mean", "s_epi", "s_ale", "e_mean", "e_epi", "e_ale", "dist")}
    fold_of = np.full(n, -1)
    for f, test in enumerate(folds):
        train = np.setdiff1d(np.arange(n), test)
        model = fit(data.subset(train), options)
        held_out = data.subset(test)
        temperatures = np.unique(held_out.temperature_K)
        for temperature in temperatures:  # predictions at each entry's own measurement temperature
            at = test[held_out.temperature_K == temperature]
            rows = data.subset(at)
            prediction = model.predict(rows.descriptors, rows.node_features, float(temperature))
            out["s_mean"][at] = prediction.log10_sigma.mean
            out["s_epi"][at] = prediction.log10_sigma.epistemic_std
            out["s_ale"][at] = prediction.log10_sigma.aleatoric_std
            out["e_mean"][at] = prediction.ea_eV.mean
            out["e_epi"][at] = prediction.ea_eV.epistemic_std
            out["e_ale"][at] = prediction.ea_eV.aleatoric_std
            out["dist"][at] = prediction.domain_distance
        fold_of[test] = f
    return CrossValidation(
        EnsemblePrediction(out["s_mean"], out["s_epi"], out["s_ale"]),
        EnsemblePrediction(out["e_mean"], out["e_epi"], out["e_ale"]),
        out["dist"],
        fold_of,
    )


def cv_scores(data: LabelledFeatures, cv: CrossValidation) -> dict[str, float]:
    """Accuracy and calibration of out-of-fold predictions (censored entries as the module
    :mod:`screening.metrics` says)."""
    measured, bound = data.log10_sigma, data.upper_bound
    exact = ~bound
    mean, std = cv.log10_sigma.mean, cv.log10_sigma.std
    labels = metrics.superionic_labels(measured, bound)
    p_superionic = 1.0 - ndtr((SUPERIONIC_LOG10_SIGMA - mean) / np.maximum(std, 1e-12))
    return {
        "spearman": metrics.spearman(mean[exact], measured[exact])[0],
        "mae_log10_sigma": metrics.mae(mean[exact], measured[exact])[0],
        "rmse_log10_sigma": metrics.rmse(mean[exact], measured[exact])[0],
        "auc": metrics.auc(mean, labels)[0],
        "auc_p_superionic": metrics.auc(p_superionic, labels)[0],
        "ea_mae_eV": metrics.mae(cv.ea_eV.mean, data.ea_eV)[0],
        "coverage_1sd": metrics.interval_coverage(mean[exact], std[exact], measured[exact], 1.0)[0],
        "coverage_2sd": metrics.interval_coverage(mean[exact], std[exact], measured[exact], 2.0)[0],
        "nll": metrics.censored_gaussian_nll(mean, std, measured, bound)[0],
        "mean_epistemic_std": float(np.mean(cv.log10_sigma.epistemic_std)),
        "mean_aleatoric_std": float(np.mean(cv.log10_sigma.aleatoric_std)),
        "ea_coverage_1sd": metrics.interval_coverage(cv.ea_eV.mean, cv.ea_eV.std, data.ea_eV, 1.0)[0],
        "n": len(data),
    }
