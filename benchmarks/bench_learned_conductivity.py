"""The learned conductivity model against experiment: grouped cross-validation on the OBELiX training split,
next to the baselines, with calibration, and the measurement behind the choice of the potential's layer.

    nice .venv/bin/python benchmarks/bench_learned_conductivity.py --model-dir runs/conductivity-obelix --write

Inputs:
- the feature table of ``screening train conductivity`` (``MODEL_DIR/features/``: the product's own
  features of the 254 OBELiX CIFs) and the labels ``data/obelix-train/conductivity_train.csv``;
- for the layer table, features of Materials-Project-like structures (ordered, as MP's are: the ordered
  bundled structures and the fully lithiated Li-M-O substitutions of ``benchmarks/li_m_o.py``), computed
  with the same function and cached in ``runs/features-mp-like.parquet`` (minutes the first time);
- for the random-forest baseline, matminer's Magpie ``ElementProperty`` features of each structure's
  composition, cached in ``benchmarks/results/magpie-obelix.csv`` (``--refresh-magpie`` recomputes it; matminer
  is not a dependency of the product: ``pip install matminer`` into a separate environment).

Everything is scored by grouped 5-fold cross-validation (folds from ``grouped_folds``, seed 0): once with
groups by ``family``, once by chemical system. Censored conductivities (upper bounds) are scored as
``screening.metrics`` says: left out of Spearman, MAE, RMSE and coverage, negatives in the AUC where the
bound is below 1e-4 S/cm, and by ``P(y <= bound)`` in the negative log-likelihood.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO / "benchmarks"))

from report import code_revision, publish  # noqa: E402

from screening import metrics  # noqa: E402
from screening.models.ensemble import EnsemblePrediction  # noqa: E402
from screening.transport.descriptors import DESCRIPTOR_NAMES  # noqa: E402
from screening.transport.learned import FeatureSet, node_feature_block  # noqa: E402
from screening.transport.learned_training import (  # noqa: E402
    CrossValidation,
    LabelledFeatures,
    TrainingOptions,
    cross_validate,
    cv_scores,
    grouped_folds,
    join_labels,
    read_labels,
)

LABELS = _REPO / "data" / "obelix-train" / "conductivity_train.csv"
MAGPIE_CACHE = _REPO / "benchmarks" / "results" / "magpie-obelix.csv"
MP_LIKE_CACHE = _REPO / "runs" / "features-mp-like.parquet"
SECTION_TITLE = "## Learned conductivity: grouped cross-validation against experiment (issue 10)"
GROUPINGS = ("family", "chemical_system")
N_FOLDS = 5


# --- data ------------------------------------------------------------------------------------------------


def obelix_data(model_dir: Path) -> tuple[LabelledFeatures, dict[str, str]]:
    from pipelines.train import read_feature_dir, structures_chemical_systems

    features = read_feature_dir(model_dir / "features")
    return join_labels(features, read_labels(LABELS), structures_chemical_systems(model_dir / "structures"))


def mp_like_features(refresh: bool) -> pd.DataFrame:
    """Feature rows of the bundled set and the generated Li-M-O structures (cached)."""
    from pipelines.train import read_features_file, write_features_file

    if MP_LIKE_CACHE.is_file() and not refresh:
        return read_features_file(MP_LIKE_CACHE)
    from li_m_o import li_m_o_structures

    from screening.config import ScienceConfig
    from screening.models import load_model
    from screening.sources.bundled import iter_bundled_rows
    from screening.stages import conductivity_features_partition
    from screening.structures import structure_to_row

    # ordered structures only, as Materials Project's are: the bundled ordered ones and the fully lithiated
    # Li-M-O substitutions (the half-delithiated variants are disordered)
    bundled = [row for row in iter_bundled_rows() if row["is_ordered"]]
    generated = [structure_to_row(s, key, "generated") for key, s in li_m_o_structures() if s.is_ordered]
    rows = bundled + generated
    config = ScienceConfig(transport_method="learned", device="cpu")
    model = load_model(config.model, device="cpu")
    frames = []
    for start in range(0, len(rows), 8):
        frames.append(conductivity_features_partition(pd.DataFrame(rows[start : start + 8]), config, model))
        print(f"mp-like features {start + 8}/{len(rows)}", flush=True)
    frame = pd.concat(frames, ignore_index=True)
    frame.attrs["node_feature_layers"] = frames[0].attrs["node_feature_layers"]
    write_features_file(frame, MP_LIKE_CACHE)
    return frame


def magpie_features(model_dir: Path, ids: np.ndarray, refresh: bool) -> np.ndarray:
    """Magpie ElementProperty features of each entry's structure composition (cached CSV)."""
    if refresh or not MAGPIE_CACHE.is_file():
        from matminer.featurizers.composition import ElementProperty

        from screening.io import read_structures
        from screening.structures import row_to_structure
        from screening.transport.learned_training import entry_id

        featurizer = ElementProperty.from_preset("magpie", impute_nan=True)
        table = read_structures(model_dir / "structures")
        records = []
        for row in table.to_dict("records"):
            if row["status"] != "ok":
                continue
            composition = row_to_structure(row).composition
            values = featurizer.featurize(composition)
            records.append(
                {"id": entry_id(row["id"]), **dict(zip(featurizer.feature_labels(), values, strict=True))}
            )
        pd.DataFrame(records).round(6).to_csv(MAGPIE_CACHE, index=False)
    table = pd.read_csv(MAGPIE_CACHE, dtype={"id": str}).set_index("id")
    return table.loc[ids].to_numpy(dtype=np.float64)


