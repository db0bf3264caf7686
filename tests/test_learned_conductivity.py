"""The learned conductivity model on small data: loss (censored, uncertainty-weighted), Arrhenius output,
ensemble statistics, features, domain, grouped folds, training determinism and the checkpoint round trip."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import norm

from screening.constants import BOLTZMANN_eV_PER_K
from screening.errors import InputError
from screening.models.calibration import fit_std_scale
from screening.models.conductivity import (
    ConductivityNet,
    ConductivityTargets,
    censored_nll,
    gaussian_nll,
    log10_sigma_arrhenius,
    multitask_nll,
)
from screening.models.ensemble import EnsembleOptions, fit_ensemble, mixture
from screening.schema import Col
from screening.transport.descriptors import DESCRIPTOR_NAMES
from screening.transport.learned import (
    DomainReference,
    FeatureSet,
    FeatureTransform,
    LearnedConductivityModel,
    node_feature_block,
)
from screening.transport.learned_training import (
    LabelledFeatures,
    TrainingOptions,
    cross_validate,
    cv_scores,
    fit_conductivity_model,
    fit_uncalibrated_model,
    grouped_folds,
    join_labels,
    read_labels,
)

LAYERS = ["embedding", "interaction_1"]
N_CHANNELS = 4
TINY = EnsembleOptions(n_members=3, epochs=150, learning_rate=1e-2, seed=0)


def _targets(y, bound=None, ea=None, temperature=298.15):
    n = len(y)
    return ConductivityTargets(
        torch.tensor(y, dtype=torch.float32),
        torch.tensor(bound if bound is not None else [False] * n),
        torch.tensor(ea if ea is not None else [math.nan] * n, dtype=torch.float32),
        torch.full((n,), temperature),
    )


def synthetic(n: int = 60, seed: int = 0) -> LabelledFeatures:
    """Entries whose log10 sigma follows the first descriptor (a barrier) through Arrhenius, plus noise;
    node features carry the same signal in one channel; one in ten is an upper bound."""
    rng = np.random.default_rng(seed)
    descriptors = rng.normal(size=(n, len(DESCRIPTOR_NAMES)))
    ea = 0.3 + 0.1 * descriptors[:, 0]
    log10_sigma = 2.0 - ea / (BOLTZMANN_eV_PER_K * 298.15 * math.log(10)) + rng.normal(0, 0.3, n)
    node = rng.normal(size=(n, len(LAYERS), 2, N_CHANNELS)).astype(np.float32)
    node[:, 1, 0, 0] = descriptors[:, 0]
    bound = np.zeros(n, dtype=bool)
    bound[::10] = True
    log10_sigma[bound] += 1.0  # a bound lies above the true value
    has_ea = np.arange(n) % 2 == 0
    return LabelledFeatures(
        ids=np.array([f"e{i}" for i in range(n)]),
        descriptors=descriptors,
        node_features=node.reshape(n, -1),
        table_layers=LAYERS,
        log10_sigma=log10_sigma,
        upper_bound=bound,
        ea_eV=np.where(has_ea, ea, np.nan),
        temperature_K=np.full(n, 298.15),
        groups={"family": np.array([f"f{i % 12}" for i in range(n)])},
    )


def tiny_options(calibration_folds: int = 0, **features) -> TrainingOptions:
    feature_set = FeatureSet(**{"layers": ("interaction_1",), "n_components": 2, **features})
    return TrainingOptions(
        features=feature_set,
        hidden=16,
        n_hidden_layers=1,
        dropout=0.0,
        ensemble=TINY,
        calibration_folds=calibration_folds,
    )


# --- physics and loss ------------------------------------------------------------------------------


def test_arrhenius_log10_sigma_by_hand():
    ea, log10_a, t = torch.tensor([0.3]), torch.tensor([4.0]), 300.0
    expected = 4.0 - math.log10(300.0) - 0.3 / (BOLTZMANN_eV_PER_K * 300.0 * math.log(10))
    assert float(log10_sigma_arrhenius(ea, log10_a, t)) == pytest.approx(expected, abs=1e-5)
    # a higher barrier loses more conductivity on cooling: the slope in 1/T is -Ea / (k ln 10)
    cold = log10_sigma_arrhenius(torch.tensor([0.5]), log10_a, 250.0)
    warm = log10_sigma_arrhenius(torch.tensor([0.5]), log10_a, 350.0)
    assert float(warm - cold) > 0


def test_gaussian_and_censored_terms_match_scipy():
    y, mu, log_var = torch.tensor([1.0]), torch.tensor([0.2]), torch.tensor([math.log(0.25)])
    assert float(gaussian_nll(y, mu, log_var)) == pytest.approx(-norm.logpdf(1.0, 0.2, 0.5), rel=1e-5)
    assert float(censored_nll(y, mu, log_var)) == pytest.approx(-norm.logcdf(1.0, 0.2, 0.5), rel=1e-5)


def test_censored_entry_costs_little_below_its_bound_and_much_above():
    log_var = torch.tensor([0.0])
    below = float(censored_nll(torch.tensor([-10.0]), torch.tensor([-13.0]), log_var))
    above = float(censored_nll(torch.tensor([-10.0]), torch.tensor([-7.0]), log_var))
    assert below < 0.01 < 5.0 < above
    # treated as a value instead, the prediction far below the bound would be punished
    assert float(gaussian_nll(torch.tensor([-10.0]), torch.tensor([-13.0]), log_var)) > 4.0


def test_multitask_loss_adds_both_tasks_over_the_entries():
    model = ConductivityNet(n_inputs=3, hidden=4, n_hidden_layers=1)
    x = torch.randn(4, 3)
    ea, log10_a = model(x)
    targets = _targets([-3.0, -5.0, -9.0, -4.0], [False, False, True, False], [0.3, math.nan, math.nan, 0.5])
    mean = log10_sigma_arrhenius(ea, log10_a, targets.temperature_K)
    lv_s, lv_e = model.log_var_log10_sigma.expand(4), model.log_var_ea.expand(2)
    sigma_terms = gaussian_nll(targets.log10_sigma, mean, lv_s)
    sigma_terms[2] = censored_nll(targets.log10_sigma[2:3], mean[2:3], lv_s[2:3])[0]
    ea_terms = gaussian_nll(targets.ea_eV[[0, 3]], ea[[0, 3]], lv_e)
    expected = (sigma_terms.sum() + ea_terms.sum()) / 4
    loss = multitask_nll(ea, log10_a, model, targets).detach()
    assert float(loss) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_learned_task_variance_converges_to_the_residual_variance():
    """The uncertainty weight of a task is its noise: with the outputs frozen, optimising the task log
    variance alone reaches the mean squared residual of that task (Kendall et al.'s optimum)."""
    torch.manual_seed(0)
    model = ConductivityNet(n_inputs=2, hidden=4, n_hidden_layers=1)
    x = torch.randn(50, 2)
    with torch.no_grad():
        ea, log10_a = model(x)
        mean = log10_sigma_arrhenius(ea, log10_a, 298.15)
    residuals = torch.randn(50) * 1.7
    targets = _targets((mean + residuals).tolist())
    optimiser = torch.optim.Adam([model.log_var_log10_sigma], lr=0.05)
    for _ in range(600):
        optimiser.zero_grad()
        multitask_nll(ea, log10_a, model, targets).backward()
        optimiser.step()
    assert math.exp(float(model.log_var_log10_sigma)) == pytest.approx(float((residuals**2).mean()), rel=0.02)


def test_network_starts_at_its_initial_outputs_and_keeps_ea_positive():
    model = ConductivityNet(n_inputs=5, ea_init_eV=0.45, log10_sigma_init=-6.0, reference_temperature_K=300.0)
    ea, log10_a = model(torch.zeros(3, 5))
    assert torch.allclose(ea, torch.full((3,), 0.45), atol=1e-5)
    assert torch.allclose(log10_sigma_arrhenius(ea, log10_a, 300.0), torch.full((3,), -6.0), atol=1e-4)
    ea_far, _ = model(torch.randn(100, 5) * 100)
    assert bool((ea_far >= 0).all())


# --- ensemble statistics ---------------------------------------------------------------------------


def test_mixture_statistics_by_hand():
    means = np.array([[1.0, 0.0], [3.0, 0.0]])
    variances = np.array([[1.0, 4.0], [3.0, 4.0]])
    stats = mixture(means, variances)
    assert stats.mean.tolist() == [2.0, 0.0]
    assert stats.epistemic_std.tolist() == [1.0, 0.0]
    assert stats.aleatoric_std.tolist() == pytest.approx([math.sqrt(2.0), 2.0])
    assert stats.std.tolist() == pytest.approx([math.sqrt(3.0), 2.0])


def test_ensemble_training_is_deterministic_under_a_seed_and_members_differ():
    x = np.random.default_rng(1).normal(size=(20, 3))
    targets = _targets(list(np.linspace(-8, -2, 20)))
    constructor = {"n_inputs": 3, "hidden": 8, "n_hidden_layers": 1, "dropout": 0.1}
    a = fit_ensemble(constructor, x, targets, EnsembleOptions(n_members=2, epochs=30, seed=5))
    b = fit_ensemble(constructor, x, targets, EnsembleOptions(n_members=2, epochs=30, seed=5))
    for ma, mb in zip(a, b, strict=True):
        for (name, pa), (_, pb) in zip(ma.state_dict().items(), mb.state_dict().items(), strict=True):
            assert torch.equal(pa, pb), name
    assert not torch.equal(a[0].head.weight, a[1].head.weight)


# --- features, domain, folds -----------------------------------------------------------------------


def test_node_feature_block_picks_layers_and_zeroes_empty_pools():
    n = 2
    cube = np.arange(n * 2 * 2 * 3, dtype=np.float64).reshape(n, 2, 2, 3)
    cube[1, 1, 0, :] = np.nan  # a structure without mobile-ion sites in one layer
    block = node_feature_block(cube.reshape(n, -1), LAYERS[:2], ("interaction_1",))
    assert block.shape == (2, 6)
    assert block[0].tolist() == cube[0, 1].ravel().tolist()
    assert block[1, :3].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(InputError, match="not in the table"):
        node_feature_block(cube.reshape(n, -1), LAYERS[:2], ("interaction_9",))


def test_feature_transform_standardises_on_training_entries():
    data = synthetic(40)
    transform = FeatureTransform(FeatureSet(layers=("interaction_1",), n_components=3))
    transform.fit(data.descriptors, data.node_features, LAYERS)
    standardised = transform.standardised(data.descriptors, data.node_features)
    assert standardised.shape == (40, len(DESCRIPTOR_NAMES) + 3)
    assert np.allclose(standardised.mean(axis=0), 0, atol=1e-9)
    far = data.descriptors.copy()
    far[0, 0] = 1e6  # far outside the training range: clipped for the network, not for the domain
    assert transform.transform(far, data.node_features)[0, 0] == 3.0
    assert transform.standardised(far, data.node_features)[0, 0] > 1e4
    assert transform.input_names[-1] == "node_pc3"
    descriptors_only = FeatureTransform(FeatureSet(layers=())).fit(data.descriptors, None, LAYERS)
    assert descriptors_only.transform(data.descriptors, None).shape == (40, len(DESCRIPTOR_NAMES))
    with pytest.raises(InputError):
        FeatureSet(descriptors=(), layers=())
    with pytest.raises(InputError, match="unknown descriptors"):
        FeatureSet(descriptors=("colour",))


def test_domain_distance_flags_far_structures_only():
    rng = np.random.default_rng(0)
    training = rng.normal(size=(100, 4))
    domain = DomainReference.fit(training)
    inside = domain.distance(rng.normal(size=(50, 4)))
    far = domain.distance(np.full((1, 4), 8.0))
    assert np.mean(inside > 1.0) < 0.2
    assert far[0] > 3.0


def test_grouped_folds_never_split_a_group_and_are_deterministic():
    groups = np.array(["a"] * 10 + ["b"] * 3 + ["c"] * 3 + ["d"] * 2 + ["e"] * 2 + ["f"] * 5)
    folds = grouped_folds(groups, n_folds=3, seed=1)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(groups)))
    for fold in folds:
        for other in folds:
            if other is not fold:
                assert not set(groups[fold]) & set(groups[other])
    assert [f.tolist() for f in folds] == [f.tolist() for f in grouped_folds(groups, n_folds=3, seed=1)]
    with pytest.raises(InputError):
        grouped_folds(["a", "b"], n_folds=3)


