"""Screening of one partition of the structures table: the one place where the stages are composed.

For each structures row: rebuild the structure, predict its energy with the GNN potential (batched over
the partition), turn it into a formation energy and an energy above the hull, then estimate the mobile-ion
conductivity and the screening criteria (window, electronic flag, cost). A structure that fails at a
stage becomes a results row with ``status="failed"``, the ``stage`` and the reason in ``error``; the
other rows of the partition go on. No Dask here: the function
works on one pandas DataFrame and is what the pipeline's workers call partition by partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pandas as pd

from screening.config import ScienceConfig
from screening.errors import InputError
from screening.schema import (
    RESULTS_SCHEMA,
    STATUS_FAILED,
    STATUS_NOT_APPLICABLE,
    STATUS_OK,
    Col,
    is_missing,
)
from screening.structures import row_to_structure

_LOG = logging.getLogger(__name__)

#: Stage names written to the ``stage`` column of a failed row.
STAGE_INPUT = "input"
STAGE_STRUCTURE = "structure"
STAGE_STABILITY = "stability"
STAGE_TRANSPORT = "transport"

#: Structures-table columns carried into the results table (identity and reference labels).
CARRIED_COLUMNS: tuple[Col, ...] = (
    Col.ID,
    Col.NAME,
    Col.CHEMICAL_FORMULA_REDUCED,
    Col.CHEMICAL_SYSTEM,
    Col.ELEMENTS,
    Col.NSITES,
    Col.IS_ORDERED,
    Col.MP_ID,
    Col.MP_ENERGY_ABOVE_HULL,
    Col.EXP_SIGMA_RT,
    Col.EXP_EA,
    Col.MP_BAND_GAP,
    Col.STRUCTURE_SHA256,
    Col.WARNINGS,
)


def _base_row(
    row: Mapping[str, Any], config: ScienceConfig, model_name: str, run_id: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in CARRIED_COLUMNS:
        value = row.get(col)
        if hasattr(value, "tolist"):  # numpy arrays from pandas list columns
            value = value.tolist()
        out[col] = None if not isinstance(value, list) and is_missing(value) else value
    out.update(
        {
            Col.RUN_ID: run_id,
            Col.MODEL: model_name,
            Col.MOBILE_ION: config.mobile_ion,
            Col.TEMPERATURE: config.temperature_K,
            Col.STATUS: STATUS_OK,
            Col.STAGE: None,
            Col.ERROR: None,
        }
    )
    return out


def _fail(out: dict[str, Any], stage: str, error: str | BaseException) -> None:
    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}"
    out[Col.STATUS] = STATUS_FAILED
    out[Col.STAGE] = stage
    out[Col.ERROR] = str(error)


def _predict(model: Any, structures: list, config: ScienceConfig, *, node_features: bool = False) -> list:
    """Energies of ``structures`` (``predict_energies`` gives each structure its own error, so one bad
    structure never takes the others down), with the node features pooled over the mobile ion's sites and
    the framework when ``node_features``."""
    from screening.models import predict_energies

    if not structures:
        return []
    feature_ion = config.mobile_ion if node_features else None
    return list(predict_energies(model, structures, **config.prediction_options(), feature_ion=feature_ion))


def _stability(
    out: dict[str, Any], structure: Any, prediction: Any, model: Any, references: Any, temperature_K: float
) -> bool:
    """Fill the stability columns; False (and a failed row) if the stage failed."""
    from screening.thermo import site_occupancies_from_structure, stability
    from screening.thermo.model_error import model_error

    if isinstance(prediction, BaseException):
        _fail(out, STAGE_STABILITY, prediction)
        return False
    out[Col.DISORDER_STRATEGY] = prediction.disorder_strategy
    out[Col.N_CONFIGURATIONS] = prediction.n_configurations
    if prediction.disorder_strategy == "sample":
        out[Col.SAMPLED_COMPOSITION_ERROR] = prediction.composition_error
    out[Col.NATIVE_SPREAD] = prediction.native_spread_eV
    if prediction.error:
        _fail(out, STAGE_STABILITY, prediction.error)
        return False
    out[Col.ENERGY_PER_ATOM] = prediction.energy_per_atom_eV
    out[Col.ENERGY_PER_ATOM_STD] = prediction.energy_per_atom_std_eV
    out[Col.E_ABOVE_HULL_MODEL_STD] = model_error(model.name).sigma_eV
    try:
        result = stability(
            structure.composition,
            prediction.energy_per_atom_eV,
            references=references,
            energy_per_atom_std_eV=prediction.energy_per_atom_std_eV,
            energies_corrected=model.training_energies_corrected,
            temperature_K=temperature_K,
            site_occupancies=site_occupancies_from_structure(structure),
            model_error_eV=out[Col.E_ABOVE_HULL_MODEL_STD],
        )
    except Exception as exc:  # noqa: BLE001 - ThermoError and anything unforeseen become a failed row
        _fail(out, STAGE_STABILITY, exc)
        return False
    for col in (
        Col.E_FORM_PER_ATOM,
        Col.E_ABOVE_HULL,
        Col.E_ABOVE_HULL_STD,
        Col.HULL_REFERENCE,
        Col.HULL_MISSING_SYSTEMS,
        Col.CONFIG_ENTROPY_TERM,
    ):
        out[col] = result[col]
    return True


def _completed_references(references: Any, structures: list, model: Any) -> Any:
    """``references`` completed with model-computed binaries for the metal-anion systems of
    ``structures`` it lacks (``screening.thermo.completion``); unchanged if that fails (the rows then
    keep reporting ``hull_missing_systems``)."""
    from screening.thermo import ReferenceSet, ThermoError
    from screening.thermo.completion import complete_references

    if not isinstance(references, ReferenceSet) or not structures:
        return references
    try:
        return complete_references(references, [s.composition for s in structures], model)
    except ThermoError as exc:
        _LOG.warning("hull completion failed, hull left as it is: %s", exc)
        return references


def _physics_transport(structure: Any, config: ScienceConfig, model: Any) -> dict[str, Any]:
    """The physics transport columns of one structure (raises ``TransportError`` with the reason)."""
    from screening.transport import compute_transport

    return compute_transport(
        structure,
        mobile_ion=config.mobile_ion,
        temperature_K=config.temperature_K,
        method=config.physics_method,
        attempt_frequency_Hz=config.attempt_frequency_Hz,
        haven_ratio=config.haven_ratio,
        energy_model=model,
        **config.transport_options(),
    )


def _transport(out: dict[str, Any], structure: Any, config: ScienceConfig, model: Any) -> None:
    """Fill the transport columns (status ``not applicable`` when the mobile ion is absent)."""
    try:
        result = _physics_transport(structure, config, model)
    except Exception as exc:  # noqa: BLE001 - TransportError and anything unforeseen become a failed row
        _fail(out, STAGE_TRANSPORT, exc)
        return
    status = result.get(Col.STATUS, STATUS_OK)
    for key, value in result.items():
        if key in (Col.STATUS, Col.STAGE, Col.ERROR, Col.ID):
            continue
        if key in RESULTS_SCHEMA.names:
            out[key] = value
    if status == STATUS_NOT_APPLICABLE:
        out[Col.STATUS] = STATUS_NOT_APPLICABLE
        out[Col.STAGE] = STAGE_TRANSPORT
        out[Col.ERROR] = result.get(Col.ERROR)
    elif status != STATUS_OK:
        _fail(out, STAGE_TRANSPORT, result.get(Col.ERROR) or f"transport status {status!r}")


def _feature_model_name(config: ScienceConfig) -> str:
    from screening.transport.learned import load_conductivity_model

    return load_conductivity_model(config.conductivity_model).features.feature_model


def _feeds_learned(model: Any, config: ScienceConfig) -> bool:
    """Whether the run's energy model is the one whose node features the learned model was trained on
    (then its stability forward passes give the features at no extra cost)."""
    return model.name == _feature_model_name(config)


def _feature_model(model: Any, config: ScienceConfig) -> Any:
    """The potential that gives the learned model its node features, on the run model's device."""
    from screening.models import load_model

    return load_model(_feature_model_name(config), device=model.device)