# --- baselines -------------------------------------------------------------------------------------------


def _folds_predictions(
    data: LabelledFeatures, folds: list[np.ndarray], fit_predict: Callable[[np.ndarray, np.ndarray], tuple]
) -> CrossValidation:
    """Out-of-fold predictions of a baseline ``fit_predict(train_idx, test_idx) -> (mean, std, ea, ea_std)``."""
    n = len(data)
    out = {k: np.full(n, np.nan) for k in ("mean", "std", "ea", "ea_std")}
    fold_of = np.full(n, -1)
    for f, test in enumerate(folds):
        train = np.setdiff1d(np.arange(n), test)
        for key, values in zip(("mean", "std", "ea", "ea_std"), fit_predict(train, test), strict=True):
            out[key][test] = values
        fold_of[test] = f
    zero = np.zeros(n)
    return CrossValidation(
        EnsemblePrediction(out["mean"], zero, out["std"]),
        EnsemblePrediction(out["ea"], zero, out["ea_std"]),
        np.zeros(n),
        fold_of,
    )


def training_mean(data: LabelledFeatures) -> Callable:
    def fit_predict(train: np.ndarray, test: np.ndarray) -> tuple:
        exact = train[~data.upper_bound[train]]
        y = data.log10_sigma[exact]
        ea = data.ea_eV[train][np.isfinite(data.ea_eV[train])]
        k = len(test)
        return np.full(k, y.mean()), np.full(k, y.std()), np.full(k, ea.mean()), np.full(k, ea.std())

    return fit_predict


def physics_only(data: LabelledFeatures) -> Callable:
    column = DESCRIPTOR_NAMES.index("log10_sigma_physics_S_per_cm")
    ea_column = DESCRIPTOR_NAMES.index("ea_effective_eV")

    def fit_predict(train: np.ndarray, test: np.ndarray) -> tuple:
        nan = np.full(len(test), np.nan)
        return data.descriptors[test, column], nan, data.descriptors[test, ea_column], nan

    return fit_predict