# --- training, prediction, checkpoint --------------------------------------------------------------


def test_trained_model_learns_the_barrier_signal_in_grouped_cross_validation():
    data = synthetic(80)
    options = tiny_options()
    cv = cross_validate(data, options, grouped_folds(data.groups["family"], n_folds=4))
    scores = cv_scores(data, cv)
    assert scores["spearman"] > 0.6  # noise-free ceiling about 0.95; 24 distractor inputs, 60 entries
    assert scores["mae_log10_sigma"] < 1.2  # the spread of log10 sigma is 1.0 decade
    assert 0.3 < scores["coverage_1sd"] <= 1.0
    assert scores["ea_mae_eV"] < 0.1


def test_prediction_columns_probability_and_temperature():
    data = synthetic(40)
    model = fit_conductivity_model(data, tiny_options())
    warm = model.predict(data.descriptors[:3], data.node_features[:3], 400.0)
    room = model.predict(data.descriptors[:3], data.node_features[:3], 298.15)
    assert np.all(warm.log10_sigma.mean > room.log10_sigma.mean)  # Arrhenius: warmer conducts better
    assert np.allclose(warm.ea_eV.mean, room.ea_eV.mean)
    row = room.columns(0)
    z = (row[Col.LOG10_SIGMA] + 4.0) / row[Col.LOG10_SIGMA_STD]
    assert row[Col.P_SUPERIONIC] == pytest.approx(norm.cdf(z), rel=1e-6)
    assert row[Col.EA_METHOD] == "learned"
    assert row[Col.SIGMA] == pytest.approx(10 ** row[Col.LOG10_SIGMA])
    assert row[Col.LOG10_SIGMA_EPISTEMIC_STD] <= row[Col.LOG10_SIGMA_STD]
    with pytest.raises(InputError):
        model.predict(data.descriptors[:1], data.node_features[:1], -5.0)
    model.check_mobile_ion("Li")  # the ion of its training data
    with pytest.raises(InputError, match="trained on Li conductors and cannot predict Na"):
        model.check_mobile_ion("Na")


