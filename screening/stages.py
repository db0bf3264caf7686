"""Screening of one partition of the structures table: the one place where the stages are composed.

For each structures row: rebuild the structure, predict its energy with the GNN potential (batched over
the partition), turn it into a formation energy and an energy above the hull, then estimate the mobile-ion
conductivity. A structure that fails at a stage becomes a results row with ``status="failed"``, the
``stage`` and the reason in ``error``; the other rows of the partition go on. No Dask here: the function
works on one pandas DataFrame and is what the pipeline's workers call partition by partition.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from screening.schema import RESULTS_SCHEMA, STATUS_FAILED, STATUS_NOT_APPLICABLE, STATUS_OK, Col
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
)


@dataclass(frozen=True)
class ScreenConfig:
    """The science settings of a screening run (plain values, so it pickles to any worker).

    Attributes:
        run_id: identifier written to every results row.
        disorder_strategy: how disordered sites are turned into energies (see ``screening.models``).
        n_samples: configurations sampled per disordered structure.
        seed: random seed of the disorder sampling.
        relax: relax the structure with the potential before taking its energy.
        max_atoms_per_batch: upper bound on atoms per model batch (None: the model's device default).
        mobile_ion: element whose conduction is estimated (``Li``, ``Na``, ...).
        temperature_K: temperature of the conductivity, in K.
        transport_method: migration-barrier estimator (``bvse``, ...).
        attempt_frequency_Hz: hop attempt frequency in the Arrhenius prefactor, in Hz.
        haven_ratio: ratio of tracer to charge diffusivity in Nernst-Einstein.
    """

    run_id: str
    disorder_strategy: str = "sample"
    n_samples: int = 8
    seed: int = 0
    relax: bool = False
    max_atoms_per_batch: int | None = None
    mobile_ion: str = "Li"
    temperature_K: float = 300.0
    transport_method: str = "bvse"
    attempt_frequency_Hz: float = 1e13
    haven_ratio: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-serialisable dict."""
        return asdict(self)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _base_row(row: Mapping[str, Any], config: ScreenConfig, model_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in CARRIED_COLUMNS:
        value = row.get(col)
        if hasattr(value, "tolist"):  # numpy arrays from pandas list columns
            value = value.tolist()
        out[col] = None if not isinstance(value, list) and _is_missing(value) else value
    out.update(
        {
            Col.RUN_ID: config.run_id,
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


def _predict(model: Any, structures: list, config: ScreenConfig) -> list:
    """Energies of ``structures``; if the batch raises, one structure at a time so one bad structure
    cannot take the others down (its prediction is then the exception)."""
    from screening.models import predict_energies

    kwargs = {
        "disorder_strategy": config.disorder_strategy,
        "n_samples": config.n_samples,
        "seed": config.seed,
        "max_atoms_per_batch": config.max_atoms_per_batch,
        "relax": config.relax,
    }
    if not structures:
        return []
    try:
        return list(predict_energies(model, structures, **kwargs))
    except Exception:  # noqa: BLE001 - isolate the culprit below
        predictions: list = []
        for structure in structures:
            try:
                predictions.append(predict_energies(model, [structure], **kwargs)[0])
            except Exception as exc:  # noqa: BLE001 - becomes a failed row
                predictions.append(exc)
        return predictions


def _stability(
    out: dict[str, Any], structure: Any, prediction: Any, model: Any, references: Any, temperature_K: float
) -> bool:
    """Fill the stability columns; False (and a failed row) if the stage failed."""
    from screening.thermo import site_occupancies_from_structure, stability

    if isinstance(prediction, BaseException):
        _fail(out, STAGE_STABILITY, prediction)
        return False
    out[Col.DISORDER_STRATEGY] = prediction.disorder_strategy
    out[Col.N_CONFIGURATIONS] = prediction.n_configurations
    if prediction.error:
        _fail(out, STAGE_STABILITY, prediction.error)
        return False
    out[Col.ENERGY_PER_ATOM] = prediction.energy_per_atom_eV
    out[Col.ENERGY_PER_ATOM_STD] = prediction.energy_per_atom_std_eV
    try:
        result = stability(
            structure.composition,
            prediction.energy_per_atom_eV,
            references=references,
            energy_per_atom_std_eV=prediction.energy_per_atom_std_eV,
            energies_corrected=model.training_energies_corrected,
            temperature_K=temperature_K,
            site_occupancies=site_occupancies_from_structure(structure),
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


def _transport(out: dict[str, Any], structure: Any, config: ScreenConfig) -> None:
    """Fill the transport columns (status ``not applicable`` when the mobile ion is absent)."""
    from screening.transport import compute_transport

    try:
        result = compute_transport(
            structure,
            mobile_ion=config.mobile_ion,
            temperature_K=config.temperature_K,
            method=config.transport_method,
            attempt_frequency_Hz=config.attempt_frequency_Hz,
            haven_ratio=config.haven_ratio,
        )
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


def screen_partition(
    structures: pd.DataFrame, config: ScreenConfig, model: Any, *, references: Any
) -> pd.DataFrame:
    """Screen one partition of the structures table.

    Args:
        structures: rows of the structures table (``screening.io.read_structures`` or a slice of it).
        config: the science settings of the run.
        model: an ``EnergyModel`` from ``screening.models.load_model`` (loaded once, reused).
        references: a ``ReferenceSet`` from ``screening.thermo.load_reference_entries`` (the hull);
            metal-anion binaries it lacks for the partition's compositions are added, computed with
            ``model`` (``screening.thermo.completion``; cached, so done once per process).

    Returns:
        One results row per input row, in input order, with the columns of ``RESULTS_SCHEMA``
        (failed rows keep the stage and the reason).
    """
    records = structures.to_dict("records")
    rows = [_base_row(record, config, model.name) for record in records]
    parsed: list[tuple[int, Any]] = []
    for i, (record, out) in enumerate(zip(records, rows, strict=True)):
        if record.get(Col.STATUS, STATUS_OK) != STATUS_OK:
            _fail(out, STAGE_INPUT, record.get(Col.ERROR) or "input row is marked failed")
            continue
        try:
            parsed.append((i, row_to_structure(record)))
        except Exception as exc:  # noqa: BLE001 - malformed row becomes a failed row
            _fail(out, STAGE_STRUCTURE, exc)

    references = _completed_references(references, [structure for _, structure in parsed], model)
    predictions = _predict(model, [structure for _, structure in parsed], config)
    for (i, structure), prediction in zip(parsed, predictions, strict=True):
        if _stability(rows[i], structure, prediction, model, references, config.temperature_K):
            _transport(rows[i], structure, config)

    frame = pd.DataFrame.from_records(rows, columns=RESULTS_SCHEMA.names)
    return frame