def _learned_transport(out: dict[str, Any], structure: Any, features: Any, config: ScienceConfig) -> None:
    """Replace the physics conductivity of an ``ok`` row by the learned model's (the physics estimate
    stays in ``log10_sigma_physics_S_per_cm``; barriers and carriers stay as computed, they are inputs)."""
    from screening.transport.descriptors import physical_descriptors
    from screening.transport.learned import load_conductivity_model

    if isinstance(features, BaseException) or features is None or features.pooled_node_features is None:
        reason = getattr(features, "error", None) or (
            f"no node features for the learned model (disorder {config.disorder!r}: use 'sample')"
        )
        _fail(out, STAGE_TRANSPORT, f"learned conductivity: {reason}")
        return
    try:
        learned = load_conductivity_model(config.conductivity_model)
        learned.check_mobile_ion(config.mobile_ion)
        descriptors = physical_descriptors(structure, out, config.mobile_ion)[None, :]
        node_features = features.pooled_node_features.ravel()[None, :]
        prediction = learned.predict(descriptors, node_features, config.temperature_K)
    except Exception as exc:  # noqa: BLE001 - the reason becomes the row's error
        _fail(out, STAGE_TRANSPORT, exc)
        return
    out[Col.LOG10_SIGMA_PHYSICS] = out.get(Col.LOG10_SIGMA)
    out.update(prediction.columns(0))
    notes = list(out.get(Col.TRANSPORT_NOTES) or [])
    out[Col.TRANSPORT_NOTES] = [*notes, f"conductivity from the learned model {learned.name}"]