def test_checkpoint_round_trip_rebuilds_the_same_predictions(tmp_path):
    data = synthetic(40)
    model = fit_conductivity_model(data, tiny_options(), manifest={"note": "test"})
    (tmp_path / "model" / "mine.txt").parent.mkdir()
    (tmp_path / "model" / "mine.txt").write_text("keep me")
    model.save(tmp_path / "model")
    loaded = LearnedConductivityModel.load(tmp_path / "model")
    before = model.predict(data.descriptors, data.node_features, 298.15)
    after = loaded.predict(data.descriptors, data.node_features, 298.15)
    assert np.array_equal(before.log10_sigma.mean, after.log10_sigma.mean)
    assert np.array_equal(before.domain_distance, after.domain_distance)
    assert loaded.constructor == model.constructor
    assert loaded.manifest["note"] == "test" and loaded.manifest["n_entries"] == 40
    assert (tmp_path / "model" / "mine.txt").read_text() == "keep me"
    (tmp_path / "model" / "weights.pt").write_bytes(b"damaged")
    with pytest.raises(InputError, match="does not match"):
        LearnedConductivityModel.load(tmp_path / "model")


def test_training_is_deterministic_under_the_seed():
    data = synthetic(30)
    a = fit_conductivity_model(data, tiny_options()).predict(data.descriptors, data.node_features, 300.0)
    b = fit_conductivity_model(data, tiny_options()).predict(data.descriptors, data.node_features, 300.0)
    assert np.array_equal(a.log10_sigma.mean, b.log10_sigma.mean)