def random_forest(data: LabelledFeatures, x: np.ndarray, seed: int = 0) -> Callable:
    """A random forest on composition features; its spread over trees as the standard deviation."""
    from sklearn.ensemble import RandomForestRegressor

    def forest_predict(train: np.ndarray, y: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        forest = RandomForestRegressor(n_estimators=300, min_samples_leaf=2, random_state=seed, n_jobs=1)
        forest.fit(x[train], y)
        per_tree = np.stack([tree.predict(x[test]) for tree in forest.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)

    def fit_predict(train: np.ndarray, test: np.ndarray) -> tuple:
        exact = train[~data.upper_bound[train]]
        mean, std = forest_predict(exact, data.log10_sigma[exact], test)
        with_ea = train[np.isfinite(data.ea_eV[train])]
        ea, ea_std = forest_predict(with_ea, data.ea_eV[with_ea], test)
        return mean, std, ea, ea_std

    return fit_predict


# --- layer choice ----------------------------------------------------------------------------------------


def mmd2_rbf(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased squared maximum mean discrepancy with a Gaussian kernel, bandwidth by the median
    heuristic over the pooled sample."""
    both = np.vstack([a, b])
    squared = ((both[:, None, :] - both[None, :, :]) ** 2).sum(axis=2)
    bandwidth2 = np.median(squared[np.triu_indices(len(both), 1)])
    kernel = np.exp(-squared / max(bandwidth2, 1e-12))
    n, m = len(a), len(b)
    kaa, kbb, kab = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    return float(
        (kaa.sum() - np.trace(kaa)) / (n * (n - 1))
        + (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
        - 2 * kab.mean()
    )


def _standardised(block: np.ndarray, reference: np.ndarray) -> np.ndarray:
    std = reference.std(axis=0)
    return (block - reference.mean(axis=0)) / np.where(std > 1e-12, std, 1.0)


def gradient_alignment(x: np.ndarray, data: LabelledFeatures) -> float:
    """Cosine between the gradients, with respect to a linear read-out of the layer's features at zero
    weights, of the two task losses: squared error of log10 sigma (uncensored entries) and of -Ea (entries
    with a measured Ea), each on its standardised target. Positive: the features that raise conductivity
    are the ones that lower the barrier, so the two tasks teach the shared layers the same thing."""
    exact = ~data.upper_bound
    y = data.log10_sigma[exact]
    g_sigma = -(x[exact] * ((y - y.mean()) / y.std())[:, None]).mean(axis=0)
    has = np.isfinite(data.ea_eV)
    ea = -data.ea_eV[has]
    g_ea = -(x[has] * ((ea - ea.mean()) / ea.std())[:, None]).mean(axis=0)
    return float(g_sigma @ g_ea / (np.linalg.norm(g_sigma) * np.linalg.norm(g_ea)))


def ridge_probe_spearman(
    x: np.ndarray, data: LabelledFeatures, folds: list[np.ndarray], alpha: float = 10.0
) -> float:
    """Grouped-CV Spearman of a ridge regression from the features to log10 sigma (uncensored)."""
    predicted = np.full(len(data), np.nan)
    for test in folds:
        train = np.setdiff1d(np.flatnonzero(~data.upper_bound), test)
        mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-9
        a = (x[train] - mean) / std
        y = data.log10_sigma[train]
        w = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ (y - y.mean()))
        predicted[test] = ((x[test] - mean) / std) @ w + y.mean()
    exact = ~data.upper_bound
    return metrics.spearman(predicted[exact], data.log10_sigma[exact])[0]


def layer_table(
    data: LabelledFeatures, mp_like: pd.DataFrame, folds: dict[str, list[np.ndarray]]
) -> list[dict]:
    mp_ok = mp_like[mp_like["status"] == "ok"]
    mp_nodes = np.array([np.asarray(v, dtype=np.float32) for v in mp_ok["node_features"]])
    rows = []
    for layer in data.table_layers:
        target = node_feature_block(data.node_features, data.table_layers, (layer,))
        source = node_feature_block(mp_nodes, mp_like.attrs["node_feature_layers"], (layer,))
        rows.append(
            {
                "layer": layer,
                "mmd2": mmd2_rbf(_standardised(source, target), _standardised(target, target)),
                "alignment": gradient_alignment(_standardised(target, target), data),
                **{f"probe_{g}": ridge_probe_spearman(target, data, folds[g]) for g in GROUPINGS},
            }
        )
    return rows


# --- the learned model -----------------------------------------------------------------------------------


def learned(
    data: LabelledFeatures, options: TrainingOptions, folds: list[np.ndarray]
) -> tuple[CrossValidation, float]:
    start = time.process_time()
    cv = cross_validate(data, options, folds)
    return cv, time.process_time() - start


SHIPPED = "learned: descriptors + embeddings (shipped)"


#: Seeds of the seed-spread measurement (ensemble and folds together).
SEEDS = (0, 1, 2, 3, 4)


def seed_spread(
    data: LabelledFeatures, options: TrainingOptions
) -> dict[str, dict[str, tuple[float, float]]]:
    """Mean and standard deviation over :data:`SEEDS` of the grouped-CV scores of ``options``, the seed
    setting both the ensemble and the folds: how much of a difference between two rows is luck."""
    spread: dict[str, dict[str, tuple[float, float]]] = {}
    for grouping in GROUPINGS:
        runs = []
        for seed in SEEDS:
            seeded = dataclasses.replace(options, ensemble=dataclasses.replace(options.ensemble, seed=seed))
            folds = grouped_folds(data.groups[grouping], N_FOLDS, seed=seed)
            runs.append(cv_scores(data, cross_validate(data, seeded, folds)))
        spread[grouping] = {
            key: (float(np.mean([r[key] for r in runs])), float(np.std([r[key] for r in runs])))
            for key in ("spearman", "mae_log10_sigma", "auc", "coverage_1sd")
        }
        print("seeds", grouping, spread[grouping], flush=True)
    return spread


def variants(layers: tuple[str, ...]) -> dict[str, TrainingOptions]:
    shipped = TrainingOptions(features=FeatureSet(layers=layers))
    return {
        "learned: descriptors only": TrainingOptions(features=FeatureSet(layers=())),
        "learned: embeddings only": TrainingOptions(features=FeatureSet(descriptors=(), layers=layers)),
        "learned: shipped, spread uncalibrated": dataclasses.replace(shipped, calibration_folds=0),
        SHIPPED: shipped,
    }


# --- report ----------------------------------------------------------------------------------------------


def _f(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _pct(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{100 * value:.0f} %"


def render(results: dict[str, dict[str, dict]], layers: list[dict], chosen: str, info: dict) -> str:
    lines = [
        SECTION_TITLE,
        "",
        "`nice .venv/bin/python benchmarks/bench_learned_conductivity.py --model-dir MODEL_DIR --write`, after "
        "`screening train conductivity --labels data/obelix-train/conductivity_train.csv --structures "
        "data/obelix-train/cifs --out MODEL_DIR` (the feature table is the product's own). Data: the 254 "
        "OBELiX training entries (CC BY 4.0, Therrien et al., arXiv:2502.14234), "
        f"{info['n_used']} with features (left out: {info['left_out']}); {info['n_bounds']} upper bounds, "
        f"{info['n_ea']} with a measured Ea. Grouped {N_FOLDS}-fold cross-validation, seed 0: every family "
        "(or chemical system) on one side only. Superionic: sigma >= 1e-4 S/cm. Coverage: share of uncensored "
        "held-out log10 sigma inside +-1 (+-2) predicted standard deviations (68 % / 95 % if calibrated). NLL: "
        "mean negative log-likelihood per entry, censored entries by P(y <= bound). Baselines without an "
        "uncertainty have no coverage or NLL. The learned rows calibrate their spread inside each training "
        "(one factor per task fitted on a grouped 5-fold CV by family of the training folds alone, so the "
        "held-out fold never informs it: a nested CV); the uncalibrated row shows the ensemble's own spread. "
        "CPU seconds for the whole cross-validation (5 trainings, each with its 5 calibration trainings) on "
        f"{info['machine']}; code {info['code']}, {info['date']}.",
        "",
    ]
    for grouping in GROUPINGS:
        lines += [
            f"**Grouped by {grouping.replace('_', ' ')}**",
            "",
            "| predictor | Spearman | MAE log10 sigma | RMSE | AUC | AUC of p_superionic | Ea MAE (eV) | +-1 sd | +-2 sd | NLL | epistemic / aleatoric sd | CPU s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, by_group in results.items():
            s = by_group[grouping]
            has_std = s.get("has_std", False)
            lines.append(
                f"| {name} | {_f(s['spearman'])} | {_f(s['mae_log10_sigma'])} | {_f(s['rmse_log10_sigma'])} | "
                f"{_f(s['auc'])} | {_f(s['auc_p_superionic']) if has_std else '-'} | {_f(s['ea_mae_eV'])} | "
                f"{_pct(s['coverage_1sd']) if has_std else '-'} | {_pct(s['coverage_2sd']) if has_std else '-'} | "
                f"{_f(s['nll']) if has_std else '-'} | "
                f"{_f(s['mean_epistemic_std']) + ' / ' + _f(s['mean_aleatoric_std']) if s.get('ensemble') else '-'} | "
                f"{_f(s.get('cpu_s'), 0)} |"
            )
        lines.append("")
    lines += [
        "**Which layer of SevenNet-0 feeds the model** (node features' scalar channels, pooled over Li sites and "
        "over the framework; grouped CV by family and chemical system of a ridge probe to log10 sigma; MMD^2 "
        "between the bundled set plus generated Li-M-O structures (Materials-Project-like, "
        f"{info['n_mp_like']} structures) and OBELiX, Gaussian kernel, median bandwidth; alignment: cosine of "
        "the two tasks' gradients on a linear read-out of the layer, log10 sigma against -Ea).",
        "",
        "| layer | MMD^2 MP-like vs OBELiX | task-gradient alignment | probe Spearman (family) | probe Spearman (chemical system) |",
        "|---|---|---|---|---|",
    ]
    for row in layers:
        mark = " (chosen)" if row["layer"] == chosen else ""
        lines.append(
            f"| {row['layer']}{mark} | {_f(row['mmd2'], 3)} | {_f(row['alignment'])} | "
            f"{_f(row['probe_family'])} | {_f(row['probe_chemical_system'])} |"
        )
    lines += ["", info["reading"], ""]
    return "\n".join(lines)


def choose_layer(layers: list[dict]) -> str:
    """The layer with the best mean probe Spearman over both groupings, among the half of the layers with
    the smallest domain shift (MMD^2)."""
    by_shift = sorted(layers, key=lambda r: r["mmd2"])[: max(1, (len(layers) + 1) // 2)]
    return max(by_shift, key=lambda r: r["probe_family"] + r["probe_chemical_system"])["layer"]


def _first_clause(reason: str, limit: int = 90) -> str:
    """A left-out reason up to its first detail (the full text is in the model folder's
    ``training_report.json``)."""
    short = reason.split("; ")[0].split(" (")[0]
    return short if len(short) <= limit else short[: limit - 3] + "..."


def _reported(name: str, grouping: str, scores: dict) -> dict:
    print(name, grouping, {k: round(v, 3) for k, v in scores.items() if isinstance(v, float)}, flush=True)
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model-dir", type=Path, required=True, help="folder of `screening train conductivity`"
    )
    parser.add_argument("--write", action="store_true", help="replace the section in BENCHMARKS.md")
    parser.add_argument("--refresh-magpie", action="store_true")
    parser.add_argument("--refresh-mp-like", action="store_true")
    parser.add_argument(
        "--layers-from-json",
        action="store_true",
        help="reuse the layer table of --json (MMD, alignment, probes) instead of recomputing it",
    )
    parser.add_argument(
        "--json", type=Path, default=_REPO / "benchmarks" / "results" / "learned-conductivity.json"
    )
    args = parser.parse_args(argv)

    data, left_out = obelix_data(args.model_dir)
    folds = {g: grouped_folds(data.groups[g], N_FOLDS, seed=0) for g in GROUPINGS}
    if args.layers_from_json:  # the layer table does not depend on the model: reuse the last one
        layers = json.loads(args.json.read_text())["layers"]
    else:
        layers = layer_table(data, mp_like_features(args.refresh_mp_like), folds)
    chosen = choose_layer(layers)
    print(json.dumps(layers, indent=1), "chosen:", chosen, flush=True)
    magpie = magpie_features(args.model_dir, data.ids, args.refresh_magpie)

    results: dict[str, dict[str, dict]] = {}
    baselines = {
        "training mean": training_mean(data),
        "physics only (bvse, no fit)": physics_only(data),
        "random forest, Magpie composition features": random_forest(data, magpie),
    }
    for name, fit_predict in baselines.items():
        results[name] = {}
        for grouping in GROUPINGS:
            start = time.process_time()
            cv = _folds_predictions(data, folds[grouping], fit_predict)
            scores = cv_scores(data, cv)
            scores.update(
                cpu_s=time.process_time() - start, has_std=bool(np.isfinite(cv.log10_sigma.std).any())
            )
            results[name][grouping] = _reported(name, grouping, scores)
    for name, options in variants((chosen,)).items():
        results[name] = {}
        for grouping in GROUPINGS:
            cv, cpu = learned(data, options, folds[grouping])
            scores = cv_scores(data, cv)
            flagged = cv.domain_distance > 1.0
            exact = ~data.upper_bound
            errors = np.abs(cv.log10_sigma.mean - data.log10_sigma)
            scores.update(
                cpu_s=cpu,
                has_std=True,
                ensemble=True,
                out_of_domain_share=float(flagged.mean()),
                mae_out_of_domain=float(errors[flagged & exact].mean())
                if (flagged & exact).any()
                else math.nan,
                mae_in_domain=float(errors[~flagged & exact].mean()),
            )
            results[name][grouping] = _reported(name, grouping, scores)

    seeds = seed_spread(data, variants((chosen,))[SHIPPED])

    from screening.transport.learned_training import fit_conductivity_model

    shipped_options = variants((chosen,))[SHIPPED]
    start = time.process_time()
    model = fit_conductivity_model(data, shipped_options)
    train_cpu_s = time.process_time() - start
    start = time.process_time()
    for _ in range(5):
        model.predict(data.descriptors, data.node_features, 298.15)
    predict_ms = (time.process_time() - start) / 5 / len(data) * 1e3
    code = code_revision()
    shipped = results[SHIPPED]
    reading = (
        "Out of domain (shipped model, held-out entries with a domain distance above 1): "
        + "; ".join(
            f"by {g}: {_pct(shipped[g]['out_of_domain_share'])} flagged, MAE {_f(shipped[g]['mae_out_of_domain'])} "
            f"flagged vs {_f(shipped[g]['mae_in_domain'])} not"
            for g in GROUPINGS
        )
        + f". Calibration factors of the shipped configuration trained on all {len(data)} entries: "
        f"sd of log10 sigma x {model.std_scale['log10_sigma']:.2f}, sd of Ea x {model.std_scale['ea_eV']:.2f}. "
        f"Training it (calibration included): {train_cpu_s:.0f} CPU s; "
        f"prediction: {predict_ms:.2f} CPU ms per structure (the features come from the stability and bvse "
        "stages, which a run computes anyway). "
        + f"Spread over seeds (shipped configuration, seeds {SEEDS[0]}-{SEEDS[-1]} of both the ensemble and "
        "the folds, mean +- sd): "
        + "; ".join(
            f"by {g}: Spearman {_f(seeds[g]['spearman'][0])} +- {_f(seeds[g]['spearman'][1])}, MAE "
            f"{_f(seeds[g]['mae_log10_sigma'][0])} +- {_f(seeds[g]['mae_log10_sigma'][1])}, AUC "
            f"{_f(seeds[g]['auc'][0])} +- {_f(seeds[g]['auc'][1])}, +-1 sd coverage "
            f"{_pct(seeds[g]['coverage_1sd'][0])} +- {_pct(seeds[g]['coverage_1sd'][1])}"
            for g in GROUPINGS
        )
        + ": differences between rows smaller than these are noise."
    )
    info = {
        "n_used": len(data),
        "left_out": "; ".join(f"{k} ({_first_clause(v)})" for k, v in sorted(left_out.items())) or "none",
        "n_bounds": int(data.upper_bound.sum()),
        "n_ea": int(np.isfinite(data.ea_eV).sum()),
        "n_mp_like": 0,
        "machine": "2 shared CPU cores",
        "code": code,
        "date": datetime.date.today().isoformat(),
        "reading": reading,
    }
    info["n_mp_like"] = (
        json.loads(args.json.read_text()).get("n_mp_like", 0)
        if args.layers_from_json
        else int((mp_like_features(False)["status"] == "ok").sum())
    )
    args.json.write_text(
        json.dumps(
            {"results": results, "layers": layers, "chosen": chosen, "n_mp_like": info["n_mp_like"]},
            indent=1,
            default=float,
        )
    )
    section = render(results, layers, chosen, info)
    publish(SECTION_TITLE, section, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