def _check_model(model: Any, config: ScienceConfig) -> None:
    if model.name != config.model:
        raise InputError(f"the model passed is {model.name!r} but the config names {config.model!r}")


def _parse_rows(
    records: list[dict[str, Any]], rows: list[dict[str, Any]], max_sites: int | None
) -> list[tuple[int, Any]]:
    """``(index, Structure)`` of the records that can be screened; the others' rows are marked failed."""
    parsed: list[tuple[int, Any]] = []
    for i, (record, out) in enumerate(zip(records, rows, strict=True)):
        if record.get(Col.STATUS, STATUS_OK) != STATUS_OK:
            _fail(out, STAGE_INPUT, record.get(Col.ERROR) or "input row is marked failed")
            continue
        nsites = record.get(Col.NSITES)
        if max_sites is not None and not is_missing(nsites) and nsites > max_sites:
            _fail(
                out,
                STAGE_INPUT,
                f"{int(nsites)} sites exceed the cap of {max_sites} per structure "
                "(raise --max-sites-per-structure, with fewer workers, to screen it)",
            )
            continue
        try:
            parsed.append((i, row_to_structure(record)))
        except Exception as exc:  # noqa: BLE001 - malformed row becomes a failed row
            _fail(out, STAGE_STRUCTURE, exc)
    return parsed


def _criteria(out: dict[str, Any], structure: Any, references: Any, config: ScienceConfig) -> None:
    """Fill the criteria columns (window, electronic flag, cost, HHI); never fails the row."""
    from screening.criteria import compute_criteria

    out.update(
        compute_criteria(
            structure.composition,
            mobile_ion=config.mobile_ion,
            e_above_hull_eV=out.get(Col.E_ABOVE_HULL),
            references=references,
            band_gap_eV=out.get(Col.MP_BAND_GAP),
            oxidation_states=out.get(Col.OXIDATION_STATES),
        )
    )


class _StageClock:
    """``with clock("stage"):`` adds the block's wall seconds to ``seconds["stage"]``."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


def screen_partition(
    structures: pd.DataFrame,
    config: ScienceConfig,
    model: Any,
    *,
    references: Any,
    run_id: str | None = None,
    max_sites: int | None = None,
    stage_seconds: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Screen one partition of the structures table.

    Args:
        structures: rows of the structures table (``screening.io.read_structures`` or a slice of it).
        config: the science settings of the run.
        model: an ``EnergyModel`` from ``screening.models.load_model`` (loaded once, reused); its name
            must be ``config.model``.
        references: a ``ReferenceSet`` from ``screening.thermo.load_reference_entries`` (the hull);
            metal-anion binaries it lacks for the partition's compositions are added, computed with
            ``model`` (``screening.thermo.completion``; cached, so done once per process).
        run_id: identifier written to every row (the pipeline's run identity), or None.
        max_sites: structures with more sites fail at the input stage with that reason (a memory guard
            for workers); None: no cap.
        stage_seconds: if given, wall seconds spent in each stage are added to it (keys ``parse``,
            ``hull completion``, ``energy``, ``stability``, ``transport``, ``learned conductivity``,
            ``criteria``), for profiles and run.json.

    Returns:
        One results row per input row, in input order, with the columns of ``RESULTS_SCHEMA``
        (failed rows keep the stage and the reason).
    """
    _check_model(model, config)
    timed = _StageClock(stage_seconds if stage_seconds is not None else {})
    records = structures.to_dict("records")
    rows = [_base_row(record, config, model.name, run_id) for record in records]
    with timed("parse"):
        parsed = _parse_rows(records, rows, max_sites)
    structures_parsed = [structure for _, structure in parsed]
    with timed("hull completion"):
        references = _completed_references(references, structures_parsed, model)
    learned = config.transport_method == "learned"
    features_from_run_model = learned and _feeds_learned(model, config)
    with timed("energy"):
        predictions = _predict(model, structures_parsed, config, node_features=features_from_run_model)
    features = predictions if learned else [None] * len(parsed)
    if learned and not features_from_run_model:
        with timed("energy"):
            features = _predict(_feature_model(model, config), structures_parsed, config, node_features=True)
    for (i, structure), prediction, feature_source in zip(parsed, predictions, features, strict=True):
        with timed("stability"):
            stable_enough = _stability(
                rows[i], structure, prediction, model, references, config.temperature_K
            )
        if stable_enough:
            with timed("transport"):
                _transport(rows[i], structure, config, model)
            if learned and rows[i][Col.STATUS] == STATUS_OK:
                with timed("learned conductivity"):
                    _learned_transport(rows[i], structure, feature_source, config)
        with timed("criteria"):
            _criteria(rows[i], structure, references, config)

    frame = pd.DataFrame.from_records(rows, columns=RESULTS_SCHEMA.names)
    return frame