# --- calibration -----------------------------------------------------------------------------------


def test_std_scale_makes_one_sd_cover_68_percent_and_ignores_bounds():
    rng = np.random.default_rng(0)
    mean, std = rng.normal(size=2000), rng.uniform(0.5, 1.5, 2000)
    measured = mean + 2.5 * std * rng.normal(size=2000)  # the model claims 40 % of its real spread
    scale = fit_std_scale(mean, std, measured)
    assert scale == pytest.approx(2.5, rel=0.05)
    covered = np.abs(measured - mean) <= scale * std
    assert covered.mean() == pytest.approx(0.6827, abs=0.002)
    # heavy tails do not inflate it (they would the NLL-optimal factor, sqrt(mean z^2))
    outliers = measured.copy()
    outliers[:40] += 50 * std[:40]
    assert fit_std_scale(mean, std, outliers) == pytest.approx(scale, rel=0.05)
    assert np.sqrt(np.mean(((outliers - mean) / std) ** 2)) > 2 * scale
    # an upper bound has no z-score: it is left out
    bounds = np.r_[measured, np.full(50, -30.0)]
    flags = np.r_[np.zeros(2000, bool), np.ones(50, bool)]
    assert fit_std_scale(np.r_[mean, mean[:50]], np.r_[std, std[:50]], bounds, flags) == scale
    assert fit_std_scale([1.0] * 5, [1.0] * 5, [3.0] * 5) == 1.0  # too few to calibrate


def grouped_shift(n: int = 72) -> LabelledFeatures:
    """Synthetic entries plus a random offset per family that no input reveals: a model trained on other
    families is over-confident on a new one, which the calibration must see."""
    data = synthetic(n)
    offset = np.random.default_rng(3).normal(0, 1.5, 12)
    families = np.array([int(f[1:]) for f in data.groups["family"]])
    return LabelledFeatures(
        **{**data.__dict__, "log10_sigma": data.log10_sigma + offset[families]}  # type: ignore[arg-type]
    )


def test_calibration_widens_an_overconfident_model_and_travels_in_the_checkpoint(tmp_path):
    data = grouped_shift()
    calibrated = fit_conductivity_model(data, tiny_options(calibration_folds=4))
    plain = fit_uncalibrated_model(data, tiny_options(calibration_folds=4))
    record = calibrated.manifest["calibration"]
    assert record["grouping"] == "family" and record["folds"] == 4
    scale = calibrated.std_scale["log10_sigma"]
    assert scale == record["log10_sigma"] > 1.2  # unseen family offsets of 1.5 decades
    # the factor multiplies both parts of the spread, and nothing else
    a = calibrated.predict(data.descriptors, data.node_features, 298.15)
    b = plain.predict(data.descriptors, data.node_features, 298.15)
    assert np.array_equal(a.log10_sigma.mean, b.log10_sigma.mean)
    np.testing.assert_allclose(a.log10_sigma.epistemic_std, scale * b.log10_sigma.epistemic_std)
    np.testing.assert_allclose(a.log10_sigma.aleatoric_std, scale * b.log10_sigma.aleatoric_std)
    np.testing.assert_allclose(a.ea_eV.std, calibrated.std_scale["ea_eV"] * b.ea_eV.std)
    calibrated.save(tmp_path / "model")
    loaded = LearnedConductivityModel.load(tmp_path / "model")
    assert loaded.std_scale == calibrated.std_scale
    again = loaded.predict(data.descriptors, data.node_features, 298.15)
    assert np.array_equal(again.log10_sigma.std, a.log10_sigma.std)