#: Version of what :func:`conductivity_features_partition` computes: raise it when a change to the
#: descriptors, the pooling or the node-feature layers changes the numbers, so cached feature tables
#: (``screening train conductivity``) are recomputed rather than mixed with new ones.
FEATURES_VERSION = 1

#: Columns of a conductivity feature table besides the descriptors (see
#: :func:`conductivity_features_partition`).
FEATURE_TABLE_COLUMNS: tuple[str, ...] = (Col.ID, Col.STATUS, Col.STAGE, Col.ERROR, "node_features")


def conductivity_features_partition(
    structures: pd.DataFrame, config: ScienceConfig, model: Any, *, max_sites: int | None = None
) -> pd.DataFrame:
    """The inputs of the learned conductivity model for one partition: what training and
    ``transport_method="learned"`` both compute, with the same functions.

    For each row: the energy model's forward passes of the stability stage (ordered structure, or the
    sampled configurations of a disordered one) with their node features pooled over the mobile ion's
    sites and over the framework, and the physics transport (``bvse`` with the bond-valence Frenkel
    estimate: ``config.physics_method`` and ``config.transport_options()``) turned into
    :data:`~screening.transport.descriptors.DESCRIPTOR_NAMES`.

    Returns:
        One row per input row: ``id``, ``status`` (``ok``, ``failed`` or ``not applicable``), ``stage``,
        ``error``, one column per descriptor, and ``node_features`` (float32 list of length
        ``n_layers * 2 * n_channels``, layers in ``model.node_feature_layers`` order, then
        ``[mobile ion, framework]``, then channels). ``frame.attrs["node_feature_layers"]`` names the
        layers.
    """
    from screening.transport.descriptors import DESCRIPTOR_NAMES, physical_descriptors

    _check_model(model, config)
    records = structures.to_dict("records")
    rows = [_base_row(record, config, model.name, None) for record in records]
    parsed = _parse_rows(records, rows, max_sites)
    predictions = _predict(model, [structure for _, structure in parsed], config, node_features=True)
    features: dict[int, dict[str, Any]] = {}
    for (i, structure), prediction in zip(parsed, predictions, strict=True):
        out = rows[i]
        if isinstance(prediction, BaseException) or prediction.error:
            _fail(out, STAGE_STABILITY, getattr(prediction, "error", None) or prediction)
            continue
        if prediction.pooled_node_features is None:
            _fail(out, STAGE_STABILITY, f"{model.name} gave no node features (disorder {config.disorder})")
            continue
        try:
            transport = _physics_transport(structure, config, model)
        except Exception as exc:  # noqa: BLE001 - the reason becomes the row's error
            _fail(out, STAGE_TRANSPORT, exc)
            continue
        if transport[Col.STATUS] != STATUS_OK:
            out.update({Col.STATUS: transport[Col.STATUS], Col.STAGE: STAGE_TRANSPORT})
            out[Col.ERROR] = transport.get(Col.ERROR)
            continue
        descriptors = physical_descriptors(structure, transport, config.mobile_ion)
        features[i] = dict(zip(DESCRIPTOR_NAMES, descriptors.tolist(), strict=True))
        features[i]["node_features"] = prediction.pooled_node_features.astype("float32").ravel().tolist()
    table = [
        {**{col: out[col] for col in (Col.ID, Col.STATUS, Col.STAGE, Col.ERROR)}, **features.get(i, {})}
        for i, out in enumerate(rows)
    ]
    frame = pd.DataFrame.from_records(table, columns=[*FEATURE_TABLE_COLUMNS, *DESCRIPTOR_NAMES])
    frame.attrs["node_feature_layers"] = list(getattr(model, "node_feature_layers", ()))
    return frame