def test_calibration_says_why_it_was_skipped():
    data = synthetic(30)
    few_groups = LabelledFeatures(**{**data.__dict__, "groups": {"family": np.array(["a", "b"] * 15)}})
    model = fit_conductivity_model(few_groups, tiny_options(calibration_folds=5))
    assert model.std_scale == {"log10_sigma": 1.0, "ea_eV": 1.0}
    assert "no grouping with 5 groups" in model.manifest["calibration"]["uncalibrated"]


# --- labels ----------------------------------------------------------------------------------------


def test_read_labels_and_join_report_every_entry_left_out(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "id,sigma_rt_S_per_cm,sigma_is_upper_bound,activation_energy_eV,family\n"
        "aaa,1e-3,0,0.3,garnet\nbbb,1e-10,1,,oxide\nccc,1e-5,0,,oxide\nddd,1e-4,0,,oxide\n"
    )
    labels = read_labels(csv)
    assert labels.loc["aaa", "log10_sigma"] == pytest.approx(-3.0)
    assert bool(labels.loc["bbb", "sigma_is_upper_bound"])
    nf = [0.0] * (len(LAYERS) * 2 * N_CHANNELS)
    features = pd.DataFrame(
        [
            {
                Col.ID: "aaa.cif",
                Col.STATUS: "ok",
                Col.ERROR: None,
                "node_features": nf,
                **dict.fromkeys(DESCRIPTOR_NAMES, 1.0),
            },
            {
                Col.ID: "bbb.cif",
                Col.STATUS: "ok",
                Col.ERROR: None,
                "node_features": nf,
                **dict.fromkeys(DESCRIPTOR_NAMES, 2.0),
            },
            {Col.ID: "ccc.cif", Col.STATUS: "failed", Col.ERROR: "no softBV pair", "node_features": None},
            {
                Col.ID: "zzz.cif",
                Col.STATUS: "ok",
                Col.ERROR: None,
                "node_features": nf,
                **dict.fromkeys(DESCRIPTOR_NAMES, 3.0),
            },
        ]
    )
    features.attrs["node_feature_layers"] = LAYERS
    data, left_out = join_labels(features, labels, chemical_systems={"aaa": "La-Li-O-Zr"})
    assert data.ids.tolist() == ["aaa", "bbb"]
    assert data.upper_bound.tolist() == [False, True]
    assert data.groups["chemical_system"].tolist() == ["La-Li-O-Zr", "bbb"]
    assert left_out == {"ccc": "failed: no softBV pair", "zzz": "no label", "ddd": "no structure"}
    # the order of the feature files does not matter: bootstrap resamples see the same rows
    shuffled = features.iloc[::-1].reset_index(drop=True)
    shuffled.attrs["node_feature_layers"] = LAYERS
    assert join_labels(shuffled, labels)[0].ids.tolist() == ["aaa", "bbb"]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,formula\naaa,LiF\n")
    with pytest.raises(InputError, match="log10_sigma"):
        read_labels(bad)


def test_effective_dimensionality_ignores_grid_size_differences():
    from screening.transport.descriptors import effective_dimensionality

    assert effective_dimensionality(0.298, 0.306, 0.31) == 3.0  # a cubic crystal, grid noise
    assert effective_dimensionality(0.43, 3.0, 3.0) == 1.0  # olivine channels
    assert effective_dimensionality(0.3, 0.32, 0.9) == 2.0
    assert effective_dimensionality(3.0, 3.0, 3.0) == 0.0
